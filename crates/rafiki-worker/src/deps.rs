//! A model's dependencies (`{package: version}`): use the worker's interpreter when it already
//! has them, else a dependency environment from the host's shared store ([`crate::envs`]).
//!
//! An environment is made with `python -m venv --system-site-packages` (so the `rafiki`
//! package and whatever the base interpreter has stay importable) and the pinned packages are
//! `pip install`ed into it. When the base interpreter is itself a virtual environment, its
//! site-packages are added to the new one through a `.pth` file, since `--system-site-packages`
//! only reaches the system's. Its key hashes everything that decides what pip installs: the
//! base interpreter (path and version), the requirements and the pip arguments. One worker
//! builds it while the others that need it wait; later services (train and inference) reuse it.
//!
//! The base interpreter is the operator's and runs as it is; whatever runs from an environment
//! built from a model's dependency list (`pip install`, which may run a package's build code,
//! and every later check of that environment, since a package's `.pth` file runs at start-up)
//! runs in the worker's [`Sandbox`], seeing only that environment (writable only while it is
//! built, by pip).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use rafiki_types::internal::EnvironmentReport;
use rafiki_types::model::DependencyPins;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::envs::{self, BuildLock, EnvStore, Lease, Manifest};
use crate::sandbox::{Purpose, Sandbox, View};

/// pip's temporary files and cache while an environment is built, inside it; removed before
/// the environment is published.
const PIP_SCRATCH: &str = ".rafiki-pip";

/// How much of pip's output goes into a failure report.
const OUTPUT_TAIL: usize = 4000;

/// Why the dependencies could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    /// The model's dependencies cannot be installed (bad names, pip failed, wrong versions):
    /// the model's fault, reported with `POST /internal/train/fail`.
    #[error("{0}")]
    Install(String),
    /// The worker's own environment is broken (no interpreter, no disk): a crash.
    #[error("{0}")]
    Environment(String),
}

/// One dependency that the checked interpreter does not satisfy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Unmet {
    /// Package name.
    pub name: String,
    /// The requirement, as given.
    pub wanted: String,
    /// The installed version, if any.
    pub installed: Option<String>,
}

/// What an interpreter says about itself and the dependencies.
#[derive(Debug, Clone, Deserialize)]
struct Probe {
    unmet: Vec<Unmet>,
    executable: String,
    version: String,
    in_venv: bool,
    site_packages: Vec<String>,
    purelib: String,
}

/// Checks the dependencies in the interpreter it runs in: argv[1] is `{name: version}` as JSON.
/// An empty version means any; a version starting with an operator (`>=1.2`) is a specifier;
/// anything else is pinned with `==`, compared the way pip compares versions when `packaging`
/// is importable, else as text.
const PROBE: &str = r#"
import importlib.metadata as md, json, site, sys, sysconfig
def spec_of(wanted):
    wanted = wanted.strip()
    return wanted if wanted[:1] in "=<>!~" else "==" + wanted
def satisfied(wanted, installed):
    if not wanted.strip():
        return True
    spec = spec_of(wanted)
    try:
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version
    except ImportError:
        try:
            from pip._vendor.packaging.specifiers import SpecifierSet
            from pip._vendor.packaging.version import Version
        except ImportError:
            return spec == "==" + installed
    try:
        return SpecifierSet(spec).contains(Version(installed), prereleases=True)
    except Exception:
        return spec == "==" + installed
unmet = []
for name, wanted in json.loads(sys.argv[1]).items():
    try:
        installed = md.version(name)
    except md.PackageNotFoundError:
        installed = None
    if installed is None or not satisfied(wanted, installed):
        unmet.append({"name": name, "wanted": wanted, "installed": installed})
print(json.dumps({
    "unmet": unmet,
    "executable": sys.executable,
    "version": sys.version,
    "in_venv": sys.prefix != sys.base_prefix,
    "site_packages": site.getsitepackages() if hasattr(site, "getsitepackages") else [],
    "purelib": sysconfig.get_paths()["purelib"],
}))
"#;

/// How dependencies are provided on this host.
#[derive(Debug, Clone, Copy)]
pub struct Installer<'a> {
    /// Where Python run for a model runs.
    pub sandbox: &'a Sandbox,
    /// The interpreter with the `rafiki` package.
    pub base: &'a Path,
    /// The shared store of environments.
    pub store: &'a EnvStore,
    /// Extra `pip install` arguments.
    pub pip_args: &'a [String],
    /// The most bytes the store's environments may take (unused ones are evicted past it).
    pub max_bytes: Option<u64>,
    /// What to do with pins that have no distribution for this Python.
    pub pins: DependencyPins,
}

/// The interpreter to run a model with, and what it took.
#[derive(Debug)]
pub struct Prepared {
    /// `base` itself, or an environment's `bin/python`.
    pub python: PathBuf,
    /// The environment in use (kept for the service's lifetime), when one is.
    pub lease: Option<Lease>,
    /// What to tell the admin.
    pub report: EnvironmentReport,
}

impl Installer<'_> {
    /// The interpreter to run the model with: `base` itself when it satisfies `deps`, else the
    /// Python of a dependency environment that has them (built when missing).
    pub async fn prepare(&self, deps: &BTreeMap<String, String>) -> Result<Prepared, DepsError> {
        let started = Instant::now();
        let base_serves = |started: Instant| Prepared {
            python: self.base.to_owned(),
            lease: None,
            report: EnvironmentReport {
                seconds: started.elapsed().as_secs_f64(),
                reused: true,
                size_bytes: 0,
                warnings: Vec::new(),
            },
        };
        if deps.is_empty() {
            return Ok(base_serves(started));
        }
        let requirements = requirements(deps)?;
        let probe = probe(self.base, deps, None).await?;
        if probe.unmet.is_empty() {
            tracing::info!(python = %self.base.display(), "the interpreter has the model's dependencies");
            return Ok(base_serves(started));
        }
        tracing::info!(unmet = ?probe.unmet, "the interpreter lacks some dependencies; using a dependency environment");
        let key = venv_key(&probe, &requirements, self.pip_args, self.pins);
        let (lease, reused) = self.environment(&key, deps, &requirements, &probe).await?;
        let seconds = started.elapsed().as_secs_f64();
        let manifest = lease.manifest();
        tracing::info!(
            env = %lease.dir().display(),
            reused,
            seconds,
            size_bytes = manifest.size_bytes,
            "the dependency environment is ready"
        );
        let report = EnvironmentReport {
            seconds,
            reused,
            size_bytes: manifest.size_bytes,
            warnings: manifest.warnings.clone(),
        };
        if let (false, Some(max_bytes)) = (reused, self.max_bytes) {
            // The new environment is leased, so it stays whatever the bound says.
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.evict_over(max_bytes)).await {
                Ok(Ok(removed)) if !removed.evicted.is_empty() => {
                    tracing::info!(evicted = ?removed.evicted, bytes = removed.bytes, "evicted unused environments over the bound")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("cannot evict dependency environments: {e}"),
                Err(e) => tracing::warn!("cannot evict dependency environments: {e}"),
            }
        }
        Ok(Prepared {
            python: lease.dir().join("bin").join("python"),
            lease: Some(lease),
            report,
        })
    }

    /// A lease on the environment `key`: an existing one that checks out, or one this worker
    /// builds (while the others that need it wait). `true` when it was not built here.
    async fn environment(
        &self,
        key: &str,
        deps: &BTreeMap<String, String>,
        requirements: &[String],
        base_probe: &Probe,
    ) -> Result<(Lease, bool), DepsError> {
        let store_error = |e: std::io::Error| {
            DepsError::Environment(format!(
                "dependency environments in {}: {e}",
                self.store.root().display()
            ))
        };
        if let Some(lease) = self.store.open(key).await.map_err(store_error)? {
            if self.check(&lease).await.is_ok() {
                return Ok((lease, true));
            }
        }
        let build = self.store.lock_build(key).await.map_err(store_error)?;
        // Whoever held the build lock before may have finished it.
        if let Some(lease) = self.store.open(key).await.map_err(store_error)? {
            match self.check(&lease).await {
                Ok(()) => return Ok((lease, true)),
                Err(reason) => {
                    tracing::warn!(env = %lease.dir().display(), "the environment is broken ({reason}); building it again");
                    build.retire(lease).map_err(store_error)?;
                }
            }
        }
        let lease = self.build(&build, deps, requirements, base_probe).await?;
        match lease {
            Some(lease) => Ok((lease, false)),
            // Another build was published meanwhile (this one's lock was lost to gc); pip did
            // run here, so this is not a reuse.
            None => {
                let lease = self.store.open(key).await.map_err(store_error)?;
                lease.map(|lease| (lease, false)).ok_or_else(|| {
                    store_error(std::io::Error::other("a finished environment vanished"))
                })
            }
        }
    }

    /// Runs the environment's Python in the sandbox to check that it still has its
    /// dependencies.
    async fn check(&self, lease: &Lease) -> Result<(), String> {
        let jail = Jail {
            sandbox: self.sandbox,
            base: self.base,
            venv: lease.dir(),
        };
        let python = lease.dir().join("bin").join("python");
        match probe(&python, &lease.manifest().dependencies, Some(&jail)).await {
            Ok(p) if p.unmet.is_empty() => Ok(()),
            Ok(p) => Err(format!("unmet: {:?}", p.unmet)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Builds the environment in a fresh folder and publishes it. `None` when another one was
    /// published meanwhile.
    async fn build(
        &self,
        lock: &BuildLock,
        deps: &BTreeMap<String, String>,
        requirements: &[String],
        base_probe: &Probe,
    ) -> Result<Option<Lease>, DepsError> {
        let env_error =
            |what: &str, e: std::io::Error| DepsError::Environment(format!("{what}: {e}"));
        let building = lock
            .start()
            .map_err(|e| env_error("cannot start a dependency environment", e))?;
        let dir = building.dir().to_owned();
        let build = Build {
            sandbox: self.sandbox,
            base: self.base,
            base_probe,
            deps,
            requirements,
            pip_args: self.pip_args,
            pins: self.pins,
        };
        // On an error `building` is dropped, which removes the folder.
        let installed = build.populate(&dir).await?;
        if !building.intact() {
            return Err(DepsError::Install(
                "installing the dependencies replaced the environment's lock file".to_owned(),
            ));
        }
        let measured = dir.clone();
        let size_bytes = tokio::task::spawn_blocking(move || envs::disk_usage(&measured))
            .await
            .unwrap_or(0);
        let manifest = Manifest {
            base: base_probe.executable.clone(),
            requirements: installed.requirements,
            dependencies: installed.dependencies,
            size_bytes,
            warnings: installed.warnings,
        };
        tracing::info!(requirements = ?manifest.requirements, size_bytes, "built a dependency environment");
        let lease = lock.publish(building, manifest).map_err(|e| {
            env_error(
                &format!("cannot finish the environment {}", dir.display()),
                e,
            )
        })?;
        Ok(lease)
    }
}

/// The sandbox a dependency environment's Python runs in, seeing that environment.
struct Jail<'a> {
    sandbox: &'a Sandbox,
    base: &'a Path,
    venv: &'a Path,
}

/// pip requirement strings, after refusing names and versions that could smuggle in options.
fn requirements(deps: &BTreeMap<String, String>) -> Result<Vec<String>, DepsError> {
    let name_ok = |name: &str| {
        name.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-[],".contains(c))
    };
    let version_ok = |version: &str| {
        version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".*+!,<>=~_-".contains(c))
    };
    deps.iter()
        .map(|(name, version)| {
            let version = version.trim();
            if !name_ok(name) || !version_ok(version) {
                return Err(DepsError::Install(format!(
                    "dependency `{name}`: `{version}` is not a package name and version pip accepts"
                )));
            }
            Ok(if version.is_empty() {
                name.clone()
            } else if version.starts_with(['=', '<', '>', '!', '~']) {
                format!("{name}{version}")
            } else {
                format!("{name}=={version}")
            })
        })
        .collect()
}

/// The environment's key: what decides what pip installs (the base interpreter, the
/// requirements, the pip arguments, and whether unavailable pins are replaced), hashed.
fn venv_key(
    probe: &Probe,
    requirements: &[String],
    pip_args: &[String],
    pins: DependencyPins,
) -> String {
    let mut hasher = Sha256::new();
    if pins == DependencyPins::Nearest {
        // Strict environments keep the keys they had before the policy existed.
        hasher.update(b"pins=nearest\n");
    }
    for part in [&probe.executable, &probe.version] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    for (label, items) in [("requirements", requirements), ("pip", pip_args)] {
        hasher.update(label.as_bytes());
        for item in items {
            hasher.update(b"\n");
            hasher.update(item.as_bytes());
        }
        hasher.update(b"\n\n");
    }
    hex::encode(hasher.finalize())[..32].to_owned()
}

/// Runs [`PROBE`] with `python`: as it is, or in `jail`.
async fn probe(
    python: &Path,
    deps: &BTreeMap<String, String>,
    jail: Option<&Jail<'_>>,
) -> Result<Probe, DepsError> {
    let deps_json = serde_json::to_string(deps).expect("a map of strings serialises");
    let cannot_run = |e: &dyn std::fmt::Display| {
        DepsError::Environment(format!("cannot run {}: {e}", python.display()))
    };
    let output = match jail {
        None => Command::new(python)
            .args(["-c", PROBE, &deps_json])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| cannot_run(&e))?,
        Some(jail) => {
            let view = View {
                read_only: vec![jail.venv.to_owned()],
                cwd: jail.venv.to_owned(),
                ..View::default()
            };
            jail.sandbox
                .command(jail.base, python, &["-c", PROBE, &deps_json], &view)
                .await
                .map_err(|e| cannot_run(&e))?
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| cannot_run(&e))?
        }
    };
    if !output.status.success() {
        return Err(DepsError::Environment(format!(
            "{} could not check the dependencies ({}): {}",
            python.display(),
            output.status,
            tail(&output.stderr)
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        DepsError::Environment(format!(
            "unexpected answer from {} checking dependencies: {e}",
            python.display()
        ))
    })
}

/// One dependency environment to build.
struct Build<'a> {
    sandbox: &'a Sandbox,
    base: &'a Path,
    base_probe: &'a Probe,
    deps: &'a BTreeMap<String, String>,
    requirements: &'a [String],
    pip_args: &'a [String],
    pins: DependencyPins,
}

/// What a build installed: the requirements as given, or with unavailable pins replaced.
struct Installed {
    requirements: Vec<String>,
    dependencies: BTreeMap<String, String>,
    warnings: Vec<String>,
}

/// A pinned dependency with no distribution for this Python, as [`PINS_PROBE`] found it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct UnavailablePin {
    name: String,
    pin: String,
    /// The highest installable version below the pin.
    below: Option<String>,
    /// The lowest installable version above the pin.
    above: Option<String>,
}

/// What [`PINS_PROBE`] prints.
#[derive(Debug, Deserialize)]
struct PinsReport {
    python: String,
    unavailable: Vec<UnavailablePin>,
}

/// Run by an environment's Python after `pip install` failed, with argv[1] the JSON of
/// `{"pins": {name: version}, "pip_args": [...]}`: asks pip, for each pin, whether a wheel of
/// exactly that version fits this interpreter (`--dry-run --only-binary=:all:`); when none
/// does, pip's refusal lists the versions that do ("from versions: ..."), and the nearest
/// below and above the pin are picked as pip orders versions (pre-releases only for a
/// pre-release pin). A pin pip fails on for another reason (no network) is not reported.
const PINS_PROBE: &str = r#"
import json, re, subprocess, sys
try:
    from packaging.version import InvalidVersion, Version
except ImportError:
    from pip._vendor.packaging.version import InvalidVersion, Version
request = json.loads(sys.argv[1])
unavailable = []
for name, pin in request["pins"].items():
    try:
        wanted = Version(pin)
    except InvalidVersion:
        continue
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
         "--only-binary=:all:", "--ignore-installed", "--disable-pip-version-check",
         "--no-input", *request["pip_args"], f"{name}=={pin}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True)
    listed = re.search(r"\(from versions: ([^)]*)\)", run.stdout + run.stderr)
    if run.returncode == 0 or listed is None:
        continue
    versions = []
    for text in listed.group(1).split(","):
        try:
            version = Version(text.strip())
        except InvalidVersion:
            continue
        if version.is_prerelease and not wanted.is_prerelease:
            continue
        versions.append(version)
    below = max((v for v in versions if v < wanted), default=None)
    above = min((v for v in versions if v > wanted), default=None)
    unavailable.append({"name": name, "pin": pin,
                        "below": None if below is None else str(below),
                        "above": None if above is None else str(above)})
implementation = sys.implementation.name.replace("cpython", "CPython")
python = f"{implementation} {sys.version_info.major}.{sys.version_info.minor}"
print(json.dumps({"python": python, "unavailable": unavailable}))
"#;

/// The exact pins among the dependencies (`pkg==1.2` or `1.2`): name -> version.
fn exact_pins(deps: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    deps.iter()
        .filter_map(|(name, version)| {
            let version = version.trim();
            let version = version.strip_prefix("==").unwrap_or(version).trim();
            let plain =
                !version.is_empty() && !version.contains(['*', ',', '<', '>', '=', '!', '~']);
            plain.then(|| (name.clone(), version.to_owned()))
        })
        .collect()
}

/// The strict policy's refusal: what cannot be installed, and what could be.
fn unavailable_message(python: &str, unavailable: &[UnavailablePin]) -> String {
    let lines: Vec<String> = unavailable
        .iter()
        .map(|u| {
            let nearest = match (&u.below, &u.above) {
                (None, None) => format!("no version of {} installs here", u.name),
                (Some(below), None) => {
                    format!("the nearest installable version is {below} (below; none above)")
                }
                (None, Some(above)) => {
                    format!("the nearest installable version is {above} (above; none below)")
                }
                (Some(below), Some(above)) => format!(
                    "the nearest installable versions are {below} (below) and {above} (above)"
                ),
            };
            format!(
                "{}=={} has no distribution for this Python ({python}): {nearest}",
                u.name, u.pin
            )
        })
        .collect();
    format!(
        "{}. Pin an installable version, or upload the model with dependency_pins=nearest to \
         install the nearest one instead.",
        lines.join("; ")
    )
}

/// The nearest policy's replacements: the dependencies with each unavailable pin replaced by
/// the lowest installable version above it, else the highest below, and a warning for each.
fn nearest_dependencies(
    deps: &BTreeMap<String, String>,
    python: &str,
    unavailable: &[UnavailablePin],
) -> Result<(BTreeMap<String, String>, Vec<String>), DepsError> {
    let mut replaced = deps.clone();
    let mut warnings = Vec::new();
    for u in unavailable {
        let Some(chosen) = u.above.as_ref().or(u.below.as_ref()) else {
            return Err(DepsError::Install(unavailable_message(
                python,
                std::slice::from_ref(u),
            )));
        };
        if let Some(version) = replaced.get_mut(&u.name) {
            *version = chosen.clone();
            warnings.push(format!(
                "{}=={} has no distribution for this Python ({python}); installed {}=={chosen} \
                 instead (dependency_pins=nearest)",
                u.name, u.pin, u.name
            ));
        }
    }
    Ok((replaced, warnings))
}

impl Build<'_> {
    /// Creates the environment in `dir`, installs the requirements (pip's own temporary files
    /// and cache in a scratch folder inside, removed at the end) and checks them. When pip
    /// fails, pins with no distribution for this Python are either reported (strict) or
    /// replaced by the nearest installable release (nearest).
    async fn populate(&self, dir: &Path) -> Result<Installed, DepsError> {
        let scratch = dir.join(PIP_SCRATCH);
        let base = self.base;
        let created = run(Command::new(base)
            .args(["-m", "venv", "--system-site-packages"])
            .arg(dir))
        .await?;
        if !created.0 {
            return Err(DepsError::Environment(format!(
                "`{} -m venv` failed: {}",
                base.display(),
                created.1
            )));
        }
        let python = dir.join("bin").join("python");
        if self.base_probe.in_venv {
            // Nothing is installed yet: the new environment still runs only the base's code.
            let own = probe(&python, &BTreeMap::new(), None).await?;
            let lines: String = self
                .base_probe
                .site_packages
                .iter()
                .map(|site| format!("import site; site.addsitedir({site:?})\n"))
                .collect();
            let pth = Path::new(&own.purelib).join("_rafiki_base_site.pth");
            tokio::fs::write(&pth, lines).await.map_err(|e| {
                DepsError::Environment(format!("cannot write {}: {e}", pth.display()))
            })?;
        }
        tokio::fs::create_dir_all(&scratch).await.map_err(|e| {
            DepsError::Environment(format!("cannot create {}: {e}", scratch.display()))
        })?;
        let installed = self.install(&python, dir, &scratch).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        let installed = installed?;
        // pip may succeed and still leave a version that does not match (e.g. a looser pin
        // elsewhere); the model would then run with the wrong packages.
        let jail = Jail {
            sandbox: self.sandbox,
            base,
            venv: dir,
        };
        let checked = probe(&python, &installed.dependencies, Some(&jail)).await?;
        if !checked.unmet.is_empty() {
            return Err(DepsError::Install(format!(
                "after pip install, dependencies are still unmet: {:?}",
                checked.unmet
            )));
        }
        Ok(installed)
    }

    /// `pip install` of the requirements; after a failure, the pin policy's way out.
    async fn install(
        &self,
        python: &Path,
        dir: &Path,
        scratch: &Path,
    ) -> Result<Installed, DepsError> {
        let (ok, output) = self
            .pip_install(python, dir, scratch, self.requirements)
            .await?;
        if ok {
            return Ok(Installed {
                requirements: self.requirements.to_vec(),
                dependencies: self.deps.clone(),
                warnings: Vec::new(),
            });
        }
        let failed = || {
            DepsError::Install(format!(
                "pip could not install {}:\n{output}",
                self.requirements.join(" ")
            ))
        };
        let pins = exact_pins(self.deps);
        if pins.is_empty() {
            return Err(failed());
        }
        let report = self.unavailable_pins(python, dir, scratch, &pins).await?;
        if report.unavailable.is_empty() {
            return Err(failed());
        }
        tracing::info!(unavailable = ?report.unavailable, policy = %self.pins, "pins with no distribution for this Python");
        if self.pins == DependencyPins::Strict {
            return Err(DepsError::Install(format!(
                "{}\n\npip's output:\n{output}",
                unavailable_message(&report.python, &report.unavailable)
            )));
        }
        let (dependencies, warnings) =
            nearest_dependencies(self.deps, &report.python, &report.unavailable)?;
        let requirements = requirements(&dependencies)?;
        let (ok, output) = self
            .pip_install(python, dir, scratch, &requirements)
            .await?;
        if !ok {
            return Err(DepsError::Install(format!(
                "pip could not install {} (unavailable pins replaced by the nearest \
                 installable versions):\n{output}",
                requirements.join(" ")
            )));
        }
        Ok(Installed {
            requirements,
            dependencies,
            warnings,
        })
    }

    /// Runs [`PINS_PROBE`] with the environment's Python, in the sandbox as pip runs.
    async fn unavailable_pins(
        &self,
        python: &Path,
        dir: &Path,
        scratch: &Path,
        pins: &BTreeMap<String, String>,
    ) -> Result<PinsReport, DepsError> {
        let request = serde_json::json!({"pins": pins, "pip_args": self.pip_args}).to_string();
        let view = self.pip_view(dir, scratch);
        let output = self
            .sandbox
            .command(self.base, python, &["-c", PINS_PROBE, &request], &view)
            .await
            .map_err(|e| DepsError::Environment(format!("cannot run pip: {e}")))?
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| DepsError::Environment(format!("cannot run pip: {e}")))?;
        // What pip printed came from the model's packages' index: trusted only as far as it
        // parses, and only for the pins asked about.
        let mut report: PinsReport = serde_json::from_slice(&output.stdout).map_err(|e| {
            DepsError::Install(format!(
                "cannot tell which pins are unavailable ({e}): {}",
                tail(&output.stderr)
            ))
        })?;
        report
            .unavailable
            .retain(|u| pins.get(&u.name) == Some(&u.pin));
        Ok(report)
    }

    /// `pip install` of `requirements` into `venv`, in the sandbox: it writes only `venv`
    /// (`scratch` is inside), and reads the folders named in the pip arguments (a local wheel
    /// mirror).
    async fn pip_install(
        &self,
        python: &Path,
        venv: &Path,
        scratch: &Path,
        requirements: &[String],
    ) -> Result<(bool, String), DepsError> {
        let mut args = vec![
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ];
        args.extend(self.pip_args.iter().map(String::as_str));
        args.extend(requirements.iter().map(String::as_str));
        let view = self.pip_view(venv, scratch);
        let mut pip = self
            .sandbox
            .command(self.base, python, &args, &view)
            .await
            .map_err(|e| DepsError::Environment(format!("cannot run pip: {e}")))?;
        run(&mut pip).await
    }

    /// What pip sees in the sandbox: the environment being built (writable), the absolute
    /// paths of the pip arguments (read-only), the network unless the operator said no.
    fn pip_view(&self, venv: &Path, scratch: &Path) -> View {
        let scratch_text = scratch.to_string_lossy().into_owned();
        View {
            read_only: self
                .pip_args
                .iter()
                .flat_map(|arg| arg.split('='))
                .map(Path::new)
                .filter(|path| path.is_absolute() && path.exists())
                .map(Path::to_owned)
                .collect(),
            read_write: vec![venv.to_owned()],
            cwd: scratch.to_owned(),
            purpose: Purpose::InstallDependencies,
            env: vec![
                ("TMPDIR".to_owned(), scratch_text.clone()),
                ("PIP_CACHE_DIR".to_owned(), format!("{scratch_text}/cache")),
            ],
        }
    }
}

/// Runs a command to completion: whether it succeeded, and the tail of its output.
async fn run(command: &mut Command) -> Result<(bool, String), DepsError> {
    let output = command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| DepsError::Environment(format!("cannot run {command:?}: {e}")))?;
    let mut text = output.stdout;
    text.extend_from_slice(&output.stderr);
    Ok((output.status.success(), tail(&text)))
}

/// The last [`OUTPUT_TAIL`] bytes of an output, as text.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(OUTPUT_TAIL);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn versions_become_pinned_requirements() {
        let got = requirements(&deps(&[
            ("scikit-learn", "1.3.0"),
            ("numpy", ""),
            ("torch", ">=2.0,<3"),
        ]))
        .unwrap();
        assert_eq!(got, ["numpy", "scikit-learn==1.3.0", "torch>=2.0,<3"]);
    }

    #[test]
    fn only_exact_pins_are_pins() {
        let got = exact_pins(&deps(&[
            ("a", "1.5"),
            ("b", "==2.0"),
            ("c", ""),
            ("d", ">=1"),
            ("e", "1.*"),
            ("f", "==1.0,!=1.0.1"),
        ]));
        assert_eq!(got, deps(&[("a", "1.5"), ("b", "2.0")]));
    }

    #[test]
    fn the_nearest_release_above_wins_else_the_one_below() {
        let pin = |name: &str, below: Option<&str>, above: Option<&str>| UnavailablePin {
            name: name.to_owned(),
            pin: "1.5".to_owned(),
            below: below.map(str::to_owned),
            above: above.map(str::to_owned),
        };
        let wanted = deps(&[("a", "1.5"), ("b", "1.5"), ("c", "")]);
        let (got, warnings) = nearest_dependencies(
            &wanted,
            "CPython 3.11",
            &[
                pin("a", Some("1.0"), Some("2.0")),
                pin("b", Some("1.0"), None),
            ],
        )
        .unwrap();
        assert_eq!(got, deps(&[("a", "2.0"), ("b", "1.0"), ("c", "")]));
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("a==1.5") && warnings[0].contains("a==2.0"));
        let err = nearest_dependencies(&wanted, "CPython 3.11", &[pin("a", None, None)]);
        assert!(matches!(err, Err(DepsError::Install(m)) if m.contains("no version of a")));
    }

    #[test]
    fn names_and_versions_that_look_like_options_are_refused() {
        for bad in [
            deps(&[("--index-url=http://evil", "1")]),
            deps(&[("numpy", "1.0 --pre")]),
            deps(&[("numpy", "1.0;os_name")]),
            deps(&[("", "1.0")]),
        ] {
            assert!(
                matches!(requirements(&bad), Err(DepsError::Install(_))),
                "{bad:?}"
            );
        }
    }
}
