//! `--report FILE` and `--junit FILE`: the run's summary, written when it is over — as JSON
//! (per stack: status, start, end, duration, resources, error; a plan's actions, counts and
//! provisional reasons; where the time went: `timing`) and as JUnit XML, so that CI
//! systems show each stack as a test (failed stacks as failures; skipped, blocked and not
//! started ones as skipped). Folded from the events with the one reducer.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use serde_json::json;

use crate::bus::{Delivery, Handle, Inbox, Report, Sink};
use crate::event::{format_timestamp, StackState};
use crate::progress::Model;
use crate::words;

pub struct ReportSink {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
}

impl Sink for ReportSink {
    fn name(&self) -> String {
        "run report".into()
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        Handle::thread("report", move || {
            let mut model: Option<Model> = None;
            while let Some(item) = inbox.recv() {
                item.fold_into(&mut model);
            }
            let report = Report::ok("run report", 0);
            let Some(model) = model else {
                return report;
            };
            let outputs = [
                (self.json.as_ref(), summary_json(&model)),
                (self.junit.as_ref(), junit_xml(&model)),
            ];
            for (path, text) in outputs {
                if let Some(path) = path {
                    if let Err(e) = std::fs::write(path, text) {
                        inbox.warn(format!("cannot write {}: {e}", path.display()));
                    }
                }
            }
            report
        })
    }
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| json!(format_timestamp(&t)))
}

/// The run as one JSON document.
pub fn summary_json(model: &Model) -> String {
    let stacks: Vec<serde_json::Value> = model
        .stacks
        .iter()
        .map(|s| {
            let seconds = match (s.start_time, s.end_time) {
                (Some(a), Some(b)) => json!(crate::progress::seconds_between(a, b)),
                _ => serde_json::Value::Null,
            };
            json!({
                "name": s.name,
                "layer": s.layer,
                "status": status_word(model, s),
                "startTime": when(s.start_time),
                "endTime": when(s.end_time),
                "durationSeconds": seconds,
                "resources": {
                    "total": s.resources.total,
                    "created": s.resources.created,
                    "updated": s.resources.updated,
                    "deleted": s.resources.deleted,
                    "failed": s.resources.failed,
                },
                "error": s.error,
                "blockedBy": s.blocked_by,
                "skipReason": s.skip_reason,
                // Attempts made (1 unless a transient error was retried), and each failed one.
                "attempts": s.attempts(),
                "retries": s.retry.as_deref().map_or_else(Vec::new, |r| {
                    r.failed.iter().map(words::attempt_failed).collect::<Vec<_>>()
                }),
                // A plan: its resources with their actions, counts, provisional reasons.
                "plan": s.plan,
                // A drift check: its health and drifted resources with their attributes.
                "drift": s.drift,
            })
        })
        .collect();
    let count = |state: StackState| model.stacks.iter().filter(|s| s.status == state).count();
    let doc = json!({
        "deploymentId": model.deployment_id,
        "environment": model.environment,
        "runId": model.run_id,
        "operation": model.operation,
        "status": model.status,
        "cancelled": model.cancelled,
        "startTime": when(model.start_time),
        "endTime": when(model.end_time),
        "durationSeconds": model.metrics.duration_seconds,
        "summary": {
            "totalStacks": model.stacks.len(),
            "deployedStacks": count(StackState::Deployed),
            "skippedStacks": count(StackState::Skipped),
            "failedStacks": count(StackState::Failed),
            "blockedStacks": count(StackState::Blocked),
            "notStartedStacks": model.stacks.iter().filter(|s| s.status == StackState::Pending && !s.rolled_back).count(),
            "rolledBackStacks": model.stacks.iter().filter(|s| s.rolled_back).count(),
        },
        "stacks": stacks,
        // Where the time went: the critical path with what each stack on it cost, the wall
        // time against the limit, every stack's span (`timing::Timing`).
        "timing": crate::timing::json(model, model.end_time.unwrap_or_default()),
    });
    let mut doc = doc;
    if model.operation == crate::event::Operation::Plan {
        doc["planTotals"] = json!(model.plan_totals);
    }
    if model.operation == crate::event::Operation::Drift {
        doc["driftTotals"] = json!(model.drift_totals);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn status_word(model: &Model, s: &crate::progress::StackModel) -> &'static str {
    match s.status {
        StackState::Pending if s.rolled_back => "rolled_back",
        StackState::Pending if model.is_finished() => "not_started",
        state => state.as_str(),
    }
}

/// The run as JUnit XML: one test case per stack.
pub fn junit_xml(model: &Model) -> String {
    let suite = format!("{}-{}", model.deployment_id, model.environment);
    let failures = model
        .stacks
        .iter()
        .filter(|s| s.status == StackState::Failed)
        .count();
    let skipped = model
        .stacks
        .iter()
        .filter(|s| !matches!(s.status, StackState::Failed | StackState::Deployed))
        .count();
    let total = model.metrics.duration_seconds;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"cloud {} {suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total}\">",
        model.operation.as_str(),
        model.stacks.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total}\" timestamp=\"{}\">",
        escape(&suite),
        model.stacks.len(),
        model.start_time.map(|t| format_timestamp(&t)).unwrap_or_default()
    );
    for s in &model.stacks {
        let seconds = match (s.start_time, s.end_time) {
            (Some(a), Some(b)) => crate::progress::seconds_between(a, b),
            _ => 0.0,
        };
        let _ = write!(
            xml,
            "    <testcase classname=\"{}.layer{}\" name=\"{}\" time=\"{seconds:.3}\"",
            escape(&suite),
            s.layer,
            escape(&s.name)
        );
        let mut inner = match s.status {
            StackState::Deployed => None,
            StackState::Failed => Some(match &s.error {
                Some(e) => format!(
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                    escape(e.code.as_str()),
                    escape(&e.message),
                    escape(e.details.as_deref().unwrap_or(&e.message))
                ),
                None => "      <failure message=\"failed\"/>\n".to_owned(),
            }),
            StackState::Skipped => Some(format!(
                "      <skipped message=\"skipped: {}\"/>\n",
                words::skipped_because(s.skip_reason)
            )),
            StackState::Blocked => Some(format!(
                "      <skipped message=\"blocked by {}\"/>\n",
                escape(words::blocker(s))
            )),
            _ => Some(format!(
                "      <skipped message=\"{}\"/>\n",
                status_word(model, s).replace('_', " ")
            )),
        };
        // Retried: every attempt is noted (a stack that succeeded on a later one passes).
        if let Some(retry) = &s.retry {
            let failed: Vec<String> = retry.failed.iter().map(words::attempt_failed).collect();
            let mut notes = failed.join("\n");
            if s.status == StackState::Deployed {
                let done = words::done(model.operation);
                let last =
                    words::succeeded_on_retry(done, retry.attempt, retry.attempts, &retry.pattern);
                notes = format!("{notes}\n{last}");
            }
            let out = format!("      <system-out>{}</system-out>\n", escape(&notes));
            inner = Some(inner.unwrap_or_default() + &out);
        }
        match inner {
            None => xml.push_str("/>\n"),
            Some(inner) => {
                xml.push_str(">\n");
                xml.push_str(&inner);
                xml.push_str("    </testcase>\n");
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Text for XML attributes and content; characters XML cannot hold are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {}
            c => out.push(c),
        }
    }
    out
}
