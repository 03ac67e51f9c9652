"""sparsify / densify / extract_coo_info_from_dense, with numpy arrays and torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fedpack import PackingError

pytest.importorskip("fedpack_sparse_coo")

from fedpack_sparse_coo import SparseCooPacker, densify, sparsify

extract = SparseCooPacker.extract_coo_info_from_dense


def test_exact_zeros_dropped_by_default_like_fl4health() -> None:
    x = np.array([[0.0, -0.0, 2.0], [np.nan, 0.0, 3.0]])
    values, indices, shape = extract(x)
    assert np.array_equal(values, [2.0, np.nan, 3.0], equal_nan=True)
    assert indices.tolist() == [[0, 2], [1, 0], [1, 2]]
    assert shape.dtype == np.int64
    assert shape.tolist() == [2, 3]
    assert len(sparsify({"x": x})[0][0]) == 3


def test_keep_zeros_sends_every_element() -> None:
    x = np.array([[0.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    values, (indices, shapes, names) = sparsify({"x": x}, keep_zeros=True)
    assert values[0].tolist() == [0.0, 1.0, 2.0, 0.0]
    assert indices[0].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    base = {"x": np.full((2, 2), 9.0, np.float32)}
    assert densify(values, (indices, shapes, names), base=base)["x"].tolist() == x.tolist()


def test_selection_sends_selected_zeros_and_only_named_tensors() -> None:
    model = {"a": np.array([0.0, 5.0, 0.0, 7.0]), "b": np.ones(3)}
    mask = np.array([True, True, False, False])
    values, (indices, shapes, names) = sparsify(model, selection={"a": mask})
    assert names == ["a"]
    assert values[0].tolist() == [0.0, 5.0]
    base = {"a": np.full(4, 9.0), "b": np.zeros(3)}
    rebuilt = densify(values, (indices, shapes, names), base=base)
    assert rebuilt["a"].tolist() == [0.0, 5.0, 9.0, 9.0]  # the selected zero overwrote 9
    flat = sparsify(model, selection={"a": np.array([3, 0])})
    assert flat[0][0].tolist() == [0.0, 7.0]
    with pytest.raises(PackingError, match=r"selection names tensors that were not given: \['c'\]"):
        sparsify(model, selection={"c": mask})
    with pytest.raises(PackingError, match=r"tensor 'a'.*bool mask of shape"):
        sparsify(model, selection={"a": np.array([True])})


def test_without_base_unsent_elements_are_zero() -> None:
    x = np.array([[0, 3], [4, 0]], dtype=np.int16)
    values, extra = sparsify([("x", x)])
    assert densify(values, extra)["x"].tolist() == x.tolist()


def test_densify_refuses_huge_shapes_before_allocating() -> None:
    extra = ([np.zeros((1, 2), np.int64)], [np.array([10**6, 10**6])], ["big"])
    with pytest.raises(PackingError, match=r"'big'.*at most \d+ elements.*refusing"):
        densify([np.ones(1)], extra)
    with pytest.raises(PackingError, match="at most 10 elements"):
        densify(
            [np.ones(1)], ([np.zeros((1, 1), np.int64)], [np.array([11])], ["x"]), max_elements=10
        )


@pytest.mark.parametrize(
    ("values", "extra", "match"),
    [
        ([np.ones(2)], ([np.array([[0], [0]])], [np.array([3])], ["x"]), "more than once"),
        ([np.ones(1)], ([np.array([[3]])], [np.array([3])], ["x"]), r"'x'.*< 3"),
        ([np.ones(1)], ([np.array([[0]])], [np.array([3])], ["x", "y"]), "1 values.*2 names"),
        ([np.ones(1)], ([np.array([[0]])], [np.array([3])]), r"\(indices, shapes, names\)"),
        ([np.ones(1)], ([np.array([[0]])], [np.array([3])], "x"), "list of str"),
        ([np.ones(1)], ([np.array([[0]])], ["x"], ["x"]), "shapes: expected a numpy array"),
        ([[1.0]], ([np.array([[0]])], [np.array([3])], ["x"]), "values: expected a numpy array"),
    ],
)
def test_densify_validates(values: Any, extra: Any, match: str) -> None:
    with pytest.raises(PackingError, match=match):
        densify(values, extra)


def test_densify_base_checks() -> None:
    values, extra = sparsify({"x": np.arange(4.0)})
    with pytest.raises(PackingError, match=r"'x'.*base has no array"):
        densify(values, extra, base={})
    with pytest.raises(PackingError, match="base: expected dtype float64"):
        densify(values, extra, base={"x": np.zeros(4, np.float32)})
    with pytest.raises(PackingError, match=r"base\['x'\]: expected a numpy array"):
        densify(values, extra, base={"x": [0.0] * 4})  # type: ignore[dict-item]


def test_zero_d_supported() -> None:
    values, indices, shape = extract(np.array(2.5))
    assert values.tolist() == [2.5]
    assert indices.shape == (1, 0)
    assert shape.shape == (0,)
    assert shape.dtype == np.int64
    assert extract(np.array(0.0))[1].shape == (0, 0)
    rebuilt = densify([values], ([indices], [shape], ["s"]))["s"]
    assert rebuilt.shape == ()
    assert float(rebuilt) == 2.5


def test_non_contiguous_arrays() -> None:
    x = np.arange(24.0).reshape(4, 6)[::2, 1::2].T
    values, indices, _ = extract(x)
    assert values.tolist() == x[np.nonzero(x)].tolist()
    assert indices.tolist() == np.stack(np.nonzero(x), axis=1).tolist()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.array(["a"]), "bool, integer, float or complex"),
        ([1.0, 2.0], "numpy array or a torch.Tensor, found list"),
        (None, "numpy array or a torch.Tensor, found None"),
    ],
)
def test_bad_inputs(bad: Any, match: str) -> None:
    with pytest.raises(PackingError, match=match):
        extract(bad)


@pytest.mark.parametrize(
    ("arg", "match"),
    [
        ("abc", "expected a mapping"),
        ([("a", np.ones(1), 3)], r"\(name, tensor\) pairs"),
        ([("a", np.ones(1)), ("a", np.ones(1))], "unique"),
        ({"a": np.ones(1)}, None),
    ],
)
def test_sparsify_arguments(arg: Any, match: str | None) -> None:
    if match is None:
        assert sparsify(arg)[1][2] == ["a"]
        return
    with pytest.raises(PackingError, match=match):
        sparsify(arg)


# -- torch -----------------------------------------------------------------------------------


def test_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([[0.0, 1.5], [2.0, 0.0]], requires_grad=True)
    values, indices, shape = extract(x)
    assert values.tolist() == [1.5, 2.0]
    assert indices.tolist() == [[0, 1], [1, 0]]
    assert shape.tolist() == [2, 2]
    # non-contiguous
    t = torch.arange(12.0).reshape(3, 4).T
    assert extract(t)[0].tolist() == t[t != 0].tolist()
    # 0-d
    assert extract(torch.tensor(3))[1].shape == (1, 0)
    # float16 stays float16; bfloat16 becomes float32 (documented)
    assert extract(torch.ones(2, dtype=torch.float16))[0].dtype == np.float16
    bf = extract(torch.tensor([0.0, 1.5], dtype=torch.bfloat16))[0]
    assert bf.dtype == np.float32
    assert bf.tolist() == [1.5]
    # conjugate views are resolved
    c = torch.tensor([1 + 2j, 0j]).conj()
    assert extract(c)[0].tolist() == [1 - 2j]
    # sparsify with a state_dict-like mapping of tensors
    model = {"w": torch.tensor([[0.0, 1.0]]), "n": torch.tensor(5)}
    values2, extra = sparsify(model)
    rebuilt = densify(values2, extra)
    assert rebuilt["w"].tolist() == [[0.0, 1.0]]
    assert int(rebuilt["n"]) == 5


def test_torch_cuda_tensors() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.tensor([0.0, 2.0], device="cuda")
    assert extract(x)[0].tolist() == [2.0]
