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
    """No packer is registered under the requested name (or the name is blocked).

    The message lists the installed names, suggests the closest one and says which
    distribution would provide the name (``pip install fedpack-<name>``).
    """

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
    """Two sources claim the same packer name and nothing says which one wins.

    Raised when the name is asked for (other names keep working), or by an in-process
    ``register`` of a taken name without ``replace=True``. The message names every claimant
    as ``distribution==version`` and the ways to resolve the conflict.
    """


class PluginLoadError(FedpackError):
    """A plugin failed to import, to register, or registered something invalid.

    Raised for the names that plugin provides only; the original exception is chained as
    ``__cause__``. The message names the distribution and its version.
    """


class PackingError(FedpackError, ValueError):
    """Bad input to ``pack_parameters`` or a bad payload given to ``unpack_parameters``.

    The message says what was expected, what was found and where (array index, section,
    tensor name).
    """


class UnknownPayloadPackerError(PackingError, UnknownPackerError):
    """A received payload names a packer this receiver cannot provide.

    Raised on every unpack path (:func:`fedpack.unpack`, the Flower helpers) for a frame naming
    a packer that is not installed, blocked, claimed twice or broken: a :class:`PackingError`
    (a receiver catching ``PackingError`` handles every bad payload) and an
    :class:`UnknownPackerError` (a ``LookupError``). The message names the packer (cut to a
    bounded length) and why it cannot be used; the registry's error is its ``__cause__``.
    """
