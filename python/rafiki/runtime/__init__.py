"""The model runtime: a long-lived child process that hosts one model class for a Rust worker.

Run as `python -m rafiki.runtime`. The worker writes one JSON request per line to the child's
stdin and reads one JSON message per line from the child's stdout: log events, then the reply.
docs/runtime-protocol.md is the full description; this module is its implementation.

The channel is private: at start-up the runtime keeps the real stdout for itself (a duplicate of
fd 1), points fd 1 at stderr and fd 0 at /dev/null, so nothing the model prints or reads — from
Python or from C — can corrupt it. Python-level prints made while a command runs are captured
and sent as log events.

Requests are read by a thread of their own, so that a `control` line (the worker asking the
running `train` to stop, docs/pruning.md) is seen while the model trains; requests proper are
still served one at a time, in order, by the main thread.
"""

from __future__ import annotations

import io
import json
import os
import queue
import sys
import threading
import time
import traceback
from typing import Any, BinaryIO, Callable

import rafiki
from rafiki.model.checks import (
    InvalidReturnError,
    check_knobs_result,
    check_predictions,
    check_score,
)
from rafiki.model.knob import InvalidKnobError, knob_config_to_json
from rafiki.model.log import LogType, TrialPruned, utc_now
from rafiki.model.model import BaseModel
from rafiki.model.utils import InvalidModelClassError, load_model_class, logger
from rafiki.params import ParamsError, read_params_file, write_params_file

PROTOCOL_VERSION = 1

# A captured print line longer than this is sent in pieces (e.g. progress bars without newlines).
MAX_PRINT_LINE = 64 * 1024


class CommandError(Exception):
    """A command failed; becomes an error reply."""

    def __init__(
        self,
        kind: str,
        message: str,
        exc_type: str | None = None,
        tb: str | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.exc_type = exc_type
        self.tb = tb

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "type": self.exc_type or self.kind,
            "message": self.message,
            "traceback": self.tb,
        }


class Channel:
    """Writes protocol messages, one JSON object per line, to the private stdout."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]):
        text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        # Lone surrogates (possible in Python strs) cannot be UTF-8: they become '?'.
        data = text.encode("utf-8", errors="replace") + b"\n"
        with self._lock:
            self._out.write(data)
            self._out.flush()


class _BinaryCapture(io.RawIOBase):
    """`sys.stdout.buffer` while captured: bytes are decoded and captured as text."""

    def __init__(self, text: StdoutCapture):
        self._text = text

    def writable(self):
        return True

    def write(self, b):
        data = bytes(b)
        self._text.write(data.decode("utf-8", errors="replace"))
        return len(data)


class StdoutCapture(io.TextIOBase):
    """Replaces `sys.stdout`: lines printed during a command become log events.

    Outside a command (e.g. a background thread printing after the reply) text goes to stderr.
    """

    def __init__(self, runtime: Runtime):
        self._runtime = runtime
        self._pending = ""
        self._lock = threading.RLock()
        self.buffer = _BinaryCapture(self)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # fd 1 now points at stderr; code that writes to the fd directly lands there.
        return 1

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        with self._lock:
            if self._runtime.current_id is None:
                sys.stderr.write(s)
                return len(s)
            self._pending += s
            while True:
                cut = self._pending.find("\n")
                if cut < 0:
                    if len(self._pending) > MAX_PRINT_LINE:
                        (line, self._pending) = (
                            self._pending[:MAX_PRINT_LINE],
                            self._pending[MAX_PRINT_LINE:],
                        )
                        self._runtime.emit_print(line)
                        continue
                    break
                (line, self._pending) = (self._pending[:cut], self._pending[cut + 1 :])
                self._runtime.emit_print(line)
        return len(s)

    def flush(self):
        sys.stderr.flush()

    def flush_pending(self):
        """Sends a last unfinished line (called at the end of each command)."""
        with self._lock:
            if self._pending:
                (line, self._pending) = (self._pending, "")
                self._runtime.emit_print(line)


def _model_error(e: BaseException, method: str) -> CommandError:
    # Drop the runtime's own frame so the traceback starts in the model's code.
    tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
    text = "".join(traceback.format_exception(type(e), e, tb))
    return CommandError(
        "model_error", f"{method} raised {type(e).__name__}: {e}", type(e).__name__, text
    )


def _call_model(method: str, fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except TrialPruned as e:
        raise CommandError(
            "pruned", f"{method} stopped at a log call: {e}", "TrialPruned"
        ) from None
    except BaseException as e:  # the model may raise anything, SystemExit included
        raise _model_error(e, method) from None


def _arg(args: dict[str, Any], name: str, types, optional: bool = False, what: str = ""):
    if name not in args or (optional and args[name] is None):
        if optional:
            return None
        raise CommandError("bad_request", f"missing argument `{name}`")
    value = args[name]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise CommandError("bad_request", f"argument `{name}` must be {what}")
    if not isinstance(value, types):
        raise CommandError(
            "bad_request", f"argument `{name}` must be {what}, got {type(value).__name__}"
        )
    return value


def _existing_file(args: dict[str, Any], name: str) -> str:
    path = _arg(args, name, str, what="a file path (string)")
    if not os.path.isfile(path):
        raise CommandError("bad_request", f"`{name}` {path} is not a file")
    return path


class Runtime:
    """Serves commands from `reader` and answers on `channel` until shutdown or end of input."""

    def __init__(self, reader: BinaryIO, channel: Channel):
        self._reader = reader
        self._channel = channel
        self.current_id: Any = None
        # The id of the `train` request being served, which a `stop` control line names.
        self._training_id: Any = None
        self._events_lock = threading.RLock()
        self._model_class: type[BaseModel] | None = None
        self._instance: BaseModel | None = None
        self._capture = StdoutCapture(self)
        self._running = True
        self._commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": self._ping,
            "load_model_class": self._load_model_class,
            "get_knob_config": self._get_knob_config,
            "train": self._train,
            "evaluate": self._evaluate,
            "dump_parameters": self._dump_parameters,
            "load_parameters": self._load_parameters,
            "predict": self._predict,
            "destroy": self._destroy,
            "shutdown": self._shutdown,
        }

    # --- events ---

    def _emit_log(self, source: str, record: dict[str, Any]):
        # Under the lock the command cannot end between the check and the send, so no event of
        # a request (e.g. from a model's background thread) can follow that request's reply.
        with self._events_lock:
            request_id = self.current_id
            if request_id is not None:
                self._channel.send(
                    {"type": "log", "id": request_id, "source": source, "log": record}
                )
                return
        sys.stderr.write(f"[rafiki.runtime] log outside a command: {json.dumps(record)}\n")

    def emit_print(self, line: str):
        line = line.rstrip("\r")
        if line.strip():
            self._emit_log("stdout", {"type": LogType.MESSAGE, "time": utc_now(), "message": line})

    def logger_sink(self, record: dict[str, Any]):
        self._emit_log("logger", record)

    # --- the loop ---

    def install(self):
        """Routes the SDK logger and `sys.stdout` into this runtime."""
        sys.stdout = self._capture
        logger.set_sink(self.logger_sink)

    def serve(self) -> int:
        self._channel.send(
            {
                "type": "ready",
                "protocol": PROTOCOL_VERSION,
                "pid": os.getpid(),
                "python": ".".join(str(x) for x in sys.version_info[:3]),
                "rafiki": rafiki.__version__,
            }
        )
        requests: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(
            target=self._read_requests, args=(requests,), name="rafiki-runtime-reader", daemon=True
        ).start()
        while self._running:
            raw = requests.get()
            if raw is None:
                self._cleanup()
                break
            if not raw.strip():
                continue
            self._handle(raw)
        return 0

    def _read_requests(self, requests: queue.Queue[bytes | None]):
        """Reads lines until end of input: control lines act at once, requests are queued."""
        try:
            while True:
                raw = self._reader.readline()
                if not raw:
                    break
                if not self._control(raw):
                    requests.put(raw)
        finally:
            requests.put(None)

    def _control(self, raw: bytes) -> bool:
        """Acts on a control line (`{"control": "stop", "id": <train request id>}`); False
        when the line is a request."""
        if b'"control"' not in raw:
            return False
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return False
        if not isinstance(message, dict) or "control" not in message or "cmd" in message:
            return False
        request_id = message.get("id")
        if message["control"] == "stop":
            with self._events_lock:
                # Only the train request it names: a late stop must not stop the next trial.
                if self._training_id is not None and self._training_id == request_id:
                    logger.request_stop("the train job's pruner stopped this trial")
        else:
            sys.stderr.write(f"[rafiki.runtime] unknown control line ignored: {message!r}\n")
        return True

    def _handle(self, raw: bytes):
        request_id = None
        started = time.monotonic()
        try:
            try:
                request = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise CommandError("bad_request", f"the request is not a JSON line: {e}") from None
            if not isinstance(request, dict):
                raise CommandError("bad_request", "the request must be a JSON object")
            request_id = request.get("id")
            if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
                request_id = None
                raise CommandError("bad_request", "the request needs an `id` (string or integer)")
            cmd = request.get("cmd")
            handler = self._commands.get(cmd) if isinstance(cmd, str) else None
            if handler is None:
                raise CommandError("bad_request", f"unknown command {cmd!r}")
            args = request.get("args", {})
            if args is None:
                args = {}
            if not isinstance(args, dict):
                raise CommandError("bad_request", "`args` must be a JSON object")
            self.current_id = request_id
            try:
                result = handler(args)
            finally:
                self._capture.flush_pending()
                with self._events_lock:
                    self.current_id = None
            reply = {"type": "reply", "id": request_id, "ok": True, "result": result}
        except CommandError as e:
            reply = {"type": "reply", "id": request_id, "ok": False, "error": e.to_json()}
        except Exception as e:  # a bug in the runtime itself: report it, stay up
            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            error = CommandError(
                "internal_error", f"{type(e).__name__}: {e}", type(e).__name__, text
            )
            reply = {"type": "reply", "id": request_id, "ok": False, "error": error.to_json()}
        reply["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
        try:
            self._channel.send(reply)
        except (TypeError, ValueError) as e:
            error = CommandError("invalid_return", f"the result cannot be sent as JSON: {e}")
            self._channel.send(
                {"type": "reply", "id": request_id, "ok": False, "error": error.to_json()}
            )

    # --- state helpers ---

    def _need_class(self) -> type[BaseModel]:
        if self._model_class is None:
            raise CommandError("invalid_state", "no model class is loaded (load_model_class)")
        return self._model_class

    def _need_instance(self) -> BaseModel:
        if self._instance is None:
            raise CommandError(
                "invalid_state", "no model instance (train or load_parameters with knobs first)"
            )
        return self._instance

    def _new_instance(self, args: dict[str, Any]) -> BaseModel:
        clazz = self._need_class()
        knobs = _arg(args, "knobs", dict, what="an object of knob values")
        if self._instance is not None:
            raise CommandError(
                "invalid_state", "a model instance exists already (destroy it first)"
            )
        return _call_model(f"{clazz.__name__}(**knobs)", clazz, **knobs)

    # --- commands ---

    def _ping(self, args):
        return {"pid": os.getpid()}

    def _load_model_class(self, args):
        path = _existing_file(args, "model_file_path")
        name = _arg(args, "model_class", str, what="a class name (string)")
        if self._model_class is not None:
            raise CommandError("invalid_state", "a model class is loaded already")
        try:
            clazz = load_model_class(path, name)
        except InvalidModelClassError as e:
            cause = e.__cause__
            if cause is not None:
                err = _model_error(cause, "importing the model file")
                raise CommandError("invalid_model", str(e), err.exc_type, err.tb) from None
            raise CommandError("invalid_model", str(e), "InvalidModelClassError") from None
        abstract = sorted(getattr(clazz, "__abstractmethods__", ()))
        if abstract:
            raise CommandError(
                "invalid_model",
                f"`{name}` does not implement {', '.join(m + '()' for m in abstract)}",
                "InvalidModelClassError",
            )
        self._model_class = clazz
        return {"model_class": name}

    def _get_knob_config(self, args):
        clazz = self._need_class()
        config = _call_model(f"{clazz.__name__}.get_knob_config()", clazz.get_knob_config)
        try:
            check_knobs_result(config)
            return {"knob_config": knob_config_to_json(config)}
        except (InvalidReturnError, InvalidKnobError) as e:
            raise CommandError("invalid_return", str(e), "InvalidReturnError") from None

    def _train(self, args):
        clazz = self._need_class()
        dataset_path = _existing_file(args, "dataset_path")
        train_args = _arg(args, "train_args", dict, optional=True, what="an object") or {}
        shared_path = _arg(args, "shared_params_path", str, optional=True, what="a file path")
        shared_params = None
        if shared_path is not None:
            try:
                shared_params = read_params_file(shared_path)
            except (OSError, ParamsError) as e:
                raise CommandError(
                    "invalid_params", f"cannot read shared parameters: {e}"
                ) from None
        instance = self._new_instance(args)
        self._instance = instance
        with self._events_lock:
            self._training_id = self.current_id
        try:
            _call_model(
                f"{clazz.__name__}.train()",
                instance.train,
                dataset_path,
                shared_params=shared_params,
                **train_args,
            )
        finally:
            with self._events_lock:
                self._training_id = None
                logger.clear_stop()
        return {}

    def _evaluate(self, args):
        instance = self._need_instance()
        dataset_path = _existing_file(args, "dataset_path")
        method = f"{type(instance).__name__}.evaluate()"
        score = _call_model(method, instance.evaluate, dataset_path)
        try:
            return {"score": check_score(score, method)}
        except InvalidReturnError as e:
            raise CommandError("invalid_return", str(e), "InvalidReturnError") from None

    def _dump_parameters(self, args):
        instance = self._need_instance()
        path = _arg(args, "path", str, what="a file path (string)")
        method = f"{type(instance).__name__}.dump_parameters()"
        params = _call_model(method, instance.dump_parameters)
        try:
            size = write_params_file(params, path)
        except ParamsError as e:
            raise CommandError(
                "invalid_return",
                f"{method} returned parameters that cannot be saved: {e}",
                "InvalidReturnError",
            ) from None
        except OSError as e:
            raise CommandError("io_error", f"cannot write {path}: {e}", type(e).__name__) from None
        return {"size_bytes": size, "keys": list(params)}

    def _load_parameters(self, args):
        path = _existing_file(args, "path")
        if args.get("knobs") is not None:
            self._need_class()
            try:
                params = read_params_file(path)
            except (OSError, ParamsError) as e:
                raise CommandError("invalid_params", f"cannot read parameters: {e}") from None
            self._instance = self._new_instance(args)
        else:
            self._need_instance()
            try:
                params = read_params_file(path)
            except (OSError, ParamsError) as e:
                raise CommandError("invalid_params", f"cannot read parameters: {e}") from None
        instance = self._instance
        _call_model(
            f"{type(instance).__name__}.load_parameters()", instance.load_parameters, params
        )
        return {}

    def _predict(self, args):
        instance = self._need_instance()
        queries = _arg(args, "queries", list, what="a list of queries")
        predictions = _call_model(f"{type(instance).__name__}.predict()", instance.predict, queries)
        try:
            return {"predictions": check_predictions(predictions, len(queries))}
        except InvalidReturnError as e:
            raise CommandError("invalid_return", str(e), "InvalidReturnError") from None

    def _destroy(self, args):
        instance = self._instance
        if instance is None:
            return {"destroyed": False}
        # The instance is gone whatever its destroy() does.
        self._instance = None
        _call_model(f"{type(instance).__name__}.destroy()", instance.destroy)
        return {"destroyed": True}

    def _cleanup(self):
        """Destroys the instance and tears the class down, reporting failures on stderr."""
        if self._instance is not None:
            try:
                self._instance.destroy()
            except BaseException as e:
                sys.stderr.write(f"[rafiki.runtime] destroy() raised {type(e).__name__}: {e}\n")
            self._instance = None
        if self._model_class is not None:
            try:
                self._model_class.teardown()
            except BaseException as e:
                sys.stderr.write(f"[rafiki.runtime] teardown() raised {type(e).__name__}: {e}\n")

    def _shutdown(self, args):
        self._cleanup()
        self._running = False
        return {}


def main() -> int:
    """Entry point of `python -m rafiki.runtime`."""
    sys.stdout.flush()
    channel_fd = os.dup(1)  # the private channel: the real stdout
    os.dup2(2, 1)  # anything written to fd 1 from now on lands on stderr
    request_fd = os.dup(0)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)  # the model cannot read (and eat) the worker's requests
    os.close(null_fd)
    channel = Channel(os.fdopen(channel_fd, "wb"))
    runtime = Runtime(os.fdopen(request_fd, "rb"), channel)
    runtime.install()
    return runtime.serve()
