"""Fuzzing the IDX and CIFAR parsers: no byte string may raise anything but DataError."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convzoo.data import parse_idx, read_idx
from convzoo.data.cifar import parse_cifar_binary, parse_cifar_python, parse_cifar_python_meta
from convzoo.errors import DataError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_VALID_IDX = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
_VALID_PY = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=2)
_VALID_META = pickle.dumps({b"label_names": [b"a", b"b"]}, protocol=2)


def _only_data_error(fn, data: bytes) -> None:
    try:
        fn(data)
    except DataError:
        pass


def _mutations(seed: bytes):
    """Byte strings near a valid file: truncations, flipped bytes, insertions."""
    return st.one_of(
        st.integers(0, len(seed)).map(lambda n: seed[:n]),
        st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)).map(
            lambda t: seed[:t[0]] + bytes([t[1]]) + seed[t[0] + 1:]),
        st.tuples(st.integers(0, len(seed)), st.binary(max_size=16)).map(
            lambda t: seed[:t[0]] + t[1] + seed[t[0]:]),
    )


@FUZZ
@given(st.one_of(st.binary(max_size=64), _mutations(_VALID_IDX),
                 st.binary(max_size=24).map(lambda b: b"\x00\x00" + b)))
def test_parse_idx_fuzz(data):
    _only_data_error(parse_idx, data)


@FUZZ
@given(st.one_of(st.binary(max_size=64), _mutations(gzip.compress(_VALID_IDX))))
def test_read_idx_fuzz(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("idx") / "f.gz"
    path.write_bytes(data)
    _only_data_error(read_idx, path)


@FUZZ
@given(st.one_of(st.binary(max_size=128), _mutations(_VALID_PY),
                 st.binary(max_size=64).map(lambda b: b"\x80\x02" + b)))
def test_parse_cifar_python_fuzz(data):
    _only_data_error(parse_cifar_python, data)
    _only_data_error(lambda d: parse_cifar_python(d, label_key="fine_labels"), data)


@FUZZ
@given(st.one_of(st.binary(max_size=64), _mutations(_VALID_META)))
def test_parse_cifar_meta_fuzz(data):
    _only_data_error(parse_cifar_python_meta, data)


@FUZZ
@given(st.one_of(st.binary(max_size=64), st.integers(0, 3 * 3074).map(lambda n: b"\x07" * n)),
       st.sampled_from([(1, 0), (2, 0), (2, 1)]))
def test_parse_cifar_binary_fuzz(data, layout):
    try:
        x, y = parse_cifar_binary(data, label_bytes=layout[0], label_index=layout[1])
    except DataError:
        return
    assert x.shape == (len(data) // (layout[0] + 3072), 3, 32, 32) and len(y) == len(x)
