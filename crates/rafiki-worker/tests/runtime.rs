//! The runtime driver against the real `python -m rafiki.runtime` and real model files.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rafiki_types::internal::LogKind;
use rafiki_worker::runtime::{
    ErrorKind, EventSource, Runtime, RuntimeConfig, RuntimeError, RuntimeEvent,
};
use serde_json::json;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: RuntimeConfig,
}

impl Setup {
    fn new(python: &Path) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        std::fs::write(root.join("data.txt"), "one two three four\n").unwrap();
        let config = RuntimeConfig::new(python, &root);
        Setup {
            _dir: dir,
            root,
            config,
        }
    }

    fn model(&self, name: &str, source: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, source).unwrap();
        path
    }

    fn data(&self) -> PathBuf {
        self.root.join("data.txt")
    }

    async fn start(&self) -> Runtime {
        Runtime::start(&self.config)
            .await
            .expect("the runtime starts")
    }
}

fn collect(events: &mut Vec<RuntimeEvent>) -> impl FnMut(RuntimeEvent) + '_ {
    |event| events.push(event)
}

fn messages(events: &[RuntimeEvent]) -> Vec<(EventSource, String)> {
    events
        .iter()
        .filter_map(|e| e.message().map(|m| (e.source, m.to_owned())))
        .collect()
}

fn process_exists(pid: u32) -> bool {
    // A zombie has exited; only a live process counts.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_working_model_trains_evaluates_dumps_and_is_destroyed() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("works.py", support::WORKS);
    let mut runtime = setup.start().await;
    assert_eq!(runtime.ready().protocol, 1);
    assert_eq!(runtime.ping().await.unwrap(), runtime.pid());

    let mut events = Vec::new();
    runtime
        .load_model_class(&model, "Works", &mut collect(&mut events))
        .await
        .unwrap();
    let config = runtime
        .get_knob_config(&mut collect(&mut events))
        .await
        .unwrap();
    assert_eq!(
        config,
        json!({
            "x": {"type": "INTEGER", "value_min": 1, "value_max": 10, "is_exp": false},
            "colour": {"type": "CATEGORICAL", "values": ["red", "blue"]},
        })
    );
    assert!(events.is_empty(), "{events:?}");

    let knobs = json!({"x": 7, "colour": "red"});
    let args = json!({"lr": 0.1});
    runtime
        .train(
            &knobs,
            &setup.data(),
            Some(&args),
            None,
            &mut collect(&mut events),
        )
        .await
        .unwrap();
    let kinds: Vec<LogKind> = events.iter().map(|e| e.entry.kind).collect();
    assert_eq!(
        kinds,
        [
            LogKind::Plot,
            LogKind::Metrics,
            LogKind::Metrics,
            LogKind::Metrics,
            LogKind::Message,
            LogKind::Metrics
        ]
    );
    assert!(events.iter().all(|e| e.source == EventSource::Logger));
    assert_eq!(
        events[0].entry.body,
        json!({"title": "Loss", "metrics": ["loss"], "x_axis": "epoch"})
    );
    let epochs: Vec<_> = events[1..4]
        .iter()
        .map(|e| e.entry.body["epoch"].clone())
        .collect();
    assert_eq!(epochs, [json!(0), json!(1), json!(2)]);
    assert_eq!(events[4].message(), Some("trained"));
    assert_eq!(events[5].entry.body, json!({"words": 4}));

    let score = runtime.evaluate(&setup.data(), &mut |_| {}).await.unwrap();
    assert!((score - 0.7).abs() < 1e-12);
    let params = setup.root.join("trial.params");
    let info = runtime.dump_parameters(&params, &mut |_| {}).await.unwrap();
    assert_eq!(info.keys, ["x", "words", "w", "args"]);
    let bytes = std::fs::read(&params).unwrap();
    assert_eq!(bytes.len() as u64, info.size_bytes);
    assert_eq!(
        support::decode_param_keys(&python, &bytes),
        ["args", "w", "words", "x"]
    );
    assert!(runtime.destroy(&mut |_| {}).await.unwrap());
    assert!(!runtime.destroy(&mut |_| {}).await.unwrap());
    // A new instance can be trained after destroy.
    runtime
        .train(&knobs, &setup.data(), None, None, &mut |_| {})
        .await
        .unwrap();
    runtime.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn prints_and_stderr_become_events_of_the_request() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("prints.py", support::PRINTS);
    let mut runtime = setup.start().await;

    let mut events = Vec::new();
    runtime
        .load_model_class(&model, "Prints", &mut collect(&mut events))
        .await
        .unwrap();
    assert_eq!(
        messages(&events),
        [(EventSource::Stdout, "printed while importing".to_owned())]
    );

    events.clear();
    runtime
        .train(
            &json!({"k": 1}),
            &setup.data(),
            None,
            None,
            &mut collect(&mut events),
        )
        .await
        .unwrap();
    // The stderr lines travel on another pipe, so they may arrive after the reply: collect
    // what is left.
    support::eventually(Duration::from_secs(5), "both stderr lines", || {
        events.extend(runtime.take_stderr());
        events
            .iter()
            .filter(|e| e.source == EventSource::Stderr)
            .count()
            >= 2
    })
    .await;
    let protocol: Vec<_> = messages(&events)
        .into_iter()
        .filter(|(source, _)| *source != EventSource::Stderr)
        .collect();
    assert_eq!(
        protocol,
        [
            (EventSource::Stdout, "first print".to_owned()),
            (EventSource::Logger, "between the prints".to_owned()),
            (EventSource::Stdout, "second print".to_owned()),
        ]
    );
    let mut stderr: Vec<_> = messages(&events)
        .into_iter()
        .filter(|(source, _)| *source == EventSource::Stderr)
        .map(|(_, m)| m)
        .collect();
    stderr.sort();
    assert_eq!(stderr, ["C-level write to fd 1", "a warning on stderr"]);

    // The channel is intact after all that.
    events.clear();
    let score = runtime
        .evaluate(&setup.data(), &mut collect(&mut events))
        .await
        .unwrap();
    assert_eq!(score, 0.5);
    assert_eq!(
        messages(&events),
        [(EventSource::Stdout, "evaluating".to_owned())]
    );
}

#[tokio::test]
async fn a_raising_train_is_a_model_error_with_its_traceback() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("raises.py", support::RAISES_IN_TRAIN);
    let mut runtime = setup.start().await;
    runtime
        .load_model_class(&model, "Raises", &mut |_| {})
        .await
        .unwrap();
    let err = runtime
        .train(&json!({"k": 1}), &setup.data(), None, None, &mut |_| {})
        .await
        .unwrap_err();
    let RuntimeError::Command(error) = &err else {
        panic!("expected a command error, got {err:?}");
    };
    assert_eq!(error.kind, ErrorKind::ModelError);
    assert_eq!(error.exc_type, "ValueError");
    assert!(
        error.message.contains("Raises.train()"),
        "{}",
        error.message
    );
    let report = err.report();
    assert!(
        report.contains("Traceback (most recent call last)"),
        "{report}"
    );
    assert!(report.contains("raises.py"), "{report}");
    assert!(report.contains("ValueError: the data is bad"), "{report}");
    assert!(!err.needs_restart());
    // The failed instance stays until destroyed; then the runtime is usable again.
    assert!(runtime.destroy(&mut |_| {}).await.unwrap());
    assert!(runtime.ping().await.is_ok());
}

#[tokio::test]
async fn a_missing_class_is_an_invalid_model_and_another_load_may_follow() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("works.py", support::WORKS);
    let mut runtime = setup.start().await;
    let err = runtime
        .load_model_class(&model, "Missing", &mut |_| {})
        .await
        .unwrap_err();
    match &err {
        RuntimeError::Command(error) => {
            assert_eq!(error.kind, ErrorKind::InvalidModel);
            assert!(error.message.contains("Missing"), "{}", error.message);
        }
        other => panic!("expected an invalid model, got {other:?}"),
    }
    runtime
        .load_model_class(&model, "Works", &mut |_| {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_garbage_score_is_an_invalid_return() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("by_mode.py", support::BY_MODE);
    let mut runtime = setup.start().await;
    runtime
        .load_model_class(&model, "ByMode", &mut |_| {})
        .await
        .unwrap();
    runtime
        .train(
            &support::mode("garbage", 0.1),
            &setup.data(),
            None,
            None,
            &mut |_| {},
        )
        .await
        .unwrap();
    match runtime.evaluate(&setup.data(), &mut |_| {}).await {
        Err(RuntimeError::Command(error)) => assert_eq!(error.kind, ErrorKind::InvalidReturn),
        other => panic!("expected an invalid return, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dead_child_is_reported_with_its_status_and_last_stderr_lines() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("by_mode.py", support::BY_MODE);
    let mut runtime = setup.start().await;
    runtime
        .load_model_class(&model, "ByMode", &mut |_| {})
        .await
        .unwrap();
    let err = runtime
        .train(
            &support::mode("crash", 0.1),
            &setup.data(),
            None,
            None,
            &mut |_| {},
        )
        .await
        .unwrap_err();
    match &err {
        RuntimeError::Died {
            during,
            status,
            stderr_tail,
        } => {
            assert_eq!(during, "train");
            assert_eq!(status.and_then(|s| s.code()), Some(3));
            assert!(stderr_tail.contains("about to crash"), "{stderr_tail}");
        }
        other => panic!("expected a dead child, got {other:?}"),
    }
    assert!(err.needs_restart());
    // Further requests fail at once instead of hanging.
    assert!(matches!(
        runtime.ping().await,
        Err(RuntimeError::Died { .. })
    ));
}

#[tokio::test]
async fn dropping_the_runtime_kills_the_models_own_children() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("by_mode.py", support::BY_MODE);
    let mut runtime = setup.start().await;
    runtime
        .load_model_class(&model, "ByMode", &mut |_| {})
        .await
        .unwrap();
    let pid_file = setup.root.join("pid");
    let child_pid_file = setup.root.join("child-pid");
    let args = json!({"pid_file": pid_file, "child_pid_file": child_pid_file});
    let pid = runtime.pid();
    {
        let (knobs, data, mut sink) = (support::mode("hang", 0.1), setup.data(), |_| {});
        let train = runtime.train(&knobs, &data, Some(&args), None, &mut sink);
        // Give up on the hanging request once the model's child is running.
        let wait = support::eventually(Duration::from_secs(20), "the pid files", || {
            pid_file.exists() && child_pid_file.exists()
        });
        tokio::select! {
            _ = train => panic!("a hanging train returned"),
            _ = wait => {}
        }
    }
    let grandchild: u32 = std::fs::read_to_string(&child_pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_exists(pid) && process_exists(grandchild));
    drop(runtime);
    support::eventually(Duration::from_secs(10), "the process group to die", || {
        !process_exists(pid) && !process_exists(grandchild)
    })
    .await;
}

#[tokio::test]
async fn a_child_that_is_not_the_runtime_is_reported_at_start() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let mut config = setup.config.clone();
    // Not a Python at all: it exits at once, complaining on stderr.
    config.python = PathBuf::from("/bin/sh");
    match Runtime::start(&config).await {
        Ok(_) => panic!("/bin/sh is not a Python runtime"),
        Err(RuntimeError::Died {
            during,
            stderr_tail,
            ..
        }) => {
            assert_eq!(during, "start");
            assert!(!stderr_tail.is_empty());
        }
        Err(other) => panic!("expected a dead child, got {other:?}"),
    }
    // An interpreter that is not there cannot run the runtime, now or later.
    let missing = RuntimeConfig::new(setup.root.join("no-such-python"), &setup.root);
    match Runtime::start(&missing).await {
        Err(RuntimeError::Unusable { cause, .. }) => {
            assert!(cause.contains("No such file"), "{cause}")
        }
        other => panic!("expected an unusable interpreter, got {:?}", other.err()),
    }
}

/// Logs `acc` every 10 ms for 3 s, catching `Exception` around each log call.
const LOOPS: &str = r#"
import time
from rafiki.model import BaseModel, logger

class Loops(BaseModel):
    @staticmethod
    def get_knob_config():
        return {}

    def train(self, dataset_path, shared_params=None, **train_args):
        for step in range(1, 301):
            time.sleep(0.01)
            try:
                logger.log(acc=0.5, step=step)
            except Exception:
                pass

    def evaluate(self, dataset_path):
        return 0.5

    def predict(self, queries):
        return queries

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
"#;

#[tokio::test]
async fn a_stop_during_train_ends_it_at_the_next_log_call_and_a_late_one_reaches_nothing() {
    let python = require_python!();
    let setup = Setup::new(&python);
    let model = setup.model("loops.py", LOOPS);
    let mut runtime = setup.start().await;
    runtime
        .load_model_class(&model, "Loops", &mut |_| {})
        .await
        .unwrap();
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let mut logged = 0usize;
    let mut sink = |event: RuntimeEvent| {
        if event.entry.kind == LogKind::Metrics {
            logged += 1;
            // The admin's answer to the third value: stop.
            if logged == 3 {
                stop_tx.send_replace(true);
            }
        }
    };
    let knobs = json!({});
    let stopped = runtime
        .train_stoppable(
            &knobs,
            &setup.data(),
            None,
            None,
            Some(&mut stop),
            &mut sink,
        )
        .await
        .expect("a stopped train is no error");
    assert!(stopped);
    assert!(logged < 300, "stopped early: {logged} values");
    assert!(runtime.destroy(&mut |_| {}).await.unwrap());
    // A stop that is already on before the next train does not reach it: a new trial gets a
    // new signal, and the child only obeys a stop naming the running request.
    let mut logged = 0usize;
    let done = runtime
        .train(&knobs, &setup.data(), None, None, &mut |e: RuntimeEvent| {
            logged += usize::from(e.entry.kind == LogKind::Metrics)
        })
        .await;
    assert!(done.is_ok(), "{done:?}");
    assert_eq!(logged, 300);
}
