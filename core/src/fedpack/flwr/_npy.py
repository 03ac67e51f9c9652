"""Fast, safe codec for the ``.npy`` byte format used by Flower.

Flower ships every ndarray as the bytes of ``np.save(buf, arr, allow_pickle=False)`` and
decodes them with ``np.load(BytesIO(b), allow_pickle=False)``. This module produces exactly
the same bytes with a single allocation and a single copy of the payload, and decodes them
into read-only views over the received buffer without copying at all.

Decoding never evaluates code and never unpickles anything: the header is parsed with
:func:`ast.literal_eval` after a bound on its length, every field is validated, dtypes that
hold Python objects are refused, and the payload length must match the header exactly.
"""

from __future__ import annotations

import ast
import math
import re
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.lib.format as npformat
import numpy.typing as npt

from .._budget import DEFAULT_BUDGET, DecodeBudget, budget_or_default
from .._errors import PackingError
from .._typing import NDArray
from ..checks import describe, shorten

if TYPE_CHECKING:
    from flwr.app import Array

__all__ = [
    "STYPE",
    "from_array",
    "to_array",
    "MAX_HEADER_SIZE",
    "decode_array",
    "decode_arrays",
    "encode_array",
    "encode_arrays",
]

BytesLike = bytes | bytearray | memoryview

#: Largest header (in bytes, after the length field) that :func:`decode_array` accepts.
#: This is the limit ``np.load`` applies when ``allow_pickle=False``.
MAX_HEADER_SIZE = 10_000
#: The ``Array.stype`` of numpy-serialized arrays (Flower's ``SType.NUMPY``).
STYPE = "numpy.ndarray"

_MAGIC_PREFIX = b"\x93NUMPY"
_MAGIC_LEN = len(_MAGIC_PREFIX) + 2
_ARRAY_ALIGN = 64
# numpy leaves room in the header so that the growth axis can be rewritten in place.
_GROWTH_AXIS_MAX_DIGITS = 21
# version -> (struct format of the header length field, header text encoding)
_HEADER_SIZE_INFO: dict[tuple[int, int], tuple[str, str]] = {
    (1, 0): ("<H", "latin1"),
    (2, 0): ("<I", "latin1"),
    (3, 0): ("<I", "utf8"),
}
_EXPECTED_KEYS = frozenset({"descr", "fortran_order", "shape"})
# The header np.save writes for a non-structured dtype, e.g.
# "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }" + spaces + newline.
# Matches only text that ast.literal_eval would turn into the same dict; anything else
# (structured dtypes, other writers) takes the literal_eval path.
_INT = r"(?:0|[1-9][0-9]{0,18})"
_CANONICAL_HEADER = re.compile(
    r"\{'descr': '([<>|=]?[A-Za-z][A-Za-z0-9]{0,7}(?:\[[0-9]{0,4}[A-Za-z]{1,2}\])?)', "
    r"'fortran_order': (True|False), "
    rf"'shape': \(((?:{_INT},|{_INT}(?:, {_INT})+,?)?)\), \}} *\n?"
)
# What numpy raises on a malformed dtype descriptor.
_DESCR_ERRORS = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    MemoryError,
)


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------


def _wrap_header(header: str, version: tuple[int, int]) -> bytes:
    """Prefix ``header`` with magic and length and pad it like numpy does.

    Raises ``UnicodeEncodeError`` or ``struct.error`` when the header does not fit
    ``version``.
    """
    fmt, encoding = _HEADER_SIZE_INFO[version]
    raw = header.encode(encoding)
    hlen = len(raw) + 1
    padlen = _ARRAY_ALIGN - ((_MAGIC_LEN + struct.calcsize(fmt) + hlen) % _ARRAY_ALIGN)
    prefix = _MAGIC_PREFIX + bytes(version) + struct.pack(fmt, hlen + padlen)
    return prefix + raw + b" " * padlen + b"\n"


def _build_header(shape: tuple[int, ...], fortran_order: bool, descr: object) -> bytes:
    """Build the complete npy header exactly as ``np.save`` writes it.

    The header dict is written with sorted keys, followed by spare room for the growth
    axis, and wrapped with the oldest format version (1.0, 2.0, 3.0) that can hold it.
    """
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran_order!r}, 'shape': {shape!r}, }}"
    if shape:
        growth = shape[-1] if fortran_order else shape[0]
        text += " " * (_GROWTH_AXIS_MAX_DIGITS - len(repr(growth)))
    try:
        return _wrap_header(text, (1, 0))
    except (UnicodeEncodeError, struct.error):
        pass
    try:
        return _wrap_header(text, (2, 0))
    except UnicodeEncodeError:
        pass
    try:
        return _wrap_header(text, (3, 0))
    except struct.error as exc:
        raise PackingError(
            f"expected an npy header of at most {2**32 - 1} bytes, "
            f"found a header of {len(text.encode('utf8'))} bytes for dtype {descr!r}"
        ) from exc


def _check_encodable(dtype: np.dtype[Any]) -> None:
    """Refuse dtypes that ``np.save(..., allow_pickle=False)`` refuses."""
    if dtype.hasobject:
        raise PackingError(
            f"expected an array without Python objects, found dtype {dtype!r}; "
            "object arrays cannot be encoded without pickle"
        )
    if not getattr(type(dtype), "_legacy", True):
        raise PackingError(
            f"expected a built-in numpy dtype, found user-defined dtype {dtype!r}; "
            "it cannot be encoded without pickle"
        )


def _raw_bytes(arr: npt.NDArray[Any]) -> memoryview:
    """Return a flat byte view over a C-contiguous array without copying."""
    if arr.dtype.itemsize == 0 or arr.size == 0:
        return memoryview(b"")
    # view as a base ndarray first: subclasses (matrix, masked arrays) reshape differently
    return arr.view(np.ndarray).reshape(-1).view(np.uint8).data


def encode_array(arr: npt.NDArray[Any]) -> bytes:
    """Encode one array into the exact bytes of ``np.save(buf, arr, allow_pickle=False)``.

    The header (magic, version, header dict, padding to 64 bytes) is byte-identical to
    numpy's. C-contiguous arrays are written as they are, Fortran-contiguous arrays in
    Fortran order with ``fortran_order: True``, and any other layout in C order. The
    result is built with one allocation and one copy of the payload; arrays that are
    neither C- nor Fortran-contiguous need one extra copy to be made contiguous.

    Raises:
        PackingError: if the dtype contains Python objects or is a user-defined dtype.
    """
    a = np.asanyarray(arr)
    _check_encodable(a.dtype)
    if a.flags.c_contiguous:
        fortran_order = False
        data = _raw_bytes(a)
    elif a.flags.f_contiguous:
        fortran_order = True
        data = _raw_bytes(a.T)
    else:
        fortran_order = False
        data = _raw_bytes(np.ascontiguousarray(a))
    descr = npformat.dtype_to_descr(a.dtype)
    header = _build_header(tuple(int(n) for n in a.shape), fortran_order, descr)
    return b"".join((header, data))


def encode_arrays(arrs: Sequence[npt.NDArray[Any]]) -> list[bytes]:
    """Encode several arrays with :func:`encode_array`; errors name the array index."""
    out: list[bytes] = []
    for index, arr in enumerate(arrs):
        try:
            out.append(encode_array(arr))
        except PackingError as exc:
            raise PackingError(f"array {index}: {exc}") from exc
    return out


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------


def _as_byte_view(buf: object) -> memoryview:
    """Return a flat, C-contiguous byte memoryview over ``buf``."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise PackingError(f"expected bytes, bytearray or memoryview, found {type(buf).__name__}")
    view = memoryview(buf)
    if not view.c_contiguous:
        raise PackingError("expected a C-contiguous buffer, found a non-contiguous memoryview")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _header_dict(text: str, start: int) -> object:
    """Evaluate the header literal without running code.

    A regex fast path reads numpy's canonical form; anything else goes to
    :func:`ast.literal_eval`, which only builds literals (never calls or looks names up).
    """
    fast = _CANONICAL_HEADER.fullmatch(text)
    if fast is not None:
        descr, fortran_order, shape = fast.groups()
        return {
            "descr": descr,
            "fortran_order": fortran_order == "True",
            "shape": tuple(int(n) for n in shape.split(",") if n),
        }
    try:
        return ast.literal_eval(text)
    # Warning: odd escapes warn while parsing, and raise under "-W error".
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, Warning):
        raise PackingError(
            f"expected an npy header dict literal at offset {start}, "
            f"found unparsable text {text[:80]!r}"
        ) from None


def _parse_header(view: memoryview) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """Parse and validate an npy header; return shape, fortran order, dtype, data offset."""
    total = view.nbytes
    if total < _MAGIC_LEN:
        raise PackingError(
            f"expected at least {_MAGIC_LEN} bytes of npy magic, found {total} bytes"
        )
    magic = bytes(view[: len(_MAGIC_PREFIX)])
    if magic != _MAGIC_PREFIX:
        raise PackingError(f"expected npy magic {_MAGIC_PREFIX!r} at offset 0, found {magic!r}")
    version = (view[_MAGIC_LEN - 2], view[_MAGIC_LEN - 1])
    info = _HEADER_SIZE_INFO.get(version)
    if info is None:
        raise PackingError(
            "expected npy format version 1.0, 2.0 or 3.0 at offset 6, "
            f"found {version[0]}.{version[1]}"
        )
    fmt, encoding = info
    len_size = struct.calcsize(fmt)
    if total < _MAGIC_LEN + len_size:
        raise PackingError(
            f"expected a {len_size}-byte header length at offset {_MAGIC_LEN}, "
            f"found only {total - _MAGIC_LEN} bytes"
        )
    (header_len,) = struct.unpack(fmt, view[_MAGIC_LEN : _MAGIC_LEN + len_size])
    if header_len > MAX_HEADER_SIZE:
        raise PackingError(
            f"expected an npy header of at most {MAX_HEADER_SIZE} bytes, "
            f"found a header length of {header_len} bytes at offset {_MAGIC_LEN}"
        )
    start = _MAGIC_LEN + len_size
    offset = start + header_len
    if total < offset:
        raise PackingError(
            f"expected a {header_len}-byte npy header at offset {start}, "
            f"found only {total - start} bytes (truncated header)"
        )
    try:
        text = bytes(view[start:offset]).decode(encoding)
    except UnicodeDecodeError as exc:
        raise PackingError(
            f"expected an npy header encoded as {encoding}, found undecodable bytes "
            f"at offset {start + exc.start}"
        ) from None
    header = _header_dict(text, start)
    if not isinstance(header, dict):
        raise PackingError(
            f"expected an npy header dict at offset {start}, found {type(header).__name__}"
        )
    if set(header) != _EXPECTED_KEYS:
        raise PackingError(
            f"expected npy header keys {sorted(_EXPECTED_KEYS)}, "
            f"found {shorten(sorted(map(repr, header)))}"
        )
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise PackingError(
            f"expected a tuple of non-negative ints as npy shape, found {shorten(shape)}"
        )
    fortran_order = header["fortran_order"]
    if not isinstance(fortran_order, bool):
        raise PackingError(f"expected a bool as npy fortran_order, found {shorten(fortran_order)}")
    descr = header["descr"]
    try:
        dtype = npformat.descr_to_dtype(descr)
    except _DESCR_ERRORS:
        raise PackingError(
            f"expected a valid dtype descriptor in the npy header, found {shorten(descr)}"
        ) from None
    if dtype.hasobject:
        raise PackingError(
            f"expected a dtype without Python objects, found {shorten(descr)} in the npy header; "
            "object arrays are never decoded"
        )
    return shape, fortran_order, dtype, offset


def _short_shape(shape: tuple[int, ...]) -> str:
    """A shape for a message: whole when short, else its start and its rank."""
    if len(shape) <= 8:
        return str(shape)
    return f"({', '.join(map(str, shape[:4]))}, ...) ({len(shape)} dimensions)"


def decode_array(
    buf: BytesLike, *, writable: bool = False, budget: DecodeBudget | None = None
) -> npt.NDArray[Any]:
    """Decode the bytes of one ``.npy`` array (as written by ``np.save``).

    By default the result is a read-only view over ``buf``: nothing is copied, so ``buf``
    must stay unchanged while the array is in use. With ``writable=True`` the payload is
    copied once into a fresh, writable array that does not share memory with ``buf``.

    The header is bounded to :data:`MAX_HEADER_SIZE` bytes and parsed without evaluating
    code; dtypes holding Python objects are refused; the payload must be exactly
    ``prod(shape) * itemsize`` bytes long. The shape is checked against ``budget`` (default
    :data:`fedpack.DEFAULT_BUDGET`: rank, elements) and zero-width dtypes (``<U0``, ``S0``,
    ``V0``, which numpy would silently widen) are refused, before anything is allocated.

    Raises:
        PackingError: if the bytes are not a valid, object-free npy array.
    """
    limits = DEFAULT_BUDGET if budget is None else budget_or_default(budget)
    return _decode(buf, writable, limits, limits.max_rank, limits.max_elements)


def _decode(
    buf: BytesLike, writable: bool, limits: DecodeBudget, max_rank: int, max_elements: int
) -> npt.NDArray[Any]:
    """:func:`decode_array` with the budget's limits already read (the per-array hot path)."""
    view = _as_byte_view(buf)
    shape, fortran_order, dtype, offset = _parse_header(view)
    count = math.prod(shape)
    # O(1) in the common case: a positive count within max_elements bounds every dimension.
    if (
        count > max_elements
        or len(shape) > max_rank
        or (not count and shape and max(shape) > max_elements)
    ):
        limits.check_shape(shape, what="npy shape")  # raises, saying which limit
    itemsize = dtype.itemsize
    if not itemsize and (count or dtype.kind in "SU"):
        raise PackingError(
            f"expected a dtype at least one byte wide, found the zero-width dtype {dtype.str!r} "
            f"for shape {_short_shape(shape)} (numpy would widen it and allocate the array)"
        )
    expected = count * itemsize
    found = view.nbytes - offset
    if found != expected:
        kind = "truncated" if found < expected else "extended"
        raise PackingError(
            f"expected {expected} data bytes for shape {_short_shape(shape)} and dtype "
            f"{dtype.str!r} "
            f"after the header at offset {offset}, found {found} bytes ({kind} buffer)"
        )
    order: Literal["C", "F"] = "F" if fortran_order else "C"
    try:
        if expected == 0:
            arr: npt.NDArray[Any] = np.empty(shape, dtype=dtype, order=order)
        else:
            flat = np.frombuffer(view, dtype=dtype, count=count, offset=offset)
            arr = flat.reshape(shape, order=order)
            if writable:
                arr = arr.copy(order="K")
    except (ValueError, TypeError, MemoryError, OverflowError) as exc:
        raise PackingError(
            f"expected an array numpy can represent, found shape {_short_shape(shape)} with "
            f"dtype {dtype.str!r}: {exc}"
        ) from None
    if not writable:
        arr.flags.writeable = False
    return arr


def decode_arrays(
    bufs: Sequence[BytesLike], *, writable: bool = False, budget: DecodeBudget | None = None
) -> list[npt.NDArray[Any]]:
    """Decode several ``.npy`` buffers with :func:`decode_array`.

    At most ``budget.max_arrays`` buffers are accepted. Errors are prefixed with the index of
    the offending buffer, e.g. ``"array 3: ..."``.
    """
    limits = budget_or_default(budget)
    limits.check_count(len(bufs), what="npy arrays")
    max_rank, max_elements = limits.max_rank, limits.max_elements
    out: list[npt.NDArray[Any]] = []
    for index, buf in enumerate(bufs):
        try:
            out.append(_decode(buf, writable, limits, max_rank, max_elements))
        except PackingError as exc:
            raise PackingError(f"array {index}: {exc}") from exc
    return out


def to_array(array: NDArray) -> Array:
    """A Flower ``Array`` equal to ``Array(array)``, its data encoded by fedpack's codec."""
    from flwr.app import Array

    return Array(
        dtype=str(array.dtype),
        shape=tuple(int(n) for n in array.shape),
        stype=STYPE,
        data=encode_array(array),
    )


def from_array(
    array: Array,
    *,
    writable: bool = False,
    where: str = "array",
    budget: DecodeBudget | None = None,
) -> NDArray:
    """Decode a Flower ``Array`` (``stype="numpy.ndarray"``) without copying by default.

    The ``Array``'s ``shape`` and ``dtype`` fields must agree with its npy header; ``budget``
    bounds the decoding (:func:`fedpack.DecodeBudget`).
    """
    stype = getattr(array, "stype", None)
    data = getattr(array, "data", None)
    if not isinstance(data, bytes):
        raise PackingError(f"{where}: expected a flwr Array, found {describe(array)}")
    if stype != STYPE:
        raise PackingError(
            f"{where}: expected an Array with stype {STYPE!r}, found {shorten(stype)}"
        )
    try:
        result = decode_array(data, writable=writable, budget=budget)
    except PackingError as exc:
        raise PackingError(f"{where}: {exc}") from exc
    shape = tuple(getattr(array, "shape", ()))
    dtype = getattr(array, "dtype", None)
    if result.shape != shape or str(result.dtype) != dtype:
        raise PackingError(
            f"{where}: the Array says dtype {shorten(dtype)} and shape {shorten(shape)}, but its "
            "data holds "
            f"dtype {str(result.dtype)!r} and shape {result.shape}"
        )
    return result
