"""The client's requests and its reading of answers, against a small local HTTP server."""

from __future__ import annotations

import email.parser
import email.policy
import inspect
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from rafiki.client import Client, RafikiConnectionError, RafikiError
from rafiki.model import BaseModel, IntegerKnob
from rafiki.params import encode_params


class Recorded:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self):
        assert self.headers.get("Content-Type") == "application/json"
        return json.loads(self.body)

    def form(self):
        """Multipart fields: name -> (filename or None, bytes)."""
        ctype = self.headers.get("Content-Type")
        assert ctype.startswith("multipart/form-data; boundary=")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body
        )
        fields = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        return fields


class FakeAdmin:
    """Answers each (method, path) with a canned (status, content type, body); records requests."""

    def __init__(self):
        self.routes = {}
        self.requests: list[Recorded] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                fake.requests.append(
                    Recorded(self.command, url.path, parse_qs(url.query), self.headers, body)
                )
                (status, ctype, payload) = fake.routes.get(
                    (self.command, url.path), (404, "text/plain", b"no such route")
                )
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def on(self, method, path, payload, status=200, ctype="application/json"):
        self.routes[(method, path)] = (status, ctype, payload)

    def last(self) -> Recorded:
        return self.requests[-1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def admin():
    fake = FakeAdmin()
    yield fake
    fake.close()


@pytest.fixture
def client(admin):
    return Client(admin_host="127.0.0.1", admin_port=admin.port)


def logged_in(admin, client):
    admin.on("POST", "/tokens", {"user_id": "u1", "user_type": "ADMIN", "token": "jwt-abc"})
    client.login("a@b.c", "pw")
    return client


def test_login_keeps_the_token_and_sends_it(admin, client):
    admin.on("POST", "/tokens", {"user_id": "u1", "user_type": "ADMIN", "token": "jwt-abc"})
    assert client.get_current_user() is None
    user = client.login("a@b.c", "secret")
    assert user == {"id": "u1", "user_type": "ADMIN"} == client.get_current_user()
    assert admin.last().json() == {"email": "a@b.c", "password": "secret"}
    assert "Authorization" not in admin.last().headers
    admin.on("GET", "/users", [{"id": "u1"}])
    assert client.get_users() == [{"id": "u1"}]
    assert admin.last().headers["Authorization"] == "Bearer jwt-abc"
    client.logout()
    assert client.get_current_user() is None
    client.get_users()
    assert "Authorization" not in admin.last().headers


def test_user_methods(admin, client):
    logged_in(admin, client)
    admin.on("POST", "/users", {"id": "u2", "email": "x@y.z", "user_type": "APP_DEVELOPER"})
    assert client.create_user("x@y.z", "pw", "APP_DEVELOPER")["id"] == "u2"
    assert admin.last().json() == {"email": "x@y.z", "password": "pw", "user_type": "APP_DEVELOPER"}
    admin.on("DELETE", "/users", {"id": "u2", "banned_date": "2026-01-01T00:00:00Z"})
    assert client.ban_user("x@y.z")["id"] == "u2"
    assert admin.last().method == "DELETE" and admin.last().json() == {"email": "x@y.z"}


def test_create_dataset_uploads_the_file_as_multipart(admin, client, tmp_path):
    logged_in(admin, client)
    data = tmp_path / "train.zip"
    data.write_bytes(b"PK\x03\x04 fake zip \x00\xff")
    admin.on("POST", "/datasets", {"id": "d1", "name": "n", "task": "T", "size_bytes": 15})
    assert client.create_dataset("n", "T", dataset_path=str(data))["id"] == "d1"
    form = admin.last().form()
    assert form["name"] == (None, b"n") and form["task"] == (None, b"T")
    assert form["dataset"] == ("train.zip", data.read_bytes())
    assert "dataset_url" not in form


def test_create_dataset_from_a_url_is_multipart_too(admin, client):
    logged_in(admin, client)
    admin.on("POST", "/datasets", {"id": "d2"})
    client.create_dataset("n", "T", dataset_url="https://example.com/d.zip")
    form = admin.last().form()
    assert form == {
        "name": (None, b"n"),
        "task": (None, b"T"),
        "dataset_url": (None, b"https://example.com/d.zip"),
    }


def test_get_datasets_filters_by_task_only_when_given(admin, client):
    logged_in(admin, client)
    admin.on("GET", "/datasets", [])
    client.get_datasets()
    assert admin.last().query == {}
    client.get_datasets(task="POS_TAGGING")
    assert admin.last().query == {"task": ["POS_TAGGING"]}


def test_create_model_sends_rafikis_fields(admin, client, tmp_path):
    logged_in(admin, client)
    model_file = tmp_path / "MyModel.py"
    model_file.write_text("class MyModel: pass\n")
    admin.on("POST", "/models", {"id": "m1", "user_id": "u1", "name": "mine"})
    result = client.create_model(
        "mine", "IMAGE_CLASSIFICATION", str(model_file), "MyModel", {"scikit-learn": "1.3.0"}
    )
    assert result == {"id": "m1", "user_id": "u1", "name": "mine"}
    form = admin.last().form()
    assert form["model_file_bytes"] == ("MyModel.py", b"class MyModel: pass\n")
    assert form["name"] == (None, b"mine")
    assert form["task"] == (None, b"IMAGE_CLASSIFICATION")
    assert form["model_class"] == (None, b"MyModel")
    assert json.loads(form["dependencies"][1]) == {"scikit-learn": "1.3.0"}
    assert form["access_right"] == (None, b"PRIVATE")
    assert "docker_image" not in form
    client.create_model(
        "m", "T", str(model_file), "MyModel", access_right="PUBLIC", docker_image="img:1"
    )
    form = admin.last().form()
    assert form["dependencies"] == (None, b"null")
    assert form["access_right"] == (None, b"PUBLIC") and form["docker_image"] == (None, b"img:1")


def test_model_reads_and_deletes(admin, client, tmp_path):
    logged_in(admin, client)
    admin.on("GET", "/models/m1", {"id": "m1", "model_class": "MyModel"})
    admin.on("GET", "/models/m1/model_file", b"print('hi')\n", ctype="application/octet-stream")
    out = tmp_path / "downloaded.py"
    assert client.download_model_file("m1", str(out)) == {"id": "m1", "model_class": "MyModel"}
    assert out.read_bytes() == b"print('hi')\n"
    assert client.get_model("m1")["id"] == "m1"
    admin.on("GET", "/models/available", [{"id": "m1"}])
    assert client.get_available_models() == [{"id": "m1"}]
    assert admin.last().query == {}
    client.get_available_models(task="T")
    assert admin.last().query == {"task": ["T"]}
    admin.on("DELETE", "/models/m1", {"id": "m1"})
    assert client.delete_model("m1") == {"id": "m1"}
    assert admin.last().method == "DELETE"


def test_create_train_job_fills_rafikis_defaults(admin, client):
    logged_in(admin, client)
    admin.on("POST", "/train_jobs", {"id": "t1", "app": "a", "app_version": 1})
    admin.on("GET", "/models/available", [{"id": "m1"}, {"id": "m2"}])
    assert client.create_train_job("a", "T", "d1", "d2", {"MODEL_TRIAL_COUNT": 3})["id"] == "t1"
    assert admin.requests[-2].path == "/models/available"
    assert admin.requests[-2].query == {"task": ["T"]}
    assert admin.last().json() == {
        "app": "a",
        "task": "T",
        "train_dataset_id": "d1",
        "val_dataset_id": "d2",
        "budget": {"TIME_HOURS": 0.1, "GPU_COUNT": 0, "MODEL_TRIAL_COUNT": 3},
        "model_ids": ["m1", "m2"],
        "train_args": None,
    }
    client.create_train_job(
        "a", "T", "d1", "d2", {"GPU_COUNT": 1}, models=["m9"], train_args={"target": "y"}
    )
    body = admin.last().json()
    assert body["model_ids"] == ["m9"] and body["train_args"] == {"target": "y"}
    assert body["budget"] == {"TIME_HOURS": 0.1, "GPU_COUNT": 1}


def test_train_job_and_trial_routes(admin, client):
    logged_in(admin, client)
    routes = [
        (lambda: client.get_train_jobs_by_user("u9"), "GET", "/train_jobs", {"user_id": ["u9"]}),
        (lambda: client.get_train_jobs_of_app("app"), "GET", "/train_jobs/app", {}),
        (lambda: client.get_train_job("app"), "GET", "/train_jobs/app/-1", {}),
        (lambda: client.get_train_job("app", 3), "GET", "/train_jobs/app/3", {}),
        (lambda: client.stop_train_job("app"), "POST", "/train_jobs/app/-1/stop", {}),
        (lambda: client.get_trial("r1"), "GET", "/trials/r1", {}),
        (
            lambda: client.get_best_trials_of_train_job("app"),
            "GET",
            "/train_jobs/app/-1/trials",
            {"type": ["best"], "max_count": ["2"]},
        ),
        (
            lambda: client.get_best_trials_of_train_job("app", 2, max_count=5),
            "GET",
            "/train_jobs/app/2/trials",
            {"type": ["best"], "max_count": ["5"]},
        ),
        (lambda: client.get_trials_of_train_job("app"), "GET", "/train_jobs/app/-1/trials", {}),
        (lambda: client.get_trial_logs("r1"), "GET", "/trials/r1/logs", {}),
        (
            lambda: client.get_inference_jobs_by_user("u9"),
            "GET",
            "/inference_jobs",
            {"user_id": ["u9"]},
        ),
        (lambda: client.get_inference_jobs_of_app("app"), "GET", "/inference_jobs/app", {}),
        (lambda: client.get_running_inference_job("app"), "GET", "/inference_jobs/app/-1", {}),
        (lambda: client.stop_inference_job("app", 4), "POST", "/inference_jobs/app/4/stop", {}),
        (lambda: client.stop_all_jobs(), "POST", "/actions/stop_all_jobs", {}),
    ]
    for call, method, path, query in routes:
        admin.on(method, path, {"answer": path})
        assert call() == {"answer": path}, path
        assert (admin.last().method, admin.last().path, admin.last().query) == (
            method,
            path,
            query,
        )


def test_create_inference_job_defaults_gpu_count_to_zero(admin, client):
    logged_in(admin, client)
    admin.on("POST", "/inference_jobs", {"id": "i1", "predictor_host": "127.0.0.1:4000"})
    assert client.create_inference_job("app")["id"] == "i1"
    assert admin.last().json() == {"app": "app", "app_version": -1, "budget": {"GPU_COUNT": 0}}
    client.create_inference_job("app", 2, budget={"GPU_COUNT": 1})
    assert admin.last().json()["budget"] == {"GPU_COUNT": 1}


class Doubler(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"factor": IntegerKnob(1, 3)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.factor = knobs["factor"]

    def train(self, dataset_path, shared_params=None, **train_args):
        raise AssertionError("not called")

    def evaluate(self, dataset_path):
        raise AssertionError("not called")

    def predict(self, queries):
        return [float(self.w @ np.asarray(q)) * self.factor for q in queries]

    def dump_parameters(self):
        return {"w": self.w}

    def load_parameters(self, params):
        self.w = params["w"]


def test_trial_parameters_are_decoded_and_a_trial_model_loads(admin, client):
    logged_in(admin, client)
    params = {"w": np.array([1.0, 2.0], dtype=">f8"), "note": "trained", "epochs": 3}
    admin.on(
        "GET", "/trials/r1/parameters", encode_params(params), ctype="application/octet-stream"
    )
    got = client.get_trial_parameters("r1")
    assert list(got) == ["w", "note", "epochs"]
    assert got["w"].dtype == np.dtype(">f8") and got["w"].tolist() == [1.0, 2.0]
    assert got["note"] == "trained" and got["epochs"] == 3
    admin.on("GET", "/trials/r1", {"id": "r1", "proposal": {"knobs": {"factor": 3}}})
    model = client.load_trial_model("r1", Doubler)
    assert isinstance(model, Doubler) and model.factor == 3
    assert model.predict([[1, 1]]) == [9.0]


def test_server_errors_carry_the_error_name_and_message(admin, client):
    admin.on(
        "POST",
        "/users",
        {"error": "UserExistsError", "message": "a user with this email exists"},
        status=409,
    )
    with pytest.raises(RafikiError) as info:
        client.create_user("a@b.c", "pw", "ADMIN")
    e = info.value
    assert (e.error, e.message, e.status_code) == (
        "UserExistsError",
        "a user with this email exists",
        409,
    )
    assert str(e) == "UserExistsError: a user with this email exists"
    # Rafiki's scripts catch RafikiConnectionError.
    assert isinstance(e, RafikiConnectionError)


def test_answers_outside_the_contract_still_raise_clearly(admin, client):
    admin.on("GET", "/users", b"<html>Bad Gateway</html>", status=502, ctype="text/html")
    with pytest.raises(RafikiError) as info:
        client.get_users()
    assert info.value.error == "HTTP502" and "Bad Gateway" in info.value.message
    admin.on("GET", "/users", b"hello", status=200, ctype="text/plain")
    with pytest.raises(RafikiError, match="unexpected response content type 'text/plain'"):
        client.get_users()
    # A charset parameter on JSON is tolerated.
    admin.on("GET", "/users", b"[]", ctype="application/json; charset=utf-8")
    assert client.get_users() == []


def test_an_unreachable_admin_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Client(admin_host="127.0.0.1", admin_port=port)
    with pytest.raises(RafikiConnectionError, match="cannot reach the Rafiki admin"):
        client.login("a@b.c", "pw")


RAFIKI_SIGNATURES = {
    "__init__": "(self, admin_host, admin_port, timeout)",
    "login": "(self, email, password)",
    "get_current_user": "(self)",
    "logout": "(self)",
    "create_user": "(self, email, password, user_type)",
    "get_users": "(self)",
    "ban_user": "(self, email)",
    "create_dataset": "(self, name, task, dataset_path=None, dataset_url=None)",
    "get_datasets": "(self, task=None)",
    "create_model": "(self, name, task, model_file_path, model_class, dependencies=None, "
    "access_right='PRIVATE', docker_image=None)",
    "get_model": "(self, model_id)",
    "download_model_file": "(self, model_id, out_model_file_path)",
    "get_available_models": "(self, task=None)",
    "delete_model": "(self, model_id)",
    "create_train_job": "(self, app, task, train_dataset_id, val_dataset_id, budget, "
    "models=None, train_args=None)",
    "get_train_jobs_by_user": "(self, user_id)",
    "get_train_jobs_of_app": "(self, app)",
    "get_train_job": "(self, app, app_version=-1)",
    "stop_train_job": "(self, app, app_version=-1)",
    "get_trial": "(self, trial_id)",
    "get_best_trials_of_train_job": "(self, app, app_version=-1, max_count=2)",
    "get_trials_of_train_job": "(self, app, app_version=-1)",
    "get_trial_logs": "(self, trial_id)",
    "get_trial_parameters": "(self, trial_id)",
    "load_trial_model": "(self, trial_id, ModelClass)",
    "create_inference_job": "(self, app, app_version=-1, budget=None)",
    "get_inference_jobs_by_user": "(self, user_id)",
    "get_inference_jobs_of_app": "(self, app)",
    "get_running_inference_job": "(self, app, app_version=-1)",
    "stop_inference_job": "(self, app, app_version=-1)",
    "stop_all_jobs": "(self)",
}


def plain_signature(fn):
    parts = []
    for p in inspect.signature(fn).parameters.values():
        if p.default is inspect.Parameter.empty or p.name in (
            "admin_host",
            "admin_port",
            "timeout",
        ):
            parts.append(p.name)
        else:
            parts.append(f"{p.name}={p.default!r}")
    return "(" + ", ".join(parts) + ")"


def test_every_method_has_rafikis_signature_and_defaults():
    for name, expected in RAFIKI_SIGNATURES.items():
        assert plain_signature(getattr(Client, name)) == expected, name


def test_the_default_address_is_the_local_admin_unless_the_environment_says_otherwise():
    import os
    import subprocess
    import sys

    code = "from rafiki.client import Client; print(Client()._url('/'))"
    env = {k: v for (k, v) in os.environ.items() if k not in ("RAFIKI_ADDR", "ADMIN_EXT_PORT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "http://127.0.0.1:3000/"
    env.update({"RAFIKI_ADDR": "10.1.2.3", "ADMIN_EXT_PORT": "3100"})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "http://10.1.2.3:3100/"
