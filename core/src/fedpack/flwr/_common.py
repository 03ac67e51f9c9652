"""What the legacy and the Message API adapters share: unpacking with or without a packer."""

from __future__ import annotations

from typing import Any

from .._api import unpack
from .._packer import ParameterPacker
from .._typing import NDArrays


def unpack_with(packed: NDArrays, packer: ParameterPacker[Any] | None) -> tuple[NDArrays, Any]:
    """Unpack with ``packer``, or from the frame alone (:func:`fedpack.unpack`) when ``None``."""
    if packer is None:
        _, weights, extra = unpack(packed)
        return weights, extra
    return packer.unpack_parameters(packed)
