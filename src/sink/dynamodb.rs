//! The DynamoDB event store sink: every event of the run becomes one item of the table
//! ([`crate::store::dynamodb`] has the layout), written in BatchWriteItem batches of 25,
//! several at once, retried with backoff and jitter on throttling and `UnprocessedItems`.
//!
//! It never delays the deploy. It runs on a thread of its own with its own small tokio
//! runtime, a little below the deploy's priority while the run goes on and at an ordinary
//! one once the run is over and its drain has a deadline. It
//! takes every event off the bus as it comes, looking every few milliseconds (being woken per
//! event would cost the deploy's thread a system call each time), and keeps what it has not
//! sent yet in a [`Backlog`]: the oldest in memory, the rest read back from the journal when
//! their turn comes (so the bus never has to spill them on the deploy's thread, and no second
//! copy is written).
//!
//! When the table cannot be reached, events go to the local spool ([`crate::store::spool`])
//! and a batch is tried again every few seconds; once one lands, sending resumes. At the end it
//! sends what it can until the inbox deadline (less the time spooling the backlog takes), spools
//! the rest, tries the table once more with what this run spooled (it may be back since the last
//! probe), and its [`Report`] says how many events wait in the spool (the next command that
//! talks to DynamoDB, or `cloud events sync`, sends them). Spools left by earlier runs are sent
//! alongside this run's events. If the process dies, the run's `.pending` marker has its whole
//! journal sent again later.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::bus::{Empty, Handle, Inbox, Received, Report, Sink};
use crate::event::Event;
use crate::sink::backlog::{Backlog, JournalTail};
use crate::sink::journal::Flushed;
use crate::store::dynamodb::{self, Item, Table, Target, Trouble, Written, BATCH};
use crate::store::spool::{self, Marker};

/// Events the bus holds for this sink before it spills ([`Sink::capacity`]).
const QUEUE: usize = 65_536;
/// How often the inbox is looked at.
const POLL: Duration = Duration::from_millis(10);
/// Events taken from the inbox per look, at most (then batches get their turn).
const TAKE: usize = 8192;
/// Batches in flight at once.
const IN_FLIGHT: usize = 8;
/// How long a partial batch waits for more events before it is sent anyway.
const LINGER: Duration = Duration::from_millis(100);
/// While the table is unreachable, how often one batch is tried.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// While the table refuses (missing, no permission), how often one batch is tried.
const PROBE_REFUSED_EVERY: Duration = Duration::from_secs(30);
/// Sending stops this long before the inbox deadline, leaving time to spool what is left…
const SPOOL_MARGIN: Duration = Duration::from_millis(1000);
/// …plus this much per event still queued (reading it back and spooling it takes ~5 µs;
/// twice that, for a busy machine).
const SPOOL_PER_EVENT: Duration = Duration::from_micros(10);

pub struct DynamoSink {
    pub target: Target,
    /// The deployment's folder (the spool lives under it).
    pub manifest_dir: PathBuf,
    pub environment: String,
    pub run_id: String,
    pub user: Option<String>,
    /// This run's journal: sent again whole if the process dies before the sink ends.
    pub journal: PathBuf,
    /// How far the journal's file holds the run, when it is being written beside this sink:
    /// events it holds are read back from it rather than kept twice (see [`Backlog`]).
    pub journal_flushed: Option<Arc<Flushed>>,
}

impl Sink for DynamoSink {
    fn name(&self) -> String {
        "DynamoDB event store".into()
    }

    /// A thread a little below the deploy's priority falls behind a 220,000-event run now and
    /// then; each event the bus spilled for it cost the deploy's thread a serialization and
    /// this one a parse. Room for a few hundred milliseconds of the busiest run instead: up to
    /// ~25 MB of events while it is behind (measured: the same peak for a 10,000-stack run).
    fn capacity(&self) -> usize {
        QUEUE
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Handle::thread("dynamodb", move || {
            background_priority();
            runtime.block_on(self.run(inbox))
        })
    }
}

/// While the run goes on, this thread yields the CPU to the deploy's threads a little
/// (nice 5). Not more: it holds its queue's lock for a moment at each event it takes, and a
/// thread that is starved while holding it (SCHED_IDLE on a busy machine) would stall the
/// deploy's thread waiting for that lock, the opposite of the point.
pub(crate) fn background_priority() {
    nice_this_thread(5);
}

/// Once the run is over the drain has a deadline: back to an ordinary share of the CPU.
/// (Lowering nice may be refused without privilege; nice 5 then stays.)
pub(crate) fn normal_priority() {
    nice_this_thread(0);
}

/// The calling thread's nice value (on Linux a thread is scheduled on its own).
fn nice_this_thread(nice: libc::c_int) {
    // SAFETY: gettid and setpriority only read their arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
}

/// Whether batches may go to the table now.
enum Link {
    Up,
    /// Since the last failure; a batch is tried again at `retry`.
    Down {
        retry: Instant,
    },
}

struct Run {
    table: Option<Table>,
    link: Link,
    spool: spool::Writer,
    delivered: u64,
    retries: u64,
    /// Of the items spooled, those sent from the spool at the end of the run.
    resent: u64,
    /// The first trouble met, to report.
    trouble: Option<Trouble>,
    /// A spool write failed: those events are only in the journal (and the marker stays).
    spool_failed: Option<io::Error>,
    /// Events that could not be read back from the journal or the overflow file (changed or
    /// removed under the run): neither sent nor spooled.
    unreadable: u64,
}

impl Run {
    fn keep(&mut self, item: &Item) {
        if let Err(e) = self.spool.append(item) {
            self.spool_failed.get_or_insert(e);
        }
    }

    fn keep_json(&mut self, item: &serde_json::Value) {
        if let Err(e) = self.spool.append_json(item) {
            self.spool_failed.get_or_insert(e);
        }
    }

    fn fail(&mut self, trouble: Trouble) {
        let wait = match trouble {
            Trouble::Unreachable(_) => PROBE_EVERY,
            Trouble::Refused(_) => PROBE_REFUSED_EVERY,
        };
        self.trouble = Some(trouble);
        self.link = Link::Down {
            retry: Instant::now() + wait,
        };
    }

    fn done(&mut self, written: Written) {
        self.delivered += written.written as u64;
        self.retries += written.retries;
        match written.trouble {
            Some(t) => self.fail(t),
            None if written.written > 0 => self.link = Link::Up,
            None => {}
        }
        for item in &written.left {
            self.keep(item);
        }
    }

    /// Whether a batch may be sent now (a probe when down).
    fn may_send(&self, flying: usize) -> bool {
        match &self.link {
            Link::Up => self.table.is_some() && flying < IN_FLIGHT,
            Link::Down { retry, .. } => {
                self.table.is_some() && flying == 0 && Instant::now() >= *retry
            }
        }
    }
}

impl DynamoSink {
    fn item(&self, event: &Event) -> Item {
        dynamodb::item(event, &self.run_id, self.user.as_deref())
    }

    fn item_json(&self, event: &Event) -> serde_json::Value {
        dynamodb::item_json(event, &self.run_id, self.user.as_deref())
    }

    /// Up to one batch, oldest first.
    fn take_batch(&self, buffer: &mut Backlog) -> Vec<Item> {
        std::iter::from_fn(|| buffer.pop())
            .take(BATCH)
            .map(|e| self.item(&e))
            .collect()
    }

    /// Moves everything to the spool.
    fn spool_all(&self, buffer: &mut Backlog, run: &mut Run) {
        while let Some(event) = buffer.pop() {
            run.keep_json(&self.item_json(&event));
        }
    }

    async fn run(self, inbox: Inbox) -> Report {
        let name = self.name();
        let dir = spool::dir(&self.manifest_dir, &self.target.table, &self.environment);
        let marked = spool::write_marker(
            &dir,
            &Marker {
                run_id: self.run_id.clone(),
                environment: self.environment.clone(),
                journal: self.journal.clone(),
                user: self.user.clone(),
            },
        );
        let mut run = Run {
            table: None,
            link: Link::Up,
            spool: spool::Writer::new(spool::file(&dir, &self.run_id)),
            delivered: 0,
            retries: 0,
            resent: 0,
            trouble: None,
            spool_failed: None,
            unreadable: 0,
        };
        match Table::connect(&self.target).await {
            Ok(table) => run.table = Some(table),
            Err(why) => run.fail(Trouble::Refused(why.to_string())),
        }
        // Spools of earlier runs go out beside this run's events.
        let mut older = run.table.clone().map(|table| {
            let dir = self.manifest_dir.clone();
            let me = self.run_id.clone();
            tokio::spawn(async move { spool::replay(&table, &dir, Some(&me), None).await })
        });

        let journal = self
            .journal_flushed
            .as_ref()
            .map(|flushed| JournalTail::new(self.journal.clone(), Arc::clone(flushed)));
        let mut buffer = Backlog::new(dir.join(format!("{}.overflow", self.run_id)), journal);
        let mut flying: JoinSet<Written> = JoinSet::new();
        // What each batch in flight holds, to spool if it is cut off.
        let mut holding: HashMap<tokio::task::Id, Vec<Item>> = HashMap::new();
        let mut closed = false;
        let mut oldest: Option<Instant> = None;
        let mut draining = false;
        loop {
            if !draining && inbox.deadline().is_some() {
                draining = true;
                normal_priority();
            }
            let cutoff = inbox.deadline().map(|d| {
                let backlog = inbox.backlog() + buffer.len();
                let margin = SPOOL_MARGIN
                    + SPOOL_PER_EVENT.saturating_mul(u32::try_from(backlog).unwrap_or(u32::MAX));
                d.checked_sub(margin).unwrap_or(d)
            });
            if cutoff.is_some_and(|c| Instant::now() >= c) {
                break;
            }
            // Down and not due for a probe: what arrives goes straight to the spool.
            if matches!(run.link, Link::Down { .. }) && !run.may_send(flying.len()) {
                self.spool_all(&mut buffer, &mut run);
                oldest = None;
            }
            let ready = |buffer: &Backlog, oldest: Option<Instant>| {
                buffer.len() >= BATCH as u64
                    || (!buffer.is_empty()
                        && (closed || oldest.is_some_and(|t| t.elapsed() >= LINGER)))
            };
            while run.may_send(flying.len()) && ready(&buffer, oldest) {
                let batch = self.take_batch(&mut buffer);
                oldest = (!buffer.is_empty()).then(Instant::now);
                let table = run.table.clone().expect("may_send checked the table");
                let copy = batch.clone();
                let handle = flying.spawn(async move { table.write_batch(batch, None).await });
                holding.insert(handle.id(), copy);
                if matches!(run.link, Link::Down { .. }) {
                    // One probe at a time.
                    break;
                }
            }
            if closed && buffer.is_empty() && flying.is_empty() {
                break;
            }
            let linger = oldest.map_or(LINGER, |t| LINGER.saturating_sub(t.elapsed()));
            let probe = match &run.link {
                Link::Down { retry, .. } => retry.saturating_duration_since(Instant::now()),
                Link::Up => Duration::MAX,
            };
            let wake = cutoff
                .map_or(Duration::MAX, |c| {
                    c.saturating_duration_since(Instant::now())
                })
                .min(probe)
                .min(if buffer.is_empty() {
                    Duration::MAX
                } else {
                    linger
                })
                .min(Duration::from_secs(3600));
            tokio::select! {
                done = flying.join_next_with_id(), if !flying.is_empty() => match done {
                    Some(Ok((id, written))) => {
                        holding.remove(&id);
                        run.done(written);
                    }
                    Some(Err(e)) => {
                        for item in holding.remove(&e.id()).unwrap_or_default() {
                            run.keep(&item);
                        }
                    }
                    None => {}
                },
                _ = tokio::time::sleep(wake.min(POLL)) => {}
            }
            // Take what is queued, without waiting on the queue: a sink woken per event costs
            // the deploy's thread a system call each time; looking every few milliseconds
            // costs it nothing.
            if !closed {
                for _ in 0..TAKE {
                    match inbox.try_recv() {
                        Ok(Received::Event(event)) => {
                            oldest.get_or_insert_with(Instant::now);
                            buffer.push(event);
                        }
                        Ok(Received::Resync(_)) => {}
                        Err(Empty::Waiting) => break,
                        Err(Empty::Closed) => {
                            closed = true;
                            break;
                        }
                    }
                }
            }
            buffer.settle();
        }

        // Cut off, or everything sent. What is not in the table goes to the spool.
        flying.abort_all();
        while let Some(done) = flying.join_next_with_id().await {
            match done {
                Ok((id, written)) => {
                    holding.remove(&id);
                    run.done(written);
                }
                Err(e) => {
                    for item in holding.remove(&e.id()).unwrap_or_default() {
                        run.keep(&item);
                    }
                }
            }
        }
        self.spool_all(&mut buffer, &mut run);
        buffer.remove_overflow();
        run.unreadable = buffer.unreadable();
        while let Some(Received::Event(event)) = next_left(&inbox) {
            run.keep_json(&self.item_json(&event));
        }
        if let Some(older) = older.take() {
            if older.is_finished() {
                // What it could not read (a spool line, a marker) would otherwise go unsaid.
                if let Ok(replayed) = older.await {
                    for problem in replayed.problems {
                        inbox.warn(format!("an earlier run's spool: {problem}"));
                    }
                }
            } else {
                // Its files are rewritten atomically: stopping it midway loses nothing.
                older.abort();
            }
        }
        if let Err(e) = run.spool.finish() {
            run.spool_failed.get_or_insert(e);
        }
        self.resend_spooled(&mut run, &inbox).await;
        // Every event is in the table or the spool: the marker's job is done. (If the spool
        // could not be written, it stays, and the journal is sent again later.)
        if run.spool_failed.is_none() && run.unreadable == 0 && marked.is_ok() {
            let _ = std::fs::remove_file(spool::marker_path(&dir, &self.run_id));
            // Nothing waits: leave no empty folder behind (this fails when something does).
            let _ = std::fs::remove_dir(&dir);
        }
        self.report(&name, run, &inbox)
    }

    /// While the table is down it is tried only every [`PROBE_EVERY`], and what comes
    /// meanwhile is spooled at once: a table back since the last probe has not been seen. The
    /// end of the run tries it once more with what this run spooled, before leaving it there
    /// (still unreachable: one failed batch, and the spool stays as it is).
    async fn resend_spooled(&self, run: &mut Run, inbox: &Inbox) {
        let (Some(table), Some(deadline)) = (run.table.clone(), inbox.deadline()) else {
            return;
        };
        let spooled = run.spool.count - run.resent;
        if spooled == 0 || run.spool_failed.is_some() {
            return;
        }
        // Time to keep what is not sent, as in the drain.
        let margin = SPOOL_MARGIN
            + SPOOL_PER_EVENT.saturating_mul(u32::try_from(spooled).unwrap_or(u32::MAX));
        let until = deadline.checked_sub(margin).unwrap_or(deadline);
        if Instant::now() >= until {
            return;
        }
        match spool::replay_file(&table, run.spool.path(), Some(until)).await {
            Ok(r) => {
                run.delivered += r.sent;
                if !r.lost_track {
                    run.resent = run.spool.count - r.left;
                }
                // What is true now, for the report.
                if r.trouble.is_some() {
                    run.trouble = r.trouble;
                }
            }
            Err(e) => {
                run.spool_failed.get_or_insert(e);
            }
        }
    }

    /// The report, and what the run does not depend on said as a warning.
    fn report(&self, name: &str, run: Run, inbox: &Inbox) -> Report {
        let spooled = run.spool.count - run.resent;
        let mut report = Report::ok(name, run.delivered);
        if let Some(e) = run.spool_failed {
            report.undelivered = spooled;
            report.problem = Some(format!(
                "{spooled} events could not be sent to table {} nor spooled in {} ({e}); \
                 they are in the journal {}",
                self.target.table,
                run.spool.path().display(),
                self.journal.display()
            ));
        } else if run.unreadable > 0 {
            // (The `.pending` marker stays: a journal still there is sent again whole.)
            report.undelivered = run.unreadable;
            report.problem = Some(format!(
                "{} events could not be read back from the journal {} or the sink's overflow \
                 file (changed or removed while the run went on) and are not in table {}{}",
                run.unreadable,
                self.journal.display(),
                self.target.table,
                match spooled {
                    0 => String::new(),
                    n => format!(
                        "; {n} more wait in the spool {}",
                        run.spool.path().display()
                    ),
                }
            ));
        } else if spooled > 0 {
            let why = run
                .trouble
                .as_ref()
                .map(|t| format!(" ({})", t.message()))
                .unwrap_or_else(|| " (the end-of-run wait was over)".into());
            inbox.warn(format!(
                "{spooled} events wait in the spool {} for table {}{why}; the next command \
                 that reaches the table sends them, or run `cloud events sync`",
                run.spool.path().display(),
                self.target.table
            ));
        } else if let Some(t) = run.trouble {
            inbox.warn(format!(
                "every event reached table {}, after trouble: {}",
                self.target.table,
                t.message()
            ));
        }
        report
    }
}

/// The next event still queued once the run is over (the queue is closed by then).
fn next_left(inbox: &Inbox) -> Option<Received> {
    loop {
        match inbox.try_recv() {
            Ok(Received::Event(e)) => return Some(Received::Event(Arc::clone(&e))),
            Ok(Received::Resync(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    /// A sink's thread runs at nice 5 while the run goes on and back at 0 for its drain (where
    /// the system lets a thread lower its nice: as root, as in CI).
    #[test]
    fn the_drain_gets_an_ordinary_share_of_the_cpu_back() {
        fn nice() -> libc::c_int {
            // SAFETY: as in nice_this_thread; getpriority only reads its arguments.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            }
        }
        let (during, after) = std::thread::spawn(|| {
            background_priority();
            let during = nice();
            normal_priority();
            (during, nice())
        })
        .join()
        .unwrap();
        assert_eq!(during, 5);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(after, 0);
        } else {
            assert!(after == 0 || after == 5, "{after}");
        }
    }

    #[test]
    fn what_is_left_is_spooled_whole() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DynamoSink {
            target: Target {
                table: "t-1".into(),
                region: None,
            },
            manifest_dir: dir.path().to_path_buf(),
            environment: "dev".into(),
            run_id: "r".into(),
            user: None,
            journal: dir.path().join("j.jsonl"),
            journal_flushed: None,
        };
        let mut backlog = Backlog::new(dir.path().join("r.overflow"), None);
        let total = crate::sink::backlog::UNCONFIRMED as u64 + 30_000;
        for n in 1..=total {
            let log = testing::log("a", &format!("m{n}"));
            backlog.push(Arc::new(testing::event(n, log)));
        }
        // Some sent, the rest spooled.
        let sent = sink.take_batch(&mut backlog).len() as u64;
        assert_eq!(sent, BATCH as u64);
        let spool_path = dir.path().join("spool.jsonl");
        let mut run = Run {
            table: None,
            link: Link::Up,
            spool: spool::Writer::new(spool_path.clone()),
            delivered: 0,
            retries: 0,
            resent: 0,
            trouble: None,
            spool_failed: None,
            unreadable: 0,
        };
        sink.spool_all(&mut backlog, &mut run);
        run.spool.finish().unwrap();
        assert!(run.spool_failed.is_none());
        let (items, bad) = spool::read(&spool_path).unwrap();
        assert_eq!(bad, 0);
        let seqs: Vec<u64> = items
            .iter()
            .map(|item| match &item["sequence"] {
                aws_sdk_dynamodb::types::AttributeValue::N(n) => n.parse().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, ((sent + 1)..=total).collect::<Vec<_>>());
    }
}
