"""``fedpack list``: what packers are installed, from which distribution, in which state."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from ._api import default_registry
from ._errors import FedpackError
from ._registry import PackerInfo

HELP = "list installed packers (name, distribution, version, state)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``fedpack list``."""
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    parser.add_argument(
        "--load",
        action="store_true",
        help="import every plugin to report broken ones (listing alone imports nothing)",
    )


def run(args: argparse.Namespace) -> int:
    """List the packers; exit 1 if any is failed or in conflict."""
    registry = default_registry()
    if args.load:
        for name in registry.names():
            with contextlib.suppress(FedpackError):  # the state column reports it
                registry.get_packer_class(name)
    rows = registry.list_packers()
    if args.json:
        json.dump([row.to_dict() for row in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(rows))
    return 1 if any(row.state in ("failed", "conflict") for row in rows) else 0


def format_table(rows: list[PackerInfo]) -> str:
    """Render rows as an aligned text table (details on indented lines below their row)."""
    if not rows:
        return "no packers installed (pip install fedpack for the built-ins)\n"
    header = ("NAME", "DISTRIBUTION", "VERSION", "STATE")
    cells = [(r.name, r.distribution or "(in-process)", r.version or "-", r.state) for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    lines = []
    for row, line in zip([None, *rows], [header, *cells], strict=True):
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
        if row is not None and row.detail:
            lines.append(f"    {row.detail}")
    return "\n".join(lines) + "\n"
