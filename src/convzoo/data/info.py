"""``convzoo data info``: counts per split and class, image sizes, per-channel mean and std."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from .datasets import DATASETS, ImageDataset, load_dataset
from .folder import FolderDataset
from .images import decode_file

VAL_NAMES = ("val", "test", "valid", "validation")


def detect_splits(root: Path) -> tuple[str, str]:
    """(train_split, val_split) sub-folder names of an ImageNet-layout folder."""
    if not (root / "train").is_dir():
        raise DataError(f"{root} has no 'train' sub-folder; expected ROOT/train/CLASS/IMAGES and "
                        f"ROOT/val/CLASS/IMAGES (or test)")
    for v in VAL_NAMES:
        if (root / v).is_dir():
            return "train", v
    raise DataError(f"{root} has a 'train' sub-folder but none of {', '.join(VAL_NAMES)}")


def _stats_in_memory(ds: ImageDataset) -> dict[str, Any]:
    c = ds.images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(ds), 4096):  # chunks keep the float copy small
        x = ds.images[i:i + 4096].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
    n = len(ds) * ds.images.shape[2] * ds.images.shape[3]
    mean = total / n
    std = (total_sq / n - mean.square()).clamp_min(0).sqrt()
    h, w = ds.images.shape[2:]
    return {"sizes": {f"{w}x{h}": len(ds)}, "mean": [round(v, 4) for v in mean.tolist()],
            "std": [round(v, 4) for v in std.tolist()], "stats_over": len(ds)}


def _stats_streamed(ds: FolderDataset, sample: int) -> dict[str, Any]:
    step = max(1, len(ds) // sample)
    sizes: Counter = Counter()
    total = torch.zeros(ds.channels, dtype=torch.float64)
    total_sq = torch.zeros(ds.channels, dtype=torch.float64)
    n = used = 0
    for path in ds.paths[::step][:sample]:
        try:
            img = decode_file(path, ds.channels)
        except DataError:
            continue
        sizes[f"{img.shape[2]}x{img.shape[1]}"] += 1
        x = img.to(torch.float64).div_(255.0)
        total += x.sum(dim=(1, 2))
        total_sq += x.square().sum(dim=(1, 2))
        n += img.shape[1] * img.shape[2]
        used += 1
    if not used:
        return {"sizes": {}, "mean": None, "std": None, "stats_over": 0}
    mean = total / n
    std = (total_sq / n - mean.square()).clamp_min(0).sqrt()
    return {"sizes": dict(sizes.most_common(20)), "mean": [round(v, 4) for v in mean.tolist()],
            "std": [round(v, 4) for v in std.tolist()], "stats_over": used}


def dataset_info(name_or_dir: str, data_dir: str | os.PathLike | None = None, *,
                 train_split: str | None = None, val_split: str | None = None,
                 on_bad_file: str = "skip", sample: int = 500) -> dict[str, Any]:
    """Per split: image count, per-class counts, image sizes, mean/std per channel in [0, 1].

    ``name_or_dir`` is a data set name or an ImageNet-layout folder (``folder`` with its split
    names detected), or a ``.tar.gz``/``.zip`` of one. Streamed folders are measured on
    ``sample`` files spread over each split.
    """
    from .cache import extract_archive, is_archive, reported_as

    if name_or_dir not in DATASETS and is_archive(name_or_dir):  # a .tar.gz / .zip of a folder
        with reported_as(name_or_dir):
            return dataset_info(str(extract_archive(name_or_dir)), data_dir,
                                train_split=train_split, val_split=val_split,
                                on_bad_file=on_bad_file, sample=sample)
    if name_or_dir not in DATASETS and Path(name_or_dir).is_dir():
        name, data_dir = "folder", Path(name_or_dir)
        if train_split is None and val_split is None:
            train_split, val_split = detect_splits(data_dir)
    elif name_or_dir in DATASETS:
        name = name_or_dir
    else:
        raise DataError(f"{name_or_dir!r} is neither a data set name "
                        f"({', '.join(sorted(DATASETS))}) nor a folder")
    out: dict[str, Any] = {"name": name, "splits": {}}
    for split in ("train", "test"):
        ds = load_dataset(name, data_dir, split, train_split=train_split, val_split=val_split,
                          on_bad_file=on_bad_file)
        counts = torch.bincount(ds.labels, minlength=len(ds.classes)).tolist()
        unique = len(set(ds.classes)) == len(ds.classes)
        entry: dict[str, Any] = {
            "source": ds.source, "images": len(ds),
            # ImageNet's short names repeat ("crane"): key by "index:name" then.
            "classes": dict(zip(ds.classes, counts, strict=True)) if unique else
            {f"{i}:{c}": k for i, (c, k) in enumerate(zip(ds.classes, counts, strict=True))},
            "channels": ds.shape[0], "streamed": isinstance(ds, FolderDataset),
            "skipped": [list(s) for s in ds.skipped],
        }
        entry.update(_stats_streamed(ds, sample) if isinstance(ds, FolderDataset)
                     else _stats_in_memory(ds))
        out["splits"][split] = entry
        out["num_classes"] = len(ds.classes)
    return out
