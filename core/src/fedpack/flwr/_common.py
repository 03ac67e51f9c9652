"""What the legacy and the Message API adapters share: unpacking with or without a packer."""

from __future__ import annotations

from typing import Any

from .._api import unpack
from .._budget import DecodeBudget
from .._errors import PackingError, UnknownPayloadPackerError
from .._packer import ParameterPacker
from .._typing import NDArrays


def unpack_with(
    packed: NDArrays, packer: ParameterPacker[Any] | None, budget: DecodeBudget | None = None
) -> tuple[NDArrays, Any]:
    """Unpack with ``packer``, or from the frame alone (:func:`fedpack.unpack`) when ``None``.

    ``budget`` applies to a packer rebuilt from the frame; a given ``packer`` keeps its own.
    """
    if packer is None:
        _, weights, extra = unpack(packed, budget=budget)
        return weights, extra
    return packer.unpack_parameters(packed)


def decoding_budget(
    packer: ParameterPacker[Any] | None, budget: DecodeBudget | None
) -> DecodeBudget | None:
    """The budget to decode received bytes with: ``budget``, else the packer's, else default."""
    if budget is None and packer is not None:
        return packer.budget
    return budget


def located(exc: PackingError, where: str) -> PackingError:
    """``exc`` with ``where`` before its message, of the same kind.

    A payload naming a packer this receiver lacks stays an
    :class:`fedpack.UnknownPayloadPackerError` (a ``LookupError``).
    """
    if isinstance(exc, UnknownPayloadPackerError):
        return UnknownPayloadPackerError(f"{where}: {exc}", name=exc.name, available=exc.available)
    return PackingError(f"{where}: {exc}")
