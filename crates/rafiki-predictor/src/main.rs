//! `rafiki-predictor`: reads the settings, runs the predictor, maps its end to an exit code
//! (0 stopped on purpose, 1 crash, 2 bad configuration).

use std::process::ExitCode;
use std::time::Duration;

use rafiki_predictor::PredictorConfig;

fn main() -> ExitCode {
    rafiki_worker::init_tracing();
    if matches!(std::env::args().nth(1).as_deref(), Some("-h" | "--help")) {
        println!("usage: rafiki-predictor (settings from the environment; see docs/predictor.md)");
        return ExitCode::SUCCESS;
    }
    let config = match PredictorConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(rafiki_predictor::serve(config));
    // In-flight requests are not waited for after a stop.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("rafiki-predictor crashed: {e}");
            ExitCode::FAILURE
        }
    }
}
