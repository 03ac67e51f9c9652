"""Top-k sparsification with error feedback, for the client side of a sparse update.

Each round a client computes its update ``u = weights - global_weights`` (in the weights'
dtype; float32 stays float32), adds the residual it kept from earlier rounds,
``a = u + residual``, sends the ``k`` entries of ``a`` largest in magnitude and keeps the rest
as the new residual: ``residual' = a`` with the sent entries set to zero. So
``sent + residual' == u + residual`` exactly, element for element, and nothing the client
computed is ever dropped: it is sent later (error feedback, as in Deep Gradient Compression).

- ``scope="tensor"``: ``k = ceil(density * size)`` entries of every floating-point tensor
  (at least one when the tensor is not empty);
- ``scope="model"``: ``k = ceil(density * n)`` entries over all floating-point tensors together
  (``n`` their total size), so layers with larger updates send more.

Selection is deterministic: the entries of largest ``|a|``, ties broken by position (the lower
flat C-order index, then the earlier tensor, wins). Tensors that are not floating point (e.g.
BatchNorm's ``num_batches_tracked``) are sent whole and keep no residual.

The result plugs into the ``sparse_coo`` packer (``encoding="compact"`` sends positions as a
bitmask or narrow integers) and, for quantized values, into the ``quantize`` packer wrapping
it; :meth:`TopKUpdate.absorb` puts the values' quantization error back into the residual.

The residual is a plain ``{name: array}`` dict, ready for Flower's ``ArrayRecord`` (keep it in
the ClientApp's ``context.state``); :func:`residual_from_arrays` checks one read back against
the model. Only numpy is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fedpack import NDArray, NDArrays, PackingError
from fedpack.checks import describe

from ._kernels import coo_from_flat

__all__ = ["SCOPES", "TopKUpdate", "residual_from_arrays", "topk_update"]

#: The values of ``scope``.
SCOPES = ("tensor", "model")

IntpArray = npt.NDArray[np.intp]


@dataclass
class TopKUpdate:
    """One round's sparse update and the residual to keep for the next round."""

    #: Tensor names, in the order of the weights given.
    names: list[str]
    #: Shapes of the tensors.
    shapes: dict[str, tuple[int, ...]]
    #: Sorted flat C-order positions sent, per tensor.
    positions: dict[str, IntpArray]
    #: The values sent (``update + residual`` at ``positions``), per tensor.
    values: dict[str, NDArray]
    #: The residual to keep: ``update + old residual`` with the sent entries zeroed.
    residual: dict[str, NDArray] = field(default_factory=dict)

    def sparse_coo(self) -> tuple[NDArrays, tuple[NDArrays, NDArrays, list[str]]]:
        """``(values, (indices, shapes, names))`` for the ``sparse_coo`` packer."""
        values = [self.values[n] for n in self.names]
        indices = [coo_from_flat(self.positions[n], self.shapes[n]) for n in self.names]
        shapes = [np.array(self.shapes[n], dtype=np.int64) for n in self.names]
        return values, (indices, shapes, list(self.names))

    def absorb(self, received: Mapping[str, NDArray]) -> None:
        """Add ``values - received`` to the residual (error feedback of a lossy encoding).

        ``received`` holds the values as the server decodes them (e.g. quantized), by tensor
        name; their error is then sent in later rounds.
        """
        for name in self.names:
            if name not in self.residual:
                continue
            got = received[name]
            sent = self.values[name]
            if not isinstance(got, np.ndarray) or got.shape != sent.shape:
                raise PackingError(
                    f"topk: absorb: {name!r}: expected {describe(sent)}, found {describe(got)}"
                )
            flat = self.residual[name].reshape(-1)
            flat[self.positions[name]] += sent - got.astype(sent.dtype, copy=False)

    def dense(self) -> dict[str, NDArray]:
        """The sent update as dense arrays (zeros where nothing was sent)."""
        out: dict[str, NDArray] = {}
        for name in self.names:
            values = self.values[name]
            array = np.zeros(math.prod(self.shapes[name]), dtype=values.dtype)
            array[self.positions[name]] = values
            out[name] = array.reshape(self.shapes[name])
        return out


def topk_update(
    weights: Mapping[str, NDArray],
    global_weights: Mapping[str, NDArray],
    residual: Mapping[str, NDArray] | None = None,
    *,
    density: float,
    scope: str = "tensor",
) -> TopKUpdate:
    """The top-k sparse update of ``weights - global_weights`` with error feedback.

    :param weights: the client's trained weights, ``{name: array}`` (e.g. a state_dict as numpy).
    :param global_weights: the weights the round started from, the same names and shapes.
    :param residual: the previous round's :attr:`TopKUpdate.residual` (``None`` or ``{}`` in
        the first round); checked with :func:`residual_from_arrays`.
    :param density: the fraction of entries sent, in ``(0, 1]``.
    :param scope: ``"tensor"`` (k per tensor) or ``"model"`` (k over all tensors).
    """
    if not isinstance(density, (int, float)) or isinstance(density, bool):
        raise TypeError(f"density: expected a number in (0, 1], found {describe(density)}")
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density: expected a number in (0, 1], found {density!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope: expected one of {SCOPES}, found {scope!r}")
    names = list(weights)
    if list(global_weights) != names:
        raise PackingError(
            f"topk: expected global_weights with the same names in the same order as the "
            f"weights ({len(names)} tensors), found {len(global_weights)} tensors"
        )
    accum: dict[str, NDArray] = {}
    for name in names:
        w, g = weights[name], global_weights[name]
        if not isinstance(w, np.ndarray) or not isinstance(g, np.ndarray):
            raise PackingError(
                f"topk: {name!r}: expected numpy arrays, found {describe(w)} and {describe(g)}"
            )
        if w.shape != g.shape or w.dtype != g.dtype:
            raise PackingError(
                f"topk: {name!r}: the weights are a {describe(w)}, the global weights a "
                f"{describe(g)}; expected the same dtype and shape"
            )
        accum[name] = np.subtract(w, g).reshape(-1)
    floats = [n for n in names if accum[n].dtype.kind == "f"]
    if residual:
        old = residual_from_arrays(residual, {n: weights[n] for n in floats})
        for name in floats:
            accum[name] += old[name].reshape(-1)
    update = TopKUpdate(names, {n: tuple(weights[n].shape) for n in names}, {}, {})
    if scope == "tensor":
        for name in floats:
            a = accum[name]
            update.positions[name] = _top(np.abs(a), math.ceil(density * a.shape[0]))
    else:
        _model_top(accum, floats, density, update)
    for name in names:
        a = accum[name]
        if name not in update.positions:  # not floating point: sent whole, no residual
            update.positions[name] = np.arange(a.shape[0], dtype=np.intp)
            update.values[name] = a
            continue
        pos = update.positions[name]
        update.values[name] = a[pos]
        a[pos] = 0
        update.residual[name] = a.reshape(update.shapes[name])
    return update


def _top(magnitude: NDArray, k: int) -> IntpArray:
    """Sorted positions of the ``k`` largest entries; ties go to the lower position."""
    n = magnitude.shape[0]
    if k >= n:
        return np.arange(n, dtype=np.intp)
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    threshold = np.partition(magnitude, n - k)[n - k]
    above = np.flatnonzero(magnitude > threshold)
    ties = np.flatnonzero(magnitude == threshold)[: k - above.shape[0]]
    return np.union1d(above, ties).astype(np.intp, copy=False)


def _model_top(
    accum: Mapping[str, NDArray], floats: list[str], density: float, update: TopKUpdate
) -> None:
    """K over all floating-point tensors (ties: lower position, then earlier tensor)."""
    if not floats:
        return
    magnitude = np.concatenate([np.abs(accum[n]).astype(np.float64, copy=False) for n in floats])
    chosen = _top(magnitude, math.ceil(density * magnitude.shape[0]))
    start = 0
    for name in floats:
        size = accum[name].shape[0]
        lo, hi = np.searchsorted(chosen, [start, start + size])
        update.positions[name] = (chosen[lo:hi] - start).astype(np.intp, copy=False)
        start += size


def residual_from_arrays(
    arrays: Mapping[str, Any], like: Mapping[str, NDArray]
) -> dict[str, NDArray]:
    """A residual read back from storage (e.g. ``context.state``), checked against ``like``.

    Every floating-point tensor of ``like`` must have an array of the same shape and dtype
    under its name, and there must be no other names; a mismatch (the model changed) raises
    :class:`fedpack.PackingError` naming the tensor. Returns a new dict of the same arrays.
    """
    if not isinstance(arrays, Mapping):
        raise PackingError(
            f"topk: residual: expected a mapping of arrays, found {describe(arrays)}"
        )
    expected = [n for n, x in like.items() if x.dtype.kind == "f"]
    extra = sorted(set(arrays) - set(expected))
    missing = [n for n in expected if n not in arrays]
    if extra or missing:
        raise PackingError(
            f"topk: residual: expected arrays for the floating-point tensors {expected[:5]}..., "
            f"found {len(missing)} missing ({missing[:3]}) and {len(extra)} unknown ({extra[:3]})"
        )
    out: dict[str, NDArray] = {}
    for name in expected:
        array = np.asarray(arrays[name])
        want = like[name]
        if array.shape != want.shape or array.dtype != want.dtype:
            raise PackingError(
                f"topk: residual {name!r}: expected {describe(want)}, found {describe(array)}"
            )
        out[name] = array
    return out
