//! Running a stack's program, the same way for every executor that runs one:
//!
//! - its own session and process group: no controlling terminal (a read of `/dev/tty` fails at
//!   once instead of stopping it), signals reach everything it started, and the terminal's
//!   Ctrl-C reaches only `cloud`, which decides how stacks stop; stdin is `/dev/null` (or the
//!   bytes [`spawn_with_input`] is handed, then closed);
//! - its output read as bytes, decoded lossily, cleaned of terminal control sequences and cut
//!   at [`MAX_LINE`], so that no byte it prints can stop the reading or reach a screen raw;
//! - the stack ends when the program exits: output still buffered is read for [`DRAIN`], then
//!   the pipes are let go (a background child that keeps them open never keeps a stack
//!   running), and processes of its group still alive are reported;
//! - stopped by SIGINT to the group, then SIGKILL to the group after the grace period (or at
//!   once when the stop is forced), whether or not the leader has already exited;
//! - during a run, its group recorded beside the run's lock until the program ended
//!   ([`record_groups`], [`crate::store::groups`]): what a `kill -9` of `cloud` leaves running
//!   is found by the next run.

use std::future::Future;
use std::io;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cancel::Cancel;
use crate::event::LogLevel;
use crate::store::groups::{self, Group, Records};

/// The longest output line kept; the rest of it is dropped and the line marked.
pub const MAX_LINE: usize = 64 * 1024;
/// How long output still in the pipes is read after the program exited.
pub const DRAIN: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stream: Stream,
    pub text: String,
}

/// How a running program is stopped.
#[derive(Debug, Clone)]
pub struct Stop {
    pub cancel: Cancel,
    /// Time between SIGINT and SIGKILL.
    pub grace: Duration,
    /// A second SIGINT this long after the first (tools that take a second one to hurry up).
    pub second_interrupt: Option<Duration>,
}

impl Stop {
    /// SIGINT on cancel, SIGKILL after `grace` (or at once when forced).
    pub fn new(cancel: Cancel, grace: Duration) -> Stop {
        Stop {
            cancel,
            grace,
            second_interrupt: None,
        }
    }
}

/// How the program ended.
#[derive(Debug)]
pub struct Ended {
    pub status: ExitStatus,
    /// Set when it was stopped because the run was cancelled: how (`stopped by SIGINT`, …).
    pub stopped: Option<String>,
    /// Processes of its group still running after it exited (started in the background).
    pub survivors: Vec<u32>,
    /// Its pipes were still open after it exited (held by a background process) and were let go.
    pub detached: bool,
}

/// Where this process's run records its stacks' process groups, and the run's id: set once,
/// by the run, when it holds the lock.
static RECORDS: OnceLock<(Records, String)> = OnceLock::new();

/// From now on, every program started is recorded in `records` for run `run_id`.
pub fn record_groups(records: Records, run_id: &str) {
    let _ = RECORDS.set((records, run_id.to_owned()));
}

tokio::task_local! {
    /// The stack whose program is being started: its record names it.
    static STACK: String;
}

/// Runs `work` (a stack's executor) as stack `stack`'s.
pub async fn in_stack<F: Future>(stack: String, work: F) -> F::Output {
    STACK.scope(stack, work).await
}

/// Records the group `pgid` just started, if this run records them. A group that cannot be
/// recorded is not left to run unseen: the error stops it.
fn record(pgid: i32) -> io::Result<bool> {
    let Some((records, run_id)) = RECORDS.get() else {
        return Ok(false);
    };
    let stack = STACK.try_with(Clone::clone).ok();
    // Gone already (it exited at once): nothing to find later.
    let Some(group) = Group::of(pgid as u32, stack, run_id) else {
        return Ok(false);
    };
    records.add(&group).map_err(|e| {
        io::Error::other(format!(
            "cannot record its process group in {}: {e}",
            records.dir().display()
        ))
    })?;
    Ok(true)
}

/// Starts `command` under the rules above.
pub fn spawn(command: Command, stop: Stop) -> io::Result<Running> {
    start(command, stop, None)
}

/// [`spawn`], with `input` written to the program's stdin (then closed) instead of `/dev/null`:
/// how a secret reaches a program without showing on its command line.
pub fn spawn_with_input(command: Command, stop: Stop, input: Vec<u8>) -> io::Result<Running> {
    start(command, stop, Some(input))
}

fn start(mut command: Command, stop: Stop, input: Option<Vec<u8>>) -> io::Result<Running> {
    let stdin = match input {
        Some(_) => std::process::Stdio::piped(),
        None => std::process::Stdio::null(),
    };
    command
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // A session leader's process group id is its pid.
    let pgid = child.id().map_or(0, |p| p as i32);
    let recorded = match record(pgid) {
        Ok(recorded) => recorded,
        Err(e) => {
            signal_group(pgid, libc::SIGKILL);
            return Err(e);
        }
    };
    let (tx, lines) = mpsc::channel(1024);
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(out, Stream::Stdout, tx.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(err, Stream::Stderr, tx)));
    }
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        readers.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // A program that exits without reading all of it is no error of ours.
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        }));
    }
    Ok(Running {
        child,
        pgid,
        lines,
        lines_open: true,
        readers,
        stop,
        status: None,
        drain_until: None,
        stopping: None,
        second_interrupt_at: None,
        killed: false,
        detached: false,
        recorded,
    })
}

/// A started program. Read it with [`next_line`](Self::next_line) until `None`, then
/// [`finish`](Self::finish).
pub struct Running {
    child: Child,
    pgid: i32,
    lines: mpsc::Receiver<Line>,
    lines_open: bool,
    readers: Vec<JoinHandle<()>>,
    stop: Stop,
    status: Option<ExitStatus>,
    /// After the exit: read buffered output until then.
    drain_until: Option<Instant>,
    /// Asked to stop: how, and when SIGKILL follows.
    stopping: Option<(String, Instant)>,
    /// When the second SIGINT is due, if one is.
    second_interrupt_at: Option<Instant>,
    killed: bool,
    detached: bool,
    /// Its group is recorded (removed when this goes).
    recorded: bool,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pgid as u32
    }

    /// The next line of output; `None` once the program exited and its output was read.
    pub async fn next_line(&mut self) -> Option<Line> {
        loop {
            if self.status.is_some() && !self.lines_open {
                return None;
            }
            let drain_until = self.drain_until;
            let kill_at = self
                .stopping
                .as_ref()
                .map(|(_, at)| *at)
                .filter(|_| !self.killed);
            let again_at = self.second_interrupt_at.filter(|_| !self.killed);
            let cancel = self.stop.cancel.clone();
            tokio::select! {
                biased;
                line = self.lines.recv(), if self.lines_open => match line {
                    Some(line) => return Some(line),
                    None => self.lines_open = false,
                },
                status = self.child.wait(), if self.status.is_none() => {
                    // An error here means the child is gone already; report it as killed.
                    self.status = Some(status.unwrap_or_else(|_| killed_status()));
                    self.drain_until = Some(Instant::now() + DRAIN);
                }
                _ = sleep_until(drain_until), if drain_until.is_some() => {
                    // Something in the background holds the pipes open: let them go.
                    self.detached = true;
                    self.release_pipes();
                    return None;
                }
                _ = cancel.cancelled(), if self.stopping.is_none() => self.interrupt(),
                _ = sleep_until(again_at), if again_at.is_some() => {
                    signal_group(self.pgid, libc::SIGINT);
                    self.second_interrupt_at = None;
                }
                _ = cancel.forced(), if !self.killed => self.kill("killed at once (the stop was forced)"),
                _ = sleep_until(kill_at), if kill_at.is_some() => {
                    let grace = self.stop.grace.as_secs_f64();
                    self.kill(&format!("killed with SIGKILL after a {grace}s grace period"));
                }
            }
        }
    }

    fn interrupt(&mut self) {
        signal_group(self.pgid, libc::SIGINT);
        let now = Instant::now();
        self.stopping = Some(("stopped by SIGINT".to_owned(), now + self.stop.grace));
        self.second_interrupt_at = self.stop.second_interrupt.map(|after| now + after);
    }

    fn kill(&mut self, how: &str) {
        signal_group(self.pgid, libc::SIGKILL);
        self.killed = true;
        let at = self
            .stopping
            .as_ref()
            .map_or_else(Instant::now, |(_, at)| *at);
        self.stopping = Some((how.to_owned(), at));
    }

    fn release_pipes(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
        self.lines.close();
        self.lines_open = false;
    }

    /// Waits for the end (reading and dropping any output left) and says how it went.
    pub async fn finish(mut self) -> io::Result<Ended> {
        while self.next_line().await.is_some() {}
        let status = match self.status {
            Some(status) => status,
            None => self.child.wait().await?,
        };
        // A stop reaches every process of the group, not only the leader: what outlives the
        // leader is killed when the grace period ends (at once when forced).
        if self.stopping.is_some() && !self.killed {
            let kill_at = self
                .stopping
                .as_ref()
                .map_or_else(Instant::now, |(_, at)| *at);
            while group_alive(self.pgid)
                && Instant::now() < kill_at
                && !self.stop.cancel.is_forced()
            {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            if group_alive(self.pgid) {
                let grace = self.stop.grace.as_secs_f64();
                self.kill(&format!(
                    "its background processes were killed with SIGKILL after a {grace}s grace period"
                ));
            }
        }
        let survivors = if self.killed {
            Vec::new()
        } else {
            group_members(self.pgid)
        };
        Ok(Ended {
            status,
            stopped: self.stopping.take().map(|(how, _)| how),
            survivors,
            detached: self.detached,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Given up on (its task was aborted): nothing of it may outlive `cloud`'s interest.
        if self.status.is_none() {
            signal_group(self.pgid, libc::SIGKILL);
        }
        for reader in &self.readers {
            reader.abort();
        }
        // Its program ended (or was killed just now): no record to find it by.
        if let (true, Some((records, _))) = (self.recorded, RECORDS.get()) {
            records.remove(self.pgid as u32);
        }
    }
}

fn killed_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(libc::SIGKILL)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn signal_group(pgid: i32, signal: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group we created; no memory
        // is touched.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Whether any process of the group still exists.
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pgid > 0 && unsafe { libc::kill(-pgid, 0) } == 0 && !group_members(pgid).is_empty()
}

/// The live (not zombie) processes of a process group.
fn group_members(pgid: i32) -> Vec<u32> {
    u32::try_from(pgid).map_or_else(|_| Vec::new(), groups::members)
}

/// Reads lines until the stream ends or the receiver is gone. Never stops on odd bytes.
async fn read_lines<R: AsyncRead + Unpin>(stream: R, which: Stream, tx: mpsc::Sender<Line>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        let (part, used, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        cut |= part.len() > room;
        reader.consume(used);
        if ended {
            let text = finish_line(&line, cut);
            line.clear();
            cut = false;
            if tx
                .send(Line {
                    stream: which,
                    text,
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }
    if !line.is_empty() || cut {
        let _ = tx
            .send(Line {
                stream: which,
                text: finish_line(&line, cut),
            })
            .await;
    }
}

fn finish_line(bytes: &[u8], cut: bool) -> String {
    let mut text = clean(bytes);
    if cut {
        text.push_str(&format!(" … [line cut at {} KiB]", MAX_LINE / 1024));
    }
    text
}

/// How a program ended, in words: `exited with status 3`, `was killed by signal 9`.
pub fn exit_words(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "failed".into(),
    }
}

/// A command as messages name it, quoted: `` `./deploy.sh` ``, or for a script of several lines
/// its first line and how many follow (`` `echo "validating…"` (+3 lines) ``). The script is
/// the manifest's to show; in a message it would bury what went wrong.
pub fn command_name(script: &str) -> String {
    let mut lines = script.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    match lines.count() {
        0 => format!("`{first}`"),
        1 => format!("`{first}` (+1 line)"),
        more => format!("`{first}` (+{more} lines)"),
    }
}

/// A line a program wrote on stderr, as a log: the level it says it is, without saying it
/// twice (`warning: retrying` is the warning `retrying`, `Error: QueueDeletedRecently` the
/// error `QueueDeletedRecently`). Any other stderr line is a warning.
pub fn stderr_log(text: &str) -> (LogLevel, &str) {
    for (word, level) in [
        ("warning:", LogLevel::Warn),
        ("Warning:", LogLevel::Warn),
        ("WARNING:", LogLevel::Warn),
        ("error:", LogLevel::Error),
        ("Error:", LogLevel::Error),
        ("ERROR:", LogLevel::Error),
    ] {
        if let Some(rest) = text.strip_prefix(word) {
            let rest = rest.trim_start();
            if !rest.is_empty() {
                return (level, rest);
            }
        }
    }
    (LogLevel::Warn, text)
}

/// One line of a program's output as people should see it: decoded lossily, without terminal
/// control sequences (colours, cursor moves, titles, alternate screens), and for a line
/// redrawn with `\r` (progress bars) only its last state.
pub fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut last = String::new();
    for segment in text.split('\r') {
        let cleaned = strip_controls(segment);
        if !cleaned.trim().is_empty() || last.is_empty() {
            last = cleaned;
        }
    }
    last
}

fn strip_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut column = 0usize;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Character set designations and the like take one more character.
                Some('(' | ')' | '*' | '+' | '-' | '.' | '/' | '#' | '%' | ' ') => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => {
                let to = (column / 8 + 1) * 8;
                out.extend(std::iter::repeat_n(' ', to - column));
                column = to;
            }
            c if c.is_control() => {}
            // Bidirectional overrides could make a log line read as something else.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

/// `ESC [` parameters and intermediates, up to the final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
    }
}

/// An OSC / DCS / … string, up to BEL or the string terminator (`ESC \`).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars>) {
    while let Some(c) = chars.next() {
        match c {
            '\x07' | '\u{9c}' => break,
            '\x1b' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_named_by_its_first_line_and_a_stderr_line_by_its_own_level() {
        assert_eq!(command_name("./deploy.sh"), "`./deploy.sh`");
        assert_eq!(
            command_name("echo \"validating…\"\nsleep 1\n\necho x\nexit 3\n"),
            "`echo \"validating…\"` (+3 lines)"
        );
        assert_eq!(command_name("a\nb"), "`a` (+1 line)");
        assert_eq!(
            stderr_log("warning: retrying CreateQueue"),
            (LogLevel::Warn, "retrying CreateQueue")
        );
        assert_eq!(
            stderr_log("Error: QueueDeletedRecently"),
            (LogLevel::Error, "QueueDeletedRecently")
        );
        assert_eq!(stderr_log("npm WARN x"), (LogLevel::Warn, "npm WARN x"));
        assert_eq!(stderr_log("error:"), (LogLevel::Warn, "error:"));
    }

    #[test]
    fn cleans_what_would_break_a_screen() {
        assert_eq!(clean(b"\x1b[31mred\x1b[0m text"), "red text");
        assert_eq!(clean(b"\x1b[?25lhidden cursor\x1b[?1049l"), "hidden cursor");
        assert_eq!(clean(b"\x1b]0;window title\x07after"), "after");
        assert_eq!(clean(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link");
        assert_eq!(clean(b"10%\r50%\r100% done"), "100% done");
        assert_eq!(clean(b"done\r"), "done");
        assert_eq!(clean(b"Schl\xfcssel"), "Schl\u{fffd}ssel");
        assert_eq!(clean(b"a\tb"), "a       b");
        assert_eq!(clean(b"bell\x07 and \x08back"), "bell and back");
        assert_eq!(clean("\u{9b}31mC1\u{202e}".as_bytes()), "C1");
    }
}
