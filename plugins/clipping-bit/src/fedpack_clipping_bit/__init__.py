"""The ``clipping_bit`` packer: model weights followed by one clipping bit (DP adaptive clipping).

Layout (FL4Health's ``ParameterPackerWithClippingBit``): ``weights + [np.array(bit)]``, a 0-d
array; a shape ``(1,)`` array is accepted on unpack (FL4Health's server sends the first round's
clipping bound that way). The bit always comes back as a Python ``float``; a non-finite or
non-scalar value is rejected when packing.
"""

from __future__ import annotations

from typing import ClassVar

import fedpack

__all__ = ["ClippingBitPacker", "fedpack_register_packers"]


class ClippingBitPacker(fedpack.ScalarPacker):
    """Weights plus a clipping bit (or, server to client, a clipping bound)."""

    name: ClassVar[str] = "clipping_bit"
    #: Flower's DP clipping code reads a client's bit as ``norm_bit`` (MetricRecord) and sends
    #: the clipping bound as ``clipping_norm`` (ConfigRecord): fedpack.flwr mirrors them there.
    flower_scalar_keys: ClassVar[tuple[str, str] | None] = ("norm_bit", "clipping_norm")


@fedpack.hookimpl
def fedpack_register_packers(register: fedpack.hookspecs.RegisterPacker) -> None:
    """Register :class:`ClippingBitPacker` as ``clipping_bit``."""
    register(ClippingBitPacker)
