"""The ``layer_names`` packer: model weights followed by the names of the layers they belong to.

Layout (FL4Health's ``ParameterPackerWithLayerNames``): ``weights + [np.array(names)]``, a
fixed-width unicode array ``<U{maxlen}`` of shape ``(k,)`` (an empty list gives the float64 array
of shape ``(0,)`` that ``np.array([])`` makes). There is one name per weight array, at pack and
at unpack, in both layouts; names are unique, non-empty ``str`` without NUL characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import fedpack
from fedpack import Encoded, JSONValue, NDArrays, PackingError, Sections
from fedpack.checks import expect_sections, names_from_array, names_to_array, unique_names

__all__ = ["LayerNamesPacker", "fedpack_register_packers"]

_SECTIONS = ("weights", "layer_names")


class LayerNamesPacker(fedpack.ParameterPacker[list[str]]):
    """Weights plus the names of the layers (``state_dict`` keys) they belong to.

    Used for partial weight exchange, where only some layers travel each round: the client
    sends the arrays it selected followed by their names, so the server knows which global
    layers to update; the server can answer the same way. ``names[i]`` names
    ``model_weights[i]``, so the two counts must be equal.
    """

    name: ClassVar[str] = "layer_names"

    def encode(self, model_weights: NDArrays, additional_parameters: list[str]) -> Encoded:
        """Check the names (one per weight array, unique, non-empty) and append them."""
        names = unique_names(
            additional_parameters,
            what="layer_names: additional_parameters",
            count=len(model_weights),
        )
        return Encoded([("weights", model_weights), ("layer_names", [names_to_array(names)])])

    def decode(
        self, sections: Sections, meta: Mapping[str, JSONValue]
    ) -> tuple[NDArrays, list[str]]:
        """Return the weights and the names, checking there is one name per weight array."""
        expect_sections(sections, _SECTIONS, what="layer_names")
        weights = sections["weights"]
        where = sections.where("layer_names")
        names = names_from_array(
            sections.one("layer_names"), what="layer_names", where=where, budget=self.budget
        )
        if len(names) != len(weights):
            raise PackingError(
                f"layer_names ({where}): expected one name per weight array, "
                f"{len(weights)} names, found {len(names)}"
            )
        return weights, names

    @classmethod
    def example_extras(cls, weights: NDArrays) -> list[Any]:
        """One name per weight array: ``state_dict``-style and non-ASCII names."""
        return [
            [f"layer{i}.weight" for i in range(len(weights))],
            [f"блок.{i}/μ" for i in range(len(weights))],
        ]

    def split_unframed(self, packed: NDArrays) -> Sections:
        """The last array holds the names; everything before it is the weights."""
        if not packed:
            raise PackingError(
                "layer_names: expected the weights followed by one array of names, "
                "found an empty list"
            )
        return Sections.split(packed, [("weights", len(packed) - 1), ("layer_names", 1)])


@fedpack.hookimpl
def fedpack_register_packers(register: fedpack.hookspecs.RegisterPacker) -> None:
    """Register :class:`LayerNamesPacker` as ``layer_names``."""
    register(LayerNamesPacker)
