"""The plugin author kit: conformance checks every packer should pass.

Two ways in:

- plain functions, no pytest needed (what ``fedpack check`` runs)::

      from fedpack.testing import run_checks

      for result in run_checks("int8"):
          print(result.check, result.outcome, result.reason)

- a pytest base class, one test per check, for a plugin's own test suite::

      from fedpack.testing import PackerConformance

      class TestInt8Conformance(PackerConformance):
          packer = "int8"

The checks need valid extra data for the packer: the class hook
:meth:`fedpack.ParameterPacker.example_extras` (or ``extras=`` / ``make_extras``). Lossy
packers declare :attr:`~fedpack.ParameterPacker.lossy_tolerance`; packers that encode the
weights declare :attr:`~fedpack.ParameterPacker.transforms_weights` (the "no copies" check is
then N/A). Importing this module does not import pytest.
"""

from __future__ import annotations

from ._checks import CHECKS, CheckResult, Outcome, example_factories, run_checks
from ._pytest import PackerConformance
from ._samples import ForeignPacker, compare_values, compare_weights, example_weights

__all__ = [
    "CHECKS",
    "CheckResult",
    "ForeignPacker",
    "Outcome",
    "PackerConformance",
    "compare_values",
    "compare_weights",
    "example_factories",
    "example_weights",
    "run_checks",
]
