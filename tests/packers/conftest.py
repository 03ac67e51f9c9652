"""Make the helper modules beside these tests importable (tests use --import-mode=importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# packer_cases asserts on behalf of the tests (assert_same_payload): rewritten like a test
# module, its asserts hold under python -O too. (fl4health_reference is left alone: its one
# assert is FL4Health's own, stripped under -O on purpose.)
pytest.register_assert_rewrite("packer_cases")
