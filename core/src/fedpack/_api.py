"""The module-level API: one lazily built default registry, and :func:`unpack`."""

from __future__ import annotations

import threading
from typing import Any

from ._budget import DecodeBudget, budget_or_default
from ._compose import ComposedPacker
from ._errors import (
    PackerConflictError,
    PackingError,
    PluginLoadError,
    UnknownPackerError,
    UnknownPayloadPackerError,
)
from ._packer import ParameterPacker
from ._registry import PackerInfo, PackerRegistry
from ._typing import NDArrays
from .checks import array_list, shorten
from .frame import Frame, read_frame

__all__ = [
    "compose",
    "default_registry",
    "get_packer",
    "get_packer_class",
    "list_packers",
    "packer_for_frame",
    "unpack",
]

_default: PackerRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> PackerRegistry:
    """The process-wide registry behind :func:`get_packer` and friends (built on first use)."""
    global _default
    registry = _default
    if registry is None:
        with _default_lock:
            if _default is None:
                _default = PackerRegistry()
            registry = _default
    return registry


def get_packer(
    name: str, /, *, budget: DecodeBudget | None = None, **options: Any
) -> ParameterPacker[Any]:
    """An instance of the packer registered under ``name``, built with ``options``.

    ``get_packer("scaffold", size_of_model_params=62)``; ``framed=False`` gives FL4Health's
    layout, ``budget`` the :class:`fedpack.DecodeBudget` received payloads are checked against.
    """
    return default_registry().get_packer(name, budget=budget, **options)


def get_packer_class(name: str) -> type[ParameterPacker[Any]]:
    """The packer class registered under ``name``."""
    return default_registry().get_packer_class(name)


def list_packers() -> list[PackerInfo]:
    """What is installed: name, distribution, version, entry point and state; imports nothing."""
    return default_registry().list_packers()


def unpack(
    packed: NDArrays,
    *,
    registry: PackerRegistry | None = None,
    budget: DecodeBudget | None = None,
) -> tuple[str, NDArrays, Any]:
    """Unpack a framed payload without knowing who packed it: ``(name, weights, extra)``.

    The frame names the packer (found in ``registry``, default the process-wide one) and its
    options; it is read once. Everything is checked against ``budget`` (default
    :data:`fedpack.DEFAULT_BUDGET`), which the frame can only tighten. Every error a payload can
    cause is a :class:`fedpack.PackingError` (:class:`fedpack.UnknownPayloadPackerError` for a
    packer this process cannot provide).
    """
    limits = budget_or_default(budget)
    if isinstance(packed, list):  # before the arrays are looked at one by one
        limits.check_count(len(packed), what="packed")
    arrays = array_list(packed, what="packed")
    frame = read_frame(arrays, budget=limits)
    packer = packer_for_frame(frame, registry=registry, budget=limits)
    weights, extra = packer.decode(*packer.split(arrays, frame=frame))
    if isinstance(packer, ComposedPacker):
        return packer.composition, weights, extra
    return frame.packer, weights, extra


def packer_for_frame(
    frame: Frame,
    *,
    registry: PackerRegistry | None = None,
    budget: DecodeBudget | None = None,
) -> ParameterPacker[Any]:
    """The packer that wrote ``frame``, rebuilt from its options, decoding within ``budget``.

    The frame's options can only tighten ``budget``. A packer this process cannot provide
    raises :class:`fedpack.UnknownPayloadPackerError`, options it refuses a ``PackingError``.
    """
    reg = registry or default_registry()
    options: dict[str, Any] = {k: v for k, v in frame.options.items() if k != "framed"}
    try:
        cls = reg.get_packer_class(frame.packer)
        packer = reg.get_packer(frame.packer, **options)
    except (UnknownPackerError, PackerConflictError, PluginLoadError) as exc:
        name = getattr(exc, "name", None)  # a composition's part, or the frame's packer
        raise payload_packer_error(exc, name if isinstance(name, str) else frame.packer) from exc
    except PackingError:
        raise
    except Exception as exc:  # a constructor refusing the frame's options, however it does
        where = f"{cls.__module__}.{cls.__qualname__}"
        raise PackingError(
            f"frame options {shorten(options)} do not fit packer {frame.packer!r} ({where}): "
            f"{shorten(str(exc), 300)}"
        ) from exc
    packer.use_budget(budget_or_default(budget), from_frame=True)
    return packer


def compose(
    *parts: str | ParameterPacker[Any], registry: PackerRegistry | None = None, **options: Any
) -> ComposedPacker:
    """A packer for two or more packers in one payload, weights carried once.

    ``compose("scaffold", "clipping_bit", scaffold={...})`` is
    ``get_packer("scaffold+clipping_bit", scaffold={...})`` (the extra is a tuple, one per
    part); packer instances compose as they are: ``compose(scaffold_packer, clipping_packer)``.
    """
    if len(parts) >= 2 and all(isinstance(part, ParameterPacker) for part in parts):
        return ComposedPacker(parts, **options)  # type: ignore[arg-type]
    if len(parts) < 2 or not all(isinstance(part, str) for part in parts):
        raise TypeError(
            "compose: expected two or more packer names (or packer instances), "
            f"found {parts!r:.200}"
        )
    packer = (registry or default_registry()).get_packer("+".join(parts), **options)  # type: ignore[arg-type]
    if not isinstance(packer, ComposedPacker):  # pragma: no cover - the registry guarantees it
        raise TypeError(f"compose: expected a composition, found {packer!r}")
    return packer


def payload_packer_error(exc: Exception, name: str) -> UnknownPayloadPackerError:
    """The :class:`fedpack.PackingError` for a payload naming a packer that cannot be used."""
    reason = (
        "is not installed (or is blocked)"
        if isinstance(exc, UnknownPackerError)
        else "is claimed by several plugins"
        if isinstance(exc, PackerConflictError)
        else "failed to load"
    )
    return UnknownPayloadPackerError(
        f"the payload names packer {shorten(name)}, which {reason} on this receiver: "
        f"{shorten(str(exc), 400)}",
        name=name[:200],
        available=getattr(exc, "available", ()),
    )
