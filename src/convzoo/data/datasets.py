"""The data sets ``--data`` names, in one table (:data:`DATASETS`), their readers, and the preset
each one gives a model (:func:`preset_for`).

An :class:`ImageDataset` is the whole split decoded once: ``images`` (N, C, H, W) uint8 and
``labels`` (N,) int64, with the class names. Augmentation and normalisation happen batch-wise on
the training device (see :mod:`convzoo.data.loader`), never per sample in Python.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..errors import DataError
from .idx import read_idx
from .imagenet import imagenet_classes, read_val_labels
from .presets import (
    CIFAR_MEAN,
    CIFAR_STD,
    DEFAULT_EVAL_SIZES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SMALL_IMAGE,
    DataPreset,
)

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


def _cifar(name: str, *, hundred: bool, coarse: bool):  # noqa: ANN202 - a DataSet reader
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


@dataclass(frozen=True)
class Resource:
    """One official file of a data set, as its publisher lists it (torchvision 0.29 lists the
    same URLs and md5 sums): what ``convzoo data download NAME`` fetches and checks."""

    url: str
    md5: str
    extract: bool = False  # a .tar.gz to unpack into the data dir

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DataSet:
    """Everything the package knows of one named data set (``--data NAME``).

    To add a data set, write its reader and add one ``DataSet`` to :data:`DATASETS`; nothing else
    names it (docs/data.md, "Adding a data set"). ``load(data_dir or None, split, **options)``
    returns split ``"train"`` or ``"test"`` as an :class:`ImageDataset` (or a streamed
    :class:`~convzoo.data.folder.FolderDataset`); the options, which it may ignore, are
    train_split, val_split (folder names), on_bad_file, in_memory, workers and classes.
    """

    name: str
    load: SourceLoader
    preset: DataPreset  # normalisation (mean, std per channel, in [0, 1] units), augmentation
    channels: int  # 1 (grey) or 3 (RGB)
    image_size: int | None  # pixels a side; None: they vary (a folder: the images decide)
    num_classes: int | None  # None: read from the data (a folder's class sub-folders)
    downloads: tuple[Resource, ...] = ()  # the official files; () where there is no download
    about: str = ""  # where it comes from, in one line

    def __post_init__(self) -> None:
        if len(self.preset.mean) != self.channels:
            raise ValueError(f"data set {self.name!r}: its preset has {len(self.preset.mean)} "
                             f"means for {self.channels}-channel images")


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
_CIFAR100_FILES = (Resource(_CIFAR_URL + "cifar-100-python.tar.gz",
                            "eb9058c3a382ffc7106e4002c42a8d85", extract=True),)


# Widely used constants (../shared/REFERENCES.md, "Normalisation constants"). CIFAR-100 reuses the
# CIFAR-10 constants (REFERENCES.md lists no others). Fashion-MNIST's 0.2860/0.3530 are the values
# commonly quoted for its training split; not in REFERENCES.md and not re-measured here.
# CIFAR training augmentation: 4-pixel zero pad + random 32x32 crop + horizontal flip (He et al.
# 2016, Sec. 4.2).
_CIFAR = DataPreset(mean=CIFAR_MEAN, std=CIFAR_STD, crop_padding=4, hflip=True)
# MNIST training augmentation: random shifts of up to 2 pixels (2-pixel zero pad + random 28x28
# crop), a mild form of LeCun et al. 1998's distortions (§III.C). No flips: digits have a
# handedness. Measured on the embedded subset, 12 epochs: 98.2-98.3% with it, 97.3-97.7% without
# (seeds 0-2).
_MNIST = DataPreset(mean=(0.1307,), std=(0.3081,), crop_padding=2)
_FASHION = DataPreset(mean=(0.2860,), std=(0.3530,))
# Folders: ImageNet statistics. Small images (<= 64 px) get the CIFAR-style augmentation with
# padding of 1/8 of the side; large ones the ImageNet crop pipeline (see preset_for).
_PHOTOS = DataPreset(mean=IMAGENET_MEAN, std=IMAGENET_STD, hflip=True)


def _datasets(*entries: DataSet) -> dict[str, DataSet]:
    out = {d.name: d for d in entries}
    if len(out) != len(entries):
        raise ValueError("two data sets of one name")
    return out


# The one table of data sets: name -> everything known of it.
DATASETS: dict[str, DataSet] = _datasets(
    DataSet(
        "mnist", _mnist, _MNIST, channels=1, image_size=28, num_classes=10,
        downloads=(
            Resource(_MNIST_URL + "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            Resource(_MNIST_URL + "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            Resource(_MNIST_URL + "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            Resource(_MNIST_URL + "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
        about="LeCun et al. 1998: handwritten digits; a 10,000/2,000-image subset ships inside",
    ),
    DataSet(
        "fashion-mnist", _fashion_mnist, _FASHION, channels=1, image_size=28, num_classes=10,
        downloads=(
            Resource(_FASHION_URL + "train-images-idx3-ubyte.gz",
                     "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            Resource(_FASHION_URL + "train-labels-idx1-ubyte.gz",
                     "25c81989df183df01b3e8a0aad5dffbe"),
            Resource(_FASHION_URL + "t10k-images-idx3-ubyte.gz",
                     "bef4ecab320f06d8554ea6380940ec79"),
            Resource(_FASHION_URL + "t10k-labels-idx1-ubyte.gz",
                     "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
        about="Xiao et al. 2017: Zalando's clothes, MNIST's format",
    ),
    DataSet(
        "cifar10", _cifar("cifar10", hundred=False, coarse=False), _CIFAR, channels=3,
        image_size=32, num_classes=10,
        downloads=(Resource(_CIFAR_URL + "cifar-10-python.tar.gz",
                            "c58f30108f718f92721af3b95e74349a", extract=True),),
        about="Krizhevsky 2009: the python or binary batches",
    ),
    DataSet(
        "cifar100", _cifar("cifar100", hundred=True, coarse=False), _CIFAR, channels=3,
        image_size=32, num_classes=100, downloads=_CIFAR100_FILES,
        about="Krizhevsky 2009: the 100 fine labels",
    ),
    DataSet(
        "cifar100-coarse", _cifar("cifar100-coarse", hundred=True, coarse=True), _CIFAR,
        channels=3, image_size=32, num_classes=20, downloads=_CIFAR100_FILES,
        about="CIFAR-100's 20 superclasses",
    ),
    DataSet(
        "folder", _folder, _PHOTOS, channels=3, image_size=None, num_classes=None,
        about="ROOT/train/CLASS/*.jpg and ROOT/val/CLASS/*.jpg: any images, one folder a class",
    ),
    DataSet(
        "imagenet", _imagenet, _PHOTOS, channels=3, image_size=None, num_classes=1000,
        about="ILSVRC-2012: wnid class folders, or a flat val folder with a labels file",
    ),
)


class _FieldView(MutableMapping):
    """:data:`DATASETS` seen through one field, under the names older code used (``SOURCES``:
    the readers, ``PRESETS``: the presets, ``RESOURCES``: the downloads of the data sets that have
    some). Setting an existing data set's entry replaces that field of its DataSet (tests swap in
    a smaller reader); a new name is refused: it belongs in DATASETS, with everything it needs."""

    def __init__(self, field: str) -> None:
        self._field = field

    def __getitem__(self, name: str) -> Any:
        value = getattr(DATASETS[name], self._field) if name in DATASETS else None
        if not value:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in DATASETS:
            raise DataError(f"data set {name!r} is not in convzoo.data.DATASETS: add a DataSet "
                            "(reader, preset, channels, sizes) there (docs/data.md, 'Adding a "
                            "data set')")
        DATASETS[name] = dataclasses.replace(DATASETS[name], **{self._field: value})

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"remove data set {name!r} from DATASETS, not from one of its fields")

    def __iter__(self) -> Iterator[str]:
        return (name for name, entry in DATASETS.items() if getattr(entry, self._field))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


SOURCES = _FieldView("load")  # name -> reader
PRESETS = _FieldView("preset")  # name -> DataPreset
RESOURCES = _FieldView("downloads")  # name -> its official files


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, split: str = "train", *,
                 train_split: str | None = None, val_split: str | None = None,
                 on_bad_file: str = "error", in_memory: bool | None = None,
                 workers: int | None = None, classes: list[str] | None = None):
    """Load split ``train`` or ``test`` of data set ``name`` (see :data:`DATASETS`).

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

    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; expected one of {', '.join(sorted(DATASETS))}")
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


def preset_for(data: str, *, in_chans: int, image_size: int | None,
               input_size: int | None = None, eval_sizes: tuple[int, int] | None = None,
               lighting: float = 0.0, scale_jitter: tuple[int, int] | None = None) -> DataPreset:
    """The preset of data set ``data`` (its :class:`DataSet`'s), adapted to the model's channels
    and input size. A name without a DataSet is refused, saying what to add: no silent default.

    ``image_size`` is the side of the decoded in-memory images, or None for a streamed folder.
    ``input_size`` is the side the model sees (from
    :func:`convzoo.engine.input_size.resolve_input_size`); images are resized to it, never
    padded. In memory: batches of another side than ``input_size`` are resized on the device
    after crop/flip (``resize_to``; None when the sizes agree). ``eval_sizes`` (resize, crop) in
    pixels is the eval transform of the model's weights, which carry it as torchvision's do
    (:func:`convzoo.hub.eval_sizes`; default :data:`DEFAULT_EVAL_SIZES`): this module knows no
    model. Streamed folders crop to ``input_size`` (default: that crop): for inputs over
    :data:`SMALL_IMAGE` px the ImageNet pipeline (train: RandomResizedCrop + flip; eval: resize
    the shorter side to ``eval_sizes``' resize scaled to the input, then center crop); for small
    inputs the whole image resized to the input (shorter side + center crop), and for training
    the CIFAR-style shift by 1/8 of the side + flip. ``lighting`` (AlexNet PCA noise std, e.g.
    0.1) and ``scale_jitter`` (VGG's (S_min, S_max), e.g. (256, 512)) only apply to streamed
    folders.
    """
    entry = DATASETS.get(data)
    if entry is None:
        raise DataError(f"data set {data!r} has no preset (mean, std, augmentation): add a "
                        f"DataSet(name={data!r}, ...) to convzoo.data.DATASETS (docs/data.md, "
                        "'Adding a data set'), or train it as a DataSource whose preset_of "
                        f"names one of {', '.join(sorted(DATASETS))}")
    base = entry.preset
    varied = entry.image_size is None  # a folder: small images in memory, large ones streamed
    mean, std = base.mean, base.std
    if len(mean) != in_chans:  # e.g. a 1-channel preset feeding a model built for 3 channels
        mean, std = (sum(mean) / len(mean),) * in_chans, (sum(std) / len(std),) * in_chans
    if image_size is None or (varied and image_size > SMALL_IMAGE):
        resize, crop = eval_sizes or DEFAULT_EVAL_SIZES
        if input_size is not None and input_size != crop:
            resize, crop = round(input_size * resize / crop), input_size
        if crop <= SMALL_IMAGE:  # small input: keep the whole image, shift it as CIFAR's
            return DataPreset(mean=mean, std=std, crop_padding=max(1, crop // 8), hflip=True,
                              crop_size=crop, resize_size=crop, lighting=lighting,
                              scale_jitter=scale_jitter)
        return DataPreset(mean=mean, std=std, hflip=True, crop_size=crop, resize_size=resize,
                          lighting=lighting, scale_jitter=scale_jitter)
    crop_padding = base.crop_padding
    if varied:
        crop_padding = max(1, image_size // 8)  # 4 for 32x32 images, as CIFAR's
    return DataPreset(mean=mean, std=std, crop_padding=crop_padding, hflip=base.hflip,
                      resize_to=input_size if input_size != image_size else None)
