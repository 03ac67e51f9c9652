"""fedpack_fl4health: FL4Health 0.4.2's parameter_packer module, on fedpack's packers."""

from __future__ import annotations

import inspect
import runpy
from pathlib import Path
from typing import Any

import fedpack_fl4health as dropin
import fl4health_reference as reference
import numpy as np
import pytest
from fedpack_adaptive_constraint import AdaptiveConstraintPacker
from fedpack_clipping_bit import ClippingBitPacker
from fedpack_layer_names import LayerNamesPacker
from fedpack_scaffold import ScaffoldPacker
from fedpack_sparse_coo import SparseCooPacker
from hypothesis import given, settings
from hypothesis import strategies as st
from packer_cases import extras, same_array, same_arrays, same_extra, weight_lists

import fedpack
from fedpack import PackingError
from fedpack.frame import is_frame

ROOT = Path(__file__).resolve().parents[2]

CLASSES = (
    "ParameterPacker",
    "ParameterPackerAdaptiveConstraint",
    "ParameterPackerWithClippingBit",
    "ParameterPackerWithControlVariates",
    "ParameterPackerWithLayerNames",
    "SparseCooParameterPacker",
)
# drop-in class -> (registry name, the built-in class the registry serves)
REGISTRY = {
    "ParameterPackerWithControlVariates": ("scaffold", ScaffoldPacker),
    "ParameterPackerWithClippingBit": ("clipping_bit", ClippingBitPacker),
    "ParameterPackerAdaptiveConstraint": ("adaptive_constraint", AdaptiveConstraintPacker),
    "ParameterPackerWithLayerNames": ("layer_names", LayerNamesPacker),
    "SparseCooParameterPacker": ("sparse_coo", SparseCooPacker),
}
W = [np.ones((3, 3), np.float32), np.arange(4, dtype=np.int64), np.array(7, np.int64)]


def make(cls_name: str, weights: list[Any], **options: Any) -> Any:
    cls = getattr(dropin, cls_name)
    if cls_name == "ParameterPackerWithControlVariates":
        return cls(len(weights), **options)
    return cls(**options)


def reference_of(cls_name: str, weights: list[Any]) -> Any:
    cls = getattr(reference, cls_name)
    if cls_name == "ParameterPackerWithControlVariates":
        return cls(len(weights))
    return cls()


def sparse_extra() -> tuple[list[Any], tuple[list[Any], list[Any], list[str]]]:
    dense = [np.array([[0, 1.5], [2.5, 0]], np.float32), np.array([0, 0, 3], np.int64)]
    triples = [dropin.SparseCooParameterPacker.extract_coo_info_from_dense(d) for d in dense]
    values = [t[0] for t in triples]
    return values, ([t[1] for t in triples], [t[2] for t in triples], ["a.weight", "b.bias"])


def example(cls_name: str) -> tuple[list[Any], Any]:
    """(weights, extra) of each concrete class."""
    if cls_name == "ParameterPackerWithControlVariates":
        return W, [np.zeros((3, 3), np.float32), np.ones(2)]
    if cls_name in ("ParameterPackerWithClippingBit", "ParameterPackerAdaptiveConstraint"):
        return W, 0.25
    if cls_name == "ParameterPackerWithLayerNames":
        return W, ["fc.weight", "fc.bias", "bn.num_batches_tracked"]
    return sparse_extra()


# -- names, relations with the registry, signatures ---------------------------------------------


def test_exports_fl4healths_names() -> None:
    for name in CLASSES:
        cls = getattr(dropin, name)
        assert cls.__name__ == name
        assert cls.__module__ == "fedpack_fl4health"
        assert cls.__doc__
    assert set(CLASSES) <= set(dropin.__all__)


@pytest.mark.parametrize("cls_name", list(REGISTRY))
def test_each_class_is_the_packer_the_registry_serves(cls_name: str) -> None:
    name, builtin = REGISTRY[cls_name]
    cls = getattr(dropin, cls_name)
    assert fedpack.get_packer_class(name) is builtin
    assert issubclass(cls, builtin)
    assert issubclass(cls, dropin.ParameterPacker)
    assert cls.name == name
    served = fedpack.get_packer(name)
    assert isinstance(served, dropin.ParameterPacker)  # any fedpack packer is one
    assert isinstance(make(cls_name, W), builtin)


def test_parameter_packer_is_abstract_and_generic_in_t() -> None:
    with pytest.raises(TypeError, match="abstract"):
        dropin.ParameterPacker()  # type: ignore[abstract]
    assert dropin.ParameterPacker.__abstractmethods__ == {"pack_parameters", "unpack_parameters"}
    assert dropin.ParameterPacker.__parameters__ == (dropin.T,)
    assert dropin.ParameterPacker[float] is not None
    # the base fedpack class and any registered packer are virtual subclasses
    assert issubclass(fedpack.ParameterPacker, dropin.ParameterPacker)
    assert isinstance(fedpack.compose("scaffold", "clipping_bit"), dropin.ParameterPacker)


def test_user_subclass_written_fl4health_style_works() -> None:
    class WithRound(dropin.ParameterPacker[int]):
        def pack_parameters(self, model_weights: list[Any], additional_parameters: int) -> Any:
            return [*model_weights, np.array(additional_parameters)]

        def unpack_parameters(self, packed_parameters: list[Any]) -> Any:
            return packed_parameters[:-1], int(packed_parameters[-1])

    packer = WithRound()
    weights, server_round = packer.unpack_parameters(packer.pack_parameters(W, 3))
    assert server_round == 3
    assert all(a is b for a, b in zip(weights, W, strict=True))

    class Incomplete(dropin.ParameterPacker[int]):
        def pack_parameters(self, model_weights: list[Any], additional_parameters: int) -> Any:
            return model_weights

    with pytest.raises(TypeError, match="unpack_parameters"):
        Incomplete()  # type: ignore[abstract]


def _fl4health_parameters(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


SIGNATURES = [
    (cls_name, method)
    for cls_name in CLASSES
    for method in ("class", "pack_parameters", "unpack_parameters", "extract_coo_info_from_dense")
    if method == "class" or hasattr(getattr(reference, cls_name), method)
]


@pytest.mark.parametrize(("cls_name", "method"), SIGNATURES)
def test_signatures_match_fl4health(cls_name: str, method: str) -> None:
    # "class": the constructor's signature, as inspect.signature(cls) gives it
    theirs, ours = getattr(reference, cls_name), getattr(dropin, cls_name)
    if method != "class":
        theirs, ours = getattr(theirs, method), getattr(ours, method)
    expected = _fl4health_parameters(theirs)
    found = _fl4health_parameters(ours)
    # FL4Health's parameters first, same names, kinds and defaults; then only keyword-only
    # fedpack options with defaults (framed=False first)
    assert found[: len(expected)] == expected
    extra = found[len(expected) :]
    assert all(kind is inspect.Parameter.KEYWORD_ONLY for _, kind, _ in extra)
    assert all(default is not inspect.Parameter.empty for _, _, default in extra)
    if method == "class" and cls_name != "ParameterPacker":
        assert extra[0][0] == "framed"
        assert extra[0][2] is False


def test_extract_coo_info_from_dense_is_static() -> None:
    attr = inspect.getattr_static(dropin.SparseCooParameterPacker, "extract_coo_info_from_dense")
    assert isinstance(attr, staticmethod)


# -- layouts: FL4Health's by default, fedpack's frame on request ---------------------------------


@pytest.mark.parametrize("cls_name", list(REGISTRY))
def test_default_is_fl4health_layout_array_for_array(cls_name: str) -> None:
    weights, extra = example(cls_name)
    ours = make(cls_name, weights)
    assert ours.framed is False
    packed = ours.pack_parameters(weights, extra)
    theirs = reference_of(cls_name, weights).pack_parameters(weights, extra)
    assert len(packed) == len(theirs)
    assert all(same_array(a, b) for a, b in zip(packed, theirs, strict=True))
    assert all(a is b for a, b in zip(packed[: len(weights)], weights, strict=True))  # no copies
    # each side reads the other's payload
    got_w, got_extra = ours.unpack_parameters(theirs)
    ref_w, ref_extra = reference_of(cls_name, weights).unpack_parameters(packed)
    assert all(a is b for a, b in zip(got_w, ref_w, strict=True))
    if cls_name == "SparseCooParameterPacker":
        assert got_extra[2] == ref_extra[2] == extra[2]
        assert same_arrays(got_extra[0], ref_extra[0])
    elif cls_name == "ParameterPackerWithControlVariates":
        assert all(a is b for a, b in zip(got_extra, ref_extra, strict=True))
    else:
        assert got_extra == ref_extra == extra


@pytest.mark.parametrize("cls_name", list(REGISTRY))
def test_framed_true_appends_fedpacks_frame(cls_name: str) -> None:
    weights, extra = example(cls_name)
    packer = make(cls_name, weights, framed=True)
    packed = packer.pack_parameters(weights, extra)
    unframed = make(cls_name, weights).pack_parameters(weights, extra)
    assert is_frame(packed[-1])
    assert all(same_array(a, b) for a, b in zip(packed[:-1], unframed, strict=True))
    name, got_w, _ = fedpack.unpack(packed)  # the frame names the registry's packer
    assert name == REGISTRY[cls_name][0]
    assert all(a is b for a, b in zip(got_w, weights, strict=True))
    back_w, _ = packer.unpack_parameters(packed)
    assert all(a is b for a, b in zip(back_w, weights, strict=True))
    # a framed payload given to an unframed drop-in is refused, and the reverse
    with pytest.raises(PackingError, match="framed=False"):
        make(cls_name, weights).unpack_parameters(packed)
    with pytest.raises(PackingError, match="frame"):
        packer.unpack_parameters(unframed)


def test_compact_sparse_encoding_needs_framed() -> None:
    values, extra = sparse_extra()
    packer = dropin.SparseCooParameterPacker(framed=True, encoding="compact")
    back, (_, _shapes, names) = packer.unpack_parameters(packer.pack_parameters(values, extra))
    assert names == extra[2]
    assert same_arrays(back, values)
    with pytest.raises(ValueError, match="encoding='compact' needs framed=True"):
        dropin.SparseCooParameterPacker(encoding="compact")


@pytest.mark.parametrize("cls_name", list(REGISTRY))
def test_real_fl4health_agrees(cls_name: str) -> None:
    """Against FL4Health 0.4.2 itself, where installed (the torch environment)."""
    real = pytest.importorskip(
        "fl4health.parameter_exchange.parameter_packer",
        reason="FL4Health 0.4.2 does not install beside a current stack",
    )
    ours_cls, theirs_cls = getattr(dropin, cls_name), getattr(real, cls_name)
    for method in ("pack_parameters", "unpack_parameters"):
        expected = _fl4health_parameters(getattr(theirs_cls, method))
        assert _fl4health_parameters(getattr(ours_cls, method)) == expected
    weights, extra = example(cls_name)
    theirs = theirs_cls(len(weights)) if "ControlVariates" in cls_name else theirs_cls()
    ours = make(cls_name, weights)
    packed = ours.pack_parameters(weights, extra)
    assert same_arrays(packed, theirs.pack_parameters(weights, extra))
    got_w, _ = ours.unpack_parameters(theirs.pack_parameters(weights, extra))
    their_w, _ = theirs.unpack_parameters(packed)
    assert all(a is b for a, b in zip(got_w, their_w, strict=True))


# -- round trips (hypothesis) -------------------------------------------------------------------

_NAMES = {
    "ParameterPackerWithControlVariates": "scaffold",
    "ParameterPackerWithClippingBit": "clipping_bit",
    "ParameterPackerAdaptiveConstraint": "adaptive_constraint",
    "ParameterPackerWithLayerNames": "layer_names",
}


@pytest.mark.parametrize("cls_name", list(_NAMES))
@settings(max_examples=40, deadline=None)
@given(data=st.data(), weights=weight_lists(), framed=st.booleans())
def test_round_trip(cls_name: str, data: st.DataObject, weights: list[Any], framed: bool) -> None:
    extra = data.draw(extras(_NAMES[cls_name], weights))
    packer = make(cls_name, weights, framed=framed)
    got_w, got_extra = packer.unpack_parameters(packer.pack_parameters(weights, extra))
    assert all(a is b for a, b in zip(got_w, weights, strict=True))
    assert same_extra(_NAMES[cls_name], got_extra, extra)


@settings(max_examples=40, deadline=None)
@given(
    dense=st.lists(st.lists(st.sampled_from([0.0, 1.0, -2.5]), min_size=1, max_size=6), max_size=4),
    framed=st.booleans(),
)
def test_sparse_round_trip(dense: list[list[float]], framed: bool) -> None:
    arrays = [np.array(row, np.float32) for row in dense]
    triples = [dropin.SparseCooParameterPacker.extract_coo_info_from_dense(a) for a in arrays]
    names = [f"t{i}" for i in range(len(arrays))]
    extra = ([t[1] for t in triples], [t[2] for t in triples], names)
    values = [t[0] for t in triples]
    packer = dropin.SparseCooParameterPacker(framed=framed)
    got_values, (indices, shapes, got_names) = packer.unpack_parameters(
        packer.pack_parameters(values, extra)
    )
    assert got_names == names
    for array, v, i, s in zip(arrays, got_values, indices, shapes, strict=True):
        rebuilt = np.zeros(tuple(s), np.float32)
        rebuilt[tuple(i.T)] = v
        assert same_array(rebuilt, array)


def test_fl4health_keyword_names_work() -> None:
    packer = dropin.ParameterPackerAdaptiveConstraint()
    packed = packer.pack_parameters(model_weights=W, extra_adaptive_variable=0.1)
    assert packer.unpack_parameters(packed_parameters=packed)[1] == 0.1
    names = ["a", "b", "c"]
    packed = dropin.ParameterPackerWithLayerNames().pack_parameters(W, weights_names=names)
    assert dropin.ParameterPackerWithLayerNames().unpack_parameters(packed)[1] == names
    values, extra = sparse_extra()
    packed = dropin.SparseCooParameterPacker().pack_parameters(
        model_parameters=values, additional_parameters=extra
    )
    assert dropin.SparseCooParameterPacker().unpack_parameters(packed)[1][2] == extra[2]


# -- validation: fedpack's checks stay on, as PackingError --------------------------------------


def test_validation_errors_are_packing_errors() -> None:
    scaffold = dropin.ParameterPackerWithControlVariates(3)
    with pytest.raises(PackingError, match=r"size_of_model_params=3 arrays .* found 2"):
        scaffold.unpack_parameters(W[:2])
    with pytest.raises(PackingError, match=r"size_of_model_params is 3 but .* holds 2"):
        scaffold.pack_parameters(W[:2], [])
    clipping = dropin.ParameterPackerWithClippingBit()
    with pytest.raises(
        PackingError,
        match="clipping_bit: additional_parameters: expected a finite number, found nan",
    ):
        clipping.pack_parameters(W, float("nan"))
    with pytest.raises(PackingError, match="expected a real number, found str"):
        dropin.ParameterPackerAdaptiveConstraint().pack_parameters(W, "0.1")  # type: ignore[arg-type]
    names = dropin.ParameterPackerWithLayerNames()
    with pytest.raises(PackingError, match="expected 3 names, found 2"):
        names.pack_parameters(W, ["a", "b"])
    with pytest.raises(PackingError, match="one name per weight array, 3 names, found 2"):
        names.unpack_parameters([*W, np.array(["a", "b"])])
    with pytest.raises(PackingError, match=r"expected a 0-d or shape \(1,\) array"):
        clipping.unpack_parameters(W[:2])  # never packed: FL4Health takes W[1] as the bit
    with pytest.raises(PackingError, match=r"expected 3k\+1 arrays .*, found 2"):
        dropin.SparseCooParameterPacker().unpack_parameters(W[:2])
    with pytest.raises(PackingError, match="model_weights: expected a numpy array at index 0"):
        clipping.pack_parameters([[1.0, 2.0]], 1.0)  # type: ignore[list-item]
    assert issubclass(PackingError, ValueError)


def test_constructor_errors() -> None:
    with pytest.raises(TypeError, match="size_of_model_params"):
        dropin.ParameterPackerWithControlVariates("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        dropin.ParameterPackerWithControlVariates(-1)
    with pytest.raises(TypeError, match="framed: expected a bool"):
        dropin.ParameterPackerWithClippingBit(framed=1)  # type: ignore[arg-type]


def test_repr_says_the_layout() -> None:
    assert repr(dropin.ParameterPackerWithControlVariates(2)) == (
        "ParameterPackerWithControlVariates(size_of_model_params=2, framed=False)"
    )
    assert repr(dropin.ParameterPackerWithLayerNames(framed=True)) == (
        "ParameterPackerWithLayerNames(framed=True)"
    )


# -- cost of import, and the typed snippet ------------------------------------------------------


def test_typed_snippet_runs() -> None:
    runpy.run_path(str(ROOT / "tests" / "typecheck" / "fl4health_snippet.py"), run_name="__main__")


def test_extract_from_torch_matches_fl4health() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([[1.0, 0.0], [0.0, -2.0]], requires_grad=False)
    values, indices, shape = dropin.SparseCooParameterPacker.extract_coo_info_from_dense(x)
    expected = (
        x[torch.nonzero(x, as_tuple=True)].numpy(),
        torch.nonzero(x, as_tuple=False).numpy(),
        np.array(list(x.shape)),
    )
    for a, b in zip((values, indices, shape), expected, strict=True):
        assert same_array(a, b)


MISUSE = """\
from fedpack_fl4health import (
    ParameterPacker,
    ParameterPackerWithClippingBit,
    ParameterPackerWithControlVariates,
)

names_packer: ParameterPacker[list[str]] = ParameterPackerWithClippingBit()
scaffold = ParameterPackerWithControlVariates()
bit: str = ParameterPackerWithClippingBit().unpack_parameters([])[1]
"""


def test_mypy_checks_code_typed_against_fl4healths_classes(tmp_path: Path) -> None:
    """The snippet passes mypy --strict; misuse of FL4Health's types is caught (not Any)."""
    api = pytest.importorskip("mypy.api")
    misuse = tmp_path / "misuse.py"
    misuse.write_text(MISUSE)
    snippet = ROOT / "tests" / "typecheck" / "fl4health_snippet.py"
    config = tmp_path / "mypy.ini"  # the project's settings; torch and flwr not analysed
    config.write_text(
        "[mypy]\nstrict = True\npython_version = 3.10\nwarn_unreachable = True\n"
        "[mypy-torch.*,flwr.*]\nfollow_imports = skip\nignore_missing_imports = True\n"
    )
    cache = tmp_path / "cache"
    out, err, _ = api.run(
        ["--config-file", str(config), "--cache-dir", str(cache), str(snippet), str(misuse)]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert not [line for line in errors if "fl4health_snippet" in line], out + err
    assert len(errors) == 3, out + err
    assert "misuse.py:7: error: Incompatible types in assignment" in errors[0]
    assert 'Missing positional argument "size_of_model_params"' in errors[1]
    expected = 'misuse.py:9: error: Incompatible types in assignment (expression has type "float"'
    assert expected in errors[2]
