//! The Python model runtime as a child process (`python -m rafiki.runtime`), driven over the
//! newline-JSON protocol of `docs/runtime-protocol.md`.
//!
//! [`Runtime`] owns the child: it sends one request at a time with a fresh id, hands the
//! request's log events to a sink as they arrive, and returns the reply's result or a typed
//! [`RuntimeError`]. The child runs in its own process group, so stopping it (explicitly or on
//! drop) also ends whatever processes the model started. Its stderr is read continuously: each
//! line goes to the worker's log and, while a request runs, to the sink as a `MESSAGE`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rafiki_types::internal::{LogEntry, LogKind};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use crate::sandbox::{Purpose, Sandbox, SandboxError, View};

/// The protocol version this driver speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// How many stderr lines are kept for the report of a dead child.
const STDERR_TAIL: usize = 40;
/// The longest stderr line forwarded in one piece.
const MAX_STDERR_LINE: usize = 64 * 1024;

/// How to start the child.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The interpreter (`RAFIKI_PYTHON`, or a dependency environment's Python).
    pub python: PathBuf,
    /// The interpreter that has `rafiki` (`RAFIKI_PYTHON`); `python` was made from it.
    pub base_python: PathBuf,
    /// The child's working directory, the one folder it may write.
    pub cwd: PathBuf,
    /// Files and folders it may read besides the interpreter's (the model file, datasets,
    /// parameters, a dependency environment).
    pub read_only: Vec<PathBuf>,
    /// Where it runs. The service token never reaches it.
    pub sandbox: Sandbox,
    /// How long the child may take to say `ready`.
    pub ready_timeout: Duration,
}

impl RuntimeConfig {
    /// `python` in `cwd`, unsandboxed, with a minute to start.
    pub fn new(python: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Self {
        let python = python.into();
        RuntimeConfig {
            base_python: python.clone(),
            python,
            cwd: cwd.into(),
            read_only: Vec::new(),
            sandbox: Sandbox::Off,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// The `ready` message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ready {
    /// Protocol version.
    pub protocol: u32,
    /// The child's pid.
    pub pid: u32,
    /// Python version.
    pub python: String,
    /// `rafiki` package version.
    pub rafiki: String,
}

/// Where a log event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// `rafiki.model.logger`.
    Logger,
    /// A line the model printed from Python.
    Stdout,
    /// A line on the child's stderr (warnings, C-level output).
    Stderr,
}

/// One log event of a request, as a trial log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeEvent {
    /// Where it came from.
    pub source: EventSource,
    /// The entry to forward.
    pub entry: LogEntry,
}

impl RuntimeEvent {
    /// The text of a `MESSAGE` event.
    pub fn message(&self) -> Option<&str> {
        match self.entry.kind {
            LogKind::Message => self.entry.body.get("message").and_then(Value::as_str),
            _ => None,
        }
    }
}

/// `error.kind` of an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request was malformed (a worker bug, or a path that vanished).
    BadRequest,
    /// The command does not fit the runtime's state.
    InvalidState,
    /// The model file or class cannot be loaded.
    InvalidModel,
    /// A model method raised.
    ModelError,
    /// A model method returned something the SDK contract forbids.
    InvalidReturn,
    /// A parameters file cannot be read.
    InvalidParams,
    /// A file cannot be written.
    IoError,
    /// A bug in the runtime.
    InternalError,
    /// `train` stopped at a log call after the worker asked it to (docs/pruning.md).
    Pruned,
    /// A kind this driver does not know.
    #[serde(other)]
    Other,
}

/// An error reply.
#[derive(Debug, Clone, PartialEq, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// What failed.
    pub kind: ErrorKind,
    /// The Python exception class, or the kind.
    #[serde(rename = "type")]
    pub exc_type: String,
    /// One line for a person.
    pub message: String,
    /// The Python traceback, for model errors.
    pub traceback: Option<String>,
}

impl CommandError {
    /// The message followed by the traceback, as reported to users.
    pub fn report(&self) -> String {
        match &self.traceback {
            Some(tb) if !tb.trim().is_empty() => format!("{}\n\n{}", self.message, tb.trim_end()),
            _ => self.message.clone(),
        }
    }
}

/// Why a request (or starting the child) failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The interpreter could not be started.
    #[error("cannot start {python}: {source}")]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The child ended (or closed its channel) without answering.
    #[error("the Python runtime died during `{during}` ({}){}", describe_status(.status), describe_tail(.stderr_tail))]
    Died {
        /// The command (or `start`).
        during: String,
        /// Its exit status, if it could be collected.
        status: Option<ExitStatus>,
        /// Its last stderr lines.
        stderr_tail: String,
    },
    /// The child said something the protocol does not allow; it is stopped.
    #[error("the Python runtime broke the protocol: {0}")]
    Protocol(String),
    /// The child did not say `ready` in time.
    #[error("the Python runtime was not ready within {0:?}")]
    ReadyTimeout(Duration),
    /// The command failed in the child, which is still usable.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The interpreter cannot run the runtime at all: it does not exist, cannot be executed,
    /// or cannot import the `rafiki` package. Starting it again cannot help, so the job is
    /// failed with this report rather than the worker crashing and being restarted.
    #[error("cannot start the model runtime with {python}: {cause} ({})", unusable_hint(.cause))]
    Unusable {
        /// The interpreter.
        python: PathBuf,
        /// What it said, or why it could not be run.
        cause: String,
    },
}

impl RuntimeError {
    /// Whether the child is gone or unusable, so it must be started again.
    pub fn needs_restart(&self) -> bool {
        !matches!(self, RuntimeError::Command(_))
    }

    /// The text reported to users: a command's message with its traceback, else the error.
    pub fn report(&self) -> String {
        match self {
            RuntimeError::Command(e) => e.report(),
            other => other.to_string(),
        }
    }
}

/// What to do about an [`RuntimeError::Unusable`] interpreter.
fn unusable_hint(cause: &str) -> &'static str {
    if cause.contains("No module named 'rafiki'") || cause.contains("No module named rafiki") {
        "the workers' interpreter lacks the rafiki package; see RAFIKI_PYTHON"
    } else {
        "the workers' interpreter, RAFIKI_PYTHON, must be Python 3.9 or newer with the rafiki \
         package installed"
    }
}

/// Why an interpreter that could not be spawned cannot run the runtime at all: it is missing
/// or not executable. Other spawn failures (no memory, a full process table) may pass, so the
/// worker crashes and is restarted.
fn unusable_spawn(source: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind;
    matches!(
        source.kind(),
        ErrorKind::NotFound | ErrorKind::PermissionDenied
    )
    .then(|| source.to_string())
}

/// `error` of a child that did not become ready, as [`RuntimeError::Unusable`] when Python's
/// last words say its interpreter cannot run the runtime at all: a module it cannot find (no
/// `rafiki`, or not its requirements), an import that fails, or syntax it cannot read (a Python
/// too old for the package). Those repeat on every start. A child killed by a signal, or one
/// that ended saying something else, may have met a passing trouble (memory, say) and stays a
/// crash.
fn unusable_if_it_says_so(error: RuntimeError, python: &Path) -> RuntimeError {
    let RuntimeError::Died {
        status: Some(status),
        stderr_tail,
        ..
    } = &error
    else {
        return error;
    };
    let last = stderr_tail.lines().map(str::trim).rfind(|l| !l.is_empty());
    match last.and_then(import_failure) {
        Some(cause) if status.code().is_some() => RuntimeError::Unusable {
            python: python.to_owned(),
            cause: cause.to_owned(),
        },
        _ => error,
    }
}

/// The exception of Python's last line when it says the runtime cannot be imported, without
/// what `python -m` puts around it (`<python>: Error while finding module specification for
/// 'rafiki.runtime' (<exception>)`, `<python>: No module named rafiki.runtime`).
fn import_failure(last: &str) -> Option<&str> {
    for exception in ["ModuleNotFoundError", "ImportError", "SyntaxError"] {
        if last.starts_with(&format!("{exception}:")) {
            return Some(last);
        }
        if let Some(at) = last.find(&format!("({exception}: ")) {
            let wrapped = &last[at + 1..];
            return Some(wrapped.strip_suffix(')').unwrap_or(wrapped));
        }
    }
    last.find(": No module named ").map(|at| &last[at + 2..])
}

fn describe_status(status: &Option<ExitStatus>) -> String {
    status.map_or_else(|| "exit status unknown".to_owned(), |s| s.to_string())
}

fn describe_tail(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its last stderr lines:\n{tail}")
    }
}

/// What `dump_parameters` reports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DumpInfo {
    /// Size of the written file.
    pub size_bytes: u64,
    /// The dict's keys.
    pub keys: Vec<String>,
}

/// A message from the child.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Message {
    Ready(Ready),
    Log {
        id: Value,
        source: String,
        log: Value,
    },
    Reply {
        id: Value,
        ok: bool,
        #[serde(default)]
        result: Option<Value>,
        #[serde(default)]
        error: Option<CommandError>,
    },
    #[serde(other)]
    Unknown,
}

/// A line from the child.
enum Input {
    Stdout(std::io::Result<Option<String>>),
    Stderr(String),
}

/// A running `python -m rafiki.runtime`.
pub struct Runtime {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: mpsc::UnboundedReceiver<String>,
    stderr_tail: VecDeque<String>,
    next_id: u64,
    ready: Ready,
    /// Set once the child is known to be gone or broken: no more requests.
    broken: bool,
}

impl Runtime {
    /// Starts the child and waits for its `ready`.
    pub async fn start(config: &RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let view = View {
            read_only: config.read_only.clone(),
            read_write: vec![config.cwd.clone()],
            cwd: config.cwd.clone(),
            purpose: Purpose::RunModel,
            env: vec![("PYTHONUNBUFFERED".to_owned(), "1".to_owned())],
        };
        let spawn_error = |python: &Path, source: std::io::Error| match unusable_spawn(&source) {
            Some(cause) => RuntimeError::Unusable {
                python: python.to_owned(),
                cause,
            },
            None => RuntimeError::Spawn {
                python: python.to_owned(),
                source,
            },
        };
        let mut command = config
            .sandbox
            .command(
                &config.base_python,
                &config.python,
                &["-m", "rafiki.runtime"],
                &view,
            )
            .await
            .map_err(|e| match e {
                SandboxError::Spawn { python, source } => spawn_error(&python, source),
                e => spawn_error(&config.python, std::io::Error::other(e)),
            })?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: the worker's terminal signals do not reach it, and killing the
            // group reaches the model's own children.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| match config.sandbox {
            Sandbox::Off => spawn_error(&config.python, source),
            // The program is bubblewrap, which cannot tell about the interpreter; that ran
            // already, when the sandbox looked up its folders.
            Sandbox::Bwrap(_) => RuntimeError::Spawn {
                python: config.python.clone(),
                source,
            },
        })?;
        let pid = child.id().expect("a just-spawned child has a pid");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(pump_stderr(stderr, pid, tx));
        let mut runtime = Runtime {
            child,
            pid,
            stdin,
            stdout,
            stderr: rx,
            stderr_tail: VecDeque::new(),
            next_id: 1,
            ready: Ready {
                protocol: 0,
                pid,
                python: String::new(),
                rafiki: String::new(),
            },
            broken: false,
        };
        match tokio::time::timeout(config.ready_timeout, runtime.await_ready()).await {
            Ok(Ok(ready)) => {
                tracing::info!(pid, python = %ready.python, rafiki = %ready.rafiki, "model runtime ready");
                runtime.ready = ready;
                Ok(runtime)
            }
            Ok(Err(e)) => {
                runtime.kill().await;
                Err(unusable_if_it_says_so(e, &config.python))
            }
            Err(_) => {
                runtime.kill().await;
                Err(RuntimeError::ReadyTimeout(config.ready_timeout))
            }
        }
    }

    async fn await_ready(&mut self) -> Result<Ready, RuntimeError> {
        let line = loop {
            match self.next_input().await {
                Input::Stdout(line) => break line,
                Input::Stderr(line) => self.remember(line),
            }
        };
        match line {
            Ok(Some(line)) => match serde_json::from_str::<Message>(&line) {
                Ok(Message::Ready(ready)) if ready.protocol == PROTOCOL_VERSION => Ok(ready),
                Ok(Message::Ready(ready)) => Err(RuntimeError::Protocol(format!(
                    "protocol version {} (this worker speaks {PROTOCOL_VERSION})",
                    ready.protocol
                ))),
                _ => Err(RuntimeError::Protocol(format!(
                    "expected `ready`, got {}",
                    preview(&line)
                ))),
            },
            Ok(None) | Err(_) => Err(self.died("start").await),
        }
    }

    /// The child's `ready` message.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `cmd` with `args`, passes the request's log events to `sink` in order, and
    /// returns the reply's `result`.
    pub async fn request(
        &mut self,
        cmd: &str,
        args: Value,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<Value, RuntimeError> {
        self.exchange(cmd, args, sink, None)
            .await
            .map(|(result, _)| result)
    }

    /// [`Runtime::request`], and while it runs, once `stop` turns true, tells the child to
    /// stop the request at the model's next log call (a `control` line, docs/runtime-protocol.md).
    /// Also answers whether it did.
    async fn exchange(
        &mut self,
        cmd: &str,
        args: Value,
        sink: &mut dyn FnMut(RuntimeEvent),
        mut stop: Option<&mut watch::Receiver<bool>>,
    ) -> Result<(Value, bool), RuntimeError> {
        if self.broken {
            return Err(RuntimeError::Died {
                during: cmd.to_owned(),
                status: self.child.try_wait().ok().flatten(),
                stderr_tail: self.tail_text(),
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&json!({"id": id, "cmd": cmd, "args": args}))
            .expect("requests serialise");
        line.push(b'\n');
        let sent = async {
            self.stdin.write_all(&line).await?;
            self.stdin.flush().await
        }
        .await;
        if sent.is_err() {
            return Err(self.died_telling(cmd, sink).await);
        }
        let mut stop_sent = false;
        loop {
            let input = match stop.as_deref_mut() {
                Some(rx) if !stop_sent => tokio::select! {
                    input = self.next_input() => Some(input),
                    changed = rx.changed() => match changed {
                        Ok(()) => {
                            stop_sent = *rx.borrow_and_update();
                            None
                        }
                        // Whoever could ask for the stop is gone: it never will.
                        Err(_) => {
                            stop = None;
                            None
                        }
                    },
                },
                _ => Some(self.next_input().await),
            };
            let Some(input) = input else {
                if stop_sent {
                    let mut line = serde_json::to_vec(&json!({"control": "stop", "id": id}))
                        .expect("control lines serialise");
                    line.push(b'\n');
                    // A child that cannot read it any more is seen dying by the read loop.
                    let _ = async {
                        self.stdin.write_all(&line).await?;
                        self.stdin.flush().await
                    }
                    .await;
                    tracing::info!(
                        pid = self.pid,
                        request = id,
                        "asked the model to stop `{cmd}`"
                    );
                }
                continue;
            };
            let line = match input {
                Input::Stdout(line) => line,
                Input::Stderr(line) => {
                    sink(stderr_event(&line));
                    self.remember(line);
                    continue;
                }
            };
            let line = match line {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => return Err(self.died_telling(cmd, sink).await),
            };
            if line.trim().is_empty() {
                continue;
            }
            let message = match serde_json::from_str::<Message>(&line) {
                Ok(message) => message,
                Err(e) => {
                    return Err(self
                        .broke(format!("unreadable message ({e}): {}", preview(&line)))
                        .await)
                }
            };
            match message {
                Message::Log {
                    id: of,
                    source,
                    log,
                } if of == json!(id) => match log_event(&source, &log) {
                    Some(event) => sink(event),
                    None => tracing::warn!(
                        pid = self.pid,
                        "ignoring a malformed log event: {}",
                        preview(&line)
                    ),
                },
                Message::Reply {
                    id: of,
                    ok,
                    result,
                    error,
                } if of == json!(id) => {
                    return match (ok, result, error) {
                        (true, Some(result), _) => Ok((result, stop_sent)),
                        (true, None, _) => Ok((Value::Object(Default::default()), stop_sent)),
                        (false, _, Some(error)) if stop_sent && error.kind == ErrorKind::Pruned => {
                            Ok((Value::Object(Default::default()), true))
                        }
                        (false, _, Some(error)) => Err(RuntimeError::Command(error)),
                        (false, _, None) => Err(self
                            .broke("an error reply without `error`".to_owned())
                            .await),
                    };
                }
                Message::Ready(_) | Message::Log { .. } | Message::Reply { .. } => {
                    return Err(self
                        .broke(format!(
                            "unexpected message while waiting for request {id}: {}",
                            preview(&line)
                        ))
                        .await)
                }
                Message::Unknown => {
                    tracing::warn!(
                        pid = self.pid,
                        "ignoring an unknown message: {}",
                        preview(&line)
                    )
                }
            }
        }
    }

    /// The next line from stdout or stderr, whichever comes first.
    async fn next_input(&mut self) -> Input {
        tokio::select! {
            line = self.stdout.next_line() => Input::Stdout(line),
            Some(line) = self.stderr.recv() => Input::Stderr(line),
        }
    }

    /// stderr lines that arrived since the last request, as events (they are in the worker's
    /// log already).
    pub fn take_stderr(&mut self) -> Vec<RuntimeEvent> {
        let mut events = Vec::new();
        while let Ok(line) = self.stderr.try_recv() {
            events.push(stderr_event(&line));
            self.remember(line);
        }
        events
    }

    /// `ping`: the child's pid.
    pub async fn ping(&mut self) -> Result<u32, RuntimeError> {
        let result = self.request("ping", json!({}), &mut |_| {}).await?;
        field(&result, "pid")
    }

    /// `load_model_class`.
    pub async fn load_model_class(
        &mut self,
        model_file_path: &Path,
        model_class: &str,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<(), RuntimeError> {
        let args = json!({"model_file_path": model_file_path, "model_class": model_class});
        self.request("load_model_class", args, sink).await.map(drop)
    }

    /// `get_knob_config`: the knob config JSON of `docs/knobs.md`.
    pub async fn get_knob_config(
        &mut self,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<Value, RuntimeError> {
        let result = self.request("get_knob_config", json!({}), sink).await?;
        match result.get("knob_config") {
            Some(config @ Value::Object(_)) => Ok(config.clone()),
            _ => Err(self
                .broke("`get_knob_config` without a `knob_config` object".to_owned())
                .await),
        }
    }

    /// `train`: creates the instance with `knobs` and trains it.
    pub async fn train(
        &mut self,
        knobs: &Value,
        dataset_path: &Path,
        train_args: Option<&Value>,
        shared_params_path: Option<&Path>,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<(), RuntimeError> {
        self.train_stoppable(
            knobs,
            dataset_path,
            train_args,
            shared_params_path,
            None,
            sink,
        )
        .await
        .map(drop)
    }

    /// [`Runtime::train`]; once `stop` turns true the model is stopped at its next log call.
    /// Answers whether it was asked to stop (then it stopped early, or finished without
    /// logging again).
    pub async fn train_stoppable(
        &mut self,
        knobs: &Value,
        dataset_path: &Path,
        train_args: Option<&Value>,
        shared_params_path: Option<&Path>,
        stop: Option<&mut watch::Receiver<bool>>,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<bool, RuntimeError> {
        let args = json!({
            "knobs": knobs,
            "dataset_path": dataset_path,
            "train_args": train_args,
            "shared_params_path": shared_params_path,
        });
        let (_, stopped) = self.exchange("train", args, sink, stop).await?;
        Ok(stopped)
    }

    /// `evaluate`: the score on `dataset_path`.
    pub async fn evaluate(
        &mut self,
        dataset_path: &Path,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<f64, RuntimeError> {
        let result = self
            .request("evaluate", json!({"dataset_path": dataset_path}), sink)
            .await?;
        match result.get("score").and_then(Value::as_f64) {
            Some(score) if score.is_finite() => Ok(score),
            _ => Err(self
                .broke(format!("`evaluate` answered {result} without a score"))
                .await),
        }
    }

    /// `dump_parameters` into `path`.
    pub async fn dump_parameters(
        &mut self,
        path: &Path,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<DumpInfo, RuntimeError> {
        let result = self
            .request("dump_parameters", json!({"path": path}), sink)
            .await?;
        match serde_json::from_value(result.clone()) {
            Ok(info) => Ok(info),
            Err(_) => Err(self
                .broke(format!("`dump_parameters` answered {result}"))
                .await),
        }
    }

    /// `destroy`: whether there was an instance.
    pub async fn destroy(
        &mut self,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<bool, RuntimeError> {
        let result = self.request("destroy", json!({}), sink).await?;
        field(&result, "destroyed")
    }

    /// Asks the child to shut down (destroying the instance, tearing the class down) and waits
    /// up to `grace` for it to exit; then kills its process group in any case.
    pub async fn shutdown(mut self, grace: Duration) {
        if !self.broken {
            let polite = async {
                let _ = self.request("shutdown", json!({}), &mut |_| {}).await;
                let _ = self.child.wait().await;
            };
            if tokio::time::timeout(grace, polite).await.is_err() {
                tracing::warn!(
                    pid = self.pid,
                    "the model runtime did not shut down in {grace:?}; killing it"
                );
            }
        }
        self.kill().await;
    }

    /// Kills the child's process group and reaps the child.
    pub async fn kill(&mut self) {
        self.broken = true;
        kill_group(self.pid);
        let _ = self.child.wait().await;
    }

    /// Marks the child dead and describes it, after collecting its status and last words.
    async fn died(&mut self, during: &str) -> RuntimeError {
        self.died_telling(during, &mut |_| {}).await
    }

    /// [`Runtime::died`], passing the child's last stderr lines to `sink` too.
    async fn died_telling(
        &mut self,
        during: &str,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> RuntimeError {
        self.broken = true;
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                // Its stdout closed but it lingers: finish it.
                kill_group(self.pid);
                self.child.wait().await.ok()
            }
        };
        // The stderr pump ends at end-of-file; give it a moment to deliver the last lines.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(line) = self.stderr.recv().await {
                sink(stderr_event(&line));
                self.remember(line);
            }
        })
        .await;
        tracing::warn!(
            pid = self.pid,
            ?status,
            "the model runtime died during `{during}`"
        );
        RuntimeError::Died {
            during: during.to_owned(),
            status,
            stderr_tail: self.tail_text(),
        }
    }

    /// Stops a child that broke the protocol.
    async fn broke(&mut self, reason: String) -> RuntimeError {
        tracing::error!(
            pid = self.pid,
            "the model runtime broke the protocol: {reason}"
        );
        self.kill().await;
        RuntimeError::Protocol(reason)
    }

    fn remember(&mut self, line: String) {
        if self.stderr_tail.len() == STDERR_TAIL {
            self.stderr_tail.pop_front();
        }
        self.stderr_tail.push_back(line);
    }

    fn tail_text(&self) -> String {
        self.stderr_tail
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // The group may hold the model's own children even when the child itself has exited.
        kill_group(self.pid);
    }
}

/// SIGKILL to the process group `pgid`; a group that is gone already is fine.
fn kill_group(pgid: u32) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    match killpg(Pid::from_raw(raw), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, "cannot kill the model's process group: {e}"),
    }
}

/// Reads the child's stderr line by line into the worker's log and `tx` until end-of-file.
async fn pump_stderr(
    stderr: tokio::process::ChildStderr,
    pid: u32,
    tx: mpsc::UnboundedSender<String>,
) {
    let mut reader = BufReader::new(stderr);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match (&mut reader)
            .take(MAX_STDERR_LINE as u64)
            .read_until(b'\n', &mut buffer)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer);
                let line = text.trim_end_matches(['\n', '\r']);
                if line.trim().is_empty() {
                    continue;
                }
                tracing::info!(target: "rafiki_worker::model", pid, "{line}");
                // The receiver is gone once the runtime is dropped; keep draining regardless
                // so the child never blocks on a full pipe.
                let _ = tx.send(line.to_owned());
            }
        }
    }
}

fn stderr_event(line: &str) -> RuntimeEvent {
    RuntimeEvent {
        source: EventSource::Stderr,
        entry: LogEntry {
            time: Utc::now(),
            kind: LogKind::Message,
            body: json!({"message": line}),
        },
    }
}

/// A `log` message's `log` object as a trial log entry.
fn log_event(source: &str, log: &Value) -> Option<RuntimeEvent> {
    let source = match source {
        "logger" => EventSource::Logger,
        "stdout" => EventSource::Stdout,
        _ => return None,
    };
    let time = log
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let (kind, body) = match log.get("type").and_then(Value::as_str)? {
        "MESSAGE" => (
            LogKind::Message,
            json!({"message": log.get("message")?.as_str()?}),
        ),
        "METRICS" => (LogKind::Metrics, log.get("metrics")?.clone()),
        "PLOT" => (
            LogKind::Plot,
            json!({
                "title": log.get("title")?,
                "metrics": log.get("metrics")?,
                "x_axis": log.get("x_axis").cloned().unwrap_or(Value::Null),
            }),
        ),
        _ => return None,
    };
    Some(RuntimeEvent {
        source,
        entry: LogEntry { time, kind, body },
    })
}

fn field<T: serde::de::DeserializeOwned>(result: &Value, name: &str) -> Result<T, RuntimeError> {
    result
        .get(name)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .ok_or_else(|| RuntimeError::Protocol(format!("a result without `{name}`: {result}")))
}

fn preview(line: &str) -> String {
    let mut cut: String = line.chars().take(300).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_messages_become_entries_of_their_kind() {
        let metrics = log_event(
            "logger",
            &json!({"type": "METRICS", "time": "2026-11-26T17:02:03.120Z", "metrics": {"loss": 0.5, "epoch": 1}}),
        )
        .unwrap();
        assert_eq!(metrics.source, EventSource::Logger);
        assert_eq!(metrics.entry.kind, LogKind::Metrics);
        assert_eq!(metrics.entry.body, json!({"loss": 0.5, "epoch": 1}));
        assert_eq!(
            metrics.entry.time,
            DateTime::parse_from_rfc3339("2026-11-26T17:02:03.120Z").unwrap()
        );
        let plot = log_event(
            "logger",
            &json!({"type": "PLOT", "time": "2026-11-26T17:02:03.120Z", "title": "Loss", "metrics": ["loss"]}),
        )
        .unwrap();
        assert_eq!(
            plot.entry.body,
            json!({"title": "Loss", "metrics": ["loss"], "x_axis": null})
        );
        let printed = log_event(
            "stdout",
            &json!({"type": "MESSAGE", "time": "2026-11-26T17:02:03.120Z", "message": "hi"}),
        )
        .unwrap();
        assert_eq!(printed.message(), Some("hi"));
        assert!(log_event("logger", &json!({"type": "MESSAGE"})).is_none());
        assert!(log_event("elsewhere", &json!({"type": "MESSAGE", "message": "x"})).is_none());
    }

    #[test]
    fn error_replies_read_with_their_traceback() {
        let error: CommandError = serde_json::from_value(json!({
            "kind": "model_error", "type": "ValueError",
            "message": "M.train() raised ValueError: bad", "traceback": "Traceback ...\nValueError: bad\n"
        }))
        .unwrap();
        assert_eq!(error.kind, ErrorKind::ModelError);
        assert_eq!(
            error.report(),
            "M.train() raised ValueError: bad\n\nTraceback ...\nValueError: bad"
        );
        let future: CommandError = serde_json::from_value(
            json!({"kind": "new_kind", "type": "new_kind", "message": "m", "traceback": null}),
        )
        .unwrap();
        assert_eq!(future.kind, ErrorKind::Other);
        assert_eq!(future.report(), "m");
    }

    fn died_at_start(status: Option<ExitStatus>, stderr_tail: &str) -> RuntimeError {
        RuntimeError::Died {
            during: "start".to_owned(),
            status,
            stderr_tail: stderr_tail.to_owned(),
        }
    }

    #[test]
    fn an_interpreter_that_cannot_import_the_runtime_is_unusable() {
        use std::os::unix::process::ExitStatusExt;
        let python = Path::new("/usr/bin/python3");
        let exited = Some(ExitStatus::from_raw(1 << 8));
        for (last_words, cause) in [
            (
                "/usr/bin/python3: Error while finding module specification for 'rafiki.runtime' \
                 (ModuleNotFoundError: No module named 'rafiki')",
                "ModuleNotFoundError: No module named 'rafiki'",
            ),
            (
                "/usr/bin/python3: No module named rafiki.runtime",
                "No module named rafiki.runtime",
            ),
            (
                "Traceback (most recent call last):\n  ...\nImportError: cannot import name 'x'",
                "ImportError: cannot import name 'x'",
            ),
            (
                "  File \"x.py\", line 3\n    def f(a, /): ...\nSyntaxError: invalid syntax\n",
                "SyntaxError: invalid syntax",
            ),
        ] {
            let error = unusable_if_it_says_so(died_at_start(exited, last_words), python);
            let RuntimeError::Unusable { cause: found, .. } = &error else {
                panic!("{last_words}: {error:?}");
            };
            assert_eq!(found, cause);
            assert!(error.to_string().contains("RAFIKI_PYTHON"), "{error}");
        }
        let missing = unusable_if_it_says_so(
            died_at_start(
                exited,
                "Traceback ...\nModuleNotFoundError: No module named 'rafiki'",
            ),
            python,
        );
        assert_eq!(
            missing.to_string(),
            "cannot start the model runtime with /usr/bin/python3: ModuleNotFoundError: No module \
             named 'rafiki' (the workers' interpreter lacks the rafiki package; see RAFIKI_PYTHON)"
        );
        let numpy = unusable_if_it_says_so(
            died_at_start(exited, "ModuleNotFoundError: No module named 'numpy'"),
            python,
        );
        assert!(
            numpy.to_string().ends_with(
                "(the workers' interpreter, RAFIKI_PYTHON, must be Python 3.9 or newer with the \
                 rafiki package installed)"
            ),
            "{numpy}"
        );
    }

    #[test]
    fn a_start_that_may_work_next_time_stays_a_crash() {
        use std::os::unix::process::ExitStatusExt;
        let python = Path::new("/usr/bin/python3");
        let no_module = "ModuleNotFoundError: No module named 'rafiki'";
        let killed = Some(ExitStatus::from_raw(9)); // SIGKILL, e.g. out of memory
        let exited = Some(ExitStatus::from_raw(1 << 8));
        for error in [
            died_at_start(killed, no_module),
            died_at_start(None, no_module),
            died_at_start(exited, "MemoryError"),
            died_at_start(exited, ""),
            RuntimeError::ReadyTimeout(Duration::from_secs(60)),
        ] {
            let judged = unusable_if_it_says_so(error, python);
            assert!(
                !matches!(judged, RuntimeError::Unusable { .. }),
                "{judged:?}"
            );
        }
        let busy = std::io::Error::from_raw_os_error(nix::libc::EAGAIN);
        assert_eq!(unusable_spawn(&busy), None);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(unusable_spawn(&missing).is_some());
    }
}
