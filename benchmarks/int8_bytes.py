"""Wire bytes of the int8 packer on ResNet-18's state_dict, against plain float32.

Run: python benchmarks/int8_bytes.py   (needs fedpack-core and fedpack-int8 installed)

The shapes are torchvision's ResNet-18 ``state_dict()`` (122 entries): the 62 parameters
(float32, 11,689,512 values, 46.8 MB) plus the BatchNorm buffers (40 float32 running statistics
and 20 int64 0-d ``num_batches_tracked``). Expected: about 0.25x the float32 bytes. Other
benchmark scripts can import :func:`resnet18_weights` and :func:`wire_bytes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _models import RESNET18_STATE_DICT  # the script's own folder is on sys.path

import fedpack


def resnet18_weights(seed: int = 0) -> fedpack.NDArrays:
    """Random weights with ResNet-18's state_dict shapes and dtypes."""
    rng = np.random.default_rng(seed)
    out: fedpack.NDArrays = []
    for _, shape, dtype in RESNET18_STATE_DICT:
        if dtype == "int64":
            out.append(np.array(rng.integers(0, 10_000), dtype=np.int64).reshape(shape))
        else:
            out.append((rng.standard_normal(shape) * 0.05).astype(dtype))
    return out


def wire_bytes(packed: fedpack.NDArrays) -> int:
    """The bytes of a payload's arrays (what Flower's npy serializer ships, headers aside)."""
    return sum(int(array.nbytes) for array in packed)


def measure() -> dict[str, Any]:
    """Wire bytes of ResNet-18's state_dict as float32, int8 and int8+clipping_bit, as a dict."""
    weights = resnet18_weights()
    params = [
        w
        for (name, _, _), w in zip(RESNET18_STATE_DICT, weights, strict=True)
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))
    ]
    plain = fedpack.get_packer("clipping_bit").pack_parameters(weights, 1.0)
    int8 = fedpack.get_packer("int8").pack_parameters(weights, [])
    both = fedpack.get_packer("int8+clipping_bit").pack_parameters(weights, ([], 1.0))
    base = wire_bytes(weights)
    rows = {}
    for label, packed in (
        ("float32 + clipping_bit", plain),
        ("int8", int8),
        ("int8+clipping_bit", both),
    ):
        size = wire_bytes(packed)
        rows[label] = {"arrays": len(packed), "bytes": size, "x_float32": size / base}
    _, restored, _ = fedpack.unpack(int8)
    worst = max(
        float(np.max(np.abs(r.astype(np.float64) - w.astype(np.float64))))
        / max(float(np.max(np.abs(w))), 1e-300)
        for r, w in zip(restored, weights, strict=True)
        if w.dtype.kind == "f"
    )
    return {
        "arrays": len(weights),
        "bytes": base,
        "parameters": len(params),
        "parameter_bytes": wire_bytes(params),
        "payloads": rows,
        "int8_worst_error_over_max": worst,
    }


def main() -> None:
    """Print :func:`measure`'s figures."""
    m = measure()
    print(
        f"ResNet-18 state_dict: {m['arrays']} arrays, {m['bytes'] / 1e6:.2f} MB "
        f"({m['parameters']} parameters: {m['parameter_bytes'] / 1e6:.2f} MB)"
    )
    for label, row in m["payloads"].items():
        print(
            f"  {label:<24} {row['arrays']:>4} arrays  {row['bytes'] / 1e6:8.2f} MB  "
            f"{row['x_float32']:.3f}x float32"
        )
    worst = m["int8_worst_error_over_max"]
    print(f"  int8 worst error / max|x| = {worst:.5f} (bound 1/254 = {1 / 254:.5f})")


if __name__ == "__main__":
    main()
