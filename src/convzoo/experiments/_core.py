"""The experiment registry and runner: seeds, run directories, per-step curves, output files.

An :class:`Experiment` is a paper's claim plus a function ``run(ctx, params) -> Outcome`` that
trains (through :func:`convzoo.fit`, so every run is an ordinary run directory) or measures what it
needs. The runner (:func:`run_experiment`) writes, into ``out``:

- ``NAME.png``: the plot;
- ``NAME.csv`` and ``NAME-table.md``: the table, mean ± sample std over seeds;
- ``NAME.json``: every per-seed number, the parameters, machine and wall time;
- ``NAME.md``: the page (claim with figure/table number, what was measured, whether it agrees);
- ``index.md``: every registered experiment, with its plot where one has been produced.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import platform
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ..data import DataSource
from ..errors import ConvzooError, TrainingDiverged
from .verdict import Verdict

log = logging.getLogger(__name__)

# smoke: a few steps on small subsets, to check that an experiment runs end to end; quick: at
# most 20 min on an idle 2-core CPU (each page's record, the README table); full: a GPU.
PROFILES = ("smoke", "quick", "full")
SMOKE_NOTE = ("Smoke profile: a few steps on small subsets, to check that the experiment runs "
              "end to end; its numbers do not test the claim (use --profile quick or full).")
Progress = Callable[[str], None]


# The rows of every page's side-by-side table: the paper's set-up and this run's.
SETUP_ROWS = ("architecture", "init", "optimiser", "lr", "batch", "data", "preprocessing",
              "schedule", "seeds")


@dataclass(frozen=True)
class PaperSetup:
    """The paper's column of the set-up table: one entry per :data:`SETUP_ROWS` row, and where
    it comes from (the paper's section, ../shared/REFERENCES.md)."""

    source: str
    rows: dict[str, str]


@dataclass(frozen=True)
class Experiment:
    name: str  # what `convzoo experiment NAME` takes
    title: str
    paper: str  # citation with the figure or table, e.g. "Krizhevsky et al. 2012, Fig. 1"
    claim: str  # the paper's claim, in one or two sentences
    run: Callable[[Context, Any], Outcome]
    profiles: dict[str, Any]  # "smoke" | "quick" | "full" -> a frozen params dataclass
    data: str  # what it needs: "mnist", "cifar10", "mnist+cifar10" or "none"
    default_seeds: dict[str, int] = field(default_factory=lambda: {"smoke": 1, "quick": 3,
                                                                    "full": 3})
    quick_note: str = ""  # how the quick profile departs from the paper, for the page
    paper_setup: PaperSetup | None = None  # the paper's column of the set-up table
    # (params, number of seeds) -> this run's column of the set-up table, rows as paper_setup's
    run_setup: Callable[[Any, int], dict[str, str]] | None = None


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
class Outcome:
    """What an experiment hands back to the runner."""

    columns: list[tuple[str, str]]  # (row key, column header) of the table, in order
    rows: list[dict[str, Any]]  # one per arm: formatted cells (str) under the column keys
    measured: str  # Markdown: what was measured here (numbers)
    verdict: Verdict  # from the experiment's judge(...): a word and one sentence why
    raw: dict[str, Any] = field(default_factory=dict)  # per-seed numbers for NAME.json
    notes: list[str] = field(default_factory=list)  # set-up departures from the paper


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


def _read_rows(run_dir: Path, cfg: Any) -> list[dict[str, Any]]:
    """The run's metric rows; none when the folder holds another configuration's run (a new run
    that diverged before its first checkpoint leaves the run it was to replace as it was)."""
    from ..engine.state import config_differences

    path = run_dir / "metrics.jsonl"
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = None
    # config.json holds the resolved input size where the config may say None (the default).
    if not path.is_file() or not isinstance(config, dict) or config_differences(
            config, cfg, ignore=(*_NOT_COMPARED, "input_size")):
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


_STEPS_FILE = "experiment-steps.json"  # the per-step curve, written beside the engine's files


def _save_record(rec: TrainRecord, cfg: Any) -> None:
    blob = {"config": cfg.to_dict(), "steps": rec.steps, "loss": rec.step_loss,
            "err": rec.step_err, "final": rec.final, "wall_s": rec.wall_s,
            "diverged": rec.diverged}
    rec.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(rec.run_dir / _STEPS_FILE, lambda tmp: Path(tmp).write_text(json.dumps(blob)))


_PARTIAL_FILE = "experiment-steps.partial.json"  # the curve up to an interruption
_NOT_COMPARED = ("resume", "overwrite")  # differ between the first run and its resumption


def _same_config(saved: Any, cfg: Any) -> bool:
    """Whether a run directory's recorded config is ``cfg``'s (to reuse or resume it). A field
    the saved config lacks (added to TrainConfig since) counts as its default, so that adding
    an option does not retrain every finished run."""
    from ..engine.state import config_differences

    return isinstance(saved, dict) and not config_differences(saved, cfg, ignore=_NOT_COMPARED)


def _resumable(run_dir: Path, cfg: Any) -> Path | None:
    """The latest checkpoint of an unfinished run of this same configuration in ``run_dir``."""
    from ..engine.checkpoint import list_checkpoints, load_checkpoint

    found = list_checkpoints(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else []
    if not found:
        return None
    try:
        blob = load_checkpoint(found[-1])
    except ConvzooError:
        return None
    return found[-1] if _same_config(blob.get("config"), cfg) else None


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


_EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(exp: Experiment) -> Experiment:
    if exp.name in _EXPERIMENTS:
        raise RuntimeError(f"experiment {exp.name!r} is registered twice")
    _EXPERIMENTS[exp.name] = exp
    return exp


def list_experiments() -> list[Experiment]:
    from ._all import ORDER  # importing registers every experiment

    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(_EXPERIMENTS.values(), key=lambda e: rank.get(e.name, len(rank)))


def get_experiment(name: str) -> Experiment:
    import difflib

    names = [e.name for e in list_experiments()]
    if name not in _EXPERIMENTS:
        close = difflib.get_close_matches(name, names, n=2, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConvzooError(f"unknown experiment {name!r}{hint}; expected one of "
                           f"{', '.join(names)} (see `convzoo experiment --list`)")
    return _EXPERIMENTS[name]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        hw = f"1x {torch.cuda.get_device_name(0)}"
    else:
        hw = f"{os.cpu_count()}-core {platform.machine()} CPU"
    return f"{hw}, torch {torch.__version__}"


def command_line(name: str, profile: str, seeds: int | None, out: Path | None = None,
                 data_dir: str | None = None, overrides: dict[str, Any] | None = None, *,
                 runs: str | os.PathLike | None = None) -> str:
    parts = ["convzoo", "experiment", name, "--profile", profile]
    if runs is not None:
        parts += ["--runs", str(runs)]
    if seeds is not None:
        parts += ["--seeds", str(seeds)]
    for key, value in (overrides or {}).items():
        parts += ["--set", f"{key}={json.dumps(value)}"]
    if data_dir:
        parts += ["--data-dir", data_dir]
    if out is not None:
        parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


def run_experiment(name: str, *, profile: str = "quick", seeds: int | None = None,
                   device: str = "auto", out: str | os.PathLike = "runs/experiments",
                   runs: str | os.PathLike | None = None, data_dir: str | None = None,
                   mnist_dir: str | None = None, rerun: bool = False, note: str | None = None,
                   progress: Progress | None = None, **overrides: Any) -> dict[str, Any]:
    """Run experiment ``name`` and write its page, plot and table into ``out``.

    ``seeds``: how many (seeds 0 … N-1; default: the profile's, 3 for quick). ``runs``: where the
    run directories go (default ``runs/experiments/NAME``). ``overrides`` replace fields of the
    profile's parameters (tests shrink a profile this way). ``note`` is added to the page (e.g.
    what else ran on the machine). Returns the NAME.json record.
    """
    exp = get_experiment(name)
    if profile not in exp.profiles:
        raise ConvzooError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    params = exp.profiles[profile]
    if overrides:
        known = set(asdict(params))
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConvzooError(f"experiment {name}: unknown parameter(s) {unknown} for --set; "
                               f"its parameters are {sorted(known)}")
        params = replace(params, **{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in overrides.items()})
    n_seeds = exp.default_seeds.get(profile, 3) if seeds is None else seeds
    if n_seeds < 1:
        raise ConvzooError(f"--seeds must be >= 1, got {n_seeds}")
    from ..engine.device import resolve_device

    dev = str(resolve_device(device))
    out_dir = Path(out)
    runs_dir = Path(runs) if runs is not None else Path("runs") / "experiments" / name
    _check_out(out_dir)  # made when the first file is written: a refused run leaves nothing
    from ..engine.rundir import refuse_output_in_run

    refuse_output_in_run(out_dir, "--out")  # pages never land in a run directory, nor runs
    refuse_output_in_run(runs_dir, "--runs")
    ctx = Context(exp, profile, list(range(n_seeds)), dev, out_dir, runs_dir, data_dir, mnist_dir,
                  progress or (lambda _m: None), rerun,
                  command=command_line(name, profile, seeds, out_dir, data_dir, overrides,
                                       runs=runs))
    ctx.say(f"experiment {name} ({profile} profile, {n_seeds} seed(s), {dev})")
    load0 = _load_average()
    t0 = time.perf_counter()
    outcome = exp.run(ctx, params)
    wall = time.perf_counter() - t0
    load = f"{load0} at the start, {_load_average()} at the end"
    record = {
        "experiment": name, "title": exp.title, "paper": exp.paper, "profile": profile,
        "seeds": n_seeds, "device": dev, "machine": machine(), "wall_s": wall,
        "train_wall_s": ctx.train_seconds,
        "date": datetime.now(timezone.utc).date().isoformat(),
        "command": command_line(name, profile, seeds, out_dir, data_dir, overrides),
        "params": asdict(params) if is_dataclass(params) else dict(params),
        "verdict": outcome.verdict.word, "verdict_reason": outcome.verdict.reason,
        "columns": outcome.columns, "rows": outcome.rows,
        "raw": outcome.raw, "load_average": load, "setup": setup_columns(exp, params, n_seeds),
        "notes": ([SMOKE_NOTE] if profile == "smoke" else []) + ([note] if note else [])
        + ctx.notes + outcome.notes,
    }
    write_outputs(exp, record, outcome, out_dir)
    ctx.say(f"experiment {name}: {outcome.verdict.word}; wrote {out_dir / (name + '.md')} in "
            f"{wall:.0f} s")
    return record


def _check_out(out: Path) -> None:
    """``--out`` can take the pages: a folder, or to be made in a writable one."""
    if out.exists() and not out.is_dir():
        raise ConvzooError(f"--out {out} is a file; expected a folder for the pages")
    place = out
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir() or not os.access(place, os.W_OK | os.X_OK):
        raise ConvzooError(f"--out {out}: cannot make or write the folder ({place} is not a "
                           "writable folder)")


def _load_average() -> str:
    """The 1-minute load average and the CPU count: timings on a shared machine need both."""
    try:
        return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def markdown_table(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(str(r.get(k, "")) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body]) + "\n"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_outputs(exp: Experiment, record: dict[str, Any], outcome: Outcome, out: Path) -> None:
    name = exp.name
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([h for _, h in outcome.columns])
    for r in outcome.rows:
        w.writerow([r.get(k, "") for k, _ in outcome.columns])
    _write_text(out / f"{name}.csv", buf.getvalue())
    table = markdown_table(outcome.columns, outcome.rows)
    _write_text(out / f"{name}-table.md", table)
    _write_text(out / f"{name}.json", json.dumps(record, indent=2, default=_json_default) + "\n")
    _write_text(out / f"{name}.md", render_page(exp, record, outcome, table))
    write_index(out)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def setup_columns(exp: Experiment, params: Any, n_seeds: int) -> dict[str, Any] | None:
    """{"source", "paper", "run"} of the set-up table (None for an experiment declaring none)."""
    if exp.paper_setup is None or exp.run_setup is None:
        return None
    return {"source": exp.paper_setup.source, "paper": dict(exp.paper_setup.rows),
            "run": exp.run_setup(params, n_seeds)}


def setup_table(setup: dict[str, Any]) -> str:
    """The page's side-by-side table, in :data:`SETUP_ROWS` order."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| | paper | this run |", "| --- | --- | --- |"]
    lines += [f"| {row} | {cell(setup['paper'].get(row, '–'))} | "
              f"{cell(setup['run'].get(row, '–'))} |" for row in SETUP_ROWS]
    return "\n".join(lines) + "\n"


def render_page(exp: Experiment, record: dict[str, Any], outcome: Outcome, table: str) -> str:
    notes = record["notes"]
    setup = record.get("setup")
    lines = [
        f"# {exp.title}",
        "",
        f"**The paper's claim** ({exp.paper}): {exp.claim}",
        "",
        f"**Verdict here: {outcome.verdict.word}.** "
        f"{_sentence(outcome.verdict.reason.rstrip('.'))}.",
        "",
        f"![{exp.name}]({exp.name}.png)",
        "",
        "## What was measured",
        "",
        outcome.measured.strip(),
        "",
        f"Table ({exp.name}.csv; mean ± sample standard deviation over {record['seeds']} "
        f"seed(s)):",
        "",
        table,
    ]
    if setup:
        lines += [f"## Set-up: the paper's and this run's ({record['profile']} profile)", "",
                  setup_table(setup), f"Paper column: {setup['source']}.", ""]
    lines += [
        "## How",
        "",
        f"- Command: `{record['command']}` ({record['profile']} profile; {_times(record)}, on "
        f"{record['machine']}, {record['date']}; load "
        f"average while this command ran: {record.get('load_average', 'not recorded')}).",
        f"- Parameters: `{json.dumps(record['params'], default=str)}`.",
        f"- Per-seed numbers: {exp.name}.json; run directories (config.json, metrics.csv, "
        "curves.png) under runs/experiments/ of the machine that ran it.",
    ]
    if exp.quick_note and record["profile"] != "full":
        lines.append(f"- Profile: {exp.quick_note}")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _times(record: dict[str, Any]) -> str:
    """The command's wall time and its training runs' time; runs reused from an earlier command
    (finished run folders) took their time then, not in this command's wall time."""
    wall, train = record["wall_s"] / 60, record.get("train_wall_s", 0) / 60
    if train > wall:
        return (f"wall time {wall:.1f} min, reusing finished training runs that had taken "
                f"{train:.1f} min")
    return f"wall time {wall:.1f} min, of which its training runs {train:.1f} min"


def _other_runs(out: Path) -> list[tuple[str, str, str]]:
    """(folder, page, summary) of sub-folders of ``out`` holding experiment records (e.g. the
    larger settings run on a GPU in ``full/``), so the index links them."""
    found = []
    for sub in sorted(p for p in out.iterdir() if p.is_dir()):
        recs = []
        for path in sorted(sub.glob("*.json")):
            try:
                rec = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                continue
            if isinstance(rec, dict) and "experiment" in rec and "verdict" in rec:
                recs.append(rec)
        if recs:
            page = "index.md" if (sub / "index.md").is_file() else f"{recs[0]['experiment']}.md"
            what = "; ".join(f"{r['experiment']} ({r['profile']}, {r['machine']}): {r['verdict']}"
                             for r in recs)
            found.append((sub.name, page, what))
    return found


def write_index(out: Path) -> None:
    """``index.md``: every registered experiment, with its plot and verdict where it was run."""
    lines = [
        "# Experiments: the lecture's claims, measured",
        "",
        "Each page states a paper's claim (with its figure or table), what was measured here, and "
        "whether the two agree. Run one with `convzoo experiment NAME [--profile "
        "smoke|quick|full] [--seeds N] [--device DEV] [--out DIR]`; `convzoo experiment --list` "
        "lists them. The `smoke` profile checks in under a minute (a few steps) that an "
        "experiment runs end to end; `quick` fits in 20 minutes on an idle 2-core CPU; "
        "`full` follows the paper as closely as the data allows and is meant for a GPU. An "
        "interrupted experiment (Ctrl-C) resumes where it stopped when the same command runs "
        "again. Each page names the machine, the load average while it ran and its departures "
        "from the profile.",
        "",
        "| experiment | paper | verdict | profile, machine, time, command |",
        "| --- | --- | --- | --- |",
    ]
    ran, not_ran = [], []
    for exp in list_experiments():
        rec_path = out / f"{exp.name}.json"
        rec = None
        if rec_path.is_file():
            try:
                rec = json.loads(rec_path.read_text())
            except json.JSONDecodeError:
                rec = None
        if rec is None:
            lines.append(f"| {exp.name} | {exp.paper} | not run here | "
                         f"`{command_line(exp.name, 'quick', None)}` |")
            not_ran.append(exp)
        else:
            lines.append(f"| [{exp.name}]({exp.name}.md) | {exp.paper} | {rec['verdict']} | "
                         f"{rec['profile']}, {rec['seeds']} seed(s), {rec['machine']}; "
                         f"{(rec.get('train_wall_s') or rec['wall_s']) / 60:.1f} min of "
                         f"{'training' if rec.get('train_wall_s') else 'measuring'}: "
                         f"`{rec['command']}` |")
            ran.append(exp)
    lines.append("")
    others = _other_runs(out)
    if others:
        lines += ["Other settings, each a folder with its own pages:", ""]
        lines += [f"- [{sub}/]({sub}/{page}): {what}" for sub, page, what in others]
        lines.append("")
    for exp in ran:
        lines += [f"## [{exp.title}]({exp.name}.md)", "", f"![{exp.name}]({exp.name}.png)", ""]
    if not_ran:
        lines += ["## Not run in this folder yet", ""]
        for exp in not_ran:
            cmd = command_line(exp.name, "quick", None)
            lines.append(f"- **{exp.name}** ({exp.paper}): `{cmd}` (needs {exp.data})")
        lines.append("")
    _write_text(out / "index.md", "\n".join(lines))
