//! The store of dependency environments a host's workers share (`RAFIKI_VENV_DIR`): one
//! folder per environment, named by a key that hashes what decides its content (see
//! [`crate::deps`]), built once, used by every service that needs the same one, and evicted
//! least-recently-used first when the store grows past its bound and no live service uses it.
//! The admin calls [`EnvStore::gc`] at start-up and from `rafiki-admin gc`.
//!
//! Everything is coordinated with `flock(2)` locks (std's `File::lock*`), so it holds across
//! worker processes and across containers that share a volume:
//!
//! - `<key>/` is a complete environment: it holds [`MANIFEST`], written last, and
//!   [`LOCK_FILE`]. Every service using it holds a *shared* lock on that file for its
//!   lifetime ([`Lease`]); the file's modification time is when it was last taken or released.
//! - `.build-<key>.lock` serialises builders of one key: the first takes it exclusively and
//!   builds, the others wait on it and then find the environment complete. The builder removes
//!   it when done; whoever locked a removed one takes the next.
//! - `.tmp-<key>-<uuid>/` is an environment being built. Its lock file is locked shared before
//!   anything is installed and stays locked through the rename into `<key>/`, so the builder
//!   holds its lease from the first moment the environment is visible. A failed build is
//!   removed; one whose builder died is removed by [`EnvStore::gc`] (its build lock is free).
//! - `.trash-<key>-<uuid>/` is an environment taken out of use (evicted, or found broken). A
//!   rename moves it out of the way at once, so no new service can find it; services already
//!   using a broken one keep their lease, and the folder goes once no lease is left.
//!
//! Eviction takes an environment's lock *exclusively and without waiting*: an environment some
//! service uses is never evicted, and eviction never waits for one.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The lock file of an environment (shared by its users, exclusive for eviction).
pub const LOCK_FILE: &str = "rafiki-env.lock";
/// What a complete environment says about itself; written last.
pub const MANIFEST: &str = "rafiki-env.json";
/// Prefix of environments being built.
const TEMP_PREFIX: &str = ".tmp-";
/// Prefix of environments taken out of use, removed once unused.
const TRASH_PREFIX: &str = ".trash-";
/// Prefix of build locks (`.build-<key>.lock`).
const BUILD_PREFIX: &str = ".build-";
/// How often a waiting worker tries a lock again.
const POLL: Duration = Duration::from_millis(100);

/// What a complete environment holds, written into [`MANIFEST`] when it is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The base interpreter it was made from (its `sys.executable`); once it is gone the
    /// environment cannot run and [`EnvStore::gc`] removes it.
    pub base: String,
    /// The requirements pip installed.
    pub requirements: Vec<String>,
    /// `{package: version}` the environment satisfies (what a reuse checks).
    pub dependencies: std::collections::BTreeMap<String, String>,
    /// Its size on disk in bytes, measured when it was built.
    pub size_bytes: u64,
    /// What the build had to tell its users (e.g. a pin replaced by the nearest release).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The store rooted at one folder.
#[derive(Debug, Clone)]
pub struct EnvStore {
    root: PathBuf,
}

/// A complete environment in use: while it lives, the environment is not evicted.
#[derive(Debug)]
pub struct Lease {
    lock: File,
    dir: PathBuf,
    manifest: Manifest,
}

/// The right to build one key: while it lives, no other worker builds it.
#[derive(Debug)]
pub struct BuildLock {
    _lock: File,
    path: PathBuf,
    root: PathBuf,
    key: String,
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        // Removed while still held, so the store keeps no clutter: a waiter that locks the
        // removed file sees it gone (`still_at`) and takes the next one.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An environment being built; dropped unpublished, it is removed.
#[derive(Debug)]
pub struct Building {
    lock: Option<File>,
    dir: PathBuf,
}

/// What [`EnvStore::gc`] or [`EnvStore::evict_over`] removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Removed {
    /// Complete environments evicted (least recently used over the bound, or stale), by key.
    pub evicted: Vec<String>,
    /// Half-built environments whose builder is gone, and taken-out ones no longer used.
    pub leftovers: usize,
    /// Bytes the removed complete environments took.
    pub bytes: u64,
}

/// One complete environment as the store lists it.
#[derive(Debug, Clone)]
pub struct EnvInfo {
    /// Its key (folder name).
    pub key: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// When it was last taken or released.
    pub last_used: SystemTime,
}

impl Lease {
    /// The environment's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the environment holds.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The last use is when the last service let it go; eviction orders by it.
        let _ = self.lock.set_modified(SystemTime::now());
    }
}

impl Building {
    /// The folder to build in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the folder's lock file is still the one this build holds. What ran in the
    /// folder (pip, a package's build code) could write there; a replaced lock file would let
    /// the environment be evicted under its users.
    pub fn intact(&self) -> bool {
        self.lock
            .as_ref()
            .is_some_and(|lock| still_at(lock, &self.dir.join(LOCK_FILE)))
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        if self.lock.is_some() {
            // Unpublished: a failed or abandoned build leaves nothing behind.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A bound of `gb` gigabytes (10^9 bytes) in bytes; `None` (no bound) for 0.
pub fn bound_of_gigabytes(gb: f64) -> Option<u64> {
    (gb > 0.0).then_some((gb * 1e9) as u64)
}

/// Whether `key` may name an environment folder: letters, digits, `-` and `_`, not starting
/// with a dot (those names are the store's own).
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn bad_key(key: &str) -> io::Error {
    io::Error::new(
        ErrorKind::InvalidInput,
        format!("`{key}` is not an environment key"),
    )
}

/// Opens (creating when asked) a lock file for reading and writing (its time is set on use).
/// Never through a link: in a container the model can write its owners' store.
fn open_lock(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

/// Whether `file` is still the file at `path`: a lock taken on a file that was since removed
/// or replaced protects nothing.
fn still_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
        _ => false,
    }
}

/// Tries `file`'s lock without waiting: `Ok(false)` when someone else holds it.
fn try_lock(file: &File, exclusive: bool) -> io::Result<bool> {
    let attempt = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match attempt {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The largest manifest read: a real one is a few hundred bytes.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(dir.join(MANIFEST))
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_MANIFEST_BYTES), &mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Bytes a folder takes on disk (allocated blocks of everything in it, links not followed).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| disk_usage(&entry.path()))
                .sum::<u64>()
        })
        .unwrap_or(0);
    own + children
}

/// Whether a folder of the store is unused: its lock file (if any) can be taken exclusively.
/// Returns the held lock, so the caller removes the folder before anyone can take it.
fn unused(dir: &Path) -> io::Result<Option<Option<File>>> {
    match open_lock(&dir.join(LOCK_FILE), false) {
        Ok(file) => Ok(try_lock(&file, true)?.then_some(Some(file))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Some(None)),
        Err(e) => Err(e),
    }
}

impl EnvStore {
    /// The store in `root` (created when first needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        EnvStore { root: root.into() }
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a complete environment.
    pub fn dir_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Takes a lease on the complete environment `key`, if there is one. Waits only while an
    /// eviction has it (a moment).
    pub async fn open(&self, key: &str) -> io::Result<Option<Lease>> {
        if !valid_key(key) {
            return Err(bad_key(key));
        }
        let dir = self.dir_of(key);
        let path = dir.join(LOCK_FILE);
        loop {
            let file = match open_lock(&path, false) {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            if !try_lock(&file, false)? {
                tokio::time::sleep(POLL).await;
                continue;
            }
            if !still_at(&file, &path) {
                // Evicted or replaced while we waited: look again.
                continue;
            }
            let Some(manifest) = read_manifest(&dir) else {
                return Ok(None);
            };
            let _ = file.set_modified(SystemTime::now());
            return Ok(Some(Lease {
                lock: file,
                dir,
                manifest,
            }));
        }
    }

    /// The right to build `key`, waiting while another worker builds it. Call
    /// [`EnvStore::open`] again once it is held: the other worker may have finished it.
    pub async fn lock_build(&self, key: &str) -> io::Result<BuildLock> {
        if !valid_key(key) {
            return Err(bad_key(key));
        }
        std::fs::create_dir_all(&self.root)?;
        let path = self.root.join(format!("{BUILD_PREFIX}{key}.lock"));
        let mut told = false;
        loop {
            let file = open_lock(&path, true)?;
            if try_lock(&file, true)? {
                if still_at(&file, &path) {
                    return Ok(BuildLock {
                        _lock: file,
                        path,
                        root: self.root.clone(),
                        key: key.to_owned(),
                    });
                }
                // gc removed the file between our open and our lock: take the new one.
                continue;
            }
            if !told {
                tracing::info!(
                    key,
                    "another worker is building this environment; waiting for it"
                );
                told = true;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Complete environments, with their manifests and last use.
    pub fn list(&self) -> io::Result<Vec<EnvInfo>> {
        let mut found = Vec::new();
        for entry in read_dir_or_empty(&self.root)? {
            let key = entry.file_name().to_string_lossy().into_owned();
            if !valid_key(&key) {
                continue;
            }
            let dir = entry.path();
            let Some(manifest) = read_manifest(&dir) else {
                continue;
            };
            let last_used = std::fs::metadata(dir.join(LOCK_FILE))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            found.push(EnvInfo {
                key,
                manifest,
                last_used,
            });
        }
        Ok(found)
    }

    /// Evicts unused complete environments, least recently used first, until the complete
    /// ones take at most `max_bytes` (those in use count, but stay).
    pub fn evict_over(&self, max_bytes: u64) -> io::Result<Removed> {
        let mut envs = self.list()?;
        let mut total: u64 = envs.iter().map(|e| e.manifest.size_bytes).sum();
        let mut removed = Removed::default();
        envs.sort_by_key(|e| e.last_used);
        for env in envs {
            if total <= max_bytes {
                break;
            }
            if self.evict(&env.key)? {
                total = total.saturating_sub(env.manifest.size_bytes);
                removed.bytes += env.manifest.size_bytes;
                removed.evicted.push(env.key);
            }
        }
        if total > max_bytes {
            tracing::warn!(
                total,
                max_bytes,
                "dependency environments in use take more than the bound"
            );
        }
        Ok(removed)
    }

    /// Removes what no worker needs: half-built environments whose builder is gone, taken-out
    /// ones no service uses any more, unused complete ones whose base interpreter is gone or
    /// that have no readable manifest (an older layout), build locks no builder holds, and,
    /// with a bound, least-recently-used ones over it.
    pub fn gc(&self, max_bytes: Option<u64>) -> io::Result<Removed> {
        let mut removed = Removed::default();
        for entry in read_dir_or_empty(&self.root)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if let Some(rest) = name.strip_prefix(TEMP_PREFIX) {
                // A builder holds its key's build lock from before it made the folder until
                // it renamed it: with that lock free, the folder is a dead builder's.
                let Some((key, _)) = rest.rsplit_once('-').filter(|(k, _)| valid_key(k)) else {
                    continue;
                };
                let lock = open_lock(&self.root.join(format!("{BUILD_PREFIX}{key}.lock")), true)?;
                if try_lock(&lock, true)? && remove_tree(&path) {
                    removed.leftovers += 1;
                }
            } else if name.starts_with(TRASH_PREFIX) {
                if unused(&path)?.is_some() && remove_tree(&path) {
                    removed.leftovers += 1;
                }
            } else if valid_key(&name) && path.is_dir() {
                let stale = match read_manifest(&path) {
                    None => true,
                    Some(manifest) => !Path::new(&manifest.base).exists(),
                };
                if stale {
                    let size = read_manifest(&path).map_or(0, |m| m.size_bytes);
                    if self.evict(&name)? {
                        removed.bytes += size;
                        removed.evicted.push(name);
                    }
                }
            }
        }
        // Build locks last: a temporary above may have needed its key's lock.
        for entry in read_dir_or_empty(&self.root)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = name
                .strip_prefix(BUILD_PREFIX)
                .and_then(|rest| rest.strip_suffix(".lock"))
            else {
                continue;
            };
            if !valid_key(key) {
                continue;
            }
            let lock = open_lock(&entry.path(), false)?;
            // A builder that opened it before the removal notices (`still_at`) and retries.
            if try_lock(&lock, true)? {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        if let Some(max_bytes) = max_bytes {
            let over = self.evict_over(max_bytes)?;
            removed.bytes += over.bytes;
            removed.evicted.extend(over.evicted);
        }
        Ok(removed)
    }

    /// Takes the complete environment `key` out of the store unless a service uses it; returns
    /// whether it did.
    fn evict(&self, key: &str) -> io::Result<bool> {
        let dir = self.dir_of(key);
        let Some(lock) = unused(&dir)? else {
            return Ok(false);
        };
        let trash = trash_path(&self.root, key);
        match std::fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        // Waiting users see the folder gone once they have the lock (`still_at`).
        drop(lock);
        remove_tree(&trash);
        tracing::info!(key, "evicted a dependency environment");
        Ok(true)
    }
}

impl BuildLock {
    /// A fresh folder to build the environment in, whose lock file is already held shared.
    pub fn start(&self) -> io::Result<Building> {
        let dir = self.root.join(format!(
            "{TEMP_PREFIX}{}-{}",
            self.key,
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir)?;
        let mut building = Building { lock: None, dir };
        let lock = open_lock(&building.dir.join(LOCK_FILE), true)?;
        if !try_lock(&lock, false)? {
            return Err(io::Error::other("a fresh lock file is locked"));
        }
        building.lock = Some(lock);
        Ok(building)
    }

    /// Completes a build: writes the manifest, renames the folder into place and returns the
    /// builder's lease. `None` when a complete environment is there already (the build lock
    /// was lost to gc meanwhile): this one is removed, and the caller opens that one.
    pub fn publish(&self, mut building: Building, manifest: Manifest) -> io::Result<Option<Lease>> {
        if !building.intact() {
            return Err(io::Error::other(
                "the environment's lock file was replaced while it was built",
            ));
        }
        let text = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        // Never through a link something in the folder planted: a new file, or nothing.
        let path = building.dir.join(MANIFEST);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::io::Write::write_all(
            &mut OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?,
            &text,
        )?;
        let dir = self.root.join(&self.key);
        if let Err(e) = std::fs::rename(&building.dir, &dir) {
            if !dir.exists() {
                return Err(e);
            }
            if read_manifest(&dir).is_some() {
                return Ok(None);
            }
            // An incomplete folder under the final name (an older layout): out of the way.
            if unused(&dir)?.is_none() {
                return Ok(None);
            }
            let trash = trash_path(&self.root, &self.key);
            std::fs::rename(&dir, &trash)?;
            remove_tree(&trash);
            std::fs::rename(&building.dir, &dir)?;
        }
        let lock = building
            .lock
            .take()
            .expect("an unpublished build holds its lock");
        Ok(Some(Lease {
            lock,
            dir,
            manifest,
        }))
    }

    /// Takes a complete environment that turned out broken out of use: new services cannot
    /// find it any more, and those using it keep it until they end.
    pub fn retire(&self, lease: Lease) -> io::Result<()> {
        let path = lease.dir.join(LOCK_FILE);
        // Only the environment the lease is on: under the build lock nobody replaces it.
        if still_at(&lease.lock, &path) {
            std::fs::rename(&lease.dir, trash_path(&self.root, &self.key))?;
        }
        Ok(())
    }
}

/// A fresh name for an environment of `key` taken out of use.
fn trash_path(root: &Path, key: &str) -> PathBuf {
    root.join(format!("{TRASH_PREFIX}{key}-{}", Uuid::new_v4().simple()))
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Removes a folder tree; failures are logged (the next gc tries again).
fn remove_tree(path: &Path) -> bool {
    match std::fs::remove_dir_all(path) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot remove: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_store() {
        for bad in ["", "..", "a/b", ".tmp-x", "a b", &"x".repeat(129)] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        assert!(valid_key("0123abcdef"));
    }

    #[test]
    fn bounds_are_in_gigabytes_and_zero_means_none() {
        assert_eq!(bound_of_gigabytes(0.0), None);
        assert_eq!(bound_of_gigabytes(1.5), Some(1_500_000_000));
    }
}
