//! Answers that stream a stored object (a model file, a dataset, trial parameters) as
//! `application/octet-stream`, without reading it into memory.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::storage::{ObjectKind, Storage};

/// The object's bytes with an exact `Content-Length`.
pub async fn stored_object(storage: &Storage, kind: ObjectKind, key: Uuid) -> ApiResult<Response> {
    let (file, size) = storage.open_object(kind, key).await?;
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response())
}
