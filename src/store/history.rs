//! `history.json`, beside a deployment's journals: what later runs need of earlier ones without
//! re-reading journals — each stack's recent durations (for estimates) and last outputs.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Outputs, StackState};
use crate::progress::Model;

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
}
