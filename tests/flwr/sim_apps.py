"""ClientApps for the simulation tests: a tiny numpy softmax regression on synthetic data.

Imported by its plain module name (the test puts this directory on ``sys.path``) so that
Flower's Ray workers, which get the driver's ``sys.path``, can import it too. One ``train``
function answers every fedpack strategy, dispatching on the instruction's packer; the
``partition-id`` of the node picks its data shard (non-IID: each node sees mostly two of the
three classes) and, in the mixed fleet, how the node misbehaves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod

import fedpack
from fedpack.flwr import (
    EXTRA_KEY,
    ScaffoldClient,
    extras_mod,
    instruction_packer,
    receive,
    reply,
)

CLASSES = 3
FEATURES = 4
STEPS = 5
LR = 0.1
SHAPES = {"fc.weight": (CLASSES, FEATURES), "fc.bias": (CLASSES,)}


def initial_weights() -> dict[str, np.ndarray[Any, Any]]:
    """The global model at round 0: zeros, float32, named as a torch Linear's state_dict."""
    return {name: np.zeros(shape, dtype=np.float32) for name, shape in SHAPES.items()}


def partition(context: Context) -> int:
    """The node's partition id (0 when absent)."""
    return int(context.node_config.get("partition-id", 0))  # type: ignore[call-overload]


def data(pid: int, n: int = 60) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Synthetic non-IID data: node ``pid`` draws mostly classes ``pid`` and ``pid + 1``."""
    rng = np.random.default_rng(100 + pid)
    centers = np.eye(CLASSES, FEATURES) * 3.0
    labels = rng.choice([pid % CLASSES, (pid + 1) % CLASSES], size=n)
    x = centers[labels] + rng.standard_normal((n, FEATURES))
    return x.astype(np.float32), labels


def grads(
    w: np.ndarray[Any, Any],
    b: np.ndarray[Any, Any],
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float]:
    """Softmax cross-entropy gradients and loss."""
    logits = x @ w.T + b
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
    p[np.arange(len(y)), y] -= 1.0
    p /= len(y)
    return (p.T @ x).astype(np.float32), p.sum(axis=0).astype(np.float32), loss


def local_train(
    weights: list[np.ndarray[Any, Any]],
    pid: int,
    correction: list[np.ndarray[Any, Any]] | None = None,
    mu: float = 0.0,
) -> tuple[list[np.ndarray[Any, Any]], float]:
    """``STEPS`` of gradient descent; SCAFFOLD correction and a proximal term when given."""
    x, y = data(pid)
    w, b = (np.array(a, dtype=np.float32) for a in weights)
    w0, b0 = w.copy(), b.copy()
    loss = 0.0
    for _ in range(STEPS):
        gw, gb, loss = grads(w, b, x, y)
        if correction is not None:
            gw, gb = gw + correction[0], gb + correction[1]
        if mu:
            gw, gb = gw + mu * (w - w0), gb + mu * (b - b0)
        w, b = w - LR * gw, b - LR * gb
    return [w, b], loss


def accuracy(weights: list[np.ndarray[Any, Any]], pid: int) -> float:
    """Accuracy of the model on the node's data."""
    x, y = data(pid)
    return float(((x @ weights[0].T + weights[1]).argmax(axis=1) == y).mean())


def train_any(msg: Message, context: Context) -> Message:
    """Answer any fedpack strategy's train instruction (dispatch on its packer)."""
    pid = partition(context)
    packer = instruction_packer(msg)
    parts = [p.name for p in getattr(packer, "parts", ())] or [packer.name if packer else ""]
    n = len(data(pid)[1])
    if "scaffold" in parts:
        scaffold = ScaffoldClient(msg, context)
        new, loss = local_train(scaffold.weights, pid, scaffold.correction())
        extras = {"clipping_bit": 0.0}
        return scaffold.reply(
            new,
            local_steps=STEPS,
            learning_rate=LR,
            num_examples=n,
            metrics={"loss": loss},
            parts=extras,
        )
    weights, extra = receive(msg)
    if parts == ["layer_names"]:
        new, loss = local_train(weights, pid)
        # node 0 sends only the bias, the others the whole model
        if pid == 0:
            return reply(msg, {"fc.bias": new[1]}, ["fc.bias"], num_examples=n)
        return reply(msg, new, list(extra), num_examples=n)
    if parts == ["adaptive_constraint"]:
        new, loss = local_train(weights, pid, mu=float(extra))
        return reply(msg, new, loss, num_examples=n, metrics={"loss": loss})
    if parts == ["clipping_bit"]:
        new, loss = local_train(weights, pid)
        norm = float(np.sqrt(sum(np.sum((a - g) ** 2) for a, g in zip(new, weights, strict=True))))
        return reply(msg, new, float(norm > float(extra)), num_examples=n)
    if parts == ["echo"]:
        new, loss = local_train(weights, pid)
        return reply(msg, new, [a * 2 for a in extra], num_examples=n)
    new, loss = local_train(weights, pid)  # a plain FedAvg instruction
    return reply(msg, new, num_examples=n, metrics={"loss": loss})


def evaluate_any(msg: Message, context: Context) -> Message:
    """Accuracy of the received model on the node's data."""
    weights, _ = receive(msg)
    pid = partition(context)
    metrics = MetricRecord({"accuracy": accuracy(weights, pid), "num-examples": 60})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


def _app(mods: list[Any] | None = None) -> ClientApp:
    app = ClientApp(mods=mods or [])
    app.train()(train_any)
    app.evaluate()(evaluate_any)
    return app


#: fedpack's helpers only.
plain_app = _app()
#: fedpack's mod before Flower's adaptive clipping mod.
adaptive_clipping_app = _app([extras_mod, adaptiveclipping_mod])
#: fedpack's mod before Flower's fixed clipping mod.
fixed_clipping_app = _app([extras_mod, fixedclipping_mod])

mixed_app = ClientApp()


@mixed_app.train()
def mixed_train(msg: Message, context: Context) -> Message:
    """Node 0 sends a malformed payload, node 1 replies as an old client; the others are fine."""
    pid = partition(context)
    if pid == 0:
        out = train_any(msg, context)
        extras = out.content[EXTRA_KEY]
        frame = extras["frame"].numpy().copy()
        frame[-3:] = 0  # corrupt the frame's JSON
        extras["frame"] = fedpack.flwr.to_array(frame)
        return out
    if pid == 1:
        weights = msg.content["arrays"]
        n = len(data(pid)[1])
        metrics = MetricRecord({"num-examples": n, "loss": 0.0})
        return Message(
            RecordDict({"arrays": ArrayRecord(weights.to_numpy_ndarrays()), "metrics": metrics}),
            reply_to=msg,
        )
    return train_any(msg, context)


torch_app = ClientApp()


@torch_app.train()
def torch_train(msg: Message, context: Context) -> Message:
    """SCAFFOLD with a torch model: state_dict in, corrected gradients, state_dict out."""
    import torch

    torch.set_num_threads(1)
    pid = partition(context)
    net = torch.nn.Module()
    net.fc = torch.nn.Linear(FEATURES, CLASSES)
    scaffold = ScaffoldClient(msg, context)
    net.load_state_dict(scaffold.state_dict())
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = (torch.from_numpy(a) for a in data(pid))
    loss = torch.zeros(())
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net.fc(x), y)
        loss.backward()
        scaffold.correct_gradients(net)
        optimizer.step()
    return scaffold.reply(
        net.state_dict(),
        local_steps=STEPS,
        learning_rate=LR,
        num_examples=len(y),
        metrics={"loss": float(loss)},
    )
