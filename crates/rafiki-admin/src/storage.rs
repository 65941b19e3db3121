//! The data directory (`RAFIKI_DATA_DIR`): every file the admin writes — datasets, model files,
//! trial parameters — goes through here, so the atomicity rules live in one place
//! (docs/storage.md):
//!
//! - An object is streamed into a temporary file under `tmp/`, hashed (SHA-256) and counted as
//!   it goes, fsynced, and only then renamed to `<kind>/<key>`: no reader ever sees half a file.
//! - Keys are server-generated uuids; no client-chosen string ever becomes a path.
//! - The caller inserts the database row only after [`Upload::finish`], and calls
//!   [`StoredObject::keep`] once the row is in; a [`StoredObject`] dropped before that removes
//!   its file, so a failed insert (or a cancelled request) leaves nothing behind. An [`Upload`]
//!   dropped before it finishes removes its temporary.
//! - One admin process owns a data directory at a time (an exclusive lock on `.lock`), so the
//!   start-up sweep may remove every temporary it finds: they are leftovers of a crash.
//!
//! Access control is the routes' business: this module never decides who may read what.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// What an object is; each kind has its own directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A dataset file (`datasets/`).
    Dataset,
    /// An uploaded model file (`models/`).
    ModelFile,
    /// A trial's saved parameters (`params/`).
    Params,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 3] = [
        ObjectKind::Dataset,
        ObjectKind::ModelFile,
        ObjectKind::Params,
    ];

    /// The kind's directory under the data directory.
    pub fn dir_name(self) -> &'static str {
        match self {
            ObjectKind::Dataset => "datasets",
            ObjectKind::ModelFile => "models",
            ObjectKind::Params => "params",
        }
    }
}

/// Directory of in-progress writes.
const TMP_DIR: &str = "tmp";
/// Suffix of in-progress writes.
const TMP_SUFFIX: &str = ".part";
/// Writes are gathered into buffers of this size before they go to disk.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// The data directory, opened and locked.
pub struct Storage {
    root: PathBuf,
    /// Held for the life of the process: the exclusive lock on `.lock`.
    _lock: fs::File,
}

impl Storage {
    /// Creates the layout under `root` if needed and takes its lock. Fails if another admin
    /// process holds it.
    pub fn open(root: &Path) -> anyhow::Result<Storage> {
        let mut dirs = vec![root.to_path_buf(), root.join(TMP_DIR)];
        dirs.extend(
            ObjectKind::ALL
                .iter()
                .map(|kind| root.join(kind.dir_name())),
        );
        for dir in &dirs {
            create_private_dir(dir)
                .with_context(|| format!("cannot create {} (RAFIKI_DATA_DIR)", dir.display()))?;
        }
        let lock_path = root.join(".lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => anyhow::bail!(
                "the data directory {} is in use by another admin process (RAFIKI_DATA_DIR)",
                root.display()
            ),
            Err(fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("cannot lock {}", lock_path.display()))
            }
        }
        Ok(Storage {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes every temporary left by a crash; returns how many. Call at start-up only: the
    /// lock guarantees that no upload of another process is in flight, and none of this one's
    /// has started yet.
    pub fn sweep_temporaries(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join(TMP_DIR))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts writing a new object of `kind`, refusing more than `max_bytes`.
    pub async fn create(&self, kind: ObjectKind, max_bytes: u64) -> io::Result<Upload> {
        let key = Uuid::new_v4();
        let tmp_path = self
            .root
            .join(TMP_DIR)
            .join(format!("{}-{key}{TMP_SUFFIX}", kind.dir_name()));
        let file = private_file_options().open(&tmp_path).await?;
        Ok(Upload {
            kind,
            key,
            tmp_path,
            final_path: self.path(kind, key),
            file: Some(tokio::io::BufWriter::with_capacity(
                WRITE_BUFFER_BYTES,
                file,
            )),
            hasher: Sha256::new(),
            size: 0,
            max_bytes,
        })
    }

    /// Opens a stored object for reading, with its size.
    pub async fn open_object(
        &self,
        kind: ObjectKind,
        key: Uuid,
    ) -> io::Result<(tokio::fs::File, u64)> {
        let file = tokio::fs::File::open(self.path(kind, key)).await?;
        let size = file.metadata().await?.len();
        Ok((file, size))
    }

    /// Removes a stored object; one already gone is not an error.
    pub async fn remove(&self, kind: ObjectKind, key: Uuid) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(kind, key)).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// Where an object lives. The key is a uuid, so the path cannot leave the directory.
    fn path(&self, kind: ObjectKind, key: Uuid) -> PathBuf {
        self.root.join(kind.dir_name()).join(key.to_string())
    }
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The object would exceed its size limit.
    #[error("the object is larger than {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// The disk failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An object being written: a temporary file, removed if this is dropped before
/// [`Upload::finish`].
pub struct Upload {
    kind: ObjectKind,
    key: Uuid,
    tmp_path: PathBuf,
    final_path: PathBuf,
    /// `None` once finished.
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    hasher: Sha256,
    size: u64,
    max_bytes: u64,
}

impl Upload {
    /// Appends `chunk`, or refuses it whole if it would pass the size limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        let len = chunk.len() as u64;
        if self.size.saturating_add(len) > self.max_bytes {
            return Err(WriteError::TooLarge {
                max_bytes: self.max_bytes,
            });
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("write after finish"))?;
        file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.size += len;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes and fsyncs the temporary, renames it into place and fsyncs the directory, so the
    /// object survives a crash once this returns.
    pub async fn finish(mut self) -> io::Result<StoredObject> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("finished twice"))?;
        file.flush().await?;
        let file = file.into_inner();
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&self.tmp_path, &self.final_path).await?;
        // From here the object is the StoredObject's to clean up.
        let stored = StoredObject {
            kind: self.kind,
            key: self.key,
            size_bytes: self.size,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
            path: self.final_path.clone(),
            keep: false,
        };
        self.tmp_path = PathBuf::new();
        let dir = self.final_path.parent().map(Path::to_path_buf);
        if let Some(dir) = dir {
            tokio::task::spawn_blocking(move || fs::File::open(dir)?.sync_all())
                .await
                .map_err(io::Error::other)??;
        }
        Ok(stored)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.tmp_path.as_os_str().is_empty() {
            return;
        }
        // Removed synchronously, so that when the failed request answers, its temporary is
        // already gone (an unlink is quick even for a large file).
        drop(self.file.take());
        if let Err(err) = fs::remove_file(&self.tmp_path) {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.tmp_path.display(), error = %err,
                    "cannot remove an abandoned upload; the start-up sweep will");
            }
        }
    }
}

/// An object in place under its key, with its exact size and hash. Dropped before
/// [`StoredObject::keep`], it removes its file.
#[derive(Debug)]
pub struct StoredObject {
    kind: ObjectKind,
    key: Uuid,
    size_bytes: u64,
    sha256: String,
    path: PathBuf,
    keep: bool,
}

impl StoredObject {
    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// Its key.
    pub fn key(&self) -> Uuid {
        self.key
    }

    /// Its exact size.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Lowercase hex SHA-256 of its bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where its file is, for checks that read it before its row is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the file: a database row now refers to it.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for StoredObject {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(err) = fs::remove_file(&self.path) {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %err,
                    "cannot remove an object whose row was not inserted");
            }
        }
    }
}

/// A directory only the admin's user can read.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options of a new temporary: created, never overwriting, readable by the admin's user only.
fn private_file_options() -> tokio::fs::OpenOptions {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root() -> PathBuf {
        std::env::temp_dir().join(format!("rafiki-storage-test-{}", Uuid::new_v4()))
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else if path.file_name().unwrap() != ".lock" {
                out.push(path);
            }
        }
        out
    }

    #[tokio::test]
    async fn a_finished_upload_is_in_place_with_its_size_and_hash() {
        let root = temp_root();
        let storage = Storage::open(&root).unwrap();
        let mut upload = storage.create(ObjectKind::Dataset, 100).await.unwrap();
        upload.write(b"hello ").await.unwrap();
        upload.write(b"world").await.unwrap();
        // Nothing is visible under datasets/ until it finishes.
        assert!(files_under(&root.join("datasets")).is_empty());
        let stored = upload.finish().await.unwrap();
        assert_eq!(stored.size_bytes(), 11);
        assert_eq!(
            stored.sha256(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        let key = stored.key();
        stored.keep();
        assert_eq!(
            files_under(&root),
            vec![root.join("datasets").join(key.to_string())]
        );
        let (mut file, size) = storage.open_object(ObjectKind::Dataset, key).await.unwrap();
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut file, &mut bytes)
            .await
            .unwrap();
        assert_eq!((bytes.as_slice(), size), (&b"hello world"[..], 11));
        storage.remove(ObjectKind::Dataset, key).await.unwrap();
        storage.remove(ObjectKind::Dataset, key).await.unwrap();
        assert!(files_under(&root).is_empty());
    }

    #[tokio::test]
    async fn abandoned_uploads_and_unkept_objects_leave_no_file() {
        let root = temp_root();
        let storage = Storage::open(&root).unwrap();
        let mut upload = storage.create(ObjectKind::ModelFile, 4).await.unwrap();
        upload.write(b"abc").await.unwrap();
        assert!(matches!(
            upload.write(b"de").await,
            Err(WriteError::TooLarge { max_bytes: 4 })
        ));
        assert_eq!(upload.size(), 3);
        assert_eq!(files_under(&root).len(), 1, "the temporary");
        drop(upload);
        assert!(files_under(&root).is_empty());

        let upload = storage.create(ObjectKind::ModelFile, 4).await.unwrap();
        let stored = upload.finish().await.unwrap();
        assert_eq!(files_under(&root).len(), 1);
        drop(stored);
        assert!(files_under(&root).is_empty());
    }

    #[tokio::test]
    async fn one_process_owns_a_directory_and_sweeps_its_temporaries() {
        let root = temp_root();
        let storage = Storage::open(&root).unwrap();
        let err = Storage::open(&root).err().unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
        let upload = storage.create(ObjectKind::Params, 10).await.unwrap();
        // A crash: the temporary is never removed.
        std::mem::forget(upload);
        drop(storage);
        let storage = Storage::open(&root).unwrap();
        assert_eq!(storage.sweep_temporaries().unwrap(), 1);
        assert!(files_under(&root).is_empty());
    }
}
