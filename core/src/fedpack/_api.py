"""The module-level API: one lazily built default registry, and :func:`unpack`."""

from __future__ import annotations

import threading
from typing import Any

from ._compose import ComposedPacker
from ._errors import PackingError
from ._packer import ParameterPacker
from ._registry import PackerInfo, PackerRegistry
from ._typing import NDArrays
from .checks import array_list
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


def get_packer(name: str, /, **options: Any) -> ParameterPacker[Any]:
    """An instance of the packer registered under ``name``, built with ``options``.

    ``get_packer("scaffold", size_of_model_params=62)``; every packer accepts ``framed=False``
    for FL4Health's exact layout. Raises :class:`UnknownPackerError` (with a suggestion) for a
    name nobody provides, :class:`PackerConflictError` or :class:`PluginLoadError` as the
    registry rules say.
    """
    return default_registry().get_packer(name, **options)


def get_packer_class(name: str) -> type[ParameterPacker[Any]]:
    """The packer class registered under ``name``."""
    return default_registry().get_packer_class(name)


def list_packers() -> list[PackerInfo]:
    """What is installed: name, distribution, version, entry point and state; imports nothing."""
    return default_registry().list_packers()


def unpack(
    packed: NDArrays, *, registry: PackerRegistry | None = None
) -> tuple[str, NDArrays, Any]:
    """Unpack a framed payload without knowing who packed it: ``(name, weights, extra)``.

    The frame names the packer and carries the options to rebuild it; the packer is found in
    ``registry`` (default: the process-wide one). A payload without a frame is rejected.
    """
    arrays = array_list(packed, what="packed")
    frame = read_frame(arrays)
    packer = packer_for_frame(frame, registry=registry)
    weights, extra = packer.unpack_parameters(arrays)
    if isinstance(packer, ComposedPacker):
        return packer.composition, weights, extra
    return frame.packer, weights, extra


def packer_for_frame(
    frame: Frame, *, registry: PackerRegistry | None = None
) -> ParameterPacker[Any]:
    """The packer that wrote ``frame``, rebuilt from the options the frame carries."""
    cls = (registry or default_registry()).get_packer_class(frame.packer)
    options: dict[str, Any] = {k: v for k, v in frame.options.items() if k != "framed"}
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise PackingError(
            f"frame options {options!r} do not fit packer {frame.packer!r} "
            f"({cls.__module__}.{cls.__qualname__}): {exc}"
        ) from exc


def compose(*names: str, registry: PackerRegistry | None = None, **options: Any) -> ComposedPacker:
    """A packer for two or more registered packers in one payload, weights carried once.

    ``compose("scaffold", "clipping_bit")`` is ``get_packer("scaffold+clipping_bit")``: its
    extra data is a tuple ``(control_variates, clipping_bit)``. Options of a part go under the
    part's name (``scaffold={"size_of_model_params": 62}``); ``framed=`` applies to the whole.
    ``fedpack.unpack`` of a composed payload returns the name ``"scaffold+clipping_bit"``.
    """
    if len(names) < 2 or not all(isinstance(name, str) for name in names):
        raise TypeError(f"compose: expected two or more packer names, found {names!r}")
    packer = (registry or default_registry()).get_packer("+".join(names), **options)
    if not isinstance(packer, ComposedPacker):  # pragma: no cover - the registry guarantees it
        raise TypeError(f"compose: expected a composition, found {packer!r}")
    return packer
