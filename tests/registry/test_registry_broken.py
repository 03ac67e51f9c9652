"""Broken plugins fail for their own names only, chained, rolled back, and listed as failed."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pluggy
import pytest

from fedpack import PackerConflictError, PluginLoadError

if TYPE_CHECKING:
    from .conftest import FakeSite

HOOK_RAISES = """
    raise RuntimeError("boom in the hook")
"""
REGISTERS_NON_PACKER = """
    register(int)
"""
REGISTERS_NOTHING = """
    pass
"""
REGISTERS_TWICE = """
    register(CLASSES["twice"])
    register(CLASSES["twice"])
"""
TYPO_HOOK = '''
import fedpack as _f


@_f.hookimpl
def fedpack_register_packer(register):
    """A typo: the hook is fedpack_register_packers."""
'''


def broken(site: FakeSite, kind: str) -> tuple[str, str, type[BaseException] | None, str]:
    """Install a broken plugin of the given kind: (packer name, module, cause type, message)."""
    module = f"broken_{kind}"
    dist = f"broken-{kind.replace('_', '-')}"
    if kind == "import_error":
        site.module(module, "raise ImportError('missing dependency: libfoo')\n")
        site.dist(dist, "0.9", {"bad": module})
        return "bad", module, ImportError, r"failed to import: ImportError\('missing dependency"
    if kind == "missing_module":
        site.dist(dist, "0.9", {"bad": "no_such_module_anywhere"})
        return "bad", module, ModuleNotFoundError, "failed to import: ModuleNotFoundError"
    if kind == "missing_attr":
        site.plugin(module, ["bad"])
        site.dist(dist, "0.9", {"bad": f"{module}:nothing_here"})
        return "bad", module, AttributeError, "failed to import: AttributeError"
    if kind == "hook_raises":
        site.plugin(module, ["bad"], HOOK_RAISES)
        site.dist(dist, "0.9", {"bad": module})
        return (
            "bad",
            module,
            RuntimeError,
            r"failed to register: RuntimeError\('boom in the hook'\)",
        )
    if kind == "non_packer":
        site.plugin(module, ["bad"], REGISTERS_NON_PACKER)
        site.dist(dist, "0.9", {"bad": module})
        return "bad", module, TypeError, "expected a subclass of fedpack.ParameterPacker"
    if kind == "undeclared":
        site.plugin(module, ["bad", "extra"])
        site.dist(dist, "0.9", {"bad": module})
        return (
            "bad",
            module,
            None,
            r"registered 'extra', which its distribution does not declare under the "
            r"'fedpack.packers' entry points",
        )
    if kind == "nothing":
        site.plugin(module, ["bad"], REGISTERS_NOTHING)
        site.dist(dist, "0.9", {"bad": module})
        return "bad", module, None, r"registers no packer named 'bad' \(it registered nothing\)"
    if kind == "other_name":
        site.plugin(module, ["other"])
        site.dist(dist, "0.9", {"bad": module, "other": module})
        return "bad", module, None, r"registers no packer named 'bad' \(it registered other\)"
    if kind == "twice":
        site.plugin(module, ["twice"], REGISTERS_TWICE)
        site.dist(dist, "0.9", {"twice": module})
        return "twice", module, None, "registered packer 'twice' twice"
    if kind == "typo_hook":
        site.module(module, TYPO_HOOK)
        site.dist(dist, "0.9", {"bad": module})
        return "bad", module, pluggy.PluginValidationError, "unknown hook 'fedpack_register_packer'"
    if kind == "bad_signature":
        site.module(
            module,
            "import fedpack\n\n@fedpack.hookimpl\ndef fedpack_register_packers(registrar):\n"
            "    pass\n",
        )
        site.dist(dist, "0.9", {"bad": module})
        return "bad", module, pluggy.PluginValidationError, "registrar"
    raise AssertionError(kind)


KINDS = [
    "import_error",
    "missing_module",
    "missing_attr",
    "hook_raises",
    "non_packer",
    "undeclared",
    "nothing",
    "other_name",
    "twice",
    "typo_hook",
    "bad_signature",
]


@pytest.mark.parametrize("kind", KINDS)
def test_broken_plugin_fails_alone(site: FakeSite, kind: str) -> None:
    name, module, cause, pattern = broken(site, kind)
    site.packer_dist("healthy", "good", "2.0", module="good_mod")
    dist = f"broken-{kind.replace('_', '-')}"
    registry = site.registry()

    with pytest.raises(PluginLoadError, match=pattern) as info:
        registry.get_packer_class(name)
    message = str(info.value)
    assert message.startswith(f"plugin {dist}==0.9 (entry point {name} = ")
    if cause is None:
        assert info.value.__cause__ is None
    else:
        assert isinstance(info.value.__cause__, cause)

    # rolled back: nothing of the plugin is served
    assert registry._loaded == {}
    # the failure is remembered (same error, no second import) ...
    imports = site.count("import", module)
    with pytest.raises(PluginLoadError) as again:
        registry.get_packer(name)
    assert again.value is info.value
    assert site.count("import", module) == imports
    # ... other names keep working ...
    assert registry.get_packer_class("good").__module__ == "good_mod"
    # ... and the listing says what happened
    rows = {(r.name, r.distribution): r for r in registry.list_packers()}
    assert rows[name, dist].state == "failed"
    assert rows[name, dist].detail == message
    assert rows["good", "healthy"].state == "loaded"


def test_half_registered_packers_are_not_served(site: FakeSite) -> None:
    """A hook that registers a packer and then fails serves neither name."""
    site.plugin(
        "half", ["first", "second"], '    register(CLASSES["second"])\n    raise KeyError("late")\n'
    )
    site.dist("half-dist", "1.1", {"first": "half", "second": "half"})
    registry = site.registry()
    for name in ("second", "first"):
        with pytest.raises(PluginLoadError, match=r"plugin half-dist==1\.1 .* KeyError\('late'\)"):
            registry.get_packer_class(name)
        assert registry._loaded == {}
    assert site.count("hook", "half") == 2
    assert {r.state for r in registry.list_packers()} == {"failed"}


def test_one_hook_serves_all_names_of_its_distribution(site: FakeSite) -> None:
    site.plugin("multi", ["one", "two"])
    site.dist("multi-dist", "1.0", {"one": "multi", "two": "multi"})
    registry = site.registry()
    one = registry.get_packer_class("one")
    assert [r.state for r in registry.list_packers()] == ["loaded", "loaded"]
    assert registry.get_packer_class("two").__module__ == one.__module__ == "multi"
    assert site.count("import", "multi") == site.count("hook", "multi") == 1


def test_strict_mode_fails_healthy_lookups(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    broken(site, "hook_raises")
    site.packer_dist("healthy", "good", "2.0", module="good_mod")
    monkeypatch.setenv("FEDPACK_STRICT_PLUGINS", "1")
    registry = site.registry()
    assert registry.strict is True
    for _ in range(2):  # every lookup, not only the first
        with pytest.raises(PluginLoadError, match=r"plugin broken-hook-raises==0\.9") as info:
            registry.get_packer_class("good")
        assert isinstance(info.value.__cause__, RuntimeError)
    # without strict mode, the healthy name works
    monkeypatch.delenv("FEDPACK_STRICT_PLUGINS")
    registry.refresh()
    assert registry.strict is False
    assert registry.get_packer_class("good").name == "good"


def test_strict_mode_reports_conflicts(site: FakeSite) -> None:
    site.packer_dist("dist-a", "twin", module="twin_a")
    site.packer_dist("dist-b", "twin", module="twin_b")
    site.packer_dist("dist-c", "good", module="good_mod")
    registry = site.registry(strict=True)
    with pytest.raises(PackerConflictError, match=r"claimed by dist-a==1\.0 and dist-b==1\.0"):
        registry.get_packer_class("good")
    registry.pin("twin", "dist-b")
    assert registry.get_packer_class("good").name == "good"
    assert site.count("import", "twin_a") == 0
    assert site.count("import", "twin_b") == 1


def test_strict_mode_skips_blocked_plugins(site: FakeSite) -> None:
    broken(site, "hook_raises")
    site.packer_dist("healthy", "good", module="good_mod")
    registry = site.registry(strict=True, disabled=["bad"])
    assert registry.get_packer_class("good").name == "good"
    assert "broken_hook_raises" not in sys.modules
