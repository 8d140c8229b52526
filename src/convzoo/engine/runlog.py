"""The run directory's metric files: ``metrics.csv``, ``metrics.jsonl`` and TensorBoard events.

The CSV and JSONL files are rewritten whole (atomically) after every epoch from the rows held in
memory and in checkpoints, so a resumed run's files are exactly an uninterrupted run's.
TensorBoard event files (``RUN_DIR/tensorboard/``) are written when ``tensorboard`` is
installed (the optional extra ``convzoo[tensorboard]``).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ..errors import ConvzooError

log = logging.getLogger(__name__)

METRICS_CSV = "metrics.csv"  # read and written here, through RunDir (rundir.py)
METRICS_JSONL = "metrics.jsonl"

METRIC_FIELDS = [
    "epoch",
    "epochs",
    "step",
    "lr",
    "train_loss",
    "train_acc",
    "train_eval_loss",
    "train_eval_acc",
    "val_loss",
    "val_top1_acc",
    "val_top5_acc",
    "test_loss",
    "test_top1_acc",
    "test_top5_acc",
    "test_top1_err",
    "test_top5_err",
    "images_per_s",
    "epoch_time_s",
    "elapsed_s",
]
TIMING_FIELDS = ("images_per_s", "epoch_time_s", "elapsed_s")  # differ between identical runs


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """``metrics.csv`` and ``metrics.jsonl``, one row per epoch."""

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    atomic_write(run_dir / METRICS_CSV, write_csv)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    atomic_write(run_dir / METRICS_JSONL, lambda tmp: Path(tmp).write_text(text))


def read_metrics(run_dir: Path) -> list[dict[str, float | None]]:
    """The rows of a run's metrics.csv (one per epoch) as floats (None where empty); [] when
    the run has none."""
    path = run_dir / METRICS_CSV
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for i, r in enumerate(rows, start=2):  # line 1 is the header
        row = {}
        for k, v in r.items():
            try:
                row[k] = float(v) if v not in ("", None) else None
            except (TypeError, ValueError):  # text, or a line with more fields than the header
                raise ConvzooError(f"{path}: line {i}, column {str(k)[:40]!r} holds "
                                   f"{str(v)[:40]!r}, expected a number") from None
        out.append(row)
    return out


class TensorBoard:
    """Scalars per epoch under ``RUN_DIR/tensorboard``; a no-op when tensorboard is missing.
    The event file is made at the first epoch's row, in the folder ``run_dir()`` names then (an
    --overwrite run has replaced the old one by then), so a run that trains nothing makes none."""

    def __init__(self, run_dir: Callable[[], Path], enabled: bool) -> None:
        self.writer = None
        self.run_dir = run_dir
        self.enabled = enabled

    def _open(self):
        self.enabled = False  # one try
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            log.info("tensorboard is not installed; no event files")
            return None
        return SummaryWriter(log_dir=str(self.run_dir() / "tensorboard"))

    def epoch(self, row: dict[str, Any]) -> None:
        if self.writer is None and self.enabled:
            self.writer = self._open()
        if self.writer is None:
            return
        for key, value in row.items():
            if key not in ("epoch", "epochs", "step") and isinstance(value, (int, float)):
                group = key.split("_", 1)[0]
                self.writer.add_scalar(f"{group}/{key}", value, global_step=row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
