"""Each payload's frame is decoded once on every Flower unpack path (records, client, replies)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fedpack
from fedpack import frame as frame_module
from fedpack.flwr import (
    ScaffoldClient,
    from_record_dict,
    pack_fit_ins,
    receive,
    split_fit_res,
    split_replies,
    to_record_dict,
)

from .test_message_api import context, instruction, named

pytest.importorskip("flwr")


def content(name: str = "scaffold+clipping_bit") -> Any:
    packer = fedpack.get_packer(name)
    c = [np.full(a.shape, 0.5, np.float32) for a in named().values()]
    return to_record_dict(packer, named(), (c, 1.0) if "+" in name else c)


@pytest.mark.parametrize("given", [False, True])
def test_from_record_dict(given: bool, decodes: list[str]) -> None:
    packer = fedpack.get_packer("scaffold+clipping_bit") if given else None
    from_record_dict(content(), packer)
    assert len(decodes) == 1


def test_receive(decodes: list[str]) -> None:
    receive(instruction(content()))
    assert len(decodes) == 1


def test_scaffold_client(decodes: list[str]) -> None:
    client = ScaffoldClient(instruction(content("scaffold")), context())
    assert client.packer.name == "scaffold"
    assert len(decodes) == 1


def test_split_replies(decodes: list[str]) -> None:
    replies = [instruction(content(), node) for node in (1, 2, 3)]
    out = split_replies(replies)
    assert (len(out.accepted), len(decodes)) == (3, 3)


def test_legacy_fit_res(decodes: list[str]) -> None:
    from flwr.common import Code, FitRes, Status

    packer = fedpack.get_packer("scaffold")
    ins = pack_fit_ins(packer, list(named().values()), [np.zeros(2)], {})
    res = FitRes(Status(Code.OK, ""), ins.parameters, 1, {})
    split_fit_res(res)
    assert len(decodes) == 1


def test_a_payload_naming_a_missing_packer_stays_a_lookup_error() -> None:
    from fedpack.flwr import FRAME_KEY, from_array, pop_extras, to_array

    sent = content("scaffold")
    extra = sent["fedpack.extra"]
    frame = frame_module.decode_frame(from_array(extra[FRAME_KEY]))
    forged = frame_module.Frame("not_installed", frame.sections, {}, {})
    extra[FRAME_KEY] = to_array(frame_module.encode_frame(forged))
    with pytest.raises(
        fedpack.UnknownPayloadPackerError, match=r"reply 0 \(node 0\): .*'not_installed'"
    ) as info:
        pop_extras([instruction(sent)])
    assert isinstance(info.value, LookupError)
