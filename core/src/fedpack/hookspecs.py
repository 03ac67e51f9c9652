"""The plugin hook of fedpack, and the pluggy markers that go with it.

A packer plugin is a module (or any object) that a distribution names under the
``fedpack.packers`` entry-point group. The entry-point *name* is the packer name, so fedpack
imports the plugin only when that name is asked for::

    [project.entry-points."fedpack.packers"]
    scaffold = "fedpack_scaffold"

The module implements the one hook below with the :data:`hookimpl` marker::

    import fedpack

    @fedpack.hookimpl
    def fedpack_register_packers(register):
        register(ScaffoldPacker)
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
    """Register the packer classes this plugin provides.

    Called once per plugin, the first time one of the names its distribution declares under
    ``fedpack.packers`` is asked for (never at ``import fedpack``, never by listing).

    :param register: call it once per packer class, ``register(MyPacker)``. The class must
        subclass :class:`fedpack.ParameterPacker` and set ``name`` to a lower-case
        ``[a-z0-9_]+`` name that the plugin's distribution declares as an entry-point name
        (normally the entry point through which the plugin was loaded; a plugin that does not
        register a packer of its own entry-point name is an error).

    Errors: anything the hook raises, a class that is not a packer, a name the distribution
    does not declare, or registering one name twice makes the registry raise
    :class:`fedpack.PluginLoadError` for this plugin's names only, chained to the cause; what
    the plugin registered before failing is rolled back and other packers keep working.
    """
