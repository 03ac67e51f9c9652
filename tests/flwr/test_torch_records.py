"""fedpack.flwr with torch: state_dicts in, names kept, state_dicts out, no extra copies."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedpack
from fedpack import PackingError
from fedpack.flwr import (
    ScaffoldClient,
    from_record_dict,
    named_arrays,
    receive,
    reply,
    state_dict,
    to_record_dict,
)
from fedpack.flwr._convert import tensor_to_numpy

torch = pytest.importorskip("torch")
pytest.importorskip("flwr")
pytest.importorskip("flwr.clientapp", reason="needs flwr's Message API ClientApp")

from flwr.app import Context, Message, Metadata, RecordDict  # noqa: E402


class Net(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.bn = torch.nn.BatchNorm1d(2)

    def forward(self, x: Any) -> Any:
        return self.bn(self.fc(x))


def instruction(content: RecordDict) -> Message:
    metadata = Metadata(
        run_id=1,
        message_id="m",
        src_node_id=0,
        dst_node_id=3,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )
    return Message(content=content, metadata=metadata)


def test_a_state_dict_keeps_its_names_for_flowers_to_torch_state_dict() -> None:
    model = Net()
    names = list(model.state_dict())
    cvs = [np.zeros(tuple(t.shape), np.float32) for t in model.state_dict().values()]
    content = to_record_dict(fedpack.get_packer("scaffold"), model.state_dict(), cvs)
    assert list(content["arrays"].keys()) == names
    other = Net()
    other.load_state_dict(content["arrays"].to_torch_state_dict())  # Flower's own reader
    for name, tensor in other.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name])
    received, extra = receive(instruction(content), state_dict=True)
    assert list(received) == names
    assert len(extra) == len(names)
    assert all(isinstance(t, torch.Tensor) for t in received.values())
    Net().load_state_dict(received)


def test_cpu_tensors_are_not_copied_and_parameters_are_detached() -> None:
    model = Net()
    names, arrays = named_arrays(dict(model.named_parameters()))
    assert names == ["fc.weight", "fc.bias", "bn.weight", "bn.bias"]
    assert np.shares_memory(arrays[0], model.fc.weight.detach().numpy())
    lone = torch.arange(4.0)
    assert np.shares_memory(tensor_to_numpy(lone), lone.numpy())
    back = state_dict(["x"], [np.arange(3.0)])
    assert torch.equal(back["x"], torch.arange(3.0, dtype=torch.float64))
    with pytest.raises(PackingError, match=r"w\['b'\]: expected a tensor of a numpy dtype"):
        named_arrays({"b": torch.zeros(2, dtype=torch.bfloat16)}, what="w")
    with pytest.raises(PackingError, match=r"expected a numpy array, a torch tensor or a flwr"):
        named_arrays({"b": "text"})


def test_reply_from_a_state_dict_and_scaffold_gradient_correction() -> None:
    model = Net()
    packer = fedpack.get_packer("scaffold")
    c = [np.full(tuple(t.shape), 0.5, np.float32) for t in model.state_dict().values()]
    ctx = Context(run_id=1, node_id=3, node_config={}, state=RecordDict(), run_config={})
    msg = instruction(to_record_dict(packer, model.state_dict(), c))
    scaffold = ScaffoldClient(msg, ctx)
    model.load_state_dict(scaffold.state_dict())
    model.zero_grad()
    model(torch.ones(4, 3)).sum().backward()
    before = model.fc.weight.grad.clone()
    scaffold.correct_gradients(model)
    assert torch.allclose(model.fc.weight.grad, before + 0.5)  # c - c_i = 0.5 - 0
    out = scaffold.reply(model.state_dict(), local_steps=1, learning_rate=1.0, num_examples=4)
    assert list(out.content["arrays"].keys()) == list(model.state_dict())
    plain = reply(msg, model.state_dict(), num_examples=4)
    assert list(plain.content["arrays"].keys()) == list(model.state_dict())
    weights, deltas = from_record_dict(out.content, packer)
    assert len(deltas) == len(weights)


names_st = st.lists(
    st.text(alphabet="abcdefgh._", min_size=1, max_size=8), min_size=1, max_size=5, unique=True
)


@settings(max_examples=40, deadline=None)
@given(names=names_st, data=st.data())
def test_named_round_trip_property(names: list[str], data: st.DataObject) -> None:
    weights = {
        name: np.asarray(
            data.draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=0, max_size=6)),
            dtype=np.float32,
        )
        for name in names
    }
    tensors = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    content = to_record_dict(fedpack.get_packer("layer_names"), tensors, names)
    assert list(content["arrays"].keys()) == names
    back, extra = from_record_dict(content)
    assert extra == names
    for value, expected in zip(back, weights.values(), strict=True):
        assert np.array_equal(value, expected)
