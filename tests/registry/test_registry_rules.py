"""Registry rules on fake installed distributions: conflicts, pins, blocking, autoload, unknowns."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from fedpack import PackerConflictError, ScalarPacker, UnknownPackerError

if TYPE_CHECKING:
    from .conftest import FakeSite

# -- conflicts and pins ---------------------------------------------------------------------------


@pytest.fixture
def conflict(site: FakeSite) -> FakeSite:
    site.packer_dist("dist-a", "twin", "1.0", module="twin_a")
    site.packer_dist("dist-b", "twin", "2.5", module="twin_b")
    site.packer_dist("dist-c", "solo", "0.3")
    return site


def test_conflict_names_both_distributions_when_asked(conflict: FakeSite) -> None:
    registry = conflict.registry()
    with pytest.raises(PackerConflictError, match=r"dist-a==1\.0 and dist-b==2\.5") as info:
        registry.get_packer_class("twin")
    assert "FEDPACK_PLUGIN_PINS=twin=<distribution>" in str(info.value)
    assert "registry.pin('twin'" in str(info.value)
    # nothing was imported to find out, and other names keep working
    assert conflict.count("import", "twin_a") == conflict.count("import", "twin_b") == 0
    assert registry.get_packer_class("solo").name == "solo"


def test_conflict_is_listed(conflict: FakeSite) -> None:
    registry = conflict.registry()
    rows = {(r.name, r.distribution): r for r in registry.list_packers()}
    assert rows["twin", "dist-a"].state == "conflict"
    assert rows["twin", "dist-a"].detail == "also claimed by dist-b==2.5"
    assert rows["twin", "dist-b"].state == "conflict"
    assert rows["solo", "dist-c"].state == "available"


def test_pin_resolves_conflict(conflict: FakeSite) -> None:
    registry = conflict.registry()
    registry.pin("TWIN", "Dist_B")  # names and distributions are normalised
    cls = registry.get_packer_class("twin")
    assert cls.__module__ == "twin_b"
    assert conflict.count("import", "twin_a") == 0
    rows = {(r.name, r.distribution): r for r in registry.list_packers()}
    assert rows["twin", "dist-b"].state == "loaded"
    assert rows["twin", "dist-a"].state == "blocked"
    assert rows["twin", "dist-a"].detail == "pinned to dist-b"


def test_pin_after_a_failed_lookup_takes_effect(conflict: FakeSite) -> None:
    registry = conflict.registry()
    with pytest.raises(PackerConflictError):
        registry.get_packer_class("twin")
    registry.pin("twin", "dist-a")
    assert registry.get_packer_class("twin").__module__ == "twin_a"


def test_pins_from_environment(conflict: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDPACK_PLUGIN_PINS", " twin = dist-a , junk, =x")
    assert conflict.registry().get_packer_class("twin").__module__ == "twin_a"


def test_pins_argument(conflict: FakeSite) -> None:
    assert conflict.registry(pins={"Twin": "dist-b"}).get_packer_class("twin").__module__ == (
        "twin_b"
    )


def test_pin_survives_refresh(conflict: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = conflict.registry()
    registry.pin("twin", "dist-b")
    monkeypatch.setenv("FEDPACK_PLUGIN_PINS", "twin=dist-a,solo=dist-c")
    registry.refresh()  # e.g. after installing a plugin: the explicit pin still wins
    assert registry.get_packer_class("twin").__module__ == "twin_b"
    assert registry.get_packer_class("solo").name == "solo"


def test_pin_to_a_non_claimant_raises(conflict: FakeSite) -> None:
    registry = conflict.registry(pins={"twin": "dist-c"})
    with pytest.raises(
        PackerConflictError,
        match=r"pinned to distribution 'dist-c', which does not provide it; it is claimed by "
        r"dist-a==1\.0 and dist-b==2\.5",
    ):
        registry.get_packer_class("twin")


def test_pin_to_a_non_claimant_is_listed_as_conflict(conflict: FakeSite) -> None:
    registry = conflict.registry(pins={"twin": "dist-c", "solo": "dist-x"})
    for name in ("twin", "solo"):  # claimed twice or once: the lookup raises either way
        with pytest.raises(PackerConflictError, match="which does not provide it"):
            registry.get_packer_class(name)
    rows = {(r.name, r.distribution): r for r in registry.list_packers()}
    for key in [("twin", "dist-a"), ("twin", "dist-b"), ("solo", "dist-c")]:
        assert rows[key].state == "conflict"
    assert rows["solo", "dist-c"].detail == "pinned to 'dist-x', which does not provide it"
    assert rows["twin", "dist-a"].detail == "pinned to 'dist-c', which does not provide it"


# -- blocking ------------------------------------------------------------------------------------


def test_disabled_plugins_are_blocked_and_never_imported(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.packer_dist("dist-a", "alpha", module="mod_alpha")
    site.packer_dist("dist-b", "beta", module="mod_beta")
    site.packer_dist("dist-c", "gamma", module="mod_gamma")
    monkeypatch.setenv("FEDPACK_DISABLE_PLUGINS", "Alpha, beta")
    registry = site.registry()
    for name in ("alpha", "beta"):
        with pytest.raises(
            UnknownPackerError,
            match=rf"packer {name!r} is installed \(dist-\w==1\.0\) but blocked by "
            "FEDPACK_DISABLE_PLUGINS",
        ):
            registry.get_packer_class(name)
    assert registry.get_packer_class("gamma").name == "gamma"
    rows = {r.name: r for r in registry.list_packers()}
    assert rows["alpha"].state == rows["beta"].state == "blocked"
    assert rows["alpha"].detail == "disabled by FEDPACK_DISABLE_PLUGINS"
    assert registry.names() == ["gamma"]
    assert "mod_alpha" not in sys.modules
    assert "mod_beta" not in sys.modules
    assert site.count("import", "mod_alpha") == site.count("import", "mod_beta") == 0


def test_disabled_argument(site: FakeSite) -> None:
    site.packer_dist("dist-a", "alpha")
    with pytest.raises(UnknownPackerError, match="blocked"):
        site.registry(disabled=["ALPHA"]).get_packer_class("alpha")


def test_an_in_process_packer_may_take_a_blocked_plugins_name(site: FakeSite) -> None:
    site.packer_dist("dist-a", "alpha", module="mod_alpha")
    registry = site.registry(disabled=["alpha"])

    class Mine(ScalarPacker):
        name = "alpha"
        section = "alpha"

    registry.register(Mine)  # no replace=True needed: the plugin cannot be served anyway
    assert registry.get_packer_class("alpha") is Mine
    assert "mod_alpha" not in sys.modules


def test_blocked_lookup_is_a_lookup_error(site: FakeSite) -> None:
    site.packer_dist("dist-a", "alpha")
    with pytest.raises(LookupError):
        site.registry(disabled=["alpha"]).get_packer_class("alpha")


# -- autoload off --------------------------------------------------------------------------------


def test_autoload_off_ignores_entry_points(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    site.packer_dist("dist-a", "alpha", module="mod_alpha")
    monkeypatch.setenv("FEDPACK_PLUGIN_AUTOLOAD", "0")
    registry = site.registry()
    assert registry.autoload is False
    with pytest.raises(
        UnknownPackerError,
        match=r"unknown packer 'alpha'\..*Plugin discovery is off \(FEDPACK_PLUGIN_AUTOLOAD=0\)",
    ):
        registry.get_packer_class("alpha")
    assert registry.list_packers() == []
    assert site.count("import", "mod_alpha") == 0

    # in-process registrations still work
    sys.modules.pop("mod_alpha", None)
    site.plugin("inproc", ["alpha"])
    cls = __import__("inproc").CLASSES["alpha"]
    registry.register(cls)  # no conflict: the entry point is not discovered
    assert registry.get_packer_class("alpha") is cls
    assert [r.state for r in registry.list_packers()] == ["loaded"]


@pytest.mark.parametrize(
    ("raw", "expected"), [("off", False), ("no", False), ("1", True), ("", True), ("junk", True)]
)
def test_autoload_flag_values(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("FEDPACK_PLUGIN_AUTOLOAD", raw)
    assert site.registry().autoload is expected


def test_autoload_argument_wins_over_environment(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.packer_dist("dist-a", "alpha")
    monkeypatch.setenv("FEDPACK_PLUGIN_AUTOLOAD", "0")
    assert site.registry(autoload=True).get_packer_class("alpha").name == "alpha"


# -- unknown names -------------------------------------------------------------------------------


def test_unknown_name_suggests_and_hints(site: FakeSite) -> None:
    site.packer_dist("fedpack-scaffold", "scaffold")
    site.packer_dist("fedpack-layer-names", "layer_names")
    registry = site.registry()
    with pytest.raises(UnknownPackerError) as info:
        registry.get_packer("scafold")
    err = info.value
    assert isinstance(err, LookupError)
    message = str(err)
    assert message.startswith("unknown packer 'scafold'. Did you mean 'scaffold'?")
    assert "Installed packers: layer_names, scaffold." in message
    assert "pip install fedpack-scafold" in message
    assert err.name == "scafold"
    assert err.available == ("layer_names", "scaffold")
    assert "Plugin discovery is off" not in message


def test_unknown_name_without_close_match(site: FakeSite) -> None:
    with pytest.raises(UnknownPackerError) as info:
        site.registry().get_packer_class("Sparse-COO")
    message = str(info.value)
    assert "Did you mean" not in message
    assert "Installed packers: none." in message
    assert "pip install fedpack-sparse-coo" in message


def test_name_must_be_a_string(site: FakeSite) -> None:
    with pytest.raises(TypeError, match="packer name: expected a str, found int"):
        site.registry().get_packer_class(3)  # type: ignore[arg-type]


def test_lookups_normalise_case_and_separators(site: FakeSite) -> None:
    site.packer_dist("dist-a", "layer_names")
    registry = site.registry()
    cls = registry.get_packer_class("layer_names")
    assert registry.get_packer_class("Layer-Names") is cls
    assert registry.get_packer_class(" LAYER_names ") is cls


def test_get_packer_passes_options(site: FakeSite) -> None:
    site.packer_dist("dist-a", "alpha")
    packer = site.registry().get_packer("alpha", framed=False)
    assert packer.framed is False
