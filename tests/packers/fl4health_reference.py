"""A numpy-only re-implementation of FL4Health 0.4.2's parameter packers, for interop tests.

FL4Health 0.4.2 (``fl4health/parameter_exchange/parameter_packer.py``) does not install beside a
current stack (it pins Python <3.11, numpy<2, torch 2.6 and flwr 1.18), so the tests compare
fedpack's ``framed=False`` output with this faithful copy of its logic instead: same method and
keyword names, same list operations, same conversions, same (missing) checks. Nothing here
validates anything -- that is the point: the quirks tests show what it lets through.

Packing is list concatenation and unpacking is list slicing; no array is ever copied.
"""

# ruff: noqa: RUF005  (list concatenation kept as FL4Health writes it)

from __future__ import annotations

import importlib
import importlib.util
import warnings
from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pytest

NDArrays = list[npt.NDArray[Any]]
T = TypeVar("T")

#: The skip reason of the tests against the real FL4Health where it is not installed.
FL4HEALTH_MISSING = (
    "FL4Health is not installed here: `tox -e torch` installs FL4Health 0.4.2 (without its "
    "requirements, which pin an old stack) and runs these tests against its own packers"
)


def real_fl4health_packers() -> ModuleType:
    """FL4Health's own packer module; skips where FL4Health is not installed.

    Where it is installed but fails to import, the import error fails the test. Warnings raised
    while its stack (flwr, torch) imports are ignored, as ``pytest.importorskip`` does.
    """
    if importlib.util.find_spec("fl4health") is None:
        pytest.skip(FL4HEALTH_MISSING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("fl4health.parameter_exchange.parameter_packer")


class ParameterPacker(ABC, Generic[T]):
    @abstractmethod
    def pack_parameters(self, model_weights: NDArrays, additional_parameters: T) -> NDArrays:
        raise NotImplementedError

    @abstractmethod
    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, T]:
        raise NotImplementedError


class ParameterPackerWithControlVariates(ParameterPacker[NDArrays]):
    def __init__(self, size_of_model_params: int) -> None:
        self.size_of_model_params = size_of_model_params
        super().__init__()

    def pack_parameters(self, model_weights: NDArrays, additional_parameters: NDArrays) -> NDArrays:
        return model_weights + additional_parameters

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, NDArrays]:
        return (
            packed_parameters[: self.size_of_model_params],
            packed_parameters[self.size_of_model_params :],
        )


class ParameterPackerWithClippingBit(ParameterPacker[float]):
    def pack_parameters(self, model_weights: NDArrays, additional_parameters: float) -> NDArrays:
        return model_weights + [np.array(additional_parameters)]

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, float]:
        split_size = len(packed_parameters) - 1
        model_parameters = packed_parameters[:split_size]
        clipping_bit = packed_parameters[split_size:][0]
        return model_parameters, clipping_bit.item()  # type follows the dtype


class ParameterPackerAdaptiveConstraint(ParameterPacker[float]):
    def pack_parameters(self, model_weights: NDArrays, extra_adaptive_variable: float) -> NDArrays:
        return model_weights + [np.array(extra_adaptive_variable)]

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, float]:
        split_size = len(packed_parameters) - 1
        model_parameters = packed_parameters[:split_size]
        extra_adaptive_variable = packed_parameters[split_size:][0]
        # FL4Health's only guard is an assert (gone under python -O); kept as-is on purpose.
        assert isinstance(extra_adaptive_variable, np.ndarray)
        return model_parameters, float(extra_adaptive_variable)


class ParameterPackerWithLayerNames(ParameterPacker[list[str]]):
    def pack_parameters(self, model_weights: NDArrays, weights_names: list[str]) -> NDArrays:
        return model_weights + [np.array(weights_names)]

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, list[str]]:
        split_size = len(packed_parameters) - 1
        model_parameters = packed_parameters[:split_size]
        param_names = packed_parameters[split_size:][0].tolist()
        return model_parameters, param_names


class SparseCooParameterPacker(ParameterPacker[tuple[NDArrays, NDArrays, list[str]]]):
    def pack_parameters(
        self,
        model_parameters: NDArrays,
        additional_parameters: tuple[NDArrays, NDArrays, list[str]],
    ) -> NDArrays:
        parameter_indices, tensor_shapes, tensor_names = additional_parameters
        return model_parameters + parameter_indices + tensor_shapes + [np.array(tensor_names)]

    def unpack_parameters(
        self, packed_parameters: NDArrays
    ) -> tuple[NDArrays, tuple[NDArrays, NDArrays, list[str]]]:
        assert len(packed_parameters) % 3 == 1  # FL4Health's only guard
        split_size = (len(packed_parameters) - 1) // 3
        model_parameters = packed_parameters[:split_size]
        parameter_indices = packed_parameters[split_size : (2 * split_size)]
        tensor_shapes = packed_parameters[(2 * split_size) : (3 * split_size)]
        tensor_names = packed_parameters[(3 * split_size) :][0].tolist()
        return model_parameters, (parameter_indices, tensor_shapes, tensor_names)

    @staticmethod
    def extract_coo_info_from_dense(x: npt.NDArray[Any]) -> tuple[Any, Any, Any]:
        """numpy transcription of ``x[torch.nonzero(x, as_tuple=True)]``, ``torch.nonzero(x)``."""
        where = np.nonzero(x)
        return x[where], np.stack(where, axis=1).astype(np.int64), np.array(list(x.shape))


def reference_for(name: str, size_of_model_params: int | None = None) -> ParameterPacker[Any]:
    """The FL4Health packer matching fedpack's ``name``."""
    if name == "scaffold":
        if size_of_model_params is None:
            raise ValueError("the scaffold reference needs size_of_model_params")
        return ParameterPackerWithControlVariates(size_of_model_params)
    classes: dict[str, type[ParameterPacker[Any]]] = {
        "clipping_bit": ParameterPackerWithClippingBit,
        "adaptive_constraint": ParameterPackerAdaptiveConstraint,
        "layer_names": ParameterPackerWithLayerNames,
        "sparse_coo": SparseCooParameterPacker,
    }
    return classes[name]()
