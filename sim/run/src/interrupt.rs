//! Stopping a sweep cleanly: the first SIGINT (Ctrl-C) or SIGTERM sets a flag that the runner checks
//! before it starts each run, so no new run starts while the runs in flight finish and are journaled;
//! a second signal ends the process at once (exit 130), keeping what the journal already holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit code of a process stopped by a second signal (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A stop request shared by the signal handlers and the runner; the default is never requested.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the handlers for SIGINT and SIGTERM: the first sets the flag, the next exits with
    /// [`EXIT_INTERRUPTED`].
    pub fn on_signals() -> std::io::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::flag;
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as it was before this signal.
            flag::register_conditional_shutdown(signal, EXIT_INTERRUPTED, Arc::clone(&stop))?;
            flag::register(signal, Arc::clone(&stop))?;
        }
        Ok(Self(stop))
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Requests a stop, as a signal would.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
