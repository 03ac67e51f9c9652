"""Names: the one home of the packer-name rule, of name normalisation and of the install hint."""

from __future__ import annotations

import re

__all__ = ["NAME_PATTERN", "install_hint", "normalize_dist", "normalize_name"]

#: A packer or section name: lower-case ASCII letters, digits and ``_``.
NAME_PATTERN = re.compile(r"[a-z0-9_]+\Z")
_DIST_SEPARATORS = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """Normalise a packer name: lower case, ``-`` and ``.`` become ``_``."""
    return name.strip().lower().replace("-", "_").replace(".", "_")


def normalize_dist(name: str) -> str:
    """Normalise a distribution name as packaging does: lower case, runs of ``-_.`` -> ``-``."""
    return _DIST_SEPARATORS.sub("-", name.strip()).lower()


def install_hint(name: str) -> str:
    """The command that installs the plugin publishing packer ``name`` by convention."""
    return "pip install fedpack-" + name.replace("_", "-")
