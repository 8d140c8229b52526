"""Fixtures of the data tests: an isolated cache, and a subset of the CIFAR-10 JPEG copy."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import tarfile
import warnings
from pathlib import Path

import pytest

from shareddata import SHARED_DATA

CIFAR_JPG = SHARED_DATA / "cifar10-jpg.tar.gz"
PER_CLASS = 20  # files per class and split in the default suite's subset

needs_cifar_jpg = pytest.mark.skipif(
    not CIFAR_JPG.is_file(), reason=f"CIFAR-10 JPEG copy not found at {CIFAR_JPG} (../shared is "
    "absent)")


@pytest.fixture(autouse=True)
def _quiet_torchvision_io():
    """torchvision 0.29 warns on every decode (TorchCodec migration); pytest resets the library's
    own filter per test."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)
        yield


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own $CONVZOO_CACHE, so no test sees another's decoded arrays."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("CONVZOO_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def cifar_jpg_subset(tmp_path_factory) -> Path:
    """The first PER_CLASS files of every class folder of both splits, extracted once."""
    if not CIFAR_JPG.is_file():
        pytest.skip(f"CIFAR-10 JPEG copy not found at {CIFAR_JPG} (../shared is absent)")
    out = tmp_path_factory.mktemp("cifar10-jpg")
    pattern = "*/*/00[01][0-9].jpg"  # files 0000..0019 of every class folder: PER_CLASS = 20
    if shutil.which("tar"):  # GNU tar in C: ~1 s, against ~10 s for a tarfile loop
        subprocess.run(["tar", "-xzf", str(CIFAR_JPG), "-C", str(out), "--wildcards", pattern],
                       check=True)
    else:
        with tarfile.open(CIFAR_JPG) as tar:
            for m in tar:
                if m.isfile() and fnmatch.fnmatch(m.name, pattern):
                    tar.extract(m, out, filter="data")
    return out


@pytest.fixture(scope="session")
def cifar_jpg_full(tmp_path_factory) -> Path:
    if not CIFAR_JPG.is_file():
        pytest.skip(f"CIFAR-10 JPEG copy not found at {CIFAR_JPG} (../shared is absent)")
    out = tmp_path_factory.mktemp("cifar10-jpg-full")
    with tarfile.open(CIFAR_JPG) as tar:
        tar.extractall(out, filter="data")
    return out
