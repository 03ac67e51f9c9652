"""Flower's Message API: packed payloads as a ``RecordDict`` of records.

Layout of a ``RecordDict`` written by :func:`to_record_dict`:

- ``"arrays"`` (:data:`ARRAYS_KEY`): an ``ArrayRecord`` holding the model weights only, under
  their names (a ``state_dict``'s or ``ArrayRecord``'s keys, or the keys given; a plain list
  gets ``"0"``, ``"1"``, ... as ``ArrayRecord(list_of_ndarrays)`` names them). This is the
  record Flower's built-in strategies aggregate, and ``to_torch_state_dict()`` reads.
- ``"fedpack.extra"`` (:data:`EXTRA_KEY`): an ``ArrayRecord`` with the packer's extra arrays in
  payload order under ``"0"``, ``"1"``, ..., then the frame under ``"frame"``
  (:data:`FRAME_KEY`) when the packer is framed.
- scalars that Flower's own mods also carry are mirrored where those mods put them (packers
  declare them with ``flower_scalar_keys``, compositions included): for ``clipping_bit``, a
  reply (client to server) gets ``"norm_bit"`` in its MetricRecord and an
  instruction (server to client) gets ``"clipping_norm"`` in its ConfigRecord. The packed
  value in ``"fedpack.extra"`` is the one :func:`from_record_dict` returns.

Each array becomes a Flower ``Array`` with ``stype="numpy.ndarray"``, ``dtype=str(a.dtype)``,
``shape=a.shape`` and ``data`` the exact bytes of ``np.save(a, allow_pickle=False)``: the same
``Array`` that ``Array(a)`` / ``Array.from_numpy_ndarray(a)`` builds, made with fedpack's codec
and read back as zero-copy views.

Flower's built-in Message API strategies accept exactly one ``ArrayRecord`` per reply: the
strategies of :mod:`fedpack.flwr` take the extras off themselves, and :func:`split_replies` (or
the raising :func:`pop_extras`) does it for hand-written ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._budget import DecodeBudget, budget_or_default
from .._errors import PackingError
from .._packer import ParameterPacker
from .._typing import NDArrays
from ..checks import describe, finite_scalar, shorten
from ..frame import decode_frame, is_frame, read_frame
from ._common import decoding_budget, located
from ._convert import Weights, named_arrays
from ._npy import STYPE, from_array, to_array

if TYPE_CHECKING:
    from flwr.app import ArrayRecord, Message, RecordDict

__all__ = [
    "ARRAYS_KEY",
    "CONFIG_KEY",
    "EXTRA_KEY",
    "FRAME_KEY",
    "KEY_CLIPPING_NORM",
    "KEY_NORM_BIT",
    "METRICS_KEY",
    "SCALAR_KEYS",
    "STYPE",
    "from_array",
    "from_array_record",
    "from_record_dict",
    "extras_record",
    "mirror_scalars",
    "pack_records",
    "pop_extras",
    "record_packer",
    "scalar_mirrors",
    "to_array",
    "to_array_record",
    "to_record_dict",
    "unpack_records",
]

T = TypeVar("T")

#: The ArrayRecord Flower's built-in strategies read and write: the weights.
ARRAYS_KEY = "arrays"
#: The ArrayRecord holding the extra arrays and the frame.
EXTRA_KEY = "fedpack.extra"
#: The key of the frame inside the extra ArrayRecord.
FRAME_KEY = "frame"
#: The MetricRecord created for a reply's mirrored scalar when the RecordDict has none.
METRICS_KEY = "metrics"
#: The ConfigRecord created for an instruction's mirrored scalar when the RecordDict has none.
CONFIG_KEY = "config"
#: Flower's key of the clipping bit a client reports (its DP adaptive-clipping mods).
KEY_NORM_BIT = "norm_bit"
#: Flower's key of the clipping bound the server sends (its DP clipping strategies).
KEY_CLIPPING_NORM = "clipping_norm"
#: packer name -> (MetricRecord key in replies, ConfigRecord key in instructions) of the scalar,
#: for packers that do not declare :attr:`fedpack.ParameterPacker.flower_scalar_keys` (kept for
#: compatibility; the ``clipping_bit`` packer declares its keys itself).
SCALAR_KEYS: dict[str, tuple[str, str]] = {}


def to_array_record(arrays: Weights, keys: Sequence[str] | None = None) -> ArrayRecord:
    """An ``ArrayRecord`` of ``arrays`` under their names.

    ``arrays`` is a list of numpy arrays (or torch tensors), a ``state_dict`` / mapping of
    names to arrays or tensors, or an ``ArrayRecord``. The keys are ``keys`` when given, else
    the mapping's own names, else ``"0"``, ``"1"``, ... (as ``ArrayRecord(list)`` names them).
    Tensors become CPU numpy arrays without a copy when already on the CPU.
    """
    from flwr.app import ArrayRecord

    own_names, checked = named_arrays(arrays, what="to_array_record")
    if keys is not None:
        names = list(keys)
    elif own_names is not None:
        names = own_names
    else:
        names = [str(i) for i in range(len(checked))]
    if len(names) != len(checked) or len(set(names)) != len(names):
        raise PackingError(
            f"to_array_record: expected {len(checked)} distinct keys, found {len(names)} keys "
            f"({len(set(names))} distinct)"
        )
    return ArrayRecord({name: to_array(a) for name, a in zip(names, checked, strict=True)})


def from_array_record(
    record: ArrayRecord,
    *,
    writable: bool = False,
    what: str = "ArrayRecord",
    budget: DecodeBudget | None = None,
) -> NDArrays:
    """The arrays of an ``ArrayRecord`` in key order, as zero-copy views by default."""
    items = getattr(record, "items", None)
    if items is None:
        raise PackingError(f"{what}: expected a flwr ArrayRecord, found {describe(record)}")
    budget_or_default(budget).check_count(len(record), what=what)
    return [
        from_array(value, writable=writable, where=f"{what}[{shorten(key, 60)}]", budget=budget)
        for key, value in items()
    ]


def to_record_dict(
    packer: ParameterPacker[T],
    weights: Weights,
    extra: T,
    *,
    record_dict: RecordDict | None = None,
    reply: bool = False,
    keys: Sequence[str] | None = None,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
) -> RecordDict:
    """Pack ``weights`` and ``extra`` into a ``RecordDict`` (see the module docstring).

    ``weights`` is a list of arrays, a ``state_dict`` (numpy arrays or torch tensors, on any
    device) or an ``ArrayRecord``; the weights keep their names as the ``"arrays"`` record's
    keys (``keys`` overrides them; a plain list without ``keys`` gets ``"0"``, ``"1"``, ...).
    ``record_dict`` (e.g. a reply's content holding its MetricRecord) is filled in place and
    returned; by default a new one is made. ``reply=True`` marks a client-to-server message,
    which decides where a mirrored scalar goes (MetricRecord, else ConfigRecord).
    """
    if arrays_key == extra_key:
        raise PackingError(
            f"to_record_dict: arrays_key and extra_key must differ, found both {arrays_key!r} "
            "(the extra record would overwrite the weights)"
        )
    from flwr.app import RecordDict

    names, arrays = named_arrays(weights, what="weights")
    if keys is not None:
        names = list(keys)
    sent, extra_record = pack_records(packer, arrays, extra)
    out = RecordDict() if record_dict is None else record_dict
    out[arrays_key] = to_array_record(sent, names)
    out[extra_key] = extra_record
    mirror_scalars(out, packer, extra, reply=reply)
    return out


def extras_record(packer: ParameterPacker[T], weights: NDArrays, extra: T) -> ArrayRecord:
    """The ``"fedpack.extra"`` ArrayRecord of ``packer.pack_parameters(weights, extra)``.

    It holds the packed arrays after the weights under ``"0"``, ``"1"``, ..., then the frame
    under ``"frame"`` when the packer is framed. Packing checks ``extra`` against ``weights``.
    """
    return pack_records(packer, weights, extra)[1]


def pack_records(
    packer: ParameterPacker[T], weights: NDArrays, extra: T
) -> tuple[NDArrays, ArrayRecord]:
    """``(weights as sent, extras record)`` of ``packer.pack_parameters(weights, extra)``.

    The weights as sent are the given arrays themselves, except for a packer that declares
    ``transforms_weights`` (quantization, compression), whose weights section is sent instead.
    """
    from flwr.app import ArrayRecord

    packed = packer.pack_parameters(weights, extra)
    tail = packed[len(weights) :]
    has_frame = packer.framed and bool(tail) and is_frame(tail[-1])
    extra_arrays = tail[:-1] if has_frame else tail
    record = ArrayRecord({str(i): to_array(a) for i, a in enumerate(extra_arrays)})
    if has_frame:
        record[FRAME_KEY] = to_array(tail[-1])
    return packed[: len(weights)], record


def scalar_mirrors(packer: ParameterPacker[Any], extra: Any) -> list[tuple[str, str, float]]:
    """``(reply_metric_key, instruction_config_key, value)`` of every scalar Flower also reads.

    A packer declares them with :attr:`fedpack.ParameterPacker.flower_scalar_keys`; a
    composition contributes each part's (e.g. ``scaffold+clipping_bit`` mirrors its clipping
    bit as ``norm_bit`` / ``clipping_norm``). :data:`SCALAR_KEYS` covers packers by name that
    do not declare them.
    """
    parts: Sequence[ParameterPacker[Any]] | None = getattr(packer, "parts", None)
    if parts is not None and isinstance(extra, (tuple, list)) and len(extra) == len(parts):
        pairs = list(zip(parts, extra, strict=True))
    else:
        pairs = [(packer, extra)]
    out: list[tuple[str, str, float]] = []
    for part, value in pairs:
        keys = part.flower_scalar_keys or SCALAR_KEYS.get(part.name)
        if keys is not None:
            out.append((keys[0], keys[1], finite_scalar(value, what=f"{part.name}: extra")))
    return out


def mirror_scalars(
    record_dict: RecordDict, packer: ParameterPacker[Any], extra: Any, *, reply: bool
) -> None:
    """Write :func:`scalar_mirrors` into ``record_dict``'s MetricRecord (reply) or ConfigRecord.

    The first record of that kind is used (Flower's mods and strategies read the only one);
    one is created under ``"metrics"`` / ``"config"`` when there is none.
    """
    from flwr.app import ConfigRecord, MetricRecord

    for metric_key, config_key, value in scalar_mirrors(packer, extra):
        if reply:
            metrics = next(iter(record_dict.metric_records.values()), None)
            if metrics is None:
                metrics = record_dict[METRICS_KEY] = MetricRecord()
            metrics[metric_key] = value
        else:
            config = next(iter(record_dict.config_records.values()), None)
            if config is None:
                config = record_dict[CONFIG_KEY] = ConfigRecord()
            config[config_key] = value


@overload
def from_record_dict(
    record_dict: RecordDict,
    packer: ParameterPacker[T],
    *,
    writable: bool = False,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, T]: ...


@overload
def from_record_dict(
    record_dict: RecordDict,
    packer: None = None,
    *,
    writable: bool = False,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, Any]: ...


def from_record_dict(
    record_dict: RecordDict,
    packer: ParameterPacker[Any] | None = None,
    *,
    writable: bool = False,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, Any]:
    """Read ``(weights, extra)`` back from a ``RecordDict`` written by :func:`to_record_dict`.

    Without ``packer`` the frame in the extra record names the packer. Every array is
    validated within ``budget`` (default: the packer's, else the default budget); a missing
    record or frame, a frame that is not last, or an ``arrays_key`` record that does not hold
    exactly the weights (the frame's weights section) raises :class:`fedpack.PackingError`.
    """
    weights, extra, _ = packed_record_dict(
        record_dict,
        packer,
        writable=writable,
        arrays_key=arrays_key,
        extra_key=extra_key,
        budget=budget,
    )
    return weights, extra


def packed_record_dict(
    record_dict: RecordDict,
    packer: ParameterPacker[Any] | None = None,
    *,
    writable: bool = False,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, Any, ParameterPacker[Any]]:
    """:func:`from_record_dict`, also returning the packer that decoded the payload."""
    if arrays_key == extra_key:
        raise PackingError(
            f"from_record_dict: arrays_key and extra_key must differ, found both {arrays_key!r}"
        )
    limits = decoding_budget(packer, budget)
    array_records = getattr(record_dict, "array_records", None)
    if array_records is None:
        raise PackingError(f"expected a flwr RecordDict, found {describe(record_dict)}")
    for key in (arrays_key, extra_key):
        if key not in array_records:
            raise PackingError(
                f"expected an ArrayRecord {key!r} in the RecordDict, found the ArrayRecords "
                f"{sorted(array_records)}"
            )
    return unpacked_records(
        array_records[arrays_key],
        array_records[extra_key],
        packer,
        writable=writable,
        arrays_key=arrays_key,
        extra_key=extra_key,
        budget=limits,
    )


def unpack_records(
    arrays: ArrayRecord,
    extras: ArrayRecord,
    packer: ParameterPacker[Any] | None = None,
    *,
    writable: bool = False,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, Any]:
    """``(weights, extra)`` from the weights record and the extras record of a message.

    Without ``packer`` the frame in ``extras`` names the packer. Every array is validated
    within ``budget`` (default: the packer's, else the default budget), and ``arrays`` must
    hold exactly the payload's weights section. The record keys are only used in error
    messages.
    """
    weights, extra, _ = unpacked_records(
        arrays,
        extras,
        packer,
        writable=writable,
        arrays_key=arrays_key,
        extra_key=extra_key,
        budget=budget,
    )
    return weights, extra


def unpacked_records(
    arrays: ArrayRecord,
    extras: ArrayRecord,
    packer: ParameterPacker[Any] | None,
    *,
    writable: bool = False,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, Any, ParameterPacker[Any]]:
    """:func:`unpack_records`, also returning the packer used; the frame is read once."""
    from .._api import packer_for_frame

    limits = decoding_budget(packer, budget)
    weights = from_array_record(arrays, writable=writable, what=arrays_key, budget=limits)
    extra_keys = list(extras.keys())
    if FRAME_KEY in extra_keys[:-1]:
        raise PackingError(
            f"{extra_key}: expected the {FRAME_KEY!r} array last, found it at position "
            f"{extra_keys.index(FRAME_KEY)} of {len(extra_keys)}"
        )
    payload = weights + from_array_record(extras, writable=writable, what=extra_key, budget=limits)
    frame = None
    if (extra_keys and extra_keys[-1] == FRAME_KEY) or packer is None:
        frame = read_frame(payload, budget=limits, where=f"{extra_key}[{FRAME_KEY!r}]")
        _check_split(frame.sections[0][1], len(weights), arrays_key, extra_key)
    used = packer if packer is not None else packer_for_frame(frame, budget=limits)  # type: ignore[arg-type]
    unpacked, extra = used.decode(*used.split(payload, frame=frame))
    if frame is None:  # no frame: the packer's split
        _check_split(len(unpacked), len(weights), arrays_key, extra_key)
    return unpacked, extra, used


def _check_split(expected: int, found: int, arrays_key: str, extra_key: str) -> None:
    """The weights record must hold exactly the payload's weights section."""
    if expected != found:
        raise PackingError(
            f"{arrays_key}: expected exactly the {expected} weight arrays of the payload, found "
            f"{found}; the split between {arrays_key!r} and {extra_key!r} does not match the "
            "payload's weights section"
        )


def record_packer(
    extras: ArrayRecord, *, extra_key: str = EXTRA_KEY, budget: DecodeBudget | None = None
) -> ParameterPacker[Any]:
    """The packer that wrote an extras record, rebuilt from its frame (framed payloads only).

    The frame is read within ``budget`` (default :data:`fedpack.DEFAULT_BUDGET`), which the
    rebuilt packer keeps, tightened by the frame's options.
    """
    from .._api import packer_for_frame

    if FRAME_KEY not in extras:
        raise PackingError(
            f"{extra_key}: expected a {FRAME_KEY!r} array naming the packer, found the keys "
            f"{list(extras.keys())}; pass the packer explicitly for an unframed payload"
        )
    where = f"{extra_key}[{FRAME_KEY!r}]"
    limits = decoding_budget(None, budget)
    frame_array = from_array(extras[FRAME_KEY], where=where, budget=limits)
    return packer_for_frame(decode_frame(frame_array, where=where, budget=limits), budget=limits)


def pop_extras(
    replies: Iterable[Message],
    packer: ParameterPacker[T] | None = None,
    *,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
    budget: DecodeBudget | None = None,
) -> list[tuple[Message, T]]:
    """Read and remove the extra record of every reply, so a stock strategy sees only weights.

    Returns ``(message, extra)`` for each reply without an error, in order; the messages are
    changed in place (their ``extra_key`` record is deleted) and can then be given to e.g.
    ``FedAvg.aggregate_train``. Replies with an error are left alone for the strategy to log.

    All or nothing: every reply is read first, and only when all of them are valid are the
    records removed. A bad reply raises :class:`fedpack.PackingError` naming its index and
    node, and no message is changed. To leave bad replies out instead of raising, use
    :func:`fedpack.flwr.split_replies`.
    """
    read: list[tuple[Message, T]] = []
    if arrays_key == extra_key:
        raise PackingError(
            f"pop_extras: arrays_key and extra_key must differ, found both {arrays_key!r}"
        )
    for index, message in enumerate(replies):
        if message.has_error():
            continue
        try:
            _, extra = from_record_dict(
                message.content, packer, arrays_key=arrays_key, extra_key=extra_key, budget=budget
            )
        except PackingError as exc:
            src = getattr(getattr(message, "metadata", None), "src_node_id", "?")
            raise located(exc, f"reply {index} (node {src})") from exc
        read.append((message, extra))
    for message, _ in read:
        del message.content[extra_key]
    return read
