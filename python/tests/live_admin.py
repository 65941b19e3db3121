"""The real Rust admin (`rafiki-admin --dev`) on a fresh database, for tests through HTTP.

Needs the admin binary (env `RAFIKI_ADMIN_BIN`, else `target/debug/rafiki-admin`), a Postgres
server URL in `RAFIKI_TEST_DATABASE_URL` (a fresh database is created on it and dropped
afterwards) and `psql`; the fixtures skip, saying which is missing, without them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from conftest import REPO_ROOT

from rafiki.client import Client

SUPERADMIN = ("superadmin@rafiki", "rafiki")
START_TIMEOUT = 60


def admin_binary():
    path = os.environ.get("RAFIKI_ADMIN_BIN") or str(
        REPO_ROOT / "target" / "debug" / "rafiki-admin"
    )
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def _psql(server_url, sql):
    subprocess.run(
        ["psql", server_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory):
    binary = admin_binary()
    if binary is None:
        pytest.skip(
            "the rafiki-admin binary is not built (cargo build -p rafiki-admin, or set "
            "RAFIKI_ADMIN_BIN)"
        )
    server_url = os.environ.get("RAFIKI_TEST_DATABASE_URL")
    if not server_url:
        pytest.skip("RAFIKI_TEST_DATABASE_URL is not set (e.g. scripts/postgres.sh prints one)")
    if shutil.which("psql") is None:
        pytest.skip("psql is needed to create the test database")

    db_name = f"rafiki_pytest_{uuid.uuid4().hex[:12]}"
    _psql(server_url, f'CREATE DATABASE "{db_name}"')
    parts = urlsplit(server_url)
    database_url = urlunsplit(parts._replace(path=f"/{db_name}"))
    port = _free_port()
    tmp = tmp_path_factory.mktemp("admin")
    log_path = tmp / "admin.log"
    log = open(log_path, "wb")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADMIN_PORT": str(port),
        "RAFIKI_DATA_DIR": str(tmp / "data"),
        "RAFIKI_ADDR": "127.0.0.1",
        # The admin refuses to start when its workers' interpreter lacks rafiki; this one has it.
        "RAFIKI_PYTHON": os.environ.get("RAFIKI_PYTHON", sys.executable),
    }
    proc = subprocess.Popen([binary, "--dev"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rafiki-admin exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                res = requests.get(url + "/", timeout=2)
                if res.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"rafiki-admin did not answer within {START_TIMEOUT}s:\n{log_path.read_text()}"
                )
            time.sleep(0.1)
        yield url
    finally:
        # Services outlive their admin by design (a restarted admin adopts them), so the jobs
        # the tests left running are stopped first, or their workers and predictors would
        # keep running after the tests.
        if proc.poll() is None:
            _stop_all_jobs(url)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        _psql(server_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _stop_all_jobs(url):
    try:
        client = client_for(url)
        client.login(*SUPERADMIN)
        client.stop_all_jobs()
    except Exception as err:  # teardown: say it, and let the test's own outcome stand
        print(f"live_admin: could not stop the jobs left running: {err}", file=sys.stderr)


def client_for(admin_url) -> Client:
    parts = urlsplit(admin_url)
    return Client(admin_host=parts.hostname, admin_port=parts.port)


@pytest.fixture
def superadmin(admin_url):
    client = client_for(admin_url)
    client.login(*SUPERADMIN)
    return client


def unique_email(role="user"):
    return f"{role}-{uuid.uuid4().hex[:10]}@example.com"


def new_user(superadmin, admin_url, user_type):
    email = unique_email(user_type.lower())
    superadmin.create_user(email, "a-good-password", user_type)
    client = client_for(admin_url)
    client.login(email, "a-good-password")
    return (client, email)


def wait_for(fetch, done, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"timed out waiting: {value}"
        time.sleep(0.3)
