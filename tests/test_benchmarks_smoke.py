"""CI smoke mode of the benchmark suite: ``benchmarks/run.py --quick`` runs and writes JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_json(tmp_path: Path) -> None:
    pytest.importorskip("fedpack_sparse_coo")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["quick"] is True
    assert {"packers", "codec", "sparse", "quantize", "int8", "cold_start"} <= set(report)
    resnet = report["packers"]["resnet18"]["packers"]
    assert resnet["scaffold"]["wire_x_dense"] == pytest.approx(2.0, rel=1e-3)
    assert len(report["sparse"]["results"]) == 3
    assert all(r["ratio_to_copy"]["copy"] == 1.0 for r in report["sparse"]["results"])
    assert "median" in proc.stdout
    if "error" not in report["quantize"]:
        rows = report["quantize"]["rows"]
        assert rows["4-bit per tensor"]["wire_x_float32"] == pytest.approx(0.125, abs=0.01)
        assert all(r["max_error_x_peak"] <= r["bound_x_peak"] * 1.001 for r in rows.values())


def test_bytes_to_accuracy_smoke(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("fedpack_quantize")
    out = tmp_path / "b2a.json"
    script = ROOT / "benchmarks" / "bytes_to_accuracy.py"
    args = ["--quick", "--rounds", "2", "--hidden", "32", "--steps", "5", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    expected = {
        "dense fp32",
        "q8",
        "q4",
        "topk+EF q8",
        "topk+EF fp32",
        "topk+EF fp32 FL4Health COO",
    }
    assert set(rows) == expected
    per_message = {name: row["bytes_per_message"] for name, row in rows.items()}
    # the compact top-k payload is smaller than FL4Health's COO of the same selection
    assert per_message["topk+EF fp32"] < per_message["topk+EF fp32 FL4Health COO"]
    assert per_message["q4"] < per_message["q8"] < per_message["dense fp32"]
