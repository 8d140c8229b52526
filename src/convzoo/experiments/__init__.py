"""The lecture's claims as runnable experiments: ``convzoo experiment NAME``.

Each experiment trains through :func:`convzoo.fit` (ordinary run directories) or measures with the
analysis tools, repeats over seeds, and writes a plot, a table (CSV + Markdown, mean ± sample std
over seeds) and a page comparing the measurement with the paper's figure or table. See
docs/experiments/index.md for the results produced so far.
"""

from ._all import get_experiment, list_experiments
from ._page import write_index
from ._registry import OPTIONAL_PROFILES, PROFILES, Experiment, Outcome
from ._runner import run_experiment
from ._training import Context, TrainRecord
from .analysis import format_mean_spread, mean_spread, moving_average, steps_to_threshold
from .verdict import VERDICTS, Stat, Verdict

__all__ = [
    "OPTIONAL_PROFILES", "PROFILES", "Context", "Experiment", "Outcome", "TrainRecord",
    "get_experiment", "list_experiments", "run_experiment", "write_index", "format_mean_spread",
    "mean_spread", "moving_average", "steps_to_threshold", "VERDICTS", "Stat", "Verdict",
]
