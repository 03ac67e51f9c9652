"""The learning task: a small MLP on synthetic, strongly non-IID classification data.

Everything is generated from seeds (no downloads), so a run is reproducible:

- 10 classes in 32 dimensions, class centres drawn once from ``data-seed``;
- each client (partition) gets a label distribution drawn from a Dirichlet(``alpha``) (label
  skew: with the default alpha of 0.1 a client sees two or three classes) and its own feature
  shift, a random offset added to every sample (feature skew);
- the held-out global test set has every class equally often, and each test sample carries the
  shift of a randomly chosen client, so it is the union of what the clients see.

One training loop serves every algorithm of the app: it takes a hook run after each backward
pass (SCAFFOLD corrects the gradients there) and an optional proximal weight ``mu`` (FedProx).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

NUM_CLASSES = 10
NUM_FEATURES = 32
HIDDEN = 64
CLASS_SPREAD = 1.6  # distance scale between class centres; smaller is harder
SHIFT_SCALE = 1.5  # size of each client's feature shift


class Net(nn.Module):
    """A two-layer MLP: 32 -> ``hidden`` (64 by default) -> 10."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.fc1 = nn.Linear(NUM_FEATURES, hidden)
        self.fc2 = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        logits: torch.Tensor = self.fc2(torch.relu(self.fc1(x)))
        return logits


def new_model(seed: int, hidden: int = HIDDEN) -> Net:
    """A freshly initialised model, the same for the same seed."""
    torch.manual_seed(seed)
    return Net(hidden)


@dataclass(frozen=True)
class Dataset:
    """Features and labels as tensors."""

    x: torch.Tensor
    y: torch.Tensor


def _centres(data_seed: int) -> np.ndarray:
    rng = np.random.default_rng([data_seed, 0])
    return rng.normal(0.0, CLASS_SPREAD, (NUM_CLASSES, NUM_FEATURES))


def _shifts(data_seed: int, num_partitions: int) -> np.ndarray:
    rng = np.random.default_rng([data_seed, 1, num_partitions])
    return rng.normal(0.0, SHIFT_SCALE, (num_partitions, NUM_FEATURES))


def _sample(rng: np.random.Generator, centres: np.ndarray, labels: np.ndarray) -> np.ndarray:
    noise: np.ndarray = rng.normal(0.0, 1.0, (len(labels), NUM_FEATURES))
    samples: np.ndarray = centres[labels] + noise
    return samples


def load_partition(
    partition_id: int,
    num_partitions: int,
    *,
    data_seed: int = 0,
    alpha: float = 0.1,
    samples: int = 500,
) -> Dataset:
    """The training data of one client: label skew (Dirichlet ``alpha``) and a feature shift."""
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition-id must be in [0, {num_partitions}), got {partition_id}")
    rng = np.random.default_rng([data_seed, 2, num_partitions, partition_id])
    proportions = rng.dirichlet(np.full(NUM_CLASSES, alpha))
    labels = rng.choice(NUM_CLASSES, size=samples, p=proportions)
    x = _sample(rng, _centres(data_seed), labels) + _shifts(data_seed, num_partitions)[partition_id]
    return Dataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(labels))


def load_test_set(num_partitions: int, *, data_seed: int = 0, samples: int = 2000) -> Dataset:
    """The held-out global test set: balanced classes, each sample with some client's shift."""
    rng = np.random.default_rng([data_seed, 3, num_partitions])
    labels = np.arange(samples) % NUM_CLASSES
    owners = rng.integers(0, num_partitions, samples)
    x = _sample(rng, _centres(data_seed), labels) + _shifts(data_seed, num_partitions)[owners]
    return Dataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(labels))


def train(
    model: Net,
    data: Dataset,
    *,
    steps: int,
    lr: float,
    batch_size: int = 32,
    seed: int = 0,
    after_backward: Callable[[nn.Module], None] | None = None,
    proximal_mu: float = 0.0,
) -> float:
    """Run ``steps`` SGD steps on random mini-batches; returns the mean training loss.

    ``after_backward(model)`` runs after each backward pass, before the step (SCAFFOLD adds
    its correction ``c - c_i`` to the gradients there). ``proximal_mu`` adds FedProx's
    ``mu / 2 * ||w - w_global||^2``, the global weights being those the model holds when
    training starts.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else None
    total = 0.0
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data.y), (batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(model(data.x[idx]), data.y[idx])
        total += loss.item()
        if anchor is not None:
            loss = loss + proximal_mu / 2 * sum(
                torch.sum((p - a) ** 2) for p, a in zip(model.parameters(), anchor, strict=True)
            )
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        if after_backward is not None:
            after_backward(model)
        optimizer.step()
    return total / max(steps, 1)


@dataclass(frozen=True)
class Fit:
    """A client's local training: its data and hyper-parameters; call it with a model."""

    data: Dataset
    steps: int
    lr: float
    batch_size: int
    seed: int = 0

    @property
    def num_examples(self) -> int:
        """The size of the client's data set."""
        return len(self.data.y)

    def __call__(
        self,
        model: Net,
        *,
        after_backward: Callable[[nn.Module], None] | None = None,
        proximal_mu: float = 0.0,
    ) -> float:
        """:func:`train` the model; returns the mean training loss."""
        return train(
            model,
            self.data,
            steps=self.steps,
            lr=self.lr,
            batch_size=self.batch_size,
            seed=self.seed,
            after_backward=after_backward,
            proximal_mu=proximal_mu,
        )


def update_norm(new: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor]) -> float:
    """The L2 norm of ``new - old`` over every tensor (the size of a client's update)."""
    return math.sqrt(sum(float(torch.sum((new[k] - old[k]) ** 2)) for k in old))


def most_changed(
    new: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor], fraction: float
) -> dict[str, torch.Tensor]:
    """The ``fraction`` of the layers of ``new`` that moved most from ``old`` (relative change)."""
    change = {
        k: float(
            torch.linalg.vector_norm(new[k] - old[k]) / (torch.linalg.vector_norm(old[k]) + 1e-12)
        )
        for k in old
    }
    keep = sorted(change, key=change.__getitem__, reverse=True)[
        : max(1, round(fraction * len(change)))
    ]
    return {k: new[k] for k in old if k in keep}


def evaluate(model: Net, data: Dataset) -> tuple[float, float]:
    """``(loss, accuracy)`` on ``data``."""
    model.eval()
    with torch.no_grad():
        logits = model(data.x)
        loss = float(nn.functional.cross_entropy(logits, data.y))
        accuracy = float((logits.argmax(dim=1) == data.y).float().mean())
    return loss, accuracy
