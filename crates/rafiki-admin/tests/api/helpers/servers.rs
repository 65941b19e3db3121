//! HTTP servers that the tests run for the admin to reach (dataset mirrors, package indexes),
//! and the setting that lets the admin download from them.

use axum::Router;
use serde_json::{json, Value};

/// Where test dataset servers listen: a loopback address of their own, which
/// [`allow_mirror`] admits while the admin's own address, 127.0.0.1, stays refused.
pub const MIRROR_IP: &str = "127.0.0.2";

/// The setting that admits the test dataset servers, as an operator admits an internal mirror.
pub fn allow_mirror() -> (&'static str, Value) {
    ("dataset_url_allow", json!(format!("{MIRROR_IP}/32")))
}

/// Serves `router` on a free port of `ip`; returns its base URL.
pub async fn serve(ip: &str, router: Router) -> String {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}
