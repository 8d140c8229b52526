"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is ``RUN_DIR/checkpoints/ckpt-eEEEE-sSSSSSSSS.pt`` (epoch, optimizer step), a
``torch.save`` dict of tensors and plain values (loadable with ``weights_only=True``): model,
optimizer, lr-schedule, GradScaler and EMA states, the RNG states of every process (torch, CUDA,
NumPy, Python, and the augmentation generator of the data loader), the position in the epoch
(batches done; the epoch's data order is a pure function of seed and epoch), the running sums of
the epoch's training metrics and the metric rows so far. It is written atomically (temporary
file, fsync, rename), so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from ..errors import ConvzooError

log = logging.getLogger(__name__)

FORMAT = "convzoo-checkpoint-1"
_NAME = re.compile(r"^ckpt-e(\d+)-s(\d+)\.pt$")


def checkpoint_name(epoch: int, step: int) -> str:
    return f"ckpt-e{epoch:04d}-s{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest first (by optimizer step, then epoch)."""
    if not folder.is_dir():
        return []
    found = [(int(m[2]), int(m[1]), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, _, p in sorted(found)]


def rng_state(aug_generator: torch.Generator | None) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": np_state[0],
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
            "state": torch.from_numpy(np_state[1].astype(np.int64)),
        },
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "aug": aug_generator.get_state() if aug_generator is not None else None,
    }


def set_rng_state(state: dict[str, Any], aug_generator: torch.Generator | None) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        (n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if aug_generator is not None and state["aug"] is not None:
        aug_generator.set_state(state["aug"])


def save_checkpoint(
    folder: Path, state: dict[str, Any], *, keep: int, protect: Path | None = None
) -> Path:
    """Write ``state`` atomically as the checkpoint of its epoch and step; keep the latest
    ``keep`` checkpoints (and ``protect``, the best one) and delete older ones."""
    path = folder / checkpoint_name(state["epoch"], state["step"])
    atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **state}, tmp))
    existing = list_checkpoints(folder)
    for old in existing[:-keep]:
        if protect is None or old.resolve() != protect.resolve():
            old.unlink(missing_ok=True)
    log.debug("checkpoint %s", path)
    return path


def resolve_resume(source: str | Path) -> Path:
    """The checkpoint file ``--resume`` means: a file, or the latest in a run directory."""
    source = Path(source)
    if source.is_file():
        return source
    if source.is_dir():
        folder = source / "checkpoints" if (source / "checkpoints").is_dir() else source
        found = list_checkpoints(folder)
        if found:
            return found[-1]
        raise ConvzooError(f"--resume {source}: no checkpoints (ckpt-*.pt) in {folder}")
    raise ConvzooError(f"--resume {source}: no such run directory or checkpoint file")


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise ConvzooError(f"cannot read checkpoint {path}: {e}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConvzooError(f"{path} is not a convzoo training checkpoint ({FORMAT})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ConvzooError(f"checkpoint {path} lacks {', '.join(missing)} (damaged, or not "
                           f"written by convzoo's trainer)")
    return state


# What resuming reads from every checkpoint (TrainState.from_checkpoint, resume_conflicts).
REQUIRED_KEYS = ("model", "optimizer", "schedule", "scaler", "ema", "rng", "epoch", "batch",
                 "step", "running", "rows", "best", "world_size")
