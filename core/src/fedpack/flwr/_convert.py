"""Weights as Flower and torch users hold them: lists, ``ArrayRecord``s and ``state_dict``s.

:func:`named_arrays` turns any of them into ``(names, arrays)``: numpy arrays (torch tensors
become CPU numpy arrays without a copy when they already live on the CPU; a tensor on another
device is copied to the CPU once) and their names when the input has names. :func:`state_dict`
goes the other way, for ``model.load_state_dict``. torch is imported only by
:func:`state_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union, cast

import numpy as np

from .._errors import PackingError
from .._typing import NDArray, NDArrays
from ..checks import array_list, describe
from ._npy import from_array

if TYPE_CHECKING:
    import torch
    from flwr.app import Array, ArrayRecord

__all__ = ["Weights", "is_tensor", "named_arrays", "state_dict", "tensor_to_numpy"]

#: What fedpack.flwr accepts as model weights: a list of numpy arrays, a mapping of names to
#: numpy arrays or torch tensors (a ``state_dict``), or a Flower ``ArrayRecord``.
Weights = Union[Sequence[NDArray], Mapping[str, Any], "ArrayRecord"]


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor (checked without importing torch)."""
    module = type(value).__module__
    return (module == "torch" or module.startswith("torch.")) and hasattr(value, "detach")


def tensor_to_numpy(tensor: Any, *, where: str = "tensor") -> NDArray:
    """A torch tensor as a numpy array: no copy on the CPU, one copy from another device.

    The result shares memory with a CPU tensor (detached from autograd). A dtype numpy lacks
    (``bfloat16``, ...) raises :class:`fedpack.PackingError`.
    """
    detached = tensor.detach()
    if detached.device.type != "cpu":
        detached = detached.cpu()
    try:
        result = detached.numpy()
    except TypeError as exc:
        raise PackingError(
            f"{where}: expected a tensor of a numpy dtype, found dtype {detached.dtype} ({exc}); "
            "convert it first, e.g. tensor.float()"
        ) from exc
    return np.asarray(result)


def _is_flwr_array(value: object) -> bool:
    return isinstance(getattr(value, "data", None), bytes) and hasattr(value, "stype")


def _one(value: object, where: str) -> NDArray:
    if isinstance(value, np.ndarray):
        return value
    if is_tensor(value):
        return tensor_to_numpy(value, where=where)
    if _is_flwr_array(value):
        return from_array(cast("Array", value), where=where)
    raise PackingError(
        f"{where}: expected a numpy array, a torch tensor or a flwr Array, found {describe(value)}"
    )


def named_arrays(weights: object, *, what: str = "weights") -> tuple[list[str] | None, NDArrays]:
    """``(names, arrays)`` of a list of arrays (names ``None``), a mapping or an ArrayRecord.

    A mapping (``state_dict``, ``ArrayRecord``, ``dict``) keeps its order and its string keys;
    its values may be numpy arrays, torch tensors or flwr ``Array``s (decoded as zero-copy
    views). A list must hold numpy arrays or tensors. Anything else raises
    :class:`fedpack.PackingError` naming the offending entry.
    """
    items = getattr(weights, "items", None)
    if isinstance(weights, Mapping) or (callable(items) and hasattr(weights, "keys")):
        names: list[str] = []
        arrays: NDArrays = []
        for key, value in cast("Mapping[object, object]", weights).items():
            if not isinstance(key, str):
                raise PackingError(f"{what}: expected str keys, found the key {describe(key)}")
            names.append(key)
            arrays.append(_one(value, f"{what}[{key!r}]"))
        return names, arrays
    if isinstance(weights, (list, tuple)) and any(is_tensor(v) for v in weights):
        return None, [_one(v, f"{what}[{i}]") for i, v in enumerate(weights)]
    return None, array_list(weights, what=what)


def state_dict(
    names: Sequence[str], arrays: NDArrays, *, device: str | torch.device | None = None
) -> dict[str, torch.Tensor]:
    """A torch ``state_dict`` of ``arrays`` under ``names``; shares memory with writable arrays.

    A read-only array (a zero-copy view of received bytes) is copied once, as torch needs
    writable memory. ``device`` moves every tensor there.
    """
    import torch

    if len(names) != len(arrays):
        raise PackingError(
            f"state_dict: expected one name per array, found {len(names)} names for "
            f"{len(arrays)} arrays"
        )
    out: dict[str, torch.Tensor] = {}
    for name, array in zip(names, arrays, strict=True):
        source = array if array.flags.writeable else array.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(source))
        out[name] = tensor if device is None else tensor.to(device)
    return out
