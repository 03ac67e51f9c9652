"""The conformance suite of fedpack, run against the int8 packer."""

from __future__ import annotations

from fedpack_int8 import Int8Packer

from fedpack.testing import PackerConformance, run_checks


class TestInt8Conformance(PackerConformance):
    """Every check of fedpack.testing, looked up by name (the installed entry point)."""

    packer = "int8"


class TestInt8ClassConformance(PackerConformance):
    """The same checks given the class itself (what a plugin does before it is installed)."""

    packer = Int8Packer


def test_fedpack_check_passes_on_int8() -> None:
    results = run_checks("int8")
    assert not [r for r in results if r.failed]
    skipped = {r.check: r.reason for r in results if r.skipped}
    assert list(skipped) == ["no_copies"]
    assert "transforms_weights" in skipped["no_copies"]


def test_the_declared_tolerance_is_needed() -> None:
    # Exact comparison (tolerance 0) must fail: the checks do use the declared tolerance.
    results = run_checks("int8", tolerance=0.0, checks=["round_trip[framed]"])
    assert results[0].failed
    assert "exceeds the declared tolerance" in results[0].reason
