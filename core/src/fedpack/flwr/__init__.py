"""Flower adapters: packed payloads as ``Parameters`` / ``FitIns`` / ``FitRes`` and as records.

Install with ``pip install "fedpack-core[flwr]"``. Importing this module does not import flwr;
each function imports what it needs when called.

Legacy API (``Parameters``, strategies' ``configure_fit`` / ``aggregate_fit``):
:func:`to_parameters`, :func:`from_parameters`, :func:`pack_parameters`,
:func:`unpack_parameters`, :func:`pack_fit_ins`, :func:`split_fit_res`,
:func:`split_fit_results`.

Message API (``RecordDict`` / ``ArrayRecord``): :func:`to_record_dict`,
:func:`from_record_dict`, :func:`pop_extras`, :func:`to_array`, :func:`from_array`,
:func:`to_array_record`, :func:`from_array_record`.

Every array is written as the exact bytes Flower's own numpy serializer writes, so either side
can be stock Flower code; reading gives zero-copy, read-only views unless ``writable=True``.
"""

from __future__ import annotations

from ._legacy import (
    TENSOR_TYPE,
    from_parameters,
    pack_fit_ins,
    pack_parameters,
    split_fit_res,
    split_fit_results,
    to_parameters,
    unpack_parameters,
)
from ._records import (
    ARRAYS_KEY,
    CONFIG_KEY,
    EXTRA_KEY,
    FRAME_KEY,
    KEY_CLIPPING_NORM,
    KEY_NORM_BIT,
    METRICS_KEY,
    SCALAR_KEYS,
    STYPE,
    from_array,
    from_array_record,
    from_record_dict,
    pop_extras,
    to_array,
    to_array_record,
    to_record_dict,
)

__all__ = [
    "ARRAYS_KEY",
    "CONFIG_KEY",
    "EXTRA_KEY",
    "FRAME_KEY",
    "KEY_CLIPPING_NORM",
    "KEY_NORM_BIT",
    "METRICS_KEY",
    "SCALAR_KEYS",
    "STYPE",
    "TENSOR_TYPE",
    "from_array",
    "from_array_record",
    "from_parameters",
    "from_record_dict",
    "pack_fit_ins",
    "pack_parameters",
    "pop_extras",
    "split_fit_res",
    "split_fit_results",
    "to_array",
    "to_array_record",
    "to_parameters",
    "to_record_dict",
    "unpack_parameters",
]
