//! Request-body and query extractors whose rejections use the contract's error envelope
//! (`InvalidRequestError` naming the field, `PayloadTooLargeError`) instead of axum's text.

use axum::extract::{FromRequest, FromRequestParts};

use crate::error::ApiError;

/// `axum::Json` with contract errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` with contract errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` with contract errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);
