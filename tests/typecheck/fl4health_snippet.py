"""Code typed against FL4Health 0.4.2's ``parameter_packer`` classes, on fedpack's drop-in.

The only line that differs from code written for FL4Health is the import of the packer classes.
``mypy --strict`` checks this file (tox env ``type``) and tests/compat/test_fl4health_dropin.py
runs it. ``NDArrays`` is spelled out as flwr spells it, so the snippet needs neither flwr nor torch.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from fedpack_fl4health import (  # was: from fl4health.parameter_exchange.parameter_packer import
    ParameterPacker,
    ParameterPackerAdaptiveConstraint,
    ParameterPackerWithClippingBit,
    ParameterPackerWithControlVariates,
    ParameterPackerWithLayerNames,
    SparseCooParameterPacker,
)

NDArray = npt.NDArray[Any]
NDArrays = list[NDArray]
T = TypeVar("T")


class FullParameterExchangerWithPacking(Generic[T]):
    """FL4Health's packing exchanger, as it types its packer."""

    def __init__(self, parameter_packer: ParameterPacker[T]) -> None:
        self.parameter_packer = parameter_packer

    def pack_parameters(self, model_weights: NDArrays, additional_parameters: T) -> NDArrays:
        return self.parameter_packer.pack_parameters(model_weights, additional_parameters)

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, T]:
        return self.parameter_packer.unpack_parameters(packed_parameters)


class ParameterPackerWithRound(ParameterPacker[int]):
    """A user packer written FL4Health-style: it implements the two methods itself."""

    def pack_parameters(self, model_weights: NDArrays, additional_parameters: int) -> NDArrays:
        return [*model_weights, np.array(additional_parameters)]

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, int]:
        return packed_parameters[:-1], int(packed_parameters[-1])


def scaffold_server(weights: NDArrays, variates: NDArrays) -> tuple[NDArrays, NDArrays]:
    packer: ParameterPacker[NDArrays] = ParameterPackerWithControlVariates(len(weights))
    return packer.unpack_parameters(packer.pack_parameters(weights, variates))


def clipping_exchange(weights: NDArrays, bit: float) -> float:
    exchanger = FullParameterExchangerWithPacking(ParameterPackerWithClippingBit())
    _, unpacked = exchanger.unpack_parameters(exchanger.pack_parameters(weights, bit))
    return unpacked


def fedprox_exchange(weights: NDArrays, mu: float) -> float:
    packer = ParameterPackerAdaptiveConstraint()
    packed = packer.pack_parameters(weights, extra_adaptive_variable=mu)
    _, loss_weight = packer.unpack_parameters(packed)
    return loss_weight


def layer_exchange(weights: NDArrays, names: list[str]) -> list[str]:
    packer = ParameterPackerWithLayerNames()
    _, unpacked = packer.unpack_parameters(packer.pack_parameters(weights, weights_names=names))
    return unpacked


def sparse_exchange(dense: NDArray, name: str) -> tuple[NDArrays, NDArrays, list[str]]:
    packer = SparseCooParameterPacker()
    values, indices, shape = packer.extract_coo_info_from_dense(dense)
    packed = packer.pack_parameters(
        model_parameters=[values], additional_parameters=([indices], [shape], [name])
    )
    unpacked_values, (unpacked_indices, _shapes, names) = packer.unpack_parameters(packed)
    return unpacked_values, unpacked_indices, names


def round_exchange(weights: NDArrays, server_round: int) -> int:
    exchanger: FullParameterExchangerWithPacking[int] = FullParameterExchangerWithPacking(
        ParameterPackerWithRound()
    )
    return exchanger.unpack_parameters(exchanger.pack_parameters(weights, server_round))[1]


def main() -> None:
    """Run every function once (the test suite calls this)."""
    weights = [np.ones((2, 2), np.float32), np.zeros(3, np.float32)]
    assert len(scaffold_server(weights, [np.ones(3)])[1]) == 1
    assert clipping_exchange(weights, 1.0) == 1.0
    assert fedprox_exchange(weights, 0.5) == 0.5
    assert layer_exchange(weights, ["a", "b"]) == ["a", "b"]
    dense = np.array([[0.0, 1.5], [2.5, 0.0]], np.float32)
    assert sparse_exchange(dense, "w")[2] == ["w"]
    assert round_exchange(weights, 7) == 7


if __name__ == "__main__":
    main()
