"""One file per architecture family; importing this package registers every model."""

from . import lenet  # noqa: F401
