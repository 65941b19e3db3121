//! `rafiki-worker [train|inference]`: reads the settings, runs the worker, maps its end to an exit code
//! (0 done or stopped on purpose, 1 crash, 2 bad configuration).

use std::process::ExitCode;

use rafiki_service::exit::{run_to_exit, BAD_CONFIGURATION};
use rafiki_service::predict_secret::PredictSecret;
use rafiki_types::internal::env;
use rafiki_worker::{Mode, WorkerConfig};

fn main() -> ExitCode {
    if let Err(e) = rafiki_service::logging::init_tracing() {
        // No log yet to write it to.
        eprintln!("rafiki-worker: {e}");
        return ExitCode::from(BAD_CONFIGURATION);
    }
    // The model runs as this worker's user (in containers, the same uid). Not dumpable, the
    // worker's /proc entries (its environment with the service token, its memory) belong to
    // root and it cannot be traced, so the model cannot take its token. The Python child is
    // dumpable again after its exec.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!("cannot make the worker undumpable: {e}");
    }
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!(
            "usage: rafiki-worker [train|inference]\n(the mode may also come from {}; see docs/worker.md)",
            env::SERVICE_TYPE
        );
        return ExitCode::SUCCESS;
    }
    let service_type = std::env::var(env::SERVICE_TYPE).ok();
    let settings = Mode::choose(arg.as_deref(), service_type.as_deref())
        .and_then(|mode| Ok((mode, WorkerConfig::from_env()?)))
        .and_then(|(mode, config)| config.check_for(mode).map(|()| (mode, config)))
        .and_then(|(mode, config)| match mode {
            // Inference mode reads it again when it starts serving.
            Mode::Inference => PredictSecret::from_env().map(|_| (mode, config)),
            Mode::Train => Ok((mode, config)),
        });
    let (mode, config) = match settings {
        Ok(settings) => settings,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(BAD_CONFIGURATION);
        }
    };
    run_to_exit("rafiki-worker", rafiki_worker::serve(mode, config))
}
