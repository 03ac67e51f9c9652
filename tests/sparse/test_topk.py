"""Top-k sparsification with error feedback: selection, residual arithmetic, state, payloads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack
from fedpack import PackingError

pytest.importorskip("fedpack_sparse_coo")

from fedpack_sparse_coo import densify
from fedpack_sparse_coo.topk import TopKUpdate, residual_from_arrays, topk_update


def model(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv.weight": rng.standard_normal((4, 3, 3)).astype(np.float32),
        "conv.bias": rng.standard_normal(4).astype(np.float32),
        "bn.num_batches_tracked": np.array(3, dtype=np.int64),
        "fc.weight": rng.standard_normal((10, 6)).astype(np.float64),
    }


def trained(global_w: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, x in global_w.items():
        if x.dtype.kind == "f":
            out[name] = (x + rng.standard_normal(x.shape) * 0.1).astype(x.dtype)
        else:
            out[name] = np.asarray(x + 1)
    return out


def test_selection_is_the_largest_per_tensor() -> None:
    g = model()
    w = trained(g, 1)
    upd = topk_update(w, g, density=0.25)
    for name in ["conv.weight", "conv.bias", "fc.weight"]:
        delta = (w[name] - g[name]).reshape(-1)
        k = int(np.ceil(0.25 * delta.size))
        pos = upd.positions[name]
        assert len(pos) == k
        assert np.all(np.diff(pos) > 0)
        kept = np.abs(delta[pos]).min()
        dropped = np.delete(np.abs(delta), pos)
        assert dropped.size == 0 or dropped.max() <= kept
        np.testing.assert_array_equal(upd.values[name], delta[pos])
        assert upd.values[name].dtype == g[name].dtype  # float32 stays float32


def test_non_float_tensors_are_sent_whole_without_residual() -> None:
    g = model()
    upd = topk_update(trained(g, 1), g, density=0.1)
    np.testing.assert_array_equal(upd.values["bn.num_batches_tracked"], [1])
    assert "bn.num_batches_tracked" not in upd.residual


def test_ties_go_to_the_lower_position() -> None:
    g = {"w": np.zeros(10, np.float32)}
    w = {"w": np.array([1, 3, 2, 3, 3, 0, -3, 1, 2, 3], np.float32)}
    upd = topk_update(w, g, density=0.3)  # k = 3 of the five |3|: positions 1, 3, 4
    np.testing.assert_array_equal(upd.positions["w"], [1, 3, 4])
    again = topk_update(w, g, density=0.3)
    np.testing.assert_array_equal(again.positions["w"], upd.positions["w"])


def test_model_scope_selects_over_all_tensors() -> None:
    g = {"a": np.zeros(4, np.float32), "b": np.zeros(6, np.float32)}
    w = {
        "a": np.array([5, 0.1, 0.2, 4], np.float32),
        "b": np.array([0.5, 9, 0, 0, 0, 0.3], np.float32),
    }
    upd = topk_update(w, g, density=0.3, scope="model")  # k = 3: 9, 5, 4
    np.testing.assert_array_equal(upd.positions["a"], [0, 3])
    np.testing.assert_array_equal(upd.positions["b"], [1])
    per_tensor = topk_update(w, g, density=0.3)
    np.testing.assert_array_equal(per_tensor.positions["a"], [0, 3])
    np.testing.assert_array_equal(per_tensor.positions["b"], [1, 0][::-1])


@settings(max_examples=60, deadline=None)
@given(
    update=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=2, max_side=12),
        elements=st.floats(-100, 100, width=32),
    ),
    old=st.floats(-10, 10, width=32),
    density=st.floats(0.01, 1.0),
    scope=st.sampled_from(["tensor", "model"]),
)
def test_sent_plus_residual_is_update_plus_old_residual(
    update: np.ndarray, old: float, density: float, scope: str
) -> None:
    g = {"w": np.zeros(update.shape, np.float32)}
    w = {"w": update}
    residual = {"w": np.full(update.shape, old, np.float32)}
    upd = topk_update(w, g, residual, density=density, scope=scope)
    total = upd.dense()["w"] + upd.residual["w"]
    np.testing.assert_array_equal(total, update + residual["w"])  # exact, element for element
    assert np.all(upd.residual["w"].reshape(-1)[upd.positions["w"]] == 0)


def test_error_feedback_sends_everything_eventually() -> None:
    # a constant update: what is not sent accumulates and is sent in later rounds
    g = {"w": np.zeros(8, np.float32)}
    w = {"w": np.arange(1, 9, dtype=np.float32)}
    residual = None
    sent = np.zeros(8, np.float32)
    for _ in range(40):
        upd = topk_update(w, g, residual, density=0.125)
        sent += upd.dense()["w"]
        residual = upd.residual
    assert residual is not None
    np.testing.assert_allclose(sent + residual["w"], 40 * w["w"])
    assert np.all(sent > 0)  # every entry was sent at least once


def test_absorb_feeds_back_the_quantization_error() -> None:
    g = model()
    w = trained(g, 2)
    upd = topk_update(w, g, density=0.5)
    before = {n: r.copy() for n, r in upd.residual.items()}
    packer = fedpack.get_packer(
        "quantize", bits=4, inner="sparse_coo", inner_options={"encoding": "compact"}
    )
    values, extra = upd.sparse_coo()
    got, (_, _, names) = packer.unpack_parameters(packer.pack_parameters(values, extra))
    received = dict(zip(names, got, strict=True))
    upd.absorb(received)
    for name, r in upd.residual.items():
        flat = r.reshape(-1)
        pos = upd.positions[name]
        np.testing.assert_allclose(flat[pos], upd.values[name] - received[name], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(
            np.delete(flat, pos), np.delete(before[name].reshape(-1), pos)
        )
    with pytest.raises(PackingError, match=r"absorb: 'conv\.bias': expected"):
        upd.absorb({**received, "conv.bias": np.zeros(1, np.float32)})


@pytest.mark.parametrize("bits", [None, 8])
def test_payload_round_trip_through_sparse_coo_compact(bits: int | None) -> None:
    g = model()
    w = trained(g, 3)
    upd = topk_update(w, g, density=0.2)
    if bits is None:
        packer = fedpack.get_packer("sparse_coo", encoding="compact")
    else:
        packer = fedpack.get_packer(
            "quantize", bits=bits, inner="sparse_coo", inner_options={"encoding": "compact"}
        )
    values, extra = upd.sparse_coo()
    _name, got, got_extra = fedpack.unpack(packer.pack_parameters(values, extra))
    dense = densify(got, got_extra)
    for tensor, expected in upd.dense().items():
        if bits is None:
            np.testing.assert_array_equal(dense[tensor], expected)
        else:
            np.testing.assert_allclose(dense[tensor], expected, atol=np.abs(expected).max() / 200)


def test_residual_state_round_trip_and_checks() -> None:
    g = model()
    upd = topk_update(trained(g, 1), g, density=0.1)
    stored = {n: r.copy() for n, r in upd.residual.items()}  # e.g. ArrayRecord(...) and back
    assert set(residual_from_arrays(stored, g)) == {"conv.weight", "conv.bias", "fc.weight"}
    with pytest.raises(PackingError, match=r"1 missing \(\['conv.bias'\]\)"):
        residual_from_arrays({k: v for k, v in stored.items() if k != "conv.bias"}, g)
    with pytest.raises(PackingError, match=r"1 unknown \(\['extra'\]\)"):
        residual_from_arrays({**stored, "extra": np.zeros(1)}, g)
    with pytest.raises(PackingError, match=r"residual 'fc\.weight': expected float64 array"):
        residual_from_arrays({**stored, "fc.weight": np.zeros((10, 6), np.float32)}, g)
    with pytest.raises(PackingError, match="expected a mapping of arrays"):
        residual_from_arrays([1, 2], g)  # type: ignore[arg-type]
    with pytest.raises(PackingError, match=r"residual 'conv\.bias'"):
        topk_update(trained(g, 2), g, {**stored, "conv.bias": np.zeros(5, np.float32)}, density=0.1)


def test_argument_errors() -> None:
    g = model()
    w = trained(g, 1)
    with pytest.raises(ValueError, match=r"density: expected a number in \(0, 1\], found 0"):
        topk_update(w, g, density=0)
    with pytest.raises(TypeError, match="density: expected a number"):
        topk_update(w, g, density="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope: expected one of"):
        topk_update(w, g, density=0.1, scope="layer")
    with pytest.raises(PackingError, match="the same names in the same order"):
        topk_update(w, dict(reversed(g.items())), density=0.1)
    with pytest.raises(PackingError, match=r"'conv\.bias': the weights are a float64"):
        topk_update({**w, "conv.bias": w["conv.bias"].astype(np.float64)}, g, density=0.1)
    with pytest.raises(PackingError, match="expected numpy arrays"):
        topk_update({**w, "conv.bias": [1.0]}, g, density=0.1)  # type: ignore[dict-item]


def test_update_is_a_dataclass_of_plain_arrays() -> None:
    g = model()
    upd = topk_update(trained(g, 1), g, density=0.1)
    assert isinstance(upd, TopKUpdate)
    assert all(isinstance(a, np.ndarray) for a in upd.residual.values())
