"""The ``fedpack`` command (also ``python -m fedpack``).

Each subcommand lives in its own module exposing ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; this module only wires them together. Exit codes: 0 success, 1 a
reported failure (a check failed, a plugin is broken), 2 a usage error (argparse's, or a
:class:`UsageError` a command raises for an argument argparse cannot judge, e.g. an unknown
packer name).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["UsageError", "main"]


class UsageError(Exception):
    """A command's argument is wrong: reported as ``fedpack COMMAND: error: ...``, exit 2."""


#: subcommand name -> module implementing it
COMMANDS = {
    "list": "fedpack._cmd_list",
    "check": "fedpack._cmd_check",
    "demo": "fedpack._cmd_demo",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fedpack`` command."""
    parser = argparse.ArgumentParser(
        prog="fedpack",
        description="Parameter packers for federated learning on Flower.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"fedpack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run, _parser=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also for ``--help``, ``--version``, usage)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits after --help/--version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        code: int = args._run(args)
    except BrokenPipeError:  # e.g. `fedpack list | head`
        sys.stderr.close()
        return 1
    except UsageError as exc:
        parser: argparse.ArgumentParser = args._parser
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return 2
    return code
