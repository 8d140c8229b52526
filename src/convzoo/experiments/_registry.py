"""What an experiment declares: :class:`Experiment` (a paper's claim, its profiles and the function
that measures it), :class:`Outcome` (what that function hands back) and the paper's column of the
set-up table; :func:`register_experiment` adds one to the table that ``convzoo experiment`` reads.

Each experiment module registers itself here on import; :mod:`._all` imports every one and looks
them up (``list_experiments``, ``get_experiment``), :mod:`._runner` runs one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .verdict import Verdict

if TYPE_CHECKING:
    from ._training import Context

# smoke: a few steps on small subsets, to check that an experiment runs end to end; quick: at
# most 20 min on an idle 2-core CPU (each page's record, the README table); full: a GPU.
PROFILES = ("smoke", "quick", "full")  # every experiment has these
# ...and where the quick profile cannot decide a claim on a CPU, an hour's profile (relu-vs-tanh)
OPTIONAL_PROFILES = ("long",)


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
class Outcome:
    """What an experiment hands back to the runner."""

    columns: list[tuple[str, str]]  # (row key, column header) of the table, in order
    rows: list[dict[str, Any]]  # one per arm: formatted cells (str) under the column keys
    measured: str  # Markdown: what was measured here (numbers)
    verdict: Verdict  # from the experiment's judge(...): a word and one sentence why
    raw: dict[str, Any] = field(default_factory=dict)  # per-seed numbers for NAME.json
    notes: list[str] = field(default_factory=list)  # set-up departures from the paper


_EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(exp: Experiment) -> Experiment:
    if exp.name in _EXPERIMENTS:
        raise RuntimeError(f"experiment {exp.name!r} is registered twice")
    _EXPERIMENTS[exp.name] = exp
    return exp
