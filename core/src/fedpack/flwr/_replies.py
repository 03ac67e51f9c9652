"""Replies with packed extras: a bad one is a failure, not a crash.

:func:`split_replies` reads the extras of every reply (Message API) without raising. Each
reply is handled all or nothing: a reply whose payload is valid loses its ``"fedpack.extra"``
record (so a stock Flower strategy sees exactly one ArrayRecord; weights a packer quantized are
replaced by their decoded values) and its extra is returned; a
reply whose payload is missing, malformed, from another packer or from an old client without
fedpack's record is logged with its node id, left out, and replaced, in the list handed to the
strategy, by an error reply from the same node, which Flower's strategies count and log as a
failure. A reply that already carries an error is passed through unchanged.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._errors import PackingError
from .._packer import ParameterPacker
from .._typing import NDArrays
from ._records import ARRAYS_KEY, EXTRA_KEY, packed_record_dict, to_array_record

if TYPE_CHECKING:
    from flwr.app import ArrayRecord, Message

__all__ = ["ERROR_CODE", "PackedReply", "ReplyFailure", "SplitReplies", "split_replies"]

T = TypeVar("T")

#: Flower's own logger, so fedpack's lines appear with Flower's.
logger = logging.getLogger("flwr")

#: The ``Error.code`` of the error reply standing for a bad payload (Flower's ``UNKNOWN``).
ERROR_CODE = 0


@dataclass(frozen=True)
class ReplyFailure:
    """A reply left out of aggregation: its position, its node and why."""

    #: Position of the reply in the replies given.
    index: int
    #: ``message.metadata.src_node_id`` of the reply (``-1`` when it has none).
    node_id: int
    #: What was wrong (a :class:`fedpack.PackingError`'s message).
    reason: str


@dataclass(frozen=True)
class PackedReply(Generic[T]):
    """A valid reply (its extras record removed) and the extra data it carried."""

    #: The reply; its content no longer holds the extras record.
    message: Message
    #: The unpacked extra data (e.g. a control variate update).
    extra: T

    @property
    def node_id(self) -> int:
        """The node that sent the reply."""
        return int(self.message.metadata.src_node_id)


@dataclass
class SplitReplies(Generic[T]):
    """What :func:`split_replies` returns."""

    #: Every reply, in order, for a stock strategy's ``aggregate_train``: valid replies with
    #: their extras removed, Flower's own error replies, and an error reply standing for each
    #: bad one (same node id, the reason in ``error.reason``).
    replies: list[Message] = field(default_factory=list)
    #: The valid replies and their extras, in order.
    accepted: list[PackedReply[T]] = field(default_factory=list)
    #: The replies fedpack refused, in order.
    failures: list[ReplyFailure] = field(default_factory=list)


def split_replies(
    replies: Iterable[Message],
    packer: ParameterPacker[T] | None = None,
    *,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
) -> SplitReplies[T]:
    """Read and remove the extras of every valid reply; turn bad replies into failures.

    Never raises for a bad payload (see the module docstring). Without ``packer`` any framed
    payload is accepted and unpacked by the packer its frame names; with one, a payload of
    another packer is a failure.
    """
    out: SplitReplies[T] = SplitReplies()
    for index, message in enumerate(replies):
        if message.has_error():
            out.replies.append(message)
            continue
        try:
            weights, extra, used = packed_record_dict(
                message.content, packer, arrays_key=arrays_key, extra_key=extra_key
            )
            decoded = _decoded_weights(message.content, used, weights, arrays_key)
        except PackingError as exc:
            node_id = _node_id(message)
            reason = f"fedpack: bad payload in reply {index} from node {node_id}: {exc}"
            logger.warning("%s (left out of aggregation)", reason)
            out.failures.append(ReplyFailure(index, node_id, reason))
            out.replies.append(error_reply(message, reason))
            continue
        del message.content[extra_key]
        if decoded is not None:
            message.content[arrays_key] = decoded
        out.replies.append(message)
        out.accepted.append(PackedReply(message, extra))
    return out


def _decoded_weights(
    content: Any, used: ParameterPacker[Any], weights: NDArrays, arrays_key: str
) -> ArrayRecord | None:
    """For a packer that transforms the weights (quantization), the decoded weights record.

    A stock strategy must average the weights, not their encoding; ``None`` when the weights
    travel as they are.
    """
    if not used.transforms_weights:
        return None
    return to_array_record(weights, list(content[arrays_key].keys()))


def error_reply(message: Message, reason: str) -> Message:
    """An error reply with ``message``'s metadata (same node id), for Flower to count.

    Built as Flower builds the messages it receives (``Message(error=..., metadata=...)``), so
    ``metadata.src_node_id`` still names the node that sent the bad payload.
    """
    from flwr.app import Error, Message

    make: Any = Message
    error = Error(code=ERROR_CODE, reason=reason)
    out: Message = make(error=error, metadata=copy.copy(message.metadata))
    return out


def _node_id(message: Any) -> int:
    node = getattr(getattr(message, "metadata", None), "src_node_id", -1)
    return node if isinstance(node, int) else -1
