from rafiki.constants import (
    BudgetOption,
    InferenceBudgetOption,
    InferenceJobStatus,
    ModelAccessRight,
    ModelDependency,
    ServiceStatus,
    ServiceType,
    TaskType,
    TrainJobStatus,
    TrialStatus,
    UserType,
)


def values(cls):
    return {k: v for (k, v) in vars(cls).items() if not k.startswith("_")}


def test_enums_have_rafikis_names_as_their_values():
    for cls in (
        UserType,
        BudgetOption,
        InferenceBudgetOption,
        ModelAccessRight,
        TrainJobStatus,
        InferenceJobStatus,
        TrialStatus,
        ServiceType,
        ServiceStatus,
        TaskType,
    ):
        assert values(cls), cls
        assert all(k == v for (k, v) in values(cls).items()), cls


def test_enum_members_match_the_contract():
    assert set(values(UserType)) == {"SUPERADMIN", "ADMIN", "MODEL_DEVELOPER", "APP_DEVELOPER"}
    assert set(values(BudgetOption)) == {"GPU_COUNT", "TIME_HOURS", "MODEL_TRIAL_COUNT"}
    assert set(values(InferenceBudgetOption)) == {"GPU_COUNT"}
    assert set(values(ModelAccessRight)) == {"PUBLIC", "PRIVATE"}
    jobs = {"STARTED", "RUNNING", "STOPPED", "ERRORED"}
    assert set(values(TrainJobStatus)) == jobs
    assert set(values(InferenceJobStatus)) == jobs
    assert set(values(TrialStatus)) == {"PENDING", "RUNNING", "COMPLETED", "ERRORED"}
    assert set(values(ServiceType)) == {"TRAIN", "ADVISOR", "PREDICT", "INFERENCE"}
    assert set(values(ServiceStatus)) == {"STARTED", "DEPLOYING", "RUNNING", "ERRORED", "STOPPED"}
    assert set(values(TaskType)) == {
        "IMAGE_CLASSIFICATION",
        "POS_TAGGING",
        "TABULAR_CLASSIFICATION",
        "TABULAR_REGRESSION",
        "SPEECH_RECOGNITION",
    }


def test_model_dependencies_are_package_names():
    assert values(ModelDependency) == {
        "TENSORFLOW": "tensorflow",
        "KERAS": "Keras",
        "SCIKIT_LEARN": "scikit-learn",
        "TORCH": "torch",
        "TORCHVISION": "torchvision",
        "SINGA": "singa",
        "XGBOOST": "xgboost",
        "DS_CTCDECODER": "ds-ctcdecoder",
    }
