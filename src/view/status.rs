//! `cloud status` for people: where the latest run is, and what went wrong. A run whose process
//! died before it ended is told as `cloud history` tells it: `failed (interrupted)`, its
//! stacks that were running `interrupted`, its time and progress as of its last event.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::event::{DeploymentState, DriftStatus, StackState};
use crate::health::{self, Health};
use crate::progress::Model;
use crate::words::{format_duration, plural, progress_line};

/// How the run's process stands, besides what its journal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its process holds the lock: the run is going on.
    Running,
    /// Nobody holds the lock.
    Gone,
}

/// The run's state in one word or phrase: the journal's, or `failed (interrupted: …)` when the
/// journal stops short and its process is gone, or `cancelled`.
pub fn state(model: &Model, liveness: Liveness, now: DateTime<Utc>) -> String {
    if !model.is_finished() {
        return match liveness {
            Liveness::Running => model.status.as_str().to_owned(),
            Liveness::Gone => {
                let last = model
                    .last_event_time
                    .map(|t| {
                        format!(
                            ", its last event {} ago",
                            format_duration(crate::progress::seconds_between(t, now) as u64)
                        )
                    })
                    .unwrap_or_default();
                format!("failed (interrupted: the run stopped without finishing{last})")
            }
        };
    }
    if model.cancelled {
        "cancelled".to_owned()
    } else if model.operation.changes_nothing() && model.status == DeploymentState::Deployed {
        // A plan or a drift check deployed nothing: `planned`, `checked`, as `cloud history`
        // says.
        model.operation.done().to_owned()
    } else {
        model.status.as_str().to_owned()
    }
}

/// `place` names where the events were read (`journal: <file>`, `events: DynamoDB table T`);
/// `health` is each stack's drift health (a drifted stack says since when).
pub fn text(
    model: &Model,
    place: &str,
    liveness: Liveness,
    now: DateTime<Utc>,
    health: &BTreeMap<String, Health>,
) -> String {
    let died = liveness == Liveness::Gone && !model.is_finished();
    // A dead run's clock stopped at its last event, and it has nothing left to estimate.
    let (ran_until, progress) = match model.last_event_time.filter(|_| died) {
        Some(last) => (last, progress_line(model, last)),
        None => (now, progress_line(model, now)),
    };
    let progress = match progress.split_once(" | ETA:") {
        Some((before, _)) if died => before.to_owned(),
        _ => progress,
    };
    let mut out = format!(
        "{}-{}: {}\n  run {} · started {} · {}\n  {}\n{}\n\n",
        model.deployment_id,
        model.environment,
        state(model, liveness, now),
        model.run_id,
        model
            .start_time
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default(),
        format_duration(model.elapsed(ran_until).round() as u64),
        place,
        progress,
    );
    let width = model.stacks.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &model.stacks {
        // Running when its run died: it ended with it, however far it got.
        let (symbol, state) = match (s.status, s.drift.as_deref().and_then(|d| d.status)) {
            (StackState::Deploying, _) if died => (StackState::Failed.symbol(), "interrupted"),
            // A drift check's stack: what it found.
            (StackState::Deployed, Some(found)) => (drift_symbol(found), found.as_str()),
            (other, _) => (other.symbol(), other.as_str()),
        };
        let mut line = format!(
            "  {} {:width$}  layer {}  {:11}",
            symbol, s.name, s.layer, state
        );
        if let Some(d) = s.duration_seconds {
            line.push_str(&format!("  {}", format_duration(d)));
        }
        if s.resources.total > 0 {
            line.push_str(&format!("  {}", plural(s.resources.total, "resource")));
        }
        if let Some(e) = &s.error {
            line.push_str(&format!("\n      {}: {}", e.code, e.message));
        }
        if let Some(by) = &s.blocked_by {
            line.push_str(&format!("  (blocked by {by})"));
        }
        // A drifted stack says since when (in sync is what a deploy leaves: not repeated).
        if let Some(h) = health.get(&s.name).filter(|h| h.is_drifted()) {
            line.push_str(&format!("  · {}", health::words(Some(h))));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `✓` in sync, `⚠` drifted, `?` unknown.
fn drift_symbol(status: DriftStatus) -> &'static str {
    match status {
        DriftStatus::InSync => "✓",
        DriftStatus::Drifted => "⚠",
        DriftStatus::Unknown => "?",
    }
}

/// Columns to fit `--timing`'s table in: the terminal's, else 100 (a pipe, a file).
pub fn width() -> usize {
    console::Term::stdout()
        .size_checked()
        .map_or(100, |(_, columns)| usize::from(columns))
}
