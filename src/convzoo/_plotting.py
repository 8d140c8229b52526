"""matplotlib for figures written to files, without spoiling a notebook's figures."""

from __future__ import annotations

import os


def pyplot():
    """``matplotlib.pyplot``, drawing without a window: the Agg backend, unless ``$MPLBACKEND``
    names one. A Jupyter kernel puts its inline backend there, and switching it to Agg would stop
    every later ``plt.show()`` of the notebook from showing anything."""
    import matplotlib

    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
