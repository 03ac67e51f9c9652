"""Bytes sent until a federated run reaches dense FedAvg's final accuracy, per update encoding.

A simulation (numpy + torch, no Flower) of the example Flower app's task: 10 classes in 32
dimensions, every client with Dirichlet(alpha) label skew and its own feature shift, a balanced
global test set, an MLP trained with plain SGD for a few local steps, FedAvg. Clients send
their *update* (trained - global weights); the server decodes every update with fedpack, adds
their mean to the global weights, and measures test accuracy after each round.

Methods (client -> server bytes are the ``nbytes`` of every array of the payload, frame
included; server -> client traffic is the dense model in every method):

* ``dense fp32``: the update as float32 arrays (what a plain ``ArrayRecord`` carries);
* ``q8``: ``get_packer("quantize")``: 8 bits, one scale per tensor, nearest rounding;
* ``q4``: ``get_packer("quantize", bits=4, block=...)``, stochastic rounding;
* ``topk+EF q8``: top-k (``density`` of each tensor) with error feedback, sent with
  ``sparse_coo`` compact inside ``quantize`` (8-bit values); the quantization error goes back
  into the residual;
* ``topk+EF fp32``: the same without quantization, ``sparse_coo`` compact;
* ``topk+EF fp32 FL4Health COO``: the same selection in FL4Health's COO layout (float32
  values, int64 ``(nnz, ndim)`` indices, shapes, names): same accuracy, its own bytes.

Run from the repository root (torch needed)::

    python benchmarks/bytes_to_accuracy.py                 # hidden 1024, 40 rounds of 50 steps
    python benchmarks/bytes_to_accuracy.py --hidden 64     # the example app's own MLP size
    python benchmarks/bytes_to_accuracy.py --quick         # smoke run

The report gives, per method, the final accuracy, the first round reaching dense FedAvg's final
accuracy minus a tolerance (1 point for top-k, 0.5 for quantization), the bytes sent until then,
and the ratio to what dense float32 sent to reach the same accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import fedpack

NUM_CLASSES = 10
NUM_FEATURES = 32
CLASS_SPREAD = 1.6
SHIFT_SCALE = 1.5


# -- the task (the example app's generator, numpy) ------------------------------------------------


@dataclass(frozen=True)
class Task:
    clients: int = 10
    alpha: float = 0.1
    samples: int = 500
    test_samples: int = 2000
    data_seed: int = 0


def make_data(
    task: Task,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    centres = np.random.default_rng([task.data_seed, 0]).normal(
        0.0, CLASS_SPREAD, (NUM_CLASSES, NUM_FEATURES)
    )
    shifts = np.random.default_rng([task.data_seed, 1, task.clients]).normal(
        0.0, SHIFT_SCALE, (task.clients, NUM_FEATURES)
    )
    parts = []
    for cid in range(task.clients):
        rng = np.random.default_rng([task.data_seed, 2, task.clients, cid])
        labels = rng.choice(
            NUM_CLASSES, size=task.samples, p=rng.dirichlet(np.full(NUM_CLASSES, task.alpha))
        )
        x = centres[labels] + rng.normal(0.0, 1.0, (task.samples, NUM_FEATURES)) + shifts[cid]
        parts.append((x.astype(np.float32), labels))
    rng = np.random.default_rng([task.data_seed, 3, task.clients])
    labels = np.arange(task.test_samples) % NUM_CLASSES
    owners = rng.integers(0, task.clients, task.test_samples)
    x = centres[labels] + rng.normal(0.0, 1.0, (task.test_samples, NUM_FEATURES)) + shifts[owners]
    return parts, (x.astype(np.float32), labels)


# -- the model and the client update (torch) ------------------------------------------------------


def new_model(hidden: int, seed: int) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(NUM_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES))


def names_of(model: Any) -> list[str]:
    return list(model.state_dict())


def get_weights(model: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def set_weights(model: Any, weights: dict[str, np.ndarray]) -> None:
    import torch

    model.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})


def local_train(
    model: Any, data: tuple[np.ndarray, np.ndarray], *, steps: int, lr: float, batch: int, seed: int
) -> None:
    """Plain SGD, as the example app's ``task.train`` (no correction, no proximal term)."""
    import torch
    from torch import nn

    x, y = torch.as_tensor(data[0]), torch.as_tensor(data[1])
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    params = list(model.parameters())
    for _ in range(steps):
        idx = torch.randint(0, len(y), (batch,), generator=gen)
        loss = loss_fn(model(x[idx]), y[idx])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad


def accuracy(model: Any, test: tuple[np.ndarray, np.ndarray]) -> float:
    import torch

    with torch.no_grad():
        logits = model(torch.as_tensor(test[0]))
        return float((logits.argmax(dim=1).numpy() == test[1]).mean())


# -- the update encodings ----------------------------------------------------------------------

Update = dict[str, np.ndarray]


@dataclass
class Method:
    """Encodes a client's update (keeping per-client state) and decodes it on the server."""

    label: str
    tolerance: float
    encode: Callable[[int, Update, Update, Update], tuple[list[np.ndarray], dict[str, int]]]
    decode: Callable[[list[np.ndarray], Update], Update]
    state: dict[int, Any] = field(default_factory=dict)


def nbytes(payload: list[np.ndarray]) -> int:
    return sum(int(a.nbytes) for a in payload)


def dense_method() -> Method:
    def encode(
        cid: int, upd: Update, new: Update, old: Update
    ) -> tuple[list[np.ndarray], dict[str, int]]:
        payload = list(upd.values())
        return payload, {"dense fp32": nbytes(payload)}

    def decode(payload: list[np.ndarray], like: Update) -> Update:
        return dict(zip(like, payload, strict=True))

    return Method("dense fp32", 0.0, encode, decode)


def quantize_method(label: str, tolerance: float, **options: Any) -> Method:
    packer = fedpack.get_packer("quantize", **options)

    def encode(
        cid: int, upd: Update, new: Update, old: Update
    ) -> tuple[list[np.ndarray], dict[str, int]]:
        payload = packer.pack_parameters(list(upd.values()), None)
        return payload, {label: nbytes(payload)}

    def decode(payload: list[np.ndarray], like: Update) -> Update:
        _name, weights, _ = fedpack.unpack(payload)
        return dict(zip(like, weights, strict=True))

    return Method(label, tolerance, encode, decode)


def topk_method(label: str, density: float, bits: int | None, coo_label: str | None) -> Method:
    from fedpack_sparse_coo import densify
    from fedpack_sparse_coo.topk import topk_update

    compact = {"encoding": "compact"}
    if bits is None:
        packer: fedpack.ParameterPacker[Any] = fedpack.get_packer("sparse_coo", **compact)
    else:
        packer = fedpack.get_packer(
            "quantize", bits=bits, inner="sparse_coo", inner_options=compact
        )
    coo = fedpack.get_packer("sparse_coo", framed=False)
    method = Method(label, 0.01, lambda *a: ([], {}), lambda p, like: {})

    def encode(
        cid: int, upd: Update, new: Update, old: Update
    ) -> tuple[list[np.ndarray], dict[str, int]]:
        update = topk_update(new, old, method.state.get(cid), density=density)
        values, extra = update.sparse_coo()
        payload = packer.pack_parameters(values, extra)
        if bits is not None:  # error feedback of the quantization error
            got, (_, _, names) = packer.unpack_parameters(payload)
            update.absorb(dict(zip(names, got, strict=True)))
        method.state[cid] = update.residual
        sizes = {label: nbytes(payload)}
        if coo_label:
            sizes[coo_label] = nbytes(coo.pack_parameters(values, extra))
        return payload, sizes

    def decode(payload: list[np.ndarray], like: Update) -> Update:
        _name, values, extra = fedpack.unpack(payload)
        return densify(values, extra)

    method.encode, method.decode = encode, decode
    return method


# -- the federated loop -------------------------------------------------------------------------


def run(method: Method, args: argparse.Namespace, task: Task, data: Any) -> dict[str, Any]:
    parts, test = data
    model = new_model(args.hidden, args.model_seed)
    global_w = get_weights(model)
    curve: list[float] = []
    sent: dict[str, list[int]] = {}
    for rnd in range(args.rounds):
        total = {k: np.zeros_like(v) for k, v in global_w.items()}
        round_bytes: dict[str, int] = {}
        for cid in range(task.clients):
            set_weights(model, global_w)
            local_train(
                model,
                parts[cid],
                steps=args.steps,
                lr=args.lr,
                batch=args.batch,
                seed=1000 * rnd + cid,
            )
            new = get_weights(model)
            upd = {k: new[k] - global_w[k] for k in global_w}
            payload, sizes = method.encode(cid, upd, new, global_w)
            for key, value in sizes.items():
                round_bytes[key] = round_bytes.get(key, 0) + value
            decoded = method.decode(payload, global_w)
            for k in total:
                total[k] += decoded[k]
        global_w = {
            k: (global_w[k] + total[k] / task.clients).astype(global_w[k].dtype) for k in global_w
        }
        set_weights(model, global_w)
        curve.append(accuracy(model, test))
        for key, value in round_bytes.items():
            sent.setdefault(key, []).append(value)
    return {"curve": curve, "bytes_per_round": sent}


def first_reaching(curve: list[float], target: float) -> int | None:
    for i, acc in enumerate(curve):
        if acc >= target - 1e-12:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: few rounds")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--hidden", type=int, default=1024, help="MLP hidden width (the app uses 64)")
    p.add_argument("--steps", type=int, default=50, help="local SGD steps per round (the app's)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--density", type=float, default=0.02, help="top-k fraction per tensor")
    p.add_argument("--q4-block", type=int, default=256, help="elements per 4-bit scale")
    p.add_argument("--model-seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.rounds = args.rounds or (5 if args.quick else 40)
    import torch

    torch.set_num_threads(1)  # tiny matrices: threads only contend
    task = Task()
    data = make_data(task)
    methods = [
        dense_method(),
        quantize_method("q8", 0.005),
        quantize_method("q4", 0.005, bits=4, block=args.q4_block, rounding="stochastic", seed=0),
        topk_method("topk+EF q8", args.density, 8, None),
        topk_method("topk+EF fp32", args.density, None, "topk+EF fp32 FL4Health COO"),
    ]
    tolerances = {"dense fp32": 0.0, "q8": 0.005, "q4": 0.005}
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for method in methods:
        t0 = time.perf_counter()
        results[method.label] = run(method, args, task, data)
        final_acc = results[method.label]["curve"][-1]
        seconds = time.perf_counter() - t0
        print(
            f"  ran {method.label:<14} {seconds:6.1f} s, final accuracy {final_acc:.4f}",
            file=sys.stderr,
        )
    dense = results["dense fp32"]
    final = dense["curve"][-1]
    dense_bytes = np.cumsum(dense["bytes_per_round"]["dense fp32"])
    params = sum(math.prod(v.shape) for v in get_weights(new_model(args.hidden, 0)).values())
    print(
        f"bytes to accuracy: {task.clients} clients (Dirichlet alpha {task.alpha}, feature shift), "
        f"MLP 32-{args.hidden}-10 ({params} parameters, {params * 4 / 1e3:.1f} kB float32), "
        f"{args.rounds} rounds of {args.steps} local SGD steps; top-k density {args.density:g}"
    )
    print(f"dense FedAvg final accuracy: {final:.4f}")
    head = (
        f"{'method':<28}{'final acc':>10}{'target':>9}{'round':>7}{'bytes sent':>14}"
        f"{'x dense':>9}{'per msg':>10}"
    )
    print(head)
    print("-" * len(head))
    rows = {}
    for method in methods:
        res = results[method.label]
        tol = tolerances.get(method.label, 0.01)
        target = final - tol
        for key, per_round in res["bytes_per_round"].items():
            reached = first_reaching(res["curve"], target)
            dense_reached = first_reaching(dense["curve"], target)
            cum = np.cumsum(per_round)
            row: dict[str, Any] = {
                "final_accuracy": res["curve"][-1],
                "target": target,
                "round": None if reached is None else reached + 1,
                "bytes_per_message": per_round[-1] / task.clients,
            }
            if reached is not None and dense_reached is not None:
                row["bytes"] = int(cum[reached])
                row["dense_bytes_same_target"] = int(dense_bytes[dense_reached])
                row["x_dense"] = row["bytes"] / row["dense_bytes_same_target"]
            rows[key] = row
            shown = (
                f"{row['round']:>7}{row['bytes'] / 1e6:>11.3f} MB{row['x_dense']:>9.4f}"
                if "bytes" in row
                else f"{'never':>7}{'':>14}{'':>9}"
            )
            print(
                f"{key:<28}{row['final_accuracy']:>10.4f}{target:>9.4f}{shown}"
                f"{row['bytes_per_message'] / 1e3:>8.2f} kB"
            )
    print(f"total {time.perf_counter() - started:.1f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": None},
                    "rows": rows,
                    "curves": {k: v["curve"] for k, v in results.items()},
                },
                indent=2,
                default=str,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
