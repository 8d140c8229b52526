"""CIFAR-10/100 readers on official-format batches written from arrays, and malformed files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from convzoo.data import load_dataset
from convzoo.data.cifar import (
    CIFAR10_CLASSES,
    parse_cifar_binary,
    parse_cifar_python,
    write_cifar_binary,
    write_cifar_python,
)
from convzoo.errors import DataError

rng = np.random.default_rng(0)


def _images(n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


@pytest.fixture
def cifar10_py(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    train_x, train_y = [], []
    for i in range(1, 6):
        x, y = _images(4), rng.integers(0, 10, 4)
        write_cifar_python(root / f"data_batch_{i}", x, {"labels": y})
        train_x.append(x)
        train_y.append(y)
    tx, ty = _images(3), rng.integers(0, 10, 3)
    write_cifar_python(root / "test_batch", tx, {"labels": ty})
    (root / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}, protocol=2))
    return tmp_path, np.concatenate(train_x), np.concatenate(train_y), tx, ty


def test_cifar10_python_round_trip(cifar10_py):
    data_dir, x, y, tx, ty = cifar10_py
    train = load_dataset("cifar10", data_dir, "train")
    test = load_dataset("cifar10", data_dir / "cifar-10-batches-py", "test")  # either folder
    assert train.images.shape == (20, 3, 32, 32) and train.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(train.images.numpy(), x)
    np.testing.assert_array_equal(train.labels.numpy(), y)
    np.testing.assert_array_equal(test.images.numpy(), tx)
    np.testing.assert_array_equal(test.labels.numpy(), ty)


def test_cifar_pixel_layout_is_rgb_planes():
    # Official layout: 1024 red values (row-major), then green, then blue.
    flat = np.zeros((1, 3072), dtype=np.uint8)
    flat[0, 0] = 10          # red of pixel (0, 0)
    flat[0, 1024 + 33] = 20  # green of pixel (1, 1)
    flat[0, 2048 + 1023] = 30  # blue of pixel (31, 31)
    data = pickle.dumps({b"data": flat, b"labels": [3]}, protocol=2)
    x, y = parse_cifar_python(data)
    assert x[0, 0, 0, 0] == 10 and x[0, 1, 1, 1] == 20 and x[0, 2, 31, 31] == 30
    assert x.sum() == 60 and y.tolist() == [3]


def test_cifar100_python_fine_and_coarse(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    x, fine, coarse = _images(6), rng.integers(0, 100, 6), rng.integers(0, 20, 6)
    write_cifar_python(root / "train", x, {"fine_labels": fine, "coarse_labels": coarse})
    write_cifar_python(root / "test", x[:2], {"fine_labels": fine[:2], "coarse_labels": coarse[:2]})
    (root / "meta").write_bytes(pickle.dumps({
        b"fine_label_names": [f"f{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}, protocol=2))
    ds_fine = load_dataset("cifar100", tmp_path, "train")
    ds_coarse = load_dataset("cifar100-coarse", tmp_path, "train")
    np.testing.assert_array_equal(ds_fine.labels.numpy(), fine)
    np.testing.assert_array_equal(ds_coarse.labels.numpy(), coarse)
    np.testing.assert_array_equal(ds_coarse.images.numpy(), x)
    assert len(ds_fine.classes) == 100 and ds_fine.classes[7] == "f7"
    assert len(ds_coarse.classes) == 20 and ds_coarse.classes[3] == "c3"
    assert len(load_dataset("cifar100", tmp_path, "test")) == 2


def test_cifar10_binary(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    xs, ys = [], []
    for i in range(1, 6):
        x, y = _images(2), rng.integers(0, 10, 2)
        write_cifar_binary(root / f"data_batch_{i}.bin", x, y)
        xs.append(x)
        ys.append(y)
    write_cifar_binary(root / "test_batch.bin", _images(1), [4])
    (root / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    ds = load_dataset("cifar10", tmp_path, "train")
    np.testing.assert_array_equal(ds.images.numpy(), np.concatenate(xs))
    np.testing.assert_array_equal(ds.labels.numpy(), np.concatenate(ys))
    assert ds.classes == CIFAR10_CLASSES
    assert load_dataset("cifar10", tmp_path, "test").labels.tolist() == [4]


def test_cifar100_binary_coarse_then_fine(tmp_path):
    root = tmp_path / "cifar-100-binary"
    root.mkdir()
    x, coarse, fine = _images(3), np.array([1, 2, 19]), np.array([5, 99, 0])
    write_cifar_binary(root / "train.bin", x, coarse, fine)  # record: coarse, fine, pixels
    write_cifar_binary(root / "test.bin", x[:1], coarse[:1], fine[:1])
    (root / "fine_label_names.txt").write_text("\n".join(f"f{i}" for i in range(100)))
    (root / "coarse_label_names.txt").write_text("\n".join(f"c{i}" for i in range(20)))
    assert load_dataset("cifar100", tmp_path, "train").labels.tolist() == [5, 99, 0]
    ds = load_dataset("cifar100-coarse", tmp_path, "train")
    assert ds.labels.tolist() == [1, 2, 19] and ds.classes[19] == "c19"
    np.testing.assert_array_equal(ds.images.numpy(), x)


def test_truncated_binary_batch_names_the_file(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    for i in range(1, 6):
        write_cifar_binary(root / f"data_batch_{i}.bin", _images(2), [0, 1])
    write_cifar_binary(root / "test_batch.bin", _images(1), [0])
    path = root / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="data_batch_3.bin.*truncated"):
        load_dataset("cifar10", tmp_path, "train")


def test_label_out_of_range(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    for i in range(1, 6):
        write_cifar_binary(root / f"data_batch_{i}.bin", _images(1), [10])
    write_cifar_binary(root / "test_batch.bin", _images(1), [0])
    with pytest.raises(DataError, match="label 10 out of range"):
        load_dataset("cifar10", tmp_path, "train")


def test_missing_batch_and_missing_folder(tmp_path, cifar10_py):
    with pytest.raises(DataError, match="no CIFAR-10 batches"):
        load_dataset("cifar10", tmp_path / "..", "train")
    data_dir = cifar10_py[0]
    (data_dir / "cifar-10-batches-py" / "data_batch_2").unlink()
    with pytest.raises(DataError, match="lacks data_batch_2"):
        load_dataset("cifar10", data_dir, "train")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("payload,match", [
    (pickle.dumps({b"data": _Evil(), b"labels": [0]}), "not allowed"),
    (pickle.dumps([1, 2, 3]), "expected a dict"),
    (pickle.dumps({b"labels": [0]}), "no 'data'"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}), "no 'labels'"),
    (pickle.dumps({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}), "expected a"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "2 images but 1"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": ["x"]}), "integer labels"),
    (b"\x80\x02}q\x00(U\x04data", "not a CIFAR python batch"),
])
def test_malformed_python_batches(payload, match):
    with pytest.raises(DataError, match=match):
        parse_cifar_python(payload, name="batch")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_pickle_protocol(protocol):
    x = _images(2).reshape(2, 3072)
    for data in (x, np.asfortranarray(x)):
        blob = pickle.dumps({b"data": data, b"labels": np.array([1, 2], ">i4")}, protocol=protocol)
        got, labels = parse_cifar_python(blob)
        np.testing.assert_array_equal(got.reshape(2, 3072), x)
        assert labels.tolist() == [1, 2]


def test_memo_bomb_refused_before_allocating():
    # LONG_BINPUT 0x7fffffff: CPython's unpickler would grow its memo table to 2**31 entries.
    with pytest.raises(DataError, match="memo index 2147483647"):
        parse_cifar_python(b"\x80\x02}r\xff\xff\xff\x7f.")


def test_binary_rejects_empty_and_ragged():
    with pytest.raises(DataError, match="empty"):
        parse_cifar_binary(b"")
    with pytest.raises(DataError, match="whole number"):
        parse_cifar_binary(b"\0" * 3074, label_bytes=1)
