//! A failed command, as the person running it sees it: `ErrorName: message` on stderr, and
//! what to do about it on a line of its own.

use std::fmt;
use std::path::Path;

use rafiki_client::ClientError;

/// A failed command, shown as `name: message`.
#[derive(Debug)]
pub struct Failure {
    name: String,
    message: String,
    /// What to do about it, on a line of its own.
    hint: Option<String>,
}

impl Failure {
    /// A failure with this name and message.
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Failure {
            name: name.to_owned(),
            message: message.into(),
            hint: None,
        }
    }

    /// A local file that could not be read or written.
    pub fn io(path: &Path, err: std::io::Error) -> Self {
        Failure::new("IoError", format!("{}: {err}", path.display()))
    }

    /// A command line that cannot be carried out as given.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new("UsageError", message)
    }

    /// The same failure, saying what to do about it.
    pub fn with_hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n{hint}")?;
        }
        Ok(())
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        let name = err.name().to_owned();
        let text = err.to_string();
        let message = text
            .strip_prefix(&format!("{name}: "))
            .unwrap_or(&text)
            .to_owned();
        let hint = (err.status() == Some(401))
            .then(|| "Your session may have expired: run `rafiki login EMAIL` again.".to_owned());
        Failure {
            name,
            message,
            hint,
        }
    }
}
