"""Flower's legacy API: packed payloads as ``Parameters``, ``FitIns`` and ``FitRes``.

Flower's ``ndarrays_to_parameters`` writes every array as the bytes of
``np.save(..., allow_pickle=False)`` with ``tensor_type="numpy.ndarray"``; the functions here
write the same bytes with fedpack's npy codec (one copy per array) and read them back as
zero-copy, read-only views (no copy at all), so both sides interoperate with stock Flower.

A stock strategy such as ``FedAvg`` averages *every* array of every ``FitRes`` (and its
in-place average turns integer arrays into zeros), so the extra arrays of a packed payload must
never reach it: :func:`split_fit_results` hands the strategy weights-only results and returns
the extras separately.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._budget import DecodeBudget
from .._errors import PackingError
from .._packer import ParameterPacker
from .._typing import NDArrays
from ..checks import array_list, describe, shorten
from ._common import decoding_budget, located, unpack_with
from ._npy import decode_arrays, encode_arrays

if TYPE_CHECKING:
    from flwr.common import FitIns, FitRes, Parameters, Scalar
    from flwr.server.client_proxy import ClientProxy

__all__ = [
    "TENSOR_TYPE",
    "from_parameters",
    "pack_fit_ins",
    "pack_parameters",
    "split_fit_res",
    "split_fit_results",
    "to_parameters",
    "unpack_parameters",
]

T = TypeVar("T")

#: The ``Parameters.tensor_type`` Flower's numpy serializer writes, and the only one read here.
TENSOR_TYPE = "numpy.ndarray"


def to_parameters(packed: NDArrays) -> Parameters:
    """Encode a list of arrays as Flower ``Parameters``, byte-identical to Flower's own.

    Same result as ``flwr.common.ndarrays_to_parameters(packed)``, faster.
    """
    from flwr.common import Parameters

    arrays = array_list(packed, what="to_parameters")
    return Parameters(tensors=encode_arrays(arrays), tensor_type=TENSOR_TYPE)


def from_parameters(
    parameters: Parameters, *, writable: bool = False, budget: DecodeBudget | None = None
) -> NDArrays:
    """Decode Flower ``Parameters`` (``tensor_type="numpy.ndarray"``) into arrays.

    By default the arrays are read-only views over ``parameters.tensors`` (no copy); with
    ``writable=True`` each one is copied once. Nothing is unpickled; an object dtype, a bad
    header, a truncated tensor or one beyond ``budget`` (a :class:`fedpack.DecodeBudget`)
    raises :class:`fedpack.PackingError` naming the tensor index.
    """
    tensors = _tensors(parameters)
    return decode_arrays(tensors, writable=writable, budget=budget)


def pack_parameters(packer: ParameterPacker[T], weights: NDArrays, extra: T) -> Parameters:
    """``packer.pack_parameters(weights, extra)`` encoded as Flower ``Parameters``."""
    return to_parameters(packer.pack_parameters(weights, extra))


@overload
def unpack_parameters(
    parameters: Parameters,
    packer: ParameterPacker[T],
    *,
    writable: bool = False,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, T]: ...


@overload
def unpack_parameters(
    parameters: Parameters,
    packer: None = None,
    *,
    writable: bool = False,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, Any]: ...


def unpack_parameters(
    parameters: Parameters,
    packer: ParameterPacker[Any] | None = None,
    *,
    writable: bool = False,
    budget: DecodeBudget | None = None,
) -> tuple[NDArrays, Any]:
    """Decode ``Parameters`` and split them into ``(weights, extra)``.

    Without ``packer`` the payload must be framed: the frame names the packer
    (:func:`fedpack.unpack`). ``budget`` (default: the packer's, else the default budget)
    bounds the decoding; every error a payload causes is a :class:`fedpack.PackingError`.
    """
    limits = decoding_budget(packer, budget)
    arrays = from_parameters(parameters, writable=writable, budget=limits)
    return unpack_with(arrays, packer, limits)


def pack_fit_ins(
    packer: ParameterPacker[T],
    weights: NDArrays,
    extra: T,
    config: Mapping[str, Scalar] | None = None,
) -> FitIns:
    """A ``FitIns`` carrying the packed ``weights`` and ``extra`` (server to client)."""
    from flwr.common import FitIns

    return FitIns(parameters=pack_parameters(packer, weights, extra), config=dict(config or {}))


def split_fit_res(
    fit_res: FitRes,
    packer: ParameterPacker[T] | None = None,
    *,
    budget: DecodeBudget | None = None,
) -> tuple[FitRes, NDArrays, T]:
    """Split one client's packed ``FitRes`` into a weights-only ``FitRes``, weights and extra.

    The weights-only ``FitRes`` keeps the status, ``num_examples`` and metrics and reuses the
    received tensor bytes of the weights (nothing is re-encoded), so a stock strategy can
    aggregate it. The returned weights are read-only views over the received bytes.
    """
    from flwr.common import FitRes, Parameters

    if not isinstance(fit_res, FitRes):
        raise PackingError(f"expected a flwr.common.FitRes, found {describe(fit_res)}")
    tensors = _tensors(fit_res.parameters)
    limits = decoding_budget(packer, budget)
    packed = decode_arrays(tensors, budget=limits)
    weights, extra = unpack_with(packed, packer, limits)
    n = len(weights)
    if n <= len(packed) and all(w is a for w, a in zip(weights, packed, strict=False)):
        weight_tensors = list(tensors[:n])
    else:  # a packer whose weights are not the payload's first arrays as they are
        weight_tensors = encode_arrays(weights)
    weights_only = FitRes(
        status=fit_res.status,
        parameters=Parameters(tensors=weight_tensors, tensor_type=TENSOR_TYPE),
        num_examples=fit_res.num_examples,
        metrics=dict(fit_res.metrics),
    )
    return weights_only, weights, extra


def split_fit_results(
    results: Sequence[tuple[ClientProxy, FitRes]],
    packer: ParameterPacker[T] | None = None,
    *,
    budget: DecodeBudget | None = None,
) -> tuple[list[tuple[ClientProxy, FitRes]], list[T]]:
    """Split every client's packed ``FitRes``: weights-only results for the strategy, extras.

    Use it at the top of a strategy's ``aggregate_fit``::

        weights_results, extras = split_fit_results(results, packer)
        parameters, metrics = super().aggregate_fit(server_round, weights_results, failures)

    ``extras[i]`` belongs to ``results[i]``. ``budget`` bounds the decoding (see
    :func:`unpack_parameters`). An invalid payload raises
    :class:`fedpack.PackingError` naming the result index and the client id.
    """
    weights_results: list[tuple[ClientProxy, FitRes]] = []
    extras: list[T] = []
    for index, (proxy, fit_res) in enumerate(results):
        try:
            weights_only, _, extra = split_fit_res(fit_res, packer, budget=budget)
        except PackingError as exc:
            cid = getattr(proxy, "cid", "?")
            raise located(exc, f"fit result {index} (client {cid})") from exc
        weights_results.append((proxy, weights_only))
        extras.append(extra)
    return weights_results, extras


def _tensors(parameters: object) -> list[bytes]:
    """The tensors of a ``Parameters`` object, checking its tensor type."""
    tensor_type = getattr(parameters, "tensor_type", None)
    tensors = getattr(parameters, "tensors", None)
    if not isinstance(tensor_type, str) or not isinstance(tensors, list):
        raise PackingError(f"expected a flwr.common.Parameters, found {describe(parameters)}")
    if tensor_type != TENSOR_TYPE:
        raise PackingError(
            f"expected Parameters with tensor_type {TENSOR_TYPE!r}, found {shorten(tensor_type)}"
        )
    return tensors
