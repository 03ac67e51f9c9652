"""A corpus of hostile payloads, generated deterministically in code (nothing binary is stored).

Each :class:`Case` builds its input (cheaply) and returns the call a receiver would make on it;
that call must raise :class:`fedpack.PackingError` whose message matches ``match``, stays short
(:data:`MAX_MESSAGE`), and costs little (checked by ``run_cases.py`` in a child process with
time and memory limits). The seven kinds follow the issue that asked for them:

1. rank bombs, 2. zero-width strings, 3. receiver-side allocation chosen by the sender,
4. options injection through composition, 5. Message API split, 6. errors outside the error
model (unknown packers, overflowing numbers, huge sender-chosen text), 7. looser gaps (duplicate
JSON keys, non-numeric control variates, an int8 scale of 0 with non-zero codes).

Only numpy and fedpack are needed: the Flower helpers are driven with stand-ins for Flower's
``Parameters``, ``Array``, ``ArrayRecord`` and ``RecordDict`` (they only read attributes).
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

import fedpack
import fedpack.flwr
from fedpack.flwr._npy import decode_array, encode_array, encode_arrays
from fedpack.frame import FORMAT_VERSION, MAGIC, Frame, encode_frame, read_frame

#: The longest message a refusal may carry.
MAX_MESSAGE = 2000

Call = Callable[[], object]


@dataclass(frozen=True)
class Case:
    """One hostile input: ``build()`` returns the receiver's call, which must be refused."""

    id: str
    kind: int
    build: Callable[[], Call]
    match: str
    #: The error must also be a ``LookupError`` (a payload naming an unknown packer).
    lookup: bool = False


# -- building blocks -------------------------------------------------------------------------


def raw_frame(body: bytes) -> np.ndarray[Any, Any]:
    """A frame array around any body bytes (valid magic, version and checksum)."""
    data = MAGIC + bytes([FORMAT_VERSION]) + zlib.crc32(body).to_bytes(4, "little") + body
    return np.frombuffer(bytearray(data), dtype=np.uint8)


def json_frame(content: dict[str, Any]) -> np.ndarray[Any, Any]:
    """A frame array for a JSON object (no schema check: what a hostile sender may write)."""
    return raw_frame(json.dumps(content, separators=(",", ":")).encode())


def raw_npy(descr: str, shape: tuple[int, ...], data: bytes = b"") -> bytes:
    """The bytes of an npy array with any header (version 1.0 or 2.0) and ``data``."""
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    raw = text.encode("latin1")
    version, fmt = ((1, 0), "<H") if len(raw) < 60000 else ((2, 0), "<I")
    pad = 64 - ((10 if version == (1, 0) else 12) + len(raw) + 1) % 64
    header = raw + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(header)) + header + data


def parameters(tensors: list[bytes]) -> SimpleNamespace:
    """A stand-in for ``flwr.common.Parameters``."""
    return SimpleNamespace(tensors=tensors, tensor_type="numpy.ndarray")


def params_of(packed: list[Any]) -> SimpleNamespace:
    return parameters(encode_arrays(packed))


class FakeArrayRecord(dict[str, Any]):
    """A stand-in for ``flwr.app.ArrayRecord`` (ordered keys, ``items()``)."""


def fake_array(data: bytes) -> SimpleNamespace:
    """A stand-in for ``flwr.app.Array`` whose fields agree with its data (when decodable)."""
    try:
        a = decode_array(data, budget=fedpack.DecodeBudget(max_elements=1 << 62, max_rank=64))
        shape, dtype = a.shape, str(a.dtype)
    except fedpack.PackingError:
        shape, dtype = (), "float32"
    return SimpleNamespace(stype="numpy.ndarray", data=data, shape=shape, dtype=dtype)


def record_dict(weights: list[bytes], extra: list[bytes], framed: bool = True) -> SimpleNamespace:
    """A stand-in for ``flwr.app.RecordDict`` laid out as ``to_record_dict`` lays it out."""
    arrays = FakeArrayRecord({str(i): fake_array(b) for i, b in enumerate(weights)})
    rest = FakeArrayRecord()
    tail = extra[:-1] if framed else extra
    for i, b in enumerate(tail):
        rest[str(i)] = fake_array(b)
    if framed:
        rest["frame"] = fake_array(extra[-1])
    return SimpleNamespace(array_records={"arrays": arrays, "fedpack.extra": rest})


def with_frame(packed: list[Any], **changes: Any) -> list[Any]:
    """``packed`` with its frame re-encoded with some fields changed."""
    frame = read_frame(packed)
    fields = {
        "packer": frame.packer,
        "sections": frame.sections,
        "options": frame.options,
        "meta": frame.meta,
    }
    fields.update(changes)
    return [*packed[:-1], encode_frame(Frame(**fields))]


def sparse_payload(encoding: str, dims: tuple[int, ...], dtype: str = "float32") -> list[Any]:
    """A framed one-tensor ``sparse_coo`` payload claiming ``dims``, one element sent at 0."""
    values = np.ones(1, dtype=dtype)
    shape = np.array(dims, dtype=np.int64).reshape(len(dims))
    names = np.array(["t"])
    if encoding == "coo":
        indices = np.zeros((1, len(dims)), dtype=np.int64)
        sections = (("weights", 1), ("indices", 1), ("shapes", 1), ("names", 1))
        frame = Frame("sparse_coo", sections, {"encoding": "coo"}, {})
        return [values, indices, shape, names, encode_frame(frame)]
    positions = np.zeros(1, dtype=np.uint64)
    sections = (("weights", 1), ("positions", 1), ("shapes", 1), ("names", 1))
    frame = Frame("sparse_coo", sections, {"encoding": "compact"}, {"encodings": ["flat"]})
    return [values, positions, shape, names, encode_frame(frame)]


def sparse_packer(encoding: str = "coo") -> Any:
    return fedpack.get_packer("sparse_coo", encoding=encoding)


def unpack_paths(packed: list[Any], encoding: str = "coo") -> dict[str, Call]:
    """The receiving calls a sparse payload can reach."""
    return {
        "unpack": lambda: fedpack.unpack(packed),
        "packer": lambda: sparse_packer(encoding).unpack_parameters(packed),
        "dense": lambda: sparse_packer(encoding).unpack_dense(packed),
        "legacy": lambda: fedpack.flwr.unpack_parameters(params_of(packed)),
    }


# -- the seven kinds -----------------------------------------------------------------------


def _rank_bombs() -> Iterator[Case]:
    for rank in (17, 24, 32, 33, 48, 64, 65, 100, 1000, 5000, 30000):
        for encoding in ("coo", "compact"):
            for path in ("unpack", "packer", "dense", "legacy"):

                def build(rank: int = rank, encoding: str = encoding, path: str = path) -> Call:
                    packed = sparse_payload(encoding, (1,) * rank)
                    return unpack_paths(packed, encoding)[path]

                yield Case(f"rank-{encoding}-{path}-{rank}", 1, build, "max_rank")
        for descr in ("<f4", "|u1"):

            def build_npy(rank: int = rank, descr: str = descr) -> Call:
                data = raw_npy(descr, (1,) * rank, b"\0" * np.dtype(descr).itemsize)
                return lambda: decode_array(data)

            yield Case(f"rank-npy-{descr}-{rank}", 1, build_npy, "max_rank|header of at most")


def _zero_width() -> Iterator[Case]:
    shapes = [(10**8,), (10**9,), (10**4, 10**4), (2**31,), (0,), (1,)]
    for descr in ("<U0", "|S0", "|V0", ">U0"):
        for shape in shapes:
            if descr == "|V0" and 0 in shape:
                continue  # an empty void array of width 0 is harmless (nothing allocated)

            def build(descr: str = descr, shape: tuple[int, ...] = shape) -> Call:
                data = raw_npy(descr, shape)
                return lambda: decode_array(data)

            yield Case(f"zw-npy-{descr}-{shape}", 2, build, "zero-width")
            if 0 in shape:
                continue
            for target in ("layer_names", "int8", "sparse_coo", "records"):

                def build_payload(
                    descr: str = descr, shape: tuple[int, ...] = shape, t: str = target
                ) -> Call:
                    bomb = raw_npy(descr, shape)
                    if t == "layer_names":
                        packed = fedpack.get_packer("layer_names").pack_parameters(
                            [np.ones(2)], ["a"]
                        )
                        tensors = encode_arrays(packed)
                        tensors[1] = bomb
                        return lambda: fedpack.flwr.unpack_parameters(parameters(tensors))
                    if t == "int8":
                        packed = fedpack.get_packer("int8").pack_parameters([np.ones(2)], [])
                        tensors = encode_arrays(packed)
                        tensors[-2] = bomb  # the dtypes array
                        return lambda: fedpack.flwr.unpack_parameters(parameters(tensors))
                    if t == "sparse_coo":
                        tensors = encode_arrays(sparse_payload("coo", (4,)))
                        tensors[3] = bomb  # the names array
                        return lambda: fedpack.flwr.unpack_parameters(parameters(tensors))
                    packed = fedpack.get_packer("layer_names").pack_parameters([np.ones(2)], ["a"])
                    tensors = encode_arrays(packed)
                    rd = record_dict(tensors[:1], [bomb, tensors[2]])
                    return lambda: fedpack.flwr.from_record_dict(rd)

                yield Case(
                    f"zw-{target}-{descr}-{shape}", 2, build_payload, "zero-width|max_elements"
                )
    for width, count, match in ((5000, 1, "max_string_width"), (1, 200_000, "max_arrays")):

        def build_names(width: int = width, count: int = count) -> Call:
            names = np.array(["x" * width] * count)
            packed = fedpack.get_packer("layer_names").pack_parameters([np.ones(1)], ["a"])
            packed = [*[np.ones(1)] * 1, names, packed[-1]]
            return lambda: fedpack.unpack(packed)

        yield Case(f"zw-wide-names-{width}x{count}", 2, build_names, match)


def _allocation() -> Iterator[Case]:
    shapes = [
        (2**31,),
        (2**16, 2**15),
        (2**20, 2**11),
        (10**8,),
        (7 * 10**7,),
        (2**26, 2),
        (2**63 - 1,),
        (2**64 - 1,),
        (2**40, 2**40),
        (0, 2**62),
    ]
    for dtype in ("float32", "complex128", "bool", "int8", "float64"):
        for dims in shapes:
            for encoding in ("compact", "coo"):

                def build(
                    dims: tuple[int, ...] = dims, dtype: str = dtype, e: str = encoding
                ) -> Call:
                    if max(dims) >= 2**63:  # int64 cannot hold it: send the shape as uint64
                        packed = sparse_payload(e, (1,) * len(dims), dtype)
                        packed[2] = np.array(dims, dtype=np.uint64)
                    else:
                        packed = sparse_payload(e, dims, dtype)
                    if 0 in dims:  # nothing sent
                        packed[1] = packed[1][:0]
                        packed[0] = packed[0][:0]
                    return lambda: sparse_packer(e).unpack_dense(packed)

                yield Case(
                    f"alloc-{encoding}-{dtype}-{dims}",
                    3,
                    build,
                    "refusing to allocate|expected at most|max_elements",
                )
        for dims in shapes[:6]:

            def build_densify(dims: tuple[int, ...] = dims, dtype: str = dtype) -> Call:
                values = [np.ones(1, dtype=dtype)]
                indices = [np.zeros((1, len(dims)), dtype=np.int64)]
                shape = [np.array(dims, dtype=np.int64)]
                from fedpack_sparse_coo import densify

                return lambda: densify(values, (indices, shape, ["t"]))

            yield Case(f"alloc-densify-{dtype}-{dims}", 3, build_densify, "refusing to allocate")
    for dims in [(2**63 - 1,), (2**40, 2**40), (10**30,)]:

        def build_npy(dims: tuple[int, ...] = dims) -> Call:
            data = raw_npy("<c16", dims)
            return lambda: decode_array(data, writable=True)

        yield Case(f"alloc-npy-{dims}", 3, build_npy, "max_elements")


def _composition() -> Iterator[Case]:
    rng = random.Random(4)
    loose = [2**31 + 1, 2**40, 2**62, 2**63, 10**30]
    for composition, extra in (
        ("sparse_coo+clipping_bit", 0.5),
        ("sparse_coo+adaptive_constraint", 1.5),
        ("sparse_coo+layer_names", ["t"]),
    ):
        for encoding in ("coo", "compact"):
            for max_elements in loose:
                dims = rng.choice([(2**40,), (2**31 + 1,), (2**20, 2**20)])
                for path in ("unpack", "legacy"):

                    def build(
                        composition: str = composition,
                        extra: Any = extra,
                        encoding: str = encoding,
                        max_elements: int = max_elements,
                        dims: tuple[int, ...] = dims,
                        path: str = path,
                    ) -> Call:
                        packer = fedpack.get_packer(composition, sparse_coo={"encoding": encoding})
                        coo = ([np.zeros((1, 1), np.int64)], [np.array([4])], ["t"])
                        sent = packer.pack_parameters([np.ones(1, np.float32)], (coo, extra))
                        frame = read_frame(sent)
                        parts = [dict(p) for p in frame.options["parts"]]  # type: ignore[union-attr]
                        parts[0] = {
                            "packer": "sparse_coo",
                            "options": {**parts[0]["options"], "max_elements": max_elements},
                        }
                        packed = with_frame(sent, options={"parts": parts})
                        packed[2] = np.array(dims, dtype=np.int64)  # the shape of tensor 't'
                        if encoding == "coo":
                            packed[1] = np.zeros((1, len(dims)), dtype=np.int64)
                        else:
                            packed[1] = np.zeros(1, dtype=np.uint64)
                        if path == "unpack":
                            return lambda: fedpack.unpack(packed)
                        return lambda: fedpack.flwr.unpack_parameters(params_of(packed))

                    yield Case(
                        f"compose-{composition}-{encoding}-{max_elements}-{path}",
                        4,
                        build,
                        "max_elements|refusing to allocate",
                    )


def _split() -> Iterator[Case]:
    rng = np.random.default_rng(5)
    payloads = {
        "scaffold": (
            fedpack.get_packer("scaffold"),
            [rng.standard_normal(3), rng.standard_normal(2), np.array(1)],
            [rng.standard_normal(3), rng.standard_normal(2)],
        ),
        "layer_names": (
            fedpack.get_packer("layer_names"),
            [rng.standard_normal(3), rng.standard_normal(2)],
            ["a", "b"],
        ),
        "clipping_bit": (fedpack.get_packer("clipping_bit"), [rng.standard_normal(3)], 0.25),
        "scaffold+clipping_bit": (
            fedpack.get_packer("scaffold+clipping_bit"),
            [rng.standard_normal(3), rng.standard_normal(2)],
            ([rng.standard_normal(3)], 0.5),
        ),
    }
    for name, (packer, weights, extra) in payloads.items():
        packed = packer.pack_parameters(weights, extra)
        tensors = encode_arrays(packed)
        n = len(weights)
        for shift in range(-n, len(packed) - n):
            if shift == 0:
                continue
            for with_packer in (False, True):

                def build(
                    tensors: list[bytes] = tensors,
                    n: int = n,
                    shift: int = shift,
                    packer: Any = packer,
                    with_packer: bool = with_packer,
                ) -> Call:
                    rd = record_dict(tensors[: n + shift], tensors[n + shift :])
                    chosen = packer if with_packer else None
                    return lambda: fedpack.flwr.from_record_dict(rd, chosen)

                yield Case(
                    f"split-{name}-{shift}-{'packer' if with_packer else 'frame'}",
                    5,
                    build,
                    "weight arrays of the payload|frame",
                )
        # unframed (FL4Health's layout): the packer's own split is checked too
    plain = fedpack.get_packer("scaffold", framed=False, size_of_model_params=2)
    tensors = encode_arrays(plain.pack_parameters([np.ones(2), np.ones(1)], [np.ones(2)]))
    for split in (1, 3):

        def build_unframed(split: int = split) -> Call:
            rd = record_dict(tensors[:split], tensors[split:], framed=False)
            return lambda: fedpack.flwr.from_record_dict(rd, plain)

        yield Case(f"split-unframed-{split}", 5, build_unframed, "weight arrays of the payload")
    for key in ("arrays", "fedpack.extra", "x"):

        def build_same(key: str = key) -> Call:
            rd = record_dict([encode_array(np.ones(1))], [encode_array(np.ones(1))])
            return lambda: fedpack.flwr.from_record_dict(rd, arrays_key=key, extra_key=key)

        yield Case(f"split-same-keys-from-{key}", 5, build_same, "must differ")

        def build_to(key: str = key) -> Call:
            packer = fedpack.get_packer("clipping_bit")
            return lambda: fedpack.flwr.to_record_dict(
                packer, [np.ones(1)], 0.5, arrays_key=key, extra_key=key
            )

        yield Case(f"split-same-keys-to-{key}", 5, build_to, "must differ")


def _outside() -> Iterator[Case]:
    unknown = ["not_installed", "x" * 1_000_000, "a" * 129, "sparse_co"]
    for index, name in enumerate(unknown):
        for path in ("unpack", "legacy", "records"):

            def build(name: str = name, path: str = path) -> Call:
                packed = fedpack.get_packer("clipping_bit").pack_parameters([np.ones(2)], 1.0)
                content = json.loads(packed[-1][13:].tobytes())
                content["packer"] = name
                packed[-1] = json_frame(content)
                if path == "unpack":
                    return lambda: fedpack.unpack(packed)
                tensors = encode_arrays(packed)
                if path == "legacy":
                    return lambda: fedpack.flwr.unpack_parameters(parameters(tensors))
                rd = record_dict(tensors[:1], tensors[1:])
                return lambda: fedpack.flwr.from_record_dict(rd)

            long = len(name) > 128
            yield Case(
                f"unknown-{index}-{path}",
                6,
                build,
                "max_name_length|max_frame_bytes" if long else "names packer",
                lookup=not long,
            )
    for parts in (
        [{"packer": "nope", "options": {}}, {"packer": "clipping_bit", "options": {}}],
        [{"packer": "scaffold", "options": {}}, {"packer": "y" * 500_000, "options": {}}],
    ):
        for path in ("unpack", "legacy"):

            def build_compose(parts: list[Any] = parts, path: str = path) -> Call:
                packer = fedpack.get_packer("scaffold+clipping_bit")
                sent = packer.pack_parameters([np.ones(2)], ([np.ones(2)], 1.0))
                packed = with_frame(sent, options={"parts": parts})
                if path == "unpack":
                    return lambda: fedpack.unpack(packed)
                return lambda: fedpack.flwr.unpack_parameters(params_of(packed))

            nope = parts[0]["packer"] == "nope"
            yield Case(
                f"unknown-compose-{parts[0]['packer'][:8]}-{path}",
                6,
                build_compose,
                "names packer" if nope else "at most 128 characters",
                lookup=nope,
            )
    for number, value in enumerate((10**400, -(10**400), 10**309)):
        for target in ("clipping_bit", "adaptive_constraint"):

            def build_scalar(value: int = value, target: str = target) -> Call:
                return lambda: fedpack.get_packer(target).pack_parameters([np.ones(1)], value)

            yield Case(f"overflow-{target}-{number}", 6, build_scalar, "finite number")
    for dtype in (np.longdouble,):

        def build_long(dtype: Any = dtype) -> Call:
            packed = fedpack.get_packer("clipping_bit").pack_parameters([np.ones(1)], 1.0)
            packed[1] = np.array("1e4000", dtype=dtype)  # beyond float64 (inf where equal)
            return lambda: fedpack.unpack(packed)

        yield Case("overflow-longdouble", 6, build_long, "finite|floating")
    # huge sender-chosen text: option values, names, many sections
    big = "z" * 900_000
    text_cases: dict[str, Callable[[], list[Any]]] = {
        "option-value-scaffold": lambda: with_frame(
            fedpack.get_packer("scaffold").pack_parameters([np.ones(1)], [np.ones(1)]),
            options={"size_of_model_params": big},
        ),
        "option-value-sparse": lambda: with_frame(
            sparse_payload("coo", (4,)), options={"encoding": big}
        ),
        "option-key-scaffold": lambda: with_frame(
            fedpack.get_packer("scaffold").pack_parameters([np.ones(1)], [np.ones(1)]),
            options={big: 1},
        ),
        "option-value-clipping": lambda: with_frame(
            fedpack.get_packer("clipping_bit").pack_parameters([np.ones(1)], 1.0),
            options={"x": big},
        ),
        "meta-value-sparse": lambda: with_frame(
            sparse_payload("compact", (4,)), meta={"encodings": [big]}
        ),
        "section-name-long": lambda: [
            np.ones(1),
            np.ones(1),
            json_frame(
                {
                    "packer": "scaffold",
                    "sections": [["weights", 1], ["c" * 1_000_000, 1]],
                    "options": {},
                    "meta": {},
                }
            ),
        ],
        "sections-60000": lambda: [
            *[np.ones(1)] * 3,
            json_frame(
                {
                    "packer": "scaffold",
                    "sections": [["weights", 1]] + [[f"s{i}", 0] for i in range(60000)],
                    "options": {},
                    "meta": {},
                }
            ),
        ],
        "sections-count-huge": lambda: [
            np.ones(1),
            json_frame(
                {
                    "packer": "scaffold",
                    "sections": [["weights", 10**12], ["control_variates", 1]],
                    "options": {},
                    "meta": {},
                }
            ),
        ],
        "layer-name-long-duplicate": lambda: [
            np.ones(1),
            np.ones(1),
            np.array(["n" * 1000, "n" * 1000]),
            fedpack.get_packer("layer_names").pack_parameters([np.ones(1), np.ones(1)], ["a", "b"])[
                -1
            ],
        ],
    }
    matches = {
        "option-value-scaffold": "do not fit",
        "option-value-sparse": "do not fit|expected one of",
        "option-key-scaffold": "do not fit",
        "option-value-clipping": "do not fit",
        "meta-value-sparse": "frame meta",
        "section-name-long": "max_name_length",
        "sections-60000": "max_sections",
        "sections-count-huge": "max_arrays",
        "layer-name-long-duplicate": "unique names",
    }
    for label, make in text_cases.items():
        for path in ("unpack", "legacy"):

            def build_text(make: Callable[[], list[Any]] = make, path: str = path) -> Call:
                packed = make()
                if path == "unpack":
                    return lambda: fedpack.unpack(packed)
                return lambda: fedpack.flwr.unpack_parameters(params_of(packed))

            yield Case(f"text-{label}-{path}", 6, build_text, matches[label])


def _looser() -> Iterator[Case]:
    body = (
        b'{"packer":"scaffold","packer":"clipping_bit","sections":[["weights",1],'
        b'["control_variates",1]],"options":{},"meta":{}}'
    )
    duplicates = {
        "top": body,
        "options": b'{"packer":"sparse_coo","sections":[["weights",0],["indices",0],["shapes",0],'
        b'["names",1]],"options":{"encoding":"coo","encoding":"compact"},"meta":{}}',
        "meta": b'{"packer":"clipping_bit","sections":[["weights",1],["clipping_bit",1]],'
        b'"options":{},"meta":{"a":1,"a":2}}',
        "nested": b'{"packer":"clipping_bit","sections":[["weights",1],["clipping_bit",1]],'
        b'"options":{"x":{"y":1,"y":2}},"meta":{}}',
        "sections-key": b'{"packer":"clipping_bit","sections":[["weights",1],["clipping_bit",1]],'
        b'"sections":[["weights",2]],"options":{},"meta":{}}',
    }
    for label, raw in duplicates.items():
        for path in ("unpack", "packer", "legacy"):

            def build(raw: bytes = raw, path: str = path, label: str = label) -> Call:
                packed = [np.ones(1), np.array(0.5), raw_frame(raw)]
                if label == "options":
                    packed = [np.array(["t"]), raw_frame(raw)]
                if path == "unpack":
                    return lambda: fedpack.unpack(packed)
                if path == "packer":
                    return lambda: fedpack.get_packer("clipping_bit").unpack_parameters(packed)
                return lambda: fedpack.flwr.unpack_parameters(params_of(packed))

            yield Case(f"dupkey-{label}-{path}", 7, build, "duplicate key")
    bad_cvs = [
        np.array(["a", "b"]),
        np.array([b"ab"]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        np.array([1], dtype="timedelta64[s]"),
        np.zeros(2, dtype="V4"),
        np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]),
    ]
    for index, cv in enumerate(bad_cvs):
        for path in ("unpack", "packer", "legacy", "records", "pack"):

            def build_cv(cv: Any = cv, path: str = path) -> Call:
                scaffold = fedpack.get_packer("scaffold")
                if path == "pack":
                    return lambda: scaffold.pack_parameters([np.ones(2)], [cv])
                sent = scaffold.pack_parameters([np.ones(2)], [np.ones(2)])
                packed = [sent[0], cv, sent[2]]
                if path == "unpack":
                    return lambda: fedpack.unpack(packed)
                if path == "packer":
                    return lambda: scaffold.unpack_parameters(packed)
                tensors = encode_arrays(packed)
                if path == "legacy":
                    return lambda: fedpack.flwr.unpack_parameters(parameters(tensors))
                rd = record_dict(tensors[:1], tensors[1:])
                return lambda: fedpack.flwr.from_record_dict(rd)

            yield Case(f"cv-{cv.dtype.str}-{index}-{path}", 7, build_cv, "control variate")
    for codes in ([1, 0, 0], [0, 0, -127], [127] * 64):
        for path in ("unpack", "packer", "legacy"):

            def build_int8(codes: list[int] = codes, path: str = path) -> Call:
                int8 = fedpack.get_packer("int8")
                sent = int8.pack_parameters([np.zeros(len(codes), np.float32)], [])
                packed = [np.array(codes, dtype=np.int8), *sent[1:]]
                if path == "unpack":
                    return lambda: fedpack.unpack(packed)
                if path == "packer":
                    return lambda: int8.unpack_parameters(packed)
                return lambda: fedpack.flwr.unpack_parameters(params_of(packed))

            yield Case(f"int8-scale0-{len(codes)}-{codes[0]}-{path}", 7, build_int8, "scale 0")


def cases() -> list[Case]:
    """Every case of the corpus, in a fixed order (ids are unique)."""
    out = [
        *_rank_bombs(),
        *_zero_width(),
        *_allocation(),
        *_composition(),
        *_split(),
        *_outside(),
        *_looser(),
    ]
    ids = [case.id for case in out]
    if len(set(ids)) != len(ids):
        raise RuntimeError("corpus: duplicate case ids")
    return out


def selftest_cases() -> list[Case]:
    """Kind 0: inputs the harness itself must catch (never part of :func:`cases`)."""

    def accepted() -> Call:
        return lambda: fedpack.unpack(
            fedpack.get_packer("clipping_bit").pack_parameters([np.ones(1)], 0.5)
        )

    def wrong_type() -> Call:
        def call() -> None:
            raise KeyError("not a PackingError")

        return call

    def memory() -> Call:
        def call() -> None:
            block = np.ones(400 << 20, dtype=np.uint8)  # 400 MB, beyond the child's limit
            raise fedpack.PackingError(f"allocated {block.nbytes}")

        return call

    def cpu() -> Call:
        def call() -> None:
            total = 0
            for i in range(40_000_000):  # well over a second of CPU
                total += i
            raise fedpack.PackingError(f"summed {total}")

        return call

    def crash() -> Call:
        import os
        import signal

        return lambda: os.kill(os.getpid(), signal.SIGKILL)  # dies as an OOM kill would

    return [
        Case("self-accepted", 0, accepted, "."),
        Case("self-wrong-type", 0, wrong_type, "."),
        Case("self-memory", 0, memory, "."),
        Case("self-cpu", 0, cpu, "."),
        Case("self-crash", 0, crash, "."),
    ]
