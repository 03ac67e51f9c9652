"""The npy codec against Flower's own ndarray serialization."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fedpack._errors import PackingError
from fedpack.flwr._npy import decode_array, decode_arrays, encode_array, encode_arrays

flwr = pytest.importorskip("flwr")
ndarray_to_bytes = flwr.common.ndarray_to_bytes
ndarrays_to_parameters = flwr.common.ndarrays_to_parameters
parameters_to_ndarrays = flwr.common.parameters_to_ndarrays

DTYPES: list[Any] = [
    "?",
    "i1",
    "i2",
    "i4",
    "i8",
    "u1",
    "u2",
    "u4",
    "u8",
    "f2",
    "f4",
    "f8",
    "c8",
    "c16",
    "<U7",
    ">i4",
    ">f8",
    np.dtype([("a", "<i4"), ("b", ">f8", (2,))]),
]


def make(dtype: Any, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    dt = np.dtype(dtype)
    count = int(np.prod(shape))
    if dt.kind == "U":
        return np.array([str(i) * (i % 4) for i in range(count)], dt).reshape(shape)
    raw = (np.arange(count * dt.itemsize) * 29 % 253).astype(np.uint8).tobytes()
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def model() -> list[npt.NDArray[Any]]:
    """A small model-like parameter list with mixed layouts and dtypes."""
    rng = np.random.default_rng(0)
    conv = rng.standard_normal((16, 3, 3, 3), dtype=np.float32)
    return [
        conv,
        rng.standard_normal(16, dtype=np.float32),
        np.asfortranarray(rng.standard_normal((10, 16), dtype=np.float32)),
        rng.standard_normal((16, 10), dtype=np.float64).T,
        conv[:, :2, ::2],
        np.array(7, dtype=np.int64),
        np.zeros((0, 5), dtype=np.float32),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 4), (2, 3, 4)], ids=str)
def test_bytes_identical_to_flwr(dtype: Any, shape: tuple[int, ...]) -> None:
    arr = make(dtype, shape)
    assert encode_array(arr) == ndarray_to_bytes(arr)
    for view in (np.asfortranarray(arr), arr.T, arr[..., ::2] if arr.ndim else arr):
        assert encode_array(view) == ndarray_to_bytes(view)


def test_encode_arrays_equals_parameters_tensors() -> None:
    arrs = model()
    params = ndarrays_to_parameters(arrs)
    assert encode_arrays(arrs) == params.tensors


def test_decode_flwr_bytes_equals_parameters_to_ndarrays() -> None:
    arrs = model()
    params = ndarrays_to_parameters(arrs)
    want = parameters_to_ndarrays(params)
    for writable in (False, True):
        got = decode_arrays(params.tensors, writable=writable)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            assert g.shape == w.shape
            assert g.flags.f_contiguous == w.flags.f_contiguous
            np.testing.assert_array_equal(g, w)
            assert g.flags.writeable == writable


def test_flwr_decodes_fedpack_bytes() -> None:
    arrs = model()
    tensors = encode_arrays(arrs)
    params = flwr.common.Parameters(tensors=tensors, tensor_type="numpy.ndarray")
    for got, want in zip(parameters_to_ndarrays(params), arrs, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("count", [0, 1, 2, 6, 13])
def test_every_array_comes_back_both_ways(count: int) -> None:
    # a decode that returned fewer (or more) arrays than were encoded fails here, whichever side
    # encoded and whichever side decoded
    arrs = (model() * 3)[:count]
    assert len(arrs) == count
    ours = encode_arrays(arrs)
    theirs = ndarrays_to_parameters(arrs).tensors
    assert len(ours) == len(theirs) == count
    for tensors in (ours, theirs):
        params = flwr.common.Parameters(tensors=tensors, tensor_type="numpy.ndarray")
        decoded = {
            "fedpack": decode_arrays(tensors),
            "fedpack, writable": decode_arrays(tensors, writable=True),
            "flwr": parameters_to_ndarrays(params),
        }
        assert {by: len(got) for by, got in decoded.items()} == dict.fromkeys(decoded, count)
        for got in decoded.values():
            for g, w in zip(got, arrs, strict=True):
                np.testing.assert_array_equal(g, w)


def test_object_arrays_refused_like_flwr() -> None:
    arr = np.array([1, None], dtype=object)
    with pytest.raises(ValueError, match="allow_pickle"):
        ndarray_to_bytes(arr)
    with pytest.raises(PackingError, match="without Python objects"):
        encode_array(arr)


def test_decode_single_flwr_tensor_is_view() -> None:
    arr = make("f4", (8, 8))
    data = ndarray_to_bytes(arr)
    decoded = decode_array(data)
    assert np.shares_memory(decoded, np.frombuffer(data, dtype=np.uint8))
    np.testing.assert_array_equal(decoded, arr)
