"""The ``qlayout`` array: which arrays of a payload are quantized, and their dtype and shape.

Private module of ``fedpack_quantize``. One int64 1-D array describes every array of the
quantized packer's sections, in payload order:

- ``0``: the array is sent as it is (not floating point, not selected, or out of float32's
  scale range);
- ``1``, ``2``, ``3``: the array is the codes of a float16, float32, float64 array; followed by
  its ``ndim`` and its ``ndim`` dimensions.

Reading it costs O(number of arrays + their ranks); every count is checked before anything is
allocated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedpack import NDArray, PackingError
from fedpack.checks import describe

__all__ = ["EXACT", "FLOAT_CODES", "Entry", "encode_layout", "parse_layout"]

#: The code of an array sent as it is.
EXACT = 0
#: The code of each quantizable dtype.
FLOAT_CODES: dict[str, int] = {"float16": 1, "float32": 2, "float64": 3}
_DTYPES = {code: np.dtype(name) for name, code in FLOAT_CODES.items()}
#: numpy's own limit on the number of dimensions.
MAX_NDIM = 64


@dataclass(frozen=True)
class Entry:
    """One described array: ``dtype`` ``None`` when it is sent as it is."""

    dtype: np.dtype[Any] | None
    shape: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        """The element count of the original array."""
        return math.prod(self.shape)


def encode_layout(entries: Sequence[Entry]) -> NDArray:
    """The int64 layout array of ``entries``."""
    out: list[int] = []
    for entry in entries:
        if entry.dtype is None:
            out.append(EXACT)
        else:
            out += [FLOAT_CODES[entry.dtype.name], len(entry.shape), *entry.shape]
    return np.array(out, dtype=np.int64)


def parse_layout(array: NDArray, count: int, *, max_elements: int, where: str) -> list[Entry]:
    """The ``count`` entries of a received layout array; every field is checked."""
    if not isinstance(array, np.ndarray) or array.dtype != np.int64 or array.ndim != 1:
        raise PackingError(
            f"quantize: layout ({where}): expected a 1-D int64 array, found {describe(array)}"
        )
    if array.size > count * (2 + MAX_NDIM):
        raise PackingError(
            f"quantize: layout ({where}): expected at most {count * (2 + MAX_NDIM)} entries for "
            f"{count} arrays, found {array.size}"
        )
    values: list[int] = array.tolist()
    entries: list[Entry] = []
    pos = 0
    for index in range(count):
        if pos >= len(values):
            raise PackingError(
                f"quantize: layout ({where}): describes {index} arrays, expected {count}"
            )
        code = values[pos]
        pos += 1
        if code == EXACT:
            entries.append(Entry(None))
            continue
        if code not in _DTYPES or pos >= len(values):
            raise PackingError(
                f"quantize: layout ({where}): array {index}: expected a code in 0..3 followed by "
                f"ndim and the dimensions, found {values[pos - 1 : pos + 1]}"
            )
        ndim = values[pos]
        pos += 1
        if not 0 <= ndim <= MAX_NDIM or pos + ndim > len(values):
            raise PackingError(
                f"quantize: layout ({where}): array {index}: expected ndim in 0..{MAX_NDIM} and "
                f"its dimensions, found ndim {ndim} with {len(values) - pos} values left"
            )
        shape = tuple(values[pos : pos + ndim])
        pos += ndim
        if any(d < 0 for d in shape):
            raise PackingError(
                f"quantize: layout ({where}): array {index}: expected non-negative dimensions, "
                f"found {shape}"
            )
        size = math.prod(shape)
        if size > max_elements:
            raise PackingError(
                f"quantize: layout ({where}): array {index}: shape {shape} has {size} elements, "
                f"more than max_elements={max_elements}; refusing to allocate"
            )
        entries.append(Entry(_DTYPES[code], shape))
    if pos != len(values):
        raise PackingError(
            f"quantize: layout ({where}): expected {pos} values for {count} arrays, "
            f"found {len(values)}"
        )
    return entries
