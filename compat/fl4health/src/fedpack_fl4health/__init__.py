"""A drop-in for FL4Health 0.4.2's ``fl4health.parameter_exchange.parameter_packer`` module.

Migrating is one changed import line::

    # from fl4health.parameter_exchange.parameter_packer import ParameterPackerWithClippingBit
    from fedpack_fl4health import ParameterPackerWithClippingBit

The six classes keep FL4Health's names, constructor and method signatures and generic types.
The five concrete ones are subclasses of fedpack's built-in packers (the classes that
``fedpack.get_packer("scaffold")`` etc. serve), default to FL4Health's wire layout
(``framed=False``) and validate everything; bad input raises :class:`fedpack.PackingError`.
Importing this module imports numpy, pluggy and fedpack only: no torch, no flwr.
"""

from __future__ import annotations

from ._base import ParameterPacker, T
from ._packers import (
    ParameterPackerAdaptiveConstraint,
    ParameterPackerWithClippingBit,
    ParameterPackerWithControlVariates,
    ParameterPackerWithLayerNames,
    SparseCooParameterPacker,
    SparseExtra,
)

__version__ = "0.1.0"

for _cls in (
    ParameterPacker,
    ParameterPackerAdaptiveConstraint,
    ParameterPackerWithClippingBit,
    ParameterPackerWithControlVariates,
    ParameterPackerWithLayerNames,
    SparseCooParameterPacker,
):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "ParameterPacker",
    "ParameterPackerAdaptiveConstraint",
    "ParameterPackerWithClippingBit",
    "ParameterPackerWithControlVariates",
    "ParameterPackerWithLayerNames",
    "SparseCooParameterPacker",
    "SparseExtra",
    "T",
    "__version__",
]
