"""One file per architecture family; importing this package registers every model."""

from . import (
    densenet,  # noqa: F401
    lenet,  # noqa: F401
    resnet,  # noqa: F401
)
