//! `rafiki-predictor`: reads the settings, runs the predictor, maps its end to an exit code
//! (0 stopped on purpose, 1 crash, 2 bad configuration).

use std::process::ExitCode;

use rafiki_predictor::PredictorConfig;
use rafiki_service::exit::{run_to_exit, BAD_CONFIGURATION};

fn main() -> ExitCode {
    if let Err(e) = rafiki_service::logging::init_tracing() {
        // No log yet to write it to.
        eprintln!("rafiki-predictor: {e}");
        return ExitCode::from(BAD_CONFIGURATION);
    }
    if matches!(std::env::args().nth(1).as_deref(), Some("-h" | "--help")) {
        println!("usage: rafiki-predictor (settings from the environment; see docs/predictor.md)");
        return ExitCode::SUCCESS;
    }
    let config = match PredictorConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(BAD_CONFIGURATION);
        }
    };
    run_to_exit("rafiki-predictor", rafiki_predictor::serve(config))
}
