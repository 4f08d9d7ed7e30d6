//! One cancellation path for SIGINT and SIGTERM.
//!
//! The binary installs one [`Interrupt`] per run. A command that can stop at a safe point
//! (`up`, a lab) calls [`Interrupt::handle`] and races its work against
//! [`Interrupt::requested`]; it then cleans up, says what state it left and returns
//! [`Interrupted`]. A command that has not taken over is simply dropped at its next await
//! point and the process exits 130. A second signal always ends the run at once: the
//! command's cleanup was itself too slow for the user.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::exit;

/// Signals seen so far, shared by everything that holds a clone.
#[derive(Clone)]
pub struct Interrupt {
    count: watch::Sender<u32>,
    handled: Arc<AtomicBool>,
}

impl Interrupt {
    /// An interrupt that only [`Interrupt::trigger`] fires (tests, library callers).
    pub fn manual() -> Interrupt {
        let (count, _) = watch::channel(0);
        Interrupt {
            count,
            handled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Listens for SIGINT (Ctrl-C) and SIGTERM for the rest of the process. Must be called
    /// inside the tokio runtime.
    pub fn install() -> Interrupt {
        let interrupt = Interrupt::manual();
        let listener = interrupt.clone();
        tokio::spawn(async move {
            loop {
                wait_for_signal().await;
                listener.trigger();
            }
        });
        interrupt
    }

    /// Records one more signal.
    pub fn trigger(&self) {
        self.count.send_modify(|n| *n += 1);
    }

    /// How many signals arrived.
    pub fn count(&self) -> u32 {
        *self.count.borrow()
    }

    pub fn is_requested(&self) -> bool {
        self.count() > 0
    }

    /// Resolves once at least `n` signals have arrived (at once if they already have).
    pub async fn reached(&self, n: u32) {
        let mut rx = self.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    /// Resolves at the first signal.
    pub async fn requested(&self) {
        self.reached(1).await
    }

    /// The running command stops at its own safe points from now on; the first signal no
    /// longer drops it.
    pub fn handle(&self) {
        self.handled.store(true, Ordering::SeqCst);
    }

    pub fn is_handled(&self) -> bool {
        self.handled.load(Ordering::SeqCst)
    }

    /// Resolves when the run must end without waiting for the command any longer: at the
    /// first signal for a command that does not handle interruption, at the second otherwise.
    pub async fn must_stop(&self) {
        self.requested().await;
        if self.is_handled() {
            self.reached(2).await;
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        // Without handlers the default disposition stays: the signal ends the process.
        _ => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A command stopped at a safe point because the user asked it to.
#[derive(Debug, thiserror::Error)]
#[error("interrupted during {during}; {left}")]
pub struct Interrupted {
    /// The step that was running (`cluster creation`, `the lab's detect phase`).
    pub during: String,
    /// The state left behind, in words.
    pub left: String,
    /// What to run next.
    pub next: String,
}

impl Interrupted {
    pub fn fix(&self) -> Option<String> {
        Some(self.next.clone())
    }

    pub fn exit_code(&self) -> u8 {
        exit::INTERRUPTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_signals_and_wakes_waiters() {
        let interrupt = Interrupt::manual();
        assert!(!interrupt.is_requested());
        let waiter = tokio::spawn({
            let interrupt = interrupt.clone();
            async move { interrupt.reached(2).await }
        });
        interrupt.trigger();
        assert!(interrupt.is_requested());
        assert!(!waiter.is_finished());
        interrupt.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(interrupt.count(), 2);
    }

    #[tokio::test]
    async fn a_handled_command_survives_the_first_signal_only() {
        let interrupt = Interrupt::manual();
        interrupt.handle();
        interrupt.trigger();
        let second =
            tokio::time::timeout(std::time::Duration::from_millis(50), interrupt.must_stop()).await;
        assert!(second.is_err(), "must_stop resolved on the first signal");
        interrupt.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(1), interrupt.must_stop())
            .await
            .unwrap();
    }
}
