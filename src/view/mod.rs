//! Terminal views. Each is a sink on the bus ([`ViewSink`]): it runs on its own thread, folds
//! what it receives with the one reducer ([`crate::progress::Model`]) and renders from that
//! model, so none can slow the deploy. Renders are pure functions of the model (tested without
//! a terminal); the live views share one redraw loop ([`live`]) and one [`Palette`].

pub mod interactive;
pub mod json;
pub mod live;
pub mod palette;
pub mod plan_table;
pub mod simple;
pub mod status;
pub mod verbose;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::bus::{Delivery, Handle, Inbox, Purpose, Report, Sink};
use crate::cancel::Cancel;
pub use crate::settings::ViewKind;
pub use crate::words::{format_duration, format_eta, progress_line};
pub use palette::{Palette, Role as Paint};

/// Leaves a finished view's model to the system rather than freeing it: a view is what a
/// command waits for last, the process ends right after, and freeing a 10,000-stack model
/// (memory goes back to the system page by page) took a tenth of a second the run's end
/// waited for.
pub(crate) fn let_go(model: Option<crate::progress::Model>) {
    std::mem::forget(model);
}

/// What a view may do besides drawing.
#[derive(Clone)]
pub struct Control {
    pub palette: Palette,
    /// Leave the interactive view as soon as the run is done.
    pub exit_on_done: bool,
    /// Asks the run to stop (as Ctrl-C does); the run then tells every consumer
    /// (`deployment_cancelling`).
    pub cancel: Cancel,
    /// Running in GitHub Actions: the verbose view folds each stack's lines and annotates
    /// failures.
    pub github_actions: bool,
    /// The time the views show: now for a live run; for `cloud replay`, the replayed time.
    pub clock: Clock,
}

/// What time it is for a view. Live runs read the real clock; a replay shows the time of the
/// run it replays, so elapsed times and ETA countdowns read as they did then.
#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    Real,
    Replay(Arc<Replay>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::Real => Utc::now(),
            Clock::Replay(replay) => replay.now(),
        }
    }

    /// The mark a replayed run carries on screen (`[replay 10×]`); `None` live.
    pub fn mark(&self) -> Option<&str> {
        match self {
            Clock::Real => None,
            Clock::Replay(replay) => Some(&replay.mark),
        }
    }
}

/// A replay's clock: a recorded time that runs on at `speed` times the real pace from the real
/// moment it was set (speed 0: stands still).
pub struct Replay {
    pub mark: String,
    set: Mutex<(DateTime<Utc>, Instant, f64)>,
}

impl Replay {
    pub fn new(mark: impl Into<String>, at: DateTime<Utc>) -> Self {
        Replay {
            mark: mark.into(),
            set: Mutex::new((at, Instant::now(), 0.0)),
        }
    }

    /// From now on the clock reads `at`, running on at `speed`.
    pub fn set(&self, at: DateTime<Utc>, speed: f64) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = (at, Instant::now(), speed);
    }

    pub fn now(&self) -> DateTime<Utc> {
        let (at, since, speed) = *self.set.lock().unwrap_or_else(|e| e.into_inner());
        let ran = chrono::TimeDelta::from_std(since.elapsed().mul_f64(speed)).unwrap_or_default();
        at + ran
    }
}

/// A view, as a sink on the bus.
pub struct ViewSink {
    pub kind: ViewKind,
    pub control: Control,
}

impl Sink for ViewSink {
    fn name(&self) -> String {
        format!("view-{}", format!("{:?}", self.kind).to_lowercase())
    }

    fn purpose(&self) -> Purpose {
        Purpose::Show
    }

    fn delivery(&self) -> Delivery {
        match self.kind {
            // Their output is a record of every event.
            ViewKind::Json | ViewKind::Verbose => Delivery::Every,
            // They show the current state.
            ViewKind::Simple | ViewKind::Interactive => Delivery::Latest,
        }
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        let name = self.name();
        let report_name = name.clone();
        Handle::thread(&name, move || {
            let result = match self.kind {
                ViewKind::Json => json::run(&inbox, &self.control),
                ViewKind::Verbose => verbose::run(&inbox, &self.control),
                ViewKind::Simple => simple::run(&inbox, &self.control),
                ViewKind::Interactive => interactive::run(&inbox, &self.control),
            };
            match result {
                Ok(()) => Report::ok(&report_name, 0),
                // A closed pipe (e.g. `| head`) is no reason to fail a deploy that succeeded.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Report::ok(&report_name, 0),
                Err(e) => Report::failed(&report_name, e.to_string()),
            }
        })
    }
}
