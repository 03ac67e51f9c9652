"""The suite's one list of built-in packers agrees with what is installed and what is released."""

from __future__ import annotations

from builtin_packers import (
    BUILTINS,
    EXPECTED,
    EXTRA_PACKERS,
    OWN_SUITES,
    SCALAR_PACKERS,
    builtin_distributions,
)
from packaging.utils import canonicalize_name

import fedpack


def test_installed_builtins_are_the_expected_ones() -> None:
    # a built-in distribution missing from the environment, or a packer added or renamed
    assert sorted(BUILTINS) == sorted(EXPECTED)
    assert len(set(EXPECTED)) == len(EXPECTED)


def test_the_registry_serves_every_builtin_from_a_builtin_distribution() -> None:
    usable = {"available", "loaded"}
    rows = {info.name: info for info in fedpack.list_packers() if info.state in usable}
    assert set(EXPECTED) <= set(rows)
    distributions = set(builtin_distributions())
    found = {name: canonicalize_name(rows[name].distribution or "") for name in EXPECTED}
    assert {name: dist for name, dist in found.items() if dist not in distributions} == {}


def test_derived_lists() -> None:
    assert set(OWN_SUITES) <= set(EXPECTED)
    assert set(SCALAR_PACKERS) <= set(EXTRA_PACKERS)
    assert sorted([*EXTRA_PACKERS, *OWN_SUITES]) == sorted(BUILTINS)
    assert SCALAR_PACKERS == ("clipping_bit", "adaptive_constraint")
