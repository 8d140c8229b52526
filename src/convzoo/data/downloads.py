"""``convzoo data download NAME``: the official files, checked against their published md5 sums.

Downloads resume: a partial ``FILE.part`` is continued with an HTTP ``Range`` request (a server that
ignores it sends the whole file again, which restarts the part). A finished file whose md5 differs
from the listed one is deleted and reported. Archives (CIFAR) are then extracted next to it, with
tarfile's ``data`` filter (no absolute paths, links out of the folder or device files).

The URLs and md5 sums are those the publishers list, as torchvision 0.29 also lists them; they are
each data set's ``downloads`` in :data:`convzoo.data.datasets.DATASETS` (:data:`RESOURCES` is
that field's view). The environment variable ``CONVZOO_DOWNLOAD_MIRROR`` (or ``mirror=``) replaces
every URL's folder with another base URL, for mirrors and for tests against a local server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import DataError
from .datasets import RESOURCES, Resource  # noqa: F401 - Resource re-exported for its users

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes per read


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in blocks (md5 for the data sets' published sums, sha256 for
    torchvision's weights)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch_url(url: str, part: Path, *, timeout: float,
              progress: Callable[[str, int, int | None], None] | None,
              name: str | None = None) -> None:
    """Download ``url`` into ``part``, continuing from its current size when the server allows;
    ``progress(name, bytes done, total or None)`` after each block (``name``: part's name less
    ``.part``). Also fetches torchvision's weights (:mod:`convzoo.hub`)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "convzoo"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range not satisfiable: the part is already whole
            return
        raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"download of {url} failed: {reason}") from None
    with resp:
        if have and resp.status != 206:  # the server sent the whole file: start again
            log.info("%s: server ignored the Range request; downloading from the start", url)
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        done = have
        try:
            with open(part, "ab" if have else "wb") as f:
                while block := resp.read(CHUNK):
                    f.write(block)
                    done += len(block)
                    if progress:
                        progress(name or part.name.removesuffix(".part"), done, total)
        except OSError as e:
            raise DataError(f"download of {url} stopped after {done} bytes ({e}); run the "
                            "command again to resume") from None
    if total is not None and done < total:
        raise DataError(f"download of {url} stopped after {done} of {total} bytes; run the "
                        "command again to resume")


def download(name: str, data_dir: str | os.PathLike, *, mirror: str | None = None,
             timeout: float = 60.0,
             progress: Callable[[str, int, int | None], None] | None = None) -> list[Path]:
    """Download (and extract) data set ``name`` into ``data_dir``; return the files written.

    A file already present with the right md5 is not fetched again.
    """
    if name not in RESOURCES:
        raise DataError(f"no download for data set {name!r}; available: "
                        f"{', '.join(sorted(RESOURCES))}")
    mirror = mirror or os.environ.get("CONVZOO_DOWNLOAD_MIRROR")
    root = Path(data_dir).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create data dir {root}: {e.strerror or e}") from None
    written = []
    for res in RESOURCES[name]:
        url = mirror.rstrip("/") + "/" + res.filename if mirror else res.url
        dest = root / res.filename
        if dest.is_file() and file_digest(dest) == res.md5:
            log.info("%s is already present and verified", dest)
        else:
            part = dest.with_name(dest.name + ".part")
            fetch_url(url, part, timeout=timeout, progress=progress)
            got = file_digest(part)
            if got != res.md5:
                part.unlink()
                raise DataError(f"{dest.name} from {url} has md5 {got}, expected {res.md5}; "
                                "the file was deleted")
            os.replace(part, dest)
        written.append(dest)
        if res.extract:
            _extract(dest, root)
    return written


def _extract(archive: Path, root: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot extract {archive}: {e}") from None
