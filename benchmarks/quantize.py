"""Speed and bytes of the ``quantize`` packer's kernels, as ratios to one plain memory copy.

Run from the repository root (with the workspace installed)::

    python benchmarks/quantize.py            # ResNet-18 shapes
    python benchmarks/quantize.py --quick    # smoke run (SMALL shapes)

Rows, for each configuration (bits, block, rounding): ``quantize`` (float32 weights -> codes
and scales, what ``pack_parameters`` spends), ``dequantize`` (codes and scales -> float32, what
``unpack_parameters`` spends), each as a median and as a ratio to ``[x.copy() for x in model]``
measured in the same run, interleaved, plus the wire bytes relative to float32 and the worst
error relative to each tensor's ``max|x|``. Goals: quantize <= 4x a copy, dequantize <= 2x.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _models import MODELS, Spec  # the script's own folder is on sys.path
from _timing import medians

GOALS = {"quantize": 4.0, "dequantize": 2.0}
#: (label, bits, block, rounding)
CONFIGS: list[tuple[str, int, int | None, str]] = [
    ("8-bit per tensor", 8, None, "nearest"),
    ("8-bit block 128", 8, 128, "nearest"),
    ("4-bit per tensor", 4, None, "nearest"),
    ("4-bit block 128", 4, 128, "nearest"),
    ("8-bit stochastic", 8, None, "stochastic"),
    ("4-bit block 128 stochastic", 4, 128, "stochastic"),
]


def float_model(specs: list[Spec], seed: int = 0) -> list[np.ndarray]:
    """The floating-point tensors of the model, random normal."""
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
        for _, shape, dtype in specs
        if np.dtype(dtype).kind == "f"
    ]


def run(specs: list[Spec], repeats: int, warmup: int) -> dict[str, Any]:
    """Quantize/dequantize medians, ratios to one copy, bytes and errors, per configuration."""
    from fedpack_quantize import _kernels as K

    model = float_model(specs)
    dense = sum(x.nbytes for x in model)
    ops: dict[str, Callable[[], object]] = {"copy": lambda: [x.copy() for x in model]}
    rows: dict[str, dict[str, Any]] = {}
    for label, bits, block, rounding in CONFIGS:
        rng = np.random.default_rng(0) if rounding == "stochastic" else None
        encoded = [K.quantize(x, bits=bits, block=block, rng=rng) for x in model]
        if any(e is None for e in encoded):  # pragma: no cover - normal weights always fit
            raise SystemExit(f"{label}: a tensor was not quantized")
        pairs = [e for e in encoded if e is not None]
        errors = []
        for x, (codes, scales) in zip(model, pairs, strict=True):
            y = K.dequantize(codes, scales, bits=bits, block=block, shape=x.shape, dtype=x.dtype)
            peak = float(np.abs(x).max())
            errors.append(float(np.abs(y - x).max()) / peak if peak else 0.0)
        rows[label] = {
            "bits": bits,
            "block": block,
            "rounding": rounding,
            "wire_x_float32": sum(c.nbytes + s.nbytes for c, s in pairs) / dense,
            "max_error_x_peak": max(errors),
            "bound_x_peak": K.error_bound(bits, rounding),
        }
        ops[f"{label} quantize"] = lambda b=bits, k=block, r=rounding: [
            K.quantize(
                x, bits=b, block=k, rng=np.random.default_rng(1) if r == "stochastic" else None
            )
            for x in model
        ]
        ops[f"{label} dequantize"] = lambda p=pairs, b=bits, k=block: [
            K.dequantize(c, s, bits=b, block=k, shape=x.shape, dtype=x.dtype)
            for x, (c, s) in zip(model, p, strict=True)
        ]
    times = medians(ops, repeats, warmup)
    unit = times["copy"]
    for label, row in rows.items():
        for op in ("quantize", "dequantize"):
            row[f"{op}_ms"] = times[f"{label} {op}"] * 1e3
            row[f"{op}_x_copy"] = times[f"{label} {op}"] / unit
    return {
        "copy_ms": unit * 1e3,
        "dense_bytes": dense,
        "elements": sum(x.size for x in model),
        "rows": rows,
    }


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """quantize <= 4x copy and dequantize <= 2x copy, for the nearest-rounding configurations."""
    out = []
    for label, row in report["rows"].items():
        if row["rounding"] != "nearest":
            continue
        for op, limit in GOALS.items():
            value = row[f"{op}_x_copy"]
            out.append(
                {
                    "config": label,
                    "goal": f"{op} x copy",
                    "limit": limit,
                    "value": value,
                    "met": value <= limit,
                }
            )
    return out


def print_table(name: str, report: dict[str, Any]) -> None:
    print(
        f"\nquantize kernels on {name}: {report['elements']} float32 values, "
        f"{report['dense_bytes'] / 1e6:.1f} MB; one copy = {report['copy_ms']:.2f} ms"
    )
    head = (
        f"{'configuration':<28}{'quant ms':>10}{'x copy':>8}{'dequant ms':>12}{'x copy':>8}"
        f"{'x fp32':>8}{'max err':>9}{'bound':>8}"
    )
    print(head)
    print("-" * len(head))
    for label, r in report["rows"].items():
        print(
            f"{label:<28}{r['quantize_ms']:>10.2f}{r['quantize_x_copy']:>8.2f}"
            f"{r['dequantize_ms']:>12.2f}{r['dequantize_x_copy']:>8.2f}{r['wire_x_float32']:>8.4f}"
            f"{r['max_error_x_peak']:>9.4f}{r['bound_x_peak']:>8.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default=None)
    p.add_argument("--quick", action="store_true", help="smoke run: SMALL shapes, 1 repeat")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    name = args.model or ("small" if args.quick else "resnet18")
    repeats = args.repeats or (1 if args.quick else 9)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
    specs = MODELS[name]
    block = np.empty(int(4 * sum(math.prod(s) * 4 for _, s, _ in specs)), dtype=np.uint8)
    block.fill(1)  # prefault: see sparse.prefault
    del block
    report = run(specs, repeats, warmup)
    print_table(name, report)
    for g in goals(report):
        print(
            f"  {g['config']:<20} {g['goal']:<16} {g['value']:6.2f} (<= {g['limit']:g})  "
            f"{'met' if g['met'] else 'MISSED'}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
