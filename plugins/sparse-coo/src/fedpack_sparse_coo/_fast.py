"""Optional compiled kernel for the bitmask rebuild (the ``fast`` extra: numba).

Private module of ``fedpack_sparse_coo``. numba is imported lazily, on the first
bitmask rebuild only, never at ``import fedpack_sparse_coo`` or ``get_packer``.
When numba is not installed, or ``FEDPACK_SPARSE_KERNEL=numpy`` is set, every
rebuild takes the numpy path of :mod:`fedpack_sparse_coo._kernels`.

The kernel runs only after the payload has passed every check of the numpy path
(dtype, length, padding bits, base shape and dtype); it copies raw bits (the
arrays are viewed as unsigned integers of their item size), so its output is
bit for bit the numpy path's, NaN payloads and ``-0.0`` included. A popcount that
does not match the number of values is detected by the kernel (which never
reads past the values); the caller then lets the numpy path raise its usual
error.

``FEDPACK_SPARSE_KERNEL`` (read at every rebuild):

``auto`` (default, or unset)
    numba when importable, numpy otherwise.
``numpy``
    always numpy.
``numba``
    numba, and :class:`~fedpack.PackingError` if it cannot be imported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fedpack import PackingError

__all__ = ["ENV_VAR", "compile_seconds", "kernel_name", "rebuild_bitmask"]

ENV_VAR: Final[str] = "FEDPACK_SPARSE_KERNEL"
_CHOICES: Final[tuple[str, ...]] = ("auto", "numpy", "numba")
_VIEWS: Final[dict[int, type[np.unsignedinteger[Any]]]] = {
    1: np.uint8,
    2: np.uint16,
    4: np.uint32,
    8: np.uint64,
}

Array = npt.NDArray[Any]
_Kernels = tuple[Callable[..., int], Callable[..., int]]

_state: dict[str, Any] = {"loaded": False, "kernels": None, "compile_seconds": 0.0}


def _choice() -> str:
    raw = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if raw not in _CHOICES:
        raise PackingError(
            f"{ENV_VAR}: expected one of {', '.join(repr(c) for c in _CHOICES)}, found {raw!r}"
        )
    return raw


def _tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The lookup tables of the kernels, indexed by a mask byte ``b``.

    ``rank[8 * b + j]`` is the number of set bits of ``b`` below bit ``j`` (256 rows of 8,
    flattened: the row starts at ``b << 3``, no multiply), ``popc[b]`` the number of set
    bits of ``b``.
    """
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little")
    popc = bits.sum(axis=1, dtype=np.uint8)
    rank = (np.cumsum(bits, axis=1, dtype=np.uint8) - bits).astype(np.uint8).reshape(-1)
    return rank, popc


def _build() -> _Kernels | None:
    """Import numba and define the kernels; None if numba is not importable."""
    try:
        import numba
    except ImportError:
        return None

    # One mask byte (8 elements) per step. rank[8b + j] is the number of set bits of b below
    # bit j: element j of the byte takes value p + rank[8b + j], kept or replaced by zero (or
    # the base) through an all-ones / all-zeros bit mask, with no branch and no dependency
    # between the 8 elements; p advances by popc[b] once per byte. While 8 values are left,
    # a mask byte cannot make the reads run past them; after that, reads are clamped, so
    # that a bad popcount never reads out of bounds. The returned count tells the caller
    # whether the popcount matched. One kernel without a base, one with: fewer live values
    # in the loop than one kernel with a flag (about 10% faster).

    def fill_zero(  # pragma: no cover - compiled
        mask: Array, vals: Array, out: Array, rank: Array, popc: Array, zero: Any
    ) -> int:
        size = out.shape[0]
        nvals = vals.shape[0]
        last = nvals - 1 if nvals > 0 else 0
        p = 0
        k = 0
        nbytes = size >> 3
        while k < nbytes and p + 8 <= nvals:
            b = mask[k]
            i = k << 3
            r = np.intp(b) << 3
            for j in range(8):
                m = zero - out.dtype.type((b >> j) & 1)
                out[i + j] = vals[p + rank[r + j]] & m
            p += popc[b]
            k += 1
        while k < nbytes:  # fewer than 8 values left: clamped reads
            b = mask[k]
            i = k << 3
            r = np.intp(b) << 3
            for j in range(8):
                v = vals[min(p + rank[r + j], last)] if nvals > 0 else zero
                m = zero - out.dtype.type((b >> j) & 1)
                out[i + j] = v & m
            p += popc[b]
            k += 1
        for i in range(nbytes << 3, size):  # the last, partial byte
            bit = (mask[i >> 3] >> (i & 7)) & 1
            v = vals[min(p, last)] if nvals > 0 else zero
            out[i] = v & (zero - out.dtype.type(bit))
            p += bit
        return p

    def fill_base(  # pragma: no cover - compiled
        mask: Array, vals: Array, src: Array, out: Array, rank: Array, popc: Array, zero: Any
    ) -> int:
        size = out.shape[0]
        nvals = vals.shape[0]
        last = nvals - 1 if nvals > 0 else 0
        p = 0
        k = 0
        nbytes = size >> 3
        while k < nbytes and p + 8 <= nvals:
            b = mask[k]
            i = k << 3
            r = np.intp(b) << 3
            for j in range(8):
                m = zero - out.dtype.type((b >> j) & 1)
                out[i + j] = (vals[p + rank[r + j]] & m) | (src[i + j] & ~m)
            p += popc[b]
            k += 1
        while k < nbytes:  # fewer than 8 values left: clamped reads
            b = mask[k]
            i = k << 3
            r = np.intp(b) << 3
            for j in range(8):
                v = vals[min(p + rank[r + j], last)] if nvals > 0 else zero
                m = zero - out.dtype.type((b >> j) & 1)
                out[i + j] = (v & m) | (src[i + j] & ~m)
            p += popc[b]
            k += 1
        for i in range(nbytes << 3, size):  # the last, partial byte
            bit = (mask[i >> 3] >> (i & 7)) & 1
            v = vals[min(p, last)] if nvals > 0 else zero
            m = zero - out.dtype.type(bit)
            out[i] = (v & m) | (src[i] & ~m)
            p += bit
        return p

    t0 = time.perf_counter()
    try:
        kernels: _Kernels = (
            numba.njit(cache=True, nogil=True)(fill_zero),
            numba.njit(cache=True, nogil=True)(fill_base),
        )
    except (RuntimeError, OSError):  # no writable cache location: compile in memory
        kernels = (numba.njit(nogil=True)(fill_zero), numba.njit(nogil=True)(fill_base))
    _state["compile_seconds"] += time.perf_counter() - t0
    return kernels


def _kernels() -> _Kernels | None:
    if not _state["loaded"]:
        _state["tables"] = _tables()
        _state["kernels"] = _build()
        _state["loaded"] = True
    kernels: _Kernels | None = _state["kernels"]
    return kernels


def kernel_name() -> str:
    """``"numba"`` or ``"numpy"``: the path the next bitmask rebuild takes.

    Imports numba (once) unless :data:`ENV_VAR` is ``numpy``.
    """
    choice = _choice()
    if choice == "numpy":
        return "numpy"
    if _kernels() is None:
        if choice == "numba":
            raise PackingError(
                f"{ENV_VAR}=numba: expected numba to be importable (install "
                "fedpack-sparse-coo[fast]), found it missing"
            )
        return "numpy"
    return "numba"


def compile_seconds() -> float:
    """Seconds this process spent setting up the compiled kernel.

    That is: decorating it and its first call per dtype width (compiling it, or
    loading it from numba's cache), excluding the import of numba itself; 0.0
    when the compiled path was never used.
    """
    return float(_state["compile_seconds"])


def rebuild_bitmask(mask: Array, vals: Array, size: int, base: Array | None) -> Array | None:
    """The compiled bitmask rebuild, or None when the numpy path must run instead.

    None means: the compiled path is off or unavailable, the dtype's item size is
    not 1, 2, 4 or 8 bytes, or the popcount does not match ``len(vals)`` (the numpy
    path then raises its usual error). Inputs must already be validated as in
    ``_kernels.rebuild_from_compact``. Returns a new 1-D array of ``vals.dtype``.
    """
    view = _VIEWS.get(vals.dtype.itemsize)
    if view is None or vals.dtype.hasobject or kernel_name() != "numba":
        return None
    kernels = _kernels()
    if kernels is None:  # pragma: no cover - kernel_name() said numba
        return None
    key = f"warm {view.__name__} {base is None}"
    first = key not in _state
    t0 = time.perf_counter()
    out = np.empty(size, dtype=vals.dtype)
    v = vals.view(view)
    o = out.view(view)
    rank, popc = _state["tables"]
    if base is None:
        seen = kernels[0](mask, v, o, rank, popc, view(0))
    else:
        seen = kernels[1](mask, v, np.ravel(base, order="C").view(view), o, rank, popc, view(0))
    if int(seen) != vals.shape[0]:
        return None  # popcount mismatch: the numpy path raises the error
    if first:  # compilation (or loading numba's cache) happens in this first call
        _state[key] = True
        _state["compile_seconds"] += time.perf_counter() - t0
    return out
