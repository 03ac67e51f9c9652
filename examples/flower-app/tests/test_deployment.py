"""The app on a real local deployment: one SuperLink, two SuperNodes, `flwr run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Flower


def test_scaffold_on_a_deployment_carries_fedpack_payloads_both_ways(deployment: Flower) -> None:
    result = deployment.run({"algorithm": "scaffold", "num-server-rounds": 2}).result
    rounds = result["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    for r in rounds[1:]:
        assert (r["replies"], r["failures"]) == (2, 0)
        assert r["fedpack_down"] == r["fedpack_up"] == 2
        assert r["bytes_down"] > 0
        assert r["bytes_up"] > 0
    assert rounds[-1]["accuracy"] > rounds[0]["accuracy"]


def test_a_malformed_reply_is_a_failure_and_the_run_completes(deployment: Flower) -> None:
    # the SuperNode of partition 1 corrupts the fedpack record of its reply every round
    run = deployment.run({"algorithm": "scaffold", "num-server-rounds": 2, "corrupt-partition": 1})
    rounds = run.result["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    for r in rounds[1:]:
        assert (r["replies"], r["failures"]) == (2, 1)
    assert rounds[-1]["accuracy"] > rounds[0]["accuracy"]
