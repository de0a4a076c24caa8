//! Runs a plan: starts each stack as soon as its dependencies are done, within the parallelism
//! limit, and turns executor updates into numbered events.

use std::sync::Arc;

use tokio::sync::watch;

/// Asks a run to stop, as Ctrl-C does. Cheap to clone; any holder may cancel.
#[derive(Clone, Debug)]
pub struct CancelHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for CancelHandle {
    fn default() -> Self {
        CancelHandle {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl CancelHandle {
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }
    /// Resolves once the run is asked to stop.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so `wait_for` only ends when the flag is set.
        let _ = rx.wait_for(|c| *c).await;
    }
}
