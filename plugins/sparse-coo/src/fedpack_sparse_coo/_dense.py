"""Dense <-> sparse COO helpers: numpy arrays and torch tensors in, FL4Health's layout out.

Private module of ``fedpack_sparse_coo``; the public names are re-exported by the package.
torch is imported only when a torch tensor is passed (never at import).

Tensor handling (:func:`to_numpy`):

- ``requires_grad``: the tensor is detached (FL4Health fails on such tensors);
- CUDA and other devices: copied to the CPU with ``.cpu()``;
- non-contiguous tensors and arrays work (values come out in row-major order);
- 0-d tensors and arrays are supported: ``indices`` has shape ``(nnz, 0)`` (``nnz`` 0 or 1) and
  ``shape`` is the empty int64 array (FL4Health fails on 0-d tensors);
- ``float16`` maps to numpy ``float16``; ``bfloat16`` has no numpy dtype, so it is converted to
  ``float32`` (exact: every bfloat16 value is a float32 value). The values are then sent as
  float32 -- convert back with ``torch.from_numpy(v).to(torch.bfloat16)`` on the receiving side
  (FL4Health fails on bfloat16);
- conjugate and negative views (``x.conj()``) are resolved first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedpack import DEFAULT_BUDGET, DecodeBudget, NDArray, NDArrays, PackingError
from fedpack.checks import array_list, describe, unique_names

from ._compact import base_for
from ._kernels import (
    coo_from_flat,
    extract_coo,
    extract_flat,
    extract_selected,
    scatter_flat,
)
from ._validate import check_all, dense_bytes, label, payload_bytes

__all__ = ["densify", "extract_coo_info", "sparsify", "to_numpy"]

SparseExtra = tuple[NDArrays, NDArrays, list[str]]


def _is_torch(x: object) -> bool:
    return type(x).__module__.startswith("torch")


def to_numpy(x: object, *, what: str = "x") -> NDArray:
    """A numpy view (or copy) of a numpy array or a torch tensor; see the module docs."""
    if isinstance(x, np.ndarray):
        array = x
    elif _is_torch(x):
        import torch  # only when a tensor was passed

        if not isinstance(x, torch.Tensor):
            raise PackingError(f"{what}: expected a numpy array or a torch.Tensor, found {x!r}")
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.is_sparse:
            t = t.to_dense()
        t = t.resolve_conj().resolve_neg()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)
        array = t.numpy()
    else:
        raise PackingError(f"{what}: expected a numpy array or a torch.Tensor, found {describe(x)}")
    if array.dtype.kind not in "biufc":
        raise PackingError(
            f"{what}: expected a bool, integer, float or complex dtype, found {describe(array)}"
        )
    return array


def extract_coo_info(x: object) -> tuple[NDArray, NDArray, NDArray]:
    """``(values, indices, shape)`` of the non-zero elements of ``x`` (FL4Health's triple).

    ``values`` 1-D in ``x``'s dtype (row-major order), ``indices`` int64 ``(nnz, ndim)``,
    ``shape`` int64 ``(ndim,)``. Exact zeros (``0`` and ``-0.0``) are not sent; NaN is.
    """
    return extract_coo(to_numpy(x))


def _items(named_tensors: object) -> list[tuple[str, Any]]:
    if isinstance(named_tensors, Mapping):
        items = list(named_tensors.items())
    elif isinstance(named_tensors, Sequence) and not isinstance(named_tensors, (str, bytes)):
        items = []
        for i, item in enumerate(named_tensors):
            if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
                raise PackingError(
                    f"sparsify: expected (name, tensor) pairs, found {describe(item)} at index {i}"
                )
            items.append((item[0], item[1]))
    else:
        raise PackingError(
            "sparsify: expected a mapping of name -> tensor or a sequence of (name, tensor) "
            f"pairs, found {describe(named_tensors)}"
        )
    unique_names([name for name, _ in items], what="sparsify: tensor names")
    return items


def sparsify(
    named_tensors: Mapping[str, Any] | Sequence[tuple[str, Any]],
    *,
    selection: Mapping[str, npt.ArrayLike] | None = None,
    keep_zeros: bool = False,
) -> tuple[NDArrays, SparseExtra]:
    """Whole-model extraction: ``(values, (indices, shapes, names))``, ready to pack.

    ``named_tensors`` maps names (e.g. ``state_dict`` keys) to numpy arrays or torch tensors.

    - Default: every tensor is sent, with its non-zero elements (FL4Health's rule: exact zeros
      are dropped, NaN is sent).
    - ``keep_zeros=True``: every element of every tensor is sent, zeros included.
    - ``selection``: ``{name: bool mask of the tensor's shape, or 1-D flat C-order positions}``;
      only the tensors named there are sent, and exactly the selected elements, **zeros
      included** (a receiver rebuilding onto a ``base`` then sets them to zero, which is what
      "selected and 0" means). A name not in ``named_tensors`` is an error.
    """
    items = _items(named_tensors)
    if selection is not None:
        if not isinstance(selection, Mapping):
            raise PackingError(
                f"sparsify: selection: expected a mapping, found {describe(selection)}"
            )
        known = {name for name, _ in items}
        unknown = [name for name in selection if name not in known]
        if unknown:
            raise PackingError(
                f"sparsify: selection names tensors that were not given: {unknown[:5]}"
            )
    values: NDArrays = []
    indices: NDArrays = []
    shapes: NDArrays = []
    names: list[str] = []
    for name, tensor in items:
        if selection is not None and name not in selection:
            continue
        x = to_numpy(tensor, what=f"sparsify: tensor {name!r}")
        if selection is not None:
            try:
                v, flat = extract_selected(x, selection[name])
            except PackingError as exc:
                raise PackingError(f"sparsify: tensor {name!r}: {exc}") from None
        elif keep_zeros:
            v, flat = np.ravel(x, order="C").copy(), np.arange(x.size, dtype=np.intp)
        else:
            v, flat = extract_flat(x)
        values.append(v)
        indices.append(coo_from_flat(flat, x.shape))
        shapes.append(np.array(x.shape, dtype=np.int64).reshape(x.ndim))
        names.append(name)
    return values, (indices, shapes, names)


def densify(
    values: NDArrays,
    extra: SparseExtra,
    *,
    base: Mapping[str, NDArray] | None = None,
    max_elements: int | None = None,
    budget: DecodeBudget | None = None,
) -> dict[str, NDArray]:
    """Dense arrays ``{name: array}`` from FL4Health's sparse COO data (what unpack returns).

    Every tensor is checked (counts, dtypes, shapes, every index in bounds, no position twice)
    and a shape of more than ``max_elements`` elements (default: ``budget``'s, itself
    :data:`fedpack.DEFAULT_BUDGET` by default) or ``budget.max_rank`` dimensions is refused
    before anything is allocated; without ``base``, the dense arrays together must fit the
    budget's allocation allowance (``max(max_bytes, max_expansion * bytes received)``).
    Unsent elements are zero (FL4Health's ``to_dense()``), or, with ``base``, keep
    ``base[name]``'s value (same shape and dtype as the values; ``base`` is never modified).
    Only the tensors received are returned; merge with ``{**base, **densify(...)}``.
    """
    what = "densify"
    if not isinstance(extra, (tuple, list)) or len(extra) != 3:
        raise PackingError(
            f"{what}: expected extra = (indices, shapes, names), found {describe(extra)}"
        )
    indices, shapes, raw_names = extra
    names = unique_names(raw_names, what=f"{what}: names")
    values = array_list(values, what=f"{what}: values")
    indices = array_list(indices, what=f"{what}: indices")
    shapes = array_list(shapes, what=f"{what}: shapes")
    limits = DEFAULT_BUDGET if budget is None else budget
    if max_elements is not None:
        limits = limits.replace(max_elements=max_elements)
    max_elements = limits.max_elements
    limits.check_count(len(values), what=f"{what}: values")
    flats = check_all(
        what, values, indices, shapes, names, max_elements=max_elements, max_rank=limits.max_rank
    )  # every tensor validated once, here: the scatter below trusts these flat positions
    dims = [tuple(int(d) for d in s.tolist()) for s in shapes]
    if base is None:
        limits.check_alloc(
            dense_bytes(dims, [v.dtype.itemsize for v in values]),
            payload_bytes(values, indices, shapes),
            what=f"{what}: dense tensors",
        )
    out: dict[str, NDArray] = {}
    for i, (v, flat, shape, name) in enumerate(zip(values, flats, dims, names, strict=True)):
        start = None if base is None else base_for(what, base, name, i)
        try:
            out[name] = scatter_flat(v, flat, shape, start)
        except PackingError as exc:
            raise PackingError(f"{label(what, names, i)}: {exc}") from None
    return out
