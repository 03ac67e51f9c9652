"""The real installed test plugin (``fedpack-testplugin``, packer ``echo``), via entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fedpack
from fedpack import PackerRegistry, PackingError

pytestmark = pytest.mark.usefixtures("testplugin")  # skipped where it is not installed


@pytest.fixture
def registry(clean_env: None) -> PackerRegistry:
    return PackerRegistry()


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("FEDPACK_")},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_echo_found_by_entry_point(registry: PackerRegistry) -> None:
    cls = registry.get_packer_class("echo")
    assert cls.__module__ == "fedpack_testplugin"
    assert cls.__name__ == "EchoPacker"
    assert registry.get_packer_class("Echo") is cls
    assert registry.get_packer_class("ECHO") is cls
    assert isinstance(registry.get_packer("echo"), cls)


def test_echo_through_module_api(clean_env: None) -> None:
    assert fedpack.get_packer_class("Echo").__name__ == "EchoPacker"
    assert type(fedpack.get_packer("echo", size_of_model_params=1)).__name__ == "EchoPacker"


def test_echo_listed_available_then_loaded(registry: PackerRegistry) -> None:
    [row] = [r for r in registry.list_packers() if r.name == "echo"]
    assert row.distribution == "fedpack-testplugin"
    assert row.version == "0.1.0"
    assert row.entry_point == "fedpack_testplugin"
    assert row.state == "available"
    assert row.detail == ""
    registry.get_packer_class("echo")
    [row] = [r for r in registry.list_packers() if r.name == "echo"]
    assert row.state == "loaded"


def test_listing_imports_no_plugin() -> None:
    out = run_python(
        """
        import json, sys
        import fedpack
        rows = fedpack.list_packers()
        fedpack.default_registry().names()
        print(json.dumps({
            "names": [r.name for r in rows],
            "states": sorted({r.state for r in rows}),
            "plugins": sorted(m for m in sys.modules if m.startswith("fedpack_")),
        }))
        """
    )
    result = json.loads(out)
    assert "echo" in result["names"]
    assert result["states"] == ["available"]
    assert result["plugins"] == []


def test_import_and_lookup_stay_light() -> None:
    out = run_python(
        """
        import sys
        import numpy
        before = set(sys.modules)
        import fedpack
        fedpack.get_packer("echo")
        new = set(sys.modules) - before
        # heavy, or needed only on some paths (frames: json; unknown names: difflib)
        heavy = (
            "torch", "flwr", "importlib.metadata", "importlib_metadata", "email", "json",
            "difflib",
        )
        import json
        print(json.dumps(sorted(m for m in new if m.split(".")[0] in heavy or m in heavy)))
        print("fedpack_testplugin" in sys.modules)
        """
    )
    found, plugin = out.splitlines()
    assert json.loads(found) == []
    assert plugin == "True"


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(arrays, max_size=4), st.lists(arrays, max_size=4), st.booleans())
def test_echo_round_trip(weights: list[np.ndarray], extra: list[np.ndarray], framed: bool) -> None:
    packer = fedpack.get_packer("echo", size_of_model_params=len(weights), framed=framed)
    packed = packer.pack_parameters(weights, extra)
    assert len(packed) == len(weights) + len(extra) + framed
    got_weights, got_extra = packer.unpack_parameters(packed)
    assert all(a is b for a, b in zip(got_weights, weights, strict=True))
    assert all(a is b for a, b in zip(got_extra, extra, strict=True))
    if framed:
        name, w, e = fedpack.unpack(packed)
        assert (name, len(w), len(e)) == ("echo", len(weights), len(extra))


def test_echo_errors() -> None:
    with pytest.raises(TypeError, match="size_of_model_params: expected a non-negative int"):
        fedpack.get_packer("echo", size_of_model_params=-1)
    packer = fedpack.get_packer("echo", framed=False)
    with pytest.raises(PackingError, match="needs size_of_model_params, found None"):
        packer.unpack_parameters([np.zeros(1)])
    packer = fedpack.get_packer("echo", size_of_model_params=3, framed=False)
    with pytest.raises(PackingError, match=r"expected at least 3 arrays .*found 1"):
        packer.unpack_parameters([np.zeros(1)])
