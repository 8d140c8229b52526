"""``TrainState``: everything that changes while a run trains, and its checkpoint form.

The objects that learn (model, optimizer, lr schedule, GradScaler, EMA), where the run is
(epoch, micro-batches done in it, optimizer steps), the running sums of the epoch's training
metrics, the metric rows so far and the best held-out result. A checkpoint
(:mod:`convzoo.engine.checkpoint`) is :meth:`TrainState.to_checkpoint` plus the RNG states;
:meth:`TrainState.from_checkpoint` puts one back, so a resumed run continues bit for bit.

:func:`resume_conflicts` (the config) and :func:`resolved_conflicts` (what the data decided: model
arguments, classes, input size) compare a checkpoint with the run about to continue it, before
anything is written: a resume that would not be the same run is refused in one line.
:func:`nothing_to_train` and :func:`config_differences` tell a resume of a finished run, which
must change no byte: any setting other than the run's own is refused.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConvzooError, first_line
from .config import TrainConfig
from .ema import EMA
from .schedules import LRSchedule

# The checkpoint's config values a resume must keep: another value makes another run (the seed
# draws the held-out split and the streamed augmentation; the frozen backbone sets what the
# optimizer holds). Others (lr, epochs, amp, ...) may change on purpose.
SAME_RUN_FIELDS = ("model", "optimizer", "data", "data_dir", "train_split", "val_split",
                   "holdout", "seed", "freeze_backbone", "engine", "conv")
# Where and how a process runs, not what the run is: a finished run's resume may name others.
NOT_THE_RUN = ("out", "overwrite", "resume", "device", "threads", "workers", "tensorboard",
               "eval_batch_size", "test_only")


@dataclass
class TrainState:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler | None
    ema: EMA | None
    epoch: int = 1  # 1-based; cfg.epochs + 1 once the last epoch ended
    batch: int = 0  # micro-batches done in this epoch (this process's)
    step: int = 0  # optimizer steps done in the run
    # The epoch's training sums so far (this process's), as far as the host has read them
    # (epoch.PendingSteps holds the rest on the device).
    loss_sum: float = 0.0  # sum of per-image cross-entropy
    correct: int = 0  # top-1 hits
    seen: int = 0  # images trained on
    train_time: float = 0.0  # seconds of training in this epoch (across resumes)
    elapsed: float = 0.0  # seconds of the run before this process started (resumes)
    epoch_lr: float | None = None  # the lr the epoch started with (metrics' "lr")
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per evaluated epoch
    # Best held-out top-1 accuracy and the name of the checkpoint written after that epoch.
    best: dict[str, Any] = field(default_factory=lambda: {"acc": None, "checkpoint": None})
    # The row of an epoch that ended but is not evaluated yet (the checkpoint written between).
    unevaluated: dict[str, Any] | None = None
    target_reached: bool = False  # cfg.target_train_err was reached: the run ends there
    last_checkpoint: Path | None = None  # the latest written (or resumed from); not saved

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights that are evaluated and saved: the EMA's when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def add_batch(self, n: int) -> None:
        """Count one micro-batch of ``n`` images."""
        self.seen += n
        self.batch += 1

    def add_sums(self, loss_total: float, hits: int) -> None:
        """Add a micro-batch's loss x images and top-1 hits, once the host has read them."""
        self.loss_sum += loss_total
        self.correct += hits

    def start_next_epoch(self) -> None:
        self.epoch, self.batch = self.epoch + 1, 0
        self.loss_sum, self.correct, self.seen, self.train_time = 0.0, 0, 0, 0.0

    def epoch_sums(self) -> dict[str, Any]:
        """This process's running sums of the epoch."""
        return {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen}

    def to_checkpoint(
        self, *, config: dict[str, Any], world_size: int, rng: list[dict[str, Any]],
        sums: list[dict[str, Any]], elapsed: float, run: dict[str, Any],
    ) -> dict[str, Any]:
        """The checkpoint's contents (CPU tensors and plain values). ``rng`` and ``sums`` hold
        every process's RNG states and :meth:`epoch_sums`; ``run`` the values resolved from the
        data (model arguments, classes, input size) that a resume must match."""
        return {
            "config": config,
            "run": run,
            "world_size": world_size,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": (
                {k: v.cpu() for k, v in self.ema.state_dict().items()} if self.ema else None
            ),
            "rng": rng,
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "running": {
                **sums[0],  # process 0's, as older checkpoints had them
                "per_process": sums,
                "epoch_lr": self.epoch_lr,
                "train_time": self.train_time,
                "elapsed": elapsed,
            },
            "rows": self.rows,
            "best": self.best,
            "unevaluated": self.unevaluated,
            "target_reached": self.target_reached,
        }

    @classmethod
    def from_checkpoint(cls, blob: dict[str, Any], path: Path, *, rank: int = 0,
                        **parts: Any) -> TrainState:
        """The state a checkpoint holds, put back into ``parts`` (model, optimizer, schedule,
        scaler, ema: built as for a fresh run), with process ``rank``'s own running
        sums. The RNG states are the loader's business (:func:`~.checkpoint.set_rng_state`)."""
        state = cls(**parts)
        state._load(blob, path, rank)
        return state

    def _load(self, blob: dict[str, Any], path: Path, rank: int) -> None:
        try:
            self.model.load_state_dict(blob["model"])
            self.optimizer.load_state_dict(blob["optimizer"])
            if self.ema is not None and blob["ema"] is not None:
                self.ema.load_state_dict(blob["ema"])
            self.schedule.load_state_dict(blob["schedule"])
            if self.scaler is not None and blob["scaler"] is not None:
                self.scaler.load_state_dict(blob["scaler"])
        # load_checkpoint checked the types; what torch's loaders check beyond them lands here
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise ConvzooError(f"--resume {path}: the checkpoint does not fit this model "
                               f"or optimizer: {first_line(e)}") from None
        self.epoch, self.batch, self.step = blob["epoch"], blob["batch"], blob["step"]
        running = blob["running"]
        every = running.get("per_process", [running])  # older checkpoints: process 0's only
        mine = every[rank] if rank < len(every) else {"loss_sum": 0.0, "correct": 0, "seen": 0}
        self.loss_sum, self.correct = float(mine["loss_sum"]), int(mine["correct"])
        self.seen, self.train_time = mine["seen"], running["train_time"]
        self.elapsed, self.epoch_lr = running["elapsed"], running["epoch_lr"]
        self.rows = list(blob["rows"])
        self.best = dict(blob["best"])
        if self.best.get("checkpoint"):  # older checkpoints saved a path; the name is what counts
            self.best["checkpoint"] = Path(self.best["checkpoint"]).name
        self.unevaluated = blob.get("unevaluated")
        self.target_reached = bool(blob.get("target_reached", False))  # older: not reached
        self.last_checkpoint = path


def _same_path(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def resume_conflicts(blob: dict[str, Any], cfg: TrainConfig, *, world: int) -> list[str]:
    """What in ``cfg`` makes another run than the checkpoint's (empty: the resume is exact).
    Checked before the data is loaded; :func:`resolved_conflicts` checks what the data decides."""
    saved = blob.get("config", {})
    found = []
    for name in SAME_RUN_FIELDS:
        if name not in saved:  # older checkpoints
            continue
        mine, theirs = getattr(cfg, name), saved[name]
        same = _same_path(mine, theirs) if name == "data_dir" else mine == theirs
        if not same:
            found.append(f"{name} {mine!r} (checkpoint: {theirs!r})")
    if blob["batch"] != 0:  # mid-epoch: the epoch's remaining batches must be the same ones
        for name in ("batch_size", "accum_steps"):
            if name in saved and getattr(cfg, name) != saved[name]:
                found.append(f"{name} {getattr(cfg, name)} mid-epoch (checkpoint: {saved[name]})")
        if blob["world_size"] != world:
            found.append(f"{world} process(es) mid-epoch (checkpoint: {blob['world_size']})")
    return found


def resolved_conflicts(blob: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """The values resolved from the data (``run``: model arguments, classes, input size) that
    differ from the checkpoint's."""
    found = []
    for name, mine in run.items():
        theirs = blob.get("run", {}).get(name, mine)  # older checkpoints did not record these
        if name == "classes" and mine != theirs:
            found.append(f"classes of the data ({len(mine)}; checkpoint: {len(theirs)})")
        elif name != "classes" and mine != theirs:
            found.append(f"{name} {mine!r} (checkpoint: {theirs!r})")
    return found


def nothing_to_train(blob: dict[str, Any], cfg: TrainConfig) -> bool:
    """Whether a checkpoint has nothing left to train under ``cfg``: its last epoch (or
    ``cfg.max_steps``) was reached and evaluated."""
    if blob.get("unevaluated") is not None:
        return False
    return (blob["epoch"] > cfg.epochs or bool(cfg.max_steps) and blob["step"] >= cfg.max_steps
            or bool(blob.get("target_reached")))


def config_differences(saved: Any, cfg: TrainConfig, *, ignore: tuple[str, ...] = ()
                       ) -> list[str]:
    """The fields of ``cfg`` whose value differs from the config a run saved (``saved``: its
    config.json or a checkpoint's), as "name value (run: value)". A field the saved config lacks
    (added to TrainConfig since) counts as its default."""
    mine = json.loads(json.dumps(cfg.to_dict()))  # tuples as the lists JSON holds
    defaults = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
                else f.default for f in dataclasses.fields(cfg)
                if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING}
    defaults = json.loads(json.dumps(defaults, default=list))
    saved = saved if isinstance(saved, dict) else {}
    return [f"{k} {v!r} (run: {saved.get(k, defaults.get(k))!r})" for k, v in mine.items()
            if k not in ignore and saved.get(k, defaults.get(k)) != v]
