//! What a sink that sends slower than the run makes events holds until it can send them (the
//! DynamoDB sink: a local table takes ~2,000 items a second, a big run makes ~200,000 events a
//! second). Everything is taken off the bus at once, so the bus never spills on the deploy's
//! thread; the oldest [`MEMORY`] events wait in memory, and the rest are left where they
//! already are — in the journal, which has every event of the run, in order — to be read back
//! when their turn comes. Keeping a second copy would cost a serialization per event on a
//! machine the deploy keeps busy (it was ~45 % of the sink's time during a big run).
//!
//! An event is left to the journal only once the journal says its file holds it
//! ([`Flushed`]); until then it waits in memory. When the journal cannot be written (a full
//! disk), it never says so, and past [`UNCONFIRMED`] events the backlog writes an overflow file
//! of its own, and past that (no room there either) keeps them in memory: the sink may be the
//! only record left, and an event is never dropped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::event::Event;
use crate::sink::journal::Flushed;

/// Events held in memory ahead of sending.
pub const MEMORY: usize = 20_000;
/// Events held in memory while the journal has not yet said they are in its file; past that,
/// the oldest go to the overflow file.
pub const UNCONFIRMED: usize = 65_536;

/// The events taken off the bus and not yet sent, oldest first: `ready` in memory, then runs
/// of events left in the journal or in the overflow file, then those the journal has not yet
/// confirmed.
pub struct Backlog {
    ready: VecDeque<Arc<Event>>,
    later: VecDeque<Later>,
    /// Events in `later`.
    later_len: u64,
    unconfirmed: VecDeque<Arc<Event>>,
    journal: Option<JournalTail>,
    overflow: Overflow,
    /// Events that could not be read back from the journal or the overflow file (changed
    /// under the run): the run's `.pending` marker must stay, to send the journal again.
    unreadable: u64,
}

/// A run of events waiting outside memory.
enum Later {
    /// In the journal: these sequences, inclusive.
    Journal { from: u64, to: u64 },
    /// The next this many events of the overflow file.
    Overflow(u64),
}

/// The journal, read forward as the backlog needs it.
pub struct JournalTail {
    path: PathBuf,
    flushed: Arc<Flushed>,
    reader: Option<BufReader<File>>,
    line: String,
}

impl JournalTail {
    pub fn new(path: PathBuf, flushed: Arc<Flushed>) -> JournalTail {
        JournalTail {
            path,
            flushed,
            reader: None,
            line: String::new(),
        }
    }

    /// The event of `sequence` (the journal only grows, its sequences in order: lines before
    /// it are passed over, those of events sent already without being parsed). `None` when
    /// the file does not hold it; the line read past it is kept for the next.
    fn read(&mut self, sequence: u64) -> Option<Event> {
        if self.reader.is_none() {
            self.reader = Some(BufReader::new(File::open(&self.path).ok()?));
        }
        loop {
            if !self.line.ends_with('\n') {
                // Nothing held, or the start of a line (read_line adds the rest).
                let reader = self.reader.as_mut()?;
                let n = reader.read_line(&mut self.line).ok()?;
                if n == 0 || !self.line.ends_with('\n') {
                    return None;
                }
            }
            let found = envelope_sequence(&self.line).or_else(|| {
                Event::from_json_line(self.line.trim_end())
                    .ok()
                    .map(|e| e.sequence)
            });
            match found {
                Some(s) if s > sequence => return None,
                Some(s) if s == sequence => {
                    let event = Event::from_json_line(self.line.trim_end()).ok();
                    self.line.clear();
                    return event;
                }
                // Before it, or not an event: passed over.
                _ => self.line.clear(),
            }
        }
    }
}

/// The envelope's `sequence`, read without parsing the line: it comes before `data` (see
/// [`Event`]'s serializer), so its first `"sequence":` is the envelope's.
fn envelope_sequence(line: &str) -> Option<u64> {
    const KEY: &str = "\"sequence\":";
    let at = line.find(KEY)? + KEY.len();
    let digits = line[at..].bytes().take_while(u8::is_ascii_digit).count();
    line[at..at + digits].parse().ok()
}

impl Backlog {
    /// A backlog whose overflow file (if it ever needs one) is `overflow`, reading back from
    /// the journal when there is one.
    pub fn new(overflow: PathBuf, journal: Option<JournalTail>) -> Backlog {
        Backlog {
            ready: VecDeque::new(),
            later: VecDeque::new(),
            later_len: 0,
            unconfirmed: VecDeque::new(),
            journal,
            overflow: Overflow::new(overflow),
            unreadable: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.ready.len() as u64 + self.later_len + self.unconfirmed.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events that could not be read back from the journal or the overflow file.
    pub fn unreadable(&self) -> u64 {
        self.unreadable
    }

    pub fn push(&mut self, event: Arc<Event>) {
        if self.later.is_empty() && self.unconfirmed.is_empty() && self.ready.len() < MEMORY {
            self.ready.push_back(event);
            return;
        }
        self.unconfirmed.push_back(event);
        self.settle();
    }

    /// Leaves to the journal what its file holds now, and sends the oldest of what it does
    /// not to the overflow file once there are too many.
    pub fn settle(&mut self) {
        let through = self.journal.as_ref().map_or(0, |j| j.flushed.through());
        while let Some(event) = self.unconfirmed.front() {
            let sequence = event.sequence;
            if sequence <= through {
                self.unconfirmed.pop_front();
                self.later_len += 1;
                match self.later.back_mut() {
                    Some(Later::Journal { to, .. }) if *to + 1 == sequence => *to = sequence,
                    _ => self.later.push_back(Later::Journal {
                        from: sequence,
                        to: sequence,
                    }),
                }
            } else if self.unconfirmed.len() > UNCONFIRMED {
                let event = self.unconfirmed.pop_front().expect("front was there");
                if self.overflow.push(&event).is_ok() {
                    self.later_len += 1;
                    match self.later.back_mut() {
                        Some(Later::Overflow(n)) => *n += 1,
                        _ => self.later.push_back(Later::Overflow(1)),
                    }
                } else {
                    // No room on disk: memory is the only place left; never drop it.
                    self.ready.push_back(event);
                }
            } else {
                break;
            }
        }
    }

    /// The oldest event.
    pub fn pop(&mut self) -> Option<Arc<Event>> {
        if self.ready.is_empty() {
            self.refill();
        }
        self.ready.pop_front()
    }

    /// Brings up to half of [`MEMORY`] events from where they wait into memory, in order.
    fn refill(&mut self) {
        while self.ready.len() < MEMORY / 2 {
            let Some(front) = self.later.front_mut() else {
                // Nothing elsewhere: what the journal has not confirmed is next.
                let room = MEMORY / 2 - self.ready.len();
                let n = room.min(self.unconfirmed.len());
                self.ready.extend(self.unconfirmed.drain(..n));
                return;
            };
            match front {
                Later::Journal { from, to } => {
                    let sequence = *from;
                    match self.journal.as_mut().and_then(|j| j.read(sequence)) {
                        Some(event) => self.ready.push_back(Arc::new(event)),
                        None => self.unreadable += 1,
                    }
                    self.later_len -= 1;
                    if sequence == *to {
                        self.later.pop_front();
                    } else {
                        *from += 1;
                    }
                }
                Later::Overflow(n) => {
                    match self.overflow.pop() {
                        Some(event) => self.ready.push_back(Arc::new(event)),
                        // The file changed under the run: counted, never guessed at.
                        None => self.unreadable += 1,
                    }
                    self.later_len -= 1;
                    *n -= 1;
                    if *n == 0 {
                        self.later.pop_front();
                    }
                }
            }
        }
    }

    /// Removes the overflow file, if one was written.
    pub fn remove_overflow(&mut self) {
        self.overflow.remove();
    }
}

/// Events written and read back in turn, as journal lines. Kept beside the spool; one left
/// behind by a run that died is removed by the next replay (its `.pending` marker resends them).
struct Overflow {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: Option<BufReader<File>>,
    line: String,
}

impl Overflow {
    fn new(path: PathBuf) -> Overflow {
        Overflow {
            path,
            writer: None,
            reader: None,
            line: String::new(),
        }
    }

    fn push(&mut self, event: &Event) -> io::Result<()> {
        if self.writer.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Two opens, not a clone: each end keeps its own offset.
            let file = File::create(&self.path)?;
            self.reader = Some(BufReader::new(File::open(&self.path)?));
            self.writer = Some(BufWriter::with_capacity(1 << 16, file));
        }
        if let Some(w) = self.writer.as_mut() {
            serde_json::to_writer(&mut *w, event)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The oldest event not read yet; `None` if it does not read back (the file was tampered
    /// with).
    fn pop(&mut self) -> Option<Event> {
        self.writer.as_mut()?.flush().ok()?;
        self.line.clear();
        let n = self.reader.as_mut()?.read_line(&mut self.line).ok()?;
        if n == 0 {
            return None;
        }
        serde_json::from_str(&self.line).ok()
    }

    fn remove(&mut self) {
        if self.writer.take().is_some() {
            self.reader = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn event(sequence: u64) -> Arc<Event> {
        // A message that looks like an envelope's key, to be passed over as one.
        let log = testing::log("a", &format!("m{sequence} \"sequence\":1"));
        Arc::new(testing::event(sequence, log))
    }

    /// Appends events to a journal file the way the journal writes them.
    fn journal_append(path: &std::path::Path, events: &[Arc<Event>]) {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for e in events {
            serde_json::to_writer(&mut out, &**e).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }

    fn drain(backlog: &mut Backlog) -> Vec<u64> {
        std::iter::from_fn(|| backlog.pop())
            .map(|e| e.sequence)
            .collect()
    }

    struct Setup {
        dir: tempfile::TempDir,
        flushed: Arc<Flushed>,
        backlog: Backlog,
    }

    fn setup(with_journal: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let flushed = Arc::new(Flushed::default());
        let journal = with_journal
            .then(|| JournalTail::new(dir.path().join("j.jsonl"), Arc::clone(&flushed)));
        let backlog = Backlog::new(dir.path().join("r.overflow"), journal);
        Setup {
            dir,
            flushed,
            backlog,
        }
    }

    #[test]
    fn events_the_journal_holds_are_read_back_from_it_not_kept_twice() {
        let Setup {
            dir,
            flushed,
            mut backlog,
        } = setup(true);
        let total = (MEMORY + UNCONFIRMED + 5_000) as u64;
        let events: Vec<_> = (1..=total).map(event).collect();
        // The journal is a little ahead of the sink, as in a run.
        for chunk in events.chunks(1000) {
            journal_append(&dir.path().join("j.jsonl"), chunk);
            flushed.reached(chunk.last().unwrap().sequence);
            for e in chunk {
                backlog.push(Arc::clone(e));
            }
        }
        assert_eq!(backlog.len(), total);
        assert_eq!(backlog.ready.len(), MEMORY);
        assert!(backlog.unconfirmed.is_empty());
        assert!(!dir.path().join("r.overflow").exists(), "a second copy");
        let mut seen = Vec::new();
        while let Some(e) = backlog.pop() {
            assert_eq!(*e, *events[e.sequence as usize - 1]);
            seen.push(e.sequence);
        }
        assert_eq!(seen, (1..=total).collect::<Vec<_>>());
        assert_eq!(backlog.unreadable(), 0);
    }

    #[test]
    fn what_the_journal_has_not_confirmed_waits_in_memory_until_it_does() {
        let Setup {
            dir,
            flushed,
            mut backlog,
        } = setup(true);
        let journal = dir.path().join("j.jsonl");
        let total = MEMORY as u64 + 300;
        let events: Vec<_> = (1..=total).map(event).collect();
        for e in &events {
            backlog.push(Arc::clone(e));
        }
        // Nothing in the file yet: the 300 past memory are held.
        assert_eq!(backlog.unconfirmed.len(), 300);
        // The journal writes 100 of them; 100 more reach the file unflushed (a partial
        // buffer: not said), and the sink must not take them from it yet.
        journal_append(&journal, &events[..MEMORY + 200]);
        flushed.reached(MEMORY as u64 + 100);
        backlog.settle();
        assert_eq!(backlog.unconfirmed.len(), 200);
        assert_eq!(backlog.later_len, 100);
        let first: Vec<u64> = (0..MEMORY + 150)
            .map(|_| backlog.pop().unwrap().sequence)
            .collect();
        assert_eq!(first, (1..=MEMORY as u64 + 150).collect::<Vec<_>>());
        journal_append(&journal, &events[MEMORY + 200..]);
        flushed.reached(total);
        backlog.settle();
        assert_eq!(
            drain(&mut backlog),
            ((MEMORY as u64 + 151)..=total).collect::<Vec<_>>()
        );
        assert_eq!(backlog.unreadable(), 0);
    }

    #[test]
    fn a_journal_that_cannot_be_written_leaves_them_to_the_overflow_file() {
        // The journal failed (a full disk): it never says it holds anything.
        let Setup {
            dir, mut backlog, ..
        } = setup(true);
        let total = (MEMORY + UNCONFIRMED + 700) as u64;
        for n in 1..=total {
            backlog.push(event(n));
        }
        assert_eq!(backlog.unconfirmed.len(), UNCONFIRMED);
        assert_eq!(backlog.later_len, 700);
        assert!(dir.path().join("r.overflow").exists());
        assert_eq!(drain(&mut backlog), (1..=total).collect::<Vec<_>>());
        assert_eq!(backlog.unreadable(), 0);
        backlog.remove_overflow();
        assert!(!dir.path().join("r.overflow").exists());
    }

    #[test]
    fn a_journal_changed_under_the_run_is_counted_not_guessed() {
        let Setup {
            dir,
            flushed,
            mut backlog,
        } = setup(true);
        let total = MEMORY as u64 + 50;
        let events: Vec<_> = (1..=total).map(event).collect();
        // Ten of the events the journal said it held are missing from its file.
        let mut kept = events.clone();
        kept.drain(MEMORY + 20..MEMORY + 30);
        journal_append(&dir.path().join("j.jsonl"), &kept);
        flushed.reached(total);
        for e in &events {
            backlog.push(Arc::clone(e));
        }
        let seen = drain(&mut backlog);
        assert_eq!(backlog.unreadable(), 10);
        let expected: Vec<u64> = kept.iter().map(|e| e.sequence).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn the_envelopes_sequence_is_read_without_parsing() {
        let e = event(123_456);
        let line = serde_json::to_string(&*e).unwrap();
        assert_eq!(envelope_sequence(&line), Some(123_456));
        assert_eq!(envelope_sequence("{\"type\":\"x\"}"), None);
    }
}
