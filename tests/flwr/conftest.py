from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fedpack import NDArrays


class Proxy:
    """Stands in for a ClientProxy: strategies only pass it through (and read ``cid``)."""

    def __init__(self, cid: str) -> None:
        self.cid = cid


def model_weights(rng: np.random.Generator, scale: float = 1.0) -> NDArrays:
    """A small model's state: float layers, a 0-d int64 counter and a float16 buffer."""
    return [
        (rng.standard_normal((4, 3)) * scale).astype(np.float32),
        (rng.standard_normal(3) * scale).astype(np.float32),
        np.array(7, dtype=np.int64),
        (rng.standard_normal((2, 2)) * scale).astype(np.float16),
    ]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def arrays_equal(a: NDArrays, b: NDArrays) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
        for x, y in zip(a, b, strict=True)
    )


def sample_arrays() -> list[Any]:
    """Arrays of many kinds: dtypes, byte orders, layouts, 0-d, empty, structured."""
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    return [
        base,
        np.asfortranarray(base),
        base[:, ::2],
        np.array(3.5),
        np.zeros((0, 3), dtype=np.int32),
        np.arange(5, dtype=">i4"),
        np.array([True, False]),
        np.array(["ab", "cde"]),
        np.array([1 + 2j], dtype=np.complex64),
        np.zeros(2, dtype=[("a", "<i4"), ("b", ">f8", (2,))]),
        np.frombuffer(b"FEDPACK\x00\x01", dtype=np.uint8),
    ]
