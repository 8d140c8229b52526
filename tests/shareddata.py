"""Where ../shared/data is, and skip markers for tests that need it.

Import it as ``from shareddata import ...`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
MNIST_DIR = SHARED_DATA / "mnist"

needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"full MNIST not found at {MNIST_DIR} (../shared is absent)",
)
