"""fedpack.testing (the conformance checks) and the `fedpack check` command."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import fedpack
from fedpack import Encoded, PackerRegistry, PackingError, Sections
from fedpack._cli import main
from fedpack.checks import array_list
from fedpack.testing import CHECKS, PackerConformance, run_checks


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> PackerRegistry:
    """A fresh process-wide registry, so in-process registrations do not leak."""
    fresh = PackerRegistry()
    monkeypatch.setattr(fedpack._api, "_default", fresh)
    return fresh


# -- packers used by the tests: one good, several broken -------------------------------------


class GoodPacker(fedpack.ParameterPacker[list[str]]):
    """Weights plus a list of tags (one 1-D str array); a correct packer."""

    name: ClassVar[str] = "kit_good"

    def encode(self, model_weights: fedpack.NDArrays, additional_parameters: list[str]) -> Encoded:
        if not isinstance(additional_parameters, list) or not all(
            isinstance(t, str) for t in additional_parameters
        ):
            raise PackingError("kit_good: expected a list of str")
        tags = np.array(additional_parameters, dtype=np.str_)
        return Encoded([("weights", model_weights), ("tags", [tags])])

    def decode(self, sections: Sections, meta: Mapping[str, Any]) -> tuple[fedpack.NDArrays, Any]:
        tags = sections.one("tags")
        if tags.dtype.kind != "U" or tags.ndim != 1:
            raise PackingError(f"kit_good: tags ({sections.where('tags')}): expected 1-D str")
        return sections["weights"], tags.tolist()

    def split_unframed(self, packed: fedpack.NDArrays) -> Sections:
        if not packed:
            raise PackingError("kit_good: expected at least the tags array")
        return Sections.split(packed, [("weights", len(packed) - 1), ("tags", 1)])

    @classmethod
    def example_extras(cls, weights: fedpack.NDArrays) -> list[Any]:
        return [[], ["a", "bc"]]


class CopyingPacker(GoodPacker):
    name: ClassVar[str] = "kit_copying"

    def encode(self, model_weights: fedpack.NDArrays, additional_parameters: list[str]) -> Encoded:
        encoded = super().encode([w.copy() for w in model_weights], additional_parameters)
        return encoded


class WrongSplitPacker(GoodPacker):
    name: ClassVar[str] = "kit_wrong_split"

    def decode(self, sections: Sections, meta: Mapping[str, Any]) -> tuple[fedpack.NDArrays, Any]:
        weights, tags = super().decode(sections, meta)
        return weights[:-1], tags  # silently drops the last weight


class KeyErrorPacker(GoodPacker):
    name: ClassVar[str] = "kit_key_error"

    def split_unframed(self, packed: fedpack.NDArrays) -> Sections:
        if not packed:
            raise KeyError("tags")
        return super().split_unframed(packed)

    def decode(self, sections: Sections, meta: Mapping[str, Any]) -> tuple[fedpack.NDArrays, Any]:
        lookup = dict(zip(sections, sections.values(), strict=True))
        if len(lookup["tags"]) != 1:
            raise KeyError("one tags array")
        return super().decode(sections, meta)


class MutatingPacker(GoodPacker):
    name: ClassVar[str] = "kit_mutating"

    def encode(self, model_weights: fedpack.NDArrays, additional_parameters: list[str]) -> Encoded:
        additional_parameters.append("x") if additional_parameters else None
        return super().encode(model_weights, additional_parameters)


class NoExamplesPacker(GoodPacker):
    name: ClassVar[str] = "kit_no_examples"

    @classmethod
    def example_extras(cls, weights: fedpack.NDArrays) -> list[Any]:
        return []


class HalfPacker(fedpack.ParameterPacker[None]):
    """Lossy: float32/float64 weights travel as float16."""

    name: ClassVar[str] = "kit_half"
    lossy_tolerance: ClassVar[float | None] = 1e-3
    transforms_weights: ClassVar[bool] = True

    def encode(self, model_weights: fedpack.NDArrays, additional_parameters: None) -> Encoded:
        if additional_parameters is not None:
            raise PackingError("kit_half: expected None")
        sent = [w.astype(np.float16) if w.dtype.kind == "f" else w for w in model_weights]
        kinds = np.array([w.dtype.str for w in model_weights], dtype=np.str_)
        return Encoded([("weights", sent), ("dtypes", [kinds])])

    def decode(self, sections: Sections, meta: Mapping[str, Any]) -> tuple[fedpack.NDArrays, None]:
        kinds = sections.one("dtypes")
        if kinds.dtype.kind != "U" or kinds.shape != (len(sections["weights"]),):
            raise PackingError("kit_half: bad dtypes")
        out = []
        for w, kind in zip(sections["weights"], kinds.tolist(), strict=True):
            if kind not in ("<f4", "<f8", "<f2") and w.dtype.str != kind:
                raise PackingError("kit_half: dtype mismatch")
            if kind in ("<f4", "<f8", "<f2"):
                if w.dtype != np.float16:
                    raise PackingError("kit_half: expected float16")
                w = w.astype(kind)
            out.append(w)
        return out, None

    def split_unframed(self, packed: fedpack.NDArrays) -> Sections:
        if not packed:
            raise PackingError("kit_half: empty")
        return Sections.split(packed, [("weights", len(packed) - 1), ("dtypes", 1)])

    @classmethod
    def example_extras(cls, weights: fedpack.NDArrays) -> list[Any]:
        return [None]


class UndeclaredLossyPacker(HalfPacker):
    name: ClassVar[str] = "kit_undeclared_lossy"
    lossy_tolerance: ClassVar[float | None] = None


def outcomes(results: list[fedpack.testing.CheckResult]) -> dict[str, str]:
    return {r.check: r.outcome for r in results}


def reason(results: list[fedpack.testing.CheckResult], check: str) -> str:
    return next(r.reason for r in results if r.check == check)


# -- the plain check functions -----------------------------------------------------------------


def test_clipping_bit_passes_every_check() -> None:
    results = run_checks("clipping_bit")
    assert [r.check for r in results] == list(CHECKS)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    assert "fedpack-clipping-bit==" in reason(results, "metadata")


def test_a_good_class_passes_without_being_registered(registry: PackerRegistry) -> None:
    results = run_checks(GoodPacker)
    assert outcomes(results) == {**dict.fromkeys(CHECKS, "passed"), "metadata": "skipped"}
    assert reason(results, "metadata") == "registered in-process: no distribution metadata"
    assert "kit_good" not in registry.names()  # a private registry was used


def test_in_process_registration_has_no_distribution(registry: PackerRegistry) -> None:
    registry.register(GoodPacker)
    results = run_checks("kit_good")
    assert outcomes(results)["frame"] == "passed"
    assert reason(results, "metadata") == "registered in-process: no distribution metadata"


def test_copying_weights_fails_no_copies() -> None:
    results = run_checks(CopyingPacker)
    assert outcomes(results)["no_copies"] == "failed"
    assert "pack_parameters copied weight 0" in reason(results, "no_copies")
    assert outcomes(results)["round_trip[framed]"] == "passed"


def test_a_silently_wrong_split_fails_the_round_trips() -> None:
    results = run_checks(WrongSplitPacker)
    for check in ("round_trip[framed]", "round_trip[unframed]", "frame"):
        assert outcomes(results)[check] == "failed"
    assert "round trip changed the data: expected 11 weights, found 10" in reason(
        results, "round_trip[framed]"
    )


def test_key_error_on_malformed_input_fails() -> None:
    results = run_checks(KeyErrorPacker)
    framed = reason(results, "malformed[framed]")
    assert outcomes(results)["malformed[framed]"] == "failed"
    assert "raised KeyError('one tags array') instead of fedpack.PackingError" in framed
    assert "frame section counts" in framed
    assert outcomes(results)["malformed[unframed]"] == "failed"
    assert "empty list: raised KeyError('tags')" in reason(results, "malformed[unframed]")


def test_mutating_the_input_fails() -> None:
    results = run_checks(MutatingPacker)
    assert "pack_parameters modified its input" in reason(results, "round_trip[framed]")


def test_no_example_extras_are_reported_as_skipped() -> None:
    results = run_checks(NoExamplesPacker)
    assert outcomes(results) == {
        "name": "passed",
        **{check: "skipped" for check in list(CHECKS)[1:]},
    }
    assert reason(results, "round_trip[framed]").startswith("no example extras")


def test_extras_and_options_factories() -> None:
    seen: list[int] = []

    def extras(weights: fedpack.NDArrays) -> list[Any]:
        seen.append(len(weights))
        return [["x"]] if len(weights) == 1 else []

    results = run_checks(NoExamplesPacker, extras=extras, options=lambda w: {})
    assert outcomes(results)["round_trip[unframed]"] == "passed"
    assert reason(results, "round_trip[framed]") == "1 payloads round-tripped in the framed layout"
    assert 1 in seen


def test_bad_options_fail_with_the_constructor_error() -> None:
    results = run_checks(GoodPacker, options=lambda w: {"colour": "red"})
    assert "GoodPacker(framed=True, **{'colour': 'red'}) raised TypeError" in reason(
        results, "round_trip[framed]"
    )


def test_lossy_packer_within_its_declared_tolerance() -> None:
    results = run_checks(HalfPacker)
    assert outcomes(results)["round_trip[framed]"] == "passed"
    assert outcomes(results)["no_copies"] == "skipped"
    assert "transforms_weights" in reason(results, "no_copies")


def test_lossy_packer_without_a_declared_tolerance_fails() -> None:
    results = run_checks(UndeclaredLossyPacker)
    assert outcomes(results)["round_trip[framed]"] == "failed"
    assert "values differ" in reason(results, "round_trip[framed]")
    tight = run_checks(HalfPacker, tolerance=1e-9, checks=["round_trip[framed]"])
    assert "exceeds the declared tolerance 1e-09" in tight[0].reason


def test_unknown_packer_and_unknown_check() -> None:
    (result,) = run_checks("no_such_packer")
    assert (result.check, result.outcome) == ("load", "failed")
    assert result.reason.startswith("UnknownPackerError: unknown packer 'no_such_packer'")
    with pytest.raises(ValueError, match=r"unknown check\(s\) \['nope'\]"):
        run_checks("clipping_bit", checks=["nope"])
    (bad,) = run_checks(42)  # type: ignore[arg-type]
    assert "expected a packer name or class, found int" in bad.reason


def test_check_result_to_dict() -> None:
    (result,) = run_checks("clipping_bit", checks=["name"])
    assert result.to_dict() == {
        "packer": "clipping_bit",
        "check": "name",
        "outcome": "passed",
        "reason": "name 'clipping_bit' is [a-z0-9_]+",
    }
    assert (result.passed, result.failed, result.skipped) == (True, False, False)


# -- the pytest entry ----------------------------------------------------------------------------


class TestClippingBitConformance(PackerConformance):
    packer = "clipping_bit"


class TestGoodClassConformance(PackerConformance):
    packer = GoodPacker


def test_conformance_class_fails_and_skips_with_the_reason() -> None:
    class Broken(PackerConformance):
        packer = WrongSplitPacker

    with pytest.raises(
        pytest.fail.Exception, match=r"kit_wrong_split: round_trip\[framed\]: weights"
    ):
        Broken().test_round_trip_framed()

    class Empty(PackerConformance):
        packer = NoExamplesPacker

    with pytest.raises(pytest.skip.Exception, match=r"round_trip\[framed\]: no example extras"):
        Empty().test_round_trip_framed()

    class Custom(PackerConformance):
        packer = NoExamplesPacker

        def make_extras(self, weights: fedpack.NDArrays) -> list[Any]:
            return [["custom"]]

    assert Custom().run_check("round_trip[framed]").passed


# -- fedpack check -------------------------------------------------------------------------------


def test_cli_passes_on_clipping_bit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "clipping_bit"]) == 0
    out = capsys.readouterr().out
    assert "clipping_bit: ok (10 passed, 0 failed, 0 skipped)" in out
    assert out.endswith("1 packer(s) checked, 0 check(s) failed\n")


def test_cli_passes_on_the_example_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("fedpack_int8")
    assert main(["check", "int8", "-v"]) == 0
    out = capsys.readouterr().out
    assert "int8: ok (9 passed, 0 failed, 1 skipped)" in out
    assert "PASSED  metadata: provided by fedpack-int8==0.1.0" in out


def test_cli_fails_on_broken_packers(
    registry: PackerRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    for cls in (CopyingPacker, WrongSplitPacker, KeyErrorPacker, NoExamplesPacker):
        registry.register(cls)
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "clipping_bit: ok" in out
    assert "kit_copying: FAIL (8 passed, 1 failed, 1 skipped)" in out
    assert (
        "  FAILED  no_copies: weights 'mixed', framed=True: pack_parameters copied weight 0" in out
    )
    assert "kit_wrong_split: FAIL" in out
    assert "instead of fedpack.PackingError" in out
    assert "kit_no_examples: ok (1 passed, 0 failed, 9 skipped)" in out
    assert "  SKIPPED round_trip[framed]: no example extras" in out


def test_cli_json(registry: PackerRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry.register(CopyingPacker)
    assert main(["check", "--json", "kit_copying", "clipping_bit"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert {row["packer"] for row in rows} == {"kit_copying", "clipping_bit"}
    failed = [row for row in rows if row["outcome"] == "failed"]
    assert [(row["packer"], row["check"]) for row in failed] == [("kit_copying", "no_copies")]


def test_cli_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "clipping-bits"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: fedpack check ")
    assert "fedpack check: error: unknown packer 'clipping_bits'. Did you mean 'clipping_bit'?" in (
        captured.err
    )
    assert "is installed" not in captured.err


def test_cli_blocked_name_is_a_usage_error_that_says_blocked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEDPACK_DISABLE_PLUGINS", "clipping_bit")
    monkeypatch.setattr(fedpack._api, "_default", PackerRegistry())
    for argv in (["check", "clipping_bit"], ["check", "scaffold+Clipping-Bit"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert (
            "fedpack check: error: packer 'clipping_bit' is installed (fedpack-clipping-bit=="
            in (err)
        )
        assert "but blocked by FEDPACK_DISABLE_PLUGINS" in err
        assert "unknown packer" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "clipping_bit+"], "composition 'clipping_bit+': expected two or more"),
        (["check", ""], "unknown packer ''"),
        (["check", "clipping_bit", "nope"], "unknown packer 'nope'"),
        (["check", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_cli_names_are_accepted_as_the_registry_accepts_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "Clipping-Bit", "clipping_bit", " CLIPPING_BIT "]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "clipping_bit: ok (10 passed, 0 failed, 0 skipped)"
    assert out.endswith("1 packer(s) checked, 0 check(s) failed\n")
    assert main(["check", "Scaffold+Clipping-Bit"]) == 0
    assert capsys.readouterr().out.startswith("scaffold+clipping_bit: ok (")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_cli_nothing_to_check_fails(
    json_flag: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fedpack._api, "_default", PackerRegistry(paths=[]))
    assert main(["check", *json_flag]) == 1
    captured = capsys.readouterr()
    assert captured.out == ("[]\n" if json_flag else "")
    assert captured.err == (
        "fedpack check: no packers to check: none is installed "
        "(pip install fedpack for the built-ins)\n"
    )


def test_cli_nothing_to_check_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fedpack._api, "_default", PackerRegistry(autoload=False))
    assert main(["check"]) == 1
    assert capsys.readouterr().err == (
        "fedpack check: no packers to check: plugin discovery is off (FEDPACK_PLUGIN_AUTOLOAD=0)\n"
    )
    everything = fedpack.PackerRegistry().names()
    monkeypatch.setattr(fedpack._api, "_default", PackerRegistry(disabled=everything))
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fedpack check: no packers to check: every installed packer is blocked: ")
    assert "clipping_bit (disabled by FEDPACK_DISABLE_PLUGINS)" in err


def fake_plugin(tmp_path: Path, *, dist: str, version: str | None, body: str) -> None:
    """An installed plugin on ``tmp_path``: a module and a dist-info with its entry point."""
    module = f"{dist.replace('-', '_')}_mod"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
    stem = dist.replace("-", "_") + (f"-{version}" if version else "")
    info = tmp_path / f"{stem}.dist-info"
    info.mkdir()
    meta = f"Metadata-Version: 2.1\nName: {dist}\n" + (f"Version: {version}\n" if version else "")
    (info / "METADATA").write_text(meta + "\n")
    (info / "entry_points.txt").write_text(f"[fedpack.packers]\nfake_bit = {module}\n")


PLUGIN = """
    from typing import ClassVar
    import fedpack

    class FakeBit(fedpack.ScalarPacker):
        name: ClassVar[str] = "fake_bit"
        section: ClassVar[str] = "fake_bit"
    {extra}

    @fedpack.hookimpl
    def fedpack_register_packers(register):
        register(FakeBit)
"""


def use_path_registry(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.setattr(fedpack._api, "_default", PackerRegistry(paths=[str(path)]))


def test_cli_on_an_installed_third_party_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_plugin(tmp_path, dist="fedpack-fake", version="0.3", body=PLUGIN.format(extra=""))
    use_path_registry(monkeypatch, tmp_path)
    assert main(["check", "-v"]) == 0
    out = capsys.readouterr().out
    assert "fake_bit: ok (10 passed, 0 failed, 0 skipped)" in out
    assert "metadata: provided by fedpack-fake==0.3 (entry point fedpack_fake_mod)" in out


def test_cli_on_a_broken_installed_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = """
        def split_unframed(self, packed):
            return fedpack.Sections.split(packed, [("weights", len(packed) - 1), ("fake_bit", 1)])
    """
    extra = textwrap.indent(textwrap.dedent(broken), "        ")
    fake_plugin(tmp_path, dist="fedpack-fake-broken", version=None, body=PLUGIN.format(extra=extra))
    use_path_registry(monkeypatch, tmp_path)
    assert main(["check", "fake_bit"]) == 1
    out = capsys.readouterr().out
    assert "FAILED  metadata: list_packers(): expected a distribution and a version" in out
    assert "FAILED  malformed[unframed]" not in out  # Sections.split raises PackingError itself


def test_cli_on_a_plugin_that_fails_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_plugin(
        tmp_path, dist="fedpack-fake-noimport", version="1.0", body="raise ImportError('boom')\n"
    )
    use_path_registry(monkeypatch, tmp_path)
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "fake_bit: FAIL (0 passed, 1 failed, 0 skipped)" in out
    assert "FAILED  load: PluginLoadError: plugin fedpack-fake-noimport==1.0" in out


def test_python_dash_m_fedpack_check() -> None:
    cmd = [sys.executable, "-m", "fedpack", "check", "clipping_bit", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert {row["outcome"] for row in json.loads(out.stdout)} == {"passed"}


def test_array_list_is_what_packers_use() -> None:
    # keeps the GoodPacker honest: a bare array is not a list of arrays
    with pytest.raises(PackingError, match="expected a list of numpy arrays"):
        array_list(np.zeros(2), what="x")
