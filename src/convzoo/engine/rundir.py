"""The run directory: :class:`RunDir` is the one reader and writer of its files, whose names
live here only; and the rules that keep earlier work safe.

A run directory holds ``config.json`` (the effective config, with the world size, global batch
and the input size chosen with its reason), ``data.json`` (split sizes), ``classes.json``,
``preset.json``, ``metrics.csv`` and ``metrics.jsonl`` (one row per epoch), ``tensorboard/``
(when tensorboard is installed), ``checkpoints/`` (``ckpt-eEEEE-sSSSSSSSS.pt``: the latest K and
the best), ``best.safetensors`` (best held-out accuracy, with ``--holdout``),
``model.safetensors`` (final weights, the EMA weights with ``--ema``; model name, arguments,
class names and input size in the metadata), ``final.json`` (test top-1/top-5 accuracy and
error as fractions), ``skipped.json`` (files left out as bad) and ``curves.png``.

The rules:

- ``--resume DIR`` writes into DIR wherever it is now (moved or copied): the folder comes from
  the checkpoint's location, never from the ``out`` saved in it.
- An ``--out`` that names an existing run (a folder holding ``config.json``, ``checkpoints/`` or
  ``model.safetensors``) is refused unless ``--overwrite``; then the new run trains in a hidden
  sibling folder (``.NAME.new-XXXX``) until its first checkpoint, and only then do its files
  replace the old run's (checkpoint rotation never keeps one of the old run). A new run that
  fails (diverges, a full disk, Ctrl-C) before that leaves the old run as it was.
- Nothing is written before every input is checked; a folder this command made is removed again
  when the command fails before it saved anything of value (a checkpoint, metrics or weights).
- A start removes the temporary files an interrupted write (kill -9) left behind.
- The training process holds a lock on the run directory (``.convzoo.lock``: an ``flock`` and
  the process id), so a second ``--resume`` of the run, or ``--out`` naming it, is refused while
  it trains; the kernel drops the lock when the process ends, however it ends.
- No other command writes into a run directory (:func:`refuse_output_in_run`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from glob import escape as glob_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .._io import read_json, remove_stale_tmp, write_json
from ..errors import ConvzooError
from ..weights import save_weights
from .checkpoint import list_checkpoints
from .runlog import METRICS_CSV, METRICS_JSONL, read_metrics, write_metrics

if TYPE_CHECKING:  # the data machinery loads when a preset is read (refuse_output_in_run: none)
    from ..data import DataPreset

# The files of a run directory (metrics.csv and metrics.jsonl: runlog.py, which writes them).
CONFIG = "config.json"  # the effective config
CLASSES = "classes.json"
PRESET = "preset.json"  # the DataPreset the run trained and evaluated with
DATA = "data.json"  # split sizes
SKIPPED = "skipped.json"  # files left out as bad
BEST = "best.safetensors"  # best held-out accuracy (--holdout)
WEIGHTS = "model.safetensors"  # the final weights
FINAL = "final.json"  # the test results
CURVES = "curves.png"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
RUN_FILES = (CONFIG, CLASSES, PRESET, DATA, SKIPPED, METRICS_CSV, METRICS_JSONL, BEST, WEIGHTS,
             FINAL, CURVES)
RUN_FOLDERS = (CHECKPOINTS, TENSORBOARD)
READ_BY_LOAD = (WEIGHTS, CONFIG, PRESET)  # what load_trained reads of a run
_OF_VALUE = (METRICS_JSONL, WEIGHTS, FINAL)  # besides checkpoints
# final.json keys that must be numbers when present (compare sums and sorts them)
_FINAL_NUMBERS = ("epochs", "top1_acc", "top5_acc", "train_time_s")
LOCK_NAME = ".convzoo.lock"  # held (flock) by the process training the run; holds its pid


@dataclass
class FitResult:
    run_dir: Path
    final: dict[str, Any]  # the contents of final.json
    model: torch.nn.Module

    def _repr_html_(self) -> str:
        """Jupyter's view: the test accuracy and error, the run directory and its curves."""
        import html

        from .._html import img_tag, pct, png_uri

        f = self.final
        text = (f"<p><b>{html.escape(str(f.get('model')))}</b> on {html.escape(str(f.get('data')))}"
                f": test top-1 accuracy <b>{pct(f.get('top1_acc'))}</b> (error "
                f"{pct(f.get('top1_err'))}), top-5 {pct(f.get('top5_acc'))}, on {f.get('n')} "
                f"images after {f.get('epochs')} epochs ({f.get('train_time_s')} s of training)"
                f"; run directory <code>{html.escape(str(self.run_dir))}</code></p>")
        curves = RunDir(self.run_dir).curves()
        if curves is not None:
            text += img_tag(png_uri(curves.read_bytes()), "training curves")
        return text


def default_run_dir(model: str, data: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{model}-{data}-{stamp}"


def is_run(path: Path) -> bool:
    """Whether ``path`` holds a training run (one that --out must not silently replace)."""
    return (
        (path / CONFIG).is_file()
        or (path / CHECKPOINTS).is_dir()
        or (path / WEIGHTS).is_file()
    )


def _holds_run_record(folder: Path) -> bool:
    """Whether ``folder`` is a training run by its record: config.json with another file a run
    writes, or checkpoints (a project folder holding some other tool's config.json is not)."""
    if list_checkpoints(folder / CHECKPOINTS):
        return True
    return (folder / CONFIG).is_file() and any(
        (folder / name).exists() for name in (*RUN_FILES, *RUN_FOLDERS) if name != CONFIG)


def run_holding(path: str | Path) -> Path | None:
    """The run directory that ``path`` is or lies inside (symbolic links followed), or None."""
    resolved = Path(path).expanduser().resolve()
    for folder in (resolved, *resolved.parents):
        if folder.is_dir() and _holds_run_record(folder):
            return folder
    return None


def refuse_output_in_run(path: str | Path, what: str) -> None:
    """Raise :class:`ConvzooError` when ``path`` (a file or folder a command is about to write;
    ``what`` names it: "--out", "--confusion", ...) is a run directory or lies inside one: only
    ``convzoo train`` on a run writes its files."""
    run = run_holding(path)
    if run is None:
        return
    where = "is the run directory" if Path(path).expanduser().resolve() == run else (
        "is inside the run directory")
    raise ConvzooError(f"{what} {path} {where} {run}; only `convzoo train` writes into a run: "
                       f"choose a path outside it")


class RunLock:
    """An exclusive ``flock`` on ``RUN/.convzoo.lock``, which holds the owner's pid. The kernel
    releases an flock when its process ends, however it ends, so a lock a killed process left is
    stale by itself. Where ``fcntl`` is missing (Windows) there is no lock."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, folder: Path, *, tries: int = 5) -> RunLock:
        """The lock of ``folder``; :class:`ConvzooError` naming the process that holds it."""
        try:
            import fcntl
        except ImportError:
            return cls(folder / LOCK_NAME, None)
        path = folder / LOCK_NAME
        for attempt in range(tries):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if attempt + 1 < tries:  # a probe (lock_holder) holds it for a moment
                    time.sleep(0.05)
                    continue
                raise ConvzooError(_in_use(folder, lock_holder(folder))) from None
            # The previous owner may have removed the file between our open and our lock.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(path, fd)
            os.close(fd)
        raise ConvzooError(_in_use(folder, None))

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)  # while still held: no one locks a file about to go
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def lock_holder(folder: Path) -> int | None:
    """The pid of the process that holds ``folder``'s run lock (0 when it cannot be read), or
    None when no process holds it. Creates nothing."""
    try:
        import fcntl

        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text.isdigit() else 0
    finally:
        os.close(fd)  # (drops the probe's own shared lock)
    return None


def _in_use(folder: Path, pid: int | None) -> str:
    who = f"process {pid}" if pid else "another process"
    return (f"run directory {folder} is in use: {who} is training it (lock {folder / LOCK_NAME}); "
            f"wait for it to end, or stop it, and try again")


class RunDir:
    """A run's folder: its one reader (``RunDir(path).config()``, ``.preset()``, ``.metrics()``,
    ``.final()``, ``.weights()``) and writer. Every process of a training run holds one; only
    the writing process (rank 0, ``writer=True``) writes."""

    def __init__(self, path: str | Path, *, writer: bool = False, resuming: bool = False) -> None:
        path = Path(path)
        self.target = path  # the run directory
        # Where the run's files are written now: the target, or (an --overwrite of a run) the
        # sibling folder the new run trains in until its first checkpoint (see keep).
        self.path = path
        self.writer = writer
        self.resuming = resuming  # the folder is the run being continued
        self.created = False  # this command made the folder
        self.lock: RunLock | None = None

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @classmethod
    def of_weights(cls, weights: str | Path) -> RunDir | None:
        """The run whose final weights ``weights`` are (the run's record travels with them:
        preset, data, input size), or None for a weights file of its own."""
        weights = Path(weights)
        if weights.name == WEIGHTS and (weights.parent / CONFIG).is_file():
            return cls(weights.parent)
        return None

    def weights(self) -> Path:
        """The run's final weights file; :class:`ConvzooError` when the run has none yet."""
        path = self.path / WEIGHTS
        if not path.is_file():
            raise ConvzooError(f"run directory {self.path} has no {WEIGHTS} (unfinished run?)")
        return path

    def config(self, *, required: bool = True) -> dict[str, Any]:
        """The run's effective config (config.json); {} when it has none and not ``required``.
        :class:`ConvzooError` when it is missing (``required``), damaged or not an object."""
        return self._json_object(CONFIG, "run config", "is not a JSON object", required=required)

    def preset(self) -> DataPreset | None:
        """The preset the run trained and evaluated with (preset.json); None for a run that did
        not record one. :class:`ConvzooError` (naming the file) when it is damaged."""
        from ..data import DataPreset

        path = self.path / PRESET
        if not path.is_file():
            return None
        try:
            return DataPreset.from_dict(read_json(path, what="run preset"))
        except ConvzooError as e:
            raise ConvzooError(f"{path}: {e}") from None

    def metrics(self) -> list[dict[str, float | None]]:
        """One row per epoch (metrics.csv) as floats, None where empty; [] when the run has
        none. :class:`ConvzooError` naming the line and column of a value that is no number."""
        return read_metrics(self.path)

    def final(self, *, required: bool = True) -> dict[str, Any]:
        """The run's test results (final.json); {} when it has none and not ``required``.
        :class:`ConvzooError` when it is missing (``required``: an unfinished run), damaged, not
        an object, or its epochs, accuracies or training time are not numbers."""
        path = self.path / FINAL
        final = self._json_object(FINAL, "run results", "must hold a JSON object",
                                  required=required, missing=" (unfinished run?)")
        for key in _FINAL_NUMBERS:
            value = final.get(key)
            if value is not None and (not isinstance(value, (int, float))
                                      or isinstance(value, bool)):
                raise ConvzooError(f"run results {path}: {key!r} must be a number, got "
                                   f"{json.dumps(value)[:40]}")
        return final

    def _json_object(self, name: str, what: str, not_object: str, *, required: bool,
                     missing: str = "") -> dict[str, Any]:
        path = self.path / name
        if not path.is_file():
            if required:
                raise ConvzooError(f"run directory {self.path} has no {name}{missing}")
            return {}
        value = read_json(path, what=what)
        if not isinstance(value, dict):
            raise ConvzooError(f"{what} {path} {not_object}")
        return value

    def curves(self) -> Path | None:
        """The run's curves.png, or None when it has none."""
        path = self.path / CURVES
        return path if path.is_file() else None

    def problem(self, *, overwrite: bool) -> str | None:
        """Why this folder cannot take the run (checked before anything is written), or None."""
        if self.path.exists() and not self.path.is_dir():
            return f"--out {self.path} is a file, not a run directory"
        holder = run_holding(self.path.resolve().parent)
        if holder is not None:
            return (f"--out {self.path} is inside the run directory {holder}; only training "
                    f"that run writes into it: choose a folder outside it")
        pid = lock_holder(self.path)
        if pid is not None:
            return _in_use(self.path, pid)
        if self.resuming or overwrite or not is_run(self.path):
            return None
        return (
            f"--out {self.path} already holds a run; continue it with --resume {self.path}, "
            f"replace it with --overwrite, or choose another --out"
        )

    def create(self, *, overwrite: bool) -> None:
        """Make the folder (checked writable) and lock it; for an ``--overwrite`` of a run, make
        the sibling folder the new run trains in; remove the temporary files a killed write
        left."""
        if not self.writer:
            return
        existed = self.target.exists()
        try:
            self.target.mkdir(parents=True, exist_ok=True)
            self.created = not existed
            try:
                self.lock = RunLock.acquire(self.target)
            except ConvzooError:
                self.created = False  # another process made it at the same moment: its folder
                raise
            probe = self.target / ".write-test"
            probe.write_text("")
            probe.unlink()
            self._remove_stale_siblings()
            if overwrite and not self.resuming and is_run(self.target):
                self.path = Path(tempfile.mkdtemp(prefix=self._sibling_prefix,
                                                  dir=self.target.parent))
            elif overwrite and not self.resuming:
                _remove_run_files(self.target)
        except OSError as e:
            self.discard_if_empty()
            raise ConvzooError(f"cannot write run directory {self.target}: "
                               f"{_strerror(e)}") from None
        remove_stale_tmp(self.path)
        remove_stale_tmp(self.checkpoints)

    @property
    def _sibling_prefix(self) -> str:
        return f".{self.target.name}.new-"

    def _remove_stale_siblings(self) -> None:
        """The folders of --overwrite runs killed before their first checkpoint (this process
        holds the run's lock: no other process trains in them)."""
        for p in self.target.parent.glob(f"{glob_escape(self._sibling_prefix)}*"):
            if p.is_dir() and p != self.path:
                shutil.rmtree(p, ignore_errors=True)

    @property
    def replacing(self) -> bool:
        """Whether the files go to a sibling folder that has not yet replaced the old run."""
        return self.path != self.target

    def keep(self, checkpoint: Path) -> Path:
        """A checkpoint was written (``checkpoint``): an ``--overwrite`` run now has something
        of value, so its files replace the old run's. Returns where the checkpoint is now."""
        if not self.replacing:
            return checkpoint
        self._replace_old_run()
        return self.checkpoints / checkpoint.name

    def finish(self) -> None:
        """The run succeeded: its files replace the old run's (a run without checkpoints: the
        NumPy engine, --test-only)."""
        if self.replacing:
            self._replace_old_run()

    def _replace_old_run(self) -> None:
        _remove_run_files(self.target)
        for entry in self.path.iterdir():
            os.replace(entry, self.target / entry.name)
        self.path.rmdir()
        self.path = self.target

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def discard_if_empty(self) -> None:
        """After a failure: the sibling folder of an --overwrite run that never replaced the old
        one goes; the folder goes if this command made it and it holds nothing of value yet (no
        checkpoint, metrics or weights)."""
        if self.replacing:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = self.target
        valuable = list_checkpoints(self.checkpoints) or any(
            (self.path / name).exists() for name in _OF_VALUE
        )
        if self.created and not valuable:
            shutil.rmtree(self.path, ignore_errors=True)
            self.created = False

    def write_json(self, name: str, value: Any) -> None:
        if self.writer:
            write_json(self.path / name, value)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        if self.writer:
            write_metrics(self.path, rows)

    def save_weights(self, name: str, model: torch.nn.Module, *, model_name: str,
                     model_args: dict[str, Any], classes: list[str],
                     extra: dict[str, Any]) -> None:
        if self.writer:
            save_weights(self.path / name, model, model_name=model_name, model_args=model_args,
                         classes=classes, extra=extra)


def _remove_run_files(folder: Path) -> None:
    """The files a run writes (nothing else: a user's own files in the folder stay)."""
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        shutil.rmtree(folder / name, ignore_errors=True)


def _strerror(e: OSError) -> str:
    return "no space left on the device" if e.errno == errno.ENOSPC else str(e.strerror or e)


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
    input_size: int | None = None,
    preset: Any = None,
) -> FitResult:
    """Write the weights, final.json and curves.png of a finished run (either engine). The
    weights' metadata names the input size and the preset (DataPreset), so that a weights file
    copied out of its run still evaluates as the run did."""
    from .curves import plot_curves

    run_dir = Path(run_dir)
    date = datetime.now(timezone.utc).date().isoformat()
    meta: dict[str, Any] = {"data": cfg.data, "engine": cfg.engine, "top1_acc": ev.topk_acc[1],
                            "recipe": cfg.recipe or "", "date": date}
    if input_size is not None:
        meta["input_size"] = input_size
    if preset is not None:
        meta["preset"] = preset.to_dict()
    save_weights(run_dir / WEIGHTS, model, model_name=cfg.model,
                 model_args=model_args, classes=classes, extra=meta)
    final = {
        "model": cfg.model,
        "data": cfg.data,
        "recipe": cfg.recipe,
        "epochs": cfg.epochs,
        "steps": rows[-1].get("step") if rows else None,
        "train_time_s": round(sum(r["epoch_time_s"] for r in rows), 3),  # a clock: ms
        **(extra or {}),
        **ev.to_dict(),
    }
    write_json(run_dir / FINAL, final)
    plot_curves(rows, run_dir / CURVES, title=f"{cfg.model} on {cfg.data}")
    reporter.finish(
        f"test top-1 acc {ev.topk_acc[1]:.4f} (err {1 - ev.topk_acc[1]:.4f}), "
        f"top-5 acc {ev.topk_acc[5]:.4f} (err {1 - ev.topk_acc[5]:.4f}) on {ev.n} images\n"
        f"run directory: {run_dir}"
    )
    return FitResult(run_dir=run_dir, final=final, model=model)
