"""fedpack's benchmark suite: one command, one table, one JSON file.

Run from the repository root (with the workspace installed)::

    python benchmarks/run.py                 # full run (minutes; GPT-2 needs ~2 GB of RAM)
    python benchmarks/run.py --quick         # smoke run (< 60 s), what CI runs
    python benchmarks/run.py --json out.json

Sections:

* ``packers``: every installed packer's ``pack_parameters`` and ``unpack_parameters`` (framed)
  on SMALL, ResNet-18 and GPT-2 small shapes, and the payload's wire bytes;
* ``codec``: fedpack's npy codec against Flower's serializer (``benchmarks/codec.py``);
* ``sparse``: COO extraction, compact encoding and rebuild at 1%, 10% and 50% density on
  ResNet-18 shapes (``benchmarks/sparse.py``);
* ``quantize``: the quantize packer's kernels (8/4 bits, per tensor and per block, nearest and
  stochastic rounding) on ResNet-18 shapes: quantize and dequantize as ratios to one copy, wire
  bytes and worst error (``benchmarks/quantize.py``);
* ``int8``: wire bytes of the int8 example packer (``benchmarks/int8_bytes.py``);
* ``cold_start``: import + ``get_packer`` in fresh processes (``benchmarks/cold_start.py``).

Every time is a median over repeats after warm-up, and is also given as a ratio to ONE plain
memory copy of the same model (``[x.copy() for x in model]``) measured in the same run,
interleaved with the operation, so that figures compare across machines.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import codec  # noqa: E402
import quantize  # noqa: E402
import sparse  # noqa: E402
from _models import MODELS, Spec  # noqa: E402
from _timing import medians  # noqa: E402

import fedpack  # noqa: E402

NOISE_NOTE = (
    "Noise: medians of interleaved runs; on a shared or virtual machine single figures move by "
    "10-30% between runs (page faults of fresh allocations dominate small copies), so compare "
    "ratios measured in the same run, not milliseconds across runs."
)


def model_weights(specs: list[Spec], seed: int = 0) -> fedpack.NDArrays:
    """Random weights of the given shapes (float tensors normal, int64 small counters)."""
    rng = np.random.default_rng(seed)
    out: fedpack.NDArrays = []
    for _, shape, dtype in specs:
        if np.dtype(dtype).kind == "f":
            out.append(rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False))
        else:
            out.append(np.asarray(rng.integers(0, 100, size=shape), dtype=dtype))
    return out


def _cases(
    weights: fedpack.NDArrays, specs: list[Spec]
) -> dict[str, tuple[fedpack.ParameterPacker[Any], fedpack.NDArrays, Any]]:
    """``label -> (packer, weights, extra)`` for every installed packer."""
    from fedpack_sparse_coo import sparsify

    cases: dict[str, tuple[fedpack.ParameterPacker[Any], fedpack.NDArrays, Any]] = {}
    for name in fedpack.default_registry().names():
        try:
            cls = fedpack.get_packer_class(name)
        except fedpack.FedpackError:
            continue
        if name == "sparse_coo":
            dense = sparse.make_model(specs, 0.1, 0)
            values, extra = sparsify({n: x for (n, _, _), x in zip(specs, dense, strict=True)})
            cases["sparse_coo (10%)"] = (cls(), values, extra)
            cases["sparse_coo compact (10%)"] = (cls(encoding="compact"), values, extra)
            continue
        extras = cls.example_extras(weights)
        if not extras:
            continue
        cases[name] = (cls(**cls.example_options(weights)), weights, extras[0])
    return cases


def bench_packers(specs: list[Spec], repeats: int, warmup: int) -> dict[str, Any]:
    """pack/unpack medians and wire bytes of every packer on one model."""
    weights = model_weights(specs)
    cases = _cases(weights, specs)
    ops: dict[str, Callable[[], object]] = {"copy": lambda: [w.copy() for w in weights]}
    packed = {}
    for label, (packer, w, extra) in cases.items():
        packed[label] = packer.pack_parameters(w, extra)
        ops[f"{label} pack"] = lambda p=packer, w=w, e=extra: p.pack_parameters(w, e)
        ops[f"{label} unpack"] = lambda p=packer, b=packed[label]: p.unpack_parameters(b)
    times = medians(ops, repeats, warmup)
    unit = times["copy"]
    dense = sum(w.nbytes for w in weights)
    rows = {}
    for label in cases:
        wire = sum(a.nbytes for a in packed[label])
        rows[label] = {
            "pack_ms": times[f"{label} pack"] * 1e3,
            "unpack_ms": times[f"{label} unpack"] * 1e3,
            "pack_x_copy": times[f"{label} pack"] / unit,
            "unpack_x_copy": times[f"{label} unpack"] / unit,
            "wire_bytes": wire,
            "wire_x_dense": wire / dense,
        }
    return {"copy_ms": unit * 1e3, "dense_bytes": dense, "tensors": len(specs), "packers": rows}


def bench_cold_start(quick: bool) -> dict[str, Any]:
    """``benchmarks/cold_start.py`` in a subprocess; its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cold.json"
        args = ["--quick"] if quick else ["--repeats", "15"]
        proc = subprocess.run(
            [sys.executable, str(HERE / "cold_start.py"), *args, "--json", str(out)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0 or not out.exists():
            return {"error": (proc.stderr or proc.stdout)[-500:]}
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result


def print_packers(name: str, report: dict[str, Any]) -> None:
    print(
        f"\npackers on {name}: {report['tensors']} tensors, {report['dense_bytes'] / 1e6:.1f} MB;"
        f" one copy = {report['copy_ms']:.2f} ms"
    )
    head = (
        f"{'packer':<28}{'pack ms':>10}{'x copy':>9}{'unpack ms':>11}{'x copy':>9}{'wire MB':>10}"
    )
    print(head + f"{'x dense':>9}")
    print("-" * (len(head) + 9))
    for label, r in report["packers"].items():
        print(
            f"{label:<28}{r['pack_ms']:>10.3f}{r['pack_x_copy']:>9.3f}{r['unpack_ms']:>11.3f}"
            f"{r['unpack_x_copy']:>9.3f}{r['wire_bytes'] / 1e6:>10.2f}{r['wire_x_dense']:>9.3f}"
        )


def goals(sparse_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sparse goals: extract <= 5x copy, rebuild <= 2x, compact bytes <= 0.25x COO."""
    rows = []
    for r in sparse_results:
        d = r["density"]
        for label, key, limit in (
            ("extract_flat x copy", "fedpack extract_flat", 5.0),
            ("rebuild compact x copy", "fedpack rebuild compact", 2.0),
            ("rebuild compact (numba) x copy", "fedpack rebuild compact (numba)", 2.0),
        ):
            if key not in r["ratio_to_copy"]:  # numba not installed
                continue
            value = r["ratio_to_copy"][key]
            rows.append({"density": d, "goal": label, "limit": limit, "value": value})
        value = r["compact_over_coo"]
        rows.append({"density": d, "goal": "compact bytes x coo", "limit": 0.25, "value": value})
    for row in rows:
        row["met"] = row["value"] <= row["limit"]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run (< 60 s): small models")
    p.add_argument("--json", type=Path, default=None, help="write every result to this file")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per op (median)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs per op")
    p.add_argument("--skip", nargs="*", default=[], help="sections to skip, e.g. cold_start")
    args = p.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (3 if quick else 9)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    models = ["small", "resnet18"] if quick else ["small", "resnet18", "gpt2"]
    sparse_model = "small" if quick else "resnet18"
    started = time.perf_counter()
    report: dict[str, Any] = {
        "quick": quick,
        "repeats": repeats,
        "warmup": warmup,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "flwr": codec.FLWR_VERSION,
        "machine": platform.machine(),
        "note": NOISE_NOTE,
    }
    print(
        f"fedpack benchmarks ({'quick' if quick else 'full'}): median of {repeats} after "
        f"{warmup} warm-up, python {report['python']}, numpy {report['numpy']}"
    )
    print(NOISE_NOTE)

    if "packers" not in args.skip:
        report["packers"] = {}
        for name in models:
            report["packers"][name] = bench_packers(MODELS[name], repeats, warmup)
            print_packers(name, report["packers"][name])

    if "codec" not in args.skip:
        spec = codec.TINY if quick else codec.RESNET18
        model = codec.build_model(spec)
        report["codec"] = codec.run(model, repeats=max(repeats, 5), warmup=warmup)
        print("\ncodec (npy wire format) vs Flower's serializer:")
        codec.print_table(report["codec"])

    if "sparse" not in args.skip:
        specs = MODELS[sparse_model]
        sparse.prefault(4 * sum(math.prod(s) * np.dtype(d).itemsize for _, s, d in specs))
        results = [sparse.run_density(specs, d, repeats, warmup, 0) for d in (0.01, 0.1, 0.5)]
        report["sparse"] = {"model": sparse_model, "results": results, "goals": goals(results)}
        sparse.print_table(sparse_model, results)
        where = "; a --quick run measures SMALL shapes, where fixed costs dominate" if quick else ""
        print(f"\nsparse goals (set for ResNet-18 shapes{where}):")
        for g in report["sparse"]["goals"]:
            verdict = "met" if g["met"] else "MISSED"
            print(
                f"  {g['density']:>4.0%} {g['goal']:<32} {g['value']:6.2f} (<= {g['limit']:g})"
                f"  {verdict}"
            )

    if "quantize" not in args.skip:
        try:
            qspecs = MODELS["small" if quick else "resnet18"]
            sparse.prefault(4 * sum(math.prod(s) * 4 for _, s, _ in qspecs))
            report["quantize"] = quantize.run(qspecs, repeats, warmup)
            report["quantize"]["goals"] = quantize.goals(report["quantize"])
            quantize.print_table("small" if quick else "resnet18", report["quantize"])
            print("\nquantize goals (set for ResNet-18 shapes, nearest rounding):")
            for g in report["quantize"]["goals"]:
                verdict = "met" if g["met"] else "MISSED"
                print(
                    f"  {g['config']:<18} {g['goal']:<18} {g['value']:6.2f} (<= {g['limit']:g})"
                    f"  {verdict}"
                )
        except ImportError as exc:
            report["quantize"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"\nquantize: skipped ({exc})")

    if "int8" not in args.skip:
        try:
            import int8_bytes

            report["int8"] = int8_bytes.measure()
        except (ImportError, fedpack.FedpackError) as exc:
            report["int8"] = {"error": f"{type(exc).__name__}: {exc}"}
        print("\nint8 wire bytes (ResNet-18 state_dict):")
        for label, row in report["int8"].get("payloads", {}).items():
            print(f"  {label:<24}{row['bytes'] / 1e6:>8.2f} MB {row['x_float32']:>7.3f}x float32")

    if "cold_start" not in args.skip:
        report["cold_start"] = bench_cold_start(quick)
        print("\ncold start (fresh processes, medians):")
        cold = report["cold_start"]
        for key, value in cold.get("scenarios", {}).items():
            print(
                f"  {key:<16} import numpy {value['import_numpy_ms']:>7.1f} ms, then fedpack + "
                f"get_packer({cold['packer']!r}) {value['fedpack_over_numpy_ms']:>6.1f} ms "
                f"({value['fedpack_over_numpy_ratio']:.2f}x numpy's import)"
            )
        if "error" in cold:
            print(f"  failed: {cold['error']}")

    report["seconds"] = time.perf_counter() - started
    print(f"\ntotal {report['seconds']:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
