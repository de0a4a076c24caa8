//! One deploy at a time per deployment and environment: an OS file lock (`flock`) on
//! `journal/<env>/lock`, held for the life of the run. The kernel releases it when the process
//! dies however it dies, so there is no stale lock to take over and no window between creating
//! the file and writing it. The file names its holder for the "locked" message.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub pid: u32,
    pub run_id: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    pub started: String,
}

impl Holder {
    /// This process, for run `run_id`.
    pub fn me(run_id: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            run_id: run_id.to_owned(),
            user: user(),
            host: host(),
            started: crate::event::format_timestamp(&chrono::Utc::now()),
        }
    }
}

/// The OS user running `cloud` (`CLOUD_USER` overrides, e.g. a CI job's author).
pub fn user() -> Option<String> {
    ["CLOUD_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(account_name)
}

/// The name of the account the process runs as (containers and cron jobs often set no `USER`).
fn account_name() -> Option<String> {
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes only into `entry` and `buf` (of the length given), and sets
    // `found` to `&entry` or null; the name is read from `buf` before either goes away.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

/// Whether process `pid` no longer exists on this machine. Only "no such process" says so: a
/// process this user may not signal still runs.
pub fn process_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let refused = unsafe { libc::kill(pid, 0) } != 0;
    refused && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

pub fn host() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    (ok && end > 0).then(|| String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    /// Kept open: the lock lives as long as this descriptor.
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{deployment} is locked: run {} (pid {}, user {}, host {}) started at {} is deploying it\n  \
         lock file: {path}\n  \
         help: wait for that run to finish; the lock goes away with its process",
        holder.run_id, holder.pid, holder.user.as_deref().unwrap_or("unknown"),
        holder.host.as_deref().unwrap_or("unknown"), holder.started,
        path = path.display()
    )]
    Held {
        deployment: String,
        holder: Box<Holder>,
        path: PathBuf,
    },
    #[error("cannot take the lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Held, the lock found programs of the stacks of an earlier run that ended without stopping
/// them (`kill -9` of `cloud`) still running: this run is refused beside them (two copies of
/// one apply race on its state). Says which, and how to stop them.
#[derive(Debug)]
pub struct LeftRunning {
    pub deployment: String,
    pub environment: String,
    /// The programs, one an indented line (`groups::list`).
    pub programs: String,
    /// Where their records are.
    pub records: PathBuf,
}

impl std::fmt::Display for LeftRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (deployment, env) = (&self.deployment, &self.environment);
        write!(
            f,
            "{deployment}-{env}: programs of an earlier run that ended without stopping \
             them (killed?) are still running:\n{}\n  records: {}\n  \
             help: this run would deploy beside them (two copies of one apply race on its \
             state); wait for them to end, or stop them with `cloud unlock {deployment} -e \
             {env} --kill` (SIGTERM, then SIGKILL after --grace-period), then run again",
            self.programs,
            self.records.display()
        )
    }
}

fn lock_path(dir: &Path) -> PathBuf {
    dir.join("lock")
}

impl Lock {
    /// Takes the lock in `dir` for `deployment` (e.g. `D1BRV40-dev`), or says who holds it.
    pub fn acquire(dir: &Path, deployment: &str, holder: &Holder) -> Result<Lock, LockError> {
        let path = lock_path(dir);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        loop {
            let mut file = File::options()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err)?;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                    return Err(io_err(e));
                }
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = serde_json::from_str(&text).unwrap_or(Holder {
                    pid: 0,
                    run_id: "unknown".into(),
                    user: None,
                    host: None,
                    started: "an unknown time".into(),
                });
                return Err(LockError::Held {
                    deployment: deployment.to_owned(),
                    holder: Box::new(holder),
                    path,
                });
            }
            // The holder before us may have removed the file between our open and our lock:
            // then we locked a file nobody else sees. Start again on the one at `path`.
            let same = match (file.metadata(), fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            let body = serde_json::to_vec_pretty(holder).unwrap_or_default();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(&body))
                .and_then(|()| file.flush())
                .map_err(io_err)?;
            return Ok(Lock { path, _file: file });
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked, so a run that opens it next either sees it gone or
        // notices it locked a removed file (and retries).
        let _ = fs::remove_file(&self.path);
    }
}

/// Who holds the lock in `dir` right now, if anyone. Looks without taking it (taking it, even
/// briefly, could turn away a deploy starting at that moment).
pub fn holder(dir: &Path) -> Option<Holder> {
    let path = lock_path(dir);
    let meta = fs::metadata(&path).ok()?;
    let holder: Option<Holder> = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let held = match fs::read_to_string("/proc/locks") {
        // `1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF`
        Ok(locks) => locks.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"FLOCK")
                && fields
                    .get(5)
                    .and_then(|id| id.rsplit(':').next())
                    .and_then(|ino| ino.parse::<u64>().ok())
                    == Some(meta.ino())
        }),
        // No /proc: the holder's process is alive.
        Err(_) => holder.as_ref().is_some_and(|h| {
            // SAFETY: signal 0 only checks that the process exists.
            let alive = unsafe { libc::kill(h.pid as libc::pid_t, 0) };
            alive == 0
        }),
    };
    if held {
        holder.or(Some(Holder {
            pid: 0,
            run_id: "unknown".into(),
            user: None,
            host: None,
            started: "an unknown time".into(),
        }))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_gone_only_when_the_system_says_there_is_none() {
        assert!(!process_gone(std::process::id()));
        // Init runs, whoever may signal it.
        assert!(!process_gone(1));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(process_gone(pid));
        assert!(process_gone(u32::MAX));
    }

    #[test]
    fn one_holder_at_a_time_and_the_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let me = Holder::me("run-1");
        let lock = Lock::acquire(dir.path(), "D-dev", &me).unwrap();
        assert_eq!(holder(dir.path()).as_ref(), Some(&me));
        match Lock::acquire(dir.path(), "D-dev", &Holder::me("run-2")) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.run_id, "run-1"),
            other => panic!("{other:?}"),
        }
        drop(lock);
        assert_eq!(holder(dir.path()), None);
        assert!(!dir.path().join("lock").exists());
        let _again = Lock::acquire(dir.path(), "D-dev", &Holder::me("run-3")).unwrap();
    }

    /// The refusal beside programs left running reads as a message, then its help line.
    #[test]
    fn left_running_says_which_and_how_to_stop_them() {
        let refusal = LeftRunning {
            deployment: "D".into(),
            environment: "dev".into(),
            programs: "  stack `a`: process group 7 of run R, running for 5s".into(),
            records: PathBuf::from("/p/journal/dev/groups"),
        };
        assert_eq!(
            crate::error::Error::locked(refusal.to_string())
                .render(false)
                .unwrap(),
            "error: D-dev: programs of an earlier run that ended without stopping them (killed?) \
             are still running:\n  stack `a`: process group 7 of run R, running for 5s\n  \
             records: /p/journal/dev/groups\n  help: this run would deploy beside them (two \
             copies of one apply race on its state); wait for them to end, or stop them with \
             `cloud unlock D -e dev --kill` (SIGTERM, then SIGKILL after --grace-period), then \
             run again"
        );
    }
}
