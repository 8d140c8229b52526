"""Suite-wide set-up. `make test` runs the suite on both cores (pytest-xdist, ``-n 2``): each
worker then computes on one torch thread, and so does every process a test starts (it inherits
``OMP_NUM_THREADS=1``), so that two workers do not run four threads on the 2-core machine. A run
without xdist (``pytest tests/...``) keeps torch's default threads."""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # inter-op threads already started: one intra-op thread is what matters
        pass
