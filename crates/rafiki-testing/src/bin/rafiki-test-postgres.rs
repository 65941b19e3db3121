//! Starts the tests' Postgres container, or reuses the one there is, and prints its server's
//! URL once it accepts connections (see the `rafiki_testing` crate). Exits non-zero, saying why
//! and what to do, where Docker or the image is missing.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match rafiki_testing::container_server_url().await {
        Ok(url) => {
            println!("{url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rafiki-test-postgres: {e}; {}", rafiki_testing::HOW_TO);
            ExitCode::FAILURE
        }
    }
}
