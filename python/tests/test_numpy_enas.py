"""The ENAS example model (examples/models/image_classification/NumpyEnas.py) with the SDK's dev
tooling, and its parameter sharing run the way ENAS's schedule runs it: a TRAIN trial, then
EVAL trials given the TRAIN trial's dumped parameters as `shared_params`."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import EXAMPLE_MODELS

from rafiki.constants import BudgetOption, TaskType
from rafiki.model import utils
from rafiki.model.dev import test_model_class, tune_model
from rafiki.model.knob import FixedKnob, PolicyKnob
from rafiki.params import decode_params, encode_params

PATH = EXAMPLE_MODELS / "image_classification" / "NumpyEnas.py"
ARCH = [0, "relu", 1, "tanh", 0, "identity", 2, "sigmoid"]


@pytest.fixture(scope="module")
def model_class():
    spec = importlib.util.spec_from_file_location("numpy_enas_example", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NumpyEnas


def knobs(model_class, arch=ARCH, **policies):
    """The knobs of a proposal: the fixed values, `arch`, and `policies` switched on."""
    config = model_class.get_knob_config()
    out = {k: v.value for (k, v) in config.items() if isinstance(v, FixedKnob)}
    out.update({k: bool(policies.get(k)) for (k, v) in config.items() if isinstance(v, PolicyKnob)})
    out["cell_archs"] = list(arch)
    return out


def through_the_wire(params):
    """Parameters as the next trial's worker receives them: encoded, stored, decoded."""
    return decode_params(encode_params(params))


def test_numpy_enas_passes_the_dev_tooling(example_datasets):
    paths = example_datasets[TaskType.IMAGE_CLASSIFICATION]
    val = utils.dataset.load_dataset_of_image_files(paths["val"], mode="RGB")
    (predictions, model) = test_model_class(
        model_file_path=str(PATH),
        model_class="NumpyEnas",
        task=TaskType.IMAGE_CLASSIFICATION,
        dependencies={},
        train_dataset_path=paths["train"],
        val_dataset_path=paths["val"],
        budget={BudgetOption.MODEL_TRIAL_COUNT: 3},
        queries=[val[i][0].tolist() for i in range(4)],
    )
    assert type(model).__name__ == "NumpyEnas"
    assert len(predictions) == 4 and all(len(p) == 10 for p in predictions)
    assert all(abs(sum(p) - 1) < 1e-6 for p in predictions)


def test_tuning_passes_shared_params_from_a_previous_dump(model_class, example_datasets, capsys):
    paths = example_datasets[TaskType.IMAGE_CLASSIFICATION]
    # Random knobs: some trials switch SHARE_PARAMS on and get the best trial's parameters.
    (best_knobs, best_score, best_params) = tune_model(
        model_class,
        paths["train"],
        paths["val"],
        budget={BudgetOption.MODEL_TRIAL_COUNT: 6},
        seed=3,
    )
    out = capsys.readouterr().out
    assert "Passing the best trial's parameters as `shared_params`" in out
    assert "shared weight arrays" in out
    assert best_score is not None and best_params is not None


def test_eval_trials_score_the_shared_parameters_a_train_trial_left(model_class, example_datasets):
    paths = example_datasets[TaskType.IMAGE_CLASSIFICATION]
    # TRAIN trials: one epoch each of the scaled-down network, each from the last one's dump.
    shared = None
    for arch in [ARCH, [0, "tanh", 0, "relu", 1, "relu", 3, "tanh"]] * 3:
        train = model_class(**knobs(model_class, arch, downscale=True, early_stop=True))
        train.train(paths["train"], shared_params=shared)
        shared = through_the_wire(train.dump_parameters())
    trained_score = model_class(**knobs(model_class, downscale=True, skip_train=True))
    trained_score.train(paths["train"], shared_params=shared)
    full_score = trained_score.evaluate(paths["val"])

    # An EVAL trial does not train: it scores the shared parameters as they are, on a quarter
    # of the validation set, and leaves them unchanged.
    evaluate = model_class(**knobs(model_class, downscale=True, skip_train=True, quick_eval=True))
    evaluate.train(paths["train"], shared_params=shared)
    quick = evaluate.evaluate(paths["val"])
    dumped = evaluate.dump_parameters()
    for key, value in shared.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(dumped[key], value), key
    assert quick > 0.5 and full_score > 0.5

    # Without the shared parameters the same EVAL trial scores an untrained network.
    fresh = model_class(**knobs(model_class, downscale=True, skip_train=True, quick_eval=True))
    fresh.train(paths["train"])
    assert fresh.evaluate(paths["val"]) < 0.3

    # Parameters of another shape (the full-size network) are not taken by a scaled-down one.
    full = model_class(**knobs(model_class, early_stop=True))
    full.train(paths["train"])
    mismatched = model_class(**knobs(model_class, downscale=True, skip_train=True))
    mismatched.train(paths["train"], shared_params=through_the_wire(full.dump_parameters()))
    assert mismatched.evaluate(paths["val"]) < 0.3


def test_final_train_trains_the_full_network_from_scratch(model_class, example_datasets):
    paths = example_datasets[TaskType.IMAGE_CLASSIFICATION]
    final = model_class(**knobs(model_class))
    final.train(paths["train"])
    assert final.evaluate(paths["val"]) > 0.85
    reloaded = model_class(**knobs(model_class))
    reloaded.load_parameters(through_the_wire(final.dump_parameters()))
    assert reloaded.evaluate(paths["val"]) == final.evaluate(paths["val"])
