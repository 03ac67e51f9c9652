"""Each payload's frame is decoded once on every unpack path of the core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fedpack
from fedpack import frame as frame_module


def weights() -> fedpack.NDArrays:
    return [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(4), np.array(3, np.int64)]


PAYLOADS: dict[str, Callable[[], tuple[fedpack.ParameterPacker[Any], fedpack.NDArrays]]] = {}


def payload(name: str) -> Callable[..., Any]:
    def register(make: Callable[[], tuple[Any, Any]]) -> Callable[[], tuple[Any, Any]]:
        PAYLOADS[name] = make
        return make

    return register


@payload("scaffold")
def _scaffold() -> tuple[Any, Any]:
    packer = fedpack.get_packer("scaffold")
    return packer, packer.pack_parameters(weights(), [np.zeros(2)])


@payload("scaffold+clipping_bit")
def _composed() -> tuple[Any, Any]:
    packer = fedpack.get_packer("scaffold+clipping_bit")
    return packer, packer.pack_parameters(weights(), ([np.zeros(2)], 1.0))


@payload("quantize(inner=scaffold)")
def _quantized() -> tuple[Any, Any]:
    packer = fedpack.get_packer("quantize", inner="scaffold")
    return packer, packer.pack_parameters(weights(), [np.zeros(2)])


@payload("sparse_coo compact")
def _sparse() -> tuple[Any, Any]:
    packer = fedpack.get_packer("sparse_coo", encoding="compact")
    values = [np.array([1.0, 2.0], np.float32)]
    extra = ([np.array([[0, 1], [1, 2]], np.int64)], [np.array([2, 3], np.int64)], ["w"])
    return packer, packer.pack_parameters(values, extra)


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_unpack_parameters_reads_the_frame_once(name: str, decodes: list[str]) -> None:
    packer, packed = PAYLOADS[name]()
    packer.unpack_parameters(packed)
    assert len(decodes) == 1


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_fedpack_unpack_reads_the_frame_once(name: str, decodes: list[str]) -> None:
    _, packed = PAYLOADS[name]()
    fedpack.unpack(packed)
    assert len(decodes) == 1


def test_sparse_unpack_dense_reads_the_frame_once(decodes: list[str]) -> None:
    packer, packed = PAYLOADS["sparse_coo compact"]()
    names, dense = packer.unpack_dense(packed)
    assert (names, len(decodes)) == (["w"], 1)
    np.testing.assert_array_equal(dense[0], [[0, 1, 0], [0, 0, 2]])


def test_the_counter_counts(decodes: list[str]) -> None:
    _, packed = PAYLOADS["scaffold"]()
    frame_module.read_frame(packed)
    frame_module.read_frame(packed)
    assert len(decodes) == 2
