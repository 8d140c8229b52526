"""Training and evaluation: config, trainer, metrics, progress.

Names are imported on first use (PEP 562): ``convzoo.engine.config`` alone (the CLI's train flags)
does not load the trainer and the data machinery. :func:`evaluate_model` is the one evaluation
loop; ``convzoo.evaluate`` (a trained source, in :mod:`convzoo.analysis.evaluation`) calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": ".config", "EvalResult": ".scoring",
    "evaluate_model": ".scoring", "Loaded": ".loaded", "load_trained": ".loaded",
    "per_class_accuracy": ".metrics", "topk_accuracy": ".metrics", "topk_correct": ".metrics",
    "Reporter": ".progress", "StepInfo": ".progress", "RECIPES": ".recipes", "Recipe": ".recipes",
    "recipe_config": ".recipes", "FitResult": ".trainer", "TrainingInterrupted": ".trainer",
    "fit": ".trainer",
}

__all__ = ["TrainConfig", "EvalResult", "evaluate_model", "Loaded", "load_trained",
    "per_class_accuracy", "topk_accuracy", "topk_correct", "Reporter", "StepInfo", "RECIPES",
    "Recipe", "recipe_config", "FitResult", "TrainingInterrupted", "fit"]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


if TYPE_CHECKING:
    from .config import TrainConfig
    from .loaded import Loaded, load_trained
    from .metrics import per_class_accuracy, topk_accuracy, topk_correct
    from .progress import Reporter, StepInfo
    from .recipes import RECIPES, Recipe, recipe_config
    from .scoring import EvalResult, evaluate_model
    from .trainer import FitResult, TrainingInterrupted, fit
