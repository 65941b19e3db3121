//! The download cache: model files and datasets under `$RAFIKI_WORK_DIR/cache`, one file per
//! blob, named by id and sha256, so a changed blob never reads a stale copy.
//!
//! A download goes to a temporary file in the same folder and is renamed into place only after
//! its checksum matched, so a crash never leaves a half-written file under a final name. A
//! cached file is used again only when its checksum still matches.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rafiki_service::client::{AdminClient, ClientError};
use rafiki_types::internal::BlobRef;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// Files downloaded from the admin, kept across runs.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

/// A cached file could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The download failed or did not match.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The cache folder cannot be used.
    #[error("cache {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl BlobCache {
    /// A cache in `dir` (created when needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BlobCache { dir: dir.into() }
    }

    /// Where `blob` of `kind` (e.g. `datasets`) is kept; `suffix` (e.g. `.py`) ends the name.
    pub fn path_for(&self, kind: &str, blob: &BlobRef, suffix: &str) -> PathBuf {
        self.dir.join(kind).join(format!(
            "{}-{}{suffix}",
            blob.id,
            blob.sha256.to_ascii_lowercase()
        ))
    }

    /// The local path of `blob`: the cached file when its checksum matches, else a fresh
    /// download of `GET {url_path}`.
    pub async fn fetch(
        &self,
        client: &AdminClient,
        kind: &str,
        blob: &BlobRef,
        suffix: &str,
        url_path: &str,
    ) -> Result<PathBuf, CacheError> {
        let path = self.path_for(kind, blob, suffix);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CacheError::Io { path, source }
        };
        if tokio::fs::try_exists(&path).await.map_err(io(&path))? {
            match file_sha256(&path).await {
                Ok((sha, size))
                    if sha.eq_ignore_ascii_case(&blob.sha256)
                        && i64::try_from(size) == Ok(blob.size_bytes) =>
                {
                    tracing::info!(path = %path.display(), "using the cached {kind} file");
                    return Ok(path);
                }
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "cached file does not match its checksum; downloading again")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot read the cached file ({e}); downloading again")
                }
            }
        }
        let folder = path.parent().expect("cache paths have a folder");
        tokio::fs::create_dir_all(folder)
            .await
            .map_err(io(folder))?;
        let temp = temp_name(&path);
        let downloaded = client
            .download(url_path, &temp, &blob.sha256, blob.size_bytes)
            .await;
        if let Err(e) = downloaded {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e.into());
        }
        if let Err(e) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(io(&path)(e));
        }
        tracing::info!(path = %path.display(), bytes = blob.size_bytes, "downloaded {kind} file");
        Ok(path)
    }
}

/// A name next to `path` that no other download (of this or another process) uses.
pub(crate) fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Hex sha256 and size of a file.
pub async fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}
