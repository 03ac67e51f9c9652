"""Every installed built-in packer has example extras: ``fedpack check`` runs every check."""

from __future__ import annotations

import pytest

import fedpack
from fedpack import UnknownPackerError
from fedpack.testing import run_checks

BUILTINS = ["scaffold", "clipping_bit", "adaptive_constraint", "layer_names", "sparse_coo", "echo"]


@pytest.mark.parametrize("name", BUILTINS)
def test_every_check_runs_and_passes(name: str, request: pytest.FixtureRequest) -> None:
    if name == "echo":
        request.getfixturevalue("testplugin")  # skips where the test plugin is not installed
    try:
        fedpack.get_packer_class(name)
    except UnknownPackerError:
        pytest.skip(f"packer {name!r} is not installed")
    results = run_checks(name)
    assert [(r.check, r.outcome, r.reason) for r in results if not r.passed] == []
