"""Benchmark of fedpack's sparse COO kernels against FL4Health-style extraction.

Every time is reported as a ratio to *one plain memory copy of the dense model*
measured in the same run (``[t.copy() for t in model]``), so figures are
comparable across machines.

Run from the repository root::

    PYTHONPATH=plugins/sparse-coo/src python benchmarks/sparse.py            # ResNet-18
    PYTHONPATH=plugins/sparse-coo/src python benchmarks/sparse.py --quick    # smoke run
    PYTHONPATH=plugins/sparse-coo/src python benchmarks/sparse.py --model gpt2 --json out.json

Rows:

* ``copy``: one plain memory copy of the dense model (the unit), allocation
  included like every other row.
* ``copyto (preallocated)``: the same copy into buffers allocated beforehand, for
  reference: pure memory bandwidth, without page faults of fresh allocations.
* ``fl4health extract``: numpy transcription of FL4Health's extraction
  (``np.nonzero`` once for values, once for the ``(nnz, ndim)`` indices).
* ``fedpack extract_flat``: fedpack's extraction (values + flat positions).
* ``fedpack extract_coo``: FL4Health-compatible output (values + int64 (nnz, ndim)).
* ``fedpack encode``: ``encode_compact`` from the flat form.
* ``fedpack decode``: ``decode_compact`` back to (values, flat positions).
* ``fedpack rebuild compact``: ``rebuild_from_compact`` (fedpack's receive path), numpy
  path (``FEDPACK_SPARSE_KERNEL=numpy``).
* ``fedpack rebuild compact (numba)``: the same with the compiled bitmask kernel of the
  ``fast`` extra (only when numba is installed). Its first call (importing numba and
  compiling, or loading the kernels from numba's cache) is timed apart, as
  ``numba_first_call_seconds``, and excluded from the medians.
* ``fedpack rebuild coo``: ``rebuild_dense`` from FL4Health's COO triple.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from _models import MODELS, Spec  # the script's own folder is on sys.path
from fedpack_sparse_coo import _fast
from fedpack_sparse_coo import _kernels as K

Array = npt.NDArray[Any]
T = TypeVar("T")
GOALS = {
    "fedpack extract_flat": 5.0,
    "fedpack rebuild compact": 2.0,
    "fedpack rebuild compact (numba)": 2.0,
}
_FIRST_CALL: dict[str, float] = {}


def with_kernel(kernel: str, fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` run with ``FEDPACK_SPARSE_KERNEL`` set to ``kernel`` (restored after)."""

    def run() -> T:
        old = os.environ.get(_fast.ENV_VAR)
        os.environ[_fast.ENV_VAR] = kernel
        try:
            return fn()
        finally:
            if old is None:
                del os.environ[_fast.ENV_VAR]
            else:
                os.environ[_fast.ENV_VAR] = old

    return run


def numba_available() -> bool:
    """True when the compiled kernel can run (imports numba: call only while measuring)."""
    return bool(with_kernel("auto", _fast.kernel_name)() == "numba")


def make_model(specs: list[Spec], density: float, seed: int) -> list[Array]:
    """Dense tensors with non-zeros at random positions (Bernoulli(density))."""
    rng = np.random.default_rng(seed)
    out = []
    for _, shape, dtype in specs:
        n = math.prod(shape)
        keep = rng.random(n) < density
        x = np.zeros(n, dtype=dtype)
        x[keep] = (rng.standard_normal(int(keep.sum())) + 3.0).astype(dtype)  # never 0
        out.append(x.reshape(shape))
    return out


def fl4health_extract(model: list[Array]) -> list[tuple[Array, Array, Array]]:
    """FL4Health's per-tensor extraction, transcribed to numpy."""
    out = []
    for x in model:
        if x.ndim == 0:  # np.nonzero refuses 0-d arrays
            values = x.reshape(1)[x.reshape(1) != 0]
            indices = np.zeros((len(values), 0), dtype=np.int64)
        else:
            values = x[np.nonzero(x)]
            indices = np.stack(np.nonzero(x), axis=1)
        out.append((values, indices.astype(np.int64, copy=False), np.array(list(x.shape))))
    return out


def copy_into(buffers: list[Array], model: list[Array]) -> None:
    for b, x in zip(buffers, model, strict=True):
        np.copyto(b, x)


def prefault(nbytes: float) -> None:
    """Write once to ``nbytes`` of fresh memory, then free it.

    On virtual machines the first touch of memory the process has never used costs
    far more than later ones; without this, that cost lands at random in whichever
    operation first grows the heap and makes its timing meaningless.
    """
    block = np.empty(int(nbytes), dtype=np.uint8)
    block.fill(1)
    del block


def median_times(
    ops: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> dict[str, float]:
    """Median seconds per op; ops run round-robin so that load from other processes
    hits the unit (the copy) and the kernels alike."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for rnd in range(warmup + repeats):
        for name, fn in ops.items():
            t0 = time.perf_counter()
            fn()
            if rnd >= warmup:
                samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in samples.items()}


def run_density(
    specs: list[Spec], density: float, repeats: int, warmup: int, seed: int
) -> dict[str, Any]:
    model = make_model(specs, density, seed)
    shapes = [x.shape for x in model]

    flat = [K.extract_flat(x) for x in model]
    coo = [K.extract_coo(x) for x in model]
    ref = fl4health_extract(model)
    enc = [K.encode_compact(v, f, x.shape) for (v, f), x in zip(flat, model, strict=True)]

    def rebuild() -> list[Array]:
        return [K.rebuild_from_compact(e, a, s) for (e, a), s in zip(enc, shapes, strict=True)]

    t0 = time.perf_counter()
    fast = numba_available()
    if fast and "numba" not in _FIRST_CALL:  # once per process: import + compile or cache load
        with_kernel("numba", rebuild)()
        _FIRST_CALL["numba"] = time.perf_counter() - t0
    rebuilt = with_kernel("numpy", rebuild)()
    if len(rebuilt) != len(model):
        raise SystemExit(f"the numpy rebuild gave {len(rebuilt)} arrays for {len(model)}")
    for got, x in zip(rebuilt, model, strict=True):
        if got.tobytes() != x.tobytes():
            raise SystemExit("the numpy rebuild did not give the input back")

    # correctness of what is timed
    for x, (rv, ri, rs), (v, i, s), (e, arrays) in zip(model, ref, coo, enc, strict=True):
        if not (np.array_equal(rv, v) and np.array_equal(ri, i) and np.array_equal(rs, s)):
            raise SystemExit("extract_coo differs from the FL4Health reference")
        if not np.array_equal(K.rebuild_from_compact(e, arrays, x.shape), x):
            raise SystemExit("rebuild_from_compact did not give the input back")
        if not np.array_equal(K.rebuild_dense(v, i, s), x):
            raise SystemExit("rebuild_dense did not give the input back")

    buffers = [np.empty_like(x) for x in model]
    ops: dict[str, Callable[[], object]] = {
        "copy": lambda: [x.copy() for x in model],
        "copyto (preallocated)": lambda: copy_into(buffers, model),
        "fl4health extract": lambda: fl4health_extract(model),
        "fedpack extract_flat": lambda: [K.extract_flat(x) for x in model],
        "fedpack extract_coo": lambda: [K.extract_coo(x) for x in model],
        "fedpack encode": lambda: [
            K.encode_compact(v, f, s) for (v, f), s in zip(flat, shapes, strict=True)
        ],
        "fedpack decode": lambda: [
            K.decode_compact(e, a, s, x.dtype)
            for (e, a), s, x in zip(enc, shapes, model, strict=True)
        ],
        "fedpack rebuild compact": with_kernel("numpy", rebuild),
        "fedpack rebuild coo": lambda: [K.rebuild_dense(v, i, s) for v, i, s in coo],
    }
    if fast:
        ops["fedpack rebuild compact (numba)"] = with_kernel("numba", rebuild)
    times = median_times(ops, repeats, warmup)
    unit = times["copy"]

    dense_bytes = sum(x.nbytes for x in model)
    coo_bytes = sum(v.nbytes + i.nbytes + s.nbytes for v, i, s in ref)
    compact_bytes = sum(sum(a.nbytes for a in arrays) for _, arrays in enc)
    encodings: dict[str, int] = {}
    for e, _ in enc:
        encodings[e] = encodings.get(e, 0) + 1
    return {
        "density": density,
        "actual_density": sum(len(v) for v, _ in flat) / max(1, sum(x.size for x in model)),
        "seconds": times,
        "ratio_to_copy": {k: t / unit for k, t in times.items()},
        "ratio_to_copyto": {k: t / times["copyto (preallocated)"] for k, t in times.items()},
        "wire_bytes": {"dense": dense_bytes, "fl4health_coo": coo_bytes, "compact": compact_bytes},
        "compact_over_coo": compact_bytes / coo_bytes if coo_bytes else 0.0,
        "compact_over_dense": compact_bytes / dense_bytes if dense_bytes else 0.0,
        "encodings": encodings,
        "numba_first_call_seconds": _FIRST_CALL.get("numba"),
        "numba_compile_seconds": _fast.compile_seconds() if fast else None,
    }


def print_table(model_name: str, results: list[dict[str, Any]]) -> None:
    dens = [r["density"] for r in results]
    head = f"{'operation':<32}" + "".join(
        f"{f'{d:.0%} ms':>10}{'x copy':>8}{'x cpto':>8}" for d in dens
    )
    print(
        f"\nmodel {model_name}: times are medians; 'x copy' = time / one memory copy "
        "(x.copy()); 'x cpto' = time / copy into preallocated buffers"
    )
    print(head)
    print("-" * len(head))
    for name in results[0]["seconds"]:
        row = f"{name:<32}"
        for r in results:
            row += f"{r['seconds'][name] * 1e3:>10.2f}{r['ratio_to_copy'][name]:>8.2f}"
            row += f"{r['ratio_to_copyto'][name]:>8.2f}"
        goal = GOALS.get(name)
        print(row + (f"   goal <= {goal:g}x" if goal else ""))
    print()
    print(f"{'wire bytes':<26}" + "".join(f"{f'{d:.0%} MB':>12}{'x coo':>9}" for d in dens))
    for key in ("dense", "fl4health_coo", "compact"):
        row = f"{key:<26}"
        for r in results:
            b = r["wire_bytes"][key]
            coo = r["wire_bytes"]["fl4health_coo"]
            row += f"{b / 1e6:>12.2f}{b / coo if coo else 0.0:>9.3f}"
        print(row + ("   goal <= 0.25x coo" if key == "compact" else ""))
    print()
    for r in results:
        print(f"encodings chosen at {r['density']:.0%}: {r['encodings']}")
    first = results[0].get("numba_first_call_seconds")
    if first is not None:
        setup = results[0]["numba_compile_seconds"] * 1e3
        print(
            "numba first rebuild (import numba, compile or load the cached kernel, one rebuild; "
            f"excluded from the medians): {first * 1e3:.0f} ms, kernel set-up {setup:.0f} ms"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default=None)
    p.add_argument("--densities", type=float, nargs="+", default=[0.01, 0.1, 0.5])
    p.add_argument("--repeats", type=int, default=None, help="timed runs per op (median)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs per op")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: small model, 1 repeat")
    p.add_argument(
        "--prefault",
        type=float,
        default=12.0,
        help="touch this many model sizes of memory once before measuring (0: off)",
    )
    p.add_argument("--json", type=Path, default=None, help="write results to this file")
    args = p.parse_args(argv)

    model_name = args.model or ("small" if args.quick else "resnet18")
    repeats = args.repeats or (1 if args.quick else 7)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
    specs = MODELS[model_name]
    if args.prefault:
        prefault(args.prefault * sum(math.prod(s) * np.dtype(d).itemsize for _, s, d in specs))
    results = [run_density(specs, d, repeats, warmup, args.seed) for d in args.densities]
    print_table(model_name, results)
    if args.json:
        payload = {
            "model": model_name,
            "tensors": len(specs),
            "elements": sum(math.prod(s) for _, s, _ in specs),
            "repeats": repeats,
            "warmup": warmup,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "results": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
