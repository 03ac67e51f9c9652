"""The ``fedpack`` command line: ``fedpack list`` and the program around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

import fedpack
import fedpack._api
from fedpack._cli import main

if TYPE_CHECKING:
    from .conftest import FakeSite


@pytest.fixture
def fake_default(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """Make the process-wide registry one that scans only the fake site."""
    site.packer_dist("dist-good", "good", "1.2.3", module="good_mod")
    site.module("bad_mod", "raise ImportError('no libbad')\n")
    site.dist("dist-bad", "0.1", {"bad": "bad_mod"})
    monkeypatch.setattr(fedpack._api, "_default", site.registry())
    return site


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FEDPACK_")}


def test_list_table_with_installed_test_plugin(
    testplugin: None,
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(fedpack._api, "_default", None)  # a fresh default registry
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "STATE"]
    assert ["echo", "fedpack-testplugin", "0.1.0", "available"] in [line.split() for line in lines]
    # columns are aligned
    starts = {line.index("fedpack-") for line in lines[1:] if "fedpack-" in line}
    assert starts == {lines[0].index("DISTRIBUTION")}


def test_list_json(fake_default: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0  # nothing loaded: the broken plugin is not known yet
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {
            "name": "bad",
            "distribution": "dist-bad",
            "version": "0.1",
            "entry_point": "bad_mod",
            "state": "available",
            "detail": "",
        },
        {
            "name": "good",
            "distribution": "dist-good",
            "version": "1.2.3",
            "entry_point": "good_mod",
            "state": "available",
            "detail": "",
        },
    ]
    assert fake_default.count("import", "good_mod") == 0


def test_list_load_reports_failed_plugins(
    fake_default: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "--load"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split() == ["bad", "dist-bad", "0.1", "failed"]
    assert lines[2].startswith(
        "    plugin dist-bad==0.1 (entry point bad = bad_mod) failed to import"
    )
    assert "no libbad" in lines[2]
    assert lines[3].split() == ["good", "dist-good", "1.2.3", "loaded"]
    assert fake_default.count("import", "good_mod") == 1

    assert main(["list", "--json", "--load"]) == 1
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["bad"]["state"] == "failed"
    assert "ImportError('no libbad')" in rows["bad"]["detail"]
    assert rows["good"]["state"] == "loaded"


def test_list_conflict_exits_1(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site.packer_dist("dist-a", "twin")
    site.packer_dist("dist-b", "twin")
    monkeypatch.setattr(fedpack._api, "_default", site.registry())
    assert main(["list"]) == 1
    out = capsys.readouterr().out
    assert "    also claimed by dist-b==1.0" in out


def test_list_empty(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fedpack._api, "_default", site.registry())
    assert main(["list"]) == 0
    assert (
        capsys.readouterr().out == "no packers installed (pip install fedpack for the built-ins)\n"
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"fedpack {fedpack.__version__}\n"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: fedpack list [-h] [--json] [--load]" in out
    assert "list installed packers (name, distribution, version, state)" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["demo"],
        ["list", "--bogus"],
        ["list", "scaffold"],
        ["list", "--json=yes"],
        ["--load"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: fedpack" in capsys.readouterr().err


COMMAND_HELP = {
    "list": "list installed packers (name, distribution, version, state)",
    "check": "run the conformance checks against installed packers (all by default)",
}


def test_every_command_has_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # help is wrapped to the terminal's width
    assert "usage: fedpack [-h] [--version] COMMAND ..." in out
    for name, text in COMMAND_HELP.items():
        assert f" {name} {text}" in out, name
        assert main([name, "--help"]) == 0
        assert text in " ".join(capsys.readouterr().out.split()), name


def test_the_cli_is_imported_only_when_run_and_the_checks_only_by_check() -> None:
    code = (
        "import sys, fedpack; seen = ['fedpack._cli' in sys.modules]\n"
        "from fedpack._cli import main; main(['list'])\n"
        "seen.append('fedpack.testing' in sys.modules)\n"
        "main(['check', 'clipping_bit']); seen.append('fedpack.testing' in sys.modules)\n"
        "print(seen)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env=clean_environ(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[False, False, True]"


def test_python_m_fedpack_is_the_same_program(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fedpack._api, "_default", None)
    main(["list", "--json"])
    in_process = json.loads(capsys.readouterr().out)
    done = subprocess.run(
        [sys.executable, "-m", "fedpack", "list", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=clean_environ(),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{**row, "state": "available"} for row in in_process]

    done = subprocess.run(
        [sys.executable, "-m", "fedpack", "list", "--nope"],
        capture_output=True,
        text=True,
        check=False,
        env=clean_environ(),
    )
    assert done.returncode == 2
    assert "fedpack: error: unrecognized arguments: --nope" in done.stderr
