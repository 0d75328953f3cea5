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
    keep_large_blocks_in_the_heap();
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

/// glibc's malloc serves every block above 128 KiB (its default `M_MMAP_THRESHOLD`) with a fresh
/// `mmap` and unmaps it on free, so the learning studies' candle temporaries (an im2col matrix of
/// a 30-image minibatch on the 8 / 16-channel CNN is ≈ 300 KiB) page-fault from zero at every
/// training step. Measured (debug, `pfednavi-cnn.yaml`, its fedavg, fedavg-ft and fedper runs of
/// one replication, `--jobs 1`, identical tables): 18.7 s user + 11.3 s system without this,
/// 17.6 s + 0.05 s with blocks up to 32 MiB kept in the heap and the heap trimmed only above
/// 256 MiB free (the values are our choice: above any one temporary of the studies, small next to
/// the machine's memory).
fn keep_large_blocks_in_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; called first thing in `main`, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
