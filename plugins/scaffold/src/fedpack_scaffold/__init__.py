"""The ``scaffold`` packer: model weights followed by SCAFFOLD control variates.

Layout (FL4Health's ``ParameterPackerWithControlVariates``): ``weights + control_variates``,
two sections ``("weights", n)`` and ``("control_variates", m)``. In the framed layout (the
default) the frame carries ``n`` and ``m``, so unpacking needs no ``size_of_model_params``; in
FL4Health's layout (``framed=False``) the split point must be given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

import fedpack
from fedpack import Encoded, JSONValue, NDArrays, PackingError, Sections
from fedpack.checks import array_list, describe, expect_sections, int_option

__all__ = ["ScaffoldPacker", "fedpack_register_packers"]

_SECTIONS = ("weights", "control_variates")
_NUMERIC = frozenset("biufc")


class ScaffoldPacker(fedpack.ParameterPacker[NDArrays]):
    """Weights plus SCAFFOLD control variates.

    Server to client: the global model weights followed by the server control variates ``c``.
    Client to server: the client's updated weights followed by its control variate update
    (``delta c_i``). Weights come from the model's ``state_dict()`` and so include buffers such as
    BatchNorm's ``running_mean``, ``running_var`` and the 0-d ``num_batches_tracked``; control
    variates exist only for trainable parameters. The two counts therefore differ, and the
    split point is not implied by the payload unless it is framed.

    ``size_of_model_params`` is the number of weight arrays (FL4Health's constructor argument):

    - framed layout (``framed=True``, the default): optional. The frame records both counts.
      When given, it is checked against the weights given to ``pack_parameters`` and against
      the frame of every payload unpacked, and a mismatch raises :class:`fedpack.PackingError`
      naming both numbers. It is not written into the frame, so :func:`fedpack.unpack` works
      from the frame alone.
    - FL4Health's layout (``framed=False``): required to unpack (the payload cannot say where
      the weights end) and it must not exceed the number of arrays received.

    A bad constructor argument raises ``TypeError`` (not an integer, or a ``bool``) or
    ``ValueError`` (negative), as for any Python constructor; bad payloads and bad data given
    to ``pack_parameters`` raise :class:`fedpack.PackingError`.
    """

    name: ClassVar[str] = "scaffold"

    def __init__(self, size_of_model_params: int | None = None, *, framed: bool = True) -> None:
        """Create the packer; see the class docstring for ``size_of_model_params``."""
        super().__init__(framed=framed)
        #: Number of weight arrays before the control variates, or ``None`` if not known.
        self.size_of_model_params = int_option(size_of_model_params, what="size_of_model_params")

    def options(self) -> dict[str, Any]:
        """``size_of_model_params`` (kept by the receiver, not written into the frame)."""
        return {"size_of_model_params": self.size_of_model_params}

    def encode(self, model_weights: NDArrays, additional_parameters: NDArrays) -> Encoded:
        """Check the control variates (a list of arrays) and append them to the weights."""
        self._check_weight_count(len(model_weights), source="the weights given to pack")
        control_variates = array_list(
            additional_parameters, what="scaffold: additional_parameters (control variates)"
        )
        _check_numeric(control_variates, lambda i: f"additional_parameters[{i}]")
        return Encoded([("weights", model_weights), ("control_variates", control_variates)])

    def decode(
        self, sections: Sections, meta: Mapping[str, JSONValue]
    ) -> tuple[NDArrays, NDArrays]:
        """Return the weights and the control variates, checking the weight count if known."""
        expect_sections(sections, _SECTIONS, what="scaffold")
        weights = sections["weights"]
        control_variates = sections["control_variates"]
        self._check_weight_count(
            len(weights),
            source=f"the payload's frame ({len(control_variates)} control variates)",
        )
        _check_numeric(control_variates, lambda i: sections.where("control_variates", i))
        return weights, control_variates

    def split_unframed(self, packed: NDArrays) -> Sections:
        """Split at ``size_of_model_params``, which FL4Health's layout requires."""
        n = self.size_of_model_params
        if n is None:
            raise PackingError(
                "scaffold (framed=False): unpacking FL4Health's layout needs "
                "size_of_model_params, the number of weight arrays before the control variates, "
                "found None; pass get_packer('scaffold', size_of_model_params=n, framed=False)"
            )
        if n > len(packed):
            raise PackingError(
                f"scaffold (framed=False): expected at least size_of_model_params={n} arrays "
                f"(the weights, then the control variates), found {len(packed)}"
            )
        return Sections.split(packed, [("weights", n), ("control_variates", len(packed) - n)])

    @classmethod
    def example_extras(cls, weights: NDArrays) -> list[Any]:
        """Control variates for the conformance checks: one per weight, none, and a subset."""
        return [
            [np.zeros_like(w) for w in weights],
            [],
            [np.ones_like(w) for w in weights if w.dtype.kind == "f"],
        ]

    @classmethod
    def example_options(cls, weights: NDArrays) -> dict[str, Any]:
        """``size_of_model_params``: FL4Health's layout cannot be split without it."""
        return {"size_of_model_params": len(weights)}

    def _check_weight_count(self, found: int, *, source: str) -> None:
        expected = self.size_of_model_params
        if expected is not None and found != expected:
            raise PackingError(
                f"scaffold: size_of_model_params is {expected} but {source} holds {found} "
                f"weight arrays; the sender's model and this packer disagree"
            )


def _check_numeric(control_variates: NDArrays, where: Callable[[int], str]) -> None:
    """Control variates are numbers: bool, integer, float or complex arrays (O(arrays))."""
    checked = None  # the dtype last checked: control variates repeat a few dtypes
    for index, array in enumerate(control_variates):
        dtype = array.dtype
        if dtype is checked:
            continue
        checked = dtype
        if dtype.kind not in _NUMERIC:
            raise PackingError(
                f"scaffold: control variate ({where(index)}): expected a bool, integer, float "
                f"or complex array, found {describe(array)}"
            )


@fedpack.hookimpl
def fedpack_register_packers(register: fedpack.hookspecs.RegisterPacker) -> None:
    """Register :class:`ScaffoldPacker` as ``scaffold``."""
    register(ScaffoldPacker)
