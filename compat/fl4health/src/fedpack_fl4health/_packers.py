"""FL4Health 0.4.2's five concrete packers, each a subclass of the fedpack built-in it maps to.

Each class keeps FL4Health's constructor and method signatures (parameter names included) and
defaults to FL4Health's wire layout (``framed=False``), so payloads are array-for-array what an
FL4Health peer sends and reads. Every fedpack validation stays on; ``framed=True`` selects
fedpack's self-describing layout for links where both sides run fedpack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedpack_adaptive_constraint import AdaptiveConstraintPacker
from fedpack_clipping_bit import ClippingBitPacker
from fedpack_layer_names import LayerNamesPacker
from fedpack_scaffold import ScaffoldPacker
from fedpack_sparse_coo import DEFAULT_MAX_ELEMENTS, SparseCooPacker

from fedpack import NDArray, NDArrays

from ._base import ParameterPacker

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "ParameterPackerAdaptiveConstraint",
    "ParameterPackerWithClippingBit",
    "ParameterPackerWithControlVariates",
    "ParameterPackerWithLayerNames",
    "SparseCooParameterPacker",
    "SparseExtra",
]

#: ``(indices, shapes, names)``: the extra data of :class:`SparseCooParameterPacker`.
SparseExtra = tuple[NDArrays, NDArrays, list[str]]


class ParameterPackerWithControlVariates(ScaffoldPacker, ParameterPacker[NDArrays]):
    """SCAFFOLD: the weights followed by the control variates (fedpack's ``scaffold`` packer).

    ``size_of_model_params`` is the number of weight arrays, as in FL4Health. It is checked
    against the weights packed and, in FL4Health's layout, it must not exceed the number of
    arrays unpacked; with ``framed=True`` it is also checked against the payload's frame.
    """

    def __init__(self, size_of_model_params: int, *, framed: bool = False) -> None:
        """Create the packer for ``size_of_model_params`` weight arrays."""
        super().__init__(size_of_model_params, framed=framed)

    def pack_parameters(self, model_weights: NDArrays, additional_parameters: NDArrays) -> NDArrays:
        """Return ``model_weights + additional_parameters`` (the control variates)."""
        return super().pack_parameters(model_weights, additional_parameters)

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, NDArrays]:
        """Split into the first ``size_of_model_params`` arrays and the control variates."""
        return super().unpack_parameters(packed_parameters)


class ParameterPackerWithClippingBit(ClippingBitPacker, ParameterPacker[float]):
    """DP with adaptive clipping: the weights followed by a clipping bit (``clipping_bit``).

    The bit is packed as ``np.array(bit)`` and comes back as a Python ``float``; it must be a
    finite real number.
    """

    def __init__(self, *, framed: bool = False) -> None:
        """Create the packer (FL4Health's layout unless ``framed=True``)."""
        super().__init__(framed=framed)

    def pack_parameters(self, model_weights: NDArrays, additional_parameters: float) -> NDArrays:
        """Return ``model_weights + [np.array(additional_parameters)]``."""
        return super().pack_parameters(model_weights, additional_parameters)

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, float]:
        """Split off the last array, the clipping bit, returned as a ``float``."""
        return super().unpack_parameters(packed_parameters)


class ParameterPackerAdaptiveConstraint(AdaptiveConstraintPacker, ParameterPacker[float]):
    """FedProx / Ditto: the weights followed by the adaptive constraint weight.

    fedpack's ``adaptive_constraint`` packer; the value must be a finite real number and comes
    back as a Python ``float``.
    """

    def __init__(self, *, framed: bool = False) -> None:
        """Create the packer (FL4Health's layout unless ``framed=True``)."""
        super().__init__(framed=framed)

    def pack_parameters(self, model_weights: NDArrays, extra_adaptive_variable: float) -> NDArrays:
        """Return ``model_weights + [np.array(extra_adaptive_variable)]``."""
        return super().pack_parameters(model_weights, extra_adaptive_variable)

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, float]:
        """Split off the last array, the constraint weight, returned as a ``float``."""
        return super().unpack_parameters(packed_parameters)


class ParameterPackerWithLayerNames(LayerNamesPacker, ParameterPacker[list[str]]):
    """Partial exchange: the weights followed by their layer names (``layer_names``).

    One unique, non-empty name per weight array, checked at pack and at unpack.
    """

    def __init__(self, *, framed: bool = False) -> None:
        """Create the packer (FL4Health's layout unless ``framed=True``)."""
        super().__init__(framed=framed)

    def pack_parameters(self, model_weights: NDArrays, weights_names: list[str]) -> NDArrays:
        """Return ``model_weights + [np.array(weights_names)]``."""
        return super().pack_parameters(model_weights, weights_names)

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, list[str]]:
        """Separate the weights from the names of the layers they belong to."""
        return super().unpack_parameters(packed_parameters)


class SparseCooParameterPacker(SparseCooPacker, ParameterPacker[SparseExtra]):
    """Sparse exchange: COO values, indices, shapes and names (fedpack's ``sparse_coo``).

    ``model_parameters`` are the non-zero values (one 1-D array per tensor) and
    ``additional_parameters`` is ``(indices, shapes, names)``. Every tensor is checked: counts
    agree, indices are inside their shape, names are unique. ``encoding="compact"`` needs
    ``framed=True``.
    """

    def __init__(
        self,
        *,
        framed: bool = False,
        encoding: str = "coo",
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        """Create the packer (FL4Health's layout unless ``framed=True``)."""
        super().__init__(encoding=encoding, framed=framed, max_elements=max_elements)

    def pack_parameters(
        self, model_parameters: NDArrays, additional_parameters: SparseExtra
    ) -> NDArrays:
        """Return ``values + indices + shapes + [np.array(names)]``."""
        return super().pack_parameters(model_parameters, additional_parameters)

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, SparseExtra]:
        """Split into ``(values, (indices, shapes, names))``, validating every tensor."""
        return super().unpack_parameters(packed_parameters)

    @staticmethod
    def extract_coo_info_from_dense(x: Tensor | NDArray) -> tuple[NDArray, NDArray, NDArray]:
        """The non-zero values of ``x``, their indices ``(nnz, ndim)`` and the shape of ``x``.

        As FL4Health's, for a torch tensor (imported only when one is passed); numpy arrays,
        0-d, bfloat16 and requires-grad tensors work too.
        """
        return SparseCooPacker.extract_coo_info_from_dense(x)
