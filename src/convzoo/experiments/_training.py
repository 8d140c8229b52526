"""The experiments' training layer: :class:`Context` (what an experiment's ``run`` gets) and its
:meth:`Context.train`, which trains one configuration through :func:`convzoo.fit` into an ordinary
run directory and records its per-step curve (:class:`StepRecorder`) as a :class:`TrainRecord`.

Trainings are cached: a finished run directory of the same configuration is reused, an
interrupted one resumed from its checkpoint with the curve recorded before the interruption.
Whether a saved run is this configuration's is the engine's decision
(:func:`~convzoo.engine.state.config_differences`, :func:`~convzoo.engine.state.resume_conflicts`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ..data import DataSource
from ..errors import ConvzooError, TrainingDiverged
from ._registry import Experiment

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class TrainRecord:
    """One training run: its epoch rows (metrics.jsonl), per-step curve and final numbers."""

    arm: str
    seed: int
    run_dir: Path
    rows: list[dict[str, Any]]
    steps: list[int]  # optimizer step after which each per-step value was taken (1-based)
    step_loss: list[float]  # mini-batch loss
    step_err: list[float]  # mini-batch top-1 training error, fraction
    final: dict[str, Any]
    wall_s: float
    diverged: str | None = None  # the engine's message when the loss became non-finite

    @property
    def test_err(self) -> float | None:
        return None if self.diverged else self.final.get("top1_err")


@dataclass
class Context:
    """What an experiment's ``run`` gets: profile, seeds, device, where to write, progress."""

    experiment: Experiment
    profile: str
    seeds: list[int]
    device: str
    out: Path  # pages, plots, tables
    runs: Path  # run directories: runs/NAME/ARM-sSEED
    data_dir: str | None
    mnist_dir: str | None
    progress: Progress
    rerun: bool = False  # retrain even where a finished run directory with the same config exists
    command: str = ""  # the command that runs this experiment again (and resumes it)
    notes: list[str] = field(default_factory=list)
    train_seconds: float = 0.0  # wall time of every training run used, reused ones included
    # This run's own data sources (subsets, no augmentation) by name: TrainConfig.data names one
    # of these or a registered data set.
    sources: dict[str, DataSource] = field(default_factory=dict)

    @property
    def plot_path(self) -> Path:
        return self.out / f"{self.experiment.name}.png"

    def say(self, message: str) -> None:
        log.info(message)
        self.progress(message)

    def use_source(self, source: DataSource) -> str:
        """Keep ``source`` for this run's trainings; its name, for ``TrainConfig.data``."""
        self.sources[source.name] = source
        return source.name

    def test_split(self, data: str, data_dir: str | None, split: str = "test") -> Any:
        """A split of data set ``data``: one of :attr:`sources`, or a registered name."""
        from ..data import load_dataset

        if data in self.sources:
            return self.sources[data].load(split)
        return load_dataset(data, data_dir, split)

    def train(self, cfg: Any, *, arm: str, seed: int) -> TrainRecord:
        """``convzoo.fit`` one configuration into ``runs/ARM-sSEED`` and record its curves.

        A finished run directory of the same configuration is reused (``rerun`` retrains); an
        interrupted one (Ctrl-C, SIGTERM: the engine checkpoints and stops) is resumed from its
        checkpoint, with the per-step curve recorded before the interruption. A run whose loss
        becomes non-finite is recorded with ``diverged`` set, not raised: diverging is a result
        (Ioffe & Szegedy 2015, §4.2.1: without BN, high learning rates diverge).
        """
        from ..engine import fit
        from ..engine.epoch import TrainingInterrupted

        run_dir = self.runs / f"{arm}-s{seed}"
        cfg = cfg.replace(seed=seed, device=self.device, out=str(run_dir), tensorboard=False,
                          overwrite=True,  # retraining replaces the arm's earlier run
                          keep_checkpoints=max(cfg.keep_checkpoints, 1))
        cached = None if self.rerun else _load_record(run_dir, cfg, arm, seed)
        if cached is not None:
            self.say(f"  {arm} seed {seed}: reusing {run_dir}")
            self.train_seconds += cached.wall_s
            return cached
        recorder, done_wall = StepRecorder(), 0.0
        resume = None if self.rerun else _resumable(run_dir, cfg)
        if resume is not None:
            step, done_wall = _load_partial(run_dir, cfg, recorder, resume)
            self.say(f"  {arm} seed {seed}: resuming {run_dir} from step {step}")
        else:
            self.say(f"  {arm} seed {seed}: training {cfg.model} -> {run_dir}")
        t0 = time.perf_counter()
        diverged = None
        final: dict[str, Any] = {}
        try:
            result = fit(cfg if resume is None else cfg.replace(resume=str(resume)), recorder,
                         source=self.sources.get(cfg.data))
            final = result.final
        except TrainingDiverged as e:
            diverged = str(e)
            self.say(f"  {arm} seed {seed}: diverged ({e})")
        except KeyboardInterrupt:  # a second Ctrl-C: no checkpoint now, maybe an earlier one
            _save_partial(run_dir, cfg, recorder, done_wall + time.perf_counter() - t0)
            raise
        except TrainingInterrupted as e:
            _save_partial(run_dir, cfg, recorder, done_wall + time.perf_counter() - t0)
            what = str(e).split("; continue with:")[0]
            again = f"`{self.command}`" if self.command else "the same command"
            raise TrainingInterrupted(
                f"experiment {self.experiment.name}, {arm} seed {seed}: {what}; run {again} "
                f"again to resume where it stopped (finished runs are reused)", e.signum
            ) from None
        wall = done_wall + time.perf_counter() - t0
        rows = _read_rows(run_dir, cfg)
        rec = TrainRecord(arm, seed, run_dir, rows, recorder.steps, recorder.loss, recorder.err,
                          final, wall, diverged)
        _save_record(rec, cfg)
        (run_dir / _PARTIAL_FILE).unlink(missing_ok=True)
        self.train_seconds += wall
        if not diverged:
            self.say(f"  {arm} seed {seed}: test error {100 * final['top1_err']:.2f}% "
                     f"in {wall:.0f} s")
        return rec


class StepRecorder:
    """A :class:`~convzoo.engine.progress.Reporter` that keeps one point per optimizer step: the
    step number, the mini-batch loss and the mini-batch top-1 error (from the engine's
    :class:`~convzoo.engine.progress.StepInfo`)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.err: list[float] = []

    def start(self, message: str) -> None:
        log.info(message)

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, info) -> None:
        self.steps.append(info.step)
        self.loss.append(info.loss)
        self.err.append(info.error)

    def end_epoch(self, row: dict[str, Any]) -> None:
        from ..engine.progress import format_epoch

        log.info(format_epoch(row))

    def finish(self, message: str) -> None:
        log.info(message)


def _saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The run's config (:meth:`RunDir.config`); None when it has none or it is damaged."""
    from ..engine.rundir import RunDir

    try:
        return RunDir(run_dir).config(required=False) or None
    except ConvzooError:
        return None


def _metric_rows(run_dir: Path) -> list[dict[str, Any]] | None:
    """The run's epoch rows as the engine wrote them (metrics.jsonl: ints stay ints, unlike
    :meth:`RunDir.metrics`' floats from metrics.csv); None when it has none."""
    from ..engine.runlog import METRICS_JSONL

    path = run_dir / METRICS_JSONL
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_rows(run_dir: Path, cfg: Any) -> list[dict[str, Any]]:
    """The run's metric rows; none when the folder holds another configuration's run (a new run
    that diverged before its first checkpoint leaves the run it was to replace as it was)."""
    config = _saved_config(run_dir)
    # config.json holds the resolved input size where the config may say None (the default).
    if not _same_config(config, cfg, also_ignore=("input_size",)):
        return []
    return _metric_rows(run_dir) or []


_STEPS_FILE = "experiment-steps.json"  # the per-step curve, written beside the engine's files


def _save_record(rec: TrainRecord, cfg: Any) -> None:
    blob = {"config": cfg.to_dict(), "steps": rec.steps, "loss": rec.step_loss,
            "err": rec.step_err, "final": rec.final, "wall_s": rec.wall_s,
            "diverged": rec.diverged}
    rec.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(rec.run_dir / _STEPS_FILE, lambda tmp: Path(tmp).write_text(json.dumps(blob)))


_PARTIAL_FILE = "experiment-steps.partial.json"  # the curve up to an interruption
_NOT_COMPARED = ("resume", "overwrite")  # differ between the first run and its resumption


def _same_config(saved: Any, cfg: Any, *, also_ignore: tuple[str, ...] = ()) -> bool:
    """Whether a run directory's recorded config is ``cfg``'s (to reuse or resume it), by the
    engine's comparison (:func:`~convzoo.engine.state.config_differences`: a field the saved
    config lacks counts as its default, so that adding an option does not retrain every
    finished run)."""
    from ..engine.state import config_differences

    return isinstance(saved, dict) and not config_differences(
        saved, cfg, ignore=(*_NOT_COMPARED, *also_ignore))


def _resumable(run_dir: Path, cfg: Any) -> Path | None:
    """The latest checkpoint of an unfinished run of this same configuration in ``run_dir``,
    one the engine's resume check (:func:`~convzoo.engine.state.resume_conflicts`) accepts."""
    from ..engine.checkpoint import list_checkpoints, load_checkpoint
    from ..engine.rundir import RunDir
    from ..engine.state import resume_conflicts

    folder = RunDir(run_dir).checkpoints
    found = list_checkpoints(folder) if folder.is_dir() else []
    if not found:
        return None
    try:
        blob = load_checkpoint(found[-1])
    except ConvzooError:
        return None
    if resume_conflicts(blob, cfg, world=1) or not _same_config(blob.get("config"), cfg):
        return None
    return found[-1]


def _save_partial(run_dir: Path, cfg: Any, recorder: StepRecorder, wall: float) -> None:
    blob = {"config": cfg.to_dict(), "steps": recorder.steps, "loss": recorder.loss,
            "err": recorder.err, "wall_s": wall}
    if run_dir.is_dir():
        atomic_write(run_dir / _PARTIAL_FILE, lambda tmp: Path(tmp).write_text(json.dumps(blob)))


def _load_partial(run_dir: Path, cfg: Any, recorder: StepRecorder, checkpoint: Path
                  ) -> tuple[int, float]:
    """Fill ``recorder`` with the per-step curve recorded before the interruption, up to the
    checkpoint's step; (that step, the wall time spent before)."""
    from ..engine.checkpoint import load_checkpoint

    step = int(load_checkpoint(checkpoint)["step"])
    path = run_dir / _PARTIAL_FILE
    try:
        blob = json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, OSError):
        blob = {}
    if _same_config(blob.get("config"), cfg):
        for s, loss, err in zip(blob["steps"], blob["loss"], blob["err"], strict=False):
            if s <= step:
                recorder.steps.append(s)
                recorder.loss.append(loss)
                recorder.err.append(err)
        return step, float(blob.get("wall_s", 0.0))
    return step, 0.0


def _load_record(run_dir: Path, cfg: Any, arm: str, seed: int) -> TrainRecord | None:
    path = run_dir / _STEPS_FILE
    if not path.is_file():
        return None
    try:
        blob = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if not _same_config(blob.get("config"), cfg):
        return None
    return TrainRecord(arm, seed, run_dir, _read_rows(run_dir, cfg), blob["steps"], blob["loss"],
                       blob["err"], blob["final"], blob["wall_s"], blob["diverged"])
