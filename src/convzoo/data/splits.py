"""Train / validation / test splits for the trainer, and the loader that fits each data set.

``load_splits`` is the one call the trainer makes: it loads the training and test splits (of a
registered data set name, or of a :class:`DataSource` built in code), carves a seeded, stratified
validation split out of the training data when asked (``holdout``), and gathers every file left
out as bad. ``Splits.preset`` gives the preset, and ``make_loader`` the batch iterator: the
in-memory :class:`~convzoo.data.loader.BatchLoader` or the DataLoader-based
:class:`~convzoo.data.stream.StreamLoader` for folders of large images.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import DataError
from .datasets import ImageDataset, load_dataset, preset_for
from .folder import FolderDataset
from .loader import BatchLoader
from .presets import DataPreset
from .stream import StreamLoader

AnyDataset = ImageDataset | FolderDataset


@dataclass(frozen=True)
class DataSource:
    """A data set made in code rather than named in ``convzoo.data.DATASETS`` (e.g. an
    experiment's class-balanced subset of CIFAR-10 without augmentation); train on it with
    ``fit(cfg, source=...)``, where ``cfg.data`` is its ``name``. Nothing global is registered.

    ``load(split)`` returns split ``"train"`` or ``"test"``; ``preset_of`` names the registered
    data set whose preset rules (normalisation, augmentation, sizes) apply; ``augment=False``
    drops the random crop and flip (normalisation kept).
    """

    name: str
    load: Callable[[str], AnyDataset]
    preset_of: str
    augment: bool = True

    def preset(self, **kwargs) -> DataPreset:
        """:func:`~convzoo.data.preset_for` of ``preset_of`` with ``kwargs`` (in_chans,
        image_size, input_size, eval_sizes, ...), without the random crop/flip when not
        augmenting."""
        p = preset_for(self.preset_of, **kwargs)
        return p if self.augment else dataclasses.replace(p, crop_padding=0, hflip=False)


@dataclass
class Splits:
    """What :func:`load_splits` returns.

    ``train``: the data to fit (without the held-out part); ``val``: the held-out part of the
    training data (None without ``holdout``), the only split to make choices on (best checkpoint,
    plateau schedules); ``test``: the official test split (``val_split`` folder for folders), to
    report only. ``skipped``: every (path, reason) left out with ``on_bad_file="skip"``, both
    splits together. ``streamed``: True when the splits are :class:`FolderDataset` (large images
    decoded per batch by DataLoader workers) rather than in-memory :class:`ImageDataset`.
    """

    train: AnyDataset
    val: AnyDataset | None
    test: AnyDataset
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: DataSource | None = None  # the in-code source, when not a registered name

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    def preset(self, **kwargs) -> DataPreset:
        """The preset of these splits: :func:`~convzoo.data.preset_for` of the data set's name
        (or the source's :meth:`DataSource.preset`) with ``kwargs`` (in_chans, input_size,
        eval_sizes, ...); ``image_size`` defaults to :attr:`image_size`."""
        kwargs.setdefault("image_size", self.image_size)
        if self.source is not None:
            return self.source.preset(**kwargs)
        return preset_for(self.train.name, **kwargs)

    @property
    def streamed(self) -> bool:
        return isinstance(self.train, FolderDataset)

    @property
    def image_size(self) -> int | None:
        """Side of the in-memory images (e.g. 28, 32); None for streamed folders."""
        return None if self.streamed else self.train.shape[1]

    @property
    def common_size(self) -> int | None:
        """Side of the training images when they are all square and of one size, in memory or
        streamed (a folder of 96x96 photos: 96); None for images of mixed sizes."""
        if not self.streamed:
            return self.train.shape[1]
        return getattr(self.train, "common_size", None)

    @property
    def channels(self) -> int:
        return self.train.shape[0]

    def summary(self) -> dict:
        """Counts and sources, for the run directory (``data.json``)."""
        return {
            "name": self.train.name,
            "classes": len(self.classes),
            "train": len(self.train), "val": None if self.val is None else len(self.val),
            "test": len(self.test), "source": self.train.source, "test_source": self.test.source,
            "streamed": self.streamed, "skipped": len(self.skipped),
        }


def holdout_split(dataset: AnyDataset, fraction: float, seed: int = 0
                  ) -> tuple[AnyDataset, AnyDataset]:
    """(train, val): ``fraction`` of each class, drawn with ``seed``, held out as validation.

    Stratified: every class gives ``round(fraction * n_class)`` images (at least one for a class
    with two or more, never all of a class), so class balance is the same in both parts. The same
    data, fraction and seed always give the same split; the order within each part is the
    original order.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"holdout fraction {fraction}: expected a number between 0 and 1")
    labels = dataset.labels
    g = torch.Generator().manual_seed(seed)
    val_parts = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        n = len(idx)
        k = min(max(round(fraction * n), 1 if n >= 2 else 0), n - 1)
        if k:
            val_parts.append(idx[torch.randperm(n, generator=g)[:k]])
    if not val_parts:
        raise DataError(f"holdout {fraction} of {len(dataset)} images leaves no validation images")
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[torch.cat(val_parts)] = True
    train, val = dataset.subset(torch.nonzero(~is_val).flatten()), dataset.subset(
        torch.nonzero(is_val).flatten())
    train.skipped = list(getattr(dataset, "skipped", []))
    return train, val


def load_splits(name: str | DataSource, data_dir: str | os.PathLike | None = None, *,
                holdout: float = 0.0,
                seed: int = 0, train_split: str | None = None, val_split: str | None = None,
                on_bad_file: str = "error", in_memory: bool | None = None,
                workers: int | None = None) -> Splits:
    """Load data set ``name`` for training: train, optional held-out val, test, skipped files.

    Args:
        name: a ``convzoo.data.DATASETS`` name: mnist, fashion-mnist, cifar10, cifar100 (fine
            labels), cifar100-coarse, folder, imagenet; or a :class:`DataSource` (which loads
            its own splits: ``data_dir`` and the split and file options are then not used).
        data_dir: the folder holding the files (None: the embedded MNIST subset, mnist only).
        holdout: fraction of the training split held out as validation, stratified per class and
            drawn with ``seed`` (0: no validation split, ``Splits.val`` is None).
        seed: seeds the holdout draw.
        train_split, val_split: sub-folder names of ``folder``/``imagenet`` (defaults ``train``
            and ``val``); the ``val_split`` folder is the test split (reported, never chosen on).
        on_bad_file: ``"error"`` raises DataError naming the first bad file and its reason;
            ``"skip"`` leaves bad files out and lists them in ``Splits.skipped``.
        in_memory: force (True) or forbid (False) decoding a folder into memory; None decides by
            image size (folder: at most 64 px a side and one size; imagenet: streamed). The two
            splits are always of one kind (one preset serves both): when one would be in memory
            and the other streamed, or both in memory at different sizes, both are streamed.
        workers: processes decoding a folder into memory (default: CPU count, at most 8).

    Returns:
        :class:`Splits` with ``train``, ``val`` (or None), ``test``, ``skipped``. Each split is an
        :class:`ImageDataset` (in memory) or a :class:`FolderDataset` (streamed; see
        ``Splits.streamed``); feed either to :func:`make_loader`. The run directory should record
        ``Splits.summary()``, ``Splits.classes``, the preset in use and ``Splits.skipped`` (plus
        ``loader.skipped`` of streamed loaders, found while training).

    Raises:
        DataError: unknown name, missing or malformed files, bad files with ``on_bad_file="error"``.
    """
    source = name if isinstance(name, DataSource) else None
    if source is not None:
        train, test = source.load("train"), source.load("test")
        name = source.name
    else:
        opts = dict(train_split=train_split, val_split=val_split, on_bad_file=on_bad_file,
                    in_memory=in_memory, workers=workers)
        train = load_dataset(name, data_dir, "train", **opts)
        test = load_dataset(name, data_dir, "test", **opts)
        if _kind(train) != _kind(test) and in_memory is None:
            opts["in_memory"] = False
            train, test = (load_dataset(name, data_dir, split, **opts) if _kind(ds) else ds
                           for split, ds in (("train", train), ("test", test)))
    if _kind(train) != _kind(test):
        raise DataError(f"{name}: the train split is {_describe(train)} and the test split "
                        f"{_describe(test)} ({test.source}); one preset cannot serve both (pass "
                        "in_memory=False to stream both)")
    if train.classes != test.classes:
        raise DataError(f"{name}: the train split has {len(train.classes)} classes and the test "
                        f"split {len(test.classes)} ({test.source}); they must match")
    skipped = list(train.skipped) + list(test.skipped)
    val = None
    if holdout:
        train, val = holdout_split(train, holdout, seed)
    return Splits(train=train, val=val, test=test, skipped=skipped, source=source)


def _kind(ds: AnyDataset) -> tuple[int, ...] | None:
    """None for a streamed split; the image shape (C, H, W) of an in-memory one."""
    return None if isinstance(ds, FolderDataset) else ds.shape


def _describe(ds: AnyDataset) -> str:
    kind = _kind(ds)
    return "streamed" if kind is None else f"in memory at {kind[1]}x{kind[2]} px"


def balanced_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of ``n`` images of a split with these ``labels``, as equal a share of every class
    as possible, drawn with ``seed`` (the same seed gives the same images: an experiment's arms
    and seeds, or every epoch of ``--eval-train``, see the same ones)."""
    classes = torch.unique(labels).tolist()
    g = torch.Generator().manual_seed(seed)
    per = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
    parts = []
    for c, k in zip(classes, per, strict=False):
        idx = torch.nonzero(labels == c).flatten()
        parts.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.sort(torch.cat(parts)).values


def make_loader(dataset: AnyDataset, preset: DataPreset, *, batch_size: int, train: bool,
                device: torch.device | str = "cpu", in_chans: int | None = None, seed: int = 0,
                drop_last: bool = False, workers: int = 4, channels_last: bool = False
                ) -> BatchLoader | StreamLoader:
    """THE batch iterator of ``(x, y)`` on ``device`` for either kind of split: ``x`` normalised
    float (B, C, H, W), ``y`` int64 class indices.

    In-memory data: :class:`BatchLoader` (augmentation batch-wise on ``device``; ``workers`` is
    not used). Streamed folders: :class:`~convzoo.data.stream.StreamLoader` with ``workers``
    DataLoader processes (persistent, prefetching), pinned memory on CUDA; its ``skipped`` lists
    the bad files met. Iterating either gives one pass (shuffled with ``seed`` when ``train``);
    ``loader.batches(order, start=..., generator=...)`` gives a pass over a fixed order of dataset
    indices, from batch ``start`` on (the trainer's seeded, sharded, resumable epochs).
    """
    if isinstance(dataset, FolderDataset):
        if not preset.streamed:
            raise DataError(f"{dataset.source} is a streamed folder but the preset has no "
                            "crop_size; build it with preset_for(..., image_size=None)")
        return StreamLoader(dataset, preset, batch_size=batch_size, train=train, device=device,
                            in_chans=in_chans, seed=seed, drop_last=drop_last, workers=workers,
                            channels_last=channels_last)
    return BatchLoader(dataset, preset, batch_size=batch_size, train=train, device=device,
                       in_chans=in_chans, seed=seed, drop_last=drop_last,
                       channels_last=channels_last)
