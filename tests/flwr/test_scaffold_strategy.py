"""The SCAFFOLD strategy example (examples/scaffold_strategy.py) with real Flower objects."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fedpack
from fedpack.flwr import from_parameters, pack_parameters, unpack_parameters

from .conftest import arrays_equal

flwr = pytest.importorskip("flwr")

from flwr.common import (  # noqa: E402
    Code,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import SimpleClientManager  # noqa: E402
from flwr.server.client_proxy import ClientProxy  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scaffold_strategy.py"
OK = Status(code=Code.OK, message="")


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scaffold_strategy_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Proxy(ClientProxy):
    """A client proxy that is never called (the strategy only samples and passes it on)."""

    def get_properties(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def get_parameters(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def reconnect(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


GLOBAL = [np.zeros((2, 3), dtype=np.float32), np.zeros(3, dtype=np.float32)]


def client_result(packer: Any, value: float, delta: float, n: int, cid: str) -> Any:
    weights = [np.full((2, 3), value, dtype=np.float32), np.full(3, value, dtype=np.float32)]
    deltas = [np.full((2, 3), delta), np.full(3, delta)]
    parameters = pack_parameters(packer, weights, deltas)
    return (Proxy(cid), FitRes(status=OK, parameters=parameters, num_examples=n, metrics={}))


def manager(count: int) -> SimpleClientManager:
    clients = SimpleClientManager()
    for i in range(count):
        clients.register(Proxy(str(i)))
    return clients


def test_configure_fit_sends_weights_and_server_control_variates(example: ModuleType) -> None:
    strategy = example.Scaffold(
        initial_parameters=ndarrays_to_parameters(GLOBAL), on_fit_config_fn=lambda r: {"r": r}
    )
    strategy.control_variates = [np.full((2, 3), 0.5), np.full(3, 0.25)]
    instructions = strategy.configure_fit(3, ndarrays_to_parameters(GLOBAL), manager(4))
    assert len(instructions) == 4
    assert strategy.total_clients == 4
    for _, fit_ins in instructions:
        assert fit_ins.config == {"r": 3}
        weights, cvs = unpack_parameters(fit_ins.parameters, fedpack.get_packer("scaffold"))
        assert arrays_equal(weights, GLOBAL)
        assert arrays_equal(cvs, strategy.control_variates)


def test_aggregate_fit_averages_weights_and_updates_control_variates(
    example: ModuleType,
) -> None:
    strategy = example.Scaffold(initial_parameters=ndarrays_to_parameters(GLOBAL))
    strategy.configure_fit(1, ndarrays_to_parameters(GLOBAL), manager(4))
    packer = fedpack.get_packer("scaffold")
    results = [
        client_result(packer, 1.0, 0.4, 10, "a"),
        client_result(packer, 4.0, 0.8, 30, "b"),
    ]
    parameters, _ = strategy.aggregate_fit(1, results, [])
    assert parameters is not None
    weights = parameters_to_ndarrays(parameters)
    assert len(weights) == len(GLOBAL)  # the control variate updates never reached FedAvg
    np.testing.assert_allclose(weights[0], np.full((2, 3), (1.0 * 10 + 4.0 * 30) / 40))
    assert weights[0].dtype == np.float32
    # c <- c + |S|/N * mean(delta c_i): 2 of 4 clients took part
    np.testing.assert_allclose(strategy.control_variates[1], np.full(3, 0.5 * 0.6))
    # the next round sends the new weights and control variates
    instructions = strategy.configure_fit(2, parameters, manager(4))
    sent_weights, sent_cvs = unpack_parameters(instructions[0][1].parameters, packer)
    assert arrays_equal(sent_weights, weights)
    assert arrays_equal(sent_cvs, strategy.control_variates)


def test_server_learning_rate(example: ModuleType) -> None:
    strategy = example.Scaffold(
        initial_parameters=ndarrays_to_parameters(GLOBAL), server_learning_rate=0.5
    )
    strategy.total_clients = 1
    packer = fedpack.get_packer("scaffold")
    parameters, _ = strategy.aggregate_fit(1, [client_result(packer, 2.0, 1.0, 5, "a")], [])
    assert parameters is not None
    np.testing.assert_allclose(from_parameters(parameters)[1], np.full(3, 1.0))
    np.testing.assert_allclose(strategy.control_variates[0], np.ones((2, 3)))


def test_aggregate_fit_rejects_mismatched_control_variates(example: ModuleType) -> None:
    strategy = example.Scaffold(initial_parameters=ndarrays_to_parameters(GLOBAL))
    packer = fedpack.get_packer("scaffold")
    weights = [np.ones((2, 3), dtype=np.float32), np.ones(3, dtype=np.float32)]
    bad = pack_parameters(packer, weights, [np.ones(7)])
    results = [(Proxy("x"), FitRes(status=OK, parameters=bad, num_examples=1, metrics={}))]
    with pytest.raises(ValueError, match=r"client 0: expected control variate updates shaped"):
        strategy.aggregate_fit(1, results, [])


def test_aggregate_fit_rejects_unpacked_results(example: ModuleType) -> None:
    strategy = example.Scaffold(initial_parameters=ndarrays_to_parameters(GLOBAL))
    plain = ndarrays_to_parameters(GLOBAL)
    results = [(Proxy("x"), FitRes(status=OK, parameters=plain, num_examples=1, metrics={}))]
    with pytest.raises(fedpack.PackingError, match=r"fit result 0 \(client x\)"):
        strategy.aggregate_fit(1, results, [])


def test_no_results_or_refused_failures(example: ModuleType) -> None:
    strategy = example.Scaffold(
        initial_parameters=ndarrays_to_parameters(GLOBAL), accept_failures=False
    )
    assert strategy.aggregate_fit(1, [], []) == (None, {})
    packer = fedpack.get_packer("scaffold")
    results = [client_result(packer, 1.0, 0.0, 1, "a")]
    assert strategy.aggregate_fit(1, results, [RuntimeError("x")]) == (None, {})
