"""``ParameterPacker``: FL4Health's abstract base class, as FL4Health 0.4.2 declares it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

import fedpack
from fedpack import NDArrays

__all__ = ["ParameterPacker", "T"]

#: The type of the extra data a packer carries beside the weights.
T = TypeVar("T")


class ParameterPacker(ABC, Generic[T]):
    """FL4Health's packer interface: ``pack_parameters`` and ``unpack_parameters``, abstract.

    The same abstract base class as FL4Health 0.4.2's, generic in the extra data ``T``, so
    code written against it keeps working: a subclass that implements the two methods itself
    (FL4Health-style) is a packer, and a function typed ``ParameterPacker[float]`` accepts
    :class:`~fedpack_fl4health.ParameterPackerWithClippingBit`.

    Every fedpack packer is registered as a virtual subclass, so
    ``isinstance(fedpack.get_packer("scaffold"), ParameterPacker)`` holds too.
    """

    @abstractmethod
    def pack_parameters(self, model_weights: NDArrays, additional_parameters: T) -> NDArrays:
        """Return ``model_weights`` followed by the arrays of ``additional_parameters``."""
        raise NotImplementedError

    @abstractmethod
    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, T]:
        """Split a packed list back into ``(model_weights, additional_parameters)``."""
        raise NotImplementedError


# Any fedpack packer (built-in, third-party or composed) is an FL4Health packer by interface.
# (mypy flags any abstract class passed to ABC.register: python/mypy#4717.)
ParameterPacker.register(fedpack.ParameterPacker)  # type: ignore[type-abstract]
