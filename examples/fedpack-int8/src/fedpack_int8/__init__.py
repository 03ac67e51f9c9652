"""The ``int8`` packer: floating-point weights travel as int8, about 4x fewer bytes than float32.

Each float16/float32/float64 weight ``x`` is quantized with its own symmetric scale
``scale = max|x| / 127`` (at least float64's smallest normal number, ~2.2e-308):
``q = round(x / scale)``, an int8 array of the same shape, and comes back as ``q * scale`` in
the weight's dtype. The error is bounded::

    |x - x_hat| <= scale / 2 = max|x| / 254      (plus half an ulp of the dtype, for float16)

Weights of any other dtype (integers, bools, ``num_batches_tracked``...) are sent exactly, as
the same array objects. Non-finite weights (NaN, inf) are rejected. The extra data is a list of
arrays the caller wants sent exactly (not quantized); pass ``[]`` when there are none. To carry
another packer's extra data as well, compose: ``fedpack.get_packer("int8+clipping_bit")``.

Layout, the same in both layouts (the framed one adds fedpack's frame at the end)::

    [w_0, ..., w_{n-1},      int8 for a floating-point weight, the weight itself otherwise
     e_0, ..., e_{k-1},      the extra arrays, as given
     scales,                 float64, shape (n,): max|x|/127 per quantized weight, 0 otherwise
     dtypes]                 str (<U), shape (n + k,): the dtype name of every array above
                             as the caller gave it ("float32", "int64", ...)

The two trailing arrays make the payload split without a frame: ``n = len(scales)`` and
``k = len(dtypes) - n``, counted from the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

import fedpack
from fedpack import Sections
from fedpack.checks import array_list, check_strings, describe

__all__ = ["Int8Packer", "dequantize", "fedpack_register_packers", "fits", "quantize"]

#: The dtypes that are quantized; every other dtype is sent exactly.
FLOAT_DTYPES = ("float16", "float32", "float64")
#: The largest quantized magnitude (-127..127; -128 is never produced and is rejected).
LEVELS = 127
#: The smallest scale: float64's smallest normal number (subnormal scales lose precision).
TINY = float(np.finfo(np.float64).tiny)


def quantize(x: fedpack.NDArray, *, where: str = "weight") -> tuple[fedpack.NDArray, float]:
    """Quantize a floating-point array: ``(q, scale)`` with ``q`` int8 and ``x ~ q * scale``."""
    values = np.asarray(x, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        raise fedpack.PackingError(
            f"int8: {where}: expected finite values, found {bad} NaN or infinite value(s) "
            f"in a {describe(x)}"
        )
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    if peak == 0.0:
        return np.zeros(values.shape, dtype=np.int8), 0.0
    scale = max(peak / LEVELS, TINY)
    while not fits(scale, x.dtype.name):  # near the dtype's largest value: round the scale down
        scale = float(np.nextafter(scale, 0.0))
    q = np.asarray(np.clip(np.rint(values / scale), -LEVELS, LEVELS)).astype(np.int8)
    return q, scale


def fits(scale: float, dtype: str) -> bool:
    """Whether ``127 * scale`` (so every ``q * scale``) is finite once cast to ``dtype``."""
    with np.errstate(over="ignore"):
        top = np.asarray(LEVELS * scale, dtype=np.float64).astype(dtype)
    return bool(np.isfinite(top))


def dequantize(q: fedpack.NDArray, scale: float, dtype: str) -> fedpack.NDArray:
    """``q * scale`` as ``dtype`` (a new array; 0-d stays a 0-d array, not a scalar)."""
    product = q.astype(np.float64)  # one float64 temporary, scaled in place
    product *= scale
    result: fedpack.NDArray = product.astype(dtype, copy=False)
    return result


class Int8Packer(fedpack.ParameterPacker[fedpack.NDArrays]):
    """Model weights quantized to int8 (per-tensor symmetric scale), plus exact extra arrays."""

    name: ClassVar[str] = "int8"
    #: |x - x_hat| <= max|x| / 254 ~ 0.0039 max|x|, plus float16's own rounding.
    lossy_tolerance: ClassVar[float | None] = 0.005
    #: The weights section holds new (int8) arrays: no "same objects" guarantee.
    transforms_weights: ClassVar[bool] = True

    def encode(
        self, model_weights: fedpack.NDArrays, additional_parameters: fedpack.NDArrays
    ) -> fedpack.Encoded:
        """Quantize the floating-point weights; append the exact arrays, scales and dtypes."""
        exact = array_list(additional_parameters, what="int8: additional_parameters")
        sent: fedpack.NDArrays = []
        scales: list[float] = []
        for index, weight in enumerate(model_weights):
            if weight.dtype.name in FLOAT_DTYPES:
                q, scale = quantize(weight, where=f"model_weights[{index}]")
                sent.append(q)
                scales.append(scale)
            else:
                sent.append(weight)
                scales.append(0.0)
        dtypes = [array.dtype.name for array in [*model_weights, *exact]]
        return fedpack.Encoded(
            [
                ("weights", sent),
                ("exact", exact),
                ("scales", [np.array(scales, dtype=np.float64)]),
                ("dtypes", [np.array(dtypes, dtype=np.str_)]),
            ]
        )

    def decode(
        self, sections: Sections, meta: Mapping[str, Any]
    ) -> tuple[fedpack.NDArrays, fedpack.NDArrays]:
        """Check every array against the trailer, then dequantize the weights."""
        scales = _scales(sections.one("scales"), where=sections.where("scales"), budget=self.budget)
        dtypes = _dtypes(sections.one("dtypes"), where=sections.where("dtypes"), budget=self.budget)
        sent, exact = sections["weights"], sections["exact"]
        if len(sent) != len(scales) or len(exact) != len(dtypes) - len(scales):
            raise fedpack.PackingError(
                f"int8: expected {len(scales)} weights and {len(dtypes) - len(scales)} exact "
                f"arrays (from the scales and dtypes arrays), found {len(sent)} and {len(exact)}"
            )
        # what dequantizing allocates (a float64 temporary and the result per weight), checked
        # against the receiver's budget before anything is built: O(number of arrays)
        needed = sum(
            array.size * (8 + np.dtype(dtype).itemsize)
            for array, dtype in zip(sent, dtypes, strict=False)
            if dtype in FLOAT_DTYPES
        )
        received = sum(a.nbytes for name in sections for a in sections[name])
        self.budget.check_alloc(needed, received, what="int8: dequantized weights")
        weights: fedpack.NDArrays = []
        for index, (array, scale, dtype) in enumerate(zip(sent, scales, dtypes, strict=False)):
            where = f"int8: weight {index} ({sections.where('weights', index)})"
            if dtype in FLOAT_DTYPES:
                if array.dtype != np.int8:
                    raise fedpack.PackingError(
                        f"{where}: expected the int8 encoding of a {dtype} weight, "
                        f"found {describe(array)}"
                    )
                if array.size and int(array.min()) < -LEVELS:
                    raise fedpack.PackingError(
                        f"{where}: expected values in [-{LEVELS}, {LEVELS}], found {array.min()}"
                    )
                if not fits(scale, dtype):
                    raise fedpack.PackingError(
                        f"{where}: scale {scale} overflows {dtype} (127 x scale is not finite)"
                    )
                if scale == 0.0 and array.size and array.any():
                    raise fedpack.PackingError(
                        f"{where}: expected all-zero codes for scale 0 (an all-zero weight), "
                        f"found {int(np.count_nonzero(array))} non-zero code(s)"
                    )
                weights.append(dequantize(array, scale, dtype))
            else:
                if array.dtype.name != dtype or scale != 0.0:
                    raise fedpack.PackingError(
                        f"{where}: expected a {_cut(dtype)} array sent as is (scale 0), found "
                        f"{describe(array)} with scale {scale}"
                    )
                weights.append(array)
        for index, array in enumerate(exact):
            dtype = dtypes[len(sent) + index]
            if array.dtype.name != dtype:
                raise fedpack.PackingError(
                    f"int8: exact array {index} ({sections.where('exact', index)}): expected "
                    f"dtype {_cut(dtype)}, found {describe(array)}"
                )
        return weights, list(exact)

    def split_unframed(self, packed: fedpack.NDArrays) -> Sections:
        """Read ``n`` and ``k`` from the two trailing arrays; split from the end."""
        if len(packed) < 2:
            raise fedpack.PackingError(
                f"int8: expected the arrays followed by scales and dtypes, found {len(packed)} "
                "array(s)"
            )
        scales = _scales(packed[-2], where=f"array {len(packed) - 2}", budget=self.budget)
        dtypes = _dtypes(packed[-1], where=f"array {len(packed) - 1}", budget=self.budget)
        exact = len(dtypes) - len(scales)
        weights = len(packed) - 2 - exact
        if exact < 0 or weights < 0:
            raise fedpack.PackingError(
                f"int8: the trailer describes {len(scales)} weights and {max(exact, 0)} exact "
                f"arrays, found {len(packed) - 2} arrays before it"
            )
        return Sections.split(
            packed, [("weights", weights), ("exact", exact), ("scales", 1), ("dtypes", 1)]
        )

    @classmethod
    def example_extras(cls, weights: fedpack.NDArrays) -> list[Any]:
        """No exact arrays, and two of them (any weights can carry either)."""
        return [[], [np.linspace(-1, 1, 5, dtype=np.float32), np.array(3, dtype=np.int64)]]


def _scales(array: fedpack.NDArray, *, where: str, budget: fedpack.DecodeBudget) -> list[float]:
    if array.dtype != np.float64 or array.ndim != 1:
        raise fedpack.PackingError(
            f"int8: scales ({where}): expected a 1-D float64 array, found {describe(array)}"
        )
    budget.check_count(array.size, what=f"int8: scales ({where})")
    if not (np.isfinite(array).all() and (array >= 0).all()):
        raise fedpack.PackingError(
            f"int8: scales ({where}): expected finite non-negative scales, found {array!r:.120}"
        )
    scales: list[float] = array.tolist()
    return scales


def _dtypes(array: fedpack.NDArray, *, where: str, budget: fedpack.DecodeBudget) -> list[str]:
    if array.dtype.kind != "U" or array.ndim != 1:
        raise fedpack.PackingError(
            f"int8: dtypes ({where}): expected a 1-D str array of dtype names, "
            f"found {describe(array)}"
        )
    check_strings(array, budget, what=f"int8: dtypes ({where})")
    dtypes: list[str] = array.tolist()
    return dtypes


def _cut(text: str, limit: int = 60) -> str:
    """Sender-chosen text for a message, cut with an ellipsis past ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


@fedpack.hookimpl
def fedpack_register_packers(register: fedpack.hookspecs.RegisterPacker) -> None:
    """Register :class:`Int8Packer` as ``int8``."""
    register(Int8Packer)
