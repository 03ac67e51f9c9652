"""Numpy kernels for fedpack's sparse COO path.

Private module of ``fedpack_sparse_coo``. Only numpy is imported; nothing here
knows about torch or Flower. The bitmask rebuild of :func:`rebuild_from_compact`
takes the compiled kernel of :mod:`._fast` when numba is installed (the ``fast``
extra) and ``FEDPACK_SPARSE_KERNEL`` is not ``numpy``; results are identical.

Vocabulary
----------
* **shape**: a tensor's shape, ``ndim`` non-negative Python ints; ``size`` is their
  product (1 for a 0-d tensor).
* **flat indices**: positions in the C-order (row-major) raveled tensor, strictly
  increasing, ``0 <= i < size``.
* **COO indices**: FL4Health's layout, an int64 matrix of shape ``(nnz, ndim)``
  with one row per sent element (the transpose of torch's ``(ndim, nnz)``).
  For a 0-d tensor it has shape ``(nnz, 0)`` with ``nnz`` 0 or 1.
* **values**: 1-D array in the tensor's dtype, one per sent element, in the order
  of the indices.

Semantics of what is sent
-------------------------
* :func:`extract_coo` / :func:`extract_flat` follow FL4Health: an element is sent
  iff it is not equal to zero (``x != 0``). NaN is sent; ``0.0`` and ``-0.0`` are
  not; a complex element is sent iff its real or imaginary part is non-zero.
  Values come out in row-major order whatever the memory layout of ``x``.
* :func:`extract_selected` sends an explicit selection *including exact zeros*,
  so a receiver can tell "selected and 0" from "not sent".
* On the receiving side, elements that were not sent are zero, or, when a
  ``base`` tensor is given, keep the value they have in ``base``. ``base`` is
  never modified: the rebuild functions always return a new C-contiguous array
  (there is deliberately no ``out=`` parameter, so a received payload can never
  scribble over a caller's model by accident).

Compact encodings (see :func:`encode_compact`)
----------------------------------------------
``"flat"``
    ``[flat_indices as the narrowest unsigned dtype holding size - 1, values]``.
``"bitmask"``
    ``[np.packbits(mask, bitorder="little") (uint8, ceil(size / 8) bytes), values]``;
    bit ``i`` of the mask says whether flat position ``i`` was sent, the padding
    bits after ``size`` are zero.
``"dense"``
    ``[the whole tensor raveled in C order (size elements)]``; an element equal to
    zero means "not sent". Only chosen when no sent value is zero, so it is
    lossless.

All validation failures raise :class:`fedpack.PackingError` (a ``ValueError``)
with a message saying what was expected and what was found. No check relies on
``assert``, so validation holds under ``python -O``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fedpack import PackingError
from fedpack.checks import describe

from . import _fast

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "ENCODINGS",
    "compact_nbytes",
    "coo_from_flat",
    "decode_compact",
    "encode_compact",
    "extract_coo",
    "extract_flat",
    "extract_selected",
    "flat_from_coo",
    "rebuild_dense",
    "rebuild_from_compact",
]

DEFAULT_MAX_ELEMENTS: Final[int] = 1 << 31
"""Largest element count a rebuild will allocate for one tensor (2**31, 8 GiB of
float32). Large enough for every tensor of current LLMs, small enough that a
payload claiming an absurd shape is refused before any memory is allocated."""

ENCODINGS: Final[tuple[str, ...]] = ("dense", "flat", "bitmask")
"""Compact encoding names, in the order used to break ties on wire size."""

_SUPPORTED_KINDS: Final[frozenset[str]] = frozenset("biufc")
_UNSIGNED: Final[tuple[type[np.unsignedinteger[Any]], ...]] = (
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
)
_INTP_MAX: Final[int] = int(np.iinfo(np.intp).max)
_UNRAVEL_CHUNK: Final[int] = 1 << 15
_REBUILD_CHUNK: Final[int] = 1 << 16  # elements; a multiple of 8 (whole mask bytes)
_MEMCHR_SCAN: Final[float] = 0.1  # np.flatnonzero(bool) scans with memchr up to this density
_SPARSE_SCAN: Final[float] = 0.02  # below this density the memchr scan is the faster one

Array = npt.NDArray[Any]
IntpArray = npt.NDArray[np.intp]
Int64Array = npt.NDArray[np.int64]
ShapeLike = Sequence[int] | npt.NDArray[np.integer[Any]]


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _check_numeric(a: Array, what: str) -> None:
    if a.dtype.kind not in _SUPPORTED_KINDS:
        raise PackingError(
            f"{what}: expected a bool, integer, float or complex dtype, found {a.dtype}"
        )


def _check_shape(shape: object, max_elements: int) -> tuple[tuple[int, ...], int]:
    """Validate ``shape`` and return it as Python ints with its element count.

    The element count is computed with Python ints (no overflow) and compared with
    ``max_elements`` so that nothing is allocated for an absurd shape.
    """
    if isinstance(shape, np.ndarray):
        if shape.ndim != 1 or (shape.size and shape.dtype.kind not in "iu"):
            raise PackingError(f"shape: expected a 1-D integer array, found {describe(shape)}")
        dims = [int(d) for d in shape.tolist()]
    elif isinstance(shape, (tuple, list)):
        dims = []
        for d in shape:
            if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
                raise PackingError(
                    f"shape: expected integers, found {d!r} of type {type(d).__name__}"
                )
            dims.append(int(d))
    else:
        raise PackingError(
            f"shape: expected a sequence or 1-D array of integers, found {describe(shape)}"
        )
    for axis, d in enumerate(dims):
        if d < 0:
            raise PackingError(f"shape: expected non-negative sizes, found {d} in dimension {axis}")
    size = 1
    for d in dims:
        size *= d
    if size > max_elements:
        raise PackingError(
            f"shape {tuple(dims)}: expected at most {max_elements} elements "
            f"(max_elements), found {size}; refusing to allocate"
        )
    return tuple(dims), size


def _c_ravel(x: Array) -> Array:
    """C-order 1-D view of ``x`` (a copy only if ``x`` is not C-contiguous)."""
    if x.flags.c_contiguous:
        return x.reshape(-1)
    return np.ravel(x, order="C")


def _index_dtype(size: int) -> np.dtype[Any]:
    """Narrowest unsigned dtype holding every flat index of a ``size``-element tensor."""
    top = max(size - 1, 0)
    for t in _UNSIGNED:
        if top <= int(np.iinfo(t).max):
            return np.dtype(t)
    raise PackingError(f"size: expected at most 2**64 elements, found {size}")  # pragma: no cover


def _check_values(values: object, dtype: np.dtype[Any] | None, what: str = "values") -> Array:
    if not isinstance(values, np.ndarray):
        raise PackingError(f"{what}: expected a numpy array, found {describe(values)}")
    if values.ndim != 1:
        raise PackingError(f"{what}: expected a 1-D array, found shape {values.shape}")
    _check_numeric(values, what)
    if dtype is not None and values.dtype != dtype:
        raise PackingError(f"{what}: expected dtype {dtype}, found {values.dtype}")
    return values


def _check_base(base: object, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    if not isinstance(base, np.ndarray):
        raise PackingError(f"base: expected a numpy array, found {describe(base)}")
    if base.shape != shape:
        raise PackingError(f"base: expected shape {shape}, found {base.shape}")
    if base.dtype != dtype:
        raise PackingError(f"base: expected dtype {dtype}, found {base.dtype}")
    return base


def _new_output(size: int, dtype: np.dtype[Any], base: Array | None) -> Array:
    """A fresh 1-D C-order output: zeros, or a copy of ``base``."""
    if base is None:
        return np.zeros(size, dtype=dtype)
    return np.array(base, dtype=dtype, order="C", copy=True).reshape(-1)


def _check_sorted_unique(flat: Array, size: int, what: str) -> None:
    """Strictly increasing and inside ``[0, size)`` (flat may be signed or unsigned)."""
    n = flat.shape[0]
    if n == 0:
        return
    if n > 1:
        ok = flat[1:] > flat[:-1]
        if not bool(ok.all()):
            k = int(np.flatnonzero(~ok)[0])
            a, b = int(flat[k]), int(flat[k + 1])
            kind = "duplicate" if a == b else "unsorted"
            raise PackingError(
                f"{what}: expected strictly increasing flat indices, found {kind} "
                f"{a} then {b} at positions {k} and {k + 1}"
            )
    first, last = int(flat[0]), int(flat[-1])
    if first < 0:
        raise PackingError(f"{what}: expected flat indices >= 0, found {first}")
    if last >= size:
        raise PackingError(f"{what}: expected flat indices < {size} (tensor size), found {last}")


def _check_no_duplicates(flat: IntpArray, what: str) -> None:
    """Refuse repeated positions; flat indices may come in any order.

    Sorted input (the normal case) costs one comparison pass; unsorted input costs
    one sort of a copy.
    """
    if flat.shape[0] < 2 or bool((flat[1:] > flat[:-1]).all()):
        return
    s = np.sort(flat)
    dup = s[1:] == s[:-1]
    if bool(dup.any()):
        k = int(np.flatnonzero(dup)[0])
        raise PackingError(
            f"{what}: expected each position at most once, found flat position "
            f"{int(s[k])} more than once"
        )


def _check_unique_any_order(flat: IntpArray, size: int, what: str) -> IntpArray:
    """Bounds and duplicates for flat indices in any order; returns them sorted."""
    if flat.shape[0] == 0:
        return flat
    _check_no_duplicates(flat, what)
    if not bool((flat[1:] > flat[:-1]).all()):
        flat = np.sort(flat)
    lo, hi = int(flat[0]), int(flat[-1])
    if lo < 0:
        raise PackingError(f"{what}: expected flat indices >= 0, found {lo}")
    if hi >= size:
        raise PackingError(f"{what}: expected flat indices < {size} (tensor size), found {hi}")
    return flat


# ---------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------


def extract_flat(x: npt.ArrayLike) -> tuple[Array, IntpArray]:
    """Non-zero elements of ``x`` and their flat C-order positions.

    Returns ``(values, flat_indices)``: ``values`` is 1-D in ``x.dtype``,
    ``flat_indices`` is 1-D ``intp``, strictly increasing. An element is kept iff
    ``x != 0`` (NaN kept, ``-0.0`` dropped, complex kept if either part is
    non-zero), exactly as FL4Health's ``x[x.nonzero(as_tuple=True)]``. Order is
    row-major whatever the memory layout of ``x``; a non-C-contiguous ``x`` costs
    one extra copy. A 0-d ``x`` is treated as one element at flat position 0.

    Cost: one compare pass, one ``flatnonzero`` over a bool mask and one gather.
    """
    arr = np.asarray(x)
    _check_numeric(arr, "x")
    v = _c_ravel(arr)
    mask = v if v.dtype == np.bool_ else np.not_equal(v, 0)
    flat = np.flatnonzero(mask)
    return np.take(v, flat), flat


def coo_from_flat(flat_indices: Array, shape: ShapeLike) -> Int64Array:
    """FL4Health's COO index matrix (int64, ``(nnz, ndim)``) from flat C-order indices.

    ``flat_indices`` must be integers in ``[0, size)`` (not re-validated for order);
    the result is written into one preallocated matrix, in chunks so that the
    per-dimension temporaries stay in cache. For a 0-d shape the result has shape
    ``(nnz, 0)``.
    """
    dims, size = _check_shape(shape, _INTP_MAX)
    flat = np.asarray(flat_indices)
    if flat.ndim != 1 or (flat.size and flat.dtype.kind not in "iu"):
        raise PackingError(f"flat_indices: expected a 1-D integer array, found {describe(flat)}")
    nnz = flat.shape[0]
    ndim = len(dims)
    out = np.empty((nnz, ndim), dtype=np.int64)
    if nnz == 0 or ndim == 0:
        if nnz and (int(flat.min()) < 0 or int(flat.max()) >= size):
            raise PackingError(
                f"flat_indices: expected values in [0, {size}), found "
                f"{int(flat.min())}..{int(flat.max())}"
            )
        return out
    lo, hi = int(flat.min()), int(flat.max())
    if lo < 0 or hi >= size:
        raise PackingError(f"flat_indices: expected values in [0, {size}), found {lo}..{hi}")
    if ndim == 1:
        out[:, 0] = flat
        return out
    # Peel dimensions off from the last with integer division by a scalar (numpy
    # uses libdivide for that), writing each column straight into ``out``; this is
    # about twice as fast as np.unravel_index plus column copies.
    for start in range(0, nnz, _UNRAVEL_CHUNK):
        stop = min(start + _UNRAVEL_CHUNK, nnz)
        rest = flat[start:stop].astype(np.int64)
        block = out[start:stop]
        for axis in range(ndim - 1, 0, -1):
            d = dims[axis]
            q = rest // d
            np.subtract(rest, q * d, out=block[:, axis])
            rest = q
        block[:, 0] = rest
    return out


def extract_coo(x: npt.ArrayLike) -> tuple[Array, Int64Array, Int64Array]:
    """FL4Health's sparse COO triple for ``x``: ``(values, indices, shape)``.

    * ``values``: 1-D, ``x.dtype``, the non-zero elements in row-major order
      (same rule as :func:`extract_flat`);
    * ``indices``: int64 ``(nnz, ndim)``, one row per value, i.e. ``x.nonzero()``;
    * ``shape``: int64 ``(ndim,)``, i.e. ``np.array(list(x.shape))``.

    A 0-d ``x`` gives ``indices`` of shape ``(nnz, 0)`` and ``shape`` of shape ``(0,)``.
    Equal to the reference ``np.nonzero`` based extraction, but computes the flat
    positions once and unravels them into one preallocated matrix.
    """
    arr = np.asarray(x)
    values, flat = extract_flat(arr)
    indices = coo_from_flat(flat, arr.shape)
    return values, indices, np.array(arr.shape, dtype=np.int64).reshape(arr.ndim)


def extract_selected(x: npt.ArrayLike, selection: npt.ArrayLike) -> tuple[Array, IntpArray]:
    """Elements of ``x`` chosen by ``selection``, exact zeros included.

    ``selection`` is either a bool mask of shape ``x.shape`` (or ``(x.size,)``,
    C order), or a 1-D integer array of flat C-order positions in any order
    (returned sorted; a repeated or out-of-range position raises
    :class:`~fedpack.PackingError`). Returns ``(values, flat_indices)`` like
    :func:`extract_flat`, but a selected element equal to zero is sent as a value
    of zero, so the receiver can tell "selected and 0" from "not sent". Rebuild
    with ``base=`` to keep the receiver's values at unselected positions.
    """
    arr = np.asarray(x)
    _check_numeric(arr, "x")
    sel = np.asarray(selection)
    v = _c_ravel(arr)
    if sel.dtype == np.bool_:
        if sel.shape != arr.shape and sel.shape != (v.shape[0],):
            raise PackingError(
                f"selection: expected a bool mask of shape {arr.shape} or {(v.shape[0],)}, "
                f"found shape {sel.shape}"
            )
        flat = np.flatnonzero(_c_ravel(sel))
    elif sel.dtype.kind in "iu" or (sel.size == 0 and sel.ndim == 1):
        if sel.ndim != 1:
            raise PackingError(f"selection: expected 1-D flat indices, found shape {sel.shape}")
        if sel.dtype.kind == "u" and sel.size and int(sel.max()) > _INTP_MAX:
            raise PackingError(
                f"selection: expected flat indices < {v.shape[0]} (tensor size), "
                f"found {int(sel.max())}"
            )
        flat = _check_unique_any_order(sel.astype(np.intp, copy=False), v.shape[0], "selection")
    else:
        raise PackingError(
            f"selection: expected a bool mask or integer flat indices, found dtype {sel.dtype}"
        )
    return np.take(v, flat), flat


# ---------------------------------------------------------------------------
# rebuild from COO
# ---------------------------------------------------------------------------


def _coo_out_of_bounds(indices: Array, dims: tuple[int, ...]) -> PackingError:
    limits = np.array(dims, dtype=np.int64)
    if indices.dtype == np.uint64:
        big = indices > np.uint64(_INTP_MAX)
        if bool(big.any()):
            r, c = (int(i) for i in np.argwhere(big)[0])
            return PackingError(
                f"indices: expected 0 <= index < {dims[c]} in dimension {c}, "
                f"found {int(indices[r, c])} at row {r}"
            )
        indices = indices.astype(np.int64)
    bad = (indices < 0) | (indices >= limits)
    if not bool(bad.any()):  # pragma: no cover - ravel_multi_index failed otherwise
        return PackingError(f"indices: expected valid coordinates for shape {dims}")
    r, c = (int(i) for i in np.argwhere(bad)[0])
    return PackingError(
        f"indices: expected 0 <= index < {dims[c]} in dimension {c}, "
        f"found {int(indices[r, c])} at row {r}"
    )


def flat_from_coo(
    indices: Array, shape: ShapeLike, *, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> IntpArray:
    """Flat C-order positions (``intp``) of a COO index matrix ``(nnz, ndim)``.

    Validates that ``indices`` is a 2-D integer array with ``ndim == len(shape)``
    columns, that the shape has at most ``max_elements`` elements, and that every
    index is inside its dimension (checked in C by ``np.ravel_multi_index``; the
    offending row is located only on failure). Order and duplicates are not
    checked here. An empty index matrix may have any numeric dtype (``np.array([])``
    is float64).
    """
    dims, _ = _check_shape(shape, max_elements)
    if not isinstance(indices, np.ndarray):
        raise PackingError(f"indices: expected a numpy array, found {describe(indices)}")
    if indices.ndim != 2 or indices.shape[1] != len(dims):
        raise PackingError(
            f"indices: expected shape (nnz, {len(dims)}) for a {len(dims)}-d tensor, "
            f"found shape {indices.shape}"
        )
    nnz = indices.shape[0]
    if indices.dtype.kind not in "iu" and not (nnz == 0 and indices.dtype.kind == "f"):
        raise PackingError(f"indices: expected an integer dtype, found {indices.dtype}")
    if len(dims) == 0:
        if nnz > 1:
            raise PackingError(f"indices: expected at most 1 row for a 0-d tensor, found {nnz}")
        return np.zeros(nnz, dtype=np.intp)
    if nnz == 0:
        return np.zeros(0, dtype=np.intp)
    idx = indices
    if not np.can_cast(idx.dtype, np.intp, "safe"):  # uint64 (or int64 on 32-bit)
        if int(idx.max()) > _INTP_MAX:
            raise _coo_out_of_bounds(indices, dims)
        idx = idx.astype(np.intp)
    try:
        flat: IntpArray = np.ravel_multi_index(tuple(idx.T), dims, mode="raise")
    except ValueError:
        raise _coo_out_of_bounds(indices, dims) from None
    return flat


def rebuild_dense(
    values: Array,
    indices: Array,
    shape: ShapeLike,
    *,
    base: Array | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Array:
    """Dense tensor from FL4Health's COO triple; inverse of :func:`extract_coo`.

    Equivalent to ``torch.sparse_coo_tensor(indices.T, values, shape).to_dense()``
    for valid input. Checks, all raising :class:`~fedpack.PackingError`:

    * ``values`` 1-D numeric; ``indices`` 2-D integer ``(nnz, ndim)`` with
      ``nnz == len(values)`` and ``ndim == len(shape)``;
    * ``shape`` non-negative integers with at most ``max_elements`` elements,
      checked *before* anything of that size is allocated;
    * every index ``0 <= indices[:, d] < shape[d]``;
    * no position appears twice (torch would sum duplicates; fedpack refuses
      them). Rows may come in any order; unsorted rows cost one sort.

    Unsent elements are zero, or keep their value from ``base`` (same shape and
    dtype as the result, never modified). Returns a new C-contiguous array of
    dtype ``values.dtype``.
    """
    vals = _check_values(values, None)
    dims, _ = _check_shape(shape, max_elements)
    if isinstance(indices, np.ndarray) and indices.ndim == 2 and indices.shape[0] != len(vals):
        raise PackingError(
            f"indices: expected {len(vals)} rows (one per value), found {indices.shape[0]}"
        )
    return scatter_flat(vals, flat_from_coo(indices, dims, max_elements=max_elements), dims, base)


def scatter_flat(
    values: Array, flat: IntpArray, dims: tuple[int, ...], base: Array | None = None
) -> Array:
    """The dense tensor of checked ``values`` at checked in-bounds flat positions ``flat``.

    What :func:`rebuild_dense` does once its input is validated (and what ``densify`` calls
    with the positions its own checks computed): a position given twice and a ``base`` of
    another shape or dtype are refused.
    """
    _check_no_duplicates(flat, "indices")
    if base is not None:
        _check_base(base, dims, values.dtype)
    size = 1
    for d in dims:
        size *= d
    out = _new_output(size, values.dtype, base)
    out[flat] = values
    return out.reshape(dims)


# ---------------------------------------------------------------------------
# compact encodings
# ---------------------------------------------------------------------------


def compact_nbytes(nnz: int, size: int, itemsize: int) -> dict[str, int]:
    """Payload bytes of each compact encoding for ``nnz`` sent elements.

    ``flat``: ``nnz * (index itemsize + itemsize)``; ``bitmask``:
    ``ceil(size / 8) + nnz * itemsize``; ``dense``: ``size * itemsize``.
    """
    idx_item = _index_dtype(size).itemsize
    return {
        "dense": size * itemsize,
        "flat": nnz * (idx_item + itemsize),
        "bitmask": (size + 7) // 8 + nnz * itemsize,
    }


def _check_flat_input(
    values: object, flat_indices: object, shape: ShapeLike
) -> tuple[Array, Array, tuple[int, ...], int]:
    dims, size = _check_shape(shape, _INTP_MAX)
    vals = _check_values(values, None)
    if not isinstance(flat_indices, np.ndarray):
        raise PackingError(f"flat_indices: expected a numpy array, found {describe(flat_indices)}")
    flat = flat_indices
    if flat.ndim != 1 or flat.dtype.kind not in "iu":
        raise PackingError(f"flat_indices: expected a 1-D integer array, found {describe(flat)}")
    if flat.shape[0] != vals.shape[0]:
        raise PackingError(
            f"flat_indices: expected {vals.shape[0]} entries (one per value), found {flat.shape[0]}"
        )
    _check_sorted_unique(flat, size, "flat_indices")
    return vals, flat, dims, size


def encode_compact(values: Array, flat_indices: Array, shape: ShapeLike) -> tuple[str, list[Array]]:
    """Smallest compact wire form of one sparse tensor.

    ``values`` (1-D) and ``flat_indices`` (1-D integer, strictly increasing, in
    ``[0, size)``) are what :func:`extract_flat` or :func:`extract_selected`
    return. Returns ``(encoding, arrays)`` with, for ``n = len(values)`` and
    ``k = values.itemsize``:

    ``"flat"``, ``n * (w + k)`` bytes
        ``[flat_indices.astype(uintW), values]``, ``uintW`` the narrowest of
        uint8/16/32/64 holding ``size - 1``.
    ``"bitmask"``, ``ceil(size / 8) + n * k`` bytes
        ``[np.packbits(mask, bitorder="little"), values]``, ``mask`` the C-order
        bool mask of sent positions; padding bits are zero.
    ``"dense"``, ``size * k`` bytes
        ``[dense]``, the 1-D C-order tensor with unsent elements set to zero. Only
        a candidate when no value equals zero (otherwise a sent zero would be
        indistinguishable from "not sent").

    The encoding with the fewest payload bytes wins; ties go to ``dense``, then
    ``flat``, then ``bitmask``. The result is therefore never larger than the
    dense tensor plus ``ceil(size / 8)`` bytes. ``values`` is shipped as is (not
    copied).
    """
    vals, flat, _, size = _check_flat_input(values, flat_indices, shape)
    nnz = vals.shape[0]
    sizes = compact_nbytes(nnz, size, vals.dtype.itemsize)
    dense_ok = int(np.count_nonzero(vals)) == nnz
    candidates = [e for e in ENCODINGS if e != "dense" or dense_ok]
    best = min(candidates, key=lambda e: (sizes[e], ENCODINGS.index(e)))
    if best == "flat":
        return "flat", [flat.astype(_index_dtype(size)), vals]
    if best == "bitmask":
        mask = np.zeros(size, dtype=np.bool_)
        mask[flat] = True
        return "bitmask", [np.packbits(mask, bitorder="little"), vals]
    dense = np.zeros(size, dtype=vals.dtype)
    dense[flat] = vals
    return "dense", [dense]


def _check_arrays(encoding: object, arrays: object) -> list[Array]:
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise PackingError(
            f"encoding: expected one of {', '.join(repr(e) for e in ENCODINGS)}, found {encoding!r}"
        )
    if not isinstance(arrays, (list, tuple)):
        raise PackingError(f"arrays: expected a list of arrays, found {describe(arrays)}")
    want = 1 if encoding == "dense" else 2
    if len(arrays) != want:
        raise PackingError(
            f"arrays: expected {want} array{'s' if want > 1 else ''} for encoding "
            f"{encoding!r}, found {len(arrays)}"
        )
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise PackingError(f"arrays[{i}]: expected a numpy array, found {describe(a)}")
    return list(arrays)


def _parse_compact(
    encoding: str, arrays: list[Array], size: int, dtype: np.dtype[Any] | None
) -> tuple[Array, Array | None]:
    """Validate a compact payload; return ``(values, positions)``.

    ``positions`` is None for ``dense`` (``values`` is then the whole tensor),
    else a 1-D integer array of strictly increasing flat positions.
    """
    if encoding == "dense":
        dense = _check_values(arrays[0], dtype, "dense")
        if dense.shape[0] != size:
            raise PackingError(
                f"dense: expected {size} elements (tensor size), found {dense.shape[0]}"
            )
        return dense, None
    vals = _check_values(arrays[1], dtype)
    first = arrays[0]
    if encoding == "flat":
        if first.ndim != 1 or first.dtype.kind != "u":
            raise PackingError(
                f"flat indices: expected a 1-D unsigned integer array, found {describe(first)}"
            )
        if first.shape[0] != vals.shape[0]:
            raise PackingError(
                f"flat indices: expected {vals.shape[0]} entries (one per value), "
                f"found {first.shape[0]}"
            )
        _check_sorted_unique(first, size, "flat indices")
        return vals, first
    _check_bitmask(first, size)
    flat = np.flatnonzero(np.unpackbits(first, count=size, bitorder="little").view(np.bool_))
    if flat.shape[0] != vals.shape[0]:
        raise _popcount_error(vals.shape[0], flat.shape[0])
    return vals, flat


def _check_bitmask(mask: Array, size: int) -> None:
    """A bitmask of ``size`` bits: uint8 of ``ceil(size / 8)`` bytes, zero padding bits."""
    nbytes = (size + 7) // 8
    if mask.dtype != np.uint8 or mask.shape != (nbytes,):
        raise PackingError(
            f"bitmask: expected a uint8 array of shape ({nbytes},) for {size} elements, "
            f"found {describe(mask)}"
        )
    tail = size % 8
    if tail and int(mask[-1]) >> tail:
        raise PackingError(
            f"bitmask: expected padding bits after element {size} to be zero, "
            f"found last byte {int(mask[-1]):#04x}"
        )


def _popcount_error(values: int, bits: int | str) -> PackingError:
    return PackingError(
        f"bitmask: expected popcount equal to the number of values ({values}), "
        f"found {bits} set bits"
    )


def _chunk_positions(mask: Array, count: int) -> IntpArray:
    """Chunk-local positions of the set bits among the first ``count`` bits of ``mask``.

    ``np.flatnonzero`` on a bool array scans with ``memchr`` when at most 10% of it is true:
    one call and one mispredicted branch per true element, about three times slower than its
    branch-free scan at 5-10% density. In that band, true elements are appended to lift
    the density above 10%; their positions come after every real one and are cut off. Below
    2% the ``memchr`` scan is the faster one and is kept.
    """
    bits = np.unpackbits(mask, count=count, bitorder="little").view(np.bool_)
    n = int(np.count_nonzero(bits))
    if not _SPARSE_SCAN * count < n <= _MEMCHR_SCAN * count:
        return np.flatnonzero(bits)
    extra = count // 9 + 1  # (n + extra) / (count + extra) > 10%
    padded = np.concatenate([bits, np.ones(extra, dtype=np.bool_)])
    return np.flatnonzero(padded)[:n]


def _rebuild_bitmask(mask: Array, vals: Array, size: int, base: Array | None) -> Array:
    """A new 1-D array: ``base`` (or zeros) with ``out[mask] = vals``, popcount checked.

    Works in chunks of :data:`_REBUILD_CHUNK` elements: each output chunk is filled (zeros or
    the base's values), the chunk's bits are unpacked and turned into chunk-local positions,
    and the values scattered, all while the chunk is in cache; the output is written to memory
    once. A boolean-mask assignment (or ``np.copyto(..., where=mask)``) would avoid the
    positions but branches on every element: about 20x slower at 50% density on random masks.
    """
    out = np.empty(size, dtype=vals.dtype)
    src = None if base is None else _c_ravel(base)
    nvals = vals.shape[0]
    pos = 0
    for start in range(0, size, _REBUILD_CHUNK):
        stop = min(start + _REBUILD_CHUNK, size)
        chunk = out[start:stop]
        if src is None:
            chunk.fill(0)
        else:
            chunk[...] = src[start:stop]
        local = _chunk_positions(mask[start // 8 : (stop + 7) // 8], stop - start)
        n = local.shape[0]
        if pos + n > nvals:
            raise _popcount_error(nvals, f"more than {pos + n - 1}")
        chunk[local] = vals[pos : pos + n]
        pos += n
    if pos != nvals:
        raise _popcount_error(nvals, pos)
    return out


def decode_compact(
    encoding: str,
    arrays: Sequence[Array],
    shape: ShapeLike,
    dtype: npt.DTypeLike,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[Array, IntpArray]:
    """Inverse of :func:`encode_compact`: ``(values, flat_indices)``.

    ``flat_indices`` is 1-D ``intp``, strictly increasing. For ``"dense"`` the
    sent elements are the non-zero ones (``!= 0``, NaN included). Validates, all
    raising :class:`~fedpack.PackingError`: the encoding name; the number of
    arrays; ``shape`` (at most ``max_elements`` elements, checked before
    allocating); the values' dtype equals ``dtype`` and they are 1-D; ``flat``
    indices 1-D unsigned, one per value, strictly increasing and ``< size``;
    ``bitmask`` uint8 of length ``ceil(size / 8)``, zero padding bits, popcount
    equal to the number of values; ``dense`` exactly ``size`` elements.
    """
    _, size = _check_shape(shape, max_elements)
    arrs = _check_arrays(encoding, arrays)
    vals, pos = _parse_compact(encoding, arrs, size, np.dtype(dtype))
    if pos is None:
        flat = np.flatnonzero(vals if vals.dtype == np.bool_ else np.not_equal(vals, 0))
        return np.take(vals, flat), flat
    return vals, pos.astype(np.intp, copy=False)


def rebuild_from_compact(
    encoding: str,
    arrays: Sequence[Array],
    shape: ShapeLike,
    *,
    dtype: npt.DTypeLike | None = None,
    base: Array | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Array:
    """Dense tensor straight from a compact payload (no COO round trip).

    Same validation as :func:`decode_compact`; ``dtype`` (if given) must match
    the shipped values. Unsent elements are zero, or keep their value from
    ``base`` (same shape and dtype; never modified). For ``"dense"`` without a
    base the result is a copy of the shipped tensor (no scatter); with a base,
    the shipped elements that are non-zero replace the base's. Returns a new
    C-contiguous array of ``shape``.
    """
    dims, size = _check_shape(shape, max_elements)
    arrs = _check_arrays(encoding, arrays)
    want = None if dtype is None else np.dtype(dtype)
    if encoding == "bitmask":  # the fast path: no global positions array
        vals = _check_values(arrs[1], want)
        _check_bitmask(arrs[0], size)
        if base is not None:
            _check_base(base, dims, vals.dtype)
        fast = _fast.rebuild_bitmask(arrs[0], vals, size, base)  # only after every check
        if fast is not None:
            return fast.reshape(dims)
        return _rebuild_bitmask(arrs[0], vals, size, base).reshape(dims)
    vals, pos = _parse_compact(encoding, arrs, size, want)
    if base is not None:
        _check_base(base, dims, vals.dtype)
    if pos is None:
        if base is None:
            return np.array(vals, order="C", copy=True).reshape(dims)
        out = _new_output(size, vals.dtype, base)
        np.copyto(out, vals, where=vals if vals.dtype == np.bool_ else np.not_equal(vals, 0))
        return out.reshape(dims)
    out = _new_output(size, vals.dtype, base)
    out[pos] = vals
    return out.reshape(dims)
