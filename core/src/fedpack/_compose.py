"""Composition: several packers in one payload, from their own encode / decode / split.

The frame names the packer ``compose`` and records each part; a part's section ``s`` is called
``<part>__<s>`` unless ``s`` is the part's name. Without a frame, parts are peeled off the end,
the last first. The README's "Composition" section has the layout and the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._budget import DEFAULT_BUDGET, DecodeBudget
from ._errors import PackingError
from ._names import normalize_name
from ._packer import Encoded, ParameterPacker, Sections
from ._typing import JSONValue, NDArrays
from .checks import describe, shorten

__all__ = ["COMPOSE", "ComposedPacker", "check_parts", "parts_option", "split_composition"]

#: The packer name a composed payload's frame carries (reserved: no plugin may use it).
COMPOSE = "compose"
_RESERVED = frozenset({COMPOSE, "framed", "parts"})
# The longest part name a frame's ``parts`` option may carry (as a frame's names).
_MAX_PART_NAME = DEFAULT_BUDGET.max_name_length


def split_composition(name: str) -> tuple[str, ...]:
    """``"scaffold+clipping_bit"`` -> ``("scaffold", "clipping_bit")``, normalised and checked."""
    parts = tuple(normalize_name(part) for part in name.split("+"))
    if len(parts) < 2 or not all(parts):
        raise ValueError(
            f"composition {name!r}: expected two or more packer names joined by '+', e.g. 'a+b'"
        )
    reserved = sorted(set(parts) & _RESERVED)
    if reserved:
        raise ValueError(f"composition {name!r}: {', '.join(reserved)} cannot be a part")
    if len(set(parts)) != len(parts):
        raise ValueError(f"composition {name!r}: expected each packer at most once")
    return parts


def parts_option(parts: object) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """A frame's ``parts`` option, ``[{"packer": n, "options": {...}}, ...]``, checked."""
    if not isinstance(parts, Sequence) or isinstance(parts, (str, bytes)):
        raise ValueError(f"compose: parts: expected a list, found {describe(parts)}")
    names: list[str] = []
    options: list[dict[str, Any]] = []
    for entry in parts:
        if (
            not isinstance(entry, Mapping)
            or set(entry) != {"packer", "options"}
            or not isinstance(entry["packer"], str)
            or not isinstance(entry["options"], Mapping)
        ):
            raise ValueError(
                f"compose: parts: expected {{'packer': str, 'options': dict}}, found {entry!r:.100}"
            )
        if len(entry["packer"]) > _MAX_PART_NAME:
            raise ValueError(
                f"compose: parts: expected a packer name of at most {_MAX_PART_NAME} characters, "
                f"found {len(entry['packer'])} characters: {shorten(entry['packer'], 40)}"
            )
        names.append(entry["packer"])
        options.append(dict(entry["options"]))
    return split_composition("+".join(names)), options


def check_parts(names: Sequence[str], classes: Sequence[type[ParameterPacker[Any]]]) -> None:
    """Refuse a part that is a composition, and two parts that both transform the weights."""
    for name, cls in zip(names, classes, strict=True):
        if issubclass(cls, ComposedPacker):
            raise ValueError(f"compose: part {name!r} is itself a composition; list its parts")
    transforming = [n for n, c in zip(names, classes, strict=True) if c.transforms_weights]
    if len(transforming) > 1:
        raise ValueError(
            f"compose: at most one part may transform the weights, found {', '.join(transforming)}"
        )


def _section_name(part: str, section: str) -> str:
    return section if section == part else f"{part}__{section}"


class ComposedPacker(ParameterPacker[tuple[Any, ...]]):
    """Two or more packers in one payload; the extra data is a tuple, one per part.

    Built from packer instances (each with the composition's ``framed``), or by name with
    ``fedpack.get_packer("a+b", a={...})`` / :func:`fedpack.compose`. The weights are carried
    once: at most one part may declare ``transforms_weights`` and provide them.
    """

    name: ClassVar[str] = COMPOSE

    def __init__(self, parts: Sequence[ParameterPacker[Any]], *, framed: bool = True) -> None:
        """Compose ``parts`` (packer instances, in payload order, each built with ``framed``)."""
        super().__init__(framed=framed)
        found: object = parts
        if isinstance(found, (str, bytes)) or not all(
            isinstance(p, ParameterPacker) for p in parts
        ):
            raise TypeError(f"compose: parts: expected packer instances, found {parts!r:.100}")
        #: The part packers, in payload order.
        self.parts: tuple[ParameterPacker[Any], ...] = tuple(parts)
        names = [part.name for part in self.parts]
        split_composition("+".join(names))
        check_parts(names, [type(part) for part in self.parts])
        for part in self.parts:
            if part.framed != framed:
                raise TypeError(
                    f"compose: part {part.name!r} has framed={part.framed}, the composition "
                    f"framed={framed}; set framed= on the composition only"
                )
        tolerances = [p.lossy_tolerance for p in self.parts if p.lossy_tolerance is not None]
        self.lossy_tolerance = max(tolerances) if tolerances else None  # type: ignore[misc]
        self.lossy_extras = any(p.lossy_extras for p in self.parts)  # type: ignore[misc]
        self.transforms_weights = any(p.transforms_weights for p in self.parts)  # type: ignore[misc]

    @property
    def composition(self) -> str:
        """The composition's name, e.g. ``"scaffold+clipping_bit"``."""
        return "+".join(part.name for part in self.parts)

    def use_budget(self, budget: DecodeBudget | None, *, from_frame: bool = False) -> None:
        """Use ``budget`` for the composition and every part (see the base class)."""
        super().use_budget(budget, from_frame=from_frame)
        for part in self.parts:
            part.use_budget(budget, from_frame=from_frame)

    def options(self) -> dict[str, Any]:
        """Each part's options (those that have any), under the part's name."""
        return {part.name: options for part in self.parts if (options := part.options())}

    def __repr__(self) -> str:
        """``compose('a+b', a={...}, framed=...)``: the call that builds it."""
        args = "".join(f", {name}={value!r}" for name, value in self.options().items())
        return f"compose({self.composition!r}{args}, framed={self.framed!r})"

    def encode(self, model_weights: NDArrays, additional_parameters: tuple[Any, ...]) -> Encoded:
        """Encode every part; keep one weights section and every part's other sections."""
        extras = self._extras(additional_parameters)
        weights: NDArrays = model_weights
        sections: list[tuple[str, NDArrays]] = []
        parts_meta: list[JSONValue] = []
        for part, extra in zip(self.parts, extras, strict=True):
            encoded = part.encode(model_weights, extra)
            part_weights = encoded.sections[0][1]
            if part.transforms_weights:
                weights = part_weights
            elif len(part_weights) != len(model_weights) or any(
                a is not b for a, b in zip(part_weights, model_weights, strict=True)
            ):
                raise PackingError(
                    f"compose: part {part.name!r} changed the weights section but does not set "
                    "transforms_weights = True; a composition carries the weights once"
                )
            own = encoded.sections[1:]
            for section, arrays in own:
                sections.append((_section_name(part.name, section), arrays))
            parts_meta.append(
                {
                    "packer": part.name,
                    "sections": [[section, len(arrays)] for section, arrays in own],
                    "meta": dict(encoded.meta),
                }
            )
        names = ["weights", *(name for name, _ in sections)]
        if len(set(names)) != len(names):
            raise PackingError(f"compose {self.composition}: section names collide: {names}")
        return Encoded([("weights", weights), *sections], {"parts": parts_meta})

    def decode(
        self, sections: Sections, meta: Mapping[str, JSONValue]
    ) -> tuple[NDArrays, tuple[Any, ...]]:
        """Decode every part from the weights and its own sections; check the recorded parts."""
        layout = self._layout(sections, meta)
        weights_section = sections["weights"]
        weights: NDArrays | None = None
        extras: list[Any] = []
        for part, (own, part_meta) in zip(self.parts, layout, strict=True):
            view = [("weights", weights_section)]
            view_starts = {"weights": 0}
            for section in own:
                name = _section_name(part.name, section)
                view.append((section, sections[name]))
                view_starts[section] = sections.start(name)
            part_weights, extra = part.decode(Sections(view, starts=view_starts), part_meta)
            if weights is None or part.transforms_weights:
                weights = part_weights
            extras.append(extra)
        if weights is None:  # pragma: no cover - a composition has two parts or more
            raise PackingError("compose: no parts")
        return weights, tuple(extras)

    def split_unframed(self, packed: NDArrays) -> Sections:
        """Peel the parts off the end, the last part first (see the module docs)."""
        rest = packed
        own: list[list[tuple[str, NDArrays]]] = []
        for part in reversed(self.parts):
            split = part.split_unframed(rest)
            own.insert(0, [(n, a) for n, a in split.items() if n != "weights"])
            rest = split["weights"]
        parts: list[tuple[str, NDArrays]] = [("weights", rest)]
        for part, sections in zip(self.parts, own, strict=True):
            parts.extend((_section_name(part.name, n), a) for n, a in sections)
        return Sections(parts)

    def check_frame_options(self, options: Mapping[str, JSONValue]) -> None:
        """Leave the parts to :meth:`decode`, which names the expected and found composition."""

    def frame_options(self) -> dict[str, JSONValue]:
        """The parts and their options, for :func:`fedpack.unpack` to rebuild the composition."""
        return {"parts": [{"packer": p.name, "options": p.frame_options()} for p in self.parts]}

    def _extras(self, value: object) -> tuple[Any, ...]:
        if not isinstance(value, (tuple, list)) or len(value) != len(self.parts):
            raise PackingError(
                f"compose {self.composition}: additional_parameters: expected a tuple of "
                f"{len(self.parts)} extras ({', '.join(p.name for p in self.parts)}), "
                f"found {describe(value)}"
                + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
            )
        return tuple(value)

    def _layout(
        self, sections: Sections, meta: Mapping[str, JSONValue]
    ) -> list[tuple[list[str], Mapping[str, JSONValue]]]:
        """Per part: its own section names (payload order) and its meta."""
        if not self.framed:  # split_unframed named the sections: the part's name or part__s
            rest = list(sections)[1:]
            return [
                ([n.removeprefix(f"{p}__") for n in rest if n == p or n.startswith(f"{p}__")], {})
                for p in (part.name for part in self.parts)
            ]
        expected, recorded = self.composition, meta.get("parts")
        entries = [e for e in recorded if isinstance(e, dict)] if isinstance(recorded, list) else []
        if (
            not isinstance(recorded, list)
            or len(entries) != len(recorded)
            or not all(set(e) == {"packer", "sections", "meta"} for e in entries)
        ):
            raise PackingError(
                f"compose {expected}: expected the frame meta to record the parts as "
                f"[{{packer, sections, meta}}, ...], found {recorded!r:.200}"
            )
        found = "+".join(str(entry["packer"]) for entry in entries)
        if found != expected:
            raise PackingError(
                f"expected a payload of composition {expected!r}, found one of {shorten(found)}"
            )
        counts, claimed = dict(sections.counts()), {"weights"}
        layout: list[tuple[list[str], Mapping[str, JSONValue]]] = []
        for part, entry in zip(self.parts, entries, strict=True):
            raw, part_meta = entry["sections"], entry["meta"]
            at = f"compose {expected}: part {part.name!r}"
            if not isinstance(raw, list) or not isinstance(part_meta, dict):
                raise PackingError(
                    f"{at}: expected sections as a list and meta as an object, found "
                    f"{raw!r:.100} and {part_meta!r:.100}"
                )
            own: list[str] = []
            for item in raw:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                    raise PackingError(f"{at}: expected [name, count], found {item!r:.100}")
                name = _section_name(part.name, item[0])
                if counts.get(name) != item[1] or name in claimed:
                    raise PackingError(
                        f"{at} records section {shorten(item[0])} with {shorten(item[1], 40)} "
                        f"arrays, the frame has {counts.get(name)!r}"
                    )
                claimed.add(name)
                own.append(item[0])
            layout.append((own, part_meta))
        if claimed != set(counts):
            raise PackingError(
                f"compose {expected}: sections {shorten(sorted(set(counts) - claimed))} "
                "belong to no part"
            )
        return layout
