"""Shared fixtures: the example datasets (built once per session) and paths into the repo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
EXAMPLE_MODELS = EXAMPLES / "models"

# The fixtures that start a real admin (`admin_url`, `superadmin`).
pytest_plugins = ["live_admin"]


def load_builders():
    """The example dataset builders (examples/datasets/build_datasets.py) as a module."""
    path = EXAMPLES / "datasets" / "build_datasets.py"
    spec = importlib.util.spec_from_file_location("rafiki_example_builders", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def builders():
    return load_builders()


@pytest.fixture(scope="session")
def example_datasets(tmp_path_factory, builders):
    """task -> {'train': path, 'val': path} for every example dataset."""
    out = tmp_path_factory.mktemp("example_datasets")
    return builders.build_all(str(out))
