"""One file per architecture family; importing this package registers every model.
:class:`ZooModel` is the base class of every model class."""

from . import (
    alexnet,  # noqa: F401
    densenet,  # noqa: F401
    experimental,  # noqa: F401
    googlenet,  # noqa: F401
    inception,  # noqa: F401
    lenet,  # noqa: F401
    resnet,  # noqa: F401
    vgg,  # noqa: F401
)
from ._common import ZooModel

__all__ = ["ZooModel"]
