"""Model files written for Rafiki import `rafiki.model` and must run here unchanged."""

from __future__ import annotations

import textwrap

import pytest

import rafiki.model
from rafiki.constants import ModelDependency, TaskType
from rafiki.model import BaseModel, InvalidModelClassError, load_model_class
from rafiki.model.dev import test_model_class

# A model in the style of Rafiki's examples: imports the SDK's names, sets its knobs as
# attributes without calling super().__init__, uses `utils.dataset` and `utils.logger`,
# supports a policy and saves a pickled classifier as base64 text.
RAFIKI_STYLE_MODEL = textwrap.dedent(
    """
    import base64
    import pickle

    import numpy as np
    from sklearn import tree

    from rafiki.constants import ModelDependency
    from rafiki.model import (BaseModel, CategoricalKnob, FixedKnob, FloatKnob, IntegerKnob,
                              PolicyKnob, utils, logger)
    from rafiki.model.dev import test_model_class


    class SkDecisionTree(BaseModel):
        '''A decision tree for IMAGE_CLASSIFICATION.'''

        @staticmethod
        def get_knob_config():
            return {
                'max_depth': IntegerKnob(2, 16),
                'criterion': CategoricalKnob(['gini', 'entropy']),
                'min_impurity_decrease': FloatKnob(1e-6, 1e-2, is_exp=True),
                'max_image_size': FixedKnob(8),
                'early_stop': PolicyKnob('EARLY_STOP'),
            }

        def __init__(self, **knobs):
            self.__dict__.update(knobs)
            self._clf = tree.DecisionTreeClassifier(
                max_depth=3 if self.early_stop else self.max_depth,
                criterion=self.criterion,
                min_impurity_decrease=self.min_impurity_decrease,
                random_state=0,
            )

        def train(self, dataset_path, **kwargs):
            dataset = utils.dataset.load_dataset_of_image_files(
                dataset_path, max_image_size=self.max_image_size, mode='L')
            self._image_size = dataset.image_size
            self._classes = dataset.classes
            (images, classes) = zip(*[(image, image_class) for (image, image_class) in dataset])
            X = self._prepare_X(images)
            self._clf.fit(X, classes)
            accuracy = sum(classes == self._clf.predict(X)) / len(classes)
            utils.logger.log('Train accuracy: {}'.format(accuracy))
            logger.log(accuracy=accuracy)

        def evaluate(self, dataset_path):
            dataset = utils.dataset.load_dataset_of_image_files(
                dataset_path, max_image_size=self.max_image_size, mode='L')
            (images, classes) = zip(*[(image, image_class) for (image, image_class) in dataset])
            preds = self._clf.predict(self._prepare_X(images))
            return sum(classes == preds) / len(classes)

        def predict(self, queries):
            queries = utils.dataset.transform_images(queries, image_size=self._image_size, mode='L')
            probs = np.zeros((len(queries), self._classes))
            probs[:, self._clf.classes_] = self._clf.predict_proba(self._prepare_X(queries))
            return probs.tolist()

        def destroy(self):
            pass

        def dump_parameters(self):
            params = {}
            params['clf_base64'] = base64.b64encode(pickle.dumps(self._clf)).decode('utf-8')
            params['image_size'] = self._image_size
            params['classes'] = self._classes
            return params

        def load_parameters(self, params):
            self._clf = pickle.loads(base64.b64decode(params['clf_base64'].encode('utf-8')))
            self._image_size = params['image_size']
            self._classes = params['classes']

        def _prepare_X(self, images):
            return [np.asarray(image).flatten() for image in images]


    if __name__ == '__main__':
        test_model_class(
            model_file_path=__file__,
            model_class='SkDecisionTree',
            task='IMAGE_CLASSIFICATION',
            dependencies={ModelDependency.SCIKIT_LEARN: '0.20.0'},
            train_dataset_path='data/train.zip',
            val_dataset_path='data/val.zip',
        )
    """
)


def test_every_name_of_the_sdk_is_exported():
    for name in [
        "BaseModel",
        "Params",
        "Knobs",
        "KnobConfig",
        "utils",
        "logger",
        "dataset",
        "load_model_class",
        "DatasetUtils",
        "LoggerUtils",
        "ImageFilesDataset",
        "CorpusDataset",
        "FixedKnob",
        "CategoricalKnob",
        "IntegerKnob",
        "FloatKnob",
        "PolicyKnob",
        "ArchKnob",
        "KnobValue",
        "serialize_knob_config",
        "deserialize_knob_config",
    ]:
        assert hasattr(rafiki.model, name), name
    assert rafiki.model.utils.dataset is rafiki.model.dataset
    assert rafiki.model.utils.logger is rafiki.model.logger
    assert isinstance(rafiki.model.dataset, rafiki.model.DatasetUtils)
    assert isinstance(rafiki.model.logger, rafiki.model.LoggerUtils)


def test_a_rafiki_style_model_file_runs_unchanged(tmp_path, example_datasets):
    model_file = tmp_path / "SkDecisionTree.py"
    model_file.write_text(RAFIKI_STYLE_MODEL)
    paths = example_datasets[TaskType.IMAGE_CLASSIFICATION]
    queries = [[[[0, 0, 0]] * 8] * 8]
    (predictions, model) = test_model_class(
        model_file_path=str(model_file),
        model_class="SkDecisionTree",
        task=TaskType.IMAGE_CLASSIFICATION,
        dependencies={ModelDependency.SCIKIT_LEARN: "0.20.0"},
        train_dataset_path=paths["train"],
        val_dataset_path=paths["val"],
        queries=queries,
    )
    assert len(predictions) == 1 and len(predictions[0]) == 10
    # The knobs are sampled at random: a depth-2 tree falls short of 0.5 now and then on ten
    # classes, but always beats chance (0.1) by far.
    assert model.evaluate(paths["val"]) > 0.2


def test_load_model_class_from_bytes_and_from_a_path(tmp_path):
    source = b"from rafiki.model import BaseModel\nclass M(BaseModel):\n    pass\n"
    clazz = load_model_class(source, "M")
    assert issubclass(clazz, BaseModel) and clazz.__name__ == "M"
    path = tmp_path / "m.py"
    path.write_bytes(source)
    other = load_model_class(str(path), "M")
    assert other is not clazz and other.__name__ == "M"
    # Each load is its own module, registered so that pickling its classes works.
    assert clazz.__module__ != other.__module__


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        (b"def f(:\n", "SyntaxError"),
        (b"raise RuntimeError('boom')", "RuntimeError: boom"),
        (b"M = 3", "`M` is a int, not a class"),
        (b"class M:\n    pass\n", "must subclass rafiki.model.BaseModel"),
        (b"pass", "defines no `M`"),
    ],
)
def test_load_model_class_says_what_is_wrong(source, fragment):
    with pytest.raises(InvalidModelClassError) as info:
        load_model_class(source, "M")
    assert fragment in str(info.value)


def test_a_missing_model_file_is_reported(tmp_path):
    with pytest.raises(InvalidModelClassError, match="does not exist"):
        load_model_class(str(tmp_path / "nope.py"), "M")
