"""Writes a pure-Python wheel of a fake package for tests that install dependencies offline.

    python make_wheel.py OUT_DIR NAME VERSION

The wheel holds one module, NAME with `-` as `_`, whose VERSION is VERSION; pip installs it
with `--no-index --find-links OUT_DIR`. Used by the worker's and the admin's tests.
"""

import base64
import hashlib
import sys
import zipfile


def main() -> None:
    out, name, version = sys.argv[1:4]
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: rafiki-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = ""
    for path, data in files.items():
        digest = (
            base64.urlsafe_b64encode(hashlib.sha256(data).digest())
            .rstrip(b"=")
            .decode()
        )
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    with zipfile.ZipFile(f"{out}/{module}-{version}-py3-none-any.whl", "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)


if __name__ == "__main__":
    main()
