//! The `latchkey` binary: parse the command line, run it, map failures to exit codes.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match latchkey::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, no backtrace: the error chain joined by ": ".
            eprintln!("latchkey: {err:#}");
            ExitCode::from(latchkey::cli::exit_code(&err))
        }
    }
}
