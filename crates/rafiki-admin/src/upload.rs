//! Reading upload forms: `multipart/form-data` with one streamed file field and a few short
//! text fields, or (for requests without a file, as Rafiki's Python client sends them)
//! `application/x-www-form-urlencoded`.
//!
//! The file streams chunk by chunk into the data directory, so memory does not grow with its
//! size; the size limit is enforced while it streams (and up front from `Content-Length` when
//! that alone proves the body too large). Upload routes turn axum's body limit off and rely on
//! this instead. Unknown and repeated fields are refused by name.

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use rafiki_types::error::ErrorName;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::{ObjectKind, Upload, WriteError};

/// Longest name-like field (`name`, `task`, `model_class`) accepted, in characters (as JSON
/// Schema counts a `maxLength`, so the OpenAPI document states the same limit).
pub const MAX_NAME_CHARS: usize = 255;
/// Longest text field accepted, in bytes.
pub const MAX_TEXT_FIELD_BYTES: usize = 64 * 1024;
/// What a form may carry besides its file: the text fields and the multipart framing. A body
/// whose `Content-Length` passes the file limit by more than this is refused before reading.
const FORM_OVERHEAD_BYTES: u64 = 1024 * 1024;

/// The shape of an upload form.
pub struct FormSpec {
    /// Name of the file field.
    pub file_field: &'static str,
    /// Names of the text fields allowed.
    pub text_fields: &'static [&'static str],
    /// What the file is stored as.
    pub kind: ObjectKind,
    /// Whether to keep a copy of the file in memory as well (bounded by the limit).
    pub keep_copy: bool,
    /// Text fields a page adds to an API form's own (the console's CSRF token), so the page
    /// reads the API's form as it is rather than a copy of its field list.
    pub added_fields: &'static [&'static str],
}

/// The bound on a form's file, and what it is, for the 413 that refuses a larger file.
#[derive(Debug, Clone)]
pub struct FileLimit {
    max_bytes: u64,
    /// Ends "The <file> is larger than ...".
    what: String,
}

impl FileLimit {
    /// The limit a setting gives.
    pub fn setting(max_bytes: u64, setting: &str) -> Self {
        Self::new(
            max_bytes,
            format!("the limit of {max_bytes} bytes ({setting})"),
        )
    }

    /// Another bound, e.g. what is left of a quota; `what` ends "The file is larger than ...".
    pub fn new(max_bytes: u64, what: String) -> Self {
        FileLimit { max_bytes, what }
    }

    /// The most bytes allowed.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The `PayloadTooLargeError` of a `file` past this limit.
    pub fn error(&self, file: &str) -> ApiError {
        ApiError::new(
            ErrorName::PayloadTooLargeError,
            format!("The {file} is larger than {}.", self.what),
        )
    }
}

/// A received file: written to a temporary, not yet in place.
pub struct ReceivedFile {
    /// The temporary, to finish or drop.
    pub upload: Upload,
    /// The bytes, when the spec asked for a copy.
    pub copy: Vec<u8>,
}

/// A read form.
pub struct Form {
    text: HashMap<&'static str, String>,
    /// The file, if the form had one.
    pub file: Option<ReceivedFile>,
}

impl Form {
    /// A text field's value; an empty value counts as absent (HTML forms send empty inputs).
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.text.remove(name).filter(|value| !value.is_empty())
    }

    /// A required text field: `InvalidRequestError` naming it if it is missing or blank.
    pub fn require(&mut self, name: &str) -> ApiResult<String> {
        match self.take(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(ApiError::invalid_request(format!(
                "The form field `{name}` is missing or empty."
            ))),
        }
    }
}

impl Form {
    /// A required name-like field: non-blank, at most [`MAX_NAME_CHARS`], no control
    /// characters.
    pub fn require_short(&mut self, name: &str) -> ApiResult<String> {
        let value = self.require(name)?;
        if value.chars().count() > MAX_NAME_CHARS || value.chars().any(char::is_control) {
            return Err(ApiError::invalid_request(format!(
                "The form field `{name}` must be at most {MAX_NAME_CHARS} characters of printable \
                 text."
            )));
        }
        Ok(value)
    }
}

/// Reads `req` as a form of shape `spec`, its file bounded by `limit`.
pub async fn read_form(
    req: Request,
    state: &AppState,
    spec: &FormSpec,
    limit: &FileLimit,
) -> ApiResult<Form> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let declared_length = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length
        .is_some_and(|len| len > limit.max_bytes().saturating_add(FORM_OVERHEAD_BYTES))
    {
        // Refused before reading a byte, so a client that sent `Expect: 100-continue` never
        // uploads the body at all.
        return Err(limit.error(spec.file_field_description()));
    }
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::invalid_request(rejection.body_text()))?;
        read_multipart(multipart, state, spec, limit).await
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        read_urlencoded(req, spec).await
    } else {
        Err(ApiError::invalid_request(format!(
            "Send this form as `multipart/form-data` (the file in the field `{}`), not `{}`.",
            spec.file_field,
            if content_type.is_empty() {
                "a body without Content-Type"
            } else {
                &content_type
            }
        )))
    }
}

impl FormSpec {
    /// This form with `fields` allowed besides its own.
    pub const fn adding(self, fields: &'static [&'static str]) -> FormSpec {
        FormSpec {
            added_fields: fields,
            ..self
        }
    }

    /// Every text field allowed: the form's own, then the added ones.
    fn all_text_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.text_fields.iter().chain(self.added_fields).copied()
    }

    fn file_field_description(&self) -> &'static str {
        match self.kind {
            ObjectKind::Dataset => "dataset",
            ObjectKind::ModelFile => "model file",
            ObjectKind::Params => "parameters file",
        }
    }

    fn text_field(&self, name: &str) -> Option<&'static str> {
        self.all_text_fields().find(|known| *known == name)
    }

    fn unknown_field(&self, name: &str) -> ApiError {
        ApiError::invalid_request(format!(
            "Unknown form field `{name}`; expected `{}` and {}.",
            self.file_field,
            self.all_text_fields()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

async fn read_multipart(
    mut multipart: Multipart,
    state: &AppState,
    spec: &FormSpec,
    limit: &FileLimit,
) -> ApiResult<Form> {
    let mut form = Form {
        text: HashMap::new(),
        file: None,
    };
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == spec.file_field {
            if form.file.is_some() {
                return Err(repeated(&name));
            }
            let mut upload = state.storage.create(spec.kind, limit.max_bytes()).await?;
            let mut copy = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                upload.write(&chunk).await.map_err(|err| match err {
                    WriteError::TooLarge { .. } => limit.error(spec.file_field_description()),
                    WriteError::Io(err) => ApiError::internal(err),
                })?;
                if spec.keep_copy {
                    copy.extend_from_slice(&chunk);
                }
            }
            form.file = Some(ReceivedFile { upload, copy });
        } else if let Some(known) = spec.text_field(&name) {
            if form.text.contains_key(known) {
                return Err(repeated(known));
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if value.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
                    return Err(ApiError::invalid_request(format!(
                        "The form field `{known}` is longer than {MAX_TEXT_FIELD_BYTES} bytes."
                    )));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::invalid_request(format!("The form field `{known}` is not UTF-8 text."))
            })?;
            crate::extract::refuse_nul(&value, &format!("The form field `{known}`"))?;
            form.text.insert(known, value);
        } else {
            return Err(spec.unknown_field(&name));
        }
    }
    Ok(form)
}

async fn read_urlencoded(req: Request, spec: &FormSpec) -> ApiResult<Form> {
    let limit = MAX_TEXT_FIELD_BYTES * (spec.all_text_fields().count() + 1);
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::invalid_request(format!(
                "A url-encoded form may hold at most {limit} bytes; send files as \
                 multipart/form-data."
            ))
        })?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|err| ApiError::invalid_request(format!("Malformed url-encoded form: {err}")))?;
    let mut form = Form {
        text: HashMap::new(),
        file: None,
    };
    for (name, value) in pairs {
        if name == spec.file_field {
            return Err(ApiError::invalid_request(format!(
                "Send the file `{name}` in a multipart/form-data body."
            )));
        }
        let known = spec
            .text_field(&name)
            .ok_or_else(|| spec.unknown_field(&name))?;
        crate::extract::refuse_nul(&value, &format!("The form field `{known}`"))?;
        if form.text.insert(known, value).is_some() {
            return Err(repeated(known));
        }
    }
    Ok(form)
}

fn repeated(name: &str) -> ApiError {
    ApiError::invalid_request(format!("The form field `{name}` is given more than once."))
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::invalid_request(format!("Malformed multipart body: {}", err.body_text()))
}
