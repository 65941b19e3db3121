"""The parameters codec: what a model's `dump_parameters()` dict becomes on disk and on the wire.

One safe, documented binary format (docs/parameters.md has it byte by byte): a fixed preamble,
a length-prefixed JSON header that describes every entry (scalars inline, arrays by dtype,
shape, offset and length), then the raw C-ordered array buffers, each aligned to 64 bytes.
Reading it runs no code (no pickle) and checks every length and offset, so a truncated or
hostile file fails with `ParamsError` instead of doing anything else.

Kept exactly: `str`, `int` (signed 64-bit), `float` (including NaN, infinities and -0.0),
`bool`, `bytes`, numpy arrays (dtype with byte order, shape, 0-d, empty, non-contiguous input)
and numpy scalars. Anything else (object arrays, nested dicts, lists, None, ...) is refused
with an error naming the entry.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
from typing import Any, BinaryIO

import numpy as np

MAGIC = b"RAFKPRMS"
VERSION = 1
ALIGN = 64
_PREAMBLE = struct.Struct("<8sHHI")  # magic, version, flags, header length
PREAMBLE_SIZE = _PREAMBLE.size  # 16

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_PORTABLE_ITEMSIZES = {"f": (2, 4, 8), "c": (8, 16)}


class ParamsError(ValueError):
    """Parameters that cannot be encoded, or bytes that are not valid encoded parameters."""


def _round_up(n: int, align: int = ALIGN) -> int:
    return (n + align - 1) // align * align


def _check_dtype(name: str, dtype: np.dtype) -> str:
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind in "OV":
        what = "object" if dtype.kind == "O" else "structured/void"
        raise ParamsError(
            f"parameter {name!r}: arrays of {what} dtype ({dtype}) are not supported; "
            "store numbers, fixed-size strings or bytes"
        )
    if dtype.kind not in "biufcSUmM":
        raise ParamsError(f"parameter {name!r}: dtype {dtype} is not supported")
    portable = _PORTABLE_ITEMSIZES.get(dtype.kind)
    if portable is not None and dtype.itemsize not in portable:
        raise ParamsError(
            f"parameter {name!r}: dtype {dtype} ({dtype.itemsize} bytes) is platform-specific; "
            "use float16/32/64 or complex64/128"
        )
    code = dtype.str
    if np.dtype(code) != dtype:
        raise ParamsError(f"parameter {name!r}: dtype {dtype} cannot be described portably")
    return code


def _float_json(value: float):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _plan(params: Any) -> tuple[dict[str, Any], list[memoryview]]:
    """The header and the buffers, in order, for `params`."""
    if not isinstance(params, dict):
        raise ParamsError(
            f"parameters must be a dict of name to value, got {type(params).__name__}"
        )
    entries: list[dict[str, Any]] = []
    buffers: list[memoryview] = []
    offset = 0

    def add_buffer(entry: dict[str, Any], buf: memoryview):
        nonlocal offset
        entry["offset"] = offset
        entry["nbytes"] = buf.nbytes
        buffers.append(buf)
        offset = _round_up(offset + buf.nbytes)

    for name, value in params.items():
        if not isinstance(name, str):
            raise ParamsError(f"parameter names must be str, got {type(name).__name__} {name!r}")
        entry: dict[str, Any] = {"name": name}
        # numpy scalars first: np.float64 is also a Python float, np.bool_ is not a bool.
        if isinstance(value, np.generic):
            arr = np.asarray(value)
            entry["kind"] = "numpy_scalar"
            entry["dtype"] = _check_dtype(name, arr.dtype)
            add_buffer(entry, memoryview(arr.tobytes()))
        elif isinstance(value, np.ndarray):
            if type(value) is not np.ndarray:
                raise ParamsError(
                    f"parameter {name!r}: {type(value).__name__} (an ndarray subclass) is not "
                    "supported; pass numpy.asarray(value)"
                )
            entry["kind"] = "ndarray"
            entry["dtype"] = _check_dtype(name, value.dtype)
            entry["shape"] = [int(d) for d in value.shape]
            # A flat byte view of the C-ordered elements (copied only if `value` is not
            # C-contiguous already); works for every dtype, datetimes and 0-d arrays included.
            flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
            add_buffer(entry, memoryview(flat))
        elif isinstance(value, bool):
            entry["kind"] = "bool"
            entry["value"] = value
        elif isinstance(value, int):
            if not _I64_MIN <= value <= _I64_MAX:
                raise ParamsError(
                    f"parameter {name!r}: int {value} does not fit in a signed 64-bit integer; "
                    "store it as a str or a numpy array"
                )
            entry["kind"] = "int"
            entry["value"] = int(value)
        elif isinstance(value, float):
            entry["kind"] = "float"
            entry["value"] = _float_json(float(value))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ParamsError(
                    f"parameter {name!r}: the str is not valid Unicode: {e}"
                ) from None
            entry["kind"] = "str"
            entry["value"] = str(value)
        elif isinstance(value, (bytes, bytearray)):
            entry["kind"] = "bytes"
            add_buffer(entry, memoryview(bytes(value)))
        else:
            raise ParamsError(
                f"parameter {name!r}: values of type {type(value).__name__} are not supported; "
                "use str, int, float, bool, bytes or a numpy array (encode nested structures "
                "as a JSON str)"
            )
        entries.append(entry)
    return ({"entries": entries}, buffers)


def write_params(params: dict[str, Any], out: BinaryIO) -> int:
    """Encodes `params` into the binary stream `out`; returns the number of bytes written."""
    (header, buffers) = _plan(params)
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(header_bytes) > 0xFFFFFFFF:
        raise ParamsError("the parameters' header exceeds 4 GiB")
    out.write(_PREAMBLE.pack(MAGIC, VERSION, 0, len(header_bytes)))
    out.write(header_bytes)
    written = PREAMBLE_SIZE + len(header_bytes)
    data_start = _round_up(written)
    out.write(b"\x00" * (data_start - written))
    written = data_start
    for i, buf in enumerate(buffers):
        out.write(buf)
        written += buf.nbytes
        if i < len(buffers) - 1:
            aligned = data_start + _round_up(written - data_start)
            out.write(b"\x00" * (aligned - written))
            written = aligned
    return written


def encode_params(params: dict[str, Any]) -> bytes:
    """`params` (what `dump_parameters()` returned) as bytes."""
    out = io.BytesIO()
    write_params(params, out)
    return out.getvalue()


def write_params_file(params: dict[str, Any], path: str | os.PathLike) -> int:
    """Writes `params` to the file `path` atomically; returns its size in bytes."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=".params-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            size = write_params(params, f)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    return size


def _fail(msg: str):
    raise ParamsError(f"invalid parameters file: {msg}")


def _int_field(entry: dict[str, Any], field: str) -> int:
    value = entry.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(f"entry {entry.get('name')!r}: `{field}` must be a non-negative integer")
    return value


def _decode_float(name: str, value: Any) -> float:
    if isinstance(value, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value not in special:
            _fail(f"entry {name!r}: float value {value!r} is not a number")
        return special[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(f"entry {name!r}: float value must be a number")
    return float(value)


def _parse_dtype(name: str, code: Any) -> np.dtype:
    if not isinstance(code, str):
        _fail(f"entry {name!r}: `dtype` must be a string")
    try:
        dtype = np.dtype(code)
    except TypeError:
        _fail(f"entry {name!r}: unknown dtype {code!r}")
    try:
        canonical = _check_dtype(name, dtype)
    except ParamsError as e:
        _fail(str(e))
    if canonical != code:
        _fail(f"entry {name!r}: dtype {code!r} is not in canonical form ({canonical!r})")
    return dtype


def decode_params(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Reads parameters from bytes made by `encode_params`."""
    view = memoryview(data).cast("B")
    total = view.nbytes
    if total < PREAMBLE_SIZE:
        _fail(f"{total} bytes is shorter than the {PREAMBLE_SIZE}-byte preamble")
    (magic, version, flags, header_len) = _PREAMBLE.unpack_from(view, 0)
    if magic != MAGIC:
        _fail(f"bad magic bytes {bytes(magic)!r} (expected {MAGIC!r})")
    if version != VERSION:
        _fail(f"format version {version} is not supported (this reader knows {VERSION})")
    if flags != 0:
        _fail(f"unknown flags {flags:#06x}")
    header_end = PREAMBLE_SIZE + header_len
    if header_end > total:
        _fail(f"the header ({header_len} bytes) runs past the end of the data ({total} bytes)")
    try:
        header = json.loads(bytes(view[PREAMBLE_SIZE:header_end]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        _fail(f"the header is not UTF-8 JSON: {e}")
    if not isinstance(header, dict) or not isinstance(header.get("entries"), list):
        _fail("the header must be a JSON object with an `entries` list")
    unknown = sorted(set(header) - {"entries"})
    if unknown:
        _fail(f"unknown header field(s) {', '.join(unknown)}")
    data_start = _round_up(header_end)
    if any(view[header_end : min(data_start, total)]):
        _fail("padding bytes after the header must be zero")

    params: dict[str, Any] = {}
    expected_offset = 0
    buffers_end = 0  # end of the last buffer, relative to the data section
    for entry in header["entries"]:
        if not isinstance(entry, dict):
            _fail("every entry must be a JSON object")
        name = entry.get("name")
        kind = entry.get("kind")
        if not isinstance(name, str):
            _fail("every entry needs a string `name`")
        if name in params:
            _fail(f"entry {name!r} appears twice")
        allowed = {
            "str": {"value"},
            "int": {"value"},
            "float": {"value"},
            "bool": {"value"},
            "bytes": {"offset", "nbytes"},
            "ndarray": {"dtype", "shape", "offset", "nbytes"},
            "numpy_scalar": {"dtype", "offset", "nbytes"},
        }.get(kind)
        if allowed is None:
            _fail(f"entry {name!r}: unknown kind {kind!r}")
        fields = set(entry) - {"name", "kind"}
        if fields != allowed:
            _fail(
                f"entry {name!r} ({kind}): fields must be {sorted(allowed)}, got {sorted(fields)}"
            )

        if kind in ("str", "int", "float", "bool"):
            value = entry["value"]
            if kind == "str" and not isinstance(value, str):
                _fail(f"entry {name!r}: str value must be a JSON string")
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                _fail(f"entry {name!r}: int value must be a JSON integer")
            if kind == "int" and not _I64_MIN <= value <= _I64_MAX:
                _fail(f"entry {name!r}: int value is out of the signed 64-bit range")
            if kind == "bool" and not isinstance(value, bool):
                _fail(f"entry {name!r}: bool value must be true or false")
            params[name] = _decode_float(name, value) if kind == "float" else value
            continue

        offset = _int_field(entry, "offset")
        nbytes = _int_field(entry, "nbytes")
        if offset != expected_offset:
            _fail(f"entry {name!r}: offset {offset} (expected {expected_offset})")
        start = data_start + offset
        end = start + nbytes
        if end > total:
            _fail(f"entry {name!r}: its {nbytes} bytes run past the end of the data")
        expected_offset = _round_up(offset + nbytes)
        buffers_end = offset + nbytes
        if kind == "bytes":
            params[name] = bytes(view[start:end])
            continue

        dtype = _parse_dtype(name, entry["dtype"])
        if kind == "ndarray":
            shape = entry["shape"]
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                _fail(f"entry {name!r}: `shape` must be a list of non-negative integers")
        else:
            shape = []
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes:
            _fail(
                f"entry {name!r}: shape {shape} of {dtype.str} needs {count * dtype.itemsize} "
                f"bytes, the entry says {nbytes}"
            )
        if count == 0:
            array = np.empty(shape, dtype=dtype)
        else:
            array = (
                np.frombuffer(view, dtype=dtype, count=count, offset=start).reshape(shape).copy()
            )
        params[name] = array if kind == "ndarray" else array[()]

    if total != data_start + buffers_end:
        _fail(f"the data is {total} bytes long; its entries say {data_start + buffers_end}")
    return params


def read_params_file(path: str | os.PathLike) -> dict[str, Any]:
    """Reads parameters from a file written by `write_params_file`."""
    with open(path, "rb") as f:
        return decode_params(f.read())


# Rafiki-style names.
serialize_params = encode_params
deserialize_params = decode_params
