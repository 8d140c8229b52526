"""Old home of the experiment machinery, split by job (issue #21): :mod:`._registry` (what an
experiment declares), :mod:`._training` (the cached training layer), :mod:`._runner`
(:func:`run_experiment`), :mod:`._page` (the output files) and :mod:`._all` (every experiment).

Only relu_tanh.py and _common.py still import these names from here; the lead moves their imports
to ._registry and ._training, then deletes this module.
"""

from ._registry import Experiment, Outcome, PaperSetup, register_experiment
from ._training import Context, TrainRecord

__all__ = ["Context", "Experiment", "Outcome", "PaperSetup", "TrainRecord", "register_experiment"]
