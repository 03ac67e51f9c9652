"""An in-process federated run on synthetic data: what ``fedpack demo`` executes.

No network and no dependency beyond numpy: a server and several clients exchange every
payload through a packer and fedpack's npy wire codec, both ways (pack, encode to bytes,
decode, unpack), exactly as they would through Flower.

The task is Gaussian-blob classification; each client's labels follow its own Dirichlet draw
(label skew, i.e. non-IID clients). The model is a two-layer MLP (tanh hidden layer, softmax
output) trained with full-batch gradient descent. The packer decides the algorithm:

- ``scaffold``: SCAFFOLD (Karimireddy et al., 2020, option II control variates). The server
  sends ``x`` and ``c``; client ``i`` takes K corrected steps ``y <- y - lr (g(y) - c_i + c)``,
  sets ``c_i+ = c_i - c + (x - y) / (K lr)`` and sends ``y`` and ``c_i+ - c_i``; the server
  sets ``x <- mean(y)`` and ``c <- c + |S|/N mean(c_i+ - c_i)``.
- ``layer_names``: partial exchange. Each client sends only the half of its layers that
  drifted most (relative norm of the change) with their names; the server averages each layer
  over the clients that sent it.
- ``clipping_bit``: DP-FedAvg with adaptive clipping (Andrew et al., 2021). The server sends
  the clipping bound; clients clip their update to it and send the clipping bit (1.0 if the
  update was not clipped); the server adds Gaussian noise to the mean update and moves the
  bound geometrically towards the target quantile of unclipped updates.
- ``adaptive_constraint``: FedProx with an adaptive proximal weight mu: the server sends mu,
  clients train with ``mu/2 |w - x|^2`` and send their training loss; mu grows when the mean
  loss rises and shrinks after a few rounds of falling loss.
- ``sparse_coo``: top-k sparse updates: clients send the largest 25% entries of each layer's
  update in COO form (values; indices, shapes, names); needs the ``fedpack-sparse-coo`` plugin.

Everything is seeded: the same configuration gives the same losses, accuracies and byte
counts (the timings vary).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ._api import get_packer
from ._errors import FedpackError, UnknownPackerError
from ._npy import decode_arrays, encode_arrays
from ._packer import ParameterPacker
from ._typing import NDArrays

__all__ = [
    "MODES",
    "DemoConfig",
    "DemoError",
    "RoundStats",
    "check_config",
    "run_demo",
]

#: The packers the demo knows how to drive, in the order ``--help`` lists them.
MODES = ("scaffold", "layer_names", "clipping_bit", "adaptive_constraint", "sparse_coo")
LAYER_NAMES = ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]

F64 = npt.NDArray[np.float64]
Progress = Callable[[int, int, int], None]


class DemoError(FedpackError):
    """The demo cannot run as asked (e.g. its packer is not installed)."""


@dataclass(frozen=True)
class DemoConfig:
    """What to simulate; every default fits a run of well under a second."""

    #: The packer, one of :data:`MODES`.
    packer: str = "scaffold"
    #: Number of federated rounds.
    rounds: int = 20
    #: Number of clients (all take part in every round).
    clients: int = 8
    #: Seed of every random draw (data, model, noise).
    seed: int = 0
    #: Local gradient steps per round.
    local_steps: int = 10
    #: Client learning rate.
    learning_rate: float = 0.3
    #: Training samples per client.
    samples: int = 200
    #: Input features, hidden units and classes of the MLP.
    features: int = 10
    hidden: int = 32
    classes: int = 5
    #: Dirichlet concentration of the per-client label mix (smaller: more skew).
    skew: float = 0.3


@dataclass
class RoundStats:
    """One row of the demo's table."""

    round: int
    #: Cross-entropy and accuracy of the global model on the balanced test set.
    loss: float
    accuracy: float
    #: Bytes of every encoded array sent this round, both directions.
    wire_bytes: int = 0
    #: Seconds spent in ``pack_parameters`` / ``unpack_parameters`` and in the npy codec.
    pack_seconds: float = 0.0
    unpack_seconds: float = 0.0
    codec_seconds: float = 0.0


@dataclass
class _Client:
    x: F64
    y: npt.NDArray[np.int64]
    state: NDArrays = field(default_factory=list)  # SCAFFOLD's c_i


class _Wire:
    """Sends payloads through a packer and the npy codec, keeping the round's counters."""

    def __init__(self, stats: RoundStats) -> None:
        self.stats = stats

    def send(self, packer: ParameterPacker[Any], weights: NDArrays, extra: Any) -> Any:
        s = self.stats
        t0 = time.perf_counter()
        packed = packer.pack_parameters(weights, extra)
        t1 = time.perf_counter()
        blobs = encode_arrays(packed)
        received = decode_arrays(blobs)
        t2 = time.perf_counter()
        out = packer.unpack_parameters(received)
        t3 = time.perf_counter()
        s.wire_bytes += sum(len(b) for b in blobs)
        s.pack_seconds += t1 - t0
        s.codec_seconds += t2 - t1
        s.unpack_seconds += t3 - t2
        return out


# -- data and model ------------------------------------------------------------------------


def _make_data(cfg: DemoConfig, rng: np.random.Generator) -> tuple[list[_Client], F64, Any]:
    means = rng.normal(0.0, 1.2, (cfg.classes, cfg.features))
    clients = []
    for _ in range(cfg.clients):
        mix = rng.dirichlet([cfg.skew] * cfg.classes)
        labels = rng.choice(cfg.classes, size=cfg.samples, p=mix)
        x = means[labels] + rng.normal(size=(cfg.samples, cfg.features))
        clients.append(_Client(x, labels.astype(np.int64)))
    test_labels = np.repeat(np.arange(cfg.classes), 400)
    test_x = means[test_labels] + rng.normal(size=(test_labels.size, cfg.features))
    return clients, test_x, test_labels.astype(np.int64)


def _init_model(cfg: DemoConfig, rng: np.random.Generator) -> NDArrays:
    return [
        (rng.normal(size=(cfg.features, cfg.hidden)) / np.sqrt(cfg.features)).astype(np.float32),
        np.zeros(cfg.hidden, dtype=np.float32),
        (rng.normal(size=(cfg.hidden, cfg.classes)) / np.sqrt(cfg.hidden)).astype(np.float32),
        np.zeros(cfg.classes, dtype=np.float32),
    ]


def _loss_and_grads(
    weights: list[F64], x: F64, y: npt.NDArray[np.int64]
) -> tuple[float, float, list[F64]]:
    """Mean cross-entropy, accuracy and gradients of the MLP on ``(x, y)``."""
    w1, b1, w2, b2 = weights
    hidden = np.tanh(x @ w1 + b1)
    logits = hidden @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    n = y.size
    rows = np.arange(n)
    loss = float(-np.log(probs[rows, y] + 1e-12).mean())
    accuracy = float((probs.argmax(axis=1) == y).mean())
    d_logits = probs
    d_logits[rows, y] -= 1.0
    d_logits /= n
    d_hidden = (d_logits @ w2.T) * (1.0 - hidden**2)
    grads = [x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)]
    return loss, accuracy, grads


def _train(
    weights: NDArrays,
    client: _Client,
    cfg: DemoConfig,
    *,
    correction: list[F64] | None = None,
    prox: tuple[float, list[F64]] | None = None,
) -> tuple[list[F64], float]:
    """K full-batch gradient steps; returns float64 weights and the mean training loss."""
    w = [np.array(a, dtype=np.float64) for a in weights]
    losses = []
    for _ in range(cfg.local_steps):
        loss, _, grads = _loss_and_grads(w, client.x, client.y)
        losses.append(loss)
        if correction is not None:
            grads = [g + c for g, c in zip(grads, correction, strict=True)]
        if prox is not None:
            mu, anchor = prox
            grads = [g + mu * (wi - a) for g, wi, a in zip(grads, w, anchor, strict=True)]
        w = [wi - cfg.learning_rate * g for wi, g in zip(w, grads, strict=True)]
    return w, float(np.mean(losses))


def _f32(arrays: list[F64]) -> NDArrays:
    return [a.astype(np.float32) for a in arrays]


def _f64(arrays: NDArrays) -> list[F64]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _load_packer(name: str, **options: Any) -> ParameterPacker[Any]:
    try:
        return get_packer(name, **options)
    except UnknownPackerError as exc:
        dist = "fedpack-" + name.replace("_", "-")
        raise DemoError(
            f"the {name!r} packer is not installed: install {dist} (pip install {dist})"
        ) from exc


# -- one round per algorithm ---------------------------------------------------------------


class _Server:
    """The global model, the algorithm's server state and one method per packer."""

    def __init__(self, cfg: DemoConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rng = rng
        self.weights = _init_model(cfg, rng)
        self.control_variates = [np.zeros(w.shape) for w in self.weights]
        self.clipping_bound = 1.0
        self.mu = 0.0
        self.previous_loss = float("inf")
        self.falling_rounds = 0
        self.packer = _load_packer(cfg.packer)
        self.down = self.packer if cfg.packer != "sparse_coo" else _load_packer("layer_names")

    def round(self, clients: list[_Client], wire: _Wire, progress: Callable[[int], None]) -> None:
        """Run one federated round of the configured algorithm."""
        step = getattr(self, f"_round_{self.cfg.packer}")
        step(clients, wire, progress)

    def _round_scaffold(
        self, clients: list[_Client], wire: _Wire, progress: Callable[[int], None]
    ) -> None:
        cfg = self.cfg
        new_weights, deltas = [], []
        for index, client in enumerate(clients):
            x, c = wire.send(self.packer, self.weights, _f32(self.control_variates))
            x64, c64 = _f64(x), _f64(c)
            ci = client.state or [np.zeros(a.shape) for a in x64]
            correction = [cg - cl for cg, cl in zip(c64, ci, strict=True)]
            y, _ = _train(x, client, cfg, correction=correction)
            scale = 1.0 / (cfg.local_steps * cfg.learning_rate)
            ci_new = [
                a - b + (xa - ya) * scale for a, b, xa, ya in zip(ci, c64, x64, y, strict=True)
            ]
            delta = [a - b for a, b in zip(ci_new, ci, strict=True)]
            client.state = ci_new
            y_recv, delta_recv = wire.send(self.packer, _f32(y), _f32(delta))
            new_weights.append(_f64(y_recv))
            deltas.append(_f64(delta_recv))
            progress(index + 1)
        fraction = len(clients) / self.cfg.clients
        self.weights = _f32([np.mean(layer, axis=0) for layer in zip(*new_weights, strict=True)])
        self.control_variates = [
            c + fraction * np.mean(layer, axis=0)
            for c, layer in zip(self.control_variates, zip(*deltas, strict=True), strict=True)
        ]

    def _round_layer_names(
        self, clients: list[_Client], wire: _Wire, progress: Callable[[int], None]
    ) -> None:
        sums = [np.zeros(w.shape) for w in self.weights]
        counts = [0] * len(self.weights)
        for index, client in enumerate(clients):
            x, names = wire.send(self.packer, self.weights, list(LAYER_NAMES))
            y, _ = _train(x, client, self.cfg)
            drift = [
                float(np.linalg.norm(b - a) / (np.linalg.norm(a) + 1e-8))
                for a, b in zip(_f64(x), y, strict=True)
            ]
            keep = sorted(np.argsort(drift)[::-1][: len(y) // 2].tolist())
            sent, sent_names = wire.send(
                self.packer, _f32([y[i] for i in keep]), [names[i] for i in keep]
            )
            for array, name in zip(sent, sent_names, strict=True):
                i = LAYER_NAMES.index(name)
                sums[i] += array
                counts[i] += 1
            progress(index + 1)
        self.weights = [
            (s / n).astype(np.float32) if n else w
            for s, n, w in zip(sums, counts, self.weights, strict=True)
        ]

    def _round_clipping_bit(
        self, clients: list[_Client], wire: _Wire, progress: Callable[[int], None]
    ) -> None:
        updates, bits = [], []
        for index, client in enumerate(clients):
            x, bound = wire.send(self.packer, self.weights, self.clipping_bound)
            x64 = _f64(x)
            y, _ = _train(x, client, self.cfg)
            update = [b - a for a, b in zip(x64, y, strict=True)]
            norm = float(np.sqrt(sum(float(np.sum(u * u)) for u in update)))
            scale = min(1.0, bound / max(norm, 1e-12))
            clipped = [a + u * scale for a, u in zip(x64, update, strict=True)]
            sent, bit = wire.send(self.packer, _f32(clipped), 1.0 if norm <= bound else 0.0)
            updates.append([b - a for a, b in zip(x64, _f64(sent), strict=True)])
            bits.append(bit)
            progress(index + 1)
        noise = 0.1 * self.clipping_bound / len(clients)  # noise multiplier 0.1
        mean_update = [
            np.mean(layer, axis=0) + self.rng.normal(0.0, noise, layer[0].shape)
            for layer in zip(*updates, strict=True)
        ]
        self.weights = _f32([w + u for w, u in zip(_f64(self.weights), mean_update, strict=True)])
        unclipped = float(np.mean(bits))
        self.clipping_bound *= float(np.exp(-0.2 * (unclipped - 0.5)))  # target quantile 0.5

    def _round_adaptive_constraint(
        self, clients: list[_Client], wire: _Wire, progress: Callable[[int], None]
    ) -> None:
        results, losses = [], []
        for index, client in enumerate(clients):
            x, mu = wire.send(self.packer, self.weights, self.mu)
            y, loss = _train(x, client, self.cfg, prox=(mu, _f64(x)))
            sent, sent_loss = wire.send(self.packer, _f32(y), loss)
            results.append(_f64(sent))
            losses.append(sent_loss)
            progress(index + 1)
        self.weights = _f32([np.mean(layer, axis=0) for layer in zip(*results, strict=True)])
        mean_loss = float(np.mean(losses))
        if mean_loss > self.previous_loss:
            self.mu, self.falling_rounds = self.mu + 0.1, 0
        else:
            self.falling_rounds += 1
            if self.falling_rounds >= 3:
                self.mu, self.falling_rounds = max(0.0, self.mu - 0.1), 0
        self.previous_loss = mean_loss

    def _round_sparse_coo(
        self, clients: list[_Client], wire: _Wire, progress: Callable[[int], None]
    ) -> None:
        sums = [np.zeros(w.shape) for w in self.weights]
        for index, client in enumerate(clients):
            x, names = wire.send(self.down, self.weights, list(LAYER_NAMES))
            x64 = _f64(x)
            y, _ = _train(x, client, self.cfg)
            values, indices, shapes = [], [], []
            for a, b in zip(x64, y, strict=True):
                update = b - a
                k = max(1, update.size // 4)
                flat = np.argsort(np.abs(update), axis=None)[::-1][:k]
                where = np.stack(np.unravel_index(np.sort(flat), update.shape), axis=1)
                values.append(update[tuple(where.T)].astype(np.float32))
                indices.append(where.astype(np.int64))
                shapes.append(np.array(update.shape, dtype=np.int64))
            got_values, (got_indices, got_shapes, got_names) = wire.send(
                self.packer, values, (indices, shapes, list(names))
            )
            for v, i, s, name in zip(got_values, got_indices, got_shapes, got_names, strict=True):
                dense = np.zeros(tuple(int(n) for n in s))
                dense[tuple(np.asarray(i).T)] = v
                sums[LAYER_NAMES.index(name)] += dense
            progress(index + 1)
        self.weights = _f32(
            [w + s / len(clients) for w, s in zip(_f64(self.weights), sums, strict=True)]
        )


def check_config(cfg: DemoConfig) -> None:
    """Raise :class:`DemoError` if ``cfg`` cannot run (unknown or missing packer, bad counts)."""
    if cfg.packer not in MODES:
        raise DemoError(f"--packer: expected one of {', '.join(MODES)}, found {cfg.packer!r}")
    if cfg.rounds < 1 or cfg.clients < 1 or cfg.local_steps < 1:
        raise DemoError(
            "expected at least 1 round, 1 client and 1 local step, found "
            f"rounds={cfg.rounds}, clients={cfg.clients}, local_steps={cfg.local_steps}"
        )
    _load_packer(cfg.packer)
    if cfg.packer == "sparse_coo":
        _load_packer("layer_names")


def run_demo(
    cfg: DemoConfig,
    *,
    progress: Progress | None = None,
    on_round: Callable[[RoundStats], None] | None = None,
) -> list[RoundStats]:
    """Run the simulation; returns one :class:`RoundStats` per round (round 0: the start).

    ``progress(round, clients_done, clients)`` is called after each client's exchange and
    ``on_round(stats)`` after each round (and for round 0). Raises :class:`DemoError` if the
    configuration cannot run (see :func:`check_config`).
    """
    check_config(cfg)
    rng = np.random.default_rng(cfg.seed)
    clients, test_x, test_y = _make_data(cfg, rng)
    server = _Server(cfg, rng)

    def evaluate(round_number: int) -> RoundStats:
        loss, accuracy, _ = _loss_and_grads(_f64(server.weights), test_x, test_y)
        return RoundStats(round_number, loss, accuracy)

    history = [evaluate(0)]
    if on_round is not None:
        on_round(history[0])
    for r in range(1, cfg.rounds + 1):
        stats = RoundStats(r, 0.0, 0.0)

        def report(done: int, r: int = r) -> None:
            if progress is not None:
                progress(r, done, len(clients))

        server.round(clients, _Wire(stats), report)
        final = evaluate(r)
        stats.loss, stats.accuracy = final.loss, final.accuracy
        history.append(stats)
        if on_round is not None:
            on_round(stats)
    return history
