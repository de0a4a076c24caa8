//! `--output json`: one event envelope per line, flushed whenever the queue is drained.

use std::io::{self, BufWriter, Write};

use std::time::Duration;

use super::words::format_duration;
use super::Control;
use crate::bus::{Empty, Inbox, Item};

/// Stdout is the event stream; a stop in progress is said on stderr.
pub fn run(inbox: &Inbox, control: &Control) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut said_stopping = None;
    loop {
        let mut next = inbox.recv_timeout(Duration::from_millis(200));
        while let Ok(item) = next {
            if let Item::Event(event) = item {
                serde_json::to_writer(&mut out, &*event)?;
                out.write_all(b"\n")?;
            }
            next = inbox.try_recv();
        }
        out.flush()?;
        // (No model here: folding every event would cost the stream its speed.)
        if let Some(stopping) = control.stopping() {
            if said_stopping != Some(stopping.forced) {
                said_stopping = Some(stopping.forced);
                if stopping.forced {
                    eprintln!("cloud: forced: killing the running stacks now");
                } else {
                    eprintln!(
                        "cloud: stopping: waiting up to {} for the running stacks (Ctrl-C again to force)",
                        format_duration(stopping.grace.as_secs_f64().ceil() as u64)
                    );
                }
            }
        }
        if matches!(next, Err(Empty::Closed)) {
            break;
        }
    }
    out.flush()
}
