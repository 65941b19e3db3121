"""The model runtime driven as a subprocess, over stdin/stdout, exactly as the Rust worker does."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from conftest import EXAMPLE_MODELS

from rafiki.params import read_params_file, write_params_file

TIMEOUT = 30

MODEL_FILE = textwrap.dedent(
    """
    import os
    import subprocess
    import sys

    import numpy as np

    from rafiki.model import BaseModel, CategoricalKnob, FloatKnob, IntegerKnob, logger

    print("printed while importing")

    MODES = ["ok", "raise", "exit", "str_score", "nan_score", "few", "object", "dict",
             "numpy", "bad_params", "list_params", "destroy_raises"]


    class Tester(BaseModel):
        @staticmethod
        def get_knob_config():
            return {
                "mode": CategoricalKnob(MODES),
                "n": IntegerKnob(1, 9),
                "lr": FloatKnob(1e-3, 1.0, is_exp=True),
            }

        def __init__(self, **knobs):
            super().__init__(**knobs)
            self.knobs = knobs
            self.mode = knobs["mode"]

        def train(self, dataset_path, shared_params=None, **train_args):
            print("python print", self.knobs["n"])
            sys.stdout.write("no newline yet")
            sys.stdout.write(" ... done\\n")
            sys.stdout.buffer.write("bytes print\\n".encode())
            os.write(1, b"C-level write to fd 1\\n")
            subprocess.run(["echo", "a child process writing to its stdout"], check=True)
            try:
                input()
            except EOFError:
                print("stdin is closed")
            logger.define_loss_plot()
            logger.log_loss(0.25, 1)
            logger.log("training", n=self.knobs["n"])
            with open(dataset_path) as f:
                self.data = f.read()
            self.train_args = train_args
            self.shared = shared_params
            if self.mode == "raise":
                self.fail_here()
            if self.mode == "exit":
                sys.exit(3)
            sys.stdout.write("unterminated last line")

        def fail_here(self):
            raise ValueError("the knob `mode` says raise")

        def evaluate(self, dataset_path):
            return {
                "str_score": "high",
                "nan_score": float("nan"),
            }.get(self.mode, np.float32(0.5))

        def predict(self, queries):
            if self.mode == "few":
                return queries[:-1]
            if self.mode == "object":
                return [object() for _ in queries]
            if self.mode == "dict":
                return {"a": 1}
            if self.mode == "numpy":
                return np.arange(len(queries) * 2).reshape(len(queries), 2)
            return [{"query": q, "data": self.data, "args": self.train_args} for q in queries]

        def dump_parameters(self):
            if self.mode == "bad_params":
                return {"nested": {"a": 1}}
            if self.mode == "list_params":
                return [1, 2]
            return {"w": np.arange(4, dtype="<f4"), "data": self.data, "n": self.knobs["n"]}

        def load_parameters(self, params):
            if self.mode == "raise":
                raise KeyError("w")
            self.data = params["data"]
            self.train_args = {"loaded": True}

        def destroy(self):
            if self.mode == "destroy_raises":
                raise RuntimeError("cannot free")

        @staticmethod
        def teardown():
            marker = os.environ.get("TEARDOWN_MARKER")
            if marker:
                with open(marker, "w") as f:
                    f.write("torn down")


    class NotAModel:
        pass


    class BadConfig(Tester):
        @staticmethod
        def get_knob_config():
            return {"n": 3}


    class Incomplete(BaseModel):
        @staticmethod
        def get_knob_config():
            return {}
    """
)


class Runtime:
    """Drives `python -m rafiki.runtime` the way the worker does."""

    def __init__(self, tmp_path, env=None):
        self.stderr_path = tmp_path / f"stderr-{id(self)}.txt"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rafiki.runtime"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=str(tmp_path),
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0
        self.ready = self.message()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw)
        self.lines.put(None)

    def message(self):
        raw = self.lines.get(timeout=TIMEOUT)
        assert raw is not None, "the runtime closed its stdout"
        assert raw.endswith(b"\n")
        return json.loads(raw)

    def send_line(self, line: bytes):
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def call(self, cmd, args=None, request_id=None):
        """Sends one request; returns (events, reply)."""
        self.next_id += 1
        request_id = self.next_id if request_id is None else request_id
        request = {"id": request_id, "cmd": cmd}
        if args is not None:
            request["args"] = args
        self.send_line(json.dumps(request).encode() + b"\n")
        return self.collect(request_id)

    def collect(self, request_id):
        events = []
        while True:
            msg = self.message()
            assert msg["id"] == request_id, msg
            if msg["type"] == "reply":
                return (events, msg)
            assert msg["type"] == "log", msg
            events.append(msg)

    def ok(self, cmd, args=None):
        (events, reply) = self.call(cmd, args)
        assert reply["ok"] is True, reply
        return (events, reply["result"])

    def error(self, cmd, args=None):
        (events, reply) = self.call(cmd, args)
        assert reply["ok"] is False, reply
        assert set(reply["error"]) == {"kind", "type", "message", "traceback"}
        return reply["error"]

    def stderr(self):
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        self._stderr.close()


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "tester.py"
    model.write_text(MODEL_FILE)
    data = tmp_path / "data.txt"
    data.write_text("the dataset")
    return {"model": str(model), "data": str(data), "tmp": tmp_path}


@pytest.fixture
def runtime(tmp_path):
    started = []

    def start(**kw):
        rt = Runtime(tmp_path, **kw)
        started.append(rt)
        return rt

    yield start
    for rt in started:
        rt.close()


def loaded(runtime, files, model_class="Tester", **kw):
    rt = runtime(**kw)
    rt.ok("load_model_class", {"model_file_path": files["model"], "model_class": model_class})
    return rt


def knobs(mode="ok", n=4):
    return {"mode": mode, "n": n, "lr": 0.01}


def train(rt, files, mode="ok", **extra):
    return rt.call("train", {"knobs": knobs(mode), "dataset_path": files["data"], **extra})


def test_the_runtime_announces_itself_first(runtime):
    rt = runtime()
    assert rt.ready["type"] == "ready" and rt.ready["protocol"] == 1
    assert rt.ready["pid"] == rt.proc.pid
    assert rt.ok("ping")[1] == {"pid": rt.proc.pid}


def test_a_whole_trial_and_an_inference_session(runtime, files):
    rt = runtime()
    (events, result) = rt.ok(
        "load_model_class", {"model_file_path": files["model"], "model_class": "Tester"}
    )
    assert result == {"model_class": "Tester"}
    assert [e["log"]["message"] for e in events] == ["printed while importing"]

    (_, result) = rt.ok("get_knob_config")
    config = result["knob_config"]
    assert config["n"] == {"type": "INTEGER", "value_min": 1, "value_max": 9, "is_exp": False}
    assert config["lr"] == {"type": "FLOAT", "value_min": 0.001, "value_max": 1.0, "is_exp": True}
    assert config["mode"]["type"] == "CATEGORICAL"

    shared = files["tmp"] / "shared.bin"
    write_params_file({"w": np.ones(2)}, shared)
    (_, result) = rt.ok(
        "train",
        {
            "knobs": knobs(),
            "dataset_path": files["data"],
            "train_args": {"features": ["a"], "target": "y"},
            "shared_params_path": str(shared),
        },
    )
    assert result == {}
    assert rt.ok("evaluate", {"dataset_path": files["data"]})[1] == {"score": 0.5}

    params_path = files["tmp"] / "params.bin"
    (_, result) = rt.ok("dump_parameters", {"path": str(params_path)})
    assert result == {"size_bytes": params_path.stat().st_size, "keys": ["w", "data", "n"]}
    params = read_params_file(params_path)
    assert params["data"] == "the dataset" and params["n"] == 4
    assert params["w"].dtype == np.dtype("<f4")

    (_, predictions) = rt.ok("predict", {"queries": [1, "two"]})
    assert predictions["predictions"] == [
        {"query": 1, "data": "the dataset", "args": {"features": ["a"], "target": "y"}},
        {"query": "two", "data": "the dataset", "args": {"features": ["a"], "target": "y"}},
    ]
    assert rt.ok("destroy")[1] == {"destroyed": True}
    assert rt.ok("destroy")[1] == {"destroyed": False}

    # Inference: a fresh instance from knobs and the saved parameters.
    rt.ok("load_parameters", {"path": str(params_path), "knobs": knobs()})
    (_, predictions) = rt.ok("predict", {"queries": [[1, 2]]})
    assert predictions["predictions"] == [
        {"query": [1, 2], "data": "the dataset", "args": {"loaded": True}}
    ]
    # ... or load into the current instance.
    rt.ok("load_parameters", {"path": str(params_path)})
    assert rt.ok("shutdown")[1] == {}
    assert rt.proc.wait(timeout=TIMEOUT) == 0


def test_prints_become_log_events_before_the_reply_and_never_reach_the_channel(runtime, files):
    rt = loaded(runtime, files)
    (events, reply) = train(rt, files)
    assert reply["ok"] is True
    messages = [(e["source"], e["log"]["type"], e["log"].get("message")) for e in events]
    assert messages == [
        ("stdout", "MESSAGE", "python print 4"),
        ("stdout", "MESSAGE", "no newline yet ... done"),
        ("stdout", "MESSAGE", "bytes print"),
        ("stdout", "MESSAGE", "stdin is closed"),
        ("logger", "PLOT", None),
        ("logger", "METRICS", None),
        ("logger", "MESSAGE", "training"),
        ("logger", "METRICS", None),
        ("stdout", "MESSAGE", "unterminated last line"),
    ]
    assert events[4]["log"]["title"] == "Loss Over Epochs"
    assert events[5]["log"]["metrics"] == {"loss": 0.25, "epoch": 1}
    assert events[7]["log"]["metrics"] == {"n": 4}
    assert all(e["log"]["time"].endswith("Z") for e in events)
    # Writes to fd 1 from C and from child processes went to stderr, not to the channel.
    rt.ok("shutdown")
    rt.proc.wait(timeout=TIMEOUT)
    err = rt.stderr()
    assert "C-level write to fd 1" in err
    assert "a child process writing to its stdout" in err


def test_a_model_exception_is_an_error_reply_and_the_runtime_stays_usable(runtime, files):
    rt = loaded(runtime, files)
    (events, reply) = train(rt, files, mode="raise")
    error = reply["error"]
    assert reply["ok"] is False
    assert error["kind"] == "model_error" and error["type"] == "ValueError"
    assert error["message"] == "Tester.train() raised ValueError: the knob `mode` says raise"
    assert "tester.py" in error["traceback"] and "in fail_here" in error["traceback"]
    assert "raise ValueError" in error["traceback"]
    assert "rafiki/runtime" not in error["traceback"]
    # Events logged before the failure still arrived, before the reply.
    assert any(e["log"].get("message") == "training" for e in events)
    # The failed instance stays until destroyed; then a new trial runs.
    assert rt.error("train", {"knobs": knobs(), "dataset_path": files["data"]})["kind"] == (
        "invalid_state"
    )
    rt.ok("destroy")
    assert train(rt, files)[1]["ok"] is True
    assert rt.ok("evaluate", {"dataset_path": files["data"]})[1]["score"] == 0.5


def test_a_model_calling_sys_exit_does_not_end_the_runtime(runtime, files):
    rt = loaded(runtime, files)
    error = train(rt, files, mode="exit")[1]["error"]
    assert error["kind"] == "model_error" and error["type"] == "SystemExit"
    assert rt.ok("ping")[1]["pid"] == rt.proc.pid


@pytest.mark.parametrize(
    ("mode", "cmd", "args", "fragment"),
    [
        ("str_score", "evaluate", "data", "evaluate() must return a float score, got str ('high')"),
        ("nan_score", "evaluate", "data", "must return a finite score, got nan"),
        ("few", "predict", {"queries": [1, 2, 3]}, "got 2 predictions for 3 queries"),
        ("object", "predict", {"queries": [1]}, "prediction #0 is a object"),
        ("dict", "predict", {"queries": [1]}, "predict() must return a list, got dict"),
        ("bad_params", "dump_parameters", "path", "parameter 'nested': values of type dict"),
        ("list_params", "dump_parameters", "path", "parameters must be a dict"),
    ],
)
def test_garbage_return_values_are_error_replies(runtime, files, mode, cmd, args, fragment):
    rt = loaded(runtime, files)
    assert train(rt, files, mode=mode)[1]["ok"] is True
    if args == "data":
        args = {"dataset_path": files["data"]}
    elif args == "path":
        args = {"path": str(files["tmp"] / "p.bin")}
    error = rt.error(cmd, args)
    assert error["kind"] == "invalid_return"
    assert fragment in error["message"]
    assert not (files["tmp"] / "p.bin").exists()
    # Still usable afterwards.
    assert rt.ok("ping")


def test_numpy_predictions_are_turned_into_json(runtime, files):
    rt = loaded(runtime, files)
    train(rt, files, mode="numpy")
    assert rt.ok("predict", {"queries": [1, 2]})[1]["predictions"] == [[0, 1], [2, 3]]


def test_destroy_drops_the_instance_even_when_it_raises(runtime, files):
    rt = loaded(runtime, files)
    train(rt, files, mode="destroy_raises")
    error = rt.error("destroy")
    assert error["kind"] == "model_error" and "cannot free" in error["message"]
    assert rt.ok("destroy")[1] == {"destroyed": False}


@pytest.mark.parametrize(
    ("line", "fragment", "echoed_id"),
    [
        (b"this is not json\n", "not a JSON line", None),
        (b"[1, 2]\n", "must be a JSON object", None),
        (b'{"cmd": "ping"}\n', "needs an `id`", None),
        (b'{"id": true, "cmd": "ping"}\n', "needs an `id`", None),
        (b'{"id": "x1", "cmd": "fly"}\n', "unknown command 'fly'", "x1"),
        (b'{"id": 7, "cmd": "ping", "args": [1]}\n', "`args` must be a JSON object", 7),
        (b'{"id": 8, "cmd": "load_model_class", "args": {}}\n', "missing argument", 8),
        (b"\xff\xfe\n", "not a JSON line", None),
    ],
)
def test_bad_requests_get_bad_request_replies(runtime, line, fragment, echoed_id):
    rt = runtime()
    rt.send_line(line)
    reply = rt.message()
    assert reply["type"] == "reply" and reply["ok"] is False
    assert reply["id"] == echoed_id
    assert reply["error"]["kind"] == "bad_request" and fragment in reply["error"]["message"]
    assert rt.ok("ping")


def test_bad_arguments_are_named(runtime, files):
    rt = loaded(runtime, files)
    error = rt.error("train", {"knobs": [1], "dataset_path": files["data"]})
    assert error["kind"] == "bad_request" and "`knobs` must be an object" in error["message"]
    error = rt.error("train", {"knobs": knobs(), "dataset_path": "/nonexistent/data.csv"})
    assert (
        error["kind"] == "bad_request"
        and "/nonexistent/data.csv is not a file" in (error["message"])
    )
    error = rt.error("train", {"knobs": knobs(), "dataset_path": 3})
    assert "`dataset_path` must be a file path" in error["message"]
    assert train(rt, files)[1]["ok"] is True
    error = rt.error("predict", {"queries": "abc"})
    assert error["kind"] == "bad_request" and "`queries` must be a list" in error["message"]


def test_commands_out_of_order_are_invalid_state(runtime, files):
    rt = runtime()
    assert rt.error("get_knob_config")["kind"] == "invalid_state"
    assert rt.error("train", {"knobs": {}, "dataset_path": files["data"]})["kind"] == (
        "invalid_state"
    )
    rt.ok("load_model_class", {"model_file_path": files["model"], "model_class": "Tester"})
    error = rt.error("load_model_class", {"model_file_path": files["model"], "model_class": "X"})
    assert error["kind"] == "invalid_state"
    assert rt.error("evaluate", {"dataset_path": files["data"]})["kind"] == "invalid_state"
    assert rt.error("predict", {"queries": [1]})["kind"] == "invalid_state"
    assert rt.error("dump_parameters", {"path": "x.bin"})["kind"] == "invalid_state"


def test_bad_knobs_are_a_model_error(runtime, files):
    rt = loaded(runtime, files)
    error = rt.error("train", {"knobs": {"n": 1}, "dataset_path": files["data"]})
    assert error["kind"] == "model_error" and error["type"] == "KeyError"
    assert "Tester(**knobs)" in error["message"]
    # The instance was never made, so a proper train works at once.
    assert train(rt, files)[1]["ok"] is True


@pytest.mark.parametrize(
    ("source", "model_class", "kind", "fragment"),
    [
        ("def broken(:\n", "M", "invalid_model", "SyntaxError"),
        ("import no_such_module_xyz\n", "M", "invalid_model", "ModuleNotFoundError"),
        ("x = 1\n", "M", "invalid_model", "defines no `M`"),
        (None, "NotAModel", "invalid_model", "must subclass rafiki.model.BaseModel"),
        (None, "Incomplete", "invalid_model", "does not implement"),
    ],
)
def test_model_files_that_cannot_load_are_invalid_model(
    runtime, files, source, model_class, kind, fragment
):
    path = files["model"]
    if source is not None:
        path = str(files["tmp"] / "other.py")
        with open(path, "w") as f:
            f.write(source)
    rt = runtime()
    error = rt.error("load_model_class", {"model_file_path": path, "model_class": model_class})
    assert error["kind"] == kind
    assert fragment in error["message"] or fragment == error["type"]
    # Nothing is loaded: loading a good class now works.
    rt.ok("load_model_class", {"model_file_path": files["model"], "model_class": "Tester"})


def test_a_bad_knob_config_is_an_invalid_return(runtime, files):
    rt = loaded(runtime, files, model_class="BadConfig")
    error = rt.error("get_knob_config")
    assert error["kind"] == "invalid_return" and "knob `n` must be a knob" in error["message"]


def test_unreadable_parameter_files_are_invalid_params(runtime, files):
    rt = loaded(runtime, files)
    junk = files["tmp"] / "junk.bin"
    junk.write_bytes(b"definitely not parameters")
    error = rt.error("load_parameters", {"path": str(junk), "knobs": knobs()})
    assert error["kind"] == "invalid_params" and "bad magic" in error["message"]
    error = rt.error(
        "train",
        {"knobs": knobs(), "dataset_path": files["data"], "shared_params_path": str(junk)},
    )
    assert error["kind"] == "invalid_params"
    # No instance was left behind by either failure.
    assert train(rt, files)[1]["ok"] is True


def test_a_model_error_while_loading_parameters(runtime, files):
    rt = loaded(runtime, files)
    params = files["tmp"] / "p.bin"
    write_params_file({"data": "x"}, params)
    error = rt.error("load_parameters", {"path": str(params), "knobs": knobs("raise")})
    assert error["kind"] == "model_error" and error["type"] == "KeyError"


def test_shutdown_tears_the_class_down_and_exits(runtime, files):
    marker = files["tmp"] / "teardown.txt"
    rt = loaded(runtime, files, env={"TEARDOWN_MARKER": str(marker)})
    train(rt, files)
    rt.ok("shutdown")
    assert rt.proc.wait(timeout=TIMEOUT) == 0
    assert marker.read_text() == "torn down"


def test_end_of_input_ends_the_runtime_cleanly(runtime, files):
    marker = files["tmp"] / "teardown.txt"
    rt = loaded(runtime, files, env={"TEARDOWN_MARKER": str(marker)})
    rt.proc.stdin.close()
    assert rt.proc.wait(timeout=TIMEOUT) == 0
    assert marker.read_text() == "torn down"


def test_string_request_ids_are_echoed(runtime):
    rt = runtime()
    (_, reply) = rt.call("ping", request_id="trial-7/predict-1")
    assert reply["id"] == "trial-7/predict-1" and reply["ok"] is True


def test_an_example_model_runs_through_the_runtime(runtime, example_datasets):
    paths = example_datasets["POS_TAGGING"]
    rt = runtime()
    model = str(EXAMPLE_MODELS / "pos_tagging" / "BigramHmm.py")
    rt.ok("load_model_class", {"model_file_path": model, "model_class": "BigramHmm"})
    config = rt.ok("get_knob_config")[1]["knob_config"]
    assert {k["type"] for k in config.values()} == {"FLOAT", "INTEGER", "CATEGORICAL", "FIXED"}
    trial_knobs = {"smoothing": 0.01, "min_count": 1, "lowercase": True, "unknown_token": "<unk>"}
    (events, _) = rt.ok("train", {"knobs": trial_knobs, "dataset_path": paths["train"]})
    assert any(e["log"]["type"] == "METRICS" for e in events)
    score = rt.ok("evaluate", {"dataset_path": paths["val"]})[1]["score"]
    assert 0.8 < score <= 1.0
    rt.ok("dump_parameters", {"path": "hmm.bin"})
    rt.ok("destroy")
    rt.ok("load_parameters", {"path": "hmm.bin", "knobs": trial_knobs})
    predictions = rt.ok("predict", {"queries": [["The", "dog", "sees", "a", "cat", "."]]})[1]
    assert predictions["predictions"] == [[0, 1, 2, 0, 1, 7]]


LOOPER_FILE = textwrap.dedent(
    """
    import time

    from rafiki.model import BaseModel, logger


    class Looper(BaseModel):
        @staticmethod
        def get_knob_config():
            return {}

        def train(self, dataset_path, shared_params=None, **train_args):
            for step in range(1, 301):
                time.sleep(0.01)
                try:
                    logger.log(acc=0.5, step=step)
                except Exception:  # a model's catch-all must not swallow the stop
                    pass

        def evaluate(self, dataset_path):
            return 0.5

        def predict(self, queries):
            return queries

        def dump_parameters(self):
            return {}

        def load_parameters(self, params):
            pass
    """
)


def test_a_stop_control_line_stops_train_at_its_next_log_call(runtime, files):
    looper = files["tmp"] / "looper.py"
    looper.write_text(LOOPER_FILE)
    rt = runtime()
    rt.ok("load_model_class", {"model_file_path": str(looper), "model_class": "Looper"})
    rt.next_id += 1
    request_id = rt.next_id
    request = {
        "id": request_id,
        "cmd": "train",
        "args": {"knobs": {}, "dataset_path": files["data"]},
    }
    rt.send_line(json.dumps(request).encode() + b"\n")
    first = rt.message()
    assert first["type"] == "log" and first["log"]["metrics"]["step"] == 1, first
    # A stop naming another request (a late one, of an earlier trial) is ignored.
    rt.send_line(json.dumps({"control": "stop", "id": request_id + 100}).encode() + b"\n")
    rt.send_line(json.dumps({"control": "stop", "id": request_id}).encode() + b"\n")
    (events, reply) = rt.collect(request_id)
    assert reply["ok"] is False, reply
    assert reply["error"]["kind"] == "pruned"
    assert reply["error"]["type"] == "TrialPruned"
    assert len(events) + 1 < 300, "stopped before the end of its loop"
    # The instance stays for destroy(); the next train logs again.
    assert rt.ok("destroy")[1] == {"destroyed": True}
    (events, reply) = rt.call("train", {"knobs": {}, "dataset_path": files["data"]})
    assert reply["ok"] is True, reply
    assert len(events) == 300
