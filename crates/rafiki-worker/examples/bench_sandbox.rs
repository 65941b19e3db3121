//! The sandbox's start-up cost per worker: how long the model runtime takes from spawn to
//! `ready`, unsandboxed and under bubblewrap, through the worker's own code path.
//!
//! `cargo run --release -p rafiki-worker --example bench_sandbox -- [runs, default 30]`, with
//! `RAFIKI_PYTHON` naming an interpreter that has `rafiki` (default `.venv/bin/python`).
//! Results and method: docs/benchmarks.md, "Model sandbox".

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rafiki_worker::runtime::{Runtime, RuntimeConfig};
use rafiki_worker::sandbox::Sandbox;

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("runs is a number"))
        .unwrap_or(30);
    let python = PathBuf::from(
        std::env::var("RAFIKI_PYTHON").unwrap_or_else(|_| ".venv/bin/python".to_owned()),
    );
    let python = std::path::absolute(python).expect("an absolute interpreter path");
    let dir = tempfile::tempdir().expect("a scratch folder");
    for (name, setting) in [("off", "off"), ("bwrap", "bwrap")] {
        let sandbox =
            Sandbox::from_lookup(|key| (key == "RAFIKI_SANDBOX").then(|| setting.to_owned()))
                .expect("sandbox settings");
        let config = RuntimeConfig {
            sandbox,
            ..RuntimeConfig::new(&python, dir.path())
        };
        // One start first: the interpreter's folders are found once per worker, and the page
        // cache warms up.
        Runtime::start(&config).await.expect("starts").kill().await;
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let mut runtime = Runtime::start(&config).await.expect("starts");
            times.push(started.elapsed());
            runtime.kill().await;
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / runs as u32;
        println!(
            "sandbox {name:5}: spawn to ready over {runs} starts: median {:.1} ms, mean {:.1} ms, min {:.1} ms, max {:.1} ms",
            ms(times[runs / 2]),
            ms(mean),
            ms(times[0]),
            ms(times[runs - 1]),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
