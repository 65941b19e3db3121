import re

import numpy as np
import pytest

from rafiki.model import LoggerUtils, logger, utils

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def records():
    got = []
    log = LoggerUtils(sink=got.append)
    return (log, got)


def test_the_global_logger_is_utils_logger():
    assert utils.logger is logger


def test_outside_a_worker_the_logger_prints_to_the_console(capsys):
    log = LoggerUtils()
    log.log("hello there")
    log.log(loss=np.float32(0.5), epoch=np.int64(2))
    log.define_plot("Accuracy", ["acc"], x_axis="epoch")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[rafiki.model][") and lines[0].endswith("] hello there")
    assert lines[1].endswith("metrics: loss=0.5, epoch=2")
    assert lines[2].endswith("plot 'Accuracy': acc against epoch")


def test_each_call_becomes_records_in_order(records):
    (log, got) = records
    log.define_loss_plot()
    log.log("starting")
    log.log_loss(1.5, 0)
    log.log("both", acc=0.75)
    log.define_plot("P & R", ["precision", "recall"])
    assert [r["type"] for r in got] == ["PLOT", "MESSAGE", "METRICS", "MESSAGE", "METRICS", "PLOT"]
    assert got[0] == {
        "type": "PLOT",
        "title": "Loss Over Epochs",
        "metrics": ["loss"],
        "x_axis": "epoch",
        "time": got[0]["time"],
    }
    assert got[1]["message"] == "starting"
    assert got[2]["metrics"] == {"loss": 1.5, "epoch": 0}
    assert got[3]["message"] == "both" and got[4]["metrics"] == {"acc": 0.75}
    assert got[5]["x_axis"] is None
    assert all(TIME.match(r["time"]) for r in got)


def test_metrics_accept_numpy_numbers_and_keep_their_kind(records):
    (log, got) = records
    log.log(a=np.int32(3), b=np.float64(0.25), c=7, d=1.0)
    metrics = got[0]["metrics"]
    assert metrics == {"a": 3, "b": 0.25, "c": 7, "d": 1.0}
    assert type(metrics["a"]) is int and type(metrics["b"]) is float


def test_non_finite_metrics_are_logged_as_null(records):
    (log, got) = records
    log.log(loss=float("nan"), other=np.inf)
    assert got[0]["metrics"] == {"loss": None, "other": None}


def test_an_empty_message_logs_nothing(records):
    (log, got) = records
    log.log()
    log.log("")
    assert got == []


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda log: log.log(acc="high"), "metric `acc` must be an int or float"),
        (lambda log: log.log(flag=True), "metric `flag` must be a number, got a bool"),
        (lambda log: log.log(v=[1, 2]), "metric `v`"),
        (lambda log: log.define_plot(3, ["a"]), "plot `title` must be a str"),
        (lambda log: log.define_plot("t", "loss"), "list of metric names"),
        (lambda log: log.define_plot("t", [1]), "list of metric names"),
        (lambda log: log.define_plot("t", ["a"], x_axis=3), "x_axis"),
    ],
)
def test_bad_logger_arguments_raise_clear_errors(records, call, fragment):
    (log, got) = records
    with pytest.raises(TypeError, match=re.escape(fragment)):
        call(log)
    assert got == []
