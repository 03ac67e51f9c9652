"""Per kind of hostile payload: a property or fuzz test, and focused tests with their messages.

The kinds are those of ``corpus.py``; the corpus itself runs under limits in
``test_hostile_corpus.py``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from corpus import (
    json_frame,
    parameters,
    params_of,
    raw_frame,
    raw_npy,
    record_dict,
    sparse_payload,
    with_frame,
)
from fedpack_sparse_coo import SparseCooPacker, densify
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fedpack
import fedpack.flwr
from fedpack import DecodeBudget, PackingError, UnknownPayloadPackerError
from fedpack.checks import check_strings, shorten
from fedpack.flwr._npy import decode_array, encode_arrays

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- 1. rank bombs ---------------------------------------------------------------------------


@SETTINGS
@given(
    rank=st.integers(17, 2000),
    encoding=st.sampled_from(["coo", "compact"]),
    dense=st.booleans(),
)
def test_rank_bombs_are_refused_before_any_work(rank: int, encoding: str, dense: bool) -> None:
    packed = sparse_payload(encoding, (1,) * rank)
    packer = SparseCooPacker(encoding=encoding)
    call = packer.unpack_dense if dense else packer.unpack_parameters
    with pytest.raises(PackingError, match=rf"expected at most 16 dimensions .*found {rank}"):
        call(packed)


@SETTINGS
@given(limit=st.integers(1, 30), encoding=st.sampled_from(["coo", "compact"]))
def test_the_rank_limit_is_exact(limit: int, encoding: str) -> None:
    budget = DecodeBudget(max_rank=limit)
    packer = fedpack.get_packer("sparse_coo", encoding=encoding, budget=budget)
    _values, (indices, shapes, _names) = packer.unpack_parameters(
        sparse_payload(encoding, (1,) * limit)
    )
    assert shapes[0].shape == (limit,)
    assert indices[0].shape == (1, limit)
    with pytest.raises(PackingError, match="max_rank"):
        packer.unpack_parameters(sparse_payload(encoding, (1,) * (limit + 1)))


@SETTINGS
@given(rank=st.integers(17, 600))
def test_npy_rank_bombs_are_refused(rank: int) -> None:
    with pytest.raises(PackingError, match=rf"npy shape: expected at most 16 dimensions .*{rank}"):
        decode_array(raw_npy("<f4", (1,) * rank, b"\0" * 4))


def test_rank_64_and_65_give_a_packing_error_not_numpys() -> None:
    for rank in (64, 65):
        with pytest.raises(PackingError, match="budget max_rank"):
            fedpack.unpack(sparse_payload("compact", (1,) * rank))


# -- 2. zero-width strings -----------------------------------------------------------------


@SETTINGS
@given(
    descr=st.sampled_from(["<U0", "|S0", ">U0", "|V0"]),
    shape=st.lists(st.integers(1, 10**6), min_size=1, max_size=3).map(tuple),
)
def test_zero_width_dtypes_are_refused(descr: str, shape: tuple[int, ...]) -> None:
    assume(math.prod(shape) <= 2**31)
    with pytest.raises(PackingError, match=r"zero-width dtype"):
        decode_array(raw_npy(descr, shape))


def test_zero_width_names_arrays_are_refused_on_every_packer() -> None:
    bomb = raw_npy("<U0", (10**8,))
    tensors = encode_arrays(fedpack.get_packer("layer_names").pack_parameters([np.ones(2)], ["a"]))
    tensors[1] = bomb
    with pytest.raises(PackingError, match=r"array 1: expected a dtype at least one byte wide"):
        fedpack.flwr.unpack_parameters(parameters(tensors))


@SETTINGS
@given(width=st.integers(1, 3000), limit=st.integers(1, 2000))
def test_string_width_limit(width: int, limit: int) -> None:
    names = np.array(["x" * width])
    budget = DecodeBudget(max_string_width=limit)
    if width <= limit:
        check_strings(names, budget, what="names")
    else:
        with pytest.raises(PackingError, match=rf"at most {limit} characters .*'<U{width}'"):
            check_strings(names, budget, what="names")


def test_too_many_names_are_refused_before_they_are_read() -> None:
    packed = fedpack.get_packer("layer_names").pack_parameters([np.ones(1)], ["a"])
    packed[1] = np.array(["n"] * 11)
    packer = fedpack.get_packer("layer_names", budget=DecodeBudget(max_arrays=10))
    with pytest.raises(PackingError, match=r"expected at most 10 entries .*found 11"):
        packer.unpack_parameters(packed)


# -- 3. receiver-side allocation chosen by the sender ------------------------------------------


@SETTINGS
@given(
    dims=st.lists(st.integers(0, 40), min_size=1, max_size=3).map(tuple),
    dtype=st.sampled_from(["float32", "complex128", "bool", "int8"]),
    max_bytes=st.integers(0, 4096),
    expansion=st.integers(0, 8),
    encoding=st.sampled_from(["coo", "compact"]),
)
def test_unpack_dense_allocates_within_the_allowance(
    dims: tuple[int, ...], dtype: str, max_bytes: int, expansion: int, encoding: str
) -> None:
    assume(math.prod(dims) > 0)
    packed = sparse_payload(encoding, dims, dtype)
    budget = DecodeBudget(max_bytes=max_bytes, max_expansion=expansion)
    packer = fedpack.get_packer("sparse_coo", encoding=encoding, budget=budget)
    sent = sum(a.nbytes for a in packed[:2])  # values and their positions or indices
    everything = sum(a.nbytes for a in packed)
    needed = math.prod(dims) * np.dtype(dtype).itemsize
    if needed <= budget.allowance(sent):
        _, dense = packer.unpack_dense(packed)
        assert dense[0].nbytes == needed
    elif needed > budget.allowance(everything):
        with pytest.raises(PackingError, match=r"refusing to allocate"):
            packer.unpack_dense(packed)


def test_a_180_byte_payload_cannot_ask_for_32_gib() -> None:
    packed = sparse_payload("compact", (2**31,), "complex128")
    with pytest.raises(
        PackingError,
        match=r"tensor 't' \(#0, flat\): dense tensors up to here: the payload \(\d+ bytes\) "
        r"would make the receiver allocate 34359738368 bytes, expected at most 67108864",
    ):
        SparseCooPacker(encoding="compact").unpack_dense(packed)


def test_a_base_is_the_receivers_own_memory() -> None:
    dims = (2**13, 2**11)  # 64 MiB of float32 + 1 element: beyond max_bytes without a base
    packed = sparse_payload("compact", dims)
    budget = DecodeBudget(max_bytes=1 << 20)
    packer = fedpack.get_packer("sparse_coo", budget=budget)
    with pytest.raises(PackingError, match="refusing to allocate"):
        packer.unpack_dense(packed)
    base = {"t": np.zeros(dims, np.float32)}
    _, (dense,) = packer.unpack_dense(packed, base=base)
    assert dense[0, 0] == 1.0


def test_densify_without_a_base_is_bounded_too() -> None:
    values, indices, shapes = [np.ones(1)], [np.zeros((1, 1), np.int64)], [np.array([10**8])]
    with pytest.raises(PackingError, match=r"densify: dense tensors: .*refusing to allocate"):
        densify(values, (indices, shapes, ["t"]))
    with pytest.raises(PackingError, match=r"at most 10 elements"):
        densify(values, (indices, shapes, ["t"]), max_elements=10)


@pytest.mark.parametrize("dims", [(2**63 - 1,), (2**40, 2**40), (0, 2**62)])
def test_dimensions_beyond_the_platform_are_packing_errors(dims: tuple[int, ...]) -> None:
    with pytest.raises(PackingError, match="max_elements"):
        decode_array(raw_npy("<f8", dims))
    packed = sparse_payload("coo", dims)
    if 0 in dims:
        packed[0], packed[1] = packed[0][:0], packed[1][:0]
    with pytest.raises(PackingError, match="max_elements"):
        SparseCooPacker().unpack_dense(packed)


# -- 4. options injection through composition ------------------------------------------------


def _composed(encoding: str, max_elements: int, dims: tuple[int, ...]) -> list[Any]:
    packer = fedpack.get_packer("sparse_coo+clipping_bit", sparse_coo={"encoding": encoding})
    coo = ([np.zeros((1, 1), np.int64)], [np.array([4])], ["t"])
    sent = packer.pack_parameters([np.ones(1, np.float32)], (coo, 0.5))
    frame = fedpack.frame.read_frame(sent)
    parts = [dict(p) for p in frame.options["parts"]]  # type: ignore[union-attr]
    parts[0] = {
        "packer": "sparse_coo",
        "options": {"encoding": encoding, "max_elements": max_elements},
    }
    packed = with_frame(sent, options={"parts": parts})
    packed[2] = np.array(dims, dtype=np.int64)
    packed[1] = np.zeros((1, len(dims)), np.int64) if encoding == "coo" else np.zeros(1, np.uint64)
    return packed


def test_a_composed_frame_cannot_loosen_max_elements() -> None:
    packed = _composed("coo", 2**62, (2**40,))
    with pytest.raises(PackingError, match=r"at most 2147483648 elements"):
        fedpack.unpack(packed)


@SETTINGS
@given(
    sent=st.integers(1, 64),
    frame_limit=st.integers(0, 2**62),
    receiver_limit=st.integers(0, 64),
    encoding=st.sampled_from(["coo", "compact"]),
)
def test_a_frame_can_only_tighten(
    sent: int, frame_limit: int, receiver_limit: int, encoding: str
) -> None:
    packed = _composed(encoding, frame_limit, (sent,))
    budget = DecodeBudget(max_elements=receiver_limit)
    if sent <= min(frame_limit, receiver_limit):
        name, _weights, (_extra, bit) = fedpack.unpack(packed, budget=budget)
        assert name == "sparse_coo+clipping_bit"
        assert bit == 0.5
    else:
        with pytest.raises(PackingError, match="max_elements"):
            fedpack.unpack(packed, budget=budget)


def test_the_receivers_budget_reaches_every_part() -> None:
    budget = DecodeBudget(max_rank=3)
    packer = fedpack.get_packer("sparse_coo+clipping_bit", budget=budget)
    assert all(part.budget.max_rank == 3 for part in packer.parts)
    own = fedpack.get_packer("sparse_coo", max_elements=5, budget=budget)
    assert own.budget.max_elements == 5
    assert own.max_elements == 5


# -- 5. Message API split (stand-ins; tests/flwr runs the same with Flower's records) ----------


@SETTINGS
@given(shift=st.integers(-3, 2), with_packer=st.booleans())
def test_the_weights_record_must_hold_exactly_the_weights(shift: int, with_packer: bool) -> None:
    packer = fedpack.get_packer("scaffold")
    weights = [np.ones(3), np.ones(2), np.array(1)]
    tensors = encode_arrays(packer.pack_parameters(weights, [np.ones(3), np.ones(2)]))
    rd = record_dict(tensors[: 3 + shift], tensors[3 + shift :])
    chosen = packer if with_packer else None
    if shift == 0:
        got, cvs = fedpack.flwr.from_record_dict(rd, chosen)  # type: ignore[arg-type]
        assert len(got) == 3
        assert len(cvs) == 2
    else:
        with pytest.raises(
            PackingError,
            match=rf"expected exactly the 3 weight arrays of the payload, found {3 + shift}",
        ):
            fedpack.flwr.from_record_dict(rd, chosen)  # type: ignore[arg-type]


def test_equal_record_keys_are_refused() -> None:
    packer = fedpack.get_packer("clipping_bit")
    with pytest.raises(PackingError, match="arrays_key and extra_key must differ, found both 'k'"):
        fedpack.flwr.to_record_dict(packer, [np.ones(1)], 0.5, arrays_key="k", extra_key="k")


# -- 6. errors outside the model --------------------------------------------------------------


@SETTINGS
@given(name=st.from_regex(r"[a-z0-9_]{1,128}", fullmatch=True))
def test_an_unknown_packer_in_a_payload_is_a_packing_error(name: str) -> None:
    assume(name not in fedpack.default_registry().names() and name != "compose")
    packed = fedpack.get_packer("clipping_bit").pack_parameters([np.ones(2)], 1.0)
    content = json.loads(packed[-1][13:].tobytes())
    content["packer"] = name
    packed[-1] = json_frame(content)
    for call in (
        lambda: fedpack.unpack(packed),
        lambda: fedpack.flwr.unpack_parameters(params_of(packed)),
    ):
        with pytest.raises(UnknownPayloadPackerError, match=r"the payload names packer") as info:
            call()
        assert isinstance(info.value, PackingError)
        assert isinstance(info.value, LookupError)
        assert isinstance(info.value, fedpack.UnknownPackerError)
        assert len(str(info.value)) < 1000


def test_get_packer_of_an_unknown_name_still_raises_unknown_packer_error() -> None:
    with pytest.raises(fedpack.UnknownPackerError) as info:
        fedpack.get_packer("nope")
    assert not isinstance(info.value, PackingError)


@SETTINGS
@given(exponent=st.integers(309, 5000), sign=st.sampled_from([1, -1]))
def test_numbers_beyond_float_are_packing_errors(exponent: int, sign: int) -> None:
    with pytest.raises(PackingError, match=r"expected a finite number, found a int that does not"):
        fedpack.get_packer("clipping_bit").pack_parameters([np.ones(1)], sign * 10**exponent)


@SETTINGS
@given(text=st.text(min_size=0, max_size=5000), limit=st.integers(5, 300))
def test_shorten_bounds_any_text(text: str, limit: int) -> None:
    out = shorten(text, limit)
    assert len(out) <= limit + 3
    if len(repr(text)) <= limit:
        assert out == repr(text)
    else:
        assert out.endswith("...")


@SETTINGS
@given(size=st.integers(1000, 900_000), where=st.sampled_from(["value", "key"]))
def test_sender_chosen_option_text_is_cut(size: int, where: str) -> None:
    sent = fedpack.get_packer("scaffold").pack_parameters([np.ones(1)], [np.ones(1)])
    options = {"size_of_model_params": "z" * size} if where == "value" else {"z" * size: 1}
    with pytest.raises(PackingError, match=r"do not fit packer 'scaffold'") as info:
        fedpack.unpack(with_frame(sent, options=options))
    assert len(str(info.value)) < 1000
    assert "..." in str(info.value)


def test_a_million_character_packer_name_is_refused_by_length() -> None:
    content = {"packer": "x" * 1_100_000, "sections": [["weights", 0]], "options": {}, "meta": {}}
    with pytest.raises(PackingError, match=r"budget max_frame_bytes"):
        fedpack.unpack([json_frame(content)])
    for size in (1_000_000, 1000):
        content["packer"] = "x" * size
        with pytest.raises(
            PackingError, match=rf"at most 128 characters .*found {size} characters"
        ) as info:
            fedpack.unpack([json_frame(content)])
        assert len(str(info.value)) < 300


def test_sixty_thousand_sections_are_refused_by_count() -> None:
    sections = [["weights", 0]] + [[f"s{i}", 0] for i in range(60000)]
    content = {"packer": "scaffold", "sections": sections, "options": {}, "meta": {}}
    with pytest.raises(PackingError, match=r"at most 64 sections .*found 60001") as info:
        fedpack.unpack([json_frame(content)])
    assert len(str(info.value)) < 300


# -- 7. looser gaps ----------------------------------------------------------------------------

_KEY = st.text("abc", min_size=1, max_size=3)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("xy", max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3),
    max_leaves=8,
)


@SETTINGS
@given(options=st.dictionaries(_KEY, _JSON, min_size=1, max_size=4), data=st.data())
def test_duplicate_keys_anywhere_in_the_frame_are_refused(
    options: dict[str, Any], data: Any
) -> None:
    body = json.dumps(
        {
            "packer": "clipping_bit",
            "sections": [["weights", 1], ["clipping_bit", 1]],
            "options": options,
            "meta": {},
        },
        separators=(",", ":"),
    )
    key = data.draw(st.sampled_from(sorted(options)))
    encoded = json.dumps(key)
    start = body.index('"options":{') + len('"options":{')
    doubled = body[:start] + f"{encoded}:0," + body[start:]
    packed = [np.ones(1), np.array(0.5), raw_frame(doubled.encode())]
    with pytest.raises(PackingError, match=f"duplicate key {re.escape(repr(key))}"):
        fedpack.unpack(packed)


@SETTINGS
@given(
    dtype=st.sampled_from(["<U3", "|S2", "<M8[D]", "<m8[s]", "|V4", "bool", "int16", "complex64"]),
    framed=st.booleans(),
)
def test_scaffold_control_variates_must_be_numeric(dtype: str, framed: bool) -> None:
    cv = np.zeros(2, dtype=dtype)
    packer = fedpack.get_packer("scaffold", framed=framed, size_of_model_params=1)
    if np.dtype(dtype).kind in "biufc":
        packer.unpack_parameters(packer.pack_parameters([np.ones(1)], [cv]))
        return
    with pytest.raises(PackingError, match=r"additional_parameters\[0\]\): expected a bool"):
        packer.pack_parameters([np.ones(1)], [cv])
    sent = packer.pack_parameters([np.ones(1)], [np.ones(2)])
    sent[1] = cv
    with pytest.raises(PackingError, match=r"control variate \(array 1, control_variates\[0\]\)"):
        packer.unpack_parameters(sent)


@SETTINGS
@given(codes=st.lists(st.integers(-127, 127), min_size=1, max_size=50))
def test_int8_scale_zero_needs_zero_codes(codes: list[int]) -> None:
    packer = fedpack.get_packer("int8")
    sent = packer.pack_parameters([np.zeros(len(codes), np.float32)], [])
    sent[0] = np.array(codes, dtype=np.int8)
    if any(codes):
        with pytest.raises(PackingError, match=r"expected all-zero codes for scale 0"):
            packer.unpack_parameters(sent)
    else:
        (weights,), _ = packer.unpack_parameters(sent)
        assert not weights.any()
