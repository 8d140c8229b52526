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
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from ..errors import ConvzooError, first_line

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
    atomic_write(path, lambda tmp: _torch_save({"format": FORMAT, **state}, tmp))
    existing = list_checkpoints(folder)
    for old in existing[:-keep]:
        if protect is None or old.resolve() != protect.resolve():
            old.unlink(missing_ok=True)
    log.debug("checkpoint %s", path)
    return path


def _torch_save(obj: Any, tmp: str) -> None:
    """``torch.save`` through a Python file, so that a write the file system refuses (a full
    disk) raises its OSError: torch's own writer turns it into a RuntimeError ("unexpected
    pos")."""
    refused: list[OSError] = []
    with open(tmp, "wb") as f:
        def write(data) -> int:
            try:
                return f.write(data)
            except OSError as e:
                refused.append(e)
                raise

        try:
            torch.save(obj, SimpleNamespace(write=write, flush=f.flush))
        except RuntimeError:
            if refused:
                raise refused[0] from None
            raise


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
    """A checkpoint's contents, each checked for the type and range the trainer writes: a
    damaged or foreign file is one :class:`ConvzooError` naming it and the key."""
    from ..weights import torch_load_problem

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise ConvzooError(f"cannot read checkpoint {path}: {torch_load_problem(path, e)}"
                           ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConvzooError(f"{path} is not a convzoo training checkpoint ({FORMAT})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ConvzooError(f"checkpoint {path} lacks {', '.join(missing)} (damaged, or not "
                           f"written by convzoo's trainer)")
    _check_contents(state, path)
    return state


# What resuming reads from every checkpoint (TrainState.from_checkpoint, resume_conflicts).
REQUIRED_KEYS = ("config", "model", "optimizer", "schedule", "scaler", "ema", "rng", "epoch",
                 "batch", "step", "running", "rows", "best", "world_size")


def _int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _opt_num(v: Any) -> bool:
    return v is None or _num(v)


def _dict(v: Any) -> bool:
    return isinstance(v, dict)


def _check_contents(blob: dict[str, Any], path: Path) -> None:
    """Every value resuming reads, in the type the trainer writes it."""
    from ..weights import check_state_dict

    def need(ok: bool, key: str, expected: str, value: Any) -> None:
        if not ok:
            got = f"{type(value).__name__} {value!r:.40}"
            raise ConvzooError(f"checkpoint {path}: {key} must be {expected}, got {got} "
                               f"(damaged, or not written by convzoo's trainer)")

    for key, low in (("epoch", 1), ("batch", 0), ("step", 0), ("world_size", 1)):
        need(_int(blob[key], low), key, f"an integer >= {low}", blob[key])
    need(_dict(blob["config"]), "config", "a dict", blob["config"])
    need(_dict(blob.get("run", {})), "run", "a dict", blob.get("run"))
    for key in ("model", "ema"):
        if key == "model" or blob[key] is not None:
            need(_dict(blob[key]), key, "a state dict", blob[key])
            check_state_dict(f"checkpoint {path}: {key}", blob[key])
    opt = blob["optimizer"]
    need(_dict(opt) and _dict(opt.get("state")) and isinstance(opt.get("param_groups"), list)
         and all(_dict(g) for g in opt["param_groups"]), "optimizer",
         "an optimizer state dict", opt)
    need(blob["scaler"] is None or _dict(blob["scaler"]), "scaler", "a dict or None",
         blob["scaler"])
    sched = blob["schedule"]
    need(_dict(sched) and _num(sched.get("factor")) and _opt_num(sched.get("best"))
         and _int(sched.get("bad_epochs")) and _int(sched.get("drops")), "schedule",
         "a dict of factor, best, bad_epochs and drops", sched)
    run = blob["running"]
    need(_dict(run) and _sums(run) and _num(run.get("train_time")) and _num(run.get("elapsed"))
         and _opt_num(run.get("epoch_lr")), "running",
         "a dict of loss_sum, correct, seen, train_time, elapsed and epoch_lr", run)
    every = run.get("per_process", [run])
    need(isinstance(every, list) and all(_dict(r) and _sums(r) for r in every),
         "running.per_process", "a list of running sums", every)
    need(isinstance(blob["rows"], list) and all(_dict(r) for r in blob["rows"]), "rows",
         "a list of metric rows", blob["rows"])
    best = blob["best"]
    need(_dict(best) and _opt_num(best.get("acc"))
         and isinstance(best.get("checkpoint"), (str, type(None))), "best",
         "a dict of acc and checkpoint", best)
    need(blob.get("unevaluated") is None or _dict(blob["unevaluated"]), "unevaluated",
         "a dict or None", blob.get("unevaluated"))
    need(isinstance(blob.get("target_reached", False), bool), "target_reached", "true or false",
         blob.get("target_reached"))
    rngs = blob["rng"]
    need(isinstance(rngs, list) and len(rngs) > 0 and all(_dict(r) for r in rngs), "rng",
         "a list of one RNG state per process", rngs)
    for i, rng in enumerate(rngs):
        try:  # applied to throwaway generators: exactly the checks the real ones make
            _try_rng_state(rng, order=i == 0)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError,
                OverflowError) as e:
            raise ConvzooError(f"checkpoint {path}: the RNG state of process {i} is damaged "
                               f"({type(e).__name__}: {first_line(e, 120)})") from None


def _sums(r: dict[str, Any]) -> bool:
    return _num(r.get("loss_sum")) and _int(r.get("correct")) and _int(r.get("seen"))


def _try_rng_state(state: dict[str, Any], *, order: bool) -> None:
    """Set every RNG state of one process on fresh generators (raises what the real ones
    would)."""
    torch.Generator().set_state(state["torch"])
    if state["aug"] is not None:
        torch.Generator().set_state(state["aug"])
    if order:
        torch.Generator().set_state(state["order"])
    if not isinstance(state["cuda"], list):
        raise TypeError(f"cuda: expected a list, got {type(state['cuda']).__name__}")
    n = state["numpy"]
    np.random.RandomState().set_state(
        (n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    py = state["python"]
    random.Random().setstate((py[0], tuple(py[1]), py[2]))
