"""The training configuration: one frozen dataclass, every field with its unit.

CLI flags map onto these fields (named as in torchvision's reference scripts where one exists);
a recipe (:mod:`convzoo.engine.recipes`) is a set of values for them; a run writes the effective
config to ``config.json``, and ``convzoo train --config RUN/config.json`` re-runs it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConvzooError

SCHEDULERS = ("cosine", "step", "multistep", "plateau", "onecycle", "exponential", "constant")
OPTIMIZERS = ("sgd", "rmsprop", "adamw")
AMP_MODES = ("none", "bf16", "fp16")

# Keys a run adds to config.json for the record (derived, not settable); reading a saved
# config.json back drops them.
DERIVED_KEYS = ("world_size", "global_batch_size", "recipe_source", "convzoo_version")


@dataclass(frozen=True)
class TrainConfig:
    model: str  # registered model name, e.g. "lenet5"
    data: str = "mnist"  # data set name (convzoo.data.SOURCES)
    data_dir: str | None = None  # None: the embedded MNIST subset
    recipe: str | None = None  # name of the recipe the values came from (a label only)
    epochs: int = 12  # passes over the training split
    max_steps: int | None = None  # stop after this many optimizer steps (ResNet §4.2: 64k)
    batch_size: int = 64  # images per step *per process* (global = batch_size x world size)
    accum_steps: int = 1  # micro-batches whose gradients are summed into one optimizer step
    optimizer: str = "sgd"  # sgd | rmsprop | adamw
    lr: float = 0.05  # peak learning rate (per step, not scaled by batch size)
    momentum: float = 0.9  # SGD / RMSProp momentum (AlexNet §5)
    nesterov: bool = False  # SGD with Nesterov momentum (DenseNet §4)
    wd: float = 5e-4  # L2 weight decay (AlexNet §5); decoupled for AdamW
    rmsprop_alpha: float = 0.9  # RMSProp decay of the squared-gradient average (Inception v3 §8)
    opt_eps: float | None = None  # optimizer epsilon; None: 1.0 for RMSProp (Inception v3 §8),
    #                               1e-8 for AdamW
    lr_scheduler: str = "cosine"  # cosine | step | multistep | plateau | onecycle | exponential |
    #                               constant
    lr_step_epochs: int = 10  # step: epochs between multiplications by lr_gamma
    lr_gamma: float = 0.1  # step / multistep / plateau / exponential (per epoch): lr factor
    lr_milestones: tuple[int, ...] = ()  # multistep: where lr is multiplied by lr_gamma
    lr_milestone_unit: str = "epoch"  # "epoch" or "step" (optimizer steps, ResNet §4.2's 32k/48k)
    lr_min: float = 0.0  # cosine: the lr it decays to
    lr_warmup_epochs: float = 0.0  # linear warmup length (epochs, may be fractional)
    lr_warmup_decay: float = 0.01  # warmup starts at lr x this (torchvision's reference default)
    onecycle_pct: float = 0.25  # one-cycle: fraction of the run spent rising to lr
    plateau_patience: int = 3  # plateau: epochs without a better held-out error before a drop
    plateau_threshold: float = 1e-3  # plateau: an improvement smaller than this (absolute) is none
    plateau_max_drops: int | None = None  # plateau: stop dropping after this many (AlexNet: 3)
    label_smoothing: float = 0.0  # cross-entropy label smoothing (Inception v3 §7: 0.1)
    clip_grad_norm: float | None = None  # clip the global gradient L2 norm (Inception v3 §8: 2.0)
    aux_loss_weight: float = 0.3  # weight of each auxiliary classifier's loss (GoogLeNet §5: 0.3)
    ema: bool = False  # keep an exponential moving average of the weights; saved as the model
    ema_decay: float = 0.9998  # EMA decay per update
    ema_steps: int = 1  # optimizer steps between EMA updates
    amp: str = "none"  # none | bf16 (autocast, CPU or CUDA) | fp16 (autocast + GradScaler, CUDA)
    channels_last: bool = False  # NHWC memory format for model and inputs
    compile: bool = False  # torch.compile the model
    deterministic: bool = False  # deterministic kernels: runs repeat (and resume) bit for bit
    weights: str | None = None  # initial weights: a file or a shipped tag (fine-tuning)
    reset_head: bool = False  # with weights: leave the classifier freshly initialised
    freeze_backbone: bool = False  # train only the classifier
    sync_bn: bool = False  # DDP: batch-norm statistics over all processes (SyncBatchNorm)
    holdout: float = 0.0  # fraction of the training split held out for validation (0: none)
    on_bad_file: str = "error"  # error | skip: an unreadable image file
    train_split: str | None = None  # folder data: training sub-folder (None: "train")
    val_split: str | None = None  # folder data: test sub-folder (None: "val")
    checkpoint_every_steps: int | None = None  # also checkpoint every N optimizer steps
    keep_checkpoints: int = 2  # how many of the latest checkpoints to keep (the best is kept too)
    resume: str | None = None  # run directory or checkpoint file to continue from
    test_only: bool = False  # only evaluate the (given or resumed) weights on the test split
    tensorboard: bool = True  # write TensorBoard event files when tensorboard is installed
    seed: int = 0  # seeds model initialisation, data order and augmentation
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    out: str | None = None  # run directory; None: runs/<model>-<data>-<timestamp>
    overwrite: bool = False  # allow --out to name an existing run directory (its files are replaced)
    input_size: int | None = None  # pixels, the side the model sees; None: chosen from the model,
    #                                the images and the weights (convzoo.data.resolve_input_size)
    num_classes: int | None = None  # None: the data's class count
    in_chans: int | None = None  # None: the data's channel count
    model_args: dict[str, Any] = field(default_factory=dict)  # extra builder arguments
    engine: str = "torch"  # "torch" or "numpy" (convzoo.scratch)
    eval_batch_size: int = 500  # images per evaluation batch
    conv: str = "native"  # "native" (nn.Conv2d) or "gemm" (convzoo.gemm: im2col + matmul)

    def validate(self) -> TrainConfig:
        def pos(v: float | None) -> bool:
            return v is None or v > 0

        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (
                self.max_steps is None or self.max_steps >= 1,
                f"--max-steps must be >= 1, got {self.max_steps}",
            ),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.accum_steps >= 1, f"--accum-steps must be >= 1, got {self.accum_steps}"),
            (
                self.optimizer in OPTIMIZERS,
                f"--opt must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
            ),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (
                not self.nesterov or (self.optimizer == "sgd" and self.momentum > 0),
                "--nesterov needs --opt sgd and --momentum > 0",
            ),
            (self.wd >= 0, f"--wd must be >= 0, got {self.wd}"),
            (
                0 < self.rmsprop_alpha < 1,
                f"rmsprop_alpha must be in (0, 1), got {self.rmsprop_alpha}",
            ),
            (pos(self.opt_eps), f"--opt-eps must be > 0, got {self.opt_eps}"),
            (
                self.lr_scheduler in SCHEDULERS,
                f"--lr-scheduler must be one of {', '.join(SCHEDULERS)}, got {self.lr_scheduler!r}",
            ),
            (self.lr_step_epochs >= 1, f"--lr-step-size must be >= 1, got {self.lr_step_epochs}"),
            (0 < self.lr_gamma <= 1, f"--lr-gamma must be in (0, 1], got {self.lr_gamma}"),
            (
                self.lr_milestone_unit in ("epoch", "step"),
                f"lr_milestone_unit must be 'epoch' or 'step', got {self.lr_milestone_unit!r}",
            ),
            (
                list(self.lr_milestones) == sorted(self.lr_milestones),
                f"--lr-milestones must be increasing, got {list(self.lr_milestones)}",
            ),
            (
                self.lr_scheduler != "multistep" or len(self.lr_milestones) > 0,
                "--lr-scheduler multistep needs --lr-milestones",
            ),
            (0 <= self.lr_min < self.lr, f"--lr-min must be in [0, lr), got {self.lr_min}"),
            (
                self.lr_warmup_epochs >= 0,
                f"--lr-warmup-epochs must be >= 0, got {self.lr_warmup_epochs}",
            ),
            (
                0 < self.lr_warmup_decay <= 1,
                f"--lr-warmup-decay must be in (0, 1], got {self.lr_warmup_decay}",
            ),
            (0 < self.onecycle_pct < 1, f"onecycle_pct must be in (0, 1), got {self.onecycle_pct}"),
            (self.plateau_patience >= 0, "plateau_patience must be >= 0"),
            (
                self.lr_scheduler != "plateau" or self.holdout > 0,
                "--lr-scheduler plateau watches the held-out validation error (never the test "
                "split): pass --holdout FRACTION, e.g. --holdout 0.05",
            ),
            (
                0 <= self.label_smoothing < 1,
                f"--label-smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (pos(self.clip_grad_norm), f"--clip-grad-norm must be > 0, got {self.clip_grad_norm}"),
            (
                self.aux_loss_weight >= 0,
                f"--aux-loss-weight must be >= 0, got {self.aux_loss_weight}",
            ),
            (0 < self.ema_decay < 1, f"--ema-decay must be in (0, 1), got {self.ema_decay}"),
            (self.ema_steps >= 1, f"--ema-steps must be >= 1, got {self.ema_steps}"),
            (
                self.amp in AMP_MODES,
                f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}",
            ),
            (not self.reset_head or self.weights is not None, "--reset-head needs --weights"),
            (0 <= self.holdout < 1, f"--holdout must be in [0, 1), got {self.holdout}"),
            (
                self.on_bad_file in ("error", "skip"),
                f"--on-bad-file must be 'error' or 'skip', got {self.on_bad_file!r}",
            ),
            (
                self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1,
                f"--checkpoint-every-steps must be >= 1, got {self.checkpoint_every_steps}",
            ),
            (
                self.keep_checkpoints >= 1,
                f"--keep-checkpoints must be >= 1, got {self.keep_checkpoints}",
            ),
            (
                self.engine in ("torch", "numpy"),
                f"--engine must be 'torch' or 'numpy', got {self.engine!r}",
            ),
            (
                self.conv in ("native", "gemm"),
                f"--conv must be 'native' or 'gemm', got {self.conv!r}",
            ),
            (
                self.input_size is None or self.input_size >= 1,
                f"--input-size must be >= 1 pixel, got {self.input_size}",
            ),
            (
                self.eval_batch_size >= 1,
                f"eval_batch_size must be >= 1, got {self.eval_batch_size}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConvzooError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["lr_milestones"] = list(self.lr_milestones)
        return values

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = {k: v for k, v in values.items() if k not in DERIVED_KEYS}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConvzooError(f"unknown config keys {unknown}; expected some of {sorted(names)}")
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        if "model" not in values:
            raise ConvzooError("the config names no model")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> dict[str, Any]:
        """The values saved in a run's ``config.json`` (a file or the run directory)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            values = json.loads(path.read_text())
        except OSError as e:
            raise ConvzooError(f"cannot read config {path}: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise ConvzooError(f"config {path} is not valid JSON: {e}") from None
        if not isinstance(values, dict):
            raise ConvzooError(f"config {path} must hold a JSON object")
        return {k: v for k, v in values.items() if k not in DERIVED_KEYS}
