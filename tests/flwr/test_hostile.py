"""Hostile payloads through Flower's records and Parameters: PackingError, split check, budget."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedpack
from fedpack import DecodeBudget, PackingError, UnknownPayloadPackerError
from fedpack.flwr import (
    ARRAYS_KEY,
    EXTRA_KEY,
    FRAME_KEY,
    from_record_dict,
    pack_parameters,
    pop_extras,
    split_fit_res,
    to_array,
    to_record_dict,
    unpack_parameters,
)
from fedpack.frame import FORMAT_VERSION, MAGIC

from .conftest import model_weights

flwr = pytest.importorskip("flwr")

from flwr.app import ArrayRecord, Message, Metadata, RecordDict  # noqa: E402
from flwr.common import Code, FitRes, Status  # noqa: E402


def _moved(record: RecordDict, shift: int) -> RecordDict:
    """The same arrays with the split between the two records moved by ``shift``."""
    weights = list(record[ARRAYS_KEY].values())
    extra = list(record[EXTRA_KEY].values())
    frame, extra = extra[-1], extra[:-1]
    everything = weights + extra
    cut = len(weights) + shift
    out = RecordDict()
    out[ARRAYS_KEY] = ArrayRecord({str(i): a for i, a in enumerate(everything[:cut])})
    rest = ArrayRecord({str(i): a for i, a in enumerate(everything[cut:])})
    rest[FRAME_KEY] = frame
    out[EXTRA_KEY] = rest
    return out


@settings(max_examples=20, deadline=None)
@given(shift=st.integers(-4, 2), with_packer=st.booleans())
def test_the_arrays_record_must_hold_exactly_the_weights(shift: int, with_packer: bool) -> None:
    rng = np.random.default_rng(0)
    packer = fedpack.get_packer("scaffold")
    weights, cvs = model_weights(rng), model_weights(rng)[:2]
    record = _moved(to_record_dict(packer, weights, cvs), shift)
    use = packer if with_packer else None
    if shift == 0:
        got, got_cvs = from_record_dict(record, use)
        assert len(got) == 4
        assert len(got_cvs) == 2
        return
    with pytest.raises(
        PackingError,
        match=rf"arrays: expected exactly the 4 weight arrays of the payload, found {4 + shift}",
    ):
        from_record_dict(record, use)


def test_a_weights_record_with_one_control_variate_is_not_aggregated() -> None:
    rng = np.random.default_rng(1)
    packer = fedpack.get_packer("scaffold")
    record = _moved(to_record_dict(packer, model_weights(rng), model_weights(rng)[:2]), 1)
    metadata = Metadata(
        run_id=1,
        message_id="",
        src_node_id=7,
        dst_node_id=0,
        reply_to_message_id="instruction",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )
    message = Message(content=record, metadata=metadata)
    with pytest.raises(PackingError, match=r"reply 0 \(node 7\): arrays: .*found 5"):
        pop_extras([message], packer)


def test_equal_keys_are_refused_both_ways() -> None:
    packer = fedpack.get_packer("clipping_bit")
    with pytest.raises(PackingError, match=r"to_record_dict: arrays_key and extra_key must differ"):
        to_record_dict(packer, [np.ones(1)], 0.5, arrays_key="x", extra_key="x")
    record = to_record_dict(packer, [np.ones(1)], 0.5)
    with pytest.raises(PackingError, match=r"from_record_dict: arrays_key and extra_key must"):
        from_record_dict(record, arrays_key=EXTRA_KEY, extra_key=EXTRA_KEY)


def _renamed_frame(frame: np.ndarray, packer: str) -> np.ndarray:
    import zlib

    content = json.loads(frame[13:].tobytes())
    content["packer"] = packer
    body = json.dumps(content).encode()
    data = MAGIC + bytes([FORMAT_VERSION]) + zlib.crc32(body).to_bytes(4, "little") + body
    return np.frombuffer(bytearray(data), dtype=np.uint8)


def test_an_unknown_packer_is_a_packing_error_on_every_flower_path() -> None:
    packer = fedpack.get_packer("clipping_bit")
    record = to_record_dict(packer, [np.ones(2)], 0.5)
    frame = record[EXTRA_KEY][FRAME_KEY]
    record[EXTRA_KEY][FRAME_KEY] = to_array(
        _renamed_frame(np.frombuffer(frame.data, np.uint8)[-frame.shape[0] :], "not_here")
    )
    with pytest.raises(UnknownPayloadPackerError, match=r"names packer 'not_here'") as info:
        from_record_dict(record)
    assert isinstance(info.value, LookupError)
    packed = packer.pack_parameters([np.ones(2)], 0.5)
    packed[-1] = _renamed_frame(packed[-1], "not_here")
    parameters = fedpack.flwr.to_parameters(packed)
    with pytest.raises(PackingError, match=r"names packer 'not_here'"):
        unpack_parameters(parameters)
    fit_res = FitRes(Status(Code.OK, ""), parameters, 1, {})
    with pytest.raises(PackingError, match=r"names packer 'not_here'"):
        split_fit_res(fit_res)


def test_the_flower_helpers_take_a_budget() -> None:
    packer = fedpack.get_packer("scaffold")
    record = to_record_dict(packer, [np.ones(2)] * 3, [np.ones(2)])
    small = DecodeBudget(max_arrays=2)
    with pytest.raises(PackingError, match=r"arrays: expected at most 2 entries"):
        from_record_dict(record, budget=small)
    parameters = pack_parameters(packer, [np.ones((2, 2))], [np.ones(2)])
    with pytest.raises(PackingError, match=r"at most 1 dimensions"):
        unpack_parameters(parameters, budget=DecodeBudget(max_rank=1))
    fit_res = FitRes(Status(Code.OK, ""), parameters, 1, {})
    with pytest.raises(PackingError, match=r"at most 1 dimensions"):
        split_fit_res(fit_res, budget=DecodeBudget(max_rank=1))
    # a packer's own budget is used for decoding when none is given
    tight = fedpack.get_packer("scaffold", budget=DecodeBudget(max_rank=1))
    with pytest.raises(PackingError, match=r"at most 1 dimensions"):
        unpack_parameters(parameters, tight)
