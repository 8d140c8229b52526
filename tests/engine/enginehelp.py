"""Shared helpers of the engine tests: tiny data sets on disk and subprocess runs of the CLI."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import torch

from convzoo.data import load_dataset

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
CIFAR_JPG = SHARED_DATA / "cifar10-jpg.tar.gz"


def _write_idx(path: Path, array: torch.Tensor) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    path.write_bytes(gzip.compress(header + array.to(torch.uint8).numpy().tobytes(), 1))


def tiny_mnist_dir(folder: Path, n_train: int = 512, n_test: int = 200) -> Path:
    """The first images of the embedded MNIST subset as an MNIST-layout folder (IDX .gz)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, stems in (
        ("train", n_train, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
        ("test", n_test, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    ):
        ds = load_dataset("mnist", None, split)
        _write_idx(folder / f"{stems[0]}.gz", ds.images[:n, 0])
        _write_idx(folder / f"{stems[1]}.gz", ds.labels[:n])
    return folder


def shrink_mnist(monkeypatch, n_train: int, n_test: int) -> None:
    """Cut the embedded MNIST subset (``data="mnist"`` without a data dir) to its first
    ``n_train`` training and ``n_test`` test images for the rest of the test."""
    from convzoo.data import datasets

    original = datasets.SOURCES["mnist"]

    def small(data_dir, split, **kw):
        return original(data_dir, split, **kw).subset(
            torch.arange(n_train if split == "train" else n_test))

    monkeypatch.setitem(datasets.SOURCES, "mnist", small)


def cli_env() -> dict[str, str]:
    # One thread per process: the results do not depend on the machine's load, and two DDP
    # processes do not fight over the cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convzoo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=REPO,
    )


def popen_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "convzoo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO,
    )


def same_weights(a: Path, b: Path, atol: float = 0.0) -> float:
    """Largest absolute difference between two weights files (asserting equal keys)."""
    from convzoo import read_weights

    sa, sb = read_weights(a).state_dict, read_weights(b).state_dict
    assert sorted(sa) == sorted(sb)
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)
