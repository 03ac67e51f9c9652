"""The quantize packer: bounds, rounding, 4-bit packing, pass-through, wrapping, validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack
from fedpack import PackingError
from fedpack.frame import Frame, encode_frame, read_frame
from fedpack.testing import PackerConformance, run_checks

pytest.importorskip("fedpack_quantize")

from fedpack_quantize import QuantizePacker, dequantize, error_bound, quantize
from fedpack_quantize._kernels import CHUNK
from fedpack_quantize._layout import Entry, encode_layout

BITS = [8, 4]
BLOCKS = [None, 1, 7, 64]


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    peak = float(np.max(np.abs(x.astype(np.float64)))) if x.size else 0.0
    if peak == 0.0:
        return float(np.max(np.abs(y.astype(np.float64)))) if y.size else 0.0
    return float(np.max(np.abs(y.astype(np.float64) - x.astype(np.float64)))) / peak


floats = hnp.arrays(
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9),
    elements={"allow_nan": False, "allow_infinity": False, "min_value": -1e4, "max_value": 1e4},
)


@settings(max_examples=150, deadline=None)
@given(
    x=floats,
    bits=st.sampled_from(BITS),
    block=st.sampled_from(BLOCKS),
    rounding=st.sampled_from(["nearest", "stochastic"]),
)
def test_round_trip_within_the_declared_bound(
    x: np.ndarray, bits: int, block: int | None, rounding: str
) -> None:
    packer = QuantizePacker(bits=bits, block=block, rounding=rounding, seed=1)
    packed = packer.pack_parameters([x, np.arange(3)], None)
    (y, ints), extra = packer.unpack_parameters(packed)
    assert extra is None
    assert y.dtype == x.dtype
    assert y.shape == x.shape
    np.testing.assert_array_equal(ints, np.arange(3))
    assert packer.lossy_tolerance is not None
    assert rel_error(x, y) <= packer.lossy_tolerance
    name, again, _ = fedpack.unpack(packed)
    assert name == "quantize"
    np.testing.assert_array_equal(again[0], y)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_declared_tolerance_is_the_bound(bits: int, rounding: str) -> None:
    packer = QuantizePacker(bits=bits, rounding=rounding)
    levels = 127 if bits == 8 else 7
    exact = 1 / (2 * levels) if rounding == "nearest" else 1 / levels
    assert error_bound(bits, rounding) == exact
    assert exact < packer.lossy_tolerance < exact + 1e-3  # type: ignore[operator]
    assert QuantizePacker.lossy_tolerance >= packer.lossy_tolerance  # type: ignore[operator]


@pytest.mark.parametrize("bits", BITS)
def test_nearest_rounding_reaches_half_a_step(bits: int) -> None:
    levels = 127 if bits == 8 else 7
    x = (np.arange(-4 * levels, 4 * levels + 1, dtype=np.float64) / 4).astype(np.float32)
    codes, scales = quantize(x, bits=bits, block=None)  # type: ignore[misc]
    y = dequantize(codes, scales, bits=bits, block=None, shape=x.shape, dtype=x.dtype)
    step = float(scales[0])
    assert np.max(np.abs(y - x)) <= step / 2 * (1 + 1e-6)
    assert np.max(np.abs(y - x)) >= step / 4  # values between codes really are rounded


@pytest.mark.parametrize("bits", BITS)
def test_stochastic_rounding_is_unbiased(bits: int) -> None:
    # one value 0.4 of a step above a code, quantized many times: the mean converges to it
    levels = 127 if bits == 8 else 7
    value = (round(0.3 * levels) + 0.4) / levels
    x = np.full(200_000, value, dtype=np.float32)
    x[0] = 1.0  # the peak: scale = 1 / L
    codes, scales = quantize(x, bits=bits, block=None, rng=np.random.default_rng(7))  # type: ignore[misc]
    y = dequantize(codes, scales, bits=bits, block=None, shape=x.shape, dtype=x.dtype)
    step = 1.0 / levels
    values = np.unique(y[1:])
    assert len(values) == 2
    assert values[1] - values[0] == pytest.approx(step, rel=1e-5)
    # standard error of the mean: sqrt(0.4 * 0.6 / n) steps ~ 0.0011 step; allow 10x that
    error = abs(float(y[1:].astype(np.float64).mean()) - float(x[1]))
    assert error < 10 * step * np.sqrt(0.24 / x.size)
    nearest, _ = quantize(x, bits=bits, block=None)  # type: ignore[misc]
    biased = dequantize(nearest, scales, bits=bits, block=None, shape=x.shape, dtype=x.dtype)
    assert abs(float(biased[1:].astype(np.float64).mean()) - float(x[1])) > 0.39 * step


def test_stochastic_rounding_is_seeded() -> None:
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    a = QuantizePacker(rounding="stochastic", seed=3).pack_parameters([x], None)
    b = QuantizePacker(rounding="stochastic", seed=3).pack_parameters([x], None)
    c = QuantizePacker(rounding="stochastic", seed=4).pack_parameters([x], None)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_four_bit_packing_is_exact() -> None:
    # every code in both nibbles, odd length: low nibble first, zero padding nibble
    levels = np.arange(-7, 8, dtype=np.float32)
    x = np.concatenate([np.repeat(levels, 15), np.tile(levels, 15), [7.0]]).astype(np.float32)
    codes, scales = quantize(x, bits=4, block=None)  # type: ignore[misc]
    assert scales[0] == 1.0
    assert codes.dtype == np.uint8
    assert codes.shape == ((x.size + 1) // 2,)
    biased = (x + 8).astype(np.uint8)
    assert codes[0] == biased[0] | (biased[1] << 4)
    assert codes[-1] == biased[-1]  # high nibble (padding) zero
    y = dequantize(codes, scales, bits=4, block=None, shape=x.shape, dtype=x.dtype)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("block", [None, 3, 64])
def test_codes_on_the_grid_come_back_exactly(bits: int, block: int | None) -> None:
    levels = 127 if bits == 8 else 7
    rng = np.random.default_rng(0)
    x = (rng.integers(-levels, levels + 1, 1001) / 8).astype(np.float32)
    x[:: block or 1001] = levels / 8  # every block has the peak: scale 1/8
    codes, scales = quantize(x, bits=bits, block=block)  # type: ignore[misc]
    y = dequantize(codes, scales, bits=bits, block=block, shape=x.shape, dtype=x.dtype)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", ["int8", "int64", "uint8", "bool", "complex64"])
def test_non_float_arrays_pass_through_exactly(dtype: str) -> None:
    x = np.arange(12).reshape(3, 4).astype(dtype)
    packer = fedpack.get_packer("quantize", bits=4)
    packed = packer.pack_parameters([x], None)
    assert packed[0] is x
    (y,), _ = packer.unpack_parameters(packed)
    assert y is packed[0]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_dtypes_and_shapes_are_kept(bits: int, dtype: str) -> None:
    x = np.linspace(-3, 3, 60).reshape(3, 4, 5).astype(dtype)
    packer = QuantizePacker(bits=bits)
    packed = packer.pack_parameters([x, np.array(2.5, dtype=dtype)], None)
    assert packed[0].dtype == (np.int8 if bits == 8 else np.uint8)
    weights, _ = packer.unpack_parameters(packed)
    assert [(w.dtype, w.shape) for w in weights] == [(x.dtype, x.shape), (np.dtype(dtype), ())]


def test_float32_never_goes_through_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    from fedpack_quantize import _kernels

    seen: list[np.dtype[Any]] = []
    original = _kernels.work_dtype

    def spy(dtype: np.dtype[Any]) -> np.dtype[Any]:
        work = original(dtype)
        seen.append(work)
        return work

    monkeypatch.setattr(_kernels, "work_dtype", spy)
    x = np.ones(100, dtype=np.float32)
    codes, scales = _kernels.quantize(x, bits=8, block=16)  # type: ignore[misc]
    _kernels.dequantize(codes, scales, bits=8, block=16, shape=(100,), dtype=np.dtype(np.float32))
    assert seen
    assert all(work == np.float32 for work in seen)
    assert scales.dtype == np.float32


def test_bytes() -> None:
    x = np.random.default_rng(0).standard_normal(1 << 16).astype(np.float32)
    for options, ratio in [
        ({}, 0.25),
        ({"bits": 4}, 0.125),
        ({"bits": 4, "block": 128}, 0.125 + 1 / 128),
    ]:
        packed = QuantizePacker(framed=False, **options).pack_parameters([x], None)
        body = sum(a.nbytes for a in packed)
        assert body / x.nbytes == pytest.approx(ratio, abs=1e-3)


def test_out_of_float32_range_float64_is_sent_exactly() -> None:
    big = np.array([1e300, -2e300, 0.0])
    tiny = np.array([1e-300, 3e-301])
    packer = QuantizePacker()
    packed = packer.pack_parameters([big, tiny], None)
    assert packed[0] is big
    assert packed[1] is tiny
    weights, _ = packer.unpack_parameters(packed)
    assert weights[0] is big
    assert weights[1] is tiny


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("block", [None, 4])
def test_non_finite_values_are_refused(bad: float, block: int | None) -> None:
    x = np.ones(10, dtype=np.float32)
    x[3] = bad
    with pytest.raises(
        PackingError, match=r"quantize: weights\[1\]: expected finite values, found NaN or infinity"
    ):
        QuantizePacker(block=block).pack_parameters([np.ones(2), x], None)


def test_zero_arrays_and_empty_arrays() -> None:
    arrays = [np.zeros((2, 3), np.float32), np.zeros(0, np.float32), np.zeros((0, 4), np.float64)]
    for bits in BITS:
        for block in (None, 4):
            packer = QuantizePacker(bits=bits, block=block)
            weights, _ = packer.unpack_parameters(packer.pack_parameters(arrays, None))
            for want, got in zip(arrays, weights, strict=True):
                assert got.dtype == want.dtype
                assert got.shape == want.shape
                np.testing.assert_array_equal(got, want)


def test_blocks_shrink_the_error_on_outliers() -> None:
    x = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    x[0] = 1000.0
    per_tensor = QuantizePacker(bits=4)
    per_block = QuantizePacker(bits=4, block=64)
    (a,), _ = per_tensor.unpack_parameters(per_tensor.pack_parameters([x], None))
    (b,), _ = per_block.unpack_parameters(per_block.pack_parameters([x], None))
    assert np.abs(b[64:] - x[64:]).max() < np.abs(a[64:] - x[64:]).max() / 10


# -- composition and wrapping ------------------------------------------------------------------


def scaffold_model() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(1)
    weights = [
        rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        rng.standard_normal(8).astype(np.float32),
        np.array(12, dtype=np.int64),
    ]
    return weights, [rng.standard_normal(w.shape).astype(np.float32) for w in weights[:2]]


@pytest.mark.parametrize("framed", [True, False])
def test_scaffold_with_exact_control_variates_by_composition(framed: bool) -> None:
    weights, cv = scaffold_model()
    packer = fedpack.get_packer(
        "scaffold+quantize", scaffold={"size_of_model_params": 3}, framed=framed
    )
    packed = packer.pack_parameters(weights, (cv, None))
    got, (got_cv, none) = packer.unpack_parameters(packed)
    assert none is None
    assert all(a is b for a, b in zip(got_cv, packed[3:5], strict=True))
    np.testing.assert_array_equal(got_cv[0], cv[0])
    assert rel_error(weights[0], got[0]) <= packer.lossy_tolerance  # type: ignore[operator]
    assert got[2] is weights[2]
    assert packer.lossy_tolerance == QuantizePacker().lossy_tolerance


@pytest.mark.parametrize("bits", BITS)
def test_scaffold_with_quantized_control_variates_by_wrapping(bits: int) -> None:
    weights, cv = scaffold_model()
    packer = fedpack.get_packer(
        "quantize", bits=bits, inner="scaffold", sections=["weights", "control_variates"]
    )
    packed = packer.pack_parameters(weights, cv)
    assert packed[3].dtype == (np.int8 if bits == 8 else np.uint8)  # a control variate's codes
    assert sum(a.nbytes for a in packed[:5]) < sum(a.nbytes for a in weights + cv) / 3
    frame = read_frame(packed)
    assert frame.options == {
        "bits": bits,
        "block": None,
        "inner": "scaffold",
        "inner_options": {},
        "sections": ["weights", "control_variates"],
    }
    name, got, got_cv = fedpack.unpack(packed)
    assert name == "quantize"
    for want, have in zip(weights[:2] + cv, got[:2] + got_cv, strict=True):
        assert rel_error(want, have) <= packer.lossy_tolerance  # type: ignore[operator]
    assert got[2] is packed[2]
    assert packer.lossy_extras


def test_wrapping_keeps_the_extras_exact_by_default() -> None:
    weights, cv = scaffold_model()
    packer = QuantizePacker(inner="scaffold")
    packed = packer.pack_parameters(weights, cv)
    _, got_cv = packer.unpack_parameters(packed)
    assert got_cv[0] is packed[3]
    assert not packer.lossy_extras


def test_wrapping_sparse_coo_compact_quantizes_the_values() -> None:
    from fedpack_sparse_coo import sparsify

    rng = np.random.default_rng(0)
    dense = {"w": rng.standard_normal((40, 50)).astype(np.float32)}
    dense["w"][np.abs(dense["w"]) < 1.5] = 0
    values, extra = sparsify(dense)
    packer = fedpack.get_packer(
        "quantize", inner="sparse_coo", inner_options={"encoding": "compact"}
    )
    packed = packer.pack_parameters(values, extra)
    plain = fedpack.get_packer("sparse_coo", encoding="compact").pack_parameters(values, extra)
    assert sum(a.nbytes for a in packed[:-1]) < sum(a.nbytes for a in plain[:-1]) * 0.8
    _name, got, (indices, _shapes, _names) = fedpack.unpack(packed)
    np.testing.assert_array_equal(indices[0], extra[0][0])
    assert rel_error(values[0], got[0]) <= packer.lossy_tolerance  # type: ignore[operator]


def test_conformance_of_wrapped_scaffold_with_quantized_variates() -> None:
    from fedpack_scaffold import ScaffoldPacker

    def options(weights: list[np.ndarray]) -> dict[str, Any]:
        return {
            "bits": 4,
            "block": 5,
            "rounding": "stochastic",
            "seed": 0,
            "inner": "scaffold",
            "inner_options": {"size_of_model_params": len(weights)},
            "sections": ["weights", "control_variates"],
        }

    results = run_checks("quantize", options=options, extras=ScaffoldPacker.example_extras)
    assert [(r.check, r.reason) for r in results if r.failed] == []
    bound = next(r for r in results if r.check == "lossy_bound")
    assert bound.passed
    assert "0.14" in bound.reason


class TestQuantizeConformance(PackerConformance):
    packer = "quantize"


class TestFourBitBlockConformance(PackerConformance):
    packer = "quantize"

    def make_options(self, weights: list[np.ndarray]) -> dict[str, Any]:
        return {"bits": 4, "block": 3}


class TestScaffoldQuantizeConformance(PackerConformance):
    packer = "scaffold+quantize"


def test_the_kit_uses_the_instance_tolerance() -> None:
    # 8-bit instances declare ~0.0044; a 4-bit result would exceed it, a class-wide 0.14 not
    class Lying(QuantizePacker):
        name = "quantize_lying"

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.lossy_tolerance = error_bound(8, "nearest") / 10  # type: ignore[misc]

    (result,) = run_checks(Lying, checks=["lossy_bound"])
    assert result.failed
    assert "exceeds the declared tolerance" in result.reason


# -- validation ------------------------------------------------------------------------------


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r"bits: expected one of \(8, 4\), found 2"):
        QuantizePacker(bits=2)
    with pytest.raises(ValueError, match="block: expected a positive int, found 0"):
        QuantizePacker(block=0)
    with pytest.raises(TypeError, match="block: expected a positive int or None, found float"):
        QuantizePacker(block=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rounding: expected one of"):
        QuantizePacker(rounding="up")
    with pytest.raises(TypeError, match="seed: expected an int or None"):
        QuantizePacker(seed="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"sections: without inner= only the weights"):
        QuantizePacker(sections=["weights", "control_variates"])
    with pytest.raises(TypeError, match="inner_options: given without inner="):
        QuantizePacker(inner_options={"a": 1})
    with pytest.raises(TypeError, match="set framed= on the quantize packer only"):
        QuantizePacker(inner="scaffold", inner_options={"framed": False})
    with pytest.raises(ValueError, match="sections: expected a non-empty list"):
        QuantizePacker(inner="scaffold", sections="weights")  # type: ignore[arg-type]


def test_pack_errors() -> None:
    weights, cv = scaffold_model()
    with pytest.raises(PackingError, match="additional_parameters: expected None"):
        QuantizePacker().pack_parameters(weights, cv)
    with pytest.raises(
        PackingError, match=r"sections \['nope'\] are not in the payload of scaffold"
    ):
        QuantizePacker(inner="scaffold", sections=["weights", "nope"]).pack_parameters(weights, cv)


def packed_one(bits: int = 8, block: int | None = None) -> list[np.ndarray]:
    x = np.linspace(-1, 1, 11, dtype=np.float32)
    return QuantizePacker(bits=bits, block=block).pack_parameters([x, np.arange(2)], None)


def reframe(packed: list[np.ndarray], arrays: list[np.ndarray]) -> list[np.ndarray]:
    return [*arrays, packed[-1]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: [p[0].astype(np.int16), *p[1:4]], "expected the 8-bit codes of a float32"),
        (
            lambda p: [p[0][:5], *p[1:4]],
            r"a int8 array of shape \(11,\), found int8 array of shape \(5,\)",
        ),
        (lambda p: [*p[:2], p[2].astype(np.float64), p[3]], "scales .*: expected a 1-D float32"),
        (lambda p: [*p[:2], np.array([np.nan], np.float32), p[3]], "expected finite non-negative"),
        (lambda p: [*p[:2], np.array([-1.0], np.float32), p[3]], "expected finite non-negative"),
        (lambda p: [*p[:2], np.zeros(2, np.float32), p[3]], "the layout needs 1 scales"),
        (lambda p: [*p[:3], p[3].astype(np.int32)], "layout .*: expected a 1-D int64 array"),
        (lambda p: [*p[:3], np.array([9, 1, 11, 0], np.int64)], "expected a code in 0..3"),
        (
            lambda p: [*p[:3], np.array([2, 1, -11, 0], np.int64)],
            "expected non-negative dimensions",
        ),
        (lambda p: [*p[:3], np.array([2, 70, 11, 0], np.int64)], "expected ndim in 0..64"),
        (lambda p: [*p[:3], np.array([2, 1, 11], np.int64)], "describes 1 arrays, expected 2"),
        (lambda p: [*p[:3], np.array([2, 1, 11, 0, 0], np.int64)], "expected 4 values for 2"),
        (
            lambda p: [*p[:3], np.array([2, 2, 1 << 20, 1 << 20, 0], np.int64)],
            "more than max_elements",
        ),
        (
            lambda p: [*p[:3], np.array([0, 0], np.int64)],
            "int64 array of shape .2.. with scale|needs 0 scales",
        ),
    ],
)
def test_bad_payloads_are_refused(mutate: Any, message: str) -> None:
    packed = packed_one()
    frame = read_frame(packed)
    bad = mutate(packed[:-1])
    tampered = Frame(
        frame.packer,
        (("weights", len(bad) - 2), ("qscales", 1), ("qlayout", 1)),
        frame.options,
        frame.meta,
    )
    with pytest.raises(PackingError, match=message):
        QuantizePacker().unpack_parameters([*bad, encode_frame(tampered)])


def test_four_bit_padding_nibble_must_be_zero() -> None:
    packed = packed_one(bits=4)
    codes = packed[0].copy()
    codes[-1] |= 0x30
    with pytest.raises(PackingError, match="padding nibble after element 11 to be zero"):
        QuantizePacker(bits=4).unpack_parameters([codes, *packed[1:]])


def test_frame_options_must_match() -> None:
    packed = packed_one(bits=8)
    with pytest.raises(PackingError, match="the frame was written with options"):
        QuantizePacker(bits=4).unpack_parameters(packed)
    with pytest.raises(PackingError, match="the frame was written with options"):
        QuantizePacker(block=4).unpack_parameters(packed)
    # rounding and seed are the sender's business
    weights, _ = QuantizePacker(rounding="stochastic").unpack_parameters(packed)
    assert weights[0].shape == (11,)


def test_unframed_needs_the_trailer() -> None:
    with pytest.raises(PackingError, match="expected the arrays followed by qscales and qlayout"):
        QuantizePacker(framed=False).unpack_parameters([np.zeros(3)])


def test_layout_encoding() -> None:
    entries = [Entry(None), Entry(np.dtype("float16"), (2, 3)), Entry(np.dtype("float64"), ())]
    np.testing.assert_array_equal(encode_layout(entries), [0, 1, 2, 2, 3, 3, 0])


# -- the decoding budget reaches the wrapped packer -------------------------------------------


def test_the_receivers_budget_reaches_the_inner_packer() -> None:
    budget = fedpack.DecodeBudget(max_elements=7, max_rank=3)
    packer = fedpack.get_packer("quantize", inner="sparse_coo", budget=budget)
    assert packer.max_elements == 7
    assert packer.inner is not None
    assert packer.inner.budget.max_elements == 7
    assert packer.inner.budget.max_rank == 3


def test_a_frame_cannot_loosen_the_inner_packers_limits() -> None:
    packer = fedpack.get_packer("quantize", inner="sparse_coo")
    coo = ([np.zeros((1, 1), np.int64)], [np.array([4])], ["t"])
    sent = packer.pack_parameters([np.ones(1, np.float32)], coo)
    name, _weights, _extra = fedpack.unpack(sent)
    assert name == "quantize"
    # the receiver's budget reaches the packer rebuilt from the frame, inner packer included
    with pytest.raises(PackingError, match="max_elements"):
        fedpack.unpack(sent, budget=fedpack.DecodeBudget(max_elements=3))
    frame = read_frame(sent)
    options = {**frame.options, "inner_options": {"max_elements": 2**62}}
    forged = [*sent[:-1], encode_frame(Frame(frame.packer, frame.sections, options))]
    with pytest.raises(PackingError, match="sparse_coo: expected frame options"):
        fedpack.unpack(forged)


# -- dequantize: the chunked kernel equals the plain formula, bit for bit ---------------------


def codes_and_scales(
    codes: np.ndarray[Any, Any], scales: np.ndarray[Any, Any], bits: int, block: int | None, n: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Each element's signed code and its block's scale, decoded the plain way."""
    raw = codes.reshape(-1)
    if bits == 4:
        pairs = np.stack([(raw & 15).astype(np.int16), (raw >> 4).astype(np.int16)], axis=1)
        signed = (pairs.reshape(-1) - 8)[:n]
    else:
        signed = raw.view(np.int8).astype(np.int16)
    per = np.zeros(n, dtype=np.int64) if block is None else np.arange(n) // block
    return signed, scales[per]


DEQ_SIZES = st.one_of(
    st.integers(0, 600),
    st.sampled_from([CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3, 3 * CHUNK - 7]),
)


@settings(max_examples=120, deadline=None)
@given(
    n=DEQ_SIZES,
    bits=st.sampled_from(BITS),
    block=st.sampled_from([None, 1, 2, 3, 7, 64, 128, 1000, CHUNK + 5]),
    dtype=st.sampled_from(["float16", "float32", "float64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_dequantize_is_the_plain_formula_bit_for_bit(
    n: int, bits: int, block: int | None, dtype: str, seed: int
) -> None:
    """Every code byte (the ones a sender never produces too), zero and tiny scales, chunk
    boundaries, odd lengths: each value is ``work(code) * work(scale)`` rounded once."""
    from fedpack_quantize import _kernels

    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    work = np.float64 if dt == np.float64 else np.float32
    codes = rng.integers(0, 256, _kernels.code_shape((n,), bits), dtype=np.uint8)
    if bits == 8:
        codes = codes.view(np.int8)
    elif n % 2:
        codes[-1] &= 15  # the padding nibble is checked by the packer, not the kernel
    count = _kernels.scale_count(n, block)
    scales = rng.choice(np.array([0.0, 1e-30, 3e-3, 0.5, 1.0, 7.25], np.float32), count)
    signed, per = codes_and_scales(codes, scales, bits, block, n)
    with np.errstate(under="ignore"):
        want = (signed.astype(work) * per.astype(work)).astype(dt)
    got = dequantize(codes, scales, bits=bits, block=block, shape=(n,), dtype=dt)
    assert got.dtype == dt
    assert got.shape == (n,)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("block", [None, 5])
def test_dequantize_every_four_bit_byte(block: int | None) -> None:
    """All 256 bytes, both nibbles: nibble ``k`` decodes to ``(k - 8) * scale``."""
    codes = np.arange(256, dtype=np.uint8)
    scales = np.full(_scale_count(512, block), 0.5, dtype=np.float32)
    y = dequantize(codes, scales, bits=4, block=block, shape=(512,), dtype=np.dtype(np.float32))
    b = np.arange(256)
    want = np.stack([(b & 15) - 8, (b >> 4) - 8], axis=1).reshape(-1) * 0.5
    np.testing.assert_array_equal(y, want.astype(np.float32))


def _scale_count(n: int, block: int | None) -> int:
    return 1 if block is None else -(-n // block)


@pytest.mark.parametrize("bits", BITS)
def test_dequantize_reads_read_only_payloads(bits: int) -> None:
    """Received codes and scales are read-only views of the message's bytes."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(CHUNK + 11).astype(np.float32)
    codes, scales = quantize(x, bits=bits, block=64)  # type: ignore[misc]
    ro_codes = np.frombuffer(codes.tobytes(), codes.dtype).reshape(codes.shape)
    ro_scales = np.frombuffer(scales.tobytes(), np.float32)
    assert not ro_codes.flags.writeable
    assert not ro_scales.flags.writeable
    a = dequantize(codes, scales, bits=bits, block=64, shape=x.shape, dtype=x.dtype)
    b = dequantize(ro_codes, ro_scales, bits=bits, block=64, shape=x.shape, dtype=x.dtype)
    assert a.tobytes() == b.tobytes()
    assert b.flags.writeable


@settings(max_examples=80, deadline=None)
@given(
    n=DEQ_SIZES,
    bits=st.sampled_from(BITS),
    block=st.sampled_from([1, 3, 64, 128, 511, 512, 1000, CHUNK + 5]),
    dtype=st.sampled_from(["float16", "float32", "float64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_block_quantize_is_the_plain_formula(
    n: int, bits: int, block: int, dtype: str, seed: int
) -> None:
    """Short blocks (flat reductions) and long ones (rows) give the plain per-block codes."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    work = np.float64 if dt == np.float64 else np.float32
    x = (rng.standard_normal(n) * 4).astype(dt)
    x[rng.random(n) < 0.05] = 0  # zero blocks too, when short
    levels = 127 if bits == 8 else 7
    got = quantize(x, bits=bits, block=block)
    assert got is not None
    codes, scales = got
    starts = np.arange(0, n, block)
    peaks = [float(np.abs(x[i : i + block].astype(work)).max()) for i in starts]
    want_scales = (np.array(peaks, dtype=work) / levels).astype(np.float32)
    np.testing.assert_array_equal(scales, want_scales)
    want = np.empty(n, dtype=np.int16)
    for k, i in enumerate(starts):
        s = want_scales[k]
        inv = work(1.0) / work(s) if s else work(0.0)
        t = x[i : i + block].astype(work) * inv
        # 8 bits: round half to even; 4 bits: trunc(t + 8.5), round half up
        want[i : i + block] = np.rint(t) if bits == 8 else np.trunc(t + work(8.5)) - 8
    if bits == 8:
        np.testing.assert_array_equal(codes, want.astype(np.int8))
    else:
        nib = np.concatenate([want + 8, np.zeros(n % 2, np.int16)]).astype(np.uint8)
        np.testing.assert_array_equal(codes, nib[0::2] | (nib[1::2] << 4))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("block", [4, 1000])
@pytest.mark.parametrize(
    "bad", [[np.inf, np.nan], [-np.nan, 1.0], [-np.inf, -np.inf], [np.nan, -np.inf]]
)
def test_non_finite_values_are_refused_in_every_block_path(
    dtype: str, block: int, bad: list[float]
) -> None:
    """The block peaks are maxima of the bits of ``|x|``: NaN and inf still end up refused."""
    x = np.ones(3000, dtype=dtype)
    x[2001:2003] = bad
    with pytest.raises(PackingError, match=r"expected finite values, found NaN or infinity"):
        quantize(x, bits=4, block=block)
