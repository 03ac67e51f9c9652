"""The ``fedpack`` command (also ``python -m fedpack``): ``fedpack list`` and ``fedpack check``.

Exit codes: 0 success, 1 a reported failure (a check failed, a plugin is broken, nothing to
check), 2 a usage error (argparse's, or a packer name that names no packer).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from ._api import default_registry
from ._errors import FedpackError, UnknownPackerError
from ._names import normalize_name

if TYPE_CHECKING:
    from ._registry import PackerInfo, PackerRegistry
    from .testing import CheckResult

__all__ = ["main"]

_NONE_INSTALLED = "(pip install fedpack for the built-ins)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also for ``--help``, ``--version``, usage)."""
    parser = argparse.ArgumentParser(
        prog="fedpack", description="Parameter packers for federated learning on Flower."
    )
    parser.add_argument("--version", action="version", version=f"fedpack {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND", required=True)
    about = "list installed packers (name, distribution, version, state)"
    cmd = sub.add_parser("list", help=about, description=about)
    cmd.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    cmd.add_argument(
        "--load",
        action="store_true",
        help="import every plugin to report broken ones (listing alone imports nothing)",
    )
    cmd.set_defaults(run=_list)
    about = "run the conformance checks against installed packers (all by default)"
    cmd = sub.add_parser("check", help=about, description=about)
    cmd.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="packer names to check, compositions such as a+b included "
        "(default: every installed packer)",
    )
    cmd.add_argument("--json", action="store_true", help="print a JSON array of results")
    cmd.add_argument(
        "-v", "--verbose", action="store_true", help="also print the checks that passed"
    )
    cmd.set_defaults(run=_check, parser=cmd)
    try:  # argparse exits after --help/--version (0) and on usage errors (2)
        args = parser.parse_args(argv)
        return int(args.run(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except BrokenPipeError:  # e.g. `fedpack list | head`
        sys.stderr.close()
        return 1


def _list(args: argparse.Namespace) -> int:
    """``fedpack list``; exit 1 if a packer is failed or in conflict."""
    registry = default_registry()
    if args.load:  # import every plugin; the state column reports the broken ones
        for name in registry.names():
            with contextlib.suppress(FedpackError):
                registry.get_packer_class(name)
    rows = registry.list_packers()
    sys.stdout.write(_json(rows) if args.json else _table(rows))
    return int(any(row.state in ("failed", "conflict") for row in rows))


def _check(args: argparse.Namespace) -> int:
    """``fedpack check``; exit 1 if a check failed (skips do not) or there is nothing to check."""
    from .testing import run_checks

    registry = default_registry()
    names = [_resolve(args.parser, registry, name) for name in args.names] or registry.names()
    if not names:
        if args.json:
            sys.stdout.write("[]\n")
        sys.stderr.write(f"fedpack check: no packers to check: {_why_none(registry)}\n")
        return 1
    results = [result for name in dict.fromkeys(names) for result in run_checks(name)]
    sys.stdout.write(_json(results) if args.json else _report(results, verbose=args.verbose))
    return int(any(result.failed for result in results))


def _resolve(parser: argparse.ArgumentParser, registry: PackerRegistry, name: str) -> str:
    """``name`` normalised; a usage error (the registry's message) if unknown or blocked."""
    key = normalize_name(name)
    try:
        registry.get_packer_class(key)
    except UnknownPackerError as exc:
        parser.error(str(exc))
    except FedpackError:  # installed but fails to load, or claimed twice: the checks report it
        pass
    return key


def _why_none(registry: PackerRegistry) -> str:
    """Why there is no packer to check: discovery off, every packer blocked, or none installed."""
    if not registry.autoload:
        return "plugin discovery is off (FEDPACK_PLUGIN_AUTOLOAD=0)"
    blocked = ", ".join(f"{row.name} ({row.detail})" for row in registry.list_packers())
    if blocked:  # names() is empty, so every listed packer is blocked
        return f"every installed packer is blocked: {blocked}"
    return f"none is installed {_NONE_INSTALLED}"


def _json(rows: Sequence[PackerInfo] | Sequence[CheckResult]) -> str:
    """The rows as an indented JSON array."""
    return json.dumps([row.to_dict() for row in rows], indent=2) + "\n"


def _table(rows: Sequence[PackerInfo]) -> str:
    """The rows as an aligned table, each row's detail on an indented line below it."""
    if not rows:
        return f"no packers installed {_NONE_INSTALLED}\n"
    header = ("NAME", "DISTRIBUTION", "VERSION", "STATE")
    cells = [(r.name, r.distribution or "(in-process)", r.version or "-", r.state) for r in rows]
    widths = [max(map(len, column)) for column in zip(header, *cells, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line(header)]
    for row, cell in zip(rows, cells, strict=True):
        lines += [line(cell), f"    {row.detail}"] if row.detail else [line(cell)]
    return "\n".join(lines) + "\n"


def _report(results: Sequence[CheckResult], *, verbose: bool) -> str:
    """One line per packer, then its failures and skips (every check if ``verbose``), indented."""
    lines: list[str] = []
    packers = dict.fromkeys(r.packer for r in results)
    for packer in packers:
        mine = [r for r in results if r.packer == packer]
        n = Counter(r.outcome for r in mine)
        lines.append(
            f"{packer}: {'FAIL' if n['failed'] else 'ok'} ({n['passed']} passed, "
            f"{n['failed']} failed, {n['skipped']} skipped)"
        )
        lines += [
            f"  {r.outcome.upper():<7} {r.check}: {r.reason}"
            for r in mine
            if verbose or not r.passed
        ]
    failed = sum(r.failed for r in results)
    lines.append(f"{len(packers)} packer(s) checked, {failed} check(s) failed")
    return "\n".join(lines) + "\n"
