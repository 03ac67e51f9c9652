"""``fedpack check``: run the conformance checks against installed packers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._api import default_registry
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
    """Check the packers; exit 1 if any check failed (skipped checks do not fail)."""
    names: Sequence[str] = args.names or default_registry().names()
    results: list[CheckResult] = []
    for name in names:
        results.extend(run_checks(name))
    if args.json:
        json.dump([result.to_dict() for result in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_report(results, verbose=args.verbose))
    return 1 if any(result.failed for result in results) else 0


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
