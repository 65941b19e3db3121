"""`rafiki.model.dev.test_model_class` on every example model and on broken ones."""

from __future__ import annotations

import csv
import textwrap

import numpy as np
import pytest
from conftest import EXAMPLE_MODELS

from rafiki.constants import BudgetOption, ModelDependency, TaskType
from rafiki.model import utils
from rafiki.model.dev import ModelTestError, test_model_class


def first_rows(path, n):
    with open(path, newline="") as f:
        return [row for (_, row) in zip(range(n), csv.DictReader(f))]


def test_image_classification_example(example_datasets):
    paths = example_datasets[TaskType.IMAGE_CLASSIFICATION]
    val = utils.dataset.load_dataset_of_image_files(paths["val"], mode="RGB")
    queries = [val[i][0].tolist() for i in range(5)]
    (predictions, model) = test_model_class(
        model_file_path=str(EXAMPLE_MODELS / "image_classification" / "SkLogRegImage.py"),
        model_class="SkLogRegImage",
        task=TaskType.IMAGE_CLASSIFICATION,
        dependencies={ModelDependency.SCIKIT_LEARN: "1.3.0"},
        train_dataset_path=paths["train"],
        val_dataset_path=paths["val"],
        budget={BudgetOption.MODEL_TRIAL_COUNT: 2},
        queries=queries,
    )
    assert type(model).__name__ == "SkLogRegImage"
    assert len(predictions) == 5 and all(len(p) == 10 for p in predictions)
    assert all(abs(sum(p) - 1) < 1e-6 for p in predictions)
    right = sum(int(np.argmax(p) == val[i][1]) for (i, p) in enumerate(predictions))
    assert right >= 4
    assert model.evaluate(paths["val"]) > 0.85


@pytest.mark.parametrize(
    ("task", "path", "class_name"),
    [
        (TaskType.TABULAR_CLASSIFICATION, "tabular_classification/SkMlpClf.py", "SkMlpClf"),
        (TaskType.TABULAR_REGRESSION, "tabular_regression/SkRidgeReg.py", "SkRidgeReg"),
    ],
)
def test_tabular_examples(example_datasets, task, path, class_name):
    paths = example_datasets[task]
    rows = first_rows(paths["val"], 4)
    features = [c for c in rows[0] if c != "target"]
    queries = [{f: float(r[f]) for f in features} for r in rows]
    (predictions, model) = test_model_class(
        model_file_path=str(EXAMPLE_MODELS / path),
        model_class=class_name,
        task=task,
        dependencies={ModelDependency.SCIKIT_LEARN: "1.3.0"},
        train_dataset_path=paths["train"],
        val_dataset_path=paths["val"],
        train_args={"features": features, "target": "target"},
        budget={BudgetOption.MODEL_TRIAL_COUNT: 3},
        queries=queries,
    )
    assert type(model).__name__ == class_name and len(predictions) == 4
    if task == TaskType.TABULAR_CLASSIFICATION:
        assert all(len(p) == 3 and abs(sum(p) - 1) < 1e-6 for p in predictions)
        labels = [int(r["target"]) for r in rows]
        assert sum(int(np.argmax(p) == y) for (p, y) in zip(predictions, labels)) >= 3
    else:
        assert all(isinstance(p, float) for p in predictions)


def test_pos_tagging_example(example_datasets):
    paths = example_datasets[TaskType.POS_TAGGING]
    queries = [["The", "dog", "sees", "a", "park", "."], ["they", "run", "quickly", "!"]]
    (predictions, model) = test_model_class(
        model_file_path=str(EXAMPLE_MODELS / "pos_tagging" / "BigramHmm.py"),
        model_class="BigramHmm",
        task=TaskType.POS_TAGGING,
        dependencies={},
        train_dataset_path=paths["train"],
        val_dataset_path=paths["val"],
        queries=queries,
    )
    # DET NOUN VERB DET NOUN PUNCT / PRON VERB ADV PUNCT
    assert predictions == [[0, 1, 2, 0, 1, 7], [5, 2, 4, 7]]
    assert model.evaluate(paths["val"]) > 0.9


def test_the_budget_sets_how_many_trials_run(example_datasets, capsys):
    paths = example_datasets[TaskType.POS_TAGGING]
    model_file = str(EXAMPLE_MODELS / "pos_tagging" / "BigramHmm.py")

    def trials(budget):
        capsys.readouterr()
        test_model_class(
            model_file,
            "BigramHmm",
            TaskType.POS_TAGGING,
            {},
            paths["train"],
            paths["val"],
            budget=budget,
        )
        return capsys.readouterr().out.count("----- Trial #")

    assert trials(None) == 2
    assert trials({BudgetOption.MODEL_TRIAL_COUNT: 3}) == 3
    # The admin's worker counts are accepted and change nothing here: trials run one at a time.
    assert trials({BudgetOption.MODEL_TRIAL_COUNT: 3, "CPU_WORKERS_PER_MODEL": 4}) == 3
    # A time budget is soft: the first trial always runs, then the spent budget stops the rest.
    assert trials({BudgetOption.TIME_HOURS: 1e-9}) == 1


BASE = textwrap.dedent(
    """
    import json

    import numpy as np

    from rafiki.model import BaseModel, CategoricalKnob, FixedKnob, IntegerKnob, logger


    class Tiny(BaseModel):
        @staticmethod
        def get_knob_config():
            return {"scale": IntegerKnob(1, 3), "kind": CategoricalKnob(["a", "b"])}

        def __init__(self, **knobs):
            super().__init__(**knobs)
            self.scale = knobs["scale"]

        def train(self, dataset_path, shared_params=None, **train_args):
            with open(dataset_path) as f:
                self.total = sum(int(x) for x in f.read().split())
            logger.log("trained", total=self.total)

        def evaluate(self, dataset_path):
            return 1.0 / (1 + self.scale)

        def predict(self, queries):
            return [[0.25, 0.75] for _ in queries]

        def dump_parameters(self):
            return {"total": self.total, "w": np.ones(2)}

        def load_parameters(self, params):
            self.total = params["total"]
    """
)

BROKEN = {
    "syntax": ("def oops(:\n", "loading the model class", "SyntaxError"),
    "import": ("import no_such_module_for_rafiki\n", "loading the model class", "No module"),
    "no_class": ("X = 1\n", "loading the model class", "defines no `Tiny`"),
    "not_static": (
        BASE.replace(
            "    @staticmethod\n    def get_knob_config():", "    def get_knob_config(self):"
        ),
        "model class",
        "must be a @staticmethod",
    ),
    "abstract": (
        BASE.replace("    def predict(self, queries):", "    def _predict(self, queries):"),
        "model class",
        "does not implement predict()",
    ),
    "bad_knobs": (
        BASE.replace('"scale": IntegerKnob(1, 3)', '"scale": 3'),
        "Tiny.get_knob_config()",
        "knob `scale` must be a knob",
    ),
    "init_raises": (
        BASE.replace('self.scale = knobs["scale"]', 'self.scale = knobs["size"]'),
        "Tiny(**knobs)",
        "raised KeyError: 'size'",
    ),
    "train_raises": (
        BASE.replace("int(x) for", "float(x) / 0 for"),
        "Tiny.train()",
        "raised ZeroDivisionError: float division by zero (at ",
    ),
    "str_score": (
        BASE.replace("return 1.0 / (1 + self.scale)", 'return "good"'),
        "Tiny.evaluate()",
        "must return a float score, got str",
    ),
    "nested_params": (
        BASE.replace('"w": np.ones(2)}', '"w": {"a": 1}}'),
        "Tiny.dump_parameters()",
        "cannot be saved: parameter 'w': values of type dict",
    ),
    "wrong_count": (
        BASE.replace("for _ in queries]", "for _ in queries[1:]]"),
        "Tiny.predict()",
        "got 1 predictions for 2 queries",
    ),
    "not_json": (
        BASE.replace("[[0.25, 0.75] for _ in queries]", "[{0.25} for _ in queries]"),
        "Tiny.predict()",
        "prediction #0 is a set",
    ),
    "label_not_probabilities": (
        BASE.replace("[[0.25, 0.75] for _ in queries]", "[1 for _ in queries]"),
        "predict()",
        "must be a list of class probabilities",
    ),
    "forgets_state": (
        BASE.replace(
            "return 1.0 / (1 + self.scale)", "return 1.0 / (1 + self.scale + 0 * self.total)"
        ).replace('self.total = params["total"]', "pass"),
        "Tiny.evaluate() after load_parameters()",
        "raised AttributeError",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_models_are_reported_exactly(tmp_path, case):
    (source, step, fragment) = BROKEN[case]
    model_file = tmp_path / "tiny.py"
    model_file.write_text(source)
    data = tmp_path / "data.txt"
    data.write_text("1 2 3")
    with pytest.raises(ModelTestError) as info:
        test_model_class(
            str(model_file),
            "Tiny",
            TaskType.IMAGE_CLASSIFICATION,
            {},
            str(data),
            str(data),
            queries=[[[0]], [[1]]],
        )
    assert info.value.step == step
    assert fragment in str(info.value)


def test_the_working_tiny_model_passes(tmp_path):
    model_file = tmp_path / "tiny.py"
    model_file.write_text(BASE)
    data = tmp_path / "data.txt"
    data.write_text("1 2 3")
    (predictions, model) = test_model_class(
        str(model_file),
        "Tiny",
        TaskType.IMAGE_CLASSIFICATION,
        None,
        str(data),
        str(data),
        queries=[[[0]]],
    )
    assert predictions == [[0.25, 0.75]] and model.total == 6


def test_a_traceback_line_points_into_the_model_file(tmp_path):
    model_file = tmp_path / "tiny.py"
    model_file.write_text(BROKEN["train_raises"][0])
    data = tmp_path / "data.txt"
    data.write_text("1")
    with pytest.raises(ModelTestError) as info:
        test_model_class(str(model_file), "Tiny", "ANY", {}, str(data), str(data))
    assert f"{model_file}:" in str(info.value)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    ("kwargs", "step", "fragment"),
    [
        ({"dependencies": ["scikit-learn"]}, "dependencies", "must be a dict"),
        ({"budget": {"GPUS": 1}}, "budget", "unknown budget option(s) GPUS"),
        ({"budget": {"MODEL_TRIAL_COUNT": 0}}, "budget", "positive int or -1"),
        ({"train_args": {"x": object()}}, "train_args", "JSON-serialisable"),
    ],
)
def test_bad_arguments_to_test_model_class(tmp_path, kwargs, step, fragment):
    model_file = tmp_path / "tiny.py"
    model_file.write_text(BASE)
    data = tmp_path / "data.txt"
    data.write_text("1")
    args = {"dependencies": {}, **kwargs}
    with pytest.raises(ModelTestError) as info:
        test_model_class(
            str(model_file),
            "Tiny",
            "ANY",
            train_dataset_path=str(data),
            val_dataset_path=str(data),
            **args,
        )
    assert info.value.step == step and fragment in str(info.value)


def test_pos_predictions_must_tag_every_token(tmp_path):
    source = BASE.replace("[[0.25, 0.75] for _ in queries]", "[[0] for _ in queries]")
    model_file = tmp_path / "tiny.py"
    model_file.write_text(source)
    data = tmp_path / "data.txt"
    data.write_text("1")
    with pytest.raises(ModelTestError, match="has 1 tags for 3 tokens"):
        test_model_class(
            str(model_file),
            "Tiny",
            TaskType.POS_TAGGING,
            {},
            str(data),
            str(data),
            queries=[["a", "b", "c"]],
        )
