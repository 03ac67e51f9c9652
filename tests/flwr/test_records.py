"""fedpack.flwr with Flower's Message API: Array, ArrayRecord, RecordDict and FedAvg."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import fedpack
from fedpack import PackingError
from fedpack.flwr import (
    ARRAYS_KEY,
    EXTRA_KEY,
    FRAME_KEY,
    KEY_CLIPPING_NORM,
    KEY_NORM_BIT,
    from_array,
    from_array_record,
    from_record_dict,
    pop_extras,
    to_array,
    to_array_record,
    to_record_dict,
)

from .conftest import arrays_equal, model_weights, sample_arrays

flwr = pytest.importorskip("flwr")

from flwr.app import (  # noqa: E402
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    Metadata,
    MetricRecord,
    RecordDict,
)


@pytest.mark.parametrize("index", range(len(sample_arrays())))
def test_to_array_equals_flowers_array(index: int) -> None:
    array = sample_arrays()[index]
    ours, theirs = to_array(array), Array(array)
    assert (ours.dtype, ours.shape, ours.stype) == (theirs.dtype, theirs.shape, theirs.stype)
    assert ours.data == theirs.data  # byte identity of the serialized data
    assert ours.data == Array.from_numpy_ndarray(array).data


@pytest.mark.parametrize("index", range(len(sample_arrays())))
def test_from_array_reads_flowers_array(index: int) -> None:
    array = sample_arrays()[index]
    theirs = Array(array)
    got = from_array(theirs)
    expected = theirs.numpy()
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


def test_from_array_errors() -> None:
    good = Array(np.arange(3.0))
    with pytest.raises(PackingError, match=r"x: expected a flwr Array, found int"):
        from_array(3, where="x")  # type: ignore[arg-type]
    other = Array(dtype="float64", shape=(3,), stype="torch.raw", data=good.data)
    with pytest.raises(PackingError, match=r"stype 'numpy.ndarray', found 'torch.raw'"):
        from_array(other)
    lying = Array(dtype="float32", shape=(3,), stype="numpy.ndarray", data=good.data)
    with pytest.raises(PackingError, match=r"says dtype 'float32' and shape \(3,\).*'float64'"):
        from_array(lying)
    broken = Array(dtype="float64", shape=(3,), stype="numpy.ndarray", data=good.data[:-1])
    with pytest.raises(PackingError, match=r"array: expected 24 data bytes"):
        from_array(broken)


def test_to_array_record_matches_flowers_list_constructor(rng: np.random.Generator) -> None:
    weights = model_weights(rng)
    ours, theirs = to_array_record(weights), ArrayRecord(weights)
    assert list(ours.keys()) == list(theirs.keys()) == ["0", "1", "2", "3"]
    assert [a.data for a in ours.values()] == [a.data for a in theirs.values()]
    assert arrays_equal(from_array_record(theirs), weights)
    assert arrays_equal(ours.to_numpy_ndarrays(), weights)


def test_to_array_record_with_keys(rng: np.random.Generator) -> None:
    weights = model_weights(rng)[:2]
    record = to_array_record(weights, ["w", "b"])
    assert list(record.keys()) == ["w", "b"]
    with pytest.raises(PackingError, match=r"expected 2 distinct keys, found 2 keys \(1 distinct"):
        to_array_record(weights, ["w", "w"])
    with pytest.raises(PackingError, match=r"expected 2 distinct keys, found 1 keys"):
        to_array_record(weights, ["w"])


def test_from_array_record_rejects_other_objects() -> None:
    with pytest.raises(PackingError, match=r"r: expected a flwr ArrayRecord, found list"):
        from_array_record([], what="r")  # type: ignore[arg-type]


# -- RecordDict ------------------------------------------------------------------------------


def test_scaffold_round_trip_through_a_record_dict(rng: np.random.Generator) -> None:
    packer = fedpack.get_packer("scaffold")
    weights, cvs = model_weights(rng), model_weights(rng)[:2]
    record = to_record_dict(packer, weights, cvs)
    assert isinstance(record, RecordDict)
    assert sorted(record.array_records) == [ARRAYS_KEY, EXTRA_KEY]
    assert list(record[EXTRA_KEY].keys()) == ["0", "1", FRAME_KEY]
    # the weights record is exactly what Flower would build for the weights
    assert [a.data for a in record[ARRAYS_KEY].values()] == [
        a.data for a in ArrayRecord(weights).values()
    ]
    for use in (packer, None):
        got_weights, got_cvs = from_record_dict(record, use)
        assert arrays_equal(got_weights, weights)
        assert arrays_equal(got_cvs, cvs)


def test_unframed_packer_round_trip(rng: np.random.Generator) -> None:
    packer = fedpack.get_packer("scaffold", size_of_model_params=4, framed=False)
    weights, cvs = model_weights(rng), [np.ones(2)]
    record = to_record_dict(packer, weights, cvs, keys=["a", "b", "c", "d"])
    assert list(record[EXTRA_KEY].keys()) == ["0"]
    assert list(record[ARRAYS_KEY].keys()) == ["a", "b", "c", "d"]
    got_weights, got_cvs = from_record_dict(record, packer, writable=True)
    assert arrays_equal(got_weights, weights)
    assert arrays_equal(got_cvs, cvs)
    assert all(w.flags.writeable for w in got_weights)


def test_clipping_bit_reply_mirrors_norm_bit_in_the_metric_record(
    rng: np.random.Generator,
) -> None:
    packer = fedpack.get_packer("clipping_bit")
    content = RecordDict({"metrics": MetricRecord({"num-examples": 12})})
    out = to_record_dict(packer, model_weights(rng), 1.0, record_dict=content, reply=True)
    assert out is content
    assert dict(content["metrics"]) == {"num-examples": 12, KEY_NORM_BIT: 1.0}
    assert list(content.config_records) == []
    _, bit = from_record_dict(content)
    assert bit == 1.0


def test_clipping_bit_instruction_mirrors_clipping_norm_in_the_config_record(
    rng: np.random.Generator,
) -> None:
    packer = fedpack.get_packer("clipping_bit")
    record = to_record_dict(packer, model_weights(rng), 0.75)
    assert dict(record["config"]) == {KEY_CLIPPING_NORM: 0.75}
    reply = to_record_dict(packer, model_weights(rng), 0.0, reply=True)
    assert dict(reply["metrics"]) == {KEY_NORM_BIT: 0.0}
    existing = RecordDict({"cfg": ConfigRecord({"lr": 0.1})})
    to_record_dict(packer, model_weights(rng), 0.5, record_dict=existing)
    assert dict(existing["cfg"]) == {"lr": 0.1, KEY_CLIPPING_NORM: 0.5}


def test_scalar_keys_are_flowers() -> None:
    try:  # flwr >= 1.3x moved the constants; their values are what matters
        from flwr.supercore.differential_privacy import (  # type: ignore[import-not-found,unused-ignore]
            KEY_CLIPPING_NORM as FLWR_CLIPPING_NORM,
        )
        from flwr.supercore.differential_privacy import (  # type: ignore[import-not-found,unused-ignore]
            KEY_NORM_BIT as FLWR_NORM_BIT,
        )
    except ImportError:
        from flwr.common.differential_privacy_constants import (  # type: ignore[import-not-found,unused-ignore]
            KEY_CLIPPING_NORM as FLWR_CLIPPING_NORM,
        )
        from flwr.common.differential_privacy_constants import (  # type: ignore[import-not-found,unused-ignore]
            KEY_NORM_BIT as FLWR_NORM_BIT,
        )
    assert (KEY_NORM_BIT, KEY_CLIPPING_NORM) == (FLWR_NORM_BIT, FLWR_CLIPPING_NORM)


def test_from_record_dict_errors(rng: np.random.Generator) -> None:
    packer = fedpack.get_packer("scaffold")
    with pytest.raises(PackingError, match=r"expected a flwr RecordDict, found dict"):
        from_record_dict({})  # type: ignore[arg-type]
    plain = RecordDict({ARRAYS_KEY: ArrayRecord(model_weights(rng))})
    with pytest.raises(PackingError, match=r"ArrayRecord 'fedpack.extra'.*found .*\['arrays'\]"):
        from_record_dict(plain, packer)
    record = to_record_dict(packer, model_weights(rng), [np.ones(2)])
    extra = record[EXTRA_KEY]
    frame = extra.pop(FRAME_KEY)
    reordered = ArrayRecord({FRAME_KEY: frame, "0": extra["0"]})
    record[EXTRA_KEY] = reordered
    with pytest.raises(
        PackingError, match=r"expected the 'frame' array last, found it at position 0 of 2"
    ):
        from_record_dict(record, packer)
    record[EXTRA_KEY] = ArrayRecord({"0": extra["0"]})
    with pytest.raises(PackingError, match=r"frame"):
        from_record_dict(record)


# -- Message API FedAvg ----------------------------------------------------------------------


def metadata(node: int) -> Metadata:
    return Metadata(
        run_id=1,
        message_id="",
        src_node_id=node,
        dst_node_id=0,
        reply_to_message_id="instruction",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )


def reply(content: RecordDict, node: int) -> Message:
    return Message(content=content, metadata=metadata(node))


def test_message_fedavg_aggregates_only_weights_after_pop_extras(
    rng: np.random.Generator,
) -> None:
    from flwr.serverapp.strategy import FedAvg

    packer = fedpack.get_packer("scaffold")
    client_weights = [model_weights(rng) for _ in range(2)]
    deltas = [[np.full(3, float(i), dtype=np.float32)] for i in range(2)]
    replies = []
    for node, (w, d) in enumerate(zip(client_weights, deltas, strict=True)):
        content = RecordDict({"metrics": MetricRecord({"num-examples": 10})})
        replies.append(reply(to_record_dict(packer, w, d, record_dict=content, reply=True), node))
    extras = pop_extras(replies, packer)
    assert [m for m, _ in extras] == replies
    assert all(arrays_equal(got, d) for (_, got), d in zip(extras, deltas, strict=True))
    assert all(list(m.content.array_records) == [ARRAYS_KEY] for m in replies)
    arrays, _ = FedAvg().aggregate_train(1, replies)
    assert arrays is not None
    averaged = arrays.to_numpy_ndarrays()
    assert len(averaged) == 4
    np.testing.assert_allclose(
        averaged[0], (client_weights[0][0] + client_weights[1][0]) / 2, rtol=1e-6
    )


def test_stock_message_fedavg_refuses_replies_with_the_extra_record(
    rng: np.random.Generator,
) -> None:
    from flwr.serverapp.exception import InconsistentMessageReplies
    from flwr.serverapp.strategy import FedAvg

    packer = fedpack.get_packer("scaffold")
    content = RecordDict({"metrics": MetricRecord({"num-examples": 10})})
    message = reply(to_record_dict(packer, model_weights(rng), [], record_dict=content), 1)
    with pytest.raises(InconsistentMessageReplies, match=r"exactly one ArrayRecord"):
        FedAvg().aggregate_train(1, [message])
    pop_extras([message], packer)
    arrays, _ = FedAvg().aggregate_train(1, [message])
    assert arrays is not None
    assert len(arrays) == 4


def test_pop_extras_names_the_reply_and_skips_errors(rng: np.random.Generator) -> None:
    from flwr.app import Error

    packer = fedpack.get_packer("scaffold")
    failed = Message(error=Error(code=0, reason="boom"), metadata=metadata(3))
    assert pop_extras([failed], packer) == []
    bad = reply(RecordDict({ARRAYS_KEY: ArrayRecord(model_weights(rng))}), 3)
    with pytest.raises(PackingError, match=r"reply 0 \(node 3\): expected an ArrayRecord"):
        pop_extras([bad], packer)


def test_records_round_trip_property(rng: np.random.Generator) -> None:
    packer: Any = fedpack.get_packer("layer_names")
    for size in range(4):
        weights = [rng.standard_normal(i + 1) for i in range(size)]
        names = [f"layer{i}" for i in range(size)]
        got_weights, got_names = from_record_dict(to_record_dict(packer, weights, names))
        assert got_names == names
        assert arrays_equal(got_weights, weights)
