"""Tests for the npy codec: byte identity with ``np.save`` and safe zero-copy decoding."""

from __future__ import annotations

import ast
import contextlib
import io
import struct
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedpack._errors import FedpackError, PackingError
from fedpack.flwr._npy import (
    _CANONICAL_HEADER,
    MAX_HEADER_SIZE,
    _header_dict,
    decode_array,
    decode_arrays,
    encode_array,
    encode_arrays,
)


def npy_save(arr: Any) -> bytes:
    """Reference encoding, exactly as Flower does it."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # numpy warns when it has to fall back to format 2.0 or 3.0
        warnings.simplefilter("ignore", UserWarning)
        np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_load(data: bytes) -> npt.NDArray[Any]:
    """Reference decoding, exactly as Flower does it."""
    return np.load(io.BytesIO(data), allow_pickle=False)  # type: ignore[no-any-return]


def raw_npy(header: str | bytes, payload: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """Hand-craft an npy buffer with an arbitrary header text."""
    text = header.encode("latin1") if isinstance(header, str) else header
    fmt = "<H" if version == (1, 0) else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(text)) + text + payload


def header_text(descr: str, shape: tuple[int, ...], fortran_order: bool = False) -> str:
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran_order!r}, 'shape': {shape!r}, }}\n"


def assert_same_array(got: npt.NDArray[Any], want: npt.NDArray[Any]) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


# --------------------------------------------------------------------------------------
# Byte identity with np.save
# --------------------------------------------------------------------------------------

SCALAR_DTYPES: list[Any] = [
    "?",
    "i1",
    "i2",
    "i4",
    "i8",
    "u1",
    "u2",
    "u4",
    "u8",
    "f2",
    "f4",
    "f8",
    "c8",
    "c16",
    "<U7",
    ">i4",
    ">f8",
    ">c16",
    "S5",
    "V6",
    "M8[ns]",
    "m8[s]",
]

STRUCTURED_DTYPES: list[Any] = [
    np.dtype([("a", "<i4"), ("b", ">f8", (2,)), ("c", "<U3")]),
    np.dtype([("x", "<f4"), ("nested", [("p", "u1"), ("q", "<i2", (2, 2))])]),
    # explicit offsets: numpy writes padding fields into the descr
    np.dtype({"names": ["x", "y"], "formats": ["<i2", "<f8"], "offsets": [0, 8], "itemsize": 24}),
    # a field name outside latin-1 forces format version 3.0
    np.dtype([("\u65e5\u672c", "<i4")]),
]


def sample(dtype: Any, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    """Deterministic non-trivial content for any dtype."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) * dt.itemsize
    raw = (np.arange(n, dtype=np.uint64) * 37 % 251).astype(np.uint8).tobytes()
    if dt.kind == "U":
        return np.array(
            ["ab\u00e9\u65e5"[: i % 5] for i in range(int(np.prod(shape)))], dt
        ).reshape(shape)
    if dt.kind == "b":
        flags: npt.NDArray[Any] = np.arange(int(np.prod(shape))) % 3 == 0
        return flags.reshape(shape)
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


SHAPES = [(), (0,), (3, 0), (7,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("dtype", SCALAR_DTYPES + STRUCTURED_DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_bytes_identical_to_np_save(dtype: Any, shape: tuple[int, ...]) -> None:
    arr = sample(dtype, shape)
    data = encode_array(arr)
    assert isinstance(data, bytes)
    assert data == npy_save(arr)
    assert_same_array(decode_array(data), arr)


@pytest.mark.parametrize("dtype", ["f4", ">i4", "c16", "<U7", STRUCTURED_DTYPES[0]], ids=str)
def test_layouts_identical_to_np_save(dtype: Any) -> None:
    base = sample(dtype, (4, 6, 5))
    layouts = {
        "fortran": np.asfortranarray(base),
        "transposed": base.T,
        "strided": base[:, ::2, 1:],
        "reversed": base[::-1],
        "fortran-2d": np.asfortranarray(base[0]),
        "column": base[:, :1, 0],
        "row-of-fortran": np.asfortranarray(base[0])[1:2],
    }
    for name, arr in layouts.items():
        data = encode_array(arr)
        assert data == npy_save(arr), name
        decoded = decode_array(data)
        assert_same_array(decoded, arr)
        assert decoded.flags.f_contiguous == npy_load(data).flags.f_contiguous, name


def test_fortran_header_flag() -> None:
    arr = np.asfortranarray(np.arange(6, dtype="<i8").reshape(2, 3))
    data = encode_array(arr)
    assert b"'fortran_order': True" in data
    decoded = decode_array(data)
    assert decoded.flags.f_contiguous
    assert not decoded.flags.c_contiguous
    assert np.array_equal(decoded, arr)


def test_header_alignment_and_versions() -> None:
    small = np.zeros(3, "<f4")
    wide = np.zeros(2, dtype=[(f"field_{i}", "<i4") for i in range(4000)])
    utf8 = np.zeros(2, dtype=[("\u65e5", "<i4")])
    for arr, version in ((small, 1), (wide, 2), (utf8, 3)):
        data = encode_array(arr)
        assert data == npy_save(arr)
        assert data[6] == version
        data_offset = len(data) - arr.nbytes
        assert data_offset % 64 == 0


def test_scalars_and_lists_like_np_save() -> None:
    for value in (np.float32(1.5), np.int64(-3), 2.5, [1, 2, 3], [[1.0, 2.0]], True):
        assert encode_array(value) == npy_save(value)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_subclasses_like_np_save() -> None:
    matrix = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    subclassed = [
        matrix,
        np.asfortranarray(matrix),
        matrix[:, ::-1],
        np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False]),
        np.rec.fromarrays([np.arange(3), np.ones(3)]),
    ]
    for arr in subclassed:
        data = encode_array(arr)
        assert data == npy_save(arr), type(arr)
        assert type(decode_array(data)) is np.ndarray


def test_encode_arrays() -> None:
    arrs = [sample("f4", (3, 4)), sample("i8", ()), sample("<U7", (2,))]
    assert encode_arrays(arrs) == [npy_save(a) for a in arrs]
    assert encode_arrays([]) == []


def test_encode_does_not_alias_input() -> None:
    arr = np.arange(10, dtype="f8")
    data = encode_array(arr)
    arr[:] = -1
    assert np.array_equal(decode_array(data), np.arange(10, dtype="f8"))


# --------------------------------------------------------------------------------------
# Hypothesis properties
# --------------------------------------------------------------------------------------

ANY_DTYPE = st.one_of(
    hnp.scalar_dtypes(),
    hnp.byte_string_dtypes(),
    hnp.unicode_string_dtypes(),
    hnp.array_dtypes(subtype_strategy=hnp.scalar_dtypes(), min_size=1, max_size=4),
)
SHAPE = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(arr=hnp.arrays(dtype=ANY_DTYPE, shape=SHAPE))
def test_property_byte_identity_and_round_trip(arr: npt.NDArray[Any]) -> None:
    data = encode_array(arr)
    assert data == npy_save(arr)
    decoded = decode_array(data)
    assert_same_array(decoded, arr)
    assert_same_array(decode_array(data, writable=True), arr)
    assert_same_array(npy_load(data), decoded)


@st.composite
def strided_views(draw: st.DrawFn) -> npt.NDArray[Any]:
    arr = draw(hnp.arrays(dtype=hnp.scalar_dtypes(), shape=SHAPE))
    if arr.ndim:
        slices = tuple(
            slice(
                draw(st.integers(0, max(n - 1, 0))),
                None,
                draw(st.sampled_from([1, 2, 3, -1])),
            )
            for n in arr.shape
        )
        arr = arr[slices]
        if draw(st.booleans()):
            arr = arr.T
    return arr


@settings(max_examples=300)
@given(arr=strided_views())
def test_property_views_byte_identity(arr: npt.NDArray[Any]) -> None:
    data = encode_array(arr)
    assert data == npy_save(arr)
    assert_same_array(decode_array(data), arr)


@settings(max_examples=500)
@given(blob=st.binary(max_size=300))
def test_property_arbitrary_bytes_only_raise_packing_error(blob: bytes) -> None:
    for candidate in (blob, b"\x93NUMPY\x01\x00" + blob, b"\x93NUMPY\x03\x00" + blob):
        with contextlib.suppress(PackingError):
            decode_array(candidate)


HEADER_LITERALS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 2**70)
    | st.sampled_from(["<f4", "|O", "O", "<U3", "V8", "i4", "", "x", "(2,)i4"])
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=500)
@given(
    descr=HEADER_LITERALS,
    shape=HEADER_LITERALS | st.lists(st.integers(0, 4), max_size=3).map(tuple),
    fortran=HEADER_LITERALS,
    payload=st.binary(max_size=64),
)
def test_property_malformed_headers_only_raise_packing_error(
    descr: Any, shape: Any, fortran: Any, payload: bytes
) -> None:
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}}}"
    data = raw_npy(text.encode("utf8"), payload, version=(3, 0))
    try:
        arr = decode_array(data)
    except PackingError:
        return
    assert not arr.dtype.hasobject
    assert arr.nbytes == len(payload)


# --------------------------------------------------------------------------------------
# Zero-copy, read-only views and writable copies
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "memoryview-of-bytearray"])
def test_decode_is_read_only_view(kind: str) -> None:
    arr = np.arange(24, dtype="<f4").reshape(4, 6)
    data = encode_array(arr)
    candidates: dict[str, bytes | bytearray | memoryview] = {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "memoryview-of-bytearray": memoryview(bytearray(data)),
    }
    buf = candidates[kind]
    decoded = decode_array(buf)
    assert np.array_equal(decoded, arr)
    assert not decoded.flags.writeable
    assert np.shares_memory(decoded, np.frombuffer(buf, dtype=np.uint8))
    with pytest.raises(ValueError, match="read-only"):
        decoded[0, 0] = 1.0


def test_decode_fortran_is_view() -> None:
    arr = np.asfortranarray(np.arange(12, dtype="f8").reshape(3, 4))
    data = encode_array(arr)
    decoded = decode_array(data)
    assert np.shares_memory(decoded, np.frombuffer(data, dtype=np.uint8))
    assert not decoded.flags.writeable


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(24, dtype="<f4").reshape(4, 6),
        np.asfortranarray(np.arange(24, dtype=">i4").reshape(4, 6)),
        np.array(3.5),
        np.zeros((0, 3)),
    ],
    ids=["c", "fortran", "0d", "empty"],
)
def test_decode_writable_copies_once(arr: npt.NDArray[Any]) -> None:
    data = bytearray(encode_array(arr))
    decoded = decode_array(data, writable=True)
    assert decoded.flags.writeable
    assert decoded.flags.owndata
    assert not np.shares_memory(decoded, np.frombuffer(data, dtype=np.uint8))
    assert decoded.flags.f_contiguous == arr.flags.f_contiguous
    assert_same_array(decoded, arr)
    if decoded.size:
        decoded.reshape(-1)[0] = 0


def test_decode_memoryview_of_other_format() -> None:
    arr = np.arange(8, dtype="<i8")
    data = bytearray(encode_array(arr))
    view: memoryview = memoryview(data).cast("I")  # 4-byte items, still a contiguous byte range
    assert np.array_equal(decode_array(view), arr)


def test_decode_arrays() -> None:
    arrs = [sample("f4", (3, 4)), sample("i8", ()), sample("<U7", (2,))]
    out = decode_arrays(encode_arrays(arrs))
    assert len(out) == 3
    for got, want in zip(out, arrs, strict=True):
        assert_same_array(got, want)
        assert not got.flags.writeable
    assert all(a.flags.writeable for a in decode_arrays(encode_arrays(arrs), writable=True))
    assert decode_arrays([]) == []


# --------------------------------------------------------------------------------------
# Error paths
# --------------------------------------------------------------------------------------


def test_packing_error_hierarchy() -> None:
    assert issubclass(PackingError, FedpackError)
    assert issubclass(PackingError, ValueError)


def test_encode_object_dtype_refused() -> None:
    with pytest.raises(PackingError, match=r"expected an array without Python objects.*object"):
        encode_array(np.array([1, "a", None], dtype=object))


def test_encode_structured_object_dtype_refused() -> None:
    arr = np.zeros(2, dtype=[("a", "<i4"), ("b", "O")])
    with pytest.raises(PackingError, match="without Python objects"):
        encode_array(arr)


def test_encode_arrays_names_index() -> None:
    arrs = [np.zeros(2), np.zeros(2), np.array([None], dtype=object)]
    with pytest.raises(PackingError, match=r"^array 2: expected an array without Python"):
        encode_arrays(arrs)


@pytest.mark.parametrize("descr", ["|O", "O", "<O8"])
def test_decode_object_dtype_in_header_refused(descr: str) -> None:
    data = raw_npy(header_text(descr, (1,)), b"\0" * 8)
    with pytest.raises(PackingError, match=r"expected a dtype without Python objects, found"):
        decode_array(data)


def test_decode_bad_magic() -> None:
    data = bytearray(encode_array(np.zeros(3)))
    data[1:6] = b"NUMPX"
    with pytest.raises(PackingError, match=r"expected npy magic .* at offset 0, found .*NUMPX"):
        decode_array(data)


def test_decode_too_short_for_magic() -> None:
    with pytest.raises(PackingError, match=r"expected at least 8 bytes of npy magic, found 3"):
        decode_array(b"\x93NU")


def test_decode_bad_version() -> None:
    data = bytearray(encode_array(np.zeros(3)))
    data[6] = 9
    with pytest.raises(PackingError, match=r"expected npy format version 1.0, 2.0 or 3.0.*9\.0"):
        decode_array(data)


def test_decode_truncated_length_field() -> None:
    with pytest.raises(PackingError, match=r"expected a 4-byte header length at offset 8"):
        decode_array(b"\x93NUMPY\x02\x00\x10")


def test_decode_truncated_header() -> None:
    data = encode_array(np.zeros(3))
    with pytest.raises(PackingError, match=r"truncated header"):
        decode_array(data[:40])


def test_decode_truncated_data() -> None:
    data = encode_array(np.zeros((3, 4), dtype="<f8"))
    with pytest.raises(
        PackingError,
        match=r"expected 96 data bytes for shape \(3, 4\) and dtype '<f8' after the header "
        r"at offset 128, found 95 bytes \(truncated buffer\)",
    ):
        decode_array(data[:-1])


def test_decode_extended_data() -> None:
    data = encode_array(np.zeros(5, dtype="<i2"))
    with pytest.raises(PackingError, match=r"expected 10 data bytes .* found 11 bytes \(extended"):
        decode_array(data + b"\0")


def test_decode_empty_array_with_trailing_bytes() -> None:
    data = encode_array(np.zeros((0, 4)))
    with pytest.raises(PackingError, match=r"expected 0 data bytes .* found 1 bytes \(extended"):
        decode_array(data + b"x")


def test_decode_header_too_long() -> None:
    text = header_text("<f8", (1,)) + " " * MAX_HEADER_SIZE
    with pytest.raises(
        PackingError, match=rf"expected an npy header of at most {MAX_HEADER_SIZE} bytes"
    ):
        decode_array(raw_npy(text, b"\0" * 8, version=(2, 0)))


def _header(**fields: str) -> str:
    """An npy header dict literal: a valid one for shape (1,) float64, with ``fields`` replaced."""
    values = {"descr": "'<f8'", "fortran_order": "False", "shape": "(1,)", **fields}
    return "{" + ", ".join(f"'{key}': {value}" for key, value in values.items()) + "}"


NOT_A_LITERAL = r"expected an npy header dict literal at offset 10"
DATA8 = b"\0" * 8  # one float64
NOT_A_SHAPE = r"expected a tuple of non-negative ints as npy shape"
NOT_A_DESCR = r"expected a valid dtype descriptor"


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        pytest.param(
            "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }\n",
            b"\0" * 12,
            r"without Python objects.*\('b', '\|O'\)",
            id="structured-object-dtype",
        ),
        pytest.param(
            _header(descr="__import__('os').system('echo pwned')"), DATA8, NOT_A_LITERAL, id="call"
        ),
        pytest.param(_header()[:-1], DATA8, NOT_A_LITERAL, id="unterminated"),
        pytest.param("lambda: 0", DATA8, NOT_A_LITERAL, id="lambda"),
        pytest.param("\x00\x01garbage", DATA8, NOT_A_LITERAL, id="binary"),
        pytest.param(
            _header(descr="'<f\\y'"),
            DATA8,
            r"expected an npy header dict literal",
            marks=pytest.mark.filterwarnings("error"),
            id="warning-as-error",
        ),
        pytest.param(
            "['descr', 'shape']",
            b"",
            r"expected an npy header dict at offset 10, found list",
            id="not-a-dict",
        ),
        pytest.param(
            "{'descr': '<f8', 'shape': (1,), 'extra': 1}",
            DATA8,
            r"expected npy header keys .*found .*'extra'",
            id="wrong-keys",
        ),
        *[
            pytest.param(_header(shape=shape), DATA8, NOT_A_SHAPE, id=f"shape-{shape}")
            for shape in ["[1]", "(-1,)", "(1.0,)", "(True,)", "'1'"]
        ],
        pytest.param(
            _header(fortran_order="0"),
            DATA8,
            r"expected a bool as npy fortran_order, found 0",
            id="fortran-order",
        ),
        *[
            pytest.param(_header(descr=descr), DATA8, NOT_A_DESCR, id=f"descr-{descr}")
            for descr in ["'nonsense'", "42", "[('a',)]", "('<f8', 'x')"]
        ],
    ],
)
def test_decode_rejects_the_header(text: str, data: bytes, message: str) -> None:
    with pytest.raises(PackingError, match=message):
        decode_array(raw_npy(text, data))


def test_decode_undecodable_header() -> None:
    with pytest.raises(PackingError, match=r"expected an npy header encoded as utf8"):
        decode_array(raw_npy(b"{'descr': '\xff'}", version=(3, 0)))


def test_decode_huge_shape() -> None:
    # Refused by the budget (max_elements) before the payload length is even compared.
    text = header_text("<f8", (2**40, 2**40))
    with pytest.raises(PackingError, match=r"at most 2147483648 elements .*found 1099511627776"):
        decode_array(raw_npy(text, b"\0" * 8))


def test_decode_unrepresentable_empty_shape() -> None:
    # An empty shape with an absurd dimension: refused by the budget, not by numpy.
    text = header_text("<f8", (0, 2**70))
    with pytest.raises(PackingError, match=r"budget max_elements.*in dimension 1"):
        decode_array(raw_npy(text))


def test_decode_wrong_type() -> None:
    with pytest.raises(PackingError, match=r"expected bytes, bytearray or memoryview, found str"):
        decode_array("not bytes")  # type: ignore[arg-type]


def test_decode_non_contiguous_memoryview() -> None:
    data = encode_array(np.zeros(3))
    with pytest.raises(PackingError, match=r"expected a C-contiguous buffer"):
        decode_array(memoryview(data)[::2])


def test_decode_arrays_names_index() -> None:
    bufs = encode_arrays([np.zeros(2)] * 4)
    bufs[3] = bufs[3][:-1]
    with pytest.raises(PackingError, match=r"^array 3: expected 16 data bytes .*truncated"):
        decode_arrays(bufs)


# --------------------------------------------------------------------------------------
# The header fast path must agree with ast.literal_eval
# --------------------------------------------------------------------------------------

NEAR_CANONICAL_HEADERS = st.builds(
    "{{'descr': '{}', 'fortran_order': {}, 'shape': ({}), }}{}".format,
    st.sampled_from(["<f4", "|b1", "<U7", ">c16", "<M8[ns]", "|O", "x\\y", "<f4'", "'"]),
    st.sampled_from(["True", "False", "0", "None"]),
    st.lists(st.sampled_from(["0", "00", "05", "7", "12", "18446744073709551616", " "]))
    .map(", ".join)
    .flatmap(lambda s: st.sampled_from([s, s + ",", s + ", "])),
    st.sampled_from(["", " ", "   \n", "\n", "\t\n", "\n\n", "x"]),
)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")
@settings(max_examples=1000)
@given(text=NEAR_CANONICAL_HEADERS)
def test_property_header_fast_path_agrees_with_literal_eval(text: str) -> None:
    try:
        want: object = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        want = PackingError
    try:
        got: object = _header_dict(text, 10)
    except PackingError:
        got = PackingError
    assert got == want
    if _CANONICAL_HEADER.fullmatch(text):
        assert isinstance(got, dict)
        assert isinstance(got["shape"], tuple)


def test_header_fast_path_taken_for_np_save_headers() -> None:
    for arr in (
        np.zeros((3, 4), "<f4"),
        np.zeros((), ">i8"),
        np.zeros(0, "<U7"),
        np.zeros(2, "M8[ns]"),
    ):
        data = encode_array(arr)
        text = data[10 : len(data) - arr.nbytes].decode("latin1")
        assert _CANONICAL_HEADER.fullmatch(text), text
