//! The journal writer: every event of a run as one JSON line, in the file
//! [`crate::store::journal::path`] names. Written as the run goes: flushed whenever a stack
//! ends (once the events queued by then are written), at least every second, and at the end
//! (then synced), so `cloud status` reads a live or a crashed run as far as it went.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bus::{Delivery, Handle, Inbox, Received, Report, Sink};
use crate::event::EventData;
use crate::store::journal;

/// The longest an event waits in the buffer before it reaches the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct JournalSink {
    path: PathBuf,
    file: File,
    flushed: Arc<Flushed>,
}

/// How far the journal file holds the run, for a sink that reads events back from it rather
/// than keeping a copy of its own (the DynamoDB sink, when it falls behind): every event up to
/// [`Flushed::through`] is in the file, in order, one per line. It only moves after a flush
/// that succeeded: once the journal cannot be written it stays where it was.
#[derive(Debug, Default)]
pub struct Flushed(AtomicU64);

impl Flushed {
    /// The sequence of the last event known to be in the file (0: none yet).
    pub fn through(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn reached(&self, sequence: u64) {
        self.0.store(sequence, Ordering::Release);
    }
}

impl JournalSink {
    /// Creates the run's journal file (failing here, before anything runs, when it cannot be).
    pub fn create(dir: &Path, run_id: &str) -> io::Result<JournalSink> {
        fs::create_dir_all(dir)?;
        let path = journal::path(dir, run_id);
        let file = fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        Ok(JournalSink {
            path,
            file,
            flushed: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How far the file holds the run, as the run goes.
    pub fn flushed(&self) -> Arc<Flushed> {
        Arc::clone(&self.flushed)
    }
}

impl Sink for JournalSink {
    fn name(&self) -> String {
        "journal".into()
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        Handle::thread("journal", move || {
            write_all(&inbox, self.file, &self.path, &self.flushed)
        })
    }
}

/// The record is what a deploy is trusted for: its loss is said when it happens, not only at
/// the end (the deploy itself goes on).
fn say_at_once(path: &Path, e: &io::Error) {
    crate::view::interactive::say(&format!(
        "error: the journal {} cannot be written: {e}; the deploy goes on, and will exit 1",
        path.display()
    ));
}

/// Flushes what was written so far (`last`: its newest event) into the file, and says how far
/// the file holds the run; or the trouble, at once.
fn flush(
    out: &mut BufWriter<File>,
    last: u64,
    flushed: &Flushed,
    path: &Path,
) -> Option<io::Error> {
    match out.flush() {
        Ok(()) => {
            flushed.reached(last);
            None
        }
        Err(e) => {
            say_at_once(path, &e);
            Some(e)
        }
    }
}

fn write_all(inbox: &Inbox, file: File, path: &Path, flushed: &Flushed) -> Report {
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let mut report = Report::ok("journal", 0);
    let mut failed: Option<io::Error> = None;
    // The sequence of the last event written to the buffer.
    let mut last = 0;
    let mut dirty_since: Option<Instant> = None;
    // A stack ended in what was written since the last flush.
    let mut stack_ended = false;
    loop {
        let item = match inbox.try_recv() {
            Ok(item) => Some(item),
            Err(crate::bus::Empty::Closed) => break,
            Err(crate::bus::Empty::Waiting) => {
                // Caught up: a stack's end reaches the file now — once for all the stacks
                // that ended in a burst (10,000 flushes of a big run made the journal fall
                // behind the run).
                if std::mem::take(&mut stack_ended) && failed.is_none() {
                    dirty_since = None;
                    failed = flush(&mut out, last, flushed, path);
                }
                let wait =
                    dirty_since.map_or(Duration::MAX, |t| FLUSH_EVERY.saturating_sub(t.elapsed()));
                match inbox.recv_timeout(wait) {
                    Ok(item) => Some(item),
                    Err(crate::bus::Empty::Waiting) => None,
                    Err(crate::bus::Empty::Closed) => break,
                }
            }
        };
        if let Some(Received::Event(event)) = item {
            if failed.is_some() {
                report.undelivered += 1;
                continue;
            }
            let written = serde_json::to_writer(&mut out, &*event)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            stack_ended |= matches!(
                event.data,
                EventData::StackDeployed(_)
                    | EventData::StackFailed(_)
                    | EventData::StackSkipped(_)
                    | EventData::StackBlocked(_)
                    | EventData::StackDestroyed(_)
                    | EventData::DeploymentComplete(_)
            );
            dirty_since.get_or_insert_with(Instant::now);
            match written {
                Ok(()) => {
                    report.delivered += 1;
                    last = event.sequence;
                }
                Err(e) => {
                    report.undelivered += 1;
                    say_at_once(path, &e);
                    failed = Some(e);
                }
            }
        }
        if dirty_since.is_some_and(|t| t.elapsed() >= FLUSH_EVERY) && failed.is_none() {
            dirty_since = None;
            failed = flush(&mut out, last, flushed, path);
        }
    }
    if failed.is_none() {
        match out.flush() {
            // In the file, readable: synced or not, a reader of it sees them.
            Ok(()) => flushed.reached(last),
            Err(e) => failed = Some(e),
        }
        if let Err(e) = out.get_ref().sync_all() {
            failed.get_or_insert(e);
        }
    }
    if let Some(e) = failed {
        report.problem = Some(format!("{}: {e}", path.display()));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Bus;
    use crate::progress::Model;

    /// Writes `events` log events through a journal writing to `file`; its report and how far
    /// it said its file holds the run.
    fn journal_into(file: File, events: u64) -> (Report, u64) {
        let dir = tempfile::tempdir().unwrap();
        let flushed = Arc::new(Flushed::default());
        let sink = JournalSink {
            path: dir.path().join("j.jsonl"),
            file,
            flushed: Arc::clone(&flushed),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let shut = runtime.block_on(async {
            let mut bus = Bus::new(&dir.path().join("scratch"));
            bus.attach(Box::new(sink)).unwrap();
            let publisher = bus.publisher();
            let model = Model::new("D", "dev");
            for n in 1..=events {
                let log = crate::testing::log("a", &format!("line {n}"));
                publisher.send(Arc::new(crate::testing::event(n, log)), &model);
            }
            bus.shutdown(Duration::from_secs(30)).await
        });
        let report = shut.reports.into_iter().next().unwrap();
        (report, flushed.through())
    }

    /// What a reader of the file may rely on: the last event of a flush that worked, never
    /// one that is only in the buffer or that a failed write lost.
    #[test]
    fn the_file_is_said_to_hold_only_what_a_flush_put_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("ok.jsonl")).unwrap();
        let (report, through) = journal_into(file, 5_000);
        assert_eq!((report.delivered, report.problem), (5_000, None));
        assert_eq!(through, 5_000);

        // A full disk: no write ever reaches the file — met by a flush (a few events, all in
        // the buffer until then) or by a write once the buffer is full (many).
        for events in [10, 5_000] {
            let full = fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let (report, through) = journal_into(full, events);
            assert!(report.problem.is_some(), "{report:?}");
            assert_eq!(through, 0, "{events} events");
        }
    }
}
