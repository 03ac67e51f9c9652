"""SCAFFOLD's client side: the client's own control variate, kept in ``context.state``.

Karimireddy et al. (2020), option II. Per round, with the global weights ``x``, the server
control variate ``c`` and the client's ``c_i`` (zeros at first): train with every gradient
corrected by ``c - c_i``, then, after ``K`` local steps with learning rate ``lr`` ending at
``y_i``::

    c_i+ = c_i - c + (x - y_i) / (K * lr)        delta c_i = c_i+ - c_i

``c_i+`` is stored in ``context.state`` for the next round and ``delta c_i`` goes to the
server with ``y_i``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import PackingError
from .._packer import ParameterPacker
from .._typing import NDArray, NDArrays
from ._client import received, reply
from ._convert import named_arrays, state_dict

if TYPE_CHECKING:
    import torch
    from flwr.app import Context, Message, MetricRecord

__all__ = ["SCAFFOLD_STATE_KEY", "ScaffoldClient"]

#: The ``context.state`` ArrayRecord holding the client's control variate ``c_i``.
SCAFFOLD_STATE_KEY = "fedpack.scaffold.c_i"


class ScaffoldClient:
    """One SCAFFOLD training round on a ClientApp: read, correct gradients, reply.

    ``ScaffoldClient(msg, context)`` reads the instruction (weights and the server control
    variate ``c``, also from a composition such as ``scaffold+clipping_bit``) and the client's
    ``c_i`` from ``context.state``. Use :meth:`state_dict` / :attr:`weights` to load the model,
    :meth:`correct_gradients` (torch) or :meth:`correction` (numpy) after each backward pass,
    and :meth:`reply` to compute ``delta c_i``, store ``c_i+`` and build the reply.
    """

    def __init__(
        self, message: Message, context: Context, *, state_key: str = SCAFFOLD_STATE_KEY
    ) -> None:
        """Read the instruction and the stored ``c_i`` (see the class docstring)."""
        self.message = message
        self.context = context
        self.state_key = state_key
        #: The packer of the instruction (``scaffold`` or a composition holding it).
        weights, extra, packer = received(message, None)
        if packer is None:
            raise PackingError(
                "ScaffoldClient: expected an instruction packed with 'scaffold' (or a "
                "composition holding it), found one without fedpack extras"
            )
        self.packer: ParameterPacker[Any] = packer
        self._part = _scaffold_part(self.packer)
        #: The global weights ``x`` (read-only views), in the order of :attr:`names`.
        self.weights: NDArrays = weights
        #: The weight names (the instruction's ``"arrays"`` keys).
        self.names: list[str] = list(message.content["arrays"].keys())
        #: The whole extra data of the instruction (a tuple for a composition).
        self.extra: Any = extra
        control = extra[self._part] if self._part is not None else extra
        #: The server control variate ``c``.
        self.server_control_variates: NDArrays = list(control)
        if len(self.server_control_variates) != len(self.weights):
            raise PackingError(
                f"ScaffoldClient: expected one server control variate per weight "
                f"({len(self.weights)}), found {len(self.server_control_variates)}"
            )
        #: The client control variate ``c_i`` (zeros until the first update).
        self.control_variates: NDArrays = self._load()

    def _load(self) -> NDArrays:
        stored = self.context.state.array_records.get(self.state_key)
        if stored is None:
            return [np.zeros_like(c) for c in self.server_control_variates]
        from ._records import from_array_record

        arrays = from_array_record(stored, writable=True, what=self.state_key)
        if [a.shape for a in arrays] != [c.shape for c in self.server_control_variates]:
            return [np.zeros_like(c) for c in self.server_control_variates]
        return arrays

    def state_dict(self, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
        """The global weights as a torch ``state_dict`` (on ``device``)."""
        return state_dict(self.names, self.weights, device=device)

    def correction(self) -> NDArrays:
        """``c - c_i``, one array per weight: add it to each gradient before the step."""
        return [
            c - ci
            for c, ci in zip(self.server_control_variates, self.control_variates, strict=True)
        ]

    def correct_gradients(self, model: torch.nn.Module) -> None:
        """Add ``c - c_i`` to the gradient of every named parameter of ``model`` (torch)."""
        import torch

        if not hasattr(self, "_tensors"):
            by_name = dict(zip(self.names, self.correction(), strict=True))
            self._tensors: dict[str, torch.Tensor] = {}
            for name, param in model.named_parameters():
                if name in by_name:
                    self._tensors[name] = torch.as_tensor(
                        by_name[name], dtype=param.dtype, device=param.device
                    )
        with torch.no_grad():
            for name, param in model.named_parameters():
                tensor = self._tensors.get(name)
                if tensor is not None and param.grad is not None:
                    param.grad.add_(tensor)

    def update(self, local_weights: Any, *, local_steps: int, learning_rate: float) -> NDArrays:
        """``delta c_i`` for the trained weights ``y_i``; stores ``c_i+`` in ``context.state``.

        ``local_weights`` is a list, a ``state_dict`` or an ``ArrayRecord`` (in the order of the
        instruction's weights). Non-floating weights (counters) get a zero update.
        """
        from ._records import to_array_record

        if local_steps <= 0 or learning_rate <= 0:
            raise ValueError(
                f"local_steps and learning_rate must be positive, found {local_steps} and "
                f"{learning_rate}"
            )
        _, y = named_arrays(local_weights, what="local_weights")
        if len(y) != len(self.weights):
            raise PackingError(
                f"ScaffoldClient.update: expected {len(self.weights)} weights, found {len(y)}"
            )
        scale = 1.0 / (local_steps * learning_rate)
        deltas: NDArrays = []
        new: NDArrays = []
        for x, yi, c, ci in zip(
            self.weights, y, self.server_control_variates, self.control_variates, strict=True
        ):
            if np.issubdtype(c.dtype, np.floating) and np.issubdtype(x.dtype, np.floating):
                step = (x.astype(c.dtype) - yi.astype(c.dtype)) * scale
                delta: NDArray = np.asarray(step - c, dtype=c.dtype)
            else:
                delta = np.zeros_like(c)
            deltas.append(delta)
            new.append(np.asarray(ci + delta, dtype=c.dtype))
        self.control_variates = new
        self.context.state[self.state_key] = to_array_record(new, self.names)
        return deltas

    def reply(
        self,
        local_weights: Any,
        *,
        local_steps: int,
        learning_rate: float,
        num_examples: int,
        metrics: Mapping[str, Any] | MetricRecord | None = None,
        parts: Mapping[str, Any] | None = None,
    ) -> Message:
        """:meth:`update`, then the reply carrying ``y_i`` and ``delta c_i``.

        For a composition (``scaffold+clipping_bit``) give the other parts' extra data by
        part name: ``parts={"clipping_bit": bit}``.
        """
        deltas = self.update(local_weights, local_steps=local_steps, learning_rate=learning_rate)
        extra: Any = deltas
        if self._part is not None:
            names = [p.name for p in getattr(self.packer, "parts", ())]
            given = dict(parts or {})
            missing = [n for n in names if n != "scaffold" and n not in given]
            if missing:
                raise PackingError(
                    f"ScaffoldClient.reply: the instruction was packed with {'+'.join(names)}; "
                    f"expected parts= values for {', '.join(missing)}"
                )
            extra = tuple(deltas if n == "scaffold" else given[n] for n in names)
        return reply(
            self.message,
            local_weights,
            extra,
            packer=self.packer,
            num_examples=num_examples,
            metrics=metrics,
        )


def _scaffold_part(packer: Any) -> int | None:
    """``None`` for the ``scaffold`` packer, the part index in a composition holding it."""
    parts = getattr(packer, "parts", None)
    if parts is None:
        if packer.name != "scaffold":
            raise PackingError(
                f"ScaffoldClient: expected an instruction packed with 'scaffold', found "
                f"{packer.name!r}"
            )
        return None
    names = [p.name for p in parts]
    if "scaffold" not in names:
        raise PackingError(
            f"ScaffoldClient: expected a composition holding 'scaffold', found {'+'.join(names)}"
        )
    return names.index("scaffold")
