"""The admin's API under a property-based fuzzer (issue 14, item 3).

schemathesis reads the admin's own `/openapi.json` and sends generated requests, valid and
invalid, to every operation, as the superadmin. Every check runs: the run fails on a 5xx
answer, an answer whose status the document does not list, whose body or content type does
not match it, a schema-valid request refused as malformed, or a schema-invalid one accepted
(python/tests/fuzz/schemathesis.toml names the one exception). The document is thereby held to
what the server does, and the server to its document.

Bounded for CI: `RAFIKI_FUZZ_EXAMPLES` cases per operation and phase (default 25) over every
phase (examples, coverage, fuzzing, stateful), with a fixed seed so that a failure reproduces.
`scripts/fuzz-api.sh` runs it longer, with a fresh seed, for soak runs.
`POST /actions/stop_all_jobs` is left out: it would stop the jobs the other operations made
mid-run, which it is tested for elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import requests
from live_admin import SUPERADMIN, admin_url  # noqa: F401  (the fixture)

FUZZ = Path(__file__).parent / "fuzz"


def schemathesis_command():
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is not installed: pip install -e './python[test]'"
    return found


def test_every_operation_holds_to_its_openapi_document(admin_url, tmp_path):  # noqa: F811
    res = requests.post(
        admin_url + "/tokens",
        json={"email": SUPERADMIN[0], "password": SUPERADMIN[1]},
        timeout=10,
    )
    res.raise_for_status()
    token = res.json()["token"]
    examples = os.environ.get("RAFIKI_FUZZ_EXAMPLES", "25")
    phases = os.environ.get("RAFIKI_FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
    command = [
        schemathesis_command(),
        "--config-file",
        str(FUZZ / "schemathesis.toml"),
        "--no-color",
        "run",
        admin_url + "/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        examples,
        "--phases",
        phases,
        "--exclude-path",
        "/actions/stop_all_jobs",
        "--seed",
        os.environ.get("RAFIKI_FUZZ_SEED", "14"),
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(FUZZ),
        "SCHEMATHESIS_HOOKS": "hooks",
    }
    # In tmp_path, where schemathesis keeps its cache.
    run = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800
    )
    output = run.stdout + run.stderr
    report = os.environ.get("RAFIKI_FUZZ_OUTPUT")
    if report:
        Path(report).write_text(output)
    assert run.returncode == 0, output[-20000:]
    # The run reached every operation but the one left out.
    paths = requests.get(admin_url + "/openapi.json", timeout=10).json()["paths"]
    operations = sum(len(item) for item in paths.values())
    assert f"Tested: {operations - 1}" in output, output[-5000:]
