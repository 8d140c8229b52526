"""Importing this module registers every experiment, in the order `--list` shows them."""

from . import (  # noqa: F401
    lenet_modern,
)
