"""Experiment-local data sources (the data themselves are found by
:func:`convzoo.data.locate.find_data`).

The engine trains on a data set *name* (``TrainConfig.data``, a key of
:data:`convzoo.data.DATASETS`) or on a :class:`~convzoo.data.DataSource` made in code
(``fit(cfg, source=...)``). Some experiments need what no registered name gives: a smaller,
class-balanced training split (AlexNet's dropout claim is about overfitting, so the training set is
cut down), CIFAR-10 without augmentation (Krizhevsky et al. 2012, Fig. 1 used none), or the JPEG
copy of CIFAR-10 whose test split is the folder ``test/``. :func:`subset_source` makes such a
variant, named for what it is (``xp-cifar10-n5000-noaug``); nothing global is registered.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..data import DataSource, load_dataset
from ..data.splits import balanced_subset

log = logging.getLogger(__name__)

_loaded: dict[tuple[str, str, str], Any] = {}  # (base, dir, split) -> dataset, one read per process


def _load(base: str, data_dir: Path | None, split: str, val_split: str | None):
    key = (base, str(data_dir), split)
    if key not in _loaded:
        _loaded[key] = load_dataset(base, data_dir, split, val_split=val_split)
    return _loaded[key]


@dataclasses.dataclass(frozen=True)
class RawPixelSource(DataSource):
    """A source whose input is the raw 0-255 pixel minus the data set's mean, not divided by a
    std (cuda-convnet's ``convdata.py``, Krizhevsky et al. 2012 Fig. 1): the preset's std becomes
    1/255, so (x/255 - mean) / (1/255) = x - 255 * mean. The mean is per channel (the preset's),
    where cuda-convnet subtracts the mean image: a per-pixel mean is not a preset option."""

    def preset(self, **kwargs):
        p = super().preset(**kwargs)
        return dataclasses.replace(p, std=tuple(1 / 255 for _ in p.mean))


def subset_source(base: str, data_dir: Path | None, *, n_train: int | None = None,
                  n_test: int | None = None, augment: bool = True, val_split: str | None = None,
                  subset_seed: int = 0, preset_of: str | None = None,
                  raw_pixels: bool = False) -> DataSource:
    """``base`` with at most ``n_train`` balanced training images and, with ``augment=False``, no
    random crop/flip (normalisation kept), as a data source of its own name.

    The test split is the whole official one unless ``n_test`` cuts it (the smoke
    profiles only). ``preset_of`` names the preset whose normalisation is used (default
    ``base``; ``cifar10`` for the JPEG folder copy). ``raw_pixels``: a :class:`RawPixelSource`.
    """
    preset_name = preset_of or base
    name = f"xp-{preset_name}" + (f"-n{n_train}" if n_train else "") + (
        f"-t{n_test}" if n_test else "") + (
        "" if augment else "-noaug") + ("-raw" if raw_pixels else "")

    def load(split: str):
        ds = _load(base, data_dir, split, val_split)
        n = n_train if split == "train" else n_test
        if n and n < len(ds):
            ds = ds.subset(balanced_subset(ds.labels, n, subset_seed))
        return dataclasses.replace(ds, name=name)  # shallow: the tensors are shared

    kind = RawPixelSource if raw_pixels else DataSource
    return kind(name=name, load=load, preset_of=preset_name, augment=augment)
