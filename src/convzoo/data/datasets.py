"""Data sets held in memory as uint8 tensors, and the names ``--data`` accepts.

An :class:`ImageDataset` is the whole split decoded once: ``images`` (N, C, H, W) uint8 and
``labels`` (N,) int64, with the class names. Augmentation and normalisation happen batch-wise on
the training device (see :mod:`convzoo.data.loader`), never per sample in Python.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import DataError
from .idx import read_idx

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).parent / "embedded"

MNIST_CLASSES = [str(i) for i in range(10)]
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class ImageDataset:
    """One split of a data set, decoded: images (N, C, H, W) uint8, labels (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    source: str  # where it came from, for messages and the run directory

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError("images must be a (N, C, H, W) uint8 tensor")
        if len(self.images) != len(self.labels):
            raise DataError(
                f"{self.source}: {len(self.images)} images but {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor) -> "ImageDataset":
        return ImageDataset(self.images[index], self.labels[index], self.classes, self.name,
                            self.source)


def _find(data_dir: Path, stem: str) -> Path:
    for candidate in (data_dir / f"{stem}.gz", data_dir / stem, data_dir / "raw" / f"{stem}.gz",
                      data_dir / "raw" / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"data dir {data_dir} has no {stem}(.gz); expected the four MNIST IDX files")


def load_idx_pair(data_dir: Path, split: str, *, name: str, classes: list[str]) -> ImageDataset:
    """Images and labels of an MNIST-layout split (``train`` or ``test``) from ``data_dir``."""
    img_stem, lbl_stem = MNIST_FILES[split]
    img_path, lbl_path = _find(data_dir, img_stem), _find(data_dir, lbl_stem)
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise DataError(f"{img_path}: expected (N, H, W) images, got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{lbl_path}: expected (N,) labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= len(classes):
        raise DataError(f"{lbl_path}: label {int(labels.max())} out of range 0..{len(classes) - 1}")
    return ImageDataset(
        images=torch.from_numpy(images.copy()).unsqueeze(1),  # (N, 1, 28, 28)
        labels=torch.from_numpy(labels.astype("int64")),
        classes=classes,
        name=name,
        source=str(data_dir),
    )


def _mnist(data_dir: Path | None, split: str) -> ImageDataset:
    if data_dir is None:
        ds = load_idx_pair(EMBEDDED_DIR / "mnist", split, name="mnist", classes=MNIST_CLASSES)
        ds.source = "embedded MNIST subset"
        return ds
    return load_idx_pair(data_dir, split, name="mnist", classes=MNIST_CLASSES)


# name -> loader(data_dir or None, split); the data issue adds fashion-mnist, cifar, folders.
SOURCES: dict[str, Callable[[Path | None, str], ImageDataset]] = {"mnist": _mnist}


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, split: str = "train"
                 ) -> ImageDataset:
    """Load split ``train`` or ``test`` of data set ``name`` (see ``SOURCES``) into memory."""
    if name not in SOURCES:
        raise DataError(f"unknown data set {name!r}; expected one of {', '.join(sorted(SOURCES))}")
    path = None
    if data_dir is not None:
        path = Path(data_dir)
        if not path.is_dir():
            raise DataError(f"data dir {path} does not exist or is not a folder")
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
    ds = SOURCES[name](path, split)
    log.info("loaded %s %s: %d images of shape %s from %s", name, split, len(ds), ds.shape,
             ds.source)
    return ds
