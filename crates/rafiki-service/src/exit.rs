//! How a service's `main` runs its work and turns the end into an exit code: the admin's
//! backends restart a service that exits non-zero and leave one that exits 0.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code of settings that are missing or malformed: restarting would not help.
pub const BAD_CONFIGURATION: u8 = 2;

/// Runs `work` on a multi-threaded runtime: `Ok` exits 0 (done or stopped on purpose), `Err`
/// is logged as `service` crashing and exits 1.
pub fn run_to_exit<T, E: Display>(
    service: &str,
    work: impl Future<Output = Result<T, E>>,
) -> ExitCode {
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
    let result = runtime.block_on(work);
    // Stray background work (a log post, a file read, an in-flight request) is not waited
    // for after a stop.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{service} crashed: {e}");
            ExitCode::FAILURE
        }
    }
}
