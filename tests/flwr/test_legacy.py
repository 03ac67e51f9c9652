"""fedpack.flwr with Flower's legacy API: Parameters, FitIns, FitRes and FedAvg."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack
from fedpack import PackingError
from fedpack.flwr import (
    TENSOR_TYPE,
    from_parameters,
    pack_fit_ins,
    pack_parameters,
    split_fit_res,
    split_fit_results,
    to_parameters,
    unpack_parameters,
)

from .conftest import Proxy, arrays_equal, model_weights, sample_arrays

flwr = pytest.importorskip("flwr")

from flwr.common import (  # noqa: E402
    Code,
    FitIns,
    FitRes,
    Parameters,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.strategy import FedAvg  # noqa: E402

OK = Status(code=Code.OK, message="")


def fit_res(parameters: Parameters, num_examples: int, **metrics: Any) -> FitRes:
    return FitRes(status=OK, parameters=parameters, num_examples=num_examples, metrics=metrics)


# -- Parameters ------------------------------------------------------------------------------


def test_to_parameters_is_byte_identical_to_flower() -> None:
    arrays = sample_arrays()
    ours = to_parameters(arrays)
    theirs = ndarrays_to_parameters(arrays)
    assert isinstance(ours, Parameters)
    assert ours.tensor_type == theirs.tensor_type == TENSOR_TYPE
    assert ours.tensors == theirs.tensors


def test_packed_payload_is_byte_identical_to_flower(rng: np.random.Generator) -> None:
    packed = fedpack.get_packer("scaffold").pack_parameters(
        model_weights(rng), model_weights(rng)[:2]
    )
    assert to_parameters(packed).tensors == ndarrays_to_parameters(packed).tensors


def test_from_parameters_reads_flower_parameters_as_read_only_views() -> None:
    arrays = sample_arrays()
    parameters = ndarrays_to_parameters(arrays)
    ours = from_parameters(parameters)
    assert arrays_equal(ours, parameters_to_ndarrays(parameters))
    assert all(not a.flags.writeable for a in ours if a.size)
    writable = from_parameters(parameters, writable=True)
    assert arrays_equal(writable, arrays)
    assert all(a.flags.writeable for a in writable)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        hnp.arrays(
            dtype=st.one_of(hnp.integer_dtypes(), hnp.floating_dtypes(), hnp.boolean_dtypes()),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        ),
        max_size=5,
    )
)
def test_parameters_round_trip_property(arrays: list[Any]) -> None:
    parameters = to_parameters(arrays)
    assert parameters.tensors == ndarrays_to_parameters(arrays).tensors
    back = from_parameters(parameters)
    assert len(back) == len(arrays)
    for x, y in zip(back, arrays, strict=True):
        assert x.dtype == y.dtype
        assert x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def test_from_parameters_rejects_another_tensor_type() -> None:
    parameters = Parameters(tensors=[], tensor_type="torch.Tensor")
    with pytest.raises(PackingError, match=r"tensor_type 'numpy.ndarray', found 'torch.Tensor'"):
        from_parameters(parameters)


def test_from_parameters_rejects_what_is_not_parameters() -> None:
    with pytest.raises(PackingError, match=r"expected a flwr.common.Parameters, found list"):
        from_parameters([b"x"])  # type: ignore[arg-type]


def test_from_parameters_names_the_bad_tensor() -> None:
    parameters = ndarrays_to_parameters([np.zeros(3), np.ones(4)])
    parameters.tensors[1] = parameters.tensors[1][:-8]
    with pytest.raises(PackingError, match=r"array 1: expected 32 data bytes .*truncated"):
        from_parameters(parameters)


def test_to_parameters_rejects_object_arrays() -> None:
    with pytest.raises(PackingError, match=r"to_parameters: array 0 has dtype object"):
        to_parameters([np.array([None])])


# -- pack / unpack ---------------------------------------------------------------------------


def test_pack_and_unpack_parameters_with_and_without_a_packer(rng: np.random.Generator) -> None:
    weights, cvs = model_weights(rng), model_weights(rng)[:2]
    packer = fedpack.get_packer("scaffold")
    parameters = pack_parameters(packer, weights, cvs)
    assert (
        parameters.tensors == ndarrays_to_parameters(packer.pack_parameters(weights, cvs)).tensors
    )
    for use in (packer, None):
        got_weights, got_cvs = unpack_parameters(parameters, use)
        assert arrays_equal(got_weights, weights)
        assert arrays_equal(got_cvs, cvs)


def test_unpack_parameters_of_flower_made_payload(rng: np.random.Generator) -> None:
    packer = fedpack.get_packer("clipping_bit")
    weights = model_weights(rng)
    parameters = ndarrays_to_parameters(packer.pack_parameters(weights, 1.0))
    got_weights, bit = unpack_parameters(parameters, packer, writable=True)
    assert bit == 1.0
    assert type(bit) is float
    assert arrays_equal(got_weights, weights)
    assert all(w.flags.writeable for w in got_weights)


def test_unpack_parameters_without_a_frame_needs_a_packer(rng: np.random.Generator) -> None:
    parameters = to_parameters(model_weights(rng))
    with pytest.raises(PackingError, match=r"frame"):
        unpack_parameters(parameters)


def test_pack_fit_ins(rng: np.random.Generator) -> None:
    weights = model_weights(rng)
    packer = fedpack.get_packer("clipping_bit")
    fit_ins = pack_fit_ins(packer, weights, 2.5, {"lr": 0.1})
    assert isinstance(fit_ins, FitIns)
    assert fit_ins.config == {"lr": 0.1}
    got, bound = unpack_parameters(fit_ins.parameters, packer)
    assert bound == 2.5
    assert arrays_equal(got, weights)
    assert pack_fit_ins(packer, weights, 2.5).config == {}


# -- FitRes and FedAvg -----------------------------------------------------------------------


def test_split_fit_res_reuses_the_weight_bytes(rng: np.random.Generator) -> None:
    packer = fedpack.get_packer("scaffold")
    weights, cvs = model_weights(rng), model_weights(rng)[:2]
    res = fit_res(pack_parameters(packer, weights, cvs), 10, loss=0.5)
    weights_only, got_weights, got_cvs = split_fit_res(res, packer)
    assert weights_only.num_examples == 10
    assert weights_only.metrics == {"loss": 0.5}
    assert weights_only.status == OK
    assert len(weights_only.parameters.tensors) == len(weights)
    leading = res.parameters.tensors[: len(weights)]
    assert all(a is b for a, b in zip(weights_only.parameters.tensors, leading, strict=True))
    assert arrays_equal(parameters_to_ndarrays(weights_only.parameters), weights)
    assert arrays_equal(got_weights, weights)
    assert arrays_equal(got_cvs, cvs)


def test_split_fit_res_rejects_what_is_not_a_fit_res() -> None:
    with pytest.raises(PackingError, match=r"expected a flwr.common.FitRes, found"):
        split_fit_res(object())  # type: ignore[arg-type]


def test_fedavg_never_sees_the_extras_and_int_arrays_survive(rng: np.random.Generator) -> None:
    packer = fedpack.get_packer("layer_names")
    client_weights = [model_weights(rng) for _ in range(3)]
    names = ["fc.weight", "fc.bias", "bn.num_batches_tracked", "bn.running_var"]
    counts = [10, 30, 60]
    results = [
        (Proxy(str(i)), fit_res(pack_parameters(packer, w, names), n))
        for i, (w, n) in enumerate(zip(client_weights, counts, strict=True))
    ]
    weights_results, extras = split_fit_results(results, packer)
    assert extras == [names, names, names]
    assert [proxy.cid for proxy, _ in weights_results] == ["0", "1", "2"]

    aggregated, _ = FedAvg().aggregate_fit(1, weights_results, [])
    assert aggregated is not None
    averaged = parameters_to_ndarrays(aggregated)
    assert len(averaged) == len(names)  # no name array, no frame
    total = sum(counts)
    for i in (0, 1, 3):
        expected = (
            sum(w[i].astype(np.float64) * n for w, n in zip(client_weights, counts, strict=True))
            / total
        )
        np.testing.assert_allclose(averaged[i], expected, rtol=1e-2, atol=1e-2)
    # The payloads the strategy never saw are intact, integers and frames included.
    for (_, res), w in zip(results, client_weights, strict=True):
        got_weights, got_names = unpack_parameters(res.parameters, packer)
        assert got_names == names
        assert arrays_equal(got_weights, w)


def test_fedavg_on_raw_packed_results_would_corrupt_the_extras(rng: np.random.Generator) -> None:
    # Why split_fit_results exists: stock FedAvg averages every array it is given.
    packer = fedpack.get_packer("scaffold")
    results = [
        (Proxy(str(i)), fit_res(pack_parameters(packer, model_weights(rng), [np.arange(3)]), 5))
        for i in range(2)
    ]
    aggregated, _ = FedAvg().aggregate_fit(1, results, [])
    assert aggregated is not None
    raw = parameters_to_ndarrays(aggregated)
    assert len(raw) == 4 + 1 + 1  # weights, the control variate and the frame, all "averaged"
    with pytest.raises(PackingError):
        unpack_parameters(aggregated, packer)


def test_split_fit_results_names_the_result_and_client(rng: np.random.Generator) -> None:
    packer = fedpack.get_packer("scaffold")
    good = fit_res(pack_parameters(packer, model_weights(rng), []), 1)
    bad = fit_res(to_parameters(model_weights(rng)), 1)
    with pytest.raises(PackingError, match=r"fit result 1 \(client c7\): .*frame"):
        split_fit_results([(Proxy("c6"), good), (Proxy("c7"), bad)], packer)


def test_split_fit_results_dispatches_on_the_frame(rng: np.random.Generator) -> None:
    scaffold = fedpack.get_packer("scaffold")
    res = fit_res(pack_parameters(scaffold, model_weights(rng), [np.ones(2)]), 1)
    _, extras = split_fit_results([(Proxy("a"), res)])
    assert arrays_equal(extras[0], [np.ones(2)])
