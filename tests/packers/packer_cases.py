"""Shared test data for the built-in packers: array zoo, strategies, extras, comparisons."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from builtin_packers import EXTRA_PACKERS, SCALAR_PACKERS
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack
from fedpack import Frame, NDArray, NDArrays
from fedpack.frame import encode_frame

#: Every built-in packer these tests cover (the others have suites of their own); the scalar ones.
PACKERS = EXTRA_PACKERS

#: The two layouts every packer is tried in: fedpack's framed one, and FL4Health's.
LAYOUTS = [pytest.param(True, id="framed"), pytest.param(False, id="fl4health")]

#: The dtypes weights are tried with.
DTYPES = tuple(
    np.dtype(d)
    for d in (
        "bool",
        "int8",
        "uint16",
        "int32",
        "int64",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
        "<U5",
        ">f4",
    )
)


def _filled(dtype: np.dtype[Any], shape: tuple[int, ...]) -> NDArray:
    size = int(np.prod(shape))
    if dtype.kind == "U":
        return np.array([f"w{i}" for i in range(size)], dtype=dtype).reshape(shape)
    return (np.arange(size) % 7 + 1).astype(dtype).reshape(shape)


def zoo() -> list[tuple[str, NDArray]]:
    """Named arrays covering every dtype and layout: 0-d, empty, C, Fortran, strided, byte order."""
    cases: list[tuple[str, NDArray]] = []
    for dtype in DTYPES:
        d = dtype.str
        cases.append((f"{d}-0d", _filled(dtype, ())))
        cases.append((f"{d}-empty", _filled(dtype, (0,))))
        cases.append((f"{d}-empty2d", _filled(dtype, (2, 0))))
        cases.append((f"{d}-c", _filled(dtype, (2, 3))))
        cases.append((f"{d}-fortran", np.asfortranarray(_filled(dtype, (3, 4)))))
        strided = _filled(dtype, (4, 6))[::2, 1::2]
        cases.append((f"{d}-strided", strided))
    cases.append(("bigendian-i8", _filled(np.dtype(">i8"), (3,))))
    cases.append(("bigendian-c16", _filled(np.dtype(">c16"), (2, 2))))
    return cases


def _relayout(array: NDArray, layout: str) -> NDArray:
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        return np.stack([array, array], axis=-1)[..., 0]
    if layout == "bigendian":
        return array.astype(array.dtype.newbyteorder(">"))
    return array


def arrays(*, numeric: bool = False) -> st.SearchStrategy[NDArray]:
    """Random arrays of every test dtype, 0-d to 3-d (empty sides included), in any layout.

    ``numeric=True`` leaves out the string dtype (SCAFFOLD control variates are numbers).
    """
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
    dtypes = [d for d in DTYPES if d.kind != "U"] if numeric else list(DTYPES)
    base = st.sampled_from(dtypes).flatmap(lambda dt: hnp.arrays(dt, shapes))
    layouts = st.sampled_from(["c", "fortran", "strided", "bigendian"])
    return st.builds(_relayout, base, layouts)


def weight_lists(min_size: int = 0, max_size: int = 5) -> st.SearchStrategy[NDArrays]:
    """Random lists of weight arrays."""
    return st.lists(arrays(), min_size=min_size, max_size=max_size)


_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
names_strategy = st.text(_NAME_CHARS, min_size=1, max_size=8)


def extras(name: str, weights: NDArrays) -> st.SearchStrategy[Any]:
    """A valid extra value for packer ``name`` given its weights."""
    if name == "scaffold":  # control variates are numbers (a string array is refused)
        return st.lists(arrays(numeric=True), max_size=4)
    if name in SCALAR_PACKERS:
        return st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-(2**40), 2**40),
            st.booleans(),
        )
    if name == "layer_names":
        return st.lists(names_strategy, min_size=len(weights), max_size=len(weights), unique=True)
    raise KeyError(name)


def simple_extra(name: str, weights: NDArrays) -> Any:
    """A fixed valid extra value for packer ``name``."""
    if name == "scaffold":
        return [np.ones(3, dtype=np.float32), np.zeros((2, 2))]
    if name in SCALAR_PACKERS:
        return 0.5
    if name == "layer_names":
        return [f"layer{i}.weight" for i in range(len(weights))]
    raise KeyError(name)


def packer(name: str, *, framed: bool = True, weights: NDArrays | None = None) -> Any:
    """``get_packer(name)``; scaffold in FL4Health's layout gets its size_of_model_params."""
    if name == "scaffold" and not framed:
        if weights is None:
            raise ValueError("scaffold with framed=False needs the weights to size it")
        return fedpack.get_packer(name, size_of_model_params=len(weights), framed=False)
    return fedpack.get_packer(name, framed=framed)


def same_array(a: NDArray, b: NDArray) -> bool:
    """Same dtype (byte order included), shape and content (NaN-safe, layout-independent)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def same_arrays(got: NDArrays, expected: NDArrays) -> bool:
    """As many arrays as expected, each :func:`same_array` as its counterpart."""
    return len(got) == len(expected) and all(
        same_array(a, b) for a, b in zip(got, expected, strict=True)
    )


def assert_same_payload(ours: NDArrays, theirs: NDArrays) -> None:
    """Two payloads hold the same arrays, in order (the index of the first difference is shown)."""
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.dtype == b.dtype, index
        assert a.shape == b.shape, index
        assert same_array(a, b), index


def one_extra_payload(name: str, weights: NDArrays, extra: NDArray, *, framed: bool) -> NDArrays:
    """``weights`` then the one array of packer ``name``'s extra, with its frame if ``framed``.

    Built by hand, so that the array can be one the packer would never write.
    """
    payload = [*weights, extra]
    if framed:
        payload.append(encode_frame(Frame(name, (("weights", len(weights)), (name, 1)))))
    return payload


def same_extra(name: str, got: Any, expected: Any) -> bool:
    """Whether an unpacked extra value equals what was packed."""
    if name == "scaffold":
        return same_arrays(got, expected)
    if name in SCALAR_PACKERS:
        return type(got) is float and got == float(expected)
    return bool(got == list(expected))


def through_npy(packed: NDArrays) -> NDArrays:
    """Every array through ``np.save`` / ``np.load(allow_pickle=False)``, as Flower ships them."""
    out: NDArrays = []
    for array in packed:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        buffer.seek(0)
        out.append(np.load(buffer, allow_pickle=False))
    return out
