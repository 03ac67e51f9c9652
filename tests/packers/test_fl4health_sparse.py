"""sparse_coo with framed=False is FL4Health 0.4.2's SparseCooParameterPacker, both ways."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fl4health_reference import SparseCooParameterPacker, real_fl4health_packers
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from packer_cases import assert_same_payload

sparse_coo = pytest.importorskip("fedpack_sparse_coo")
SparseCooPacker = sparse_coo.SparseCooPacker

DTYPES = ["bool", "int8", "uint16", "int64", "float16", "float32", "float64", "complex64"]


def dense_model(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for i, dtype in enumerate(DTYPES):
        shape = [(3, 4), (5,), (2, 3, 4), (0, 2)][i % 4]
        out[f"layer{i}.{dtype}"] = (
            rng.integers(0, 3, size=shape) * (rng.random(shape) < 0.4)
        ).astype(dtype)
    return out


def fl4health_extra(
    model: dict[str, Any],
) -> tuple[list[Any], tuple[list[Any], list[Any], list[str]]]:
    values, indices, shapes = [], [], []
    for x in model.values():
        v, i, s = SparseCooParameterPacker.extract_coo_info_from_dense(x)
        values.append(v)
        indices.append(i)
        shapes.append(s)
    return values, (indices, shapes, list(model))


def test_pack_matches_fl4health() -> None:
    values, extra = fl4health_extra(dense_model())
    ours = SparseCooPacker(framed=False).pack_parameters(values, extra)
    assert_same_payload(ours, SparseCooParameterPacker().pack_parameters(values, extra))
    framed = SparseCooPacker().pack_parameters(values, extra)
    assert_same_payload(framed[:-1], ours)


def test_unpack_reads_fl4health_payloads() -> None:
    values, extra = fl4health_extra(dense_model(1))
    payload = SparseCooParameterPacker().pack_parameters(values, extra)
    ours = SparseCooPacker(framed=False).unpack_parameters(payload)
    theirs = SparseCooParameterPacker().unpack_parameters(payload)
    assert all(a is b for a, b in zip(ours[0], theirs[0], strict=True))
    assert all(a is b for a, b in zip(ours[1][0], theirs[1][0], strict=True))
    assert all(a is b for a, b in zip(ours[1][1], theirs[1][1], strict=True))
    assert ours[1][2] == theirs[1][2]


@pytest.mark.parametrize("dtype", DTYPES)
def test_extraction_matches_fl4health(dtype: str) -> None:
    x = dense_model(2)[next(k for k in dense_model(2) if k.endswith(dtype))]
    ours = SparseCooPacker.extract_coo_info_from_dense(x)
    theirs = SparseCooParameterPacker.extract_coo_info_from_dense(x)
    assert_same_payload(list(ours), list(theirs))


@settings(max_examples=40, deadline=None)
@given(
    x=st.sampled_from(DTYPES).flatmap(
        lambda d: hnp.arrays(
            d,
            hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
            elements=st.integers(0, 1 if d == "bool" else 2),
        )
    )
)
def test_extraction_matches_fl4health_property(x: Any) -> None:
    ours = SparseCooPacker.extract_coo_info_from_dense(x)
    theirs = SparseCooParameterPacker.extract_coo_info_from_dense(x)
    assert_same_payload(list(ours), list(theirs))
    packed = SparseCooPacker(framed=False).pack_parameters([ours[0]], ([ours[1]], [ours[2]], ["x"]))
    assert_same_payload(
        packed,
        SparseCooParameterPacker().pack_parameters([theirs[0]], ([theirs[1]], [theirs[2]], ["x"])),
    )


def _real() -> Any:
    return real_fl4health_packers()


def test_pack_and_unpack_match_real_fl4health() -> None:
    real = _real().SparseCooParameterPacker()
    values, extra = fl4health_extra(dense_model(3))
    theirs = real.pack_parameters(values, extra)
    assert_same_payload(SparseCooPacker(framed=False).pack_parameters(values, extra), theirs)
    got = SparseCooPacker(framed=False).unpack_parameters(theirs)
    expected = real.unpack_parameters(theirs)
    assert all(a is b for a, b in zip(got[0], expected[0], strict=True))
    assert got[1][2] == expected[1][2]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int8", "bool"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_extraction_matches_real_fl4health_torch(dtype: str, layout: str) -> None:
    module = _real()
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = (rng.integers(0, 3, size=(4, 5, 3)) * (rng.random((4, 5, 3)) < 0.3)).astype(dtype)
    t = torch.from_numpy(x)
    if layout == "transposed":
        t = t.transpose(0, 2)
    theirs = module.SparseCooParameterPacker.extract_coo_info_from_dense(t)
    ours = SparseCooPacker.extract_coo_info_from_dense(t)
    assert_same_payload(list(ours), list(theirs))
    # and FL4Health's receiver rebuilds our payload as we do
    packed = SparseCooPacker(framed=False).pack_parameters([ours[0]], ([ours[1]], [ours[2]], ["t"]))
    values, (indices, shapes, _) = module.SparseCooParameterPacker().unpack_parameters(packed)
    rebuilt = torch.sparse_coo_tensor(
        torch.from_numpy(indices[0]).T,
        torch.from_numpy(values[0]),
        tuple(shapes[0].tolist()),
        check_invariants=True,
    ).to_dense()
    assert np.array_equal(rebuilt.numpy(), t.numpy())
