"""Numpy kernels of the ``quantize`` packer: one float array <-> codes and scales.

Private module of ``fedpack_quantize``; only numpy is imported.

Scheme (symmetric, zero is exact)
---------------------------------
An array is cut into blocks of ``block`` elements in C order (the last block may be shorter),
or is one block (``block=None``, "per tensor"). Each block gets one float32 scale
``s = max|x| / L`` with ``L = 127`` (8 bits) or ``L = 7`` (4 bits), and each element the integer
code ``q`` in ``[-L, L]``:

- nearest rounding: ``q = rint(x / s)``, so ``|x - q s| <= s / 2``;
- stochastic rounding: ``q = floor(x / s + u)`` with ``u`` uniform in ``[0, 1)``, so
  ``E[q s] = x`` (unbiased) and ``|x - q s| < s``.

8-bit codes are an ``int8`` array of the input's shape. 4-bit codes are stored biased
(``q + 8``, in ``1..15``), two a byte, the first element in the low nibble, as a 1-D ``uint8``
array of ``ceil(size / 2)`` bytes; the high nibble after an odd last element is zero.

The arithmetic is done in float32 for float16 and float32 arrays, in float64 for float64 ones:
float32 never goes through float64. Work is done in chunks of about 256K elements so that the
temporaries stay in cache: quantizing reads the input twice (the peak, then the codes; once
for per-block scales) and dequantizing writes the output once.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fedpack import PackingError

__all__ = [
    "BITS",
    "LEVELS",
    "code_shape",
    "dequantize",
    "error_bound",
    "quantize",
    "scale_count",
]

#: The supported code widths.
BITS: Final[tuple[int, ...]] = (8, 4)
#: The largest code magnitude for each width.
LEVELS: Final[dict[int, int]] = {8: 127, 4: 7}
#: Elements processed per step (a multiple of 8): 1 MB of float32, temporaries stay in cache;
#: larger chunks mean fewer numpy calls per tensor (measured: 256K beat 64K and 128K).
CHUNK: Final[int] = 1 << 18
#: Blocks shorter than this are reduced and scaled as flat arrays, longer ones as rows.
_ROW_BLOCK: Final[int] = 512

_F32_TINY: Final[float] = float(np.finfo(np.float32).tiny)
_F32_MAX: Final[float] = float(np.finfo(np.float32).max)

Array = npt.NDArray[Any]
F32Array = npt.NDArray[np.float32]


def work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """float64 for float64 arrays, float32 for float16 and float32 (no float64 detour)."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def scale_count(size: int, block: int | None) -> int:
    """How many scales an array of ``size`` elements has: 1 per tensor, else one per block."""
    if block is None:
        return 1
    return -(-size // block)


def code_shape(shape: tuple[int, ...], bits: int) -> tuple[int, ...]:
    """The shape of the codes array: the array's own (8 bits) or ``(ceil(size / 2),)``."""
    if bits == 8:
        return shape
    return ((math.prod(shape) + 1) // 2,)


def error_bound(bits: int, rounding: str) -> float:
    """The worst error relative to a block's ``max|x|``: ``1/(2L)`` nearest, ``1/L`` stochastic."""
    levels = LEVELS[bits]
    return 1.0 / (2 * levels) if rounding == "nearest" else 1.0 / levels


def _flat(x: Array) -> Array:
    return x.reshape(-1) if x.flags.c_contiguous else np.ravel(x, order="C")


def _chunk_for(block: int | None) -> int:
    """Chunk length: a whole number of blocks, even (4-bit pairs never straddle chunks)."""
    if block is None:
        return CHUNK
    per = max(1, CHUNK // block)
    if (per * block) % 2:
        per += 1
    return per * block


def _peak(v: Array) -> float:
    """max|v| in one pass over memory (the max and min of each chunk, read while in cache)."""
    peak = 0.0
    for start in range(0, v.shape[0], CHUNK):
        chunk = v[start : start + CHUNK]
        top = max(float(chunk.max()), -float(chunk.min()))
        if not math.isfinite(top):
            return math.nan  # NaN or infinity: refused by the caller
        peak = max(peak, top)
    return peak


def _block_peaks(chunk: Array, t: Array, block: int) -> Array:
    """Per-block max|x| of one chunk (a whole number of blocks but maybe a short last one).

    ``t`` receives ``|chunk|``. The maxima are taken on its bits as unsigned integers, which
    order non-negative floats as the floats do (+inf above every finite value, NaN above
    +inf: either is refused by the caller) and reduce about twice as fast as floats. Short
    blocks are reduced with one ``np.maximum.reduceat`` (a row-wise ``max(axis=1)`` pays
    numpy's per-row overhead: twice as slow at 128).
    """
    np.abs(chunk, out=t, dtype=t.dtype)
    m = chunk.shape[0]
    bits = t[:m].view(np.uint64 if t.dtype.itemsize == 8 else np.uint32)
    if block < _ROW_BLOCK:
        small: Array = np.maximum.reduceat(bits, np.arange(0, m, block)).view(t.dtype)
        return small
    full = (m // block) * block
    peaks: Array = bits[:full].reshape(-1, block).max(axis=1)
    if full < m:
        peaks = np.concatenate([peaks, bits[full:].max(keepdims=True)])
    rows: Array = peaks.view(t.dtype)
    return rows


def _per_block(t: Array, factors: Array, block: int, out: Array) -> None:
    """``out = t * factors[block of each element]``; ``t`` block-aligned, may be ``out``.

    Short blocks: one flat multiply by the factors repeated ``block`` times (a broadcast over
    ``(blocks, block)`` rows pays numpy's per-row overhead); long blocks: the broadcast.
    """
    m = t.shape[0]
    if block < _ROW_BLOCK:
        np.multiply(t, np.repeat(factors, block)[:m], out=out)
        return
    full = (m // block) * block
    np.multiply(
        t[:full].reshape(-1, block),
        factors[: full // block, None],
        out=out[:full].reshape(-1, block),
    )
    if full < m:
        np.multiply(t[full:], factors[full // block], out=out[full:])


def _check_finite(peak: float, where: str, dtype: np.dtype[Any]) -> None:
    if not math.isfinite(peak):
        raise PackingError(
            f"quantize: {where}: expected finite values, found NaN or infinity in a {dtype} array"
        )


def _encode(
    codes: Array,
    start: int,
    t: Array,
    bits: int,
    rng: np.random.Generator | None,
    noise: Array | None,
    nib: Array | None,
) -> None:
    """Round the chunk ``t`` (divided by its scale: in ``[-L, L]``) into codes from ``start``.

    ``t`` is overwritten. Nearest rounding: 8 bits, ``rint`` straight into the int8 codes;
    4 bits, ``trunc(t + 8.5)`` (``t + 8.5 >= 1``, so truncation is ``floor``: round half up)
    straight into the biased nibbles. Stochastic: ``floor(t + u)``, clipped to ``[-L, L]``
    (float rounding of ``t + u`` may reach ``L + 1``).
    """
    n = t.shape[0]
    levels = LEVELS[bits]
    if rng is not None and noise is not None:
        u = noise[:n]
        rng.random(out=u, dtype=u.dtype)
        np.add(t, u, out=t)
        np.floor(t, out=t)
        np.clip(t, -levels, levels, out=t)
        if bits == 4:
            np.add(t, 8, out=t)
    elif bits == 8:
        np.rint(t, out=t)  # in place, then one cast: faster than rint into int8
    else:
        np.add(t, 8.5, out=t)
    if bits == 8:
        np.copyto(codes[start : start + n], t, casting="unsafe")
        return
    if nib is None:  # pragma: no cover - always allocated for 4 bits
        raise ValueError("4-bit codes need a nibble buffer")
    u8 = nib[:n]
    np.copyto(u8, t, casting="unsafe")
    half = n // 2
    # Pairs of nibbles as little-endian uint16 ``hi << 8 | lo``: ``w | w >> 4`` has
    # ``hi << 4 | lo`` in its low byte, which the cast to uint8 keeps.
    w = u8[: 2 * half].view("<u2")
    dst = codes[start // 2 : start // 2 + half]
    shifted = np.right_shift(w, 4)
    np.bitwise_or(shifted, w, out=shifted)
    np.copyto(dst, shifted, casting="unsafe")
    if n % 2:
        codes[start // 2 + half] = u8[n - 1]


def quantize(
    x: Array,
    *,
    bits: int,
    block: int | None,
    rng: np.random.Generator | None = None,
    where: str = "array",
) -> tuple[Array, F32Array] | None:
    """``(codes, scales)`` of a float array, or ``None`` if it must be sent exactly.

    ``rng`` selects stochastic rounding (``None``: nearest). ``None`` is returned when a
    non-zero scale falls outside float32's normal range (a float64 array beyond float32's
    range, or values so small that the float32 scale would lose the error bound). A NaN or
    infinite value raises :class:`fedpack.PackingError`.
    """
    levels = LEVELS[bits]
    work = work_dtype(x.dtype)
    v = _flat(x)
    n = v.shape[0]
    chunk = _chunk_for(block)
    tmp = np.empty(min(chunk, max(n, 1)), dtype=work)
    noise = np.empty(tmp.shape[0], dtype=work) if rng is not None else None
    nib = np.empty(tmp.shape[0], dtype=np.uint8) if bits == 4 else None
    codes = np.empty(n, dtype=np.int8) if bits == 8 else np.empty((n + 1) // 2, dtype=np.uint8)
    if block is None:
        peak = _peak(v)
        _check_finite(peak, where, x.dtype)
        if peak != 0 and not _F32_TINY <= peak / levels <= _F32_MAX:
            return None
        scale = np.float32(peak / levels)
        scales = np.array([scale], dtype=np.float32)
        inv = work.type(1.0 / float(scale)) if scale else work.type(0.0)
        for start in range(0, n, chunk):
            c = v[start : start + chunk]
            t = tmp[: c.shape[0]]
            np.multiply(c, inv, out=t, dtype=work)
            _encode(codes, start, t, bits, rng, noise, nib)
    else:
        scales = np.empty(scale_count(n, block), dtype=np.float32)
        for start in range(0, n, chunk):
            c = v[start : start + chunk]
            t = tmp[: c.shape[0]]
            peaks = _block_peaks(c, t, block)
            top = float(peaks.max())
            _check_finite(top, where, x.dtype)
            nonzero = peaks[peaks != 0]
            if nonzero.size and not (
                float(nonzero.min()) / levels >= _F32_TINY
                and float(nonzero.max()) / levels <= _F32_MAX
            ):
                return None
            s = (peaks / levels).astype(np.float32)
            first = start // block
            scales[first : first + s.shape[0]] = s
            inv = np.zeros(s.shape[0], dtype=work)
            np.divide(1.0, s, out=inv, where=s != 0, dtype=work)
            if c.dtype == work:
                _per_block(c, inv, block, t)
            else:  # float16: |c| is in t already, the signs are not
                np.copyto(t, c, casting="unsafe")
                _per_block(t, inv, block, t)
            _encode(codes, start, t, bits, rng, noise, nib)
    if bits == 8:
        codes = codes.reshape(x.shape)
    return codes, scales


def _scale_in_place(t: Array, scales: F32Array, block: int | None, start: int) -> None:
    """``t *= scale`` of each block, ``t`` the chunk of elements ``start..`` (block-aligned)."""
    if block is None:
        np.multiply(t, t.dtype.type(scales[0]), out=t)
        return
    first = start // block
    s = scales[first : first + scale_count(t.shape[0], block)].astype(t.dtype, copy=False)
    _per_block(t, s, block, t)


def _unpack_nibbles(packed: Array, wide: Array, shifted: Array) -> Array:
    """The signed 4-bit codes of ``packed`` (biased nibbles, first in the low one) as int8.

    Pure ufuncs on little-endian uint16 pairs, no lookup (a gather costs more than these five
    passes over half as many items): byte ``0xHL`` -> ``0x0H0L``, then each byte ``n`` ->
    ``(n + 0x78) ^ 0x80``, which is ``n - 8`` as an int8 (no carry crosses a byte: ``n <= 15``).
    ``wide`` and ``shifted`` are ``<u2`` scratch buffers of at least ``len(packed)`` items.
    """
    w = wide[: packed.shape[0]]
    t = shifted[: packed.shape[0]]
    np.copyto(w, packed, casting="unsafe")
    np.left_shift(w, 4, out=t)
    np.bitwise_or(w, t, out=w)
    np.bitwise_and(w, 0x0F0F, out=w)
    np.add(w, 0x7878, out=w)
    np.bitwise_xor(w, 0x8080, out=w)
    codes: Array = w.view(np.int8)
    return codes


def dequantize(
    codes: Array,
    scales: F32Array,
    *,
    bits: int,
    block: int | None,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
) -> Array:
    """The float array of ``shape`` and ``dtype`` from checked codes and scales (a new array).

    The caller has checked that ``codes`` has :func:`code_shape` and the right dtype, and that
    ``scales`` holds :func:`scale_count` finite non-negative float32 scales. Every code is
    accepted: a code the sender never produces (-128, or a 4-bit ``0``) decodes to ``-128 s``
    or ``-8 s``, still bounded by the scale.

    Chunk by chunk, while it is in cache: the int8 codes (unpacked first for 4 bits) are cast
    into the output, which is then multiplied in place by its scales, in the work dtype (for
    a float16 output, in a float32 buffer cast into it). Each value is
    ``work(code) * work(scale)`` rounded once to ``dtype``.
    """
    n = math.prod(shape)
    out = np.empty(n, dtype=dtype)
    work = work_dtype(out.dtype)
    chunk = _chunk_for(block)
    flat = codes.reshape(-1)
    direct = out.dtype == work
    tmp = None if direct else np.empty(min(chunk, n), dtype=work)
    if bits == 4:
        pairs = (min(chunk, n) + 1) // 2
        wide = np.empty(pairs, dtype="<u2")
        shifted = np.empty(pairs, dtype="<u2")
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        if bits == 8:
            c = flat[start : start + m]
        else:
            c = _unpack_nibbles(flat[start // 2 : start // 2 + (m + 1) // 2], wide, shifted)[:m]
        t = out[start : start + m] if tmp is None else tmp[:m]
        np.copyto(t, c, casting="unsafe")
        _scale_in_place(t, scales, block, start)
        if tmp is not None:
            np.copyto(out[start : start + m], t, casting="unsafe")
    return out.reshape(shape)
