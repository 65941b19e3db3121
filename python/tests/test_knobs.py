import json
import math
import random
import re

import numpy as np
import pytest
from conftest import REPO_ROOT

from rafiki.model import (
    ArchKnob,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    InvalidKnobError,
    KnobValue,
    PolicyKnob,
    deserialize_knob_config,
    serialize_knob_config,
)
from rafiki.model.knob import sample_knobs

KNOB_CLASSES = {
    "FixedKnob": FixedKnob,
    "CategoricalKnob": CategoricalKnob,
    "IntegerKnob": IntegerKnob,
    "FloatKnob": FloatKnob,
    "PolicyKnob": PolicyKnob,
    "ArchKnob": ArchKnob,
}


def full_config():
    return {
        "epochs": FixedKnob(3),
        "ratio": FixedKnob(3.0),
        "flag": FixedKnob(True),
        "name": FixedKnob("x"),
        "kernel": CategoricalKnob(["rbf", "linear"]),
        "sizes": CategoricalKnob([16, 32]),
        "rates": CategoricalKnob([0.1, 1.0]),
        "bools": CategoricalKnob([True, False]),
        "depth": IntegerKnob(2, 8),
        "units": IntegerKnob(8, 1024, is_exp=True),
        "lr": FloatKnob(1e-4, 1e-1, is_exp=True),
        "dropout": FloatKnob(0, 1),
        "early": PolicyKnob("EARLY_STOP"),
        "share": PolicyKnob("SHARE_PARAMS"),
        "cells": ArchKnob([[1, 2], ["conv", "pool"], [0.5, True]]),
    }


def test_knobs_expose_their_arguments_and_value_types():
    assert FixedKnob(3).value == 3 and FixedKnob(3).value_type is int
    assert FixedKnob("a").value_type is str
    c = CategoricalKnob(["a", "b"])
    assert c.values == ["a", "b"] and c.value_type is str
    i = IntegerKnob(2, 8, is_exp=True)
    assert (i.value_min, i.value_max, i.is_exp, i.value_type) == (2, 8, True, int)
    f = FloatKnob(1, 2)
    assert (f.value_min, f.value_max, f.is_exp, f.value_type) == (1.0, 2.0, False, float)
    assert isinstance(f.value_min, float)
    assert PolicyKnob("QUICK_EVAL").policy == "QUICK_EVAL"
    assert PolicyKnob("QUICK_EVAL").value_type is bool
    a = ArchKnob([[1, 2], [3]])
    assert a.items == [[1, 2], [3]] and len(a) == 2 and a.value_type is list


def test_knob_values_and_numpy_scalars_are_unwrapped():
    assert ArchKnob([[KnobValue(1), KnobValue("a")]]).items == [[1, "a"]]
    assert CategoricalKnob([KnobValue(1), 2]).values == [1, 2]
    assert FixedKnob(np.int64(4)).value == 4 and type(FixedKnob(np.int64(4)).value) is int
    assert KnobValue(2).dtype is int and KnobValue(2).value == 2


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: FixedKnob(None), "FixedKnob `value` must be an int, float, bool or str"),
        (lambda: FixedKnob([1]), "FixedKnob `value` must be an int, float, bool or str"),
        (lambda: FixedKnob(float("nan")), "finite"),
        (lambda: FixedKnob(2**70), "64-bit"),
        (lambda: CategoricalKnob([]), "at least one value"),
        (lambda: CategoricalKnob("ab"), "must be a list"),
        (lambda: CategoricalKnob([1, "a"]), "of one type"),
        (lambda: CategoricalKnob([1, True]), "of one type"),
        (lambda: CategoricalKnob([1, 2.0]), "of one type"),
        (lambda: CategoricalKnob([None]), "CategoricalKnob value #0"),
        (lambda: IntegerKnob(5, 1), "must not exceed"),
        (lambda: IntegerKnob(1.0, 2), "`value_min` must be an int"),
        (lambda: IntegerKnob(1, "2"), "`value_max` must be an int"),
        (lambda: IntegerKnob(True, 3), "`value_min` must be an int"),
        (lambda: IntegerKnob(0, 5, is_exp=True), "value_min` > 0"),
        (lambda: IntegerKnob(1, 5, is_exp="yes"), "`is_exp` must be a bool"),
        (lambda: IntegerKnob(0, 2**64), "64 bits"),
        (lambda: FloatKnob(1.0, 0.5), "must not exceed"),
        (lambda: FloatKnob("a", 1), "`value_min` must be a number"),
        (lambda: FloatKnob(0, 1, is_exp=True), "value_min` > 0"),
        (lambda: FloatKnob(-math.inf, 1), "finite"),
        (lambda: PolicyKnob("NOPE"), "SHARE_PARAMS, EARLY_STOP, SKIP_TRAIN, QUICK_EVAL, DOWNSCALE"),
        (lambda: ArchKnob([]), "non-empty list"),
        (lambda: ArchKnob("ab"), "non-empty list"),
        (lambda: ArchKnob([[1], []]), "item #1"),
        (lambda: ArchKnob([[1, object()]]), "item #0 candidate #1"),
    ],
)
def test_bad_knob_arguments_fail_at_definition_with_a_clear_error(make, fragment):
    with pytest.raises(InvalidKnobError) as info:
        make()
    assert fragment in str(info.value)
    # InvalidKnobError is a ValueError, as Rafiki's knobs raised.
    assert isinstance(info.value, ValueError)


def test_serialised_config_matches_every_row_of_docs_knobs_md():
    text = (REPO_ROOT / "docs" / "knobs.md").read_text()
    rows = re.findall(r"^\| `(\w+Knob\(.*\))` \| `(\{.*\})` \|$", text, flags=re.M)
    assert len(rows) == 6, rows
    for python, expected in rows:
        knob = eval(python, {"__builtins__": {}}, dict(KNOB_CLASSES))  # our own doc's examples
        wire = json.loads(serialize_knob_config({"k": knob}))["k"]
        assert wire == json.loads(expected), python
        assert serialize_knob_config({"k": knob}) == json.dumps({"k": json.loads(expected)})


def test_ints_stay_ints_and_floats_stay_floats_on_the_wire():
    text = serialize_knob_config({"a": FixedKnob(3), "b": FixedKnob(3.0), "c": FixedKnob(True)})
    assert text == (
        '{"a": {"type": "FIXED", "value": 3}, "b": {"type": "FIXED", "value": 3.0}, '
        '"c": {"type": "FIXED", "value": true}}'
    )
    back = deserialize_knob_config(text)
    assert type(back["a"].value) is int
    assert type(back["b"].value) is float
    assert type(back["c"].value) is bool


def test_knob_config_round_trips_through_json():
    config = full_config()
    text = serialize_knob_config(config)
    back = deserialize_knob_config(text)
    assert list(back) == list(config)
    assert back == config
    assert serialize_knob_config(back) == text
    assert deserialize_knob_config(text.encode()) == config
    assert deserialize_knob_config(json.loads(text)) == config


def test_equality_tells_types_apart():
    assert FixedKnob(1) != FixedKnob(1.0)
    assert FixedKnob(1) != FixedKnob(True)
    assert CategoricalKnob([1, 2]) == CategoricalKnob([1, 2])
    assert IntegerKnob(1, 2) != IntegerKnob(1, 2, is_exp=True)


def test_is_exp_may_be_left_out_and_float_bounds_may_be_json_integers():
    config = deserialize_knob_config(
        '{"n": {"type": "INTEGER", "value_min": 1, "value_max": 4},'
        ' "x": {"type": "FLOAT", "value_min": 1, "value_max": 2}}'
    )
    assert config["n"] == IntegerKnob(1, 4)
    assert config["x"] == FloatKnob(1.0, 2.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1]", "must be a JSON object"),
        ("{nope", "must be JSON"),
        ('{"k": 3}', "knob `k`: expected a JSON object"),
        ('{"k": {"type": "WEIRD", "value": 1}}', "unknown type 'WEIRD'"),
        ('{"k": {"type": "FIXED"}}', "missing field(s) value"),
        ('{"k": {"type": "FIXED", "value": 1, "extra": 2}}', "unknown field(s) extra"),
        ('{"k": {"type": "INTEGER", "value_min": 2.0, "value_max": 3}}', "must be an int"),
        ('{"k": {"type": "INTEGER", "value_min": 5, "value_max": 3}}', "must not exceed"),
        ('{"k": {"type": "CATEGORICAL", "values": [1, "a"]}}', "of one type"),
        ('{"k": {"type": "CATEGORICAL", "values": []}}', "at least one value"),
        ('{"k": {"type": "POLICY", "policy": "FAST"}}', "must be one of"),
        ('{"k": {"type": "ARCH", "items": [[]]}}', "item #0"),
        ('{"k": {"type": "FIXED", "value": null}}', "FixedKnob `value`"),
    ],
)
def test_bad_serialised_configs_are_refused_naming_the_knob(text, fragment):
    with pytest.raises(InvalidKnobError) as info:
        deserialize_knob_config(text)
    assert fragment in str(info.value)


def test_serialising_something_that_is_not_a_knob_config_fails():
    with pytest.raises(InvalidKnobError, match="knob `x` must be a knob"):
        serialize_knob_config({"x": 3})
    with pytest.raises(InvalidKnobError, match="must be a dict"):
        serialize_knob_config([IntegerKnob(1, 2)])


def test_samples_lie_in_the_search_space():
    config = full_config()
    rng = random.Random(7)
    seen_units = set()
    for _ in range(300):
        knobs = sample_knobs(config, rng)
        assert knobs["epochs"] == 3 and knobs["name"] == "x"
        assert knobs["kernel"] in ("rbf", "linear")
        assert 2 <= knobs["depth"] <= 8 and type(knobs["depth"]) is int
        assert 8 <= knobs["units"] <= 1024 and type(knobs["units"]) is int
        seen_units.add(knobs["units"])
        assert 1e-4 <= knobs["lr"] <= 1e-1
        assert 0 <= knobs["dropout"] <= 1
        assert isinstance(knobs["early"], bool)
        assert knobs["cells"][0] in (1, 2) and knobs["cells"][1] in ("conv", "pool")
        assert len(knobs["cells"]) == 3
    # A log-scale search visits small values far more often than a linear one would.
    assert sum(1 for u in seen_units if u < 100) > 10
