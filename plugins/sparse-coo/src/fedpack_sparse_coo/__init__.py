"""The ``sparse_coo`` packer: sparse tensors as values, COO indices, shapes and names.

FL4Health's layout (``SparseCooParameterPacker``, ``framed=False``) for k tensors is
``values_0..k-1 + indices_0..k-1 + shapes_0..k-1 + [np.array(names)]``: values 1-D in the
tensor's dtype, indices int64 ``(nnz, ndim)``, shapes int64 ``(ndim,)``, names ``<U..``. The
framed layout (the default) is the same arrays plus a frame recording k for every section, so
a payload whose sections disagree is refused instead of re-split.

``encoding="compact"`` (framed only) replaces values + indices by the smallest of three
per-tensor encodings (flat positions, bitmask, dense; see ``_compact``); unpacking returns the
same ``(values, (indices, shapes, names))`` and :meth:`SparseCooPacker.unpack_dense` rebuilds
dense arrays straight from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

import fedpack
from fedpack import Encoded, JSONValue, NDArray, NDArrays, PackingError, Sections
from fedpack.checks import (
    array_list,
    describe,
    int_option,
    names_from_array,
    names_to_array,
    shorten,
    unique_names,
)

from ._compact import (
    CompactTensor,
    compact_tensors,
    decode_tensors,
    encode_tensors,
    rebuild_tensors,
)
from ._dense import densify, extract_coo_info, sparsify
from ._kernels import DEFAULT_MAX_ELEMENTS
from ._validate import check_all

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "ENCODINGS",
    "SparseCooPacker",
    "densify",
    "fedpack_register_packers",
    "sparsify",
]

#: The values of the ``encoding`` option.
ENCODINGS = ("coo", "compact")

SparseExtra = tuple[NDArrays, NDArrays, list[str]]
_COO = ("weights", "indices", "shapes", "names")
_COMPACT = ("weights", "positions", "shapes", "names")
_WHAT = "sparse_coo"


class SparseCooPacker(fedpack.ParameterPacker[SparseExtra]):
    """Sparse tensors in FL4Health's COO form: ``(values, (indices, shapes, names))``.

    ``model_weights`` are the values (one 1-D array per tensor) and ``additional_parameters``
    is ``(indices, shapes, names)``: one int64 ``(nnz, ndim)`` index matrix, one int64
    ``(ndim,)`` shape and one name per tensor. Both directions validate every tensor: the
    counts agree, values are 1-D, indices are 2-D integer with one row per value and one column
    per dimension, shapes are non-negative, every index is inside its dimension and names are
    unique non-empty ``str``. Messages name the tensor.

    :param encoding: ``"coo"`` (default; FL4Health's arrays) or ``"compact"`` (per tensor the
        smallest of flat positions, a bitmask or the dense tensor; needs ``framed=True``,
        else ``ValueError``). Written into the frame, so :func:`fedpack.unpack` rebuilds it.
        A packer of either encoding unpacks payloads of both.
    :param max_elements: the largest element count a tensor's shape may claim (checked before
        anything is allocated); not sent. Default: the budget's ``max_elements`` (see
        :class:`fedpack.DecodeBudget`, which also bounds the rank of a shape, the names and the
        bytes :meth:`unpack_dense` may allocate). Given here, it replaces the budget's; read
        from a frame (``fedpack.unpack``), it can only lower the receiver's.
    :param framed: ``False`` for FL4Health's exact layout.
    """

    name: ClassVar[str] = "sparse_coo"

    def __init__(
        self,
        *,
        encoding: str = "coo",
        framed: bool = True,
        max_elements: int | None = None,
    ) -> None:
        """Create the packer; see the class docstring for the options."""
        super().__init__(framed=framed)
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding: expected one of {ENCODINGS}, found {encoding!r}")
        if encoding == "compact" and not framed:
            raise ValueError(
                "encoding='compact' needs framed=True: FL4Health's layout (framed=False) has no "
                "frame to record each tensor's encoding"
            )
        max_elements = int_option(max_elements, what="max_elements")
        #: ``"coo"`` or ``"compact"``.
        self.encoding = encoding
        self._max_elements = max_elements
        self.use_budget(None)

    @property
    def max_elements(self) -> int:
        """The largest element count a tensor may claim (the budget's ``max_elements``)."""
        return self.budget.max_elements

    @max_elements.setter
    def max_elements(self, value: int) -> None:
        self._max_elements = value
        self.budget = self.budget.replace(max_elements=value)

    def own_limits(self) -> dict[str, int]:
        """``{"max_elements": n}`` when the packer was built with ``max_elements=n``."""
        return {} if self._max_elements is None else {"max_elements": self._max_elements}

    # -- the plugin methods ----------------------------------------------------------------------

    def encode(self, model_weights: NDArrays, additional_parameters: SparseExtra) -> Encoded:
        """Check every tensor, then lay out FL4Health's sections (or the compact ones)."""
        indices, shapes, names = _split_extra(additional_parameters)
        flats = check_all(
            _WHAT, model_weights, indices, shapes, names, max_elements=self.max_elements
        )
        names_array = names_to_array(names)
        if self.encoding == "compact":
            weights, positions, encodings = encode_tensors(model_weights, flats, shapes, names)
            return Encoded(
                [
                    ("weights", weights),
                    ("positions", positions),
                    ("shapes", shapes),
                    ("names", [names_array]),
                ],
                {"encodings": list(encodings)},
            )
        return Encoded(
            [
                ("weights", model_weights),
                ("indices", indices),
                ("shapes", shapes),
                ("names", [names_array]),
            ]
        )

    def decode(
        self, sections: Sections, meta: Mapping[str, JSONValue]
    ) -> tuple[NDArrays, SparseExtra]:
        """Validate every tensor and return ``(values, (indices, shapes, names))``."""
        names = _names(sections, self.budget)
        if _is_compact(sections):
            tensors = _compact_tensors(sections, names, meta, self.budget)
            values, indices = decode_tensors(
                _WHAT, tensors, max_elements=self.max_elements, budget=self.budget
            )
            return values, (indices, sections["shapes"], names)
        values, indices, shapes = sections["weights"], sections["indices"], sections["shapes"]
        check_all(
            _WHAT,
            values,
            indices,
            shapes,
            names,
            max_elements=self.max_elements,
            where=sections.where,
            max_rank=self.budget.max_rank,
        )
        return values, (indices, shapes, names)

    def split_unframed(self, packed: NDArrays) -> Sections:
        """Thirds plus the names, as FL4Health splits (``len % 3 == 1`` required)."""
        if len(packed) % 3 != 1:
            raise PackingError(
                f"{_WHAT} (framed=False): expected 3k+1 arrays (k values, k indices, k shapes, "
                f"then the names), found {len(packed)}"
            )
        k = (len(packed) - 1) // 3
        return Sections.split(packed, [("weights", k), ("indices", k), ("shapes", k), ("names", 1)])

    def frame_options(self) -> dict[str, Any]:
        """The encoding (the receiver's packer is rebuilt with it)."""
        return {"encoding": self.encoding}

    def options(self) -> dict[str, Any]:
        """The encoding, and ``max_elements`` when it was given."""
        return self.frame_options() | self.own_limits()

    def check_frame_options(self, options: Mapping[str, Any]) -> None:
        """Accept a frame of either encoding (decoding follows the payload's sections)."""
        if dict(options) not in ({"encoding": encoding} for encoding in ENCODINGS):
            raise PackingError(
                f"{_WHAT}: expected frame options {{'encoding': 'coo' | 'compact'}}, "
                f"found {dict(options)!r:.200}"
            )

    # -- dense helpers ---------------------------------------------------------------------------

    @staticmethod
    def extract_coo_info_from_dense(x: Any) -> tuple[NDArray, NDArray, NDArray]:
        """``(values, indices, shape)`` of a numpy array or torch tensor, as FL4Health's.

        Values are the non-zero elements in row-major order (exact zeros are not sent), indices
        int64 ``(nnz, ndim)``, shape int64 ``(ndim,)``. Unlike FL4Health this takes numpy
        arrays too, detaches tensors that require grad, moves CUDA tensors to the CPU, accepts
        0-d tensors (indices ``(nnz, 0)``) and converts bfloat16 (no numpy dtype) to float32.
        torch is imported only when a tensor is passed.
        """
        return extract_coo_info(x)

    def unpack_dense(
        self, packed_parameters: NDArrays, *, base: Mapping[str, NDArray] | None = None
    ) -> tuple[list[str], NDArrays]:
        """``(names, dense arrays)`` from a payload, validated as by ``unpack_parameters``.

        A compact payload is rebuilt straight from its compact arrays (no COO indices are
        built: the fast path). Unsent elements are zero, or keep ``base[name]``'s values
        (``base`` is never modified). Without ``base``, the dense tensors must fit the
        budget's allocation allowance (``max(max_bytes, max_expansion * payload bytes)``),
        checked before any is allocated.
        """
        sections, meta = self.split(packed_parameters)
        names = _names(sections, self.budget)
        if _is_compact(sections):
            tensors = _compact_tensors(sections, names, meta, self.budget)
            return names, rebuild_tensors(
                _WHAT, tensors, base, max_elements=self.max_elements, budget=self.budget
            )
        values = sections["weights"]
        extra = (sections["indices"], sections["shapes"], names)
        dense = densify(values, extra, base=base, budget=self.budget)
        return names, [dense[name] for name in names]

    # -- conformance hooks -----------------------------------------------------------------------

    @classmethod
    def example_extras(cls, weights: NDArrays) -> list[Any]:
        """For 1-D numeric weights (the values): the same values on 1-D and on 2-D tensors."""
        if not all(w.ndim == 1 and w.dtype.kind in "biufc" for w in weights):
            return []
        names = [f"layer{i}.weight" for i in range(len(weights))]
        spread = [(np.arange(w.size, dtype=np.int64) * 2)[:, None] for w in weights]
        line = [np.array([2 * w.size + 1], dtype=np.int64) for w in weights]
        grid = [
            np.stack([np.arange(w.size), np.arange(w.size) % 3], axis=1).astype(np.int64)
            for w in weights
        ]
        box = [np.array([max(w.size, 1), 3], dtype=np.int64) for w in weights]
        return [(spread, line, names), (grid, box, names[::-1])]

    @classmethod
    def example_options(cls, weights: NDArrays) -> dict[str, Any]:
        """No options: FL4Health's layout splits on its own."""
        return {}


def _split_extra(extra: object) -> tuple[NDArrays, NDArrays, list[str]]:
    if not isinstance(extra, (tuple, list)) or len(extra) != 3:
        raise PackingError(
            f"{_WHAT}: additional_parameters: expected (indices, shapes, names), "
            f"found {describe(extra)}"
        )
    indices = array_list(extra[0], what=f"{_WHAT}: indices")
    shapes = array_list(extra[1], what=f"{_WHAT}: shapes")
    names = unique_names(extra[2], what=f"{_WHAT}: names")
    return indices, shapes, names


def _is_compact(sections: Sections) -> bool:
    # iterate the names: Sections' __getitem__ raises PackingError, not KeyError
    return "positions" in tuple(sections)


def _names(sections: Sections, budget: fedpack.DecodeBudget) -> list[str]:
    expected = _COMPACT if _is_compact(sections) else _COO
    if tuple(sections) != expected:
        raise PackingError(
            f"{_WHAT}: expected the sections {list(expected)}, found {shorten(list(sections))}"
        )
    return names_from_array(
        sections.one("names"), what=f"{_WHAT} names", where=sections.where("names"), budget=budget
    )


@fedpack.hookimpl
def fedpack_register_packers(register: fedpack.hookspecs.RegisterPacker) -> None:
    """Register :class:`SparseCooPacker` as ``sparse_coo``."""
    register(SparseCooPacker)


def _compact_tensors(
    sections: Sections, names: list[str], meta: Mapping[str, Any], budget: fedpack.DecodeBudget
) -> list[CompactTensor]:
    """The per-tensor compact parts of a compact payload, checked against the frame meta."""
    return compact_tensors(
        _WHAT,
        sections["weights"],
        sections["positions"],
        sections["shapes"],
        names,
        meta,
        max_rank=budget.max_rank,
        max_elements=budget.max_elements,
    )
