"""The training configuration: one frozen dataclass, every field with its unit."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConvzooError


@dataclass(frozen=True)
class TrainConfig:
    model: str  # registered model name, e.g. "lenet5"
    data: str = "mnist"  # data set name (convzoo.data.SOURCES)
    data_dir: str | None = None  # None: the embedded MNIST subset
    epochs: int = 12  # passes over the training split
    batch_size: int = 64  # images per SGD step
    lr: float = 0.05  # peak learning rate (per step, not scaled by batch size)
    momentum: float = 0.9  # SGD momentum (AlexNet §5)
    wd: float = 5e-4  # L2 weight decay (AlexNet §5)
    lr_scheduler: str = "cosine"  # "cosine" (to 0 over the run) or "step"
    lr_step_epochs: int = 10  # step schedule: epochs between ÷10 steps
    lr_gamma: float = 0.1  # step schedule: factor per step
    seed: int = 0  # seeds model initialisation and data order
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    out: str | None = None  # run directory; None: runs/<model>-<data>-<timestamp>
    num_classes: int | None = None  # None: the data's class count
    in_chans: int | None = None  # None: the data's channel count
    model_args: dict[str, Any] = field(default_factory=dict)  # extra builder arguments
    engine: str = "torch"  # "torch" or "numpy" (convzoo.scratch)
    eval_batch_size: int = 500  # images per evaluation batch
    conv: str = "native"  # "native" (nn.Conv2d) or "gemm" (convzoo.gemm: im2col + matmul)

    def validate(self) -> "TrainConfig":
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (self.wd >= 0, f"--wd must be >= 0, got {self.wd}"),
            (self.lr_scheduler in ("cosine", "step"),
             f"--lr-scheduler must be 'cosine' or 'step', got {self.lr_scheduler!r}"),
            (self.engine in ("torch", "numpy"),
             f"--engine must be 'torch' or 'numpy', got {self.engine!r}"),
            (self.conv in ("native", "gemm"),
             f"--conv must be 'native' or 'gemm', got {self.conv!r}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConvzooError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConvzooError(f"unknown config keys {unknown}; expected some of {sorted(names)}")
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
        return values
