//! The whole quickstart through the Rust client: log in, upload the wine datasets and the
//! example perceptron, train it, wait for the job, read its best trials, deploy them, predict,
//! and stop the deployment.
//!
//! ```sh
//! python examples/datasets/build_datasets.py --out data     # the example datasets, offline
//! RAFIKI_PYTHON=$PWD/.venv/bin/python scripts/run.sh        # an admin in dev mode (another shell)
//! cargo run -p rafiki-client --example quickstart
//! ```
//!
//! Settings, from the environment: `RAFIKI_ADDR` / `ADMIN_EXT_PORT` (the admin, default
//! 127.0.0.1:3000), `RAFIKI_EMAIL` / `RAFIKI_PASSWORD` (default the dev-mode superadmin),
//! `RAFIKI_DATA` (the directory of `wine_train.csv` and `wine_val.csv`, default `data`),
//! `RAFIKI_APP` (the app name, default `wine-quickstart`).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rafiki_client::types::error::ErrorName;
use rafiki_client::types::inference::PredictRequest;
use rafiki_client::types::model::{Dependencies, ModelAccessRight};
use rafiki_client::types::status::JobStatus;
use rafiki_client::{Budget, BudgetOption, Client};
use serde_json::{json, Map, Value};

const TASK: &str = "TABULAR_CLASSIFICATION";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// The first `n` rows of a CSV with a header, as queries of `{feature: number}`, and their
/// `target` labels.
fn queries_from_csv(path: &Path, n: usize) -> Result<(Vec<Value>, Vec<String>), Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("an empty CSV")?.split(',').collect();
    let mut queries = Vec::new();
    let mut labels = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()).take(n) {
        let mut query = Map::new();
        for (name, value) in header.iter().zip(line.split(',')) {
            if *name == "target" {
                labels.push(value.to_owned());
            } else {
                query.insert((*name).to_owned(), json!(value.parse::<f64>()?));
            }
        }
        queries.push(Value::Object(query));
    }
    Ok((queries, labels))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut client = Client::from_env();
    let email = env_or("RAFIKI_EMAIL", "superadmin@rafiki");
    let user = client
        .login(&email, &env_or("RAFIKI_PASSWORD", "rafiki"))
        .await?;
    println!(
        "logged in to {}:{} as {email} ({})",
        client.admin_host(),
        client.admin_port(),
        user.user_type
    );

    let data = PathBuf::from(env_or("RAFIKI_DATA", "data"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let app = env_or("RAFIKI_APP", "wine-quickstart");

    let train = client
        .create_dataset("wine-train", TASK, Some(&data.join("wine_train.csv")), None)
        .await?;
    let val = client
        .create_dataset("wine-val", TASK, Some(&data.join("wine_val.csv")), None)
        .await?;
    println!(
        "datasets: {} ({} bytes), {} ({} bytes)",
        train.id, train.size_bytes, val.id, val.size_bytes
    );

    // Model names are unique per user: reuse the model of an earlier run.
    let model_id = match client
        .get_available_models(Some(TASK))
        .await?
        .into_iter()
        .find(|m| m.name == "quickstart-mlp" && m.user_id == user.id)
    {
        Some(model) => model.id,
        None => {
            client
                .create_model(
                    "quickstart-mlp",
                    TASK,
                    &repo.join("examples/models/tabular_classification/SkMlpClf.py"),
                    "SkMlpClf",
                    Some(&Dependencies::new()),
                    ModelAccessRight::Private,
                    None,
                )
                .await?
                .id
        }
    };
    println!("model: {model_id}");

    let budget = Budget::from([(BudgetOption::MODEL_TRIAL_COUNT.to_owned(), json!(3))]);
    let job = client
        .create_train_job(
            &app,
            TASK,
            train.id,
            val.id,
            budget,
            Some(vec![model_id]),
            Some(json!({"target": "target"})),
        )
        .await?;
    println!("train job {} version {} started", job.app, job.app_version);

    let started = Instant::now();
    let job = loop {
        let job = client.get_train_job(&app, job.app_version).await?;
        if !job.status.is_live() {
            break job;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err("the train job did not end within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    println!(
        "train job {}: {}",
        job.status,
        job.error.as_deref().unwrap_or("no error")
    );
    if job.status != JobStatus::Stopped {
        return Err("the train job did not finish cleanly".into());
    }

    let best = client
        .get_best_trials_of_train_job(&app, job.app_version, 2)
        .await?;
    for trial in &best {
        println!(
            "best trial {} of {}: score {:?}, knobs {}",
            trial.no,
            trial.model_name,
            trial.score,
            serde_json::to_string(&trial.proposal.knobs)?
        );
    }
    let top = best.first().ok_or("no trial completed")?;
    let params = client.get_trial_parameters(top.id).await?;
    println!(
        "its parameters: {} bytes, entries {:?}",
        params.bytes.len(),
        params
            .params
            .iter()
            .map(|(name, v)| format!("{name}: {}", v.kind()))
            .collect::<Vec<_>>()
    );

    let deployed = client
        .create_inference_job(&app, job.app_version, Budget::new())
        .await?;
    println!(
        "deploying: inference job {}, predictor at {}",
        deployed.id, deployed.predictor_host
    );
    let started = Instant::now();
    let running = loop {
        let running = client
            .get_running_inference_job(&app, job.app_version)
            .await?;
        if running.job.status == JobStatus::Running {
            break running;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err("the deployment did not come up within 5 minutes".into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let (queries, labels) = queries_from_csv(&data.join("wine_val.csv"), 3)?;
    // The predictor finds its workers by asking the admin every second, so it may answer
    // ServiceDeploymentError for a moment after the job reads RUNNING.
    let started = Instant::now();
    let one = loop {
        let request = PredictRequest::Query(queries[0].clone());
        match client.predict(&running.predictor_host, &request).await {
            Err(e)
                if e.is(ErrorName::ServiceDeploymentError) && started.elapsed().as_secs() < 30 =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            answer => break answer?,
        }
    };
    println!(
        "one query: class probabilities {} (label {})",
        one.prediction.unwrap_or_default(),
        labels[0]
    );
    let many = client
        .predict(&running.predictor_host, &PredictRequest::Queries(queries))
        .await?;
    for (prediction, label) in many.predictions.iter().zip(&labels) {
        println!("prediction {prediction} (label {label})");
    }

    client.stop_inference_job(&app, job.app_version).await?;
    println!("deployment stopped; done");
    Ok(())
}
