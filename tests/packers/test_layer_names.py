"""The layer_names packer: one unique name per weight array, in both layouts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fedpack_layer_names import LayerNamesPacker
from fl4health_reference import ParameterPackerWithLayerNames
from packer_cases import LAYOUTS, one_extra_payload

import fedpack
from fedpack import PackingError

WEIGHTS = [np.zeros((2, 3)), np.zeros(3)]
NAMES = ["fc.weight", "fc.bias"]


def test_class() -> None:
    assert fedpack.get_packer_class("layer_names") is LayerNamesPacker


@pytest.mark.parametrize("framed", LAYOUTS)
def test_names_array_is_fl4health_unicode(framed: bool) -> None:
    packed = fedpack.get_packer("layer_names", framed=framed).pack_parameters(WEIGHTS, NAMES)
    names = packed[2]
    assert names.dtype == np.dtype("<U9")
    assert names.shape == (2,)
    assert names.tolist() == NAMES


@pytest.mark.parametrize("framed", LAYOUTS)
def test_empty_names_are_float64_like_np_array_of_empty_list(framed: bool) -> None:
    packer = fedpack.get_packer("layer_names", framed=framed)
    packed = packer.pack_parameters([], [])
    assert packed[0].dtype == np.float64
    assert packed[0].shape == (0,)
    assert len(packed) == (2 if framed else 1)
    assert packer.unpack_parameters(packed) == ([], [])


def test_quirk_layer_names_count_mismatch_at_pack() -> None:
    with pytest.raises(PackingError, match="layer_names: additional_parameters: expected 2 names"):
        fedpack.get_packer("layer_names").pack_parameters(WEIGHTS, ["fc.weight"])


@pytest.mark.parametrize("framed", LAYOUTS)
def test_quirk_layer_names_count_mismatch_at_unpack(framed: bool) -> None:
    payload = one_extra_payload("layer_names", WEIGHTS, np.array(["a", "b", "c"]), framed=framed)
    assert len(ParameterPackerWithLayerNames().unpack_parameters(payload[:3])[1]) == 3  # FL4Health
    with pytest.raises(
        PackingError,
        match=r"layer_names \(array 2, layer_names\[0\]\): expected one name per weight array, "
        r"2 names, found 3",
    ):
        fedpack.get_packer("layer_names", framed=framed).unpack_parameters(payload)


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("fc.weight", "expected a list of str, found str"),
        (np.array(NAMES), "expected a list of str, found <U9 array"),
        (None, "expected a list of str, found NoneType"),
        (["fc.weight", 3], "expected a str at index 1, found int"),
        (["fc.weight", ""], "expected a non-empty name at index 1"),
        (["fc.weight", "fc\x00bias"], "name at index 1 contains a NUL character"),
        (["fc.weight", "fc.weight"], "expected unique names, found 'fc.weight' at indices 0 and 1"),
        (["a", "b", "c"], "expected 2 names, found 3"),
    ],
)
def test_pack_rejects(framed: bool, names: Any, message: str) -> None:
    with pytest.raises(PackingError, match=f"layer_names: additional_parameters: {message}"):
        fedpack.get_packer("layer_names", framed=framed).pack_parameters(WEIGHTS, names)


@pytest.mark.parametrize("framed", LAYOUTS)
@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.array([["a"], ["b"]]),
            r"expected a 1-D array of str, found <U1 array of shape \(2, 1\)",
        ),
        (np.array("ab"), r"expected a 1-D array of str, found <U2 array of shape \(\)"),
        (np.array([1.0, 2.0]), "expected a unicode .* found float64 array"),
        (np.array([b"a", b"b"]), "expected a unicode .* found |S1 array"),
        (np.array(["a", "a"]), "expected unique names, found 'a' at indices 0 and 1"),
        (np.array(["a", ""]), "expected a non-empty name at index 1"),
    ],
)
def test_unpack_rejects(framed: bool, array: Any, message: str) -> None:
    payload = one_extra_payload("layer_names", WEIGHTS, array, framed=framed)
    with pytest.raises(
        PackingError, match=rf"layer_names \(array 2, layer_names\[0\]\).*{message}"
    ):
        fedpack.get_packer("layer_names", framed=framed).unpack_parameters(payload)


def test_unicode_names_survive() -> None:
    names = ["couche.poids", "слой.смещение"]
    packer = fedpack.get_packer("layer_names")
    assert packer.unpack_parameters(packer.pack_parameters(WEIGHTS, names))[1] == names
