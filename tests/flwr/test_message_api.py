"""fedpack.flwr's Message API helpers, fast and without Ray: names, mirrors, replies, client."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import fedpack
from fedpack import PackingError
from fedpack.flwr import (
    EXTRA_KEY,
    KEY_CLIPPING_NORM,
    KEY_NORM_BIT,
    ScaffoldClient,
    extras_record,
    from_record_dict,
    instruction_packer,
    pop_extras,
    receive,
    reply,
    scalar_mirrors,
    split_replies,
    to_array_record,
    to_record_dict,
)

flwr = pytest.importorskip("flwr")
pytest.importorskip("flwr.clientapp.mod", reason="needs flwr's Message API ClientApp mods")

from flwr.app import (  # noqa: E402
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    Metadata,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod  # noqa: E402

NAMES = ["fc.weight", "fc.bias", "bn.num_batches_tracked"]


def named(scale: float = 1.0) -> dict[str, np.ndarray[Any, Any]]:
    return {
        "fc.weight": np.full((2, 3), scale, dtype=np.float32),
        "fc.bias": np.full(2, scale, dtype=np.float32),
        "bn.num_batches_tracked": np.array(3, dtype=np.int64),
    }


def instruction(content: RecordDict, node: int = 7) -> Message:
    """A train instruction from the server (node 0) to ``node``."""
    metadata = Metadata(
        run_id=1,
        message_id=f"m{node}",
        src_node_id=0,
        dst_node_id=node,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )
    return Message(content=content, metadata=metadata)


def context(node: int = 7) -> Context:
    return Context(run_id=1, node_id=node, node_config={}, state=RecordDict(), run_config={})


def test_to_record_dict_keeps_the_names_of_a_state_dict() -> None:
    packer = fedpack.get_packer("scaffold")
    cvs = [np.zeros((2, 3)), np.zeros(2), np.zeros(())]
    content = to_record_dict(packer, named(), cvs)
    assert list(content["arrays"].keys()) == NAMES
    weights, extra = from_record_dict(content)
    assert [w.shape for w in weights] == [(2, 3), (2,), ()]
    assert len(extra) == 3
    # an ArrayRecord as input keeps its keys too
    again = to_record_dict(packer, content["arrays"], cvs)
    assert list(again["arrays"].keys()) == NAMES
    # a plain list is named as ArrayRecord(list) names it
    plain = to_record_dict(packer, list(named().values()), cvs)
    assert list(plain["arrays"].keys()) == ["0", "1", "2"]
    assert list(to_array_record(named(), ["a", "b", "c"]).keys()) == ["a", "b", "c"]


def test_scalar_mirrors_come_from_the_packer_and_compositions() -> None:
    bit = fedpack.get_packer("clipping_bit")
    assert bit.flower_scalar_keys == (KEY_NORM_BIT, KEY_CLIPPING_NORM)
    assert scalar_mirrors(bit, 1.0) == [(KEY_NORM_BIT, KEY_CLIPPING_NORM, 1.0)]
    both = fedpack.get_packer("scaffold+clipping_bit")
    cvs = [np.zeros((2, 3)), np.zeros(2), np.zeros(())]
    assert scalar_mirrors(both, (cvs, 0.5)) == [(KEY_NORM_BIT, KEY_CLIPPING_NORM, 0.5)]
    assert scalar_mirrors(fedpack.get_packer("scaffold"), cvs) == []

    class MyBit(fedpack.ScalarPacker):
        name = "my_bit"
        section = "my_bit"
        flower_scalar_keys = ("my_metric", "my_config")

    assert scalar_mirrors(MyBit(), 2.0) == [("my_metric", "my_config", 2.0)]
    out = to_record_dict(both, named(), (cvs, 1.0), reply=True)
    assert out.metric_records["metrics"][KEY_NORM_BIT] == 1.0
    sent = to_record_dict(both, named(), (cvs, 0.25))
    assert sent.config_records["config"][KEY_CLIPPING_NORM] == 0.25


def _replies() -> tuple[list[Message], Any]:
    """Four replies: good, old client (no extras), malformed frame, another packer."""
    packer = fedpack.get_packer("scaffold")
    cvs = [np.ones((2, 3)), np.ones(2), np.zeros(())]
    sent = instruction(to_record_dict(packer, named(), cvs), node=1)
    good = reply(sent, named(2.0), cvs, num_examples=10)
    old = Message(
        RecordDict({"arrays": ArrayRecord(list(named().values())), "metrics": MetricRecord()}),
        reply_to=instruction(RecordDict(), node=2),
    )
    bad = reply(instruction(to_record_dict(packer, named(), cvs), node=3), named(), cvs)
    frame = bad.content[EXTRA_KEY]["frame"].numpy().copy()
    frame[-2] ^= 0xFF
    bad.content[EXTRA_KEY]["frame"] = fedpack.flwr.to_array(frame)
    other = reply(instruction(RecordDict(), node=4), named(), 1.0, packer="adaptive_constraint")
    return [good, old, bad, other], packer


def test_pop_extras_is_all_or_nothing() -> None:
    replies, packer = _replies()
    with pytest.raises(PackingError, match=r"reply 1 \(node 2\): expected an ArrayRecord"):
        pop_extras(replies, packer)
    assert EXTRA_KEY in replies[0].content.array_records  # nothing was removed
    assert len(pop_extras(replies[:1], packer)) == 1
    assert EXTRA_KEY not in replies[0].content.array_records


def test_split_replies_turns_bad_replies_into_counted_failures() -> None:
    replies, packer = _replies()
    flower_error = Message(
        flwr.app.Error(code=2, reason="boom"), reply_to=instruction(RecordDict(), 5)
    )
    result = split_replies([*replies, flower_error], packer)
    assert [r.node_id for r in result.accepted] == [1]
    assert EXTRA_KEY not in result.accepted[0].message.content.array_records
    assert [(f.index, f.node_id) for f in result.failures] == [(1, 2), (2, 3), (3, 4)]
    reasons = [f.reason for f in result.failures]
    assert "from node 2: expected an ArrayRecord 'fedpack.extra'" in reasons[0]
    assert "from node 3: " in reasons[1]
    assert "frame" in reasons[1]
    assert "expected a payload of packer 'scaffold', found one packed by" in reasons[2]
    assert [m.has_error() for m in result.replies] == [False, True, True, True, True]
    assert [m.metadata.src_node_id for m in result.replies] == [1, 2, 3, 4, 5]
    assert result.replies[2].error.reason == reasons[1]
    assert result.replies[4] is flower_error
    # without a packer, any framed payload is accepted
    _, _, _, other = _replies()[0]
    assert len(split_replies([other]).accepted) == 1


def test_receive_and_reply_round_trip_with_names() -> None:
    packer = fedpack.get_packer("scaffold")
    cvs = [np.ones((2, 3)), np.ones(2), np.zeros(())]
    sent = instruction(to_record_dict(packer, named(), cvs))
    weights, extra = receive(sent)
    assert [w.shape for w in weights] == [(2, 3), (2,), ()]
    assert instruction_packer(sent) == packer or instruction_packer(sent).name == "scaffold"
    new = [np.asarray(w + 1) for w in weights]
    out = reply(sent, new, extra, num_examples=4, metrics={"loss": 0.5})
    assert list(out.content["arrays"].keys()) == NAMES  # a list takes the instruction's names
    assert dict(out.content["metrics"]) == {"loss": 0.5, "num-examples": 4}
    back, again = from_record_dict(out.content, packer)
    assert np.array_equal(back[0], np.full((2, 3), 2.0))
    assert len(again) == 3
    plain = reply(sent, weights, num_examples=1)
    assert EXTRA_KEY not in plain.content.array_records


def test_receive_and_reply_errors() -> None:
    plain = instruction(RecordDict({"arrays": to_array_record(named())}))
    weights, extra = receive(plain)
    assert extra is None
    assert len(weights) == 3
    with pytest.raises(PackingError, match=r"expected the instruction to carry 'scaffold' extras"):
        receive(plain, "scaffold")
    with pytest.raises(PackingError, match=r"reply: expected packer= for the extra data"):
        reply(plain, weights, [np.zeros(1)])
    with pytest.raises(TypeError, match=r"packer: expected a ParameterPacker, a name or None"):
        receive(plain, 3)  # type: ignore[call-overload]
    two = instruction(RecordDict({"a": to_array_record(named()), "b": to_array_record(named())}))
    with pytest.raises(PackingError, match=r"expected the weights in an ArrayRecord 'arrays'"):
        receive(two)


def test_scaffold_client_update_and_state() -> None:
    packer = fedpack.get_packer("scaffold")
    c = [np.full((2, 3), 0.5, np.float32), np.full(2, 0.5, np.float32), np.zeros(())]
    sent = instruction(to_record_dict(packer, named(1.0), c))
    ctx = context()
    client = ScaffoldClient(sent, ctx)
    assert client.names == NAMES
    assert [float(a.sum()) for a in client.correction()] == [3.0, 1.0, 0.0]
    local = named(0.0)
    out = client.reply(local, local_steps=2, learning_rate=0.25, num_examples=3)
    # delta c_i = -c + (x - y) / (K lr) = -0.5 + (1 - 0) / 0.5 = 1.5 ; int counter: 0
    _, delta = from_record_dict(out.content, packer)
    assert np.allclose(delta[0], 1.5)
    assert np.allclose(delta[1], 1.5)
    assert delta[2] == 0
    stored = ctx.state["fedpack.scaffold.c_i"]
    assert list(stored.keys()) == NAMES
    assert np.allclose(stored["fc.bias"].numpy(), 1.5)
    # next round: c_i comes from context.state
    again = ScaffoldClient(instruction(to_record_dict(packer, named(1.0), c)), ctx)
    assert np.allclose(again.correction()[1], 0.5 - 1.5)
    with pytest.raises(PackingError, match=r"expected an instruction packed with 'scaffold'"):
        ScaffoldClient(
            instruction(to_record_dict(fedpack.get_packer("clipping_bit"), named(), 1.0)), ctx
        )
    with pytest.raises(ValueError, match=r"local_steps and learning_rate must be positive"):
        again.update(local, local_steps=0, learning_rate=0.1)


def test_scaffold_client_with_a_composition_needs_the_other_parts() -> None:
    both = fedpack.get_packer("scaffold+clipping_bit")
    c = [np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(())]
    sent = instruction(to_record_dict(both, named(), (c, 0.3)))
    client = ScaffoldClient(sent, context())
    assert client.extra[1] == 0.3
    with pytest.raises(PackingError, match=r"expected parts= values for clipping_bit"):
        client.reply(named(), local_steps=1, learning_rate=0.1, num_examples=1)
    out = client.reply(
        named(), local_steps=1, learning_rate=0.1, num_examples=1, parts={"clipping_bit": 1.0}
    )
    assert out.content["metrics"][KEY_NORM_BIT] == 1.0


def _clipping_app(mods: list[Any]) -> ClientApp:
    app = ClientApp(mods=mods)

    @app.train()
    def train(msg: Message, ctx: Context) -> Message:
        weights, extra = receive(msg)
        return reply(msg, [w + 10 for w in weights], extra, num_examples=2)

    return app


@pytest.mark.parametrize("flower_mod", [adaptiveclipping_mod, fixedclipping_mod])
def test_extras_mod_lets_flowers_clipping_mods_run(flower_mod: Any) -> None:
    packer = fedpack.get_packer("scaffold")
    weights = {"w": np.zeros(4, np.float32)}
    cvs = [np.ones(4)]

    def message() -> Message:
        content = to_record_dict(packer, weights, cvs)
        content["config"] = ConfigRecord({KEY_CLIPPING_NORM: 1.0})
        return instruction(content)

    refused = _clipping_app([flower_mod])(message(), context())
    assert refused.has_error()
    assert "expects exactly one ArrayRecord, but found 2" in refused.error.reason

    out = _clipping_app([fedpack.flwr.extras_mod, flower_mod])(message(), context())
    assert not out.has_error()
    clipped, extra = from_record_dict(out.content, packer)
    assert np.isclose(np.linalg.norm(clipped[0]), 1.0)  # clipped by Flower's mod to the norm
    assert np.array_equal(extra[0], cvs[0])  # fedpack's extras came back after the mod
    if flower_mod is adaptiveclipping_mod:
        assert out.content["metrics"][KEY_NORM_BIT] == 1


def test_extras_record_checks_the_extra() -> None:
    with pytest.raises(PackingError, match=r"clipping_bit: additional_parameters"):
        extras_record(fedpack.get_packer("clipping_bit"), [np.zeros(1)], float("nan"))
