"""Update compression: the seam where quantization or top-k sparsification plugs in.

A client's reply goes through ``encode_reply`` just before it is sent, and every reply goes
through ``decode_replies`` on the server before the strategy aggregates it. The run-config key
``compression`` picks the codec; ``"none"`` (the only one today) leaves messages untouched.

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

from collections.abc import Callable, Sequence
from typing import Protocol

from flwr.app import ArrayRecord, Context, Message


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


#: run-config value of ``compression`` -> codec factory
CODECS: dict[str, Callable[[], UpdateCodec]] = {"none": NoCompression}


def get_codec(name: str) -> UpdateCodec:
    """The codec named by the run config's ``compression``."""
    try:
        return CODECS[name]()
    except KeyError:
        raise ValueError(
            f"run config 'compression': expected one of {', '.join(sorted(CODECS))}, got {name!r}"
        ) from None
