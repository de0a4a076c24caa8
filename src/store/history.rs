//! `history.json`, beside a deployment's journals: what later runs need of earlier ones without
//! re-reading journals — each stack's recent durations (estimates), last outputs and the
//! fingerprint of its last successful deploy (smart skip), and recent durations per resource
//! type (estimates of stacks that never ran). Kept up to date during a run by
//! [`crate::sink::history`], so that a run killed half-way leaves what it finished recorded.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::Outputs;
use crate::health::{self, Health};

/// Durations kept per stack for the median.
const KEEP_DURATIONS: usize = 5;
/// Durations kept per resource type.
const KEEP_TYPE_DURATIONS: usize = 20;

/// What later runs remember of earlier ones.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunHistory {
    #[serde(default)]
    pub stacks: BTreeMap<String, StackHistory>,
    /// Seconds of recent operations per resource type (`aws:s3/bucket:Bucket`), oldest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_types: BTreeMap<String, Vec<f64>>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackHistory {
    /// Seconds of the recent successful runs, oldest first.
    #[serde(default)]
    pub durations: Vec<f64>,
    #[serde(default)]
    pub outputs: Outputs,
    /// What its last successful deploy was deployed from; `None` once destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Why its latest attempt did not succeed (`failed`, `cancelled`, `interrupted`, …): until
    /// it deploys again, it is never skipped. Set when an attempt starts (a run killed half-way
    /// leaves `interrupted`), cleared when one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsettled: Option<String>,
    /// Its drift health (`cloud drift`); `None`: never checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Whether a journal's last whole line is its run's `deployment_complete` (read from the end:
/// a finished run's journal is not read whole).
fn ends_complete(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(64 * 1024);
    let mut tail = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut tail).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&tail);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.contains("\"type\":\"deployment_complete\""))
}

fn push_bounded(list: &mut Vec<f64>, seconds: f64, keep: usize) {
    list.push((seconds * 1000.0).round() / 1000.0);
    let excess = list.len().saturating_sub(keep);
    list.drain(..excess);
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut d = values.to_vec();
    d.sort_by(f64::total_cmp);
    let mid = d.len() / 2;
    Some(if d.len() % 2 == 1 {
        d[mid]
    } else {
        (d[mid - 1] + d[mid]) / 2.0
    })
}

impl RunHistory {
    fn path(dir: &Path) -> PathBuf {
        dir.join("history.json")
    }

    /// The history in `dir`; empty when there is none or it cannot be read (it is only a cache).
    pub fn load(dir: &Path) -> RunHistory {
        fs::read(Self::path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// A stack deployed: its duration, outputs and fingerprint.
    pub fn deployed(
        &mut self,
        stack: &str,
        seconds: f64,
        outputs: &Outputs,
        fingerprint: Option<String>,
    ) {
        let entry = self.stacks.entry(stack.to_owned()).or_default();
        push_bounded(&mut entry.durations, seconds, KEEP_DURATIONS);
        entry.outputs = outputs.clone();
        entry.fingerprint = fingerprint;
        entry.unsettled = None;
    }

    /// An attempt on a stack started, or ended without success: `why` says how it stands
    /// (`interrupted` while it runs, then `failed`, `cancelled`, …).
    pub fn unsettled(&mut self, stack: &str, why: &str) {
        self.stacks.entry(stack.to_owned()).or_default().unsettled = Some(why.to_owned());
    }

    /// Stacks that were running when the latest run (its journal in `journal_dir`, beside
    /// this history) died without an end are `interrupted`, whatever history.json had time to
    /// say before it died.
    pub fn note_interrupted_run(&mut self, journal_dir: &Path) {
        let Some(latest) = crate::store::journal::latest_run(journal_dir) else {
            return;
        };
        if ends_complete(&latest) {
            return;
        }
        let Ok(journal) = crate::store::journal::read(&latest) else {
            return;
        };
        // The one reducer says which stacks were still running (deploying or destroying).
        let Some(model) = crate::progress::Model::from_events(&journal.events) else {
            return;
        };
        // A plan or a drift check changed nothing, whenever it stopped.
        if model.operation.changes_nothing() {
            return;
        }
        for stack in model.running() {
            let known = self
                .stacks
                .get(&stack.name)
                .is_some_and(|s| s.unsettled.is_some());
            if !known {
                self.unsettled(&stack.name, "interrupted");
            }
        }
    }

    /// A stack was destroyed (or rolled back): nothing of it is deployed any more.
    pub fn gone(&mut self, stack: &str) {
        if let Some(entry) = self.stacks.get_mut(stack) {
            entry.outputs.clear();
            entry.fingerprint = None;
            entry.unsettled = None;
            entry.health = None;
        }
    }

    /// What a health change says (a drift check, a deploy, a destroy).
    pub fn health_changed(&mut self, change: health::Change) {
        match change {
            health::Change::Set(stack, h) => {
                self.stacks.entry(stack).or_default().health = Some(h);
            }
            health::Change::Forget(stack) => {
                if let Some(entry) = self.stacks.get_mut(&stack) {
                    entry.health = None;
                }
            }
        }
    }

    /// A resource operation of `type_` took `seconds`.
    pub fn resource_took(&mut self, type_: &str, seconds: f64) {
        let list = self.resource_types.entry(type_.to_owned()).or_default();
        push_bounded(list, seconds, KEEP_TYPE_DURATIONS);
    }

    /// Median seconds of an operation on a resource of `type_`, or of any resource.
    pub fn resource_median(&self, type_: Option<&str>) -> Option<f64> {
        if let Some(m) = type_
            .and_then(|t| self.resource_types.get(t))
            .and_then(|d| median(d))
        {
            return Some(m);
        }
        let all: Vec<f64> = self.resource_types.values().flatten().copied().collect();
        median(&all)
    }

    /// Writes atomically (temp file + rename), so a crash never leaves half a file.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let tmp = dir.join("history.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(tmp, Self::path(dir))
    }
}

impl RunHistory {
    /// Median of the stack's recent successful runs, in seconds.
    pub fn median_seconds(&self, stack: &str) -> Option<f64> {
        median(&self.stacks.get(stack)?.durations)
    }

    /// Median seconds of an operation per resource type.
    pub fn resource_medians(&self) -> BTreeMap<String, f64> {
        self.resource_types
            .iter()
            .filter_map(|(t, d)| Some((t.clone(), median(d)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_recent_runs() {
        let mut h = RunHistory::default();
        h.stacks.insert(
            "a".into(),
            StackHistory {
                durations: vec![10.0, 30.0, 20.0, 40.0],
                ..Default::default()
            },
        );
        assert_eq!(h.median_seconds("a"), Some(25.0));
        assert_eq!(h.median_seconds("b"), None);
        h.resource_took("t", 2.0);
        h.resource_took("t", 4.0);
        h.resource_took("u", 10.0);
        assert_eq!(h.resource_median(Some("t")), Some(3.0));
        assert_eq!(h.resource_median(Some("v")), Some(4.0));
    }
}
