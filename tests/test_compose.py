"""Composition: several registered packers in one payload ('a+b', fedpack.compose)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack
from fedpack import Encoded, PackerRegistry, PackingError, Sections, UnknownPackerError
from fedpack.checks import array_list
from fedpack.frame import Frame, encode_frame, read_frame
from fedpack.testing import example_factories, run_checks


class ScaffoldLike(fedpack.ParameterPacker[fedpack.NDArrays]):
    """Weights + control variates, split by size_of_model_params without a frame (as FL4Health)."""

    name: ClassVar[str] = "scaffold_like"

    def __init__(self, *, framed: bool = True, size_of_model_params: int | None = None) -> None:
        super().__init__(framed=framed)
        self.size = size_of_model_params

    def encode(self, model_weights: fedpack.NDArrays, additional_parameters: Any) -> Encoded:
        cv = array_list(additional_parameters, what="scaffold_like: control variates")
        return Encoded([("weights", model_weights), ("control_variates", cv)])

    def decode(self, sections: Sections, meta: Mapping[str, Any]) -> tuple[Any, Any]:
        if self.size is not None and len(sections["weights"]) != self.size:
            raise PackingError(f"scaffold_like: expected {self.size} weights")
        return sections["weights"], sections["control_variates"]

    def split_unframed(self, packed: fedpack.NDArrays) -> Sections:
        if self.size is None or self.size > len(packed):
            raise PackingError("scaffold_like: size_of_model_params is needed without a frame")
        rest = len(packed) - self.size
        return Sections.split(packed, [("weights", self.size), ("control_variates", rest)])

    def frame_options(self) -> dict[str, Any]:
        return {} if self.size is None else {"size_of_model_params": self.size}

    @classmethod
    def example_extras(cls, weights: fedpack.NDArrays) -> list[Any]:
        return [[], [np.ones(3, np.float32), np.zeros((2, 2))]]

    @classmethod
    def example_options(cls, weights: fedpack.NDArrays) -> dict[str, Any]:
        return {"size_of_model_params": len(weights)}


class Negate(fedpack.ParameterPacker[None]):
    """Transforms the weights (sends -w)."""

    name: ClassVar[str] = "negate"
    transforms_weights: ClassVar[bool] = True

    def encode(self, model_weights: fedpack.NDArrays, additional_parameters: None) -> Encoded:
        return Encoded([("weights", [np.asarray(-w) for w in model_weights])])

    def decode(self, sections: Sections, meta: Mapping[str, Any]) -> tuple[Any, None]:
        return [np.asarray(-w) for w in sections["weights"]], None

    def split_unframed(self, packed: fedpack.NDArrays) -> Sections:
        return Sections.split(packed, [("weights", len(packed))])


class Negate2(Negate):
    name: ClassVar[str] = "negate2"


class Sneaky(Negate):
    """Changes the weights without declaring it."""

    name: ClassVar[str] = "sneaky"
    transforms_weights: ClassVar[bool] = False


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> PackerRegistry:
    fresh = PackerRegistry()
    for cls in (ScaffoldLike, Negate, Negate2, Sneaky):
        fresh.register(cls)
    monkeypatch.setattr(fedpack._api, "_default", fresh)
    return fresh


@pytest.fixture(params=["scaffold_like", "scaffold"])
def scaffold(request: pytest.FixtureRequest, registry: PackerRegistry) -> str:
    """The test's scaffold-like packer, and the real scaffold plugin when it is installed."""
    if request.param == "scaffold" and importlib.util.find_spec("fedpack_scaffold") is None:
        pytest.skip("fedpack-scaffold is not installed")
    return str(request.param)


def weights() -> fedpack.NDArrays:
    return [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(4), np.array(3, dtype=np.int64)]


def test_round_trip_framed_weights_carried_once(scaffold: str) -> None:
    w, cv = weights(), [np.full(3, 0.5), np.zeros((2, 2))]
    packer = fedpack.get_packer(f"{scaffold}+clipping_bit")
    packed = packer.pack_parameters(w, (cv, 1.0))
    assert len(packed) == len(w) + len(cv) + 1 + 1
    assert all(a is b for a, b in zip(packed[: len(w + cv)], w + cv, strict=True))
    got_w, (got_cv, bit) = packer.unpack_parameters(packed)
    assert all(a is b for a, b in zip(got_w, w, strict=True))
    assert all(a is b for a, b in zip(got_cv, cv, strict=True))
    assert bit == 1.0
    assert isinstance(bit, float)


def test_the_frame_records_the_parts(scaffold: str) -> None:
    packer = fedpack.compose(scaffold, "clipping_bit")
    frame = read_frame(packer.pack_parameters(weights(), ([np.ones(2)], 0.0)))
    assert frame.packer == "compose"
    cv_section = f"{scaffold}__control_variates"
    assert frame.sections == (("weights", 3), (cv_section, 1), ("clipping_bit", 1))
    assert frame.options == {
        "parts": [{"packer": scaffold, "options": {}}, {"packer": "clipping_bit", "options": {}}]
    }
    parts = frame.meta["parts"]
    assert isinstance(parts, list)
    assert [p["packer"] for p in parts] == [scaffold, "clipping_bit"]  # type: ignore[index]
    assert parts[1] == {"packer": "clipping_bit", "sections": [["clipping_bit", 1]], "meta": {}}


def test_fedpack_unpack_names_the_composition(scaffold: str) -> None:
    packed = fedpack.get_packer(f"{scaffold}+clipping_bit").pack_parameters(weights(), ([], 0.5))
    name, w, (cv, bit) = fedpack.unpack(packed)
    assert name == f"{scaffold}+clipping_bit"
    assert (cv, bit) == ([], 0.5)
    assert len(w) == 3


def test_round_trip_without_a_frame(scaffold: str) -> None:
    w, cv = weights(), [np.full(3, 0.5)]
    packer = fedpack.get_packer(
        f"{scaffold}+clipping_bit", framed=False, **{scaffold: {"size_of_model_params": 3}}
    )
    packed = packer.pack_parameters(w, (cv, 2.0))
    assert len(packed) == 5
    got_w, (got_cv, bit) = packer.unpack_parameters(packed)
    assert [a is b for a, b in zip(got_w + got_cv, w + cv, strict=True)] == [True] * 4
    assert bit == 2.0
    assert repr(packer) == (
        f"compose('{scaffold}+clipping_bit', {scaffold}={{'size_of_model_params': 3}}, "
        "framed=False)"
    )


@pytest.mark.parametrize(
    ("receiver", "message"),
    [
        (
            "clipping_bit+{s}",
            r"expected a payload of composition 'clipping_bit\+{s}', found one of",
        ),
        ("{s}", "expected a payload of packer '{s}', found one packed by 'compose'"),
        ("clipping_bit", "expected a payload of packer 'clipping_bit', found one packed by"),
        ("{s}+negate", r"expected a payload of composition '{s}\+negate'"),
    ],
)
def test_the_wrong_composition_is_rejected(scaffold: str, receiver: str, message: str) -> None:
    packed = fedpack.get_packer(f"{scaffold}+clipping_bit").pack_parameters(weights(), ([], 1.0))
    with pytest.raises(PackingError, match=message.format(s=scaffold)):
        fedpack.get_packer(receiver.format(s=scaffold)).unpack_parameters(packed)


def test_a_transforming_part_provides_the_weights(registry: PackerRegistry) -> None:
    w = weights()
    for name in ("negate+clipping_bit", "clipping_bit+negate"):
        packer = fedpack.get_packer(name)
        assert packer.transforms_weights
        packed = packer.pack_parameters(w, (None, 1.0) if name[0] == "n" else (1.0, None))
        np.testing.assert_array_equal(packed[0], -w[0])
        got, _ = packer.unpack_parameters(packed)
        np.testing.assert_array_equal(got[1], w[1])
        unframed = fedpack.get_packer(name, framed=False)
        got, _ = unframed.unpack_parameters(unframed.pack_parameters(w, packer_extra(name)))
        np.testing.assert_array_equal(got[0], w[0])


def packer_extra(name: str) -> tuple[Any, ...]:
    return (None, 1.0) if name.startswith("negate") else (1.0, None)


def test_conformance_of_compositions(registry: PackerRegistry) -> None:
    for name in ("scaffold_like+clipping_bit", "clipping_bit+negate"):
        results = run_checks(name)
        assert not [r for r in results if r.failed], name
    results = {r.check: r for r in run_checks("scaffold_like+clipping_bit")}
    assert results["metadata"].reason == "a composition has no distribution of its own"
    assert results["no_copies"].passed
    # the class of every composition is ComposedPacker: the kit needs the composition's name
    cls = fedpack.get_packer_class("scaffold_like+clipping_bit")
    assert cls is fedpack.ComposedPacker
    assert [r.reason for r in run_checks(cls) if r.failed] == [
        "TypeError: the generic 'compose' class has no parts; check 'a+b' instead"
    ]


def test_conformance_with_int8(registry: PackerRegistry) -> None:
    pytest.importorskip("fedpack_int8")
    for name in ("int8+clipping_bit", "scaffold_like+int8+clipping_bit"):
        assert not [r for r in run_checks(name) if r.failed], name
    assert fedpack.get_packer("int8+clipping_bit").lossy_tolerance == 0.005


def test_example_extras_cycle_the_shorter_lists(registry: PackerRegistry) -> None:
    def factories(name: str) -> Any:
        return example_factories(registry, name, fedpack.get_packer_class(name))

    extras_of, options_of = factories("scaffold_like+clipping_bit")
    extras = extras_of([])
    assert [bit for _, bit in extras] == [0.0, 1.0, -2.5]
    assert [len(cv) for cv, _ in extras] == [0, 2, 0]
    assert options_of([np.ones(1)]) == {"scaffold_like": {"size_of_model_params": 1}}
    assert factories("negate+clipping_bit")[0]([]) == []
    assert factories("compose")[0]([]) == []
    assert factories("compose")[1]([]) == {}


def test_compositions_are_built_from_part_instances(registry: PackerRegistry) -> None:
    assert fedpack.get_packer_class("Scaffold-Like+Clipping-Bit") is fedpack.ComposedPacker
    packer = fedpack.get_packer("Scaffold-Like+Clipping-Bit")
    assert packer.composition == "scaffold_like+clipping_bit"
    assert [type(part).__name__ for part in packer.parts] == ["ScaffoldLike", "ClippingBitPacker"]
    # the same composition from instances the caller built
    parts = [ScaffoldLike(size_of_model_params=3), fedpack.get_packer("clipping_bit")]
    composed = fedpack.compose(*parts)
    assert composed.parts == tuple(parts)
    assert repr(composed) == (
        "compose('scaffold_like+clipping_bit', scaffold_like={'size_of_model_params': 3}, "
        "framed=True)"
    )
    w = weights()
    packed = composed.pack_parameters(w, ([np.ones(2)], 1.0))
    assert fedpack.unpack(packed)[0] == "scaffold_like+clipping_bit"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        hnp.arrays(
            dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
            shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
        ),
        max_size=5,
    ),
    st.lists(hnp.arrays(np.float32, st.integers(0, 3)), max_size=3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
def test_round_trip_property(
    w: fedpack.NDArrays, cv: fedpack.NDArrays, bit: float, framed: bool
) -> None:
    registry = PackerRegistry()
    registry.register(ScaffoldLike)
    opts = {} if framed else {"scaffold_like": {"size_of_model_params": len(w)}}
    packer = fedpack.compose(
        "scaffold_like", "clipping_bit", registry=registry, framed=framed, **opts
    )
    got_w, (got_cv, got_bit) = packer.unpack_parameters(packer.pack_parameters(w, (cv, bit)))
    assert [a is b for a, b in zip(got_w + got_cv, w + cv, strict=True)] == [True] * (
        len(w) + len(cv)
    )
    assert got_bit == float(bit)


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("clipping_bit+", "expected two or more packer names joined by"),
        ("clipping_bit+clipping_bit", "expected each packer at most once"),
        ("clipping_bit+compose", "compose cannot be a part"),
        ("negate+negate2", "at most one part may transform the weights, found negate, negate2"),
    ],
)
def test_bad_compositions(registry: PackerRegistry, name: str, message: str) -> None:
    with pytest.raises(UnknownPackerError, match=message):
        fedpack.get_packer_class(name)


def test_unknown_part(registry: PackerRegistry) -> None:
    with pytest.raises(UnknownPackerError, match=r"unknown packer 'scafold'\. Did you mean"):
        fedpack.get_packer("scafold+clipping_bit")


def test_compose_needs_two_names() -> None:
    with pytest.raises(TypeError, match="expected two or more packer names"):
        fedpack.compose("clipping_bit")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"colour": {}}, TypeError, r"unexpected option\(s\) colour; options of a part go"),
        ({"clipping_bit": 3}, TypeError, "options of part 'clipping_bit' must be a dict"),
        ({"clipping_bit": {"framed": False}}, TypeError, "set framed= on the composition only"),
        (
            {"parts": [], "clipping_bit": {}},
            TypeError,
            "give either parts= or per-part options, not both",
        ),
        (
            {"parts": [{"packer": "clipping_bit", "options": {}}, {"packer": "x", "options": {}}]},
            ValueError,
            r"expected parts scaffold_like\+clipping_bit, found clipping_bit\+x",
        ),
    ],
)
def test_bad_options(
    registry: PackerRegistry, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        fedpack.get_packer("scaffold_like+clipping_bit", **options)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (None, r"expected parts=\[...\] or a composition such as 'a\+b'"),
        ("ab", "parts: expected a list, found str"),
        ([{"packer": "clipping_bit"}], "parts: expected {'packer': str, 'options': dict}"),
    ],
)
def test_the_generic_name(registry: PackerRegistry, parts: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        fedpack.get_packer("compose", parts=parts)


@pytest.mark.parametrize(
    ("parts", "framed", "message"),
    [
        ("ab", True, "compose: parts: expected packer instances, found 'ab'"),
        ([Negate(), "clipping_bit"], True, "compose: parts: expected packer instances"),
        ([Negate()], True, "expected two or more packer names joined by"),
        ([Negate(), Negate2()], True, "at most one part may transform the weights"),
        ([Negate(), Negate(framed=False)], True, "expected each packer at most once"),
        ([Negate(), ScaffoldLike()], False, "part 'negate' has framed=True, the composition"),
    ],
)
def test_the_class_from_instances(
    registry: PackerRegistry, parts: Any, framed: bool, message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        fedpack.ComposedPacker(parts, framed=framed)


def test_nested_composition_is_refused(registry: PackerRegistry) -> None:
    inner = fedpack.get_packer_class("negate+clipping_bit")
    registry.register(type("Nested", (inner,), {"name": "nested"}))
    with pytest.raises(UnknownPackerError, match="part 'nested' is itself a composition"):
        fedpack.get_packer_class("nested+scaffold_like")
    with pytest.raises(fedpack.PackerConflictError, match="'compose' is reserved"):
        registry.register(type("Named", (Negate,), {"name": "compose"}))


def test_bad_extra(registry: PackerRegistry) -> None:
    packer = fedpack.get_packer("scaffold_like+clipping_bit")
    with pytest.raises(PackingError, match=r"expected a tuple of 2 extras \(scaffold_like, "):
        packer.pack_parameters(weights(), ([],))
    with pytest.raises(PackingError, match=r"found float$"):
        packer.pack_parameters(weights(), 1.0)


def test_a_part_that_changes_weights_must_declare_it(registry: PackerRegistry) -> None:
    with pytest.raises(PackingError, match="part 'sneaky' changed the weights section but does"):
        fedpack.get_packer("sneaky+clipping_bit").pack_parameters(weights(), (None, 1.0))


def tampered(packed: fedpack.NDArrays, **changes: Any) -> fedpack.NDArrays:
    frame = read_frame(packed)
    fields = {"packer": frame.packer, "sections": frame.sections, "options": frame.options}
    fields["meta"] = frame.meta
    fields.update(changes)
    return [*packed[:-1], encode_frame(Frame(**fields))]


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({}, r"expected the frame meta to record the parts as \[{packer, sections, meta}"),
        ({"parts": "x"}, "expected the frame meta to record the parts"),
        ({"parts": [1, 2]}, "expected the frame meta to record the parts"),
        (
            {
                "parts": [
                    {"packer": "scaffold_like", "sections": "x", "meta": {}},
                    {"packer": "clipping_bit", "sections": [], "meta": {}},
                ]
            },
            "part 'scaffold_like': expected sections as a list and meta as an object",
        ),
        (
            {
                "parts": [
                    {"packer": "scaffold_like", "sections": [["control_variates"]], "meta": {}},
                    {"packer": "clipping_bit", "sections": [], "meta": {}},
                ]
            },
            r"part 'scaffold_like': expected \[name, count\], found \['control_variates'\]",
        ),
        (
            {
                "parts": [
                    {"packer": "scaffold_like", "sections": [["control_variates", 2]], "meta": {}},
                    {"packer": "clipping_bit", "sections": [["clipping_bit", 1]], "meta": {}},
                ]
            },
            "records section 'control_variates' with 2 arrays, the frame has 1",
        ),
        (
            {
                "parts": [
                    {"packer": "scaffold_like", "sections": [], "meta": {}},
                    {"packer": "clipping_bit", "sections": [["clipping_bit", 1]], "meta": {}},
                ]
            },
            r"sections \['scaffold_like__control_variates'\] belong to no part",
        ),
    ],
)
def test_tampered_meta(registry: PackerRegistry, meta: dict[str, Any], message: str) -> None:
    packer = fedpack.get_packer("scaffold_like+clipping_bit")
    packed = packer.pack_parameters(weights(), ([np.ones(2)], 1.0))
    with pytest.raises(PackingError, match=message):
        packer.unpack_parameters(tampered(packed, meta=meta))


def test_tampered_options_in_fedpack_unpack(registry: PackerRegistry) -> None:
    packed = fedpack.get_packer("scaffold_like+clipping_bit").pack_parameters(weights(), ([], 1.0))
    with pytest.raises(PackingError, match=r"frame options .* do not fit packer 'compose'"):
        fedpack.unpack(tampered(packed, options={"parts": "nope"}))


def test_encode_must_return_the_weights_first() -> None:
    with pytest.raises(PackingError, match=r"encode\(\) must return the 'weights' section first"):
        Encoded([("control_variates", [])])
    with pytest.raises(PackingError, match=r"section first, found \[\]"):
        Encoded([])
