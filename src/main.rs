//! `sysim`: the command-line front end (thin: parsing, dispatch and exit codes).
//!
//! Exit codes: 0 success, 1 a failure while running (a run errored), 2 bad input.

mod cli;
mod commands;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::dispatch(args) {
        Ok(()) | Err(commands::CliError::PipeClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
