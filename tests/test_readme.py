"""The README's quick start works as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_code() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert blocks, "the quick start has no python example"
    return "\n".join(blocks)


def test_quick_start_python_runs() -> None:
    namespace: dict[str, object] = {}
    exec(compile(quick_start_code(), str(README), "exec"), namespace)
    assert namespace["name"] == "scaffold"


def test_quick_start_commands_are_the_project_commands() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    for command in (
        "flwr run examples/flower-app",
        "pip install -r requirements-dev.txt",
        "fedpack list",
        "tox",
    ):
        assert command in section
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "tox" in ci


def test_quick_start_installs_the_app_it_runs() -> None:
    root = README.parent
    requirements = (root / "requirements-app.txt").read_text(encoding="utf-8").splitlines()
    assert "-e ./examples/flower-app" in requirements
    dev = (root / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert "-r requirements-app.txt" in dev  # the quick start's one install command
    assert "torch==2.13.0" in requirements
    assert any(line.startswith("flwr[simulation]") for line in requirements)
    app = (root / "examples" / "flower-app" / "pyproject.toml").read_text(encoding="utf-8")
    assert "[tool.flwr.app.components]" in app
    text = README.read_text(encoding="utf-8")
    for algorithm in ("fedavg", "scaffold", "fedprox-adaptive", "layer-names", "dp-adaptive"):
        assert f"| `{algorithm}`" in text
        assert algorithm in app


def test_fedpack_demo_is_gone() -> None:
    text = README.read_text(encoding="utf-8")
    assert "fedpack demo" not in text
