"""The built-in packers, named in one place for the whole test suite.

:data:`EXPECTED` is the one explicit list. The lists the tests run over are derived from what is
installed: the ``fedpack.packers`` entry points of the distributions that the batteries-included
``fedpack`` project requires (its ``pyproject.toml`` dependencies), in that order.
``tests/test_builtin_packers.py`` checks that the two agree, so a built-in packer that is added,
renamed or not installed fails there, by name, instead of silently leaving the suite.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import fedpack

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]

#: The packers ``pip install fedpack`` provides: the one explicit list of the suite.
EXPECTED = (
    "scaffold",
    "clipping_bit",
    "adaptive_constraint",
    "layer_names",
    "sparse_coo",
    "quantize",
)

#: Built-in packers that re-encode the weights and have suites of their own (tests/sparse,
#: tests/quantize) instead of the weights-plus-extra cases of tests/packers.
OWN_SUITES = ("sparse_coo", "quantize")


def builtin_distributions(root: Path = ROOT) -> tuple[str, ...]:
    """The distributions the root ``fedpack`` project requires, normalised, in declared order."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return tuple(canonicalize_name(Requirement(t).name) for t in data["project"]["dependencies"])


def installed_builtins() -> tuple[str, ...]:
    """The ``fedpack.packers`` entry points of the installed built-in distributions.

    Ordered as the root project lists its distributions (then by name within one).
    """
    order = {dist: index for index, dist in enumerate(builtin_distributions())}
    found: list[tuple[int, str]] = []
    for ep in entry_points(group="fedpack.packers"):
        dist = canonicalize_name(ep.dist.name) if ep.dist is not None else ""
        if dist in order:
            found.append((order[dist], ep.name))
    return tuple(name for _, name in sorted(found))


#: Every installed built-in packer.
BUILTINS = installed_builtins()

#: The built-in packers that carry a scalar beside the weights (:class:`fedpack.ScalarPacker`).
SCALAR_PACKERS = tuple(
    name for name in BUILTINS if issubclass(fedpack.get_packer_class(name), fedpack.ScalarPacker)
)

#: The built-in packers that send the weights as given plus one extra value (tests/packers).
EXTRA_PACKERS = tuple(name for name in BUILTINS if name not in OWN_SUITES)
