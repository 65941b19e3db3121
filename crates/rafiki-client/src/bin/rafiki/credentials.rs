//! The saved login: `$XDG_CONFIG_HOME/rafiki/credentials.json` (or
//! `~/.config/rafiki/credentials.json`), readable by its owner only (mode 0600, in a 0700
//! directory). It holds the admin's address, the email and the session token, so later
//! commands run as that user until the token expires or `rafiki logout` removes the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use rafiki_client::Session;
use serde::{Deserialize, Serialize};

use crate::failure::Failure;

/// What `rafiki login` saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// The admin's host.
    pub host: String,
    /// The admin's port.
    pub port: u16,
    /// Who logged in.
    pub email: String,
    /// The session (token and user).
    pub session: Session,
}

/// Where the credentials live.
pub fn path() -> Result<PathBuf, Failure> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
        // The XDG spec says relative values are to be ignored.
        Some(dir) if dir.is_absolute() => dir,
        _ => match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => PathBuf::from(home).join(".config"),
            _ => {
                return Err(Failure::new(
                    "ConfigError",
                    "neither XDG_CONFIG_HOME nor HOME is set: no place to keep credentials",
                ))
            }
        },
    };
    Ok(base.join("rafiki").join("credentials.json"))
}

/// The saved credentials, if any.
pub fn load() -> Result<Option<Credentials>, Failure> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Failure::new(
                "ConfigError",
                format!(
                    "{} is not a credentials file ({e}); run `rafiki logout` and log in again",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::io(&path, e)),
    }
}

/// Saves credentials: written to a private temporary and renamed over the file, so the file
/// is never readable by others, not even for a moment, and never half-written.
pub fn save(credentials: &Credentials) -> Result<PathBuf, Failure> {
    let path = path()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let temp = dir.join(format!(".credentials-{}.json", std::process::id()));
    let bytes = serde_json::to_vec_pretty(credentials)
        .map_err(|e| Failure::new("ConfigError", e.to_string()))?;
    let written = (|| {
        let mut file = private_file(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(Failure::io(&path, e));
    }
    Ok(path)
}

/// Removes the saved credentials; whether there were any.
pub fn remove() -> Result<bool, Failure> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Failure::io(&path, e)),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Failure::io(dir, e))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::io(dir, e))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}
