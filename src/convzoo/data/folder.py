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
from .images import decode_file

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                              ".ppm", ".pgm", ".pbm"})
BAD_FILE_MODES = ("error", "skip")
# The labels files read_val_labels looks for in a flat val folder (never images).
LABEL_FILES = frozenset({"val_labels.txt", "val.txt", "LOC_val_solution.csv", "map_clsloc.txt",
                         "ILSVRC2012_validation_ground_truth.txt", "meta.mat"})

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
        # of 96x96 photos), else None: the input size rule uses it (presets.resolve_input_size).
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


# --- ILSVRC-2012 validation layout -----------------------------------------------------------

def read_val_labels(val_dir: Path, files: list[str], wnid_to_label: dict[str, int],
                    data_dir: Path) -> dict[str, int]:
    """Labels of a flat ILSVRC-2012 val folder, from the first labels file found.

    Accepted, looked for in ``val_dir`` then ``data_dir``:

    * ``val_labels.txt`` / ``val.txt``: ``FILENAME LABEL`` per line, LABEL a wnid or a 0-based
      class index (the order of imagenet_class_index.json);
    * ``LOC_val_solution.csv`` (the Kaggle copy): ``ImageId,PredictionString``, first wnid used;
    * the devkit's ``ILSVRC2012_validation_ground_truth.txt``: one 1-based ILSVRC2012_ID per
      line, for the files in sorted order, with ``map_clsloc.txt`` (``WNID ID NAME`` lines) to
      turn IDs into wnids, or else the devkit's ``meta.mat`` (looked for beside the ground-truth
      file, in a ``data/`` folder there, then in the places above; see :func:`read_meta_mat`).
    """
    places = [val_dir, data_dir, data_dir / "ILSVRC2012_devkit_t12" / "data"]
    for fname in ("val_labels.txt", "val.txt"):
        path = _find_file(places, fname)
        if path is not None:
            return _read_filename_labels(path, val_dir, files, wnid_to_label)
    path = _find_file(places, "LOC_val_solution.csv")
    if path is not None:
        return _read_kaggle_solution(path, val_dir, files, wnid_to_label)
    path = _find_file(places, "ILSVRC2012_validation_ground_truth.txt")
    if path is not None:
        return _read_devkit_ground_truth(path, val_dir, files, wnid_to_label, places, data_dir)
    raise DataError(f"{val_dir} is a flat folder of images without a labels file; expected "
                    "val_labels.txt (FILENAME LABEL), LOC_val_solution.csv, or the devkit's "
                    "ILSVRC2012_validation_ground_truth.txt with map_clsloc.txt or meta.mat")


def _find_file(places: list[Path], name: str) -> Path | None:
    """``name`` in the first of ``places`` that has it as a file, else None."""
    return next((p / name for p in places if (p / name).is_file()), None)


def _val_label(token: str, where: str, wnid_to_label: dict[str, int]) -> int:
    """The class index of a label ``token``: a wnid, or a 0-based class index."""
    if token in wnid_to_label:
        return wnid_to_label[token]
    if token.isascii() and token.isdigit() and int(token) < len(wnid_to_label):  # not "²"
        return int(token)
    raise DataError(f"{where}: label {token!r} is neither a known wnid nor a class index")


def _read_filename_labels(path: Path, val_dir: Path, files: list[str],
                          wnid_to_label: dict[str, int]) -> dict[str, int]:
    """``val_labels.txt`` / ``val.txt``: ``FILENAME LABEL`` per line."""
    names = {Path(f).name: f for f in files}
    out: dict[str, int] = {}
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{path}:{n}: expected 'FILENAME LABEL', got {line!r}")
        key = names.get(Path(parts[0]).name)
        if key is None:
            raise DataError(f"{path}:{n}: {parts[0]} is not a file of {val_dir}")
        _refuse_twice(out, key, f"{path}:{n}")
        out[key] = _val_label(parts[1], f"{path}:{n}", wnid_to_label)
    return out


def _refuse_twice(labels: dict[str, int], key: str, where: str) -> None:
    """A labels file that names one image twice (with one label or two) is a damaged file."""
    if key in labels:
        raise DataError(f"{where}: {Path(key).name} is listed a second time; a labels file "
                        f"names each image once")


def _read_kaggle_solution(path: Path, val_dir: Path, files: list[str],
                          wnid_to_label: dict[str, int]) -> dict[str, int]:
    """``LOC_val_solution.csv``: ``ImageId,PredictionString`` per line, its first wnid used."""
    stems = {Path(f).stem: f for f in files}
    out: dict[str, int] = {}
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if n == 1 and line.lower().startswith("imageid"):
            continue
        if not line.strip():
            continue
        image_id, _, pred = line.partition(",")
        key = stems.get(image_id.strip())
        if key is None:
            raise DataError(f"{path}:{n}: {image_id} is not a file of {val_dir}")
        tokens = pred.split()
        if not tokens:
            raise DataError(f"{path}:{n}: no label in {line!r}")
        _refuse_twice(out, key, f"{path}:{n}")
        out[key] = _val_label(tokens[0], f"{path}:{n}", wnid_to_label)
    return out


def _read_devkit_ground_truth(path: Path, val_dir: Path, files: list[str],
                              wnid_to_label: dict[str, int], places: list[Path],
                              data_dir: Path) -> dict[str, int]:
    """The devkit's ``ILSVRC2012_validation_ground_truth.txt``: one ILSVRC2012_ID per line for
    the files in sorted order, turned into wnids by map_clsloc.txt or meta.mat."""
    id_to_wnid, mapping = _devkit_id_to_wnid(path, places, data_dir)
    ids = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    ordered = sorted(files, key=lambda f: Path(f).name)
    if len(ids) != len(ordered):
        raise DataError(f"{path} has {len(ids)} labels but {val_dir} has {len(ordered)} images")
    out: dict[str, int] = {}
    for n, (f, i) in enumerate(zip(ordered, ids, strict=True), 1):
        if i not in id_to_wnid:
            leaf = mapping.suffix == ".mat"
            what = "a leaf class (num_children 0) of" if leaf else "in"
            raise DataError(f"{path}:{n}: ILSVRC2012_ID {i!r} is not {what} {mapping}")
        out[f] = _val_label(id_to_wnid[i], f"{mapping}", wnid_to_label)
    return out


def _devkit_id_to_wnid(truth: Path, places: list[Path], data_dir: Path
                       ) -> tuple[dict[str, str], Path]:
    """ILSVRC2012_ID -> wnid for the ground-truth file ``truth``, and the file that maps them:
    ``map_clsloc.txt`` when found in ``places``, else the devkit's ``meta.mat``."""
    # map_clsloc.txt is preferred when present: it is plain text and needs no scipy.
    mapping = _find_file(places, "map_clsloc.txt")
    if mapping is not None:
        id_to_wnid: dict[str, str] = {}
        for n, line in enumerate(_read_text(mapping).splitlines(), 1):
            parts = line.split()
            if len(parts) < 2 or not (parts[1].isascii() and parts[1].isdigit()):
                raise DataError(f"{mapping}:{n}: expected 'WNID ID NAME', got {line!r}")
            id_to_wnid[parts[1]] = parts[0]
        return id_to_wnid, mapping
    # The devkit keeps meta.mat beside the ground truth (ILSVRC2012_devkit_t12/data/);
    # a copied ground-truth file may sit elsewhere with the devkit's data/ folder.
    meta_places = dict.fromkeys([truth.parent, truth.parent / "data", *places,
                                 *(p / "data" for p in places)])
    meta = next((p / "meta.mat" for p in meta_places if (p / "meta.mat").is_file()), None)
    if meta is None:
        raise DataError(f"{truth} gives ILSVRC2012_IDs; map_clsloc.txt (WNID ID NAME per "
                        "line) or the devkit's meta.mat is needed beside it (or in "
                        f"{data_dir / 'ILSVRC2012_devkit_t12' / 'data'}) to turn them "
                        "into classes")
    return read_meta_mat(meta), meta


META_FIELDS = ("ILSVRC2012_ID", "WNID", "num_children")


def read_meta_mat(path: Path) -> dict[str, str]:
    """ILSVRC2012_ID (as a decimal string) -> wnid, for the leaf classes of the devkit's meta.mat.

    ``meta.mat`` (MATLAB v5) holds ``synsets``, a struct array of 1860 synsets with fields
    ILSVRC2012_ID, WNID, words, gloss, num_children, children, ...; the 1000 classes of the
    challenge are the leaves (num_children == 0, IDs 1..1000), the rest are their WordNet
    ancestors and never appear in the ground truth.
    """
    import numpy as np
    from scipy.io import loadmat  # lazy: scipy is only needed for this file

    try:
        mat = loadmat(str(path), squeeze_me=True, variable_names=["synsets"])
    except Exception as e:  # loadmat raises MatReadError, ValueError, OSError, IndexError, ...
        raise DataError(f"cannot read {path} as a MATLAB v5 .mat file (the ILSVRC-2012 devkit's "
                        f"meta.mat with a 'synsets' struct array was expected): {e}") from None
    synsets = mat.get("synsets")
    names = getattr(getattr(synsets, "dtype", None), "names", None) or ()
    missing = [f for f in META_FIELDS if f not in names]
    if synsets is None or missing:
        raise DataError(f"{path}: expected a 'synsets' struct array with fields "
                        f"{', '.join(META_FIELDS)}; "
                        + ("no 'synsets' variable" if synsets is None
                           else f"missing {', '.join(missing)}"))

    def scalar(rec: np.void, field: str, n: int) -> int | str:
        v = np.asarray(rec[field])
        if v.size != 1:
            raise DataError(f"{path}: synsets({n}).{field} should hold one value, has {v.size}")
        return v.reshape(()).item()

    out: dict[str, str] = {}
    # squeeze_me turns a 1x1 struct array into a 0-d one: atleast_1d makes both iterable.
    for n, rec in enumerate(np.atleast_1d(synsets).ravel(), 1):
        try:
            leaf = int(scalar(rec, "num_children", n)) == 0
            sid = int(scalar(rec, "ILSVRC2012_ID", n))
        except (TypeError, ValueError):
            raise DataError(f"{path}: synsets({n}) has a non-numeric ILSVRC2012_ID or "
                            "num_children") from None
        wnid = scalar(rec, "WNID", n)
        if not isinstance(wnid, str):
            raise DataError(f"{path}: synsets({n}).WNID should be a string like 'n01440764', "
                            f"got {wnid!r}")
        if leaf:
            out[str(sid)] = wnid
    if not out:
        raise DataError(f"{path}: no leaf synsets (num_children == 0) in 'synsets'")
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
