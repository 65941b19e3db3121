//! A train worker's own parameter cache: the parameters of its `to_cache_params` trials, which
//! later trials of this worker start from when proposed with `LOCAL_RECENT` (the newest) or
//! `LOCAL_BEST` (the best-scoring). `GLOBAL_*` parameters come from the admin instead
//! (`docs/worker.md`, "Parameter sharing").
//!
//! Rafiki kept these in the worker's memory; here they are files under
//! `$RAFIKI_WORK_DIR/cache/local_params/`, so a worker restarted after a crash (same service,
//! same work dir) finds them again. The folder is inside the model's read-only view, so a
//! trial reads its shared parameters in place.
//!
//! `index.json` lists the entries (trial, score, size, sha256, and a sequence number that
//! orders them; the clock plays no part) and is replaced atomically (a temporary file renamed
//! into place) after each change, so a crash leaves the old index or the new one. On opening,
//! entries whose file is missing, of another size or over the bounds are dropped, and files
//! the index does not name (a crash between a file's move and the index's write) are removed;
//! an unreadable index empties the cache. A file's sha256 is checked again each time it is
//! handed out, and one that no longer matches is dropped: the cache never serves bytes it did
//! not store.
//!
//! Bounded by bytes and by entries ([`ParamCacheBounds`]): past either, the oldest entry goes
//! first, keeping the best-scoring one and the newest; if those two alone exceed the bound, the
//! best goes too. A file larger than the byte bound, or that is not a parameters file
//! (`docs/parameters.md`), is not cached.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cache::{file_sha256, temp_name};
use crate::config::ParamCacheBounds;

/// The first bytes of every parameters file (`docs/parameters.md`).
const MAGIC: &[u8; 8] = b"RAFKPRMS";
/// The index's name in the cache folder.
const INDEX: &str = "index.json";

/// Which cached parameters a trial starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The newest (`LOCAL_RECENT`).
    Recent,
    /// The best-scoring (`LOCAL_BEST`): unscored entries rank below scored ones, ties go to
    /// the newest.
    Best,
}

/// One cached parameters file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Orders the entries: higher is newer. The file is `{seq}.params`.
    pub seq: u64,
    /// The trial that produced the parameters.
    pub trial_id: Uuid,
    /// Its score, if it was evaluated.
    pub score: Option<f64>,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's hex sha256.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    next_seq: u64,
    entries: Vec<Entry>,
}

/// What [`ParamCache::store`] did with a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// Cached as this entry.
    Kept(Entry),
    /// Not cached, and why.
    Refused(String),
}

/// The cache in one folder.
#[derive(Debug)]
pub struct ParamCache {
    dir: PathBuf,
    bounds: ParamCacheBounds,
    index: Index,
}

impl ParamCache {
    /// Opens the cache in `dir` (created when missing), dropping what cannot be trusted.
    pub async fn open(dir: impl Into<PathBuf>, bounds: ParamCacheBounds) -> std::io::Result<Self> {
        let dir = dir.into();
        tokio::fs::create_dir_all(&dir).await?;
        let index = match tokio::fs::read(dir.join(INDEX)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(dir = %dir.display(), "unreadable parameter cache index ({e}); emptying the cache");
                Index::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(e),
        };
        let mut cache = ParamCache { dir, bounds, index };
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::new();
        for entry in std::mem::take(&mut cache.index.entries) {
            let size = tokio::fs::metadata(cache.file(entry.seq))
                .await
                .map(|m| m.len());
            if entry.seq < cache.index.next_seq
                && seen.insert(entry.seq)
                && size.as_ref().is_ok_and(|&s| s == entry.size)
                && entry.size <= bounds.max_bytes
            {
                kept.push(entry);
            } else {
                tracing::warn!(
                    seq = entry.seq,
                    "dropping a cached parameters file that does not match its index entry"
                );
            }
        }
        cache.index.entries = kept;
        cache.evict();
        cache.remove_strays().await?;
        cache.save().await?;
        Ok(cache)
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.index.entries
    }

    /// The path of the entry `pick` chooses, its sha256 checked, with the entry; `None` when
    /// the cache has nothing (or nothing intact) to offer.
    pub async fn pick(&mut self, pick: Pick) -> std::io::Result<Option<(PathBuf, Entry)>> {
        loop {
            let Some(entry) = self.chosen(pick).cloned() else {
                return Ok(None);
            };
            let path = self.file(entry.seq);
            match file_sha256(&path).await {
                Ok((sha, size)) if sha == entry.sha256 && size == entry.size => {
                    return Ok(Some((path, entry)))
                }
                _ => {
                    tracing::warn!(trial = %entry.trial_id, "cached parameters changed on disk; dropping them");
                    self.index.entries.retain(|e| e.seq != entry.seq);
                    let _ = tokio::fs::remove_file(&path).await;
                    self.save().await?;
                }
            }
        }
    }

    /// Takes the parameters file at `source` (moved, or copied when it is on another file
    /// system) into the cache as the newest entry, then evicts past the bounds.
    pub async fn store(
        &mut self,
        source: &Path,
        trial_id: Uuid,
        score: Option<f64>,
    ) -> std::io::Result<Stored> {
        let size = tokio::fs::metadata(source).await?.len();
        if size > self.bounds.max_bytes {
            return Ok(Stored::Refused(format!(
                "{size} bytes, over the cache's bound of {} bytes",
                self.bounds.max_bytes
            )));
        }
        if !starts_with_magic(source).await? {
            return Ok(Stored::Refused("not a parameters file".to_owned()));
        }
        let seq = self.index.next_seq;
        let dest = self.file(seq);
        if tokio::fs::rename(source, &dest).await.is_err() {
            let temp = temp_name(&dest);
            let copied = async {
                tokio::fs::copy(source, &temp).await?;
                tokio::fs::rename(&temp, &dest).await
            }
            .await;
            if let Err(e) = copied {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(e);
            }
        }
        let (sha256, size) = file_sha256(&dest).await?;
        let entry = Entry {
            seq,
            trial_id,
            score: score.filter(|s| s.is_finite()),
            size,
            sha256,
        };
        self.index.next_seq += 1;
        self.index.entries.push(entry.clone());
        for gone in self.evict() {
            let _ = tokio::fs::remove_file(self.file(gone)).await;
        }
        self.save().await?;
        Ok(Stored::Kept(entry))
    }

    fn file(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq}.params"))
    }

    fn chosen(&self, pick: Pick) -> Option<&Entry> {
        match pick {
            Pick::Recent => self.index.entries.iter().max_by_key(|e| e.seq),
            Pick::Best => self.best(),
        }
    }

    fn best(&self) -> Option<&Entry> {
        self.index.entries.iter().max_by(|a, b| {
            let score = |e: &Entry| e.score.unwrap_or(f64::NEG_INFINITY);
            (a.score.is_some(), score(a), a.seq)
                .partial_cmp(&(b.score.is_some(), score(b), b.seq))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    }

    /// Drops entries past the bounds from the index; returns their sequence numbers.
    fn evict(&mut self) -> Vec<u64> {
        let mut gone = Vec::new();
        loop {
            let bytes: u64 = self.index.entries.iter().map(|e| e.size).sum();
            if self.index.entries.len() <= self.bounds.max_entries && bytes <= self.bounds.max_bytes
            {
                return gone;
            }
            let newest = self.chosen(Pick::Recent).map(|e| e.seq);
            let best = self.best().map(|e| e.seq);
            let victim = self
                .index
                .entries
                .iter()
                .map(|e| e.seq)
                .filter(|&s| Some(s) != newest)
                .min_by_key(|&s| (Some(s) == best, s));
            let Some(victim) = victim else {
                return gone;
            };
            self.index.entries.retain(|e| e.seq != victim);
            gone.push(victim);
        }
    }

    /// Removes every file of the folder the index does not name.
    async fn remove_strays(&self) -> std::io::Result<()> {
        let named: std::collections::HashSet<String> = self
            .index
            .entries
            .iter()
            .map(|e| format!("{}.params", e.seq))
            .collect();
        let mut dir = tokio::fs::read_dir(&self.dir).await?;
        while let Some(item) = dir.next_entry().await? {
            let name = item.file_name().to_string_lossy().into_owned();
            if name != INDEX && !named.contains(&name) {
                let path = item.path();
                let removed = if item.file_type().await?.is_dir() {
                    tokio::fs::remove_dir_all(&path).await
                } else {
                    tokio::fs::remove_file(&path).await
                };
                if let Err(e) = removed {
                    tracing::warn!(path = %path.display(), "cannot remove a stray file of the parameter cache: {e}");
                }
            }
        }
        Ok(())
    }

    /// Writes the index atomically.
    async fn save(&self) -> std::io::Result<()> {
        let path = self.dir.join(INDEX);
        let temp = temp_name(&path);
        let bytes = serde_json::to_vec(&self.index).expect("the index serialises");
        let written = async {
            tokio::fs::write(&temp, &bytes).await?;
            tokio::fs::rename(&temp, &path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        written
    }
}

async fn starts_with_magic(path: &Path) -> std::io::Result<bool> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 8];
    let mut file = tokio::fs::File::open(path).await?;
    match file.read_exact(&mut head).await {
        Ok(_) => Ok(&head == MAGIC),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(max_bytes: u64, max_entries: usize) -> ParamCacheBounds {
        ParamCacheBounds {
            max_bytes,
            max_entries,
        }
    }

    /// A file in `dir` that starts like a parameters file, `size` bytes long.
    async fn params_file(dir: &Path, name: &str, size: usize) -> PathBuf {
        let mut bytes = MAGIC.to_vec();
        bytes.resize(size.max(MAGIC.len()), b'x');
        let path = dir.join(name);
        tokio::fs::write(&path, bytes).await.unwrap();
        path
    }

    async fn store(
        cache: &mut ParamCache,
        scratch: &Path,
        score: Option<f64>,
        size: usize,
    ) -> Uuid {
        let trial = Uuid::new_v4();
        let source = params_file(scratch, "dump.params", size).await;
        match cache.store(&source, trial, score).await.unwrap() {
            Stored::Kept(entry) => assert_eq!(entry.trial_id, trial),
            Stored::Refused(why) => panic!("refused: {why}"),
        }
        assert!(!source.exists(), "the dump is moved into the cache");
        trial
    }

    async fn picked(cache: &mut ParamCache, pick: Pick) -> Option<Uuid> {
        cache.pick(pick).await.unwrap().map(|(_, e)| e.trial_id)
    }

    #[tokio::test]
    async fn recent_and_best_answer_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        let mut cache = ParamCache::open(&cache_dir, bounds(1 << 20, 4))
            .await
            .unwrap();
        assert_eq!(picked(&mut cache, Pick::Recent).await, None);
        assert_eq!(picked(&mut cache, Pick::Best).await, None);
        let a = store(&mut cache, dir.path(), Some(0.9), 100).await;
        let b = store(&mut cache, dir.path(), Some(0.5), 100).await;
        let c = store(&mut cache, dir.path(), None, 100).await;
        assert_eq!(picked(&mut cache, Pick::Recent).await, Some(c));
        assert_eq!(picked(&mut cache, Pick::Best).await, Some(a));
        drop(cache);
        // A restarted worker finds the same answers.
        let mut cache = ParamCache::open(&cache_dir, bounds(1 << 20, 4))
            .await
            .unwrap();
        assert_eq!(cache.entries().len(), 3);
        assert_eq!(picked(&mut cache, Pick::Recent).await, Some(c));
        assert_eq!(picked(&mut cache, Pick::Best).await, Some(a));
        // A tie on the best score goes to the newest.
        let d = store(&mut cache, dir.path(), Some(0.9), 100).await;
        assert_eq!(picked(&mut cache, Pick::Best).await, Some(d));
        assert_ne!(b, d);
    }

    #[tokio::test]
    async fn the_oldest_go_first_but_the_best_and_the_newest_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = ParamCache::open(dir.path().join("c"), bounds(1000, 3))
            .await
            .unwrap();
        let best = store(&mut cache, dir.path(), Some(1.0), 100).await;
        let second = store(&mut cache, dir.path(), Some(0.1), 100).await;
        let third = store(&mut cache, dir.path(), Some(0.2), 100).await;
        let fourth = store(&mut cache, dir.path(), Some(0.3), 100).await;
        let kept: Vec<Uuid> = cache.entries().iter().map(|e| e.trial_id).collect();
        assert_eq!(
            kept,
            [best, third, fourth],
            "entry bound: the oldest non-best went"
        );
        // The byte bound: an 801-byte dump leaves room for the best only besides itself.
        let big = store(&mut cache, dir.path(), None, 801).await;
        let kept: Vec<Uuid> = cache.entries().iter().map(|e| e.trial_id).collect();
        assert_eq!(kept, [best, big]);
        assert!(!kept.contains(&second));
        // When the best and the newest cannot both fit, the newest wins.
        let bigger = store(&mut cache, dir.path(), None, 950).await;
        let kept: Vec<Uuid> = cache.entries().iter().map(|e| e.trial_id).collect();
        assert_eq!(kept, [bigger]);
        // Only named files are left in the folder.
        let files = std::fs::read_dir(dir.path().join("c")).unwrap().count();
        assert_eq!(files, 2, "one parameters file and the index");
    }

    #[tokio::test]
    async fn oversized_or_foreign_files_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = ParamCache::open(dir.path().join("c"), bounds(100, 3))
            .await
            .unwrap();
        let big = params_file(dir.path(), "big.params", 101).await;
        let stored = cache.store(&big, Uuid::new_v4(), Some(1.0)).await.unwrap();
        assert!(
            matches!(stored, Stored::Refused(ref why) if why.contains("101 bytes")),
            "{stored:?}"
        );
        let foreign = dir.path().join("pickle.params");
        std::fs::write(&foreign, b"\x80\x04cos\nsystem\n").unwrap();
        let stored = cache
            .store(&foreign, Uuid::new_v4(), Some(1.0))
            .await
            .unwrap();
        assert_eq!(stored, Stored::Refused("not a parameters file".to_owned()));
        assert!(cache.entries().is_empty());
    }

    #[tokio::test]
    async fn tampered_files_strays_and_a_corrupt_index_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("c");
        let mut cache = ParamCache::open(&cache_dir, bounds(1 << 20, 4))
            .await
            .unwrap();
        let old = store(&mut cache, dir.path(), Some(0.1), 100).await;
        let new = store(&mut cache, dir.path(), Some(0.2), 100).await;
        // Same size, other bytes: caught by the checksum when handed out; the older one answers.
        let newest = cache.entries().last().unwrap().seq;
        let mut bytes = std::fs::read(cache_dir.join(format!("{newest}.params"))).unwrap();
        bytes[50] ^= 1;
        std::fs::write(cache_dir.join(format!("{newest}.params")), bytes).unwrap();
        assert_eq!(picked(&mut cache, Pick::Recent).await, Some(old));
        assert_eq!(cache.entries().len(), 1);
        assert_ne!(old, new);
        drop(cache);
        // A stray file (a crash before the index was written) and a truncated entry go on open.
        std::fs::write(cache_dir.join("99.params"), b"stray").unwrap();
        std::fs::write(cache_dir.join(".x.tmp-1-1"), b"half").unwrap();
        let only = cache_dir.join("0.params");
        std::fs::write(&only, b"RAFKPRMS").unwrap();
        let cache = ParamCache::open(&cache_dir, bounds(1 << 20, 4))
            .await
            .unwrap();
        assert!(cache.entries().is_empty());
        let names: Vec<String> = std::fs::read_dir(&cache_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [INDEX]);
        drop(cache);
        // An index that does not parse empties the cache rather than trusting anything.
        let mut cache = ParamCache::open(&cache_dir, bounds(1 << 20, 4))
            .await
            .unwrap();
        store(&mut cache, dir.path(), Some(0.3), 100).await;
        std::fs::write(cache_dir.join(INDEX), b"{not json").unwrap();
        let mut cache = ParamCache::open(&cache_dir, bounds(1 << 20, 4))
            .await
            .unwrap();
        assert_eq!(picked(&mut cache, Pick::Recent).await, None);
        assert_eq!(std::fs::read_dir(&cache_dir).unwrap().count(), 1);
    }
}
