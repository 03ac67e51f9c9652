"""The decoding budget: how much a received payload may make the receiver spend.

Every decoding path (the npy codec, the frame, the packers, :func:`fedpack.unpack`, the
Flower helpers) checks a payload against ONE :class:`DecodeBudget`, set by the receiver,
*before* anything is allocated for it, in O(number of arrays). A payload of ``n`` bytes never
makes the receiver allocate more than ``max(max_bytes, max_expansion * n)`` bytes, and a
frame's options can only tighten the budget. The README's decoding-budget section has the
table of defaults (a test keeps it equal to the fields below).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._errors import PackingError

__all__ = ["DEFAULT_BUDGET", "DecodeBudget"]


@dataclass(frozen=True)
class DecodeBudget:
    """Limits on what one received payload may make the receiver allocate or process.

    Every field is a non-negative ``int`` (defaults: the README's table). Build a looser or
    tighter budget with ``DecodeBudget(max_elements=2**33)`` or from another with :meth:`replace`.
    """

    #: Arrays in one payload; also names in a names array and entries of a per-array list.
    max_arrays: int = 10_000
    #: Sections one frame may declare.
    max_sections: int = 64
    #: Dimensions of one array or of one claimed tensor shape.
    max_rank: int = 16
    #: Elements of one array or of one claimed tensor shape.
    max_elements: int = 1 << 31
    #: Bytes the receiver may allocate for one payload, whatever the payload's size.
    max_bytes: int = 64 << 20
    #: Beyond :attr:`max_bytes`, at most this many times the payload's own bytes.
    max_expansion: int = 64
    #: Characters of one string element (a tensor, layer or dtype name).
    max_string_width: int = 1024
    #: Characters of a packer or section name in a frame.
    max_name_length: int = 128
    #: Bytes of the frame array.
    max_frame_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name in _FIELDS:  # every field, in order
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"DecodeBudget.{name}: expected a non-negative int, found {value!r}"
                )

    def replace(self, **limits: int) -> DecodeBudget:
        """A copy with the given fields set (looser or tighter)."""
        return dataclasses.replace(self, **limits)

    def tighten(self, other: DecodeBudget | None = None, /, **limits: int) -> DecodeBudget:
        """A copy where each field is the smaller of this budget's and ``other``'s / ``limits``'.

        ``budget.tighten(max_elements=n)`` can lower ``max_elements`` but never raise it.
        """
        unknown = sorted(set(limits) - set(_FIELDS))
        if unknown:
            raise TypeError(f"DecodeBudget.tighten: unknown limit {unknown[0]!r}")
        merged = {name: getattr(self, name) for name in _FIELDS}
        for source in ({} if other is None else dataclasses.asdict(other), limits):
            merged |= {name: min(merged[name], value) for name, value in source.items()}
        return DecodeBudget(**merged)

    def allowance(self, payload_bytes: int) -> int:
        """Bytes a payload of ``payload_bytes`` bytes may make the receiver allocate."""
        return max(self.max_bytes, self.max_expansion * payload_bytes)

    def check_count(self, count: int, *, what: str) -> None:
        """Refuse more than :attr:`max_arrays` arrays (or names, or list entries)."""
        if count > self.max_arrays:
            raise PackingError(
                f"{what}: expected at most {self.max_arrays} entries (budget max_arrays), "
                f"found {count}"
            )

    def check_shape(self, shape: tuple[int, ...], *, what: str) -> int:
        """Refuse a shape beyond :attr:`max_rank` or :attr:`max_elements`; its element count."""
        if len(shape) > self.max_rank:
            raise PackingError(
                f"{what}: expected at most {self.max_rank} dimensions (budget max_rank), "
                f"found {len(shape)}"
            )
        count = 1
        for axis, size in enumerate(shape):
            if size > self.max_elements:
                raise PackingError(
                    f"{what}: expected at most {self.max_elements} elements (budget "
                    f"max_elements), found {size} in dimension {axis}; refusing to allocate"
                )
            count *= size
        if count > self.max_elements:
            raise PackingError(
                f"{what}: expected at most {self.max_elements} elements (budget max_elements), "
                f"found {count} for a shape of {len(shape)} dimensions; refusing to allocate"
            )
        return count

    def check_alloc(self, nbytes: int, payload_bytes: int, *, what: str) -> None:
        """Refuse to allocate ``nbytes`` for a payload of ``payload_bytes`` bytes."""
        allowed = self.allowance(payload_bytes)
        if nbytes > allowed:
            raise PackingError(
                f"{what}: the payload ({payload_bytes} bytes) would make the receiver allocate "
                f"{nbytes} bytes, expected at most {allowed} (budget max_bytes={self.max_bytes}, "
                f"max_expansion={self.max_expansion}); refusing to allocate"
            )


_FIELDS = tuple(field.name for field in dataclasses.fields(DecodeBudget))
#: The budget used when the receiver sets none (see the module documentation).
DEFAULT_BUDGET = DecodeBudget()


def budget_or_default(budget: object) -> DecodeBudget:
    """``budget``, or :data:`DEFAULT_BUDGET` for ``None``; a ``TypeError`` for anything else."""
    if budget is None:
        return DEFAULT_BUDGET
    if not isinstance(budget, DecodeBudget):
        raise TypeError(f"budget: expected a fedpack.DecodeBudget or None, found {budget!r:.80}")
    return budget
