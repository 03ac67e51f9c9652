"""``fedpack check``: run the conformance checks against installed packers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._api import default_registry
from ._cli import UsageError
from ._errors import FedpackError, UnknownPackerError
from ._names import normalize_name
from ._registry import PackerRegistry
from .testing import CheckResult, run_checks

HELP = "run the conformance checks against installed packers (all by default)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``fedpack check``."""
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="packer names to check, compositions such as scaffold+clipping_bit included "
        "(default: every installed packer)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array of results")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the checks that passed"
    )


def run(args: argparse.Namespace) -> int:
    """Check the packers; exit 1 if any check failed or there is nothing to check.

    Skipped checks do not fail. A name that names no packer (unknown, or installed but
    blocked) is a usage error; a packer that fails to load is a failed check.
    """
    registry = default_registry()
    if args.names:
        names: Sequence[str] = list(dict.fromkeys(resolve(registry, n) for n in args.names))
    else:
        names = registry.names()
    if not names:
        if args.json:
            sys.stdout.write("[]\n")
        sys.stderr.write(nothing_to_check(registry))
        return 1
    results: list[CheckResult] = []
    for name in names:
        results.extend(run_checks(name))
    if args.json:
        json.dump([result.to_dict() for result in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_report(results, verbose=args.verbose))
    return 1 if any(result.failed for result in results) else 0


def resolve(registry: PackerRegistry, name: str) -> str:
    """``name`` as the registry knows it (case, ``-``/``_`` normalised); a usage error if none.

    An unknown name and a blocked one get the registry's own messages (a suggestion and the
    installed packers, or the rule that blocks it). A packer that is installed but broken is
    returned: its checks report why it fails.
    """
    key = normalize_name(name)
    try:
        registry.get_packer_class(key)
    except UnknownPackerError as exc:
        raise UsageError(str(exc)) from None
    except FedpackError:  # fails to load, or claimed twice: the "load" check reports it
        pass
    return key


def nothing_to_check(registry: PackerRegistry) -> str:
    """Why ``fedpack check`` without names found nothing: none installed, all blocked, no scan."""
    prefix = "fedpack check: no packers to check: "
    if not registry.autoload:
        return prefix + "plugin discovery is off (FEDPACK_PLUGIN_AUTOLOAD=0)\n"
    blocked = [f"{row.name} ({row.detail})" for row in registry.list_packers()]
    if blocked:  # names() is empty: every listed packer is blocked
        return prefix + "every installed packer is blocked: " + ", ".join(blocked) + "\n"
    return prefix + "none is installed (pip install fedpack for the built-ins)\n"


def format_report(results: Sequence[CheckResult], *, verbose: bool = False) -> str:
    """Render results as text: one line per packer, then its failures and skips, indented."""
    rows = list(results)
    if not rows:
        return "no packers to check (pip install fedpack for the built-ins)\n"
    lines: list[str] = []
    for packer in dict.fromkeys(r.packer for r in rows):
        mine = [r for r in rows if r.packer == packer]
        failed = sum(r.failed for r in mine)
        passed = sum(r.passed for r in mine)
        skipped = sum(r.skipped for r in mine)
        verdict = "FAIL" if failed else "ok"
        lines.append(f"{packer}: {verdict} ({passed} passed, {failed} failed, {skipped} skipped)")
        for r in mine:
            if r.failed or r.skipped or verbose:
                lines.append(f"  {r.outcome.upper():<7} {r.check}: {r.reason}")
    failures = sum(r.failed for r in rows)
    lines.append(
        f"{len(dict.fromkeys(r.packer for r in rows))} packer(s) checked, "
        f"{failures} check(s) failed"
    )
    return "\n".join(lines) + "\n"
