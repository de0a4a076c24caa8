//! One deploy at a time per deployment and environment: a lock file that names its holder.
//! A lock whose process is gone is stale and taken over.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub pid: u32,
    pub run_id: String,
    pub user: Option<String>,
    pub started: String,
}

/// Held until dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{deployment} is locked: run {} (pid {}, user {}) started at {} is deploying it\n  \
         lock file: {path}\n  \
         help: wait for that run to finish; if that process is gone, the next run takes the lock over",
        holder.run_id, holder.pid, holder.user.as_deref().unwrap_or("unknown"), holder.started,
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

fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid == std::process::id() || unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
}

impl Lock {
    /// Takes the lock in `dir` for `deployment` (e.g. `D1BRV40-dev`).
    pub fn acquire(dir: &Path, deployment: &str, holder: Holder) -> Result<Lock, LockError> {
        let path = dir.join("lock");
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let body = serde_json::to_vec_pretty(&holder).unwrap_or_default();
                    file.write_all(&body).map_err(io_err)?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let current: Option<Holder> = fs::read(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok());
                    match current {
                        Some(h) if alive(h.pid) => {
                            return Err(LockError::Held {
                                deployment: deployment.to_owned(),
                                holder: Box::new(h),
                                path,
                            })
                        }
                        // Stale (its process is gone) or unreadable: take it over.
                        _ => fs::remove_file(&path).or_else(|e| {
                            if e.kind() == io::ErrorKind::NotFound {
                                Ok(())
                            } else {
                                Err(io_err(e))
                            }
                        })?,
                    }
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        Err(io_err(io::Error::other(
            "another run took the lock at the same moment",
        )))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
