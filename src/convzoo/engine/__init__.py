"""Training and evaluation: config, trainer, metrics, progress."""

from .config import TrainConfig
from .evaluate import EvalResult, evaluate, evaluate_model, load_trained
from .metrics import per_class_accuracy, topk_accuracy, topk_correct
from .trainer import FitResult, fit

__all__ = [
    "TrainConfig", "EvalResult", "evaluate", "evaluate_model", "load_trained",
    "per_class_accuracy", "topk_accuracy", "topk_correct", "FitResult", "fit",
]
