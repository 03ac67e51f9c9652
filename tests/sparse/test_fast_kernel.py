"""The optional compiled bitmask rebuild (``fedpack-sparse-coo[fast]``, numba).

The numpy path is forced with ``FEDPACK_SPARSE_KERNEL=numpy``; tests that need numba
skip when it is not installed (the ``torch`` tox env installs it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fedpack_sparse_coo import _fast
from fedpack_sparse_coo import _kernels as K
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpack import PackingError

Array = npt.NDArray[Any]
F32 = np.float32
DTYPES = [
    "bool",
    "int8",
    "uint16",
    "int64",
    "float16",
    "float32",
    ">f4",
    "float64",
    "complex64",
    "complex128",
]
CHUNK = 1 << 16
SIZES = st.one_of(
    st.integers(0, 300),
    st.sampled_from([CHUNK - 9, CHUNK - 1, CHUNK, CHUNK + 1, CHUNK + 8, 2 * CHUNK + 3]),
)


def rebuild_with(kernel: str, monkeypatch: pytest.MonkeyPatch, *args: Any, **kw: Any) -> Array:
    with monkeypatch.context() as m:
        m.setenv(_fast.ENV_VAR, kernel)
        return K.rebuild_from_compact(*args, **kw)


def random_values(rng: np.random.Generator, n: int, dtype: np.dtype[Any]) -> Array:
    """Arbitrary bit patterns (NaN payloads, -0.0, inf included) for non-bool dtypes."""
    if dtype == np.bool_:
        return rng.integers(0, 2, n).astype(np.bool_)
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype)


def test_forced_numpy_path_skips_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fast.ENV_VAR, "numpy")
    assert _fast.kernel_name() == "numpy"
    mask = np.packbits(np.array([1, 0, 1], dtype=np.bool_), bitorder="little")
    assert _fast.rebuild_bitmask(mask, np.ones(2, F32), 3, None) is None
    out = K.rebuild_from_compact("bitmask", [mask, np.array([1, 2], F32)], (3,))
    np.testing.assert_array_equal(out, [1, 0, 2])


def test_bad_kernel_choice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fast.ENV_VAR, "cuda")
    with pytest.raises(
        PackingError,
        match=r"FEDPACK_SPARSE_KERNEL: expected one of 'auto', 'numpy', 'numba', found 'cuda'",
    ):
        _fast.kernel_name()


def test_forced_numba_without_numba_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_fast._state, "loaded", True)
    monkeypatch.setitem(_fast._state, "kernels", None)
    monkeypatch.setenv(_fast.ENV_VAR, "auto")
    assert _fast.kernel_name() == "numpy"
    monkeypatch.setenv(_fast.ENV_VAR, "numba")
    with pytest.raises(
        PackingError,
        match=r"FEDPACK_SPARSE_KERNEL=numba: expected numba to be importable "
        r"\(install fedpack-sparse-coo\[fast\]\), found it missing",
    ):
        _fast.kernel_name()


numba_only = pytest.mark.usefixtures("needs_numba")


@pytest.fixture
def needs_numba() -> None:
    pytest.importorskip("numba")


@numba_only
def test_numba_is_used_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fast.ENV_VAR, "auto")
    assert _fast.kernel_name() == "numba"
    monkeypatch.setenv(_fast.ENV_VAR, "numba")
    mask = np.packbits(np.array([1, 0, 1], dtype=np.bool_), bitorder="little")
    out = _fast.rebuild_bitmask(mask, np.array([1, 2], F32), 3, None)
    assert out is not None
    np.testing.assert_array_equal(out, [1, 0, 2])
    assert _fast.compile_seconds() > 0.0


@numba_only
@settings(max_examples=150, deadline=None)
@given(
    size=SIZES,
    density=st.sampled_from([0.0, 0.03, 0.5, 0.97, 1.0]),
    dtype=st.sampled_from(DTYPES),
    with_base=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_compiled_and_numpy_paths_agree_bit_for_bit(
    size: int, density: float, dtype: str, with_base: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    bits = rng.random(size) < density
    mask = np.packbits(bits, bitorder="little")
    vals = random_values(rng, int(bits.sum()), dt)
    base = random_values(rng, size, dt) if with_base else None
    mp = pytest.MonkeyPatch()
    try:
        a = rebuild_with("numpy", mp, "bitmask", [mask, vals], (size,), base=base)
        b = rebuild_with("numba", mp, "bitmask", [mask, vals], (size,), base=base)
        mp.setenv(_fast.ENV_VAR, "numba")
        direct = _fast.rebuild_bitmask(mask, vals, size, base)
    finally:
        mp.undo()
    if dt.itemsize == 16:  # complex128: no kernel, the numpy path runs
        assert direct is None
    else:  # the kernel really ran
        assert direct is not None
        assert direct.tobytes() == a.tobytes()
    assert a.dtype == b.dtype == dt
    assert a.shape == b.shape == (size,)
    assert b.flags.c_contiguous
    assert a.tobytes() == b.tobytes()
    if base is not None:
        assert b is not base


@numba_only
def test_compiled_path_shapes_and_strided_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    bits = rng.random(4 * 5 * 6) < 0.4
    mask = np.packbits(bits, bitorder="little")
    vals = rng.standard_normal(2 * int(bits.sum())).astype(F32)[::2]  # not contiguous
    base = rng.standard_normal((4, 5, 6)).astype(F32)
    a = rebuild_with("numpy", monkeypatch, "bitmask", [mask, vals], (4, 5, 6), base=base)
    b = rebuild_with("numba", monkeypatch, "bitmask", [mask, vals], (4, 5, 6), base=base)
    assert a.tobytes() == b.tobytes()
    assert b.shape == (4, 5, 6)


@numba_only
@pytest.mark.parametrize(
    ("nvals", "found"),
    [(3, "found more than 3 set bits"), (5, "found 4 set bits")],
)
def test_compiled_path_keeps_the_popcount_errors(
    monkeypatch: pytest.MonkeyPatch, nvals: int, found: str
) -> None:
    mask = np.packbits(np.array([1, 1, 0, 1, 1], dtype=np.bool_), bitorder="little")
    for kernel in ("numpy", "numba"):
        monkeypatch.setenv(_fast.ENV_VAR, kernel)
        with pytest.raises(
            PackingError,
            match=rf"bitmask: expected popcount equal to the number of values \({nvals}\), {found}",
        ):
            K.rebuild_from_compact("bitmask", [mask, np.ones(nvals, F32)], (5,))


@numba_only
def test_compiled_path_keeps_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fast.ENV_VAR, "numba")
    bad_pad = np.array([0xFF, 0x07], dtype=np.uint8)
    with pytest.raises(PackingError, match=r"bitmask: expected padding bits after element 10"):
        K.rebuild_from_compact("bitmask", [bad_pad, np.ones(11, F32)], (10,))
    mask = np.packbits(np.ones(3, dtype=np.bool_), bitorder="little")
    with pytest.raises(PackingError, match=r"base: expected dtype float32, found float64"):
        K.rebuild_from_compact("bitmask", [mask, np.ones(3, F32)], (3,), base=np.zeros(3))
    with pytest.raises(PackingError, match=r"values: expected dtype float64, found float32"):
        K.rebuild_from_compact("bitmask", [mask, np.ones(3, F32)], (3,), dtype=np.float64)


@numba_only
def test_compiled_path_reads_read_only_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Received payloads are read-only views of the message's bytes."""
    rng = np.random.default_rng(1)
    bits = rng.random(1000) < 0.5
    mask = np.frombuffer(np.packbits(bits, bitorder="little").tobytes(), np.uint8)
    vals = np.frombuffer(rng.standard_normal(int(bits.sum())).astype(F32).tobytes(), F32)
    base = np.frombuffer(np.ones(1000, F32).tobytes(), F32).reshape(10, 100)
    assert not mask.flags.writeable
    assert not vals.flags.writeable
    assert not base.flags.writeable
    a = rebuild_with("numpy", monkeypatch, "bitmask", [mask, vals], (10, 100), base=base)
    b = rebuild_with("numba", monkeypatch, "bitmask", [mask, vals], (10, 100), base=base)
    assert a.tobytes() == b.tobytes()
    assert b.flags.writeable


# -- the byte-table kernel and the numpy scan, at their edges ----------------------------------


def test_rank_and_popcount_tables() -> None:
    rank, popc = _fast._tables()
    assert rank.shape == (256 * 8,)
    assert popc.shape == (256,)
    assert rank.dtype == popc.dtype == np.uint8
    for b in range(256):
        assert popc[b] == bin(b).count("1")
        row = [int(r) for r in rank[8 * b : 8 * b + 8]]
        assert row == [bin(b & ((1 << j) - 1)).count("1") for j in range(8)]


def skewed_bits(rng: np.random.Generator, size: int, layout: str) -> npt.NDArray[np.bool_]:
    """Masks that move the kernel between its unclamped and clamped loops at odd places."""
    if layout == "front":  # every value early, then a long stretch with a few stray bits
        bits = np.zeros(size, dtype=np.bool_)
        bits[: size // 3] = True
        if size:
            bits[rng.integers(0, size, 3)] = True
        return bits
    if layout == "back":  # a long empty stretch, then dense
        bits = np.zeros(size, dtype=np.bool_)
        bits[size - size // 5 :] = True
        return bits
    if layout == "runs":  # whole 0xFF and 0x00 bytes, alternating in runs
        runs: npt.NDArray[np.bool_] = (np.arange(size) // 40) % 2 == 0
        return runs
    # "band": 2-10% per chunk, where the numpy scan pads its bool array
    band: npt.NDArray[np.bool_] = rng.random(size) < rng.choice([0.021, 0.05, 0.0999, 0.1, 0.101])
    return band


@settings(max_examples=80, deadline=None)
@given(
    size=SIZES,
    layout=st.sampled_from(["front", "back", "runs", "band"]),
    dtype=st.sampled_from(["int8", "uint16", "float32", "float64", "complex64"]),
    with_base=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_both_paths_equal_a_mask_assignment_on_skewed_masks(
    size: int, layout: str, dtype: str, with_base: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    bits = skewed_bits(rng, size, layout)
    mask = np.packbits(bits, bitorder="little")
    vals = random_values(rng, int(bits.sum()), dt)
    base = random_values(rng, size, dt) if with_base else None
    want = np.zeros(size, dtype=dt) if base is None else base.copy()
    want[bits] = vals
    kernels = ["numpy", "numba"] if _numba_installed() else ["numpy"]
    mp = pytest.MonkeyPatch()
    try:
        for kernel in kernels:
            got = rebuild_with(kernel, mp, "bitmask", [mask, vals], (size,), base=base)
            assert got.tobytes() == want.tobytes(), kernel
    finally:
        mp.undo()


def _numba_installed() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("count", [8, 13, 1000, 4096, 65536])
@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.02, 0.021, 0.05, 0.1, 0.1001, 0.5, 1.0])
def test_chunk_positions_are_the_set_bits(count: int, fraction: float) -> None:
    """Below, inside and above the 2-10% band where the scanned bool array is padded."""
    rng = np.random.default_rng(count)
    n = round(fraction * count)
    bits = np.zeros(count, dtype=np.bool_)
    bits[rng.choice(count, n, replace=False)] = True
    mask = np.packbits(bits, bitorder="little")
    got = K._chunk_positions(mask, count)
    assert got.dtype == np.intp
    np.testing.assert_array_equal(got, np.flatnonzero(bits))


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
@pytest.mark.parametrize(
    ("extra", "found"),
    [(+1, r"found more than \d+ set bits"), (-1, r"found \d+ set bits")],
)
def test_bad_popcount_across_chunks(
    monkeypatch: pytest.MonkeyPatch, kernel: str, extra: int, found: str
) -> None:
    """Values run out early (stray bits long after them) or are left over, on 3 chunks."""
    if kernel == "numba":
        pytest.importorskip("numba")
    size = 3 * CHUNK + 5
    bits = np.zeros(size, dtype=np.bool_)
    bits[:100] = True
    bits[[CHUNK + 7, 2 * CHUNK + 1, size - 1]] = True
    mask = np.packbits(bits, bitorder="little")
    n = int(bits.sum()) - extra
    monkeypatch.setenv(_fast.ENV_VAR, kernel)
    if kernel == "numba":
        assert _fast.rebuild_bitmask(mask, np.ones(n, F32), size, None) is None
    with pytest.raises(
        PackingError,
        match=rf"bitmask: expected popcount equal to the number of values \({n}\), {found}",
    ):
        K.rebuild_from_compact("bitmask", [mask, np.ones(n, F32)], (size,))
