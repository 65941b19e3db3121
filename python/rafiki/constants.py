"""Constants shared by the SDK, the client and the server (CONTRACT.md section 6).

Each is a plain class with string attributes, as in Rafiki, so `UserType.ADMIN == 'ADMIN'` and the
values can be sent on the wire as they are.
"""

from typing import Any


class UserType:
    SUPERADMIN = "SUPERADMIN"
    ADMIN = "ADMIN"
    MODEL_DEVELOPER = "MODEL_DEVELOPER"
    APP_DEVELOPER = "APP_DEVELOPER"


class BudgetOption:
    GPU_COUNT = "GPU_COUNT"
    TIME_HOURS = "TIME_HOURS"
    MODEL_TRIAL_COUNT = "MODEL_TRIAL_COUNT"


Budget = dict[str, Any]


class InferenceBudgetOption:
    GPU_COUNT = "GPU_COUNT"


InferenceBudget = dict[str, Any]

# Package name -> version, e.g. {ModelDependency.SCIKIT_LEARN: '1.3.0'}.
ModelDependencies = dict[str, str]


class ModelAccessRight:
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


class TrainJobStatus:
    STARTED = "STARTED"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    ERRORED = "ERRORED"


class InferenceJobStatus:
    STARTED = "STARTED"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    ERRORED = "ERRORED"


class TrialStatus:
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"


class ServiceType:
    TRAIN = "TRAIN"
    ADVISOR = "ADVISOR"
    PREDICT = "PREDICT"
    INFERENCE = "INFERENCE"


class ServiceStatus:
    STARTED = "STARTED"
    DEPLOYING = "DEPLOYING"
    RUNNING = "RUNNING"
    ERRORED = "ERRORED"
    STOPPED = "STOPPED"


class ModelDependency:
    """Package names used as keys of a model's `dependencies`."""

    TENSORFLOW = "tensorflow"
    KERAS = "Keras"
    SCIKIT_LEARN = "scikit-learn"
    TORCH = "torch"
    TORCHVISION = "torchvision"
    SINGA = "singa"
    XGBOOST = "xgboost"
    DS_CTCDECODER = "ds-ctcdecoder"


class TaskType:
    """The documented tasks (SDK.md "Task formats"); tasks are free strings on the wire."""

    IMAGE_CLASSIFICATION = "IMAGE_CLASSIFICATION"
    POS_TAGGING = "POS_TAGGING"
    TABULAR_CLASSIFICATION = "TABULAR_CLASSIFICATION"
    TABULAR_REGRESSION = "TABULAR_REGRESSION"
    SPEECH_RECOGNITION = "SPEECH_RECOGNITION"
