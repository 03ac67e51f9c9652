"""framed=False is FL4Health 0.4.2's layout, array for array, in both directions."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fl4health_reference import FL4HEALTH_MISSING, real_fl4health_packers, reference_for
from hypothesis import given, settings
from hypothesis import strategies as st
from packer_cases import (
    PACKERS,
    SCALAR_PACKERS,
    assert_same_payload,
    extras,
    packer,
    weight_lists,
    zoo,
)

ZOO_WEIGHTS = [array for _, array in zoo()]

# (packer, extra) pairs covering the FL4Health dtypes fedpack keeps in framed=False
CASES: list[tuple[str, Any]] = [
    ("scaffold", [np.ones((3, 2), np.float32), np.zeros(4)]),
    ("scaffold", []),
    ("scaffold", ZOO_WEIGHTS[:10]),
    *[(name, value) for name in SCALAR_PACKERS for value in (0.5, 1, 0, True, np.float32(2.5))],
    ("layer_names", None),  # filled in with one name per weight
]


def _extra(name: str, extra: Any, weights: list[Any]) -> Any:
    if name == "layer_names":
        return [f"layer.{i}" for i in range(len(weights))]
    return extra


def _reference(name: str, weights: list[Any]) -> Any:
    return reference_for(name, size_of_model_params=len(weights))


@pytest.mark.parametrize("weights", [[], ZOO_WEIGHTS[:4], ZOO_WEIGHTS], ids=["none", "few", "zoo"])
@pytest.mark.parametrize(("name", "extra"), CASES)
def test_pack_matches_fl4health(name: str, extra: Any, weights: list[Any]) -> None:
    extra = _extra(name, extra, weights)
    ours = packer(name, framed=False, weights=weights).pack_parameters(weights, extra)
    theirs = _reference(name, weights).pack_parameters(weights, extra)
    assert_same_payload(ours, theirs)
    # neither copies: the same weight objects lead both payloads
    n = len(weights)
    assert all(a is b is w for a, b, w in zip(ours[:n], theirs[:n], weights, strict=True))
    # the framed layout is the same arrays plus one frame
    framed = packer(name, weights=weights).pack_parameters(weights, extra)
    assert_same_payload(framed[:-1], theirs)


@pytest.mark.parametrize("weights", [[], ZOO_WEIGHTS[:4], ZOO_WEIGHTS], ids=["none", "few", "zoo"])
@pytest.mark.parametrize(("name", "extra"), CASES)
def test_unpack_reads_fl4health_payloads(name: str, extra: Any, weights: list[Any]) -> None:
    extra = _extra(name, extra, weights)
    reference = _reference(name, weights)
    payload = reference.pack_parameters(weights, extra)
    our_weights, our_extra = packer(name, framed=False, weights=weights).unpack_parameters(payload)
    their_weights, their_extra = reference.unpack_parameters(payload)
    assert all(a is b for a, b in zip(our_weights, their_weights, strict=True))
    if name == "scaffold":
        assert all(a is b for a, b in zip(our_extra, their_extra, strict=True))
    elif name in SCALAR_PACKERS:
        assert type(our_extra) is float
        assert our_extra == float(their_extra)
    else:
        assert our_extra == their_extra


@pytest.mark.parametrize("name", SCALAR_PACKERS)
def test_unpack_reads_fl4health_first_round_bound(name: str) -> None:
    """FL4Health's server sends the first round's bound as a (1,) float64 array."""
    weights = [np.zeros((2, 2)), np.ones(2)]
    payload = [*weights, np.array([0.3])]
    ours = packer(name, framed=False).unpack_parameters(payload)
    theirs = reference_for("clipping_bit").unpack_parameters(payload)
    assert ours[1] == theirs[1] == 0.3
    assert all(a is b for a, b in zip(ours[0], weights, strict=True))


def test_unpack_reads_fl4health_empty_names() -> None:
    payload = reference_for("layer_names").pack_parameters([], [])
    assert payload[0].dtype == np.float64
    assert payload[0].shape == (0,)
    assert packer("layer_names", framed=False).unpack_parameters(payload) == ([], [])


@pytest.mark.parametrize("name", PACKERS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_pack_matches_fl4health_property(name: str, data: st.DataObject) -> None:
    weights = data.draw(weight_lists(), label="weights")
    extra = data.draw(extras(name, weights), label="extra")
    ours = packer(name, framed=False, weights=weights).pack_parameters(weights, extra)
    assert_same_payload(ours, _reference(name, weights).pack_parameters(weights, extra))


_REAL_CLASSES = {
    "clipping_bit": "ParameterPackerWithClippingBit",
    "adaptive_constraint": "ParameterPackerAdaptiveConstraint",
    "layer_names": "ParameterPackerWithLayerNames",
}


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_pack_matches_real_fl4health(name: str, extra: Any) -> None:
    module = real_fl4health_packers()
    weights = ZOO_WEIGHTS[:6]
    extra = _extra(name, extra, weights)
    if name == "scaffold":
        real = module.ParameterPackerWithControlVariates(len(weights))
    else:
        real = getattr(module, _REAL_CLASSES[name])()
    theirs = real.pack_parameters(weights, extra)
    ours = packer(name, framed=False, weights=weights).pack_parameters(weights, extra)
    assert_same_payload(ours, theirs)
    assert_same_payload(ours, _reference(name, weights).pack_parameters(weights, extra))
    our_weights, our_extra = packer(name, framed=False, weights=weights).unpack_parameters(theirs)
    their_weights, their_extra = real.unpack_parameters(theirs)
    assert all(a is b for a, b in zip(our_weights, their_weights, strict=True))
    if name in SCALAR_PACKERS:
        assert our_extra == float(their_extra)
    elif name == "layer_names":
        assert our_extra == their_extra


def test_skip_reason_names_the_env_that_runs_the_real_fl4health_tests() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(Path(__file__).resolve().parents[2] / "tox.ini", encoding="utf-8")
    assert "`tox -e torch`" in FL4HEALTH_MISSING
    assert "fl4health==0.4.2" in tox["testenv:torch"]["commands_pre"]
