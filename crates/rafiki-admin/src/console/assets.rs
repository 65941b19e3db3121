//! The console's stylesheet and script, compiled into the binary (no CDN, no npm: the console
//! works offline) and served under names that carry a digest of their content, so browsers may
//! cache them for good and an upgrade is picked up at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::page;
use super::PREFIX;

/// An embedded file and the name it is served under.
struct Asset {
    name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

impl Asset {
    /// `stem.<first 16 hex digits of the SHA-256>.ext`.
    fn new(stem: &str, ext: &str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
        let digest = hex::encode(Sha256::digest(bytes));
        Asset {
            name: format!("{stem}.{}.{ext}", &digest[..16]),
            content_type,
            bytes,
        }
    }

    fn url(&self) -> String {
        format!("{PREFIX}/assets/{}", self.name)
    }
}

static STYLESHEET: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("assets/console.css"),
    )
});

static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/console.js"),
    )
});

/// Where pages link the stylesheet.
pub fn stylesheet_url() -> String {
    STYLESHEET.url()
}

/// Where pages load the script.
pub fn script_url() -> String {
    SCRIPT.url()
}

/// `GET /console/assets/{file}`: an asset by its digest-bearing name, cacheable for a year.
pub async fn serve(Path(file): Path<String>) -> Response {
    match [&*STYLESHEET, &*SCRIPT]
        .into_iter()
        .find(|a| a.name == file)
    {
        Some(asset) => (
            [
                (CONTENT_TYPE, asset.content_type),
                (CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => page::not_found().await.into_response(),
    }
}
