//! The tables people see of each answer: a listing per kind of resource, a record per single
//! one. `--json` prints the answers themselves instead (see [`super::Output`]).

use comfy_table::Table;
use rafiki_client::types::audit::AuditEvent;
use rafiki_client::types::dataset::Dataset;
use rafiki_client::types::inference::{
    InferenceJob, PredictRequest, PredictResponse, RunningInferenceJob,
};
use rafiki_client::types::model::{AvailableModel, Dependencies, Model};
use rafiki_client::types::train::{TrainJob, Trial};
use rafiki_client::types::user::User;

use super::{compact, listing, record, score, size, table, when, when_opt};

/// `rafiki users list`
pub fn users(users: &[User]) -> Table {
    listing(&["email", "type", "id", "banned"], users, |u| {
        vec![
            u.email.clone(),
            u.user_type.to_string(),
            u.id.to_string(),
            when_opt(&u.banned_date),
        ]
    })
}

/// `rafiki audit`
pub fn audit_events(events: &[AuditEvent]) -> Table {
    let headers = [
        "time", "actor", "role", "action", "target", "outcome", "client", "request",
    ];
    listing(&headers, events, |e| {
        let dash = |text: Option<String>| text.unwrap_or_else(|| "-".to_owned());
        vec![
            when(&e.time),
            dash(e.actor_id.map(|id| id.to_string())),
            dash(e.actor_role.map(|role| role.to_string())),
            e.action.to_string(),
            dash(
                e.target_kind
                    .map(|kind| format!("{kind} {}", e.target_id.as_deref().unwrap_or(""))),
            ),
            e.outcome.clone(),
            dash(e.client_address.clone()),
            dash(e.request_id.clone()),
        ]
    })
}

/// `rafiki datasets list`
pub fn datasets(datasets: &[Dataset]) -> Table {
    listing(&["id", "name", "task", "size", "created"], datasets, |d| {
        vec![
            d.id.to_string(),
            d.name.clone(),
            d.task.clone(),
            size(d.size_bytes),
            when(&d.datetime_created),
        ]
    })
}

fn dependencies_text(deps: &Dependencies) -> String {
    if deps.is_empty() {
        return "-".to_owned();
    }
    deps.iter()
        .map(|(package, version)| format!("{package}=={version}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rafiki models list`
pub fn models(models: &[AvailableModel]) -> Table {
    listing(
        &["id", "name", "task", "access", "dependencies", "created"],
        models,
        |m| {
            vec![
                m.id.to_string(),
                m.name.clone(),
                m.task.clone(),
                m.access_right.to_string(),
                dependencies_text(&m.dependencies),
                when(&m.datetime_created),
            ]
        },
    )
}

/// `rafiki models show`
pub fn model(m: &Model) -> Table {
    record(vec![
        ("id", m.id.to_string()),
        ("name", m.name.clone()),
        ("task", m.task.clone()),
        ("class", m.model_class.clone()),
        ("owner", m.user_id.to_string()),
        ("access", m.access_right.to_string()),
        ("dependencies", dependencies_text(&m.dependencies)),
        ("docker image", m.docker_image.clone().unwrap_or("-".into())),
        (
            "dependency pins",
            m.dependency_pins
                .map_or("the server's".into(), |p| p.to_string()),
        ),
        ("created", when(&m.datetime_created)),
    ])
}

/// The headers of a job listing (`train list`, `inference list`): those of every job, with
/// `extra` (a train job's task) after the status.
fn job_headers<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut headers = vec!["app", "version", "status"];
    headers.extend(extra);
    headers.extend(["started", "stopped", "id"]);
    headers
}

/// A row of a job listing, under [`job_headers`]: the cells of job `$job`, with those of
/// `$extra` after the status. A macro rather than a function because train and inference
/// jobs share these fields by name, not through a type.
macro_rules! job_row {
    ($job:expr, [$($extra:expr),*]) => {{
        let job = $job;
        vec![
            job.app.clone(),
            job.app_version.to_string(),
            job.status.to_string(),
            $($extra,)*
            when(&job.datetime_started),
            when_opt(&job.datetime_stopped),
            job.id.to_string(),
        ]
    }};
}

/// `rafiki train list`
pub fn train_jobs(jobs: &[TrainJob]) -> Table {
    listing(&job_headers(&["task"]), jobs, |j| {
        job_row!(j, [j.task.clone()])
    })
}

/// `rafiki train show`
pub fn train_job(j: &TrainJob) -> Table {
    record(vec![
        ("app", j.app.clone()),
        ("version", j.app_version.to_string()),
        ("status", j.status.to_string()),
        ("waiting", j.waiting_reason.clone().unwrap_or("-".into())),
        ("task", j.task.clone()),
        ("id", j.id.to_string()),
        ("train dataset", j.train_dataset_id.to_string()),
        ("val dataset", j.val_dataset_id.to_string()),
        (
            "budget",
            format!(
                "TIME_HOURS={} MODEL_TRIAL_COUNT={} GPU_COUNT={} CPU_WORKERS_PER_MODEL={}",
                j.budget.time_hours,
                j.budget.model_trial_count,
                j.budget.gpu_count,
                j.budget.cpu_workers_per_model
            ),
        ),
        (
            "train args",
            j.train_args.as_ref().map_or("-".into(), compact),
        ),
        ("started", when(&j.datetime_started)),
        ("stopped", when_opt(&j.datetime_stopped)),
        ("error", j.error.clone().unwrap_or("-".into())),
    ])
}

/// `rafiki trials list` and `trials best`
pub fn trials(trials: &[Trial]) -> Table {
    listing(
        &[
            "id", "model", "no", "status", "score", "params", "started", "stopped",
        ],
        trials,
        |trial| {
            vec![
                trial.id.to_string(),
                trial.model_name.clone(),
                trial.no.to_string(),
                trial.status.to_string(),
                score(trial.score),
                if trial.is_params_saved { "saved" } else { "-" }.to_owned(),
                when(&trial.datetime_started),
                when_opt(&trial.datetime_stopped),
            ]
        },
    )
}

/// `rafiki trials show`
pub fn trial(t: &Trial) -> Table {
    record(vec![
        ("id", t.id.to_string()),
        ("model", t.model_name.clone()),
        ("no", t.no.to_string()),
        ("status", t.status.to_string()),
        ("score", score(t.score)),
        (
            "knobs",
            serde_json::to_string(&t.proposal.knobs).unwrap_or_default(),
        ),
        ("params saved", t.is_params_saved.to_string()),
        ("worker", t.worker_id.map_or("-".into(), |w| w.to_string())),
        ("started", when(&t.datetime_started)),
        ("stopped", when_opt(&t.datetime_stopped)),
        ("error", t.error.clone().unwrap_or("-".into())),
    ])
}

/// `rafiki inference list`
pub fn inference_jobs(jobs: &[InferenceJob]) -> Table {
    listing(&job_headers(&[]), jobs, |j| job_row!(j, []))
}

/// `rafiki inference status`
pub fn inference_job(running: &RunningInferenceJob) -> Table {
    let j = &running.job;
    record(vec![
        ("app", j.app.clone()),
        ("version", j.app_version.to_string()),
        ("status", j.status.to_string()),
        ("predictor", running.predictor_host.clone()),
        ("id", j.id.to_string()),
        ("train job", j.train_job_id.to_string()),
        ("started", when(&j.datetime_started)),
    ])
}

/// `rafiki predict`: the prediction of one query, or a row per query.
pub fn predictions(answer: &PredictResponse, request: &PredictRequest) -> Table {
    match request {
        PredictRequest::Query(_) => record(vec![(
            "prediction",
            answer.prediction.as_ref().map_or("null".into(), compact),
        )]),
        PredictRequest::Queries(_) => {
            let mut t = table(&["#", "prediction"]);
            for (i, p) in answer.predictions.iter().enumerate() {
                t.add_row(vec![i.to_string(), compact(p)]);
            }
            t
        }
    }
}
