"""Sample weights, a foreign packer and the comparisons the conformance checks use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .._packer import Encoded, ParameterPacker, Sections
from .._typing import JSONValue, NDArray, NDArrays
from ..checks import array_list, describe

__all__ = ["ForeignPacker", "compare_values", "compare_weights", "example_weights"]


def example_weights() -> dict[str, NDArrays]:
    """Fresh, deterministic sets of model weights covering dtypes, shapes and layouts.

    ``mixed``: every common dtype (float16/32/64, int8/32/64, uint8, bool) with 0-d, empty and
    zero-sized shapes; ``vectors``: 1-D arrays only; ``single``: one array; ``empty``: no
    weights; ``model``: a small conv net's ``state_dict`` (BatchNorm statistics and the 0-d
    int64 ``num_batches_tracked`` included); ``views``: non-contiguous arrays.
    """
    rng = np.random.default_rng(20240601)

    def normal(shape: tuple[int, ...], dtype: str) -> NDArray:
        return rng.standard_normal(shape).astype(dtype)

    base = np.arange(24, dtype=np.float64).reshape(4, 6) / 7.0
    return {
        "mixed": [
            normal((3, 4), "float32"),
            normal((5,), "float64"),
            normal((2, 3), "float16"),
            np.array(7, dtype=np.int64),
            np.arange(-2, 2, dtype=np.int32),
            np.arange(4, dtype=np.uint8).reshape(2, 2),
            np.array([True, False, True]),
            np.zeros((0,), dtype=np.float32),
            np.zeros((2, 0, 3), dtype=np.float32),
            np.array(-1.5),
            np.array([-128, 0, 127], dtype=np.int8),
        ],
        "vectors": [
            normal((5,), "float32"),
            normal((3,), "float64"),
            np.arange(4, dtype=np.int64),
        ],
        "single": [normal((7,), "float32")],
        "empty": [],
        "model": [
            normal((8, 3, 3, 3), "float32"),
            normal((8,), "float32"),
            np.ones(8, dtype=np.float32),
            np.zeros(8, dtype=np.float32),
            normal((8,), "float32"),
            np.abs(normal((8,), "float32")),
            np.array(12, dtype=np.int64),
            normal((10, 8), "float32"),
            normal((10,), "float32"),
        ],
        "views": [base.T, base[::2, 1::2], base[0]],
    }


class ForeignPacker(ParameterPacker[NDArrays]):
    """A packer that is never registered: its payloads are "another packer's payload"."""

    name: ClassVar[str] = "fedpack_testing_foreign"

    def encode(self, model_weights: NDArrays, additional_parameters: NDArrays) -> Encoded:
        """Weights followed by the given arrays."""
        extra = array_list(additional_parameters, what="extra")
        return Encoded([("weights", model_weights), ("foreign", extra)])

    def decode(
        self, sections: Sections, meta: Mapping[str, JSONValue]
    ) -> tuple[NDArrays, NDArrays]:
        """The two sections."""
        return sections["weights"], sections["foreign"]

    def split_unframed(self, packed: NDArrays) -> Sections:
        """Everything is weights."""
        return Sections.split(packed, [("weights", len(packed)), ("foreign", 0)])


def compare_weights(expected: NDArrays, found: object, tolerance: float | None) -> str | None:
    """``None`` if ``found`` matches ``expected``, else what differs.

    Dtypes and shapes must be equal; values exactly equal, or for floating-point weights with
    a ``tolerance``, ``np.allclose(found, expected, rtol=0, atol=tolerance * max|expected|)``.
    """
    if not isinstance(found, list):
        return f"expected the weights as a list, found {describe(found)}"
    if len(found) != len(expected):
        return f"expected {len(expected)} weights, found {len(found)}"
    for index, (want, got) in enumerate(zip(expected, found, strict=True)):
        if not isinstance(got, np.ndarray):
            return f"weight {index}: expected a numpy array, found {describe(got)}"
        if got.dtype != want.dtype or got.shape != want.shape:
            return f"weight {index}: expected {describe(want)}, found {describe(got)}"
        if tolerance is not None and want.dtype.kind == "f":
            scale = float(np.max(np.abs(want.astype(np.float64)))) if want.size else 0.0
            atol = tolerance * scale
            if not np.allclose(got, want, rtol=0, atol=atol):
                error = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
                return (
                    f"weight {index} ({want.dtype}): error {error:.3g} exceeds the declared "
                    f"tolerance {tolerance:g} x max|x| = {atol:.3g}"
                )
        elif not np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"):
            return f"weight {index} ({want.dtype}): values differ"
    return None


def compare_values(
    expected: Any, found: Any, where: str = "extra", tolerance: float | None = None
) -> str | None:
    """``None`` if the extra data ``found`` equals ``expected``, else what differs.

    Arrays compare by dtype, shape and values (floating-point arrays within ``tolerance`` x
    their largest magnitude when a tolerance is given, as :func:`compare_weights` does); lists,
    tuples and dicts element-wise (their type must match); anything else by type and ``==``.
    """
    if isinstance(expected, np.ndarray):
        if not isinstance(found, np.ndarray):
            return f"{where}: expected {describe(expected)}, found {describe(found)}"
        if found.dtype != expected.dtype or found.shape != expected.shape:
            return f"{where}: expected {describe(expected)}, found {describe(found)}"
        if tolerance is not None and expected.dtype.kind == "f":
            reason = compare_weights([expected], [found], tolerance)
            return None if reason is None else f"{where}: {reason.removeprefix('weight 0 ')}"
        if not np.array_equal(found, expected, equal_nan=expected.dtype.kind in "fc"):
            return f"{where}: array values differ"
        return None
    if type(found) is not type(expected):
        return f"{where}: expected a {describe(expected)}, found {describe(found)}"
    if isinstance(expected, (list, tuple)):
        if len(found) != len(expected):
            return f"{where}: expected {len(expected)} items, found {len(found)}"
        for index, (want, got) in enumerate(zip(expected, found, strict=True)):
            reason = compare_values(want, got, f"{where}[{index}]", tolerance)
            if reason:
                return reason
        return None
    if isinstance(expected, dict):
        if set(found) != set(expected):
            return f"{where}: expected keys {sorted(expected)}, found {sorted(found)}"
        for key in expected:
            reason = compare_values(expected[key], found[key], f"{where}[{key!r}]", tolerance)
            if reason:
                return reason
        return None
    if found != expected:
        return f"{where}: expected {expected!r}, found {found!r}"
    return None
