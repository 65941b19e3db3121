//! The `rafiki` binary against the real admin, with a throwaway HOME and XDG_CONFIG_HOME for
//! its saved session.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use common::{python_ready, spawn_app, wait_for, TestApp, SUPERADMIN_PASSWORD, TINY_MODEL};

/// Runs `rafiki` as a user with their own home directory.
struct Rafiki {
    home: tempfile::TempDir,
}

/// What a run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success; returns stdout.
    #[track_caller]
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "{self:?}");
        self.stdout
    }

    /// Asserts success and JSON on stdout.
    #[track_caller]
    fn json(self) -> Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// Asserts the failure a person sees: exit code 1 and `name: message` on stderr.
    #[track_caller]
    fn fails_with(self, name: &str) -> String {
        assert_eq!(self.code, 1, "{self:?}");
        let first = self.stderr.lines().next().unwrap_or_default().to_owned();
        assert!(
            first.starts_with(&format!("{name}: ")) && first.len() > name.len() + 2,
            "expected `{name}: message`, got {:?}",
            self.stderr
        );
        first
    }
}

impl Rafiki {
    fn new() -> Self {
        Rafiki {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn config_home(&self) -> PathBuf {
        self.home.path().join("config")
    }

    fn credentials(&self) -> PathBuf {
        self.config_home().join("rafiki").join("credentials.json")
    }

    /// Runs `rafiki args...` with `env` set and `stdin` piped in.
    async fn run_with(&self, args: &[&str], env: &[(&str, String)], stdin: &str) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rafiki"));
        command
            .args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env_remove("RAFIKI_HOST")
            .env_remove("RAFIKI_PORT")
            .env_remove("RAFIKI_PASSWORD")
            .current_dir(self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("rafiki starts");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        Run::from(child.wait_with_output().await.unwrap())
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], "").await
    }

    /// Logs in to `app` as the superadmin, the admin named by the environment and the
    /// password piped on stdin.
    async fn login(&self, app: &TestApp) {
        let env = [
            ("RAFIKI_HOST", "127.0.0.1".to_owned()),
            ("RAFIKI_PORT", app.port.to_string()),
        ];
        let stdout = self
            .run_with(
                &["login", "superadmin@rafiki"],
                &env,
                &format!("{SUPERADMIN_PASSWORD}\n"),
            )
            .await
            .ok();
        assert!(stdout.contains("Logged in"), "{stdout}");
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_cli_logs_in_manages_users_datasets_and_models_and_names_its_failures() {
    let app = spawn_app().await;
    let rafiki = Rafiki::new();
    let port = app.port.to_string();

    // Failures before any login: a refused password writes no credentials.
    rafiki
        .run(&[
            "--port",
            &port,
            "login",
            "superadmin@rafiki",
            "--password",
            "wrong",
        ])
        .await
        .fails_with("InvalidPasswordError");
    assert!(!rafiki.credentials().exists());
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    rafiki
        .run(&["--port", &closed, "login", "a@b", "--password", "x"])
        .await
        .fails_with("ConnectionError");
    rafiki
        .run(&["users", "list"])
        .await
        .fails_with("NotLoggedInError");

    rafiki.login(&app).await;
    #[cfg(unix)]
    {
        assert_eq!(
            mode(&rafiki.credentials()),
            0o600,
            "only its owner reads it"
        );
        assert_eq!(mode(rafiki.credentials().parent().unwrap()), 0o700);
    }
    let saved: Value =
        serde_json::from_slice(&std::fs::read(rafiki.credentials()).unwrap()).unwrap();
    assert_eq!(saved["port"], app.port);
    assert_eq!(saved["session"]["user"]["user_type"], "SUPERADMIN");
    let who = rafiki.run(&["whoami", "--json"]).await.json();
    assert_eq!(who["email"], "superadmin@rafiki");

    // Users: later commands find the admin and the session in the saved credentials.
    let created = rafiki
        .run(&[
            "users",
            "create",
            "dev@example.com",
            "--type",
            "model-developer",
            "--password",
            "pw-of-dev",
            "--json",
        ])
        .await
        .json();
    assert_eq!(created["user_type"], "MODEL_DEVELOPER");
    let message = rafiki
        .run(&[
            "users",
            "create",
            "dev@example.com",
            "--type",
            "APP_DEVELOPER",
            "--password",
            "pw-of-another-dev",
        ])
        .await
        .fails_with("UserExistsError");
    assert!(message.contains("dev@example.com"), "{message}");
    let users = rafiki.run(&["users", "list", "--json"]).await.json();
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(emails.contains(&"superadmin@rafiki") && emails.contains(&"dev@example.com"));
    let table = rafiki.run(&["users", "list"]).await.ok();
    assert!(
        table.contains("dev@example.com") && table.contains("MODEL_DEVELOPER"),
        "{table}"
    );
    let banned = rafiki
        .run(&["users", "ban", "dev@example.com", "--json"])
        .await
        .json();
    assert!(banned["banned_date"].is_string());
    // A malformed command line is a usage error (exit 2) and never reaches the server.
    let usage = rafiki
        .run(&[
            "users",
            "create",
            "x@y",
            "--type",
            "OWNER",
            "--password",
            "p",
        ])
        .await;
    assert_eq!(usage.code, 2, "{usage:?}");

    // Datasets.
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "wine.csv", b"a,b,target\n1,2,0\n3,4,1\n");
    let dataset = rafiki
        .run(&[
            "datasets",
            "upload",
            "wine",
            &data,
            "--task",
            "TABULAR_CLASSIFICATION",
            "--json",
        ])
        .await
        .json();
    assert_eq!(dataset["size_bytes"], 23);
    let table = rafiki.run(&["datasets", "list"]).await.ok();
    assert!(table.contains("wine") && table.contains("23 B"), "{table}");
    let listed = rafiki
        .run(&["datasets", "list", "--task", "OTHER", "--json"])
        .await
        .json();
    assert_eq!(listed, serde_json::json!([]));
    rafiki
        .run(&["datasets", "upload", "gone", "missing.csv", "--task", "T"])
        .await
        .fails_with("IoError");

    // Models.
    let source = "from rafiki.model import BaseModel\n\n\nclass Trivial(BaseModel):\n    pass\n";
    let file = write(dir.path(), "trivial.py", source.as_bytes());
    let model = rafiki
        .run(&[
            "models",
            "upload",
            "trivial",
            &file,
            "--task",
            "TABULAR_CLASSIFICATION",
            "--class",
            "Trivial",
            "--dependencies",
            r#"{"numpy": "1.26.4"}"#,
            "--dependency-pins",
            "nearest",
            "--public",
            "--json",
        ])
        .await
        .json();
    let id = model["id"].as_str().unwrap().to_owned();
    let models = rafiki.run(&["models", "list", "--json"]).await.json();
    assert_eq!(models[0]["name"], "trivial");
    assert_eq!(models[0]["access_right"], "PUBLIC");
    assert_eq!(models[0]["dependencies"]["numpy"], "1.26.4");
    let table = rafiki.run(&["models", "list"]).await.ok();
    assert!(
        table.contains("trivial") && table.contains("numpy==1.26.4"),
        "{table}"
    );
    let shown = rafiki.run(&["models", "show", &id]).await.ok();
    assert!(
        shown.contains("Trivial") && shown.contains("PUBLIC") && shown.contains("nearest"),
        "{shown}"
    );
    rafiki.run(&["models", "download", &id]).await.ok();
    let downloaded = rafiki.home.path().join("trivial.py");
    assert_eq!(std::fs::read_to_string(downloaded).unwrap(), source);
    rafiki
        .run(&[
            "models", "upload", "bad", &file, "--task", "T", "--class", "Nope",
        ])
        .await
        .fails_with("InvalidModelError");
    rafiki
        .run(&[
            "models",
            "upload",
            "bad",
            &file,
            "--task",
            "T",
            "--class",
            "Trivial",
            "--dependencies",
            "[1]",
        ])
        .await
        .fails_with("UsageError");
    rafiki
        .run(&[
            "models",
            "upload",
            "bad",
            &file,
            "--task",
            "T",
            "--class",
            "Trivial",
            "--dependency-pins",
            "closest",
        ])
        .await
        .fails_with("UsageError");
    rafiki.run(&["models", "delete", &id]).await.ok();
    rafiki
        .run(&["models", "show", &id])
        .await
        .fails_with("InvalidModelError");

    // Jobs: lookups of what does not exist carry the server's error names.
    rafiki
        .run(&["train", "show", "nope"])
        .await
        .fails_with("InvalidTrainJobError");
    rafiki
        .run(&["trials", "list", "nope", "3"])
        .await
        .fails_with("InvalidTrainJobError");
    rafiki
        .run(&["inference", "status", "nope"])
        .await
        .fails_with("InvalidRunningInferenceJobError");
    assert_eq!(
        rafiki.run(&["train", "list", "--json"]).await.json(),
        serde_json::json!([])
    );
    let stopped = rafiki.run(&["stop-all"]).await.ok();
    assert!(stopped.contains("Stopped 0 train job(s)"), "{stopped}");

    // A saved session is only sent to the admin it came from.
    rafiki
        .run(&["--port", &closed, "users", "list"])
        .await
        .fails_with("NotLoggedInError");
    let out = rafiki.run(&["logout"]).await.ok();
    assert!(out.contains("Logged out"), "{out}");
    assert!(!rafiki.credentials().exists());
    rafiki
        .run(&["users", "list", "--port", &port])
        .await
        .fails_with("NotLoggedInError");
}

#[tokio::test]
async fn the_cli_reads_the_audit_trail_with_its_filters() {
    let app = spawn_app().await;
    let rafiki = Rafiki::new();
    rafiki.login(&app).await;
    rafiki
        .run(&[
            "users",
            "create",
            "dev@example.com",
            "--type",
            "APP_DEVELOPER",
            "--password",
            "pw-of-dev",
        ])
        .await
        .ok();
    let all = rafiki.run(&["audit", "--json"]).await.json();
    let actions: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.create", "login"], "newest first: {all}");
    let sa = all[1]["actor_id"].as_str().unwrap();
    let created = rafiki
        .run(&["audit", "--action", "user.create", "--actor", sa, "--json"])
        .await
        .json();
    assert_eq!(created.as_array().unwrap().len(), 1, "{created}");
    assert_eq!(created[0]["outcome"], "OK");
    let paged = rafiki
        .run(&["audit", "--limit", "1", "--offset", "1", "--json"])
        .await
        .json();
    assert_eq!(paged[0]["action"], "login");
    let later = rafiki
        .run(&["audit", "--since", "2999-01-01T00:00:00Z", "--json"])
        .await
        .json();
    assert_eq!(later, json!([]));
    let table = rafiki.run(&["audit"]).await.ok();
    assert!(
        table.contains("user.create")
            && table.contains("SUPERADMIN")
            && table.contains("127.0.0.1"),
        "{table}"
    );
    // Filters are checked before anything is sent.
    for bad in [
        ["--action", "user.delete"],
        ["--since", "yesterday"],
        ["--actor", "me"],
    ] {
        let usage = rafiki.run(&["audit", bad[0], bad[1]]).await;
        assert_eq!(usage.code, 2, "{usage:?}");
    }
}

/// The CLI logged in as the superadmin to a fresh admin, where it has uploaded two one-row
/// datasets and the tiny model (app `tiny`, task `ANY`) and trained one trial of it, watched
/// with `train create --watch` until the job stopped.
struct TrainedTiny {
    rafiki: Rafiki,
    dir: tempfile::TempDir,
    /// The trial, as `trials best tiny --json` lists it.
    best: Value,
}

/// [`TrainedTiny`], or `None` when models cannot run here (see `python_ready`).
async fn trained_tiny() -> Option<TrainedTiny> {
    if !python_ready() {
        return None;
    }
    let app = spawn_app().await;
    let rafiki = Rafiki::new();
    rafiki.login(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "data.csv", b"x\n1\n");
    let mut ids = Vec::new();
    for name in ["train", "val"] {
        let dataset = rafiki
            .run(&["datasets", "upload", name, &data, "--task", "ANY", "--json"])
            .await
            .json();
        ids.push(dataset["id"].as_str().unwrap().to_owned());
    }
    let source = write(dir.path(), "tiny.py", TINY_MODEL.as_bytes());
    rafiki
        .run(&[
            "models", "upload", "tiny", &source, "--task", "ANY", "--class", "Tiny",
        ])
        .await
        .ok();
    let create = |extra: &'static [&'static str]| {
        let mut args = vec![
            "train",
            "create",
            "tiny",
            "--task",
            "ANY",
            "--train-dataset",
            &ids[0],
            "--val-dataset",
            &ids[1],
            "--trial-count",
            "1",
            "--pruner",
            "ASHA",
            "--prune-metric",
            "loss",
            "--prune-min-step",
            "3",
        ];
        args.extend(extra);
        args
    };
    // Pruning options travel in the budget; the server checks them, and a bad one creates
    // nothing.
    let refused = rafiki
        .run(&create(&["--prune-mode", "SIDEWAYS"]))
        .await
        .fails_with("InvalidRequestError");
    assert!(refused.contains("PRUNE_MODE"), "{refused}");
    let jobs = rafiki.run(&["train", "list", "--json"]).await.json();
    assert_eq!(jobs, json!([]));
    // One trial is never pruned: there is nothing to compare it with.
    let watched = rafiki
        .run(&create(&[
            "--prune-mode",
            "MIN",
            "--watch",
            "--interval",
            "0.3",
        ]))
        .await
        .ok();
    assert!(watched.contains("trial 1 of tiny: COMPLETED"), "{watched}");
    assert!(
        watched.contains("STOPPED") && watched.contains("trials done 1"),
        "{watched}"
    );
    let best = rafiki
        .run(&["trials", "best", "tiny", "--json"])
        .await
        .json();
    let best = best[0].clone();
    Some(TrainedTiny { rafiki, dir, best })
}

#[tokio::test]
async fn the_cli_trains_watches_and_reads_trials_logs_and_parameters() {
    let Some(TrainedTiny { rafiki, dir, best }) = trained_tiny().await else {
        return;
    };
    let trial = best["id"].as_str().unwrap().to_owned();
    let table = rafiki.run(&["trials", "list", "tiny"]).await.ok();
    assert!(
        table.contains(&trial) && table.contains("COMPLETED"),
        "{table}"
    );
    let logs = rafiki
        .run(&["trials", "logs", &trial, "--width", "30"])
        .await
        .ok();
    assert!(logs.contains("trained tiny"), "{logs}");
    assert!(
        logs.contains("Loss") && logs.contains("x: epoch") && logs.contains("* loss"),
        "{logs}"
    );

    let out = dir.path().join("tiny.params");
    let saved = rafiki
        .run(&[
            "params",
            "download",
            &trial,
            out.to_str().unwrap(),
            "--json",
        ])
        .await
        .json();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(saved["size_bytes"], bytes.len());
    let params = rafiki_client::params::decode_params(&bytes).unwrap();
    assert_eq!(params.len(), 4);
    let shown = rafiki.run(&["params", "show", &trial]).await.ok();
    assert!(
        shown.contains("weights") && shown.contains("<f4") && shown.contains("[1, 2]"),
        "{shown}"
    );
    let jobs = rafiki
        .run(&["train", "list", "--app", "tiny", "--json"])
        .await
        .json();
    assert_eq!(jobs[0]["status"], "STOPPED");
    let budget = &jobs[0]["budget"];
    assert_eq!(
        (
            &budget["PRUNER"],
            &budget["PRUNE_METRIC"],
            &budget["PRUNE_MODE"],
            &budget["PRUNE_MIN_STEP"],
            &budget["PRUNE_REDUCTION_FACTOR"],
        ),
        (
            &json!("ASHA"),
            &json!("loss"),
            &json!("MIN"),
            &json!(3.0),
            &json!(3)
        ),
        "{budget}"
    );
}

#[tokio::test]
async fn the_cli_deploys_a_trained_job_predicts_through_it_and_stops_it() {
    let Some(TrainedTiny { rafiki, dir, best }) = trained_tiny().await else {
        return;
    };
    // The tiny model predicts its knob `x` for every query.
    let x = best["proposal"]["knobs"]["x"].as_f64().unwrap();
    // Within one ulp, as in the client's test: the worker reads JSON floats with serde_json's
    // default parser, which is not always correctly rounded.
    let near_x = |p: &Value| {
        p.as_f64()
            .is_some_and(|p| (p - x).abs() <= f64::EPSILON * x.abs())
    };

    assert_tiny_not_deployed(&rafiki).await;

    let created = rafiki
        .run(&["inference", "create", "tiny", "--json"])
        .await
        .json();
    assert_eq!(
        (&created["app"], &created["app_version"]),
        (&json!("tiny"), &json!(1))
    );
    let host = created["predictor_host"].as_str().unwrap().to_owned();
    rafiki
        .run(&["inference", "create", "tiny", "1"])
        .await
        .fails_with("RunningInferenceJobExistsError");

    let running = wait_for("the deployment to run", 120, || async {
        let job = rafiki
            .run(&["inference", "status", "tiny", "--json"])
            .await
            .json();
        (job["status"] == "RUNNING").then_some(job)
    })
    .await;
    assert_eq!(running["id"], created["id"]);
    assert_eq!(running["predictor_host"], host.as_str());
    let shown = rafiki.run(&["inference", "status", "tiny"]).await.ok();
    assert!(
        shown.contains("RUNNING") && shown.contains(&host),
        "{shown}"
    );

    // One query, through the app's running job. The predictor learns of its workers by
    // polling the admin (every second), so for up to a second after the job reads RUNNING it
    // may still answer ServiceDeploymentError.
    let one = wait_for("the predictor to know its worker", 10, || async {
        let run = rafiki
            .run_with(&["predict", "--app", "tiny", "--one", "--json"], &[], "[0]")
            .await;
        if run.code == 1 && run.stderr.starts_with("ServiceDeploymentError: ") {
            return None;
        }
        Some(run.json())
    })
    .await;
    assert!(near_x(&one["prediction"]), "{one} vs {x}");
    assert_eq!(one["predictions"], json!([]));
    let predicted = one["prediction"].to_string();
    let shown = rafiki
        .run_with(
            &["predict", "--predictor", &host, "-"],
            &[],
            r#"{"query": [0]}"#,
        )
        .await
        .ok();
    assert!(
        shown.contains("prediction") && shown.contains(&predicted),
        "{shown}"
    );

    // A batch of queries from a file, straight to the predictor.
    let queries = write(dir.path(), "queries.json", b"[[0], [1], [2]]");
    let many = rafiki
        .run(&["predict", &queries, "--predictor", &host, "--json"])
        .await
        .json();
    assert_eq!(many["prediction"], Value::Null);
    assert_eq!(
        many["predictions"],
        json!(vec![&one["prediction"]; 3]),
        "{many}"
    );
    let table = rafiki
        .run(&["predict", &queries, "--app", "tiny", "--app-version", "1"])
        .await
        .ok();
    assert_eq!(table.matches(&predicted).count(), 3, "{table}");
    rafiki
        .run_with(&["predict", "--app", "tiny"], &[], "{\"x\": 1}")
        .await
        .fails_with("UsageError");

    let listed = rafiki
        .run(&["inference", "list", "--app", "tiny", "--json"])
        .await
        .json();
    assert_eq!(listed[0]["id"], created["id"]);
    let stopped = rafiki.run(&["inference", "stop", "tiny"]).await.ok();
    assert!(
        stopped.contains("Stopped the inference job of tiny version 1"),
        "{stopped}"
    );
    let listed = rafiki
        .run(&["inference", "list", "--app", "tiny", "--json"])
        .await
        .json();
    assert_eq!(listed[0]["status"], "STOPPED", "{listed}");
    let table = rafiki
        .run(&["inference", "list", "--app", "tiny"])
        .await
        .ok();
    assert!(table.contains("STOPPED"), "{table}");
    assert_tiny_not_deployed(&rafiki).await;
}

/// Asserts that the `tiny` app has no running inference job: its status, predicting through
/// it and stopping it are each refused with that error's name.
async fn assert_tiny_not_deployed(rafiki: &Rafiki) {
    let refused: [(&[&str], &str); 3] = [
        (&["inference", "status", "tiny"], ""),
        (&["predict", "--app", "tiny"], "[[0]]"),
        (&["inference", "stop", "tiny"], ""),
    ];
    for (args, stdin) in refused {
        rafiki
            .run_with(args, &[], stdin)
            .await
            .fails_with("InvalidRunningInferenceJobError");
    }
}
