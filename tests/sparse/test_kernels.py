"""Tests for the numpy kernels of the sparse COO plugin.

The reference below spells out FL4Health's semantics with plain ``np.nonzero``
(torch-free): values ``x[x.nonzero(as_tuple=True)]``, indices ``x.nonzero()``
(``(nnz, ndim)``), shape ``np.array(list(x.shape))``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fedpack_sparse_coo import _kernels as K
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedpack import PackingError

Array = npt.NDArray[Any]

DTYPES = ["bool", "int8", "uint16", "int64", "float16", "float32", "float64", "complex64"]
SHAPES = [(), (0,), (7,), (3, 0, 2), (4, 5), (2, 3, 4), (2, 3, 2, 3), (2, 1, 3, 2, 2)]


# ---------------------------------------------------------------------------
# reference implementation (FL4Health semantics, numpy only)
# ---------------------------------------------------------------------------


def ref_extract(x: Array) -> tuple[Array, Array, Array]:
    x = np.asarray(x)
    shape = np.array(list(x.shape), dtype=np.int64)
    if x.ndim == 0:
        keep = bool(x != 0)
        values = x.reshape(1)[:1] if keep else x.reshape(1)[:0]
        return values.copy(), np.zeros((int(keep), 0), dtype=np.int64), shape
    nz = np.nonzero(x)
    values = x[nz]
    indices = np.stack(nz, axis=1).astype(np.int64).reshape(len(values), x.ndim)
    return values, indices, shape


def ref_rebuild(values: Array, indices: Array, shape: Array) -> Array:
    out = np.zeros(tuple(int(s) for s in shape), dtype=values.dtype)
    if out.ndim == 0:
        if len(values):
            out[()] = values[0]
        return out
    out[tuple(indices.T)] = values
    return out


def same_bits(a: Array, b: Array) -> bool:
    """Equal shape, dtype and bytes (so NaN payloads and -0.0 are compared exactly)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


def zeros_normalised(x: Array) -> Array:
    """``x`` with -0.0 (and complex zeros with signed parts) turned into +0."""
    out = np.array(x, order="C", copy=True)
    out[out == 0] = 0
    return out


def make(dtype: str, shape: tuple[int, ...], seed: int = 0, density: float = 0.4) -> Array:
    rng = np.random.default_rng(seed)
    n = math.prod(shape)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        flat = rng.random(n) < density
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        flat = rng.integers(max(info.min, -100), min(info.max, 100), n, endpoint=True).astype(dt)
    elif dt.kind == "c":
        flat = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    else:
        flat = rng.standard_normal(n).astype(dt)
    flat[rng.random(n) >= density] = 0
    return flat.reshape(shape)


def layouts(x: Array) -> list[Array]:
    """``x`` itself, in Fortran order, and as a non-contiguous view with the same values."""
    out = [x]
    if x.ndim:  # np.asfortranarray turns a 0-d array into shape (1,)
        out.append(np.asfortranarray(x))
        big = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype)
        big[..., ::2] = x
        view = big[..., ::2]
        assert not view.flags.c_contiguous or x.size <= 1 or x.shape[-1] <= 1
        out.append(view)
        if x.ndim >= 2:
            out.append(np.ascontiguousarray(x.T).T)  # Fortran-like transposed view
    return out


# ---------------------------------------------------------------------------
# extraction equals the reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_extract_coo_matches_reference(dtype: str, shape: tuple[int, ...]) -> None:
    x = make(dtype, shape, seed=len(shape))
    ref_v, ref_i, ref_s = ref_extract(x)
    for view in layouts(x):
        values, indices, shp = K.extract_coo(view)
        assert same_bits(values, ref_v)
        assert indices.dtype == np.int64
        assert indices.shape == (len(ref_v), x.ndim)
        assert np.array_equal(indices, ref_i)
        assert shp.dtype == np.int64
        assert np.array_equal(shp, ref_s)
        assert shp.shape == (x.ndim,)
        rebuilt = K.rebuild_dense(values, indices, shp)
        assert same_bits(rebuilt, ref_rebuild(ref_v, ref_i, ref_s))
        assert same_bits(rebuilt, zeros_normalised(x))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "complex64"])
def test_nan_is_sent_and_negative_zero_is_not(dtype: str) -> None:
    x = np.array([0.0, -0.0, np.nan, 1.0, -2.0, 0.0], dtype=dtype).reshape(2, 3)
    values, indices, _ = K.extract_coo(x)
    assert indices.tolist() == [[0, 2], [1, 0], [1, 1]]
    assert np.isnan(values[0])
    assert values[1:].tolist() == [1.0, -2.0]
    v, f = K.extract_flat(x)
    assert f.tolist() == [2, 3, 4]
    assert f.dtype == np.intp
    assert same_bits(v, values)


def test_complex_sent_if_either_part_is_nonzero() -> None:
    x = np.array([0j, 1j, 2 + 0j, complex(-0.0, 0.0)], dtype=np.complex64)
    v, f = K.extract_flat(x)
    assert f.tolist() == [1, 2]
    assert v.tolist() == [1j, 2]


def test_zero_dim_tensor() -> None:
    v, i, s = K.extract_coo(np.float32(2.5))
    assert v.tolist() == [2.5]
    assert i.shape == (1, 0)
    assert s.shape == (0,)
    assert same_bits(K.rebuild_dense(v, i, s), np.array(2.5, dtype=np.float32))
    v, i, s = K.extract_coo(np.array(0, dtype=np.int64))
    assert v.shape == (0,)
    assert i.shape == (0, 0)
    assert same_bits(K.rebuild_dense(v, i, s), np.array(0, dtype=np.int64))


def test_rebuild_keeps_row_order_of_values_for_unsorted_rows() -> None:
    values = np.array([1.0, 2.0, 3.0])
    indices = np.array([[1, 1], [0, 0], [0, 2]])
    out = K.rebuild_dense(values, indices, (2, 3))
    assert out.tolist() == [[2.0, 0.0, 3.0], [0.0, 1.0, 0.0]]


@pytest.mark.parametrize("idx_dtype", ["int8", "int32", "uint8", "uint32", "uint64", "int64"])
def test_rebuild_accepts_any_integer_index_dtype(idx_dtype: str) -> None:
    values = np.array([5, 6], dtype=np.int16)
    indices = np.array([[0, 1], [1, 2]], dtype=idx_dtype)
    assert K.rebuild_dense(values, indices, [2, 3]).tolist() == [[0, 5, 0], [0, 0, 6]]


def test_rebuild_with_base_keeps_unsent_and_does_not_modify_base() -> None:
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    before = base.copy()
    out = K.rebuild_dense(np.array([-1.0], np.float32), np.array([[1, 0]]), (2, 3), base=base)
    assert out.tolist() == [[0, 1, 2], [-1, 4, 5]]
    assert same_bits(base, before)
    assert out.flags.c_contiguous
    fortran_base = np.asfortranarray(base)
    out2 = K.rebuild_dense(
        np.array([-1.0], np.float32), np.array([[1, 0]]), (2, 3), base=fortran_base
    )
    assert same_bits(out2, out)


def test_coo_from_flat_and_flat_from_coo() -> None:
    shape = (3, 4, 5)
    flat = np.array([0, 7, 33, 59])
    coo = K.coo_from_flat(flat, shape)
    assert coo.dtype == np.int64
    assert coo.tolist() == [list(np.unravel_index(int(f), shape)) for f in flat]
    assert K.flat_from_coo(coo, shape).tolist() == flat.tolist()
    big = np.arange(0, 3 * 4 * 5, 1)
    assert np.array_equal(K.flat_from_coo(K.coo_from_flat(big, shape), shape), big)


def test_chunked_unravel_on_large_input() -> None:
    shape = (130, 64, 3, 3)  # more than two chunks of the kernel's unravel loop
    flat = np.arange(0, math.prod(shape), 1)
    coo = K.coo_from_flat(flat, shape)
    assert np.array_equal(coo, np.stack(np.unravel_index(flat, shape), axis=1))


# ---------------------------------------------------------------------------
# explicit selection: exact zeros are sent
# ---------------------------------------------------------------------------


def test_extract_selected_sends_zeros_and_base_keeps_unsent() -> None:
    x = np.array([[0.0, 1.0, 2.0], [0.0, -0.0, 3.0]], dtype=np.float32)
    mask = np.array([[True, True, False], [False, True, False]])
    v, f = K.extract_selected(x, mask)
    assert f.tolist() == [0, 1, 4]
    assert v.tolist() == [0.0, 1.0, -0.0]
    assert np.signbit(v[2])
    v2, f2 = K.extract_selected(x, np.array([4, 0, 1], dtype=np.uint8))
    assert f2.tolist() == [0, 1, 4]
    assert same_bits(v2, v)
    base = np.full((2, 3), 9.0, dtype=np.float32)
    for enc_in in (K.encode_compact(v, f, x.shape),):
        enc, arrays = enc_in
        assert enc != "dense"
        out = K.rebuild_from_compact(enc, arrays, x.shape, base=base)
        assert same_bits(out, np.array([[0.0, 1.0, 9.0], [9.0, -0.0, 9.0]], dtype=np.float32))
        dv, df = K.decode_compact(enc, arrays, x.shape, np.float32)
        assert same_bits(dv, v)
        assert df.tolist() == f.tolist()
    coo = K.coo_from_flat(f, x.shape)
    out = K.rebuild_dense(v, coo, x.shape, base=base)
    assert same_bits(out, np.array([[0.0, 1.0, 9.0], [9.0, -0.0, 9.0]], dtype=np.float32))


def test_extract_selected_flat_mask_and_empty() -> None:
    x = np.arange(6).reshape(2, 3)
    v, f = K.extract_selected(x, np.arange(6) % 2 == 0)
    assert f.tolist() == [0, 2, 4]
    assert v.tolist() == [0, 2, 4]
    v, f = K.extract_selected(x, np.array([], dtype=np.int64))
    assert v.shape == (0,)
    assert f.shape == (0,)


def test_dense_encoding_not_used_when_a_sent_value_is_zero() -> None:
    x = np.ones(64, dtype=np.float32)
    x[3] = 0
    v, f = K.extract_selected(x, np.ones(64, dtype=bool))
    assert K.encode_compact(v, f, x.shape)[0] == "bitmask"
    v2, f2 = K.extract_flat(x)
    enc2, arrays2 = K.encode_compact(v2, f2, x.shape)
    assert enc2 == "dense"
    assert same_bits(arrays2[0], x)
    base = np.full(64, 7.0, dtype=np.float32)
    out = K.rebuild_from_compact(enc2, arrays2, x.shape, base=base)
    expected = x.copy()
    expected[3] = 7.0
    assert same_bits(out, expected)
    assert same_bits(K.rebuild_from_compact(enc2, arrays2, x.shape), x)


# ---------------------------------------------------------------------------
# compact encodings
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "dtype"), [(2, np.uint8), (256, np.uint8), (257, np.uint16), (65537, np.uint32)]
)
def test_flat_index_dtype_is_narrowest(size: int, dtype: type) -> None:
    v = np.array([1.0], dtype=np.float64)
    enc, arrays = K.encode_compact(v, np.array([size - 1]), (size,))
    assert enc == "flat"
    assert arrays[0].dtype == dtype
    assert arrays[0].tolist() == [size - 1]


def test_encoding_choice_by_density() -> None:
    n = 100_000
    rng = np.random.default_rng(1)
    for density, expected in [(0.01, "flat"), (0.1, "bitmask"), (0.99, "dense")]:
        x = np.where(rng.random(n) < density, 1.0 + rng.random(n), 0.0).astype(np.float32)
        v, f = K.extract_flat(x)
        enc, arrays = K.encode_compact(v, f, x.shape)
        assert enc == expected
        assert same_bits(K.rebuild_from_compact(enc, arrays, x.shape), x)


def test_bitmask_is_little_bitorder() -> None:
    v = np.array([1, 2, 3, 4], dtype=np.int8)
    enc, arrays = K.encode_compact(v, np.array([0, 9, 10, 11]), (12,))
    assert enc == "bitmask"
    assert arrays[0].tolist() == [0b00000001, 0b00001110]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 1.0])
def test_compact_round_trip(dtype: str, shape: tuple[int, ...], density: float) -> None:
    x = make(dtype, shape, seed=3, density=density)
    v, f = K.extract_flat(x)
    enc, arrays = K.encode_compact(v, f, x.shape)
    dv, df = K.decode_compact(enc, arrays, x.shape, x.dtype)
    assert same_bits(dv, v)
    assert np.array_equal(df, f)
    assert df.dtype == np.intp
    assert same_bits(K.rebuild_from_compact(enc, arrays, x.shape), zeros_normalised(x))
    assert np.array_equal(K.coo_from_flat(df, x.shape), ref_extract(x)[1])


# ---------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------


def _elements(dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
    if dtype.kind == "f":
        special = st.sampled_from([0.0, -0.0, float("nan")])
        return st.one_of(special, hnp.from_dtype(dtype, allow_nan=True, allow_infinity=True))
    if dtype.kind == "c":
        return st.one_of(
            st.sampled_from([0j, complex(-0.0, 0.0), complex(0.0, -0.0), complex("nan")]),
            hnp.from_dtype(dtype, allow_nan=True, allow_infinity=True),
        )
    return st.one_of(st.just(0), hnp.from_dtype(dtype))


@st.composite
def tensors(draw: st.DrawFn) -> Array:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6))
    x: Array = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    layout = draw(st.sampled_from(["c", "f", "view"]))
    if layout == "f" and x.ndim:
        return np.asfortranarray(x)
    if layout == "view" and x.ndim:
        big = np.zeros((*x.shape, 2), dtype=x.dtype)
        big[..., 1] = x
        return big[..., 1]
    return x


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(tensors())
def test_property_extract_matches_reference_and_round_trips(x: Array) -> None:
    values, indices, shape = K.extract_coo(x)
    ref_v, ref_i, ref_s = ref_extract(x)
    assert same_bits(values, ref_v)
    assert np.array_equal(indices, ref_i)
    assert indices.shape == ref_i.shape
    assert np.array_equal(shape, ref_s)
    assert same_bits(K.rebuild_dense(values, indices, shape), zeros_normalised(x))


@PROPERTY
@given(tensors(), st.data())
def test_property_compact_round_trip_and_size(x: Array, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        v, f = K.extract_flat(x)
    else:
        mask = data.draw(hnp.arrays(np.bool_, x.shape))
        v, f = K.extract_selected(x, mask)
    enc, arrays = K.encode_compact(v, f, x.shape)
    size, item = x.size, x.dtype.itemsize
    wire = sum(a.nbytes for a in arrays)
    sizes = K.compact_nbytes(len(v), size, item)
    assert wire == sizes[enc]
    dense_ok = int(np.count_nonzero(v)) == len(v)
    eligible = [e for e in K.ENCODINGS if e != "dense" or dense_ok]
    assert wire == min(sizes[e] for e in eligible)
    assert wire <= size * item + (size + 7) // 8
    dv, df = K.decode_compact(enc, arrays, x.shape, x.dtype)
    assert same_bits(dv, v)
    assert np.array_equal(df, f)
    base = np.asarray(data.draw(hnp.arrays(x.dtype, x.shape, elements=_elements(x.dtype))))
    expected = np.array(base, order="C", copy=True).reshape(-1)
    expected[f] = v
    out = K.rebuild_from_compact(enc, arrays, x.shape, base=base)
    assert same_bits(out, expected.reshape(x.shape))
    assert same_bits(K.rebuild_dense(v, K.coo_from_flat(f, x.shape), x.shape, base=base), out)


# ---------------------------------------------------------------------------
# validation errors
# ---------------------------------------------------------------------------

F32 = np.float32
I64 = np.int64

#: rebuild_dense's refusals: (values, indices, shape, message).
REBUILD_REFUSALS = {
    "out-of-bounds-index": (
        np.ones(2, F32),
        np.array([[0, 0], [1, 3]]),
        (2, 3),
        r"expected 0 <= index < 3 in dimension 1, found 3 at row 1",
    ),
    "negative-index": (
        np.ones(1, F32),
        np.array([[-1, 0]]),
        (2, 3),
        r"expected 0 <= index < 2 in dimension 0, found -1 at row 0",
    ),
    "huge-uint64-index": (
        np.ones(1, F32),
        np.array([[2**64 - 1, 0]], dtype=np.uint64),
        (2, 3),
        r"expected 0 <= index < 2 in dimension 0, found 18446",
    ),
    "wrong-index-dtype": (
        np.ones(1, F32),
        np.array([[0.0, 1.0]]),
        (2, 3),
        r"indices: expected an integer dtype, found float64",
    ),
    "wrong-index-shape-1d": (
        np.ones(1, F32),
        np.array([0, 1]),
        (2, 3),
        r"indices: expected shape \(nnz, 2\) for a 2-d tensor, found shape",
    ),
    "wrong-index-shape-3-columns": (
        np.ones(1, F32),
        np.zeros((1, 3), dtype=I64),
        (2, 3),
        r"indices: expected shape \(nnz, 2\) for a 2-d tensor, found shape",
    ),
    "count-mismatch": (
        np.ones(3, F32),
        np.array([[0, 0], [1, 1]]),
        (2, 3),
        r"indices: expected 3 rows \(one per value\), found 2",
    ),
    "values-not-1d": (
        np.ones((1, 1), F32),
        np.array([[0, 0]]),
        (2, 3),
        r"values: expected a 1-D array, found shape \(1, 1\)",
    ),
    "duplicate-positions": (
        np.ones(3, F32),
        np.array([[1, 1], [0, 0], [1, 1]]),
        (2, 3),
        r"expected each position at most once, found flat position 4",
    ),
    "negative-shape": (
        np.ones(0, F32),
        np.zeros((0, 2), I64),
        (2, -3),
        r"expected non-negative sizes, found -3 in dimension 1",
    ),
    "non-integer-shape": (
        np.ones(0, F32),
        np.zeros((0, 2), I64),
        (2.0, 3),
        r"shape: expected integers, found 2.0",
    ),
    "zero-dim-with-two-rows": (
        np.ones(2, F32),
        np.zeros((2, 0), I64),
        (),
        r"expected at most 1 row for a 0-d tensor, found 2",
    ),
}


@pytest.mark.parametrize("case", list(REBUILD_REFUSALS))
def test_rebuild_refuses(case: str) -> None:
    values, indices, shape, message = REBUILD_REFUSALS[case]
    with pytest.raises(PackingError, match=message):
        K.rebuild_dense(values, indices, shape)


def test_huge_shape_refused_before_allocation() -> None:
    huge = np.array([10**6, 10**6], dtype=np.int64)
    msg = r"expected at most 2147483648 elements \(max_elements\), found 1000000000000"
    with pytest.raises(PackingError, match=msg):
        K.rebuild_dense(np.ones(1, F32), np.array([[0, 0]]), huge)
    with pytest.raises(PackingError, match=msg):
        K.rebuild_from_compact("dense", [np.ones(1, F32)], (10**6, 10**6))
    with pytest.raises(PackingError, match=msg):
        K.decode_compact("bitmask", [np.ones(1, np.uint8), np.ones(1, F32)], (10**6, 10**6), F32)
    with pytest.raises(
        PackingError, match=r"expected at most 10 elements \(max_elements\), found 12"
    ):
        K.rebuild_dense(np.ones(0, F32), np.zeros((0, 2), np.int64), (3, 4), max_elements=10)


def test_rebuild_base_mismatch() -> None:
    v, i = np.ones(1, F32), np.array([[0, 0]])
    with pytest.raises(PackingError, match=r"base: expected shape \(2, 3\), found \(3, 2\)"):
        K.rebuild_dense(v, i, (2, 3), base=np.zeros((3, 2), F32))
    with pytest.raises(PackingError, match=r"base: expected dtype float32, found float64"):
        K.rebuild_dense(v, i, (2, 3), base=np.zeros((2, 3)))
    enc, arrays = K.encode_compact(v, np.array([0]), (2, 3))
    with pytest.raises(PackingError, match=r"base: expected dtype float32, found int64"):
        K.rebuild_from_compact(enc, arrays, (2, 3), base=np.zeros((2, 3), np.int64))


def test_unsupported_dtype() -> None:
    with pytest.raises(
        PackingError, match=r"x: expected a bool, integer, float or complex dtype, found <U1"
    ):
        K.extract_coo(np.array(["a"]))


def test_decode_flat_unsorted_and_duplicate() -> None:
    vals = np.ones(3, F32)
    with pytest.raises(
        PackingError, match=r"expected strictly increasing flat indices, found unsorted 5 then 2"
    ):
        K.decode_compact("flat", [np.array([1, 5, 2], np.uint8), vals], (10,), F32)
    with pytest.raises(
        PackingError, match=r"expected strictly increasing flat indices, found duplicate 5 then 5"
    ):
        K.decode_compact("flat", [np.array([1, 5, 5], np.uint8), vals], (10,), F32)


def test_decode_flat_out_of_range_and_bad_dtype_and_count() -> None:
    vals = np.ones(2, F32)
    with pytest.raises(
        PackingError, match=r"flat indices: expected flat indices < 10 \(tensor size\), found 10"
    ):
        K.rebuild_from_compact("flat", [np.array([1, 10], np.uint8), vals], (10,))
    with pytest.raises(
        PackingError,
        match=r"flat indices: expected a 1-D unsigned integer array, found int64 array",
    ):
        K.decode_compact("flat", [np.array([1, 2]), vals], (10,), F32)
    with pytest.raises(
        PackingError, match=r"flat indices: expected 2 entries \(one per value\), found 3"
    ):
        K.decode_compact("flat", [np.array([1, 2, 3], np.uint8), vals], (10,), F32)


def test_decode_values_dtype_mismatch() -> None:
    with pytest.raises(PackingError, match=r"values: expected dtype float64, found float32"):
        K.decode_compact("flat", [np.array([1], np.uint8), np.ones(1, F32)], (10,), np.float64)
    with pytest.raises(PackingError, match=r"dense: expected dtype int8, found float32"):
        K.rebuild_from_compact("dense", [np.ones(10, F32)], (10,), dtype=np.int8)


def test_decode_bitmask_errors() -> None:
    packed = np.packbits(np.array([1, 0, 1, 0, 0, 0, 0, 0, 1, 1], bool), bitorder="little")
    with pytest.raises(
        PackingError,
        match=r"bitmask: expected popcount equal to the number of values \(3\), found 4 set bits",
    ):
        K.decode_compact("bitmask", [packed, np.ones(3, F32)], (10,), F32)
    with pytest.raises(
        PackingError,
        match=(
            r"bitmask: expected a uint8 array of shape \(2,\) for 10 elements, "
            r"found uint8 array of shape \(3,\)"
        ),
    ):
        K.decode_compact("bitmask", [np.zeros(3, np.uint8), np.ones(0, F32)], (10,), F32)
    with pytest.raises(PackingError, match=r"bitmask: expected a uint8 array .* found int8 array"):
        K.decode_compact("bitmask", [packed.view(np.int8), np.ones(4, F32)], (10,), F32)
    bad_pad = packed.copy()
    bad_pad[1] |= 0b100
    with pytest.raises(
        PackingError,
        match=r"bitmask: expected padding bits after element 10 to be zero, found last byte 0x07",
    ):
        K.rebuild_from_compact("bitmask", [bad_pad, np.ones(5, F32)], (10,))


def test_decode_dense_errors_and_bad_encoding() -> None:
    with pytest.raises(PackingError, match=r"dense: expected 6 elements \(tensor size\), found 5"):
        K.decode_compact("dense", [np.ones(5, F32)], (2, 3), F32)
    with pytest.raises(
        PackingError, match=r"encoding: expected one of 'dense', 'flat', 'bitmask', found 'rle'"
    ):
        K.decode_compact("rle", [np.ones(5, F32)], (5,), F32)
    with pytest.raises(
        PackingError, match=r"arrays: expected 2 arrays for encoding 'flat', found 1"
    ):
        K.decode_compact("flat", [np.ones(5, F32)], (5,), F32)
    with pytest.raises(PackingError, match=r"arrays\[1\]: expected a numpy array, found list"):
        K.decode_compact("flat", [np.ones(1, np.uint8), [1.0]], (5,), F32)  # type: ignore[list-item]


def test_encode_input_errors() -> None:
    with pytest.raises(
        PackingError, match=r"flat_indices: expected 2 entries \(one per value\), found 1"
    ):
        K.encode_compact(np.ones(2, F32), np.array([0]), (4,))
    with pytest.raises(
        PackingError,
        match=r"flat_indices: expected strictly increasing flat indices, found unsorted 3 then 1",
    ):
        K.encode_compact(np.ones(2, F32), np.array([3, 1]), (4,))
    with pytest.raises(PackingError, match=r"flat_indices: expected flat indices >= 0, found -1"):
        K.encode_compact(np.ones(2, F32), np.array([-1, 1]), (4,))
    with pytest.raises(
        PackingError, match=r"flat_indices: expected flat indices < 4 \(tensor size\), found 4"
    ):
        K.encode_compact(np.ones(2, F32), np.array([1, 4]), (4,))


def test_extract_selected_errors() -> None:
    x = np.zeros((2, 3), F32)
    with pytest.raises(
        PackingError,
        match=r"selection: expected a bool mask of shape \(2, 3\) or \(6,\), found shape \(3, 2\)",
    ):
        K.extract_selected(x, np.zeros((3, 2), bool))
    with pytest.raises(
        PackingError, match=r"selection: expected each position at most once, found flat position 2"
    ):
        K.extract_selected(x, np.array([2, 0, 2]))
    with pytest.raises(
        PackingError, match=r"selection: expected flat indices < 6 \(tensor size\), found 6"
    ):
        K.extract_selected(x, np.array([0, 6]))
    with pytest.raises(PackingError, match=r"selection: expected flat indices >= 0, found -1"):
        K.extract_selected(x, np.array([-1, 2]))
    with pytest.raises(
        PackingError,
        match=r"selection: expected a bool mask or integer flat indices, found dtype float64",
    ):
        K.extract_selected(x, np.array([0.0]))


def test_coo_from_flat_errors() -> None:
    with pytest.raises(
        PackingError, match=r"flat_indices: expected values in \[0, 6\), found 0..6"
    ):
        K.coo_from_flat(np.array([0, 6]), (2, 3))


def test_packing_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="in dimension 0"):
        K.rebuild_dense(np.ones(1, F32), np.array([[5, 0]]), (2, 3))
