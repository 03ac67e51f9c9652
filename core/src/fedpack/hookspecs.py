"""The plugin hook of fedpack and its pluggy markers.

A distribution names its plugin module under the ``fedpack.packers`` entry-point group, one
entry point per packer name; the module implements :func:`fedpack_register_packers` with
``@fedpack.hookimpl`` (CONTRIBUTING.md, "Write a packer plugin", has a complete plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from ._packer import ParameterPacker

__all__ = ["PROJECT_NAME", "RegisterPacker", "fedpack_register_packers", "hookimpl", "hookspec"]

#: The pluggy project name: markers of other projects are ignored by fedpack.
PROJECT_NAME = "fedpack"

#: Marks the hook specification (used by fedpack itself).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's implementation of a fedpack hook: ``@fedpack.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterPacker(Protocol):
    """The ``register`` callable handed to :func:`fedpack_register_packers`."""

    def __call__(self, cls: type[ParameterPacker[Any]], /) -> None:
        """Register the packer class ``cls`` under ``cls.name``."""


@hookspec
def fedpack_register_packers(register: RegisterPacker) -> None:
    """Register the packer classes this plugin provides: ``register(MyPacker)`` for each.

    Called once per plugin, when a name its distribution declares is first asked for. Each
    class subclasses :class:`fedpack.ParameterPacker` and sets ``name`` to a name the
    distribution declares (its own entry point's included). Anything the hook raises, a class
    that is not a packer, an undeclared name or one name registered twice is a
    :class:`fedpack.PluginLoadError` for this plugin's names only; nothing of it is kept.
    """
