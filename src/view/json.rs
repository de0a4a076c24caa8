//! `--output json`: one event envelope per line, flushed whenever the queue is drained.

use std::io::{self, BufWriter, Write};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::event::Event;

pub fn run(rx: Receiver<Arc<Event>>) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(event) = next {
            serde_json::to_writer(&mut out, &*event)?;
            out.write_all(b"\n")?;
            next = rx.try_recv().ok();
        }
        out.flush()?;
    }
    out.flush()
}
