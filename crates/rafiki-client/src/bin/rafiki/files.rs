//! The local files commands read and write (besides the saved session, `credentials`): sizes
//! of uploads, inputs from a file or stdin, and downloads written whole or not at all.

use std::io::Read;
use std::path::Path;

use crate::failure::Failure;

/// The size of a file in bytes.
pub fn size(path: &Path) -> Result<u64, Failure> {
    std::fs::metadata(path)
        .map(|meta| meta.len())
        .map_err(|e| Failure::io(path, e))
}

/// The text of a file, or of stdin for no file or `-`.
pub fn read_text(path: Option<&Path>) -> Result<String, Failure> {
    match path {
        Some(path) if path != Path::new("-") => {
            std::fs::read_to_string(path).map_err(|e| Failure::io(path, e))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::new("IoError", format!("cannot read stdin: {e}")))?;
            Ok(text)
        }
    }
}

/// Writes `bytes` to a temporary next to `path` and renames it over `path`, so a failure
/// never leaves half a file behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.part", std::process::id()));
    let temp = path.with_file_name(name);
    let result = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(Failure::io(path, e));
    }
    Ok(())
}
