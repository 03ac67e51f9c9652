"""Release check: build every distribution, check it, and run fedpack from the built files alone.

Run by the ``release`` tox environment (``tox -e release``), itself run by ``.ci/run``::

    python .ci/release.py --dist DIR --venv DIR

Steps (each one fails the run with a message saying what was expected and what was found):

0. every project has the same version, and every requirement on a project of this repository
   (``==`` pins, ranges) accepts it (:func:`version_problems`; the test suite checks it too);
1. build the wheel and the sdist of every project (``python -m build``: the wheel is built
   from the sdist, so a file missing from the sdist fails the build);
2. ``twine check --strict`` on every file;
3. every wheel and sdist carries the project's ``LICENSE``; the root ``fedpack`` sdist carries
   its metadata and documents only, not the rest of the repository;
4. a fresh virtual environment gets numpy and pluggy from the index, then ``fedpack`` and its
   fedpack requirements from the built files only (``--no-index --find-links``);
5. there, ``fedpack list`` shows the built-in packers (those of the projects ``fedpack``
   requires) and nothing else, and ``fedpack check`` passes;
6. TO COME (:func:`run_flower_app`): a short run of the example Flower app from the installed
   packages.

The projects are found, not listed: see :func:`projects`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parents[1]

#: Folders never searched for projects (besides hidden ones).
SKIP_DIRS = frozenset({"build", "dist", "src", "node_modules", "__pycache__"})

#: The only files of the root ``fedpack`` sdist (it has no code; hatchling adds .gitignore).
ROOT_SDIST_FILES = {
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "PKG-INFO",
    ".gitignore",
}


class ReleaseError(Exception):
    """A release check failed."""


def projects(root: Path = ROOT) -> list[Path]:
    """Every publishable project of the repository, the root first, then sorted by path.

    A project is a folder whose ``pyproject.toml`` has a ``[project]`` table; Flower apps
    (``[tool.flwr]``) are run, not published. Hidden folders and build outputs are not searched.
    """
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        if "pyproject.toml" not in files:
            continue
        data = tomllib.loads((Path(folder) / "pyproject.toml").read_text(encoding="utf-8"))
        if "project" in data and "flwr" not in data.get("tool", {}):
            found.append(Path(folder).resolve())
    return found


def pyproject(folder: Path) -> dict[str, Any]:
    """``folder/pyproject.toml``, parsed."""
    data: dict[str, Any] = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    return data


def project_name(folder: Path) -> str:
    """The distribution name declared by ``folder/pyproject.toml``."""
    name: str = pyproject(folder)["project"]["name"]
    return name


def requirements(folder: Path) -> list[Requirement]:
    """Every requirement of a project: its dependencies and all its extras."""
    project = pyproject(folder)["project"]
    texts = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        texts.extend(extra)
    return [Requirement(text) for text in texts]


def builtin_packers(root: Path = ROOT) -> list[str]:
    """The packers ``pip install fedpack`` provides: those of the projects it requires, sorted."""
    required = {req.name for req in requirements(root)}
    names: list[str] = []
    for folder in projects(root):
        if folder != root.resolve() and project_name(folder) in required:
            entry_points = pyproject(folder)["project"].get("entry-points", {})
            names.extend(entry_points.get("fedpack.packers", {}))
    return sorted(names)


def version_problems(root: Path = ROOT) -> list[str]:
    """Why the projects' versions disagree (empty when they agree).

    The version is ``core``'s. Every project declares it; ``fedpack.__version__`` says it; every
    requirement on a project of this repository accepts it (``==`` pins equal it, ranges such
    as ``>=0.1,<0.2`` contain it); the root ``fedpack`` pins the projects it requires with ``==``.
    """
    version: str = pyproject(root / "core")["project"]["version"]
    problems: list[str] = []
    folders = projects(root)
    names = {project_name(folder) for folder in folders}
    for folder in folders:
        where = (folder / "pyproject.toml").relative_to(root.resolve())
        found = pyproject(folder)["project"].get("version")
        if found != version:
            problems.append(f"{where}: version: expected {version!r} (core's), found {found!r}")
        for req in requirements(folder):
            if req.name in names and not req.specifier.contains(version, prereleases=True):
                problems.append(
                    f"{where}: requirement {str(req)!r} does not accept version {version!r}"
                )
    init = root / "core" / "src" / "fedpack" / "__init__.py"
    match = re.search(r'^__version__ = "([^"]+)"$', init.read_text(encoding="utf-8"), re.M)
    found_init = match.group(1) if match else None
    if found_init != version:
        problems.append(
            f"core/src/fedpack/__init__.py: __version__: expected {version!r}, found {found_init!r}"
        )
    for req in requirements(root):  # the meta-package pins the exact parts it bundles
        if req.name in names and str(req.specifier) != f"=={version}":
            problems.append(
                f"pyproject.toml: requirement {str(req)!r}: expected {req.name}=={version}"
            )
    return problems


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    """Run a command, echo it, and return its standard output; raise if it fails."""
    print("+", " ".join(str(a) for a in argv), flush=True)
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ReleaseError(
            f"{' '.join(str(a) for a in argv)} exited {done.returncode}\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done.stdout


def build(dist: Path) -> dict[str, list[Path]]:
    """Build every project into ``dist``; returns distribution name -> [sdist, wheel]."""
    if dist.exists():
        shutil.rmtree(dist)
    dist.mkdir(parents=True)
    built: dict[str, list[Path]] = {}
    for folder in projects():
        outdir = dist / project_name(folder)
        run(sys.executable, "-m", "build", "--outdir", outdir, folder)
        files = sorted(outdir.iterdir())
        kinds = sorted(f.suffix for f in files)
        if kinds != [".gz", ".whl"]:
            raise ReleaseError(f"{folder}: expected one sdist and one wheel, found {files}")
        built[project_name(folder)] = files
    for files in built.values():  # one flat folder for pip --find-links
        for file in files:
            shutil.copy2(file, dist / file.name)
    return built


def archive_names(path: Path) -> list[str]:
    """The member names of a wheel or an sdist."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    with tarfile.open(path) as archive:
        return archive.getnames()


def read_member(path: Path, member: str) -> bytes:
    """One member of a wheel or an sdist."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            return archive.read(member)
    with tarfile.open(path) as archive:
        extracted = archive.extractfile(member)
        if extracted is None:
            raise ReleaseError(f"{path.name}: {member} is not a file")
        return extracted.read()


def check_license(path: Path, license_text: bytes) -> str:
    """The archive carries the LICENSE (identical to the repository's); returns its member."""
    names = archive_names(path)
    if path.suffix == ".whl":
        wanted = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    else:
        top = names[0].split("/")[0]
        wanted = [n for n in names if n == f"{top}/LICENSE"]
    if len(wanted) != 1:
        raise ReleaseError(f"{path.name}: expected one LICENSE, found {wanted} in {names}")
    if read_member(path, wanted[0]) != license_text:
        raise ReleaseError(f"{path.name}: {wanted[0]} differs from the repository's LICENSE")
    return wanted[0]


def check_archives(built: dict[str, list[Path]]) -> None:
    """Every archive carries the LICENSE; the root sdist holds only its own files."""
    license_text = (ROOT / "LICENSE").read_bytes()
    for files in built.values():
        for path in files:
            member = check_license(path, license_text)
            print(f"{path.name}: {member}")
    root_sdist = next(f for f in built["fedpack"] if f.suffix == ".gz")
    names = archive_names(root_sdist)
    top = names[0].split("/")[0]
    members = {n.split("/", 1)[1] for n in names if "/" in n}
    if members != ROOT_SDIST_FILES:
        raise ReleaseError(
            f"{root_sdist.name}: expected exactly {sorted(ROOT_SDIST_FILES)}, found "
            f"{sorted(members)} under {top}/"
        )


def fresh_install(dist: Path, venv: Path) -> Path:
    """A new virtual environment with ``fedpack`` from the built files; returns its bin dir."""
    if venv.exists():
        shutil.rmtree(venv)
    run(sys.executable, "-m", "venv", venv)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = bindir / "python"
    core = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text(encoding="utf-8"))
    third_party = core["project"]["dependencies"]  # numpy, pluggy: from the index
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *third_party)
    run(
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-index", "--find-links", dist, "fedpack",
    )  # fmt: skip
    return bindir


def check_installed(bindir: Path) -> None:
    """``fedpack list`` shows the built-in packers only; ``fedpack check`` passes."""
    rows = json.loads(run(bindir / "fedpack", "list", "--json", cwd=bindir))
    names = sorted(row["name"] for row in rows)
    if names != builtin_packers():
        raise ReleaseError(f"fedpack list: expected the packers {builtin_packers()}, found {names}")
    bad = [row for row in rows if row["state"] != "available"]
    if bad:
        raise ReleaseError(f"fedpack list: expected every packer available, found {bad}")
    print(run(bindir / "fedpack", "list", cwd=bindir), end="")
    print(run(bindir / "fedpack", "check", cwd=bindir), end="")


def run_flower_app(bindir: Path) -> None:
    """A short run of the example Flower app on fedpack installed from the built files.

    Into the fresh environment: Flower and torch from the index (``flwr[simulation]``, and
    ``torch==2.13.0``, the CPU build on Python 3.11) and the app itself (``--no-deps``: its
    fedpack requirements are the built files already installed). Then the app's deployment
    test runs there: a SuperLink, two SuperNodes and ``flwr run`` on 127.0.0.1, SCAFFOLD with
    fedpack payloads both ways. The test must import fedpack from that environment.
    """
    python = bindir / "python"
    app = ROOT / "examples" / "flower-app"
    pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check")
    run(*pip, "torch==2.13.0", "flwr[simulation]>=1.41,<2", "pytest>=8")
    run(*pip, "--no-deps", app)
    where = run(python, "-c", "import fedpack, fedpack_app; print(fedpack.__file__)", cwd=bindir)
    if not Path(where.strip()).resolve().is_relative_to(bindir.parent.resolve()):
        raise ReleaseError(f"the app run would not use the installed fedpack: {where.strip()}")
    test = app / "tests" / "test_deployment.py"
    case = f"{test}::test_scaffold_on_a_deployment_carries_fedpack_payloads_both_ways"
    pytest = (python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}")
    print(run(*pytest, case, cwd=ROOT), end="")


def main(argv: list[str] | None = None) -> int:
    """Run every release check; 0 when all pass, 1 (with the reason) otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, required=True, help="output folder for the builds")
    parser.add_argument("--venv", type=Path, required=True, help="the fresh environment to make")
    args = parser.parse_args(argv)
    try:
        problems = version_problems()
        if problems:
            raise ReleaseError("the versions disagree:\n  " + "\n  ".join(problems))
        built = build(args.dist.resolve())
        run(
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            *sorted(args.dist.resolve().glob("*.*")),
        )
        check_archives(built)
        bindir = fresh_install(args.dist.resolve(), args.venv.resolve())
        check_installed(bindir)
        run_flower_app(bindir)
    except ReleaseError as exc:
        print(f"release check failed: {exc}", file=sys.stderr)
        return 1
    print(f"release check passed: {len(built)} projects, {2 * len(built)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
