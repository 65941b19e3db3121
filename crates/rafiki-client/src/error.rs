//! What a client call can fail with: the server's own error (its name and message), or a
//! failure on this side (connection, file, an answer that cannot be read).

use std::path::PathBuf;

use rafiki_types::error::ErrorName;

use crate::params::ParamsError;

/// A failed client call. `Display` is `ErrorName: message` for every variant, so a program
/// can show it as it is; [`ClientError::name`] gives the name alone.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error: `{"error": <name>, "message": <text>}`. A body that
    /// is not that envelope reads as the name `HTTP<status>` with the body's text.
    #[error("{error}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error's name, e.g. `UserExistsError` (see [`ErrorName`]).
        error: String,
        /// The server's explanation.
        message: String,
    },
    /// The server could not be reached, or the connection failed mid-request.
    #[error("ConnectionError: cannot reach {url}: {reason}")]
    Connection {
        /// The URL of the request.
        url: String,
        /// Why, with the underlying causes.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("IoError: {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server answered 200 with something this client cannot read (wrong content type,
    /// a body that is not the expected JSON).
    #[error("InvalidResponseError: {0}")]
    InvalidResponse(String),
    /// The request cannot be made as asked (e.g. a host that makes no valid URL).
    #[error("InvalidArgumentError: {0}")]
    InvalidArgument(String),
    /// Trial parameters that are not a valid parameters file (`docs/parameters.md`).
    #[error("ParamsError: {0}")]
    Params(#[from] ParamsError),
}

impl ClientError {
    /// The error's name: the server's (e.g. `InvalidTrainJobError`) for [`ClientError::Api`],
    /// else `ConnectionError`, `IoError`, `InvalidResponseError`, `InvalidArgumentError` or
    /// `ParamsError`.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) {
    /// use rafiki_client::types::error::ErrorName;
    /// let err = client.get_train_job("nope", -1).await.unwrap_err();
    /// assert_eq!(err.name(), "InvalidTrainJobError");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        match self {
            ClientError::Api { error, .. } => error,
            ClientError::Connection { .. } => "ConnectionError",
            ClientError::Io { .. } => "IoError",
            ClientError::InvalidResponse(_) => "InvalidResponseError",
            ClientError::InvalidArgument(_) => "InvalidArgumentError",
            ClientError::Params(_) => "ParamsError",
        }
    }

    /// The server's error name as the contract's enum, when it is one of them.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) {
    /// use rafiki_client::types::error::ErrorName;
    /// let err = client.get_train_job("nope", -1).await.unwrap_err();
    /// assert_eq!(err.error_name(), Some(ErrorName::InvalidTrainJobError));
    /// # }
    /// ```
    pub fn error_name(&self) -> Option<ErrorName> {
        match self {
            ClientError::Api { error, .. } => error.parse().ok(),
            _ => None,
        }
    }

    /// Whether the server answered with this error.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) {
    /// use rafiki_client::types::error::ErrorName;
    /// let err = client.get_train_job("nope", -1).await.unwrap_err();
    /// if err.is(ErrorName::InvalidTrainJobError) {
    ///     println!("no such train job");
    /// }
    /// # }
    /// ```
    pub fn is(&self, name: ErrorName) -> bool {
        self.error_name() == Some(name)
    }

    /// The HTTP status of a server error.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) {
    /// use rafiki_client::types::error::ErrorName;
    /// let err = client.get_train_job("nope", -1).await.unwrap_err();
    /// assert_eq!(err.status(), Some(404));
    /// # }
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn connection(url: &str, err: &reqwest::Error) -> Self {
        // reqwest's own message is generic ("error sending request"); the causes say why.
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        ClientError::Connection {
            url: url.to_owned(),
            reason,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClientError::Io {
            path: path.into(),
            source,
        }
    }

    /// The error of a non-200 answer, from its status and body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: String,
            #[serde(default)]
            message: Option<String>,
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(envelope) => ClientError::Api {
                status,
                error: envelope.error,
                message: envelope.message.unwrap_or_default(),
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text: String = text.trim().chars().take(1000).collect();
                ClientError::Api {
                    status,
                    error: format!("HTTP{status}"),
                    message: text,
                }
            }
        }
    }
}

/// The result of a client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_carry_their_name_and_message() {
        let err = ClientError::from_response(
            409,
            br#"{"error": "UserExistsError", "message": "A user with email a@b exists."}"#,
        );
        assert_eq!(
            err.to_string(),
            "UserExistsError: A user with email a@b exists."
        );
        assert_eq!(err.name(), "UserExistsError");
        assert!(err.is(ErrorName::UserExistsError));
        assert_eq!(err.status(), Some(409));
    }

    #[test]
    fn unknown_names_and_non_envelopes_still_read() {
        let err = ClientError::from_response(418, br#"{"error": "TeapotError"}"#);
        assert_eq!(err.name(), "TeapotError");
        assert_eq!(err.error_name(), None);
        let err = ClientError::from_response(502, b"  Bad Gateway\n");
        assert_eq!(err.to_string(), "HTTP502: Bad Gateway");
    }

    #[test]
    fn local_errors_have_names_too() {
        let err = ClientError::io("/nope", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(err.to_string().starts_with("IoError: /nope: "), "{err}");
        assert_eq!(err.name(), "IoError");
        assert_eq!(err.status(), None);
    }
}
