"""The ``quantize`` packer: floating-point arrays travel as 8- or 4-bit codes.

``get_packer("quantize")`` sends the weights quantized (``bits=8``: int8 codes, about 0.25x the
bytes of float32; ``bits=4``: two codes a byte, about 0.125x), per tensor or per block of
``block`` elements, with nearest or stochastic (unbiased, seeded) rounding. Arrays that are not
floating point are sent exactly, as the same objects; float32 is computed in float32.

Two ways to send another packer's extra data with quantized weights:

- **composition** (extras sent exactly): ``get_packer("quantize+scaffold")``, extra data
  ``(None, control_variates)``; the quantize part carries no extra data of its own (``None``);
- **wrapping** (extras sent exactly or quantized): ``get_packer("quantize", inner="scaffold",
  sections=["weights", "control_variates"])`` quantizes every section named in ``sections``
  of the inner packer's payload; the extra data is the inner packer's. With
  ``inner="sparse_coo"`` (and ``inner_options={"encoding": "compact"}``) the values of sparse
  tensors are quantized and their positions sent exactly.

Layout: the (inner) payload's arrays, each selected floating-point array replaced by its codes,
followed by two arrays, ``qscales`` (float32, every scale in order) and ``qlayout`` (int64,
which arrays are codes and their dtype and shape; see ``_layout``), and fedpack's frame when
``framed=True`` (the default). The frame's options are ``bits``, ``block`` and, when wrapping,
``inner``, ``inner_options`` and ``sections``; the rounding and the seed stay with the sender.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

import fedpack
from fedpack import Encoded, JSONValue, NDArray, NDArrays, PackingError, Sections
from fedpack.checks import describe, int_option

from ._kernels import BITS, code_shape, dequantize, error_bound, quantize, scale_count
from ._layout import Entry, encode_layout, parse_layout

__all__ = [
    "BITS",
    "ROUNDINGS",
    "QuantizePacker",
    "dequantize",
    "error_bound",
    "fedpack_register_packers",
    "quantize",
]

#: The values of the ``rounding`` option.
ROUNDINGS = ("nearest", "stochastic")
#: float16 results are rounded once more: add half an ulp (2**-11 relative) to the bound.
_FLOAT16_SLACK = 2.0**-11
_OWN = ("qscales", "qlayout")
_QUANTIZABLE = ("float16", "float32", "float64")


class QuantizePacker(fedpack.ParameterPacker[Any]):
    """Weights (and optionally an inner packer's sections) as 8- or 4-bit codes.

    :param bits: ``8`` (int8 codes) or ``4`` (two codes a byte).
    :param block: ``None`` for one scale per tensor, or the number of elements sharing a scale
        (blocks in C order; the last may be shorter). Smaller blocks: smaller error on tensors
        with outliers, 4 more bytes per block.
    :param rounding: ``"nearest"`` (the default; error at most half a step) or
        ``"stochastic"`` (unbiased: the expected decoded value is the input; error below one
        step). Not sent.
    :param seed: seeds stochastic rounding (``None``: fresh entropy); each pack draws new
        random numbers from the packer's generator. Not sent.
    :param inner: a registered packer (or composition) name whose payload this packer
        quantizes; ``None``: the weights alone, the extra data is ``None``.
    :param inner_options: the inner packer's constructor options.
    :param sections: the inner payload's sections to quantize (default ``["weights"]``).
    :param max_elements: the largest element count a received array's shape may claim. Not sent.
    :param framed: ``False`` for a payload without fedpack's frame (the options must then be
        known by the receiver).

    The error bound (:attr:`lossy_tolerance`, relative to each tensor's ``max|x|``) is
    ``1 / (2L)`` with nearest rounding and ``1 / L`` with stochastic rounding, ``L = 127``
    (8 bits) or ``7`` (4 bits), plus half a float16 ulp; the class attribute is the loosest
    (4 bits, stochastic), each instance declares its own.
    """

    name: ClassVar[str] = "quantize"
    #: The loosest bound of any instance (4 bits, stochastic rounding).
    lossy_tolerance: ClassVar[float | None] = error_bound(4, "stochastic") + _FLOAT16_SLACK
    transforms_weights: ClassVar[bool] = True

    def __init__(
        self,
        *,
        bits: int = 8,
        block: int | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
        inner: str | None = None,
        inner_options: Mapping[str, Any] | None = None,
        sections: Sequence[str] | None = None,
        max_elements: int | None = None,
        framed: bool = True,
    ) -> None:
        """Create the packer; see the class docstring for the options."""
        super().__init__(framed=framed)
        if isinstance(bits, bool) or bits not in BITS:
            raise ValueError(f"bits: expected one of {BITS}, found {bits!r}")
        block = int_option(block, what="block", minimum=1)
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding: expected one of {ROUNDINGS}, found {rounding!r}")
        seed = int_option(seed, what="seed", minimum=None)
        max_elements = int_option(max_elements, what="max_elements")
        #: 8 or 4.
        self.bits = int(bits)
        #: Elements per scale, or ``None`` (one scale per tensor).
        self.block = block
        #: ``"nearest"`` or ``"stochastic"``.
        self.rounding = rounding
        #: The seed of stochastic rounding.
        self.seed = seed
        self._max_elements = max_elements
        self._rng = np.random.default_rng(seed) if rounding == "stochastic" else None
        #: This instance's error bound, relative to each tensor's ``max|x|``.
        self.lossy_tolerance = error_bound(self.bits, rounding) + _FLOAT16_SLACK  # type: ignore[misc]
        #: The wrapped packer, or ``None``.
        self.inner: fedpack.ParameterPacker[Any] | None = None
        if inner is not None:
            if not isinstance(inner, str):
                raise TypeError(f"inner: expected a packer name, found {describe(inner)}")
            options = dict(inner_options or {})
            if "framed" in options:
                raise TypeError("inner_options: set framed= on the quantize packer only")
            self.inner = fedpack.get_packer(inner, framed=framed, **options)
        elif inner_options:
            raise TypeError("inner_options: given without inner=")
        chosen = ["weights"] if sections is None else list(sections)
        if (
            isinstance(sections, (str, bytes))
            or not chosen
            or not all(isinstance(s, str) for s in chosen)
            or len(set(chosen)) != len(chosen)
        ):
            raise ValueError(
                f"sections: expected a non-empty list of section names, found {sections!r}"
            )
        if self.inner is None and chosen != ["weights"]:
            raise ValueError(
                f"sections: without inner= only the weights are quantized, found {chosen}"
            )
        #: The sections whose floating-point arrays are quantized.
        self.sections = chosen
        #: Quantized sections other than the weights make the extra data lossy too.
        self.lossy_extras = chosen != ["weights"]  # type: ignore[misc]
        self.use_budget(None)

    @property
    def max_elements(self) -> int:
        """The largest element count a received array may claim (the budget's ``max_elements``)."""
        return self.budget.max_elements

    def own_limits(self) -> dict[str, int]:
        """``{"max_elements": n}`` when the packer was built with ``max_elements=n``."""
        return {} if self._max_elements is None else {"max_elements": self._max_elements}

    def use_budget(self, budget: fedpack.DecodeBudget | None, *, from_frame: bool = False) -> None:
        """Decode within ``budget``; the inner packer too (a frame can only tighten it)."""
        super().use_budget(budget, from_frame=from_frame)
        if self.inner is not None:
            self.inner.use_budget(self.budget, from_frame=from_frame)

    def options(self) -> dict[str, Any]:
        """The frame options, the rounding, and the seed and ``max_elements`` when set."""
        local = {"seed": self.seed, "max_elements": self._max_elements}
        options = {**self.frame_options(), "rounding": self.rounding}
        return options | {key: value for key, value in local.items() if value is not None}

    # -- the plugin methods ----------------------------------------------------------------------

    def encode(self, model_weights: NDArrays, additional_parameters: Any) -> Encoded:
        """Quantize the selected sections of the (inner) payload; append scales and layout."""
        if self.inner is None:
            if additional_parameters is not None:
                raise PackingError(
                    "quantize: additional_parameters: expected None (this packer carries the "
                    "weights only; compose, e.g. 'quantize+scaffold', or pass inner=... to "
                    f"send extra data), found {describe(additional_parameters)}"
                )
            sections: list[tuple[str, NDArrays]] = [("weights", model_weights)]
            meta: dict[str, Any] = {}
        else:
            encoded = self.inner.encode(model_weights, additional_parameters)
            sections = list(encoded.sections)
            meta = {"inner": dict(encoded.meta)}
        names = [name for name, _ in sections]
        missing = [s for s in self.sections if s not in names]
        if missing:
            raise PackingError(
                f"quantize: sections {missing} are not in the payload of {self._inner_name}, "
                f"which has {names}"
            )
        clash = [s for s in names if s in _OWN]
        if clash:
            raise PackingError(
                f"quantize: the payload of {self._inner_name} has sections named {clash}, "
                "which this packer uses for its own arrays"
            )
        out: list[tuple[str, NDArrays]] = []
        entries: list[Entry] = []
        scales: list[NDArray] = []
        for name, arrays in sections:
            selected = name in self.sections
            sent: NDArrays = []
            for index, array in enumerate(arrays):
                result = None
                if selected and array.dtype.name in _QUANTIZABLE:
                    result = quantize(
                        array,
                        bits=self.bits,
                        block=self.block,
                        rng=self._rng,
                        where=f"{name}[{index}]",
                    )
                if result is None:
                    sent.append(array)
                    entries.append(Entry(None))
                else:
                    sent.append(result[0])
                    scales.append(result[1])
                    entries.append(Entry(array.dtype, array.shape))
            out.append((name, sent))
        all_scales = np.concatenate(scales) if scales else np.zeros(0, dtype=np.float32)
        out += [("qscales", [all_scales]), ("qlayout", [encode_layout(entries)])]
        return Encoded(out, meta)

    def decode(self, sections: Sections, meta: Mapping[str, JSONValue]) -> tuple[NDArrays, Any]:
        """Check the layout and the codes, dequantize, then let the inner packer decode."""
        names = list(sections)
        if names[-2:] != list(_OWN):
            raise PackingError(
                f"quantize: expected the sections to end with {list(_OWN)}, found {names}"
            )
        body = names[:-2]
        if self.inner is None and body != ["weights"]:
            raise PackingError(
                f"quantize: expected the sections ['weights', 'qscales', 'qlayout'], found {names}"
            )
        arrays = [array for name in body for array in sections[name]]
        entries = parse_layout(
            sections.one("qlayout"),
            len(arrays),
            max_elements=self.max_elements,
            where=sections.where("qlayout"),
        )
        scales = _scales(sections.one("qscales"), where=sections.where("qscales"))
        needed = sum(scale_count(e.size, self.block) for e in entries if e.dtype is not None)
        if needed != scales.shape[0]:
            raise PackingError(
                f"quantize: scales ({sections.where('qscales')}): the layout needs {needed} "
                f"scales (bits={self.bits}, block={self.block}), found {scales.shape[0]}"
            )
        decoded: list[tuple[str, NDArrays]] = []
        position = 0
        first = 0
        for name in body:
            values: NDArrays = []
            for index, array in enumerate(sections[name]):
                entry = entries[position]
                position += 1
                if entry.dtype is None:
                    values.append(array)
                    continue
                where = f"quantize: {name}[{index}] ({sections.where(name, index)})"
                _check_codes(array, entry, self.bits, where)
                count = scale_count(entry.size, self.block)
                values.append(
                    dequantize(
                        array,
                        scales[first : first + count],
                        bits=self.bits,
                        block=self.block,
                        shape=entry.shape,
                        dtype=entry.dtype,
                    )
                )
                first += count
            decoded.append((name, values))
        if self.inner is None:
            return decoded[0][1], None
        inner_meta = meta.get("inner", {}) if self.framed else {}
        if not isinstance(inner_meta, dict):
            raise PackingError(
                f"quantize: expected the inner meta as an object, found {inner_meta!r:.100}"
            )
        return self.inner.decode(Sections(decoded), inner_meta)

    def split_unframed(self, packed: NDArrays) -> Sections:
        """The last two arrays are the scales and the layout; the inner packer splits the rest."""
        if len(packed) < 2:
            raise PackingError(
                f"quantize (framed=False): expected the arrays followed by qscales and qlayout, "
                f"found {len(packed)} array(s)"
            )
        rest = packed[:-2]
        if self.inner is None:
            parts: list[tuple[str, NDArrays]] = [("weights", rest)]
        else:
            parts = list(self.inner.split_unframed(rest).items())
        return Sections([*parts, ("qscales", [packed[-2]]), ("qlayout", [packed[-1]])])

    def frame_options(self) -> dict[str, Any]:
        """``bits`` and ``block``; when wrapping, ``inner``, its options and ``sections``."""
        options: dict[str, Any] = {"bits": self.bits, "block": self.block}
        if self.inner is not None:
            options.update(
                inner=self._inner_name,
                inner_options=self.inner.frame_options(),
                sections=list(self.sections),
            )
        return options

    def check_frame_options(self, options: Mapping[str, Any]) -> None:
        """The frame's bits, block, inner packer and sections must be this packer's."""
        mine = self.frame_options()
        theirs = dict(options)
        if self.inner is not None and isinstance(theirs.get("inner_options"), dict):
            self.inner.check_frame_options(theirs["inner_options"])
            theirs["inner_options"] = mine["inner_options"]
        if theirs != mine:
            raise PackingError(
                f"quantize: the frame was written with options {dict(options)!r:.300}, this "
                f"packer has {mine!r:.300} (fedpack.unpack() rebuilds the packer from the frame)"
            )

    @property
    def _inner_name(self) -> str:
        if self.inner is None:
            return "the weights"
        composition = getattr(self.inner, "composition", None)
        return str(composition) if composition is not None else self.inner.name

    # -- conformance hooks -----------------------------------------------------------------------

    @classmethod
    def example_extras(cls, weights: NDArrays) -> list[Any]:
        """``None``: the weights alone (any weights)."""
        return [None]


def _scales(array: NDArray, *, where: str) -> NDArray:
    if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.ndim != 1:
        raise PackingError(
            f"quantize: scales ({where}): expected a 1-D float32 array, found {describe(array)}"
        )
    if array.size and not (bool(np.isfinite(array).all()) and float(array.min()) >= 0):
        raise PackingError(
            f"quantize: scales ({where}): expected finite non-negative scales, found "
            f"{array[~(np.isfinite(array) & (array >= 0))][:3]!r}"
        )
    return array


def _check_codes(array: NDArray, entry: Entry, bits: int, where: str) -> None:
    shape = code_shape(entry.shape, bits)
    dtype = np.int8 if bits == 8 else np.uint8
    if array.dtype != dtype or array.shape != shape:
        raise PackingError(
            f"{where}: expected the {bits}-bit codes of a {entry.dtype} array of shape "
            f"{entry.shape}: a {np.dtype(dtype)} array of shape {shape}, found {describe(array)}"
        )
    if bits == 4 and entry.size % 2 and int(array[-1]) >> 4:
        raise PackingError(
            f"{where}: expected the padding nibble after element {entry.size} to be zero, found "
            f"last byte {int(array[-1]):#04x}"
        )


@fedpack.hookimpl
def fedpack_register_packers(register: fedpack.hookspecs.RegisterPacker) -> None:
    """Register :class:`QuantizePacker` as ``quantize``."""
    register(QuantizePacker)
