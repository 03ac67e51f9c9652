"""Flower: strategies, ClientApp helpers and adapters for packed payloads.

Install with ``pip install "fedpack-core[flwr]"``. Importing this module does not import flwr;
each function imports what it needs when called, and the strategy classes (subclasses of
Flower's ``FedAvg`` / ``Strategy``) are created when first used.

Message API strategies (``flwr.serverapp.strategy``; need flwr >= 1.21): :class:`Scaffold`,
:class:`PartialExchange`, :class:`AdaptiveConstraint`, :class:`ClippingBitFedAvg` and
:func:`dp_fedavg_adaptive_clipping`, their base :class:`PackedFedAvg`, and
:class:`PackedStrategy` that carries any packer's extras through any strategy. Replies:
:func:`split_replies` (a bad reply is a counted failure), :class:`PackedReply`,
:class:`ReplyFailure`.

ClientApp side: :func:`receive`, :func:`reply`, :func:`extras_mod` (before Flower's clipping
mods), :class:`ScaffoldClient`; torch: :func:`state_dict`.

Legacy API (``Parameters``, strategies' ``configure_fit`` / ``aggregate_fit``):
:func:`to_parameters`, :func:`from_parameters`, :func:`pack_parameters`,
:func:`unpack_parameters`, :func:`pack_fit_ins`, :func:`split_fit_res`,
:func:`split_fit_results`.

Message API (``RecordDict`` / ``ArrayRecord``): :func:`to_record_dict`,
:func:`from_record_dict`, :func:`pop_extras`, :func:`to_array`, :func:`from_array`,
:func:`to_array_record`, :func:`from_array_record`.

Every array is written as the exact bytes Flower's own numpy serializer writes, so either side
can be stock Flower code; reading gives zero-copy, read-only views unless ``writable=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client import NUM_EXAMPLES_KEY, extras_mod, instruction_packer, receive, reply
from ._convert import Weights, named_arrays, state_dict
from ._legacy import (
    TENSOR_TYPE,
    from_parameters,
    pack_fit_ins,
    pack_parameters,
    split_fit_res,
    split_fit_results,
    to_parameters,
    unpack_parameters,
)
from ._records import (
    ARRAYS_KEY,
    CONFIG_KEY,
    EXTRA_KEY,
    FRAME_KEY,
    KEY_CLIPPING_NORM,
    KEY_NORM_BIT,
    METRICS_KEY,
    SCALAR_KEYS,
    STYPE,
    extras_record,
    from_array,
    from_array_record,
    from_record_dict,
    mirror_scalars,
    pop_extras,
    record_packer,
    scalar_mirrors,
    to_array,
    to_array_record,
    to_record_dict,
    unpack_records,
)
from ._replies import ERROR_CODE, PackedReply, ReplyFailure, SplitReplies, split_replies
from ._scaffold_client import SCAFFOLD_STATE_KEY, ScaffoldClient

if TYPE_CHECKING:
    from ._strategies import (
        AdaptiveConstraint,
        ClippingBitFedAvg,
        PackedFedAvg,
        PackedStrategy,
        PartialExchange,
        Scaffold,
        attach_extras,
        dp_fedavg_adaptive_clipping,
    )

#: Names made on first use, from the module that imports flwr's strategies.
_LAZY = frozenset(
    {
        "AdaptiveConstraint",
        "ClippingBitFedAvg",
        "PackedFedAvg",
        "PackedStrategy",
        "PartialExchange",
        "Scaffold",
        "attach_extras",
        "dp_fedavg_adaptive_clipping",
    }
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _strategies

        return getattr(_strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)


__all__ = [
    "ARRAYS_KEY",
    "AdaptiveConstraint",
    "CONFIG_KEY",
    "ClippingBitFedAvg",
    "ERROR_CODE",
    "EXTRA_KEY",
    "FRAME_KEY",
    "KEY_CLIPPING_NORM",
    "KEY_NORM_BIT",
    "METRICS_KEY",
    "NUM_EXAMPLES_KEY",
    "PackedFedAvg",
    "PackedReply",
    "PackedStrategy",
    "PartialExchange",
    "ReplyFailure",
    "SCAFFOLD_STATE_KEY",
    "SCALAR_KEYS",
    "STYPE",
    "Scaffold",
    "ScaffoldClient",
    "SplitReplies",
    "TENSOR_TYPE",
    "Weights",
    "attach_extras",
    "dp_fedavg_adaptive_clipping",
    "extras_mod",
    "extras_record",
    "from_array",
    "from_array_record",
    "from_parameters",
    "from_record_dict",
    "instruction_packer",
    "mirror_scalars",
    "named_arrays",
    "pack_fit_ins",
    "pack_parameters",
    "pop_extras",
    "receive",
    "record_packer",
    "reply",
    "scalar_mirrors",
    "split_fit_res",
    "split_fit_results",
    "split_replies",
    "state_dict",
    "to_array",
    "to_array_record",
    "to_parameters",
    "to_record_dict",
    "unpack_parameters",
    "unpack_records",
]
