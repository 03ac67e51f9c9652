"""Round trips shared by every built-in packer, in both layouts."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packer_cases import (
    LAYOUTS,
    PACKERS,
    extras,
    packer,
    same_arrays,
    same_extra,
    simple_extra,
    through_npy,
    weight_lists,
    zoo,
)

import fedpack
from fedpack import Frame
from fedpack.frame import encode_frame, is_frame, read_frame

ZOO = zoo()


def _check_round_trip(name: str, framed: bool, weights: list[Any], extra: Any) -> None:
    p = packer(name, framed=framed, weights=weights)
    packed = p.pack_parameters(weights, extra)
    # no copies: the payload holds the very weight objects, in order
    assert all(a is b for a, b in zip(packed[: len(weights)], weights, strict=True))
    assert bool(packed) and is_frame(packed[-1]) if framed else not any(map(is_frame, packed))
    got_weights, got_extra = p.unpack_parameters(packed)
    assert len(got_weights) == len(weights)
    assert all(a is b for a, b in zip(got_weights, weights, strict=True))
    assert same_extra(name, got_extra, extra)
    if name == "scaffold":
        assert all(a is b for a, b in zip(got_extra, extra, strict=True))
        cv_slice = packed[len(weights) : len(weights) + len(extra)]
        assert all(a is b for a, b in zip(cv_slice, extra, strict=True))
    # what Flower ships: every array through np.save / np.load(allow_pickle=False)
    shipped_weights, shipped_extra = p.unpack_parameters(through_npy(packed))
    assert same_arrays(shipped_weights, weights)
    assert same_extra(name, shipped_extra, extra)


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize("name", PACKERS)
@pytest.mark.parametrize(("case", "array"), ZOO, ids=[case for case, _ in ZOO])
def test_round_trip_every_dtype_and_layout(name: str, framed: bool, case: str, array: Any) -> None:
    weights = [array, np.zeros(2), array[...]]  # a view: another object, same memory
    extra = simple_extra(name, weights)
    if name == "scaffold":  # control variates are numbers: a string array is refused
        extra = [array, np.ones(1)] if array.dtype.kind != "U" else [np.ones(1)]
    _check_round_trip(name, framed, weights, extra)


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize("name", PACKERS)
def test_round_trip_no_weights(name: str, framed: bool) -> None:
    _check_round_trip(name, framed, [], simple_extra(name, []))


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize("name", PACKERS)
def test_round_trip_all_zoo_arrays_at_once(name: str, framed: bool) -> None:
    weights = [array for _, array in ZOO]
    numeric = [array for _, array in ZOO if array.dtype.kind != "U"]
    extra = numeric if name == "scaffold" else simple_extra(name, weights)
    _check_round_trip(name, framed, weights, extra)


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize("name", PACKERS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_round_trip_property(name: str, framed: bool, data: st.DataObject) -> None:
    weights = data.draw(weight_lists(), label="weights")
    extra = data.draw(extras(name, weights), label="extra")
    _check_round_trip(name, framed, weights, extra)


@pytest.mark.parametrize("name", PACKERS)
def test_unpack_dispatches_on_the_frame(name: str) -> None:
    weights = [np.arange(3.0), np.array(7, dtype=np.int64)]
    extra = simple_extra(name, weights)
    packed = packer(name).pack_parameters(weights, extra)
    got_name, got_weights, got_extra = fedpack.unpack(packed)
    assert got_name == name
    assert all(a is b for a, b in zip(got_weights, weights, strict=True))
    assert same_extra(name, got_extra, extra)
    # and after the wire
    got_name, got_weights, got_extra = fedpack.unpack(through_npy(packed))
    assert got_name == name
    assert same_arrays(got_weights, weights)
    assert same_extra(name, got_extra, extra)


@pytest.mark.parametrize("name", PACKERS)
def test_frame_records_the_sections(name: str) -> None:
    weights = [np.zeros(2), np.zeros(3)]
    packed = packer(name).pack_parameters(weights, simple_extra(name, weights))
    frame = read_frame(packed)
    assert frame.packer == name
    assert frame.sections[0] == ("weights", 2)
    assert frame.options == {}  # nothing out of band: the frame alone suffices


@pytest.mark.parametrize("name", PACKERS)
def test_unpack_rejects_a_list_without_a_frame(name: str) -> None:
    weights = [np.zeros(2), np.zeros(3)]
    unframed = packer(name, framed=False, weights=weights).pack_parameters(
        weights, simple_extra(name, weights)
    )
    with pytest.raises(fedpack.PackingError, match="expected a fedpack frame as the last array"):
        fedpack.unpack(unframed)
    with pytest.raises(fedpack.PackingError, match="found an empty list"):
        fedpack.unpack([])


def _other_sections(kind: str, frame: Frame, arrays: list[Any]) -> tuple[Any, list[Any]]:
    """A frame's sections changed as ``kind`` says, with the arrays they then count."""
    weights, (section, count) = frame.sections
    if kind == "extra section":
        return (weights, (section, count), ("extra", 1)), [*arrays, np.zeros(1)]
    if kind == "split section":
        return (weights, (section, count - 1), ("extra", 1)), arrays
    if kind == "renamed section":
        return (weights, ("other", count)), arrays
    return (("weights", len(arrays)),), arrays  # "weights only"


@pytest.mark.parametrize(
    "kind",
    ["extra section", "split section", "renamed section", "weights only"],
)
@pytest.mark.parametrize("name", PACKERS)
def test_unpack_rejects_frames_with_other_sections(name: str, kind: str) -> None:
    weights = [np.ones((2, 3), np.float32), np.zeros(4), np.array(12, np.int64)]
    packed = packer(name).pack_parameters(weights, simple_extra(name, weights))
    frame = read_frame(packed)
    assert frame.sections[0] == ("weights", 3)
    sections, arrays = _other_sections(kind, frame, packed[:-1])
    forged = [*arrays, encode_frame(Frame(name, sections, frame.options, frame.meta))]
    expected = [s for s, _ in frame.sections]
    found = [s for s, _ in sections]
    with pytest.raises(
        fedpack.PackingError,
        match=re.escape(f"{name}: expected the sections {expected}, found {found}"),
    ):
        packer(name).unpack_parameters(forged)


@pytest.mark.parametrize("name", [name for name in PACKERS if name != "scaffold"])
def test_unframed_unpack_rejects_empty_list(name: str) -> None:
    # scaffold's layout is sized by size_of_model_params instead (test_scaffold.py)
    with pytest.raises(fedpack.PackingError, match=f"{name}: expected the weights followed by one"):
        packer(name, framed=False).unpack_parameters([])


@pytest.mark.parametrize("name", PACKERS)
def test_unframed_packer_rejects_a_framed_payload(name: str) -> None:
    weights = [np.zeros(2)]
    packed = packer(name).pack_parameters(weights, simple_extra(name, weights))
    with pytest.raises(fedpack.PackingError, match="built with framed=False"):
        packer(name, framed=False, weights=weights).unpack_parameters(packed)


@pytest.mark.parametrize("name", PACKERS)
def test_registered_by_entry_point(name: str) -> None:
    info = [row for row in fedpack.list_packers() if row.name == name]
    assert [row.distribution for row in info] == ["fedpack-" + name.replace("_", "-")]
    cls = fedpack.get_packer_class(name)
    assert cls.name == name
    assert cls.__doc__
    assert isinstance(fedpack.get_packer(name), fedpack.ParameterPacker)


@pytest.mark.parametrize("name", PACKERS)
@pytest.mark.parametrize("bad", [[np.zeros(1), "x"], np.zeros((2, 2)), "weights", None])
def test_pack_rejects_bad_weights(name: str, bad: Any) -> None:
    with pytest.raises(fedpack.PackingError, match="model_weights: expected"):
        packer(name).pack_parameters(bad, simple_extra(name, [np.zeros(1)] * 2))


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize("name", PACKERS)
def test_object_arrays_are_rejected(name: str, framed: bool) -> None:
    weights = [np.zeros(2), np.array([1, "a"], dtype=object)]
    p = packer(name, framed=framed, weights=weights)
    with pytest.raises(fedpack.PackingError, match="holds Python objects"):
        p.pack_parameters(weights, simple_extra(name, weights))
    good = [np.zeros(2), np.zeros(1)]
    packed = packer(name, framed=framed, weights=good).pack_parameters(
        good, simple_extra(name, good)
    )
    packed[0] = np.array([None], dtype=object)
    with pytest.raises(fedpack.PackingError, match="holds Python objects"):
        p.unpack_parameters(packed)


def test_frame_options_must_match_the_unpacking_packer() -> None:
    """A frame written with other options than the receiver's is refused, not half-trusted."""
    import fedpack
    from fedpack.frame import Frame, encode_frame, read_frame

    packer = fedpack.get_packer("scaffold")
    packed = packer.pack_parameters([np.ones(2)], [np.zeros(2)])
    frame = read_frame(packed)
    forged = Frame(frame.packer, frame.sections, {"size_of_model_params": 1}, frame.meta)
    packed[-1] = encode_frame(forged)
    with pytest.raises(fedpack.PackingError, match=r"frame was written with options .*size_of"):
        packer.unpack_parameters(packed)
