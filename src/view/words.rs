//! Words every view uses the same way: durations, estimates, plurals, what an operation is
//! called, the progress line and the end-of-run counts.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::{DeploymentCancelling, Operation, StackState, StopReason};
use crate::progress::Model;

/// `2h 5m`, `5m 30s`, `45s`: how people read elapsed time.
pub fn format_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) if s == 0 => format!("{m}m"),
        (0, _) => format!("{m}m {s}s"),
        _ if m == 0 => format!("{h}h"),
        _ => format!("{h}h {m}m"),
    }
}

/// `~10m`, `~4m 30s`: an estimate, rounded so it does not flicker.
pub fn format_eta(seconds: u64) -> String {
    let rounded = match seconds {
        0..=59 => seconds,
        60..=599 => seconds.div_ceil(30) * 30,
        _ => seconds.div_ceil(60) * 60,
    };
    format!("~{}", format_duration(rounded))
}

/// `1 resource`, `3 resources`.
pub fn plural(n: impl TryInto<u64>, what: &str) -> String {
    match n.try_into().unwrap_or(u64::MAX) {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// `Deploying`, `Destroying`, `Rolling back`.
pub fn doing(op: Operation) -> &'static str {
    match op {
        Operation::Deploy => "Deploying",
        Operation::Destroy => "Destroying",
        Operation::Rollback => "Rolling back",
    }
}

/// `deployed`, `destroyed`, `rolled back`.
pub fn done(op: Operation) -> &'static str {
    op.done()
}

/// `Deployment`, `Destroy`, `Rollback`: what a run is called.
pub fn run_name(op: Operation) -> &'static str {
    match op {
        Operation::Deploy => "Deployment",
        Operation::Destroy => "Destroy",
        Operation::Rollback => "Rollback",
    }
}

/// `Deploying D1BRV40 to dev...`, the seed's first line.
pub fn header(model: &Model) -> String {
    let (id, env) = (&model.deployment_id, &model.environment);
    match model.operation {
        Operation::Deploy => format!("Deploying {id} to {env}..."),
        Operation::Destroy => format!("Destroying {id} in {env}..."),
        Operation::Rollback => format!("Rolling back {id} in {env}..."),
    }
}

/// `Progress: 35% (4/12 stacks) | Elapsed: 5m 30s | ETA: ~10m`.
pub fn progress_line(model: &Model, now: DateTime<Utc>) -> String {
    let s = &model.summary;
    let mut line = format!(
        "Progress: {}% ({}/{} stacks) | Elapsed: {}",
        done_percent(model),
        s.done(),
        s.total_stacks,
        format_duration(model.elapsed(now).round() as u64)
    );
    if !model.is_finished() {
        if let Some(eta) = model.eta(now).filter(|&eta| eta > 0) {
            line.push_str(&format!(" | ETA: {}", format_eta(eta)));
        }
    }
    line
}

/// The percent beside `done/total stacks`: the stacks done (deployed or skipped) and the
/// progress of those still running, over all of them. Not the model's percent, which counts
/// failed stacks as ended and never goes down: after a failure or a cancel that would read
/// `60% (0/5 stacks)`. A failed or cancelled stack adds nothing, whatever it had reached.
pub fn done_percent(model: &Model) -> u32 {
    let s = &model.summary;
    let running: u64 = model
        .stacks
        .iter()
        .filter(|stack| stack.status == StackState::Deploying)
        .map(|stack| u64::from(stack.progress_percent.min(99)))
        .sum();
    let total = u64::from(s.total_stacks.max(1));
    ((u64::from(s.done()) * 100 + running) / total).min(100) as u32
}

/// `11 deployed, 1 skipped, 2 failed`: the end-of-run counts (zeros left out but deployed).
pub fn counts(model: &Model) -> String {
    let s = &model.summary;
    let not_started = model
        .stacks
        .iter()
        .filter(|s| s.status == StackState::Pending && !s.rolled_back)
        .count() as u32;
    let rolled_back = model.stacks.iter().filter(|s| s.rolled_back).count() as u32;
    let mut counts = vec![format!("{} {}", s.deployed_stacks, done(model.operation))];
    for (n, what) in [
        (s.skipped_stacks, "skipped"),
        (s.failed_stacks, "failed"),
        (s.blocked_stacks, "blocked"),
        (rolled_back, "rolled back"),
        (not_started, "not started"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    counts.join(", ")
}

/// A stop in progress (Ctrl-C, a signal), as the views show it; a lost lock is no such stop
/// (running stacks finish).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopping {
    /// The second Ctrl-C: stacks are killed now.
    pub forced: bool,
    /// How long a stopping stack gets before it is killed.
    pub grace: Duration,
}

impl Stopping {
    /// The stop going on in the run `model` shows, if any.
    pub fn of(model: &Model) -> Option<Stopping> {
        Self::of_event(model.cancelling.as_ref()?)
    }

    /// The stop a `deployment_cancelling` event tells of, if it is one.
    pub fn of_event(e: &DeploymentCancelling) -> Option<Stopping> {
        (e.reason != StopReason::LockLost).then(|| Stopping {
            forced: e.forced,
            grace: Duration::from_secs_f64(e.grace_seconds.max(0.0)),
        })
    }
}

/// `Stopping: 2 stacks (api, db), waiting up to 10s (Ctrl-C again to force)`.
pub fn stopping_line(model: &Model, stopping: Stopping) -> String {
    let running: Vec<&str> = model.running().map(|s| s.name.as_str()).collect();
    let mut names = running
        .iter()
        .take(3)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if running.len() > 3 {
        names.push_str(", …");
    }
    match (stopping.forced, running.len()) {
        (_, 0) => "Stopping: no stack is running; finishing the record".to_owned(),
        (true, n) => format!(
            "Forced: killing {} ({names}) now",
            plural(n as u64, "stack")
        ),
        (false, n) => format!(
            "Stopping: {} ({names}), waiting up to {} (Ctrl-C again to force)",
            plural(n as u64, "stack"),
            format_duration(stopping.grace.as_secs_f64().ceil() as u64)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_seed() {
        assert_eq!(format_duration(45), "45s");
        assert_eq!(format_duration(330), "5m 30s");
        assert_eq!(format_duration(600), "10m");
        assert_eq!(format_duration(7500), "2h 5m");
        assert_eq!(format_eta(270), "~4m 30s");
        assert_eq!(format_eta(581), "~10m");
        assert_eq!(format_eta(601), "~11m");
        assert_eq!(plural(1u32, "stack"), "1 stack");
        assert_eq!(plural(0u32, "stack"), "0 stacks");
    }
}
