"""The NumPy engine: train and evaluate convzoo.scratch models with the torch engine's plumbing.

``convzoo train lenet5 --engine numpy`` lands in :func:`fit_numpy`. Everything around the
network is shared with the torch engine, so the two runs differ only in who does the arithmetic:

- the same data path: the torch engine's training batches (same seed, so the same order and
  augmentation), handed over as NumPy arrays with ``.numpy()``;
- the same start: the seeded torch model is built first and its initial weights are copied into
  the NumPy one (the state-dict keys are the same);
- the same SGD (lr, momentum, weight decay on every parameter) and the same per-step schedule
  (:func:`convzoo.engine.schedules.lr_lambda`), stopping at ``--max-steps`` as it does;
- the same evaluation loop (:func:`convzoo.engine.scoring.evaluate_model`), which scores the
  NumPy network through :class:`TorchView`;
- the same run directory and ``model.safetensors`` (:func:`convzoo.engine.rundir.finish_run`),
  so ``convzoo eval`` reads a NumPy-trained run like any other, and ``convzoo eval --engine
  numpy`` scores either engine's weights with the NumPy network (:func:`numpy_model`).

Options it does not implement (AMP, EMA, gradient accumulation, resuming, ...) are refused by
:func:`check_numpy_config`, naming the option.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..data import DataPreset, ImageDataset
from ..errors import ConvzooError, TrainingDiverged
from ..registry import create_model
from ..scratch import SGD, BatchParallel, CrossEntropyLoss, Module, create_scratch_model
from ..scratch.models import MODELS as SCRATCH_MODELS
from .config import TrainConfig
from .progress import Reporter, StepInfo
from .rundir import FitResult, finish_run
from .runlog import write_metrics
from .schedules import lr_lambda, total_steps
from .scoring import EvalResult, evaluate_model

if TYPE_CHECKING:  # loaded.py imports this module (convzoo eval --engine numpy)
    from .loaded import Loaded

log = logging.getLogger(__name__)


def scratch_model(name: str, model_args: dict[str, Any]) -> Module:
    """The NumPy build of zoo model ``name`` with the torch builder's arguments."""
    if name not in SCRATCH_MODELS:
        raise ConvzooError(
            f"the numpy engine has no build of model {name!r}; it has "
            f"{', '.join(sorted(SCRATCH_MODELS))} (use --engine torch for the others)"
        )
    try:
        return create_scratch_model(name, **model_args)
    except (TypeError, ValueError) as e:
        raise ConvzooError(f"model {name!r} (numpy engine): {e}") from None


def state_to_numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def state_to_torch(state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


class TorchView(nn.Module):
    """A NumPy network as a torch module, so that :func:`~convzoo.engine.scoring.evaluate_model`
    scores it like any other: a float batch (B, C, H, W) -> logits (B, K), computed by NumPy on
    the CPU; ``train``/``eval`` switch the NumPy network's mode too."""

    def __init__(self, net: Module) -> None:
        super().__init__()
        self.net = net

    def train(self, mode: bool = True) -> TorchView:
        super().train(mode)
        self.net.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net.forward(x.detach().float().cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(logits)).to(x.device)


def numpy_model(loaded: Loaded) -> TorchView:
    """The NumPy build of a loaded (either engine's) model, holding its weights."""
    net = scratch_model(loaded.name, dict(loaded.model_args))
    try:
        net.load_state_dict(state_to_numpy(loaded.model.state_dict()))
    except (KeyError, ValueError) as e:
        raise ConvzooError(f"weights {loaded.path} do not fit the NumPy {loaded.name}: {e}"
                           ) from None
    return TorchView(net).eval()


# The TrainConfig fields fit_numpy (and the trainer's data loading and run directory around it)
# honours; every other field must keep its default, since the NumPy engine would silently ignore
# it. Fields with a few honoured values are checked by name in check_numpy_config.
NUMPY_FIELDS = frozenset({
    "model", "data", "data_dir", "recipe", "epochs", "max_steps", "batch_size", "optimizer", "lr",
    "momentum", "wd", "lr_scheduler", "lr_step_epochs", "lr_gamma", "lr_milestones",
    "lr_milestone_unit", "lr_min", "lr_warmup_epochs", "lr_warmup_decay", "onecycle_pct",
    "plateau_patience", "plateau_threshold", "plateau_max_drops", "aux_loss_weight",
    "ema_decay", "ema_steps", "rmsprop_alpha", "deterministic", "on_bad_file", "train_split",
    "val_split", "tensorboard", "seed", "device", "out", "overwrite", "input_size", "num_classes",
    "in_chans", "model_args", "engine", "eval_batch_size", "conv", "keep_checkpoints",
})


def _flag(f: dataclasses.Field) -> str:
    """The option's CLI flag (the field's first declared one), else its config key."""
    flags = f.metadata.get("flags")
    return flags[0] if flags else "--" + f.name.replace("_", "-")


def check_numpy_config(cfg: TrainConfig) -> None:
    """Refuse, naming the option, what the NumPy engine does not implement.

    It trains with plain SGD (momentum, weight decay) in float32 on the CPU, one step per batch,
    under any step-wise schedule, from a fresh start; everything else is the torch engine's.
    """
    honoured = {
        "optimizer": cfg.optimizer == "sgd",
        "lr_scheduler": cfg.lr_scheduler != "plateau",
        "device": cfg.device in ("auto", "cpu"),
        "conv": cfg.conv == "native",
    }
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in NUMPY_FIELDS:
            ok = honoured.get(f.name, True)
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else (
                f.default)
            ok = value == default
        if not ok:
            raise ConvzooError(f"--engine numpy does not implement {_flag(f)} {value!r}; drop it "
                               f"or train with --engine torch")


@dataclass
class EpochSums:
    """One epoch's running training numbers (the torch engine's TrainState keeps the same)."""

    epoch: int
    lr: float  # the lr the epoch started with (the metrics' "lr")
    t0: float = field(default_factory=time.perf_counter)
    loss_sum: float = 0.0  # per-image cross-entropy, summed
    correct: int = 0  # top-1 hits
    seen: int = 0  # images

    def add(self, step: int, batch: int, loss: float, hits: int, n: int, lr: float) -> StepInfo:
        """Count one step's ``n`` images; what the reporter hears of it."""
        self.loss_sum += loss * n
        self.correct += hits
        self.seen += n
        return StepInfo(step=step, epoch=self.epoch, batch=batch, loss=loss, correct=hits,
                        images=n, lr=lr, acc=self.correct / self.seen,
                        images_per_s=self.seen / (time.perf_counter() - self.t0))

    def check_finite(self) -> None:
        if not math.isfinite(self.loss_sum):
            raise TrainingDiverged(
                f"training diverged in epoch {self.epoch}: loss is {self.loss_sum / self.seen} "
                f"at lr {self.lr:g}; try a smaller --lr"
            )

    def row(self, cfg: TrainConfig, ev: EvalResult, train_time: float) -> dict[str, Any]:
        """The epoch's metrics row, with its test scores ``ev``."""
        return {
            "epoch": self.epoch, "epochs": cfg.epochs, "lr": self.lr,
            "train_loss": self.loss_sum / self.seen, "train_acc": self.correct / self.seen,
            "test_loss": ev.loss, "test_top1_acc": ev.topk_acc[1], "test_top5_acc": ev.topk_acc[5],
            "test_top1_err": 1 - ev.topk_acc[1], "test_top5_err": 1 - ev.topk_acc[5],
            "images_per_s": self.seen / train_time, "epoch_time_s": train_time,
        }


def fit_numpy(cfg: TrainConfig, train_set: ImageDataset, test_set: ImageDataset,
              preset: DataPreset, run_dir: Path, model_args: dict[str, Any],
              reporter: Reporter) -> FitResult:
    """Train the NumPy build of ``cfg.model`` with SGD; evaluate after every epoch; write the run.

    Called by :func:`convzoo.engine.trainer.fit` (which has seeded torch, loaded the data and
    written config.json) and returns its :class:`~convzoo.engine.rundir.FitResult`, whose
    ``model`` is the torch model holding the trained weights.
    """
    from .distributed import DistContext
    from .loader import TrainBatches

    check_numpy_config(cfg)
    net, torch_model = _seeded_nets(cfg.model, model_args)
    in_chans = model_args.get("in_chans")
    # The torch engine's own batch iterator: the same order and the same augmentation draws.
    batches = TrainBatches(train_set, preset, batch_size=cfg.batch_size,
                           device=torch.device("cpu"), in_chans=in_chans, seed=cfg.seed,
                           ctx=DistContext())
    optimizer = SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd)
    schedule = lr_lambda(cfg, len(batches))
    total = total_steps(cfg, len(batches))
    criterion = CrossEntropyLoss()
    # torch's thread count (--threads, else its default): the batch cut into as many slices.
    step_net = BatchParallel(net, threads=torch.get_num_threads())

    rows: list[dict[str, Any]] = []
    step, epoch = 0, 0
    ev: EvalResult | None = None
    while epoch < cfg.epochs and step < total:  # --max-steps may end the run mid-epoch
        epoch += 1
        net.train()
        reporter.start_epoch(epoch, cfg.epochs, len(batches))
        sums = EpochSums(epoch, lr=cfg.lr * schedule(step))
        for x, y in batches.batches(epoch):
            lr = optimizer.lr = cfg.lr * schedule(step)  # LambdaLR: lambda(step) before step
            xb, yb = x.numpy(), y.numpy()  # (B, C, H, W) float32, (B,) int64
            logits = step_net.forward(xb)
            loss = float(criterion.forward(logits, yb))
            step_net.backward(criterion.backward())
            optimizer.step()
            step += 1
            hits = int((logits.argmax(1) == yb).sum())
            reporter.step(sums.add(step, step - (epoch - 1) * len(batches), loss, hits, len(yb),
                                   lr))
            if step >= total:
                break
        train_time = time.perf_counter() - sums.t0
        sums.check_finite()
        ev = evaluate_model(TorchView(net), test_set, preset, batch_size=cfg.eval_batch_size,
                            in_chans=in_chans)
        rows.append(sums.row(cfg, ev, train_time))
        write_metrics(run_dir, rows)
        reporter.end_epoch(rows[-1])

    step_net.close()
    torch_model.load_state_dict(state_to_torch(net.state_dict()))
    return finish_run(run_dir, cfg, torch_model, model_args, train_set.classes, ev, rows,
                      reporter, input_size=preset.input_side or train_set.shape[-1])


def _seeded_nets(name: str, model_args: dict[str, Any]) -> tuple[Module, nn.Module]:
    """The NumPy network and the torch model it starts from: the torch engine's initial weights
    (torch is seeded by fit()), copied into the NumPy one (the same state-dict keys)."""
    net = scratch_model(name, model_args)
    torch_model = create_model(name, **model_args)
    net.load_state_dict(state_to_numpy(torch_model.state_dict()))
    log.info("numpy engine: %s on the CPU, %d parameters", name,
             sum(p.value.size for p in net.parameters()))
    return net, torch_model
