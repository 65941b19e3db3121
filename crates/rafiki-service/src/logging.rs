//! The log set-up of the admin and the services, so that their logs read alike and one setting
//! switches them all to JSON.

use std::str::FromStr;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The environment variable that chooses the [`LogFormat`].
pub const FORMAT_VARIABLE: &str = "RAFIKI_LOG_FORMAT";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (`tracing_subscriber`'s default), coloured at a
    /// terminal. The default, wherever the output goes: the services' logs land in files and
    /// `docker logs` that people read, and a format that changed with where the output is sent
    /// would surprise whoever greps them.
    Text,
    /// One JSON object per line, with the event's fields and its spans' (a request's
    /// `request_id` among them), for a log collector.
    Json,
}

/// A [`FORMAT_VARIABLE`] value that names no format.
#[derive(Debug, thiserror::Error)]
#[error("{FORMAT_VARIABLE} must be `text` or `json`, not `{0}`")]
pub struct BadLogFormat(String);

impl FromStr for LogFormat {
    type Err = BadLogFormat;

    fn from_str(text: &str) -> Result<LogFormat, BadLogFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(BadLogFormat(text.to_owned())),
        }
    }
}

impl LogFormat {
    /// The format [`FORMAT_VARIABLE`] names, [`LogFormat::Text`] when it is unset or empty.
    pub fn from_env() -> Result<LogFormat, BadLogFormat> {
        match std::env::var(FORMAT_VARIABLE) {
            Ok(text) if !text.trim().is_empty() => text.parse(),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(LogFormat::Text),
            Err(std::env::VarError::NotUnicode(text)) => {
                Err(BadLogFormat(text.to_string_lossy().into_owned()))
            }
        }
    }
}

/// Installs the global subscriber: logs to `writer` in the [`FORMAT_VARIABLE`] format,
/// filtered by `RUST_LOG` (else `default_filter`), in colour only when `ansi` (a person at a
/// terminal, not `docker logs` or a file). A bad format is an error, before anything is logged.
pub fn init<W>(default_filter: &str, writer: W, ansi: bool) -> Result<(), BadLogFormat>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let format = LogFormat::from_env()?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// A service's logs: to stderr, `info` unless `RUST_LOG` says otherwise.
pub fn init_tracing() -> Result<(), BadLogFormat> {
    init(
        "info",
        std::io::stderr,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_parse_in_any_case() {
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!(" json ".parse::<LogFormat>().unwrap(), LogFormat::Json);
    }

    #[test]
    fn other_formats_are_refused_with_the_variable_named() {
        for bad in ["xml", "jsonl", "1"] {
            let err = bad.parse::<LogFormat>().unwrap_err().to_string();
            assert_eq!(
                err,
                format!("RAFIKI_LOG_FORMAT must be `text` or `json`, not `{bad}`")
            );
        }
    }
}
