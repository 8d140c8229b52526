"""ImageNet-layout folders: ``ROOT/SPLIT/CLASS/*.jpg`` (JPEG, PNG, ...), one sub-folder per class.

Two ways in:

* small square images all of one size (CIFAR-like, at most
  :data:`~convzoo.data.presets.SMALL_IMAGE` pixels a side) are decoded once into a uint8
  (N, C, H, W) tensor, cached under ``$CONVZOO_CACHE`` (see :mod:`.cache`) and then trained from
  memory like MNIST;
* larger, non-square or mixed-size images stay on disk: :class:`FolderDataset` is a torch
  ``Dataset`` that decodes one file per item, for a ``DataLoader`` with workers (see
  :mod:`.stream`), which resizes them to the model's input size.

Each file is decoded by :func:`convzoo.data.images.decode_file`, the package's one image opener
(one pixel cap), to the data set's channels (RGB or grey). A file that cannot be decoded, an empty
file, or a file that is not an image raises :class:`DataError` naming it, or with
``on_bad_file="skip"`` is left out and reported as ``(path, reason)``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError
from . import cache
from .imagenet import LABEL_FILES
from .images import decode_file

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                              ".ppm", ".pgm", ".pbm"})
BAD_FILE_MODES = ("error", "skip")

Skipped = list[tuple[str, str]]  # (path, reason)


class MixedSizes(Exception):
    """Raised by an in-memory decode that meets an image of another size (the folder is then
    streamed instead): ``path`` and its (H, W)."""

    def __init__(self, path: str, size: tuple[int, int], expected: tuple[int, int]) -> None:
        super().__init__(f"{path} is {size[1]}x{size[0]}, the folder's images {expected[1]}x"
                         f"{expected[0]}")
        self.path, self.size = path, size


@dataclass(frozen=True)
class FileEntry:
    path: str
    label: int
    size: int  # bytes
    mtime_ns: int


def check_on_bad_file(on_bad_file: str) -> None:
    if on_bad_file not in BAD_FILE_MODES:
        raise DataError(f"on_bad_file {on_bad_file!r}: expected 'error' or 'skip'")


def bad_file(path: str | os.PathLike, reason: str, on_bad_file: str, skipped: Skipped) -> None:
    """Raise a DataError naming ``path`` (``error``) or record it (``skip``)."""
    if on_bad_file == "error":
        raise DataError(f"{path}: {reason} (pass on_bad_file='skip' / --on-bad-file skip to leave "
                        "such files out)")
    log.warning("skipping %s: %s", path, reason)
    skipped.append((str(path), reason))


# --- scanning --------------------------------------------------------------------------------

def _visible(name: str) -> bool:
    return not name.startswith(".") and name != "__MACOSX"


def class_folders(root: Path) -> list[str]:
    """Sorted names of the class sub-folders of ``root`` (hidden ones ignored)."""
    try:
        st = os.stat(root)
    except OSError as e:  # "No such file" only when there is none: EACCES etc. say so
        raise DataError(f"cannot open {root}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise DataError(f"{root} is not a folder")
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir() and _visible(e.name))
    except OSError as e:
        raise DataError(f"cannot list {root}: {e.strerror or e}") from None
    return names


def scan_files(folder: Path, label: int, *, on_bad_file: str, skipped: Skipped,
               seen: set[str] | None = None) -> list[FileEntry]:
    """The image files under ``folder`` (recursively, sorted), checked for extension and size.

    ``seen``: real paths of folders scanned (or to be scanned) by others, e.g. the other class
    folders of the split; a link to one of them is not followed (and is added to)."""
    out: list[FileEntry] = []

    def unreadable(e: OSError) -> None:  # os.walk would skip the folder: an "empty" class
        raise DataError(f"cannot list {e.filename}: {e.strerror or e}")

    # Links to folders are followed, but no folder twice: a link to an ancestor (a loop) or to a
    # folder already scanned would count, and label, the same images again.
    seen = set() if seen is None else seen
    seen.add(os.path.realpath(folder))
    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable, followlinks=True):
        here = os.path.realpath(dirpath)
        keep = []
        for d in sorted(d for d in dirnames if _visible(d)):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen or (here + os.sep).startswith(real.rstrip(os.sep) + os.sep):
                bad_file(os.path.join(dirpath, d), f"link to a folder already scanned or above "
                         f"it ({real}): a loop, followed no further", on_bad_file, skipped)
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not _visible(name):
                continue  # .DS_Store, ._foo.jpg and the like: never data
            if name in LABEL_FILES and dirpath == str(folder):
                continue  # read by read_val_labels, not an image to refuse
            path = os.path.join(dirpath, name)
            ext = os.path.splitext(name)[1].lower()
            if ext not in IMAGE_EXTENSIONS:
                bad_file(path, f"not an image file (extension {ext or 'none'!r}; expected one of "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))})", on_bad_file, skipped)
                continue
            try:
                st = os.stat(path)
            except OSError as e:
                bad_file(path, f"cannot stat ({e.strerror or e})", on_bad_file, skipped)
                continue
            if st.st_size == 0:
                bad_file(path, "empty file (0 bytes)", on_bad_file, skipped)
                continue
            out.append(FileEntry(path, label, st.st_size, st.st_mtime_ns))
    return out


def scan_class_folders(root: Path, classes: list[str] | None = None, *, on_bad_file: str,
                       skipped: Skipped, class_to_label: dict[str, int] | None = None
                       ) -> tuple[list[str], list[FileEntry]]:
    """Class names and files of a class-per-folder split.

    ``classes`` (e.g. the training split's) fixes the label of each folder name; a folder of this
    split that is not among them is an error, since its images could not be labelled consistently.
    ``class_to_label`` overrides the folder -> label map (ImageNet: the index of the wnid).
    """
    found = class_folders(root)
    if not found:
        raise DataError(f"{root} has no class sub-folders; expected ROOT/CLASS/IMAGE files "
                        "(an ImageNet-style layout)")
    if classes is None:
        classes = found
    if class_to_label is None:
        class_to_label = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in found if c not in class_to_label]
    if unknown:
        raise DataError(f"{root} has class folders {unknown[:5]} that the training split "
                        f"({len(classes)} classes) does not have")
    entries: list[FileEntry] = []
    seen = {os.path.realpath(root / name) for name in found}  # a link into another class: no
    for name in found:
        files = scan_files(root / name, class_to_label[name], on_bad_file=on_bad_file,
                           skipped=skipped, seen=seen)
        if not files:
            bad_file(root / name, "empty class folder (no image files)", on_bad_file, skipped)
        entries.extend(files)
    if not entries:
        raise DataError(f"{root} has class folders but no image files in them")
    return classes, entries


def _decode_chunk(args: tuple[list[str], int, tuple[int, int] | None]
                  ) -> tuple[torch.Tensor, list[int], list[tuple[int, str]],
                             list[tuple[int, tuple[int, int]]]]:
    """Decode files into one (n, C, H, W) block; failures come back as (index, reason), images of
    another size than ``size`` as (index, (H, W))."""
    paths, channels, size = args
    images, good, bad, odd = [], [], [], []
    for i, p in enumerate(paths):
        try:
            img = decode_file(p, channels)
        except DataError as e:
            bad.append((i, str(e).removeprefix(f"{p}: ")))
            continue
        if size is not None and tuple(img.shape[1:]) != size:
            odd.append((i, tuple(img.shape[1:])))
            continue
        images.append(img)
        good.append(i)
    block = torch.stack(images) if images else torch.empty(0, channels, *(size or (0, 0)),
                                                           dtype=torch.uint8)
    return block, good, bad, odd


def probe_sizes(entries: list[FileEntry], channels: int, k: int = 32) -> Counter:
    """(H, W) counts of up to ``k`` files spread over the folder (unreadable ones ignored)."""
    step = max(1, len(entries) // k)
    sizes: Counter = Counter()
    for e in entries[::step][:k]:
        try:
            sizes[tuple(decode_file(e.path, channels).shape[1:])] += 1
        except DataError:
            continue
    return sizes


def decode_all(entries: list[FileEntry], channels: int, size: tuple[int, int], *,
               on_bad_file: str, skipped: Skipped, workers: int = 0, mixed_ok: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every file into (N, C, H, W) uint8 + (N,) labels, in ``workers`` processes.

    An image of another size than ``size`` raises :class:`MixedSizes` with ``mixed_ok`` (the
    caller streams the folder instead); without, it is a bad file."""
    chunk = 512
    jobs = [([e.path for e in entries[i:i + chunk]], channels, size)
            for i in range(0, len(entries), chunk)]
    if workers > 0 and len(jobs) > 1:
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            results = pool.map(_decode_chunk, jobs, chunksize=1)
    else:
        results = [_decode_chunk(j) for j in jobs]
    blocks, labels = [], []
    for start, (block, good, bad, odd) in zip(range(0, len(entries), chunk), results,
                                              strict=True):
        for i, (h, w) in odd:
            path = entries[start + i].path
            if mixed_ok:
                raise MixedSizes(path, (h, w), size)
            bad_file(path, f"image is {w}x{h}, the folder's images are {size[1]}x{size[0]}",
                     on_bad_file, skipped)
        for i, reason in bad:
            bad_file(entries[start + i].path, reason, on_bad_file, skipped)
        blocks.append(block)
        labels.extend(entries[start + i].label for i in good)
    return torch.cat(blocks), torch.tensor(labels, dtype=torch.int64)


def default_workers() -> int:
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1), 8)


def load_folder_in_memory(root: Path, classes: list[str], entries: list[FileEntry], *,
                          channels: int, on_bad_file: str, skipped: Skipped,
                          size: tuple[int, int] | None = None, workers: int | None = None,
                          use_cache: bool = True, mixed_ok: bool = False
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a scanned split into memory, through the cache keyed by the files' identity.

    ``mixed_ok``: an image of another size raises :class:`MixedSizes` (see :func:`decode_all`)."""
    if size is None:
        sizes = probe_sizes(entries, channels)
        if not sizes:
            raise DataError(f"{root}: none of the probed files could be decoded")
        size = sizes.most_common(1)[0][0]
    rel = [(os.path.relpath(e.path, root), e.size, e.mtime_ns) for e in entries]
    settings = {"root": str(root.resolve()), "channels": channels, "size": list(size),
                "classes": classes, "labels": [e.label for e in entries]}
    key = cache.identity_key(rel, settings)
    path = cache.cache_path("folders", key)
    hit = cache.load_cached(path) if use_cache else None
    if hit is not None:
        images, labels, meta = hit
        for p, reason in meta.get("skipped", []):
            bad_file(p, reason, on_bad_file, skipped)
        log.info("%s: %d decoded images from cache %s", root, len(labels), path)
        return images, labels
    n_workers = default_workers() if workers is None else workers
    log.info("%s: decoding %d images (%dx%d, %d channels) with %d workers", root, len(entries),
             size[1], size[0], channels, n_workers)
    own_skipped: Skipped = []
    images, labels = decode_all(entries, channels, size, on_bad_file=on_bad_file,
                                skipped=own_skipped, workers=n_workers, mixed_ok=mixed_ok)
    skipped.extend(own_skipped)
    if use_cache:
        cache.save_cached(path, images, labels, {"root": str(root), "classes": classes,
                                                 "skipped": own_skipped})
    return images, labels


# --- the streaming Dataset (large images) ---------------------------------------------------

class FolderDataset(torch.utils.data.Dataset):
    """Files decoded one by one on access, for a DataLoader with workers.

    ``__getitem__`` returns ``(image, label)`` with ``image`` the uint8 (C, H, W) tensor after
    ``transform``; a bad file raises :class:`DataError` naming it, or with ``on_bad_file="skip"``
    returns ``(None, label, (path, reason))`` which the loader's collate drops and records.
    Shares the surface of :class:`~convzoo.data.datasets.ImageDataset` that holdout and info use:
    ``labels``, ``classes``, ``name``, ``source``, ``skipped``, ``subset``.
    """

    def __init__(self, paths: list[str], labels: torch.Tensor, classes: list[str], *, name: str,
                 source: str, channels: int = 3, on_bad_file: str = "error",
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 skipped: Skipped | None = None, common_size: int | None = None) -> None:
        self.paths = list(paths)
        # The side of the images when a probe found them all square and of one size (a folder
        # of 96x96 photos), else None: the input size rule uses it
        # (engine.input_size.resolve_input_size).
        self.common_size = common_size
        self.labels = labels
        self.classes = classes
        self.name = name
        self.source = source
        self.channels = channels
        self.on_bad_file = on_bad_file
        self.transform = transform
        self.skipped: Skipped = list(skipped or [])

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, ...]:
        """(C,) only: the images of a streamed folder need not share a size."""
        return (self.channels,)

    def subset(self, index: torch.Tensor) -> FolderDataset:
        idx = index.tolist()
        return FolderDataset([self.paths[i] for i in idx], self.labels[index], self.classes,
                             name=self.name, source=self.source, channels=self.channels,
                             on_bad_file=self.on_bad_file, transform=self.transform,
                             common_size=self.common_size)

    def with_transform(self, transform: Callable[[torch.Tensor], torch.Tensor] | None
                       ) -> FolderDataset:
        ds = self.subset(torch.arange(len(self)))
        ds.transform = transform
        ds.skipped = list(self.skipped)
        return ds

    def __getitem__(self, i: int):  # noqa: ANN204 - (tensor, int) or (None, int, (path, reason))
        path, label = self.paths[i], int(self.labels[i])
        try:
            img = decode_file(path, self.channels)
        except DataError as e:
            if self.on_bad_file == "error":
                raise
            return None, label, (path, str(e).removeprefix(f"{path}: "))
        if self.transform is not None:
            img = self.transform(img)
        return img, label
