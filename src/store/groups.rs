//! The process groups of a run's stacks, recorded beside its lock (`journal/<env>/groups/`, one
//! file per group) while their program runs. Each stack's program runs in a session of its own,
//! so when `cloud` dies by `kill -9` nothing stops them: the record is how the next run finds
//! them. A run refuses to start beside them (two copies of one Terraform apply would race on its
//! state), and `cloud unlock --kill` stops them.
//!
//! A record names the group's leader by pid and start time (field 22 of `/proc/<pid>/stat`), so
//! a pid the system has given to another process since is not taken for it. Records of groups
//! that are gone are removed without a word.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One stack's process group, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// `None` for a program started outside any stack.
    pub stack: Option<String>,
    /// The group's id: its leader's pid.
    pub pgid: u32,
    /// The leader's start time, in clock ticks since boot.
    pub start_ticks: u64,
    pub run_id: String,
    pub started: DateTime<Utc>,
}

impl Group {
    /// The group led by `pgid`, started just now for `stack` of run `run_id`; `None` when its
    /// leader is gone already.
    pub fn of(pgid: u32, stack: Option<String>, run_id: &str) -> Option<Group> {
        Some(Group {
            stack,
            pgid,
            start_ticks: start_ticks(pgid)?,
            run_id: run_id.to_owned(),
            started: Utc::now(),
        })
    }

    /// Whether any process of the group still runs. Its leader, when still there, must be the
    /// process recorded (a pid in use as a group's id is not given to a new process, so members
    /// without their leader are the group's own).
    pub fn is_alive(&self) -> bool {
        let leader_is_ours = start_ticks(self.pgid).is_none_or(|t| t == self.start_ticks);
        leader_is_ours && !members(self.pgid).is_empty()
    }

    /// `stack `slow` (pid 123, run R, running for 5m 2s)`
    /// `duration` words an age in seconds (the views' words: the store knows none).
    pub fn describe(&self, now: DateTime<Utc>, duration: fn(u64) -> String) -> String {
        let age = (now - self.started).num_seconds().max(0) as u64;
        format!(
            "{} (pid {}, run {}, running for {})",
            match &self.stack {
                Some(stack) => format!("stack `{stack}`"),
                None => "a program outside any stack".to_owned(),
            },
            self.pgid,
            self.run_id,
            duration(age)
        )
    }
}

/// `groups`, one a line, indented: for the messages that name them.
pub fn list(groups: &[Group], now: DateTime<Utc>, duration: fn(u64) -> String) -> String {
    let lines: Vec<String> = groups
        .iter()
        .map(|g| format!("  {}", g.describe(now, duration)))
        .collect();
    lines.join("\n")
}

/// The records of one deployment and environment.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// The records beside the lock in `journal_dir`.
    pub fn beside_lock(journal_dir: &Path) -> Records {
        Records {
            dir: journal_dir.join("groups"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, pgid: u32) -> PathBuf {
        self.dir.join(format!("{pgid}.json"))
    }

    /// Records `group` (written whole, then renamed: a record is never read half-written).
    pub fn add(&self, group: &Group) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(group.pgid);
        let partial = path.with_extension("partial");
        fs::write(
            &partial,
            serde_json::to_vec(group).map_err(io::Error::other)?,
        )?;
        fs::rename(&partial, &path)
    }

    pub fn remove(&self, pgid: u32) {
        let _ = fs::remove_file(self.path(pgid));
    }

    /// The recorded groups still running, oldest first. Call it holding the lock: then no run
    /// of this deployment is going on, and each is a dead run's. Records of groups that are
    /// gone (and unreadable ones) are removed.
    pub fn left_running(&self) -> Vec<Group> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut alive = Vec::new();
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let group = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Group>(&b).ok());
            match group {
                Some(g) if g.is_alive() => alive.push(g),
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let _ = fs::remove_dir(&self.dir);
        alive.sort_by_key(|g| (g.started, g.pgid));
        alive
    }

    /// Stops `groups`: SIGTERM to each, then SIGKILL to those still running after `grace`.
    /// Removes their records; returns what was done to each, in words.
    pub fn stop(&self, groups: &[Group], grace: Duration) -> Vec<String> {
        let term: Vec<&Group> = groups.iter().filter(|g| g.is_alive()).collect();
        for g in &term {
            signal(g.pgid, libc::SIGTERM);
        }
        let until = Instant::now() + grace;
        while term.iter().any(|g| g.is_alive()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut said = Vec::new();
        for g in groups {
            let name = g.stack.as_deref().unwrap_or("(no stack)");
            let how = if !term.iter().any(|t| t.pgid == g.pgid) {
                "was gone already".to_owned()
            } else if g.is_alive() {
                signal(g.pgid, libc::SIGKILL);
                format!(
                    "killed with SIGKILL: still running {}s after SIGTERM",
                    grace.as_secs_f64()
                )
            } else {
                "stopped with SIGTERM".to_owned()
            };
            said.push(format!(
                "{name}: process group {} of run {} {how}",
                g.pgid, g.run_id
            ));
            self.remove(g.pgid);
        }
        // SIGKILL cannot be refused; a moment for the kernel to finish them.
        let until = Instant::now() + Duration::from_secs(5);
        while groups.iter().any(Group::is_alive) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::remove_dir(&self.dir);
        said
    }
}

fn signal(pgid: u32, sig: libc::c_int) {
    if let Ok(pgid) = i32::try_from(pgid) {
        if pgid > 1 {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
            unsafe { libc::kill(-pgid, sig) };
        }
    }
}

/// `pid (comm) state ppid pgrp ...` of a process, after the command name (which may hold
/// spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// A process's start time in clock ticks since boot, if it exists.
pub fn start_ticks(pid: u32) -> Option<u64> {
    // Field 22 of the line; the fields after the name start at field 3.
    stat_fields(pid)?.get(22 - 3)?.parse().ok()
}

/// The live (not zombie) processes of a process group, from /proc.
pub fn members(pgid: u32) -> Vec<u32> {
    if pgid == 0 {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|f| {
                f.first().map(String::as_str) != Some("Z")
                    && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_live_group_is_kept_a_gone_or_reused_one_is_dropped_silently() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::beside_lock(dir.path());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let live = Group::of(pgid, Some("app".into()), "run-1").unwrap();
        records.add(&live).unwrap();
        // The same pid, another process (a start time that is not its leader's).
        let reused = Group {
            pgid,
            start_ticks: live.start_ticks + 1,
            ..live.clone()
        };
        assert!(live.is_alive() && !reused.is_alive());
        assert_eq!(records.left_running(), std::slice::from_ref(&live));

        let said = records.stop(std::slice::from_ref(&live), Duration::from_secs(5));
        assert_eq!(said.len(), 1);
        assert!(said[0].contains("stopped with SIGTERM"), "{said:?}");
        let _ = child.wait();
        assert!(!live.is_alive());
        records.add(&live).unwrap();
        assert!(records.left_running().is_empty());
        assert!(!records.dir().exists(), "gone groups leave no record");
    }
}
