"""In-process registration (register / replace / unregister) and refresh()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from fedpack import (
    Encoded,
    NDArrays,
    PackerConflictError,
    PackerRegistry,
    ParameterPacker,
    PluginLoadError,
    Sections,
    UnknownPackerError,
)

if TYPE_CHECKING:
    from .conftest import FakeSite


class _Base(ParameterPacker[None]):
    def encode(self, model_weights: NDArrays, additional_parameters: None) -> Encoded:
        return Encoded([("weights", model_weights)])

    def decode(self, sections: Sections, meta: Mapping[str, Any]) -> tuple[NDArrays, None]:
        return sections["weights"], None

    def split_unframed(self, packed: NDArrays) -> Sections:
        return Sections.split(packed, [("weights", len(packed))])


class Local(_Base):
    name: ClassVar[str] = "local"


class OtherLocal(_Base):
    name: ClassVar[str] = "local"


class Alpha(_Base):
    name: ClassVar[str] = "alpha"


@pytest.fixture
def registry(site: FakeSite) -> PackerRegistry:
    site.packer_dist("dist-a", "alpha", module="mod_alpha")
    return site.registry()


def test_register_and_lookup(registry: PackerRegistry) -> None:
    assert registry.register(Local) is Local
    assert registry.get_packer_class("LOCAL") is Local
    assert isinstance(registry.get_packer("local"), Local)
    assert registry.names() == ["alpha", "local"]
    row = next(r for r in registry.list_packers() if r.name == "local")
    assert (row.distribution, row.version, row.state) == (None, None, "loaded")
    assert row.entry_point == f"{__name__}:Local"


def test_register_as_decorator(registry: PackerRegistry) -> None:
    @registry.register
    class Deco(_Base):
        name: ClassVar[str] = "deco"

    assert registry.get_packer_class("deco") is Deco


def test_register_same_class_twice_is_fine(registry: PackerRegistry) -> None:
    registry.register(Local)
    registry.register(Local)
    assert registry.get_packer_class("local") is Local


def test_register_conflicts_with_in_process_class(registry: PackerRegistry) -> None:
    registry.register(Local)
    with pytest.raises(
        PackerConflictError,
        match=rf"packer 'local' is already registered in-process by {__name__}:Local; pass "
        "replace=True",
    ):
        registry.register(OtherLocal)
    assert registry.get_packer_class("local") is Local
    registry.register(OtherLocal, replace=True)
    assert registry.get_packer_class("local") is OtherLocal


def test_register_conflicts_with_entry_point(site: FakeSite, registry: PackerRegistry) -> None:
    with pytest.raises(
        PackerConflictError,
        match=r"packer 'alpha' is already provided by dist-a==1\.0; pass replace=True",
    ):
        registry.register(Alpha)
    assert registry.get_packer_class("alpha").__module__ == "mod_alpha"


def test_replace_wins_over_entry_point_and_unregister_restores(
    site: FakeSite, registry: PackerRegistry
) -> None:
    installed = registry.get_packer_class("alpha")  # cached before the replacement
    registry.register(Alpha, replace=True)
    assert registry.get_packer_class("alpha") is Alpha
    rows = {(r.name, r.distribution): r for r in registry.list_packers()}
    assert rows["alpha", None].state == "loaded"
    assert rows["alpha", "dist-a"].state == "blocked"
    assert rows["alpha", "dist-a"].detail == "replaced by an in-process registration"
    registry.unregister("Alpha")
    assert registry.get_packer_class("alpha") is installed


def test_replace_before_first_lookup_never_imports_plugin(
    site: FakeSite, registry: PackerRegistry
) -> None:
    registry.register(Alpha, replace=True)
    assert registry.get_packer_class("alpha") is Alpha
    assert site.count("import", "mod_alpha") == 0


def test_unregister_unknown(registry: PackerRegistry) -> None:
    with pytest.raises(UnknownPackerError, match="no packer 'alpha' is registered in-process"):
        registry.unregister("alpha")  # installed, but not registered in-process


def test_unregister_then_lookup_is_unknown(registry: PackerRegistry) -> None:
    registry.register(Local)
    registry.get_packer_class("local")
    registry.unregister("local")
    with pytest.raises(UnknownPackerError, match="unknown packer 'local'"):
        registry.get_packer_class("local")


class NoName(_Base):
    pass


class LateBadName(_Base):
    name: ClassVar[str] = "fine"


LateBadName.name = "Bad Name"


@pytest.mark.parametrize(
    ("cls", "pattern"),
    [
        (
            int,
            "register\\(\\): expected a subclass of fedpack.ParameterPacker, found <class 'int'>",
        ),
        ("local", "expected a subclass of fedpack.ParameterPacker, found 'local'"),
        (NoName, "NoName does not set a str class attribute 'name'"),
        (LateBadName, r"LateBadName.name must be lower-case \[a-z0-9_\], found 'Bad Name'"),
    ],
)
def test_register_invalid_classes(registry: PackerRegistry, cls: Any, pattern: str) -> None:
    with pytest.raises(TypeError, match=pattern):
        registry.register(cls)
    assert registry.names() == ["alpha"]


def test_bad_name_is_rejected_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"expected a packer name of \[a-z0-9_\]\+, found 'Bad'"):

        class Bad(_Base):
            name: ClassVar[str] = "Bad"


def test_refresh_picks_up_new_distributions(site: FakeSite, registry: PackerRegistry) -> None:
    registry.register(Local)
    assert registry.names() == ["alpha", "local"]
    site.packer_dist("dist-n", "newcomer", module="mod_new")
    with pytest.raises(UnknownPackerError):  # the scan is cached
        registry.get_packer_class("newcomer")
    registry.refresh()
    assert registry.get_packer_class("newcomer").__module__ == "mod_new"
    assert registry.get_packer_class("local") is Local  # in-process registrations are kept


def test_refresh_rereads_environment(
    site: FakeSite, registry: PackerRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert registry.get_packer_class("alpha").name == "alpha"
    monkeypatch.setenv("FEDPACK_DISABLE_PLUGINS", "alpha")
    assert registry.get_packer_class("alpha").name == "alpha"  # not re-read until refresh
    registry.refresh()
    assert registry.disabled == frozenset({"alpha"})
    with pytest.raises(UnknownPackerError, match="blocked"):
        registry.get_packer_class("alpha")
    monkeypatch.setenv("FEDPACK_PLUGIN_AUTOLOAD", "false")
    registry.refresh()
    assert registry.list_packers() == []


def test_refresh_forgets_failures(site: FakeSite) -> None:
    site.module("flaky", "raise ImportError('not yet')\n")
    site.dist("flaky-dist", "1.0", {"flaky": "flaky"})
    registry = site.registry()
    with pytest.raises(PluginLoadError, match="not yet"):
        registry.get_packer_class("flaky")
    site.plugin("flaky", ["flaky"])  # fixed
    registry.refresh()
    assert registry.get_packer_class("flaky").__module__ == "flaky"
