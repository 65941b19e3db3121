"""The Python client against the real Rust admin (`rafiki-admin --dev`) on a fresh database.

Needs the admin binary (env `RAFIKI_ADMIN_BIN`, else `target/debug/rafiki-admin`), a Postgres
server URL in `RAFIKI_TEST_DATABASE_URL` (a fresh database is created on it and dropped
afterwards) and `psql`; the tests skip, saying which is missing, without them. Routes the admin
build does not serve yet (it answers `NotFoundError` "No such route.") skip their tests. The
admin comes from the fixtures of live_admin.py.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import requests
from conftest import EXAMPLE_MODELS, REPO_ROOT
from live_admin import SUPERADMIN, admin_binary, client_for, new_user, unique_email, wait_for

from rafiki.client import RafikiError
from rafiki.constants import ModelAccessRight, TaskType, UserType


def served(call):
    """Runs `call`; skips the test when the admin does not serve that route yet."""
    try:
        return call()
    except RafikiError as e:
        if e.status_code in (404, 405) and (e.error in ("NotFoundError", "HTTP404", "HTTP405")):
            if e.error != "NotFoundError" or "route" in e.message.lower():
                pytest.skip(f"this admin build does not serve the route yet ({e})")
        raise


def test_the_admin_is_up(admin_url):
    res = requests.get(admin_url + "/")
    assert res.status_code == 200 and res.text.strip() == "Rafiki Admin is up."


def test_superadmin_logs_in(admin_url):
    client = client_for(admin_url)
    user = client.login(*SUPERADMIN)
    assert user["user_type"] == UserType.SUPERADMIN
    assert client.get_current_user() == user
    uuid.UUID(user["id"])
    client.logout()
    assert client.get_current_user() is None


def test_wrong_credentials_are_refused_by_name(admin_url):
    client = client_for(admin_url)
    with pytest.raises(RafikiError) as info:
        client.login(SUPERADMIN[0], "not-the-password")
    assert info.value.error == "InvalidPasswordError" and info.value.status_code == 401
    with pytest.raises(RafikiError) as info:
        client.login(unique_email(), "whatever-password")
    assert info.value.error == "InvalidUserError" and info.value.status_code in (400, 404)
    assert client.get_current_user() is None


def test_calls_without_a_token_are_refused(admin_url):
    client = client_for(admin_url)
    with pytest.raises(RafikiError) as info:
        client.get_users()
    assert info.value.error in ("UnauthorizedError", "InvalidAuthorizationHeaderError")
    assert info.value.status_code == 401
    client._token = "not-a-jwt"
    with pytest.raises(RafikiError) as info:
        client.get_users()
    assert info.value.error in ("UnauthorizedError", "InvalidAuthorizationHeaderError")


def test_users_are_created_listed_and_banned(superadmin, admin_url):
    email = unique_email("dev")
    created = superadmin.create_user(email, "a-good-password", UserType.MODEL_DEVELOPER)
    assert created["email"] == email and created["user_type"] == UserType.MODEL_DEVELOPER
    listed = {u["email"]: u for u in superadmin.get_users()}
    assert listed[email]["id"] == created["id"] and listed[email]["banned_date"] is None
    assert listed[SUPERADMIN[0]]["user_type"] == UserType.SUPERADMIN

    dev = client_for(admin_url)
    assert dev.login(email, "a-good-password") == {
        "id": created["id"],
        "user_type": UserType.MODEL_DEVELOPER,
    }

    banned = superadmin.ban_user(email)
    assert banned["id"] == created["id"] and banned["banned_date"] is not None
    with pytest.raises(RafikiError) as info:
        superadmin.ban_user(email)
    assert info.value.error == "UserAlreadyBannedError" and info.value.status_code == 409
    with pytest.raises(RafikiError) as info:
        client_for(admin_url).login(email, "a-good-password")
    assert info.value.status_code in (401, 403)


def test_a_banned_users_token_stops_working(superadmin, admin_url):
    (client, email) = new_user(superadmin, admin_url, UserType.ADMIN)
    client.get_users()
    superadmin.ban_user(email)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.get_users()
        except RafikiError as e:
            assert e.error == "UnauthorizedError" and e.status_code in (401, 403)
            break
        assert time.monotonic() < deadline, "the banned user's token still works after 15s"
        time.sleep(0.1)


def test_user_errors_carry_the_contracts_names(superadmin):
    email = unique_email()
    superadmin.create_user(email, "a-good-password", UserType.APP_DEVELOPER)
    with pytest.raises(RafikiError) as info:
        superadmin.create_user(email, "a-good-password", UserType.APP_DEVELOPER)
    assert info.value.error == "UserExistsError" and info.value.status_code == 409
    with pytest.raises(RafikiError) as info:
        superadmin.create_user(unique_email(), "a-good-password", "WIZARD")
    assert info.value.error == "InvalidUserTypeError" and info.value.status_code == 400
    with pytest.raises(RafikiError) as info:
        superadmin.ban_user(unique_email())
    assert info.value.error == "InvalidUserError"


def test_role_rules_for_users(superadmin, admin_url):
    (dev, _) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    with pytest.raises(RafikiError) as info:
        dev.get_users()
    assert info.value.error == "UnauthorizedError" and info.value.status_code in (401, 403)
    (admin, _) = new_user(superadmin, admin_url, UserType.ADMIN)
    assert any(u["email"] == SUPERADMIN[0] for u in admin.get_users())
    with pytest.raises(RafikiError) as info:
        admin.create_user(unique_email(), "a-good-password", UserType.ADMIN)
    assert info.value.error == "UnauthorizedError"
    with pytest.raises(RafikiError) as info:
        superadmin.ban_user(SUPERADMIN[0])
    assert info.value.status_code in (400, 401, 403)


def test_the_audit_trail_says_who_did_what(superadmin, admin_url):
    email = unique_email("audited")
    created = superadmin.create_user(email, "a-good-password", UserType.APP_DEVELOPER)
    dev = client_for(admin_url)
    dev.login(email, "a-good-password")
    events = served(lambda: superadmin.get_audit_events(actor=created["id"]))
    assert [e["action"] for e in events] == ["login"]
    assert events[0]["outcome"] == "OK" and events[0]["target_id"] == email
    assert "a-good-password" not in str(events)
    creations = superadmin.get_audit_events(action="user.create", limit=50)
    assert any(e["target_id"] == created["id"] for e in creations)
    assert superadmin.get_audit_events(since="2999-01-01T00:00:00Z") == []
    with pytest.raises(RafikiError) as info:
        dev.get_audit_events()
    assert info.value.error == "UnauthorizedError" and info.value.status_code == 403
    with pytest.raises(RafikiError) as info:
        superadmin.get_audit_events(since="yesterday")
    assert info.value.error == "InvalidRequestError" and "since" in info.value.message


def test_datasets(superadmin, admin_url, example_datasets):
    (dev, _) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    path = example_datasets[TaskType.TABULAR_REGRESSION]["train"]
    created = served(lambda: dev.create_dataset("diabetes", TaskType.TABULAR_REGRESSION, path))
    assert created["name"] == "diabetes" and created["task"] == TaskType.TABULAR_REGRESSION
    assert created["size_bytes"] == os.path.getsize(path)
    mine = dev.get_datasets()
    assert [d["id"] for d in mine] == [created["id"]]
    assert dev.get_datasets(task=TaskType.POS_TAGGING) == []
    (other, _) = new_user(superadmin, admin_url, UserType.APP_DEVELOPER)
    assert other.get_datasets() == []


def test_models(superadmin, admin_url, tmp_path):
    (dev, _) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    model_file = EXAMPLE_MODELS / "pos_tagging" / "BigramHmm.py"
    created = served(
        lambda: dev.create_model("hmm", TaskType.POS_TAGGING, str(model_file), "BigramHmm")
    )
    assert created["name"] == "hmm"
    model = dev.get_model(created["id"])
    assert model["model_class"] == "BigramHmm" and model["task"] == TaskType.POS_TAGGING
    assert model["access_right"] == ModelAccessRight.PRIVATE and model["dependencies"] == {}
    out = tmp_path / "downloaded.py"
    assert dev.download_model_file(created["id"], str(out))["id"] == created["id"]
    assert out.read_bytes() == model_file.read_bytes()
    assert [m["id"] for m in dev.get_available_models(TaskType.POS_TAGGING)] == [created["id"]]
    with pytest.raises(RafikiError) as info:
        dev.create_model("hmm", TaskType.POS_TAGGING, str(model_file), "BigramHmm")
    assert info.value.error == "DuplicateModelNameError"
    broken = tmp_path / "broken.py"
    broken.write_text("class Broken(:\n")
    with pytest.raises(RafikiError) as info:
        dev.create_model("broken", TaskType.POS_TAGGING, str(broken), "Broken")
    assert info.value.error == "InvalidModelError"
    assert dev.delete_model(created["id"])["id"] == created["id"]
    assert dev.get_available_models() == []


def test_train_load_deploy_and_predict(superadmin, admin_url, example_datasets):
    """The whole flow through Rafiki's client: train an example model with real workers, read
    its trials, load the best one in Python, deploy it and predict through predictor_host."""
    if not os.environ.get("RAFIKI_PYTHON"):
        pytest.skip("RAFIKI_PYTHON (the interpreter workers run models with) is not set")
    (dev, _) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    task = TaskType.TABULAR_CLASSIFICATION
    paths = example_datasets[task]
    train = dev.create_dataset("wine-train", task, paths["train"])
    val = dev.create_dataset("wine-val", task, paths["val"])
    model_file = EXAMPLE_MODELS / "tabular_classification" / "SkMlpClf.py"
    model = dev.create_model("mlp", task, str(model_file), "SkMlpClf")
    created = dev.create_train_job(
        "wine",
        task,
        train["id"],
        val["id"],
        budget={"MODEL_TRIAL_COUNT": 2},
        models=[model["id"]],
        train_args={"target": "target"},
    )
    assert created["app_version"] == 1
    job = wait_for(
        lambda: dev.get_train_job("wine"), lambda j: j["status"] not in ("STARTED", "RUNNING")
    )
    assert job["status"] == "STOPPED", job
    assert [j["id"] for j in dev.get_train_jobs_of_app("wine")] == [created["id"]]
    trials = dev.get_trials_of_train_job("wine")
    assert len(trials) == 2 and all(t["status"] == "COMPLETED" for t in trials)
    best = dev.get_best_trials_of_train_job("wine", max_count=1)
    assert len(best) == 1 and best[0]["score"] == max(t["score"] for t in trials)
    trial_id = best[0]["id"]
    assert dev.get_trial(trial_id)["model_name"] == "mlp"
    logs = dev.get_trial_logs(trial_id)
    assert set(logs) >= {"plots", "metrics", "messages"}
    params = dev.get_trial_parameters(trial_id)
    assert "w0" in params and params["w0"].ndim == 2

    import importlib.util

    spec = importlib.util.spec_from_file_location("SkMlpClf", model_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded = dev.load_trial_model(trial_id, module.SkMlpClf)
    with open(paths["val"]) as f:
        header = f.readline().strip().split(",")
        row = f.readline().strip().split(",")
    query = {k: float(v) for (k, v) in zip(header, row) if k != "target"}
    [probs] = loaded.predict([query])
    assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-6

    predictor = os.path.join(os.path.dirname(admin_binary()), "rafiki-predictor")
    if not os.path.isfile(predictor):
        pytest.skip("the rafiki-predictor binary is not built next to the admin")
    deployed = dev.create_inference_job("wine")
    host = deployed["predictor_host"]
    with pytest.raises(RafikiError) as info:
        dev.create_inference_job("wine")
    assert info.value.error == "RunningInferenceJobExistsError"
    wait_for(lambda: dev.get_running_inference_job("wine"), lambda j: j["status"] == "RUNNING")
    answer = requests.post(f"http://{host}/predict", json={"query": query}, timeout=30).json()
    assert len(answer["prediction"]) == 3
    assert abs(sum(answer["prediction"]) - 1) < 1e-6
    stopped = dev.stop_inference_job("wine")
    assert stopped["id"] == deployed["id"]
    with pytest.raises(RafikiError) as info:
        dev.get_running_inference_job("wine")
    assert info.value.error == "InvalidRunningInferenceJobError"
    assert [j["status"] for j in dev.get_inference_jobs_of_app("wine")] == ["STOPPED"]


def test_json_objects_keep_their_key_order_end_to_end(superadmin, admin_url, tmp_path):
    """train_args, knobs, queries and predictions reach the model and come back with their keys
    in the order they were written (tests/models/KeyOrder.py reports what it got)."""
    if not os.environ.get("RAFIKI_PYTHON"):
        pytest.skip("RAFIKI_PYTHON (the interpreter workers run models with) is not set")
    (dev, _) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    (train_path, val_path) = (tmp_path / "train.txt", tmp_path / "val.txt")
    train_path.write_text("a")
    val_path.write_text("b")
    train = dev.create_dataset("order-train", "ANY", str(train_path))
    val = dev.create_dataset("order-val", "ANY", str(val_path))
    model_file = REPO_ROOT / "tests" / "models" / "KeyOrder.py"
    model = dev.create_model("keys", "ANY", str(model_file), "KeyOrder")
    dev.create_train_job(
        "order",
        "ANY",
        train["id"],
        val["id"],
        budget={"MODEL_TRIAL_COUNT": 1},
        models=[model["id"]],
        train_args={"zz": 1, "aa": 2, "mm": 3},
    )
    job = wait_for(
        lambda: dev.get_train_job("order"), lambda j: j["status"] not in ("STARTED", "RUNNING")
    )
    assert job["status"] == "STOPPED", job
    # json.loads keeps the order of the text, so a dict's key list is the order on the wire.
    assert list(job["train_args"]) == ["zz", "aa", "mm"]
    [trial] = dev.get_trials_of_train_job("order")
    assert list(trial["proposal"]["knobs"]) == ["zeta", "alpha", "mid"]
    logs = dev.get_trial_logs(trial["id"])
    messages = [m["message"] for m in logs["messages"]]
    assert 'knobs ["zeta", "alpha", "mid"]' in messages, messages
    assert 'train_args ["zz", "aa", "mm"]' in messages, messages
    assert [list(m) for m in logs["metrics"]] == [["time", "zz", "aa", "mm"]]

    predictor = os.path.join(os.path.dirname(admin_binary()), "rafiki-predictor")
    if not os.path.isfile(predictor):
        pytest.skip("the rafiki-predictor binary is not built next to the admin")
    host = dev.create_inference_job("order")["predictor_host"]
    wait_for(lambda: dev.get_running_inference_job("order"), lambda j: j["status"] == "RUNNING")
    query = {"petal_width": 0.2, "alpha": 1, "sepal": 3}
    res = requests.post(f"http://{host}/predict", json={"queries": [query]}, timeout=30)
    assert res.status_code == 200, res.text
    [prediction] = res.json()["predictions"]
    assert prediction == {
        "keys": ["petal_width", "alpha", "sepal"],
        "knobs": ["zeta", "alpha", "mid"],
        "zebra": 1,
        "apple": 2,
        "mango": 3,
    }
    assert list(prediction) == ["keys", "knobs", "zebra", "apple", "mango"]
    dev.stop_inference_job("order")
