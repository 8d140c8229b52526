"""One file per architecture family; importing this package registers every model."""

from . import lenet  # noqa: F401
from . import resnet  # noqa: F401
