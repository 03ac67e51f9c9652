"""``fedpack demo``: the in-process federated simulation and its command."""

from __future__ import annotations

import io
import sys
from dataclasses import replace

import pytest

import fedpack
from fedpack import UnknownPackerError
from fedpack import _demo as demo
from fedpack._cli import main
from fedpack._demo import DemoConfig, DemoError, check_config, run_demo

SMALL = DemoConfig(rounds=4, clients=4, local_steps=5, samples=100)
RUNNABLE = ["scaffold", "layer_names", "clipping_bit", "adaptive_constraint"]


def need(name: str) -> None:
    try:
        fedpack.get_packer_class(name)
    except UnknownPackerError:
        pytest.skip(f"packer {name!r} is not installed")


def signature(history: list[demo.RoundStats]) -> list[tuple[int, float, float, int]]:
    return [(s.round, s.loss, s.accuracy, s.wire_bytes) for s in history]


@pytest.mark.parametrize("packer", RUNNABLE)
def test_every_mode_learns(packer: str) -> None:
    need(packer)
    history = run_demo(replace(SMALL, packer=packer))
    assert [s.round for s in history] == [0, 1, 2, 3, 4]
    assert history[-1].accuracy > history[0].accuracy + 0.15
    assert history[-1].loss < history[0].loss
    assert history[0].wire_bytes == 0
    assert all(s.wire_bytes > 0 for s in history[1:])
    assert all(s.codec_seconds > 0 for s in history[1:])


def test_runs_are_deterministic_given_the_seed() -> None:
    need("scaffold")
    first, second = run_demo(SMALL), run_demo(SMALL)
    assert signature(first) == signature(second)
    assert signature(run_demo(replace(SMALL, seed=1))) != signature(first)


def test_scaffold_sends_control_variates_both_ways() -> None:
    need("scaffold")
    need("adaptive_constraint")
    scaffold = run_demo(replace(SMALL, rounds=1))[1].wire_bytes
    scalar = run_demo(replace(SMALL, rounds=1, packer="adaptive_constraint"))[1].wire_bytes
    assert scaffold > 1.8 * scalar  # weights + control variates, in each direction


def test_layer_names_exchanges_part_of_the_model() -> None:
    need("layer_names")
    need("clipping_bit")
    partial = run_demo(replace(SMALL, rounds=1, packer="layer_names"))[1].wire_bytes
    full = run_demo(replace(SMALL, rounds=1, packer="clipping_bit"))[1].wire_bytes
    assert partial < full


def test_sparse_coo_mode_runs_and_learns() -> None:
    need("sparse_coo")
    need("layer_names")
    history = run_demo(replace(SMALL, packer="sparse_coo"))
    assert [s.round for s in history] == [0, 1, 2, 3, 4]
    assert history[-1].accuracy > history[0].accuracy + 0.15
    assert history[-1].loss < history[0].loss
    assert all(s.wire_bytes > 0 for s in history[1:])


def test_progress_and_round_callbacks() -> None:
    need("scaffold")
    calls: list[tuple[int, int, int]] = []
    rounds: list[int] = []
    run_demo(
        replace(SMALL, rounds=2, clients=3),
        progress=lambda r, done, total: calls.append((r, done, total)),
        on_round=lambda stats: rounds.append(stats.round),
    )
    assert calls == [(r, d, 3) for r in (1, 2) for d in (1, 2, 3)]
    assert rounds == [0, 1, 2]


def test_bad_configurations() -> None:
    with pytest.raises(DemoError, match=r"--packer: expected one of scaffold, .*found 'fedavg'"):
        check_config(replace(SMALL, packer="fedavg"))
    with pytest.raises(DemoError, match=r"at least 1 round.*found rounds=0, clients=4"):
        run_demo(replace(SMALL, rounds=0))


def test_a_missing_plugin_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str, /, **options: object) -> object:
        raise UnknownPackerError(f"no packer {name!r}", name=name)

    monkeypatch.setattr(demo, "get_packer", missing)
    with pytest.raises(
        DemoError, match=r"'sparse_coo' packer is not installed: install fedpack-sparse-coo"
    ):
        check_config(replace(SMALL, packer="sparse_coo"))


# -- the command -----------------------------------------------------------------------------


def test_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    need("scaffold")
    code = main(["demo", "--rounds", "3", "--clients", "3", "--seed", "7", "--local-steps", "4"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("fedpack demo: scaffold, 3 clients, 3 rounds, seed 7 (non-IID")
    assert lines[1].split() == [
        "round",
        "loss",
        "accuracy",
        "wire",
        "KiB",
        "pack",
        "ms",
        "unpack",
        "ms",
        "codec",
        "ms",
    ]
    rows = [line.split() for line in lines[2:6]]
    assert [row[0] for row in rows] == ["0", "1", "2", "3"]
    assert all(len(row) == 7 for row in rows)
    assert float(rows[-1][2]) > float(rows[0][2])
    assert lines[6].startswith("accuracy ")
    assert "\r" not in out  # no progress display when not on a terminal


def test_command_output_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    need("clipping_bit")
    args = ["demo", "--packer", "clipping_bit", "--rounds", "2", "--clients", "2"]
    main(args)
    first = [line.split()[:4] for line in capsys.readouterr().out.splitlines()[2:5]]
    main(args)
    second = [line.split()[:4] for line in capsys.readouterr().out.splitlines()[2:5]]
    assert first == second


def test_command_shows_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    need("scaffold")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["demo", "--rounds", "1", "--clients", "2"]) == 0
    text = terminal.getvalue()
    assert "\r  round 1: client 1/2" in text
    assert "\r  round 1: client 2/2" in text
    assert "\r\x1b[K    1  " in text


def test_command_reports_a_missing_packer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str, /, **options: object) -> object:
        raise UnknownPackerError(f"no packer {name!r}", name=name)

    monkeypatch.setattr(demo, "get_packer", missing)
    assert main(["demo", "--packer", "sparse_coo"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "fedpack demo: error: the 'sparse_coo' packer is not installed: install fedpack-sparse-coo"
        in captured.err
    )


def test_command_rejects_non_positive_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rounds", "0"]) == 2
    assert "expected a positive integer, found 0" in capsys.readouterr().err
