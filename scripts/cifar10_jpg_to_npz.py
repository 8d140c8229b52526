"""Decode ../shared/data/cifar10-jpg.tar.gz once into a uint8 array cache (.npz).

    python scripts/cifar10_jpg_to_npz.py [OUT.npz]

Reads the JPEGs straight out of the archive (no 60,000-file extraction) and writes
``train_x`` (50000, 3, 32, 32) uint8, ``train_y`` (50000,) int64, ``test_x``, ``test_y`` and
``classes``, in the archive's order (class folders sorted, files sorted). Used by
``scripts/train_resnet20_cifar10.py`` while the data package has no CIFAR-10 JPEG source.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

ARCHIVE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpg.tar.gz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def decode(archive: Path = ARCHIVE) -> dict[str, np.ndarray]:
    items: dict[str, list[tuple[str, int, np.ndarray]]] = {"train": [], "test": []}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in items:
                continue
            split, cls, fname = parts
            img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
            items[split].append((f"{cls}/{fname}", CLASSES.index(cls), np.asarray(img)))
    out: dict[str, np.ndarray] = {"classes": np.array(CLASSES)}
    for split, rows in items.items():
        rows.sort(key=lambda r: r[0])
        out[f"{split}_x"] = np.stack([r[2] for r in rows]).transpose(0, 3, 1, 2).copy()
        out[f"{split}_y"] = np.array([r[1] for r in rows], dtype=np.int64)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/convzoo-cache/cifar10-jpg.npz")
    target.parent.mkdir(parents=True, exist_ok=True)
    arrays = decode()
    np.savez(target, **arrays)
    print(f"wrote {target}: train {arrays['train_x'].shape}, test {arrays['test_x'].shape}")
