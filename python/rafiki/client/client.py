"""A Python client for the Rafiki admin's REST API (CONTRACT.md), with Rafiki's methods.

Every method returns the server's JSON answer as Python data. A failed call raises
`RafikiError`, which carries the server's error name (`e.error`, e.g. `UserExistsError`), its
message and the HTTP status.
"""

from __future__ import annotations

import json
import os
from typing import Any

import requests

from rafiki.constants import (
    BudgetOption,
    InferenceBudgetOption,
    ModelAccessRight,
)
from rafiki.model.model import BaseModel
from rafiki.params import decode_params


class RafikiConnectionError(ConnectionError):
    """A call to the admin failed (Rafiki's name for client errors)."""


class RafikiError(RafikiConnectionError):
    """The admin answered with an error: `error` is its name, `message` the explanation."""

    def __init__(self, error: str, message: str, status_code: int | None = None):
        super().__init__(f"{error}: {message}" if message else error)
        self.error = error
        self.message = message
        self.status_code = status_code


def _error_from_response(res: requests.Response) -> RafikiError:
    try:
        body = res.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body.get("message")
        return RafikiError(body["error"], str(message or ""), res.status_code)
    text = res.text.strip()
    return RafikiError(f"HTTP{res.status_code}", text[:1000] or res.reason or "", res.status_code)


class Client:
    """Connects to a running Rafiki admin.

    :param admin_host: host of the admin (default: env `RAFIKI_ADDR`, else `127.0.0.1`)
    :param admin_port: port of the admin (default: env `ADMIN_EXT_PORT`, else 3000)
    """

    def __init__(
        self,
        admin_host: str = os.environ.get("RAFIKI_ADDR", "127.0.0.1"),
        admin_port: int = int(os.environ.get("ADMIN_EXT_PORT", 3000)),
        timeout: float | None = 300,
    ):
        self._admin_host = admin_host
        self._admin_port = admin_port
        self._timeout = timeout
        self._token: str | None = None
        self._user: dict[str, Any] | None = None
        self._session = requests.Session()

    # --- session ---

    def login(self, email: str, password: str) -> dict[str, Any]:
        """Logs in; later calls are made as this user. Returns `{id, user_type}`."""
        data = self._post("/tokens", json={"email": email, "password": password})
        self._token = data["token"]
        self._user = {"id": data["user_id"], "user_type": data["user_type"]}
        return self._user

    def get_current_user(self) -> dict[str, Any] | None:
        """The logged-in user (`{id, user_type}`), or None."""
        return self._user

    def logout(self):
        """Forgets the login session."""
        self._token = None
        self._user = None

    # --- users ---

    def create_user(self, email: str, password: str, user_type: str) -> dict[str, Any]:
        """Creates a user (admins only; only the superadmin creates admins)."""
        return self._post(
            "/users", json={"email": email, "password": password, "user_type": user_type}
        )

    def get_users(self) -> list[dict[str, Any]]:
        """Lists every user (admins only)."""
        return self._get("/users")

    def ban_user(self, email: str) -> dict[str, Any]:
        """Bans a user for good: they can no longer log in (admins only)."""
        return self._delete("/users", json={"email": email})

    # --- datasets ---

    def create_dataset(
        self,
        name: str,
        task: str,
        dataset_path: str | None = None,
        dataset_url: str | None = None,
    ) -> dict[str, Any]:
        """Creates a dataset from a local file (`dataset_path`) or a URL the server downloads."""
        form = {"name": name, "task": task}
        if dataset_url is not None:
            form["dataset_url"] = dataset_url
        if dataset_path is None:
            return self._post("/datasets", form_data=form)
        with open(dataset_path, "rb") as f:
            files = {"dataset": (os.path.basename(dataset_path), f, "application/octet-stream")}
            return self._post("/datasets", files=files, form_data=form)

    def get_datasets(self, task: str | None = None) -> list[dict[str, Any]]:
        """Lists the caller's datasets, optionally of one task."""
        return self._get("/datasets", params={"task": task})

    # --- models ---

    def create_model(
        self,
        name: str,
        task: str,
        model_file_path: str,
        model_class: str,
        dependencies: dict[str, str] | None = None,
        access_right: str = ModelAccessRight.PRIVATE,
        docker_image: str | None = None,
    ) -> dict[str, Any]:
        """Uploads a model: one Python file defining `model_class` (a `BaseModel`)."""
        form = {
            "name": name,
            "task": task,
            "model_class": model_class,
            "dependencies": json.dumps(dependencies),
            "access_right": access_right,
        }
        if docker_image is not None:
            form["docker_image"] = docker_image
        with open(model_file_path, "rb") as f:
            files = {
                "model_file_bytes": (
                    os.path.basename(model_file_path),
                    f,
                    "application/octet-stream",
                )
            }
            return self._post("/models", files=files, form_data=form)

    def get_model(self, model_id: str) -> dict[str, Any]:
        """One model's details."""
        return self._get(f"/models/{model_id}")

    def download_model_file(self, model_id: str, out_model_file_path: str) -> dict[str, Any]:
        """Saves a model's file to `out_model_file_path`; returns the model's details."""
        content = self._get(f"/models/{model_id}/model_file")
        with open(out_model_file_path, "wb") as f:
            f.write(content)
        return self.get_model(model_id)

    def get_available_models(self, task: str | None = None) -> list[dict[str, Any]]:
        """Lists the models the caller may use (own or public), optionally of one task."""
        return self._get("/models/available", params={"task": task})

    def delete_model(self, model_id: str) -> dict[str, Any]:
        """Deletes a model that no train job uses."""
        return self._delete(f"/models/{model_id}")

    # --- train jobs ---

    def create_train_job(
        self,
        app: str,
        task: str,
        train_dataset_id: str,
        val_dataset_id: str,
        budget: dict[str, Any],
        models: list[str] | None = None,
        train_args: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Creates and starts a train job of `models` (default: every available model of
        `task`). `budget` is `{BudgetOption: amount}`; TIME_HOURS defaults to 0.1 and GPU_COUNT
        to 0."""
        if models is None:
            models = [m["id"] for m in self.get_available_models(task)]
        budget = {BudgetOption.TIME_HOURS: 0.1, BudgetOption.GPU_COUNT: 0, **(budget or {})}
        return self._post(
            "/train_jobs",
            json={
                "app": app,
                "task": task,
                "train_dataset_id": train_dataset_id,
                "val_dataset_id": val_dataset_id,
                "budget": budget,
                "model_ids": models,
                "train_args": train_args,
            },
        )

    def get_train_jobs_by_user(self, user_id: str) -> list[dict[str, Any]]:
        """Lists a user's train jobs."""
        return self._get("/train_jobs", params={"user_id": user_id})

    def get_train_jobs_of_app(self, app: str) -> list[dict[str, Any]]:
        """Lists the caller's train jobs of `app`."""
        return self._get(f"/train_jobs/{app}")

    def get_train_job(self, app: str, app_version: int = -1) -> dict[str, Any]:
        """One train job (`app_version=-1`: the latest)."""
        return self._get(f"/train_jobs/{app}/{app_version}")

    def stop_train_job(self, app: str, app_version: int = -1) -> dict[str, Any]:
        """Stops a train job; it reads STOPPED when this returns."""
        return self._post(f"/train_jobs/{app}/{app_version}/stop")

    # --- trials ---

    def get_trial(self, trial_id: str) -> dict[str, Any]:
        """One trial."""
        return self._get(f"/trials/{trial_id}")

    def get_best_trials_of_train_job(
        self, app: str, app_version: int = -1, max_count: int = 2
    ) -> list[dict[str, Any]]:
        """The best completed trials with saved parameters, by descending score."""
        return self._get(
            f"/train_jobs/{app}/{app_version}/trials",
            params={"type": "best", "max_count": max_count},
        )

    def get_trials_of_train_job(self, app: str, app_version: int = -1) -> list[dict[str, Any]]:
        """Every trial of a train job."""
        return self._get(f"/train_jobs/{app}/{app_version}/trials")

    def get_trial_logs(self, trial_id: str) -> dict[str, Any]:
        """A trial's logs: `{plots, metrics, messages}`."""
        return self._get(f"/trials/{trial_id}/logs")

    def get_trial_parameters(self, trial_id: str) -> dict[str, Any]:
        """A trial's saved parameters, decoded (docs/parameters.md)."""
        return decode_params(self._get(f"/trials/{trial_id}/parameters"))

    def load_trial_model(self, trial_id: str, ModelClass: type[BaseModel]) -> BaseModel:
        """An instance of `ModelClass` with the trial's knobs and parameters loaded."""
        trial = self.get_trial(trial_id)
        knobs = trial["proposal"]["knobs"]
        params = self.get_trial_parameters(trial_id)
        model = ModelClass(**knobs)
        model.load_parameters(params)
        return model

    # --- inference jobs ---

    def create_inference_job(
        self, app: str, app_version: int = -1, budget: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Deploys the best trials of a stopped train job; GPU_COUNT defaults to 0."""
        budget = {InferenceBudgetOption.GPU_COUNT: 0, **(budget or {})}
        return self._post(
            "/inference_jobs", json={"app": app, "app_version": app_version, "budget": budget}
        )

    def get_inference_jobs_by_user(self, user_id: str) -> list[dict[str, Any]]:
        """Lists a user's inference jobs."""
        return self._get("/inference_jobs", params={"user_id": user_id})

    def get_inference_jobs_of_app(self, app: str) -> list[dict[str, Any]]:
        """Lists the caller's inference jobs of `app`."""
        return self._get(f"/inference_jobs/{app}")

    def get_running_inference_job(self, app: str, app_version: int = -1) -> dict[str, Any]:
        """The running inference job of a train job, with its `predictor_host`."""
        return self._get(f"/inference_jobs/{app}/{app_version}")

    def stop_inference_job(self, app: str, app_version: int = -1) -> dict[str, Any]:
        """Stops an inference job; it reads STOPPED when this returns."""
        return self._post(f"/inference_jobs/{app}/{app_version}/stop")

    # --- administration ---

    def stop_all_jobs(self) -> dict[str, Any]:
        """Stops every train and inference job (superadmin only)."""
        return self._post("/actions/stop_all_jobs")

    def get_audit_events(
        self,
        actor: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        """Lists the audit trail, newest first (admins only): who did what, when, from where.

        `actor` is a user id, `action` a name such as `"train_job.stop"`, `since` and `until`
        RFC 3339 times (`since` included, `until` excluded); `limit` and `offset` page it.
        """
        return self._get(
            "/audit",
            params={
                "actor": actor,
                "action": action,
                "since": since,
                "until": until,
                "limit": limit,
                "offset": offset,
            },
        )

    # --- private ---

    def _url(self, path: str) -> str:
        return f"http://{self._admin_host}:{self._admin_port}{path}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token is not None else {}

    def _request(self, method: str, path: str, **kwargs) -> Any:
        params = kwargs.pop("params", None)
        if params:
            params = {k: v for (k, v) in params.items() if v is not None}
        try:
            res = self._session.request(
                method,
                self._url(path),
                headers=self._headers(),
                params=params or None,
                timeout=self._timeout,
                **kwargs,
            )
        except requests.RequestException as e:
            raise RafikiConnectionError(
                f"cannot reach the Rafiki admin at {self._url('')}: {e}"
            ) from e
        return self._parse_response(res)

    @staticmethod
    def _parse_response(res: requests.Response) -> Any:
        if res.status_code != 200:
            raise _error_from_response(res)
        content_type = (res.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            return res.json()
        if content_type == "application/octet-stream":
            return res.content
        raise RafikiError(
            "InvalidResponseError", f"unexpected response content type {content_type!r}", 200
        )

    def _get(self, path, params=None):
        return self._request("GET", path, params=params)

    def _post(self, path, params=None, files=None, form_data=None, json=None):
        if files is not None or form_data is not None:
            # Always multipart/form-data (as the contract asks), even with text fields only:
            # requests sends `(None, text)` entries as plain form fields.
            parts = {k: (None, str(v)) for (k, v) in (form_data or {}).items() if v is not None}
            parts.update(files or {})
            return self._request("POST", path, params=params, files=parts)
        return self._request("POST", path, params=params, json=json)

    def _delete(self, path, params=None, json=None):
        return self._request("DELETE", path, params=params, json=json)
