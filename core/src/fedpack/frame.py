"""The trailing frame that makes a packed payload self-describing.

One 1-D ``uint8`` array ends a framed payload: magic, format version, CRC-32 and a strict JSON
body ``{"packer", "sections", "options", "meta"}``. The README's "Wire format" section is the
specification; decoding is bounded by the receiver's :class:`fedpack.DecodeBudget`, never
evaluates or unpickles anything, and refuses duplicate JSON keys and unknown versions.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._budget import DEFAULT_BUDGET, DecodeBudget, budget_or_default
from ._errors import PackingError
from ._names import NAME_PATTERN
from ._typing import JSONValue, NDArray
from .checks import describe, shorten

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_FRAME_BYTES",
    "Frame",
    "decode_frame",
    "encode_frame",
    "is_frame",
    "read_frame",
]

#: The first bytes of every frame array.
MAGIC = b"FEDPACK\x00"
#: The format version this fedpack writes; also the only one it reads.
FORMAT_VERSION = 1
#: Frames larger than this are refused before any parsing (1 MiB): the default budget's
#: ``max_frame_bytes``.
MAX_FRAME_BYTES = 1 << 20

_HEADER = len(MAGIC) + 1 + 4
_KEYS = frozenset({"packer", "sections", "options", "meta"})


@dataclass(frozen=True)
class Frame:
    """The decoded content of a frame: who packed the payload and how it splits."""

    #: Registry name of the packer that produced the payload.
    packer: str
    #: ``(section name, number of arrays)`` in payload order; the first section is the weights.
    sections: tuple[tuple[str, int], ...]
    #: Constructor options for :func:`fedpack.get_packer` on the receiving side.
    options: Mapping[str, JSONValue] = field(default_factory=dict)
    #: Per-payload facts for the packer's decoder.
    meta: Mapping[str, JSONValue] = field(default_factory=dict)

    @property
    def array_count(self) -> int:
        """Number of arrays the payload holds before the frame."""
        return sum(count for _, count in self.sections)


def encode_frame(frame: Frame) -> NDArray:
    """Encode ``frame`` as the 1-D ``uint8`` array that ends a framed payload."""
    _check_name(frame.packer, where="frame packer name")
    _check_sections(frame.sections)
    import json  # here, not at module level: keeps ``import fedpack`` fast (cold start)

    try:
        body = json.dumps(
            {
                "packer": frame.packer,
                "sections": [[name, count] for name, count in frame.sections],
                "options": dict(frame.options),
                "meta": dict(frame.meta),
            },
            separators=(",", ":"),
            sort_keys=True,
            allow_nan=False,
            ensure_ascii=False,
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise PackingError(
            f"frame for packer {frame.packer!r}: options and meta must be JSON values "
            f"(str, int, finite float, bool, None, lists, str-keyed dicts): {exc}"
        ) from exc
    data = MAGIC + bytes([FORMAT_VERSION]) + zlib.crc32(body).to_bytes(4, "little") + body
    if len(data) > MAX_FRAME_BYTES:
        raise PackingError(
            f"frame for packer {frame.packer!r}: expected at most {MAX_FRAME_BYTES} bytes, "
            f"found {len(data)}"
        )
    return np.frombuffer(bytearray(data), dtype=np.uint8)


def is_frame(array: object) -> bool:
    """Tell cheaply whether ``array`` looks like a frame (1-D ``uint8`` starting with the magic)."""
    return (
        isinstance(array, np.ndarray)
        and array.dtype == np.uint8
        and array.ndim == 1
        and array.size >= _HEADER
        and array[: len(MAGIC)].tobytes() == MAGIC
    )


def read_frame(
    packed: Sequence[NDArray], *, budget: DecodeBudget | None = None, where: str | None = None
) -> Frame:
    """Decode the frame at the end of ``packed`` (within ``budget``), check the counts add up.

    A payload without a frame gets an error that says so; ``where`` names the frame in messages.
    """
    limits = DEFAULT_BUDGET if budget is None else budget_or_default(budget)
    if len(packed) > limits.max_arrays:
        limits.check_count(len(packed), what="payload")
    if len(packed) == 0:
        raise PackingError(
            "expected a framed payload ending in a fedpack frame, found an empty list"
        )
    last = packed[-1]
    if not is_frame(last):
        raise PackingError(
            "expected a fedpack frame as the last array (1-D uint8 starting with "
            f"{MAGIC!r}), found {describe(last)} at index {len(packed) - 1}; the payload was "
            "not packed by a framed fedpack packer (use framed=False for FL4Health's layout)"
        )
    frame = decode_frame(last, where=where or f"index {len(packed) - 1}", budget=limits)
    if frame.array_count != len(packed) - 1:
        raise PackingError(
            f"frame of packer {frame.packer!r} describes {frame.array_count} arrays "
            f"({format_sections(frame.sections)}), found {len(packed) - 1} before the frame"
        )
    return frame


def decode_frame(
    array: NDArray, *, where: str = "frame", budget: DecodeBudget | None = None
) -> Frame:
    """Decode and validate one frame array within ``budget`` (default: the default budget)."""
    limits = DEFAULT_BUDGET if budget is None else budget_or_default(budget)
    at = f"frame ({where})"
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 1:
        raise PackingError(f"{at}: expected a 1-D uint8 array, found {describe(array)}")
    if array.size > limits.max_frame_bytes:
        raise PackingError(
            f"{at}: expected at most {limits.max_frame_bytes} bytes (budget max_frame_bytes), "
            f"found {array.size}"
        )
    data = array.tobytes()
    if len(data) < _HEADER or data[: len(MAGIC)] != MAGIC:
        raise PackingError(
            f"{at}: expected the magic {MAGIC!r} and a {_HEADER}-byte header, "
            f"found {data[: len(MAGIC)]!r} in {len(data)} bytes"
        )
    if data[len(MAGIC)] != FORMAT_VERSION:
        raise PackingError(
            f"{at}: format version {data[len(MAGIC)]} is not supported; this fedpack reads "
            f"version {FORMAT_VERSION} (upgrade fedpack to read newer payloads)"
        )
    body, crc = data[_HEADER:], int.from_bytes(data[len(MAGIC) + 1 : _HEADER], "little")
    if zlib.crc32(body) != crc:
        raise PackingError(
            f"{at}: checksum mismatch (expected {crc:#010x}, found {zlib.crc32(body):#010x}); "
            "the frame is corrupted"
        )
    try:
        content = _json_decoder().decode(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PackingError(f"{at}: expected a UTF-8 JSON object: {shorten(str(exc))}") from None
    return _frame_from_json(content, at=at, budget=limits)


_DECODER: Any = None


def _json_decoder() -> Any:
    """The frame's strict JSON decoder, built once (``json`` is imported on first use only)."""
    global _DECODER
    if _DECODER is None:
        import json  # here, not at module level: keeps ``import fedpack`` fast (cold start)

        _DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    return _DECODER


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of the frame's JSON: a key given twice is refused."""
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise ValueError(f"duplicate key {shorten(twice)} in a JSON object")
    return out


def _frame_from_json(content: object, *, at: str, budget: DecodeBudget) -> Frame:
    if not isinstance(content, dict) or set(content) != _KEYS:
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise PackingError(
            f"{at}: expected a JSON object with keys {sorted(_KEYS)}, found {shorten(found)}"
        )
    packer, raw, options, meta = (content[key] for key in ("packer", "sections", "options", "meta"))
    if not isinstance(packer, str):
        raise PackingError(f"{at}: expected a str packer name, found {describe(packer)}")
    _check_name(packer, where=f"{at} packer name", limit=budget.max_name_length)
    if not isinstance(raw, list):
        raise PackingError(
            f"{at}: expected a list of [name, count] sections, found {describe(raw)}"
        )
    if len(raw) > budget.max_sections:
        raise PackingError(
            f"{at}: expected at most {budget.max_sections} sections (budget max_sections), "
            f"found {len(raw)}"
        )
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)) or (
            not isinstance(item[1], int) or isinstance(item[1], bool)
        ):
            raise PackingError(
                f"{at}: expected each section as [name, count], found {shorten(item)}"
            )
    sections = tuple((name, count) for name, count in raw)
    _check_sections(sections, where=at, limit=budget.max_name_length)
    total = sum(count for _, count in sections)
    if total > budget.max_arrays:
        raise PackingError(
            f"{at}: expected at most {budget.max_arrays} arrays (budget max_arrays), "
            f"found sections describing {total}"
        )
    for key, value in (("options", options), ("meta", meta)):
        if not isinstance(value, dict):
            raise PackingError(f"{at}: expected {key} to be a JSON object, found {describe(value)}")
    return Frame(packer, sections, options, meta)


def _check_name(name: str, *, where: str, limit: int | None = None) -> None:
    if limit is not None and len(name) > limit:
        raise PackingError(
            f"{where}: expected a name of at most {limit} characters (budget max_name_length), "
            f"found {len(name)} characters: {shorten(name, 40)}"
        )
    if not NAME_PATTERN.match(name):
        raise PackingError(f"{where}: expected a name of [a-z0-9_], found {shorten(name)}")


def _check_sections(
    sections: tuple[tuple[str, int], ...], *, where: str = "frame", limit: int | None = None
) -> None:
    if not sections or sections[0][0] != "weights":
        found = format_sections(sections)
        raise PackingError(f"{where}: expected the first section to be 'weights', found {found}")
    for name, count in sections:
        _check_name(name, where=f"{where} section name", limit=limit)
        if count < 0:
            raise PackingError(f"{where}: section {shorten(name)} has a negative count {count}")
    names = [name for name, _ in sections]
    if len(set(names)) != len(names):
        raise PackingError(f"{where}: expected unique section names, found {shorten(names)}")


def format_sections(sections: Sequence[tuple[str, int]]) -> str:
    """``weights=3, control_variates=3``: section counts for a message, bounded in length."""
    text = ", ".join(f"{name}={count}" for name, count in sections[:20]) or "no sections"
    if len(sections) > 20:
        text += f", ... ({len(sections)} sections)"
    return text if len(text) <= 200 else text[:200] + "..."
