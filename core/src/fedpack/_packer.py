"""The packer protocol: :class:`ParameterPacker` and the pieces a plugin implements."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from ._budget import DEFAULT_BUDGET, DecodeBudget, budget_or_default
from ._errors import PackingError
from ._names import NAME_PATTERN
from ._typing import JSONValue, NDArray, NDArrays
from .checks import (
    array_list,
    describe,
    expect_sections,
    finite_scalar,
    scalar_from_array,
    shorten,
)
from .frame import Frame, encode_frame, format_sections, is_frame, read_frame

__all__ = ["Encoded", "ParameterPacker", "ScalarPacker", "Sections"]

T = TypeVar("T")


class Sections(Mapping[str, NDArrays]):
    """A payload split into named sections, in order, remembering where each one starts.

    ``sections["weights"]`` is a list of arrays; :meth:`one` fetches a one-array section and
    :meth:`where` formats an array's position for error messages.
    """

    def __init__(
        self, parts: Sequence[tuple[str, NDArrays]], *, starts: Mapping[str, int] | None = None
    ) -> None:
        """Build from ``(name, arrays)`` pairs in payload order.

        ``starts`` gives each section's position in a larger payload (a composition's part
        sees its own sections where the payload has them); by default they follow each other.
        """
        self._parts: dict[str, NDArrays] = {}
        self._starts: dict[str, int] = {}
        start = 0
        for name, arrays in parts:
            self._parts[name] = arrays
            self._starts[name] = start if starts is None else starts[name]
            start += len(arrays)

    @classmethod
    def split(cls, packed: Sequence[NDArray], counts: Sequence[tuple[str, int]]) -> Sections:
        """Split ``packed`` by ``(name, count)`` pairs, which must add up to its length."""
        starts = [0, *itertools.accumulate(count for _, count in counts)]
        if starts[-1] != len(packed):
            found = f"({format_sections(counts)}), found {len(packed)}"
            raise PackingError(f"expected {starts[-1]} arrays {found}")
        return cls(
            [(n, list(packed[starts[i] : starts[i + 1]])) for i, (n, _) in enumerate(counts)]
        )

    def __getitem__(self, name: str) -> NDArrays:
        try:
            return self._parts[name]
        except KeyError:
            raise PackingError(
                f"expected a section {shorten(name)}, found sections {shorten(list(self._parts))}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def counts(self) -> tuple[tuple[str, int], ...]:
        """``(name, number of arrays)`` for every section, in payload order."""
        return tuple((name, len(arrays)) for name, arrays in self._parts.items())

    def one(self, name: str) -> NDArray:
        """The single array of section ``name`` (an error for another count)."""
        arrays = self[name]
        if len(arrays) != 1:
            raise PackingError(f"section {shorten(name)}: expected 1 array, found {len(arrays)}")
        return arrays[0]

    def start(self, name: str) -> int:
        """The payload position of section ``name``'s first array."""
        self[name]
        return self._starts[name]

    def where(self, name: str, index: int = 0) -> str:
        """Describe the position of item ``index`` of section ``name`` for an error message."""
        self[name]
        return f"array {self._starts[name] + index}, {name}[{index}]"


@dataclass
class Encoded:
    """What a packer's :meth:`~ParameterPacker.encode` returns.

    ``sections`` are ``(name, arrays)`` pairs in payload order, the first one named
    ``"weights"``; ``meta`` is written into the frame (framed layout only) and handed back to
    :meth:`~ParameterPacker.decode` on the receiving side.
    """

    sections: list[tuple[str, NDArrays]]
    meta: dict[str, JSONValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sections or self.sections[0][0] != "weights":
            found = [name for name, _ in self.sections]
            raise PackingError(f"encode() must return the 'weights' section first, found {found}")


class ParameterPacker(ABC, Generic[T]):
    """Pack model weights and extra data ``T`` into one flat list of arrays, and back.

    ``pack_parameters(model_weights, additional_parameters)`` and
    ``unpack_parameters(packed_parameters)`` keep FL4Health's names; they are implemented here,
    once (checks, the trailing frame of ``framed=True``, the split). A packer implements:

    - :meth:`encode`: weights and extra data -> named sections (FL4Health's order);
    - :meth:`decode`: named sections (+ frame meta) -> ``(weights, extra)``, validating;
    - :meth:`split_unframed`: how FL4Health's layout (no frame) splits into those sections.

    It sets :attr:`name` (``[a-z0-9_]+``); :meth:`frame_options` are the options the receiver
    needs, written into the frame for :func:`fedpack.unpack`. Weight arrays are never copied.
    """

    #: The registry name of this packer class.
    name: ClassVar[str]

    #: ``None`` for a lossless packer. A lossy one sets the error it guarantees: every float
    #: weight ``x`` comes back within ``lossy_tolerance * max|x|`` of its tensor (shapes, dtypes
    #: and non-float weights exactly). The conformance checks hold it to that.
    lossy_tolerance: ClassVar[float | None] = None

    #: ``True`` when the extra data's float arrays come back within :attr:`lossy_tolerance`
    #: rather than exactly (e.g. quantized control variates).
    lossy_extras: ClassVar[bool] = False

    #: ``True`` when the weights section holds new arrays (quantized, compressed), not the
    #: caller's objects; a composition then takes its weights section from this packer.
    transforms_weights: ClassVar[bool] = False

    #: For an extra that is one scalar Flower's own code reads too: ``(reply_metric_key,
    #: instruction_config_key)``, the keys :mod:`fedpack.flwr` mirrors it under (in a
    #: composition too), e.g. ``("norm_bit", "clipping_norm")`` for Flower's DP clipping.
    flower_scalar_keys: ClassVar[tuple[str, str] | None] = None

    #: The decoding budget payloads are checked against (see :class:`fedpack.DecodeBudget`):
    #: the receiver's, set by ``get_packer(name, budget=...)`` / :meth:`use_budget`, with the
    #: limits of this packer's own options (:meth:`own_limits`) applied.
    budget: DecodeBudget = DEFAULT_BUDGET

    def __init__(self, *, framed: bool = True) -> None:
        """Create a packer; ``framed=False`` selects FL4Health's exact layout (no frame)."""
        if not isinstance(framed, bool):
            raise TypeError(f"framed: expected a bool, found {describe(framed)}")
        #: Whether payloads carry the trailing self-describing frame.
        self.framed = framed

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
            raise TypeError(
                f"{cls.__qualname__}.name: expected a packer name of [a-z0-9_]+, found {name!r}"
            )

    def own_limits(self) -> dict[str, int]:
        """Budget limits set by this packer's own options, e.g. ``{"max_elements": n}``.

        They replace the receiver's limits when the receiver chose the options, and can only
        tighten them when the options come from a payload's frame (:meth:`use_budget`).
        """
        return {}

    def use_budget(self, budget: DecodeBudget | None, *, from_frame: bool = False) -> None:
        """Check payloads against ``budget`` from now on (``None``: the default budget).

        :meth:`own_limits` apply on top; with ``from_frame=True`` (options read from a payload,
        as :func:`fedpack.unpack` does) they can only tighten ``budget``, never loosen it.
        """
        base = budget_or_default(budget)
        own = self.own_limits()
        self.budget = base.tighten(**own) if from_frame else base.replace(**own)

    def __repr__(self) -> str:
        """``Name(option=value, ..., framed=...)``, from :meth:`options`: a constructor call."""
        options = {**self.options(), "framed": self.framed}
        args = ", ".join(f"{key}={value!r}" for key, value in options.items())
        return f"{type(self).__name__}({args})"

    def pack_parameters(self, model_weights: NDArrays, additional_parameters: T) -> NDArrays:
        """Return ``model_weights`` followed by the extra data's arrays (and the frame).

        The weight arrays are not copied: the returned list holds the same objects.
        """
        weights = array_list(model_weights, what="model_weights")
        encoded = self.encode(weights, additional_parameters)
        sections = encoded.sections
        packed: NDArrays = []
        for section, arrays in sections:
            packed.extend(array_list(arrays, what=f"{self.name} section {section!r}"))
        if self.framed:
            counts = tuple((section, len(arrays)) for section, arrays in sections)
            frame = Frame(self.name, counts, self.frame_options(), encoded.meta)
            packed.append(encode_frame(frame))
        return packed

    def unpack_parameters(self, packed_parameters: NDArrays) -> tuple[NDArrays, T]:
        """Split a payload back into ``(model_weights, additional_parameters)``.

        Every array is checked; a payload of another packer, a list that was never packed, a
        truncated or extended payload and a corrupted frame raise :class:`fedpack.PackingError`.
        """
        return self.decode(*self.split(packed_parameters))

    def split(
        self, packed_parameters: NDArrays, *, frame: Frame | None = None
    ) -> tuple[Sections, Mapping[str, JSONValue]]:
        """The split step every unpack path shares: a payload's sections and its frame meta.

        The arrays and the frame (this packer's, with its options) are checked; pass ``frame``
        when it was already read from ``packed_parameters``, so it is read once. Without a frame,
        :meth:`split_unframed` splits FL4Health's layout. ``unpack_parameters`` is
        ``decode(*split(packed))``.
        """
        if isinstance(packed_parameters, list) and len(packed_parameters) > self.budget.max_arrays:
            self.budget.check_count(len(packed_parameters), what="packed_parameters")
        packed = array_list(packed_parameters, what="packed_parameters")
        if not self.framed:
            if packed and is_frame(packed[-1]):
                raise PackingError(
                    f"packer {self.name!r} was built with framed=False (FL4Health's layout) but "
                    f"the payload ends in a fedpack frame at index {len(packed) - 1}; unpack it "
                    "with framed=True or fedpack.unpack()"
                )
            return self.split_unframed(packed), {}
        if frame is None:
            frame = read_frame(packed, budget=self.budget)
        if frame.packer != self.name:
            raise PackingError(
                f"expected a payload of packer {self.name!r}, found one packed by "
                f"{frame.packer!r} (use fedpack.unpack() to dispatch on the frame)"
            )
        self.check_frame_options(frame.options)
        return Sections.split(packed[:-1], frame.sections), frame.meta

    @abstractmethod
    def encode(self, model_weights: NDArrays, additional_parameters: T) -> Encoded:
        """Turn checked weights and the extra data into named sections, validating the extra.

        Return the weights section first, as ``("weights", model_weights)``, so the weight
        arrays are not copied.
        """

    @abstractmethod
    def decode(self, sections: Sections, meta: Mapping[str, JSONValue]) -> tuple[NDArrays, T]:
        """Turn named sections back into ``(model_weights, extra)``, validating every array."""

    @abstractmethod
    def split_unframed(self, packed: NDArrays) -> Sections:
        """Split a payload in FL4Health's layout (no frame) into the sections of :meth:`encode`."""

    def check_frame_options(self, options: Mapping[str, JSONValue]) -> None:
        """Refuse a frame written with other options than this packer's :meth:`frame_options`."""
        expected = self.frame_options()
        if dict(options) != expected:
            raise PackingError(
                f"packer {self.name!r}: the frame was written with options "
                f"{shorten(dict(options))}, this packer has {shorten(expected)} "
                "(fedpack.unpack() rebuilds the packer from the frame)"
            )

    def frame_options(self) -> dict[str, JSONValue]:
        """Constructor options the receiver needs, written into the frame (default: none)."""
        return {}

    def options(self) -> dict[str, Any]:
        """Every constructor option (but ``framed``) this packer was built with, for its repr.

        Default: :meth:`frame_options`. A packer with options that stay on the receiver (not
        written into the frame, e.g. ``size_of_model_params``) adds them here.
        """
        return self.frame_options()

    @classmethod
    def example_extras(cls, weights: NDArrays) -> list[Any]:
        """A few valid extras for ``weights``, for the conformance checks (``[]``: none fit).

        ``fedpack check`` and :mod:`fedpack.testing` round-trip the packer with them.
        """
        return []

    @classmethod
    def example_options(cls, weights: NDArrays) -> dict[str, Any]:
        """Constructor options the conformance checks build both layouts with, for ``weights``."""
        return {}


class ScalarPacker(ParameterPacker[float]):
    """A packer whose extra data is one finite real number, sent after the weights.

    FL4Health's layout, ``weights + [np.array(x)]``; unpacking also takes the shape ``(1,)``
    array FL4Health's server sends in the first round, and returns a Python ``float``.
    Subclasses set :attr:`name`, which also names the scalar's section.
    """

    def encode(self, model_weights: NDArrays, additional_parameters: float) -> Encoded:
        """Check the scalar (finite, real, not an array of several values) and append it."""
        finite_scalar(additional_parameters, what=f"{self.name}: additional_parameters")
        scalar: NDArray = np.array(additional_parameters)
        return Encoded([("weights", model_weights), (self.name, [scalar])])

    def decode(self, sections: Sections, meta: Mapping[str, JSONValue]) -> tuple[NDArrays, float]:
        """Return the weights and the scalar as a Python ``float``."""
        expect_sections(sections, ("weights", self.name), what=self.name)
        where = sections.where(self.name)
        return sections["weights"], scalar_from_array(
            sections.one(self.name), what=self.name, where=where
        )

    @classmethod
    def example_extras(cls, weights: NDArrays) -> list[Any]:
        """A few finite scalars: any weights can carry them."""
        return [0.0, 1.0, -2.5]

    def split_unframed(self, packed: NDArrays) -> Sections:
        """The last array is the scalar; everything before it is the weights."""
        if not packed:
            raise PackingError(
                f"{self.name}: expected the weights followed by one {self.name} array, "
                "found an empty list"
            )
        return Sections.split(packed, [("weights", len(packed) - 1), (self.name, 1)])
