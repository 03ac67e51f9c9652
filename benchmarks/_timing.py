"""Timing shared by the benchmark scripts: medians of interleaved runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def medians(ops: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per op; ops run round-robin so machine load hits every op alike."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for rnd in range(warmup + repeats):
        for name, fn in ops.items():
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
            del result
            if rnd >= warmup:
                samples[name].append(elapsed)
    return {name: statistics.median(ts) for name, ts in samples.items()}
