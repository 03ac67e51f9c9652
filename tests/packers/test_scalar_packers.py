"""The scalar packers: their classes, shared behaviour and the FL4Health quirks they close.

Every test runs for each of them (``SCALAR_PACKERS``: clipping_bit and adaptive_constraint).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fedpack_adaptive_constraint import AdaptiveConstraintPacker
from fedpack_clipping_bit import ClippingBitPacker
from fl4health_reference import reference_for
from hypothesis import given, settings
from hypothesis import strategies as st
from packer_cases import LAYOUTS, SCALAR_PACKERS, one_extra_payload

import fedpack
from fedpack import PackingError
from fedpack.frame import read_frame

WEIGHTS = [np.zeros((2, 2)), np.ones(3, np.float32)]
NO_FRAME = "expected a fedpack frame as the last array"
CLASSES: dict[str, type[fedpack.ScalarPacker]] = {
    "clipping_bit": ClippingBitPacker,
    "adaptive_constraint": AdaptiveConstraintPacker,
}

pytestmark = pytest.mark.parametrize("name", SCALAR_PACKERS)


def test_class(name: str) -> None:
    cls = CLASSES[name]
    assert fedpack.get_packer_class(name) is cls
    assert issubclass(cls, fedpack.ScalarPacker)
    # the scalar's section is named after the packer (no separate ``section`` to keep in step)
    assert not hasattr(cls, "section")
    frame = read_frame(cls().pack_parameters([np.ones(2)], 1.0))
    assert frame.sections == (("weights", 1), (name, 1))
    assert repr(cls(framed=False)) == f"{cls.__name__}(framed=False)"


def test_quirk_never_packed_list_ending_in_0d_buffer(name: str) -> None:
    # a state_dict whose last entry is BatchNorm's 0-d int64 num_batches_tracked
    never_packed = [np.ones((4, 3), np.float32), np.zeros(4), np.array(12, np.int64)]
    weights, value = reference_for(name).unpack_parameters(never_packed)
    assert (len(weights), value) == (2, 12)  # FL4Health: a weight silently becomes the scalar
    with pytest.raises(PackingError, match=NO_FRAME + r".*int64 array of shape \(\) at index 2"):
        fedpack.get_packer(name).unpack_parameters(never_packed)


#: The last weight FL4Health's packer is shown to take as the scalar. clipping_bit reads it with
#: ``.item()``, so a single-output layer's bias (shape (1,)) silently becomes the scalar.
#: adaptive_constraint reads it with ``float()``, which numpy refuses for a shape (1,) array since
#: 2.4 (a deprecation warning since 1.25), so there the quirk is shown with a 0-d bias-like weight.
REFERENCE_LAST = {
    "clipping_bit": np.array([0.25], np.float32),
    "adaptive_constraint": np.array(0.25, np.float32),
}


def test_quirk_never_packed_list_ending_in_size1_bias(name: str) -> None:
    # a single-output layer: the last bias has shape (1,)
    never_packed = [np.ones((1, 8), np.float32), np.array([0.25], np.float32)]
    reference_payload = [never_packed[0], REFERENCE_LAST[name]]
    weights, value = reference_for(name).unpack_parameters(reference_payload)
    assert (len(weights), value) == (1, 0.25)  # FL4Health: a weight silently becomes the scalar
    with pytest.raises(PackingError, match=NO_FRAME + r".*float32 array of shape \(1,\)"):
        fedpack.get_packer(name).unpack_parameters(never_packed)


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize(
    "value", [0.0, 1.0, -2.5, 1, 0, True, False, np.float32(0.25), np.int8(3), np.array(1.5)]
)
def test_result_is_a_python_float(name: str, framed: bool, value: Any) -> None:
    packer = fedpack.get_packer(name, framed=framed)
    weights, got = packer.unpack_parameters(packer.pack_parameters(WEIGHTS, value))
    assert type(got) is float
    assert got == float(value)
    assert all(a is b for a, b in zip(weights, WEIGHTS, strict=True))


@settings(max_examples=20, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53))
def test_any_finite_number_round_trips(name: str, value: float) -> None:
    for framed in (True, False):
        packer = fedpack.get_packer(name, framed=framed)
        assert packer.unpack_parameters(packer.pack_parameters([], value)) == ([], float(value))


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(True, np.bool_), (1, np.array(1).dtype), (0.5, np.float64), (np.float32(0.5), np.float32)],
)
def test_unframed_keeps_fl4health_dtype(name: str, value: Any, dtype: Any) -> None:
    packed = fedpack.get_packer(name, framed=False).pack_parameters(WEIGHTS, value)
    assert len(packed) == 3
    assert packed[-1].shape == ()
    assert packed[-1].dtype == np.dtype(dtype) == np.array(value).dtype


@pytest.mark.parametrize("framed", LAYOUTS)
def test_first_round_shape_1_bound_is_accepted(name: str, framed: bool) -> None:
    bound = np.array([0.75])  # FL4Health's server sends the first round's bound as (1,) float64
    payload = one_extra_payload(name, WEIGHTS, bound, framed=framed)
    weights, got = fedpack.get_packer(name, framed=framed).unpack_parameters(payload)
    assert got == 0.75
    assert type(got) is float
    assert len(weights) == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "expected a finite number, found nan"),
        (float("inf"), "expected a finite number, found inf"),
        (-np.inf, "expected a finite number, found -inf"),
        (np.array([1.0, 2.0]), r"expected a scalar .*found float64 array of shape \(2,\)"),
        (np.array([1.0]), r"expected a scalar .*found float64 array of shape \(1,\)"),
        ([1.0], "expected a real number, found list"),
        (1j, "expected a real number, found complex"),
        (np.complex64(1), "expected a real number, found numpy.complex64"),
        ("1.0", "expected a real number, found str"),
        (None, "expected a real number, found NoneType"),
    ],
)
@pytest.mark.parametrize("framed", LAYOUTS)
def test_pack_rejects(name: str, framed: bool, value: Any, message: str) -> None:
    with pytest.raises(PackingError, match=f"{name}: additional_parameters: {message}"):
        fedpack.get_packer(name, framed=framed).pack_parameters(WEIGHTS, value)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([1.0, 2.0]), r"expected a 0-d or shape \(1,\) array, found float64 .*\(2,\)"),
        (np.zeros((1, 1)), r"expected a 0-d or shape \(1,\) array"),
        (np.array("1.0"), "expected a boolean, integer or floating dtype, found <U3"),
        (np.array(1j), "expected a boolean, integer or floating dtype, found complex128"),
        (np.array(np.nan), "expected a finite number, found nan"),
        (np.array([np.inf], np.float32), "expected a finite number, found inf"),
    ],
)
@pytest.mark.parametrize("framed", LAYOUTS)
def test_unpack_rejects(name: str, framed: bool, array: Any, message: str) -> None:
    payload = one_extra_payload(name, WEIGHTS, array, framed=framed)
    with pytest.raises(PackingError, match=rf"{name} \(array 2, {name}\[0\]\): {message}"):
        fedpack.get_packer(name, framed=framed).unpack_parameters(payload)
