"""Run FL4Health 0.4.2's own packer tests against its module, then against fedpack's drop-in.

Usage: ``python run_fl4health_tests.py WORKDIR``. The tox environment ``fl4health`` runs it.

1. ``pip download`` FL4Health 0.4.2's source distribution (no dependencies: FL4Health pins
   Python <3.11, torch 2.6, numpy<2 and flwr 1.18, which do not install beside the current
   stack; its packer tests only need torch, flwr, numpy, scipy and pytest, which the
   environment provides) and check its SHA-256.
2. Extract its ``fl4health/`` package and ``tests/`` and check that every file the run needs is
   there (a clear error names what is missing if the layout ever differs).
3. Run ``tests/parameter_exchange/test_packing_exchanger.py`` and ``test_layer_exchanger.py``
   twice with pytest from the extracted tree, FL4Health's package imported from source: once
   with FL4Health's own ``parameter_packer`` module (proving the harness), once with that
   module replaced in ``sys.modules`` by ``fedpack_fl4health`` (the pytest plugin
   ``fl4health_packer_plugin`` beside this file). No test file is edited.

Each run must report exactly the expected number of tests, all passed (read from pytest's
JUnit XML), and every step is bounded in time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

VERSION = "0.4.2"
SDIST = f"fl4health-{VERSION}.tar.gz"
SDIST_SHA256 = "ea6341774e8b7e9dd58727235aa51cb11a64042dba4cb4773ccb765bcdb64f8f"
ROOT = f"fl4health-{VERSION}"
TESTS = (
    "tests/parameter_exchange/test_packing_exchanger.py",
    "tests/parameter_exchange/test_layer_exchanger.py",
)
EXPECTED_TESTS = 10
#: Files the run needs besides the test files (their imports), checked after extraction.
NEEDED = (
    "fl4health/__init__.py",
    "fl4health/parameter_exchange/__init__.py",
    "fl4health/parameter_exchange/parameter_packer.py",
    "fl4health/parameter_exchange/packing_exchanger.py",
    "fl4health/parameter_exchange/layer_exchanger.py",
    "fl4health/parameter_exchange/sparse_coo_parameter_exchanger.py",
    "tests/__init__.py",
    "tests/test_utils/models_for_test.py",
    *TESTS,
)
EXTRACTED = ("fl4health/", "tests/", "pyproject.toml")
DOWNLOAD_TIMEOUT = 600
PYTEST_TIMEOUT = 600
HERE = Path(__file__).resolve().parent


class HarnessError(RuntimeError):
    """A step of the harness failed; the message says which and why."""


def download(workdir: Path) -> Path:
    """Fetch the sdist from the package index into ``workdir`` and check its hash."""
    dist = workdir / "dist"
    target = dist / SDIST
    if not target.exists():
        dist.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--ignore-requires-python",  # FL4Health 0.4.2 declares Python <3.11
            f"fl4health=={VERSION}",
            "--dest",
            str(dist),
        ]
        _run(command, timeout=DOWNLOAD_TIMEOUT, what="downloading FL4Health's sdist")
    if not target.exists():
        found = sorted(p.name for p in dist.iterdir())
        raise HarnessError(f"expected {SDIST} from pip download, found {found}")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise HarnessError(f"{SDIST}: expected SHA-256 {SDIST_SHA256}, found {digest}")
    return target


def extract(sdist: Path, workdir: Path) -> Path:
    """Extract FL4Health's package and tests; check that the files the run needs exist."""
    root = workdir / ROOT
    with tarfile.open(sdist) as archive:
        members = [
            m
            for m in archive.getmembers()
            if m.name.startswith(f"{ROOT}/")
            and m.name[len(ROOT) + 1 :].startswith(EXTRACTED)
            and (m.isfile() or m.isdir())
        ]
        if not members:
            raise HarnessError(f"{sdist.name}: expected a top-level folder {ROOT}/, found none")
        archive.extractall(workdir, members=members, filter="data")
    missing = [name for name in NEEDED if not (root / name).is_file()]
    if missing:
        raise HarnessError(
            f"{sdist.name}: the source distribution's layout differs from FL4Health {VERSION}'s: "
            f"missing {missing}"
        )
    return root


def run_tests(root: Path, workdir: Path, packer: str) -> None:
    """Run the packer tests with ``packer`` ("fl4health" or "fedpack") as parameter_packer."""
    report = workdir / f"junit-{packer}.xml"
    report.unlink(missing_ok=True)
    env = dict(os.environ)
    env["FEDPACK_FL4HEALTH_PACKER"] = packer
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])])
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "fl4health_packer_plugin",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        f"--junitxml={report}",
        "-v",
        *TESTS,
    ]
    print(f"\n=== FL4Health {VERSION}'s packer tests, parameter_packer from: {packer}", flush=True)
    _run(command, timeout=PYTEST_TIMEOUT, what=f"pytest ({packer})", cwd=root, env=env)
    suite = ET.parse(report).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    if counts != {"tests": EXPECTED_TESTS, "failures": 0, "errors": 0, "skipped": 0}:
        raise HarnessError(
            f"pytest ({packer}): expected {EXPECTED_TESTS} tests, all passed, found {counts}"
        )


def _run(
    command: list[str],
    *,
    timeout: float,
    what: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise HarnessError(f"{what}: no result within {timeout:.0f} s") from error
    if result.returncode != 0:
        raise HarnessError(f"{what}: exit status {result.returncode}")


def main(argv: list[str] | None = None) -> int:
    """Download, extract and run both passes; exit non-zero with a message on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="a scratch folder (the tox env's tmp dir)")
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        root = extract(download(workdir), workdir)
        for packer in ("fl4health", "fedpack"):
            run_tests(root, workdir, packer)
    except HarnessError as error:
        print(f"\nFL4Health harness FAILED: {error}", file=sys.stderr)
        return 1
    print(
        f"\nFL4Health {VERSION}'s packer tests: {EXPECTED_TESTS} passed against FL4Health's "
        f"module and {EXPECTED_TESTS} passed against fedpack_fl4health"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
