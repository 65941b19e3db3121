"""Knobs: the hyperparameter search space a model declares with `get_knob_config()`.

Every knob checks its arguments when it is defined, so a bad search space fails at once with a
message naming the argument, not later inside an advisor. A knob config crosses to the server as
JSON (docs/knobs.md), never as pickle: `serialize_knob_config` / `deserialize_knob_config`. The
rules here are the same as the Rust reading (`rafiki_types::knob`).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any, Union

POLICIES = ["SHARE_PARAMS", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL", "DOWNSCALE"]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


class InvalidKnobError(ValueError):
    """A knob's arguments, or a serialised knob config, are not valid."""


class KnobValue:
    """Wraps one candidate value (`int`, `float`, `bool` or `str`) of a knob.

    Knobs accept plain values too; this class exists for model files written for Rafiki, which
    may build `ArchKnob` items out of `KnobValue`s.
    """

    def __init__(self, value: CategoricalValue):
        if isinstance(value, KnobValue):
            value = value.value
        self._value = _check_scalar(value, "value")
        self._dtype = type(self._value)

    @property
    def value(self):
        return self._value

    @property
    def dtype(self) -> type:
        return self._dtype

    def __eq__(self, other):
        if isinstance(other, KnobValue):
            return self._dtype is other._dtype and self._value == other._value
        return NotImplemented

    def __hash__(self):
        return hash((self._dtype, self._value))

    def __repr__(self):
        return f"KnobValue({self._value!r})"


CategoricalValue = Union[str, int, float, bool, KnobValue]


def _check_scalar(value: Any, what: str):
    """Returns `value` as a plain `bool`, `int`, `float` or `str`, or raises a clear error."""
    if isinstance(value, KnobValue):
        return value.value
    # numpy scalars are accepted and turned into the Python type they stand for.
    type_name = type(value).__module__
    if type_name == "numpy" and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _I64_MIN <= value <= _I64_MAX:
            raise InvalidKnobError(f"{what} {value} does not fit in a signed 64-bit integer")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidKnobError(f"{what} must be a finite number, got {value}")
        return value
    if isinstance(value, str):
        return value
    raise InvalidKnobError(
        f"{what} must be an int, float, bool or str, got {type(value).__name__} ({value!r})"
    )


def _check_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidKnobError(f"`{what}` must be a bool, got {type(value).__name__}")
    return value


class BaseKnob:
    """The base class of every knob type."""

    #: The `type` tag of this knob in JSON.
    KIND = ""

    @property
    def value_type(self) -> type:
        """The Python type of a value of this knob."""
        raise NotImplementedError()

    def to_json(self) -> dict[str, Any]:
        """This knob as the JSON object of docs/knobs.md."""
        raise NotImplementedError()

    def sample(self, rng: random.Random):
        """A random value of this knob (used for local tuning by `rafiki.model.dev`)."""
        raise NotImplementedError()

    def __eq__(self, other):
        if isinstance(other, BaseKnob):
            return self.to_json() == other.to_json() and _same_types(
                self.to_json(), other.to_json()
            )
        return NotImplemented

    def __hash__(self):
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __repr__(self):
        args = {k: v for (k, v) in self.to_json().items() if k != "type"}
        inner = ", ".join(f"{k}={v!r}" for (k, v) in args.items())
        return f"{type(self).__name__}({inner})"


def _same_types(a, b) -> bool:
    """Equality that tells `1` from `1.0` from `True`, as the JSON round trip does."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for (x, y) in zip(a, b))
    return a == b


class FixedKnob(BaseKnob):
    """A knob that is not tuned: its value is always `value` (an int, float, bool or str)."""

    KIND = "FIXED"

    def __init__(self, value: CategoricalValue):
        self._value = _check_scalar(value, "FixedKnob `value`")

    @property
    def value(self):
        return self._value

    @property
    def value_type(self) -> type:
        return type(self._value)

    def to_json(self):
        return {"type": self.KIND, "value": self._value}

    def sample(self, rng):
        return self._value


class CategoricalKnob(BaseKnob):
    """One of `values`: a non-empty list of ints, floats, bools or strs, all of one type."""

    KIND = "CATEGORICAL"

    def __init__(self, values: list[CategoricalValue]):
        if not isinstance(values, (list, tuple)):
            raise InvalidKnobError(
                f"CategoricalKnob `values` must be a list, got {type(values).__name__}"
            )
        if len(values) == 0:
            raise InvalidKnobError("CategoricalKnob `values` must have at least one value")
        checked = [_check_scalar(x, f"CategoricalKnob value #{i}") for (i, x) in enumerate(values)]
        first = type(checked[0])
        for i, x in enumerate(checked):
            if type(x) is not first:
                raise InvalidKnobError(
                    "CategoricalKnob `values` must all be of one type: value #0 is "
                    f"{first.__name__} but value #{i} ({x!r}) is {type(x).__name__}"
                )
        self._values = checked
        self._value_type = first

    @property
    def values(self) -> list:
        return list(self._values)

    @property
    def value_type(self) -> type:
        return self._value_type

    def to_json(self):
        return {"type": self.KIND, "values": list(self._values)}

    def sample(self, rng):
        return rng.choice(self._values)


class _RangeKnob(BaseKnob):
    """What `IntegerKnob` and `FloatKnob` share: a range [`value_min`, `value_max`], searched on
    a log scale if `is_exp`, and the rules on it once each bound has the knob's type."""

    def __init__(self, name: str, value_min, value_max, is_exp: bool):
        is_exp = _check_bool(is_exp, "is_exp")
        if value_min > value_max:
            raise InvalidKnobError(
                f"{name} `value_min` ({value_min}) must not exceed `value_max` ({value_max})"
            )
        if is_exp and value_min <= 0:
            raise InvalidKnobError(
                f"{name} with `is_exp=True` needs `value_min` > 0, got {value_min}"
            )
        self._value_min = value_min
        self._value_max = value_max
        self._is_exp = is_exp

    @property
    def value_min(self):
        return self._value_min

    @property
    def value_max(self):
        return self._value_max

    @property
    def is_exp(self) -> bool:
        return self._is_exp

    def to_json(self):
        return {
            "type": self.KIND,
            "value_min": self._value_min,
            "value_max": self._value_max,
            "is_exp": self._is_exp,
        }


class IntegerKnob(_RangeKnob):
    """An int in [`value_min`, `value_max`], searched on a log scale if `is_exp`."""

    KIND = "INTEGER"

    def __init__(self, value_min: int, value_max: int, is_exp: bool = False):
        for name, v in (("value_min", value_min), ("value_max", value_max)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidKnobError(
                    f"IntegerKnob `{name}` must be an int, got {type(v).__name__} ({v!r})"
                )
            if not _I64_MIN <= v <= _I64_MAX:
                raise InvalidKnobError(f"IntegerKnob `{name}` does not fit in 64 bits: {v}")
        super().__init__("IntegerKnob", value_min, value_max, is_exp)

    @property
    def value_type(self) -> type:
        return int

    def sample(self, rng):
        if self._is_exp:
            low, high = math.log(self._value_min), math.log(self._value_max + 1)
            value = int(math.exp(rng.uniform(low, high)))
            return min(max(value, self._value_min), self._value_max)
        return rng.randint(self._value_min, self._value_max)


class FloatKnob(_RangeKnob):
    """A float in [`value_min`, `value_max`], searched on a log scale if `is_exp`."""

    KIND = "FLOAT"

    def __init__(self, value_min: float, value_max: float, is_exp: bool = False):
        bounds = []
        for name, v in (("value_min", value_min), ("value_max", value_max)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidKnobError(
                    f"FloatKnob `{name}` must be a number, got {type(v).__name__} ({v!r})"
                )
            v = float(v)
            if not math.isfinite(v):
                raise InvalidKnobError(f"FloatKnob `{name}` must be finite, got {v}")
            bounds.append(v)
        (low, high) = bounds
        super().__init__("FloatKnob", low, high, is_exp)

    @property
    def value_type(self) -> type:
        return float

    def sample(self, rng):
        if self._is_exp:
            value = math.exp(rng.uniform(math.log(self._value_min), math.log(self._value_max)))
        else:
            value = rng.uniform(self._value_min, self._value_max)
        return min(max(value, self._value_min), self._value_max)


class PolicyKnob(BaseKnob):
    """A bool: whether the advisor switches `policy` on for a trial (one of `POLICIES`)."""

    KIND = "POLICY"

    def __init__(self, policy: str):
        if policy not in POLICIES:
            raise InvalidKnobError(
                f"PolicyKnob `policy` must be one of {', '.join(POLICIES)}, got {policy!r}"
            )
        self._policy = policy

    @property
    def policy(self) -> str:
        return self._policy

    @property
    def value_type(self) -> type:
        return bool

    def to_json(self):
        return {"type": self.KIND, "policy": self._policy}

    def sample(self, rng):
        return rng.random() < 0.5


class ArchKnob(BaseKnob):
    """An architecture: a list with one value per position, chosen from that position's candidates.

    `items` is a non-empty list of non-empty lists of candidate values (ints, floats, bools, strs
    or `KnobValue`s).
    """

    KIND = "ARCH"

    def __init__(self, items: list[list[CategoricalValue]]):
        if not isinstance(items, (list, tuple)) or len(items) == 0:
            raise InvalidKnobError("ArchKnob `items` must be a non-empty list of lists")
        checked = []
        for i, candidates in enumerate(items):
            if not isinstance(candidates, (list, tuple)) or len(candidates) == 0:
                raise InvalidKnobError(
                    f"ArchKnob item #{i} must be a non-empty list of candidate values"
                )
            checked.append(
                [
                    _check_scalar(x, f"ArchKnob item #{i} candidate #{j}")
                    for (j, x) in enumerate(candidates)
                ]
            )
        self._items = checked

    @property
    def items(self) -> list[list]:
        return [list(x) for x in self._items]

    @property
    def value_type(self) -> type:
        return list

    def __len__(self):
        return len(self._items)

    def to_json(self):
        return {"type": self.KIND, "items": [list(x) for x in self._items]}

    def sample(self, rng):
        return [rng.choice(candidates) for candidates in self._items]


_KNOB_CLASSES = {
    cls.KIND: cls
    for cls in (FixedKnob, CategoricalKnob, IntegerKnob, FloatKnob, PolicyKnob, ArchKnob)
}

# Argument names per knob type; `is_exp` may be left out (it defaults to false).
_KNOB_FIELDS = {
    "FIXED": (["value"], []),
    "CATEGORICAL": (["values"], []),
    "INTEGER": (["value_min", "value_max"], ["is_exp"]),
    "FLOAT": (["value_min", "value_max"], ["is_exp"]),
    "POLICY": (["policy"], []),
    "ARCH": (["items"], []),
}


def check_knob_config(knob_config: Any) -> dict[str, BaseKnob]:
    """Checks that `knob_config` is a `{name: Knob}` dict; returns it."""
    if not isinstance(knob_config, dict):
        raise InvalidKnobError(
            f"a knob config must be a dict of knob name to knob, got {type(knob_config).__name__}"
        )
    for name, knob in knob_config.items():
        if not isinstance(name, str) or not name:
            raise InvalidKnobError(f"knob names must be non-empty strings, got {name!r}")
        if not isinstance(knob, BaseKnob):
            raise InvalidKnobError(
                f"knob `{name}` must be a knob (e.g. IntegerKnob), got {type(knob).__name__}"
            )
    return knob_config


def knob_config_to_json(knob_config: dict[str, BaseKnob]) -> dict[str, Any]:
    """The knob config as a JSON-ready dict (docs/knobs.md)."""
    check_knob_config(knob_config)
    return {name: knob.to_json() for (name, knob) in knob_config.items()}


def knob_from_json(name: str, obj: Any) -> BaseKnob:
    """Reads one knob from its JSON object, with the checks of its constructor."""
    if not isinstance(obj, dict):
        raise InvalidKnobError(f"knob `{name}`: expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in _KNOB_CLASSES:
        raise InvalidKnobError(
            f"knob `{name}`: unknown type {kind!r} (expected one of {', '.join(_KNOB_CLASSES)})"
        )
    (required, optional) = _KNOB_FIELDS[kind]
    unknown = sorted(set(obj) - {"type", *required, *optional})
    if unknown:
        raise InvalidKnobError(f"knob `{name}`: unknown field(s) {', '.join(unknown)}")
    missing = [f for f in required if f not in obj]
    if missing:
        raise InvalidKnobError(f"knob `{name}`: missing field(s) {', '.join(missing)}")
    args = {k: v for (k, v) in obj.items() if k != "type"}
    if kind == "FLOAT":
        # JSON writers may drop the fraction of a whole bound (`1` for `1.0`).
        for f in ("value_min", "value_max"):
            v = args[f]
            if isinstance(v, int) and not isinstance(v, bool):
                args[f] = float(v)
    try:
        return _KNOB_CLASSES[kind](**args)
    except InvalidKnobError as e:
        raise InvalidKnobError(f"knob `{name}`: {e}") from None


def serialize_knob_config(knob_config: dict[str, BaseKnob]) -> str:
    """The knob config as JSON text (docs/knobs.md)."""
    return json.dumps(knob_config_to_json(knob_config), allow_nan=False)


def deserialize_knob_config(knob_config_json: str | bytes | dict[str, Any]):
    """Reads a knob config from JSON text (or an already parsed dict)."""
    if isinstance(knob_config_json, (str, bytes, bytearray)):
        try:
            obj = json.loads(knob_config_json)
        except ValueError as e:
            raise InvalidKnobError(f"a knob config must be JSON: {e}") from None
    else:
        obj = knob_config_json
    if not isinstance(obj, dict):
        raise InvalidKnobError(f"a knob config must be a JSON object, got {type(obj).__name__}")
    return {name: knob_from_json(name, knob) for (name, knob) in obj.items()}


def sample_knobs(knob_config: dict[str, BaseKnob], rng: random.Random) -> dict[str, Any]:
    """One random value per knob (what a random advisor would propose)."""
    return {name: knob.sample(rng) for (name, knob) in knob_config.items()}
