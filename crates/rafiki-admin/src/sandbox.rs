//! Whether the process backend's workers run model code in the bubblewrap sandbox
//! (`RAFIKI_SANDBOX`, crates/rafiki-worker/src/sandbox.rs), decided once at start-up.
//!
//! Model code is hostile: outside `--dev`, the admin refuses to run the process backend
//! without a working sandbox unless the operator opts out with `RAFIKI_SANDBOX=off`, which is
//! logged loudly and shown by `GET /health`.

use std::process::Stdio;

use serde::{Deserialize, Serialize};

/// What the operator asked for (`RAFIKI_SANDBOX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxSetting {
    /// bubblewrap when it works here; where it does not, refuse to start (outside `--dev`).
    Auto,
    /// bubblewrap, or refuse to start.
    Bwrap,
    /// No sandbox: models run with the admin's privileges. Not for shared use.
    Off,
}

/// How model code is isolated, as `GET /health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// The process backend's bubblewrap sandbox.
    Bwrap,
    /// Nothing: the operator opted out, or `--dev` on a machine that cannot sandbox.
    Off,
    /// Hardened containers (the docker backend).
    Container,
}

impl Isolation {
    /// The value of the workers' `RAFIKI_SANDBOX`.
    pub fn worker_setting(self) -> &'static str {
        match self {
            Isolation::Bwrap => "bwrap",
            Isolation::Off | Isolation::Container => "off",
        }
    }
}

/// The process backend's isolation for `setting`: checks that bubblewrap works when it is
/// wanted, and refuses what the operator did not explicitly accept.
/// `bwrap` is the bubblewrap program (`RAFIKI_BWRAP`).
pub fn resolve(setting: SandboxSetting, dev: bool, bwrap: &str) -> Result<Isolation, String> {
    match setting {
        SandboxSetting::Off => {
            tracing::warn!(
                "MODEL CODE IS NOT SANDBOXED (RAFIKI_SANDBOX=off): every model runs with this \
                 admin's privileges and can read its secrets; never let untrusted users upload \
                 models to this server"
            );
            Ok(Isolation::Off)
        }
        SandboxSetting::Bwrap | SandboxSetting::Auto => match bwrap_works(bwrap) {
            Ok(()) => Ok(Isolation::Bwrap),
            Err(reason) if setting == SandboxSetting::Auto && dev => {
                tracing::warn!(
                    "MODEL CODE IS NOT SANDBOXED (--dev, and bubblewrap does not work here: \
                     {reason}); install Debian's `bubblewrap` to sandbox it"
                );
                Ok(Isolation::Off)
            }
            Err(reason) => Err(format!(
                "the process backend runs model code in a bubblewrap sandbox, and bubblewrap \
                 does not work here: {reason}. Install Debian's `bubblewrap` (scripts/run.sh \
                 does) on a kernel with user namespaces, or set RAFIKI_SANDBOX=off to run \
                 models with the admin's privileges (never with untrusted users)"
            )),
        },
    }
}

/// Whether `program` (bubblewrap) can make the namespaces the sandbox uses.
fn bwrap_works(program: &str) -> Result<(), String> {
    let output = std::process::Command::new(program)
        .args([
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_opt_out_is_accepted_outside_dev() {
        assert_eq!(
            resolve(SandboxSetting::Off, false, "bwrap"),
            Ok(Isolation::Off)
        );
    }

    #[test]
    fn without_a_working_bubblewrap_the_admin_refuses_outside_dev() {
        for setting in [SandboxSetting::Auto, SandboxSetting::Bwrap] {
            let err = resolve(setting, false, "/nonexistent/bwrap").unwrap_err();
            assert!(err.contains("RAFIKI_SANDBOX=off"), "{err}");
        }
        let err = resolve(SandboxSetting::Auto, false, "false").unwrap_err();
        assert!(err.contains("failed"), "{err}");
    }

    #[test]
    fn dev_mode_runs_unsandboxed_where_it_cannot_sandbox_unless_bwrap_is_required() {
        assert_eq!(
            resolve(SandboxSetting::Auto, true, "/nonexistent/bwrap"),
            Ok(Isolation::Off)
        );
        assert!(resolve(SandboxSetting::Bwrap, true, "/nonexistent/bwrap").is_err());
    }

    #[test]
    fn workers_are_told_whether_to_sandbox() {
        assert_eq!(Isolation::Bwrap.worker_setting(), "bwrap");
        assert_eq!(Isolation::Container.worker_setting(), "off");
    }
}
