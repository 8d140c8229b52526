"""convzoo: the classic convolutional networks of image classification, LeNet to DenseNet.

    >>> import convzoo
    >>> model = convzoo.create_model("lenet5")
    >>> result = convzoo.fit(convzoo.TrainConfig(model="lenet5", epochs=1))
"""

from .engine import Loaded, TrainConfig, evaluate, fit, load_trained, topk_accuracy
from .errors import ConvzooError, DataError
from .registry import ModelInfo, create_model, list_models, model_info, register_model
from .weights import read_weights, save_weights

__version__ = "0.1.0"

__all__ = [
    "TrainConfig", "evaluate", "fit", "load_trained", "Loaded", "topk_accuracy", "ConvzooError",
    "DataError", "ModelInfo", "create_model", "list_models", "model_info", "register_model",
    "read_weights", "save_weights",
]
