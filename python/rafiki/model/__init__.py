"""The Rafiki model SDK: what a model file imports (SDK.md).

::

    from rafiki.model import BaseModel, IntegerKnob, FloatKnob, CategoricalKnob, FixedKnob, \\
        PolicyKnob, utils, logger
"""

from .checks import InvalidReturnError
from .dataset import (
    AudioFilesDataset,
    CorpusDataset,
    DatasetTooLargeError,
    DatasetUtils,
    ImageFilesDataset,
    InvalidDatasetFormatException,
    ModelDataset,
    TabularDataset,
    UnsafeArchiveError,
    safe_extract_zip,
)
from .knob import (
    POLICIES,
    ArchKnob,
    BaseKnob,
    CategoricalKnob,
    CategoricalValue,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    InvalidKnobError,
    KnobValue,
    PolicyKnob,
    deserialize_knob_config,
    knob_config_to_json,
    serialize_knob_config,
)
from .log import LoggerUtils, LogType, TrialPruned
from .model import BaseModel, KnobConfig, Knobs, Params
from .utils import (
    InvalidModelClassError,
    InvalidModelClassException,
    ModelUtils,
    dataset,
    load_model_class,
    logger,
    parse_model_install_command,
    utils,
)

__all__ = [
    "POLICIES",
    "ArchKnob",
    "AudioFilesDataset",
    "BaseKnob",
    "BaseModel",
    "CategoricalKnob",
    "CategoricalValue",
    "CorpusDataset",
    "DatasetTooLargeError",
    "DatasetUtils",
    "FixedKnob",
    "FloatKnob",
    "ImageFilesDataset",
    "IntegerKnob",
    "InvalidDatasetFormatException",
    "InvalidKnobError",
    "InvalidModelClassError",
    "InvalidModelClassException",
    "InvalidReturnError",
    "KnobConfig",
    "KnobValue",
    "Knobs",
    "LogType",
    "LoggerUtils",
    "TrialPruned",
    "ModelDataset",
    "ModelUtils",
    "Params",
    "PolicyKnob",
    "TabularDataset",
    "UnsafeArchiveError",
    "dataset",
    "deserialize_knob_config",
    "knob_config_to_json",
    "load_model_class",
    "logger",
    "parse_model_install_command",
    "safe_extract_zip",
    "serialize_knob_config",
    "utils",
]
