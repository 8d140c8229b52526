"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) from their official python or binary batches.

Python version (``cifar-10-batches-py/``, ``cifar-100-python/``): each batch is a pickled dict with
byte-string keys; ``b"data"`` is a (N, 3072) uint8 array (1024 red, 1024 green, 1024 blue values of
a 32x32 image, row-major), ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` / ``b"coarse_labels"``
(CIFAR-100) are lists of ints. The meta file holds the class names.

Binary version (``cifar-10-batches-bin/``, ``cifar-100-binary/``): fixed-size records of one label
byte (CIFAR-10) or two (coarse then fine, CIFAR-100) followed by the 3072 pixel bytes; class names
are in text files, one per line.

Pickles are read with an unpickler that only builds plain containers and numpy arrays, so a
hostile file cannot run code; anything malformed becomes a :class:`DataError`.
"""

from __future__ import annotations

import io
import logging
import pickle
import pickletools
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

log = logging.getLogger(__name__)

RECORD = 3 * 32 * 32  # pixel bytes per image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck"]

# Folder and file names of the four official archives once extracted.
CIFAR10_PY = ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
              "batches.meta")
CIFAR100_PY = ("cifar-100-python", ["train"], ["test"], "meta")
CIFAR10_BIN = ("cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)],
               ["test_batch.bin"], "batches.meta.txt")
CIFAR100_BIN = ("cifar-100-binary", ["train.bin"], ["test.bin"], None)

# A CIFAR pickle needs numpy's array reconstruction (``_reconstruct``, ``ndarray``, ``dtype``).
# They are replaced by inert stand-ins that only record their arguments and state; the array is
# then built here with np.frombuffer after checking dtype, shape and size, so no byte string ever
# reaches numpy's own unpickling code (which has internal-error paths for nonsense states).
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_PLAIN_DTYPES = {"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "b1"}


class _DtypeStub:
    def __init__(self, name: object = None, *_: object) -> None:
        self.name = name.decode("latin1") if isinstance(name, bytes) else name
        self.order = "|"

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "=",
                                                                         b"<", b">", b"|", b"="):
            self.order = state[1].decode() if isinstance(state[1], bytes) else state[1]


class _ArrayStub:
    def __init__(self, *_: object) -> None:
        self.state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state

    def build(self) -> np.ndarray:
        st = self.state
        if not (isinstance(st, tuple) and len(st) == 5):
            raise pickle.UnpicklingError("array state is not (version, shape, dtype, order, data)")
        _, shape, dtype, fortran, raw = st
        if not (isinstance(shape, tuple) and all(type(d) is int and 0 <= d < 2**31 for d in shape)
                and len(shape) <= 8):
            raise pickle.UnpicklingError(f"array shape {shape!r} is not a tuple of sizes")
        if not isinstance(dtype, _DtypeStub) or dtype.name not in _PLAIN_DTYPES:
            raise pickle.UnpicklingError("array dtype is not a plain number type")
        if not isinstance(raw, (bytes, bytearray)):
            raise pickle.UnpicklingError("array data is not a byte string")
        dt = np.dtype(dtype.name).newbyteorder("=" if dtype.order == "|" else dtype.order)
        count = 1
        for d in shape:
            count *= d
        if count * dt.itemsize != len(raw):
            raise pickle.UnpicklingError(f"array of shape {shape} needs {count * dt.itemsize} "
                                         f"bytes, has {len(raw)}")
        arr = np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order="F" if fortran else "C")
        return arr.astype(dt.newbyteorder("="))


def _reconstruct(*_: object) -> _ArrayStub:
    return _ArrayStub()


def _frombuffer(buf: object = None, dtype: object = None, shape: object = None,
                order: object = "C", *_: object) -> _ArrayStub:
    """Protocol 5 pickles of numpy arrays call ``numpy._core.numeric._frombuffer``."""
    stub = _ArrayStub()
    stub.state = (1, shape, dtype, order == "F", buf)
    return stub


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3's protocol-2 pickles call (as ``_codecs.encode``) to rebuild bytes."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's own protocol
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) in _NUMPY_GLOBALS:
            return {"_reconstruct": _reconstruct, "ndarray": _ArrayStub, "dtype": _DtypeStub,
                    "_frombuffer": _frombuffer}[name]
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _materialise(value: object) -> object:
    if isinstance(value, _ArrayStub):
        return value.build()
    if isinstance(value, (_DtypeStub,)):
        raise pickle.UnpicklingError("a bare dtype where data was expected")
    if isinstance(value, list):
        return [_materialise(v) for v in value]
    return value


_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _prescan(data: bytes) -> None:
    """Walk the opcodes (pure Python, nothing built) and refuse memo indices beyond the opcode
    count: CPython's unpickler grows and zero-fills its memo table up to the index it is given, so
    one ``LONG_BINPUT 0x7fffffff`` would make it allocate and touch 32 GB."""
    n_ops = 0
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        n_ops += 1
        if op.name in _MEMO_OPS and isinstance(arg, int) and not 0 <= arg <= n_ops:
            raise pickle.UnpicklingError(f"memo index {arg} beyond the {n_ops} opcodes read")


def _unpickle(data: bytes, name: str) -> dict:
    try:
        _prescan(data)
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
        if isinstance(obj, dict):
            obj = {k: _materialise(v) for k, v in obj.items()}
    except Exception as e:  # a hostile byte string can raise almost any type from pickle
        raise DataError(f"{name}: not a CIFAR python batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{name}: not a CIFAR python batch (a pickled {type(obj).__name__}, "
                        "expected a dict)")
    # Keys are bytes in the official files (pickled by Python 2); accept str keys as well.
    return {(k.decode("latin-1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _as_labels(value: object, n: int, key: str, name: str) -> np.ndarray:
    try:
        labels = np.asarray(value)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"dtype {labels.dtype}, {labels.ndim} dimensions")
    except (ValueError, TypeError, OverflowError) as e:
        raise DataError(f"{name}: {key!r} is not a list of integer labels ({e})") from None
    if len(labels) != n:
        raise DataError(f"{name}: {n} images but {len(labels)} entries in {key!r}")
    if n and (labels.min() < 0 or labels.max() > 255):
        raise DataError(f"{name}: {key!r} has labels outside 0..255")
    return labels.astype(np.int64)


def parse_cifar_python(data: bytes, *, name: str = "<bytes>", label_key: str = "labels"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """A python-version batch -> (images (N, 3, 32, 32) uint8, labels (N,) int64)."""
    batch = _unpickle(data, name)
    if "data" not in batch:
        raise DataError(f"{name}: CIFAR batch has no 'data' entry "
                        f"(keys: {sorted(map(str, batch))})")
    if label_key not in batch:
        raise DataError(f"{name}: CIFAR batch has no {label_key!r} entry "
                        f"(keys: {sorted(map(str, batch))})")
    pixels = batch["data"]
    if (not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2
            or pixels.shape[1] != RECORD):
        desc = (f"{pixels.dtype} array of shape {pixels.shape}" if isinstance(pixels, np.ndarray)
                else type(pixels).__name__)
        raise DataError(f"{name}: 'data' is a {desc}, expected a (N, {RECORD}) uint8 array")
    labels = _as_labels(batch[label_key], len(pixels), label_key, name)
    return np.ascontiguousarray(pixels.reshape(-1, 3, 32, 32)), labels


def parse_cifar_python_meta(data: bytes, *, name: str = "<bytes>", key: str = "label_names"
                            ) -> list[str]:
    """Class names from a python-version meta file (``batches.meta`` or ``meta``)."""
    meta = _unpickle(data, name)
    names = meta.get(key)
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"{name}: meta file has no list of names under {key!r}")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def parse_cifar_binary(data: bytes, *, name: str = "<bytes>", label_bytes: int = 1,
                       label_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A binary-version batch -> (images (N, 3, 32, 32) uint8, labels (N,) int64).

    ``label_bytes`` is 1 for CIFAR-10 and 2 for CIFAR-100, whose records start with the coarse
    label (``label_index`` 0) then the fine one (``label_index`` 1).
    """
    if label_bytes not in (1, 2) or not 0 <= label_index < label_bytes:
        raise ValueError(f"label_bytes {label_bytes}, label_index {label_index}")
    size = label_bytes + RECORD
    if len(data) == 0 or len(data) % size:
        raise DataError(f"{name}: {len(data)} bytes is not a whole number of {size}-byte CIFAR "
                        "records" + (" (the file is truncated or not a CIFAR binary batch)"
                                     if len(data) else " (empty file)"))
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, size)
    labels = records[:, label_index].astype(np.int64)
    images = records[:, label_bytes:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read CIFAR file {path}: {e.strerror or e}") from None


def _locate(data_dir: Path, folder: str) -> Path | None:
    for candidate in (data_dir / folder, data_dir):
        if candidate.is_dir() and any((candidate / f).exists() for f in (
                "batches.meta", "meta", "test_batch", "test", "test_batch.bin", "test.bin")):
            return candidate
    return None


def _check_labels(labels: np.ndarray, classes: list[str], path: Path) -> None:
    if len(labels) and int(labels.max()) >= len(classes):
        raise DataError(f"{path}: label {int(labels.max())} out of range 0..{len(classes) - 1} "
                        f"for {len(classes)} classes")


def load_cifar(data_dir: Path, split: str, *, coarse: bool = False, hundred: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, list[str], str]:
    """Images (N, 3, 32, 32) uint8, labels (N,), class names and the folder read from.

    ``data_dir`` is the extracted folder (``cifar-10-batches-py`` ...) or the folder above it;
    the python version is preferred when both are present.
    """
    layouts = (CIFAR100_PY, CIFAR100_BIN) if hundred else (CIFAR10_PY, CIFAR10_BIN)
    for layout in layouts:
        folder = _locate(data_dir, layout[0])
        if folder is None:
            continue
        files = layout[1] if split == "train" else layout[2]
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise DataError(f"{folder} lacks {', '.join(missing)} of the CIFAR {split} split")
        binary = layout in (CIFAR10_BIN, CIFAR100_BIN)
        images, labels = [], []
        for f in files:
            raw = _read(folder / f)
            if binary:
                x, y = parse_cifar_binary(raw, name=str(folder / f),
                                          label_bytes=2 if hundred else 1,
                                          label_index=0 if coarse or not hundred else 1)
            else:
                key = ("coarse_labels" if coarse else "fine_labels") if hundred else "labels"
                x, y = parse_cifar_python(raw, name=str(folder / f), label_key=key)
            images.append(x)
            labels.append(y)
        classes = _class_names(folder, binary=binary, hundred=hundred, coarse=coarse)
        y = np.concatenate(labels)
        _check_labels(y, classes, folder)
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(y), classes, str(folder)
    which = "CIFAR-100" if hundred else "CIFAR-10"
    names = " or ".join(layout[0] for layout in layouts)
    raise DataError(f"data dir {data_dir} holds no {which} batches; expected {names} "
                    "(the official python or binary version, extracted)")


def _class_names(folder: Path, *, binary: bool, hundred: bool, coarse: bool) -> list[str]:
    if binary:
        txt = (("coarse_label_names.txt" if coarse else "fine_label_names.txt") if hundred
               else "batches.meta.txt")
        path = folder / txt
        if path.is_file():
            return [line.strip() for line in _read(path).decode("utf-8", "replace").splitlines()
                    if line.strip()]
    else:
        path = folder / ("meta" if hundred else "batches.meta")
        if path.is_file():
            key = ("coarse_label_names" if coarse else "fine_label_names") if hundred else (
                "label_names")
            return parse_cifar_python_meta(_read(path), name=str(path), key=key)
    if not hundred:
        return list(CIFAR10_CLASSES)
    raise DataError(f"{path} is missing: the CIFAR-100 class names are read from it")


def write_cifar_python(path: Path, images: np.ndarray, labels: dict[str, list[int]]) -> None:
    """Write a python-version batch (protocol 2, byte-string keys, as the official files are)."""
    batch = {b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), RECORD),
             b"batch_label": b"convzoo"}
    batch.update({k.encode(): list(map(int, v)) for k, v in labels.items()})
    Path(path).write_bytes(pickle.dumps(batch, protocol=2))


def write_cifar_binary(path: Path, images: np.ndarray, *label_columns: np.ndarray) -> None:
    """Write a binary-version batch: per record the label byte(s) then 3072 pixel bytes."""
    cols = [np.asarray(c, dtype=np.uint8).reshape(-1, 1) for c in label_columns]
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), RECORD)
    Path(path).write_bytes(np.concatenate([*cols, flat], axis=1).tobytes())
