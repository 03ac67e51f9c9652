"""One Flower strategy per algorithm of the run config."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Strategy

import fedpack
from fedpack.flwr import pop_extras, to_record_dict

from .config import AppConfig


class _Scaffold(FedAvg):
    """Interim SCAFFOLD strategy (to be replaced by the library's)."""

    def __init__(self, initial_arrays: ArrayRecord, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.packer = fedpack.get_packer("scaffold")
        self.c = [np.zeros_like(a.numpy()) for a in initial_arrays.values()]

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        weights = [a.numpy() for a in arrays.values()]
        extra = to_record_dict(self.packer, weights, self.c)["fedpack.extra"]
        for m in messages:
            m.content["fedpack.extra"] = extra
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        extras = pop_extras([r for r in replies if not r.has_error()], self.packer)
        arrays, metrics = super().aggregate_train(server_round, replies)
        if extras:
            for i in range(len(self.c)):
                self.c[i] = self.c[i] + sum(d[i] for _, d in extras) / len(extras)
        return arrays, metrics


def build_strategy(config: AppConfig, initial_arrays: ArrayRecord) -> Strategy:
    """The strategy of ``config.algorithm``."""
    common = {"fraction_train": config.fraction_train, "fraction_evaluate": 0.0}
    if config.algorithm == "fedavg":
        return FedAvg(**common)  # type: ignore[arg-type]
    if config.algorithm == "scaffold":
        return _Scaffold(initial_arrays, **common)
    raise NotImplementedError(config.algorithm)
