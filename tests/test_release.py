"""Publishable projects: one version, the LICENSE and complete index metadata everywhere.

The projects are found by ``.ci/release.py`` (every folder with a ``pyproject.toml`` declaring a
``[project]``), so a new plugin is checked without being listed here. ``tox -e release`` builds
and installs them; these tests check the sources, fast, in every test environment.
"""

from __future__ import annotations

import configparser
import importlib.util
import io
import re
import shutil
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from builtin_packers import EXPECTED

ROOT = Path(__file__).resolve().parents[1]
URL = "https://github.com/fedpack/fedpack"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def load_release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fedpack_release_check", ROOT / ".ci/release.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = load_release()
PROJECTS: list[Path] = release.projects()


def rel(folder: Path) -> str:
    return folder.relative_to(ROOT).as_posix() if folder != ROOT else "."


def project(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = release.pyproject(folder)["project"]
    return data


def test_projects_are_found() -> None:
    found = {rel(folder) for folder in PROJECTS}
    plugins = {rel(p.parent) for p in ROOT.glob("plugins/*/pyproject.toml")}
    assert plugins
    assert {".", "core", "tests/plugin-pkg", "examples/fedpack-int8"} | plugins <= found
    assert PROJECTS[0] == ROOT


def test_builtin_packers_are_the_plugins_entry_points() -> None:
    builtins = release.builtin_packers()
    assert builtins == sorted(EXPECTED)
    assert "echo" not in builtins
    assert "int8" not in builtins


def test_versions_agree() -> None:
    assert release.version_problems() == []


def copy_sources(tmp_path: Path) -> Path:
    """The pyproject files and fedpack/__init__.py of every project, in a scratch tree."""
    for folder in PROJECTS:
        target = tmp_path / rel(folder)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "pyproject.toml", target / "pyproject.toml")
    init = tmp_path / "core/src/fedpack/__init__.py"
    init.parent.mkdir(parents=True)
    shutil.copy(ROOT / "core/src/fedpack/__init__.py", init)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "plugins/scaffold/pyproject.toml",
            'version = "{v}"',
            'version = "9.9.9"',
            "plugins/scaffold/pyproject.toml: version: expected '{v}' (core's), found '9.9.9'",
        ),
        (
            "pyproject.toml",
            '"fedpack-scaffold=={v}"',
            '"fedpack-scaffold==0.0.1"',
            "pyproject.toml: requirement 'fedpack-scaffold==0.0.1' does not accept version '{v}'",
        ),
        (
            "pyproject.toml",
            '"fedpack-scaffold=={v}"',
            '"fedpack-scaffold>=0.1"',
            "pyproject.toml: requirement 'fedpack-scaffold>=0.1': expected fedpack-scaffold=={v}",
        ),
        (
            "plugins/sparse-coo/pyproject.toml",
            '"fedpack-core>=0.1,<0.2"',
            '"fedpack-core>=0.2"',
            "plugins/sparse-coo/pyproject.toml: requirement 'fedpack-core>=0.2' does not accept "
            "version '{v}'",
        ),
        (
            "core/src/fedpack/__init__.py",
            '__version__ = "{v}"',
            '__version__ = "0.0.0"',
            "core/src/fedpack/__init__.py: __version__: expected '{v}', found '0.0.0'",
        ),
    ],
)
def test_version_disagreement_is_reported(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    version = project(ROOT / "core")["version"]
    root = copy_sources(tmp_path)
    assert release.version_problems(root) == []
    edit(root / file, old.format(v=version), new)
    assert message.format(v=version) in release.version_problems(root)


def test_a_version_bump_of_core_alone_is_reported(tmp_path: Path) -> None:
    version = project(ROOT / "core")["version"]
    root = copy_sources(tmp_path)
    edit(root / "core/pyproject.toml", f'version = "{version}"', 'version = "0.2.0"')
    problems = release.version_problems(root)
    # every other project, every range on the core, every pin, fedpack.__version__
    assert len(problems) > len(PROJECTS)
    assert all("0.2.0" in problem for problem in problems), problems


@pytest.mark.parametrize("folder", PROJECTS, ids=rel)
def test_project_ships_the_license(folder: Path) -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert (folder / "LICENSE").read_text(encoding="utf-8") == text
    meta = project(folder)
    assert meta["license"] == "Apache-2.0"
    assert meta["license-files"] == ["LICENSE"]
    build = release.pyproject(folder)["build-system"]
    assert build["requires"] == ["hatchling>=1.27"]  # PEP 639 license-files


@pytest.mark.parametrize("folder", PROJECTS, ids=rel)
def test_project_metadata_is_complete(folder: Path) -> None:
    meta = project(folder)
    assert meta["urls"] == {
        "Homepage": URL,
        "Source": URL,
        "Issues": f"{URL}/issues",
        "Changelog": f"{URL}/blob/main/CHANGELOG.md",
    }
    classifiers = meta["classifiers"]
    for python in PYTHONS:
        assert f"Programming Language :: Python :: {python}" in classifiers
    assert meta["requires-python"] == f">={PYTHONS[0]}"
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Topic :: ") for c in classifiers)
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert meta["keywords"]
    assert meta["description"]
    assert meta["readme"] == "README.md"
    if folder != ROOT:  # "Typing :: Typed": every package says so
        assert list(folder.glob("src/*/py.typed"))


def test_test_plugin_is_never_uploaded() -> None:
    assert "Private :: Do Not Upload" in project(ROOT / "tests/plugin-pkg")["classifiers"]


LINK = re.compile(r"\]\(([^)\s]+)\)|\bsrc=\"([^\"]+)\"")


@pytest.mark.parametrize("folder", PROJECTS, ids=rel)
def test_readme_links_work_on_an_index_page(folder: Path) -> None:
    text = (folder / "README.md").read_text(encoding="utf-8")
    links = [a or b for a, b in LINK.findall(text)]
    relative = [link for link in links if not link.startswith(("https://", "http://", "#"))]
    assert relative == []


def test_root_sdist_ships_no_repository() -> None:
    sdist = release.pyproject(ROOT)["tool"]["hatch"]["build"]["targets"]["sdist"]
    assert sdist == {"only-include": ["pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"]}
    for name in sdist["only-include"]:
        assert (ROOT / name).is_file()


def test_changelog_names_the_version() -> None:
    version = project(ROOT / "core")["version"]
    assert f"\n## [{version}]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


WORKSPACE = [f for f in PROJECTS if f != ROOT and rel(f).split("/")[0] in {"core", "plugins"}]
WORKSPACE += [ROOT / "examples/fedpack-int8"]


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file, ``-r`` includes followed."""
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("-r "):
            lines += requirement_lines(path.parent / line[3:].strip())
        elif line and not line.startswith("#"):
            lines.append(line)
    return lines


@pytest.mark.parametrize("folder", WORKSPACE, ids=rel)
def test_project_is_in_the_developer_setup_and_tox(folder: Path) -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    assert f"-e {{tox_root}}/{rel(folder)}" in tox["workspace"]["deps"].splitlines()
    assert f"{rel(folder)}/src" in tox["testenv:type"]["commands"].split()
    assert f"-e ./{rel(folder)}" in requirement_lines(ROOT / "requirements-dev.txt")


def test_test_plugin_is_in_tox_only() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    assert "-e {tox_root}/tests/plugin-pkg" in tox["workspace"]["deps"].splitlines()
    dev = requirement_lines(ROOT / "requirements-dev.txt")
    assert [line for line in dev if "plugin-pkg" in line] == []


def test_missing_interpreters_skip_outside_ci_and_fail_in_ci() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    value = tox["tox"]["skip_missing_interpreters"]
    assert value == "{[_ci-{env:CI:false}]skip_missing_interpreters}"
    for ci in ("false", "0"):
        assert tox[f"_ci-{ci}"]["skip_missing_interpreters"] == "true"
    for ci in ("true", "True", "1"):
        assert tox[f"_ci-{ci}"]["skip_missing_interpreters"] == "false"
    assert "release" in tox["tox"]["env_list"].split()
    assert 'export CI="${CI:-true}"' in (ROOT / ".ci/run").read_text(encoding="utf-8")


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def make_sdist(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_release_check_finds_the_license_in_archives(tmp_path: Path) -> None:
    text = (ROOT / "LICENSE").read_bytes()
    wheel = make_wheel(tmp_path / "x-1-py3-none-any.whl", {"x-1.dist-info/licenses/LICENSE": text})
    assert release.check_license(wheel, text) == "x-1.dist-info/licenses/LICENSE"
    sdist = make_sdist(tmp_path / "x-1.tar.gz", {"x-1/PKG-INFO": b"", "x-1/LICENSE": text})
    assert release.check_license(sdist, text) == "x-1/LICENSE"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"x-1.dist-info/METADATA": b""}, "x-1-py3-none-any.whl: expected one LICENSE, found []"),
        (
            {"x-1.dist-info/licenses/LICENSE": b"MIT"},
            "x-1-py3-none-any.whl: x-1.dist-info/licenses/LICENSE differs from the repository's",
        ),
    ],
)
def test_release_check_fails_without_the_license(
    tmp_path: Path, members: dict[str, bytes], message: str
) -> None:
    wheel = make_wheel(tmp_path / "x-1-py3-none-any.whl", members)
    with pytest.raises(release.ReleaseError, match=re.escape(message)):
        release.check_license(wheel, (ROOT / "LICENSE").read_bytes())


def test_release_check_fails_when_the_root_sdist_ships_the_repository(tmp_path: Path) -> None:
    text = (ROOT / "LICENSE").read_bytes()
    files = {f"fedpack-1/{name}": text for name in release.ROOT_SDIST_FILES}
    good = make_sdist(tmp_path / "fedpack-1.tar.gz", files)
    wheel = make_wheel(
        tmp_path / "fedpack-1-py3-none-any.whl", {"f.dist-info/licenses/LICENSE": text}
    )
    release.check_archives({"fedpack": [good, wheel]})
    bad = make_sdist(tmp_path / "fedpack-2.tar.gz", {**files, "fedpack-1/core/x.py": b""})
    with pytest.raises(release.ReleaseError, match=r"found \[.*'core/x.py'"):
        release.check_archives({"fedpack": [bad, wheel]})
