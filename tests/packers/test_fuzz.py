"""Malformed payloads: every one raises PackingError, and nothing else, for every packer."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from packer_cases import PACKERS, SCALAR_PACKERS, arrays, extras, packer, weight_lists

import fedpack
from fedpack import PackingError
from fedpack.frame import FORMAT_VERSION, MAGIC

HEADER = len(MAGIC) + 1 + 4

#: Mutations that break a payload for the packer's own unpack_parameters and for fedpack.unpack.
BOTH = (
    "truncate",
    "extend",
    "duplicate_frame",
    "reorder",
    "never_packed",
    "flip_frame_byte",
    "truncate_frame",
    "wrong_version",
    "garbage_body",
    "json_not_a_frame",
    "frame_field",
    "frame_dtype",
    "extra_dtype",
    "object_array",
)
#: Mutations that only the packer's own unpack_parameters can reject (fedpack.unpack follows the
#: frame, so another packer's payload or frame options are simply used).
OWN_ONLY = ("other_packer",)
UNPACK_ONLY = ("frame_options",)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def _frame_content(frame: np.ndarray[Any, Any]) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(frame[HEADER:].tobytes())
    return content


def _with_body(body: bytes, version: int = FORMAT_VERSION) -> np.ndarray[Any, Any]:
    data = MAGIC + bytes([version]) + zlib.crc32(body).to_bytes(4, "little") + body
    return np.frombuffer(data, dtype=np.uint8)


def _with_content(content: object) -> np.ndarray[Any, Any]:
    return _with_body(json.dumps(content).encode())


FIELD_MUTATIONS = (
    "drop_key",
    "add_key",
    "packer_type",
    "packer_name",
    "packer_swap",
    "count",
    "rename_section",
    "drop_section",
    "add_section",
    "swap_sections",
    "section_shape",
    "options_type",
    "meta_type",
)


def _break_field(
    content: dict[str, Any], draw: st.DrawFn, how: str | None = None
) -> dict[str, Any]:
    """A frame JSON that is well-formed but wrong for this payload, always."""
    content = json.loads(json.dumps(content))
    sections = content["sections"]
    if how is None:
        how = draw(st.sampled_from(FIELD_MUTATIONS), label="field mutation")
    if how == "drop_key":
        del content[draw(st.sampled_from(sorted(content)))]
    elif how == "add_key":
        content[draw(st.text(max_size=5).filter(lambda k: k not in content))] = 1
    elif how == "packer_type":
        content["packer"] = draw(json_values.filter(lambda v: not isinstance(v, str)))
    elif how == "packer_name":
        content["packer"] = draw(st.sampled_from(["", "Scaffold", "clipping-bit", "a b", "é"]))
    elif how == "packer_swap":
        content["packer"] = draw(st.sampled_from([p for p in PACKERS if p != content["packer"]]))
    elif how == "count":
        index = draw(st.integers(0, len(sections) - 1))
        sections[index][1] += draw(st.integers(-5, 5).filter(bool))
    elif how == "rename_section":
        index = draw(st.integers(0, len(sections) - 1))
        sections[index][0] = draw(st.sampled_from(["weight", "extra", "names", "", "W"]))
    elif how == "drop_section":
        sections.pop(draw(st.integers(0, len(sections) - 1)))
    elif how == "add_section":
        sections.insert(draw(st.integers(0, len(sections))), ["extra", 0])
    elif how == "swap_sections":
        sections.reverse()
    elif how == "section_shape":
        index = draw(st.integers(0, len(sections) - 1))
        sections[index] = draw(
            st.sampled_from([[sections[index][0]], [1, "weights"], [sections[index][0], 1.0]])
        )
    elif how == "options_type":
        content["options"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    else:
        content["meta"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    return content


def _mutate(kind: str, name: str, packed: list[Any], draw: st.DrawFn) -> list[Any]:
    packed = list(packed)
    frame = packed[-1]
    if kind == "truncate":
        del packed[draw(st.integers(0, len(packed) - 1))]
    elif kind == "extend":
        packed.insert(draw(st.integers(0, len(packed))), draw(arrays()))
    elif kind == "duplicate_frame":
        packed.insert(draw(st.integers(0, len(packed) - 1)), frame)
    elif kind == "reorder":
        assume(len(packed) >= 2)
        shift = draw(st.integers(1, len(packed) - 1))
        packed = packed[shift:] + packed[:shift]
    elif kind == "never_packed":
        packed = draw(weight_lists())
    elif kind == "other_packer":
        other = draw(st.sampled_from([p for p in PACKERS if p != name]))
        weights = packed[: _frame_content(frame)["sections"][0][1]]
        packed = packer(other).pack_parameters(weights, draw(extras(other, weights)))
    elif kind == "flip_frame_byte":
        data = bytearray(frame.tobytes())
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        packed[-1] = np.frombuffer(bytes(data), dtype=np.uint8)
    elif kind == "truncate_frame":
        packed[-1] = frame[: draw(st.integers(0, frame.size - 1))]
    elif kind == "wrong_version":
        version = draw(st.integers(0, 255).filter(lambda v: v != FORMAT_VERSION))
        packed[-1] = _with_body(frame[HEADER:].tobytes(), version)
    elif kind == "garbage_body":
        packed[-1] = _with_body(draw(st.binary(max_size=40)))
    elif kind == "json_not_a_frame":
        value = draw(json_values)
        assume(not (isinstance(value, dict) and set(value) == set(_frame_content(frame))))
        packed[-1] = _with_content(value)
    elif kind == "frame_field":
        packed[-1] = _with_content(_break_field(_frame_content(frame), draw))
    elif kind == "frame_options":
        content = _frame_content(frame)
        content["options"] = {draw(st.sampled_from(["bogus", "mode", "n"])): draw(json_values)}
        packed[-1] = _with_content(content)
    elif kind == "frame_dtype":
        packed[-1] = draw(
            st.sampled_from(
                [
                    frame.view(np.int8),
                    frame.astype(np.uint16),
                    frame.astype(np.float64),
                    frame.reshape(1, -1),
                    frame.astype(">u2").view(np.uint8)[1::2].copy()[:0],
                ]
            )
        )
    elif kind == "extra_dtype":
        if name == "scaffold":  # control variates take any numeric dtype: break the frame's
            packed[-1] = frame.astype(np.int64)
        elif name in SCALAR_PACKERS:
            packed[-2] = draw(st.sampled_from([np.array("1"), np.array(1j), np.array(b"1")]))
        else:
            packed[-2] = draw(
                st.sampled_from([np.array([1.5]), np.array([1, 2]), np.array([b"a"]), np.eye(2)])
            )
    elif kind == "object_array":
        index = draw(st.integers(0, len(packed) - 1))
        packed[index] = draw(st.sampled_from([np.array(None), np.array([1, "a"], dtype=object)]))
    else:
        raise AssertionError(kind)
    return packed


@st.composite
def _payload(draw: st.DrawFn, name: str) -> list[Any]:
    weights = draw(weight_lists(max_size=3), label="weights")
    return packer(name).pack_parameters(weights, draw(extras(name, weights), label="extra"))


@pytest.mark.parametrize("name", PACKERS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_malformed_payloads_raise_packing_error(name: str, data: st.DataObject) -> None:
    packed = data.draw(_payload(name), label="payload")
    kind = data.draw(st.sampled_from(BOTH + OWN_ONLY + UNPACK_ONLY), label="mutation")
    bad = _mutate(kind, name, packed, data.draw)
    if kind not in UNPACK_ONLY:
        with pytest.raises(PackingError):
            packer(name).unpack_parameters(bad)
        if name == "scaffold":  # a receiver that knows the size fails the same way
            with pytest.raises(PackingError):
                fedpack.get_packer(name, size_of_model_params=0).unpack_parameters(bad)
    if kind not in OWN_ONLY:
        with pytest.raises(PackingError):
            fedpack.unpack(bad)


@pytest.mark.parametrize("how", FIELD_MUTATIONS)
@pytest.mark.parametrize("name", PACKERS)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_every_frame_field_mutation_is_rejected(name: str, how: str, data: st.DataObject) -> None:
    packed = data.draw(_payload(name), label="payload")
    bad = [*packed[:-1], _with_content(_break_field(_frame_content(packed[-1]), data.draw, how))]
    with pytest.raises(PackingError):
        packer(name).unpack_parameters(bad)
    with pytest.raises(PackingError):
        fedpack.unpack(bad)


@pytest.mark.parametrize("name", PACKERS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_unframed_unpack_raises_only_packing_error(name: str, data: st.DataObject) -> None:
    """FL4Health's layout cannot detect every bad split, but it never fails any other way."""
    payload = data.draw(weight_lists(max_size=4), label="payload")
    if data.draw(st.booleans(), label="object array") and payload:
        payload[data.draw(st.integers(0, len(payload) - 1))] = np.array(None)
    size = data.draw(st.integers(0, 5), label="size_of_model_params")
    options = {"size_of_model_params": size} if name == "scaffold" else {}
    unframed = fedpack.get_packer(name, framed=False, **options)
    with contextlib.suppress(PackingError):
        unframed.unpack_parameters(payload)


def test_unknown_packer_in_a_valid_frame_is_a_lookup_error() -> None:
    """A well-formed frame naming a packer that is not installed says how to get it."""
    packed = packer("clipping_bit").pack_parameters([np.zeros(1)], 1.0)
    content = _frame_content(packed[-1])
    content["packer"] = "not_installed"
    packed[-1] = _with_content(content)
    with pytest.raises(fedpack.UnknownPackerError, match="pip install fedpack-not-installed"):
        fedpack.unpack(packed)


_OPTIMIZED_SCRIPT = textwrap.dedent(
    """
    import json, sys, zlib
    import numpy as np
    import fedpack
    from fedpack import PackingError

    assert sys.flags.optimize == 1 and not __debug__
    bad_cases = 0

    def expect_error(call, payload):
        global bad_cases
        try:
            call(payload)
        except PackingError:
            bad_cases += 1
            return
        raise SystemExit(f"no PackingError for {[a.dtype for a in payload]}")

    rng = np.random.default_rng(0)
    weights = [np.zeros((2, 2)), np.array(3, np.int64), np.ones(1, np.float32)]
    extras = {
        "scaffold": [np.ones(2)],
        "clipping_bit": 1.0,
        "adaptive_constraint": 0.5,
        "layer_names": ["a", "b", "c"],
    }
    for name, extra in extras.items():
        packer = fedpack.get_packer(name)
        packed = packer.pack_parameters(weights, extra)
        frame = packed[-1]
        body = frame[13:].tobytes()
        cases = [
            packed[:-1],
            packed[1:],
            packed + [np.zeros(1)],
            packed[::-1],
            weights,
            packed[:-1] + [frame[:10]],
            packed[:-1] + [np.frombuffer(b"FEDPACK\\x00\\x07" + frame[9:].tobytes(), np.uint8)],
            packed[:-1] + [frame.astype(np.int16)],
            [np.array(None)] + packed[1:],
        ]
        for _ in range(20):
            data = bytearray(frame.tobytes())
            data[int(rng.integers(len(data)))] ^= int(rng.integers(1, 256))
            cases.append(packed[:-1] + [np.frombuffer(bytes(data), np.uint8)])
        content = json.loads(body)
        content["sections"][0][1] += 1
        new = json.dumps(content).encode()
        header = b"FEDPACK\\x00\\x01" + zlib.crc32(new).to_bytes(4, "little")
        cases.append(packed[:-1] + [np.frombuffer(header + new, np.uint8)])
        for case in cases:
            expect_error(packer.unpack_parameters, case)
            expect_error(fedpack.unpack, case)
    never_packed = [np.zeros(3), np.array(12, np.int64)]
    expect_error(fedpack.get_packer("clipping_bit").unpack_parameters, never_packed)
    expect_error(fedpack.get_packer("adaptive_constraint").unpack_parameters, never_packed)
    unframed = fedpack.get_packer("adaptive_constraint", framed=False)
    expect_error(unframed.unpack_parameters, [np.zeros(3), np.array([1.0, 2.0])])
    expect_error(unframed.unpack_parameters, [np.zeros(3), np.array("x")])
    print("ok", bad_cases, *sorted(extras))
    """
)


def test_validation_holds_under_python_O() -> None:
    result = subprocess.run(
        [sys.executable, "-O", "-c", _OPTIMIZED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # 30 malformed payloads per packer, each through its unpack and fedpack.unpack, plus 4;
    # the script has an extra value for every packer of the suite
    assert result.stdout.split() == ["ok", str(len(PACKERS) * 30 * 2 + 4), *sorted(PACKERS)]
