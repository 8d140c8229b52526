"""The real files in ../shared/data: MNIST exactly, and the CIFAR-10 JPEG copy as a folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.cli import main
from convzoo.data import load_splits
from convzoo.data.cifar import CIFAR10_CLASSES
from shareddata import MNIST_DIR, needs_mnist

PER_CLASS = 20  # as tests/data/conftest.py extracts
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@needs_mnist
def test_mnist_exact():
    s = load_splits("mnist", MNIST_DIR, holdout=0.1, seed=0)
    assert len(s.train) + len(s.val) == 60000 and len(s.test) == 10000
    full = torch.bincount(torch.cat([s.train.labels, s.val.labels]), minlength=10).tolist()
    assert full == MNIST_TRAIN_COUNTS
    val = torch.bincount(s.val.labels, minlength=10).tolist()
    assert val == [round(0.1 * n) for n in MNIST_TRAIN_COUNTS]  # stratified
    assert s.test.images.shape == (10000, 1, 28, 28) and s.test.images.dtype == torch.uint8


def test_cifar_jpg_subset_as_folder(cifar_jpg_subset):
    s = load_splits("folder", cifar_jpg_subset, val_split="test")
    assert s.classes == CIFAR10_CLASSES and not s.streamed and s.image_size == 32
    assert len(s.train) == len(s.test) == 10 * PER_CLASS
    assert torch.bincount(s.train.labels).tolist() == [PER_CLASS] * 10
    # The decoded pixels are those PIL reads (both libjpeg-turbo; allow a rounding step).
    path = cifar_jpg_subset / "train" / "cat" / "0000.jpg"
    ref = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    got = s.train.images[3 * PER_CLASS].permute(1, 2, 0).numpy().astype(np.int16)
    assert np.abs(got - ref).max() <= 1


def test_cli_info_json(cifar_jpg_subset, capsys):
    assert main(["data", "info", str(cifar_jpg_subset), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    train = info["splits"]["train"]
    assert info["name"] == "folder" and info["num_classes"] == 10
    assert train["images"] == 10 * PER_CLASS and train["sizes"] == {"32x32": 10 * PER_CLASS}
    assert train["classes"]["truck"] == PER_CLASS and info["splits"]["test"]["source"].endswith(
        "test")
    assert all(0.3 < m < 0.7 for m in train["mean"]) and all(0.15 < v < 0.35 for v in train["std"])


def test_cli_info_text_and_errors(capsys):
    assert main(["data", "info", "mnist"]) == 0  # the embedded subset
    out = capsys.readouterr().out
    assert "mnist: 10 classes" in out and "28x28" in out
    assert main(["data", "info", "no-such-thing"]) == 2
    assert "neither a data set name" in capsys.readouterr().err


@pytest.mark.slow
def test_cifar_jpg_full_decode(cifar_jpg_full):
    s = load_splits("folder", cifar_jpg_full, val_split="test")
    assert (len(s.train), len(s.test)) == (50000, 10000)
    assert torch.bincount(s.train.labels).tolist() == [5000] * 10
    assert torch.bincount(s.test.labels).tolist() == [1000] * 10
    assert s.train.images.shape == (50000, 3, 32, 32) and s.skipped == []
    again = load_splits("folder", cifar_jpg_full, val_split="test")  # from the cache
    assert torch.equal(again.train.images, s.train.images)
