"""Validation of FL4Health's sparse COO data, one tensor at a time.

Private module of ``fedpack_sparse_coo``. Every failure raises :class:`fedpack.PackingError`
naming the tensor (its name and position) and, for a received payload, the array index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from fedpack import DEFAULT_BUDGET, NDArray, NDArrays, PackingError
from fedpack.checks import describe, shorten

from ._kernels import flat_from_coo

__all__ = [
    "Where",
    "check_all",
    "check_counts",
    "check_shape",
    "check_tensor",
    "check_values",
    "dense_bytes",
    "label",
    "payload_bytes",
]

#: ``(section, index) -> "array 12, indices[3]"`` for messages about a received payload.
Where = Callable[[str, int], str]

_NUMERIC = frozenset("biufc")
#: The default largest rank of a tensor shape (the default budget's ``max_rank``).
MAX_RANK = DEFAULT_BUDGET.max_rank


def _label(what: str, names: Sequence[str] | None, index: int, where: str | None) -> str:
    name = f" {shorten(names[index], 80)}" if names is not None and index < len(names) else ""
    place = f", {where}" if where else ""
    return f"{what}: tensor{name} (#{index}{place})"


def check_counts(
    what: str, values: int, indices: int, shapes: int, names: int | None = None
) -> None:
    """One values, indices and shapes array (and one name) per tensor."""
    counts = {"values": values, "indices": indices, "shapes": shapes}
    if names is not None:
        counts["names"] = names
    if len(set(counts.values())) != 1:
        found = ", ".join(f"{count} {key}" for key, count in counts.items())
        raise PackingError(
            f"{what}: expected one values array, one indices array, one shape and one name per "
            f"tensor, found {found}"
        )


def check_values(values: NDArray, label: str) -> None:
    """A 1-D array of a bool, integer, float or complex dtype."""
    if values.ndim != 1 or values.dtype.kind not in _NUMERIC:
        raise PackingError(
            f"{label}: values: expected a 1-D bool, integer, float or complex array, "
            f"found {describe(values)}"
        )


def check_shape(
    shape: NDArray, label: str, *, max_rank: int = MAX_RANK, max_elements: int | None = None
) -> tuple[int, ...]:
    """A 1-D integer array of non-negative sizes (FL4Health's ``np.array(list(x.shape))``).

    The empty float64 array ``np.array([])`` (FL4Health's shape of a 0-d tensor) is accepted.
    At most ``max_rank`` dimensions (checked before the sizes are read: a shape of thousands of
    dimensions of size 1 claims one element but would cost an index column per dimension).
    With ``max_elements``, no single dimension may exceed it (an empty shape such as
    ``(0, 2**62)`` claims no element but is no tensor numpy can build).
    """
    if shape.ndim != 1 or (shape.size and shape.dtype.kind not in "iu"):
        raise PackingError(f"{label}: shape: expected a 1-D integer array, found {describe(shape)}")
    if shape.size == 0 and shape.dtype.kind not in "iuf":
        raise PackingError(f"{label}: shape: expected a 1-D integer array, found {describe(shape)}")
    if shape.size > max_rank:
        raise PackingError(
            f"{label}: shape: expected at most {max_rank} dimensions (budget max_rank), "
            f"found {shape.size}"
        )
    dims = tuple(int(d) for d in shape.tolist())
    for axis, size in enumerate(dims):
        if size < 0:
            raise PackingError(
                f"{label}: shape: expected non-negative sizes, found {size} in dimension {axis}"
            )
        if max_elements is not None and size > max_elements:
            raise PackingError(
                f"{label}: shape: expected at most {max_elements} elements (max_elements), found "
                f"{size} in dimension {axis}; refusing to allocate"
            )
    return dims


def check_tensor(
    values: NDArray,
    indices: NDArray,
    shape: NDArray,
    label: str,
    *,
    max_elements: int,
    max_rank: int = MAX_RANK,
) -> npt.NDArray[np.intp]:
    """Check one COO tensor; return its flat C-order positions (in the rows' order).

    values 1-D numeric; indices 2-D integer ``(nnz, ndim)`` with ``nnz == len(values)`` and
    ``ndim == len(shape)``; shape 1-D non-negative; every index inside its dimension.
    """
    check_values(values, label)
    dims = check_shape(shape, label, max_rank=max_rank, max_elements=max_elements)
    if indices.ndim != 2 or indices.shape != (values.shape[0], len(dims)):
        raise PackingError(
            f"{label}: indices: expected shape ({values.shape[0]}, {len(dims)}) (one row per "
            f"value, one column per dimension of shape {dims}), found {describe(indices)}"
        )
    if indices.dtype.kind not in "iu" and not (indices.size == 0 and indices.dtype.kind == "f"):
        raise PackingError(
            f"{label}: indices: expected an integer dtype, found {describe(indices)}"
        )
    try:
        return flat_from_coo(indices, dims, max_elements=max_elements)
    except PackingError as exc:
        raise PackingError(f"{label}: {exc}") from None


def check_all(
    what: str,
    values: NDArrays,
    indices: NDArrays,
    shapes: NDArrays,
    names: list[str],
    *,
    max_elements: int,
    where: Where | None = None,
    max_rank: int = MAX_RANK,
) -> list[npt.NDArray[np.intp]]:
    """Check every tensor (counts first); return the flat positions of each."""
    check_counts(what, len(values), len(indices), len(shapes), len(names))
    flats = []
    for i, (v, idx, s) in enumerate(zip(values, indices, shapes, strict=True)):
        label = _label(what, names, i, where("weights", i) if where else None)
        flats.append(check_tensor(v, idx, s, label, max_elements=max_elements, max_rank=max_rank))
    return flats


def label(what: str, names: Sequence[str] | None, index: int, where: str | None = None) -> str:
    """The prefix of a message about tensor ``index``: ``"what: tensor 'fc.w' (#3, array 7)"``."""
    return _label(what, names, index, where)


def payload_bytes(*groups: Sequence[NDArray]) -> int:
    """Bytes of the received arrays (what a payload's allocation allowance is measured by)."""
    return sum(int(a.nbytes) for group in groups for a in group)


def dense_bytes(shapes: Sequence[tuple[int, ...]], itemsizes: Sequence[int]) -> int:
    """Bytes of dense tensors of these (checked) shapes and item sizes."""
    total = 0
    for dims, itemsize in zip(shapes, itemsizes, strict=True):
        count = 1
        for d in dims:
            count *= d
        total += count * itemsize
    return total
