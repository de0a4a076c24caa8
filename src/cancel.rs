//! Asking a run to stop. One token, shared by the signal handler, the orchestrator, the
//! executors and the views (none of them needs to know the others).
//!
//! Two levels, as people use Ctrl-C: the first asks running stacks to stop within their grace
//! period; the second forces them (kill now).

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Running,
    Stop,
    Force,
}

/// Cheap to clone; any holder may cancel, every holder sees it.
#[derive(Clone, Debug)]
pub struct Cancel {
    level: Arc<watch::Sender<Level>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            level: Arc::new(watch::channel(Level::Running).0),
        }
    }
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop: start nothing new, interrupt running stacks (they get their grace period).
    pub fn cancel(&self) {
        self.raise(Level::Stop);
    }

    /// Stop now: kill running stacks without waiting for their grace period.
    pub fn force(&self) {
        self.raise(Level::Force);
    }

    /// The first call stops, the next forces (a second Ctrl-C).
    pub fn escalate(&self) {
        if self.is_cancelled() {
            self.force();
        } else {
            self.cancel();
        }
    }

    fn raise(&self, to: Level) {
        self.level.send_if_modified(|level| {
            let raised = to > *level;
            if raised {
                *level = to;
            }
            raised
        });
    }

    pub fn is_cancelled(&self) -> bool {
        *self.level.borrow() >= Level::Stop
    }

    pub fn is_forced(&self) -> bool {
        *self.level.borrow() >= Level::Force
    }

    /// Resolves once the run is asked to stop.
    pub async fn cancelled(&self) {
        self.reached(Level::Stop).await;
    }

    /// Resolves once the stop is forced.
    pub async fn forced(&self) {
        self.reached(Level::Force).await;
    }

    async fn reached(&self, level: Level) {
        let mut rx = self.level.subscribe();
        // The sender lives in `self`, so `wait_for` only ends when the level is reached.
        let _ = rx.wait_for(|l| *l >= level).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_then_force() {
        let c = Cancel::new();
        assert!(!c.is_cancelled());
        c.escalate();
        assert!(c.is_cancelled() && !c.is_forced());
        c.cancelled().await;
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.forced().await }
        });
        c.escalate();
        waiter.await.unwrap();
        assert!(c.is_forced());
        // Never goes back down.
        c.cancel();
        assert!(c.is_forced());
    }
}
