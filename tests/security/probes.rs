//! The verdicts of `tests/security/Escapes.py`, shared by the tests that run it
//! (crates/rafiki-worker/tests/sandbox.rs, crates/rafiki-admin/tests/api/security.rs): every
//! probe must have run and every one must report `blocked`.

/// Each kind of probe the hostile model runs when given every target.
pub const PROBE_KINDS: &[&str] = &[
    "own-environment",
    "other-processes",
    "read-file",
    "list-dir",
    "write-outside",
    "connect",
    "fork-bomb",
    "fill-disk",
];

/// Fails unless `messages` (the model's log messages) hold a line of every probe kind and no
/// line says `ESCAPED`.
pub fn assert_all_blocked<S: AsRef<str>>(messages: &[S]) {
    let probes: Vec<&str> = messages
        .iter()
        .map(AsRef::as_ref)
        .filter(|m| m.starts_with("probe "))
        .collect();
    for kind in PROBE_KINDS {
        assert!(
            probes
                .iter()
                .any(|p| p.starts_with(&format!("probe {kind}:"))),
            "no `{kind}` probe ran: {probes:#?}"
        );
    }
    let escaped: Vec<&&str> = probes.iter().filter(|p| p.contains("ESCAPED")).collect();
    assert!(escaped.is_empty(), "the model got out: {escaped:#?}");
}

/// A fresh folder for the data directory the hostile model is pointed at, under `/var/tmp`.
/// Never under `/tmp` (where the checkout, and so `CARGO_TARGET_TMPDIR`, may be): the sandbox
/// has a private `/tmp` of its own, in which the folders leading to a bound path are made, so a
/// model's write next to a data directory under `/tmp` lands harmlessly there and reads as an
/// escape.
pub fn outside_tmp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/var/tmp").expect("a folder in /var/tmp")
}
