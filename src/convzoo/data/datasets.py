"""Data sets held in memory as uint8 tensors, and the names ``--data`` accepts.

An :class:`ImageDataset` is the whole split decoded once: ``images`` (N, C, H, W) uint8 and
``labels`` (N,) int64, with the class names. Augmentation and normalisation happen batch-wise on
the training device (see :mod:`convzoo.data.loader`), never per sample in Python.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..errors import DataError
from .idx import read_idx
from .imagenet import imagenet_classes, read_val_labels

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).parent / "embedded"

MNIST_CLASSES = [str(i) for i in range(10)]
# Fashion-MNIST (Xiao et al. 2017): the label names of its README, in label order.
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
SPLITS = ("train", "test")
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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) left out

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

    def subset(self, index: torch.Tensor) -> ImageDataset:
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
    images = read_idx(img_path, unsigned_bytes=True)
    labels = read_idx(lbl_path, unsigned_bytes=True)
    if images.ndim != 3:
        raise DataError(f"{img_path}: expected (N, H, W) images, got shape {images.shape}")
    if len(images) == 0:
        raise DataError(f"{img_path} holds 0 images; expected an IDX file of at least one")
    if min(images.shape[1:]) < 2:
        raise DataError(f"{img_path}: its images are {images.shape[1]}x{images.shape[2]} pixels; "
                        f"expected at least 2 pixels a side")
    if labels.ndim != 1:
        raise DataError(f"{lbl_path}: expected (N,) labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= len(classes):
        raise DataError(f"{lbl_path}: label {int(labels.max())} out of range 0..{len(classes) - 1}")
    return ImageDataset(
        # parse_idx returns a fresh writable array: no second copy. (N, 1, 28, 28)
        images=torch.from_numpy(images if images.flags.writeable else images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype("int64")),
        classes=classes,
        name=name,
        source=str(data_dir),
    )


def _mnist(data_dir: Path | None, split: str, **_: Any) -> ImageDataset:
    if data_dir is None:
        ds = load_idx_pair(EMBEDDED_DIR / "mnist", split, name="mnist", classes=MNIST_CLASSES)
        ds.source = "embedded MNIST subset"
        return ds
    return load_idx_pair(data_dir, split, name="mnist", classes=MNIST_CLASSES)


def _need_dir(name: str, data_dir: Path | None) -> Path:
    if data_dir is None:
        raise DataError(f"data set {name!r} needs a data dir (--data-dir DIR); try "
                        f"`convzoo data download {name} --data-dir DIR` where one is listed")
    return data_dir


def _fashion_mnist(data_dir: Path | None, split: str, **_: Any) -> ImageDataset:
    root = _need_dir("fashion-mnist", data_dir)
    return load_idx_pair(root, split, name="fashion-mnist", classes=FASHION_MNIST_CLASSES)


def _cifar(name: str, *, hundred: bool, coarse: bool):  # noqa: ANN202 - a SOURCES loader
    def load(data_dir: Path | None, split: str, **_: Any) -> ImageDataset:
        from .cifar import load_cifar

        images, labels, classes, source = load_cifar(_need_dir(name, data_dir), split,
                                                     hundred=hundred, coarse=coarse)
        return ImageDataset(images, labels, classes, name, source)

    return load


def _split_dir(root: Path, split: str, train_split: str | None, val_split: str | None) -> Path:
    folder = (train_split or "train") if split == "train" else (val_split or "val")
    path = root / folder
    if not path.is_dir():
        subs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        flag = "--train-split" if split == "train" else "--val-split"
        raise DataError(f"{root} has no {folder!r} sub-folder for the {split} split (it has "
                        f"{subs or 'none'}); name it with {flag}")
    return path


def _folder_dataset(name: str, root: Path, classes: list[str], entries: list, *, in_memory:
                    bool | None, on_bad_file: str, skipped: list, source: str, channels: int,
                    workers: int | None, size: tuple[int, int] | None = None):
    from .folder import FolderDataset, MixedSizes, load_folder_in_memory, probe_sizes
    from .presets import SMALL_IMAGE

    auto = in_memory is None
    common = None  # the side of square images all of one size, as far as the probe saw
    if auto:  # small square images all of one size: decode once and cache
        sizes = probe_sizes(entries, channels)
        (h, w), _ = sizes.most_common(1)[0] if sizes else ((0, 1), 0)
        common = h if len(sizes) == 1 and h == w else None
        # Mixed sizes or non-square images are streamed: resized per image to the model's input.
        in_memory = common is not None and h <= SMALL_IMAGE
        size = (h, w) if in_memory else None
    if in_memory:
        try:
            images, labels = load_folder_in_memory(root, classes, entries, channels=channels,
                                                   on_bad_file=on_bad_file, skipped=skipped,
                                                   size=size, workers=workers, mixed_ok=auto)
            return ImageDataset(images, labels, classes, name, source, skipped=list(skipped))
        except MixedSizes as e:  # an image the probe missed: the folder is not all one size
            log.info("%s: streamed, its images are not all one size (%s)", root, e)
    labels = torch.tensor([e.label for e in entries], dtype=torch.int64)
    return FolderDataset([e.path for e in entries], labels, classes, name=name, source=source,
                         channels=channels, on_bad_file=on_bad_file, skipped=list(skipped),
                         common_size=common)


def _folder(data_dir: Path | None, split: str, *, train_split: str | None = None,
            val_split: str | None = None, on_bad_file: str = "error",
            in_memory: bool | None = None, workers: int | None = None,
            classes: list[str] | None = None, **_: Any):
    from .folder import scan_class_folders

    root = _need_dir("folder", data_dir)
    path = _split_dir(root, split, train_split, val_split)
    skipped: list = []
    # Labels follow the training split's class folders, so both splits agree on them (or the
    # class names given, e.g. a trained model's).
    train_classes = classes
    if split != "train" and train_classes is None:
        from .folder import class_folders

        train_classes = class_folders(_split_dir(root, "train", train_split, val_split))
    classes, entries = scan_class_folders(path, train_classes, on_bad_file=on_bad_file,
                                          skipped=skipped)
    return _folder_dataset("folder", path, classes, entries, in_memory=in_memory,
                           on_bad_file=on_bad_file, skipped=skipped, source=str(path),
                           channels=3, workers=workers)


def _imagenet(data_dir: Path | None, split: str, *, train_split: str | None = None,
              val_split: str | None = None, on_bad_file: str = "error",
              in_memory: bool | None = None, workers: int | None = None, **_: Any):
    from .folder import FileEntry, bad_file, class_folders, scan_class_folders, scan_files

    root = _need_dir("imagenet", data_dir)
    path = _split_dir(root, split, train_split, val_split)
    wnids, names = imagenet_classes()
    wnid_to_label = {w: i for i, w in enumerate(wnids)}
    skipped: list = []
    if class_folders(path):  # wnid-named class folders
        _, entries = scan_class_folders(path, wnids, on_bad_file=on_bad_file, skipped=skipped,
                                        class_to_label=wnid_to_label)
    else:  # the flat ILSVRC-2012 val folder + a labels file
        files = scan_files(path, -1, on_bad_file=on_bad_file, skipped=skipped)
        if not files:
            raise DataError(f"{path} has neither wnid class folders nor image files")
        labels = read_val_labels(path, [f.path for f in files], wnid_to_label, root)
        entries = []
        for f in files:
            if f.path not in labels:
                bad_file(f.path, "no label for this file in the labels file", on_bad_file, skipped)
                continue
            entries.append(FileEntry(f.path, labels[f.path], f.size, f.mtime_ns))
    return _folder_dataset("imagenet", path, names, entries,
                           in_memory=False if in_memory is None else in_memory,
                           on_bad_file=on_bad_file, skipped=skipped, source=str(path),
                           channels=3, workers=workers)


class SourceLoader(Protocol):
    def __call__(self, data_dir: Path | None, split: str, **options: Any) -> Any: ...


# name -> loader(data_dir or None, split, **options). Options (all loaders accept and may ignore
# them): train_split, val_split (folder names), on_bad_file, in_memory, workers.
SOURCES: dict[str, SourceLoader] = {
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
    "cifar10": _cifar("cifar10", hundred=False, coarse=False),
    "cifar100": _cifar("cifar100", hundred=True, coarse=False),  # the 100 fine labels
    "cifar100-coarse": _cifar("cifar100-coarse", hundred=True, coarse=True),  # 20 superclasses
    "folder": _folder,
    "imagenet": _imagenet,
}


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, split: str = "train", *,
                 train_split: str | None = None, val_split: str | None = None,
                 on_bad_file: str = "error", in_memory: bool | None = None,
                 workers: int | None = None, classes: list[str] | None = None):
    """Load split ``train`` or ``test`` of data set ``name`` (see ``SOURCES``).

    Returns an in-memory :class:`ImageDataset`, or for folders of large images (``imagenet``, or
    ``folder`` whose images are over 64 px, not square or not all one size) a streamed
    :class:`~convzoo.data.folder.FolderDataset`; ``in_memory`` forces one or the other. For
    ``folder`` and ``imagenet``, ``train`` reads the sub-folder ``train_split`` (default
    ``train``) and ``test`` reads ``val_split`` (default ``val``; the CIFAR-10 JPEG copy uses
    ``test``). ``on_bad_file`` is ``error`` (a DataError naming the file) or ``skip`` (the file is
    left out and listed in the result's ``skipped``). ``workers``: decoding processes for a folder
    decoded into memory (default: the CPU count, at most 8). ``data_dir`` may be a ``.tar.gz``,
    ``.tgz``, ``.tar`` or ``.zip`` of the folder (extracted once into the cache). ``classes``
    (``folder``'s test split): the class names in label order, e.g. from a model's weights,
    instead of the training split's folders (which then need not exist).
    """
    from .folder import check_on_bad_file

    if name not in SOURCES:
        raise DataError(f"unknown data set {name!r}; expected one of {', '.join(sorted(SOURCES))}")
    check_on_bad_file(on_bad_file)
    path = None
    if data_dir is not None:
        from .cache import extract_archive, is_archive, reported_as

        path = Path(data_dir).expanduser()
        expected = "expected a folder (or a .tar.gz, .tgz, .tar or .zip of one)"
        try:
            path.stat()
        except FileNotFoundError:
            raise DataError(f"data dir {path} does not exist; {expected}") from None
        except OSError as e:  # EACCES on a parent folder is not "does not exist"
            raise DataError(f"cannot open data dir {path}: {e.strerror or e}") from None
        if is_archive(path):  # a .tar.gz / .zip of the data set: extracted once into the cache
            with reported_as(path):
                return load_dataset(name, extract_archive(path), split, train_split=train_split,
                                    val_split=val_split, on_bad_file=on_bad_file,
                                    in_memory=in_memory, workers=workers, classes=classes)
        if not path.is_dir():
            raise DataError(f"data dir {path} is not a folder; {expected}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
    opts: dict[str, Any] = {"classes": classes} if classes is not None else {}
    ds = SOURCES[name](path, split, train_split=train_split, val_split=val_split,
                       on_bad_file=on_bad_file, in_memory=in_memory, workers=workers, **opts)
    log.info("loaded %s %s: %d images of shape %s from %s (%d files skipped)", name, split,
             len(ds), ds.shape, ds.source, len(ds.skipped))
    return ds
