"""fedpack: validated, self-describing parameter packers for federated learning on Flower.

A *parameter packer* puts model weights and an algorithm's extra data (SCAFFOLD control
variates, a clipping bit, layer names, sparse tensors...) into one flat list of numpy arrays,
and splits it back. Packers are plugins, found by name::

    import fedpack

    packer = fedpack.get_packer("scaffold")
    packed = packer.pack_parameters(weights, control_variates)
    weights, control_variates = packer.unpack_parameters(packed)

Importing fedpack imports numpy and pluggy only; no plugin, torch or flwr.
"""

from __future__ import annotations

from ._api import compose, default_registry, get_packer, get_packer_class, list_packers, unpack
from ._budget import DEFAULT_BUDGET, DecodeBudget
from ._compose import ComposedPacker
from ._errors import (
    FedpackError,
    PackerConflictError,
    PackingError,
    PluginLoadError,
    UnknownPackerError,
    UnknownPayloadPackerError,
)
from ._packer import Encoded, ParameterPacker, ScalarPacker, Sections
from ._registry import PackerInfo, PackerRegistry
from ._typing import JSONValue, NDArray, NDArrays
from .frame import Frame
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BUDGET",
    "ComposedPacker",
    "DecodeBudget",
    "Encoded",
    "FedpackError",
    "JSONValue",
    "Frame",
    "NDArray",
    "NDArrays",
    "PackerConflictError",
    "PackerInfo",
    "PackerRegistry",
    "PackingError",
    "ParameterPacker",
    "PluginLoadError",
    "ScalarPacker",
    "Sections",
    "UnknownPackerError",
    "UnknownPayloadPackerError",
    "__version__",
    "compose",
    "default_registry",
    "get_packer",
    "get_packer_class",
    "hookimpl",
    "list_packers",
    "unpack",
]

# Public classes live in private modules; show them (tracebacks, reprs, docs) where users
# import them from, as ``fedpack.PackingError`` rather than ``fedpack._errors.PackingError``.
for _name in __all__:  # classes only (on 3.10, list[...] also passes isinstance(..., type))
    if isinstance(globals()[_name], type) and globals()[_name].__module__.startswith("fedpack."):
        globals()[_name].__module__ = __name__
del _name
