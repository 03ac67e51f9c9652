"""One Flower strategy per algorithm of the run config.

Each is a stock Flower strategy or a fedpack one built on Flower's ``FedAvg``; DP-FedAvg is
Flower's own ``DifferentialPrivacyClientSideAdaptiveClipping`` around fedpack's
``ClippingBitFedAvg``.
"""

from __future__ import annotations

from typing import Any

from flwr.serverapp.strategy import FedAvg, Strategy

from fedpack.flwr import (
    AdaptiveConstraint,
    ClippingBitFedAvg,
    PartialExchange,
    Scaffold,
    dp_fedavg_adaptive_clipping,
)

from .config import AppConfig


def build_strategy(config: AppConfig, num_nodes: int) -> Strategy:
    """The strategy of ``config.algorithm`` for a federation of ``num_nodes`` nodes."""
    common: dict[str, Any] = {
        "fraction_train": config.fraction_train,
        "fraction_evaluate": 0.0,  # the ServerApp evaluates the global model itself
        "min_train_nodes": config.min_nodes,
        "min_available_nodes": config.min_nodes,
    }
    if config.algorithm == "scaffold":
        return Scaffold(server_learning_rate=config.server_learning_rate, **common)
    if config.algorithm == "fedprox-adaptive":
        return AdaptiveConstraint(
            initial_constraint_weight=config.proximal_mu, adapt=True, **common
        )
    if config.algorithm == "layer-names":
        return PartialExchange(**common)
    if config.algorithm == "dp-adaptive":
        return dp_fedavg_adaptive_clipping(
            ClippingBitFedAvg(**common),
            noise_multiplier=config.noise_multiplier,
            num_sampled_clients=max(config.min_nodes, round(config.fraction_train * num_nodes)),
            initial_clipping_norm=config.clipping_norm,
            target_clipped_quantile=config.clipped_quantile,
        )
    return FedAvg(**common)


def refused_replies(strategy: Strategy, server_round: int) -> int:
    """Replies a fedpack strategy (possibly inside Flower's wrappers) refused in a round."""
    current: object = strategy
    while current is not None:
        failures = getattr(current, "failures", None)
        if isinstance(failures, dict):
            return len(failures.get(server_round, []))
        current = getattr(current, "strategy", None)
    return 0
