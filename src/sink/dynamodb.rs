//! The DynamoDB event store sink: every event of the run becomes one item of the table
//! ([`crate::store::dynamodb`] has the layout), written in BatchWriteItem batches of 25,
//! several at once, retried with backoff and jitter on throttling and `UnprocessedItems`.
//!
//! It never delays the deploy: it runs on a thread of its own (at a lower CPU priority, so a
//! busy machine serves the deploy first) with its own small tokio runtime, and reads its inbox
//! only as fast as it can send; what waits meanwhile is the bus's to hold. When the table
//! cannot be reached, events go to the local spool ([`crate::store::spool`]) and a batch is
//! tried again every few seconds; once one lands, sending resumes. At the end it sends what it
//! can until the inbox deadline, spools the rest, and its [`Report`] says how many events wait
//! in the spool (the next command that talks to DynamoDB, or `cloud events sync`, sends them).
//! Spools left by earlier runs are sent alongside this run's events.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::bus::{Handle, Inbox, Item as BusItem, Report, Sink};
use crate::event::Event;
use crate::store::dynamodb::{self, Item, Table, Target, Trouble, Written, BATCH};
use crate::store::spool::{self, Marker};

/// Batches in flight at once.
const IN_FLIGHT: usize = 8;
/// How long a partial batch waits for more events before it is sent anyway.
const LINGER: Duration = Duration::from_millis(100);
/// While the table is unreachable, how often one batch is tried.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// While the table refuses (missing, no permission), how often one batch is tried.
const PROBE_REFUSED_EVERY: Duration = Duration::from_secs(30);
/// Sending stops this long before the inbox deadline, leaving time to spool what is left.
const SPOOL_MARGIN: Duration = Duration::from_millis(1500);

pub struct DynamoSink {
    pub target: Target,
    /// The deployment's folder (the spool lives under it).
    pub manifest_dir: PathBuf,
    pub environment: String,
    pub run_id: String,
    pub user: Option<String>,
    /// This run's journal: sent again whole if the process dies before the sink ends.
    pub journal: PathBuf,
}

impl Sink for DynamoSink {
    fn name(&self) -> String {
        "DynamoDB event store".into()
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Handle::thread("dynamodb", move || {
            lower_priority();
            runtime.block_on(self.run(inbox))
        })
    }
}

/// Lets the deploy's own threads go first when the CPU is busy (Linux: nice is per thread).
fn lower_priority() {
    // SAFETY: gettid and setpriority only read their arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
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
    /// The first trouble met, to report.
    trouble: Option<Trouble>,
    /// A spool write failed: those events are only in the journal (and the marker stays).
    spool_failed: Option<io::Error>,
}

impl Run {
    fn keep(&mut self, item: &Item) {
        if let Err(e) = self.spool.append(item) {
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
            trouble: None,
            spool_failed: None,
        };
        match Table::connect(&self.target).await {
            Ok(table) => run.table = Some(table),
            Err(why) => run.fail(Trouble::Refused(why)),
        }
        // Spools of earlier runs go out beside this run's events.
        let mut older = run.table.clone().map(|table| {
            let dir = self.manifest_dir.clone();
            let me = self.run_id.clone();
            tokio::spawn(async move { spool::replay(&table, &dir, Some(&me), None).await })
        });

        let mut buffer: Vec<Item> = Vec::with_capacity(BATCH * IN_FLIGHT);
        let mut flying: JoinSet<Written> = JoinSet::new();
        // What each batch in flight holds, to spool if it is cut off.
        let mut holding: HashMap<tokio::task::Id, Vec<Item>> = HashMap::new();
        let mut closed = false;
        let mut oldest: Option<Instant> = None;
        loop {
            let cutoff = inbox
                .deadline()
                .map(|d| d.checked_sub(SPOOL_MARGIN).unwrap_or(d));
            if cutoff.is_some_and(|c| Instant::now() >= c) {
                break;
            }
            // Down and not due for a probe: what arrives goes straight to the spool.
            if matches!(run.link, Link::Down { .. }) && !run.may_send(flying.len()) {
                for item in std::mem::take(&mut buffer) {
                    run.keep(&item);
                }
                oldest = None;
            }
            let ready = |buffer: &Vec<Item>, oldest: Option<Instant>| {
                buffer.len() >= BATCH
                    || (!buffer.is_empty()
                        && (closed || oldest.is_some_and(|t| t.elapsed() >= LINGER)))
            };
            while run.may_send(flying.len()) && ready(&buffer, oldest) {
                let take = buffer.len().min(BATCH);
                let batch: Vec<Item> = buffer.drain(..take).collect();
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
            // Read ahead a few batches only: the rest waits in the bus's queue.
            let room = !closed && buffer.len() < BATCH * IN_FLIGHT;
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
                item = inbox.recv_async(), if room => match item {
                    Some(BusItem::Event(event)) => {
                        oldest.get_or_insert_with(Instant::now);
                        buffer.push(self.item(&event));
                    }
                    Some(BusItem::Resync(_)) => {}
                    None => closed = true,
                },
                _ = tokio::time::sleep(wake) => {}
            }
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
        for item in std::mem::take(&mut buffer) {
            run.keep(&item);
        }
        while let Some(BusItem::Event(event)) = next_left(&inbox) {
            let item = self.item(&event);
            run.keep(&item);
        }
        if let Some(older) = older.take() {
            // Its files are rewritten atomically: stopping it midway loses nothing.
            older.abort();
        }
        if let Err(e) = run.spool.finish() {
            run.spool_failed.get_or_insert(e);
        }
        // Every event is in the table or the spool: the marker's job is done. (If the spool
        // could not be written, it stays, and the journal is sent again later.)
        if run.spool_failed.is_none() && marked.is_ok() {
            let _ = std::fs::remove_file(spool::marker_path(&dir, &self.run_id));
            // Nothing waits: leave no empty folder behind (this fails when something does).
            let _ = std::fs::remove_dir(&dir);
        }
        self.report(&name, run)
    }

    fn report(&self, name: &str, run: Run) -> Report {
        let spooled = run.spool.count;
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
        } else if spooled > 0 {
            let why = run
                .trouble
                .as_ref()
                .map(|t| format!(" ({})", t.message()))
                .unwrap_or_else(|| " (the end-of-run wait was over)".into());
            report.note = Some(format!(
                "{spooled} events wait in the spool {} for table {}{why}; the next command \
                 that reaches the table sends them, or run `cloud events sync`",
                run.spool.path().display(),
                self.target.table
            ));
        } else if let Some(t) = run.trouble {
            report.note = Some(format!(
                "every event reached table {}, after trouble: {}",
                self.target.table,
                t.message()
            ));
        }
        report
    }
}

/// The next event still queued once the run is over (the queue is closed by then).
fn next_left(inbox: &Inbox) -> Option<BusItem> {
    loop {
        match inbox.try_recv() {
            Ok(BusItem::Event(e)) => return Some(BusItem::Event(Arc::clone(&e))),
            Ok(BusItem::Resync(_)) => continue,
            Err(_) => return None,
        }
    }
}
