"""The aggregation math of fedpack.flwr's strategies, driven by hand (fast; no Ray).

The end-to-end runs on Flower's simulation engine are in test_simulation.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fedpack
from fedpack import PackingError
from fedpack.flwr import EXTRA_KEY, from_record_dict, receive, reply, to_array_record

pytest.importorskip("flwr")
pytest.importorskip("flwr.serverapp.strategy", reason="needs flwr's Message API strategies")

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp.strategy import FedAvg

from fedpack.flwr import (
    AdaptiveConstraint,
    ClippingBitFedAvg,
    PackedFedAvg,
    PackedStrategy,
    PartialExchange,
    Scaffold,
    dp_fedavg_adaptive_clipping,
)


class FakeGrid:
    """What a strategy's configure_* asks of a Grid: the connected node ids."""

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        return self.nodes


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    """Flower's instruction messages read the run id of the task running them (flwr 1.42)."""
    try:
        from flwr.supercore.task_identity import TaskIdentity
    except ImportError:  # older Flower: messages need no task identity
        yield
        return

    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = 1, 0, 0
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def arrays(**values: Any) -> ArrayRecord:
    return to_array_record({k: np.asarray(v) for k, v in values.items()})


def by_node(messages: Any) -> dict[int, Message]:
    return {m.metadata.dst_node_id: m for m in messages}


def test_scaffold_update() -> None:
    strategy = Scaffold(server_learning_rate=0.5, fraction_train=0.5, min_available_nodes=2)
    grid = FakeGrid([1, 2, 3, 4])
    start = arrays(w=np.zeros(2, np.float32), n=np.array(0, np.int64))
    sent = by_node(strategy.configure_train(1, start, ConfigRecord(), grid))
    assert len(sent) == 2  # |S| = 2 of N = 4
    (_a, msg_a), (_b, msg_b) = sorted(sent.items())
    _weights, c = from_record_dict(msg_a.content)
    assert list(msg_a.content["arrays"].keys()) == ["w", "n"]
    assert [x.tolist() for x in c] == [[0.0, 0.0], 0.0]
    replies = [
        reply(
            msg_a,
            [np.ones(2, np.float32), np.array(0)],
            [np.full(2, 2.0), np.array(0.0)],
            num_examples=1,
        ),
        reply(
            msg_b,
            [np.full(2, 3.0, np.float32), np.array(0)],
            [np.full(2, 4.0), np.array(0.0)],
            num_examples=3,
        ),
    ]
    new, _ = strategy.aggregate_train(1, replies)
    assert new is not None
    # FedAvg: (1 * 1 + 3 * 3) / 4 = 2.5 ; x = 0 + 0.5 * (2.5 - 0)
    assert np.allclose(new["w"].numpy(), 1.25)
    assert new["w"].numpy().dtype == np.float32
    assert new["n"].numpy().dtype == np.int64
    # c = 0 + |S| / N * mean(dc) = 2 / 4 * 3
    assert np.allclose(strategy.control_variates["w"], 1.5)
    again = next(iter(strategy.configure_train(2, new, ConfigRecord(), grid)))
    _, c2 = from_record_dict(again.content)
    assert np.allclose(c2[0], 1.5)
    assert strategy.failures == {1: []}


def test_scaffold_leaves_bad_replies_out_and_counts_them() -> None:
    strategy = Scaffold(min_available_nodes=2)
    grid = FakeGrid([1, 2])
    sent = by_node(strategy.configure_train(1, arrays(w=np.zeros(2)), ConfigRecord(), grid))
    good = reply(sent[1], [np.ones(2)], [np.ones(2)], num_examples=1)
    old = reply(sent[2], [np.full(2, 9.0)], num_examples=1)  # no extras: an old client
    new, _ = strategy.aggregate_train(1, [good, old])
    assert new is not None
    assert np.allclose(new["w"].numpy(), 1.0)
    assert [(f.index, f.node_id) for f in strategy.failures[1]] == [(1, 2)]
    assert "expected an ArrayRecord 'fedpack.extra'" in strategy.failures[1][0].reason
    assert np.allclose(strategy.control_variates["w"], 0.5)  # 1 / 2 * 1


def test_replies_of_another_model_are_failures_not_crashes() -> None:
    strategy = Scaffold(min_available_nodes=2)
    grid = FakeGrid([1, 2])
    sent = by_node(strategy.configure_train(1, arrays(w=np.zeros(2)), ConfigRecord(), grid))
    good = reply(sent[1], [np.ones(2)], [np.ones(2)], num_examples=1)
    shaped = reply(sent[2], [np.ones(3)], [np.ones(3)], num_examples=1)  # another model
    new, _ = strategy.aggregate_train(1, [good, shaped])
    assert new is not None
    assert np.allclose(new["w"].numpy(), 1.0)
    [failure] = strategy.failures[1]
    assert "expected the weights [('w', (2,))], found [('w', (3,))]" in failure.reason
    sent = by_node(strategy.configure_train(2, new, ConfigRecord(), grid))
    renamed = reply(sent[1], {"v": np.ones(2)}, [np.ones(2)], num_examples=1)
    assert strategy.aggregate_train(2, [renamed]) == (None, None)
    assert "found [('v', (2,))]" in strategy.failures[2][0].reason


def test_partial_exchange_averages_each_layer_over_its_senders() -> None:
    strategy = PartialExchange(min_available_nodes=3)
    grid = FakeGrid([1, 2, 3])
    start = arrays(a=np.zeros(2), b=np.array([10.0]), c=np.array([7.0]))
    sent = by_node(strategy.configure_train(1, start, ConfigRecord(), grid))
    _, names = from_record_dict(sent[1].content)
    assert names == ["a", "b", "c"]
    replies = [
        reply(sent[1], {"a": np.full(2, 2.0)}, ["a"], num_examples=1),
        reply(sent[2], {"a": np.full(2, 4.0), "b": np.array([20.0])}, ["a", "b"], num_examples=3),
        reply(sent[3], {"zzz": np.zeros(1)}, ["zzz"], num_examples=5),  # not in the model
    ]
    new, _ = strategy.aggregate_train(1, replies)
    assert new is not None
    assert list(new.keys()) == ["a", "b", "c"]
    assert np.allclose(new["a"].numpy(), 3.5)  # (2 * 1 + 4 * 3) / 4
    assert np.allclose(new["b"].numpy(), 20.0)  # only node 2 sent it
    assert np.allclose(new["c"].numpy(), 7.0)  # nobody sent it
    [failure] = strategy.failures[1]
    assert failure.node_id == 3
    assert "layers not in the global model or shaped differently: ['zzz']" in failure.reason


def test_adaptive_constraint_rule() -> None:
    strategy = AdaptiveConstraint(
        initial_constraint_weight=1.0, adapt=True, weight_delta=0.25, patience=2
    )
    seen = []
    for loss in [1.0, 0.9, 1.2, 1.1, 1.0, 0.9]:
        strategy.update_constraint_weight(loss)
        seen.append(strategy.constraint_weight)
    # 1.0, 0.9: two rounds without a rise -> -0.25 ; 1.2 rises -> +0.25 ; then 1.1, 1.0 -> -0.25
    assert seen == [1.0, 0.75, 1.0, 1.0, 0.75, 0.75]
    fixed = AdaptiveConstraint(initial_constraint_weight=0.5)
    fixed.update_constraint_weight(3.0)
    assert fixed.constraint_weight == 0.5
    with pytest.raises(ValueError, match=r"patience >= 1"):
        AdaptiveConstraint(patience=0)


def test_adaptive_constraint_sends_mu_and_averages_losses() -> None:
    strategy = AdaptiveConstraint(initial_constraint_weight=0.3, adapt=True, min_available_nodes=2)
    sent = by_node(
        strategy.configure_train(1, arrays(w=np.zeros(1)), ConfigRecord(), FakeGrid([1, 2]))
    )
    _, mu = from_record_dict(sent[1].content)
    assert mu == 0.3
    replies = [
        reply(sent[1], [np.zeros(1)], 1.0, num_examples=1),
        reply(sent[2], [np.zeros(1)], 2.0, num_examples=3),
    ]
    strategy.aggregate_train(1, replies)
    assert strategy.losses == {1: 1.75}


def test_clipping_bit_strategy_sends_the_dp_wrappers_norm() -> None:
    strategy = ClippingBitFedAvg(clipping_norm=0.7, min_available_nodes=2)
    grid = FakeGrid([1, 2])
    msg = next(iter(strategy.configure_train(1, arrays(w=np.zeros(1)), ConfigRecord(), grid)))
    assert from_record_dict(msg.content)[1] == 0.7
    assert msg.content["config"]["clipping_norm"] == 0.7
    config = ConfigRecord({"clipping_norm": 0.2})
    msg = next(iter(strategy.configure_train(2, arrays(w=np.zeros(1)), config, grid)))
    assert from_record_dict(msg.content)[1] == 0.2
    sent = by_node(strategy.configure_train(3, arrays(w=np.zeros(1)), ConfigRecord(), grid))
    replies = [reply(m, [np.zeros(1)], float(n == 1), num_examples=1) for n, m in sent.items()]
    assert replies[0].content["metrics"]["norm_bit"] in (0.0, 1.0)
    strategy.aggregate_train(3, replies)
    assert strategy.clipped_fraction[3] == 0.5


def test_composition_part_comes_from_the_config() -> None:
    strategy = Scaffold(packer="scaffold+clipping_bit", min_available_nodes=1, min_train_nodes=1)
    grid = FakeGrid([1])
    with pytest.raises(
        PackingError, match=r"cannot fill part 'clipping_bit' of scaffold\+clipping_bit"
    ):
        strategy.configure_train(1, arrays(w=np.zeros(1)), ConfigRecord(), grid)
    config = ConfigRecord({"clipping_norm": 0.4})
    msg = next(iter(strategy.configure_train(1, arrays(w=np.zeros(1)), config, grid)))
    _, (c, bound) = from_record_dict(msg.content)
    assert bound == 0.4
    assert np.allclose(c[0], 0.0)


def test_constructor_errors() -> None:
    with pytest.raises(
        TypeError, match=r"Scaffold: expected the 'scaffold' packer or a composition"
    ):
        Scaffold(packer="clipping_bit")
    with pytest.raises(TypeError, match=r"expected a composition holding 'layer_names'"):
        PartialExchange(packer="scaffold+clipping_bit")
    with pytest.raises(TypeError, match=r"PackedFedAvg: expected packer="):
        PackedFedAvg()
    with pytest.raises(ValueError, match=r"server_learning_rate: expected a positive number"):
        Scaffold(server_learning_rate=0.0)
    with pytest.raises(TypeError, match=r"expected a strategy whose packer carries a clipping bit"):
        dp_fedavg_adaptive_clipping(Scaffold(), noise_multiplier=0.1, num_sampled_clients=2)
    with pytest.raises(TypeError, match=r"packer: expected a ParameterPacker or a name"):
        PackedStrategy(FedAvg(), 3)  # type: ignore[arg-type]
    assert type(
        dp_fedavg_adaptive_clipping(noise_multiplier=0.1, num_sampled_clients=2)
    ).__name__ == ("DifferentialPrivacyClientSideAdaptiveClipping")


def test_packed_strategy_carries_any_packer_through_fedavg() -> None:
    class Echo(PackedStrategy):
        def train_extra(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> Any:
            return [np.full(1, server_round)]

    strategy = Echo(FedAvg(min_available_nodes=2), "echo")
    sent = by_node(
        strategy.configure_train(1, arrays(w=np.zeros(1)), ConfigRecord(), FakeGrid([1, 2]))
    )
    _, extra = from_record_dict(sent[1].content)
    assert extra[0].tolist() == [1]
    good = reply(sent[1], [np.ones(1)], [np.full(1, 5.0)], num_examples=1)
    other = reply(sent[2], [np.ones(1)], [np.zeros(1)], packer="scaffold", num_examples=1)
    new, _ = strategy.aggregate_train(1, [good, other])
    assert new is not None
    assert np.allclose(new["w"].numpy(), 1.0)
    assert [r.extra[0].tolist() for r in strategy.extras[1]] == [[5.0]]
    assert EXTRA_KEY not in good.content.array_records
    [failure] = strategy.failures[1]
    assert failure.node_id == 2
    assert "packed by 'scaffold'" in failure.reason
    plain = PackedStrategy(
        FedAvg(min_available_nodes=1, min_train_nodes=1), fedpack.get_packer("echo")
    )
    msg = next(iter(plain.configure_train(1, arrays(w=np.zeros(1)), ConfigRecord(), FakeGrid([1]))))
    assert EXTRA_KEY not in msg.content.array_records  # no train_extra: plain instructions


def test_packed_strategy_outside_flowers_server_side_dp_wrapper() -> None:
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping

    def dp() -> Any:
        return DifferentialPrivacyServerSideFixedClipping(
            FedAvg(min_available_nodes=2),
            noise_multiplier=0.0,
            clipping_norm=1.0,
            num_sampled_clients=2,
        )

    def replies(strategy: Any) -> list[Message]:
        start = arrays(w=np.zeros(4))
        sent = by_node(strategy.configure_train(1, start, ConfigRecord(), FakeGrid([1, 2])))
        return [
            reply(m, [np.full(4, 3.0)], [np.ones(1)], packer="echo", num_examples=1)
            for m in sent.values()
        ]

    bare = dp()
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is shorter"):
        bare.aggregate_train(1, replies(bare))  # Flower clips fedpack's record too, and fails
    wrapped = PackedStrategy(dp(), "echo")
    new, _ = wrapped.aggregate_train(1, replies(wrapped))
    assert new is not None
    assert np.isclose(np.linalg.norm(new["w"].numpy()), 1.0)  # clipped by Flower's wrapper
    assert [r.extra[0].tolist() for r in wrapped.extras[1]] == [[1.0], [1.0]]


def test_a_packer_that_quantizes_the_weights_through_packed_strategy() -> None:
    """examples/fedpack-int8 (a third-party plugin): int8 on the wire, floats averaged."""
    strategy = PackedStrategy(FedAvg(min_available_nodes=2), "int8", train_extra=lambda *a: [])
    start = arrays(w=np.linspace(-1.0, 1.0, 8, dtype=np.float32))
    sent = by_node(strategy.configure_train(1, start, ConfigRecord(), FakeGrid([1, 2])))
    assert sent[1].content["arrays"]["w"].numpy().dtype == np.int8  # quantized on the wire
    weights, exact = receive(sent[1])
    assert weights[0].dtype == np.float32
    assert np.allclose(weights[0], np.linspace(-1.0, 1.0, 8), atol=0.01)
    assert exact == []
    replies = [
        reply(sent[1], [np.full(8, 1.0, np.float32)], [], num_examples=1),
        reply(sent[2], [np.full(8, 3.0, np.float32)], [], num_examples=1),
    ]
    assert replies[0].content["arrays"]["w"].numpy().dtype == np.int8
    new, _ = strategy.aggregate_train(1, replies)
    assert new is not None
    assert np.allclose(new["w"].numpy(), 2.0, atol=0.05)  # averaged decoded floats
    assert strategy.failures[1] == []


def server_side_dp(kind: str, inner: Any, clipping_norm: float = 1.0) -> Any:
    """Flower's server-side DP wrapper ``kind`` around ``inner``, without noise."""
    from flwr.serverapp.strategy import (
        DifferentialPrivacyServerSideAdaptiveClipping,
        DifferentialPrivacyServerSideFixedClipping,
    )

    if kind == "fixed":
        return DifferentialPrivacyServerSideFixedClipping(
            inner, noise_multiplier=0.0, clipping_norm=clipping_norm, num_sampled_clients=2
        )
    return DifferentialPrivacyServerSideAdaptiveClipping(
        inner, noise_multiplier=0.0, num_sampled_clients=2, initial_clipping_norm=clipping_norm
    )


def scaffold_replies(strategy: Any, start: ArrayRecord) -> list[Message]:
    """Two replies to round 1: weights 3.0 (norm 6 from zeros), control variate updates 2, 4."""
    sent = by_node(strategy.configure_train(1, start, ConfigRecord(), FakeGrid([1, 2])))
    return [
        reply(sent[1], [np.full(4, 3.0, np.float32)], [np.full(4, 2.0)], num_examples=1),
        reply(sent[2], [np.full(4, 3.0, np.float32)], [np.full(4, 4.0)], num_examples=1),
    ]


@pytest.mark.parametrize("kind", ["fixed", "adaptive"])
def test_scaffold_delegates_the_weights_to_flowers_server_side_dp_wrapper(kind: str) -> None:
    start = arrays(w=np.zeros(4, np.float32))
    bare = server_side_dp(kind, Scaffold(min_available_nodes=2))
    with pytest.raises(ValueError, match=r"zip\(\)"):  # Flower clips fedpack's record too
        bare.aggregate_train(1, scaffold_replies(bare, start))

    dp = server_side_dp(kind, FedAvg(min_available_nodes=2))
    strategy = Scaffold(server_learning_rate=0.5, strategy=dp)
    replies = scaffold_replies(strategy, start)
    assert dp.current_arrays is start  # the wrapper's configure_train ran
    new, metrics = strategy.aggregate_train(1, replies)
    assert new is not None
    assert metrics is not None
    # clipped by Flower to norm 1 (0.5 each), then SCAFFOLD's step: 0 + 0.5 * (0.5 - 0)
    assert np.allclose(new["w"].numpy(), 0.25)
    assert new["w"].numpy().dtype == np.float32
    # c = 0 + 2 / 2 * mean(2, 4): the control variate updates are not clipped
    assert np.allclose(strategy.control_variates["w"], 3.0)
    assert strategy.failures == {1: []}
    if kind == "adaptive":
        assert dp.clipping_norm != 1.0  # the wrapper adapted its bound (both replies clipped)
    again = next(iter(strategy.configure_train(2, new, ConfigRecord(), FakeGrid([1, 2]))))
    assert dp.current_arrays is new
    assert np.allclose(from_record_dict(again.content)[1][0], 3.0)


def test_a_bad_reply_through_the_dp_wrapper_is_a_failure_and_skips_the_round() -> None:
    """Flower's DP wrappers aggregate nothing when a reply failed; fedpack keeps c then."""
    strategy = Scaffold(strategy=server_side_dp("fixed", FedAvg(min_available_nodes=2)))
    good, bad = scaffold_replies(strategy, arrays(w=np.zeros(4, np.float32)))
    del bad.content[EXTRA_KEY]  # an old client
    assert strategy.aggregate_train(1, [good, bad]) == (None, None)
    assert [f.node_id for f in strategy.failures[1]] == [2]
    assert np.allclose(strategy.control_variates["w"], 0.0)


def test_the_other_strategies_delegate_too() -> None:
    dp = server_side_dp("fixed", FedAvg(min_available_nodes=2, weighted_by_key="n"))
    strategy = AdaptiveConstraint(initial_constraint_weight=0.3, strategy=dp)
    assert strategy.weighted_by_key == "n"  # read from the inner FedAvg
    sent = by_node(
        strategy.configure_train(1, arrays(w=np.zeros(1)), ConfigRecord(), FakeGrid([1, 2]))
    )
    assert from_record_dict(sent[1].content)[1] == 0.3
    replies = [
        reply(sent[1], [np.full(1, 5.0)], 1.0, metrics={"n": 1}),
        reply(sent[2], [np.full(1, 5.0)], 2.0, metrics={"n": 3}),
    ]
    new, _ = strategy.aggregate_train(1, replies)
    assert new is not None
    assert np.allclose(new["w"].numpy(), 1.0)  # clipped by the wrapper
    assert strategy.losses == {1: 1.75}
    clipping = ClippingBitFedAvg(strategy=server_side_dp("adaptive", FedAvg()))
    assert clipping.strategy is not None


def test_inner_strategy_errors() -> None:
    with pytest.raises(TypeError, match=r"PartialExchange: cannot take strategy=: it averages"):
        PartialExchange(strategy=FedAvg())
    with pytest.raises(
        TypeError, match=r"Scaffold: with strategy=, FedAvg's options belong to the inner"
    ):
        Scaffold(strategy=FedAvg(), min_available_nodes=2)
    with pytest.raises(
        TypeError,
        match=r"Scaffold: strategy: expected a strategy that aggregates the weights alone, found "
        r"the fedpack strategy AdaptiveConstraint inside \(DifferentialPrivacyServerSide"
        r"FixedClipping -> AdaptiveConstraint\)",
    ):
        Scaffold(strategy=server_side_dp("fixed", AdaptiveConstraint()))
    with pytest.raises(TypeError, match=r"PackedStrategy: strategy: .* the fedpack strategy"):
        PackedStrategy(Scaffold(), "echo")
    with pytest.raises(TypeError, match=r"Scaffold: strategy: expected a Flower Strategy"):
        Scaffold(strategy="FedAvg")  # type: ignore[arg-type]


def test_the_lazy_names_are_the_strategies_module_names() -> None:
    """fedpack.flwr lists the names it loads on first use once; they must be the module's own."""
    import fedpack.flwr as package
    from fedpack.flwr import _strategies

    assert set(_strategies.__all__) == package._LAZY
    assert set(package.__all__) >= package._LAZY
    assert set(dir(package)) >= package._LAZY
    for name in package._LAZY:
        assert getattr(package, name) is getattr(_strategies, name)
