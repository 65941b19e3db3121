//! The shared store of dependency environments: built once for workers that need the same one
//! at the same time, reused by later services (train and inference), evicted least recently
//! used first when no live service holds it, and cleaned of what dead builders left.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rafiki_worker::envs::{EnvStore, Manifest, LOCK_FILE};
use rafiki_worker::{train, TrainExit};
use serde_json::json;
use support::admin::{JobSpec, TestAdmin};
use support::inference::{encode_params, InferenceAdmin, RunningWorker, WorkerSpec};
use support::{proposal, worker_config, NEEDS_TESTDEP};

fn testdep_job() -> JobSpec {
    JobSpec {
        model_file: NEEDS_TESTDEP.as_bytes().to_vec(),
        model_class: "NeedsDep".to_owned(),
        dependencies: vec![("rafiki-testdep".to_owned(), "1.2.3".to_owned())],
        train_dataset: b"t".to_vec(),
        val_dataset: b"v".to_vec(),
        train_args: None,
        proposals: vec![proposal(1, json!({"k": 1}))],
    }
}

/// A folder of wheels with `rafiki-testdep` 1.2.3, and pip arguments that install from it only.
fn local_index(python: &Path, dir: &Path) -> Vec<String> {
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    support::build_wheel(python, &wheels, "rafiki-testdep", "1.2.3");
    vec![
        "--no-index".to_owned(),
        "--find-links".to_owned(),
        wheels.display().to_string(),
    ]
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn two_workers_needing_the_same_environment_at_once_build_it_once() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let pip_args = local_index(&python, dir.path());
    let venvs = dir.path().join("envs");
    let (first, second) = (
        TestAdmin::start(testdep_job()).await,
        TestAdmin::start(testdep_job()).await,
    );
    let config = |admin: &TestAdmin, name: &str| {
        let mut config = worker_config(&admin.url, &dir.path().join(name), &python);
        config.venv_dir = venvs.clone();
        config.pip_args = pip_args.clone();
        config
    };
    let (a, b) = (config(&first, "a"), config(&second, "b"));
    let (ran_a, ran_b) = tokio::join!(train::run(&a), train::run(&b));
    for ran in [ran_a, ran_b] {
        assert_eq!(ran.unwrap(), TrainExit::BudgetSpent { trials: 1 });
    }
    let reports: Vec<_> = [&first, &second]
        .iter()
        .flat_map(|admin| admin.with(|s| s.environments.clone()))
        .collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    let built = reports.iter().filter(|r| !r.reused).count();
    assert_eq!(built, 1, "exactly one worker runs pip: {reports:?}");
    assert!(reports.iter().all(|r| r.size_bytes > 0), "{reports:?}");
    let left = names(&venvs);
    assert_eq!(left.len(), 1, "one environment, nothing else: {left:?}");
}

#[tokio::test]
async fn an_inference_worker_reuses_the_train_workers_environment_and_holds_it_while_serving() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let venvs = dir.path().join("envs");
    let admin = TestAdmin::start(testdep_job()).await;
    let mut config = worker_config(&admin.url, &dir.path().join("train"), &python);
    config.venv_dir = venvs.clone();
    config.pip_args = local_index(&python, dir.path());
    assert_eq!(
        train::run(&config).await.unwrap(),
        TrainExit::BudgetSpent { trials: 1 }
    );
    assert!(!admin.with(|s| s.environments[0].reused));

    let serving = InferenceAdmin::start("TEST_TASK").await;
    let token = serving.add_worker(WorkerSpec {
        model_file: NEEDS_TESTDEP.as_bytes().to_vec(),
        model_class: "NeedsDep".to_owned(),
        knobs: json!({"k": 1}),
        params: encode_params(&python, "{}"),
        score: Some(1.0),
    });
    serving.set_dependencies(&token, &[("rafiki-testdep", "1.2.3")]);
    let mut config = worker_config(&serving.url, &dir.path().join("serve"), &python);
    config.service.service_token = token.clone().into();
    config.venv_dir = venvs.clone();
    // The same arguments (they are part of the key), with the wheels gone: a second pip run
    // could install nothing.
    config.pip_args = local_index(&python, dir.path());
    std::fs::remove_dir_all(dir.path().join("wheels")).unwrap();
    let worker = RunningWorker::start(config);
    serving.set_url(&token, &worker.url);
    support::eventually(Duration::from_secs(60), "the worker to serve", || {
        serving.with(|s| {
            let worker = s.worker(&token);
            assert!(worker.failures.is_empty(), "{:?}", worker.failures);
            worker.ready
        })
    })
    .await;
    let report = serving.with(|s| s.worker(&token).environment.clone().unwrap());
    assert!(report.reused, "{report:?}");

    // Served, the environment is in use: a bound of nothing evicts nothing.
    let store = EnvStore::new(&venvs);
    assert!(store.evict_over(0).unwrap().evicted.is_empty());
    assert_eq!(store.list().unwrap().len(), 1);
    drop(worker);
    let evicted = store.evict_over(0).unwrap().evicted;
    assert_eq!(evicted.len(), 1, "unused once the worker is gone");
    assert!(names(&venvs).is_empty(), "{:?}", names(&venvs));
}

#[tokio::test]
async fn a_worker_stopped_while_pip_runs_leaves_no_half_built_environment() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    // A package index that takes connections and never answers: pip waits on it.
    let index = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let index_url = format!("http://{}/simple", index.local_addr().unwrap());
    let (asked, mut pip_asked) = tokio::sync::watch::channel(false);
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = index.accept().await {
            held.push(stream);
            asked.send_replace(true);
        }
    });
    let venvs = dir.path().join("envs");
    let admin = TestAdmin::start(testdep_job()).await;
    let mut config = worker_config(&admin.url, &dir.path().join("w"), &python);
    config.venv_dir = venvs.clone();
    config.pip_args = [
        "--index-url",
        &index_url,
        "--timeout",
        "600",
        "--retries",
        "0",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut worker = Box::pin(train::run(&config));
    tokio::select! {
        ended = &mut worker => panic!("the worker ended before pip asked the index: {ended:?}"),
        asked = tokio::time::timeout(Duration::from_secs(120), pip_asked.wait_for(|a| *a)) => {
            asked.expect("pip asks the index within 2 minutes").unwrap();
        }
    }
    let building: Vec<String> = names(&venvs)
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert_eq!(building.len(), 1, "{:?}", names(&venvs));
    // What SIGTERM does to a worker: its work is dropped where it stands.
    drop(worker);
    let left: Vec<String> = names(&venvs)
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(
        left.is_empty(),
        "the half-built environment is gone: {left:?}"
    );
    silent.abort();
}

/// Publishes an environment of `key` holding `bytes` bytes of data, last used at `at` seconds
/// after the epoch.
async fn fake_environment(store: &EnvStore, key: &str, bytes: usize, at: u64) {
    let build = store.lock_build(key).await.unwrap();
    let building = build.start().unwrap();
    std::fs::write(building.dir().join("data"), vec![7u8; bytes]).unwrap();
    let size_bytes = rafiki_worker::envs::disk_usage(building.dir());
    let manifest = Manifest {
        base: std::env::current_exe().unwrap().display().to_string(),
        requirements: vec![format!("{key}==1")],
        dependencies: Default::default(),
        size_bytes,
        warnings: Vec::new(),
    };
    drop(build.publish(building, manifest).unwrap().unwrap());
    set_last_used(store, key, at);
}

fn set_last_used(store: &EnvStore, key: &str, at: u64) {
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(store.dir_of(key).join(LOCK_FILE))
        .unwrap();
    lock.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(at))
        .unwrap();
}

fn keys(store: &EnvStore) -> Vec<String> {
    let mut keys: Vec<String> = store.list().unwrap().into_iter().map(|e| e.key).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn eviction_over_the_bound_takes_the_least_recently_used_environment_no_one_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = EnvStore::new(dir.path());
    for (key, at) in [("oldest", 1000), ("middle", 2000), ("newest", 3000)] {
        fake_environment(&store, key, 1 << 20, at).await;
    }
    let each = store.list().unwrap()[0].manifest.size_bytes;
    assert!(each >= 1 << 20);
    // Room for two and a half: one must go.
    let bound = each * 5 / 2;

    // The oldest is in use (still the least recently used: taking it counts as a use, so
    // its time is set back): the next one goes instead.
    let held = store.open("oldest").await.unwrap().unwrap();
    set_last_used(&store, "oldest", 1000);
    let removed = store.evict_over(bound).unwrap();
    assert_eq!(removed.evicted, ["middle"]);
    assert_eq!(removed.bytes, each);
    assert_eq!(keys(&store), ["newest", "oldest"]);

    // Released (and touched: it was used last), it is no longer the oldest.
    drop(held);
    fake_environment(&store, "again", 1 << 20, 500).await;
    let removed = store.evict_over(bound).unwrap();
    assert_eq!(removed.evicted, ["again"]);
    assert_eq!(keys(&store), ["newest", "oldest"]);
    assert_eq!(names(dir.path()).len(), 2, "{:?}", names(dir.path()));
}

#[tokio::test]
async fn gc_removes_what_dead_builders_left_and_stale_environments_but_not_live_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = EnvStore::new(dir.path());
    fake_environment(&store, "kept", 4096, 1000).await;
    fake_environment(&store, "in-use", 4096, 1000).await;
    let in_use = store.open("in-use").await.unwrap().unwrap();

    // A builder that is still at work: its folder stays.
    let live = store.lock_build("building").await.unwrap();
    let building = live.start().unwrap();
    std::fs::write(building.dir().join("half"), b"installed so far").unwrap();
    let live_dir: PathBuf = building.dir().to_owned();

    // What a worker killed mid-build leaves: its folder, its build lock file, nobody holding
    // either.
    let dead = dir.path().join(".tmp-dead0-0123456789abcdef");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join(LOCK_FILE), b"").unwrap();
    std::fs::write(dead.join("half"), b"installed so far").unwrap();
    std::fs::write(dir.path().join(".build-dead0.lock"), b"").unwrap();

    // An environment of an interpreter that is gone.
    let build = store.lock_build("stale").await.unwrap();
    let stale = build.start().unwrap();
    let manifest = Manifest {
        base: "/nonexistent/python3".to_owned(),
        requirements: Vec::new(),
        dependencies: Default::default(),
        size_bytes: 10,
        warnings: Vec::new(),
    };
    drop(build.publish(stale, manifest).unwrap().unwrap());
    drop(build);

    let removed = store.gc(None).unwrap();
    assert_eq!(removed.evicted, ["stale"]);
    assert_eq!(removed.leftovers, 1, "the dead builder's folder");
    let left = names(dir.path());
    assert!(!left.iter().any(|n| n.contains("dead0")), "{left:?}");
    assert!(
        live_dir.join("half").is_file(),
        "a live build is left alone"
    );
    assert_eq!(keys(&store), ["in-use", "kept"]);

    // With a bound of nothing, gc evicts every environment but the one in use.
    let removed = store.gc(Some(0)).unwrap();
    assert_eq!(removed.evicted, ["kept"]);
    assert_eq!(keys(&store), ["in-use"]);
    drop(in_use);
    drop(building);
    drop(live);
    assert!(!live_dir.exists(), "an abandoned build removes its folder");
    store.gc(Some(0)).unwrap();
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}
