"""The cache of decoded data sets under ``$CONVZOO_CACHE`` (default ``~/.cache/convzoo``).

An entry is a safetensors file holding ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64, with
the class names and the files skipped while decoding in its metadata. Its name carries a hash of the
source files' identity (relative path, size, modification time in ns) and of the decode settings,
so a changed, added or removed source file gives a new key and the folder is decoded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .._io import atomic_write

log = logging.getLogger(__name__)

CACHE_VERSION = "1"  # bump when the decoded layout changes


def cache_dir() -> Path:
    """``$CONVZOO_CACHE`` or ``~/.cache/convzoo``."""
    env = os.environ.get("CONVZOO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "convzoo"


def identity_key(entries: list[tuple[str, int, int]], settings: dict) -> str:
    """Hex digest of (relative path, size, mtime_ns) for every file plus the decode settings."""
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    for rel, size, mtime in entries:
        h.update(f"{rel}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def cache_path(kind: str, key: str) -> Path:
    return cache_dir() / kind / f"{key[:32]}.safetensors"


def load_cached(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict] | None:
    """(images, labels, metadata) of a cache entry, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        tensors = load_file(str(path))
        return tensors["images"], tensors["labels"], meta
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        log.warning("ignoring unreadable cache entry %s (%s); decoding again", path, e)
        return None


def save_cached(path: Path, images: torch.Tensor, labels: torch.Tensor, meta: dict) -> None:
    """Write a cache entry atomically; a failure to write is logged, never fatal."""
    tensors = {"images": images.contiguous(), "labels": labels.contiguous()}
    strmeta = {k: json.dumps(v) for k, v in meta.items()}
    try:
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=strmeta))
    except Exception as e:  # a read-only or full disk must not stop training
        log.warning("could not write cache entry %s: %s", path, e)


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def is_archive(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_entry(archive: str | os.PathLike) -> Path:
    """The folder ``archive`` is extracted into: ``$CONVZOO_CACHE/archives/<slug>-<hash>``.

    The slug keeps only letters, digits, ``_`` and ``-`` of the archive's stem and the hash is of
    its resolved path, so no archive name (``...tar.gz``, ``.tar.gz``, ``../x.zip``) can make the
    entry resolve to the cache itself or outside it: that folder is removed when re-extracting.
    """
    archive = Path(archive).expanduser()
    name = archive.name
    stem = next((name[: -len(s)] for s in ARCHIVE_SUFFIXES if name.lower().endswith(s)), name)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:48] or "archive"
    digest = hashlib.sha256(str(archive.resolve()).encode("utf-8", "surrogateescape"))
    return cache_dir() / "archives" / f"{slug}-{digest.hexdigest()[:16]}"


def _remove_entry(path: Path, root: Path) -> None:
    """Remove ``path``, which must be a direct child of ``root``; anything else is refused."""
    import shutil

    if path.parent.resolve() != root.resolve() or path.name in ("", ".", ".."):
        raise RuntimeError(f"refusing to remove {path}: not an entry of {root}")
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def extract_archive(archive: str | os.PathLike) -> Path:
    """The folder a ``.tar.gz``/``.tgz``/``.tar``/``.zip`` of a data set is extracted into, once
    (:func:`archive_entry`; again when the archive's path, size or time changes); an archive
    holding one top folder gives that folder. tar members pass tarfile's ``data`` filter (no
    absolute paths, links out of the folder or device files); zipfile drops such paths too."""
    import tarfile
    import zipfile
    import zlib

    from ..errors import DataError

    archive = Path(archive).expanduser()
    dest = archive_entry(archive)
    root = dest.parent
    st = archive.stat()
    stamp = f"{archive.resolve()}\n{st.st_size}\n{st.st_mtime_ns}"
    done = dest / ".extracted"
    if not (done.is_file() and done.read_text() == stamp):
        log.info("extracting %s to %s (once)", archive, dest)
        tmp = root / f"{dest.name}.tmp-{os.getpid()}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            _remove_entry(tmp, root)
            tmp.mkdir()
            if archive.name.lower().endswith(".zip"):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(archive) as tar:
                    tar.extractall(tmp, filter="data")
            (tmp / ".extracted").write_text(stamp)
            _remove_entry(dest, root)
            tmp.rename(dest)
        except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as e:
            _remove_entry(tmp, root)
            why = ("it ends early (truncated or damaged)" if isinstance(e, EOFError)
                   else (str(e).strip().splitlines() or [type(e).__name__])[0])
            raise DataError(f"cannot extract data archive {archive}: {why}") from None
    entries = [p for p in dest.iterdir() if p.name != ".extracted"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


@contextlib.contextmanager
def reported_as(archive: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, a DataError naming the folder ``archive`` was extracted into names the
    archive instead (``data.tar.gz/train has no ...``): the user gave the archive, not the cache."""
    from ..errors import DataError

    try:
        yield
    except DataError as e:
        if archive is None:
            raise
        entry = str(archive_entry(archive))
        if entry not in str(e):
            raise
        raise DataError(str(e).replace(entry, str(Path(archive).expanduser()))) from None
