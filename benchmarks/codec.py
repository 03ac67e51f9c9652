"""Benchmark the npy codec against one memory copy and Flower's own round trip.

The model is a ResNet-18 ``state_dict`` (torchvision layout): 122 arrays, of which 62 are
trainable float32 parameters, plus BatchNorm running statistics (float32) and the 0-d int64
``num_batches_tracked`` counters; 46.8 MB in total.

Measured, as medians over ``--repeats`` timed runs after warm-up runs:

* one plain memory copy of the whole model (``np.copyto`` into preallocated arrays), the
  baseline every other figure is divided by, and a copy into fresh arrays (``arr.copy()``);
* fedpack ``encode_arrays``, ``decode_arrays`` and the encode+decode round trip, with
  read-only views and with ``writable=True``;
* if Flower is importable, ``ndarrays_to_parameters``, ``parameters_to_ndarrays`` and
  their round trip.

Every encode allocates fresh output buffers, so part of what is measured is the kernel
mapping and zeroing fresh pages (the "fresh" copy row shows that cost for a plain copy).
On glibc, ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set high enough keep
freed buffers in the heap between rounds, which removes most of it for every row.

Usage::

    python benchmarks/codec.py                 # full model, 20 repeats
    python benchmarks/codec.py --repeats 50 --json results/codec.json
    python benchmarks/codec.py --quick         # tiny model, few repeats (smoke test)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from fedpack.flwr._npy import decode_arrays, encode_arrays
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "src"))
    from fedpack.flwr._npy import decode_arrays, encode_arrays

try:
    import flwr
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays

    FLWR_VERSION: str | None = str(flwr.__version__)
except ImportError:
    FLWR_VERSION = None

from _models import RESNET18_STATE_DICT

Arrays = list[npt.NDArray[Any]]

# name, shape, dtype of every entry of torchvision's resnet18().state_dict()
RESNET18 = RESNET18_STATE_DICT

# Smoke-test model for --quick: the stem and the first residual block.
TINY = RESNET18[:18]


def build_model(spec: Sequence[tuple[str, tuple[int, ...], str]], seed: int = 0) -> Arrays:
    """Create arrays with the given shapes, filled with random values."""
    rng = np.random.default_rng(seed)
    arrays: Arrays = []
    for _name, shape, dtype in spec:
        if dtype == "int64":
            arrays.append(np.asarray(rng.integers(0, 10_000, size=shape), dtype=np.int64))
        else:
            arrays.append(rng.standard_normal(shape, dtype=np.float32))
    return arrays


def measure(fn: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls; return seconds."""
    for _ in range(warmup):
        result = fn()
        del result
    times: list[float] = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        del result
    return times


def check_identical(model: Arrays) -> None:
    """Refuse to report figures if fedpack and Flower disagree."""
    encoded = encode_arrays(model)
    decoded = decode_arrays(encoded)
    if len(decoded) != len(model):
        raise SystemExit(f"fedpack round trip gave {len(decoded)} arrays for {len(model)}")
    for index, (src, out) in enumerate(zip(model, decoded, strict=True)):
        if out.dtype != src.dtype or out.shape != src.shape or not np.array_equal(out, src):
            raise SystemExit(f"array {index}: fedpack round trip changed the array")
    if FLWR_VERSION is not None and encoded != ndarrays_to_parameters(model).tensors:
        raise SystemExit("fedpack bytes differ from Flower's ndarrays_to_parameters")


def run(model: Arrays, repeats: int, warmup: int) -> dict[str, Any]:
    """Run every measurement on ``model`` and return a JSON-ready report."""
    check_identical(model)
    total = sum(a.nbytes for a in model)
    dst = [np.empty_like(a) for a in model]
    encoded = encode_arrays(model)

    def copy_prealloc() -> Arrays:
        for out, src in zip(dst, model, strict=True):
            np.copyto(out, src)
        return dst

    cases: dict[str, Callable[[], object]] = {
        "memory copy (np.copyto, preallocated)": copy_prealloc,
        "memory copy (arr.copy(), fresh)": lambda: [a.copy() for a in model],
        "fedpack encode": lambda: encode_arrays(model),
        "fedpack decode": lambda: decode_arrays(encoded),
        "fedpack decode(writable=True)": lambda: decode_arrays(encoded, writable=True),
        "fedpack encode+decode": lambda: decode_arrays(encode_arrays(model)),
        "fedpack encode+decode(writable=True)": lambda: decode_arrays(
            encode_arrays(model), writable=True
        ),
    }
    if FLWR_VERSION is not None:
        params = ndarrays_to_parameters(model)
        cases["flwr ndarrays_to_parameters"] = lambda: ndarrays_to_parameters(model)
        cases["flwr parameters_to_ndarrays"] = lambda: parameters_to_ndarrays(params)
        cases["flwr round trip"] = lambda: parameters_to_ndarrays(ndarrays_to_parameters(model))

    results: dict[str, dict[str, float]] = {}
    for name, fn in cases.items():
        times = measure(fn, repeats, warmup)
        results[name] = {
            "median_ms": statistics.median(times) * 1e3,
            "min_ms": min(times) * 1e3,
            "max_ms": max(times) * 1e3,
        }
    baseline = results["memory copy (np.copyto, preallocated)"]["median_ms"]
    flwr_ms = results.get("flwr round trip", {}).get("median_ms")
    for name, row in results.items():
        row["x_memory_copy"] = row["median_ms"] / baseline
        if flwr_ms is not None and name.startswith("fedpack encode+decode"):
            row["speedup_vs_flwr"] = flwr_ms / row["median_ms"]

    return {
        "model_arrays": len(model),
        "model_bytes": total,
        "repeats": repeats,
        "warmup": warmup,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "flwr": FLWR_VERSION,
        "machine": platform.machine(),
        "results": results,
    }


def print_table(report: dict[str, Any]) -> None:
    """Print the report as a fixed-width table."""
    mb = report["model_bytes"] / 1e6
    print(
        f"model: {report['model_arrays']} arrays, {mb:.1f} MB | "
        f"median of {report['repeats']} runs after {report['warmup']} warm-up | "
        f"python {report['python']}, numpy {report['numpy']}, flwr {report['flwr'] or '-'}"
    )
    header = (
        f"{'case':<40} {'median ms':>10} {'min ms':>9} {'x copy':>8} {'vs flwr':>8} {'GB/s':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, row in report["results"].items():
        speedup = row.get("speedup_vs_flwr")
        vs_flwr = f"{speedup:.2f}x" if speedup is not None else ""
        gbps = report["model_bytes"] / (row["median_ms"] / 1e3) / 1e9
        print(
            f"{name:<40} {row['median_ms']:>10.2f} {row['min_ms']:>9.2f} "
            f"{row['x_memory_copy']:>7.2f}x {vs_flwr:>8} {gbps:>7.2f}"
        )
    if report["flwr"] is None:
        print("(flwr is not installed: Flower figures skipped)")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 20)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny model, few repeats")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)

    spec = TINY if args.quick else RESNET18
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if repeats < 1 or warmup < 0:
        parser.error("--repeats must be at least 1 and --warmup at least 0")

    model = build_model(spec)
    expected = sum(math.prod(shape) * np.dtype(dtype).itemsize for _, shape, dtype in spec)
    if sum(a.nbytes for a in model) != expected:
        raise SystemExit("model construction does not match its specification")
    report = run(model, repeats, warmup)
    report["model"] = "resnet18-tiny" if args.quick else "resnet18"
    print_table(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
