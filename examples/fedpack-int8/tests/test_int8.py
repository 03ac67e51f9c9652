"""Behaviour of the int8 packer: the error bound, the bytes, the layout and every error path."""

from __future__ import annotations

import numpy as np
import pytest
from fedpack_int8 import Int8Packer, dequantize, quantize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack

FLOATS = [np.float16, np.float32, np.float64]


def roundtrip(weights: fedpack.NDArrays, extra: fedpack.NDArrays | None = None, **kw: bool):
    packer = Int8Packer(**kw)
    return packer.unpack_parameters(packer.pack_parameters(weights, extra or []))


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(FLOATS).flatmap(
        lambda dtype: hnp.arrays(
            dtype=dtype,
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
            elements=st.floats(
                allow_nan=False, allow_infinity=False, width=8 * np.dtype(dtype).itemsize
            ),
        )
    )
)
def test_error_is_within_half_a_scale(x: np.ndarray) -> None:
    (y,), extra = roundtrip([x])
    assert extra == []
    assert y.dtype == x.dtype
    assert y.shape == x.shape
    peak = float(np.max(np.abs(x.astype(np.float64)))) if x.size else 0.0
    scale = max(peak / 127, np.finfo(np.float64).tiny) if peak else 0.0
    # one float ulp of the result's dtype (the float64 ulp of y avoids overflow at the dtype's max)
    ulp = float(np.max(np.spacing(np.abs(y.astype(np.float64))))) if y.size else 0.0
    ulp = (
        max(ulp, float(np.finfo(y.dtype).eps * np.max(np.abs(y.astype(np.float64)))))
        if y.size
        else 0.0
    )
    error = np.abs(y.astype(np.float64) - x.astype(np.float64))
    assert (error <= scale / 2 * (1 + 1e-9) + ulp).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_extremes_come_back_exactly(dtype: type) -> None:
    x = np.array([-3.0, 0.0, 3.0, 1.5], dtype=dtype)
    (y,), _ = roundtrip([x])
    assert y[0] == -3.0
    assert y[1] == 0.0
    assert y[2] == 3.0


def test_float32_weights_take_a_quarter_of_the_bytes() -> None:
    weights = [np.ones((256, 256), dtype=np.float32), np.ones(1000, dtype=np.float32)]
    packed = Int8Packer().pack_parameters(weights, [])
    assert sum(a.nbytes for a in packed) / sum(w.nbytes for w in weights) < 0.26
    assert packed[0].dtype == np.int8
    assert packed[0].shape == (256, 256)


@pytest.mark.parametrize(
    "x",
    [
        np.arange(5, dtype=np.int64),
        np.array(7, dtype=np.int64),
        np.array([True, False]),
        np.array([-128, 127], dtype=np.int8),
        np.arange(4, dtype=np.uint8),
        np.array([1 + 2j], dtype=np.complex64),
    ],
)
def test_non_float_weights_are_sent_exactly_as_the_same_object(x: np.ndarray) -> None:
    packer = Int8Packer()
    packed = packer.pack_parameters([x], [])
    assert packed[0] is x
    (y,), _ = packer.unpack_parameters(packed)
    assert y is x


def test_empty_zero_sized_zero_and_0d_weights() -> None:
    weights = [
        np.zeros(0, np.float32),
        np.zeros((2, 0), np.float64),
        np.zeros((3, 3), np.float32),
        np.array(2.5, np.float32),
        np.array(-0.0),
    ]
    got, _ = roundtrip(weights)
    for want, y in zip(weights, got, strict=True):
        assert y.dtype == want.dtype
        assert y.shape == want.shape
        assert isinstance(y, np.ndarray)
        np.testing.assert_array_equal(y, want)
    assert roundtrip([]) == ([], [])


def test_extra_arrays_are_sent_exactly_as_the_same_objects() -> None:
    extra = [np.linspace(0, 1, 7, dtype=np.float32), np.array(3)]
    packer = Int8Packer()
    packed = packer.pack_parameters([np.ones(4, np.float32)], extra)
    assert packed[1] is extra[0]
    assert packed[2] is extra[1]
    _, got = packer.unpack_parameters(packed)
    assert got[0] is extra[0]
    assert got[1] is extra[1]


def test_layout_without_a_frame() -> None:
    w = [np.array([1.0, -2.0], np.float32), np.array(4, np.int64)]
    packed = Int8Packer(framed=False).pack_parameters(w, [np.zeros(2)])
    assert [a.dtype.str for a in packed] == ["|i1", "<i8", "<f8", "<f8", "<U7"]
    np.testing.assert_array_equal(packed[0], [64, -127])
    np.testing.assert_array_equal(packed[3], [2.0 / 127, 0.0])
    assert packed[4].tolist() == ["float32", "int64", "float64"]


def test_fedpack_unpack_dispatches_on_the_frame() -> None:
    packed = fedpack.get_packer("int8").pack_parameters([np.ones(3, np.float64)], [])
    name, weights, extra = fedpack.unpack(packed)
    assert name == "int8"
    assert extra == []
    np.testing.assert_array_equal(weights[0], np.ones(3))


def test_composes_with_clipping_bit() -> None:
    pytest.importorskip("fedpack_clipping_bit")
    packer = fedpack.get_packer("int8+clipping_bit")
    x = np.linspace(-1, 1, 9, dtype=np.float32)
    packed = packer.pack_parameters([x], ([], 1.0))
    assert packed[0].dtype == np.int8
    name, (y,), (exact, bit) = fedpack.unpack(packed)
    assert name == "int8+clipping_bit"
    assert exact == []
    assert bit == 1.0
    assert np.abs(y - x).max() <= 1 / 254 + 1e-7


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", FLOATS)
def test_non_finite_weights_are_rejected(bad: float, dtype: type) -> None:
    x = np.array([0.0, bad, 1.0], dtype=dtype)
    with pytest.raises(fedpack.PackingError, match=r"model_weights\[1\]: expected finite values"):
        Int8Packer().pack_parameters([np.ones(2, np.float32), x], [])


def test_extra_must_be_a_list_of_arrays() -> None:
    with pytest.raises(fedpack.PackingError, match="int8: additional_parameters: expected a list"):
        Int8Packer().pack_parameters([], None)  # type: ignore[arg-type]


def packed_one(framed: bool = True) -> fedpack.NDArrays:
    return Int8Packer(framed=framed).pack_parameters(
        [np.array([1.0, -1.0], np.float32), np.arange(3)], [np.zeros(1)]
    )


@pytest.mark.parametrize(
    ("index", "replacement", "message"),
    [
        (0, np.array([1, -128], np.int8), r"expected values in \[-127, 127\], found -128"),
        (0, np.array([1.0, 2.0], np.float32), "expected the int8 encoding of a float32 weight"),
        (1, np.arange(3, dtype=np.int32), "expected a int64 array sent as is"),
        (2, np.zeros(1, np.float32), "exact array 0 .*: expected dtype float64"),
        (3, np.array([0.1, 0.0], np.float32), "scales .*: expected a 1-D float64 array"),
        (3, np.array([-0.1, 0.0]), "expected finite non-negative scales"),
        (3, np.array([np.nan, 0.0]), "expected finite non-negative scales"),
        (3, np.array([0.1, 0.5]), "expected a int64 array sent as is \\(scale 0\\)"),
        (3, np.array([1e307, 0.0]), "scale 1e[+]307 overflows float32"),
        (4, np.array([1.0, 2.0]), "dtypes .*: expected a 1-D str array"),
    ],
)
@pytest.mark.parametrize("framed", [True, False])
def test_malformed_payloads(
    index: int, replacement: np.ndarray, message: str, framed: bool
) -> None:
    packed = packed_one(framed)
    packed[index] = replacement
    with pytest.raises(fedpack.PackingError, match=message):
        Int8Packer(framed=framed).unpack_parameters(packed)


@pytest.mark.parametrize(
    ("dtypes", "message"),
    [
        (["float32", "int64"], r"expected 2 weights and 0 exact arrays .*, found 3 and 0"),
        (["float32"] * 5, r"expected 2 weights and 3 exact arrays .*, found 0 and 3"),
        (["float32"] * 7, "describes 2 weights and 5 exact arrays, found 3 arrays before it"),
    ],
)
def test_counts_must_agree_with_the_trailer(dtypes: list[str], message: str) -> None:
    packed = packed_one(framed=False)
    packed[4] = np.array(dtypes)
    with pytest.raises(fedpack.PackingError, match=message):
        Int8Packer(framed=False).unpack_parameters(packed)


def test_too_short_unframed_payload() -> None:
    with pytest.raises(fedpack.PackingError, match=r"found 1 array\(s\)"):
        Int8Packer(framed=False).unpack_parameters([np.zeros(2)])


def test_helpers() -> None:
    q, scale = quantize(np.array([0.5, -1.0]))
    assert q.tolist() == [64, -127]
    assert scale == 1 / 127
    assert dequantize(q, scale, "float32").dtype == np.float32
    assert quantize(np.zeros(3))[1] == 0.0


def test_subnormal_weights_keep_the_bound() -> None:
    x = np.array([5e-324, -1e-320, 2e-310])
    (y,), _ = roundtrip([x])
    tiny = np.finfo(np.float64).tiny
    assert np.isfinite(y).all()
    assert (np.abs(y - x) <= tiny / 2).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_the_largest_values_do_not_overflow(dtype: type) -> None:
    info = np.finfo(dtype)
    x = np.array([info.max, -info.max, 0.0], dtype=dtype)
    (y,), _ = roundtrip([x])
    assert np.isfinite(y).all()
    assert (np.abs(y.astype(np.float64) - x.astype(np.float64)) <= float(info.max) / 254).all()
