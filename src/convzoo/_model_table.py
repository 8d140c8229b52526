"""The table `convzoo list` prints, read without importing torch.

``model_table.json`` beside this file is derived from the registry
(:func:`convzoo.registry.model_rows`: building 44 models, even on the meta device, costs seconds
beside torch's own import); ``python -m convzoo.registry`` rewrites it, and
tests/test_registry.py checks that it equals the registry, so it cannot drift.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("model_table.json")


def read_model_table(pattern: str | None = None, *, pretrained: bool = False
                     ) -> list[dict[str, Any]]:
    """The rows, in natural order, filtered as :func:`convzoo.list_models` filters names: a
    glob ``pattern`` (case-sensitive) and, with ``pretrained``, only models with shipped
    weights."""
    rows = json.loads(PATH.read_text())
    if pattern:
        rows = [r for r in rows if fnmatch.fnmatchcase(r["name"], pattern)]
    return [r for r in rows if r["weights"]] if pretrained else rows


def write_model_table(rows: list[dict[str, Any]]) -> Path:
    PATH.write_text(json.dumps(rows, indent=1) + "\n")
    return PATH
