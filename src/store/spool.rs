//! The local spool of the DynamoDB event store: what could not be written to the table yet,
//! kept under the deployment's folder until a later command sends it.
//!
//! `cloud/deploy/<ID>/spool/dynamodb/<table>/<env>/` holds, per run:
//! - `<runId>.jsonl` — items not written (one JSON object a line, [`dynamodb::item_to_json`]);
//! - `<runId>.pending` — written when a run starts sending and removed when it ends with every
//!   item either in the table or in its `.jsonl`. One left behind means the run died (killed,
//!   power cut) before it could say what it had sent: then its whole journal is sent again.
//!
//! Replaying is safe to repeat and to interrupt: an item's key is fixed by its event, so
//! writing it again changes nothing, and a file is only removed (or rewritten, atomically)
//! after what it held is in the table. Runs still going (their lock is held) are left alone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::dynamodb::{self, Item, Table, Trouble};
use super::{journal, lock};

/// Batches a replay keeps in flight.
const CONCURRENCY: usize = 4;

/// Where runs of `environment` spool for `table`.
pub fn dir(manifest_dir: &Path, table: &str, environment: &str) -> PathBuf {
    manifest_dir
        .join("spool")
        .join("dynamodb")
        .join(table)
        .join(environment)
}

pub fn file(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.jsonl"))
}

pub fn marker_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.pending"))
}

/// A run that has started sending and not yet ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    pub run_id: String,
    pub environment: String,
    /// Its journal: sent again whole if the run dies.
    pub journal: PathBuf,
    #[serde(default)]
    pub user: Option<String>,
}

pub fn write_marker(dir: &Path, marker: &Marker) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let path = marker_path(dir, &marker.run_id);
    let mut f = File::create(&path)?;
    f.write_all(&serde_json::to_vec(marker)?)?;
    f.sync_all()
}

/// Appends items to a spool file, durably.
pub struct Writer {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    pub count: u64,
}

impl Writer {
    pub fn new(path: PathBuf) -> Writer {
        Writer {
            path,
            out: None,
            count: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, item: &Item) -> io::Result<()> {
        self.append_json(&dynamodb::item_to_json(item))
    }

    /// Appends one line that is an item's JSON already.
    pub fn append_raw(&mut self, line: &str) -> io::Result<()> {
        self.append_with(|out| out.write_all(line.as_bytes()))
    }

    /// Appends an item in its JSON form ([`dynamodb::item_json`]).
    pub fn append_json(&mut self, item: &serde_json::Value) -> io::Result<()> {
        self.append_with(|out| serde_json::to_writer(out, item).map_err(io::Error::from))
    }

    fn append_with(
        &mut self,
        write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.out.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.out = Some(BufWriter::with_capacity(1 << 16, f));
        }
        if let Some(out) = self.out.as_mut() {
            write(out)?;
            out.write_all(b"\n")?;
        }
        self.count += 1;
        Ok(())
    }

    /// Flushes and syncs what was appended.
    pub fn finish(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => {
                out.flush()?;
                out.get_ref().sync_all()
            }
            None => Ok(()),
        }
    }
}

/// The items of a spool file, and how many lines were not items.
pub fn read(path: &Path) -> io::Result<(Vec<Item>, usize)> {
    let mut items = Vec::new();
    let mut bad = 0;
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| dynamodb::item_from_json(&v))
        {
            Some(item) => items.push(item),
            None => bad += 1,
        }
    }
    Ok((items, bad))
}

/// Items a replay reads and sends at a time: a spool of a whole 10,000-stack run is
/// hundreds of thousands of items, more than is worth holding in memory at once.
const CHUNK: usize = 5_000;

/// What sending one spool file did.
#[derive(Default)]
pub struct FileReplay {
    pub sent: u64,
    /// Items still in the file.
    pub left: u64,
    pub bad: u64,
    pub trouble: Option<Trouble>,
    /// A write crashed: the file is kept as it was.
    pub lost_track: bool,
}

/// Sends one spool file, a chunk at a time. What is not sent (after trouble, or once `until`
/// passes) is written to a new file that then replaces it; a file fully sent is removed.
/// (A run sends its own at its end, when the table may be back since it spooled them.)
pub async fn replay_file(
    table: &Table,
    path: &Path,
    until: Option<Instant>,
) -> io::Result<FileReplay> {
    let mut lines = BufReader::new(File::open(path)?).lines();
    let tmp = path.with_extension("jsonl.tmp");
    let mut kept = Writer::new(tmp.clone());
    let mut r = FileReplay::default();
    let mut ended = false;
    while !ended {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            let Some(line) = lines.next() else {
                ended = true;
                break;
            };
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let stopped = r.trouble.is_some() || until.is_some_and(|u| Instant::now() >= u);
            if stopped {
                kept.append_raw(&line)?;
                r.left += 1;
                continue;
            }
            match serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| dynamodb::item_from_json(&v))
            {
                Some(item) => chunk.push(item),
                None => r.bad += 1,
            }
        }
        if chunk.is_empty() {
            continue;
        }
        let written = table.write_all(chunk, CONCURRENCY, until).await;
        r.sent += written.written as u64;
        r.left += written.left.len() as u64;
        for item in &written.left {
            kept.append(item)?;
        }
        r.lost_track |= written.lost_track;
        if r.trouble.is_none() {
            r.trouble = written.trouble;
        }
    }
    kept.finish()?;
    if r.lost_track {
        let _ = fs::remove_file(&tmp);
    } else if kept.count == 0 {
        let _ = fs::remove_file(&tmp);
        fs::remove_file(path)?;
    } else {
        fs::rename(&tmp, path)?;
    }
    Ok(r)
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Items written to the table.
    pub sent: u64,
    /// Items still spooled (and runs whose journal still has to be sent, counted by event).
    pub left: u64,
    /// Spool files and dead runs handled completely.
    pub cleared: u64,
    pub trouble: Option<Trouble>,
    /// Things that could not be read, in words.
    pub problems: Vec<String>,
}

enum Entry {
    Spool {
        env: String,
        run_id: String,
        path: PathBuf,
    },
    Dead {
        env: String,
        marker: PathBuf,
    },
    /// A sink's overflow file (its items are in the journal a `.pending` marker resends).
    Overflow {
        env: String,
        run_id: String,
        path: PathBuf,
    },
}

fn entries(manifest_dir: &Path, table: &str) -> Vec<Entry> {
    let root = manifest_dir.join("spool").join("dynamodb").join(table);
    let mut found = Vec::new();
    let Ok(envs) = fs::read_dir(&root) else {
        return found;
    };
    for env in envs.filter_map(Result::ok) {
        let env_name = env.file_name().to_string_lossy().into_owned();
        let Ok(files) = fs::read_dir(env.path()) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = files.filter_map(|f| f.ok().map(|f| f.path())).collect();
        paths.sort();
        for path in paths {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match path.extension().and_then(|x| x.to_str()) {
                Some("jsonl") => found.push(Entry::Spool {
                    env: env_name.clone(),
                    run_id: stem,
                    path,
                }),
                Some("pending") => found.push(Entry::Dead {
                    env: env_name.clone(),
                    marker: path,
                }),
                Some("overflow") => found.push(Entry::Overflow {
                    env: env_name.clone(),
                    run_id: stem,
                    path,
                }),
                _ => {}
            }
        }
    }
    found
}

/// Whether run `run_id` of `env` is going on right now (its process holds the lock).
fn live(manifest_dir: &Path, env: &str, run_id: &str, this_run: Option<&str>) -> bool {
    this_run == Some(run_id)
        || lock::holder(&journal::dir(manifest_dir, env)).is_some_and(|h| h.run_id == run_id)
}

/// Sends what the spool of this deployment holds for `table`: spooled items, and the journals
/// of runs that died while sending. Leaves alone `this_run` and any run still going. Stops
/// starting new work once the table proves unreachable, or at `until`.
pub async fn replay(
    table: &Table,
    manifest_dir: &Path,
    this_run: Option<&str>,
    until: Option<Instant>,
) -> Replayed {
    let mut out = Replayed::default();
    for entry in entries(manifest_dir, &table.name) {
        if out.trouble.is_some() || until.is_some_and(|u| Instant::now() >= u) {
            if let Entry::Spool { path, .. } = &entry {
                out.left += read(path).map_or(0, |(items, _)| items.len() as u64);
            }
            continue;
        }
        match entry {
            // Left by a run that died: what it held is in that run's journal.
            Entry::Overflow { env, run_id, path } => {
                if !live(manifest_dir, &env, &run_id, this_run) {
                    let _ = fs::remove_file(path);
                }
            }
            Entry::Spool { env, run_id, path } => {
                if live(manifest_dir, &env, &run_id, this_run) {
                    continue;
                }
                match replay_file(table, &path, until).await {
                    Ok(r) => {
                        out.sent += r.sent;
                        out.left += r.left;
                        if r.left == 0 && !r.lost_track {
                            out.cleared += 1;
                        }
                        if r.bad > 0 {
                            out.problems.push(format!(
                                "{}: {} lines are not items and were left out",
                                path.display(),
                                r.bad
                            ));
                        }
                        if out.trouble.is_none() {
                            out.trouble = r.trouble;
                        }
                    }
                    Err(e) => out
                        .problems
                        .push(format!("cannot replay the spool {}: {e}", path.display())),
                }
            }
            Entry::Dead { env, marker } => {
                let Some(m) = fs::read(&marker)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
                else {
                    out.problems.push(format!(
                        "{} is not a run marker; remove it",
                        marker.display()
                    ));
                    continue;
                };
                if live(manifest_dir, &env, &m.run_id, this_run) {
                    continue;
                }
                let events = match journal::read(&m.journal) {
                    Ok(j) => j.events,
                    // No journal, nothing recorded to send.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => {
                        out.problems.push(format!(
                            "cannot read the journal {} of a run that stopped while sending: {e}",
                            m.journal.display()
                        ));
                        continue;
                    }
                };
                let items: Vec<Item> = events
                    .iter()
                    .map(|e| dynamodb::item(e, &m.run_id, m.user.as_deref()))
                    .collect();
                let count = items.len() as u64;
                let written = table.write_all(items, CONCURRENCY, until).await;
                out.sent += written.written as u64;
                if written.left.is_empty() && !written.lost_track && written.trouble.is_none() {
                    let _ = fs::remove_file(&marker);
                    out.cleared += 1;
                } else {
                    out.left += count - written.written as u64;
                    if out.trouble.is_none() {
                        out.trouble = written.trouble;
                    }
                }
            }
        }
    }
    out
}
