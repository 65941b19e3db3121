//! The sandbox model code runs in. Every Python process the worker starts for a model — the
//! runtime that loads and runs it, the `pip install` of its dependencies, the checks of a
//! dependency environment — is built by [`Sandbox::command`].
//!
//! `RAFIKI_SANDBOX=bwrap` runs them under bubblewrap: new user, PID, IPC, UTS, cgroup and
//! network namespaces (so no other process, its environment or `/proc` entry is visible, and no
//! socket reaches anything), no capabilities, no nested user namespaces, a clean environment
//! (the service token and every admin variable stay outside), and a file system made of the
//! read-only system (`/usr`, a few files of `/etc`), the interpreter's own folders read-only,
//! the folders the caller names ([`View`]), a private `/proc`, `/dev` and a size-limited
//! `/tmp`. Nothing else of the host — the admin's data directory, other services' folders,
//! home directories — exists inside. Resource limits apply on top: a process count (a pids
//! cgroup when the worker runs as root, where `RLIMIT_NPROC` does not bind; else
//! `RLIMIT_NPROC`) and a largest file size (`RLIMIT_FSIZE`).
//!
//! `RAFIKI_SANDBOX=off` (the default when unset) starts plain child processes with the service
//! token and the inference job's predict secret removed from their environment: the docker backend's containers are the sandbox
//! there, and the admin sets `bwrap` for the process backend unless its operator opted out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use rafiki_service::config::ConfigError;
use rafiki_types::internal::env;
use tokio::process::Command;
use tokio::sync::OnceCell;

/// `bwrap` or `off` (default `off`; the admin sets it for every worker it launches).
pub const SANDBOX: &str = "RAFIKI_SANDBOX";
/// `on` lets model code open network connections (default `off`).
pub const SANDBOX_NETWORK: &str = "RAFIKI_SANDBOX_NETWORK";
/// `off` installs dependencies without network (a local wheel mirror in `RAFIKI_PIP_ARGS`);
/// default `on`, since pip must reach the package index.
pub const SANDBOX_PIP_NETWORK: &str = "RAFIKI_SANDBOX_PIP_NETWORK";
/// The most processes and threads the sandbox may hold at once (default 1024).
pub const SANDBOX_MAX_PROCS: &str = "RAFIKI_SANDBOX_MAX_PROCS";
/// The largest file a sandboxed process may write, in MiB (default 8192).
pub const SANDBOX_MAX_FILE_MB: &str = "RAFIKI_SANDBOX_MAX_FILE_MB";
/// The size of the sandbox's private `/tmp`, in MiB (default 1024; it is memory).
pub const SANDBOX_TMP_MB: &str = "RAFIKI_SANDBOX_TMP_MB";
/// The bubblewrap program (default `bwrap`).
pub const BWRAP: &str = "RAFIKI_BWRAP";

/// Variables a sandboxed process may inherit from the worker, besides those the sandbox sets.
const INHERITED_ENV: &[&str] = &[
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    // The SDK's limits on zip datasets (docs/security.md, "Zip bombs").
    "RAFIKI_MAX_DATASET_UNZIPPED_BYTES",
    "RAFIKI_MAX_DATASET_ZIP_ENTRIES",
];

/// Parts of `/etc` programs need (the dynamic linker, certificates, BLAS alternatives, users,
/// name resolution); the rest of `/etc` stays outside.
const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/mime.types",
    "/etc/fonts",
    "/etc/os-release",
    "/etc/pip.conf",
];

/// The system's top-level folders: bound read-only, or recreated as the same symlinks.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// NVIDIA's control devices, bound when the service has GPUs (with `/dev/nvidia<id>` of each).
const NVIDIA_CONTROL_DEVICES: &[&str] = &[
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];

/// Where model code runs.
#[derive(Debug, Clone)]
pub enum Sandbox {
    /// Plain child processes (in a container, or when the operator opted out).
    Off,
    /// Under bubblewrap.
    Bwrap(Arc<Bwrap>),
}

/// What one sandboxed program sees of the host besides the system and the interpreter.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Folders and files it may read.
    pub read_only: Vec<PathBuf>,
    /// Folders it may write (and read).
    pub read_write: Vec<PathBuf>,
    /// Its working directory (one of the folders above).
    pub cwd: PathBuf,
    /// What it is for, which decides its network access.
    pub purpose: Purpose,
    /// Variables set for it, besides the inherited ones.
    pub env: Vec<(String, String)>,
}

/// What a sandboxed program does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Purpose {
    /// Runs model code: no network unless `RAFIKI_SANDBOX_NETWORK=on`.
    #[default]
    RunModel,
    /// Installs dependencies: network unless `RAFIKI_SANDBOX_PIP_NETWORK=off`.
    InstallDependencies,
}

/// The bubblewrap sandbox's settings.
#[derive(Debug)]
pub struct Bwrap {
    program: PathBuf,
    model_network: bool,
    pip_network: bool,
    max_procs: u64,
    max_file_bytes: u64,
    tmp_bytes: u64,
    /// The pids cgroup the sandboxes join (when the worker runs as root).
    pids_cgroup: OnceCell<Option<PathBuf>>,
    /// The interpreters' folders, found once per interpreter.
    interpreters: tokio::sync::Mutex<Vec<(PathBuf, Arc<Interpreter>)>>,
}

/// An interpreter's own folders, which its sandboxed processes read.
#[derive(Debug)]
pub struct Interpreter {
    /// Its real path (`sys.executable`).
    pub executable: PathBuf,
    /// Its prefixes, `sys.path` folders and the `rafiki` package's folder.
    pub folders: Vec<PathBuf>,
}

/// Prints what an interpreter needs to run: its executable and folders, as JSON.
const FOLDERS_PROBE: &str = r#"
import json, os, sys
folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
folders.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
folders.update(p for p in sys.path if p)
try:
    import rafiki
    folders.add(os.path.dirname(os.path.dirname(os.path.abspath(rafiki.__file__))))
except ImportError:
    pass
print(json.dumps({
    "executable": os.path.abspath(sys.executable),
    "folders": sorted(os.path.realpath(f) for f in folders if os.path.exists(f)),
}))
"#;

impl Sandbox {
    /// Reads the sandbox settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Sandbox, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let switch = |name: &str, default: bool| match get(name).as_deref() {
            None => Ok(default),
            Some("on" | "1" | "true") => Ok(true),
            Some("off" | "0" | "false") => Ok(false),
            Some(other) => Err(ConfigError(format!(
                "{name} must be `on` or `off`, got `{other}`"
            ))),
        };
        let number = |name: &str, default: u64| match get(name) {
            None => Ok(default),
            Some(text) => text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConfigError(format!("{name} must be a positive integer, got `{text}`"))
            }),
        };
        match get(SANDBOX).as_deref() {
            None | Some("off") => Ok(Sandbox::Off),
            Some("bwrap") => Ok(Sandbox::Bwrap(Arc::new(Bwrap {
                program: PathBuf::from(get(BWRAP).unwrap_or_else(|| "bwrap".to_owned())),
                model_network: switch(SANDBOX_NETWORK, false)?,
                pip_network: switch(SANDBOX_PIP_NETWORK, true)?,
                max_procs: number(SANDBOX_MAX_PROCS, 1024)?,
                max_file_bytes: number(SANDBOX_MAX_FILE_MB, 8192)? << 20,
                tmp_bytes: number(SANDBOX_TMP_MB, 1024)? << 20,
                pids_cgroup: OnceCell::new(),
                interpreters: tokio::sync::Mutex::new(Vec::new()),
            }))),
            Some(other) => Err(ConfigError(format!(
                "{SANDBOX} must be `bwrap` or `off`, got `{other}`"
            ))),
        }
    }

    /// Whether model code runs under bubblewrap.
    pub fn is_on(&self) -> bool {
        matches!(self, Sandbox::Bwrap(_))
    }

    /// A command running `python args...` (an interpreter that has `rafiki`, or a dependency
    /// environment's Python made from `base`) as the sandbox allows, seeing what `view` names.
    /// Its stdin, stdout and stderr are left to the caller.
    pub async fn command(
        &self,
        base: &Path,
        python: &Path,
        args: &[&str],
        view: &View,
    ) -> Result<Command, SandboxError> {
        match self {
            Sandbox::Off => {
                let mut command = Command::new(python);
                command
                    .args(args)
                    .current_dir(&view.cwd)
                    .env_remove(env::SERVICE_TOKEN)
                    .env_remove(env::PREDICT_SECRET)
                    .envs(view.env.iter().cloned());
                Ok(command)
            }
            Sandbox::Bwrap(bwrap) => bwrap.command(base, python, args, view).await,
        }
    }
}

/// The sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The interpreter could not be run at all (e.g. it does not exist).
    #[error("cannot run the interpreter {python}: {source}")]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The interpreter's folders could not be found.
    #[error("cannot inspect the interpreter {python}: {reason}")]
    Interpreter {
        /// The interpreter.
        python: PathBuf,
        /// Why.
        reason: String,
    },
}

impl Bwrap {
    async fn command(
        &self,
        base: &Path,
        python: &Path,
        args: &[&str],
        view: &View,
    ) -> Result<Command, SandboxError> {
        let interpreter = self.interpreter(base).await?;
        // The base interpreter runs by its real path: a bare `python3` or a shim on the
        // worker's PATH may not exist inside.
        let program = if python == base {
            interpreter.executable.clone()
        } else {
            python.to_owned()
        };
        let pids_cgroup = self.pids_cgroup().await;
        let network = match view.purpose {
            Purpose::RunModel => self.model_network,
            Purpose::InstallDependencies => self.pip_network,
        };
        let mut bwrap_args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| bwrap_args.extend(items.iter().map(|s| s.to_string()));
        push(&[
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "rafiki-sandbox",
        ]);
        if network {
            push(&["--share-net"]);
        }
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            if let Ok(target) = std::fs::read_link(path) {
                push(&["--symlink", &target.to_string_lossy(), dir]);
            } else if path.is_dir() {
                push(&["--ro-bind", dir, dir]);
            }
        }
        for file in ETC_FILES {
            push(&["--ro-bind-try", file, file]);
        }
        if network {
            push(&["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]);
        }
        push(&["--proc", "/proc", "--dev", "/dev"]);
        push(&["--size", &self.tmp_bytes.to_string(), "--tmpfs", "/tmp"]);
        let gpus = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default();
        let gpu_ids: Vec<&str> = gpus
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        if !gpu_ids.is_empty() {
            for device in NVIDIA_CONTROL_DEVICES {
                push(&["--dev-bind-try", device, device]);
            }
            for id in &gpu_ids {
                let device = format!("/dev/nvidia{id}");
                push(&["--dev-bind-try", &device, &device]);
            }
            // CUDA reads the devices' PCI details.
            push(&["--ro-bind-try", "/sys", "/sys"]);
        }
        let mut bound = BTreeSet::new();
        let cwd = &view.cwd;
        for folder in &interpreter.folders {
            if covered(folder) || bound.iter().any(|b: &PathBuf| folder.starts_with(b)) {
                continue;
            }
            if cwd.starts_with(folder) {
                // A `sys.path` entry like `/` or the data directory's parent would show every
                // service's files; the interpreter does not need it to start.
                tracing::warn!(folder = %folder.display(), "not showing an interpreter folder that holds the work directory to the sandbox");
                continue;
            }
            bound.insert(folder.clone());
            push(&[
                "--ro-bind",
                &folder.to_string_lossy(),
                &folder.to_string_lossy(),
            ]);
        }
        for path in &view.read_only {
            push(&[
                "--ro-bind",
                &path.to_string_lossy(),
                &path.to_string_lossy(),
            ]);
        }
        for path in &view.read_write {
            push(&["--bind", &path.to_string_lossy(), &path.to_string_lossy()]);
        }
        push(&["--chdir", &cwd.to_string_lossy()]);

        // The root of the sandbox's own file system is a tmpfs bubblewrap made: read-only, or
        // the model could fill memory through it. The mounts above keep their own modes.
        push(&["--remount-ro", "/"]);

        // prlimit sets the limits on itself and execs bubblewrap, so everything inside
        // inherits them. RLIMIT_NPROC binds every user but root; root gets the cgroup, which
        // a shell joins before it execs prlimit, so no process of the sandbox starts outside.
        let mut command = match &pids_cgroup {
            Some(group) => {
                let mut shell = Command::new("/bin/sh");
                shell
                    .args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
                    .arg(group.join("cgroup.procs"))
                    .arg("prlimit");
                shell
            }
            None => Command::new("prlimit"),
        };
        command.arg(format!("--fsize={0}:{0}", self.max_file_bytes));
        command.arg("--core=0:0");
        if pids_cgroup.is_none() && !running_as_root() {
            command.arg(format!("--nproc={0}:{0}", self.max_procs));
        }
        command
            .arg("--")
            .arg(&self.program)
            .args(&bwrap_args)
            .arg("--")
            .arg(&program)
            .args(args)
            .env_clear()
            .envs(
                INHERITED_ENV
                    .iter()
                    .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v))),
            )
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", cwd)
            .env("TMPDIR", "/tmp")
            .env("PYTHONNOUSERSITE", "1")
            .envs(view.env.iter().cloned());
        Ok(command)
    }

    /// The folders of `base`, found once by running it outside the sandbox: it is the
    /// operator's interpreter, not the model's.
    async fn interpreter(&self, base: &Path) -> Result<Arc<Interpreter>, SandboxError> {
        let mut known = self.interpreters.lock().await;
        if let Some((_, found)) = known.iter().find(|(path, _)| path == base) {
            return Ok(found.clone());
        }
        let fail = |reason: String| SandboxError::Interpreter {
            python: base.to_owned(),
            reason,
        };
        let output = Command::new(base)
            .args(["-c", FOLDERS_PROBE])
            .env_remove(env::SERVICE_TOKEN)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| SandboxError::Spawn {
                python: base.to_owned(),
                source,
            })?;
        if !output.status.success() {
            return Err(fail(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Found {
            executable: PathBuf,
            folders: Vec<PathBuf>,
        }
        let found: Found = serde_json::from_slice(&output.stdout)
            .map_err(|e| fail(format!("unexpected answer: {e}")))?;
        let interpreter = Arc::new(Interpreter {
            executable: found.executable,
            folders: found.folders,
        });
        known.push((base.to_owned(), interpreter.clone()));
        Ok(interpreter)
    }

    /// The pids cgroup of this worker's sandboxes, made on first use when the worker runs as
    /// root (for other users `RLIMIT_NPROC` does the job). `None` when no writable pids
    /// controller exists: the sandbox then has no process limit, which is logged.
    async fn pids_cgroup(&self) -> Option<PathBuf> {
        self.pids_cgroup
            .get_or_init(|| async {
                if !running_as_root() {
                    return None;
                }
                match make_pids_cgroup(self.max_procs).await {
                    Ok(path) => {
                        tracing::info!(cgroup = %path.display(), max = self.max_procs, "sandbox processes are limited by a pids cgroup");
                        Some(path)
                    }
                    Err(reason) => {
                        tracing::warn!("SANDBOX WITHOUT A PROCESS LIMIT: running as root and {reason}");
                        None
                    }
                }
            })
            .await
            .clone()
    }
}

/// Whether `path` is inside a system folder the sandbox binds anyway.
fn covered(path: &Path) -> bool {
    SYSTEM_DIRS
        .iter()
        .any(|dir| path.starts_with(dir) && !Path::new(dir).is_symlink())
}

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Creates `rafiki-sandbox/worker-<pid>-<n>` under the pids controller (cgroup v1's `pids`
/// hierarchy, or v2's unified one) with `pids.max`, after removing the groups of workers that
/// are gone.
async fn make_pids_cgroup(max: u64) -> Result<PathBuf, String> {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    let v2 = Path::new("/sys/fs/cgroup");
    let parent = if v1.join("cgroup.procs").is_file() {
        v1.join("rafiki-sandbox")
    } else if tokio::fs::read_to_string(v2.join("cgroup.controllers"))
        .await
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
    {
        let parent = v2.join("rafiki-sandbox");
        // v2 hands a controller down only where each parent enables it.
        let _ = tokio::fs::write(v2.join("cgroup.subtree_control"), "+pids").await;
        let _ = tokio::fs::create_dir_all(&parent).await;
        let _ = tokio::fs::write(parent.join("cgroup.subtree_control"), "+pids").await;
        parent
    } else {
        return Err("no pids cgroup controller is mounted".to_owned());
    };
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    if let Ok(mut entries) = tokio::fs::read_dir(&parent).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = name
                .strip_prefix("worker-")
                .and_then(|rest| rest.split('-').next());
            // A group still holding processes refuses removal, so only empty ones go.
            if owner.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
                let _ = tokio::fs::remove_dir(entry.path()).await;
            }
        }
    }
    static GROUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let group = parent.join(format!(
        "worker-{}-{}",
        std::process::id(),
        GROUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    tokio::fs::create_dir_all(&group)
        .await
        .map_err(|e| format!("cannot create {}: {e}", group.display()))?;
    tokio::fs::write(group.join("pids.max"), max.to_string())
        .await
        .map_err(|e| format!("cannot set pids.max in {}: {e}", group.display()))?;
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_sandbox_is_off_unless_asked_for() {
        assert!(!Sandbox::from_lookup(lookup(&[])).unwrap().is_on());
        assert!(!Sandbox::from_lookup(lookup(&[(SANDBOX, "off")]))
            .unwrap()
            .is_on());
        let Sandbox::Bwrap(bwrap) = Sandbox::from_lookup(lookup(&[(SANDBOX, "bwrap")])).unwrap()
        else {
            panic!("bwrap expected");
        };
        assert!(!bwrap.model_network);
        assert!(bwrap.pip_network);
        assert_eq!(bwrap.max_procs, 1024);
    }

    #[test]
    fn bad_sandbox_settings_are_named() {
        for (name, value) in [
            (SANDBOX, "docker"),
            (SANDBOX_NETWORK, "maybe"),
            (SANDBOX_MAX_PROCS, "0"),
            (SANDBOX_TMP_MB, "lots"),
        ] {
            let pairs = [(SANDBOX, "bwrap"), (name, value)];
            let pairs = if name == SANDBOX {
                &pairs[1..]
            } else {
                &pairs[..]
            };
            let err = Sandbox::from_lookup(lookup(pairs)).unwrap_err();
            assert!(err.0.contains(name), "{err}");
        }
    }
}
