"""An experiment's output files, written into ``out``:

- ``NAME.csv`` and ``NAME-table.md``: the table, mean ± sample std over seeds;
- ``NAME.json``: every per-seed number, the parameters, machine and wall time;
- ``NAME.md``: the page (claim with figure/table number, what was measured, whether it agrees,
  the paper's set-up beside this run's);
- ``index.md``: every registered experiment, with its plot where one has been produced.

The plot, ``NAME.png``, is the experiment's own (:attr:`Context.plot_path`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shlex
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ._all import list_experiments
from ._registry import SETUP_ROWS, Experiment, Outcome


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


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


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
