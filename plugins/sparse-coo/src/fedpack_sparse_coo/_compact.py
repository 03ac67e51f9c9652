"""The compact wire form of sparse COO data (``encoding="compact"``).

Private module of ``fedpack_sparse_coo``. Per tensor, the smallest of three encodings is chosen
(see :func:`fedpack_sparse_coo._kernels.encode_compact`):

- ``flat``: the values, and their flat C-order positions as the narrowest unsigned integer;
- ``bitmask``: the values, and one bit per element of the tensor saying whether it was sent;
- ``dense``: the whole tensor, unsent elements zero (only when no sent value is zero).

Sections: ``weights`` holds one array per tensor (the values for ``flat`` and ``bitmask``, the
same objects as given; the dense tensor for ``dense``), ``positions`` one array per non-dense
tensor, in tensor order. The frame meta ``{"encodings": [...]}`` names each tensor's encoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedpack import DecodeBudget, NDArray, NDArrays, PackingError
from fedpack.checks import describe, shorten

from ._kernels import ENCODINGS, coo_from_flat, decode_compact, encode_compact, rebuild_from_compact
from ._validate import MAX_RANK, check_counts, check_shape, dense_bytes, label, payload_bytes

__all__ = [
    "CompactTensor",
    "base_for",
    "compact_tensors",
    "decode_tensors",
    "encode_tensors",
    "rebuild_tensors",
]

IntpArray = npt.NDArray[np.intp]

#: ``(name, encoding, arrays, shape)`` of one received tensor, validated only as far as counts.
CompactTensor = tuple[str, str, NDArrays, tuple[int, ...]]


def encode_tensors(
    values: NDArrays, flats: Sequence[IntpArray], shapes: NDArrays, names: Sequence[str]
) -> tuple[NDArrays, NDArrays, list[str]]:
    """``(weights, positions, encodings)`` for checked tensors and their flat positions."""
    weights: NDArrays = []
    positions: NDArrays = []
    encodings: list[str] = []
    for i, (v, flat, shape) in enumerate(zip(values, flats, shapes, strict=True)):
        dims = tuple(int(d) for d in shape.tolist())
        v, flat = _sorted(v, flat, label("sparse_coo", names, i))
        encoding, arrays = encode_compact(v, flat, dims)
        encodings.append(encoding)
        if encoding == "dense":
            weights.append(arrays[0])
        else:
            positions.append(arrays[0])
            weights.append(arrays[1])
    return weights, positions, encodings


def _sorted(values: NDArray, flat: IntpArray, where: str) -> tuple[NDArray, IntpArray]:
    """Rows in C order (a copy only when the caller's rows are not), duplicates refused."""
    if flat.shape[0] < 2 or bool((flat[1:] > flat[:-1]).all()):
        return values, flat
    order = np.argsort(flat, kind="stable")
    flat = flat[order]
    same = flat[1:] == flat[:-1]
    if bool(same.any()):
        k = int(np.flatnonzero(same)[0])
        raise PackingError(
            f"{where}: indices: expected each position at most once, found flat position "
            f"{int(flat[k])} twice"
        )
    return values[order], flat


def compact_tensors(
    what: str,
    weights: NDArrays,
    positions: NDArrays,
    shapes: NDArrays,
    names: list[str],
    meta: Mapping[str, Any],
    *,
    max_rank: int = MAX_RANK,
    max_elements: int | None = None,
) -> list[CompactTensor]:
    """Pair each tensor's arrays with its encoding, checking the meta and the counts."""
    check_counts(what, len(weights), len(weights), len(shapes), len(names))
    encodings = meta.get("encodings")
    if (
        set(meta) != {"encodings"}
        or not isinstance(encodings, list)
        or len(encodings) != len(weights)
        or not all(isinstance(e, str) and e in ENCODINGS for e in encodings)
    ):
        raise PackingError(
            f"{what}: expected the frame meta {{'encodings': [...]}} naming one of "
            f"{list(ENCODINGS)} for each of the {len(weights)} tensors, found {dict(meta)!r:.200}"
        )
    sparse = sum(e != "dense" for e in encodings)
    if sparse != len(positions):
        raise PackingError(
            f"{what}: expected {sparse} positions arrays (one per tensor not encoded 'dense'), "
            f"found {len(positions)}"
        )
    out: list[CompactTensor] = []
    j = 0
    for i, (encoding, shape) in enumerate(zip(encodings, shapes, strict=True)):
        dims = check_shape(
            shape, label(what, names, i), max_rank=max_rank, max_elements=max_elements
        )
        if encoding == "dense":
            arrays = [weights[i]]
        else:
            arrays = [positions[j], weights[i]]
            j += 1
        out.append((names[i], encoding, arrays, dims))
    return out


def decode_tensors(
    what: str,
    tensors: Sequence[CompactTensor],
    *,
    max_elements: int,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, NDArrays]:
    """``(values, indices)`` in FL4Health's COO form, every tensor validated.

    With ``budget``, the int64 index matrices to be built (one row per sent element, one
    column per dimension) are checked against its allocation allowance first.
    """
    if budget is not None:
        nbytes = received = 0
        for _, _, arrays, dims in tensors:
            last = arrays[-1]  # the values (at most one index row each), or the dense tensor
            if last.ndim == 1:
                nbytes += 8 * last.shape[0] * len(dims)
            for array in arrays:
                received += array.nbytes
        if nbytes > budget.max_bytes:
            budget.check_alloc(nbytes, received, what=f"{what}: COO indices")
    values: NDArrays = []
    indices: NDArrays = []
    for i, (name, encoding, arrays, dims) in enumerate(tensors):
        try:
            v, flat = decode_compact(
                encoding, arrays, dims, arrays[-1].dtype, max_elements=max_elements
            )
            indices.append(coo_from_flat(flat, dims))
        except PackingError as exc:
            raise PackingError(
                f"{what}: tensor {shorten(name, 80)} (#{i}, {encoding}): {exc}"
            ) from None
        values.append(v)
    return values, indices


def rebuild_tensors(
    what: str,
    tensors: Sequence[CompactTensor],
    base: Mapping[str, NDArray] | None,
    *,
    max_elements: int,
    budget: DecodeBudget | None = None,
) -> list[NDArray]:
    """Dense arrays straight from the compact form (no COO indices are built).

    With ``budget``, the dense tensors rebuilt without a ``base`` (a base is the receiver's
    own memory) are checked against its allocation allowance, as a running total, before each
    one is allocated.
    """
    meter = budget is not None and base is None
    received = payload_bytes(*(arrays for _, _, arrays, _ in tensors)) if meter else 0
    used = 0
    out: list[NDArray] = []
    for i, (name, encoding, arrays, dims) in enumerate(tensors):
        start = None if base is None else base_for(what, base, name, i)
        where = f"{what}: tensor {shorten(name, 80)} (#{i}, {encoding})"
        if budget is not None and start is None:
            count = dense_bytes([dims], [1])
            if count <= max_elements:  # a larger shape gets the kernel's max_elements message
                used += count * arrays[-1].dtype.itemsize
                budget.check_alloc(used, received, what=f"{where}: dense tensors up to here")
        try:
            out.append(
                rebuild_from_compact(encoding, arrays, dims, base=start, max_elements=max_elements)
            )
        except PackingError as exc:
            raise PackingError(f"{where}: {exc}") from None
    return out


def base_for(what: str, base: Mapping[str, NDArray], name: str, index: int) -> NDArray:
    """The base array of tensor ``name``; an error if ``base`` has none."""
    if name not in base:
        raise PackingError(
            f"{what}: tensor {shorten(name, 80)} (#{index}) was received but base has no array "
            "of that "
            f"name (base holds {len(base)} arrays)"
        )
    array = base[name]
    if not isinstance(array, np.ndarray):
        raise PackingError(
            f"{what}: base[{shorten(name, 80)}]: expected a numpy array, found {describe(array)}"
        )
    return array
