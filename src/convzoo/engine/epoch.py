"""The training loop: :class:`Trainer`, whose methods read top to bottom in the order they run.

A Trainer holds what stays fixed while a run trains (config, processes, data, loader, run
directory); :class:`~convzoo.engine.state.TrainState` holds what changes. Each method reads the
first and advances the second:

- :meth:`Trainer.train`: epochs until the run's last step.
- :meth:`Trainer.train_epoch`: micro-batches forward and backward
  (:meth:`Trainer.forward_backward`) from the state's position to the end of its epoch (or the
  run's last step); every ``accum_steps`` of them make one optimizer step.
- :meth:`Trainer.optimizer_step`: check the losses and stop signals of all processes, set the lr,
  clip, step; report the steps whose numbers the host has read.
- :meth:`Trainer.end_epoch`: the epoch's training row, a checkpoint *before* evaluating (a
  failed evaluation loses no training), :func:`evaluate_epoch` (metric files, best weights), the
  checkpoint again with the metrics (:meth:`Trainer.save_checkpoint`).

On a GPU the host reads the loss back (a wait for the device) only every ``sync_every`` steps
and always before a checkpoint, an evaluation or a stop, so no NaN weights are ever saved
(:class:`PendingSteps`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from types import FrameType
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from ..data import DataPreset
from ..data.splits import AnyDataset
from ..errors import ConvzooError, TrainingDiverged
from . import checkpoint as ckpt
from . import distributed as dist_
from . import rundir
from .config import TrainConfig
from .loader import TrainBatches
from .progress import Reporter, StepInfo
from .rundir import RunDir
from .runlog import METRIC_FIELDS, TensorBoard
from .schedules import total_steps
from .scoring import EvalResult, autocast, evaluate_model, measured
from .state import TrainState

log = logging.getLogger(__name__)


class TrainingInterrupted(ConvzooError):
    """SIGINT/SIGTERM stopped the run after a step; a checkpoint was written."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


# What signal.signal returns and takes: a function, SIG_DFL/SIG_IGN, or None (not set from Python)
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopSignals:
    """SIGINT/SIGTERM set a flag the loop reads after each step; a second SIGINT aborts."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, SignalHandler] = {}

    def __enter__(self) -> StopSignals:
        import threading

        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: stopping after this step", signal.Signals(signum).name)

    def __exit__(self, *exc: object) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class ReadBatch(NamedTuple):
    """One micro-batch's numbers, read back by the host."""

    loss_total: float  # mean cross-entropy x images
    hits: int  # top-1
    images: int


class TakenStep(NamedTuple):
    """An optimizer step the reporter has not heard of yet (the state just after it)."""

    step: int
    epoch: int
    batch: int  # micro-batches done in the epoch
    end: int  # 1 + its last micro-batch's place among PendingSteps.done and the unread ones
    lr: float  # the lr it used
    seen: int  # images of the epoch so far
    seconds: float  # seconds of training in the epoch so far


class PendingSteps:
    """The numbers the host has not read yet. Each micro-batch's mean loss and top-1 hits stay
    device tensors as they come off the model (adding them up would launch kernels every step);
    :meth:`read` fetches them all in one wait for the device, every ``sync_every`` steps and
    before a checkpoint, an evaluation or a stop, into the state's running sums, and
    :meth:`flush` hands the optimizer steps taken since to the reporter."""

    def __init__(self, sync_every: int, step: int, *, window: int = 0) -> None:
        self.sync_every = sync_every  # steps between the host's reads (1: read every step)
        self.loss: list[torch.Tensor] = []  # unread micro-batches: mean loss (device)
        self.hits: list[torch.Tensor] = []  # unread micro-batches: top-1 hits (device)
        self.n: list[int] = []  # unread micro-batches: images
        self.done: list[ReadBatch] = []  # read, not reported yet
        self.steps: list[TakenStep] = []  # not reported yet
        self.correct = 0  # the epoch's running top-1 hits, as reported so far
        self.reported = step  # the last step handed to the reporter
        # The last ``window`` steps' top-1 errors (--target-train-err's; 0: none kept)
        self.recent: collections.deque[float] = collections.deque(maxlen=window)

    def add_batch(self, loss: torch.Tensor, hits: torch.Tensor, n: int) -> bool:
        """Keep one micro-batch's numbers; True when its loss is known to be non-finite now
        (with ``sync_every`` 1 it is read at once: free on the CPU)."""
        self.loss.append(loss)
        self.hits.append(hits)
        self.n.append(n)
        return self.sync_every == 1 and not math.isfinite(float(loss))

    def add_step(self, state: TrainState, lr: float) -> None:
        self.steps.append(TakenStep(state.step, state.epoch, state.batch,
                                    len(self.done) + len(self.loss), lr, state.seen,
                                    state.train_time))

    def read(self, state: TrainState) -> bool:
        """Fetch the unread micro-batches into ``state``'s running sums (one wait for the
        device); True when a loss was not finite."""
        if not self.loss:
            return False
        losses, hits = torch.stack([torch.stack(self.loss).double(),
                                    torch.stack(self.hits).double()]).tolist()
        bad = False
        for loss, h, n in zip(losses, hits, self.n, strict=True):
            bad |= not math.isfinite(loss)
            self.done.append(ReadBatch(loss * n, int(h), n))
            state.add_sums(loss * n, int(h))
        self.loss, self.hits, self.n = [], [], []
        return bad

    def flush(self, state: TrainState, reporter: Reporter) -> None:
        """Read what is unread and hand the steps not yet reported to the reporter."""
        self.read(state)
        start = 0
        for s in self.steps:
            part, start = self.done[start:s.end], s.end
            loss_total = sum(b.loss_total for b in part)
            hits = sum(b.hits for b in part)
            n = sum(b.images for b in part)
            self.correct += hits
            if self.recent.maxlen:
                self.recent.append(1.0 - hits / n)
            reporter.step(StepInfo(step=s.step, epoch=s.epoch, batch=s.batch,
                                   loss=loss_total / n, correct=hits, images=n, lr=s.lr,
                                   acc=self.correct / max(s.seen, 1),
                                   images_per_s=s.seen / max(s.seconds, 1e-9)))
            self.reported = s.step
        self.done = self.done[start:]
        self.steps.clear()


class EpochClock:
    """Seconds of training in the epoch so far, counting those before a resume."""

    def __init__(self, before: float) -> None:
        self.before, self.t0 = before, time.perf_counter()

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.t0


class LastTest(NamedTuple):
    """The latest scoring of the test split, and the step whose weights it scored."""

    step: int
    result: EvalResult


def split_output(out: torch.Tensor | tuple) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, auxiliary logits) of a model output: a tensor, or a NamedTuple whose first
    field is the main logits (GoogLeNet / Inception v3 built with ``aux_logits``)."""
    if isinstance(out, tuple):
        return out[0], [a for a in out[1:] if a is not None]
    return out, []


@dataclass
class Trainer:
    """One run's training loop: what stays fixed while the run trains (the fields), and the
    steps that advance a :class:`~convzoo.engine.state.TrainState` (the methods, in the order
    they run)."""

    cfg: TrainConfig
    ctx: dist_.DistContext
    device: torch.device
    reporter: Reporter
    out: RunDir
    loader: TrainBatches
    train_model: torch.nn.Module  # the model as trained: DDP-wrapped and/or compiled
    preset: DataPreset
    in_chans: int
    val_set: AnyDataset | None  # the held-out split (--holdout), or None
    test_set: AnyDataset
    resolved: dict[str, Any]  # model_args, classes, input_size (JSON values): checked on resume
    stop: StopSignals
    pending: PendingSteps
    tb: TensorBoard
    train_eval_set: AnyDataset | None = None  # --eval-train's images scored each epoch, or None
    last_test: LastTest | None = None
    t_start: float = field(default_factory=time.perf_counter)

    @cached_property
    def batches_per_epoch(self) -> int:  # micro-batches per epoch per process
        return len(self.loader)

    @cached_property
    def steps_per_epoch(self) -> int:  # optimizer steps per epoch
        return -(-self.batches_per_epoch // self.cfg.accum_steps)

    @cached_property
    def total_steps(self) -> int:  # optimizer steps in the run (epochs, or max_steps)
        return total_steps(self.cfg, self.steps_per_epoch)

    def train(self, state: TrainState) -> None:
        """Epochs until the run's last step (or until --target-train-err is reached)."""
        if state.unevaluated is not None:  # resumed between an epoch's end and its evaluation
            evaluate_epoch(self, state)
            self.save_checkpoint(state)
        while (state.epoch <= self.cfg.epochs and state.step < self.total_steps
               and not state.target_reached):
            self.train_epoch(state)
            self.end_epoch(state)

    def train_epoch(self, state: TrainState) -> None:
        """Train from the state's position to the end of its epoch, or to the run's last step."""
        nb, accum, every = (self.batches_per_epoch, self.cfg.accum_steps,
                            self.cfg.checkpoint_every_steps)
        self.train_model.train()
        self.reporter.start_epoch(state.epoch, self.cfg.epochs, self.steps_per_epoch)
        clock = EpochClock(state.train_time)
        self.pending.correct = state.correct  # resumed mid-epoch: the hits so far
        if state.batch == 0 or state.epoch_lr is None:
            state.epoch_lr = state.schedule.lr_at(state.step)
        for x, y in self.loader.batches(state.epoch, state.batch):
            # The micro-batches of this one's optimizer step: the epoch's last step may have
            # fewer than accum_steps.
            group_start = (state.batch // accum) * accum
            group_len = min(accum, nb - group_start)
            last_of_step = state.batch + 1 == group_start + group_len
            loss, hits = self.forward_backward(state, x, y, group_len, sync=last_of_step)
            state.add_batch(len(y))
            bad = self.pending.add_batch(loss, hits, len(y))
            if not last_of_step and not bad:
                continue
            self.optimizer_step(state, loss, clock, bad=bad)
            if state.step >= self.total_steps or state.target_reached:
                break
            if every and state.step % every == 0 and state.batch < nb:
                self.save_checkpoint(state)
        if self.pending.read(state):  # a streamed epoch can end early (unreadable files skipped)
            raise self.diverged(state, f"the loss is not finite in a step of "
                                       f"{self.pending.reported + 1}-{state.step}")
        self.pending.flush(state, self.reporter)

    def forward_backward(self, state: TrainState, x: torch.Tensor, y: torch.Tensor,
                         group_len: int, *, sync: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One micro-batch: loss (main + weighted auxiliary heads), gradients summed into
        ``.grad`` (scaled by the step's micro-batch count); under DDP the all-reduce waits for
        the last one. Returns the (detached) loss and the top-1 hits, on the device."""
        cfg = self.cfg
        no_sync = (self.train_model.no_sync() if self.ctx.enabled and not sync
                   else contextlib.nullcontext())
        with no_sync, autocast(cfg.amp, self.device):
            logits, aux = split_output(self.train_model(x))
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            for a in aux:
                loss = loss + cfg.aux_loss_weight * F.cross_entropy(
                    a, y, label_smoothing=cfg.label_smoothing
                )
            scaled = loss / group_len
            (state.scaler.scale(scaled) if state.scaler is not None else scaled).backward()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def optimizer_step(self, state: TrainState, loss: torch.Tensor, clock: EpochClock, *,
                       bad: bool) -> None:
        """Agree across processes on a non-finite loss or a stop signal, then take one step."""
        cfg, pending = self.cfg, self.pending
        signum = self.stop.signum or 0
        # The host reads the device's numbers (one wait) every sync_every steps, and before a
        # checkpoint, the epoch's or the run's end, or a stop.
        nxt, every = state.step + 1, cfg.checkpoint_every_steps
        due = (pending.sync_every == 1 or nxt % pending.sync_every == 0
               or state.batch == self.batches_per_epoch or nxt >= self.total_steps
               or signum != 0 or bool(every) and nxt % every == 0)
        if due and pending.sync_every > 1:
            bad = pending.read(state)
        flags = torch.tensor([float(bad), float(signum)])
        dist_.all_reduce_sum(flags, self.ctx)
        if flags[0] > 0:
            raise self.diverged(state, f"the loss is {float(loss)} at step {state.step + 1}"
                                if pending.sync_every == 1 else
                                f"the loss is not finite in a step of {pending.reported + 1}-"
                                f"{state.step + 1}")
        lr_used = state.schedule.lr_at(state.step)
        state.schedule.set(state.step)
        if cfg.clip_grad_norm is not None:
            if state.scaler is not None:
                state.scaler.unscale_(state.optimizer)
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.clip_grad_norm)
        if state.scaler is not None:
            state.scaler.step(state.optimizer)
            state.scaler.update()
        else:
            state.optimizer.step()
        state.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        if state.ema is not None and state.step % cfg.ema_steps == 0:
            state.ema.update()
        state.train_time = clock.seconds()
        pending.add_step(state, lr_used)
        if due:
            pending.flush(state, self.reporter)
        if cfg.target_train_err is not None and state.step % pending.sync_every == 0:
            state.target_reached = self.target_reached(state)
        if flags[1]:
            self.save_checkpoint(state)
            raise self.interrupted(
                int(flags[1]), f"step {state.step} (epoch {state.epoch}, batch {state.batch}/"
                f"{self.batches_per_epoch})", state.last_checkpoint or self.out.checkpoints)

    def target_reached(self, state: TrainState) -> bool:
        """Whether the trailing mean of the last ``target_window`` steps' mini-batch error is at
        or below ``target_train_err`` (read every ``sync_every`` steps, the same steps on every
        process; under DDP any process's window reaching it stops all of them)."""
        cfg, recent = self.cfg, self.pending.recent
        mine = (len(recent) == cfg.target_window
                and sum(recent) / len(recent) <= cfg.target_train_err)
        flag = torch.tensor([float(mine)])
        dist_.all_reduce_sum(flag, self.ctx)
        if flag[0] > 0 and self.ctx.is_main:
            self.reporter.start(f"training error over the last {cfg.target_window} steps at or "
                                f"below --target-train-err {cfg.target_train_err:g} at step "
                                f"{state.step}: this epoch is the last")
        return bool(flag[0] > 0)

    def end_epoch(self, state: TrainState) -> None:
        """Close the epoch: its training numbers, a checkpoint before the evaluation (so that a
        failed evaluation loses no training), the evaluation and records, the checkpoint
        again."""
        self.loader.end_epoch()
        sums = torch.tensor([state.loss_sum, float(state.correct), float(state.seen)],
                            dtype=torch.float64)
        dist_.all_reduce_sum(sums, self.ctx)
        state.unevaluated = {
            "epoch": state.epoch,
            "epochs": self.cfg.epochs,
            "step": state.step,
            "lr": state.epoch_lr,
            "train_loss": float(sums[0] / sums[2]),
            "train_acc": float(sums[1] / sums[2]),
            "images_per_s": float(sums[2]) / max(state.train_time, 1e-9),
            "epoch_time_s": state.train_time,
        }
        state.start_next_epoch()
        self.save_checkpoint(state)
        evaluate_epoch(self, state)
        self.save_checkpoint(state)
        if self.stop.signum:
            raise self.interrupted(self.stop.signum, f"epoch {state.epoch - 1}",
                                   state.last_checkpoint)

    def save_checkpoint(self, state: TrainState) -> None:
        """Checkpoint the state (every process's RNG states and epoch sums gathered; process 0
        writes)."""
        self.pending.read(state)  # (already read wherever a checkpoint is due)
        rng = {**ckpt.rng_state(self.loader.generator), "order": self.loader.order_state()}
        every = dist_.all_gather_object((rng, state.epoch_sums()), self.ctx)
        if not self.ctx.is_main:
            return
        blob = state.to_checkpoint(
            config=self.cfg.to_dict(), world_size=self.ctx.world, rng=[r for r, _ in every],
            sums=[s for _, s in every], run=self.resolved,
            elapsed=state.elapsed + time.perf_counter() - self.t_start,
        )
        best = state.best["checkpoint"]
        try:
            path = ckpt.save_checkpoint(self.out.checkpoints, blob,
                                        keep=self.cfg.keep_checkpoints,
                                        protect=self.out.checkpoints / best if best else None)
        except ConvzooError as e:  # a full disk: the checkpoints written before are whole
            if state.last_checkpoint is None:
                raise
            raise ConvzooError(f"{e}; the last checkpoint {state.last_checkpoint} is whole: "
                               f"free space, then continue with: convzoo train --resume "
                               f"{self.out.target}") from None
        state.last_checkpoint = self.out.keep(path)

    def score(self, model: torch.nn.Module, dataset: AnyDataset, what: str = "test"
              ) -> EvalResult:
        """One split scored by the one loop (:func:`evaluate_split`), its progress reported."""
        # A reporter of one's own need not know ``evaluating`` (Reporter's has it).
        hook = getattr(self.reporter, "evaluating", None)
        return evaluate_split(model, dataset, self.preset, cfg=self.cfg, device=self.device,
                              in_chans=self.in_chans, ctx=self.ctx,
                              progress=hook(what) if hook is not None and self.ctx.is_main
                              else None)

    def final_test(self, state: TrainState) -> EvalResult:
        """The test scores of the final weights: the last epoch's scoring of these very weights,
        else (a resume with nothing left to train) a new one: a large test split is not scored
        twice."""
        last = self.last_test
        if last is not None and last.step == state.step:
            return last.result
        return self.score(state.eval_model, self.test_set)

    def diverged(self, state: TrainState, what: str) -> TrainingDiverged:
        where = (f"the last good checkpoint is {state.last_checkpoint}"
                 if state.last_checkpoint else "no checkpoint was written yet")
        return TrainingDiverged(
            f"training diverged: {what} at epoch {state.epoch} "
            f"(lr {state.schedule.lr_at(state.step):.4g}); {where}; try a smaller --lr, "
            f"--clip-grad-norm or --lr-warmup-epochs"
        )

    def interrupted(self, signum: int, after: str, checkpoint: object) -> TrainingInterrupted:
        return TrainingInterrupted(
            f"stopped by {signal.Signals(signum).name} after {after}; checkpoint {checkpoint}; "
            f"continue with: convzoo train --resume {self.out.path}", signum)


def evaluate_epoch(run: Trainer, state: TrainState) -> None:
    """Score the epoch that ended (``state.unevaluated``): held-out and test splits; feed the
    plateau rule; write the metric files, TensorBoard and, when it improved, best.safetensors."""
    model = state.eval_model
    val = None if run.val_set is None else run.score(model, run.val_set, "held-out")
    test = run.score(model, run.test_set, "test")
    run.last_test = LastTest(state.step, test)
    fit_ = None if run.train_eval_set is None else run.score(model, run.train_eval_set,
                                                            "training (eval mode)")
    state.schedule.end_epoch(None if val is None else 1.0 - val.topk_acc[1])
    scores = {
        "train_eval_loss": None if fit_ is None else fit_.loss,
        "train_eval_acc": None if fit_ is None else fit_.topk_acc[1],
        "val_loss": None if val is None else val.loss,
        "val_top1_acc": None if val is None else val.topk_acc[1],
        "val_top5_acc": None if val is None else val.topk_acc[5],
        "test_loss": test.loss,
        "test_top1_acc": test.topk_acc[1],
        "test_top5_acc": test.topk_acc[5],
        "test_top1_err": measured(1 - test.topk_acc[1]),  # not 0.48650000000000004
        "test_top5_err": measured(1 - test.topk_acc[5]),
        "elapsed_s": state.elapsed + time.perf_counter() - run.t_start,
    }
    row = {k: {**state.unevaluated, **scores}[k] for k in METRIC_FIELDS}
    state.rows.append(row)
    state.unevaluated = None
    improved = val is not None and (state.best["acc"] is None
                                    or val.topk_acc[1] > state.best["acc"])
    run.out.write_metrics(state.rows)
    if run.ctx.is_main:
        run.tb.epoch(row)
    if improved:
        state.best = {"acc": val.topk_acc[1],
                      "checkpoint": ckpt.checkpoint_name(state.epoch, state.step)}
        run.out.save_weights(
            rundir.BEST, model, model_name=run.cfg.model,
            model_args=run.resolved["model_args"], classes=run.resolved["classes"],
            extra={"data": run.cfg.data, "epoch": row["epoch"], "val_top1_acc": val.topk_acc[1],
                   "input_size": run.resolved["input_size"], "preset": run.preset.to_dict()},
        )
    run.reporter.end_epoch(row)


def evaluate_split(
    model: torch.nn.Module,
    dataset,
    preset,
    *,
    cfg: TrainConfig,
    device: torch.device,
    in_chans: int,
    ctx: dist_.DistContext,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Every evaluation of the trainer: the one loop, sharded across the processes (each scores
    every ``world``-th image; the sums are all-reduced), with the run's AMP and memory format."""
    return evaluate_model(model, dataset, preset, batch_size=cfg.eval_batch_size, device=device,
                          in_chans=in_chans, ctx=ctx, amp=cfg.amp,
                          channels_last=cfg.channels_last, workers=cfg.workers,
                          progress=progress)
