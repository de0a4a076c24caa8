//! The file log: every event of a run as one readable line with its level, in a file of its
//! own under `cloud/deploy/<ID>/logs/` (names, line layout and the reader: [`crate::store::filelog`]).
//!
//! One file per run, never overwritten: the file is created exclusively, and a second run in
//! the same minute gets the next number. The first line (`# cloud …`) names the run, the last
//! ([`END_MARK`]) says it ended, which is how `cloud logs --follow` knows when to stop. What a
//! line says is [`crate::words::describe`].
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

use chrono::Utc;

use crate::bus::{
    Delivery, Empty, Handle, Inbox, Note, Notes, Received, Report, Sink, NOTES_MARGIN,
};
use crate::event::{format_timestamp, Event, LogLevel, Timestamp};
use crate::store::filelog::{dir, file_name, level_name, END_MARK};
use crate::words::describe;

/// The longest a line waits in the buffer before it reaches the file (`--follow` reads it).
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often the inbox is looked at when it was empty.
const POLL: Duration = Duration::from_millis(10);
pub struct FileLogSink {
    path: PathBuf,
    file: File,
    header: String,
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

    fn start(self: Box<Self>, mut inbox: Inbox) -> io::Result<Handle> {
        // What the other sinks say (`Inbox::warn`): WARN lines, waited for at the end.
        let notes = inbox.notes();
        Handle::thread("file-log", move || write_all(&inbox, &notes, *self))
    }
}

fn write_all(inbox: &Inbox, notes: &Notes, sink: FileLogSink) -> Report {
    let mut out = BufWriter::with_capacity(1 << 16, sink.file);
    let mut report = Report::ok("file log", 0);
    let mut failed: Option<io::Error> = None;
    if let Err(e) = writeln!(out, "# {}", sink.header) {
        failed = Some(e);
    }
    let mut dirty_since: Option<Instant> = None;
    let mut text = String::new();
    let mut seen = 0;
    loop {
        match inbox.try_recv() {
            Ok(Received::Event(event)) => {
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
            Ok(Received::Resync(_)) => {}
            // Nothing queued: write out what is buffered, then look again shortly. (Waiting on
            // the queue instead would have the deploy's thread wake this one per event.)
            Err(Empty::Waiting) => {
                for note in notes.since(&mut seen) {
                    text.clear();
                    note_line(&note, &mut text);
                    if failed.is_none() {
                        if let Err(e) = out.write_all(text.as_bytes()) {
                            failed = Some(e);
                        }
                    }
                    dirty_since.get_or_insert_with(Instant::now);
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
    // The other recording sinks end after the last event (the last notifications are sent
    // then, a report is written then): wait for what they say, and for what the notifier
    // says of deliveries the deadline cut (just after it).
    let deadline = inbox
        .deadline()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(10))
        + NOTES_MARGIN;
    for note in notes.since_when_done(&mut seen, deadline) {
        text.clear();
        note_line(&note, &mut text);
        if failed.is_none() {
            if let Err(e) = out.write_all(text.as_bytes()) {
                failed = Some(e);
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
        inbox.warn(format!(
            "{} could not be written ({e}); {} events are missing from it (the journal has them)",
            sink.path.display(),
            report.undelivered
        ));
    }
    report
}

/// Appends the event's line(s) to `out`, newline included.
pub fn line(event: &Event, out: &mut String) {
    use std::fmt::Write as _;
    let (level, text) = describe(event);
    let _ = write!(
        out,
        "{} {:<5} ",
        Timestamp::of(&event.timestamp).as_str(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ErrorDetail, EventData, StackFailed};
    use crate::testing;

    #[test]
    fn a_line_leads_with_time_level_and_stack_and_indents_the_rest() {
        let failed = Event {
            timestamp: "2025-10-09T14:30:05.120Z".parse().unwrap(),
            ..testing::event(
                1,
                EventData::StackFailed(StackFailed {
                    stack: "db".into(),
                    error: ErrorDetail {
                        code: "COMMAND_FAILED".into(),
                        message: "Access Denied".into(),
                        details: Some("exit status 1\nstderr tail".into()),
                    },
                    duration_seconds: 3,
                }),
            )
        };
        let mut text = String::new();
        line(&failed, &mut text);
        assert_eq!(
            text,
            "2025-10-09T14:30:05.120Z ERROR [db] Failed after 3s: COMMAND_FAILED: Access Denied\n    exit status 1\n    stderr tail\n"
        );
    }
}
