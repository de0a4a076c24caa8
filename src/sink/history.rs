//! Keeps `history.json` (see [`crate::store::history`]) up to date as the run goes: each
//! stack's duration, outputs and fingerprint when it deploys (forgotten when it is destroyed
//! or rolled back), and how long each resource type took. Saved at most once a second and at
//! the end, so that a run killed half-way leaves what it finished recorded (the next deploy
//! skips those stacks) without rewriting the file for every stack of a big run. A plan
//! (`cloud plan`) changes nothing, so it records nothing: not even that a stack was planned.
//! A drift check (`cloud drift`) records only each stack's health (see [`crate::health`]).

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::bus::{Delivery, Empty, Handle, Inbox, Received, Report, Sink};
use crate::event::{ErrorCode, Event, EventData, ResourceState};
use crate::progress::seconds_between;
use crate::store::history::RunHistory;

const SAVE_EVERY: Duration = Duration::from_secs(1);

pub struct HistorySink {
    pub dir: PathBuf,
    pub history: RunHistory,
}

impl Sink for HistorySink {
    fn name(&self) -> String {
        "run history".into()
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        let HistorySink { dir, mut history } = *self;
        Handle::thread("history", move || {
            // When each running stack started: all a duration needs (a whole model would
            // double the run's memory and fold every event a second time).
            let mut started: HashMap<String, DateTime<Utc>> = HashMap::new();
            let mut dirty_since: Option<Instant> = None;
            let mut planning = false;
            let mut health = crate::health::Tracker::default();
            let mut report = Report::ok("run history", 0);
            let save = |history: &RunHistory, report: &mut Report| {
                if let Err(e) = history.save(&dir) {
                    report.problem = Some(format!("{}: {e}", dir.join("history.json").display()));
                }
            };
            loop {
                let wait =
                    dirty_since.map_or(Duration::MAX, |t| SAVE_EVERY.saturating_sub(t.elapsed()));
                match inbox.recv_timeout(wait) {
                    Ok(Received::Event(event)) => {
                        report.delivered += 1;
                        if let EventData::DeploymentStarted(e) = &event.data {
                            planning = e.operation.changes_nothing();
                        }
                        // A drift check changes nothing but the stacks' health.
                        let changed = match health.change(&event, |s| {
                            history.stacks.get(s).and_then(|h| h.health.clone())
                        }) {
                            Some(change) => {
                                history.health_changed(change);
                                true
                            }
                            None => false,
                        };
                        if (!planning && record(&mut history, &mut started, &event)) || changed {
                            dirty_since.get_or_insert_with(Instant::now);
                        }
                    }
                    Ok(Received::Resync(_)) | Err(Empty::Waiting) => {}
                    Err(Empty::Closed) => break,
                }
                if dirty_since.is_some_and(|t| t.elapsed() >= SAVE_EVERY) {
                    dirty_since = None;
                    save(&history, &mut report);
                }
            }
            if dirty_since.is_some() {
                save(&history, &mut report);
            }
            report
        })
    }
}

/// What an event changes in the history; `true` when something did.
fn record(
    history: &mut RunHistory,
    started: &mut HashMap<String, DateTime<Utc>>,
    event: &Event,
) -> bool {
    match &event.data {
        EventData::StackDeploying(e) => {
            started.insert(e.stack.clone(), event.timestamp);
            // Until it ends well, a run killed now leaves it interrupted.
            history.unsettled(&e.stack, "interrupted");
            true
        }
        EventData::StackDestroying(e) => {
            // Half destroyed if the run dies now: never skipped as if it were whole.
            history.unsettled(&e.stack, "interrupted");
            true
        }
        EventData::StackDeployed(e) => {
            // To the millisecond, where the event's own duration is whole seconds.
            let seconds = started
                .remove(&e.stack)
                .map(|start| seconds_between(start, event.timestamp))
                .unwrap_or(e.duration_seconds as f64);
            history.deployed(&e.stack, seconds, &e.outputs, e.fingerprint.clone());
            true
        }
        EventData::StackFailed(e) => {
            started.remove(&e.stack);
            let why = match e.error.code {
                ErrorCode::Cancelled => "cancelled",
                ErrorCode::Timeout => "timed out",
                _ => "failed",
            };
            history.unsettled(&e.stack, why);
            true
        }
        EventData::StackDestroyed(e) => {
            history.gone(&e.stack);
            true
        }
        data => match data.as_resource() {
            Some((ResourceState::Created | ResourceState::Updated, r)) => {
                if let Some(seconds) = r.duration_seconds {
                    history.resource_took(&r.resource.type_, seconds);
                }
                false
            }
            _ => false,
        },
    }
}
