"""The app on Flower's simulation engine (a SuperLink in simulation mode, Ray, `flwr run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Flower

NODES = 8
#: 8 virtual SuperNodes on a Ray node with 2 CPUs, one CPU per ClientApp
FEDERATION = f"num-supernodes={NODES} init-args-num-cpus=2 client-resources-num-cpus=1"
ROUNDS = 5


def run(simulation: Flower, **run_config: Any) -> dict[str, Any]:
    return simulation.run(run_config, federation_config=FEDERATION).result


def test_scaffold_beats_fedavg_on_non_iid_data(simulation: Flower) -> None:
    fedavg = run(simulation, algorithm="fedavg", **{"num-server-rounds": ROUNDS})
    scaffold = run(simulation, algorithm="scaffold", **{"num-server-rounds": ROUNDS})
    curves = {
        name: [round(r["accuracy"], 3) for r in result["rounds"]]
        for name, result in (("fedavg", fedavg), ("scaffold", scaffold))
    }
    print(f"accuracy per round: {curves}")
    for result in (fedavg, scaffold):
        assert [r["round"] for r in result["rounds"]] == list(range(ROUNDS + 1))
        assert all(r["replies"] == NODES and r["failures"] == 0 for r in result["rounds"][1:])
    # the same start, and SCAFFOLD ends clearly above FedAvg
    assert curves["fedavg"][0] == curves["scaffold"][0]
    assert curves["scaffold"][-1] > curves["fedavg"][-1] + 0.02, curves
    # SCAFFOLD's control variates travel both ways as fedpack payloads, FedAvg sends weights only
    fedavg_round, scaffold_round = fedavg["rounds"][1], scaffold["rounds"][1]
    assert fedavg_round["fedpack_down"] == fedavg_round["fedpack_up"] == 0
    assert scaffold_round["fedpack_down"] == scaffold_round["fedpack_up"] == NODES
    assert scaffold_round["bytes_down"] > 1.9 * fedavg_round["bytes_down"]
    assert scaffold_round["bytes_up"] > 1.9 * fedavg_round["bytes_up"]


@pytest.mark.parametrize("algorithm", ["fedprox-adaptive", "layer-names", "dp-adaptive"])
def test_every_algorithm_runs_to_the_end(simulation: Flower, algorithm: str) -> None:
    result = run(simulation, algorithm=algorithm, **{"num-server-rounds": 2})
    rounds = result["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert all(r["replies"] == NODES and r["failures"] == 0 for r in rounds[1:])
    assert all(r["fedpack_down"] == r["fedpack_up"] == NODES for r in rounds[1:])
    assert rounds[-1]["accuracy"] > rounds[0]["accuracy"]
