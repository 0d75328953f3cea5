//! `sysim`: the command-line front end (thin: parsing, dispatch and exit codes).
//!
//! Exit codes: 0 success, 1 a failure while running (a run errored), 2 bad input.

mod cli;
mod commands;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    one_matmul_thread_per_run();
    let args = cli::Cli::parse();
    match commands::dispatch(args) {
        Ok(()) | Err(commands::CliError::PipeClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs are spread over threads by `--jobs`; candle (the learning studies, the decoder) would also
/// split every matrix product over its own threads (`RAYON_NUM_THREADS`, else one per core), and
/// that nested split of small products costs about 3× the CPU, mostly spinning in the kernel
/// (measured on one `fl-personal` run: 7.2 s CPU with one thread vs ≈ 21 s without). So candle gets
/// one thread per run unless the user sets `RAYON_NUM_THREADS` or `CANDLE_NUM_THREADS`.
fn one_matmul_thread_per_run() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none()
        && std::env::var_os("CANDLE_NUM_THREADS").is_none()
    {
        // SAFETY: the first statement of `main`, before any thread exists that could read the
        // environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}
