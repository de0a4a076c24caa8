//! `--output json`: one event envelope per line, flushed whenever the queue is drained.

use std::io::{self, BufWriter, Write};

use crate::bus::{Empty, Inbox, Item};

pub fn run(inbox: &Inbox) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    while let Some(first) = inbox.recv() {
        let mut next = Ok(first);
        while let Ok(item) = next {
            if let Item::Event(event) = item {
                serde_json::to_writer(&mut out, &*event)?;
                out.write_all(b"\n")?;
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
