//! The model sandbox (`RAFIKI_SANDBOX=bwrap`) against the real runtime and a hostile model
//! (`tests/security/Escapes.py`): every way out it tries must be blocked, while a normal model
//! still trains, evaluates and dumps its parameters. Needs bubblewrap (`scripts/test.sh`
//! installs Debian's `bubblewrap`).

#[path = "../../../tests/security/probes.rs"]
mod probes;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rafiki_worker::runtime::{Runtime, RuntimeConfig, RuntimeEvent};
use rafiki_worker::sandbox::Sandbox;
use serde_json::json;

const ESCAPES: &str = include_str!("../../../tests/security/Escapes.py");

/// A bubblewrap sandbox with small limits, so the probes reach them quickly.
fn sandbox(extra: &[(&str, &str)]) -> Sandbox {
    let mut vars: BTreeMap<&str, &str> = [
        ("RAFIKI_SANDBOX", "bwrap"),
        ("RAFIKI_SANDBOX_MAX_PROCS", "64"),
        ("RAFIKI_SANDBOX_MAX_FILE_MB", "4"),
        ("RAFIKI_SANDBOX_TMP_MB", "4"),
    ]
    .into_iter()
    .collect();
    vars.extend(extra.iter().copied());
    Sandbox::from_lookup(|name| vars.get(name).map(|v| v.to_string())).unwrap()
}

/// A service's folders as the process backend lays them out: `<data>/services/<id>/work` with
/// the downloads in `cache` and the model's `scratch`, next to another service's folder and
/// the admin's stored files.
struct Layout {
    _dir: tempfile::TempDir,
    data: PathBuf,
    work: PathBuf,
    other_service_file: PathBuf,
    stored_dataset: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let dir = probes::outside_tmp_dir();
        let data = dir.path().join("data");
        let work = data.join("services/mine/work");
        std::fs::create_dir_all(work.join("cache")).unwrap();
        std::fs::create_dir_all(work.join("scratch")).unwrap();
        let other = data.join("services/theirs/work/cache");
        std::fs::create_dir_all(&other).unwrap();
        let other_service_file = other.join("their-dataset.csv");
        std::fs::write(&other_service_file, "secret,rows\n").unwrap();
        std::fs::create_dir_all(data.join("datasets")).unwrap();
        let stored_dataset = data.join("datasets/someone-elses");
        std::fs::write(&stored_dataset, "more secrets\n").unwrap();
        std::fs::write(work.join("cache/data.txt"), "one two three\n").unwrap();
        Layout {
            data,
            work,
            other_service_file,
            stored_dataset,
            _dir: dir,
        }
    }

    fn config(&self, python: &Path, sandbox: Sandbox) -> RuntimeConfig {
        RuntimeConfig {
            read_only: vec![self.work.join("cache")],
            sandbox,
            ..RuntimeConfig::new(python, self.work.join("scratch"))
        }
    }

    fn model(&self, name: &str, source: &str) -> PathBuf {
        let path = self.work.join("cache").join(name);
        std::fs::write(&path, source).unwrap();
        path
    }
}

fn messages(events: &[RuntimeEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.message().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_hostile_model_cannot_get_out_of_the_sandbox() {
    let python = require_python!();
    // The worker's own secrets, which the model must not find anywhere.
    std::env::set_var("RAFIKI_SERVICE_TOKEN", "the-worker-token");
    std::env::set_var("APP_SECRET", "the-admin-secret");
    let layout = Layout::new();
    let model = layout.model("Escapes.py", ESCAPES);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();

    let mut runtime = Runtime::start(&layout.config(&python, sandbox(&[])))
        .await
        .expect("the sandboxed runtime starts");
    let mut events = Vec::new();
    runtime
        .load_model_class(&model, "Escapes", &mut |e| events.push(e))
        .await
        .unwrap();
    let args = json!({
        "secret_files": [layout.other_service_file, layout.stored_dataset, "/etc/shadow"],
        "secret_dirs": [layout.data, layout.data.join("services")],
        "hidden_names": ["datasets", "theirs", "someone-elses"],
        "outside_dirs": [layout.work, layout.data],
        "tcp_ports": [port],
        "tcp_targets": [["1.1.1.1", 53]],
        "max_procs": 64,
        "big_file_mb": 8,
    });
    runtime
        .train(
            &json!({"k": 1}),
            &layout.work.join("cache/data.txt"),
            Some(&args),
            None,
            &mut |e| events.push(e),
        )
        .await
        .expect("the hostile model's train() returns");
    let lines = messages(&events);
    probes::assert_all_blocked(&lines);
    assert!(!layout.data.join("rafiki-escape-probe").exists());
    assert!(!layout.work.join("rafiki-escape-probe").exists());
    drop(listener);
    runtime.kill().await;
}

#[tokio::test]
async fn a_normal_model_trains_and_dumps_its_parameters_in_the_sandbox() {
    let python = require_python!();
    let layout = Layout::new();
    let model = layout.model("works.py", support::WORKS);
    let mut runtime = Runtime::start(&layout.config(&python, sandbox(&[])))
        .await
        .expect("the sandboxed runtime starts");
    let mut events = Vec::new();
    runtime
        .load_model_class(&model, "Works", &mut |e| events.push(e))
        .await
        .unwrap();
    runtime
        .train(
            &json!({"x": 7, "colour": "red"}),
            &layout.work.join("cache/data.txt"),
            None,
            None,
            &mut |e| events.push(e),
        )
        .await
        .unwrap();
    let score = runtime
        .evaluate(&layout.work.join("cache/data.txt"), &mut |e| events.push(e))
        .await
        .unwrap();
    assert_eq!(score, 0.7);
    let params = layout.work.join("scratch/params.bin");
    let info = runtime
        .dump_parameters(&params, &mut |e| events.push(e))
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&params).unwrap().len(), info.size_bytes);
    assert!(
        messages(&events).contains(&"trained".to_owned()),
        "{events:?}"
    );
    runtime.kill().await;
}

#[tokio::test]
async fn the_network_switch_lets_model_code_connect() {
    let python = require_python!();
    let layout = Layout::new();
    let model = layout.model("Escapes.py", ESCAPES);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sandbox = sandbox(&[("RAFIKI_SANDBOX_NETWORK", "on")]);
    let mut runtime = Runtime::start(&layout.config(&python, sandbox))
        .await
        .unwrap();
    let mut events = Vec::new();
    runtime
        .load_model_class(&model, "Escapes", &mut |e| events.push(e))
        .await
        .unwrap();
    runtime
        .train(
            &json!({"k": 1}),
            &layout.work.join("cache/data.txt"),
            Some(&json!({"tcp_ports": [port]})),
            None,
            &mut |e| events.push(e),
        )
        .await
        .unwrap();
    let lines = messages(&events);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("probe connect: ESCAPED (connected to 127.0.0.1")),
        "with the network on, the connection is made: {lines:#?}"
    );
    runtime.kill().await;
}
