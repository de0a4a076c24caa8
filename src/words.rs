//! The one place for words: what every view, the file log, CloudWatch, `cloud events`, the
//! report and the notifications say the same way — durations, estimates, plurals, what an
//! operation is called, an event as a sentence ([`describe`]), why a stack was skipped, blocked
//! or not started, the progress line and the end-of-run counts. A view lays its lines out;
//! the phrases come from here (the seed's exact phrases where it gives them).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::{
    DeploymentCancelling, DeploymentState, DriftStatus, Event, EventData, LogLevel, Operation,
    PlanAction, PlanCounts, ResourceDrifted, ResourceEvent, ResourceState, SkipReason,
    StackDeployed, StackDriftChecked, StackState, StopReason,
};
use crate::progress::{Model, Progress, StackDrift, StackModel, StackPlan};

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
        Operation::Plan => "Planning",
        Operation::Drift => "Checking",
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
        Operation::Plan => "Plan",
        Operation::Drift => "Drift check",
    }
}

/// The level of an event and what it says, in words (without time, level or stack).
pub fn describe(event: &Event) -> (LogLevel, String) {
    use LogLevel::{Debug, Error, Info, Warn};
    let id = || format!("{}-{}", event.deployment_id, event.environment);
    match &event.data {
        EventData::DeploymentStarted(e) => {
            let mut text = format!(
                "{} started: {} ({}, {} layers",
                run_name(e.operation),
                id(),
                plural(e.total_stacks, "stack"),
                e.total_layers
            );
            if let Some(p) = e.parallelism {
                text.push_str(&format!(", up to {p} at once"));
            }
            text.push_str(&format!(", run {}", e.run_id));
            if let Some(user) = &e.user {
                text.push_str(&format!(", by {user}"));
            }
            text.push(')');
            (Info, text)
        }
        EventData::DeploymentProgress(e) => {
            let mut text = match Progress::of_event(e) {
                Some(p) => format!("Progress: {}", progress(&p)),
                // A record older than the counts.
                None => format!(
                    "Progress: {}% ({} deployed)",
                    e.progress_percent,
                    plural(e.deployed_stacks, "stack")
                ),
            };
            if let Some(eta) = e.estimated_time_remaining {
                text.push_str(&format!(", ETA ~{}", format_duration(eta)));
            }
            (Debug, text)
        }
        EventData::DeploymentComplete(e) => {
            let counts = format!(
                "{} deployed, {} skipped, {} failed, {} blocked",
                e.deployed_stacks, e.skipped_stacks, e.failed_stacks, e.blocked_stacks
            );
            let took = format_duration(e.duration_seconds);
            if e.status == DeploymentState::Deployed && !e.cancelled {
                (
                    Info,
                    format!(
                        "Complete: {} {} in {took} ({counts})",
                        id(),
                        e.status.as_str()
                    ),
                )
            } else if e.cancelled {
                (
                    Error,
                    format!("Cancelled: {} after {took} ({counts})", id()),
                )
            } else {
                (
                    Error,
                    format!(
                        "Complete: {} {} after {took} ({counts})",
                        id(),
                        e.status.as_str()
                    ),
                )
            }
        }
        EventData::DeploymentCancelling(e) => {
            let why = match e.reason {
                StopReason::Interrupt => "interrupted (Ctrl-C)",
                StopReason::Signal => "a signal (SIGTERM or SIGHUP)",
                StopReason::LockLost => "the run's lock was lost",
            };
            let what = if e.forced {
                "killing the running stacks now".to_owned()
            } else if e.reason == StopReason::LockLost {
                "starting no more stacks; running ones finish".to_owned()
            } else {
                format!(
                    "running stacks get up to {} to stop",
                    format_duration(e.grace_seconds.ceil() as u64)
                )
            };
            let mut text = format!("Stopping {}: {why}; {what}", id());
            if let Some(message) = &e.message {
                text.push_str(&format!(" ({message})"));
            }
            (Warn, text)
        }
        EventData::DeploymentFailed(e) => {
            // A stack's error was told by its `stack_failed` line: said once.
            let mut text = if e.failed_stacks.is_empty() {
                format!("Failed: {}: {}", e.error.code, e.error.message)
            } else {
                format!("Failed: {}", e.failed_stacks.join(", "))
            };
            if let Some(layer) = e.layer {
                text.push_str(&format!(" (layer {layer})"));
            }
            if !e.blocked_stacks.is_empty() {
                text.push_str(&format!("; blocked: {}", e.blocked_stacks.join(", ")));
            }
            (Error, text)
        }
        EventData::LayerStarted(e) => (
            Info,
            format!(
                "Layer {}/{} started: {}",
                e.layer,
                e.total_layers,
                e.stacks.join(", ")
            ),
        ),
        EventData::LayerComplete(e) => (
            if e.failed_stacks > 0 { Warn } else { Info },
            format!(
                "Layer {} complete in {}: {} deployed, {} skipped, {} failed, {} blocked",
                e.layer,
                format_duration(e.duration_seconds),
                e.deployed_stacks,
                e.skipped_stacks,
                e.failed_stacks,
                e.blocked_stacks
            ),
        ),
        EventData::StackDeploying(e) => {
            let after = if e.dependencies.is_empty() {
                String::new()
            } else {
                format!(", after {}", e.dependencies.join(", "))
            };
            (Info, format!("Deploying (layer {}{after})", e.layer))
        }
        EventData::StackProgress(e) => {
            let mut text = format!("{}%", e.progress_percent);
            if let Some(m) = &e.message {
                text.push_str(&format!(": {m}"));
            }
            if let Some(r) = &e.current_resource {
                text.push_str(&format!(" ({r})"));
            }
            (Debug, text)
        }
        EventData::StackDeployed(e) => {
            let mut text = format!(
                "Deployed in {} ({} created, {} updated{})",
                format_duration(e.duration_seconds),
                plural(e.resources_created, "resource"),
                e.resources_updated,
                replaced_destroyed(e)
            );
            if !e.outputs.is_empty() {
                let keys: Vec<&str> = e.outputs.keys().map(String::as_str).collect();
                text.push_str(&format!("; outputs: {}", keys.join(", ")));
            }
            (Info, text)
        }
        EventData::StackFailed(e) => {
            let mut text = format!(
                "Failed after {}: {}: {}",
                format_duration(e.duration_seconds),
                e.error.code,
                e.error.message
            );
            if let Some(details) = &e.error.details {
                text.push('\n');
                text.push_str(details);
            }
            (Error, text)
        }
        EventData::StackSkipped(e) => (
            // Smart skip is the expected outcome of an unchanged stack, not a warning.
            Info,
            format!("Skipped: {}", skipped_because(Some(e.reason))),
        ),
        EventData::StackBlocked(e) => (Warn, format!("Blocked: {} failed", e.blocked_by)),
        EventData::ResourcePlanned(e) => (
            if e.destructive { Warn } else { Info },
            format!("Plan: {}{}", planned(e), planned_drift(e)),
        ),
        EventData::StackPlanned(e) => {
            let mut text = match &e.no_preview {
                Some(why) => format!("Planned: {NO_PREVIEW} ({why})"),
                None => format!(
                    "Planned in {}: {}",
                    format_duration(e.duration_seconds),
                    plan_counts(&e.plan.counts)
                ),
            };
            if !e.provisional.is_empty() {
                text.push_str(&format!("; {}", provisional(&e.provisional)));
            }
            (Info, text)
        }
        EventData::ResourceDrifted(e) => (Warn, format!("Drifted: {}", drifted_resource(e))),
        EventData::StackDriftChecked(e) => match e.status {
            DriftStatus::InSync => (
                Info,
                format!(
                    "In sync (checked in {})",
                    format_duration(e.duration_seconds)
                ),
            ),
            DriftStatus::Drifted => (Warn, format!("Drifted: {}", stack_drift(e))),
            DriftStatus::Unknown => (
                Info,
                format!(
                    "Drift unknown: {}",
                    e.reason.as_deref().unwrap_or("not checked")
                ),
            ),
        },
        EventData::StackLog(e) => (e.level, e.message.clone()),
        EventData::StackRetrying(e) => (
            Warn,
            retry_line(
                e.attempt,
                e.attempts,
                e.delay_seconds.ceil() as u64,
                &e.error.message,
            ),
        ),
        EventData::StackDestroying(e) => (Info, format!("Destroying (layer {})", e.layer)),
        EventData::StackDestroyed(e) => (
            Info,
            format!(
                "Destroyed in {} ({} deleted)",
                format_duration(e.duration_seconds),
                plural(e.resources_deleted, "resource")
            ),
        ),
        EventData::RollbackStarted(e) => {
            let mut text = format!("Rolling back: {}", e.stacks.join(", "));
            if let Some(r) = &e.reason {
                text.push_str(&format!(" ({r})"));
            }
            (Warn, text)
        }
        EventData::RollbackComplete(e) => (
            if e.status == DeploymentState::RolledBack {
                Info
            } else {
                Error
            },
            format!(
                "Rollback {} in {}: {}",
                e.status.as_str(),
                format_duration(e.duration_seconds),
                e.rolled_back_stacks.join(", ")
            ),
        ),
        other => match other.as_resource() {
            Some((state, r)) => describe_resource(state, r),
            None => (Debug, other.type_name().to_owned()),
        },
    }
}

/// `, 1 replaced, 2 destroyed`: what a deploy replaced and destroyed, when it did.
pub fn replaced_destroyed(e: &StackDeployed) -> String {
    [
        (e.resources_replaced, "replaced"),
        (e.resources_deleted, "destroyed"),
    ]
    .iter()
    .filter_map(|(n, what)| n.filter(|n| *n > 0).map(|n| format!(", {n} {what}")))
    .collect()
}

/// What a stack deployed changed: `3 resources`, or with replacements or destroys each kind
/// (`1 created, 1 replaced`, `1 destroyed`).
pub fn deployed_resources(e: &StackDeployed) -> String {
    let others = replaced_destroyed(e);
    if others.is_empty() {
        return plural(e.resources_created + e.resources_updated, "resource");
    }
    let mut text = String::new();
    for (n, what) in [
        (e.resources_created, "created"),
        (e.resources_updated, "updated"),
    ] {
        if n > 0 {
            text.push_str(&format!(", {n} {what}"));
        }
    }
    text.push_str(&others);
    text.trim_start_matches(", ").to_owned()
}

/// `terraform_data.x: input changed ("a" → "b"), tags.Owner changed`, `aws_s3_bucket.logs:
/// deleted outside`: a drifted resource and what changed (sensitive values never shown).
pub fn drifted_resource(e: &ResourceDrifted) -> String {
    let label = e
        .resource
        .address
        .clone()
        .unwrap_or_else(|| e.resource.label());
    if e.action == PlanAction::Delete {
        return format!("{label}: deleted outside");
    }
    if e.attributes.is_empty() {
        return format!("{label}: changed outside");
    }
    let attrs: Vec<String> = e
        .attributes
        .iter()
        .map(|a| match (&a.before, &a.after, a.sensitive) {
            (_, _, true) => format!("{} changed (sensitive)", a.name),
            (Some(before), Some(after), false) => format!(
                "{} changed ({} → {})",
                a.name,
                short_value(before),
                short_value(after)
            ),
            (None, Some(after), false) => format!("{} now {}", a.name, short_value(after)),
            _ => format!("{} changed", a.name),
        })
        .collect();
    format!("{label}: {}", attrs.join(", "))
}

/// A value as a drift line shows it: JSON, cut at 60 characters.
fn short_value(v: &serde_json::Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// `2 resources (since 2026-12-04 05:00 UTC)`: what a drifted stack's check found.
pub fn stack_drift(e: &StackDriftChecked) -> String {
    let mut text = plural(e.drifted_resources, "resource");
    if let Some(since) = e.drifted_since {
        text.push_str(&format!(" (since {})", since.format("%Y-%m-%d %H:%M UTC")));
    }
    text
}

/// `1 stack drifted (security: 1 resource); 10 in sync; 1 unknown`: a drift check's
/// findings in a line.
pub fn drift_totals(model: &Model) -> String {
    let t = &model.drift_totals;
    let mut parts = Vec::new();
    if t.drifted > 0 {
        let names: Vec<String> = model
            .stacks
            .iter()
            .filter_map(|s| {
                let d = s.drift.as_deref()?;
                (d.status == Some(DriftStatus::Drifted))
                    .then(|| format!("{}: {}", s.name, plural(d.resources.len(), "resource")))
            })
            .collect();
        parts.push(format!(
            "{} drifted ({})",
            plural(t.drifted, "stack"),
            names.join(", ")
        ));
    }
    parts.push(format!("{} in sync", t.in_sync));
    if t.unknown > 0 {
        parts.push(format!("{} unknown", t.unknown));
    }
    parts.join("; ")
}

/// What a stack's drift check found: `in sync`, `drifted: 2 resources (since …)`,
/// `unknown: <why>`, or `checking` before it ends.
pub fn drift_found(d: &StackDrift) -> String {
    match d.status {
        None => "checking".to_owned(),
        Some(DriftStatus::InSync) => "in sync".to_owned(),
        Some(DriftStatus::Drifted) => {
            let mut text = format!("drifted: {}", plural(d.resources.len(), "resource"));
            if let Some(since) = d.since {
                text.push_str(&format!(" (since {})", since.format("%Y-%m-%d %H:%M UTC")));
            }
            text
        }
        Some(DriftStatus::Unknown) => {
            format!("unknown: {}", d.reason.as_deref().unwrap_or("not checked"))
        }
    }
}

/// A drift check's stack that was never deployed here.
pub const NOT_DEPLOYED: &str = "not deployed";

/// What a stack that was not previewed is: a deploy runs it all the same.
pub const NO_PREVIEW: &str = "no preview (will run)";

/// How a stack a plan leaves alone is shown: `unchanged (would skip)`, `not selected`.
pub fn would_skip(reason: Option<SkipReason>) -> &'static str {
    match reason {
        Some(SkipReason::NotSelected) => "not selected",
        Some(SkipReason::NotDeployed) => NOT_DEPLOYED,
        Some(SkipReason::Unchanged) | None => "unchanged (would skip)",
    }
}

/// `+3 to add, ~1 to change, -1 to destroy, ±1 to replace`, and moves and imports when any.
pub fn plan_counts(c: &PlanCounts) -> String {
    let mut text = format!(
        "+{} to add, ~{} to change, -{} to destroy, ±{} to replace",
        c.add, c.change, c.destroy, c.replace
    );
    if c.moved > 0 {
        text.push_str(&format!(", →{} to move", c.moved));
    }
    if c.import > 0 {
        text.push_str(&format!(", ⇐{} to import", c.import));
    }
    text
}

/// The mark of an action: `+` create, `~` update, `-` delete, `±` replace, `→` move, `⇐` import.
pub fn plan_mark(action: PlanAction) -> &'static str {
    match action {
        PlanAction::Create => "+",
        PlanAction::Update => "~",
        PlanAction::Delete => "-",
        PlanAction::Replace => "±",
        PlanAction::Move => "→",
        PlanAction::Import => "⇐",
        PlanAction::Read => "<=",
        PlanAction::NoOp => "=",
    }
}

/// What marks a destructive change (a delete or a replace) where colour may not show.
pub const DESTRUCTIVE: &str = "(destructive)";

/// `- delete aws_s3_bucket.old (destructive)`: one resource of a plan.
pub fn planned_resource(action: PlanAction, what: &str) -> String {
    let mut text = format!("{} {} {what}", plan_mark(action), action.as_str());
    if action.is_destructive() {
        text.push_str(&format!(" {DESTRUCTIVE}"));
    }
    text
}

/// One planned resource, by its address where the tool gives one.
pub fn planned(e: &crate::event::ResourcePlanned) -> String {
    let what = e
        .resource
        .address
        .clone()
        .unwrap_or_else(|| e.resource.label());
    planned_resource(e.action, &what)
}

/// What follows a planned resource that the tool found changed outside it.
pub const DRIFT: &str = " (changed outside the tool)";

/// [`DRIFT`] when the tool found the resource changed outside it.
pub fn planned_drift(e: &crate::event::ResourcePlanned) -> &'static str {
    if e.drift {
        DRIFT
    } else {
        ""
    }
}

/// `provisional: depends on db.endpoint (known after apply), …`
pub fn provisional(reasons: &[String]) -> String {
    format!("provisional: {}", reasons.join(", "))
}

/// What a stack's plan says in one line: its counts (marked when destructive), `no changes`,
/// or `no preview (will run)`.
pub fn stack_plan(plan: &StackPlan) -> String {
    if plan.no_preview.is_some() {
        return NO_PREVIEW.to_owned();
    }
    if !plan.counts.any() && !plan.changes {
        return "no changes".to_owned();
    }
    let mut text = plan_counts(&plan.counts);
    if !plan.counts.any() {
        text = "outputs change only".to_owned();
    }
    if plan.destructive() {
        text.push_str(&format!(" {DESTRUCTIVE}"));
    }
    text
}

/// A resource's event in words: `Created: aws:ec2/vpc:Vpc (main-vpc) id vpc-abc (5s)`.
fn describe_resource(state: ResourceState, r: &ResourceEvent) -> (LogLevel, String) {
    use LogLevel::{Debug, Error, Info};
    use ResourceState as R;
    let what = r.resource.label();
    let took = r
        .duration_seconds
        .map(|s| format!(" ({})", format_duration(s.round() as u64)))
        .unwrap_or_default();
    let id = r
        .resource
        .id
        .as_deref()
        .map(|i| format!(" id {i}"))
        .unwrap_or_default();
    match state {
        R::Creating | R::Updating | R::Deleting => {
            let verb = match state {
                R::Creating => "Creating",
                R::Updating => "Updating",
                _ => "Deleting",
            };
            (Debug, format!("{verb}: {what} {}", r.resource.urn))
        }
        R::Created => (Info, format!("Created: {what}{id}{took}")),
        R::Updated if r.action == Some(PlanAction::Replace) => {
            (Info, format!("Replaced: {what}{id}{took}"))
        }
        R::Updated => (Info, format!("Updated: {what}{id}{took}")),
        R::Deleted => (Info, format!("Deleted: {what}{took}")),
        R::Failed => {
            let why = r
                .error
                .as_ref()
                .map(|e| format!(": {}: {}", e.code, e.message))
                .unwrap_or_default();
            (Error, format!("Resource failed: {what}{why}"))
        }
    }
}

/// Why a stack was skipped, in a line's few words: `unchanged`, `not selected`. A skip
/// without a reason (a record older than reasons) was a smart skip.
pub fn skip_reason(reason: Option<SkipReason>) -> &'static str {
    match reason {
        Some(SkipReason::NotSelected) => "not selected",
        Some(SkipReason::NotDeployed) => NOT_DEPLOYED,
        Some(SkipReason::Unchanged) | None => "unchanged",
    }
}

/// Why a stack was skipped, in full: `unchanged since its last deploy`, `not selected`.
pub fn skipped_because(reason: Option<SkipReason>) -> &'static str {
    match reason {
        Some(SkipReason::NotSelected) => "not selected",
        Some(SkipReason::NotDeployed) => "never deployed here: nothing to compare",
        Some(SkipReason::Unchanged) | None => "unchanged since its last deploy",
    }
}

/// The failed stack that blocks `stack`: its name, or `a failed dependency` (a record that
/// did not say).
pub fn blocker(stack: &StackModel) -> &str {
    stack.blocked_by.as_deref().unwrap_or("a failed dependency")
}

/// Why a pending stack has not started: `waiting` while the run goes on, `not started` (or
/// `not started: cancelled`) once it ended.
pub fn pending_reason(model: &Model) -> &'static str {
    match (model.is_finished(), model.cancelled) {
        (true, true) => "not started: cancelled",
        (true, false) => "not started",
        _ => "waiting",
    }
}

/// `creating terraform_data.cert (6s) +2 more`: the resources a running stack has in flight,
/// the longest-running named, for every executor (they all send resource events).
pub fn in_flight(stack: &StackModel, now: DateTime<Utc>) -> Option<String> {
    let flying = stack.in_flight();
    let first = flying.first()?;
    let took = crate::progress::seconds_between(first.start_time, now) as u64;
    let mut text = format!(
        "{} {} ({})",
        first.status.as_str(),
        first.label(),
        format_duration(took)
    );
    if flying.len() > 1 {
        text.push_str(&format!(" +{} more", flying.len() - 1));
    }
    Some(text)
}

/// `waiting for 2/5: database-rds, secrets`: what a pending stack still waits for, of all it
/// depends on (a destroy: the stacks that depend on it); `waiting for one of 2 slots` when
/// it waits only for the parallelism limit. `None` for a stack that is not pending, a run that
/// ended, or one about to start.
pub fn waiting_for(model: &Model, stack: &StackModel) -> Option<String> {
    if stack.status != StackState::Pending || stack.rolled_back || model.is_finished() {
        return None;
    }
    let left = model.waiting_for(&stack.name);
    if left.is_empty() {
        return (model.parallelism).map(|n| format!("waiting for one of {n} slots"));
    }
    let of = match model.operation {
        Operation::Destroy => (model.stacks.iter())
            .filter(|d| d.dependencies.contains(&stack.name))
            .count(),
        _ => stack.dependencies.len(),
    };
    Some(format!(
        "waiting for {}/{of}: {}",
        left.len(),
        left.join(", ")
    ))
}

/// `14s over its usual 6s`: a running stack past its expected duration (its recent median),
/// once it is past by more than the noise (a second, or a tenth of it).
pub fn over_usual(stack: &StackModel, now: DateTime<Utc>) -> Option<String> {
    let usual = stack.estimated_seconds;
    if stack.status != StackState::Deploying || usual <= 0.0 || stack.retry.is_some() {
        return None;
    }
    let over = stack.elapsed(now) - usual;
    (over >= (0.1 * usual).max(1.0)).then(|| {
        format!(
            "{} over its usual {}",
            format_duration(over.round() as u64),
            format_duration(usual.round().max(1.0) as u64)
        )
    })
}

/// `Waiting on: network → database-rds → api (ETA ~4m)`: the chain of unfinished stacks the
/// run's ETA hangs on (`Model::critical_path`). `None` when there is none, or once the run
/// ended or is stopping.
pub fn waiting_on(model: &Model, now: DateTime<Utc>) -> Option<String> {
    if model.critical_path.is_empty() || model.is_finished() || model.stop_asked() {
        return None;
    }
    // A long chain: where it is now, and where it ends.
    let path = &model.critical_path;
    let chain = match path.len() {
        0..=6 => path.join(" → "),
        n => format!(
            "{} → … ({} more) → {}",
            path[..3].join(" → "),
            n - 5,
            path[n - 2..].join(" → ")
        ),
    };
    let mut line = format!("Waiting on: {chain}");
    if !model.operation.changes_nothing() {
        if let Some(eta) = model.eta(now).filter(|&eta| eta > 0) {
            line.push_str(&format!(" (ETA {})", format_eta(eta)));
        }
    }
    Some(line)
}

/// `↻ retry 2/3 in 8s: ThrottlingException: Rate exceeded`: a stack waiting to try again
/// (`in` is the wait left, in seconds).
pub fn retry_line(attempt: u32, attempts: u32, seconds: u64, error: &str) -> String {
    let first_line = error.lines().next().unwrap_or_default();
    format!("↻ retry {attempt}/{attempts} in {seconds}s: {first_line}")
}

/// A stack's retry as it stands at `now`: waiting (`↻ retry 2/3 in 8s: …`), or running its
/// later attempt (`↻ attempt 2/3`); `None` on its first.
pub fn retry_now(stack: &StackModel, now: DateTime<Utc>) -> Option<String> {
    let retry = stack.retry.as_deref()?;
    if now < retry.next_at {
        let left = (retry.next_at - now).num_milliseconds().max(0) as u64;
        return Some(retry_line(
            retry.attempt,
            retry.attempts,
            left.div_ceil(1000),
            &retry.error,
        ));
    }
    Some(format!("↻ attempt {}/{}", retry.attempt, retry.attempts))
}

/// `attempt 1 of 3 failed (ThrottlingException): ThrottlingException: Rate exceeded; retried
/// after 8s`: one failed attempt of a stack, for reports.
pub fn attempt_failed(e: &crate::event::StackRetrying) -> String {
    format!(
        "attempt {} of {} failed ({}): {}; retried after {}s",
        e.attempt - 1,
        e.attempts,
        e.pattern,
        e.error.message.lines().next().unwrap_or_default(),
        e.delay_seconds
    )
}

/// `deployed on attempt 3 of 3 after ThrottlingException`: the warning of a stack that
/// succeeded once retried.
pub fn succeeded_on_retry(done: &str, attempt: u32, attempts: u32, pattern: &str) -> String {
    format!("{done} on attempt {attempt} of {attempts} after {pattern}")
}

/// The last error of a stack that was retried, saying how many attempts were made.
pub fn failed_on_retry(message: &str, attempt: u32, attempts: u32) -> String {
    format!("{message} (failed on attempt {attempt} of {attempts})")
}

/// What a running stack is doing now: waiting to retry, else its resources in flight, else the
/// executor's last message (`Refreshing state...`), which may be older than the resources that
/// followed it. A later attempt says so before what it does.
pub fn doing_now(stack: &StackModel, now: DateTime<Utc>) -> Option<String> {
    match retry_now(stack, now) {
        Some(waiting) if stack.retry.as_deref().is_some_and(|r| now < r.next_at) => {
            return Some(waiting)
        }
        Some(attempt) => {
            let doing = in_flight(stack, now)
                .or_else(|| stack.message.clone())
                .or_else(|| stack.current_resource.clone());
            return Some(match doing {
                Some(doing) => format!("{attempt}: {doing}"),
                None => attempt,
            });
        }
        None => {}
    }
    in_flight(stack, now)
        .or_else(|| stack.message.clone())
        .or_else(|| stack.current_resource.clone())
}

/// `Deploying D1BRV40-dev...`: the run named as every other line names it (`<ID>-<env>`).
pub fn header(model: &Model) -> String {
    let target = format!("{}-{}", model.deployment_id, model.environment);
    match model.operation {
        Operation::Deploy => format!("Deploying {target}..."),
        Operation::Destroy => format!("Destroying {target}..."),
        Operation::Rollback => format!("Rolling back {target}..."),
        Operation::Plan => format!("Planning {target}..."),
        Operation::Drift => format!("Checking {target} for drift..."),
    }
}

/// `Progress: 35% (4/12 stacks deployed) | Elapsed: 5m 30s | ETA: ~10m`.
pub fn progress_line(model: &Model, now: DateTime<Utc>) -> String {
    let mut line = format!(
        "Progress: {} | Elapsed: {}",
        progress(&model.progress()),
        format_duration(model.elapsed(now).round() as u64)
    );
    // A plan's estimate would be its deploy's, and a stopping run's would be the rest of a
    // run that is not going on: no ETA rather than a wrong one.
    if !model.is_finished() && !model.operation.changes_nothing() && !model.stop_asked() {
        if let Some(eta) = model.eta(now).filter(|&eta| eta > 0) {
            line.push_str(&format!(" | ETA: {}", format_eta(eta)));
        }
    }
    line
}

/// `35% (4/12 stacks deployed)`, `83% (10/12 stacks: 1 deployed, 7 skipped, 2 failed)`,
/// `60% (3/5 stacks: 1 deployed, 2 failed; 2 not started)`: a run's progress as
/// [`crate::progress::Progress`] defines it, in every view and the file log.
pub fn progress(p: &Progress) -> String {
    let t = &p.stacks;
    let mut kinds: Vec<(u32, &str)> = Vec::new();
    for (n, what) in [
        (t.done, done(p.operation)),
        (t.skipped, "skipped"),
        (t.failed, "failed"),
        (t.blocked, "blocked"),
        (t.rolled_back, "rolled back"),
    ] {
        // A rollback's done stacks and rolled-back ones are one kind.
        match kinds.iter_mut().find(|(_, w)| *w == what) {
            Some((m, _)) => *m += n,
            None if n > 0 => kinds.push((n, what)),
            None => {}
        }
    }
    let settled = t.settled();
    let mut text = format!("{}% ({settled}/{} stacks", p.percent, t.total);
    // What the settled stacks are: one word when they are all alike, else a list that adds up.
    match kinds.as_slice() {
        [] => {}
        [(_, what)] => text.push_str(&format!(" {what}")),
        _ => {
            let list: Vec<String> = kinds.iter().map(|(n, w)| format!("{n} {w}")).collect();
            text.push_str(&format!(": {}", list.join(", ")));
        }
    }
    if t.not_started > 0 {
        text.push_str(&format!("; {} not started", t.not_started));
    }
    text.push(')');
    text
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

    #[test]
    fn progress_counts_say_what_the_settled_stacks_are() {
        use crate::event::StackTally;
        let said = |operation, stacks| {
            progress(&Progress {
                percent: 60,
                operation,
                stacks,
            })
        };
        let tally = |done, failed, rolled_back, not_started| StackTally {
            total: 5,
            done,
            failed,
            rolled_back,
            not_started,
            ..StackTally::default()
        };
        assert_eq!(
            said(Operation::Deploy, tally(0, 0, 0, 0)),
            "60% (0/5 stacks)"
        );
        assert_eq!(
            said(Operation::Destroy, tally(3, 0, 0, 0)),
            "60% (3/5 stacks destroyed)"
        );
        assert_eq!(
            said(Operation::Deploy, tally(1, 2, 0, 2)),
            "60% (3/5 stacks: 1 deployed, 2 failed; 2 not started)"
        );
        assert_eq!(
            said(Operation::Rollback, tally(1, 0, 2, 0)),
            "60% (3/5 stacks rolled back)"
        );
    }

    #[test]
    fn events_are_said_at_the_seeds_levels() {
        use crate::event::{StackBlocked, StackSkipped};
        let event = |data| Event {
            sequence: 1,
            timestamp: "2025-10-09T14:30:05.120Z".parse().unwrap(),
            deployment_id: "D1".into(),
            environment: "dev".into(),
            data,
        };
        let skipped = |reason| {
            describe(&event(EventData::StackSkipped(StackSkipped {
                stack: "net".into(),
                reason,
                outputs: Default::default(),
            })))
        };
        assert_eq!(
            skipped(SkipReason::Unchanged),
            (
                // A smart skip is what an unchanged stack should do: not a warning.
                LogLevel::Info,
                "Skipped: unchanged since its last deploy".into()
            )
        );
        assert_eq!(
            skipped(SkipReason::NotSelected),
            (LogLevel::Info, "Skipped: not selected".into())
        );
        let blocked = event(EventData::StackBlocked(StackBlocked {
            stack: "app".into(),
            blocked_by: "net".into(),
        }));
        assert_eq!(
            describe(&blocked),
            (LogLevel::Warn, "Blocked: net failed".into())
        );
    }
}
