"""The clipping_bit packer: the FL4Health quirks it closes, and its class."""

from __future__ import annotations

import numpy as np
import pytest
from fedpack_clipping_bit import ClippingBitPacker
from fl4health_reference import ParameterPackerWithClippingBit

import fedpack
from fedpack import PackingError

NAME = "clipping_bit"
NO_FRAME = "expected a fedpack frame as the last array"


def test_quirk_clipping_bit_never_packed_list_ending_in_0d_buffer() -> None:
    # a state_dict whose last entry is BatchNorm's 0-d int64 num_batches_tracked
    never_packed = [np.ones((4, 3), np.float32), np.zeros(4), np.array(12, np.int64)]
    weights, value = ParameterPackerWithClippingBit().unpack_parameters(never_packed)
    assert (len(weights), value) == (2, 12)  # FL4Health: a weight silently becomes the scalar
    with pytest.raises(PackingError, match=NO_FRAME + r".*int64 array of shape \(\) at index 2"):
        fedpack.get_packer(NAME).unpack_parameters(never_packed)


def test_quirk_clipping_bit_never_packed_list_ending_in_size1_bias() -> None:
    # a single-output layer: the last bias has shape (1,)
    never_packed = [np.ones((1, 8), np.float32), np.array([0.25], np.float32)]
    weights, value = ParameterPackerWithClippingBit().unpack_parameters(never_packed)
    assert (len(weights), value) == (1, 0.25)  # FL4Health: a weight silently becomes the scalar
    with pytest.raises(PackingError, match=NO_FRAME + r".*float32 array of shape \(1,\)"):
        fedpack.get_packer(NAME).unpack_parameters(never_packed)


def test_class() -> None:
    assert fedpack.get_packer_class(NAME) is ClippingBitPacker
    assert issubclass(ClippingBitPacker, fedpack.ScalarPacker)
    assert ClippingBitPacker.section == NAME
    assert repr(ClippingBitPacker(framed=False)) == "ClippingBitPacker(framed=False)"
