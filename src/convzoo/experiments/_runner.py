"""The experiment runner, :func:`run_experiment`: seeds, device, run directories, the record.

An :class:`~._registry.Experiment` is a paper's claim plus a function ``run(ctx, params) ->
Outcome`` that trains (through :func:`convzoo.fit`, so every run is an ordinary run directory,
see :mod:`._training`) or measures what it needs. The runner checks the arguments, hands the
experiment its :class:`~._training.Context`, and writes the outcome with :mod:`._page`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, is_dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConvzooError
from ._all import get_experiment
from ._page import command_line, setup_columns, write_outputs
from ._training import Context, Progress

SMOKE_NOTE = ("Smoke profile: a few steps on small subsets, to check that the experiment runs "
              "end to end; its numbers do not test the claim (use --profile quick or full).")


def machine() -> str:
    """The accelerator or CPU and torch's version, for the record."""
    import torch

    if torch.cuda.is_available():
        hw = f"1x {torch.cuda.get_device_name(0)}"
    else:
        hw = (f"{os.cpu_count()}-core {platform.machine()} CPU, "
              f"{torch.get_num_threads()} torch thread(s)")  # --threads changes the time
    return f"{hw}, torch {torch.__version__}"


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
        raise ConvzooError(f"--profile must be one of {', '.join(exp.profiles)} for {name}, "
                           f"got {profile!r}")
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
