//! A finished run's folded [`Model`], kept beside its journal (`journal/<env>/<runId>.model.json`)
//! so `cloud status` need not read and fold a big journal again (a 10,000-stack run's is 64 MB).
//!
//! Written once, when the run ended and its journal was synced; trusted only while it provably
//! says what the journal says: the journal's length and modification time are the ones it was
//! written against, and the journal's last line carries the model's last sequence. Any doubt
//! (missing, unreadable, another version, a mismatch) and the reader folds the journal instead.
//!
//! The file is two lines: a small header (what makes it checkable, and what the model's serde
//! leaves out), then the model as [`Model::from_snapshot`] reads it — so a stale checkpoint is
//! turned down before its big line is parsed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::progress::Model;

/// Bumped whenever the header or the model's serialized form changes meaning.
const VERSION: u32 = 1;

/// How far from its end the journal's last line is looked for; a longer last line is a doubt.
const TAIL: u64 = 64 * 1024;

/// The checkpoint of the run whose journal is `journal`.
pub fn path(journal: &Path) -> PathBuf {
    journal.with_extension("model.json")
}

/// The first line: what the checkpoint was written against, and the model's unserialized state.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    version: u32,
    journal_bytes: u64,
    /// The journal's modification time, in nanoseconds since the Unix epoch (as text: past u64).
    journal_modified: String,
    last_sequence: u64,
    // What `Model`'s serde skips and status reads (the rest is rebuilt from the stacks).
    last_event_time: Option<DateTime<Utc>>,
    parallelism: Option<usize>,
    cancelled: bool,
    resource_seconds: BTreeMap<String, f64>,
}

/// The journal's length and modification time, as a checkpoint holds them.
fn stamp(journal: &Path) -> io::Result<(u64, String)> {
    let meta = fs::metadata(journal)?;
    let modified = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_err(io::Error::other)?;
    Ok((meta.len(), modified.as_nanos().to_string()))
}

/// A run's model being serialized for its checkpoint on a thread of its own, while the run's
/// end goes on (the sinks drain): a 10,000-stack model is ~24 MB of JSON, written straight to
/// a temporary file beside the journal (held in memory, it was a fifth of the run's peak).
pub struct Keeping {
    thread: std::thread::JoinHandle<(Model, io::Result<PathBuf>)>,
}

impl Keeping {
    /// Takes the run's model (an empty one in its place until [`Keeping::write`] gives it back)
    /// and starts writing it beside `journal`.
    pub fn start(model: &mut Model, journal: &Path) -> Keeping {
        let model = std::mem::replace(model, Model::new("", ""));
        let temp = temporary(journal, "model");
        let folder = journal.parent().map(Path::to_path_buf);
        Keeping {
            thread: std::thread::spawn(move || {
                if let Some(folder) = folder {
                    sweep(&folder);
                }
                let written = (|| {
                    let mut out = BufWriter::with_capacity(1 << 16, File::create(&temp)?);
                    serde_json::to_writer(&mut out, &model)?;
                    out.flush()?;
                    Ok(temp.clone())
                })();
                if written.is_err() {
                    let _ = fs::remove_file(&temp);
                }
                (model, written)
            }),
        }
    }

    /// Writes the checkpoint beside `journal`, once it is `complete` (synced, nothing lost),
    /// and gives the model back. The run never fails for it: without a checkpoint, status
    /// folds the journal.
    pub fn write(self, journal: &Path, complete: bool) -> Model {
        let (model, serialized) = match self.thread.join() {
            Ok(done) => done,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        if let Ok(serialized) = serialized {
            if complete {
                let _ = write_serialized(journal, &model, |out| {
                    io::copy(&mut File::open(&serialized)?, out).map(|_| ())
                });
            }
            let _ = fs::remove_file(&serialized);
        }
        model
    }
}

/// Writes the checkpoint of a run that ended, its journal complete and synced.
pub fn write(journal: &Path, model: &Model) -> io::Result<()> {
    write_serialized(journal, model, |out| {
        let mut out = BufWriter::new(out);
        serde_json::to_writer(&mut out, model)?;
        out.flush()
    })
}

/// A file beside `journal`'s checkpoint for this process's `what`.
fn temporary(journal: &Path, what: &str) -> PathBuf {
    path(journal).with_extension(format!("json.{}.{what}.tmp", std::process::id()))
}

/// Removes the temporary files ([`temporary`]) of processes that are gone — a run killed while
/// it wrote its checkpoint leaves one, as big as the model (24 MB for 10,000 stacks), and no
/// later run would have reused its name. A living process's (another run of another
/// environment, say) is left alone.
fn sweep(folder: &Path) {
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(leftover_pid) else {
            continue;
        };
        if pid != std::process::id() && super::lock::process_gone(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The process that wrote `<run>.model.json.<pid>.<what>.tmp`.
fn leftover_pid(name: &str) -> Option<u32> {
    let rest = name.strip_suffix(".tmp")?;
    let (_, rest) = rest.split_once(".model.json.")?;
    let (pid, what) = rest.split_once('.')?;
    matches!(what, "model" | "checkpoint").then_some(())?;
    pid.parse().ok()
}

/// [`write`], the model written by `model_json`. Atomic: a temporary file renamed into place,
/// so a reader sees the whole checkpoint or none.
fn write_serialized(
    journal: &Path,
    model: &Model,
    model_json: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let (journal_bytes, journal_modified) = stamp(journal)?;
    let header = Header {
        version: VERSION,
        journal_bytes,
        journal_modified,
        last_sequence: model.sequence,
        last_event_time: model.last_event_time,
        parallelism: model.parallelism,
        cancelled: model.cancelled,
        resource_seconds: model.resource_seconds.clone(),
    };
    let target = path(journal);
    let temp = temporary(journal, "checkpoint");
    let written = (|| {
        let mut out = File::create(&temp)?;
        let mut head = serde_json::to_vec(&header)?;
        head.push(b'\n');
        out.write_all(&head)?;
        model_json(&mut out)?;
        out.write_all(b"\n")?;
        // Not synced: a checkpoint a crash left short is turned down like any other doubt.
        drop(out);
        fs::rename(&temp, &target)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// The model the checkpoint of `journal` holds, if it says what the journal says; `None` at
/// the least doubt (then the journal is read and folded).
pub fn read(journal: &Path) -> Option<Model> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path(journal)).ok()?);
    let mut line = String::new();
    file.read_line(&mut line).ok()?;
    let header: Header = serde_json::from_str(&line).ok()?;
    if header.version != VERSION
        || stamp(journal).ok()? != (header.journal_bytes, header.journal_modified.clone())
        || last_sequence(journal, header.journal_bytes)? != header.last_sequence
    {
        return None;
    }
    line.clear();
    file.read_to_string(&mut line).ok()?;
    let mut model = Model::from_snapshot(line.strip_suffix('\n')?).ok()?;
    if model.sequence != header.last_sequence {
        return None;
    }
    model.last_event_time = header.last_event_time;
    model.parallelism = header.parallelism;
    model.cancelled = header.cancelled;
    model.resource_seconds = header.resource_seconds;
    Some(model)
}

/// The sequence of the journal's last line, read from its tail; `None` when that line is
/// missing, torn (no newline), too long or not an event.
fn last_sequence(journal: &Path, bytes: u64) -> Option<u64> {
    #[derive(Deserialize)]
    struct Sequenced {
        sequence: u64,
    }
    let mut file = File::open(journal).ok()?;
    let from = bytes.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = Vec::with_capacity((bytes - from) as usize);
    file.take(bytes - from).read_to_end(&mut tail).ok()?;
    let body = tail.strip_suffix(b"\n")?;
    let start = match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        // The whole tail is one line: only if it is the whole journal.
        None if from == 0 => 0,
        None => return None,
    };
    let last: Sequenced = serde_json::from_slice(&body[start..]).ok()?;
    Some(last.sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_checkpoint_leftovers_are_taken_for_them() {
        let journal = Path::new("/x/20261204T101010000Z-ab12.jsonl");
        for what in ["model", "checkpoint"] {
            let temp = temporary(journal, what);
            let name = temp.file_name().unwrap().to_str().unwrap();
            assert_eq!(leftover_pid(name), Some(std::process::id()), "{name}");
        }
        for other in [
            "20261204T101010000Z-ab12.jsonl",
            "20261204T101010000Z-ab12.model.json",
            "20261204T101010000Z-ab12.model.json.12.other.tmp",
            "20261204T101010000Z-ab12.model.json.x1.model.tmp",
            "notes.tmp",
        ] {
            assert_eq!(leftover_pid(other), None, "{other}");
        }
    }

    const LINE: &str = r#"{"type":"stack_log","timestamp":"2025-10-09T14:30:00.000Z","sequence":7,"data":{"deploymentId":"D","environment":"dev","stack":"a","level":"info","message":"hi"}}"#;

    #[test]
    fn the_last_sequence_is_read_from_the_tail_and_a_torn_line_is_a_doubt() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("r.jsonl");
        let mut text = String::new();
        // Longer than the tail read, so the last line is found past a cut.
        while text.len() < 2 * TAIL as usize {
            text.push_str(&LINE.replace("\"sequence\":7", "\"sequence\":1"));
            text.push('\n');
        }
        text.push_str(LINE);
        text.push('\n');
        fs::write(&journal, &text).unwrap();
        assert_eq!(last_sequence(&journal, text.len() as u64), Some(7));
        fs::write(&journal, format!("{LINE}\n")).unwrap();
        assert_eq!(last_sequence(&journal, LINE.len() as u64 + 1), Some(7));
        fs::write(&journal, format!("{LINE}\n{{\"type\":\"sta")).unwrap();
        assert_eq!(last_sequence(&journal, LINE.len() as u64 + 12), None);
    }

    #[test]
    fn a_checkpoint_is_trusted_only_against_the_journal_it_was_written_for() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("r.jsonl");
        fs::write(&journal, format!("{LINE}\n")).unwrap();
        let event = crate::event::Event::from_json_line(LINE).unwrap();
        let model = Model::from_events([&event]).unwrap();
        write(&journal, &model).unwrap();
        assert_eq!(path(&journal), dir.path().join("r.model.json"));
        let read = read(&journal).expect("trusted");
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            serde_json::to_string(&model).unwrap()
        );
        assert_eq!(read.last_event_time, model.last_event_time);
        // Another event appended: the journal says more than the checkpoint.
        fs::write(&journal, format!("{LINE}\n{LINE}\n")).unwrap();
        assert!(super::read(&journal).is_none());
        // A checkpoint cut short.
        write(&journal, &model).unwrap();
        let whole = fs::read(path(&journal)).unwrap();
        fs::write(path(&journal), &whole[..whole.len() - 10]).unwrap();
        assert!(super::read(&journal).is_none());
    }
}
