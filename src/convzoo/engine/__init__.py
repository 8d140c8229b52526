"""Training and evaluation: config, trainer, metrics, progress."""

from .config import TrainConfig
from .evaluate import EvalResult, evaluate, evaluate_model
from .loaded import Loaded, load_trained
from .metrics import per_class_accuracy, topk_accuracy, topk_correct
from .progress import Reporter, StepInfo
from .recipes import RECIPES, Recipe, recipe_config
from .trainer import FitResult, TrainingInterrupted, fit

__all__ = [
    "TrainConfig", "EvalResult", "evaluate", "evaluate_model", "load_trained", "Loaded",
    "per_class_accuracy", "topk_accuracy", "topk_correct", "FitResult", "fit", "RECIPES",
    "Recipe", "recipe_config", "TrainingInterrupted", "Reporter", "StepInfo",
]
