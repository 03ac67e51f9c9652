"""The pytest entry of the conformance checks: subclass :class:`PackerConformance`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .._api import default_registry
from .._packer import ParameterPacker
from .._registry import PackerRegistry
from .._typing import NDArrays
from ._checks import CheckResult, ExtrasFactory, OptionsFactory, example_factories, run_checks

__all__ = ["PackerConformance"]


class PackerConformance:
    """Base class of a plugin's conformance tests: one pytest test per check.

    A plugin's test module subclasses it (the subclass name must start with ``Test``)::

        from fedpack.testing import PackerConformance

        class TestInt8Conformance(PackerConformance):
            packer = "int8"

    and may override :meth:`make_extras` / :meth:`make_options` (default: the class hooks
    ``example_extras`` / ``example_options``), :attr:`tolerance` and :attr:`registry`.
    pytest is imported only when a test runs, so importing this class needs no pytest.
    """

    #: The packer under test: a registered name or a packer class.
    packer: ClassVar[str | type[ParameterPacker[Any]]]
    #: Overrides the packer's declared ``lossy_tolerance`` (``None``: use the declared one).
    tolerance: ClassVar[float | None] = None
    #: The registry to look names up in (``None``: the process-wide one).
    registry: ClassVar[PackerRegistry | None] = None

    def make_extras(self, weights: NDArrays) -> Sequence[Any]:
        """Valid extra data for ``weights`` (default: the class's ``example_extras``)."""
        return self._factories()[0](weights)

    def make_options(self, weights: NDArrays) -> dict[str, Any]:
        """Constructor options for ``weights`` (default: the class's ``example_options``)."""
        return self._factories()[1](weights)

    def _factories(self) -> tuple[ExtrasFactory, OptionsFactory]:
        registry = self.registry or default_registry()
        if isinstance(self.packer, str):
            return example_factories(registry, self.packer, registry.get_packer_class(self.packer))
        return example_factories(registry, self.packer.name, self.packer)

    def run_check(self, check: str) -> CheckResult:
        """Run one check; fail (or skip) the current pytest test with its reason."""
        import pytest

        (result,) = run_checks(
            self.packer,
            extras=self.make_extras,
            options=self.make_options,
            tolerance=self.tolerance,
            registry=self.registry,
            checks=[check],
        )
        if result.failed:
            pytest.fail(f"{result.packer}: {result.check}: {result.reason}", pytrace=False)
        if result.skipped:
            pytest.skip(f"{result.check}: {result.reason}")
        return result

    def test_name(self) -> None:
        """The name is ``[a-z0-9_]+`` and the registry returns the class under it."""
        self.run_check("name")

    def test_metadata(self) -> None:
        """``list_packers()`` shows the distribution and version of an installed plugin."""
        self.run_check("metadata")

    def test_round_trip_framed(self) -> None:
        """Every sample round-trips in the framed layout (within the declared tolerance)."""
        self.run_check("round_trip[framed]")

    def test_round_trip_unframed(self) -> None:
        """Every sample round-trips in FL4Health's layout (``framed=False``)."""
        self.run_check("round_trip[unframed]")

    def test_frame(self) -> None:
        """The frame names the packer and ``fedpack.unpack`` dispatches to it."""
        self.run_check("frame")

    def test_no_copies(self) -> None:
        """The payload holds the weight objects themselves (N/A if ``transforms_weights``)."""
        self.run_check("no_copies")

    def test_malformed_framed(self) -> None:
        """Every malformed framed payload raises ``PackingError`` and nothing else."""
        self.run_check("malformed[framed]")

    def test_malformed_unframed(self) -> None:
        """Malformed unframed payloads raise ``PackingError`` or unpack, nothing else."""
        self.run_check("malformed[unframed]")

    def test_bad_input(self) -> None:
        """Bad weights, a bad extra and non-lists raise ``PackingError``."""
        self.run_check("bad_input")

    def test_lossy_bound(self) -> None:
        """A lossy packer's declared tolerance is in (0, 1) and holds on stress weights."""
        self.run_check("lossy_bound")
