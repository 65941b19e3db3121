//! What each command does: one function per command group, each a few client calls and a
//! printout.

use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rafiki_client::params::{ParamValue, Parameters};
use rafiki_client::types::inference::{InferenceJob, PredictRequest};
use rafiki_client::types::model::{Dependencies, DependencyPins, ModelAccessRight};
use rafiki_client::types::status::{JobStatus, TrialStatus};
use rafiki_client::types::train::{TrainJob, Trial, TrialLogs};
use rafiki_client::{Budget, BudgetOption, Client, InferenceBudgetOption};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::chart::{self, Series};
use crate::credentials::{self, Credentials};
use crate::output::{compact, record, score, size, table, when, when_opt};
use crate::{
    Context, DatasetsCommand, Failure, InferenceCommand, ModelsCommand, ParamsCommand, PredictArgs,
    TrainCommand, TrialsCommand, UsersCommand,
};

/// A password from the command line, else prompted at a terminal, else the first line of
/// stdin (so scripts can pipe it in without it showing in the process list).
fn password(given: Option<String>, prompt: &str) -> Result<String, Failure> {
    if let Some(password) = given {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map_err(|e| Failure::new("IoError", format!("cannot read the password: {e}")));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::new("IoError", format!("cannot read the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(Failure::usage(
            "no password: give --password, set RAFIKI_PASSWORD, or pipe it on stdin",
        ));
    }
    Ok(password)
}

/// `rafiki login`
pub async fn login(ctx: &Context, email: &str, given: Option<String>) -> Result<(), Failure> {
    let password = password(given, &format!("Password for {email}: "))?;
    let mut client = ctx.anonymous();
    let user = client.login(email, &password).await?;
    let session = client.session().cloned().ok_or_else(|| {
        Failure::new(
            "InvalidResponseError",
            "the login answered without a session",
        )
    })?;
    let path = credentials::save(&Credentials {
        host: ctx.host.clone(),
        port: ctx.port,
        email: email.to_owned(),
        session,
    })?;
    let answer = json!({
        "user_id": user.id, "user_type": user.user_type, "email": email,
        "host": ctx.host, "port": ctx.port, "credentials": path,
    });
    ctx.out.say(&answer, |_| {
        format!(
            "Logged in to {}:{} as {email} ({}). Session saved in {}.",
            ctx.host,
            ctx.port,
            user.user_type,
            path.display()
        )
    });
    Ok(())
}

/// `rafiki logout`
pub fn logout(ctx: &Context) -> Result<(), Failure> {
    let removed = credentials::remove()?;
    ctx.out.say(&json!({ "logged_out": removed }), |_| {
        if removed {
            "Logged out; the saved session is gone.".to_owned()
        } else {
            "Not logged in.".to_owned()
        }
    });
    Ok(())
}

/// `rafiki whoami`
pub fn whoami(ctx: &Context) -> Result<(), Failure> {
    ctx.client()?;
    let saved = ctx
        .saved
        .as_ref()
        .ok_or_else(|| Failure::usage("not logged in"))?;
    let answer = json!({
        "email": saved.email, "user_id": saved.session.user.id,
        "user_type": saved.session.user.user_type, "host": saved.host, "port": saved.port,
    });
    ctx.out.say(&answer, |_| {
        format!(
            "{} ({}, id {}) at {}:{}",
            saved.email,
            saved.session.user.user_type,
            saved.session.user.id,
            saved.host,
            saved.port
        )
    });
    Ok(())
}

/// `rafiki users ...`
pub async fn users(ctx: &Context, cmd: UsersCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        UsersCommand::Create {
            email,
            user_type,
            password: given,
        } => {
            let password = password(given, &format!("Password for {email}: "))?;
            let user = client.create_user(&email, &password, user_type).await?;
            ctx.out.say(&user, |u| {
                format!("Created {} ({}), id {}.", u.email, u.user_type, u.id)
            });
        }
        UsersCommand::List => {
            let users = client.get_users().await?;
            ctx.out.show(&users, |users| {
                let mut t = table(&["email", "type", "id", "banned"]);
                for u in users {
                    t.add_row(vec![
                        u.email.clone(),
                        u.user_type.to_string(),
                        u.id.to_string(),
                        when_opt(&u.banned_date),
                    ]);
                }
                t
            });
        }
        UsersCommand::Ban { email } => {
            let user = client.ban_user(&email).await?;
            ctx.out
                .say(&user, |u| format!("Banned {} for good.", u.email));
        }
    }
    Ok(())
}

/// A progress bar on stderr, when a person is watching it.
fn progress_bar(ctx: &Context, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if ctx.out.json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// `rafiki datasets ...`
pub async fn datasets(ctx: &Context, cmd: DatasetsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        DatasetsCommand::Upload {
            name,
            file,
            task,
            url,
        } => {
            let created = match (file, url) {
                (Some(file), None) => {
                    let total = std::fs::metadata(&file)
                        .map_err(|e| Failure::io(&file, e))?
                        .len();
                    let bar = progress_bar(ctx, total);
                    let shown = bar.clone();
                    let progress = Arc::new(move |sent: u64, _total: u64| shown.set_position(sent));
                    let created = client
                        .create_dataset_with_progress(&name, &task, &file, progress)
                        .await;
                    bar.finish_and_clear();
                    created?
                }
                (None, url) => {
                    client
                        .create_dataset(&name, &task, None, url.as_deref())
                        .await?
                }
                (Some(_), Some(_)) => {
                    return Err(Failure::usage("give a file or --url, not both"));
                }
            };
            ctx.out.say(&created, |d| {
                format!(
                    "Created dataset {} ({}, {}), id {}.",
                    d.name,
                    d.task,
                    size(d.size_bytes),
                    d.id
                )
            });
        }
        DatasetsCommand::List { task } => {
            let datasets = client.get_datasets(task.as_deref()).await?;
            ctx.out.show(&datasets, |datasets| {
                let mut t = table(&["id", "name", "task", "size", "created"]);
                for d in datasets {
                    t.add_row(vec![
                        d.id.to_string(),
                        d.name.clone(),
                        d.task.clone(),
                        size(d.size_bytes),
                        when(&d.datetime_created),
                    ]);
                }
                t
            });
        }
    }
    Ok(())
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

/// `rafiki models ...`
pub async fn models(ctx: &Context, cmd: ModelsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        ModelsCommand::Upload {
            name,
            file,
            task,
            model_class,
            dependencies,
            public,
            docker_image,
            dependency_pins,
        } => {
            let dependency_pins: Option<DependencyPins> = dependency_pins
                .map(|text| text.parse())
                .transpose()
                .map_err(|_| Failure::usage("--dependency-pins must be `strict` or `nearest`"))?;
            let dependencies: Option<Dependencies> = dependencies
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(|e| {
                    Failure::usage(format!(
                        "--dependencies must be a JSON object of package to version, e.g. \
                         '{{\"scikit-learn\": \"1.5.2\"}}': {e}"
                    ))
                })?;
            let access_right = if public {
                ModelAccessRight::Public
            } else {
                ModelAccessRight::Private
            };
            let model = client
                .create_model_with_pins(
                    &name,
                    &task,
                    &file,
                    &model_class,
                    dependencies.as_ref(),
                    access_right,
                    docker_image.as_deref(),
                    dependency_pins,
                )
                .await?;
            ctx.out.say(&model, |m| {
                format!("Created model {}, id {}.", m.name, m.id)
            });
        }
        ModelsCommand::List { task } => {
            let models = client.get_available_models(task.as_deref()).await?;
            ctx.out.show(&models, |models| {
                let mut t = table(&["id", "name", "task", "access", "dependencies", "created"]);
                for m in models {
                    t.add_row(vec![
                        m.id.to_string(),
                        m.name.clone(),
                        m.task.clone(),
                        m.access_right.to_string(),
                        dependencies_text(&m.dependencies),
                        when(&m.datetime_created),
                    ]);
                }
                t
            });
        }
        ModelsCommand::Show { id } => {
            let model = client.get_model(id).await?;
            ctx.out.show(&model, |m| {
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
            });
        }
        ModelsCommand::Download { id, out } => {
            let out = match out {
                Some(out) => out,
                None => PathBuf::from(format!("{}.py", client.get_model(id).await?.name)),
            };
            let model = client.download_model_file(id, &out).await?;
            let answer = json!({ "model": model, "path": out });
            ctx.out.say(&answer, |_| {
                format!(
                    "Saved the file of model {} to {}.",
                    model.name,
                    out.display()
                )
            });
        }
        ModelsCommand::Delete { id } => {
            let model = client.delete_model(id).await?;
            ctx.out.say(&model, |m| {
                format!("Deleted model {}, id {}.", m.name, m.id)
            });
        }
    }
    Ok(())
}

fn train_jobs_table(jobs: &[TrainJob]) -> comfy_table::Table {
    let mut t = table(&[
        "app", "version", "status", "task", "started", "stopped", "id",
    ]);
    for j in jobs {
        t.add_row(vec![
            j.app.clone(),
            j.app_version.to_string(),
            j.status.to_string(),
            j.task.clone(),
            when(&j.datetime_started),
            when_opt(&j.datetime_stopped),
            j.id.to_string(),
        ]);
    }
    t
}

fn parse_json_object(flag: &str, text: &str) -> Result<Value, Failure> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(Failure::usage(format!("{flag} must be a JSON object"))),
        Err(e) => Err(Failure::usage(format!("{flag} is not JSON: {e}"))),
    }
}

/// `rafiki train ...`
pub async fn train(ctx: &Context, cmd: TrainCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        TrainCommand::Create {
            app,
            task,
            train_dataset,
            val_dataset,
            models,
            time_hours,
            trial_count,
            gpus,
            train_args,
            watch,
            interval,
        } => {
            let train_args = train_args
                .map(|text| parse_json_object("--train-args", &text))
                .transpose()?;
            let mut budget = Budget::new();
            if let Some(hours) = time_hours {
                budget.insert(BudgetOption::TIME_HOURS.to_owned(), json!(hours));
            }
            if let Some(count) = trial_count {
                budget.insert(BudgetOption::MODEL_TRIAL_COUNT.to_owned(), json!(count));
            }
            if let Some(gpus) = gpus {
                budget.insert(BudgetOption::GPU_COUNT.to_owned(), json!(gpus));
            }
            let models = (!models.is_empty()).then_some(models);
            let job = client
                .create_train_job(
                    &app,
                    &task,
                    train_dataset,
                    val_dataset,
                    budget,
                    models,
                    train_args,
                )
                .await?;
            if watch {
                if !ctx.out.json {
                    println!(
                        "Created train job {} version {}, id {}.",
                        job.app, job.app_version, job.id
                    );
                }
                watch_train_job(ctx, &client, &job.app, job.app_version, interval).await?;
            } else {
                ctx.out.say(&job, |j| {
                    format!(
                        "Created train job {} version {}, id {}. Follow it with `rafiki train watch {} {}`.",
                        j.app, j.app_version, j.id, j.app, j.app_version
                    )
                });
            }
        }
        TrainCommand::Watch { job, interval } => {
            watch_train_job(ctx, &client, &job.app, job.app_version, interval).await?;
        }
        TrainCommand::List { app, user } => {
            let jobs = match (app, user) {
                (Some(app), _) => client.get_train_jobs_of_app(&app).await?,
                (None, user) => {
                    let user = user.unwrap_or(current_user(&client)?);
                    client.get_train_jobs_by_user(user).await?
                }
            };
            ctx.out.show(&jobs, |jobs| train_jobs_table(jobs));
        }
        TrainCommand::Show { job } => {
            let job = client.get_train_job(&job.app, job.app_version).await?;
            ctx.out.show(&job, |j| {
                record(vec![
                    ("app", j.app.clone()),
                    ("version", j.app_version.to_string()),
                    ("status", j.status.to_string()),
                    ("task", j.task.clone()),
                    ("id", j.id.to_string()),
                    ("train dataset", j.train_dataset_id.to_string()),
                    ("val dataset", j.val_dataset_id.to_string()),
                    (
                        "budget",
                        format!(
                            "TIME_HOURS={} MODEL_TRIAL_COUNT={} GPU_COUNT={}",
                            j.budget.time_hours, j.budget.model_trial_count, j.budget.gpu_count
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
            });
        }
        TrainCommand::Stop { job } => {
            let stopped = client.stop_train_job(&job.app, job.app_version).await?;
            ctx.out.say(&stopped, |j| {
                format!("Stopped train job {} version {}.", j.app, j.app_version)
            });
        }
    }
    Ok(())
}

fn current_user(client: &Client) -> Result<Uuid, Failure> {
    client
        .get_current_user()
        .map(|u| u.id)
        .ok_or_else(|| Failure::new("NotLoggedInError", "not logged in"))
}

/// Where a train job stands, as `rafiki train watch` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
struct Progress {
    status: JobStatus,
    trials_done: usize,
    trials_errored: usize,
    trials_running: usize,
    best_score: Option<f64>,
}

impl Progress {
    fn of(job: &TrainJob, trials: &[Trial]) -> Self {
        let count = |s: TrialStatus| trials.iter().filter(|t| t.status == s).count();
        Progress {
            status: job.status,
            trials_done: count(TrialStatus::Completed),
            trials_errored: count(TrialStatus::Errored),
            trials_running: count(TrialStatus::Running) + count(TrialStatus::Pending),
            best_score: trials
                .iter()
                .filter(|t| t.status == TrialStatus::Completed)
                .filter_map(|t| t.score)
                .reduce(f64::max),
        }
    }

    fn line(&self, app: &str, version: i32) -> String {
        format!(
            "{app} v{version}: {} | trials done {} (errored {}, running {}) | best score {}",
            self.status,
            self.trials_done,
            self.trials_errored,
            self.trials_running,
            score(self.best_score)
        )
    }
}

/// Follows a train job until it is no longer live: a spinner with its progress at a terminal
/// (a line per change otherwise, a JSON object per change with `--json`), and a line per
/// finished trial. An ERRORED job is a failure.
async fn watch_train_job(
    ctx: &Context,
    client: &Client,
    app: &str,
    app_version: i32,
    interval: f64,
) -> Result<(), Failure> {
    // Pin the version, so a newer job of the app does not take over the watch.
    let version = client.get_train_job(app, app_version).await?.app_version;
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    let live = !ctx.out.json && std::io::stderr().is_terminal();
    let spinner = if live {
        let spinner = ProgressBar::new_spinner();
        spinner.enable_steady_tick(Duration::from_millis(120));
        spinner
    } else {
        ProgressBar::hidden()
    };
    let mut reported: HashMap<Uuid, TrialStatus> = HashMap::new();
    let mut last: Option<Progress> = None;
    let job = loop {
        let job = client.get_train_job(app, version).await?;
        let trials = client.get_trials_of_train_job(app, version).await?;
        for t in trials.iter().rev() {
            let finished = matches!(t.status, TrialStatus::Completed | TrialStatus::Errored);
            if finished && reported.insert(t.id, t.status) != Some(t.status) && !ctx.out.json {
                let outcome = match t.status {
                    TrialStatus::Completed => format!("score {}", score(t.score)),
                    _ => t
                        .error
                        .as_deref()
                        .and_then(|e| e.lines().rev().find(|l| !l.trim().is_empty()))
                        .unwrap_or("no reason given")
                        .to_owned(),
                };
                spinner.suspend(|| {
                    println!(
                        "trial {} of {}: {} ({outcome})",
                        t.no, t.model_name, t.status
                    )
                });
            }
        }
        let progress = Progress::of(&job, &trials);
        if last.as_ref() != Some(&progress) {
            if ctx.out.json {
                println!("{}", serde_json::to_string(&progress).unwrap_or_default());
            } else if live {
                spinner.set_message(progress.line(app, version));
            } else {
                println!("{}", progress.line(app, version));
            }
            last = Some(progress);
        }
        if !job.status.is_live() {
            break job;
        }
        tokio::time::sleep(interval).await;
    };
    spinner.finish_and_clear();
    let progress = last.map(|p| p.line(app, version)).unwrap_or_default();
    if job.status == JobStatus::Errored {
        return Err(Failure::new(
            "TrainJobErrored",
            format!(
                "{progress}: {}",
                job.error.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    if live {
        println!("{progress}");
    }
    Ok(())
}

fn trials_table(trials: &[Trial]) -> comfy_table::Table {
    let mut t = table(&[
        "id", "model", "no", "status", "score", "params", "started", "stopped",
    ]);
    for trial in trials {
        t.add_row(vec![
            trial.id.to_string(),
            trial.model_name.clone(),
            trial.no.to_string(),
            trial.status.to_string(),
            score(trial.score),
            if trial.is_params_saved { "saved" } else { "-" }.to_owned(),
            when(&trial.datetime_started),
            when_opt(&trial.datetime_stopped),
        ]);
    }
    t
}

/// `rafiki trials ...`
pub async fn trials(ctx: &Context, cmd: TrialsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        TrialsCommand::List { job } => {
            let trials = client
                .get_trials_of_train_job(&job.app, job.app_version)
                .await?;
            ctx.out.show(&trials, |t| trials_table(t));
        }
        TrialsCommand::Best { job, max_count } => {
            let trials = client
                .get_best_trials_of_train_job(&job.app, job.app_version, max_count)
                .await?;
            ctx.out.show(&trials, |t| trials_table(t));
        }
        TrialsCommand::Show { id } => {
            let trial = client.get_trial(id).await?;
            ctx.out.show(&trial, |t| {
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
            });
        }
        TrialsCommand::Logs { id, width, height } => {
            let logs = client.get_trial_logs(id).await?;
            if ctx.out.json {
                crate::output::print_json(&logs);
            } else {
                print!("{}", render_logs(&logs, width, height));
            }
        }
    }
    Ok(())
}

fn parse_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The points of `metric` against `x_axis` (or seconds since `t0`).
fn points(
    logs: &TrialLogs,
    metric: &str,
    x_axis: Option<&str>,
    t0: Option<DateTime<Utc>>,
) -> Vec<(f64, f64)> {
    logs.metrics
        .iter()
        .filter_map(|entry| {
            let y = entry.get(metric)?.as_f64()?;
            let x = match x_axis {
                Some(axis) => entry.get(axis)?.as_f64()?,
                None => {
                    let elapsed = parse_time(entry.get("time"))? - t0?;
                    elapsed.num_milliseconds() as f64 / 1000.0
                }
            };
            Some((x, y))
        })
        .collect()
}

/// A trial's logs for people: its messages, then a chart per declared plot, then a chart per
/// metric no plot shows (against time).
pub fn render_logs(logs: &TrialLogs, width: usize, height: usize) -> String {
    let mut out = String::new();
    if logs.messages.is_empty() && logs.metrics.is_empty() && logs.plots.is_empty() {
        return "No logs.\n".to_owned();
    }
    if !logs.messages.is_empty() {
        let mut t = table(&["time", "message"]);
        for m in &logs.messages {
            t.add_row(vec![when(&m.time), m.message.clone()]);
        }
        out.push_str(&format!("{}\n\n", t.trim_fmt()));
    }
    let t0 = logs
        .metrics
        .iter()
        .filter_map(|e| parse_time(e.get("time")))
        .min();
    let mut plotted = BTreeSet::new();
    for plot in &logs.plots {
        let series: Vec<Series> = plot
            .metrics
            .iter()
            .map(|metric| Series {
                name: metric.clone(),
                points: points(logs, metric, plot.x_axis.as_deref(), t0),
            })
            .collect();
        plotted.extend(plot.metrics.iter().cloned());
        plotted.extend(plot.x_axis.iter().cloned());
        let x_label = plot.x_axis.as_deref().unwrap_or("seconds");
        out.push_str(&chart::render(&plot.title, x_label, &series, width, height));
        out.push('\n');
    }
    let others: BTreeSet<&String> = logs
        .metrics
        .iter()
        .flat_map(|entry| entry.keys())
        .filter(|name| *name != "time" && !plotted.contains(*name))
        .collect();
    for name in others {
        let series = [Series {
            name: name.clone(),
            points: points(logs, name, None, t0),
        }];
        out.push_str(&chart::render(name, "seconds", &series, width, height));
        out.push('\n');
    }
    out
}

fn preview(value: &ParamValue) -> (String, String, String) {
    const MAX: usize = 6;
    let list = |items: Vec<String>, total: usize| {
        let more = if total > MAX { ", ..." } else { "" };
        format!(
            "[{}{more}]",
            items.into_iter().take(MAX).collect::<Vec<_>>().join(", ")
        )
    };
    match value {
        ParamValue::Str(s) => {
            let short: String = s.chars().take(60).collect();
            let more = if short.len() < s.len() { "..." } else { "" };
            (String::new(), String::new(), format!("{short:?}{more}"))
        }
        ParamValue::Int(i) => (String::new(), String::new(), i.to_string()),
        ParamValue::Float(x) => (String::new(), String::new(), x.to_string()),
        ParamValue::Bool(b) => (String::new(), String::new(), b.to_string()),
        ParamValue::Bytes(b) => (String::new(), String::new(), size(b.len() as u64)),
        ParamValue::Array(a) | ParamValue::Scalar(a) => {
            let shape = format!("{:?}", a.shape());
            let values = if let Some(v) = a.to_f64_vec() {
                list(
                    v.iter().take(MAX).map(|x| chart::label(*x)).collect(),
                    v.len(),
                )
            } else if let Some(v) = a.to_string_vec() {
                let n = v.len();
                list(
                    v.into_iter().take(MAX).map(|s| format!("{s:?}")).collect(),
                    n,
                )
            } else if let Some(v) = a.to_i64_vec() {
                list(v.iter().take(MAX).map(i64::to_string).collect(), v.len())
            } else {
                size(a.data().len() as u64)
            };
            (a.dtype().to_string(), shape, values)
        }
    }
}

fn params_summary(params: &Parameters) -> (Value, comfy_table::Table) {
    let mut t = table(&["name", "kind", "dtype", "shape", "value"]);
    let mut entries = Vec::new();
    for (name, value) in params.iter() {
        let (dtype, shape, shown) = preview(value);
        entries.push(json!({"name": name, "kind": value.kind(), "dtype": dtype, "shape": shape, "value": shown}));
        t.add_row(vec![
            name.to_owned(),
            value.kind().to_owned(),
            dtype,
            shape,
            shown,
        ]);
    }
    (Value::Array(entries), t)
}

/// `rafiki params ...`
pub async fn params(ctx: &Context, cmd: ParamsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    let (trial_id, out) = match cmd {
        ParamsCommand::Download { trial_id, out } => (
            trial_id,
            Some(out.unwrap_or_else(|| PathBuf::from(format!("{trial_id}.params")))),
        ),
        ParamsCommand::Show { trial_id } => (trial_id, None),
    };
    let saved = client.get_trial_parameters(trial_id).await?;
    if let Some(out) = &out {
        write_atomically(out, &saved.bytes)?;
    }
    let (entries, t) = params_summary(&saved.params);
    let answer = json!({"path": out, "size_bytes": saved.bytes.len(), "entries": entries});
    ctx.out.say(&answer, |_| match &out {
        Some(path) => format!(
            "Saved {} of parameters to {}.\n{}",
            size(saved.bytes.len() as u64),
            path.display(),
            t.trim_fmt()
        ),
        None => t.trim_fmt(),
    });
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.part", std::process::id()));
    let temp = path.with_file_name(name);
    let result = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(Failure::io(path, e));
    }
    Ok(())
}

fn inference_jobs_table(jobs: &[InferenceJob]) -> comfy_table::Table {
    let mut t = table(&["app", "version", "status", "started", "stopped", "id"]);
    for j in jobs {
        t.add_row(vec![
            j.app.clone(),
            j.app_version.to_string(),
            j.status.to_string(),
            when(&j.datetime_started),
            when_opt(&j.datetime_stopped),
            j.id.to_string(),
        ]);
    }
    t
}

/// `rafiki inference ...`
pub async fn inference(ctx: &Context, cmd: InferenceCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        InferenceCommand::Create { job, gpus } => {
            let mut budget = Budget::new();
            if let Some(gpus) = gpus {
                budget.insert(InferenceBudgetOption::GPU_COUNT.to_owned(), json!(gpus));
            }
            let created = client
                .create_inference_job(&job.app, job.app_version, budget)
                .await?;
            ctx.out.say(&created, |j| {
                format!(
                    "Deploying {} version {}: inference job {}, predictor at {}.",
                    j.app, j.app_version, j.id, j.predictor_host
                )
            });
        }
        InferenceCommand::Status { job } => {
            let job = client
                .get_running_inference_job(&job.app, job.app_version)
                .await?;
            ctx.out.show(&job, |j| {
                record(vec![
                    ("app", j.app.clone()),
                    ("version", j.app_version.to_string()),
                    ("status", j.status.to_string()),
                    ("predictor", j.predictor_host.clone()),
                    ("id", j.id.to_string()),
                    ("train job", j.train_job_id.to_string()),
                    ("started", when(&j.datetime_started)),
                ])
            });
        }
        InferenceCommand::List { app, user } => {
            let jobs = match (app, user) {
                (Some(app), _) => client.get_inference_jobs_of_app(&app).await?,
                (None, user) => {
                    let user = user.unwrap_or(current_user(&client)?);
                    client.get_inference_jobs_by_user(user).await?
                }
            };
            ctx.out.show(&jobs, |jobs| inference_jobs_table(jobs));
        }
        InferenceCommand::Stop { job } => {
            let stopped = client.stop_inference_job(&job.app, job.app_version).await?;
            ctx.out.say(&stopped, |j| {
                format!(
                    "Stopped the inference job of {} version {}.",
                    j.app, j.app_version
                )
            });
        }
    }
    Ok(())
}

/// The predict request a JSON input stands for: `{"query": q}` and `{"queries": [...]}` as
/// they are, a list as its queries, anything else (or anything with `one`) as one query.
pub fn predict_request(input: Value, one: bool) -> Result<PredictRequest, Failure> {
    if one {
        return Ok(PredictRequest::Query(input));
    }
    match input {
        Value::Array(queries) => Ok(PredictRequest::Queries(queries)),
        Value::Object(map)
            if map.len() == 1 && (map.contains_key("query") || map.contains_key("queries")) =>
        {
            serde_json::from_value(Value::Object(map))
                .map_err(|e| Failure::usage(format!("the input is not a predict body: {e}")))
        }
        _ => Err(Failure::usage(
            "the input must be a JSON list of queries, {\"query\": q} or {\"queries\": [...]} \
             (or pass --one to send it as one query)",
        )),
    }
}

/// `rafiki predict`
pub async fn predict(ctx: &Context, args: PredictArgs) -> Result<(), Failure> {
    let text = match args.file.as_deref() {
        None => read_stdin()?,
        Some(path) if path == Path::new("-") => read_stdin()?,
        Some(path) => std::fs::read_to_string(path).map_err(|e| Failure::io(path, e))?,
    };
    let input: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("the queries are not JSON: {e}")))?;
    let request = predict_request(input, args.one)?;
    let (client, host) = match (args.predictor, args.app) {
        (Some(host), _) => (ctx.anonymous(), host),
        (None, Some(app)) => {
            let client = ctx.client()?;
            let host = client
                .get_running_inference_job(&app, args.app_version)
                .await?
                .predictor_host;
            (client, host)
        }
        (None, None) => return Err(Failure::usage("give --predictor HOST:PORT or --app APP")),
    };
    let answer = client.predict(&host, &request).await?;
    ctx.out.show(&answer, |a| match &request {
        PredictRequest::Query(_) => record(vec![(
            "prediction",
            a.prediction.as_ref().map_or("null".into(), compact),
        )]),
        PredictRequest::Queries(_) => {
            let mut t = table(&["#", "prediction"]);
            for (i, p) in a.predictions.iter().enumerate() {
                t.add_row(vec![i.to_string(), compact(p)]);
            }
            t
        }
    });
    Ok(())
}

fn read_stdin() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure::new("IoError", format!("cannot read stdin: {e}")))?;
    Ok(text)
}

/// `rafiki stop-all`
pub async fn stop_all(ctx: &Context) -> Result<(), Failure> {
    let stopped = ctx.client()?.stop_all_jobs().await?;
    ctx.out.say(&stopped, |s| {
        format!(
            "Stopped {} train job(s) and {} inference job(s).",
            s.train_jobs.len(),
            s.inference_jobs.len()
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predict_inputs_become_the_contracts_bodies() {
        assert_eq!(
            predict_request(json!([1, 2]), false).unwrap(),
            PredictRequest::Queries(vec![json!(1), json!(2)])
        );
        assert_eq!(
            predict_request(json!([1, 2]), true).unwrap(),
            PredictRequest::Query(json!([1, 2]))
        );
        assert_eq!(
            predict_request(json!({"query": {"a": 1}}), false).unwrap(),
            PredictRequest::Query(json!({"a": 1}))
        );
        assert_eq!(
            predict_request(json!({"queries": [3]}), false).unwrap(),
            PredictRequest::Queries(vec![json!(3)])
        );
        assert!(predict_request(json!({"a": 1}), false).is_err());
        assert!(predict_request(json!({"queries": 3}), false).is_err());
    }

    #[test]
    fn logs_show_messages_and_a_chart_per_plot_and_unplotted_metric() {
        let logs: TrialLogs = serde_json::from_value(json!({
            "plots": [{"title": "Loss", "metrics": ["loss"], "x_axis": "epoch",
                       "time": "2026-11-26T17:00:00Z"}],
            "metrics": [
                {"time": "2026-11-26T17:00:01Z", "loss": 2.0, "epoch": 1, "lr": 0.1},
                {"time": "2026-11-26T17:00:02Z", "loss": 1.0, "epoch": 2, "lr": 0.05},
                {"time": "2026-11-26T17:00:03Z", "loss": 0.5, "epoch": 3},
            ],
            "messages": [{"time": "2026-11-26T17:00:00Z", "message": "starting"}],
        }))
        .unwrap();
        let text = render_logs(&logs, 20, 4);
        assert!(text.contains("starting"), "{text}");
        assert!(text.contains("Loss\n"), "{text}");
        assert!(text.contains("x: epoch"), "{text}");
        assert!(
            text.contains("lr\n") && text.contains("x: seconds"),
            "{text}"
        );
        assert!(
            !text.contains("\nepoch\n"),
            "the x axis gets no chart of its own: {text}"
        );
        assert_eq!(render_logs(&TrialLogs::default(), 20, 4), "No logs.\n");
        assert_eq!(
            points(
                &logs,
                "lr",
                None,
                parse_time(Some(&json!("2026-11-26T17:00:01Z")))
            ),
            vec![(0.0, 0.1), (1.0, 0.05)]
        );
    }

    #[test]
    fn parameter_previews_are_short() {
        let params = rafiki_client::params::decode_params(&include_bytes_hex()).unwrap();
        let (entries, table) = params_summary(&params);
        let text = table.to_string();
        assert!(text.contains("<f4") && text.contains("[1, 2]"), "{text}");
        assert_eq!(entries[1]["value"], "3");
        assert_eq!(entries[2]["value"], "\"mlp\"");
    }

    /// The example of docs/parameters.md.
    fn include_bytes_hex() -> Vec<u8> {
        let doc = include_str!("../../../../../docs/parameters.md");
        let start = doc.find("<!-- example-hex-start -->").unwrap();
        let end = doc.find("<!-- example-hex-end -->").unwrap();
        doc[start..end]
            .lines()
            .filter_map(|l| l.split_once(": "))
            .flat_map(|(_, rest)| {
                rest.split(" | ")
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
