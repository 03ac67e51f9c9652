"""SCAFFOLD on Flower's legacy ``FedAvg``, with fedpack's ``scaffold`` packer.

SCAFFOLD (Karimireddy et al., 2020) corrects client drift with control variates. Every round:

- server to client (:meth:`Scaffold.configure_fit`): the global weights ``x`` followed by the
  server control variates ``c``, packed with ``get_packer("scaffold")``;
- client to server: the client's trained weights ``y_i`` followed by its control variate
  update ``delta c_i``;
- server (:meth:`Scaffold.aggregate_fit`): the weights-only results go through FedAvg's own
  weighted average, ``x <- x + lr_g * (avg(y_i) - x)``, and the control variates are updated
  with ``c <- c + |S| / N * mean(delta c_i)``.

The extra arrays never reach FedAvg: :func:`fedpack.flwr.split_fit_results` hands it the
weights only. Run ``python examples/scaffold_strategy.py`` for a tiny in-process check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.common import FitIns, FitRes, Parameters, Scalar
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg

import fedpack
from fedpack.flwr import from_parameters, pack_parameters, split_fit_results, to_parameters

NDArrays = list[np.ndarray[Any, Any]]


class Scaffold(FedAvg):
    """FedAvg plus SCAFFOLD's server control variates.

    ``initial_parameters`` (the global weights, required) and every other keyword go to
    ``FedAvg``. ``initial_control_variates`` defaults to zeros shaped like the weights (pass
    them when control variates cover only the trainable subset of the weights).
    ``server_learning_rate`` is SCAFFOLD's global step size ``lr_g``.
    """

    def __init__(
        self,
        *,
        initial_parameters: Parameters,
        initial_control_variates: NDArrays | None = None,
        server_learning_rate: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(initial_parameters=initial_parameters, **kwargs)
        self.packer = fedpack.get_packer("scaffold")
        weights = from_parameters(initial_parameters, writable=True)
        self.weights: NDArrays = weights
        self.control_variates: NDArrays = (
            [np.zeros_like(w, dtype=np.float64) for w in weights]
            if initial_control_variates is None
            else [np.array(c, dtype=np.float64) for c in initial_control_variates]
        )
        self.server_learning_rate = server_learning_rate
        self.total_clients = 0

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """FedAvg's sampling and config, with ``weights + control variates`` as parameters."""
        self.total_clients = client_manager.num_available()
        self.weights = from_parameters(parameters, writable=True)
        packed = pack_parameters(self.packer, self.weights, self.control_variates)
        return [
            (proxy, FitIns(parameters=packed, config=fit_ins.config))
            for proxy, fit_ins in super().configure_fit(server_round, parameters, client_manager)
        ]

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Average the weights with FedAvg, then update the server control variates."""
        if not results or (failures and not self.accept_failures):
            return None, {}
        weights_results, deltas = split_fit_results(results, self.packer)
        averaged, metrics = super().aggregate_fit(server_round, weights_results, failures)
        if averaged is None:
            return None, metrics
        avg = from_parameters(averaged)
        if len(avg) != len(self.weights):
            raise ValueError(
                f"expected {len(self.weights)} weight arrays from the clients, found {len(avg)}"
            )
        lr = self.server_learning_rate
        new_weights = [
            (x + lr * (y.astype(np.float64) - x)).astype(x.dtype)
            for x, y in zip(self.weights, avg, strict=True)
        ]
        for index, delta in enumerate(deltas):
            if [d.shape for d in delta] != [c.shape for c in self.control_variates]:
                raise ValueError(
                    f"client {index}: expected control variate updates shaped "
                    f"{[c.shape for c in self.control_variates]}, found {[d.shape for d in delta]}"
                )
        fraction = len(results) / max(self.total_clients, len(results))
        self.control_variates = [
            c + fraction * np.mean([d[i] for d in deltas], axis=0)
            for i, c in enumerate(self.control_variates)
        ]
        self.weights = new_weights
        return to_parameters(new_weights), metrics


if __name__ == "__main__":  # a tiny smoke run: two clients, one round, no network
    from flwr.common import Code, Status, ndarrays_to_parameters

    class _Proxy:  # aggregate_fit only passes client proxies through
        cid = "0"

    packer = fedpack.get_packer("scaffold")
    strategy = Scaffold(initial_parameters=ndarrays_to_parameters([np.zeros(3), np.zeros(2)]))
    ok = Status(code=Code.OK, message="")
    fit_results: list[tuple[Any, FitRes]] = [
        (
            _Proxy(),
            FitRes(
                ok,
                pack_parameters(
                    packer, [np.full(3, v), np.full(2, v)], [np.full(3, v), np.full(2, v)]
                ),
                10,
                {},
            ),
        )
        for v in (1.0, 3.0)
    ]
    strategy.total_clients = 2
    parameters, _ = strategy.aggregate_fit(1, fit_results, [])
    assert parameters is not None  # noqa: S101
    print("weights:", from_parameters(parameters))
    print("server control variates:", strategy.control_variates)
