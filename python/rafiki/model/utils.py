"""The global `utils` (with `utils.logger` and `utils.dataset`) and model class loading."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import uuid

from rafiki.constants import ModelDependency

from .dataset import DatasetUtils
from .knob import deserialize_knob_config, serialize_knob_config
from .log import LoggerUtils
from .model import BaseModel


class InvalidModelClassError(Exception):
    """A model file cannot be imported, or does not define a usable model class."""


InvalidModelClassException = InvalidModelClassError


def load_model_class(
    model_file: bytes | str | os.PathLike,
    model_class: str,
    temp_mod_name: str | None = None,
) -> type[BaseModel]:
    """Imports a model file and returns its class named `model_class`.

    `model_file` is the file's content (bytes, as Rafiki passed it) or a path to it. The module
    is registered in `sys.modules` under a fresh name, so code in it that pickles its own
    classes works. Raises `InvalidModelClassError` saying what went wrong (an import error keeps
    the original exception as its `__cause__`).
    """
    mod_name = temp_mod_name or f"rafiki_model_{uuid.uuid4().hex}"
    if isinstance(model_file, (bytes, bytearray)):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"{mod_name}.py")
            with open(path, "wb") as f:
                f.write(model_file)
            return _import_class(path, mod_name, model_class)
    path = os.fspath(model_file)
    if not os.path.isfile(path):
        raise InvalidModelClassError(f"model file {path} does not exist")
    return _import_class(path, mod_name, model_class)


def _import_class(path: str, mod_name: str, model_class: str) -> type[BaseModel]:
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise InvalidModelClassError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        del sys.modules[mod_name]
        if isinstance(e, KeyboardInterrupt):
            raise
        raise InvalidModelClassError(
            f"importing the model file failed: {type(e).__name__}: {e}"
        ) from e
    clazz = getattr(module, model_class, None)
    if clazz is None:
        raise InvalidModelClassError(f"the model file defines no `{model_class}`")
    if not isinstance(clazz, type):
        raise InvalidModelClassError(f"`{model_class}` is a {type(clazz).__name__}, not a class")
    if not issubclass(clazz, BaseModel):
        raise InvalidModelClassError(
            f"`{model_class}` must subclass rafiki.model.BaseModel "
            "(`from rafiki.model import BaseModel`)"
        )
    return clazz


def parse_model_install_command(dependencies: dict[str, str], enable_gpu: bool = False) -> str:
    """The shell command that installs a model's `dependencies` ({package: version})."""
    commands = []
    for dep, ver in (dependencies or {}).items():
        if dep == ModelDependency.TENSORFLOW and enable_gpu:
            commands.append(f"pip install tensorflow-gpu=={ver}")
        elif dep == ModelDependency.SINGA:
            variant = "singa-gpu" if enable_gpu else "singa-cpu"
            commands.append(f"conda install -y -c nusdbsystem {variant}={ver}")
        else:
            commands.append(f"pip install {dep}=={ver}")
    return "; ".join(commands)


class ModelUtils:
    """Holds the global `logger` and `dataset` helpers."""

    def __init__(self):
        self.dataset = DatasetUtils()
        self.logger = LoggerUtils()


utils = ModelUtils()
logger = utils.logger
dataset = utils.dataset

__all__ = [
    "InvalidModelClassError",
    "InvalidModelClassException",
    "ModelUtils",
    "dataset",
    "deserialize_knob_config",
    "load_model_class",
    "logger",
    "parse_model_install_command",
    "serialize_knob_config",
    "utils",
]
