"""The ``adaptive_constraint`` packer: model weights followed by an adaptive constraint weight.

For FedProx and Ditto with an adaptive proximal weight (``mu`` / ``lambda``). Layout
(FL4Health's ``ParameterPackerAdaptiveConstraint``): ``weights + [np.array(x)]``, a 0-d array;
a shape ``(1,)`` array is accepted on unpack. The value always comes back as a Python ``float``;
a non-finite or non-scalar value is rejected when packing.
"""

from __future__ import annotations

from typing import ClassVar

import fedpack

__all__ = ["AdaptiveConstraintPacker", "fedpack_register_packers"]


class AdaptiveConstraintPacker(fedpack.ScalarPacker):
    """Weights plus one adaptive constraint value (FedProx / Ditto with an adaptive weight).

    Client to server: the client's updated weights followed by its training loss, from which
    the server adapts the proximal weight. Server to client: the global weights followed by the
    current proximal (constraint) weight. The value is one finite real number; unpacking always
    returns a Python ``float``.
    """

    name: ClassVar[str] = "adaptive_constraint"


@fedpack.hookimpl
def fedpack_register_packers(register: fedpack.hookspecs.RegisterPacker) -> None:
    """Register :class:`AdaptiveConstraintPacker` as ``adaptive_constraint``."""
    register(AdaptiveConstraintPacker)
