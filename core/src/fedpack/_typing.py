"""Type aliases shared by the protocol, the frame and the plugins."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy.typing as npt

__all__ = ["JSONValue", "NDArray", "NDArrays"]

#: One array of a payload (any dtype but ``object``).
NDArray = npt.NDArray[Any]
#: A list of arrays: the model weights, or a whole packed payload. Same as Flower's ``NDArrays``.
NDArrays = list[npt.NDArray[Any]]
#: A value that survives a JSON round trip: what frame options and metadata may hold.
JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
