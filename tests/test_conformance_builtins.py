"""Every installed built-in packer has example extras: ``fedpack check`` runs every check."""

from __future__ import annotations

import pytest
from builtin_packers import BUILTINS

import fedpack
from fedpack import UnknownPackerError
from fedpack.testing import run_checks


@pytest.mark.parametrize("name", [*BUILTINS, "echo"])
def test_every_check_runs_and_passes(name: str, request: pytest.FixtureRequest) -> None:
    if name == "echo":
        request.getfixturevalue("testplugin")  # skips where the test plugin is not installed
    try:
        cls = fedpack.get_packer_class(name)
    except UnknownPackerError:
        pytest.skip(f"packer {name!r} is not installed")
    results = run_checks(name)
    # the one check a packer may opt out of: it declares that it sends new weight arrays
    not_applicable = {("no_copies", "skipped")} if cls.transforms_weights else set()
    failed = [r for r in results if not r.passed and (r.check, r.outcome) not in not_applicable]
    assert [(r.check, r.outcome, r.reason) for r in failed] == []
