//! Journals read back: every event of a run, JSON Lines, in
//! `cloud/deploy/<ID>/journal/<env>/<runId>.jsonl` (written by [`crate::sink::journal`]) — the
//! local source for `status`, history and ETA. Run ids start with the UTC start time, so the
//! newest run sorts last.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
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
/// event is skipped and named in [`Journal::skipped`].
pub fn read(path: &Path) -> io::Result<Journal> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut journal = Journal::default();
    let mut bytes = Vec::new();
    let mut number = 0;
    loop {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        number += 1;
        let complete = bytes.ends_with(b"\n");
        let line = String::from_utf8_lossy(&bytes);
        if line.trim().is_empty() {
            continue;
        }
        match Event::from_json_line(&line) {
            Ok(event) => journal.events.push(event),
            // The process died in the middle of writing its last line.
            Err(_) if !complete => break,
            Err(e) => journal
                .skipped
                .push(format!("{}:{number}: not an event ({e})", path.display())),
        }
    }
    Ok(journal)
}

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
}
