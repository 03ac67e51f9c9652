"""fedpack's strategies and ClientApp helpers run on Flower's simulation engine (Ray).

Each test starts a ServerApp and a ClientApp with ``flwr.simulation.run_simulation`` (Ray on
127.0.0.1, two CPUs, three nodes, two rounds, a tiny numpy model from ``sim_apps``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("flwr.serverapp.strategy", reason="needs flwr's Message API strategies")
pytest.importorskip("ray", reason="needs flwr[simulation] (Ray)")

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
)
from flwr.simulation import run_simulation

import fedpack.flwr as fpf

sys.path.insert(0, str(Path(__file__).parent))  # Ray's workers get this sys.path too
import sim_apps

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

NODES = 3
ROUNDS = 2
BACKEND: Any = {
    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    "init_args": {
        "num_cpus": 2,
        "num_gpus": 0,
        "_node_ip_address": "127.0.0.1",
        "include_dashboard": False,
        "logging_level": 30,
    },
}
FEDAVG: dict[str, Any] = {
    "fraction_evaluate": 0.0,
    "min_train_nodes": NODES,
    "min_available_nodes": NODES,
}


def simulate(make: Callable[[], tuple[Any, Any]], client_app: Any) -> tuple[Any, Any]:
    """Run the strategy ``make()`` returns (outer, inner) against ``client_app``."""
    seen: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        outer, inner = make()
        seen["inner"] = inner
        seen["result"] = outer.start(
            grid=grid,
            initial_arrays=fpf.to_array_record(sim_apps.initial_weights()),
            num_rounds=ROUNDS,
            timeout=120,
        )

    run_simulation(
        server_app=server, client_app=client_app, num_supernodes=NODES, backend_config=BACKEND
    )
    assert "result" in seen, "the ServerApp did not finish"
    return seen["inner"], seen["result"]


def both(strategy: Any) -> tuple[Any, Any]:
    return strategy, strategy


def rounds_completed(result: Any) -> list[int]:
    return sorted(result.train_metrics_clientapp)


def test_scaffold() -> None:
    strategy, result = simulate(lambda: both(fpf.Scaffold(**FEDAVG)), sim_apps.plain_app)
    assert rounds_completed(result) == [1, 2]
    assert strategy.failures == {1: [], 2: []}
    assert list(result.arrays.keys()) == ["fc.weight", "fc.bias"]
    assert np.abs(strategy.control_variates["fc.weight"]).sum() > 0


def test_scaffold_with_a_torch_client() -> None:
    pytest.importorskip("torch")
    strategy, result = simulate(lambda: both(fpf.Scaffold(**FEDAVG)), sim_apps.torch_app)
    assert rounds_completed(result) == [1, 2]
    assert strategy.failures == {1: [], 2: []}
    assert np.abs(strategy.control_variates["fc.bias"]).sum() > 0
    assert np.abs(result.arrays["fc.weight"].numpy()).sum() > 0


def test_partial_exchange() -> None:
    strategy, result = simulate(lambda: both(fpf.PartialExchange(**FEDAVG)), sim_apps.plain_app)
    assert rounds_completed(result) == [1, 2]
    assert strategy.failures == {1: [], 2: []}
    assert list(result.arrays.keys()) == ["fc.weight", "fc.bias"]


def test_adaptive_constraint() -> None:
    make = lambda: both(  # noqa: E731
        fpf.AdaptiveConstraint(initial_constraint_weight=0.5, adapt=True, patience=1, **FEDAVG)
    )
    strategy, result = simulate(make, sim_apps.plain_app)
    assert rounds_completed(result) == [1, 2]
    assert sorted(strategy.losses) == [1, 2]
    assert strategy.constraint_weight != 0.5


@pytest.mark.parametrize("packer", ["clipping_bit", "scaffold+clipping_bit"])
def test_dp_adaptive_clipping_with_flowers_mod(packer: str) -> None:
    def make() -> tuple[Any, Any]:
        if packer == "clipping_bit":
            inner: Any = fpf.ClippingBitFedAvg(**FEDAVG)
        else:
            inner = fpf.Scaffold(packer=packer, **FEDAVG)
        outer = fpf.dp_fedavg_adaptive_clipping(
            inner, noise_multiplier=0.01, num_sampled_clients=NODES, initial_clipping_norm=0.1
        )
        seen_outer.append(outer)
        return outer, inner

    seen_outer: list[Any] = []
    strategy, result = simulate(make, sim_apps.adaptive_clipping_app)
    assert rounds_completed(result) == [1, 2]
    assert strategy.failures == {1: [], 2: []}
    assert "norm_bit" in result.train_metrics_clientapp[2]
    assert seen_outer[0].clipping_norm != 0.1  # the wrapper adapted the bound from norm_bit


def test_fixed_clipping_mod() -> None:
    def make() -> tuple[Any, Any]:
        inner = fpf.Scaffold(**FEDAVG)
        outer = DifferentialPrivacyClientSideFixedClipping(
            inner, noise_multiplier=0.0, clipping_norm=0.05, num_sampled_clients=NODES
        )
        return outer, inner

    strategy, result = simulate(make, sim_apps.fixed_clipping_app)
    assert rounds_completed(result) == [1, 2]
    assert strategy.failures == {1: [], 2: []}


@pytest.mark.parametrize("kind", ["fixed", "adaptive"])
def test_scaffold_around_flowers_server_side_dp_wrapper(kind: str) -> None:
    """The wrapper clips and noises the weights alone; SCAFFOLD updates its control variates."""
    wrappers: list[Any] = []

    def make() -> tuple[Any, Any]:
        dp: Any
        if kind == "fixed":
            dp = DifferentialPrivacyServerSideFixedClipping(
                FedAvg(**FEDAVG),
                noise_multiplier=0.01,
                clipping_norm=0.05,
                num_sampled_clients=NODES,
            )
        else:
            dp = DifferentialPrivacyServerSideAdaptiveClipping(
                FedAvg(**FEDAVG),
                noise_multiplier=0.01,
                num_sampled_clients=NODES,
                initial_clipping_norm=0.05,
            )
        wrappers.append(dp)
        return both(fpf.Scaffold(strategy=dp))

    strategy, result = simulate(make, sim_apps.plain_app)
    assert rounds_completed(result) == [1, 2]
    assert strategy.failures == {1: [], 2: []}
    assert list(result.arrays.keys()) == ["fc.weight", "fc.bias"]
    assert np.abs(strategy.control_variates["fc.weight"]).sum() > 0
    # each round moves the model (from zeros) by at most the clipping bound, plus tiny noise;
    # unclipped, one round of local training moves it by about 0.5
    moved = np.sqrt(sum(np.sum(a.numpy() ** 2) for a in result.arrays.values()))
    assert 0 < moved < ROUNDS * 0.05 * 1.25 + 0.01
    if kind == "adaptive":
        assert wrappers[0].clipping_norm != 0.05  # the wrapper adapted its bound


def test_packed_strategy_with_a_third_party_packer() -> None:
    def make() -> tuple[Any, Any]:
        echo = fpf.PackedStrategy(
            FedAvg(**FEDAVG), "echo", train_extra=lambda r, a, c: [x.numpy() for x in a.values()]
        )
        return echo, echo

    strategy, result = simulate(make, sim_apps.plain_app)
    assert rounds_completed(result) == [1, 2]
    assert strategy.failures == {1: [], 2: []}
    assert [len(strategy.extras[r]) for r in (1, 2)] == [NODES, NODES]
    assert all(len(r.extra) == 2 for r in strategy.extras[2])


def test_mixed_fleet_completes_and_counts_failures() -> None:
    strategy, result = simulate(lambda: both(fpf.Scaffold(**FEDAVG)), sim_apps.mixed_app)
    assert rounds_completed(result) == [1, 2]
    for server_round in (1, 2):
        reasons = sorted(f.reason for f in strategy.failures[server_round])
        assert len(reasons) == 2
        assert "expected an ArrayRecord 'fedpack.extra'" in reasons[0] + reasons[1]
        assert "frame" in reasons[0] + reasons[1]


@pytest.mark.parametrize("module", ["scaffold_fedpack", "scaffold_flower"])
def test_the_counted_scaffold_apps_run(module: str) -> None:
    """examples/loc: both SCAFFOLD versions are real apps that run to the end."""
    pytest.importorskip("torch")
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    app = importlib.import_module(f"examples.loc.{module}")
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("flwr").addHandler(handler)
    try:
        run_simulation(
            server_app=app.server,
            client_app=app.client,
            num_supernodes=NODES,
            backend_config=BACKEND,
        )
    finally:
        logging.getLogger("flwr").removeHandler(handler)
    rounds = [line for line in lines if line.startswith("aggregate_train: Received")]
    assert len(rounds) == 3, lines
    assert all(line.endswith(" results and 0 failures") for line in rounds), rounds
