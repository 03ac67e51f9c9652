"""The packer registry: names -> packer classes, from entry points and in-process registration."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pluggy

from . import hookspecs
from ._budget import DecodeBudget
from ._compose import COMPOSE, ComposedPacker, check_parts, parts_option, split_composition
from ._discovery import GROUP, EntryPoint, scan
from ._errors import PackerConflictError, PluginLoadError, UnknownPackerError
from ._names import install_hint, normalize_dist, normalize_name
from ._packer import ParameterPacker
from .checks import shorten

__all__ = ["PackerInfo", "PackerRegistry", "PackerState"]

PackerState = Literal["available", "loaded", "failed", "blocked", "conflict"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class PackerInfo:
    """One row of :meth:`PackerRegistry.list_packers`."""

    #: The packer name.
    name: str
    #: The distribution that provides it (``None`` for an in-process registration).
    distribution: str | None
    #: That distribution's version (``None`` for an in-process registration).
    version: str | None
    #: The entry point's target (``module`` or ``module:attr``), or the class's import path.
    entry_point: str
    #: ``available`` (installed, not imported yet), ``loaded``, ``failed``, ``blocked``
    #: (disabled, pinned away or replaced in-process) or ``conflict`` (claimed twice).
    state: PackerState
    #: Why the state is what it is (the error, the blocking rule), or ``""``.
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict."""
        return asdict(self)


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return True if raw in _TRUE else False if raw in _FALSE else default


def _env_list(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


class PackerRegistry:
    """Packer classes by name: installed plugins (entry points) and in-process registrations.

    Every argument left as ``None`` is read from the environment when the registry is built
    and again on :meth:`refresh`:

    - ``autoload`` — ``FEDPACK_PLUGIN_AUTOLOAD`` (default on): discover entry points at all;
    - ``disabled`` — ``FEDPACK_DISABLE_PLUGINS=a,b``: packer names whose plugins are blocked;
    - ``strict`` — ``FEDPACK_STRICT_PLUGINS=1``: the first lookup imports every plugin and any
      broken one, or any conflict, raises;
    - ``pins`` — ``FEDPACK_PLUGIN_PINS=name=distribution,...``: which distribution wins a
      name that several installed distributions claim.

    ``paths`` (default ``sys.path`` at scan time) is where installed metadata is looked for.
    The registry is thread-safe: concurrent lookups import each plugin exactly once.
    """

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        disabled: Iterable[str] | None = None,
        strict: bool | None = None,
        pins: Mapping[str, str] | None = None,
        paths: Sequence[str] | None = None,
        group: str = GROUP,
    ) -> None:
        """Build an empty registry; nothing is scanned or imported until first use."""
        self._args = (autoload, disabled, strict, pins)
        self._paths = None if paths is None else list(paths)
        self._group = group
        self._lock = threading.RLock()
        self._local: dict[str, type[ParameterPacker[Any]]] = {}
        self._pinned: dict[str, str] = {}  # pin() calls: kept across refresh(), like _local
        self._resolved: dict[str, type[ParameterPacker[Any]]] = {}
        self._configure()
        self._reset_plugins()

    def _configure(self) -> None:
        autoload, disabled, strict, pins = self._args
        self.autoload = _env_flag("FEDPACK_PLUGIN_AUTOLOAD", True) if autoload is None else autoload
        self.strict = _env_flag("FEDPACK_STRICT_PLUGINS", False) if strict is None else strict
        names = _env_list("FEDPACK_DISABLE_PLUGINS") if disabled is None else disabled
        self.disabled = frozenset(normalize_name(n) for n in names)
        pairs = [p.split("=", 1) for p in _env_list("FEDPACK_PLUGIN_PINS") if "=" in p]
        chosen = {k: v for k, v in pairs if k.strip() and v.strip()} if pins is None else pins
        self._pins = {normalize_name(k): v.strip() for k, v in chosen.items()} | self._pinned

    def _reset_plugins(self) -> None:
        self._scan: dict[str, list[EntryPoint]] | None = None
        self._loaded: dict[tuple[str, str], type[ParameterPacker[Any]]] = {}
        self._failed: dict[tuple[str, str], PluginLoadError] = {}
        self._strict_checked = False
        self._resolved.clear()

    def refresh(self) -> None:
        """Forget the scan and load results, re-read the environment (after installs).

        In-process registrations and :meth:`pin` calls are kept.
        """
        with self._lock:
            self._configure()
            self._reset_plugins()

    def pin(self, name: str, distribution: str) -> None:
        """Make ``distribution`` win ``name`` when several claim it; survives :meth:`refresh`."""
        with self._lock:
            self._pinned[normalize_name(name)] = distribution
            self._pins[normalize_name(name)] = distribution
            self._resolved.clear()

    def register(
        self, cls: type[ParameterPacker[Any]], *, replace: bool = False
    ) -> type[ParameterPacker[Any]]:
        """Register ``cls`` under ``cls.name`` in this process; returns ``cls`` (a decorator).

        A name taken in-process or by an installed plugin is a :class:`PackerConflictError`,
        unless ``replace=True`` (then ``cls`` wins).
        """
        name = _class_name(cls, where="register()")
        if name == COMPOSE:
            raise PackerConflictError(f"packer name {COMPOSE!r} is reserved for compositions")
        with self._lock:
            if not replace:
                if name in self._local and self._local[name] is not cls:
                    raise PackerConflictError(
                        f"packer {name!r} is already registered in-process by "
                        f"{_qualname(self._local[name])}; pass replace=True to replace it"
                    )
                # a plugin blocked by FEDPACK_DISABLE_PLUGINS cannot be served: no conflict
                claims = [] if name in self.disabled else self._entry_points().get(name, [])
                if claims and name not in self._local:
                    raise PackerConflictError(
                        f"packer {name!r} is already provided by "
                        f"{', '.join(ep.label for ep in claims)}; pass replace=True to "
                        "replace it in this process"
                    )
            self._local[name] = cls
            self._resolved.pop(name, None)
        return cls

    def unregister(self, name: str) -> None:
        """Remove an in-process registration (installed plugins are unaffected)."""
        key = normalize_name(name)
        with self._lock:
            if self._local.pop(key, None) is None:
                raise UnknownPackerError(f"no packer {key!r} is registered in-process", name=key)
            self._resolved.pop(key, None)

    def get_packer_class(self, name: str) -> type[ParameterPacker[Any]]:
        """The packer class registered under ``name`` (case and ``-``/``_`` are normalised).

        ``"a+b"`` names a composition of the packers ``a`` and ``b``, and ``"compose"`` the
        payloads of any composition: both give :class:`fedpack.ComposedPacker` (the parts are
        checked first); :meth:`get_packer` builds one from the parts' instances.
        """
        if not isinstance(name, str):
            raise TypeError(f"packer name: expected a str, found {type(name).__name__}")
        key = normalize_name(name)
        cls = self._resolved.get(key)
        if cls is not None:
            return cls
        if "+" in key or key == COMPOSE:
            if key != COMPOSE:
                self._check_composition(key)
            return ComposedPacker
        with self._lock:
            if self.strict and not self._strict_checked:
                self._load_everything()
            cls = self._resolve(key)
            self._resolved[key] = cls
            return cls

    def get_packer(
        self, name: str, /, *, budget: DecodeBudget | None = None, **options: Any
    ) -> ParameterPacker[Any]:
        """An instance of the packer registered under ``name``, built with ``options``.

        A composition (``"a+b"``, or ``"compose"`` with a frame's ``parts=``) is built from its
        parts' instances, each with the options under its name and the composition's
        ``framed``. ``budget`` (a :class:`fedpack.DecodeBudget`; default the default budget)
        is what the packer checks received payloads against.
        """
        cls = self.get_packer_class(name)
        if cls is ComposedPacker:
            packer: ParameterPacker[Any] = self._compose(normalize_name(name), options)
        else:
            packer = cls(**options)
        if budget is not None:
            packer.use_budget(budget)
        return packer

    def _check_composition(self, key: str) -> tuple[str, ...]:
        """The parts of composition ``key``, checked; an :class:`UnknownPackerError` if bad."""
        try:
            names = split_composition(key)
            check_parts(names, [self.get_packer_class(part) for part in names])
        except ValueError as exc:
            raise UnknownPackerError(str(exc), name=key, available=tuple(self.names())) from None
        return names

    def _compose(self, key: str, options: dict[str, Any]) -> ComposedPacker:
        framed = options.pop("framed", True)
        parts = options.pop("parts", None)
        if parts is not None and options:
            raise TypeError("compose: give either parts= or per-part options, not both")
        if parts is not None:
            names, part_options = parts_option(parts)
            if key != COMPOSE and names != split_composition(key):
                raise ValueError(
                    f"compose: expected parts {'+'.join(split_composition(key))}, "
                    f"found {'+'.join(names)}"
                )
            self._check_composition("+".join(names))
        elif key == COMPOSE:
            raise TypeError("compose: expected parts=[...] or a composition such as 'a+b'")
        else:
            names = split_composition(key)
            unknown = sorted(set(options) - set(names))
            if unknown:
                raise TypeError(
                    f"compose {key}: unexpected option(s) {', '.join(unknown)}; options of a "
                    "part go under its name, e.g. <part>={...}"
                )
            part_options = [options.get(part, {}) for part in names]
        for part, opts in zip(names, part_options, strict=True):
            if not isinstance(opts, Mapping) or "framed" in opts:
                raise TypeError(
                    f"compose: options of part {part!r} must be a dict without framed= (set "
                    f"framed= on the composition only), found {shorten(opts, 80)}"
                )
        pairs = zip(names, part_options, strict=True)
        return ComposedPacker(
            [self.get_packer(n, framed=framed, **o) for n, o in pairs], framed=framed
        )

    def names(self) -> list[str]:
        """The names that can be asked for (installed or registered, not blocked), sorted."""
        with self._lock:
            names = set(self._local)
            names.update(n for n in self._entry_points() if n not in self.disabled)
            return sorted(names)

    def list_packers(self) -> list[PackerInfo]:
        """What is installed and registered, with its state; imports no plugin."""
        rows: list[PackerInfo] = []
        with self._lock:
            eps = self._entry_points()
            for name in sorted(set(eps) | set(self._local)):
                local = self._local.get(name)
                if local is not None:
                    rows.append(PackerInfo(name, None, None, _qualname(local), "loaded"))
                claims = eps.get(name, [])
                chosen = self._choose(name, claims) if claims else None
                for ep in claims:
                    rows.append(self._info(name, ep, claims, chosen, local is not None))
        return rows

    def _info(
        self,
        name: str,
        ep: EntryPoint,
        claims: list[EntryPoint],
        chosen: EntryPoint | None,
        replaced: bool,
    ) -> PackerInfo:
        def row(state: PackerState, detail: str = "") -> PackerInfo:
            return PackerInfo(name, ep.distribution, ep.version, ep.value, state, detail)

        if replaced:
            return row("blocked", "replaced by an in-process registration")
        if name in self.disabled:
            return row("blocked", "disabled by FEDPACK_DISABLE_PLUGINS")
        if chosen is None:  # claimed twice, or pinned to a distribution that does not provide it
            pin = self._pins.get(name)
            if pin is not None:
                return row("conflict", f"pinned to {pin!r}, which does not provide it")
            others = ", ".join(c.label for c in claims if c is not ep)
            return row("conflict", f"also claimed by {others}")
        if chosen is not ep:
            return row("blocked", f"pinned to {chosen.distribution}")
        key = (name, ep.path)
        if key in self._failed:
            return row("failed", str(self._failed[key]))
        if key in self._loaded:
            return row("loaded")
        return row("available")

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        if self._scan is None:
            paths = sys.path if self._paths is None else self._paths
            self._scan = scan(paths, self._group) if self.autoload else {}
        return self._scan

    def _choose(self, name: str, claims: list[EntryPoint]) -> EntryPoint | None:
        """The entry point that provides ``name``: the only one, the pinned one, or None."""
        pin = self._pins.get(name)
        if pin is not None:
            wanted = normalize_dist(pin)
            return next((ep for ep in claims if normalize_dist(ep.distribution) == wanted), None)
        return claims[0] if len(claims) == 1 else None

    def _resolve(self, key: str) -> type[ParameterPacker[Any]]:
        local = self._local.get(key)
        if local is not None:
            return local
        claims = self._entry_points().get(key, [])
        if claims and key in self.disabled:
            blocked = f"({claims[0].label}) but blocked by FEDPACK_DISABLE_PLUGINS"
            raise UnknownPackerError(
                f"packer {key!r} is installed {blocked}", name=key, available=tuple(self.names())
            )
        if not claims:
            raise self._unknown(key)
        chosen = self._choose(key, claims)
        if chosen is None:
            labels = " and ".join(ep.label for ep in claims)
            pin = self._pins.get(key)
            if pin is not None:
                raise PackerConflictError(
                    f"packer {key!r} is pinned to distribution {pin!r}, which does not provide "
                    f"it; it is claimed by {labels}"
                )
            raise PackerConflictError(
                f"packer {key!r} is claimed by {labels}; uninstall one, or choose one with "
                f"FEDPACK_PLUGIN_PINS={key}=<distribution> or registry.pin({key!r}, "
                "<distribution>)"
            )
        return self._load(key, chosen)

    def _unknown(self, key: str) -> UnknownPackerError:
        import difflib  # here, not at module level: only error paths need it (cold start)

        available = tuple(self.names())
        close = difflib.get_close_matches(key, available, n=1, cutoff=0.6)
        message = f"unknown packer {key!r}." + (f" Did you mean {close[0]!r}?" if close else "")
        message += f" Installed packers: {', '.join(available) or 'none'}."
        if not self.autoload:
            message += " Plugin discovery is off (FEDPACK_PLUGIN_AUTOLOAD=0)."
        message += f" If {key!r} is published as a plugin, install it: {install_hint(key)}"
        return UnknownPackerError(message, name=key, available=available)

    def _load(self, key: str, ep: EntryPoint) -> type[ParameterPacker[Any]]:
        slot = (key, ep.path)
        if slot in self._failed:
            raise self._failed[slot]
        if slot not in self._loaded:
            try:
                classes = self._import_and_register(key, ep)
            except PluginLoadError as exc:
                self._failed[slot] = exc
                raise
            self._loaded.update({(name, ep.path): cls for name, cls in classes.items()})
        return self._loaded[slot]

    def _import_and_register(
        self, key: str, ep: EntryPoint
    ) -> dict[str, type[ParameterPacker[Any]]]:
        where = f"plugin {ep.label} (entry point {key} = {ep.value})"
        try:
            plugin = _load_entry_point(ep.value)
        except Exception as exc:
            raise PluginLoadError(f"{where} failed to import: {exc!r}") from exc
        collected: dict[str, type[ParameterPacker[Any]]] = {}

        def register(cls: type[ParameterPacker[Any]], /) -> None:
            name = _class_name(cls, where=f"{where}: register()")
            if name in collected:
                raise PluginLoadError(f"{where} registered packer {name!r} twice")
            collected[name] = cls

        # pluggy checks the plugin against the hook specification (unknown hooks, argument
        # names); the plugin's one hook is then called with nothing else registered
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        try:
            manager.register(plugin, name=f"{ep.distribution}:{key}")
            manager.check_pending()
            manager.hook.fedpack_register_packers(register=register)
        except PluginLoadError:
            raise
        except Exception as exc:
            raise PluginLoadError(f"{where} failed to register: {exc!r}") from exc
        if key not in collected:
            found = ", ".join(sorted(collected)) or "nothing"
            raise PluginLoadError(
                f"{where} registers no packer named {key!r} (it registered {found}); does "
                "it implement fedpack_register_packers with @fedpack.hookimpl?"
            )
        scanned = self._entry_points().items()
        declared = {n for n, claims in scanned if any(c.path == ep.path for c in claims)}
        undeclared = sorted(set(collected) - declared)
        if undeclared:
            raise PluginLoadError(
                f"{where} registered {', '.join(map(repr, undeclared))}, which its "
                f"distribution does not declare under the {self._group!r} entry points"
            )
        return collected

    def _load_everything(self) -> None:
        """Strict mode: import every discovered plugin now and raise on the first problem."""
        for name in sorted(self._entry_points()):
            if name not in self.disabled and name not in self._local:
                self._resolve(name)
        self._strict_checked = True


def _class_name(cls: object, *, where: str) -> str:
    if not isinstance(cls, type) or not issubclass(cls, ParameterPacker):
        raise TypeError(f"{where}: expected a subclass of fedpack.ParameterPacker, found {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{where}: {_qualname(cls)} does not set a str class attribute 'name'")
    if normalize_name(name) != name:
        raise TypeError(
            f"{where}: {_qualname(cls)}.name must be lower-case [a-z0-9_], found {name!r}"
        )
    return name


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load_entry_point(value: str) -> object:
    module_name, _, attrs = value.partition(":")
    obj: object = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj
