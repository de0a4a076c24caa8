//! Drift, for people: what a run's end says of the stacks' health.
//!
//! - `drift_detected`: a drift check (`cloud drift`) that found drifted stacks ends with ONE
//!   notice listing them, each with its drifted resources and what changed.
//! - `drift_resolved`: stacks that were drifted before the run and are in sync after it — a
//!   check that finds them fixed outside, or a deploy that brought them back.
//! - [`Trigger::DriftSettled`]: after the run no stack is known drifted; PagerDuty resolves
//!   the drift incident, if one is open.
//!
//! A cancelled run says nothing of drift: it may have checked only some stacks.
//!
//! "Before" is the health `history.json` holds when the notifier is made (before the run's
//! history sink changes it); the run's events are then followed with the same
//! [`health::Tracker`] the history uses, so "after" is what the history will say.

use std::collections::BTreeMap;
use std::path::Path;

use crate::event::{DriftStatus, Event, EventData, Operation};
use crate::health::{self, Health};
use crate::progress::Model;
use crate::store::history::RunHistory;
use crate::words;

use super::notice::{DriftReport, DriftedStack, Notice, Trigger, What};

/// Follows a run's events into the stacks' health, and says what changed at its end.
#[derive(Debug, Default)]
pub struct DriftWatch {
    /// The stacks drifted when the run began.
    before: BTreeMap<String, Health>,
    /// Each stack's health as the run goes.
    now: BTreeMap<String, Health>,
    tracker: health::Tracker,
}

impl DriftWatch {
    /// The health the history in `journal_dir` holds now.
    pub fn load(journal_dir: &Path) -> DriftWatch {
        let now: BTreeMap<String, Health> = RunHistory::load(journal_dir)
            .stacks
            .into_iter()
            .filter_map(|(stack, h)| Some((stack, h.health?)))
            .collect();
        DriftWatch::new(now)
    }

    pub fn new(now: BTreeMap<String, Health>) -> DriftWatch {
        let before = now
            .iter()
            .filter(|(_, h)| h.is_drifted())
            .map(|(s, h)| (s.clone(), h.clone()))
            .collect();
        DriftWatch {
            before,
            now,
            tracker: health::Tracker::default(),
        }
    }

    /// The drift triggers `event` (folded into `model`) is: some only at the run's end.
    pub fn follow(
        &mut self,
        model: &Model,
        event: &Event,
        dashboard: Option<&str>,
    ) -> Vec<Trigger> {
        let now = &self.now;
        match self.tracker.change(event, |s| now.get(s).cloned()) {
            Some(health::Change::Set(stack, h)) => {
                self.now.insert(stack, h);
            }
            Some(health::Change::Forget(stack)) => {
                self.now.remove(&stack);
            }
            None => {}
        }
        let EventData::DeploymentComplete(done) = &event.data else {
            return Vec::new();
        };
        if done.cancelled {
            return Vec::new();
        }
        let mut out = Vec::new();
        let notice = |what, stacks| {
            let report = DriftReport {
                stacks,
                totals: model.drift_totals,
            };
            Notice::drift(what, model, event.timestamp, report, dashboard)
        };
        let detected = detected(model);
        if model.operation == Operation::Drift && !detected.is_empty() {
            out.push(Trigger::DriftDetected(notice(
                What::DriftDetected,
                detected,
            )));
        }
        let resolved = self.resolved();
        if !resolved.is_empty() {
            out.push(Trigger::DriftResolved(notice(
                What::DriftResolved,
                resolved,
            )));
        }
        if !self.now.values().any(Health::is_drifted) {
            out.push(Trigger::DriftSettled);
        }
        out
    }

    /// The stacks drifted before the run and in sync now, as they were.
    fn resolved(&self) -> Vec<DriftedStack> {
        self.before
            .iter()
            .filter(|(stack, _)| {
                self.now
                    .get(*stack)
                    .is_some_and(|h| h.status == DriftStatus::InSync)
            })
            .map(|(stack, was)| DriftedStack {
                stack: stack.clone(),
                since: was.since,
                resources: was.resources.clone(),
            })
            .collect()
    }
}

/// The stacks this drift check found drifted, in the run's order.
fn detected(model: &Model) -> Vec<DriftedStack> {
    model
        .stacks
        .iter()
        .filter_map(|s| {
            let drift = s.drift.as_deref()?;
            (drift.status == Some(DriftStatus::Drifted)).then(|| DriftedStack {
                stack: s.name.clone(),
                since: drift.since,
                resources: drift
                    .resources
                    .iter()
                    .map(words::drifted_resource)
                    .collect(),
            })
        })
        .collect()
}
