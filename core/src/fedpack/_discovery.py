"""Find packer entry points in installed metadata without importing anything.

Faster than ``importlib.metadata`` (whose import alone costs about 25 ms): only the metadata
directory names on ``sys.path`` and their ``entry_points.txt`` are read, and ``METADATA`` (name
and version) only for distributions that declare a packer. As ``importlib.metadata`` does, a
distribution found twice on the path counts once (first wins).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from ._names import normalize_dist, normalize_name

__all__ = ["GROUP", "EntryPoint", "scan"]

#: The entry-point group packer plugins register under.
GROUP = "fedpack.packers"

_META_SUFFIXES = (".dist-info", ".egg-info")
_O_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows only


@dataclass(frozen=True)
class EntryPoint:
    """One ``fedpack.packers`` entry point of one installed distribution."""

    #: The normalised packer name (the entry-point name).
    name: str
    #: ``"module"`` or ``"module:attribute.path"``.
    value: str
    #: The ``*.dist-info`` / ``*.egg-info`` directory that declares it.
    path: str

    @cached_property
    def _metadata(self) -> tuple[str, str]:
        return _read_name_version(self.path)

    @property
    def distribution(self) -> str:
        """The distribution's project name, as its metadata spells it."""
        return self._metadata[0]

    @property
    def version(self) -> str:
        """The distribution's version."""
        return self._metadata[1]

    @property
    def label(self) -> str:
        """``distribution==version``, for messages."""
        return f"{self.distribution}=={self.version}"


def scan(paths: Iterable[str], group: str = GROUP) -> dict[str, list[EntryPoint]]:
    """Map every packer name declared on ``paths`` to the entry points that declare it."""
    found: dict[str, list[EntryPoint]] = {}
    seen: set[str] = set()
    marker = f"[{group}]".encode()
    for entry in paths:
        try:
            with os.scandir(entry or ".") as it:
                names = sorted(e.name for e in it if e.name.endswith(_META_SUFFIXES))
        except OSError:
            continue
        for dirname in names:
            dist_key = normalize_dist(dirname.rsplit(".", 1)[0].split("-", 1)[0])
            if dist_key in seen:
                continue
            seen.add(dist_key)
            path = os.path.join(entry or ".", dirname)
            data = _read_file(os.path.join(path, "entry_points.txt"))
            if data is None or marker not in data:  # most distributions declare no packer
                continue
            # errors="replace": a stray byte in some unrelated distribution's file must not
            # break every lookup (packer names and module paths are ASCII anyway)
            text = data.decode("utf-8", errors="replace")
            for name, value in _parse_group(text, group):
                found.setdefault(name, []).append(EntryPoint(name, value, path))
    return found


def _read_file(path: str) -> bytes | None:
    """The bytes of ``path``, or ``None``: plain ``os.read``, 3-5 times faster than ``open()``."""
    try:
        fd = os.open(path, _O_READ)
    except OSError:
        return None
    try:
        return b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
    except OSError:
        return None
    finally:
        os.close(fd)


def _parse_group(text: str, group: str) -> list[tuple[str, str]]:
    """Read ``name = value`` lines of section ``[group]`` of an ``entry_points.txt``."""
    items: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            inside = line == f"[{group}]"
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            value = value.split("[", 1)[0].strip()  # drop an extras marker "[extra]"
            items.append((normalize_name(name), value))
    return items


def _read_name_version(path: str) -> tuple[str, str]:
    """``Name`` and ``Version`` from the metadata headers, else from the directory name."""
    headers: dict[str, str] = {}
    for filename in ("METADATA", "PKG-INFO"):
        data = _read_file(os.path.join(path, filename))
        if data is not None:
            for line in data.decode("utf-8", errors="replace").splitlines():
                if not line.strip():  # the headers end at the first blank line
                    break
                key, _, value = line.partition(":")
                headers.setdefault(key, value.strip())
            break
    stem = os.path.basename(path).rsplit(".", 1)[0].split("-")
    version = stem[1] if len(stem) > 1 else "unknown"
    return headers.get("Name") or stem[0], headers.get("Version") or version
