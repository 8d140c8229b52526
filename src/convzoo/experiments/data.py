"""Where the experiments find their data, and experiment-local data sources.

The engine trains on a data set *name* (``TrainConfig.data``, a key of
:data:`convzoo.data.SOURCES`) or on a :class:`~convzoo.data.DataSource` made in code
(``fit(cfg, source=...)``). Some experiments need what no registered name gives: a smaller,
class-balanced training split (AlexNet's dropout claim is about overfitting, so the training set is
cut down), CIFAR-10 without augmentation (Krizhevsky et al. 2012, Fig. 1 used none), or the JPEG
copy of CIFAR-10 whose test split is the folder ``test/``. :func:`subset_source` makes such a
variant, named for what it is (``xp-cifar10-n5000-noaug``); nothing global is registered.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from ..data import DataSource, load_dataset
from ..data.cache import extract_archive, is_archive
from ..data.splits import balanced_subset
from ..errors import ConvzooError

log = logging.getLogger(__name__)

CIFAR_TARBALL = "cifar10-jpg.tar.gz"

_loaded: dict[tuple[str, str, str], Any] = {}  # (base, dir, split) -> dataset, one read per process


def shared_data_dirs() -> list[Path]:
    """``../shared/data`` next to the working directory and next to the source checkout."""
    here = Path(__file__).resolve().parents[3]  # src/convzoo/experiments -> repository root
    out = []
    for root in (Path.cwd(), here):
        p = (root / ".." / "shared" / "data").resolve()
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def find_mnist(data_dir: str | os.PathLike | None) -> Path | None:
    """The full MNIST folder: ``data_dir``, else ``../shared/data/mnist``; None: the embedded
    10,000/2,000-image subset that ships with the package."""
    if data_dir is not None:
        return Path(data_dir)
    for root in shared_data_dirs():
        if (root / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return root / "mnist"
    return None


def find_cifar10(data_dir: str | os.PathLike | None) -> tuple[str, Path, str | None]:
    """(base source, folder, test sub-folder) of CIFAR-10.

    ``data_dir`` may be the official python/binary batches (source ``cifar10``), a folder with
    ``train/`` and ``test/`` class folders (the JPEG copy, extracted), or the JPEG copy's
    ``.tar.gz`` (extracted once under ``$CONVZOO_CACHE/cifar10-jpg``). Without ``data_dir``,
    ``../shared/data/cifar10-jpg.tar.gz`` is used when present.
    """
    if data_dir is None:
        for root in shared_data_dirs():
            if (root / CIFAR_TARBALL).is_file():
                data_dir = root / CIFAR_TARBALL
                break
        else:
            raise ConvzooError("this experiment needs CIFAR-10: pass --data-dir DIR (the python or "
                               f"binary batches, a train/ + test/ JPEG folder, or {CIFAR_TARBALL})")
    path = Path(data_dir).expanduser()
    if is_archive(path):
        path = extract_archive(path)
    if not path.is_dir():
        raise ConvzooError(f"--data-dir {path}: not a folder or a .tar.gz of CIFAR-10")
    for sub in (path, *[p for p in path.iterdir() if p.is_dir()]):
        if (sub / "train").is_dir() and (sub / "test").is_dir():
            return "folder", sub, "test"
    return "cifar10", path, None


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
