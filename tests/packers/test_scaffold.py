"""The scaffold packer: weights + control variates, size_of_model_params in both layouts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fedpack_scaffold import ScaffoldPacker
from fl4health_reference import ParameterPackerWithControlVariates

import fedpack
from fedpack import Frame, PackingError
from fedpack.frame import encode_frame

# state_dict weights (BatchNorm buffers included) vs trainable parameters only
WEIGHTS = [
    np.ones((4, 3), np.float32),  # conv.weight
    np.ones(4, np.float32),  # bn.weight
    np.zeros(4, np.float32),  # bn.bias
    np.zeros(4, np.float32),  # bn.running_mean
    np.ones(4, np.float32),  # bn.running_var
    np.array(12, np.int64),  # bn.num_batches_tracked
]
CONTROL_VARIATES = [np.full((4, 3), 0.1, np.float32), np.zeros(4, np.float32), np.zeros(4)]


def test_framed_needs_no_size() -> None:
    packer = fedpack.get_packer("scaffold")
    packed = packer.pack_parameters(WEIGHTS, CONTROL_VARIATES)
    assert len(packed) == len(WEIGHTS) + len(CONTROL_VARIATES) + 1
    weights, cvs = packer.unpack_parameters(packed)
    assert all(a is b for a, b in zip(weights, WEIGHTS, strict=True))
    assert all(a is b for a, b in zip(cvs, CONTROL_VARIATES, strict=True))


def test_framed_checks_size_when_given() -> None:
    packer = fedpack.get_packer("scaffold", size_of_model_params=len(WEIGHTS))
    weights, cvs = packer.unpack_parameters(packer.pack_parameters(WEIGHTS, CONTROL_VARIATES))
    assert len(weights) == 6
    assert len(cvs) == 3


def test_quirk_scaffold_wrong_size_of_model_params() -> None:
    # FL4Health would hand control variates back as weights (or the reverse), silently.
    packed = fedpack.get_packer("scaffold").pack_parameters(WEIGHTS, CONTROL_VARIATES)
    with pytest.raises(
        PackingError,
        match=r"size_of_model_params is 7 but the payload's frame \(3 control variates\) "
        r"holds 6 weight arrays",
    ):
        fedpack.get_packer("scaffold", size_of_model_params=7).unpack_parameters(packed)
    reference = ParameterPackerWithControlVariates(7).unpack_parameters(WEIGHTS + CONTROL_VARIATES)
    assert len(reference[0]) == 7  # the quirk: a control variate became a weight


def test_pack_checks_size_when_given() -> None:
    packer = fedpack.get_packer("scaffold", size_of_model_params=5)
    with pytest.raises(
        PackingError, match="size_of_model_params is 5 but the weights given to pack holds 6"
    ):
        packer.pack_parameters(WEIGHTS, CONTROL_VARIATES)


def test_unframed_needs_size_to_unpack() -> None:
    packer = fedpack.get_packer("scaffold", framed=False)
    packed = packer.pack_parameters(WEIGHTS, CONTROL_VARIATES)  # packing needs no size
    assert all(a is b for a, b in zip(packed, WEIGHTS + CONTROL_VARIATES, strict=True))
    with pytest.raises(PackingError, match=r"needs size_of_model_params.*found None"):
        packer.unpack_parameters(packed)


def test_unframed_size_larger_than_payload() -> None:
    packer = fedpack.get_packer("scaffold", size_of_model_params=10, framed=False)
    with pytest.raises(
        PackingError, match=r"expected at least size_of_model_params=10 arrays.*found 9"
    ):
        packer.unpack_parameters(WEIGHTS + CONTROL_VARIATES)


def test_unframed_size_equal_to_payload_means_no_control_variates() -> None:
    packer = fedpack.get_packer("scaffold", size_of_model_params=6, framed=False)
    weights, cvs = packer.unpack_parameters(list(WEIGHTS))
    assert len(weights) == 6
    assert cvs == []


def test_unframed_zero_weights() -> None:
    packer = fedpack.get_packer("scaffold", size_of_model_params=0, framed=False)
    weights, cvs = packer.unpack_parameters(list(CONTROL_VARIATES))
    assert weights == []
    assert len(cvs) == 3


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, TypeError, "expected a non-negative int or None, found bool"),
        (2.0, TypeError, "expected a non-negative int or None, found float"),
        ("3", TypeError, "expected a non-negative int or None, found str"),
        (-1, ValueError, "expected a non-negative int, found -1"),
    ],
)
def test_constructor_rejects_bad_size(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ScaffoldPacker(value)


def test_constructor_accepts_numpy_integers() -> None:
    packer = ScaffoldPacker(np.int64(3), framed=False)
    assert packer.size_of_model_params == 3
    assert type(packer.size_of_model_params) is int
    assert repr(packer) == "ScaffoldPacker(size_of_model_params=3, framed=False)"


def test_constructor_rejects_bad_framed() -> None:
    with pytest.raises(TypeError, match="framed: expected a bool"):
        ScaffoldPacker(framed=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.zeros(3), "cv", None, [np.zeros(1), [1.0]], (x for x in [])])
def test_pack_rejects_bad_control_variates(bad: Any) -> None:
    with pytest.raises(
        PackingError, match=r"scaffold: additional_parameters \(control variates\): expected"
    ):
        fedpack.get_packer("scaffold").pack_parameters(WEIGHTS, bad)


def test_unpack_size_comes_from_frame_not_options() -> None:
    packed = fedpack.get_packer("scaffold", size_of_model_params=6).pack_parameters(
        WEIGHTS, CONTROL_VARIATES
    )
    name, weights, cvs = fedpack.unpack(packed)
    assert name == "scaffold"
    assert len(weights) == 6
    assert len(cvs) == 3


def _framed_by_hand(counts: list[tuple[str, int]], arrays: list[Any], **options: Any) -> list[Any]:
    return [*arrays, encode_frame(Frame("scaffold", tuple(counts), options))]


def test_unpack_applies_size_from_frame_options() -> None:
    payload = _framed_by_hand(
        [("weights", 6), ("control_variates", 3)],
        WEIGHTS + CONTROL_VARIATES,
        size_of_model_params=5,
    )
    message = r"frame was written with options \{'size_of_model_params': 5\}, this packer has \{\}"
    with pytest.raises(PackingError, match=message):
        fedpack.unpack(payload)


@pytest.mark.parametrize(("bad", "message"), [(-1, "non-negative int, found -1"), (True, "bool")])
def test_unpack_rejects_bad_frame_options(bad: Any, message: str) -> None:
    payload = _framed_by_hand(
        [("weights", 6), ("control_variates", 3)],
        WEIGHTS + CONTROL_VARIATES,
        size_of_model_params=bad,
    )
    with pytest.raises(PackingError, match=f"do not fit packer 'scaffold'.*{message}"):
        fedpack.unpack(payload)
