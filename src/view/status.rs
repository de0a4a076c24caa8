//! `cloud status` for people: where the latest run is, and what went wrong.

use chrono::{DateTime, Utc};

use super::words::{format_duration, progress_line};
use crate::progress::Model;

/// How the run's process stands, besides what its journal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its process holds the lock: the run is going on.
    Running,
    /// Nobody holds the lock.
    Gone,
}

/// The run's state in one word or phrase: the journal's, or `interrupted` when the journal
/// stops short and its process is gone, or `cancelled`.
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
                format!("interrupted (the run stopped without finishing{last})")
            }
        };
    }
    if model.cancelled {
        "cancelled".to_owned()
    } else {
        model.status.as_str().to_owned()
    }
}

/// `place` names where the events were read (`journal: <file>`, `events: DynamoDB table T`).
pub fn text(model: &Model, place: &str, liveness: Liveness, now: DateTime<Utc>) -> String {
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
        format_duration(model.elapsed(now).round() as u64),
        place,
        progress_line(model, now),
    );
    let width = model.stacks.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &model.stacks {
        let mut line = format!(
            "  {} {:width$}  layer {}  {:9}",
            s.status.symbol(),
            s.name,
            s.layer,
            s.status.as_str()
        );
        if let Some(d) = s.duration_seconds {
            line.push_str(&format!("  {}", format_duration(d)));
        }
        if s.resources.total > 0 {
            line.push_str(&format!("  {} resources", s.resources.total));
        }
        if let Some(e) = &s.error {
            line.push_str(&format!("\n      {}: {}", e.code, e.message));
        }
        if let Some(by) = &s.blocked_by {
            line.push_str(&format!("  (blocked by {by})"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
