//! Journals read back: every event of a run, JSON Lines, in
//! `cloud/deploy/<ID>/journal/<env>/<runId>.jsonl` (written by [`crate::sink::journal`]) — the
//! local source for `status`, history and ETA. Run ids start with the UTC start time, so the
//! newest run sorts last.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::event::Event;

/// Runs of one deployment and environment live here.
pub fn dir(manifest_dir: &Path, environment: &str) -> PathBuf {
    manifest_dir.join("journal").join(environment)
}

/// A new run id: `20261127T073000123Z-1a2b`, sortable by start time.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (std::process::id() ^ now.timestamp_subsec_nanos()) & 0xffff;
    format!("{}-{salt:04x}", now.format("%Y%m%dT%H%M%S%3fZ"))
}

/// The journal file of a run.
pub fn path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.jsonl"))
}

/// The newest run's journal, if any run was recorded.
pub fn latest_run(dir: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
}

/// A journal as read: its events, and the lines that were not events.
#[derive(Debug, Default)]
pub struct Journal {
    pub events: Vec<Event>,
    /// `file:line: why` for each line skipped (a torn last line after a crash is not one).
    pub skipped: Vec<String>,
}

/// Reads a journal. A line cut short by a crash ends it quietly; any other line that is not an
/// event is skipped and named in [`Journal::skipped`]. A big journal's lines are read on every
/// core (a 10,000-stack run's is 64 MB), and put back in their order.
pub fn read(path: &Path) -> io::Result<Journal> {
    let bytes = fs::read(path)?;
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    // What each line read as (blank lines are none).
    let parsed = crate::parallel::map(&lines, bytes.len() > PARALLEL_FROM, |raw| {
        // (Checked first: the lossy reading costs more, and lines are UTF-8 but for damage.)
        let line = match std::str::from_utf8(raw) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
        (!line.trim().is_empty()).then(|| Event::from_json_line(&line).map_err(|e| e.to_string()))
    });
    let torn = |number: usize| number == lines.len() && !bytes.ends_with(b"\n");
    let mut journal = Journal {
        events: Vec::with_capacity(lines.len()),
        skipped: Vec::new(),
    };
    let numbered = (parsed.into_iter().enumerate()).filter_map(|(i, read)| Some((i + 1, read?)));
    for (number, read) in numbered {
        match read {
            Ok(event) => journal.events.push(event),
            // The process died in the middle of writing its last line.
            Err(_) if torn(number) => break,
            Err(e) => journal
                .skipped
                .push(format!("{}:{number}: not an event ({e})", path.display())),
        }
    }
    Ok(journal)
}

/// Journals bigger than this (bytes) are read on several threads.
const PARALLEL_FROM: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_corrupt_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let good = r#"{"type":"stack_log","timestamp":"2025-10-09T14:30:00.000Z","sequence":1,"data":{"deploymentId":"D","environment":"dev","stack":"a","level":"info","message":"hi"}}"#;
        fs::write(&path, format!("{good}\n{{\"type\":\"sta")).unwrap();
        let j = read(&path).unwrap();
        assert_eq!((j.events.len(), j.skipped.len()), (1, 0));
        fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        let j = read(&path).unwrap();
        assert_eq!(j.events.len(), 1);
        assert_eq!(j.skipped.len(), 1);
        assert!(
            j.skipped[0].contains("r.jsonl:1: not an event"),
            "{:?}",
            j.skipped
        );
    }

    #[test]
    fn a_big_journal_read_on_several_threads_keeps_its_order_and_its_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let line = |n: u64| {
            format!(
                r#"{{"type":"stack_log","timestamp":"2025-10-09T14:30:00.000Z","sequence":{n},"data":{{"deploymentId":"D","environment":"dev","stack":"a","level":"info","message":"line {n}"}}}}"#
            )
        };
        let mut text = String::new();
        for n in 1..=20_000u64 {
            text.push_str(&line(n));
            text.push('\n');
            if n == 12_345 {
                text.push_str("not an event\n");
            }
        }
        text.push_str("{\"type\":\"sta");
        assert!(text.len() > PARALLEL_FROM);
        fs::write(&path, &text).unwrap();
        let j = read(&path).unwrap();
        let sequences: Vec<u64> = j.events.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=20_000).collect::<Vec<_>>());
        assert_eq!(j.skipped.len(), 1, "{:?}", j.skipped);
        assert!(
            j.skipped[0].contains("big.jsonl:12346: not an event"),
            "{:?}",
            j.skipped
        );
    }
}
