"""``fit``: train a zoo model on a data set and write a run directory.

A run directory holds ``config.json`` (the effective config, with the world size and global
batch), ``data.json`` (split sizes), ``classes.json``, ``preset.json``, ``metrics.csv`` and
``metrics.jsonl`` (one row per epoch), ``tensorboard/`` (when tensorboard is installed),
``checkpoints/`` (``ckpt-eEEEE-sSSSSSSSS.pt``: the latest K and the best), ``best.safetensors``
(best held-out accuracy, with ``--holdout``), ``model.safetensors`` (final weights, the EMA
weights with ``--ema``; model name, arguments and class names in the metadata), ``final.json``
(test top-1/top-5 accuracy and error as fractions), ``skipped.json`` (files left out as bad) and
``curves.png``.

One code path serves one process and DDP under torchrun: a single process is a world of one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import load_splits, preset_for
from ..errors import ConvzooError
from ..registry import create_model, model_info
from .._io import atomic_write
from ..weights import save_weights
from . import checkpoint as ckpt
from . import distributed as dist_
from .config import TrainConfig
from .device import resolve_device
from .ema import EMA
from .evaluate import KS, EvalResult, evaluate_model
from .loader import TrainBatches
from .metrics import topk_correct
from .progress import Reporter, StepInfo
from .runlog import METRIC_FIELDS, TensorBoard, write_metrics  # noqa: F401  (re-exported)
from .schedules import LRSchedule, build_optimizer, lr_lambda, total_steps

log = logging.getLogger(__name__)

# On a GPU the trainer reads the loss back (a wait for the device) every this many steps, not
# after each one: benchmarks/engine.py measures what the per-step wait cost (docs/gpu.md).
SYNC_EVERY_CUDA = 25
SYNC_EVERY_CPU = 1  # reading a number costs nothing on the CPU (tests raise it: the GPU path)

__all__ = [
    "FitResult",
    "fit",
    "finish_run",
    "lr_lambda",
    "write_metrics",
    "TrainingInterrupted",
    "METRIC_FIELDS",
]


@dataclass
class FitResult:
    run_dir: Path
    final: dict[str, Any]  # the contents of final.json
    model: torch.nn.Module


class TrainingInterrupted(ConvzooError):
    """SIGINT/SIGTERM stopped the run after a step; a checkpoint was written."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.model}-{cfg.data}-{stamp}"


def prepare_run_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConvzooError(f"cannot write run directory {path}: {e.strerror or e}") from None
    return path


def write_json(path: Path, value: Any) -> None:
    import json

    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(value, indent=2) + "\n"))


class _StopSignals:
    """SIGINT/SIGTERM set a flag the loop reads after each step; a second SIGINT aborts."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        import threading

        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: stopping after this step", signal.Signals(signum).name)

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _deterministic(on: bool):
    if not on:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    bench = torch.backends.cudnn.benchmark
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = bench


def _split_output(out: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, auxiliary logits) of a model output: a tensor, or a NamedTuple whose first
    field is the main logits (GoogLeNet / Inception v3 built with ``aux_logits``)."""
    if isinstance(out, tuple):
        return out[0], [a for a in out[1:] if a is not None]
    return out, []


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate_sharded(
    model: torch.nn.Module,
    dataset,
    preset,
    *,
    cfg: TrainConfig,
    device: torch.device,
    in_chans: int,
    ctx: dist_.DistContext,
) -> EvalResult:
    """Loss, top-1 … top-5 and per-class accuracy over all processes; each process scores every
    ``world``-th image (no padding, so nothing is counted twice) and the sums are all-reduced."""
    if preset.streamed:  # large images: the data package's evaluation path, on every rank
        return evaluate_model(
            model, dataset, preset, batch_size=cfg.eval_batch_size, device=device, in_chans=in_chans
        )
    was_training = model.training
    model.eval()
    c = len(dataset.classes)
    idx = dist_.shard_indices(torch.arange(len(dataset)), ctx, pad=False)
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros(len(KS), dtype=torch.float64)
    class_total = torch.zeros(c, dtype=torch.float64)
    class_correct = torch.zeros(c, dtype=torch.float64)
    from ..data import apply_preset

    for chunk in idx.split(cfg.eval_batch_size):
        y = dataset.labels[chunk]
        x = apply_preset(dataset.images[chunk].to(device), preset, train=False, in_chans=in_chans)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(cfg, device):
            logits, _ = _split_output(model(x))
        logits = logits.float().cpu()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        hits = topk_correct(logits, y, KS)
        correct += torch.tensor([hits[k] for k in KS], dtype=torch.float64)
        pred = logits.argmax(1)
        class_total += torch.bincount(y, minlength=c).double()
        class_correct += torch.bincount(y[pred == y], minlength=c).double()
    model.train(was_training)
    packed = torch.cat([loss_sum.view(1), correct, class_total, class_correct])
    dist_.all_reduce_sum(packed, ctx)
    loss_sum, correct = packed[0], packed[1 : 1 + len(KS)]
    class_total, class_correct = packed[1 + len(KS) : 1 + len(KS) + c], packed[1 + len(KS) + c :]
    n = int(class_total.sum())
    return EvalResult(
        n=n,
        loss=float(loss_sum) / n,
        topk_acc={k: float(correct[i]) / n for i, k in enumerate(KS)},
        per_class_acc=[
            None if t == 0 else float(h / t)
            for h, t in zip(class_correct.tolist(), class_total.tolist(), strict=False)
        ],
        classes=list(dataset.classes),
    )


def _freeze_backbone(model: torch.nn.Module) -> int:
    head = getattr(model, "head_prefixes", ("fc.", "classifier.", "head."))
    trainable = 0
    for name, p in model.named_parameters():
        keep = any(name.startswith(h) for h in head)
        p.requires_grad_(keep)
        trainable += p.numel() if keep else 0
    if trainable == 0:
        raise ConvzooError(
            f"--freeze-backbone: model {type(model).__name__} has no classifier "
            f"parameters under {head}"
        )
    return trainable


def fit(cfg: TrainConfig, reporter: Reporter | None = None) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data``; evaluate after every epoch; write the run directory.

    Under ``torchrun`` every process calls this; they train as one DDP model and only process 0
    writes files or reports. Raises :class:`TrainingInterrupted` after SIGINT/SIGTERM (with a
    checkpoint written) and :class:`ConvzooError` on a non-finite loss.
    """
    cfg = cfg.validate()
    ctx, device_name = dist_.setup(cfg.device)
    try:
        with _deterministic(cfg.deterministic):
            return _fit(cfg, reporter or Reporter(), ctx, device_name)
    finally:
        dist_.cleanup(ctx)


def _fit(
    cfg: TrainConfig, reporter: Reporter, ctx: dist_.DistContext, device_name: str
) -> FitResult:
    info = model_info(cfg.model)  # fails early on an unknown name
    device = resolve_device(device_name)
    if not ctx.is_main:
        reporter = Reporter()
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConvzooError(
            f"--amp fp16 needs a CUDA device (GradScaler); on {device} use --amp bf16"
        )
    state = None
    if cfg.resume:
        resume_path = ckpt.resolve_resume(cfg.resume)
        state = ckpt.load_checkpoint(resume_path)
    splits = load_splits(
        cfg.data, cfg.data_dir, holdout=cfg.holdout, seed=cfg.seed, on_bad_file=cfg.on_bad_file,
        train_split=cfg.train_split, val_split=cfg.val_split,
    )
    train_set, val_set, test_set = splits.train, splits.val, splits.test
    if cfg.out:
        run_dir = Path(cfg.out)
    elif state is not None:
        run_dir = resume_path.parent.parent
    else:
        run_dir = dist_.broadcast_object(default_run_dir(cfg), ctx)
    if ctx.is_main:
        prepare_run_dir(run_dir)

    torch.manual_seed(cfg.seed)
    in_chans = cfg.in_chans or splits.channels
    num_classes = cfg.num_classes or len(splits.classes)
    model_args = {"num_classes": num_classes, "in_chans": in_chans, **cfg.model_args}
    preset = preset_for(
        cfg.data,
        in_chans=in_chans,
        image_size=splits.image_size,
        model_size=info.input_size[1],
        model=cfg.model,
    )
    if ctx.is_main:
        from .. import __version__

        write_json(
            run_dir / "config.json",
            {
                **cfg.to_dict(),
                "out": str(run_dir),
                "world_size": ctx.world,
                "global_batch_size": cfg.batch_size * ctx.world * cfg.accum_steps,
                "convzoo_version": __version__,
            },
        )
        write_json(run_dir / "classes.json", splits.classes)
        write_json(run_dir / "preset.json", preset.to_dict())
        write_json(run_dir / "data.json", splits.summary())
        write_json(run_dir / "skipped.json", [list(s) for s in splits.skipped])
    reporter.start(
        f"training {cfg.model} on {cfg.data} ({train_set.source}: {len(train_set)} train"
        f"{'' if val_set is None else f' / {len(val_set)} held-out'} / {len(test_set)} test "
        f"images) on {device}"
        f"{f' x {ctx.world} processes' if ctx.enabled else ''}, run directory {run_dir}"
    )
    if cfg.engine == "numpy":
        from .numpy_engine import fit_numpy  # NumPy engine: same data, run dir and weights file

        return fit_numpy(cfg, train_set, test_set, preset, run_dir, model_args, reporter)

    model = create_model(cfg.model, weights=cfg.weights, reset_head=cfg.reset_head, **model_args)
    if cfg.conv == "gemm":
        from .. import gemm  # every nn.Conv2d becomes unfold (im2col) + matmul

        model = gemm.convert(model)
    if cfg.freeze_backbone:
        _freeze_backbone(model)
    if cfg.sync_bn and ctx.enabled:
        if device.type != "cuda":
            raise ConvzooError(
                f"--sync-bn needs CUDA devices: torch's SyncBatchNorm only works "
                f"with GPU modules (this run is on {device})"
            )
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)

    if cfg.test_only:
        return _test_only(
            cfg,
            model,
            state,
            test_set,
            preset,
            device,
            in_chans,
            model_args,
            splits.classes,
            run_dir,
            reporter,
            ctx,
        )

    ema = EMA(model, cfg.ema_decay) if cfg.ema else None
    train_model: torch.nn.Module = model
    if ctx.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        train_model = torch.compile(train_model)
    optimizer = build_optimizer(cfg, (p for p in model.parameters() if p.requires_grad))
    loader = TrainBatches(
        train_set,
        preset,
        batch_size=cfg.batch_size,
        device=device,
        in_chans=in_chans,
        seed=cfg.seed,
        ctx=ctx,
        channels_last=cfg.channels_last,
    )
    nb = len(loader)  # micro-batches per epoch per process
    accum = cfg.accum_steps
    spe = -(-nb // accum)  # optimizer steps per epoch
    total = total_steps(cfg, spe)
    schedule = LRSchedule(cfg, optimizer, spe)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    tb = TensorBoard(run_dir, cfg.tensorboard and ctx.is_main)
    ckpt_dir = run_dir / "checkpoints"

    epoch, start_batch, step = 1, 0, 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    # Steps between the host's reads of the loss on a GPU (each read waits for the device).
    sync_every = SYNC_EVERY_CUDA if device.type == "cuda" else SYNC_EVERY_CPU
    seen, train_time, elapsed0 = 0, 0.0, 0.0
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] = {"acc": None, "checkpoint": None}
    last_ckpt: Path | None = None
    epoch_lr: float | None = None
    if state is not None:
        if state["world_size"] != ctx.world and state["batch"] != 0:
            raise ConvzooError(
                f"--resume {resume_path}: saved mid-epoch by {state['world_size']} process(es); "
                f"resume it with the same number of processes (now {ctx.world})"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        if ema is not None and state["ema"] is not None:
            ema.load_state_dict(state["ema"])
        rngs = state["rng"]
        mine = rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0]
        ckpt.set_rng_state(mine, loader.generator)
        loader.set_order_state(rngs[0]["order"])
        epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
        run = state["running"]
        loss_sum.fill_(run["loss_sum"])
        correct.fill_(run["correct"])
        seen, train_time, elapsed0 = run["seen"], run["train_time"], run["elapsed"]
        epoch_lr = run["epoch_lr"]
        rows, best = list(state["rows"]), dict(state["best"])
        last_ckpt = resume_path
        reporter.start(
            f"resumed from {resume_path}: epoch {epoch}, batch {start_batch}/{nb}, step {step}"
        )

    def save(at_epoch: int, at_batch: int) -> Path | None:
        """Checkpoint the state after ``at_batch`` micro-batches of epoch ``at_epoch``."""
        rng = dist_.all_gather_object(
            {**ckpt.rng_state(loader.generator), "order": loader.order_state()}, ctx
        )
        if not ctx.is_main:
            return None
        cpu = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        blob = {
            "config": cfg.to_dict(),
            "world_size": ctx.world,
            "model": cpu,
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "ema": {k: v.cpu() for k, v in ema.state_dict().items()} if ema else None,
            "rng": rng,
            "epoch": at_epoch,
            "batch": at_batch,
            "step": step,
            "running": {
                "loss_sum": float(loss_sum),
                "correct": int(correct),
                "seen": seen,
                "epoch_lr": epoch_lr,
                "train_time": train_time,
                "elapsed": elapsed0 + time.perf_counter() - t_start,
            },
            "rows": rows,
            "best": best,
        }
        protect = Path(best["checkpoint"]) if best["checkpoint"] else None
        return ckpt.save_checkpoint(ckpt_dir, blob, keep=cfg.keep_checkpoints, protect=protect)

    pending: list[tuple] = []  # steps whose numbers are still on the device (GPU only)
    rep_correct, reported = 0, step  # reporter's running correct count; last step reported

    def diverged(what: str) -> ConvzooError:
        where = f"the last good checkpoint is {last_ckpt}" if last_ckpt else (
            "no checkpoint was written yet")
        return ConvzooError(
            f"training diverged: {what} at epoch {epoch} (lr {schedule.lr_at(step):.4g}); "
            f"{where}; try a smaller --lr, --clip-grad-norm or --lr-warmup-epochs"
        )

    def report_pending() -> None:
        """Hand the steps not yet reported to the reporter: one wait for the device."""
        nonlocal rep_correct, reported
        if not pending:
            return
        # (loss sum, hits) of every pending step, read back in one go.
        values = torch.stack([torch.stack([p[3], p[4].double()]) for p in pending]).tolist()
        for (st, ep, bt, _, _, n, lr_st, seen_st, time_st), (loss_total, cv) in zip(
            pending, values, strict=True
        ):
            rep_correct += int(cv)
            reporter.step(
                StepInfo(step=st, epoch=ep, batch=bt, loss=loss_total / n, correct=int(cv),
                         images=n, lr=lr_st, acc=rep_correct / max(seen_st, 1),
                         images_per_s=seen_st / max(time_st, 1e-9))
            )
        reported = pending[-1][0]
        pending.clear()

    t_start = time.perf_counter()
    with _StopSignals() as stop:
        while epoch <= cfg.epochs and step < total:
            train_model.train()
            reporter.start_epoch(epoch, cfg.epochs, spe)
            t0 = time.perf_counter()
            t_resume = train_time  # time already spent in this epoch before a resume
            b = start_batch
            rep_correct = int(correct)  # running correct for the reporter (resumed: so far)
            group_loss, group_correct, group_n = 0.0, 0, 0  # this step's sums (tensors once added)
            if b == 0 or epoch_lr is None:
                epoch_lr = schedule.lr_at(step)  # the lr the epoch starts with (metrics' "lr")
            for x, y in loader.batches(epoch, start_batch):
                group_start = (b // accum) * accum
                group_len = min(accum, nb - group_start)
                sync_now = b + 1 == group_start + group_len
                no_sync = (
                    train_model.no_sync()
                    if ctx.enabled and not sync_now
                    else contextlib.nullcontext()
                )
                with no_sync, _autocast(cfg, device):
                    logits, aux = _split_output(train_model(x))
                    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                    for a in aux:
                        loss = loss + cfg.aux_loss_weight * F.cross_entropy(
                            a, y, label_smoothing=cfg.label_smoothing
                        )
                    scaled = loss / group_len
                    (scaler.scale(scaled) if scaler is not None else scaled).backward()
                batch_loss = loss.detach()
                batch_correct = (logits.detach().argmax(1) == y).sum()
                loss_sum += batch_loss.double() * len(y)
                correct += batch_correct
                group_loss = group_loss + batch_loss.double() * len(y)
                group_correct = group_correct + batch_correct
                group_n += len(y)
                seen += len(y)
                b += 1
                if sync_every == 1:  # the CPU: checking now costs nothing
                    bad = not math.isfinite(float(batch_loss))
                else:
                    nonfinite |= ~torch.isfinite(batch_loss)
                    bad = False
                if not sync_now and not bad:
                    continue
                # The host reads the device's numbers only every `sync_every` steps, and always
                # before a checkpoint, an evaluation or a stop, so no NaN weights are ever saved.
                signum_now = stop.signum or 0
                due = (
                    sync_every == 1
                    or (step + 1) % sync_every == 0
                    or b == nb
                    or step + 1 >= total
                    or signum_now != 0
                    or bool(cfg.checkpoint_every_steps)
                    and (step + 1) % cfg.checkpoint_every_steps == 0
                )
                if due and sync_every > 1:
                    bad = bool(nonfinite)
                flags = torch.tensor([float(bad), float(signum_now)])
                dist_.all_reduce_sum(flags, ctx)
                if flags[0] > 0:
                    raise diverged(
                        f"the loss is {float(batch_loss)} at step {step + 1}"
                        if sync_every == 1
                        else f"the loss is not finite in a step of {reported + 1}-{step + 1}"
                    )
                lr_used = schedule.lr_at(step)
                schedule.set(step)
                if cfg.clip_grad_norm is not None:
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if ema is not None and step % cfg.ema_steps == 0:
                    ema.update()
                now = time.perf_counter()
                train_time = t_resume + now - t0
                pending.append((step, epoch, b, group_loss, group_correct, group_n, lr_used, seen,
                                train_time))
                group_loss, group_correct, group_n = 0.0, 0, 0
                if due:
                    report_pending()
                signum = int(flags[1])
                if signum:
                    path = save(epoch, b)
                    name = signal.Signals(signum).name
                    raise TrainingInterrupted(
                        f"stopped by {name} after step {step} (epoch {epoch}, batch {b}/{nb}); "
                        f"checkpoint {path or ckpt_dir}; continue with: convzoo train --resume "
                        f"{run_dir}",
                        signum,
                    )
                if step >= total:
                    break
                if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0 and b < nb:
                    last_ckpt = save(epoch, b) or last_ckpt
            if bool(nonfinite):  # a streamed epoch can end early (unreadable files skipped)
                raise diverged(f"the loss is not finite in a step of {reported + 1}-{step}")
            report_pending()
            # End of the epoch (or of max_steps): reduce, evaluate, record, checkpoint.
            loader.end_epoch()
            sums = torch.tensor([float(loss_sum), float(correct), float(seen)], dtype=torch.float64)
            dist_.all_reduce_sum(sums, ctx)
            eval_model = ema.module if ema is not None else model
            val = (
                None
                if val_set is None
                else evaluate_sharded(
                    eval_model, val_set, preset, cfg=cfg, device=device, in_chans=in_chans, ctx=ctx
                )
            )
            test = evaluate_sharded(
                eval_model, test_set, preset, cfg=cfg, device=device, in_chans=in_chans, ctx=ctx
            )
            schedule.end_epoch(None if val is None else 1.0 - val.topk_acc[1])
            rows.append(
                {
                    "epoch": epoch,
                    "epochs": cfg.epochs,
                    "step": step,
                    "lr": epoch_lr,
                    "train_loss": float(sums[0] / sums[2]),
                    "train_acc": float(sums[1] / sums[2]),
                    "val_loss": None if val is None else val.loss,
                    "val_top1_acc": None if val is None else val.topk_acc[1],
                    "val_top5_acc": None if val is None else val.topk_acc[5],
                    "test_loss": test.loss,
                    "test_top1_acc": test.topk_acc[1],
                    "test_top5_acc": test.topk_acc[5],
                    "test_top1_err": 1 - test.topk_acc[1],
                    "test_top5_err": 1 - test.topk_acc[5],
                    "images_per_s": float(sums[2]) / max(train_time, 1e-9),
                    "epoch_time_s": train_time,
                    "elapsed_s": elapsed0 + time.perf_counter() - t_start,
                }
            )
            improved = val is not None and (best["acc"] is None or val.topk_acc[1] > best["acc"])
            epoch_done = epoch
            epoch, start_batch = epoch + 1, 0
            loss_sum.zero_()
            correct.zero_()
            seen, train_time = 0, 0.0
            if ctx.is_main:
                write_metrics(run_dir, rows)
                tb.epoch(rows[-1])
                if improved:
                    save_weights(
                        run_dir / "best.safetensors",
                        eval_model,
                        model_name=cfg.model,
                        model_args=model_args,
                        classes=splits.classes,
                        extra={
                            "data": cfg.data,
                            "epoch": epoch_done,
                            "val_top1_acc": val.topk_acc[1],
                        },
                    )
            if improved:
                best["acc"] = val.topk_acc[1]
                best["checkpoint"] = str(ckpt_dir / ckpt.checkpoint_name(epoch, step))
            reporter.end_epoch(rows[-1])
            last_ckpt = save(epoch, 0) or last_ckpt
            if stop.signum:
                name = signal.Signals(stop.signum).name
                raise TrainingInterrupted(
                    f"stopped by {name} after epoch {epoch_done}; checkpoint {last_ckpt}; "
                    f"continue with: convzoo train --resume {run_dir}",
                    stop.signum,
                )
    tb.close()
    if loader.skipped and ctx.is_main:
        write_json(run_dir / "skipped.json", [list(s) for s in splits.skipped + loader.skipped])
    final_model = ema.module if ema is not None else model
    ev = evaluate_sharded(
        final_model, test_set, preset, cfg=cfg, device=device, in_chans=in_chans, ctx=ctx
    )
    if not ctx.is_main:
        return FitResult(run_dir=run_dir, final={}, model=final_model)
    extra = {"best_val_top1_acc": best["acc"], "world_size": ctx.world}
    return finish_run(
        run_dir, cfg, final_model, model_args, splits.classes, ev, rows, reporter, extra=extra
    )


def _test_only(
    cfg,
    model,
    state,
    test_set,
    preset,
    device,
    in_chans,
    model_args,
    classes,
    run_dir,
    reporter,
    ctx,
) -> FitResult:
    if state is not None:
        model.load_state_dict(state["ema"] if state.get("ema") else state["model"])
    elif cfg.weights is None:
        raise ConvzooError("--test-only needs --weights FILE|TAG or --resume RUN_DIR|CHECKPOINT")
    ev = evaluate_sharded(
        model, test_set, preset, cfg=cfg, device=device, in_chans=in_chans, ctx=ctx
    )
    final = {
        "model": cfg.model,
        "data": cfg.data,
        "test_only": True,
        "weights": cfg.weights or cfg.resume,
        **ev.to_dict(),
    }
    if ctx.is_main:
        write_json(run_dir / "final.json", final)
    reporter.finish(
        f"test top-1 acc {ev.topk_acc[1]:.4f} (err {1 - ev.topk_acc[1]:.4f}), "
        f"top-5 acc {ev.topk_acc[5]:.4f} on {ev.n} images\nrun directory: {run_dir}"
    )
    return FitResult(run_dir=run_dir, final=final, model=model)


def finish_run(
    run_dir,
    cfg,
    model,
    model_args,
    classes,
    ev,
    rows,
    reporter,
    *,
    extra: dict[str, Any] | None = None,
) -> FitResult:
    """Write the weights, final.json and curves.png of a finished run (either engine)."""
    from ..analysis.plots import plot_curves

    date = datetime.now(timezone.utc).date().isoformat()
    save_weights(
        run_dir / "model.safetensors",
        model,
        model_name=cfg.model,
        model_args=model_args,
        classes=classes,
        extra={
            "data": cfg.data,
            "engine": cfg.engine,
            "top1_acc": ev.topk_acc[1],
            "recipe": cfg.recipe or "",
            "date": date,
        },
    )
    final = {
        "model": cfg.model,
        "data": cfg.data,
        "recipe": cfg.recipe,
        "epochs": cfg.epochs,
        "steps": rows[-1].get("step") if rows else None,
        "train_time_s": sum(r["epoch_time_s"] for r in rows),
        **(extra or {}),
        **ev.to_dict(),
    }
    write_json(run_dir / "final.json", final)
    plot_curves(rows, run_dir / "curves.png", title=f"{cfg.model} on {cfg.data}")
    reporter.finish(
        f"test top-1 acc {ev.topk_acc[1]:.4f} (err {1 - ev.topk_acc[1]:.4f}), "
        f"top-5 acc {ev.topk_acc[5]:.4f} (err {1 - ev.topk_acc[5]:.4f}) on {ev.n} images\n"
        f"run directory: {run_dir}"
    )
    return FitResult(run_dir=run_dir, final=final, model=model)
