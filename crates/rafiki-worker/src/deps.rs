//! A model's dependencies (`{package: version}`): use the worker's interpreter when it already
//! has them, else a cached virtual environment per dependency set.
//!
//! The environment is made with `python -m venv --system-site-packages` (so the `rafiki`
//! package and whatever the base interpreter has stay importable) and the pinned packages are
//! `pip install`ed into it. When the base interpreter is itself a virtual environment, its
//! site-packages are added to the new one through a `.pth` file, since `--system-site-packages`
//! only reaches the system's. Environments are built in a temporary folder and renamed into
//! place when complete, so a half-built one is never used; two workers building the same one at
//! once both succeed and one copy wins.
//!
//! The base interpreter is the operator's and runs as it is; whatever runs from an environment
//! built from a model's dependency list (`pip install`, which may run a package's build code,
//! and every later check of that environment, since a package's `.pth` file runs at start-up)
//! runs in the worker's [`Sandbox`], seeing only that environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::sandbox::{Purpose, Sandbox, View};

/// Written into a finished environment; its presence means the environment is complete.
const MARKER: &str = "rafiki-venv.json";

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

/// The interpreter to run the model with: `base` itself when it satisfies `deps`, else the
/// Python of a virtual environment under `venv_root` that has them (built when missing).
pub async fn prepare_python(
    sandbox: &Sandbox,
    base: &Path,
    deps: &BTreeMap<String, String>,
    venv_root: &Path,
    pip_args: &[String],
) -> Result<PathBuf, DepsError> {
    if deps.is_empty() {
        return Ok(base.to_owned());
    }
    let requirements = requirements(deps)?;
    let probe = probe(base, deps, None).await?;
    if probe.unmet.is_empty() {
        tracing::info!(python = %base.display(), "the interpreter has the model's dependencies");
        return Ok(base.to_owned());
    }
    tracing::info!(unmet = ?probe.unmet, "the interpreter lacks some dependencies; using a virtual environment");
    let key = venv_key(&probe, &requirements);
    let venv = venv_root.join(&key);
    let python = venv.join("bin").join("python");
    if venv.join(MARKER).is_file() {
        let jail = Jail {
            sandbox,
            base,
            venv: &venv,
        };
        match probe_of_existing(&python, deps, &jail).await {
            Ok(()) => {
                tracing::info!(venv = %venv.display(), "reusing the virtual environment");
                return Ok(python);
            }
            Err(reason) => {
                tracing::warn!(venv = %venv.display(), "the cached environment is broken ({reason}); rebuilding it");
                let stale = venv_root.join(format!(".stale-{key}-{}", std::process::id()));
                if tokio::fs::rename(&venv, &stale).await.is_ok() {
                    let _ = tokio::fs::remove_dir_all(&stale).await;
                }
            }
        }
    }
    let build = Build {
        sandbox,
        base,
        base_probe: &probe,
        deps,
        requirements: &requirements,
        pip_args,
    };
    build.venv(venv_root, &key).await?;
    Ok(python)
}

/// The sandbox a dependency environment's Python runs in, seeing that environment.
struct Jail<'a> {
    sandbox: &'a Sandbox,
    base: &'a Path,
    venv: &'a Path,
}

async fn probe_of_existing(
    python: &Path,
    deps: &BTreeMap<String, String>,
    jail: &Jail<'_>,
) -> Result<(), String> {
    match probe(python, deps, Some(jail)).await {
        Ok(p) if p.unmet.is_empty() => Ok(()),
        Ok(p) => Err(format!("unmet: {:?}", p.unmet)),
        Err(e) => Err(e.to_string()),
    }
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

/// The environment's folder name: the base interpreter and the requirements, hashed.
fn venv_key(probe: &Probe, requirements: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(probe.executable.as_bytes());
    hasher.update(b"\n");
    hasher.update(probe.version.as_bytes());
    for requirement in requirements {
        hasher.update(b"\n");
        hasher.update(requirement.as_bytes());
    }
    hex::encode(hasher.finalize())[..24].to_owned()
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
}

impl Build<'_> {
    /// Builds the environment `venv_root/key` in a temporary folder and renames it into place.
    async fn venv(&self, venv_root: &Path, key: &str) -> Result<(), DepsError> {
        let env_error =
            |what: &str, e: std::io::Error| DepsError::Environment(format!("{what}: {e}"));
        tokio::fs::create_dir_all(venv_root)
            .await
            .map_err(|e| env_error(&format!("cannot create {}", venv_root.display()), e))?;
        let temp = crate::cache::temp_name(&venv_root.join(key));
        let scratch = PathBuf::from(format!("{}.pip", temp.display()));
        let result = self.populate(&temp, &scratch).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&temp).await;
            return Err(e);
        }
        let venv = venv_root.join(key);
        if let Err(e) = tokio::fs::rename(&temp, &venv).await {
            let _ = tokio::fs::remove_dir_all(&temp).await;
            // Someone else finished the same environment first: theirs is as good.
            if venv.join(MARKER).is_file() {
                return Ok(());
            }
            return Err(env_error(
                &format!("cannot move the environment to {}", venv.display()),
                e,
            ));
        }
        tracing::info!(venv = %venv.display(), requirements = ?self.requirements, "built a virtual environment");
        Ok(())
    }

    /// Creates the environment in `dir`, installs the requirements (pip's own temporary files
    /// and cache in `scratch`) and writes the marker.
    async fn populate(&self, dir: &Path, scratch: &Path) -> Result<(), DepsError> {
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
        tokio::fs::create_dir_all(scratch).await.map_err(|e| {
            DepsError::Environment(format!("cannot create {}: {e}", scratch.display()))
        })?;
        let (ok, output) = self.pip_install(&python, dir, scratch).await?;
        if !ok {
            return Err(DepsError::Install(format!(
                "pip could not install {}:\n{output}",
                self.requirements.join(" ")
            )));
        }
        // pip may succeed and still leave a version that does not match (e.g. a looser pin
        // elsewhere); the model would then run with the wrong packages.
        let jail = Jail {
            sandbox: self.sandbox,
            base,
            venv: dir,
        };
        let installed = probe(&python, self.deps, Some(&jail)).await?;
        if !installed.unmet.is_empty() {
            return Err(DepsError::Install(format!(
                "after pip install, dependencies are still unmet: {:?}",
                installed.unmet
            )));
        }
        let marker = serde_json::json!({
            "base": self.base_probe.executable,
            "requirements": self.requirements,
        });
        tokio::fs::write(dir.join(MARKER), marker.to_string())
            .await
            .map_err(|e| DepsError::Environment(format!("cannot finish {}: {e}", dir.display())))?;
        Ok(())
    }

    /// `pip install` of the requirements into `venv`, in the sandbox: it writes only `venv` and
    /// `scratch`, and reads the folders named in the pip arguments (a local wheel mirror).
    async fn pip_install(
        &self,
        python: &Path,
        venv: &Path,
        scratch: &Path,
    ) -> Result<(bool, String), DepsError> {
        let mut args = vec![
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ];
        args.extend(self.pip_args.iter().map(String::as_str));
        args.extend(self.requirements.iter().map(String::as_str));
        let scratch_text = scratch.to_string_lossy().into_owned();
        let view = View {
            read_only: self
                .pip_args
                .iter()
                .flat_map(|arg| arg.split('='))
                .map(Path::new)
                .filter(|path| path.is_absolute() && path.exists())
                .map(Path::to_owned)
                .collect(),
            read_write: vec![venv.to_owned(), scratch.to_owned()],
            cwd: scratch.to_owned(),
            purpose: Purpose::InstallDependencies,
            env: vec![
                ("TMPDIR".to_owned(), scratch_text.clone()),
                ("PIP_CACHE_DIR".to_owned(), format!("{scratch_text}/cache")),
            ],
        };
        let mut pip = self
            .sandbox
            .command(self.base, python, &args, &view)
            .await
            .map_err(|e| DepsError::Environment(format!("cannot run pip: {e}")))?;
        run(&mut pip).await
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
