//! Asking a run (or one stack) to stop. One token, shared by the signal handler, the
//! orchestrator, the executors and the views (none of them needs to know the others).
//!
//! Two levels, as people use Ctrl-C: the first asks running stacks to stop within their grace
//! period; the second forces them (kill now). A [`child`](Cancel::child) token stops with its
//! parent, and may also be stopped alone (a stack's `timeout:`).
//!
//! Below both, a [`halt`](Cancel::halt): start nothing new but let running stacks finish, for a
//! reason the run reports (its lock was lost: going on could deploy beside another run, while
//! interrupting a stack midway could leave its state half-written).

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::event::{ErrorDetail, StopReason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Running,
    Halt,
    Stop,
    Force,
}

/// Cheap to clone; any holder may cancel, every holder sees it.
#[derive(Clone, Debug)]
pub struct Cancel {
    /// This token's own level, then its parents' (a child sees every one of them).
    levels: Vec<Arc<watch::Sender<Level>>>,
    /// Why the run was halted (the first reason given), shared by the whole tree of tokens.
    halted_for: Arc<OnceLock<ErrorDetail>>,
    /// Why this token was stopped, when the one who stopped it said (the first reason given).
    stopped_for: Arc<OnceLock<StopReason>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            levels: vec![Arc::new(watch::channel(Level::Running).0)],
            halted_for: Arc::default(),
            stopped_for: Arc::default(),
        }
    }
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is cancelled with this one, and can be cancelled on its own.
    pub fn child(&self) -> Cancel {
        let mut levels = vec![Arc::new(watch::channel(Level::Running).0)];
        levels.extend(self.levels.iter().cloned());
        Cancel {
            levels,
            halted_for: self.halted_for.clone(),
            stopped_for: Arc::default(),
        }
    }

    /// Halt: start nothing new, let running stacks finish; `why` is what the run reports (the
    /// first reason given is kept).
    pub fn halt(&self, why: ErrorDetail) {
        let _ = self.halted_for.set(why);
        self.raise(Level::Halt);
    }

    /// Stop: start nothing new, interrupt running stacks (they get their grace period).
    pub fn cancel(&self) {
        self.raise(Level::Stop);
    }

    /// Stop now: kill running stacks without waiting for their grace period.
    pub fn force(&self) {
        self.raise(Level::Force);
    }

    /// Stop, saying why (the run reports it in `deployment_cancelling`).
    pub fn stop_for(&self, reason: StopReason) {
        let _ = self.stopped_for.set(reason);
        self.cancel();
    }

    /// The first call stops (for `reason`), the next forces (a second Ctrl-C).
    pub fn escalate(&self, reason: StopReason) {
        if self.is_cancelled() {
            self.force();
        } else {
            self.stop_for(reason);
        }
    }

    /// Why this token stops, once it is halted or stopped: the reason given to
    /// [`stop_for`](Self::stop_for) (a Ctrl-C when none was), or for a halt, the lost lock
    /// (the one thing that halts a run).
    pub fn stop_reason(&self) -> Option<StopReason> {
        if self.is_cancelled() {
            Some(
                self.stopped_for
                    .get()
                    .copied()
                    .unwrap_or(StopReason::Interrupt),
            )
        } else if self.is_halted() {
            Some(StopReason::LockLost)
        } else {
            None
        }
    }

    fn raise(&self, to: Level) {
        self.levels[0].send_if_modified(|level| {
            let raised = to > *level;
            if raised {
                *level = to;
            }
            raised
        });
    }

    fn level(&self) -> Level {
        self.levels
            .iter()
            .map(|l| *l.borrow())
            .max()
            .unwrap_or(Level::Running)
    }

    /// Halted, or stopped: nothing new starts.
    pub fn is_halted(&self) -> bool {
        self.level() >= Level::Halt
    }

    /// Why the run was halted, if it was ([`halt`](Self::halt); not a stop).
    pub fn halt_reason(&self) -> Option<&ErrorDetail> {
        self.halted_for.get()
    }

    pub fn is_cancelled(&self) -> bool {
        self.level() >= Level::Stop
    }

    pub fn is_forced(&self) -> bool {
        self.level() >= Level::Force
    }

    /// Resolves once the run is halted or asked to stop.
    pub async fn halted(&self) {
        self.reached(Level::Halt).await;
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
        let waits = self
            .levels
            .iter()
            .map(|sender| {
                let mut rx = sender.subscribe();
                Box::pin(async move {
                    // The sender lives in `self`: `wait_for` ends only when the level is reached.
                    let _ = rx.wait_for(|l| *l >= level).await;
                }) as Waiting
            })
            .collect();
        first_of(waits).await;
    }
}

type Waiting = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Resolves when the first of `futures` does.
async fn first_of(mut futures: Vec<Waiting>) {
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ErrorCode;

    #[tokio::test]
    async fn stop_then_force() {
        let c = Cancel::new();
        assert!(!c.is_cancelled() && c.stop_reason().is_none());
        c.escalate(StopReason::Signal);
        assert!(c.is_cancelled() && !c.is_forced());
        assert_eq!(c.stop_reason(), Some(StopReason::Signal));
        c.cancelled().await;
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.forced().await }
        });
        c.escalate(StopReason::Interrupt);
        waiter.await.unwrap();
        assert!(c.is_forced());
        // Never goes back down.
        c.cancel();
        assert!(c.is_forced());
    }

    #[tokio::test]
    async fn a_halt_starts_nothing_new_but_stops_nothing_and_keeps_its_first_reason() {
        let c = Cancel::new();
        let stack = c.child();
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.halted().await }
        });
        c.halt(ErrorDetail {
            code: ErrorCode::LockLost,
            message: "first".into(),
            details: None,
        });
        c.halt(ErrorDetail {
            code: ErrorCode::Timeout,
            message: "second".into(),
            details: None,
        });
        waiter.await.unwrap();
        assert!(stack.is_halted() && !stack.is_cancelled());
        assert_eq!(c.stop_reason(), Some(StopReason::LockLost));
        assert_eq!(
            stack.halt_reason().map(|e| &e.code),
            Some(&ErrorCode::LockLost)
        );
        // A stop goes on from a halt, and the reason stays.
        c.cancel();
        assert!(c.is_cancelled() && c.halt_reason().is_some());
    }

    #[tokio::test]
    async fn a_child_stops_with_its_parent_or_alone() {
        let parent = Cancel::new();
        let alone = parent.child();
        alone.cancel();
        assert!(alone.is_cancelled() && !parent.is_cancelled());
        let child = parent.child();
        let waiter = tokio::spawn({
            let child = child.clone();
            async move { child.cancelled().await }
        });
        parent.cancel();
        waiter.await.unwrap();
        assert!(child.is_cancelled());
    }
}
