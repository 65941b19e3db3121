//! Every client method against the real admin, each test on a fresh database. Train jobs that
//! really train need `RAFIKI_PYTHON` (see `common::python_ready`); without it, jobs are created
//! with a stand-in worker that idles until it is stopped (`common::idle_worker`), which is
//! enough for every lookup, listing and stop.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use rafiki_client::params::ParamValue;
use rafiki_client::types::error::ErrorName;
use rafiki_client::types::inference::PredictRequest;
use rafiki_client::types::model::{Dependencies, DependencyPins, ModelAccessRight};
use rafiki_client::types::status::{JobStatus, TrialStatus};
use rafiki_client::types::user::UserType;
use rafiki_client::{Budget, BudgetOption, Client, ClientError, LATEST};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use common::{
    python_ready, spawn_app, spawn_app_with, spawn_app_with_idle_workers, wait_for, TINY_MODEL,
};

const TRIVIAL_MODEL: &str =
    "from rafiki.model import BaseModel\n\n\nclass Trivial(BaseModel):\n    pass\n";

/// Asserts that a call failed with this server error; returns its message.
#[track_caller]
fn assert_server_error<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    name: ErrorName,
) -> String {
    match result {
        Err(err @ ClientError::Api { .. }) => {
            assert!(err.is(name), "expected {name}, got {err}");
            let text = err.to_string();
            assert!(text.starts_with(&format!("{name}: ")), "{text}");
            let ClientError::Api { message, .. } = err else {
                unreachable!()
            };
            assert!(!message.is_empty());
            message
        }
        other => panic!("expected {name}, got {other:?}"),
    }
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn logins_users_and_bans_go_through_the_client() {
    let app = spawn_app().await;
    let mut anonymous = app.client();
    assert!(anonymous.get_current_user().is_none());
    assert_server_error(
        anonymous.get_users().await,
        ErrorName::InvalidAuthorizationHeaderError,
    );
    assert_server_error(
        anonymous.login("superadmin@rafiki", "wrong").await,
        ErrorName::InvalidPasswordError,
    );
    assert_server_error(
        anonymous.login("nobody@example.com", "x").await,
        ErrorName::InvalidUserError,
    );

    let mut sa = app.client();
    let me = sa
        .login("superadmin@rafiki", common::SUPERADMIN_PASSWORD)
        .await
        .unwrap();
    assert_eq!(me.user_type, UserType::Superadmin);
    assert_eq!(sa.get_current_user(), Some(&me));
    assert_eq!(sa.session().unwrap().user, me);

    let created = sa
        .create_user("dev@example.com", "pw-of-dev", UserType::ModelDeveloper)
        .await
        .unwrap();
    assert_eq!(
        (created.email.as_str(), created.user_type),
        ("dev@example.com", UserType::ModelDeveloper)
    );
    assert_server_error(
        sa.create_user("dev@example.com", "pw-of-dev-again", UserType::AppDeveloper)
            .await,
        ErrorName::UserExistsError,
    );
    let users = sa.get_users().await.unwrap();
    let emails: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
    assert!(emails.contains(&"superadmin@rafiki") && emails.contains(&"dev@example.com"));
    assert!(users.iter().all(|u| u.banned_date.is_none()));

    let mut dev = app.client();
    dev.login("dev@example.com", "pw-of-dev").await.unwrap();
    assert_server_error(dev.get_users().await, ErrorName::UnauthorizedError);
    // A saved session works in another client.
    let mut restored = app.client();
    restored.set_session(dev.session().unwrap().clone());
    assert_eq!(restored.get_current_user().unwrap().id, created.id);

    let banned = sa.ban_user("dev@example.com").await.unwrap();
    assert_eq!(banned.id, created.id);
    assert!(banned.banned_date.is_some());
    assert_server_error(
        sa.ban_user("dev@example.com").await,
        ErrorName::UserAlreadyBannedError,
    );
    let message = assert_server_error(
        restored.get_datasets(None).await,
        ErrorName::UnauthorizedError,
    );
    assert!(message.contains("banned"), "{message}");

    sa.logout();
    assert!(sa.get_current_user().is_none() && sa.session().is_none());
    assert_server_error(
        sa.get_users().await,
        ErrorName::InvalidAuthorizationHeaderError,
    );
}

#[tokio::test]
async fn datasets_stream_from_disk_or_come_from_a_url() {
    // `serve_once` listens on a loopback address, which `dataset_url` reaches only when allowed.
    let app = spawn_app_with(&[("dataset_url_allow", serde_json::json!("127.0.0.2/32"))]).await;
    let dev = app.user("dev@example.com", UserType::AppDeveloper).await;
    let dir = tempfile::tempdir().unwrap();
    // Several upload chunks, so progress is reported more than once.
    let bytes: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let file = write_temp(dir.path(), "train.csv", &bytes);

    let calls = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let (c, l) = (calls.clone(), last.clone());
    let progress = Arc::new(move |sent: u64, total: u64| {
        assert_eq!(total, 1_500_000);
        c.fetch_add(1, Ordering::SeqCst);
        l.store(sent, Ordering::SeqCst);
    });
    let created = dev
        .create_dataset_with_progress("train", "TASK_A", &file, progress)
        .await
        .unwrap();
    assert_eq!(
        (
            created.name.as_str(),
            created.task.as_str(),
            created.size_bytes
        ),
        ("train", "TASK_A", 1_500_000)
    );
    assert!(calls.load(Ordering::SeqCst) > 1);
    assert_eq!(last.load(Ordering::SeqCst), 1_500_000);

    let small = write_temp(dir.path(), "val.csv", b"x,y\n1,2\n");
    let other = dev
        .create_dataset("val", "TASK_B", Some(&small), None)
        .await
        .unwrap();
    assert_eq!(other.size_bytes, 8);

    let url = serve_once(b"a,b\n3,4\n5,6\n".to_vec()).await;
    let remote = dev
        .create_dataset("remote", "TASK_B", None, Some(&url))
        .await
        .unwrap();
    assert_eq!(remote.size_bytes, 12);

    let all = dev.get_datasets(None).await.unwrap();
    assert_eq!(all.len(), 3);
    let task_b = dev.get_datasets(Some("TASK_B")).await.unwrap();
    let mut ids: Vec<Uuid> = task_b.iter().map(|d| d.id).collect();
    ids.sort();
    let mut expected = vec![other.id, remote.id];
    expected.sort();
    assert_eq!(ids, expected);

    let message = assert_server_error(
        dev.create_dataset("none", "TASK_A", None, None).await,
        ErrorName::InvalidDatasetError,
    );
    assert!(message.contains("dataset_url"), "{message}");
    assert_server_error(
        dev.create_dataset("ftp", "TASK_A", None, Some("ftp://example.com/x"))
            .await,
        ErrorName::InvalidDatasetError,
    );
    let missing = dev
        .create_dataset(
            "gone",
            "TASK_A",
            Some(&dir.path().join("missing.csv")),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(missing.name(), "IoError");
    assert!(missing.to_string().contains("missing.csv"), "{missing}");
}

/// Serves `body` to one HTTP request on a port of 127.0.0.2; returns its URL.
async fn serve_once(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&body).await.unwrap();
        socket.shutdown().await.unwrap();
    });
    format!("http://{addr}/data.csv")
}

#[tokio::test]
async fn models_upload_with_rafikis_fields_and_download_and_delete() {
    let app = spawn_app_with(&[("allowed_images", json!("rafiki-rs/worker, my/"))]).await;
    let dev = app.user("dev@example.com", UserType::ModelDeveloper).await;
    let other = app
        .user("other@example.com", UserType::ModelDeveloper)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let source = write_temp(dir.path(), "trivial.py", TRIVIAL_MODEL.as_bytes());

    let deps = Dependencies::from([("scikit-learn".to_owned(), "1.5.2".to_owned())]);
    let public = dev
        .create_model(
            "public",
            "TASK_A",
            &source,
            "Trivial",
            Some(&deps),
            ModelAccessRight::Public,
            Some("my/image:1"),
        )
        .await
        .unwrap();
    let private = dev
        .create_model_with_pins(
            "private",
            "TASK_A",
            &source,
            "Trivial",
            None,
            ModelAccessRight::default(),
            None,
            Some(DependencyPins::Nearest),
        )
        .await
        .unwrap();
    assert_eq!(public.name, "public");
    assert_eq!(public.user_id, dev.get_current_user().unwrap().id);

    let model = dev.get_model(public.id).await.unwrap();
    assert_eq!(model.model_class, "Trivial");
    assert_eq!(model.task, "TASK_A");
    assert_eq!(model.dependencies, deps);
    assert_eq!(model.access_right, ModelAccessRight::Public);
    assert_eq!(model.docker_image.as_deref(), Some("my/image:1"));
    assert_eq!(model.dependency_pins, None, "the server's setting");
    let model = dev.get_model(private.id).await.unwrap();
    assert!(
        model.dependencies.is_empty(),
        "`null` dependencies are none"
    );
    assert_eq!(model.access_right, ModelAccessRight::Private);
    assert!(model.docker_image.is_some(), "the server's worker image");
    assert_eq!(model.dependency_pins, Some(DependencyPins::Nearest));

    let out = dir.path().join("downloaded.py");
    let downloaded = dev.download_model_file(public.id, &out).await.unwrap();
    assert_eq!(downloaded.id, public.id);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), TRIVIAL_MODEL);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Only the owner (or an admin) reads the file of a public model.
    let refused = other
        .download_model_file(public.id, &dir.path().join("not-mine.py"))
        .await;
    assert_server_error(refused, ErrorName::UnauthorizedError);
    assert!(!dir.path().join("not-mine.py").exists());

    let names = |models: Vec<rafiki_client::types::model::AvailableModel>| {
        let mut names: Vec<String> = models.into_iter().map(|m| m.name).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(dev.get_available_models(Some("TASK_A")).await.unwrap()),
        ["private", "public"]
    );
    assert!(dev
        .get_available_models(Some("TASK_B"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        names(other.get_available_models(None).await.unwrap()),
        ["public"]
    );

    assert_server_error(
        dev.create_model(
            "public",
            "TASK_A",
            &source,
            "Trivial",
            None,
            ModelAccessRight::Private,
            None,
        )
        .await,
        ErrorName::DuplicateModelNameError,
    );
    let message = assert_server_error(
        dev.create_model(
            "wrong-class",
            "TASK_A",
            &source,
            "Missing",
            None,
            ModelAccessRight::Private,
            None,
        )
        .await,
        ErrorName::InvalidModelError,
    );
    assert!(message.contains("Missing"), "{message}");

    let deleted = dev.delete_model(private.id).await.unwrap();
    assert_eq!((deleted.id, deleted.name.as_str()), (private.id, "private"));
    assert_server_error(
        dev.get_model(private.id).await,
        ErrorName::InvalidModelError,
    );
    assert_server_error(
        other.delete_model(public.id).await,
        ErrorName::UnauthorizedError,
    );
}

/// A developer with two datasets of `task` and the trivial model; returns their ids.
async fn datasets_and_model(dev: &Client, dir: &Path, task: &str) -> (Uuid, Uuid, Uuid) {
    let data = write_temp(dir, "data.csv", b"x,y\n1,2\n");
    let train = dev
        .create_dataset("t", task, Some(&data), None)
        .await
        .unwrap();
    let val = dev
        .create_dataset("v", task, Some(&data), None)
        .await
        .unwrap();
    let source = write_temp(dir, "trivial.py", TRIVIAL_MODEL.as_bytes());
    let model = dev
        .create_model(
            "trivial",
            task,
            &source,
            "Trivial",
            None,
            ModelAccessRight::Private,
            None,
        )
        .await
        .unwrap();
    (train.id, val.id, model.id)
}

#[tokio::test]
async fn train_jobs_are_created_with_rafikis_defaults_and_looked_up() {
    // Idle stand-in workers: the jobs exist and stay live, nothing trains.
    let app = spawn_app_with_idle_workers().await;
    let dev = app.user("dev@example.com", UserType::ModelDeveloper).await;
    let other = app
        .user("other@example.com", UserType::ModelDeveloper)
        .await;
    let admin = app.user("admin@example.com", UserType::Admin).await;
    let me = dev.get_current_user().unwrap().id;
    let dir = tempfile::tempdir().unwrap();
    let (train, val, model) = datasets_and_model(&dev, dir.path(), "TASK_A").await;

    // The checks are the server's, in its order; each error keeps its name.
    assert_server_error(
        dev.create_train_job(
            "app",
            "TASK_A",
            Uuid::new_v4(),
            val,
            Budget::new(),
            None,
            None,
        )
        .await,
        ErrorName::InvalidDatasetError,
    );
    assert_server_error(
        dev.create_train_job("app", "TASK_B", train, val, Budget::new(), None, None)
            .await,
        ErrorName::NoModelsForTrainJobError,
    );
    let bad_budget = Budget::from([(BudgetOption::TIME_HOURS.to_owned(), json!(-1))]);
    assert_server_error(
        dev.create_train_job(
            "app",
            "TASK_A",
            train,
            val,
            bad_budget,
            Some(vec![model]),
            None,
        )
        .await,
        ErrorName::InvalidRequestError,
    );
    // `model_ids: None` means every available model of the task: the job gets past the model
    // checks to the GPU allocation, which fails on a host without GPUs.
    let gpus = Budget::from([(BudgetOption::GPU_COUNT.to_owned(), json!(1))]);
    let message = assert_server_error(
        dev.create_train_job("app", "TASK_A", train, val, gpus, None, None)
            .await,
        ErrorName::ServiceDeploymentError,
    );
    assert!(message.contains("GPU"), "{message}");

    let budget = Budget::from([(BudgetOption::MODEL_TRIAL_COUNT.to_owned(), json!(2))]);
    let first = dev
        .create_train_job(
            "app",
            "TASK_A",
            train,
            val,
            budget.clone(),
            None,
            Some(json!({"epochs": 3})),
        )
        .await
        .unwrap();
    assert_eq!((first.app.as_str(), first.app_version), ("app", 1));
    let job = dev.get_train_job("app", LATEST).await.unwrap();
    assert_eq!(job.id, first.id);
    assert_eq!(job.task, "TASK_A");
    assert_eq!((job.train_dataset_id, job.val_dataset_id), (train, val));
    assert_eq!(job.train_args, Some(json!({"epochs": 3})));
    assert_eq!(job.budget.time_hours, 0.1, "the client's default");
    assert_eq!(job.budget.gpu_count, 0, "the client's default");
    assert_eq!(job.budget.model_trial_count, 2);

    assert_eq!(job.status, JobStatus::Started);
    assert_eq!(job.datetime_stopped, None);
    let stopped = dev.stop_train_job("app", 1).await.unwrap();
    assert_eq!(stopped.id, first.id);
    let job = dev.get_train_job("app", 1).await.unwrap();
    assert_eq!(job.status, JobStatus::Stopped, "stop is synchronous");
    assert!(job.datetime_stopped.is_some());

    let second = dev
        .create_train_job("app", "TASK_A", train, val, budget, Some(vec![model]), None)
        .await
        .unwrap();
    assert_eq!(second.app_version, 2);
    assert_eq!(
        dev.get_train_job("app", LATEST).await.unwrap().id,
        second.id
    );
    assert_server_error(
        dev.create_train_job("app", "TASK_A", train, val, Budget::new(), None, None)
            .await,
        ErrorName::InvalidTrainJobError,
    );
    dev.stop_train_job("app", LATEST).await.unwrap();

    let versions: Vec<i32> = dev
        .get_train_jobs_of_app("app")
        .await
        .unwrap()
        .iter()
        .map(|j| j.app_version)
        .collect();
    assert_eq!(versions, [2, 1], "highest version first");
    let by_user = dev.get_train_jobs_by_user(me).await.unwrap();
    assert_eq!(by_user.len(), 2);
    assert_eq!(admin.get_train_jobs_by_user(me).await.unwrap().len(), 2);
    assert_server_error(
        other.get_train_jobs_by_user(me).await,
        ErrorName::UnauthorizedError,
    );
    assert!(other.get_train_jobs_of_app("app").await.unwrap().is_empty());
    assert_server_error(
        other.get_train_job("app", LATEST).await,
        ErrorName::InvalidTrainJobError,
    );
    assert_server_error(
        dev.stop_train_job("nope", LATEST).await,
        ErrorName::InvalidTrainJobError,
    );

    // Trials: none ran, and lookups of unknown trials are named.
    for trial in dev.get_trials_of_train_job("app", 1).await.unwrap() {
        assert_ne!(trial.status, TrialStatus::Completed, "nothing trained");
    }
    assert!(dev
        .get_best_trials_of_train_job("app", LATEST, 2)
        .await
        .unwrap()
        .is_empty());
    assert_server_error(
        dev.get_trials_of_train_job("nope", 1).await,
        ErrorName::InvalidTrainJobError,
    );
    assert_server_error(
        dev.get_best_trials_of_train_job("nope", LATEST, 2).await,
        ErrorName::InvalidTrainJobError,
    );
    let ghost = Uuid::new_v4();
    assert_server_error(dev.get_trial(ghost).await, ErrorName::InvalidTrialError);
    assert_server_error(
        dev.get_trial_logs(ghost).await,
        ErrorName::InvalidTrialError,
    );
    assert_server_error(
        dev.get_trial_parameters(ghost).await,
        ErrorName::InvalidTrialError,
    );
}

#[tokio::test]
async fn stop_all_jobs_is_the_superadmins_and_stops_live_jobs() {
    let app = spawn_app_with_idle_workers().await;
    let dev = app.user("dev@example.com", UserType::ModelDeveloper).await;
    let admin = app.user("admin@example.com", UserType::Admin).await;
    let sa = app.superadmin().await;
    assert_server_error(admin.stop_all_jobs().await, ErrorName::UnauthorizedError);
    let none = sa.stop_all_jobs().await.unwrap();
    assert!(none.train_jobs.is_empty() && none.inference_jobs.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let (train, val, model) = datasets_and_model(&dev, dir.path(), "TASK_A").await;
    // A time budget, so the job stays live until it is stopped.
    let budget = Budget::from([(BudgetOption::TIME_HOURS.to_owned(), json!(1))]);
    let job = dev
        .create_train_job("app", "TASK_A", train, val, budget, Some(vec![model]), None)
        .await
        .unwrap();
    assert!(dev
        .get_train_job("app", LATEST)
        .await
        .unwrap()
        .status
        .is_live());
    let stopped = sa.stop_all_jobs().await.unwrap();
    assert_eq!(stopped.train_jobs.len(), 1, "{stopped:?}");
    assert_eq!(stopped.train_jobs[0].id, job.id);
    assert_eq!(
        dev.get_train_job("app", LATEST).await.unwrap().status,
        JobStatus::Stopped
    );
    assert!(sa.stop_all_jobs().await.unwrap().train_jobs.is_empty());
}

#[tokio::test]
async fn inference_calls_reach_the_inference_routes_and_keep_their_errors() {
    let app = spawn_app_with_idle_workers().await;
    let dev = app.user("dev@example.com", UserType::ModelDeveloper).await;
    let other = app.user("other@example.com", UserType::AppDeveloper).await;
    let me = dev.get_current_user().unwrap().id;

    assert_server_error(
        dev.create_inference_job("nope", LATEST, Budget::new())
            .await,
        ErrorName::InvalidTrainJobError,
    );
    assert_server_error(
        dev.get_running_inference_job("nope", LATEST).await,
        ErrorName::InvalidRunningInferenceJobError,
    );
    assert_server_error(
        dev.stop_inference_job("nope", 1).await,
        ErrorName::InvalidRunningInferenceJobError,
    );
    assert!(dev.get_inference_jobs_by_user(me).await.unwrap().is_empty());
    assert!(dev
        .get_inference_jobs_of_app("nope")
        .await
        .unwrap()
        .is_empty());
    assert_server_error(
        other.get_inference_jobs_by_user(me).await,
        ErrorName::UnauthorizedError,
    );

    // A stopped train job with nothing trained cannot be deployed.
    let dir = tempfile::tempdir().unwrap();
    let (train, val, model) = datasets_and_model(&dev, dir.path(), "TASK_A").await;
    dev.create_train_job(
        "app",
        "TASK_A",
        train,
        val,
        Budget::new(),
        Some(vec![model]),
        None,
    )
    .await
    .unwrap();
    dev.stop_train_job("app", LATEST).await.unwrap();
    let message = assert_server_error(
        dev.create_inference_job("app", LATEST, Budget::new()).await,
        ErrorName::InvalidTrainJobError,
    );
    assert!(message.contains("no completed trial"), "{message}");

    // The predictor call: a host that does not answer is a connection error, and an HTTP
    // server that answers with the error envelope keeps its error's name (here the admin,
    // which has no /predict).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let err = dev
        .predict(&closed.to_string(), &PredictRequest::Query(json!(1)))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ConnectionError", "{err}");
    let admin_host = format!("127.0.0.1:{}", app.port);
    for host in [admin_host.clone(), format!("http://{admin_host}/")] {
        let err = dev
            .predict(&host, &PredictRequest::Queries(vec![json!(1)]))
            .await
            .unwrap_err();
        assert!(err.is(ErrorName::NotFoundError), "{err}");
    }
}

#[tokio::test]
async fn a_tiny_model_trains_and_its_trials_logs_and_parameters_read_back() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", UserType::ModelDeveloper).await;
    let dir = tempfile::tempdir().unwrap();
    let data = write_temp(dir.path(), "data.csv", b"x\n1\n");
    let train = dev
        .create_dataset("t", "ANY", Some(&data), None)
        .await
        .unwrap();
    let val = dev
        .create_dataset("v", "ANY", Some(&data), None)
        .await
        .unwrap();
    let source = write_temp(dir.path(), "tiny.py", TINY_MODEL.as_bytes());
    dev.create_model(
        "tiny",
        "ANY",
        &source,
        "Tiny",
        None,
        ModelAccessRight::Private,
        None,
    )
    .await
    .unwrap();
    let budget = Budget::from([(BudgetOption::MODEL_TRIAL_COUNT.to_owned(), json!(1))]);
    dev.create_train_job("tiny", "ANY", train.id, val.id, budget, None, None)
        .await
        .unwrap();
    let job = wait_for("the train job to end", 180, || async {
        let job = dev.get_train_job("tiny", LATEST).await.unwrap();
        (!job.status.is_live()).then_some(job)
    })
    .await;
    assert_eq!(job.status, JobStatus::Stopped, "{job:?}");

    let trials = dev.get_trials_of_train_job("tiny", LATEST).await.unwrap();
    assert_eq!(trials.len(), 1, "{trials:?}");
    let trial = &trials[0];
    assert_eq!(trial.status, TrialStatus::Completed, "{trial:?}");
    assert!(trial.is_params_saved);
    let x = trial.proposal.knobs["x"].as_f64().unwrap();
    // Within one ulp, not bit for bit: the worker binary reads JSON floats (the knob on its
    // way to the model, the score on its way back) with serde_json's default parser, which is
    // not always correctly rounded. This crate's own reading is exact (`float_roundtrip`; the
    // params reader's tests check exact bits).
    let near = |a: f64| (a - x).abs() <= f64::EPSILON * x.abs();
    assert!(trial.score.is_some_and(near), "{:?} vs {x}", trial.score);
    let best = dev
        .get_best_trials_of_train_job("tiny", LATEST, 2)
        .await
        .unwrap();
    assert_eq!(best.len(), 1);
    assert_eq!(dev.get_trial(best[0].id).await.unwrap(), *trial);

    let logs = dev.get_trial_logs(trial.id).await.unwrap();
    assert_eq!(logs.plots.len(), 1);
    assert_eq!(logs.plots[0].title, "Loss");
    assert_eq!(logs.plots[0].x_axis.as_deref(), Some("epoch"));
    let losses: Vec<f64> = logs
        .metrics
        .iter()
        .filter_map(|m| m.get("loss").and_then(|v| v.as_f64()))
        .collect();
    assert_eq!(losses, [1.0, 0.5, 1.0 / 3.0]);
    assert!(logs.messages.iter().any(|m| m.message == "trained tiny"));

    let saved = dev.get_trial_parameters(trial.id).await.unwrap();
    assert!(saved.bytes.starts_with(b"RAFKPRMS"));
    let names: Vec<&str> = saved.params.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["x", "weights", "epochs", "name"]);
    let Some(ParamValue::Float(saved_x)) = saved.params.get("x") else {
        panic!("{:?}", saved.params);
    };
    assert!(near(*saved_x), "{saved_x} vs {x}");
    let Some(ParamValue::Array(weights)) = saved.params.get("weights") else {
        panic!("{:?}", saved.params);
    };
    assert_eq!(weights.shape(), [1, 2]);
    assert_eq!(weights.to_f64_vec().unwrap(), [1.0, 2.0]);
    assert_eq!(saved.params.get("epochs"), Some(&ParamValue::Int(3)));
    assert_eq!(
        saved.params.get("name"),
        Some(&ParamValue::Str("tiny".into()))
    );

    deploy_and_predict(&dev, x).await;
}

/// Deploys the `tiny` app's latest train job, predicts through it and stops it.
async fn deploy_and_predict(dev: &Client, x: f64) {
    let me = dev.get_current_user().unwrap().id;
    let created = dev
        .create_inference_job("tiny", LATEST, Budget::new())
        .await
        .unwrap();
    assert_eq!(created.app, "tiny");
    assert_server_error(
        dev.create_inference_job("tiny", LATEST, Budget::new())
            .await,
        ErrorName::RunningInferenceJobExistsError,
    );
    let running = wait_for("the deployment to run", 120, || async {
        let job = dev.get_running_inference_job("tiny", LATEST).await.unwrap();
        (job.job.status == JobStatus::Running).then_some(job)
    })
    .await;
    assert_eq!(running.job.id, created.id);
    assert_eq!(running.predictor_host, created.predictor_host);

    // The predictor learns of its workers by polling the admin (every second), so for up to
    // a second after the job reads RUNNING it may still answer ServiceDeploymentError.
    let one = wait_for("the predictor to know its worker", 10, || async {
        match dev
            .predict(&running.predictor_host, &PredictRequest::Query(json!([0])))
            .await
        {
            Err(e) if e.is(ErrorName::ServiceDeploymentError) => None,
            answer => Some(answer.unwrap()),
        }
    })
    .await;
    let predicted = one.prediction.as_ref().and_then(|p| p.as_f64()).unwrap();
    assert!(
        (predicted - x).abs() <= f64::EPSILON * x.abs(),
        "{predicted} vs {x}"
    );
    assert!(one.predictions.is_empty());
    let many = dev
        .predict(
            &running.predictor_host,
            &PredictRequest::Queries(vec![json!([0]), json!([1])]),
        )
        .await
        .unwrap();
    assert_eq!(many.prediction, None);
    assert_eq!(many.predictions, [json!(predicted), json!(predicted)]);

    let listed = dev.get_inference_jobs_of_app("tiny").await.unwrap();
    assert_eq!(listed[0].id, created.id);
    assert_eq!(
        dev.get_inference_jobs_by_user(me).await.unwrap()[0].id,
        created.id
    );
    let stopped = dev.stop_inference_job("tiny", LATEST).await.unwrap();
    assert_eq!(stopped.id, created.id);
    assert_server_error(
        dev.get_running_inference_job("tiny", LATEST).await,
        ErrorName::InvalidRunningInferenceJobError,
    );
    let listed = dev.get_inference_jobs_of_app("tiny").await.unwrap();
    assert_eq!(listed[0].status, JobStatus::Stopped);
}
