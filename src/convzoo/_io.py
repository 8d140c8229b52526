"""Small file helpers every part of the package uses: atomic writes and JSON files.

A file is written to a temporary name in the same folder, fsynced, then renamed over the target,
so a crash, a kill or a full disk never leaves a half-written file under the real name. Errors of
the file system (permission, disk full) become one :class:`~convzoo.errors.ConvzooError` naming
the file.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import ConvzooError

TMP_SUFFIX = ".tmp"  # atomic_write's temporary files: ".<name>.<random>.tmp" beside the target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _os_message(path: Path, e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return f"cannot write {path}: no space left on the device"
    return f"cannot write {path}: {e.strerror or e}"


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(tmp_path)``, fsync the result, then rename it over ``path``.

    Raises :class:`ConvzooError` (one line naming ``path``) when the file system refuses: no
    permission, no space left. The temporary file is removed on any failure.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise ConvzooError(_os_message(path, e)) from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise ConvzooError(_os_message(path, e)) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any:
    """The JSON value in ``path``; :class:`ConvzooError` naming the file when it is missing,
    unreadable or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ConvzooError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConvzooError(f"{what} {path} is not valid JSON: {e}") from None


def remove_stale_tmp(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that an interrupted :func:`atomic_write` (kill -9) left in
    ``folder`` (not recursive); return what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if p.name.startswith(".") and p.name.endswith(TMP_SUFFIX) and p.is_file():
            _remove(str(p))
            removed.append(p)
    return removed
