"""The ``echo`` packer: weights followed by a list of arrays, for fedpack's test suite.

Built on fedpack's public API only, as a third-party plugin is. The extra data is a list of
arrays (a minimal SCAFFOLD): framed, the frame says how many arrays are weights; unframed,
``size_of_model_params`` must say it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import fedpack
from fedpack.checks import array_list, describe
from fedpack.hookspecs import RegisterPacker

__all__ = ["EchoPacker", "fedpack_register_packers"]


class EchoPacker(fedpack.ParameterPacker[fedpack.NDArrays]):
    """Weights followed by the extra arrays, returned unchanged."""

    name: ClassVar[str] = "echo"

    def __init__(self, size_of_model_params: int | None = None, *, framed: bool = True) -> None:
        """``size_of_model_params`` is needed only to unpack the unframed layout."""
        super().__init__(framed=framed)
        if size_of_model_params is not None and (
            isinstance(size_of_model_params, bool)
            or not isinstance(size_of_model_params, int)
            or size_of_model_params < 0
        ):
            raise TypeError(
                "size_of_model_params: expected a non-negative int or None, found "
                f"{describe(size_of_model_params)}"
            )
        #: How many leading arrays are weights in the unframed layout.
        self.size_of_model_params = size_of_model_params

    def encode(
        self, model_weights: fedpack.NDArrays, additional_parameters: fedpack.NDArrays
    ) -> fedpack.Encoded:
        """The weights, then the extra arrays."""
        extra = array_list(additional_parameters, what="echo: additional_parameters")
        return fedpack.Encoded([("weights", model_weights), ("echo", extra)])

    def decode(
        self, sections: fedpack.Sections, meta: Mapping[str, object]
    ) -> tuple[fedpack.NDArrays, fedpack.NDArrays]:
        """The weights and the extra arrays."""
        return sections["weights"], sections["echo"]

    @classmethod
    def example_extras(cls, weights: fedpack.NDArrays) -> list[Any]:
        """A copy of the weights, and no extra arrays."""
        return [[w.copy() for w in weights], []]

    @classmethod
    def example_options(cls, weights: fedpack.NDArrays) -> dict[str, Any]:
        """``size_of_model_params``, needed to split the unframed layout."""
        return {"size_of_model_params": len(weights)}

    def split_unframed(self, packed: fedpack.NDArrays) -> fedpack.Sections:
        """The first ``size_of_model_params`` arrays are the weights, the rest the extra."""
        n = self.size_of_model_params
        if n is None:
            raise fedpack.PackingError(
                "echo: an unframed payload needs size_of_model_params, found None"
            )
        if n > len(packed):
            raise fedpack.PackingError(
                f"echo: expected at least {n} arrays (size_of_model_params), found {len(packed)}"
            )
        return fedpack.Sections.split(packed, [("weights", n), ("echo", len(packed) - n)])


@fedpack.hookimpl
def fedpack_register_packers(register: RegisterPacker) -> None:
    """Register :class:`EchoPacker` as ``echo``."""
    register(EchoPacker)
