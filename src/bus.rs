//! The event bus: every event the orchestrator emits goes to every sink (journal, views, and
//! later file log, DynamoDB, the server hub, notifications), each through its own bounded
//! queue, so that no sink can slow the deploy and none loses an event:
//!
//! - a sink that takes [`Delivery::Every`] event gets every one, in order: when its queue is
//!   full, further events spill to a file and are read back from it in turn;
//! - a sink that takes [`Delivery::Latest`] (a live view) only needs the current state: when
//!   its queue is full, events are dropped and, once it has caught up, it gets one snapshot of
//!   the whole state ([`Received::Resync`]) instead of what it missed.
//!
//! [`Bus::shutdown`] is the one place that knows the order things end in: the queues close,
//! the recording sinks drain (each within a deadline) and report what they could not deliver;
//! the views are handed back to be joined last (the interactive one may stay open).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::event::Event;
use crate::progress::Model;

/// Events a queue holds in memory before it spills (or, for a view, coalesces).
pub const CAPACITY: usize = 8192;

/// What a sink needs to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every event, in order (audit trails, logs, the JSON stream).
    Every,
    /// The current state: events, or a snapshot after falling behind (live views).
    Latest,
}

/// When a sink is waited for at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Keeps the record (journal, logs, event store): drained before the run's lock is released.
    Record,
    /// Shows the run (views): joined last, and may stay open after the run (interactive).
    Show,
}

/// A consumer of events.
pub trait Sink: Send {
    fn name(&self) -> String;
    fn delivery(&self) -> Delivery {
        Delivery::Every
    }
    fn purpose(&self) -> Purpose {
        Purpose::Record
    }
    /// Events its queue holds in memory before it spills (each spilled event is serialized on
    /// the deploy's thread, and read back by the sink).
    fn capacity(&self) -> usize {
        CAPACITY
    }
    /// Starts consuming `inbox` on a thread of its own, until it is closed and drained.
    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle>;
}

/// A started sink, to wait for: its thread. (A sink that needs async work runs a runtime of
/// its own there, so that none depends on the run's runtime, which ends before the views do.)
pub struct Handle(std::thread::JoinHandle<Report>);

impl Handle {
    /// Runs `work` on a named thread.
    pub fn thread(
        name: &str,
        work: impl FnOnce() -> Report + Send + 'static,
    ) -> io::Result<Handle> {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(work)
            .map(Handle)
    }

    /// Waits for the sink to end (blocking).
    pub fn join(self, name: &str) -> Report {
        self.0
            .join()
            .unwrap_or_else(|_| Report::failed(name, "it crashed"))
    }

    async fn join_async(self, name: String) -> Report {
        tokio::task::spawn_blocking(move || self.join(&name))
            .await
            .unwrap_or_else(|_| Report::default())
    }
}

/// What sinks could not do that the run does not depend on (a notification not delivered, an
/// event store or a log copy behind, a report not written), said as it happens: the one way a
/// sink reports trouble ([`Inbox::warn`]). The file log writes each as a WARN line while the
/// run goes on; the command says them all as warnings once the views have closed
/// ([`Shutdown::warnings`]). (A sink cannot add events: the orchestrator numbers them, and a
/// run's record ends with `deployment_complete`, before the last deliveries.) A sink never
/// prints: a line on stderr from a sink's thread would garble the interactive view.
#[derive(Clone, Default)]
pub struct Notes(Arc<NotesShared>);

/// How long past the run's deadline a writer of [`Notes`] may still be saying what it could
/// not do (a delivery the deadline cut is said just after it): readers wait that much longer
/// for the last notes. Well within the bus's backstop for the recording sinks.
pub const NOTES_MARGIN: Duration = Duration::from_secs(1);

#[derive(Default)]
struct NotesShared {
    state: Mutex<NotesState>,
    changed: Condvar,
}

#[derive(Default)]
struct NotesState {
    /// Everything said, in order: the file log reads on from where it was, the command reads
    /// them all at the end.
    notes: Vec<Note>,
    /// Recording sinks still running: the file log waits for them before it writes its end.
    writers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who says it: the sink's name (`notifications`).
    pub source: String,
    pub message: String,
}

impl Notes {
    fn lock(&self) -> MutexGuard<'_, NotesState> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle for `source` to say things with. A `counted` one is waited for by
    /// [`Notes::since_when_done`] until it is dropped.
    fn writer(&self, source: &str, counted: bool) -> NoteWriter {
        if counted {
            self.lock().writers += 1;
        }
        NoteWriter {
            notes: self.clone(),
            source: source.to_owned(),
            counted,
        }
    }

    /// What was said since `seen` notes were (moving `seen` on).
    pub fn since(&self, seen: &mut usize) -> Vec<Note> {
        let state = self.lock();
        let new = state.notes.get(*seen..).unwrap_or_default().to_vec();
        *seen = state.notes.len();
        new
    }

    /// Waits until every counted writer is done (or `deadline`), then gives what was said
    /// since `seen`.
    pub fn since_when_done(&self, seen: &mut usize, deadline: Instant) -> Vec<Note> {
        let mut state = self.lock();
        while state.writers > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .0
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(state);
        self.since(seen)
    }

    /// Everything said so far.
    pub fn all(&self) -> Vec<Note> {
        self.lock().notes.clone()
    }
}

/// One sink's end of [`Notes`] (its [`Inbox`] holds one; clone it for the sink's own tasks).
pub struct NoteWriter {
    notes: Notes,
    source: String,
    counted: bool,
}

impl NoteWriter {
    pub fn say(&self, message: impl Into<String>) {
        self.notes.lock().notes.push(Note {
            at: chrono::Utc::now(),
            source: self.source.clone(),
            message: message.into(),
        });
        self.notes.0.changed.notify_all();
    }
}

impl Clone for NoteWriter {
    fn clone(&self) -> Self {
        self.notes.writer(&self.source, self.counted)
    }
}

impl Drop for NoteWriter {
    fn drop(&mut self) {
        if self.counted {
            self.notes.lock().writers -= 1;
            self.notes.0.changed.notify_all();
        }
    }
}

/// What a sink did with the events it got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub name: String,
    pub delivered: u64,
    /// Events it could not deliver (and where they are kept, in `problem`).
    pub undelivered: u64,
    /// What went wrong, in the words of the failing part: the record is incomplete, and the
    /// run fails. (What the run does not depend on is said with [`Inbox::warn`] instead.)
    pub problem: Option<String>,
}

impl Report {
    pub fn ok(name: &str, delivered: u64) -> Self {
        Report {
            name: name.to_owned(),
            delivered,
            ..Default::default()
        }
    }
    pub fn failed(name: &str, problem: impl Into<String>) -> Self {
        Report {
            name: name.to_owned(),
            problem: Some(problem.into()),
            ..Default::default()
        }
    }
}

/// What a sink receives.
#[derive(Debug, Clone)]
pub enum Received {
    Event(Arc<Event>),
    /// The whole state, instead of the events a [`Delivery::Latest`] sink missed.
    Resync(Arc<Model>),
}

impl Received {
    /// Folds this item into a model that starts with the first event's deployment (a snapshot
    /// replaces it).
    pub fn fold_into(self, model: &mut Option<Model>) {
        match self {
            Received::Event(event) => {
                crate::progress::fold(model, &event);
            }
            Received::Resync(snapshot) => *model = Some(Arc::unwrap_or_clone(snapshot)),
        }
    }
}

/// The sink's end of its queue, and of the run's [`Notes`].
pub struct Inbox {
    queue: Arc<Queue>,
    notes: NoteWriter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    /// Nothing now; more may come.
    Waiting,
    /// The queue is closed and drained: the run is over.
    Closed,
}

impl Inbox {
    /// Says what the sink could not do that the run does not depend on: a WARN line in the
    /// file log now, a warning at the end of the run. The exit code stays.
    pub fn warn(&self, message: impl Into<String>) {
        self.notes.say(message);
    }

    /// [`Inbox::warn`] for the sink's own threads or tasks; the file log waits for each to be
    /// dropped (as for the inbox).
    pub fn warner(&self) -> NoteWriter {
        self.notes.clone()
    }

    /// What every sink says, for the one that writes it down (the file log). That sink is no
    /// longer waited for by [`Notes::since_when_done`]: it is the one waiting.
    pub fn notes(&mut self) -> Notes {
        let notes = self.notes.notes.clone();
        self.notes = notes.writer(&self.notes.source, false);
        notes
    }

    /// The next item; `None` once the queue is closed and drained.
    pub fn recv(&self) -> Option<Received> {
        self.recv_timeout(Duration::MAX).ok()
    }

    /// The next item, waiting at most `wait`.
    pub fn recv_timeout(&self, wait: Duration) -> Result<Received, Empty> {
        if let Some(item) = self.queue.taken().pop_front() {
            return Ok(item);
        }
        let until = Instant::now().checked_add(wait);
        let mut state = self.queue.lock();
        loop {
            match self.queue.pop(&mut state) {
                Err(Empty::Waiting) => {}
                other => return other,
            }
            state = match until {
                None => self.queue.sleep(state, None),
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Empty::Waiting);
                    }
                    self.queue.sleep(state, Some(left))
                }
            };
        }
    }

    pub fn try_recv(&self) -> Result<Received, Empty> {
        if let Some(item) = self.queue.taken().pop_front() {
            return Ok(item);
        }
        self.queue.pop(&mut self.queue.lock())
    }

    /// Waits up to `wait` for an item to be ready (or the queue to close), taking nothing.
    pub fn wait(&self, wait: Duration) {
        let until = Instant::now() + wait;
        if !self.queue.taken().is_empty() {
            return;
        }
        let mut state = self.queue.lock();
        while state.items.is_empty()
            && state.spill.is_none()
            && state.after_spill.is_empty()
            && !state.closed
        {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self.queue.sleep(state, Some(left));
        }
    }

    /// The next item, for sinks that run as tasks.
    pub async fn recv_async(&self) -> Option<Received> {
        loop {
            let notified = self.queue.notify.notified();
            match self.try_recv() {
                Ok(item) => return Some(item),
                Err(Empty::Closed) => return None,
                Err(Empty::Waiting) => notified.await,
            }
        }
    }

    /// Set once the run is over: by when the sink should be done (spooling what it cannot
    /// deliver in time).
    pub fn deadline(&self) -> Option<Instant> {
        self.queue.lock().deadline
    }

    /// Items waiting, in memory and spilled.
    pub fn backlog(&self) -> u64 {
        self.queue.backlog()
    }
}

/// One sink's queue.
struct Queue {
    state: Mutex<State>,
    /// Items the sink took out of `state` in one go: it goes through them without contending
    /// with the deploy's thread for `state` (which costs both of them a sleep when it loses).
    /// Only the sink (and `backlog`) locks it.
    taken: Mutex<VecDeque<Received>>,
    ready: Condvar,
    notify: tokio::sync::Notify,
    delivery: Delivery,
    capacity: usize,
    spill_path: PathBuf,
}

struct State {
    items: VecDeque<Received>,
    spill: Option<Spill>,
    /// Events that could not be spilled (no room on disk): after the spill, in memory.
    after_spill: VecDeque<Received>,
    closed: bool,
    /// A `Latest` queue overflowed: events are dropped until a snapshot is sent.
    lagged: bool,
    deadline: Option<Instant>,
    /// Threads blocked on `ready` until woken (the queue was empty: the next item is news).
    /// A condvar signal is a system call even when nobody waits, and the deploy's thread pushes
    /// every event to every queue: it signals only when someone waits.
    sleepers: usize,
    /// Threads napping on `ready` for at most [`GATHER`] after draining a burst: they are woken
    /// early only when [`BATCH`] items wait, so a sink that keeps up is not woken per event.
    napping: usize,
    /// The last take found an item: the sink is in a burst.
    burst: bool,
    /// `ready` was signalled and the sink has not woken since: once is enough.
    signalled: bool,
}

/// How long a sink that just emptied its queue waits for more before it looks again: the most
/// an event waits in a busy queue.
const GATHER: Duration = Duration::from_millis(2);
/// Items that end a nap early.
const BATCH: usize = 64;

/// Events that did not fit in memory, in a file, oldest first.
struct Spill {
    writer: BufWriter<File>,
    reader: BufReader<File>,
    unread: u64,
}

impl Spill {
    fn open(path: &Path) -> io::Result<Spill> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Two opens, not a clone: each end keeps its own file offset.
        let file = File::create(path)?;
        let reader = BufReader::new(File::open(path)?);
        Ok(Spill {
            writer: BufWriter::with_capacity(1 << 16, file),
            reader,
            unread: 0,
        })
    }

    fn write(&mut self, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.writer, event)?;
        self.writer.write_all(b"\n")?;
        self.unread += 1;
        Ok(())
    }

    fn read(&mut self) -> io::Result<Event> {
        self.writer.flush()?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        self.unread -= 1;
        serde_json::from_str(&line).map_err(io::Error::other)
    }
}

impl Queue {
    fn backlog(&self) -> u64 {
        let state = self.lock();
        (state.items.len() + state.after_spill.len() + self.taken().len()) as u64
            + state.spill.as_ref().map_or(0, |s| s.unread)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the sink after `state` changed (`urgent`: not a mere new item, such as the close);
    /// takes the guard so that it reads who waits under the lock, and signals after letting go.
    fn wake(&self, mut state: MutexGuard<'_, State>, urgent: bool) {
        let signal = !state.signalled
            && (state.sleepers > 0
                || (state.napping > 0
                    && (urgent || state.items.len() >= BATCH.min(self.capacity / 2))));
        state.signalled |= signal;
        drop(state);
        if signal {
            self.ready.notify_all();
        }
        // Without a waiting task this only stores a permit (no system call).
        self.notify.notify_one();
    }

    /// Blocks on `ready` for at most `left` (`None`: until woken). Right after a burst, only
    /// naps (see [`GATHER`]).
    fn sleep<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
        left: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        if state.burst {
            state.burst = false;
            state.napping += 1;
            let nap = left.map_or(GATHER, |left| left.min(GATHER));
            let mut state = self
                .ready
                .wait_timeout(state, nap)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            state.napping -= 1;
            state.signalled = false;
            return state;
        }
        state.sleepers += 1;
        let mut state = match left {
            None => self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
            Some(left) => {
                self.ready
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        state.sleepers -= 1;
        state.signalled = false;
        state
    }

    fn taken(&self) -> MutexGuard<'_, VecDeque<Received>> {
        self.taken.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pop(&self, state: &mut State) -> Result<Received, Empty> {
        let item = self.take(state);
        // Cleared by the nap that follows, not by finding the queue empty (which comes first).
        state.burst |= item.is_ok();
        item
    }

    fn take(&self, state: &mut State) -> Result<Received, Empty> {
        let mut taken = self.taken();
        if taken.is_empty() {
            // All of them at once; the emptied buffer goes back for the next ones.
            std::mem::swap(&mut *taken, &mut state.items);
        } else {
            taken.extend(state.items.drain(..));
        }
        if let Some(item) = taken.pop_front() {
            return Ok(item);
        }
        drop(taken);
        if let Some(spill) = state.spill.as_mut() {
            let read = spill.read();
            if spill.unread == 0 {
                state.spill = None;
                let _ = std::fs::remove_file(&self.spill_path);
            }
            match read {
                Ok(event) => return Ok(Received::Event(Arc::new(event))),
                // The spill is this process's own file; if it cannot be read back, keep going
                // with what comes next rather than stall the sink.
                Err(_) => return self.take(state),
            }
        }
        if let Some(item) = state.after_spill.pop_front() {
            return Ok(item);
        }
        Err(if state.closed {
            Empty::Closed
        } else {
            Empty::Waiting
        })
    }

    fn push(&self, event: &Arc<Event>, model: &Model) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        match self.delivery {
            Delivery::Every => {
                let overflowing = state.spill.is_some() || !state.after_spill.is_empty();
                if !overflowing && state.items.len() < self.capacity {
                    state.items.push_back(Received::Event(Arc::clone(event)));
                } else if !state.after_spill.is_empty() || self.spill(&mut state, event).is_err() {
                    // No room on disk either: memory is the only place left; never drop it.
                    state
                        .after_spill
                        .push_back(Received::Event(Arc::clone(event)));
                }
            }
            Delivery::Latest => {
                if state.lagged {
                    // `model` has folded this event in already: the snapshot carries it.
                    if state.items.len() < self.capacity / 2 {
                        state
                            .items
                            .push_back(Received::Resync(Arc::new(model.clone())));
                        state.lagged = false;
                    }
                } else if state.items.len() < self.capacity {
                    state.items.push_back(Received::Event(Arc::clone(event)));
                } else {
                    state.lagged = true;
                }
            }
        }
        self.wake(state, false);
    }

    /// A `Latest` queue that fell behind gets the final state, whatever its length.
    fn settle(&self, model: &Model) {
        let mut state = self.lock();
        if self.delivery == Delivery::Latest && state.lagged && !state.closed {
            state
                .items
                .push_back(Received::Resync(Arc::new(model.clone())));
            state.lagged = false;
            self.wake(state, true);
        }
    }

    fn resync(&self, model: &Model) {
        let mut state = self.lock();
        if self.delivery == Delivery::Latest && !state.closed {
            state
                .items
                .push_back(Received::Resync(Arc::new(model.clone())));
            state.lagged = false;
            self.wake(state, true);
        }
    }

    fn spill(&self, state: &mut State, event: &Event) -> io::Result<()> {
        if state.spill.is_none() {
            state.spill = Some(Spill::open(&self.spill_path)?);
        }
        match state.spill.as_mut() {
            Some(spill) => spill.write(event),
            None => Err(io::Error::other("no spill file")),
        }
    }

    fn close(&self, deadline: Instant) {
        let mut state = self.lock();
        state.closed = true;
        state.deadline = Some(deadline);
        self.wake(state, true);
    }
}

struct Attached {
    name: String,
    purpose: Purpose,
    queue: Arc<Queue>,
    handle: Handle,
}

/// The sinks of a run. Assemble it, hand [`Bus::publisher`] to the orchestrator, and
/// [`Bus::shutdown`] it when the run is over.
pub struct Bus {
    sinks: Vec<Attached>,
    spill_dir: PathBuf,
    notes: Notes,
}

/// The orchestrator's end: sends each event to every sink, never waiting.
#[derive(Clone, Default)]
pub struct Publisher {
    queues: Vec<Arc<Queue>>,
}

impl Publisher {
    /// `model` is the state with `event` folded in (for sinks that need a snapshot).
    pub fn send(&self, event: Arc<Event>, model: &Model) {
        for queue in &self.queues {
            queue.push(&event, model);
        }
    }

    /// The whole state, for sinks that take [`Delivery::Latest`] (a view that joins a run
    /// midway, as `cloud watch` does); sinks that take every event get nothing.
    pub fn resync(&self, model: &Model) {
        for queue in &self.queues {
            queue.resync(model);
        }
    }

    /// After the last event: sinks that fell behind the state get its final form.
    pub fn settle(&self, model: &Model) {
        for queue in &self.queues {
            queue.settle(model);
        }
    }
}

/// How the sinks ended.
pub struct Shutdown {
    /// One report per recording sink.
    pub reports: Vec<Report>,
    /// What the sinks could not do that the run does not depend on ([`Inbox::warn`]), sink by
    /// sink in the order they were attached: for the command to say once the views closed.
    pub warnings: Vec<Note>,
    /// The views, still running (the interactive one may wait for a key): join them last.
    pub views: Vec<(String, Handle)>,
}

impl Bus {
    /// `spill_dir` is where queues that overflow keep their events (a scratch folder).
    pub fn new(spill_dir: &Path) -> Self {
        Bus {
            sinks: Vec::new(),
            spill_dir: spill_dir.to_path_buf(),
            notes: Notes::default(),
        }
    }

    /// Starts `sink` on a queue of its own.
    pub fn attach(&mut self, sink: Box<dyn Sink>) -> io::Result<()> {
        let capacity = sink.capacity();
        let name = sink.name();
        let file_name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let queue = Arc::new(Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                spill: None,
                after_spill: VecDeque::new(),
                closed: false,
                lagged: false,
                deadline: None,
                sleepers: 0,
                napping: 0,
                burst: false,
                signalled: false,
            }),
            taken: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            delivery: sink.delivery(),
            capacity: capacity.max(2),
            spill_path: self
                .spill_dir
                .join(format!("spill-{}-{file_name}.jsonl", self.sinks.len())),
        });
        let purpose = sink.purpose();
        // The file log waits for the recording sinks' last words, not for the views (the
        // interactive one may stay open).
        let notes = self.notes.writer(&name, purpose == Purpose::Record);
        let handle = sink.start(Inbox {
            queue: Arc::clone(&queue),
            notes,
        })?;
        self.sinks.push(Attached {
            name,
            purpose,
            queue,
            handle,
        });
        Ok(())
    }

    pub fn publisher(&self) -> Publisher {
        Publisher {
            queues: self.sinks.iter().map(|s| Arc::clone(&s.queue)).collect(),
        }
    }

    /// Ends the run for every sink: closes the queues, waits for the recording sinks (each has
    /// `drain` to finish what it holds), and hands back the views.
    pub async fn shutdown(self, drain: Duration) -> Shutdown {
        let deadline = Instant::now() + drain;
        for sink in &self.sinks {
            sink.queue.close(deadline);
        }
        let mut reports = Vec::new();
        let mut views = Vec::new();
        let mut waiting = Vec::new();
        let order: Vec<String> = self.sinks.iter().map(|s| s.name.clone()).collect();
        for sink in self.sinks {
            match sink.purpose {
                Purpose::Show => views.push((sink.name, sink.handle)),
                Purpose::Record => {
                    let name = sink.name.clone();
                    let queue = sink.queue;
                    let join = tokio::spawn(sink.handle.join_async(sink.name));
                    waiting.push((name, queue, join));
                }
            }
        }
        // A margin past the deadline for the sink to say what it spooled.
        let backstop = tokio::time::Instant::from_std(deadline + Duration::from_secs(2));
        for (name, queue, join) in waiting {
            let report = match tokio::time::timeout_at(backstop, join).await {
                Ok(Ok(report)) => report,
                Ok(Err(_)) => Report::failed(&name, "it crashed"),
                Err(_) => Report {
                    name: name.clone(),
                    undelivered: queue.backlog(),
                    problem: Some(format!("it did not finish within {}s", drain.as_secs_f64())),
                    ..Default::default()
                },
            };
            reports.push(report);
        }
        let mut warnings = self.notes.all();
        warnings.sort_by_key(|n| order.iter().position(|name| *name == n.source));
        Shutdown {
            reports,
            warnings,
            views,
        }
    }
}
