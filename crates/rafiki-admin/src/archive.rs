//! Zip datasets checked at upload (docs/security.md, "Quotas and limits"). Image, corpus and
//! audio datasets are zip archives that workers extract; a zip bomb (a small archive that
//! expands to far more bytes or entries than it weighs) would fill a worker's memory or disk.
//! The dataset route calls [`check_zip_file`] once the upload is in place and before its row is
//! written, so a refused archive leaves neither.
//!
//! Only the central directory is read (with the `zip` crate), never the compressed data: what
//! it declares is checked against the limits. A central directory can lie about sizes, so the
//! workers' dataset loading (`python/rafiki/model/dataset.py`) also counts what it really
//! extracts, under the same limits, which the orchestrator passes to every service.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tokio::sync::Semaphore;

/// What a zip dataset may expand to; 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Most bytes all entries together may declare uncompressed
    /// (`RAFIKI_MAX_DATASET_UNZIPPED_BYTES`).
    pub unzipped_bytes: u64,
    /// Most entries (`RAFIKI_MAX_DATASET_ZIP_ENTRIES`).
    pub entries: u64,
    /// Largest ratio of an entry's uncompressed to compressed size (`RAFIKI_MAX_ZIP_RATIO`).
    pub ratio: u64,
}

/// Checks at once: the `zip` crate holds the whole central directory in memory (about 600
/// bytes per entry), so concurrent uploads of archives of many entries must not add up.
static CHECKS: Semaphore = Semaphore::const_new(2);

/// Entries smaller than this are not held to the ratio: a small entry's ratio is harmless.
const RATIO_MIN_BYTES: u64 = 1 << 20;
/// Signature of the end-of-central-directory record, and the record's fixed size.
const EOCD_SIGNATURE: &[u8; 4] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
/// The record ends the file but for a comment of at most this many bytes.
const MAX_COMMENT_LEN: usize = u16::MAX as usize;
/// The zip64 locator sits right before the record and points to the zip64 record.
const ZIP64_LOCATOR_SIGNATURE: &[u8; 4] = b"PK\x06\x07";
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_SIGNATURE: &[u8; 4] = b"PK\x06\x06";
const ZIP64_EOCD_LEN: usize = 56;
/// How a zip archive's first entry begins.
const LOCAL_HEADER_SIGNATURE: &[u8; 4] = b"PK\x03\x04";
/// Longest entry name quoted in a refusal.
const MAX_QUOTED_NAME: usize = 100;

/// [`check_zip`] off the async threads, at most [`CHECKS`] at a time.
pub async fn check_zip_file(path: PathBuf, limits: ZipLimits) -> io::Result<Result<(), String>> {
    let _permit = CHECKS.acquire().await.map_err(io::Error::other)?;
    tokio::task::spawn_blocking(move || check_zip(&path, &limits))
        .await
        .map_err(io::Error::other)?
}

/// Checks the file at `path` against `limits`: `Ok(Ok(()))` when it is no zip archive, or one
/// within them; `Ok(Err(reason))` when it is refused, with the reason for the uploader; `Err`
/// when the file cannot be read. Blocking.
fn check_zip(path: &Path, limits: &ZipLimits) -> io::Result<Result<(), String>> {
    let mut file = File::open(path)?;
    let Some(declared) = declared_entries(&mut file)? else {
        return Ok(Ok(()));
    };
    // Refused before the `zip` crate reads the directory: it keeps every entry in memory.
    if limits.entries > 0 && declared > limits.entries {
        return Ok(Err(too_many_entries(declared, limits.entries)));
    }
    file.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 4];
    let starts_like_zip = file.read_exact(&mut magic).is_ok()
        && (&magic == LOCAL_HEADER_SIGNATURE || &magic == EOCD_SIGNATURE);
    file.seek(SeekFrom::Start(0))?;
    let mut archive = match zip::ZipArchive::new(BufReader::new(file)) {
        Ok(archive) => archive,
        // Another format whose tail happens to hold the record's 4 bytes is not a zip.
        Err(_) if !starts_like_zip => return Ok(Ok(())),
        Err(err) => {
            return Ok(Err(format!(
                "The dataset is a zip archive whose central directory cannot be read ({err})."
            )))
        }
    };
    let entries = archive.len() as u64;
    if limits.entries > 0 && entries > limits.entries {
        return Ok(Err(too_many_entries(entries, limits.entries)));
    }
    let mut total: u128 = 0;
    for index in 0..archive.len() {
        let entry = match archive.by_index_raw(index) {
            Ok(entry) => entry,
            Err(err) => {
                return Ok(Err(format!(
                    "The dataset is a zip archive whose entry {index} cannot be read ({err})."
                )))
            }
        };
        let (size, compressed) = (entry.size(), entry.compressed_size());
        total += u128::from(size);
        if limits.unzipped_bytes > 0 && total > u128::from(limits.unzipped_bytes) {
            return Ok(Err(format!(
                "The zip archive expands to more than {} bytes, the most a zip dataset may \
                 expand to (RAFIKI_MAX_DATASET_UNZIPPED_BYTES).",
                limits.unzipped_bytes
            )));
        }
        if limits.ratio > 0
            && size >= RATIO_MIN_BYTES
            && u128::from(size) > u128::from(limits.ratio) * u128::from(compressed)
        {
            return Ok(Err(format!(
                "The zip archive's entry `{}` expands from {compressed} to {size} bytes; an \
                 entry may be compressed at most {}:1 (RAFIKI_MAX_ZIP_RATIO).",
                entry
                    .name()
                    .chars()
                    .take(MAX_QUOTED_NAME)
                    .collect::<String>(),
                limits.ratio
            )));
        }
    }
    Ok(Ok(()))
}

fn too_many_entries(entries: u64, max: u64) -> String {
    format!(
        "The zip archive has {entries} entries; a zip dataset may have at most {max} \
         (RAFIKI_MAX_DATASET_ZIP_ENTRIES)."
    )
}

/// The entry count the archive's end-of-central-directory record declares (its zip64 record's
/// when it has one), or `None` when the file has no such record and so is no zip archive. A
/// comment may hold more candidates than one: the largest count counts.
fn declared_entries(file: &mut File) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    let tail_len = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .min(EOCD_LEN + MAX_COMMENT_LEN);
    if tail_len < EOCD_LEN {
        return Ok(None);
    }
    let tail_start = len - tail_len as u64;
    let mut tail = vec![0u8; tail_len];
    file.seek(SeekFrom::Start(tail_start))?;
    file.read_exact(&mut tail)?;
    let mut most: Option<u64> = None;
    for at in (0..=tail_len - EOCD_LEN).rev() {
        if &tail[at..at + 4] != EOCD_SIGNATURE {
            continue;
        }
        let mut count = u64::from(u16::from_le_bytes([tail[at + 10], tail[at + 11]]));
        if count == u64::from(u16::MAX) {
            if let Some(zip64) = zip64_entries(file, tail_start + at as u64)? {
                count = zip64;
            }
        }
        most = Some(most.map_or(count, |m| m.max(count)));
    }
    Ok(most)
}

/// The entry count of the zip64 record that the locator before the record at `eocd` points to.
fn zip64_entries(file: &mut File, eocd: u64) -> io::Result<Option<u64>> {
    let Some(locator_at) = eocd.checked_sub(ZIP64_LOCATOR_LEN) else {
        return Ok(None);
    };
    let mut locator = [0u8; ZIP64_LOCATOR_LEN as usize];
    file.seek(SeekFrom::Start(locator_at))?;
    file.read_exact(&mut locator)?;
    if &locator[..4] != ZIP64_LOCATOR_SIGNATURE {
        return Ok(None);
    }
    let record_at = u64::from_le_bytes(locator[8..16].try_into().expect("8 bytes"));
    let mut record = [0u8; ZIP64_EOCD_LEN];
    file.seek(SeekFrom::Start(record_at))?;
    if file.read_exact(&mut record).is_err() || &record[..4] != ZIP64_EOCD_SIGNATURE {
        return Ok(None);
    }
    Ok(Some(u64::from_le_bytes(
        record[32..40].try_into().expect("8 bytes"),
    )))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipWriter};

    use super::*;

    const NO_LIMITS: ZipLimits = ZipLimits {
        unzipped_bytes: 0,
        entries: 0,
        ratio: 0,
    };

    fn temp_file(bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("rafiki-zip-test-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A zip of `(name, bytes)` entries, deflated.
    fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut writer = ZipWriter::new(io::Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, bytes) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn check(bytes: &[u8], limits: ZipLimits) -> Result<(), String> {
        let path = temp_file(bytes);
        let verdict = check_zip(&path, &limits).unwrap();
        std::fs::remove_file(path).unwrap();
        verdict
    }

    #[test]
    fn files_that_are_no_zip_pass() {
        let limits = ZipLimits {
            unzipped_bytes: 1,
            entries: 1,
            ratio: 1,
        };
        assert_eq!(check(b"", limits), Ok(()));
        assert_eq!(check(b"a,b\n1,2\n", limits), Ok(()));
        // The record's signature inside some other format is not a zip either.
        let mut other = vec![7u8; 100];
        other.extend_from_slice(b"PK\x05\x06");
        other.extend_from_slice(&[0u8; 18]);
        assert_eq!(check(&other, limits), Ok(()));
    }

    #[test]
    fn a_zip_within_the_limits_passes() {
        let zip = zip_of(&[("images.csv", b"path,class\n".to_vec()), ("a", vec![1; 10])]);
        let limits = ZipLimits {
            unzipped_bytes: 21,
            entries: 2,
            ratio: 2,
        };
        assert_eq!(check(&zip, limits), Ok(()));
        assert_eq!(check(&zip, NO_LIMITS), Ok(()));
    }

    #[test]
    fn too_many_entries_are_refused_before_the_directory_is_read() {
        let entries: Vec<(String, Vec<u8>)> = (0..5).map(|i| (i.to_string(), Vec::new())).collect();
        let entries: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        let zip = zip_of(&entries);
        let path = temp_file(&zip);
        let declared = declared_entries(&mut File::open(&path).unwrap()).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(declared, Some(5));
        let limits = ZipLimits {
            entries: 4,
            ..NO_LIMITS
        };
        let reason = check(&zip, limits).unwrap_err();
        assert!(
            reason.contains("5 entries") && reason.contains("at most 4"),
            "{reason}"
        );
        assert!(
            reason.contains("RAFIKI_MAX_DATASET_ZIP_ENTRIES"),
            "{reason}"
        );
    }

    #[test]
    fn zip64_archives_declare_their_count_in_the_zip64_record() {
        let count = u64::from(u16::MAX) + 2;
        let mut writer = ZipWriter::new(io::Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for i in 0..count {
            writer.start_file(i.to_string(), options).unwrap();
        }
        let zip = writer.finish().unwrap().into_inner();
        let path = temp_file(&zip);
        let declared = declared_entries(&mut File::open(&path).unwrap()).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(declared, Some(count));
        let limits = ZipLimits {
            entries: count - 1,
            ..NO_LIMITS
        };
        assert!(check(&zip, limits).is_err());
    }

    #[test]
    fn a_bomb_that_expands_past_the_limit_is_refused() {
        // 4 MiB of zeros in a few KiB.
        let zip = zip_of(&[("a", vec![0; 2 << 20]), ("b", vec![0; 2 << 20])]);
        assert!(zip.len() < 64 * 1024, "{}", zip.len());
        let limits = ZipLimits {
            unzipped_bytes: 3 << 20,
            ..NO_LIMITS
        };
        let reason = check(&zip, limits).unwrap_err();
        assert!(
            reason.contains("RAFIKI_MAX_DATASET_UNZIPPED_BYTES") && reason.contains("3145728"),
            "{reason}"
        );
        let limits = ZipLimits {
            unzipped_bytes: 4 << 20,
            ..NO_LIMITS
        };
        assert_eq!(check(&zip, limits), Ok(()));
    }

    #[test]
    fn an_entry_of_an_absurd_ratio_is_refused_and_small_entries_are_not_held_to_it() {
        let zip = zip_of(&[("zeros", vec![0; 2 << 20])]);
        let limits = ZipLimits {
            ratio: 100,
            ..NO_LIMITS
        };
        let reason = check(&zip, limits).unwrap_err();
        assert!(
            reason.contains("`zeros`") && reason.contains("100:1"),
            "{reason}"
        );
        let small = zip_of(&[("zeros", vec![0; 1 << 19])]);
        assert_eq!(check(&small, limits), Ok(()));
    }

    #[test]
    fn a_zip_whose_directory_is_broken_is_refused() {
        let mut zip = zip_of(&[("a", vec![1; 100])]);
        // Point the record at a directory that is not there.
        let at = zip.len() - EOCD_LEN + 16;
        zip[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let reason = check(&zip, NO_LIMITS).unwrap_err();
        assert!(reason.contains("cannot be read"), "{reason}");
    }
}
