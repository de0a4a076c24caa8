//! Helpers for tests that drive the real `cloud` binary.
#![allow(dead_code)]

pub mod moto;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// The real binary, with a clean environment for what it reads.
pub fn cloud() -> assert_cmd::Command {
    assert_cmd::Command::from_std(cloud_process())
}

/// [`cloud`] as a `std::process::Command`, for a run spawned in the background.
pub fn cloud_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cloud"));
    for var in ["CLOUD_ROOT", "CLOUD_SIMULATE_SPEED", "CI", "NO_COLOR"] {
        cmd.env_remove(var);
    }
    cmd
}

/// A throwaway project folder with manifests under `cloud/deploy/<ID>/`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn deployment_dir(&self, id: &str) -> PathBuf {
        self.root().join("cloud/deploy").join(id)
    }

    pub fn manifest(&self, id: &str, yaml: &str) -> &Self {
        let dir = self.deployment_dir(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("deployment.yaml"), yaml).unwrap();
        self
    }

    /// Writes a file relative to the deployment's folder (e.g. a deploy script).
    pub fn file(&self, id: &str, rel: &str, content: &str) -> PathBuf {
        let path = self.deployment_dir(id).join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.process())
    }

    /// [`Project::cmd`] as a `std::process::Command`, for a run spawned in the background.
    pub fn process(&self) -> std::process::Command {
        let mut cmd = cloud_process();
        cmd.arg("--root").arg(self.root());
        cmd
    }

    /// `cloud deploy ID -e dev --output json ARGS`: the exit code and the events.
    pub fn deploy_json(&self, id: &str, args: &[&str]) -> (i32, Vec<Value>, Output) {
        deploy_json_with(self.cmd(), id, args)
    }

    /// The events of the newest journal of `id` in `env`.
    pub fn journal(&self, id: &str, env: &str) -> Vec<Value> {
        let dir = self.deployment_dir(id).join("journal").join(env);
        let newest = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .max()
            .expect("a journal file");
        parse_events(&std::fs::read(newest).unwrap())
    }
}

/// `cloud deploy ID -e dev --output json ARGS` through `cmd` (the binary with what the test set
/// on it, e.g. a fake tool or variables): the exit code, the events and the output.
pub fn deploy_json_with(
    mut cmd: assert_cmd::Command,
    id: &str,
    args: &[&str],
) -> (i32, Vec<Value>, Output) {
    let output = cmd
        .args(["deploy", id, "-e", "dev", "--output", "json"])
        .args(args)
        .output()
        .unwrap();
    let events = parse_events(&output.stdout);
    (output.status.code().unwrap_or(-1), events, output)
}

pub fn parse_events(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The events of one type.
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// The stacks named by the events of one type, in order (`stack_skipped` → which were skipped).
pub fn stacks_of(events: &[Value], kind: &str) -> Vec<String> {
    of_type(events, kind)
        .iter()
        .map(|e| e["data"]["stack"].as_str().unwrap().to_owned())
        .collect()
}

/// The first event of `kind` about `stack`.
pub fn event_of<'a>(events: &'a [Value], kind: &str, stack: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind && e["data"]["stack"] == stack)
        .unwrap_or_else(|| panic!("no {kind} for {stack}"))
}

/// The `(level, message)` of each `stack_log` about `stack`, in order.
pub fn logs(events: &[Value], stack: &str) -> Vec<(String, String)> {
    of_type(events, "stack_log")
        .iter()
        .filter(|e| e["data"]["stack"] == stack)
        .map(|e| {
            (
                e["data"]["level"].as_str().unwrap().to_owned(),
                e["data"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The messages of the `stack_log`s about `stack`, in order: all of them, or those at `level`.
pub fn log_messages(events: &[Value], stack: &str, level: Option<&str>) -> Vec<String> {
    logs(events, stack)
        .into_iter()
        .filter(|(l, _)| level.is_none_or(|level| l == level))
        .map(|(_, message)| message)
        .collect()
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// Copies the folder `from` (every file, at any depth) to `to`: a recorded run to replay.
pub fn copy_dir(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// Moves every event of the journal at `path` back by `by`, as if the run had been recorded
/// that long ago; the first event's new time.
pub fn backdate_journal(path: &Path, by: chrono::TimeDelta) -> chrono::DateTime<chrono::Utc> {
    let mut lines = Vec::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let mut event: Value = serde_json::from_str(line).unwrap();
        let at: chrono::DateTime<chrono::Utc> =
            event["timestamp"].as_str().unwrap().parse().unwrap();
        event["timestamp"] = (at - by)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into();
        lines.push(event.to_string());
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    first["timestamp"].as_str().unwrap().parse().unwrap()
}

/// The sequence number of the first event of `kind` about `stack`.
pub fn seq_of(events: &[Value], kind: &str, stack: &str) -> u64 {
    events
        .iter()
        .find(|e| e["type"] == kind && e["data"]["stack"] == stack)
        .unwrap_or_else(|| panic!("no {kind} for {stack}"))["sequence"]
        .as_u64()
        .unwrap()
}

/// Asserts sequences count 1, 2, 3, ... with no gap.
pub fn assert_gap_free(events: &[Value]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence"].as_u64(), Some(i as u64 + 1), "gap at {e}");
    }
}

/// The bundled example, copied so that runs do not write into the source tree.
pub fn example_project() -> Project {
    let p = Project::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/example/cloud/deploy/D1BRV40/deployment.yaml");
    p.manifest("D1BRV40", &std::fs::read_to_string(src).unwrap());
    p
}

/// Starts `cloud deploy ID -e dev ARGS` in the background and waits until `ready` exists (the
/// stack's program touches it once it runs). Kills the deploy and fails if it never does.
pub fn spawn_deploy_until(
    p: &Project,
    id: &str,
    args: &[&str],
    stdout: std::process::Stdio,
    ready: &Path,
) -> std::process::Child {
    let mut child = p
        .process()
        .args(["deploy", id, "-e", "dev"])
        .args(args)
        .stdout(stdout)
        .spawn()
        .unwrap();
    if !poll_until(20, || ready.exists()) {
        let _ = child.kill();
        panic!("the deploy of {id} never started its stack");
    }
    child
}

/// Polls `check` every 20 ms until it holds: false if `secs` seconds pass first.
pub fn poll_until(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Waits until `check` holds, failing the test after `secs` seconds.
pub fn wait_for(what: &str, secs: u64, check: impl FnMut() -> bool) {
    assert!(poll_until(secs, check), "timed out waiting for {what}");
}

/// Waits for `path` to exist, failing the test after 30 s.
pub fn wait_for_file(path: &Path) {
    wait_for(&path.display().to_string(), 30, || path.exists());
}

/// The shell "gate" of a command stack that holds a run in the middle: it touches `ready`,
/// then waits until `go` exists — or until `ready` is gone (the test's folder removed), so
/// that a test that fails never leaves it running.
pub fn gate_script(ready: &Path, go: &Path) -> String {
    format!(
        "touch {ready}; while [ ! -f {go} ] && [ -e {ready} ]; do sleep 0.05; done",
        ready = ready.display(),
        go = go.display()
    )
}

/// The installed `terraform` (or `tofu`): `None` outside CI without either, said loudly; in CI
/// a missing program fails the test.
pub fn real_terraform() -> Option<&'static str> {
    let found = ["terraform", "tofu"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs terraform or tofu on PATH for the real-program tests"
        );
        eprintln!("\n*** SKIPPED: neither terraform nor tofu is installed (outside CI) ***\n");
    }
    found
}

/// A deployment `FULL` whose one stack logs 3,000 lines, with its journal's folder on a small
/// tmpfs (64 KiB) that fills up, unmounted when the guard is dropped. `None` (the test skipped,
/// said with its name) where it cannot be mounted (not root), which fails the test in CI.
pub fn full_journal(p: &Project, test: &str) -> Option<Unmount> {
    p.manifest(
        "FULL",
        "environments: [dev]\nstacks:\n  chatty:\n    executor: command\n    deploy: \"for i in $(seq 1 3000); do echo line $i of a deploy that logs a lot; done\"\n",
    );
    let dir = p.deployment_dir("FULL").join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    // A small filesystem that fills up: tmpfs, which needs root.
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a small tmpfs (run as root)"
        );
        eprintln!("SKIPPED: {test}: cannot mount a tmpfs here (not root?)");
        return None;
    }
    Some(Unmount(dir))
}

/// Unmounts its folder when dropped.
pub struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Makes a script the tests wrote executable.
pub fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
