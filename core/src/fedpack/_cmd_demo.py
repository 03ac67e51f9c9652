"""``fedpack demo``: a small federated run, in process, through packers and the wire codec."""

from __future__ import annotations

import argparse
import sys

from ._demo import MODES, DemoConfig, DemoError, RoundStats, check_config, run_demo

HELP = "run a small in-process federated simulation (numpy only) through a packer"

_HEADER = ("round", "loss", "accuracy", "wire KiB", "pack ms", "unpack ms", "codec ms")
_WIDTHS = (5, 8, 8, 10, 8, 9, 8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``fedpack demo``."""
    defaults = DemoConfig()
    parser.add_argument(
        "--packer",
        choices=MODES,
        default=defaults.packer,
        help="algorithm/packer to run (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=defaults.rounds,
        help=f"federated rounds (default: {defaults.rounds})",
    )
    parser.add_argument(
        "--clients",
        type=_positive,
        default=defaults.clients,
        help=f"clients, each with its own non-IID data (default: {defaults.clients})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help=f"random seed: same seed, same losses and bytes (default: {defaults.seed})",
    )
    parser.add_argument(
        "--local-steps",
        type=_positive,
        default=defaults.local_steps,
        help=f"local gradient steps per client and round (default: {defaults.local_steps})",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its table; exit 1 if the packer is not installed."""
    cfg = DemoConfig(
        packer=args.packer,
        rounds=args.rounds,
        clients=args.clients,
        seed=args.seed,
        local_steps=args.local_steps,
    )
    try:
        check_config(cfg)
    except DemoError as exc:
        sys.stderr.write(f"fedpack demo: error: {exc}\n")
        return 1
    out = sys.stdout
    live = out.isatty()
    out.write(
        f"fedpack demo: {cfg.packer}, {cfg.clients} clients, {cfg.rounds} rounds, "
        f"seed {cfg.seed} (non-IID Gaussian blobs, 2-layer MLP)\n"
    )
    out.write(format_row(_HEADER) + "\n")

    def progress(round_number: int, done: int, total: int) -> None:
        out.write(f"\r  round {round_number}: client {done}/{total}")
        out.flush()

    def on_round(stats: RoundStats) -> None:
        out.write(("\r\x1b[K" if live else "") + format_stats(stats) + "\n")
        out.flush()

    history = run_demo(cfg, progress=progress if live else None, on_round=on_round)
    first, last = history[0], history[-1]
    total = sum(s.wire_bytes for s in history)
    out.write(
        f"accuracy {first.accuracy:.3f} -> {last.accuracy:.3f}; "
        f"{total / 1024:.1f} KiB on the wire\n"
    )
    return 0


def format_row(cells: tuple[str, ...]) -> str:
    """Right-align the cells of one table row."""
    return "  ".join(c.rjust(w) for c, w in zip(cells, _WIDTHS, strict=True))


def format_stats(stats: RoundStats) -> str:
    """One table row for a round."""
    return format_row(
        (
            str(stats.round),
            f"{stats.loss:.4f}",
            f"{stats.accuracy:.3f}",
            f"{stats.wire_bytes / 1024:.1f}",
            f"{stats.pack_seconds * 1e3:.2f}",
            f"{stats.unpack_seconds * 1e3:.2f}",
            f"{stats.codec_seconds * 1e3:.2f}",
        )
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {value}")
    return value
