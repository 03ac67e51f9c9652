"""The sparse_coo packer: both layouts, both encodings, validation, the FL4Health quirk."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack
from fedpack import PackingError
from fedpack.frame import Frame, encode_frame, read_frame
from fedpack.testing import run_checks

pytest.importorskip("fedpack_sparse_coo")

from fedpack_sparse_coo import SparseCooPacker, densify, sparsify

DTYPES = ["bool", "int8", "uint16", "int64", "float16", "float32", "float64", "complex64"]
LAYOUTS = [
    pytest.param({"framed": True}, id="framed"),
    pytest.param({"framed": False}, id="fl4health"),
    pytest.param({"encoding": "compact"}, id="compact"),
]


def model(dtype: str, density: float = 0.3, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    shapes = {"conv": (4, 3, 3, 3), "bias": (7,), "fc": (5, 6), "scalar": (), "empty": (0, 3)}
    out = {}
    for name, shape in shapes.items():
        keep = rng.random(shape) < density
        x = (rng.integers(1, 9, size=shape) * keep).astype(dtype)
        out[name] = x
    out["scalar"] = np.array(3, dtype=dtype)
    return out


def same(a: Any, b: Any) -> bool:
    return bool(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes())


def assert_same_extra(got: Any, expected: Any) -> None:
    (gi, gs, gn), (ei, es, en) = got, expected
    assert gn == en
    assert all(same(a, b) for a, b in zip(gi, ei, strict=True))
    assert all(same(a, b) for a, b in zip(gs, es, strict=True))


@pytest.mark.parametrize("options", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
def test_round_trip(options: dict[str, Any], dtype: str, density: float) -> None:
    dense = model(dtype, density)
    values, extra = sparsify(dense)
    packer = fedpack.get_packer("sparse_coo", **options)
    packed = packer.pack_parameters(values, extra)
    got_values, got_extra = packer.unpack_parameters(packed)
    assert all(same(a, b) for a, b in zip(got_values, values, strict=True))
    assert_same_extra(got_extra, extra)
    rebuilt = densify(got_values, got_extra)
    assert all(same(rebuilt[name], x) for name, x in dense.items())
    names, arrays = packer.unpack_dense(packed)
    assert names == list(dense)
    assert all(same(a, dense[n]) for n, a in zip(names, arrays, strict=True))


def test_fl4health_layout_is_exactly_the_arrays() -> None:
    values, extra = sparsify(model("float32"))
    packed = SparseCooPacker(framed=False).pack_parameters(values, extra)
    k = len(values)
    assert len(packed) == 3 * k + 1
    assert all(a is b for a, b in zip(packed[:k], values, strict=True))
    assert all(a is b for a, b in zip(packed[k : 2 * k], extra[0], strict=True))
    assert all(a is b for a, b in zip(packed[2 * k : 3 * k], extra[1], strict=True))
    assert packed[-1].dtype.kind == "U"
    assert packed[-1].tolist() == extra[2]
    assert all(
        i.dtype == np.int64 and i.shape[1] == s.size for i, s in zip(*extra[:2], strict=True)
    )


def test_empty_payload_names_are_float64_like_fl4health() -> None:
    packed = SparseCooPacker(framed=False).pack_parameters([], ([], [], []))
    assert len(packed) == 1
    assert packed[0].dtype == np.float64
    assert packed[0].shape == (0,)
    assert SparseCooPacker(framed=False).unpack_parameters(packed) == ([], ([], [], []))


def test_quirk_sparse_resplit() -> None:
    """1 values + 2 indices + 3 shapes (+ names): FL4Health re-splits 2/2/2; the frame refuses."""
    v = [np.array([1.0])]
    i = [np.array([[0]]), np.array([[1]])]
    s = [np.array([2]), np.array([3]), np.array([4])]
    names = np.array(["a"])
    frame = Frame(
        "sparse_coo",
        (("weights", 1), ("indices", 2), ("shapes", 3), ("names", 1)),
        {"encoding": "coo"},
    )
    payload = [*v, *i, *s, names, encode_frame(frame)]
    with pytest.raises(PackingError, match=r"1 values, 2 indices, 3 shapes"):
        SparseCooPacker().unpack_parameters(payload)
    # the same arrays without a frame: FL4Health splits them 2/2/2; fedpack's checks still
    # refuse (one name for two tensors)
    with pytest.raises(PackingError, match="sparse_coo"):
        SparseCooPacker(framed=False).unpack_parameters(payload[:-1])


def test_unframed_needs_3k_plus_1() -> None:
    with pytest.raises(PackingError, match=r"expected 3k\+1 arrays .* found 3"):
        SparseCooPacker(framed=False).unpack_parameters([np.zeros(1)] * 3)


def test_constructor_options() -> None:
    with pytest.raises(ValueError, match="needs framed=True"):
        SparseCooPacker(encoding="compact", framed=False)
    with pytest.raises(ValueError, match="encoding: expected one of"):
        SparseCooPacker(encoding="zip")
    with pytest.raises(ValueError, match="max_elements"):
        SparseCooPacker(max_elements=-1)
    assert repr(SparseCooPacker(encoding="compact")) == (
        "SparseCooPacker(encoding='compact', framed=True)"
    )


def test_compact_frame_records_encodings_and_unpack_dispatches() -> None:
    dense = {"d": np.arange(1, 9, dtype=np.float32), "s": np.tril(np.ones((40, 40), np.float32))}
    dense["f"] = np.zeros(100_000, dtype=np.float32)
    dense["f"][[3, 70_000]] = 1.0
    values, extra = sparsify(dense)
    packed = SparseCooPacker(encoding="compact").pack_parameters(values, extra)
    frame = read_frame(packed)
    assert frame.options == {"encoding": "compact"}
    assert frame.meta == {"encodings": ["dense", "bitmask", "flat"]}
    name, got_values, got_extra = fedpack.unpack(packed)
    assert name == "sparse_coo"
    assert all(same(a, b) for a, b in zip(got_values, values, strict=True))
    assert_same_extra(got_extra, extra)
    # a coo packer reads a compact payload too
    assert SparseCooPacker().unpack_dense(packed)[0] == ["d", "s", "f"]
    assert SparseCooPacker().unpack_parameters(packed)[1][2] == ["d", "s", "f"]


@pytest.mark.parametrize("options", [{}, {"encoding": "zip"}, {"encoding": "coo", "x": 1}])
def test_frame_options_checked(options: dict[str, Any]) -> None:
    values, extra = good()
    packed = SparseCooPacker().pack_parameters(values, extra)
    frame = read_frame(packed)
    bad = [*packed[:-1], encode_frame(Frame(frame.packer, frame.sections, options, frame.meta))]
    for unpack in (SparseCooPacker().unpack_parameters, SparseCooPacker().unpack_dense):
        with pytest.raises(PackingError, match="expected frame options"):
            unpack(bad)


def test_compact_frame_fits_a_gpt2_sized_model() -> None:
    names = [f"transformer.h.{i // 12}.layer{i % 12}.weight" for i in range(148)]
    values = [np.ones(1, np.float32)] * 148
    extra = ([np.zeros((1, 1), np.int64)] * 148, [np.array([2**20])] * 148, names)
    packed = SparseCooPacker(encoding="compact").pack_parameters(values, extra)
    assert packed[-1].size < 16_000  # the limit is 1 MiB


def test_compact_sorts_unsorted_rows() -> None:
    values = [np.array([2.0, 1.0])]
    extra = ([np.array([[5], [1]])], [np.array([8])], ["x"])
    packer = SparseCooPacker(encoding="compact")
    got, (indices, _, _) = packer.unpack_parameters(packer.pack_parameters(values, extra))
    assert got[0].tolist() == [1.0, 2.0]
    assert indices[0].tolist() == [[1], [5]]
    dup = ([np.array([[5], [5]])], [np.array([8])], ["x"])
    with pytest.raises(PackingError, match=r"'x'.*flat position 5 twice"):
        packer.pack_parameters(values, dup)


def test_unpack_dense_onto_base() -> None:
    base = {"w": np.full((2, 3), 7.0), "b": np.full(2, -1.0)}
    values = [np.array([0.0, 5.0])]
    extra = ([np.array([[0, 0], [1, 2]])], [np.array([2, 3])], ["w"])
    for options in ({}, {"encoding": "compact"}, {"framed": False}):
        packer = SparseCooPacker(**options)  # type: ignore[arg-type]
        names, arrays = packer.unpack_dense(packer.pack_parameters(values, extra), base=base)
        assert names == ["w"]
        assert arrays[0].tolist() == [[0.0, 7.0, 7.0], [7.0, 7.0, 5.0]]
    assert base["w"].tolist() == [[7.0] * 3] * 2  # never modified
    with pytest.raises(PackingError, match=r"'w'.*base has no array"):
        SparseCooPacker().unpack_dense(SparseCooPacker().pack_parameters(values, extra), base={})


# -- validation, both directions -------------------------------------------------------------


def good() -> tuple[list[Any], tuple[list[Any], list[Any], list[str]]]:
    values = [np.array([1.0, 2.0]), np.array([3], np.int8)]
    indices = [np.array([[0, 1], [1, 0]]), np.array([[2]])]
    shapes = [np.array([2, 2]), np.array([4])]
    return values, (indices, shapes, ["a", "b"])


BAD: list[tuple[str, Any, str]] = [
    ("values 2-D", lambda v, i, s, n: (v.__setitem__(0, np.ones((2, 1))), i), r"'a' \(#0.*1-D"),
    ("values str", lambda v, i, s, n: v.__setitem__(1, np.array(["x"])), r"'b' \(#1.*1-D bool"),
    ("indices 1-D", lambda v, i, s, n: i.__setitem__(0, np.array([0, 1])), r"'a'.*shape \(2, 2\)"),
    ("indices float", lambda v, i, s, n: i.__setitem__(1, np.array([[2.0]])), r"'b'.*integer"),
    ("nnz mismatch", lambda v, i, s, n: i.__setitem__(0, np.array([[0, 1]])), r"'a'.*one row"),
    ("ndim mismatch", lambda v, i, s, n: s.__setitem__(1, np.array([4, 1])), r"'b'.*\(1, 2\)"),
    ("out of bounds", lambda v, i, s, n: i.__setitem__(0, np.array([[0, 1], [2, 0]])), r"'a'.*< 2"),
    ("negative index", lambda v, i, s, n: i.__setitem__(1, np.array([[-1]])), r"'b'.*found -1"),
    ("negative shape", lambda v, i, s, n: s.__setitem__(1, np.array([-4])), r"'b'.*non-negative"),
    ("shape 2-D", lambda v, i, s, n: s.__setitem__(1, np.array([[4]])), r"'b'.*1-D integer"),
    ("shape float", lambda v, i, s, n: s.__setitem__(1, np.array([4.0])), r"'b'.*1-D integer"),
    ("huge shape", lambda v, i, s, n: s.__setitem__(1, np.array([10**12])), r"'b'.*refusing"),
    ("one index short", lambda v, i, s, n: i.pop(), r"2 values, 1 indices, 2 shapes, 2 names"),
    ("extra shape", lambda v, i, s, n: s.append(np.array([1])), r"3 shapes"),
]


@pytest.mark.parametrize(("label", "mutate", "match"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("options", LAYOUTS)
def test_bad_tensors_are_refused_both_ways(
    label: str, mutate: Any, match: str, options: dict[str, Any]
) -> None:
    values, (indices, shapes, names) = good()
    mutate(values, indices, shapes, names)
    packer = SparseCooPacker(**options)
    with pytest.raises(PackingError, match=match):
        packer.pack_parameters(values, (indices, shapes, names))
    if options.get("encoding") == "compact" or (label in ("one index short", "extra shape")):
        return
    # a received payload built without checks (FL4Health's layout + a frame)
    payload = [*values, *indices, *shapes, np.array(names)]
    if options.get("framed", True):
        counts = (("weights", 2), ("indices", 2), ("shapes", 2), ("names", 1))
        payload.append(encode_frame(Frame("sparse_coo", counts, {"encoding": "coo"})))
    with pytest.raises(PackingError, match=match):
        packer.unpack_parameters(payload)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (None, r"expected \(indices, shapes, names\)"),
        (([], []), r"expected \(indices, shapes, names\)"),
        (([np.zeros((1, 1))], [np.array([1])], "a"), "names: expected a list of str"),
        (([np.zeros((1, 1), int)], [np.array([1])], [""]), "non-empty"),
        (([np.zeros((2, 1), int)] * 2, [np.array([2])] * 2, ["a", "a"]), "unique"),
        (([np.zeros((1, 1), int)], [np.array([1])], ["a\x00"]), "NUL"),
        (([[0]], [np.array([1])], ["a"]), "indices: expected a numpy array"),
    ],
)
def test_bad_extra(extra: Any, match: str) -> None:
    with pytest.raises(PackingError, match=match):
        SparseCooPacker().pack_parameters([np.ones(1)], extra)


def test_received_names_checked() -> None:
    values, (indices, shapes, _) = good()
    payload = [*values, *indices, *shapes, np.array(["a", "a"])]
    with pytest.raises(PackingError, match="unique"):
        SparseCooPacker(framed=False).unpack_parameters(payload)
    payload[-1] = np.array(["a"])
    with pytest.raises(PackingError, match="2 values, 2 indices, 2 shapes, 1 names"):
        SparseCooPacker(framed=False).unpack_parameters(payload)


def test_fl4health_0d_shape_float64_accepted() -> None:
    """FL4Health's np.array(list(x.shape)) is float64 (0,) for a 0-d tensor."""
    payload = [np.array([2.5]), np.zeros((1, 0), np.int64), np.array([]), np.array(["s"])]
    _, (_, shapes, _) = SparseCooPacker(framed=False).unpack_parameters(payload)
    assert densify(payload[:1], (payload[1:2], shapes, ["s"]))["s"].tolist() == 2.5


# -- compact payloads: bounds and fuzz ------------------------------------------------------------


def compact_payload() -> list[Any]:
    dense = {"d": np.arange(1, 9, dtype=np.float32), "s": np.tril(np.ones((40, 40), np.float32))}
    dense["f"] = np.zeros(1000, dtype=np.int16)
    dense["f"][[3, 700]] = 4
    values, extra = sparsify(dense)
    return SparseCooPacker(encoding="compact").pack_parameters(values, extra)


def with_meta(packed: list[Any], **changes: Any) -> list[Any]:
    frame = read_frame(packed)
    meta = {**frame.meta, **changes}
    return [*packed[:-1], encode_frame(Frame(frame.packer, frame.sections, frame.options, meta))]


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (
            lambda p: with_meta(p, encodings=["dense", "dense", "flat"]),
            "expected 1 positions arrays .* found 2",
        ),
        (lambda p: with_meta(p, encodings=["dense", "bitmask"]), "frame meta"),
        (lambda p: with_meta(p, encodings="garbage"), "frame meta"),
        (lambda p: with_meta(p, encodings=["dense", "zip", "flat"]), "frame meta"),
        (lambda p: with_meta(p, extra=1), "frame meta"),
        (lambda p: with_meta(p, encodings=["dense", "flat", "bitmask"]), r"'s' \(#1, flat\)"),
        (lambda p: _replace(p, 0, np.arange(1, 8, dtype=np.float32)), r"'d'.*8 elements"),
        (lambda p: _replace(p, 3, np.full(200, 255, np.uint8)), r"'s'.*bitmask"),
        (lambda p: _replace(p, 4, np.array([700, 3], np.uint16)), r"'f'.*increasing"),
        (lambda p: _replace(p, 4, np.array([3, 1000], np.uint16)), r"'f'.*< 1000"),
        (lambda p: _replace(p, 4, np.array([3, 7], np.int16)), r"'f'.*unsigned"),
        (lambda p: _replace(p, 7, np.array([10**12])), r"'f'.*refusing"),
        (lambda p: _replace(p, 2, np.array([1.0], np.float32)), r"'f'.*one per value"),
    ],
)
def test_malformed_compact_payloads(tamper: Any, match: str) -> None:
    packed = compact_payload()
    assert read_frame(packed).meta == {"encodings": ["dense", "bitmask", "flat"]}
    bad = tamper(packed)
    packer = SparseCooPacker(encoding="compact")
    with pytest.raises(PackingError, match=match):
        packer.unpack_parameters(bad)
    with pytest.raises(PackingError, match=match):
        packer.unpack_dense(bad)


def _replace(packed: list[Any], index: int, array: Any) -> list[Any]:
    out = list(packed)
    out[index] = array
    return out


_GARBAGE = st.one_of(
    hnp.arrays(
        st.sampled_from(["uint8", "uint16", "int64", "float32", "bool", "<U2"]),
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=12),
    ),
    st.just(np.array([10**15])),
)


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 7), garbage=_GARBAGE, meta=st.booleans(), data=st.data())
def test_fuzz_compact_payloads_raise_only_packing_error(
    index: int, garbage: Any, meta: bool, data: st.DataObject
) -> None:
    packed = compact_payload()
    bad = _replace(packed, index, garbage)
    if meta:
        encodings = data.draw(st.lists(st.sampled_from(["dense", "flat", "bitmask"]), max_size=4))
        bad = with_meta(bad, encodings=encodings)
    packer = SparseCooPacker(encoding="compact")
    for unpack in (packer.unpack_parameters, packer.unpack_dense):
        with contextlib.suppress(PackingError):
            unpack(bad)


# -- hypothesis round trips ------------------------------------------------------------------


@st.composite
def sparse_models(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 4))
    out = {}
    for i in range(count):
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
        x = draw(hnp.arrays(dtype, shape, elements=st.integers(0, 1 if dtype == "bool" else 3)))
        out[f"t{i}"] = x
    return out


@settings(max_examples=60, deadline=None)
@given(
    dense=sparse_models(), options=st.sampled_from([{}, {"framed": False}, {"encoding": "compact"}])
)
def test_round_trip_property(dense: dict[str, Any], options: dict[str, Any]) -> None:
    values, extra = sparsify(dense)
    packer = SparseCooPacker(**options)
    packed = packer.pack_parameters(values, extra)
    got_values, got_extra = packer.unpack_parameters(packed)
    assert all(same(a, b) for a, b in zip(got_values, values, strict=True))
    assert_same_extra(got_extra, extra)
    names, arrays = packer.unpack_dense(packed)
    assert all(same(a, dense[n]) for n, a in zip(names, arrays, strict=True))


# -- the conformance kit -----------------------------------------------------------------------


def test_conformance_checks_pass() -> None:
    results = run_checks("sparse_coo")
    assert [r.check for r in results if not r.passed] == [], results


def test_conformance_checks_pass_compact() -> None:
    # the "frame" check also builds framed=False, which compact refuses (ValueError); the frame
    # and fedpack.unpack are covered by test_compact_frame_records_encodings_and_unpack_dispatches
    framed_only = ["name", "round_trip[framed]", "malformed[framed]", "bad_input"]
    results = run_checks(
        SparseCooPacker, options=lambda w: {"encoding": "compact"}, checks=framed_only
    )
    assert all(r.passed for r in results), results
