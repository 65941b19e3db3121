import json
import math
import os
import struct

import numpy as np
import pytest

from rafiki.params import (
    ALIGN,
    MAGIC,
    ParamsError,
    decode_params,
    encode_params,
    read_params_file,
    write_params_file,
)


def same_array(a, b):
    return (
        type(b) is np.ndarray
        and a.dtype == b.dtype
        and a.dtype.str == b.dtype.str
        and a.shape == b.shape
        and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    )


DTYPES = [
    "|b1",
    "|i1",
    "<i2",
    ">i2",
    "<i4",
    ">i4",
    "<i8",
    ">i8",
    "|u1",
    "<u2",
    "<u4",
    ">u8",
    "<f2",
    "<f4",
    ">f4",
    "<f8",
    ">f8",
    "<c8",
    ">c16",
    "<U3",
    ">U2",
    "|S4",
    "<M8[ns]",
    ">m8[s]",
]


@pytest.mark.parametrize("code", DTYPES)
def test_arrays_of_every_supported_dtype_round_trip_exactly(code):
    dtype = np.dtype(code)
    if dtype.kind == "b":
        a = np.array([[True, False, True], [False, False, True]], dtype=dtype)
    elif dtype.kind in "US":
        a = np.array([["ab", "c", ""], ["xyz"[: dtype.itemsize], "q", "r"]], dtype=dtype)
    elif dtype.kind in "mM":
        a = np.arange(6).astype(dtype).reshape(2, 3)
    elif dtype.kind == "c":
        a = (np.arange(6) + 1j * np.arange(6)[::-1]).astype(dtype).reshape(2, 3)
    else:
        a = (np.arange(6) * 3).astype(dtype).reshape(2, 3)
    back = decode_params(encode_params({"a": a}))["a"]
    assert same_array(a, back)
    assert back.flags.c_contiguous and back.flags.writeable


def test_special_shapes_and_layouts_round_trip():
    base = np.arange(60, dtype="<f8").reshape(3, 4, 5)
    params = {
        "zero_d": np.array(3.5),
        "empty": np.zeros((0, 7), dtype="<i4"),
        "empty_1d": np.array([], dtype="|u1"),
        "transposed": base.T,
        "strided": base[::2, 1::2, ::-1],
        "fortran": np.asfortranarray(base),
        "one": np.ones((1, 1, 1, 1), dtype=">i8"),
        "nan_inf": np.array([np.nan, np.inf, -np.inf, -0.0], dtype="<f4"),
    }
    back = decode_params(encode_params(params))
    assert list(back) == list(params)
    for name, a in params.items():
        assert same_array(a, back[name]), name
    assert back["zero_d"].shape == ()
    assert np.signbit(back["nan_inf"][3])


def test_a_large_array_round_trips():
    a = np.random.RandomState(0).standard_normal(3_000_000).astype("<f8").reshape(1000, 3000)
    data = encode_params({"big": a, "tail": "end"})
    assert len(data) >= a.nbytes
    back = decode_params(data)
    assert same_array(a, back["big"]) and back["tail"] == "end"


def test_scalars_keep_their_types_and_values():
    params = {
        "s": 'héllo \u2603 \n"quoted"',
        "empty": "",
        "i": -42,
        "i_min": -(2**63),
        "i_max": 2**63 - 1,
        "f": 0.1,
        "f_int": 3.0,
        "tiny": 5e-324,
        "neg_zero": -0.0,
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "t": True,
        "b": b"\x00\xffraw",
        "np_f32": np.float32(1.25),
        "np_f64": np.float64(2.5),
        "np_i64": np.int64(-7),
        "np_bool": np.bool_(True),
        "np_str": np.str_("uni"),
    }
    back = decode_params(encode_params(params))
    assert list(back) == list(params)
    for name, v in params.items():
        got = back[name]
        assert type(got) is type(v), name
        if isinstance(v, float) and math.isnan(v):
            assert math.isnan(got)
        else:
            assert got == v, name
    assert math.copysign(1, back["neg_zero"]) == -1
    assert back["np_f32"].dtype == np.float32


def test_the_layout_is_the_documented_one():
    data = encode_params({"w": np.arange(3, dtype="<i4"), "lr": 0.5, "x": np.ones(2, dtype=">f8")})
    (magic, version, flags, header_len) = struct.unpack_from("<8sHHI", data, 0)
    assert (magic, version, flags) == (MAGIC, 1, 0)
    header = json.loads(data[16 : 16 + header_len])
    data_start = -(-(16 + header_len) // ALIGN) * ALIGN
    assert set(data[16 + header_len : data_start]) <= {0}
    assert header == {
        "entries": [
            {
                "name": "w",
                "kind": "ndarray",
                "dtype": "<i4",
                "shape": [3],
                "offset": 0,
                "nbytes": 12,
            },
            {"name": "lr", "kind": "float", "value": 0.5},
            {
                "name": "x",
                "kind": "ndarray",
                "dtype": ">f8",
                "shape": [2],
                "offset": 64,
                "nbytes": 16,
            },
        ]
    }
    assert data[data_start : data_start + 12] == np.arange(3, dtype="<i4").tobytes()
    assert data[data_start + 64 :] == np.ones(2, dtype=">f8").tobytes()
    assert len(data) == data_start + 64 + 16


def test_the_example_in_docs_parameters_md_decodes_as_documented():
    from conftest import REPO_ROOT

    text = (REPO_ROOT / "docs" / "parameters.md").read_text()
    hex_block = text.split("<!-- example-hex-start -->")[1].split("<!-- example-hex-end -->")[0]
    hex_digits = "".join(
        line.split("|")[0].split(":", 1)[1] for line in hex_block.splitlines() if ":" in line
    )
    data = bytes.fromhex(hex_digits.replace(" ", ""))
    params = {"weights": np.array([[1.0, 2.0]], dtype="<f4"), "epochs": 3, "name": "mlp"}
    assert data == encode_params(params)
    back = decode_params(data)
    assert same_array(params["weights"], back["weights"])
    assert back["epochs"] == 3 and back["name"] == "mlp"


def test_no_params_is_a_valid_file():
    data = encode_params({})
    assert decode_params(data) == {}
    assert len(data) % ALIGN == 0


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"o": np.array([1, "a"], dtype=object)}, "'o': arrays of object dtype"),
        ({"r": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])}, "structured"),
        ({"v": np.zeros(2, dtype="V4")}, "structured/void"),
        ({"d": {"nested": 1}}, "parameter 'd': values of type dict"),
        ({"l": [1, 2]}, "values of type list"),
        ({"n": None}, "values of type NoneType"),
        ({"set": {1}}, "values of type set"),
        ({"big": 2**63}, "does not fit in a signed 64-bit"),
        ({1: "x"}, "parameter names must be str"),
        ({"ma": np.ma.masked_array([1, 2], mask=[0, 1])}, "ndarray subclass"),
        ({"ld": np.zeros(2, dtype=np.longdouble)}, "platform-specific"),
        ({"s": "\udc80"}, "not valid Unicode"),
    ],
)
def test_unsupported_values_are_refused_naming_the_entry(params, fragment):
    if "ld" in params and np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(ParamsError) as info:
        encode_params(params)
    assert fragment in str(info.value)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_ndarray_subclasses_are_refused():
    with pytest.raises(ParamsError, match="'m': matrix \\(an ndarray subclass\\)"):
        encode_params({"m": np.matrix([[1, 2]])})


def test_a_non_dict_is_refused():
    with pytest.raises(ParamsError, match="must be a dict"):
        encode_params([("a", 1)])


def good():
    return encode_params({"a": np.arange(4, dtype="<i2"), "b": "text"})


def with_header(header, tail=b""):
    body = json.dumps(header).encode()
    pre = struct.pack("<8sHHI", MAGIC, 1, 0, len(body)) + body
    pad = (-len(pre)) % ALIGN
    return pre + b"\x00" * pad + tail


def entry(**kw):
    base = {"name": "a", "kind": "ndarray", "dtype": "<i2", "shape": [4], "offset": 0, "nbytes": 8}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"RAFK", "shorter than the 16-byte preamble"),
        (b"NOTPARAM" + good()[8:], "bad magic"),
        (good()[:8] + struct.pack("<H", 2) + good()[10:], "version 2"),
        (good()[:10] + struct.pack("<H", 1) + good()[12:], "unknown flags"),
        (good()[:12] + struct.pack("<I", 10**6) + good()[16:], "runs past the end"),
        (good()[:-1], "run past the end"),
        (good() + b"\x00", "entries say"),
        (with_header([1]), "JSON object with an `entries` list"),
        (with_header({"entries": [], "x": 1}), "unknown header field"),
        (with_header({"entries": [{"name": "a", "kind": "pickle", "value": 1}]}), "unknown kind"),
        (with_header({"entries": [{"kind": "int", "value": 1}]}), "string `name`"),
        (with_header({"entries": [{"name": "a", "kind": "int"}]}), "fields must be"),
        (with_header({"entries": [{"name": "a", "kind": "int", "value": 1.5}]}), "JSON integer"),
        (with_header({"entries": [{"name": "a", "kind": "int", "value": 2**64}]}), "64-bit"),
        (with_header({"entries": [{"name": "a", "kind": "bool", "value": 1}]}), "true or false"),
        (with_header({"entries": [{"name": "a", "kind": "str", "value": 1}]}), "JSON string"),
        (with_header({"entries": [{"name": "a", "kind": "float", "value": "x"}]}), "not a number"),
        (
            with_header(
                {"entries": [{"name": "a", "kind": "int", "value": 1}] * 2},
            ),
            "appears twice",
        ),
        (with_header({"entries": [entry(dtype="|O")]}, b"\x00" * 8), "object dtype"),
        (with_header({"entries": [entry(dtype="i2")]}, b"\x00" * 8), "canonical form"),
        (with_header({"entries": [entry(dtype="nope")]}, b"\x00" * 8), "unknown dtype"),
        (with_header({"entries": [entry(nbytes=6)]}, b"\x00" * 6), "needs 8 bytes"),
        (with_header({"entries": [entry(offset=64)]}, b"\x00" * 72), "expected 0"),
        (with_header({"entries": [entry(shape=[-4])]}, b"\x00" * 8), "non-negative"),
        (with_header({"entries": [entry()]}, b"\x00" * 4), "run past the end"),
    ],
)
def test_bad_bytes_are_refused_with_a_clear_error(data, fragment):
    with pytest.raises(ParamsError) as info:
        decode_params(data)
    assert fragment in str(info.value)
    assert str(info.value).startswith("invalid parameters file")


def test_nonzero_padding_is_refused():
    data = bytearray(good())
    header_len = struct.unpack_from("<I", data, 12)[0]
    data[16 + header_len] = 1
    with pytest.raises(ParamsError, match="padding"):
        decode_params(bytes(data))


def test_files_are_written_atomically(tmp_path):
    path = tmp_path / "p.bin"
    size = write_params_file({"a": np.arange(3)}, path)
    assert os.path.getsize(path) == size
    assert same_array(np.arange(3), read_params_file(path)["a"])
    with pytest.raises(ParamsError):
        write_params_file({"a": object()}, path)
    # The old file is intact and no temporary file is left behind.
    assert same_array(np.arange(3), read_params_file(path)["a"])
    assert os.listdir(tmp_path) == ["p.bin"]
