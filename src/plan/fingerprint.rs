//! A stack's fingerprint, for smart skip: what it deploys from, so that a stack whose
//! fingerprint equals the one recorded at its last successful deploy can be skipped.
//!
//! It covers the stack's manifest entry (as data: comments and layout do not count), the
//! environment, the outputs of its dependencies, and the files under its `path` — but not
//! `.git`, log files, the deployment's own journal and logs, what its executor writes there
//! itself (state files), nor anything `.cloudignore` in `path` lists (one pattern a line,
//! `#` comments; `name` matches at any depth, `/a/b` from `path`, a trailing `/` only folders,
//! `*` and `?` as in globs).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::event::Outputs;
use crate::executor::StackSpec;

use crate::manifest::fingerprint_hex as hex;

/// What `cloud` itself writes in a deployment's folder (journals, history and locks under
/// `journal/`, file logs, the DynamoDB spool, saved plans): never what a stack deploys from.
pub const WRITTEN_BY_CLOUD: &[&str] = &["journal", "logs", "spool", "plans"];

/// The manifest: each stack's own entry counts, not the file.
const MANIFEST: &str = "deployment.yaml";

/// The whole fingerprint, once the dependencies' outputs are known. `entry` is the
/// fingerprint of the stack's manifest entry (`StackSpec::entry_fingerprint`).
pub fn stack(
    entry: &str,
    environment: &str,
    files: &str,
    dependency_outputs: &[(&str, &Outputs)],
) -> String {
    let mut h = Sha256::new();
    for part in [entry, environment, files] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (name, outputs) in dependency_outputs {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(
            serde_json::to_string(outputs)
                .unwrap_or_default()
                .as_bytes(),
        );
        h.update([0]);
    }
    hex(&h.finalize())
}

/// The fingerprint of the files under `root`, leaving out what [`Ignore`] says and the
/// folders in `others` (other stacks' own paths inside this one).
pub fn files(root: &Path, executor_ignores: &[&str], others: &[&Path]) -> io::Result<String> {
    let ignore = ignore(root, executor_ignores, others);
    let mut h = Sha256::new();
    walk(root, "", &ignore, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// What [`files`] leaves out under `root`: the defaults, the executor's, other stacks' own
/// folders inside it (`others`) and its `.cloudignore`.
pub fn ignore(root: &Path, executor_ignores: &[&str], others: &[&Path]) -> Ignore {
    let mut ignore = Ignore::defaults();
    ignore.add_lines(executor_ignores.iter().copied());
    let inside: Vec<String> = others
        .iter()
        .filter_map(|o| o.strip_prefix(root).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(|rel| format!("/{}/", rel.to_string_lossy()))
        .collect();
    ignore.add_lines(inside.iter().map(String::as_str));
    if let Ok(text) = fs::read_to_string(root.join(".cloudignore")) {
        ignore.add_lines(text.lines());
    }
    ignore
}

/// Whether the file at `rel` (relative to `root`, `/`-separated) is one [`files`] reads: the
/// same rules as its walk (for `cloud affected`, which is told paths by git).
pub fn counts(root: &Path, rel: &str, ignore: &Ignore) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let mut path = String::new();
    for (n, name) in parts.iter().enumerate() {
        let is_dir = n + 1 < parts.len();
        let is_deployment_folder = root.join(&path).join(MANIFEST).is_file();
        if is_deployment_folder && (WRITTEN_BY_CLOUD.contains(name) || *name == MANIFEST) {
            return false;
        }
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(name);
        if ignore.matches(&path, name, is_dir) {
            return false;
        }
    }
    true
}

/// The fingerprint of the files under each stack's `path` (but not under another stack's own
/// path inside it), computed once per folder, on a few threads. `Some("")` for stacks whose
/// executor reads no files; `None` where a folder cannot be read: never skipped as unchanged.
pub fn stacks_files(stacks: &[&StackSpec]) -> Vec<Option<String>> {
    type Key = (PathBuf, &'static [&'static str]);
    let mut folders: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    let mut out = vec![None; stacks.len()];
    for (i, spec) in stacks.iter().enumerate() {
        if spec.executor.reads_files() {
            folders
                .entry((spec.path.clone(), spec.executor.fingerprint_ignores()))
                .or_default()
                .push(i);
        } else {
            out[i] = Some(String::new());
        }
    }
    let all_paths: Vec<&Path> = stacks.iter().map(|s| s.path.as_path()).collect();
    let jobs: Vec<_> = folders.into_iter().collect();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let chunk = jobs.len().div_ceil(workers).max(1);
    let results: Vec<(Vec<usize>, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                let all_paths = &all_paths;
                scope.spawn(move || {
                    part.iter()
                        .map(|((path, ignores), stacks)| {
                            let others: Vec<&Path> = all_paths
                                .iter()
                                .copied()
                                .filter(|p| *p != path.as_path())
                                .collect();
                            (stacks.clone(), files(path, ignores, &others).ok())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (stacks, hash) in results {
        for i in stacks {
            out[i] = hash.clone();
        }
    }
    out
}

fn walk(root: &Path, rel: &str, ignore: &Ignore, h: &mut Sha256) -> io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let is_deployment_folder = dir.join(MANIFEST).is_file();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type()?;
        let is_dir = kind.is_dir();
        // A deployment's own record and its manifest (each stack's entry counts by itself).
        if is_deployment_folder && (WRITTEN_BY_CLOUD.contains(&name.as_str()) || name == MANIFEST) {
            continue;
        }
        if ignore.matches(&path, &name, is_dir) {
            continue;
        }
        h.update(path.as_bytes());
        h.update([0]);
        if is_dir {
            h.update(b"d");
            walk(root, &path, ignore, h)?;
        } else if kind.is_symlink() {
            h.update(b"l");
            h.update(fs::read_link(entry.path())?.to_string_lossy().as_bytes());
        } else {
            h.update(b"f");
            let mut file = fs::File::open(entry.path())?;
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        h.update([0]);
    }
    Ok(())
}

/// `.cloudignore`-style patterns.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    glob: String,
    /// From the root (`/a/b` or `a/b`), else any name at any depth.
    anchored: bool,
    dirs_only: bool,
}

impl Ignore {
    /// `.git` and log files are never part of what a stack deploys from.
    pub fn defaults() -> Ignore {
        let mut i = Ignore::default();
        i.add_lines([".git/", "*.log"]);
        i
    }

    pub fn add_lines<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) {
        for line in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let dirs_only = line.ends_with('/');
            let line = line.trim_end_matches('/');
            let anchored = line.contains('/');
            self.patterns.push(Pattern {
                glob: line.trim_start_matches('/').to_owned(),
                anchored,
                dirs_only,
            });
        }
    }

    /// Whether `path` (relative, `/`-separated; its last part `name`) is left out.
    pub fn matches(&self, path: &str, name: &str, is_dir: bool) -> bool {
        self.patterns.iter().any(|p| {
            (!p.dirs_only || is_dir)
                && if p.anchored {
                    glob(&p.glob, path)
                } else {
                    glob(&p.glob, name)
                }
        })
    }
}

/// `*` (any run, not `/`), `?` (one character), the rest literal.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => t.first().is_some_and(|&c| c != '/') && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let mut i = Ignore::defaults();
        i.add_lines([
            "node_modules/",
            "/build/out",
            "*.tmp",
            "# comment",
            "cache?",
        ]);
        assert!(i.matches(".git", ".git", true));
        assert!(!i.matches(".git", ".git", false));
        assert!(i.matches("a/x.log", "x.log", false));
        assert!(i.matches("web/node_modules", "node_modules", true));
        assert!(i.matches("build/out", "out", true));
        assert!(!i.matches("src/build/out", "out", true));
        assert!(i.matches("deep/a.tmp", "a.tmp", false));
        assert!(i.matches("cache1", "cache1", false));
        assert!(!i.matches("main.tf", "main.tf", false));
    }

    /// Every place `cloud` writes under a deployment folder, made by the code that writes it:
    /// none changes the fingerprint of a stack whose `path` is that folder (or holds it).
    #[test]
    fn what_cloud_writes_is_no_part_of_a_fingerprint() {
        let top = tempfile::tempdir().unwrap();
        let deployment = top.path().join("cloud/deploy/D1");
        fs::create_dir_all(&deployment).unwrap();
        fs::write(deployment.join(MANIFEST), "stacks: {}\n").unwrap();
        fs::write(deployment.join("deploy.sh"), "echo hi\n").unwrap();
        let before_here = files(&deployment, &[], &[]).unwrap();
        let before_above = files(top.path(), &[], &[]).unwrap();

        let journal = crate::store::journal::dir(&deployment, "dev");
        fs::create_dir_all(&journal).unwrap();
        fs::write(crate::store::journal::path(&journal, "r1"), "{}\n").unwrap();
        fs::write(journal.join("lock"), "{}").unwrap();
        crate::store::history::RunHistory::default()
            .save(&journal)
            .unwrap();
        let logs = crate::store::filelog::dir(&deployment);
        fs::create_dir_all(&logs).unwrap();
        fs::write(logs.join("deploy-dev-2026-01-01-00-00.log.1"), "x").unwrap();
        let spool = crate::store::spool::dir(&deployment, "table", "dev");
        fs::create_dir_all(&spool).unwrap();
        fs::write(crate::store::spool::file(&spool, "r1"), "{}\n").unwrap();
        fs::create_dir_all(deployment.join("plans/p1")).unwrap();
        fs::write(deployment.join("plans/p1/plan.json"), "{}").unwrap();
        // Every folder made above is one of those named.
        for entry in fs::read_dir(&deployment).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name == MANIFEST
                    || name == "deploy.sh"
                    || WRITTEN_BY_CLOUD.contains(&name.as_str()),
                "cloud wrote `{name}`, which WRITTEN_BY_CLOUD does not name"
            );
        }
        assert_eq!(files(&deployment, &[], &[]).unwrap(), before_here);
        assert_eq!(files(top.path(), &[], &[]).unwrap(), before_above);

        // A file of the stack's own does count.
        fs::write(deployment.join("deploy.sh"), "echo bye\n").unwrap();
        assert_ne!(files(&deployment, &[], &[]).unwrap(), before_here);
    }

    #[test]
    fn files_change_the_fingerprint_ignored_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("main.tf"), "a").unwrap();
        fs::create_dir(root.join(".terraform")).unwrap();
        let ignores = [".terraform/", "terraform.tfstate"];
        let first = files(root, &ignores, &[]).unwrap();
        fs::write(root.join("terraform.tfstate"), "state").unwrap();
        fs::write(root.join(".terraform/x"), "plugins").unwrap();
        fs::write(root.join("run.log"), "noise").unwrap();
        assert_eq!(files(root, &ignores, &[]).unwrap(), first);
        fs::write(root.join("main.tf"), "b").unwrap();
        let changed = files(root, &ignores, &[]).unwrap();
        assert_ne!(changed, first);
        fs::write(root.join(".cloudignore"), "main.tf\n").unwrap();
        let ignored = files(root, &ignores, &[]).unwrap();
        fs::write(root.join("main.tf"), "c").unwrap();
        assert_eq!(files(root, &ignores, &[]).unwrap(), ignored);
    }
}
