"""pytest plugin: choose which module FL4Health's tests get as ``parameter_packer``.

``FEDPACK_FL4HEALTH_PACKER=fedpack`` installs :mod:`fedpack_fl4health` as
``fl4health.parameter_exchange.parameter_packer`` in ``sys.modules`` before any test module is
collected, so FL4Health's tests, exchangers and strategies import fedpack's drop-in;
``FEDPACK_FL4HEALTH_PACKER=fl4health`` leaves FL4Health's own module in place. At the end of
the session the plugin checks that FL4Health's exchanger modules really hold the chosen classes
and fails the run otherwise, so a pass cannot come from the wrong module.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import cast

import pytest

MODULE = "fl4health.parameter_exchange.parameter_packer"
CHOICES = ("fl4health", "fedpack")


def _choice() -> str:
    choice = os.environ.get("FEDPACK_FL4HEALTH_PACKER", "")
    if choice not in CHOICES:
        raise pytest.UsageError(
            f"FEDPACK_FL4HEALTH_PACKER: expected one of {CHOICES}, found {choice!r}"
        )
    return choice


def _packer_module() -> ModuleType:
    if _choice() == "fl4health":
        import fl4health.parameter_exchange.parameter_packer as own

        return cast(ModuleType, own)
    import fedpack_fl4health

    return fedpack_fl4health


def pytest_configure(config: pytest.Config) -> None:
    """Install the drop-in (``fedpack``) before collection imports any FL4Health module."""
    if _choice() != "fedpack":
        return
    if MODULE in sys.modules:
        raise pytest.UsageError(f"{MODULE} was imported before the drop-in could replace it")
    import fedpack_fl4health
    import fl4health.parameter_exchange as package

    sys.modules[MODULE] = fedpack_fl4health
    package.parameter_packer = fedpack_fl4health


def pytest_report_header(config: pytest.Config) -> str:
    """Say which module the tests get."""
    module = _packer_module()
    return f"{MODULE} -> {module.__name__} ({module.__file__})"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run unless FL4Health's exchangers were built on the chosen packer classes."""
    from fl4health.parameter_exchange import (
        layer_exchanger,
        packing_exchanger,
        sparse_coo_parameter_exchanger,
    )

    module = _packer_module()
    expected = {
        (packing_exchanger, "ParameterPacker"),
        (layer_exchanger, "ParameterPackerWithLayerNames"),
        (sparse_coo_parameter_exchanger, "SparseCooParameterPacker"),
    }
    wrong = [
        f"{user.__name__}.{name} is {getattr(user, name)!r}"
        for user, name in sorted(expected, key=lambda pair: pair[1])
        if getattr(user, name) is not getattr(module, name)
    ]
    if sys.modules.get(MODULE) is not module:
        wrong.append(f"sys.modules[{MODULE!r}] is {sys.modules.get(MODULE)!r}")
    if wrong:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"expected the classes of {module.__name__}, found: " + "; ".join(wrong)
        if reporter is not None:
            reporter.write_line(f"fl4health_packer_plugin: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
