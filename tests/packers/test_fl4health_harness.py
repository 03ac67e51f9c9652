"""The FL4Health harness fails clearly when the sdist is not what it expects (no network)."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "compat/fl4health/harness/run_fl4health_tests.py"


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_fl4health_tests", HARNESS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sdist(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_missing_files_are_named(harness: ModuleType, tmp_path: Path) -> None:
    files = {f"{harness.ROOT}/{name}": "" for name in harness.NEEDED}
    del files[f"{harness.ROOT}/tests/test_utils/models_for_test.py"]
    sdist = _sdist(tmp_path / harness.SDIST, files)
    with pytest.raises(harness.HarnessError, match=r"layout differs.*models_for_test\.py"):
        harness.extract(sdist, tmp_path / "out")


def test_a_complete_layout_extracts_only_the_package_and_tests(
    harness: ModuleType, tmp_path: Path
) -> None:
    files = {f"{harness.ROOT}/{name}": "" for name in harness.NEEDED}
    files[f"{harness.ROOT}/docs/index.md"] = ""
    root = harness.extract(_sdist(tmp_path / harness.SDIST, files), tmp_path / "out")
    assert (root / "fl4health/parameter_exchange/parameter_packer.py").is_file()
    assert not (root / "docs").exists()


def test_another_top_folder_is_refused(harness: ModuleType, tmp_path: Path) -> None:
    sdist = _sdist(tmp_path / harness.SDIST, {"fl4health-9.9/fl4health/__init__.py": ""})
    with pytest.raises(
        harness.HarnessError, match=r"expected a top-level folder fl4health-0\.4\.2/"
    ):
        harness.extract(sdist, tmp_path / "out")


def test_a_sdist_with_another_hash_is_refused(harness: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    _sdist(tmp_path / "dist" / harness.SDIST, {f"{harness.ROOT}/x": ""})
    with pytest.raises(harness.HarnessError, match=f"expected SHA-256 {harness.SDIST_SHA256}"):
        harness.download(tmp_path)
