"""convzoo: the classic convolutional networks of image classification, LeNet to DenseNet.

    >>> import convzoo
    >>> model = convzoo.create_model("resnet20:cifar10")  # shipped weights; or "lenet5" untrained
    >>> result = convzoo.fit(convzoo.TrainConfig(model="lenet5", epochs=1))

Names are imported on first use (PEP 562), so that ``convzoo list`` or ``create_model`` does not
pay for the data and training machinery (torchvision's image io among it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__ as __version__

# public name -> module that defines it
_EXPORTS = {
    "TrainConfig": ".engine", "evaluate": ".analysis.evaluation", "fit": ".engine",
    "load_trained": ".engine",
    "Loaded": ".engine", "topk_accuracy": ".engine",
    "ConvzooError": ".errors", "DataError": ".errors",
    "ModelInfo": ".registry", "create_model": ".registry", "list_models": ".registry",
    "model_info": ".registry", "register_model": ".registry",
    "read_weights": ".weights", "save_weights": ".weights",
    "resolve_data_config": ".analysis.loading", "create_transform": ".analysis.loading",
}

_SUBPACKAGES = ("analysis", "data", "engine", "experiments", "models", "registry", "scratch",
                "weights", "errors", "cli")

__all__ = ["TrainConfig", "evaluate", "fit", "load_trained", "Loaded", "topk_accuracy",
    "ConvzooError", "DataError", "ModelInfo", "create_model", "list_models", "model_info",
    "register_model", "read_weights", "save_weights", "resolve_data_config", "create_transform"]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, _SUBPACKAGES)


if TYPE_CHECKING:
    from .analysis.evaluation import evaluate
    from .analysis.loading import create_transform, resolve_data_config
    from .engine import Loaded, TrainConfig, fit, load_trained, topk_accuracy
    from .errors import ConvzooError, DataError
    from .registry import ModelInfo, create_model, list_models, model_info, register_model
    from .weights import read_weights, save_weights
