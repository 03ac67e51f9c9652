"""Validation helpers shared by every packer.

Each failure raises :class:`fedpack.PackingError` saying what was expected, what was found and
where; nothing here uses ``assert``, so the checks hold under ``python -O``.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping, Sequence
from typing import Any, SupportsIndex

import numpy as np

from ._budget import DecodeBudget, budget_or_default
from ._errors import PackingError
from ._typing import NDArray, NDArrays

__all__ = [
    "array_list",
    "check_strings",
    "describe",
    "expect_sections",
    "finite_scalar",
    "int_option",
    "names_from_array",
    "names_to_array",
    "scalar_from_array",
    "shorten",
    "unique_names",
]

#: The longest sender-chosen text (a name, an option value) quoted whole in an error message.
MAX_QUOTED = 120


def shorten(value: object, limit: int = MAX_QUOTED) -> str:
    """``repr(value)`` cut to ``limit`` characters (``...`` marks a cut).

    Every message quotes sender-chosen text so: a payload cannot put megabytes into a log line.
    """
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
        return repr(value)[:limit] + "..."
    text = repr(value)
    if len(text) > limit:
        return text[:limit] + "..."
    return text


def describe(value: object) -> str:
    """Describe ``value`` for an error message: an array's dtype and shape, else its type."""
    if isinstance(value, np.ndarray):
        dtype = str(value.dtype)  # a structured dtype can be long: keep messages bounded
        if len(dtype) > MAX_QUOTED:
            dtype = dtype[:MAX_QUOTED] + "..."
        return f"{dtype} array of shape {value.shape}"
    return f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")


def array_list(value: object, *, what: str, offset: int = 0) -> NDArrays:
    """Check that ``value`` is a sequence of numpy arrays without object dtypes.

    Returns a new ``list`` of the same array objects; a bare array, a string or a mapping is
    refused. ``offset`` is added to the indices in messages (for a slice of a payload).
    """
    if isinstance(value, (np.ndarray, str, bytes, dict)) or not isinstance(value, Sequence):
        raise PackingError(f"{what}: expected a list of numpy arrays, found {describe(value)}")
    arrays = list(value)
    ndarray = np.ndarray  # a local: this loop runs once per array of every payload
    checked = None  # the dtype last checked: payloads repeat a few dtypes, checked once each
    for index, array in enumerate(arrays):
        if not isinstance(array, ndarray):
            raise PackingError(
                f"{what}: expected a numpy array at index {index + offset}, found {describe(array)}"
            )
        dtype = array.dtype
        if dtype is checked:
            continue
        checked = dtype
        if dtype.hasobject:
            raise PackingError(
                f"{what}: array {index + offset} has dtype {array.dtype}, which holds Python "
                "objects; object arrays are never packed (they would need pickle)"
            )
    return arrays


def int_option(value: object, *, what: str, minimum: int | None = 0) -> int | None:
    """Check an optional integer constructor option: ``None``, or an int (no bool) >= ``minimum``.

    The convention of every packer's options, as of Python's own constructors: a value of
    another type raises ``TypeError``, an int below ``minimum`` raises ``ValueError``.
    """
    kind = {None: "an int", 0: "a non-negative int", 1: "a positive int"}.get(minimum)
    kind = kind or f"an int of at least {minimum}"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, SupportsIndex):
        raise TypeError(f"{what}: expected {kind} or None, found {describe(value)}")
    number = operator.index(value)
    if minimum is not None and number < minimum:
        raise ValueError(f"{what}: expected {kind}, found {number}")
    return number


def expect_sections(sections: Mapping[str, object], expected: Sequence[str], *, what: str) -> None:
    """Check that a split payload holds exactly the sections ``expected``, in that order."""
    found = list(sections)
    if found != list(expected):
        raise PackingError(
            f"{what}: expected the sections {list(expected)}, found {shorten(found, 300)}"
        )


def finite_scalar(value: object, *, what: str) -> float:
    """A finite real scalar given to ``pack_parameters``, as a Python ``float``.

    Python and numpy real numbers (``bool`` included) and 0-d real arrays are accepted.
    """
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise PackingError(
                f"{what}: expected a scalar (a number or a 0-d array), found {describe(value)}"
            )
        value = value[()]
    if not isinstance(value, (np.bool_, np.integer, np.floating, numbers.Real)):
        raise PackingError(f"{what}: expected a real number, found {describe(value)}")
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError) as exc:
        raise PackingError(
            f"{what}: expected a finite number, found a {describe(value)} that does not fit a "
            f"float ({exc})"
        ) from None
    if not math.isfinite(number):
        raise PackingError(f"{what}: expected a finite number, found {number}")
    return number


def scalar_from_array(array: NDArray, *, what: str, where: str) -> float:
    """Read a received scalar array (0-d, or shape ``(1,)``) as a finite Python ``float``.

    The shape ``(1,)`` form is what FL4Health's server sends in the first round.
    """
    if array.shape not in ((), (1,)):
        raise PackingError(
            f"{what} ({where}): expected a 0-d or shape (1,) array, found {describe(array)}"
        )
    if array.dtype.kind not in "biuf":
        raise PackingError(
            f"{what} ({where}): expected a boolean, integer or floating dtype, "
            f"found {describe(array)}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # a longdouble may overflow a float
        number = float(array.reshape(()))
    if not math.isfinite(number):
        raise PackingError(f"{what} ({where}): expected a finite number, found {number}")
    return number


def unique_names(value: object, *, what: str, count: int | None = None) -> list[str]:
    """Check a list of tensor names: non-empty ``str`` without NUL, unique, ``count`` of them.

    A bare ``str`` is rejected rather than iterated character by character.
    """
    if isinstance(value, (str, bytes, np.ndarray)) or not isinstance(value, Sequence):
        raise PackingError(f"{what}: expected a list of str, found {describe(value)}")
    names = list(value)
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise PackingError(f"{what}: expected a str at index {index}, found {describe(name)}")
        if not name:
            raise PackingError(f"{what}: expected a non-empty name at index {index}, found ''")
        if "\x00" in name:
            raise PackingError(
                f"{what}: name at index {index} contains a NUL character: {shorten(name)}"
            )
        if name in seen:
            raise PackingError(
                f"{what}: expected unique names, found {shorten(name)} at indices {seen[name]} "
                f"and {index}"
            )
        seen[name] = index
    if count is not None and len(names) != count:
        raise PackingError(f"{what}: expected {count} names, found {len(names)}")
    return names


def names_to_array(names: list[str]) -> NDArray:
    """Encode names exactly as FL4Health does: ``np.array(names)`` (``<U{maxlen}``, shape ``(k,)``).

    An empty list gives FL4Health's float64 array of shape ``(0,)``.
    """
    return np.array(names)


def names_from_array(
    array: NDArray, *, what: str, where: str, budget: DecodeBudget | None = None
) -> list[str]:
    """Decode a names array: 1-D unicode (or the empty float64 array FL4Health sends for ``[]``).

    Its length and width are checked against ``budget`` (:func:`check_strings`) before any
    ``str`` is built; the names with :func:`unique_names`.
    """
    limits = budget_or_default(budget)
    if array.ndim != 1:
        raise PackingError(
            f"{what} ({where}): expected a 1-D array of str, found {describe(array)}"
        )
    if array.size == 0:
        return []
    if array.dtype.kind != "U":
        raise PackingError(
            f"{what} ({where}): expected a unicode (<U) array of names, found {describe(array)}"
        )
    check_strings(array, limits, what=f"{what} ({where})")
    decoded: list[Any] = array.tolist()
    return unique_names(decoded, what=f"{what} ({where})")


def check_strings(array: NDArray, budget: DecodeBudget, *, what: str) -> None:
    """Check a received string array (``<U``/``S``) in O(1), before its elements are read.

    At most ``budget.max_arrays`` elements of at most ``budget.max_string_width`` characters,
    never zero-width (numpy silently widens those to one character).
    """
    budget.check_count(array.size, what=what)
    width = array.dtype.itemsize // (4 if array.dtype.kind == "U" else 1)
    if width == 0 and array.size:
        raise PackingError(
            f"{what}: expected strings at least one character wide, found the zero-width dtype "
            f"{array.dtype.str!r}"
        )
    if width > budget.max_string_width:
        raise PackingError(
            f"{what}: expected strings of at most {budget.max_string_width} characters "
            f"(budget max_string_width), found dtype {array.dtype.str!r}"
        )
