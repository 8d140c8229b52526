"""The IDX reader on the real MNIST files, the embedded subset, and corrupted copies."""

import gzip
import hashlib

import numpy as np
import pytest

from convzoo.data import load_dataset, parse_idx, read_idx
from convzoo.data.datasets import EMBEDDED_DIR
from convzoo.errors import DataError
from shareddata import MNIST_DIR, needs_mnist


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_round_trip_raw_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(a))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)


def test_big_endian_int32(tmp_path):
    a = np.array([1, -2, 70000], dtype=">i4")
    data = bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + a.tobytes()
    np.testing.assert_array_equal(parse_idx(data), [1, -2, 70000])


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda b: b"\x08\x03" + b[2:], "magic number"),
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\x00", "expected"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b[:2], "not an IDX file"),
    ],
)
def test_corrupted_copies_raise_data_error_naming_file(tmp_path, mutate, match):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mutate(idx_bytes(np.zeros((4, 5, 5), np.uint8))))
    with pytest.raises(DataError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 5, 5), np.uint8)))[:-20])
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope.gz")


@needs_mnist
def test_real_mnist_files_exact():
    train = load_dataset("mnist", MNIST_DIR, "train")
    test = load_dataset("mnist", MNIST_DIR, "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    counts = np.bincount(train.labels.numpy(), minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # The decompressed image bytes are the widely published MNIST file (md5 of the whole file).
    raw = gzip.decompress((MNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    assert raw[16:] == test.images.numpy().tobytes()


@needs_mnist
def test_embedded_subset_is_balanced_and_drawn_from_mnist():
    train = load_dataset("mnist", None, "train")
    test = load_dataset("mnist", None, "test")
    assert len(train) == 10_000 and len(test) == 2_000
    assert np.bincount(train.labels.numpy()).tolist() == [1000] * 10
    assert np.bincount(test.labels.numpy()).tolist() == [200] * 10
    full = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    first_sevens = full[labels == 7][:200]
    np.testing.assert_array_equal(test.images[test.labels == 7, 0].numpy(), first_sevens)
    assert train.source == "embedded MNIST subset"
    assert (EMBEDDED_DIR / "mnist" / "train-images-idx3-ubyte.gz").stat().st_size < 2_000_000


def test_missing_data_dir_and_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nope")
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", tmp_path)


def test_unknown_data_set_name():
    with pytest.raises(DataError, match="unknown data set 'mnsit'"):
        load_dataset("mnsit")
