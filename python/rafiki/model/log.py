"""The model logger: messages, metrics and plot definitions a model logs while it trains.

Every call produces one log record, a dict with `type` (`MESSAGE`, `METRICS` or `PLOT`), `time`
(RFC 3339 UTC) and the type's fields; the records go to a sink. Outside the server the sink
prints to the console; the model runtime (`rafiki.runtime`) swaps in a sink that streams each
record to the worker, which stores it as a trial log entry (CONTRACT.md section 5).

When the train job prunes bad trials (docs/pruning.md), the runtime may ask the logger to stop
the trial: its next call then raises `TrialPruned` instead of logging.
"""

from __future__ import annotations

import math
import numbers
import sys
import threading
from datetime import datetime, timezone
from typing import Any, Callable


class LogType:
    MESSAGE = "MESSAGE"
    METRICS = "METRICS"
    PLOT = "PLOT"


LogRecord = dict[str, Any]


class TrialPruned(BaseException):
    """The train job's pruner stopped this trial; raised by the logger call after its decision.

    A `BaseException`, like `KeyboardInterrupt`, so that a model's `except Exception:` does not
    swallow it; a model need not catch it (its `destroy()` still runs).
    """


def utc_now() -> str:
    """Now as an RFC 3339 UTC string with milliseconds, e.g. `2026-11-26T17:02:03.123Z`."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def console_sink(record: LogRecord):
    """Prints a log record for a person at a console."""
    kind = record["type"]
    if kind == LogType.MESSAGE:
        text = record["message"]
    elif kind == LogType.METRICS:
        text = "metrics: " + ", ".join(f"{k}={v}" for (k, v) in record["metrics"].items())
    else:
        x_axis = record["x_axis"] or "time"
        text = f"plot '{record['title']}': {', '.join(record['metrics'])} against {x_axis}"
    print(f"[rafiki.model][{record['time']}] {text}", file=sys.stdout, flush=True)


def _check_metric(name: str, value: Any):
    # numpy scalars are numbers.Real / numbers.Integral; bools are refused although Python
    # counts them as ints, because a `True` metric is almost always a mistake.
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise TypeError(f"metric `{name}` must be a number, got a bool ({value!r})")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        # JSON has no NaN or infinity: a diverging loss is logged as null rather than failing
        # the trial over its logging.
        return value if math.isfinite(value) else None
    raise TypeError(f"metric `{name}` must be an int or float, got {type(value).__name__}")


class LoggerUtils:
    """Logs messages and metrics during training; use the global `rafiki.model.logger`.

    ::

        from rafiki.model import logger
        logger.define_plot('Precision & Recall', ['precision', 'recall'], x_axis='epoch')
        logger.log('Starting training...')
        logger.log(precision=0.1, recall=0.6, epoch=1)
    """

    def __init__(self, sink: Callable[[LogRecord], None] | None = None):
        self._sink = sink or console_sink
        self._lock = threading.Lock()
        self._stop_reason: str | None = None

    def request_stop(self, reason: str):
        """Makes every later log call raise `TrialPruned` (until `clear_stop`); for the runtime."""
        self._stop_reason = reason

    def clear_stop(self):
        """Lets log calls log again."""
        self._stop_reason = None

    def set_sink(self, sink: Callable[[LogRecord], None] | None):
        """Sends every later record to `sink` (None: back to the console)."""
        self._sink = sink or console_sink

    def define_loss_plot(self):
        """Declares the usual plot of `loss` against `epoch`; log points with `log_loss`."""
        self.define_plot("Loss Over Epochs", ["loss"], x_axis="epoch")

    def log_loss(self, loss: float, epoch: int):
        """Logs `loss` at `epoch` (see `define_loss_plot`)."""
        self.log(loss=loss, epoch=epoch)

    def define_plot(self, title: str, metrics: list[str], x_axis: str | None = None):
        """Declares a plot of `metrics` against the metric `x_axis` (default: time)."""
        if not isinstance(title, str):
            raise TypeError(f"plot `title` must be a str, got {type(title).__name__}")
        if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
            raise TypeError("plot `metrics` must be a list of metric names")
        if not all(isinstance(m, str) for m in metrics):
            raise TypeError("plot `metrics` must be a list of metric names (str)")
        if x_axis is not None and not isinstance(x_axis, str):
            raise TypeError(f"plot `x_axis` must be a str or None, got {type(x_axis).__name__}")
        self._emit(
            {"type": LogType.PLOT, "title": title, "metrics": list(metrics), "x_axis": x_axis}
        )

    def log(self, msg: Any = "", **metrics: Any):
        """Logs a message and/or numeric metrics at one point in time."""
        checked = {name: _check_metric(name, value) for (name, value) in metrics.items()}
        if msg is not None and str(msg) != "":
            self._emit({"type": LogType.MESSAGE, "message": str(msg)})
        if checked:
            self._emit({"type": LogType.METRICS, "metrics": checked})

    def _emit(self, record: LogRecord):
        reason = self._stop_reason
        if reason is not None:
            raise TrialPruned(reason)
        record["time"] = utc_now()
        with self._lock:
            self._sink(record)
