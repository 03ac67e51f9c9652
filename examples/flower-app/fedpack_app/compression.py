"""Update compression: the seam where quantization or top-k sparsification plugs in.

A client's reply goes through ``encode_reply`` just before it is sent, and every reply goes
through ``decode_replies`` on the server before the strategy aggregates it. The run-config key
``compression`` picks the codec:

- ``"none"``: messages untouched;
- ``"q8"`` / ``"q4"``: the update (trained - global weights) quantized by fedpack's ``quantize``
  packer (8 bits per tensor; 4 bits with a scale per 256 values and stochastic rounding),
  wrapped around ``layer_names`` so the payload carries the tensor names;
- ``"topk"`` / ``"topk-q8"``: top-k of the update (``topk-density`` of each tensor) with error
  feedback, the residual kept in the ClientApp's ``context.state``; sent with ``sparse_coo``'s
  compact encoding, the values in float32 or quantized to 8 bits (whose error goes back into
  the residual).

The server rebuilds every compressed reply into dense weights (global + update) under the
model's names before the strategy sees it; a reply it cannot decode becomes an error reply
from the same node (a failure, not a crash).

To add a codec (e.g. ``"int8"`` quantization, or ``"topk"`` with error feedback):

1. write a class with the two methods of :class:`UpdateCodec`;
   - ``encode_reply`` may replace the ``"arrays"`` record of the reply by a compressed form
     (e.g. a fedpack ``sparse_coo`` payload of ``trained - global``) and keep client state in
     ``context.state`` (the error-feedback residual survives between rounds there);
   - ``decode_replies`` must give every reply back its dense ``"arrays"`` record (weights with
     the model's names) so that any strategy aggregates it unchanged, and must turn a reply it
     cannot decode into an error reply (a failure, not a crash);
2. register it in ``CODECS`` below.

The byte counts the ServerApp prints are measured on the messages as sent, so a codec's saving
shows up in them without further work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from flwr.app import ArrayRecord, Context, Message

import fedpack
from fedpack.flwr import from_array_record, to_array_record
from fedpack.flwr._replies import error_reply

logger = logging.getLogger(__name__)

#: The reply record holding a compressed update (replaces ``"arrays"``).
UPDATE_KEY = "fedpack.update"
#: The ClientApp state record holding the top-k residual.
RESIDUAL_KEY = "fedpack.topk.residual"


class UpdateCodec(Protocol):
    """Compresses a client's reply and restores it on the server."""

    def encode_reply(self, reply: Message, global_arrays: ArrayRecord, context: Context) -> None:
        """Compress ``reply`` in place (client side)."""

    def decode_replies(
        self, replies: Sequence[Message], global_arrays: ArrayRecord
    ) -> list[Message]:
        """The replies with dense weights again (server side)."""


class NoCompression:
    """Send the weights as they are."""

    def encode_reply(self, reply: Message, global_arrays: ArrayRecord, context: Context) -> None:
        """Nothing to do."""

    def decode_replies(
        self, replies: Sequence[Message], global_arrays: ArrayRecord
    ) -> list[Message]:
        """The replies unchanged."""
        return list(replies)


Arrays = dict[str, np.ndarray]


def _named(record: ArrayRecord) -> Arrays:
    return dict(zip(record.keys(), from_array_record(record), strict=True))


class PackedUpdate:
    """Base of the fedpack codecs: the reply's weights travel as a packed update.

    Client side, the ``"arrays"`` record (the trained weights) is replaced by an
    ``"fedpack.update"`` record holding a fedpack payload of ``trained - global``; server side,
    the payload is unpacked (the frame names the packer), validated and added to the global
    weights, and the reply gets its dense ``"arrays"`` record back.
    """

    def payload(self, trained: Arrays, base: Arrays, context: Context) -> list[np.ndarray]:
        """The packed update (subclasses)."""
        raise NotImplementedError

    def dense_update(self, payload: list[np.ndarray]) -> Arrays:
        """``{name: update}`` from a received payload; raises ``fedpack.PackingError``."""
        name, arrays, extra = fedpack.unpack(payload)
        if name != "quantize":
            raise fedpack.PackingError(f"expected a quantize payload, found one of {name!r}")
        if isinstance(extra, list):  # wrapping layer_names: the names
            return dict(zip(extra, arrays, strict=True))
        from fedpack_sparse_coo import densify

        return densify(arrays, extra)

    def encode_reply(self, reply: Message, global_arrays: ArrayRecord, context: Context) -> None:
        """Replace the reply's weights by the packed update."""
        content = reply.content
        if reply.has_error() or "arrays" not in content.array_records:
            return
        payload = self.payload(_named(content["arrays"]), _named(global_arrays), context)
        del content["arrays"]
        content[UPDATE_KEY] = to_array_record(payload)

    def decode_replies(
        self, replies: Sequence[Message], global_arrays: ArrayRecord
    ) -> list[Message]:
        """Dense weights again; a reply that does not decode becomes an error reply."""
        base = _named(global_arrays)
        out: list[Message] = []
        for reply in replies:
            if reply.has_error() or UPDATE_KEY not in reply.content.array_records:
                out.append(reply)
                continue
            try:
                update = self.dense_update(from_array_record(reply.content[UPDATE_KEY]))
                weights = _apply(base, update)
            except (fedpack.PackingError, ValueError, TypeError) as exc:
                node = reply.metadata.src_node_id
                reason = f"compression: bad update from node {node}: {exc}"
                logger.warning("%s (left out of aggregation)", reason)
                out.append(error_reply(reply, reason))
                continue
            del reply.content[UPDATE_KEY]
            reply.content["arrays"] = to_array_record(weights)
            out.append(reply)
        return out


def _apply(base: Arrays, update: Mapping[str, np.ndarray]) -> Arrays:
    if set(update) != set(base):
        raise fedpack.PackingError(
            f"expected an update of the {len(base)} global tensors, found {len(update)} tensors "
            f"({sorted(set(update) ^ set(base))[:3]} differ)"
        )
    out: Arrays = {}
    for name, array in base.items():
        delta = update[name]
        if delta.shape != array.shape or delta.dtype != array.dtype:
            raise fedpack.PackingError(
                f"update {name!r}: expected {array.dtype} {array.shape}, found "
                f"{delta.dtype} {delta.shape}"
            )
        out[name] = array + delta
    return out


def _update(trained: Arrays, base: Arrays) -> Arrays:
    return {name: trained[name] - base[name] for name in base}


class Quantized(PackedUpdate):
    """The update quantized (``quantize`` around ``layer_names``: the names travel too)."""

    def __init__(self, **options: Any) -> None:
        self.packer = fedpack.get_packer("quantize", inner="layer_names", **options)

    def payload(self, trained: Arrays, base: Arrays, context: Context) -> list[np.ndarray]:
        """The quantized update and the tensor names."""
        update = _update(trained, base)
        return self.packer.pack_parameters(list(update.values()), list(update))


class TopK(PackedUpdate):
    """Top-k of the update with error feedback; the residual lives in ``context.state``."""

    def __init__(self, density: float, bits: int | None) -> None:
        self.density = density
        self.bits = bits
        compact = {"encoding": "compact"}
        if bits is None:
            self.packer: fedpack.ParameterPacker[Any] = fedpack.get_packer("sparse_coo", **compact)
        else:
            self.packer = fedpack.get_packer(
                "quantize", bits=bits, inner="sparse_coo", inner_options=compact
            )

    def payload(self, trained: Arrays, base: Arrays, context: Context) -> list[np.ndarray]:
        """Select, pack, feed the quantization error back, keep the residual."""
        from fedpack_sparse_coo.topk import topk_update

        residual = None
        if RESIDUAL_KEY in context.state.array_records:
            residual = _named(context.state[RESIDUAL_KEY])
        update = topk_update(trained, base, residual, density=self.density)
        values, extra = update.sparse_coo()
        packed = self.packer.pack_parameters(values, extra)
        if self.bits is not None:
            got, (_, _, names) = self.packer.unpack_parameters(packed)
            update.absorb(dict(zip(names, got, strict=True)))
        context.state[RESIDUAL_KEY] = to_array_record(update.residual)
        return packed


#: run-config value of ``compression`` -> codec factory (``density``: ``topk-density``)
CODECS: dict[str, Callable[[float], UpdateCodec]] = {
    "none": lambda density: NoCompression(),
    "q8": lambda density: Quantized(bits=8),
    "q4": lambda density: Quantized(bits=4, block=256, rounding="stochastic"),
    "topk": lambda density: TopK(density, None),
    "topk-q8": lambda density: TopK(density, 8),
}


def get_codec(name: str, density: float = 0.02) -> UpdateCodec:
    """The codec named by the run config's ``compression``."""
    try:
        factory = CODECS[name]
    except KeyError:
        raise ValueError(
            f"run config 'compression': expected one of {', '.join(sorted(CODECS))}, got {name!r}"
        ) from None
    return factory(density)
