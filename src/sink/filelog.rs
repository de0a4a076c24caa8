//! The file log: every event of a run as one readable line with its level, in
//! `cloud/deploy/<ID>/logs/deploy-<env>-YYYY-MM-DD-HH-MM.log` (UTC, the run's start).
//!
//! One file per run, never overwritten: the file is created exclusively, and a second run in
//! the same minute gets `…-HH-MM-2.log`, then `-3`, and so on. Lines read
//! `2025-10-09T14:30:05.120Z INFO  [network] Deployed in 2m (8 resources)`; text of several
//! lines (a failure's details) continues on lines indented by four spaces. The first line
//! (`# cloud …`) names the run, the last (`# end of run …`) says it ended, which is how
//! `cloud logs --follow` knows when to stop.
//!
//! Levels follow the seed's table: DEBUG for diagnostics (progress ticks, resources in
//! flight with their URNs), INFO for progress (a stack deployed, a layer complete), WARN for
//! what was handled (smart skip, blocked stacks, executor warnings, retries), ERROR for
//! failures. The executors' output is in it as their `stack_log` lines.
//!
//! tracing-appender was considered: its rolling appender names files by period and appends
//! to an existing one, which cannot give one never-overwritten file per run, and its
//! non-blocking writer is what this sink's own thread already is.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::bus::{Delivery, Empty, Handle, Inbox, Item, Note, Notes, Report, Sink, NOTES_MARGIN};
use crate::event::{format_timestamp, DeploymentState, Event, EventData, LogLevel, SkipReason};
use crate::view::words::{format_duration, plural};

/// The longest a line waits in the buffer before it reaches the file (`--follow` reads it).
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often the inbox is looked at when it was empty.
const POLL: Duration = Duration::from_millis(10);
/// The last line of a file whose run ended.
pub const END_MARK: &str = "# end of run";

/// Where the file logs of a deployment live.
pub fn dir(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("logs")
}

/// `deploy-dev-2025-10-09-14-30.log`, or with `-N` before `.log` for the N-th run of that
/// minute.
pub fn file_name(kind: &str, environment: &str, start: DateTime<Utc>, n: u32) -> String {
    let minute = start.format("%Y-%m-%d-%H-%M");
    if n <= 1 {
        format!("{kind}-{environment}-{minute}.log")
    } else {
        format!("{kind}-{environment}-{minute}-{n}.log")
    }
}

/// The order of a file log of `environment` among the others (start minute, then N), or
/// `None` when `name` is not one.
pub fn sort_key(name: &str, environment: &str) -> Option<(String, u32)> {
    let rest = ["deploy", "destroy", "rollback"]
        .iter()
        .find_map(|kind| name.strip_prefix(&format!("{kind}-{environment}-")))?;
    let rest = rest.strip_suffix(".log")?;
    let (minute, n) = match rest.get(16..) {
        Some("") => (rest, 1),
        Some(tail) => (&rest[..16], tail.strip_prefix('-')?.parse().ok()?),
        None => return None,
    };
    chrono::NaiveDateTime::parse_from_str(minute, "%Y-%m-%d-%H-%M").ok()?;
    Some((minute.to_owned(), n))
}

/// The newest file log of `environment`.
pub fn latest(manifest_dir: &Path, environment: &str) -> Option<PathBuf> {
    fs::read_dir(dir(manifest_dir))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            sort_key(&name, environment).map(|k| (k, e.path()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p)
}

pub struct FileLogSink {
    path: PathBuf,
    file: File,
    header: String,
    /// What other sinks say (failed notifications): WARN lines, and waited for at the end.
    notes: Option<Notes>,
}

impl FileLogSink {
    /// Creates the run's file (never one that exists). `kind` is `deploy` (or `destroy`…).
    pub fn create(
        manifest_dir: &Path,
        kind: &str,
        environment: &str,
        header: &str,
    ) -> io::Result<FileLogSink> {
        let dir = dir(manifest_dir);
        fs::create_dir_all(&dir)?;
        let start = Utc::now();
        for n in 1..10_000 {
            let path = dir.join(file_name(kind, environment, start, n));
            match fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(FileLogSink {
                        path,
                        file,
                        header: header.to_owned(),
                        notes: None,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "{} already holds 10,000 logs of this minute",
            dir.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Also writes what is said in `notes`, and waits for its writers before the end mark.
    pub fn with_notes(mut self, notes: Notes) -> Self {
        self.notes = Some(notes);
        self
    }
}

/// `2025-10-09T14:30:05.120Z WARN  [notifications] slack (…): deployment_failed not delivered …`
fn note_line(note: &Note, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "{} {:<5} [{}] {}",
        format_timestamp(&note.at),
        level_name(LogLevel::Warn),
        note.source,
        note.message.replace('\n', " ")
    );
}

impl Sink for FileLogSink {
    fn name(&self) -> String {
        "file log".into()
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        Handle::thread("file-log", move || write_all(&inbox, *self))
    }
}

fn write_all(inbox: &Inbox, sink: FileLogSink) -> Report {
    let mut out = BufWriter::with_capacity(1 << 16, sink.file);
    let mut report = Report::ok("file log", 0);
    let mut failed: Option<io::Error> = None;
    if let Err(e) = writeln!(out, "# {}", sink.header) {
        failed = Some(e);
    }
    let mut dirty_since: Option<Instant> = None;
    let mut text = String::new();
    loop {
        match inbox.try_recv() {
            Ok(Item::Event(event)) => {
                if failed.is_some() {
                    report.undelivered += 1;
                    continue;
                }
                text.clear();
                line(&event, &mut text);
                match out.write_all(text.as_bytes()) {
                    Ok(()) => {
                        report.delivered += 1;
                        dirty_since.get_or_insert_with(Instant::now);
                    }
                    Err(e) => {
                        report.undelivered += 1;
                        failed = Some(e);
                    }
                }
            }
            Ok(Item::Resync(_)) => {}
            // Nothing queued: write out what is buffered, then look again shortly. (Waiting on
            // the queue instead would have the deploy's thread wake this one per event.)
            Err(Empty::Waiting) => {
                if let Some(notes) = &sink.notes {
                    for note in notes.take() {
                        text.clear();
                        note_line(&note, &mut text);
                        if failed.is_none() {
                            if let Err(e) = out.write_all(text.as_bytes()) {
                                failed = Some(e);
                            }
                        }
                        dirty_since.get_or_insert_with(Instant::now);
                    }
                }
                if dirty_since.take().is_some() && failed.is_none() {
                    if let Err(e) = out.flush() {
                        failed = Some(e);
                    }
                }
                std::thread::sleep(POLL);
                continue;
            }
            Err(Empty::Closed) => break,
        }
        // A long burst is written out at least every FLUSH_EVERY (`--follow` reads it).
        if dirty_since.is_some_and(|t| t.elapsed() >= FLUSH_EVERY) && failed.is_none() {
            dirty_since = None;
            if let Err(e) = out.flush() {
                failed = Some(e);
            }
        }
    }
    // The last notifications are sent after the last event: wait for what they say, and for
    // what the notifier says of those the deadline cut (just after it).
    if let Some(notes) = &sink.notes {
        let deadline = inbox
            .deadline()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(10))
            + NOTES_MARGIN;
        for note in notes.take_when_done(deadline) {
            text.clear();
            note_line(&note, &mut text);
            if failed.is_none() {
                if let Err(e) = out.write_all(text.as_bytes()) {
                    failed = Some(e);
                }
            }
        }
    }
    if failed.is_none() {
        let ended = writeln!(out, "{END_MARK}")
            .and_then(|()| out.flush())
            .and_then(|()| out.get_ref().sync_all());
        if let Err(e) = ended {
            failed = Some(e);
        }
    }
    if let Some(e) = failed {
        // The journal holds every event; this copy is for reading. Say it, fail nothing.
        report.warnings.push(format!(
            "{} could not be written ({e}); {} events are missing from it (the journal has them)",
            sink.path.display(),
            report.undelivered
        ));
    }
    report
}

/// `DEBUG`, `INFO`, `WARN`, `ERROR`.
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// Appends the event's line(s) to `out`, newline included.
pub fn line(event: &Event, out: &mut String) {
    use std::fmt::Write as _;
    let (level, text) = describe(event);
    let _ = write!(
        out,
        "{} {:<5} ",
        format_timestamp(&event.timestamp),
        level_name(level)
    );
    if let Some(stack) = event.data.stack() {
        let _ = write!(out, "[{stack}] ");
    }
    let mut lines = text.split('\n');
    out.push_str(lines.next().unwrap_or_default().trim_end_matches('\r'));
    out.push('\n');
    for more in lines {
        out.push_str("    ");
        out.push_str(more.trim_end_matches('\r'));
        out.push('\n');
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
                crate::view::words::run_name(e.operation),
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
            let mut text = format!(
                "Progress: {}% ({} done)",
                e.progress_percent,
                plural(e.deployed_stacks, "stack")
            );
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
        EventData::DeploymentFailed(e) => {
            let mut text = format!(
                "Failed: {} — {}: {}",
                e.failed_stacks.join(", "),
                e.error.code,
                e.error.message
            );
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
                "Deployed in {} ({} created, {} updated)",
                format_duration(e.duration_seconds),
                plural(e.resources_created, "resource"),
                e.resources_updated
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
        EventData::StackSkipped(e) => match e.reason {
            SkipReason::Unchanged => (Warn, "Skipped: unchanged since its last deploy".into()),
            SkipReason::NotSelected => (Info, "Skipped: not selected".into()),
        },
        EventData::StackBlocked(e) => (Warn, format!("Blocked: {} failed", e.blocked_by)),
        EventData::StackLog(e) => (e.level, e.message.clone()),
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
        other => {
            let Some((state, r)) = other.as_resource() else {
                return (Debug, other.type_name().to_owned());
            };
            use crate::event::ResourceState as R;
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
    }
}

/// A line of a file log read back: its level and stack, when it is an event's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// `# …`: the header or the end mark.
    Note,
    Event {
        level: LogLevel,
        stack: Option<&'a str>,
    },
    /// An indented line continuing the one before.
    More,
}

pub fn parse(line: &str) -> Parsed<'_> {
    if line.starts_with('#') {
        return Parsed::Note;
    }
    let mut parts = line.splitn(3, ' ');
    let (Some(_time), Some(level)) = (parts.next(), parts.next()) else {
        return Parsed::More;
    };
    let level = match level {
        "DEBUG" => LogLevel::Debug,
        "INFO" => LogLevel::Info,
        "WARN" => LogLevel::Warn,
        "ERROR" => LogLevel::Error,
        _ => return Parsed::More,
    };
    let rest = parts.next().unwrap_or_default().trim_start();
    let stack = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once("] "))
        .map(|(s, _)| s);
    Parsed::Event { level, stack }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ErrorDetail, StackFailed, StackSkipped};

    fn event(data: EventData) -> Event {
        Event {
            sequence: 1,
            timestamp: "2025-10-09T14:30:05.120Z".parse().unwrap(),
            deployment_id: "D1".into(),
            environment: "dev".into(),
            data,
        }
    }

    #[test]
    fn names_sort_by_minute_then_number() {
        let t: DateTime<Utc> = "2025-10-09T14:30:59Z".parse().unwrap();
        assert_eq!(
            file_name("deploy", "dev", t, 1),
            "deploy-dev-2025-10-09-14-30.log"
        );
        let a = sort_key(&file_name("deploy", "dev", t, 1), "dev").unwrap();
        let b = sort_key(&file_name("deploy", "dev", t, 2), "dev").unwrap();
        let c = sort_key(&file_name("deploy", "dev", t, 10), "dev").unwrap();
        assert!(a < b && b < c);
        assert_eq!(sort_key("deploy-dev-eu-2025-10-09-14-30.log", "dev"), None);
        assert!(sort_key("deploy-dev-eu-2025-10-09-14-30.log", "dev-eu").is_some());
    }

    #[test]
    fn levels_follow_the_seed_and_lines_parse_back() {
        let failed = event(EventData::StackFailed(StackFailed {
            stack: "db".into(),
            error: ErrorDetail {
                code: "COMMAND_FAILED".into(),
                message: "Access Denied".into(),
                details: Some("exit status 1\nstderr tail".into()),
            },
            duration_seconds: 3,
        }));
        let mut text = String::new();
        line(&failed, &mut text);
        assert_eq!(
            text,
            "2025-10-09T14:30:05.120Z ERROR [db] Failed after 3s: COMMAND_FAILED: Access Denied\n    exit status 1\n    stderr tail\n"
        );
        let mut lines = text.lines();
        assert_eq!(
            parse(lines.next().unwrap()),
            Parsed::Event {
                level: LogLevel::Error,
                stack: Some("db")
            }
        );
        assert_eq!(parse(lines.next().unwrap()), Parsed::More);
        let skipped = event(EventData::StackSkipped(StackSkipped {
            stack: "net".into(),
            reason: SkipReason::Unchanged,
            outputs: Default::default(),
        }));
        assert_eq!(describe(&skipped).0, LogLevel::Warn);
    }
}
