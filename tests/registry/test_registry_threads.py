"""Concurrent lookups on a cold registry import each plugin and run its hook exactly once."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from fedpack import PackerRegistry, ParameterPacker

if TYPE_CHECKING:
    from .conftest import FakeSite

THREADS = 16
NAMES = ("alpha", "beta", "gamma", "delta")


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads often, so that the threads really interleave inside the registry."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def hammer(registry: PackerRegistry, names: list[str]) -> list[type[ParameterPacker[object]]]:
    barrier = threading.Barrier(len(names))
    results: list[type[ParameterPacker[object]] | None] = [None] * len(names)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = registry.get_packer_class(names[i])
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(names))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return [r for r in results if r is not None]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("repeat", range(3))
def test_cold_registry_same_name(
    site: FakeSite, fast_switching: None, strict: bool, repeat: int
) -> None:
    for name in NAMES:
        site.packer_dist(f"dist-{name}", name, module=f"mod_{name}_{repeat}")
    registry = site.registry(strict=strict)
    classes = hammer(registry, ["alpha"] * THREADS)
    assert len(classes) == THREADS
    assert len(set(classes)) == 1
    assert site.count("import", f"mod_alpha_{repeat}") == 1
    assert site.count("hook", f"mod_alpha_{repeat}") == 1


@pytest.mark.parametrize("repeat", range(3))
def test_cold_registry_different_names(site: FakeSite, fast_switching: None, repeat: int) -> None:
    for name in NAMES:
        site.packer_dist(f"dist-{name}", name, module=f"mod_{name}_{repeat}")
    site.plugin(f"mod_pair_{repeat}", ["left", "right"])  # one plugin, two names
    site.dist("dist-pair", "1.0", {"left": f"mod_pair_{repeat}", "right": f"mod_pair_{repeat}"})
    registry = site.registry()
    names = [(*NAMES, "left", "right")[i % 6] for i in range(THREADS)]
    classes = hammer(registry, names)
    by_name: dict[str, set[type[ParameterPacker[object]]]] = {}
    for name, cls in zip(names, classes, strict=True):
        by_name.setdefault(name, set()).add(cls)
        assert cls.name == name
    assert all(len(found) == 1 for found in by_name.values())
    for module in [*(f"mod_{n}_{repeat}" for n in NAMES), f"mod_pair_{repeat}"]:
        assert site.count("import", module) == 1, module
        assert site.count("hook", module) == 1, module
    assert {r.state for r in registry.list_packers()} == {"loaded"}
