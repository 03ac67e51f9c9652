"""The ClientApp side: read an instruction and reply in one call each, in any mod chain.

:func:`receive` gives ``(weights, extra)`` (or ``(state_dict, extra)``) of an instruction;
:func:`reply` builds the reply ``Message`` from weights (a list, a ``state_dict`` or an
``ArrayRecord``), the extra data and the metrics. :func:`extras_mod` is a Flower mod that lets
the same ClientApp run with Flower's ``fixedclipping_mod`` / ``adaptiveclipping_mod``, which
refuse a message holding more than one ArrayRecord: put it first, before Flower's mods::

    app = ClientApp(mods=[fedpack.flwr.extras_mod, adaptiveclipping_mod])

It takes the ``"fedpack.extra"`` record off the incoming message before the inner mods see
it, :func:`receive` reads it from there, :func:`reply` leaves the reply's extras record with it,
and the mod puts that record back on the reply after the inner mods ran. Without the mod,
:func:`receive` and :func:`reply` read and write the record on the messages themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from .._errors import PackingError
from .._packer import ParameterPacker
from .._typing import NDArrays
from ..checks import describe
from ._convert import named_arrays, state_dict
from ._records import (
    ARRAYS_KEY,
    EXTRA_KEY,
    METRICS_KEY,
    from_array_record,
    mirror_scalars,
    pack_records,
    record_packer,
    to_array_record,
    unpacked_records,
)

if TYPE_CHECKING:
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord
    from flwr.clientapp.typing import ClientAppCallable

__all__ = ["NUM_EXAMPLES_KEY", "extras_mod", "instruction_packer", "receive", "reply"]

#: The MetricRecord key Flower's strategies weight replies by (``FedAvg(weighted_by_key=...)``).
NUM_EXAMPLES_KEY = "num-examples"


@dataclass
class _Parked:
    """The extras records :func:`extras_mod` holds while the inner mods and the app run."""

    incoming: ArrayRecord | None
    outgoing: ArrayRecord | None = None


_PARKED: ContextVar[_Parked | None] = ContextVar("fedpack_flwr_parked", default=None)


def extras_mod(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Flower mod: keep fedpack's extras record away from the mods after it (see module docs).

    Place it first in ``ClientApp(mods=[...])``. A message without fedpack's record passes
    through unchanged; a reply that carries an error is returned as it is.
    """
    incoming: ArrayRecord | None = None
    if msg.has_content() and EXTRA_KEY in msg.content.array_records:
        incoming = msg.content.array_records[EXTRA_KEY]
        del msg.content[EXTRA_KEY]
    parked = _Parked(incoming)
    token = _PARKED.set(parked)
    try:
        out = call_next(msg, ctxt)
    finally:
        _PARKED.reset(token)
        if incoming is not None:
            msg.content[EXTRA_KEY] = incoming
    if parked.outgoing is not None and out.has_content():
        out.content[EXTRA_KEY] = parked.outgoing
    return out


def _extras_of(message: Message) -> ArrayRecord | None:
    parked = _PARKED.get()
    if parked is not None and parked.incoming is not None:
        return parked.incoming
    return message.content.array_records.get(EXTRA_KEY)


def _weights_record(message: Message) -> ArrayRecord:
    records = message.content.array_records
    if ARRAYS_KEY in records:
        return records[ARRAYS_KEY]
    others = [key for key in records if key != EXTRA_KEY]
    if len(others) != 1:
        raise PackingError(
            f"expected the weights in an ArrayRecord {ARRAYS_KEY!r} (or in the only ArrayRecord),"
            f" found the ArrayRecords {sorted(records)}"
        )
    return records[others[0]]


def _resolve(packer: ParameterPacker[Any] | str | None) -> ParameterPacker[Any] | None:
    if packer is None or isinstance(packer, ParameterPacker):
        return packer
    if isinstance(packer, str):
        from .._api import get_packer

        return get_packer(packer)
    raise TypeError(f"packer: expected a ParameterPacker, a name or None, found {describe(packer)}")


def instruction_packer(message: Message) -> ParameterPacker[Any] | None:
    """The packer that packed an instruction (from its frame), or ``None`` without extras."""
    extras = _extras_of(message)
    return None if extras is None else record_packer(extras)


@overload
def receive(
    message: Message,
    packer: ParameterPacker[Any] | str | None = None,
    *,
    state_dict: Literal[False] = False,
    writable: bool = False,
    device: str | torch.device | None = None,
) -> tuple[NDArrays, Any]: ...


@overload
def receive(
    message: Message,
    packer: ParameterPacker[Any] | str | None = None,
    *,
    state_dict: Literal[True],
    writable: bool = False,
    device: str | torch.device | None = None,
) -> tuple[dict[str, torch.Tensor], Any]: ...


def receive(
    message: Message,
    packer: ParameterPacker[Any] | str | None = None,
    *,
    state_dict: bool = False,
    writable: bool = False,
    device: str | torch.device | None = None,
) -> tuple[NDArrays, Any] | tuple[dict[str, torch.Tensor], Any]:
    """``(weights, extra)`` of an instruction; ``extra`` is ``None`` when it carries no extras.

    ``weights`` are numpy arrays in the order of the ``"arrays"`` record (read-only zero-copy
    views unless ``writable=True``); with ``state_dict=True`` they are a torch ``state_dict``
    under the record's names (on ``device``), ready for ``model.load_state_dict``. Without
    ``packer`` the frame names the packer. A bad payload raises :class:`fedpack.PackingError`.
    """
    weights, extra, _ = received(message, _resolve(packer), writable=writable)
    if state_dict:
        return _state_dict(list(_weights_record(message).keys()), weights, device), extra
    return weights, extra


def received(
    message: Message, packer: ParameterPacker[Any] | None, *, writable: bool = False
) -> tuple[NDArrays, Any, ParameterPacker[Any] | None]:
    """:func:`receive`'s weights and extra, and the packer that decoded them (frame read once)."""
    arrays = _weights_record(message)
    extras = _extras_of(message)
    if extras is None:
        if packer is not None:
            raise PackingError(
                f"expected the instruction to carry {packer.name!r} extras in an ArrayRecord "
                f"{EXTRA_KEY!r}, found the ArrayRecords {sorted(message.content.array_records)}"
            )
        return from_array_record(arrays, writable=writable, what=ARRAYS_KEY), None, None
    return unpacked_records(arrays, extras, packer, writable=writable)


def _state_dict(
    names: list[str], weights: NDArrays, device: str | torch.device | None
) -> dict[str, torch.Tensor]:
    return state_dict(names, weights, device=device)


def reply(
    message: Message,
    weights: Any,
    extra: Any = None,
    *,
    packer: ParameterPacker[Any] | str | None = None,
    num_examples: int | None = None,
    metrics: Mapping[str, Any] | MetricRecord | None = None,
    num_examples_key: str = NUM_EXAMPLES_KEY,
) -> Message:
    """The reply to ``message``: the weights, the packed extras and one MetricRecord.

    ``weights`` is a list of arrays, a ``state_dict`` (torch tensors on any device) or an
    ``ArrayRecord``; a ``state_dict`` keeps its names, and a list takes the instruction's
    weight names when it has as many arrays. ``packer`` defaults to the instruction's own
    (read from its frame); a reply without extras (``extra=None`` and no packer) is a plain
    Flower reply. ``metrics`` and ``num_examples`` (under ``"num-examples"``, which Flower's
    strategies weight by) go into the MetricRecord ``"metrics"``; a packer's scalar that
    Flower reads too (``clipping_bit`` -> ``norm_bit``) is mirrored there.
    """
    from flwr.app import Message, MetricRecord, RecordDict

    names, arrays = named_arrays(weights, what="reply weights")
    if names is None:
        incoming = list(_weights_record(message).keys()) if message.has_content() else []
        names = incoming if len(incoming) == len(arrays) else None
    resolved = _resolve(packer)
    if resolved is None and extra is not None:
        resolved = instruction_packer(message)
        if resolved is None:
            raise PackingError(
                "reply: expected packer= for the extra data, found an instruction without "
                "fedpack extras to take the packer from"
            )
    record = MetricRecord(dict(metrics) if metrics is not None else {})
    if num_examples is not None:
        record[num_examples_key] = int(num_examples)
    extras = None
    if resolved is not None:
        arrays, extras = pack_records(resolved, arrays, extra)
    content = RecordDict({ARRAYS_KEY: to_array_record(arrays, names), METRICS_KEY: record})
    if resolved is not None and extras is not None:
        mirror_scalars(content, resolved, extra, reply=True)
        parked = _PARKED.get()
        if parked is not None:
            parked.outgoing = extras
        else:
            content[EXTRA_KEY] = extras
    return Message(content=content, reply_to=message)
