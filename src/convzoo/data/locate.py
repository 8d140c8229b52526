"""Where a data set's files are: the folder given, else the shared copy in ``../shared/data``
(next to the working directory, or next to the source checkout). Experiments, ``convzoo explore``
and the benchmarks find data here, and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .cache import extract_archive, is_archive

CIFAR10_JPG = "cifar10-jpg.tar.gz"  # the shared JPEG copy of CIFAR-10 (train/ and test/ folders)
MNIST_FILE = "train-images-idx3-ubyte.gz"  # a full MNIST folder has it


@dataclass(frozen=True)
class Found:
    """How to load what :func:`find_data` found: ``load_dataset(data, data_dir, split,
    val_split=val_split)``."""

    data: str  # the name to load it as: "folder" for the JPEG copy of CIFAR-10
    data_dir: Path | None  # None: the embedded MNIST subset
    val_split: str | None = None  # the test split's folder, for a folder
    origin: Path | None = None  # the archive that data_dir was extracted from, if any

    @property
    def shown(self) -> Path | None:
        """The path to name on a page or in a message: the archive itself for one that was
        extracted (its cache folder is an implementation detail), else ``data_dir``."""
        return self.origin or self.data_dir


def shared_data_dirs() -> list[Path]:
    """``../shared/data`` next to the working directory and next to the source checkout."""
    here = Path(__file__).resolve().parents[3]  # src/convzoo/data -> repository root
    out = []
    for root in (Path.cwd(), here):
        p = (root / ".." / "shared" / "data").resolve()
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def find_data(name: str, data_dir: str | os.PathLike | None = None) -> Found:
    """Where data set ``name`` is: ``data_dir`` when given, else the shared copy.

    ``mnist``: the folder given, else ``../shared/data/mnist``, else None (the 10,000/2,000-image
    subset that ships with the package). ``cifar10``: the official python or binary batches, a
    folder with ``train/`` and ``test/`` class folders (the JPEG copy, extracted), or the JPEG
    copy's ``.tar.gz`` (extracted once under ``$CONVZOO_CACHE``); without ``data_dir``,
    ``../shared/data/cifar10-jpg.tar.gz``; a DataError when there is none. Any other name: the
    folder given, as it is.
    """
    if name == "mnist":
        return Found("mnist", _given(data_dir) or _shared("mnist", MNIST_FILE))
    if name == "cifar10":
        return _cifar10(_given(data_dir) or _shared("", CIFAR10_JPG))
    return Found(name, _given(data_dir))


def _given(data_dir: str | os.PathLike | None) -> Path | None:
    return None if data_dir is None else Path(data_dir).expanduser()


def _shared(folder: str, marker: str) -> Path | None:
    """The first shared ``folder`` holding ``marker`` (the marker itself for a top-level file)."""
    for root in shared_data_dirs():
        if (root / folder / marker).is_file():
            return root / folder if folder else root / marker
    return None


def _cifar10(path: Path | None) -> Found:
    if path is None:
        raise DataError("CIFAR-10 is needed: pass --data-dir DIR (the python or binary batches, "
                        f"a train/ + test/ JPEG folder, or {CIFAR10_JPG}), or put {CIFAR10_JPG} "
                        "in ../shared/data")
    origin = None
    if is_archive(path):
        origin, path = path, extract_archive(path)
    if not path.is_dir():
        raise DataError(f"--data-dir {path}: not a folder or a .tar.gz of CIFAR-10")
    for sub in (path, *[p for p in path.iterdir() if p.is_dir()]):
        if (sub / "train").is_dir() and (sub / "test").is_dir():
            return Found("folder", sub, "test", origin)
    return Found("cifar10", path, origin=origin)
