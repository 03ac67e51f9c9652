"""fedpack.DecodeBudget: one object, safe defaults documented in one table, only tightened."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from builtin_packers import BUILTINS
from hypothesis import given
from hypothesis import strategies as st

import fedpack
from fedpack import DEFAULT_BUDGET, DecodeBudget, PackingError

README = Path(__file__).resolve().parents[1] / "README.md"
FIELDS = [f.name for f in dataclasses.fields(DecodeBudget)]


def _value(text: str) -> int:
    text = text.strip().strip("`")
    units = {"MiB": 1 << 20, "GiB": 1 << 30}
    match = re.fullmatch(r"(\d+) (MiB|GiB)", text)
    if match:
        return int(match.group(1)) * units[match.group(2)]
    match = re.fullmatch(r"(\d+)\*\*(\d+)", text)
    if match:
        return int(match.group(1)) ** int(match.group(2))
    return int(text.replace(",", ""))


def _readme_table() -> dict[str, int]:
    section = README.read_text(encoding="utf-8").split("the decoding budget\n", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section.split("\n## ", 1)[0], re.M)
    return {name: _value(value) for name, value in rows}


def test_the_readme_table_is_the_code() -> None:
    assert _readme_table() == {name: getattr(DEFAULT_BUDGET, name) for name in FIELDS}


def test_the_budget_is_exported_and_frozen() -> None:
    assert fedpack.DecodeBudget is DecodeBudget
    assert DecodeBudget.__module__ == "fedpack"
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_BUDGET.max_rank = 64  # type: ignore[misc]


@pytest.mark.parametrize("value", [-1, 1.5, True, "3", None])
def test_limits_are_non_negative_ints(value: object) -> None:
    with pytest.raises(ValueError, match=r"DecodeBudget.max_rank: expected a non-negative int"):
        DecodeBudget(max_rank=value)  # type: ignore[arg-type]


@given(
    a=st.fixed_dictionaries({name: st.integers(0, 2**40) for name in FIELDS}),
    b=st.fixed_dictionaries({name: st.integers(0, 2**40) for name in FIELDS}),
)
def test_tighten_takes_the_smaller_limit_of_each_field(
    a: dict[str, int], b: dict[str, int]
) -> None:
    merged = DecodeBudget(**a).tighten(DecodeBudget(**b))
    assert all(getattr(merged, name) == min(a[name], b[name]) for name in FIELDS)
    one = DecodeBudget(**a).tighten(max_rank=b["max_rank"])
    assert one.max_rank == min(a["max_rank"], b["max_rank"])
    assert DecodeBudget(**a).replace(max_rank=b["max_rank"]).max_rank == b["max_rank"]


def test_tighten_names_an_unknown_limit() -> None:
    with pytest.raises(TypeError, match="unknown limit 'max_ranks'"):
        DEFAULT_BUDGET.tighten(max_ranks=3)


@given(payload=st.integers(0, 2**40))
def test_the_allowance_grows_with_the_payload(payload: int) -> None:
    assert DEFAULT_BUDGET.allowance(payload) == max(64 << 20, 64 * payload)


def test_check_messages_say_expected_found_and_which_limit() -> None:
    budget = DecodeBudget(max_arrays=2, max_rank=2, max_elements=10)
    with pytest.raises(
        PackingError, match=r"x: expected at most 2 entries \(budget max_arrays\), found 3"
    ):
        budget.check_count(3, what="x")
    with pytest.raises(PackingError, match=r"at most 2 dimensions \(budget max_rank\), found 3"):
        budget.check_shape((1, 1, 1), what="x")
    with pytest.raises(PackingError, match=r"at most 10 elements .*found 11 in dimension 1"):
        budget.check_shape((0, 11), what="x")
    with pytest.raises(PackingError, match=r"at most 10 elements .*found 12 for a shape"):
        budget.check_shape((3, 4), what="x")
    assert budget.check_shape((2, 5), what="x") == 10
    with pytest.raises(PackingError, match=r"allocate 100 bytes, expected at most 64"):
        DecodeBudget(max_bytes=64, max_expansion=2).check_alloc(100, 10, what="x")


def test_every_packer_takes_a_budget() -> None:
    budget = DecodeBudget(max_arrays=3)
    for name in BUILTINS:
        packer = fedpack.get_packer(name, budget=budget)
        assert packer.budget == budget
        with pytest.raises(PackingError, match=r"at most 3 entries"):
            packer.unpack_parameters([np.ones(1)] * 4)
    with pytest.raises(TypeError, match=r"budget: expected a fedpack\.DecodeBudget"):
        fedpack.unpack([np.ones(1)], budget={"max_rank": 3})  # type: ignore[arg-type]


def test_the_npy_codec_takes_a_budget() -> None:
    from fedpack.flwr._npy import decode_array, decode_arrays, encode_array

    data = encode_array(np.zeros((2, 3)))
    with pytest.raises(PackingError, match=r"npy shape: expected at most 1 dimensions"):
        decode_array(data, budget=DecodeBudget(max_rank=1))
    with pytest.raises(PackingError, match=r"npy arrays: expected at most 1 entries"):
        decode_arrays([data, data], budget=DecodeBudget(max_arrays=1))
