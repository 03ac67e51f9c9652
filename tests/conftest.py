"""Fixtures for the whole suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

# The helper modules shared by the whole suite (tests/support) are imported by their plain names
# (the tests use --import-mode=importlib). Only that folder goes on sys.path: the test folders
# themselves are named after real packages (flwr, ...) and must not shadow them.
_SUPPORT = str(Path(__file__).resolve().parent / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

#: Why the tests of the real installed test plugin are skipped where it is not installed.
TESTPLUGIN_MISSING = (
    "the test-only plugin fedpack-testplugin (packer 'echo') is not installed: tox installs it "
    "into the test environments; by hand: python -m pip install -e tests/plugin-pkg"
)


@pytest.fixture
def testplugin() -> None:
    """Skip the test unless the test plugin (tests/plugin-pkg) is installed."""
    if importlib.util.find_spec("fedpack_testplugin") is None:
        pytest.skip(TESTPLUGIN_MISSING)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every frame decode from now on (by ``where``), whichever module calls the decoder."""
    from fedpack import frame
    from fedpack.flwr import _records

    calls: list[str] = []
    real = frame.decode_frame

    def counting(array: Any, *, where: str = "frame", budget: Any = None) -> Any:
        calls.append(where)
        return real(array, where=where, budget=budget)

    for module in (frame, _records):
        monkeypatch.setattr(module, "decode_frame", counting)
    return calls
