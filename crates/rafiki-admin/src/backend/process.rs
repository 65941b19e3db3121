//! The `process` backend: each service is a `rafiki-worker` child process on this host, in its
//! own process group, with its own working directory and log file under
//! `<data_dir>/services/<id>/`.
//!
//! Services outlive an admin restart (they are not killed when the admin exits); a restarted
//! admin recognises them by pid and by the service id in their environment, and stops them by
//! process group like its own children.
//!
//! Workers run model code in the bubblewrap sandbox unless the operator opted out
//! ([`crate::sandbox`]); the backend tells them which with `RAFIKI_SANDBOX`. They share one
//! store of dependency environments, `<data_dir>/envs` (`RAFIKI_VENV_DIR`), which models only
//! ever see read-only and only pip, sandboxed, writes (`docs/security.md`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use rafiki_types::internal::env;
use rafiki_types::status::ServiceType;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{Backend, BackendError, Launched, ServiceAddress, ServiceSpec, ServiceState};
use crate::sandbox::Isolation;

/// How long a stopped service gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs services as child processes.
pub struct ProcessBackend {
    worker_bin: PathBuf,
    predictor_bin: PathBuf,
    python: String,
    services_dir: PathBuf,
    envs_dir: PathBuf,
    sandbox: ProcessSandbox,
    children: Mutex<HashMap<u32, Child>>,
}

/// How the process backend's workers isolate model code.
#[derive(Debug, Clone)]
pub struct ProcessSandbox {
    /// bubblewrap, or nothing.
    pub isolation: Isolation,
    /// Whether model code may open network connections.
    pub network: bool,
    /// The bubblewrap program.
    pub bwrap: String,
    /// The most processes one sandbox may hold.
    pub max_procs: u64,
    /// The largest file model code may write, in MiB.
    pub max_file_mb: u64,
}

impl ProcessBackend {
    /// A backend launching `worker_bin` (workers, running models with `python` in `sandbox`)
    /// and `predictor_bin` (predictors), with service directories under `services_dir` and the
    /// workers' shared dependency environments in `envs_dir`. Paths are made absolute, since
    /// each service runs in its own working directory.
    pub fn new(
        worker_bin: PathBuf,
        predictor_bin: PathBuf,
        python: String,
        services_dir: PathBuf,
        envs_dir: PathBuf,
        sandbox: ProcessSandbox,
    ) -> std::io::Result<Self> {
        Ok(ProcessBackend {
            worker_bin: std::path::absolute(worker_bin)?,
            predictor_bin: std::path::absolute(predictor_bin)?,
            python: worker_program(&python),
            services_dir: std::path::absolute(services_dir)?,
            envs_dir: std::path::absolute(envs_dir)?,
            sandbox,
            children: Mutex::new(HashMap::new()),
        })
    }

    /// The directory of a service: its working directory and `service.log`.
    pub fn service_dir(&self, id: Uuid) -> PathBuf {
        self.services_dir.join(id.to_string())
    }
}

/// The environment every service starts from, before its own variables: the host's basics
/// and the settings passed through. Nothing else of the admin's (its secrets) reaches it.
pub fn service_base_env() -> impl Iterator<Item = (String, String)> {
    ["PATH", "HOME", "LANG", "TMPDIR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .chain(super::passed_through_env())
}

/// `program` as workers are given it: a relative path with a folder (`.venv/bin/python`) is
/// made absolute here, since each worker runs in a folder of its own. A bare name (`python3`)
/// is looked up on `PATH`, there as here.
pub fn worker_program(program: &str) -> String {
    let path = std::path::Path::new(program);
    if path.is_relative() && path.components().count() > 1 {
        if let Ok(absolute) = std::path::absolute(path) {
            return absolute.display().to_string();
        }
    }
    program.to_owned()
}

fn parse_pid(backend_id: &str) -> Option<u32> {
    backend_id.parse().ok().filter(|pid| *pid > 1)
}

/// Whether a process that is not our child is alive and is that service (pids get reused).
fn is_that_service(pid: u32, service_id: Uuid) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("RAFIKI_SERVICE_ID={service_id}");
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            // The state follows the parenthesised command name; Z is a zombie.
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false);
    alive
        && environ
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_bytes())
}

fn gpu_list(gpus: &[i32]) -> String {
    gpus.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn signal_group(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        // ESRCH (already gone) is the expected outcome of a race with the exit; ignore it.
        let _ = killpg(Pid::from_raw(raw), signal);
    }
}

#[async_trait::async_trait]
impl Backend for ProcessBackend {
    fn name(&self) -> rafiki_types::status::BackendKind {
        rafiki_types::status::BackendKind::Process
    }

    fn isolation(&self) -> Isolation {
        self.sandbox.isolation
    }

    fn address(&self, _service_id: Uuid, service_type: ServiceType) -> ServiceAddress {
        // Predictors face clients; inference workers only their predictor, on this host.
        let host = if service_type == ServiceType::Predict {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        };
        ServiceAddress {
            bind_host: host.to_owned(),
            reach_host: host.to_owned(),
        }
    }

    async fn start(&self, spec: &ServiceSpec) -> Result<Launched, BackendError> {
        let dir = self.service_dir(spec.id);
        let work_dir = dir.join("work");
        tokio::fs::create_dir_all(&work_dir)
            .await
            .map_err(|e| BackendError(format!("cannot create {}: {e}", work_dir.display())))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("service.log"))
            .map_err(|e| BackendError(format!("cannot open the service log: {e}")))?;
        let log_err = log
            .try_clone()
            .map_err(|e| BackendError(format!("cannot open the service log: {e}")))?;
        let mut command = match spec.service_type {
            ServiceType::Predict => Command::new(&self.predictor_bin),
            ServiceType::Inference => {
                let mut c = Command::new(&self.worker_bin);
                c.arg("inference");
                c
            }
            ServiceType::Train | ServiceType::Advisor => {
                let mut c = Command::new(&self.worker_bin);
                c.arg("train");
                c
            }
        };
        let program = if spec.service_type == ServiceType::Predict {
            &self.predictor_bin
        } else {
            &self.worker_bin
        };
        command
            .env_clear()
            .envs(service_base_env())
            .envs(&spec.env)
            .env(env::PYTHON, &self.python)
            .env("RAFIKI_SANDBOX", self.sandbox.isolation.worker_setting())
            .env(
                "RAFIKI_SANDBOX_NETWORK",
                if self.sandbox.network { "on" } else { "off" },
            )
            .env("RAFIKI_BWRAP", &self.sandbox.bwrap)
            .env(
                "RAFIKI_SANDBOX_MAX_PROCS",
                self.sandbox.max_procs.to_string(),
            )
            .env(
                "RAFIKI_SANDBOX_MAX_FILE_MB",
                self.sandbox.max_file_mb.to_string(),
            )
            // Host device ids: the process sees every GPU of the host.
            .env("CUDA_VISIBLE_DEVICES", gpu_list(&spec.gpus))
            .env(env::WORK_DIR, &work_dir)
            .env(env::VENV_DIR, &self.envs_dir)
            .current_dir(&work_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own group, so a Ctrl-C at the admin's terminal does not reach it; the worker
            // puts its Python child in a group of its own and kills it when it stops.
            .process_group(0)
            .kill_on_drop(false);
        let child = command
            .spawn()
            .map_err(|e| BackendError(format!("cannot start {}: {e}", program.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| BackendError("the worker exited at once".into()))?;
        self.children.lock().await.insert(pid, child);
        Ok(Launched {
            backend_id: pid.to_string(),
            published_port: None,
            published_host: None,
        })
    }

    async fn state(&self, service_id: Uuid, backend_id: &str) -> ServiceState {
        let Some(pid) = parse_pid(backend_id) else {
            return ServiceState::Missing;
        };
        let mut children = self.children.lock().await;
        if let Some(child) = children.get_mut(&pid) {
            return match child.try_wait() {
                Ok(None) => ServiceState::Running,
                Ok(Some(status)) => {
                    children.remove(&pid);
                    ServiceState::Exited(status.code())
                }
                Err(_) => ServiceState::Missing,
            };
        }
        if is_that_service(pid, service_id) {
            ServiceState::Running
        } else {
            ServiceState::Missing
        }
    }

    async fn stop(&self, service_id: Uuid, backend_id: &str) -> Result<(), BackendError> {
        let Some(pid) = parse_pid(backend_id) else {
            return Ok(());
        };
        let child = self.children.lock().await.remove(&pid);
        match child {
            Some(mut child) => {
                if child.try_wait().ok().flatten().is_some() {
                    return Ok(());
                }
                signal_group(pid, Signal::SIGTERM);
                if tokio::time::timeout(STOP_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    signal_group(pid, Signal::SIGKILL);
                    child
                        .wait()
                        .await
                        .map_err(|e| BackendError(format!("cannot reap worker {pid}: {e}")))?;
                }
                // Anything the worker left in its group (a Python child) goes too.
                signal_group(pid, Signal::SIGKILL);
            }
            None if is_that_service(pid, service_id) => {
                signal_group(pid, Signal::SIGTERM);
                let deadline = tokio::time::Instant::now() + STOP_GRACE;
                while is_that_service(pid, service_id) {
                    if tokio::time::Instant::now() >= deadline {
                        signal_group(pid, Signal::SIGKILL);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                while is_that_service(pid, service_id) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                signal_group(pid, Signal::SIGKILL);
            }
            None => {}
        }
        Ok(())
    }

    async fn reconcile(&self, _live: &[(Uuid, String)]) -> Result<usize, BackendError> {
        // Live services are adopted by pid (see `state`). Processes are known only by the pids
        // of live services, so there is nothing else to match here.
        Ok(0)
    }
}
