//! The journal: every event of a run, JSON Lines, in
//! `cloud/deploy/<ID>/journal/<env>/<runId>.jsonl` — the local source for `status`, history and
//! ETA. Run ids start with the UTC start time, so the newest run sorts last.
//!
//! Beside the runs, `history.json` keeps what later runs need without re-reading journals:
//! each stack's recent durations and last outputs.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventData, Outputs, StackState};
use crate::progress::Model;

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

/// The journal writer thread; joining it gives the journal's path.
pub type Writer = JoinHandle<io::Result<PathBuf>>;

/// Starts the journal writer thread for a run. It writes every event it gets and flushes
/// whenever a stack ends and at the end of the run.
pub fn start(dir: &Path, run_id: &str) -> io::Result<(Sender<Arc<Event>>, Writer)> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("{run_id}.jsonl"));
    let file = fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("journal".into())
        .spawn(move || write_all(rx, file).map(|()| path))?;
    Ok((tx, handle))
}

fn write_all(rx: Receiver<Arc<Event>>, file: File) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, file);
    for event in rx {
        serde_json::to_writer(&mut out, &*event)?;
        out.write_all(b"\n")?;
        let stack_ended = matches!(
            event.data,
            EventData::StackDeployed(_)
                | EventData::StackFailed(_)
                | EventData::StackSkipped(_)
                | EventData::StackBlocked(_)
                | EventData::StackDestroyed(_)
                | EventData::DeploymentComplete(_)
        );
        if stack_ended {
            out.flush()?;
        }
    }
    out.flush()?;
    out.get_ref().sync_all()
}

/// The newest run's journal, if any run was recorded.
pub fn latest_run(dir: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
}

/// Reads a journal. A line cut short by a crash ends the reading; other bad lines are errors.
pub fn read(path: &Path) -> io::Result<Vec<Event>> {
    let reader = BufReader::new(File::open(path)?);
    let mut events = Vec::new();
    let mut lines = reader.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(&line) {
            Ok(event) => events.push(event),
            Err(_) if lines.peek().is_none() => break,
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: not an event: {e}", path.display(), n + 1),
                ))
            }
        }
    }
    Ok(events)
}

/// Durations kept per stack for the median.
const KEEP_DURATIONS: usize = 5;

/// What later runs remember of earlier ones.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    #[serde(default)]
    pub stacks: BTreeMap<String, StackHistory>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackHistory {
    /// Seconds of the recent successful runs, oldest first.
    #[serde(default)]
    pub durations: Vec<f64>,
    #[serde(default)]
    pub outputs: Outputs,
}

impl History {
    fn path(dir: &Path) -> PathBuf {
        dir.join("history.json")
    }

    /// The history in `dir`; empty when there is none or it cannot be read (it is only a cache).
    pub fn load(dir: &Path) -> History {
        fs::read(Self::path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Adds a finished run's successful stacks.
    pub fn record(&mut self, model: &Model) {
        for stack in &model.stacks {
            if stack.status != StackState::Deployed {
                continue;
            }
            let entry = self.stacks.entry(stack.name.clone()).or_default();
            let seconds = match (stack.start_time, stack.end_time) {
                (Some(a), Some(b)) => crate::progress::seconds_between(a, b),
                _ => continue,
            };
            entry.durations.push((seconds * 1000.0).round() / 1000.0);
            let excess = entry.durations.len().saturating_sub(KEEP_DURATIONS);
            entry.durations.drain(..excess);
            entry.outputs = stack.outputs.clone();
        }
    }

    /// Writes atomically (temp file + rename), so a crash never leaves half a file.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let tmp = dir.join("history.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(tmp, Self::path(dir))
    }
}

impl crate::plan::History for History {
    fn median_seconds(&self, stack: &str) -> Option<f64> {
        let mut d = self.stacks.get(stack)?.durations.clone();
        if d.is_empty() {
            return None;
        }
        d.sort_by(f64::total_cmp);
        let mid = d.len() / 2;
        Some(if d.len() % 2 == 1 {
            d[mid]
        } else {
            (d[mid - 1] + d[mid]) / 2.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::History as _;

    #[test]
    fn median_of_recent_runs() {
        let mut h = History::default();
        h.stacks.insert(
            "a".into(),
            StackHistory {
                durations: vec![10.0, 30.0, 20.0, 40.0],
                outputs: Outputs::new(),
            },
        );
        assert_eq!(h.median_seconds("a"), Some(25.0));
        assert_eq!(h.median_seconds("b"), None);
    }

    #[test]
    fn a_torn_last_line_is_tolerated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let good = r#"{"type":"stack_log","timestamp":"2025-10-09T14:30:00.000Z","sequence":1,"data":{"deploymentId":"D","environment":"dev","stack":"a","level":"info","message":"hi"}}"#;
        fs::write(&path, format!("{good}\n{{\"type\":\"sta")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        assert!(read(&path).is_err());
    }
}
