"""The exception hierarchy: everything fedpack raises on purpose is a :class:`FedpackError`.

Each concrete error also derives from the built-in exception a Python programmer expects
(``LookupError`` for a missing name, ``ValueError`` for a bad payload).
"""

from __future__ import annotations

__all__ = [
    "FedpackError",
    "PackerConflictError",
    "PackingError",
    "PluginLoadError",
    "UnknownPackerError",
    "UnknownPayloadPackerError",
]


class FedpackError(Exception):
    """Base class of every error raised by fedpack."""


class UnknownPackerError(FedpackError, LookupError):
    """No packer is registered under the name (or it is blocked); the message suggests one."""

    def __init__(self, message: str, *, name: str, available: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        #: The normalised name that was asked for.
        self.name = name
        #: The names that could have been asked for instead.
        self.available = available

    def __str__(self) -> str:
        # LookupError/KeyError-style quoting would wrap the message in quotes; keep it readable.
        return str(self.args[0])


class PackerConflictError(FedpackError):
    """Two sources claim one packer name and nothing says which wins (raised for it only)."""


class PluginLoadError(FedpackError):
    """A plugin failed to import or to register (raised for its names only, cause chained)."""


class PackingError(FedpackError, ValueError):
    """Bad input to pack or a bad payload: the message says what was expected, found and where."""


class UnknownPayloadPackerError(PackingError, UnknownPackerError):
    """A received payload names a packer this receiver cannot provide.

    Raised on every unpack path (:func:`fedpack.unpack`, the Flower helpers) for a frame naming
    a packer that is not installed, blocked, claimed twice or broken: a :class:`PackingError`
    (a receiver catching ``PackingError`` handles every bad payload) and an
    :class:`UnknownPackerError` (a ``LookupError``). The message names the packer (cut to a
    bounded length) and why it cannot be used; the registry's error is its ``__cause__``.
    """
