"""Fixtures of the full-size tests: image folders made once per session (see fullhelp), one
torch thread and a private $CONVZOO_CACHE per test."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from fullsize.fullhelp import Tree, make_catdog96, make_folder, make_ilsvrc
from shareddata import SHARED_DATA


@pytest.fixture(scope="session")
def ilsvrc_dir(tmp_path_factory) -> Tree:
    if not (SHARED_DATA / "imagenet_class_index.json").is_file():
        pytest.skip(f"imagenet_class_index.json not found in {SHARED_DATA} (../shared is absent)")
    return make_ilsvrc(tmp_path_factory.mktemp("ilsvrc"))


@pytest.fixture(scope="session")
def folder_dir(tmp_path_factory) -> Tree:
    return make_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture(scope="session")
def catdog96_dir(tmp_path_factory) -> Tree:
    return make_catdog96(tmp_path_factory.mktemp("catdog96"))


@pytest.fixture(scope="session")
def fullsize_cache(tmp_path_factory) -> Path:
    """One $CONVZOO_CACHE for this folder's tests, away from the user's."""
    return tmp_path_factory.mktemp("convzoo-cache")


@pytest.fixture(autouse=True)
def _one_thread_own_cache(fullsize_cache, monkeypatch):
    """One torch thread (the suite runs on small shared CPUs) and the session's cache."""
    monkeypatch.setenv("CONVZOO_CACHE", str(fullsize_cache))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)
        yield
    torch.set_num_threads(threads)
