//! What the end-to-end tests need of the machine (a Python with Rafiki's package, the
//! predictor binary, the repository's examples), and whether it is there: such a test skips
//! without it on a developer's machine, but never in CI (`CI` set), where a skip would hide
//! that it did not run.

use std::path::PathBuf;

/// The repository root (for examples/ and the Python environment).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `RAFIKI_PYTHON` can run models; the end-to-end tests need it and the worker binary.
pub fn python_ready() -> bool {
    let ready = std::env::var("RAFIKI_PYTHON").is_ok_and(|python| {
        std::process::Command::new(python)
            .args(["-c", "import rafiki.model, sklearn"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "RAFIKI_PYTHON must name an interpreter with the rafiki package in CI"
        );
        eprintln!(
            "skipped: RAFIKI_PYTHON is not an interpreter with rafiki (scripts/test.sh sets it)"
        );
    }
    ready
}

/// Whether the predictor binary has been built next to the test binary.
pub fn predictor_built() -> bool {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let built = dir.join("rafiki-predictor").exists();
    if !built {
        assert!(
            std::env::var_os("CI").is_none(),
            "rafiki-predictor must be built next to the tests in CI"
        );
        eprintln!("skipped: rafiki-predictor is not built (scripts/test.sh builds it)");
    }
    built
}

/// Builds the example datasets into a temp dir; returns it.
pub fn build_example_datasets() -> PathBuf {
    let out = std::env::temp_dir().join(format!("rafiki-examples-{}", uuid::Uuid::new_v4()));
    let status = std::process::Command::new(std::env::var("RAFIKI_PYTHON").unwrap())
        .arg(repo_root().join("examples/datasets/build_datasets.py"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("the dataset builder runs");
    assert!(status.success());
    out
}
