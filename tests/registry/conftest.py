"""Fixtures for the registry tests: fake installed distributions in a temporary site dir.

``site.dist(...)`` writes ``<name>-<version>.dist-info/{METADATA,entry_points.txt}`` (or an
``.egg-info`` with ``PKG-INFO``) and ``site.module(...)`` writes plugin modules beside them, in a
directory put on ``sys.path``; ``site.registry()`` builds a ``PackerRegistry`` that scans only
that directory. Every fake plugin module records its import and its hook calls in
``fedpack_fake_events.events``, so tests can count them. Modules are removed from
``sys.modules`` afterwards, and the ``FEDPACK_*`` environment variables are cleared.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fedpack import PackerRegistry

ENV_VARS = (
    "FEDPACK_PLUGIN_AUTOLOAD",
    "FEDPACK_DISABLE_PLUGINS",
    "FEDPACK_STRICT_PLUGINS",
    "FEDPACK_PLUGIN_PINS",
)

EVENTS_MODULE = "fedpack_fake_events"

#: Source of a fake plugin module: a packer class per name in NAMES, and the hook.
PLUGIN_TEMPLATE = """
import fedpack
import {events}

{events}.events.append(("import", __name__))


def _packer(packer_name):
    class Packer(fedpack.ParameterPacker[None]):
        name = packer_name

        def encode(self, model_weights, additional_parameters):
            return fedpack.Encoded([("weights", model_weights)])

        def decode(self, sections, meta):
            return sections["weights"], None

        def split_unframed(self, packed):
            return fedpack.Sections.split(packed, [("weights", len(packed))])

    Packer.__qualname__ = Packer.__name__ = "Packer_" + packer_name
    return Packer


CLASSES = {{n: _packer(n) for n in {names!r}}}


@fedpack.hookimpl
def fedpack_register_packers(register):
    {events}.events.append(("hook", __name__))
{body}
"""

DEFAULT_BODY = """
    for cls in CLASSES.values():
        register(cls)
"""


class FakeSite:
    """A temporary directory holding fake installed distributions and plugin modules."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.modules: set[str] = set()
        self._monkeypatch = monkeypatch
        root.mkdir(parents=True, exist_ok=True)
        monkeypatch.syspath_prepend(str(root))

    @property
    def events(self) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = sys.modules[EVENTS_MODULE].events
        return events

    def count(self, kind: str, module: str) -> int:
        return self.events.count((kind, module))

    def dist(
        self,
        name: str,
        version: str = "1.0",
        packers: Mapping[str, str] | None = None,
        *,
        root: Path | None = None,
        egg: bool = False,
        entry_points: str | None = None,
    ) -> Path:
        """Write a fake distribution declaring ``packers`` (packer name -> entry point value)."""
        base = root or self.root
        dirname = (
            f"{name.replace('-', '_')}.egg-info"
            if egg
            else f"{name.replace('-', '_')}-{version}.dist-info"
        )
        path = base / dirname
        path.mkdir(parents=True)
        meta = "PKG-INFO" if egg else "METADATA"
        (path / meta).write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA fake distribution.\n",
            encoding="utf-8",
        )
        if entry_points is None:
            lines = [f"{key} = {value}" for key, value in (packers or {}).items()]
            entry_points = "[fedpack.packers]\n" + "\n".join(lines) + "\n"
        (path / "entry_points.txt").write_text(entry_points, encoding="utf-8")
        return path

    def module(self, name: str, source: str) -> None:
        """Write module ``name`` (a ``.py`` file) into the site."""
        (self.root / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        self.modules.add(name)
        importlib.invalidate_caches()

    def plugin(self, module: str, names: list[str] | tuple[str, ...], body: str = "") -> None:
        """Write a plugin module defining a packer per name; ``body`` replaces the hook body."""
        source = PLUGIN_TEMPLATE.format(
            events=EVENTS_MODULE, names=tuple(names), body=body or DEFAULT_BODY
        )
        self.module(module, source)

    def packer_dist(
        self, dist: str, name: str, version: str = "1.0", *, module: str | None = None
    ) -> str:
        """A distribution declaring packer ``name`` with a healthy plugin module; the module."""
        module = module or f"fake_{dist.replace('-', '_')}"
        self.plugin(module, [name])
        self.dist(dist, version, {name: module})
        return module

    def registry(self, **kwargs: Any) -> PackerRegistry:
        """A registry scanning only this site."""
        kwargs.setdefault("paths", [str(self.root)])
        return PackerRegistry(**kwargs)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``FEDPACK_*`` variable from the calling environment leaks into a test."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Iterator[FakeSite]:
    """A fake site directory on ``sys.path``; its modules are unloaded afterwards."""
    events = types.ModuleType(EVENTS_MODULE)
    events.events = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, EVENTS_MODULE, events)
    fake = FakeSite(tmp_path / "site", monkeypatch)
    yield fake
    for name in fake.modules:
        sys.modules.pop(name, None)
