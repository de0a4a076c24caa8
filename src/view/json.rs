//! `--output json`: one event envelope per line, flushed whenever the queue is drained.

use std::io::{self, BufWriter, Write};

use super::Control;
use crate::bus::{Empty, Inbox, Received};
use crate::event::EventData;
use crate::words::{format_duration, Stopping};

/// Stdout is the event stream; a stop in progress is said on stderr.
pub fn run(inbox: &Inbox, _control: &Control) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    while let Some(item) = inbox.recv() {
        let mut next = Ok(item);
        while let Ok(item) = next {
            if let Received::Event(event) = item {
                serde_json::to_writer(&mut out, &*event)?;
                out.write_all(b"\n")?;
                // (No model here: folding every event would cost the stream its speed.)
                if let EventData::DeploymentCancelling(stop) = &event.data {
                    out.flush()?;
                    say_stopping(Stopping::of_event(stop));
                }
            }
            next = inbox.try_recv();
        }
        out.flush()?;
        if matches!(next, Err(Empty::Closed)) {
            break;
        }
    }
    out.flush()
}

fn say_stopping(stopping: Option<Stopping>) {
    match stopping {
        None => {}
        Some(Stopping { forced: true, .. }) => {
            eprintln!("cloud: forced: killing the running stacks now")
        }
        Some(Stopping { grace, .. }) => eprintln!(
            "cloud: stopping: waiting up to {} for the running stacks (Ctrl-C again to force)",
            format_duration(grace.as_secs_f64().ceil() as u64)
        ),
    }
}
