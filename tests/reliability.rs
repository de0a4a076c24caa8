//! A hostile world, through the real binary: programs that fork into the background, ignore
//! signals and print anything; terminals that close; runs that are killed; locks raced for;
//! journals that are corrupted or cannot be written; input that used to panic.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// `cloud --root P deploy ID -e dev ARGS` in the background, stdout into a file to read as it
/// goes.
fn spawn(p: &Project, id: &str, args: &[&str]) -> (Child, PathBuf) {
    let out = p.root().join(format!("{id}.stdout"));
    let child = p
        .process()
        .args(["deploy", id, "-e", "dev"])
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, out)
}

/// Waits for the child to exit, killing it and failing after `secs`.
fn exit_code(child: &mut Child, secs: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cloud did not exit within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence. A zombie is not alive for this purpose.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_background_process_that_keeps_the_output_open_does_not_keep_the_stack_running() {
    let p = Project::new();
    let pid_file = p.root().join("bg.pid");
    p.manifest(
        "BG",
        &format!(
            "environments: [dev]\nstacks:\n  agent:\n    executor: command\n    deploy: \"sleep 300 & echo $! > {}; echo started\"\n",
            pid_file.display()
        ),
    );
    let (mut child, out) = spawn(&p, "BG", &["--output", "json"]);
    let code = exit_code(&mut child, 20);
    assert_eq!(code, 0, "{}", stderr_of(&mut child));
    let events = parse_events(&std::fs::read(out).unwrap());
    let said = log_messages(&events, "agent", None);
    assert!(said.contains(&"started".to_owned()), "{said:?}");
    let bg = read_pid(&pid_file);
    assert!(
        said.iter()
            .any(|l| l.contains("still runs in the background") && l.contains(&bg.to_string())),
        "a warning names the process left behind: {said:?}"
    );
    // It was not killed: it is the script's own business; clean up.
    assert!(alive(bg));
    unsafe { libc::kill(bg, libc::SIGKILL) };
}

#[test]
fn a_cancel_kills_the_whole_group_after_the_grace_period_even_when_the_leader_is_gone() {
    let p = Project::new();
    let pid_file = p.root().join("stubborn.pid");
    let ready = p.root().join("ready");
    // The leader exits on SIGINT; its background child ignores SIGINT (as sh background jobs do).
    p.manifest(
        "GRP",
        &format!(
            "environments: [dev]\nstacks:\n  app:\n    executor: command\n    deploy: \"sh -c 'trap \\\"\\\" INT; echo $$ > {pid}; exec sleep 300' & trap 'exit 130' INT; touch {ready}; while true; do sleep 0.05; done\"\n",
            pid = pid_file.display(),
            ready = ready.display()
        ),
    );
    let (mut child, _) = spawn(&p, "GRP", &["--output", "json", "--grace-period", "1"]);
    wait_for("the stack to run", 20, || {
        ready.exists() && pid_file.exists()
    });
    let bg = read_pid(&pid_file);
    signal(&child, libc::SIGINT);
    assert_eq!(exit_code(&mut child, 20), 130);
    wait_for("the background child to be killed", 5, || !alive(bg));
}

#[test]
fn a_closed_terminal_stops_the_run_like_sigterm() {
    let p = Project::new();
    let ready = p.root().join("ready");
    let marker = p.root().join("got-int");
    p.manifest(
        "HUP",
        &format!(
            "environments: [dev]\nstacks:\n  app:\n    executor: command\n    deploy: \"trap 'echo int > {marker}; exit 130' INT; touch {ready}; while true; do sleep 0.05; done\"\n  after:\n    executor: simulate\n    dependencies: [app]\n",
            marker = marker.display(),
            ready = ready.display()
        ),
    );
    let (mut child, _) = spawn(&p, "HUP", &["--output", "json"]);
    wait_for("the stack to run", 20, || ready.exists());
    signal(&child, libc::SIGHUP);
    assert_eq!(exit_code(&mut child, 20), 130);
    assert!(marker.exists(), "the stack's program got SIGINT");
    let dir = p.deployment_dir("HUP").join("journal/dev");
    assert!(!dir.join("lock").exists(), "the lock went with the run");
    let events = p.journal("HUP", "dev");
    let last = &events.last().unwrap()["data"];
    assert_eq!(last["cancelled"], true);
    let stops = of_type(&events, "deployment_cancelling");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["data"]["reason"], "signal");
    // The next run starts at once (nothing stale left behind).
    p.manifest(
        "HUP",
        "environments: [dev]\nstacks:\n  app: { executor: simulate }\n",
    );
    let (code, _, _) = p.deploy_json("HUP", &[]);
    assert_eq!(code, 0);
}

#[test]
fn a_second_ctrl_c_forces_the_stop_and_the_first_says_what_it_waits_for() {
    let p = Project::new();
    let ready = p.root().join("ready");
    p.manifest(
        "TWICE",
        &format!(
            "environments: [dev]\nstacks:\n  stubborn:\n    executor: command\n    deploy: \"trap '' INT; touch {}; while true; do sleep 0.05; done\"\n",
            ready.display()
        ),
    );
    let (mut child, out) = spawn(&p, "TWICE", &["--verbose", "--grace-period", "120"]);
    wait_for("the stack to run", 20, || ready.exists());
    signal(&child, libc::SIGINT);
    wait_for("the stopping line", 10, || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("Stopping: 1 stack (stubborn), waiting up to 2m (Ctrl-C again to force)")
    });
    let second = Instant::now();
    signal(&child, libc::SIGINT);
    assert_eq!(exit_code(&mut child, 20), 130);
    assert!(
        second.elapsed() < Duration::from_secs(60),
        "it did not wait out the 120 s grace"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("Forced: killing 1 stack (stubborn) now"),
        "{text}"
    );
    let events = p.journal("TWICE", "dev");
    // The stop is an event, told before what it causes, and again when forced.
    let stops = of_type(&events, "deployment_cancelling");
    let data: Vec<_> = stops.iter().map(|e| &e["data"]).collect();
    assert_eq!(data.len(), 2, "{data:?}");
    assert_eq!(
        (
            &data[0]["reason"],
            &data[0]["forced"],
            &data[0]["graceSeconds"]
        ),
        (&json!("interrupt"), &json!(false), &json!(120.0))
    );
    assert_eq!(data[1]["forced"], true);
    let failed = of_type(&events, "stack_failed")[0]["sequence"]
        .as_u64()
        .unwrap();
    assert!(stops[1]["sequence"].as_u64().unwrap() < failed);
    let error = &of_type(&events, "stack_failed")[0]["data"]["error"];
    assert_eq!(error["code"], "CANCELLED");
    assert!(
        error["details"]
            .as_str()
            .unwrap()
            .contains("killed at once (the stop was forced)"),
        "{error}"
    );
}

#[test]
fn stacks_left_by_a_cancel_are_not_started_and_the_run_is_cancelled() {
    let p = Project::new();
    let ready = p.root().join("ready");
    p.manifest(
        "CAN",
        &format!(
            "environments: [dev]\nstacks:\n  first:\n    executor: command\n    deploy: \"touch {}; while true; do sleep 0.05; done\"\n  second:\n    executor: simulate\n    dependencies: [first]\n",
            ready.display()
        ),
    );
    let (mut child, out) = spawn(&p, "CAN", &["--verbose"]);
    wait_for("the stack to run", 20, || ready.exists());
    signal(&child, libc::SIGINT);
    assert_eq!(exit_code(&mut child, 30), 130);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("⏸ second (not started: cancelled)"), "{text}");
    assert!(!text.contains("blocked by"), "{text}");
    let events = p.journal("CAN", "dev");
    assert!(of_type(&events, "stack_blocked").is_empty());
    let status = p
        .cmd()
        .args(["status", "CAN", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(1),
        "a cancelled run is not a success"
    );
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.starts_with("CAN-dev: cancelled"), "{status}");
}

#[test]
fn odd_bytes_escape_codes_and_endless_lines_are_read_cleanly() {
    let p = Project::new();
    p.manifest(
        "ODD",
        r#"
environments: [dev]
stacks:
  odd:
    executor: command
    deploy: |
      printf 'Schl\374ssel\n'
      printf 'bad \377 byte\n' >&2
      printf '\033[?25l\033]0;pwned title\007\033[31mred\033[0m and \033[?1049lplain\n'
      printf '10%%\r50%%\r100%% done\n'
      head -c 3000000 /dev/zero | tr '\0' a
      echo
      echo after
"#,
    );
    let (code, events, output) = p.deploy_json("ODD", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
    let said = log_messages(&events, "odd", None);
    assert!(said.contains(&"Schl\u{fffd}ssel".to_owned()), "{said:?}");
    assert!(said.contains(&"bad \u{fffd} byte".to_owned()), "{said:?}");
    assert!(said.contains(&"red and plain".to_owned()), "{said:?}");
    assert!(said.contains(&"100% done".to_owned()), "{said:?}");
    assert!(
        said.contains(&"after".to_owned()),
        "reading went on: {said:?}"
    );
    let long = said.iter().find(|l| l.starts_with("aaaa")).unwrap();
    assert!(long.len() <= 64 * 1024 + 40, "{} bytes", long.len());
    assert!(
        long.ends_with("[line cut at 64 KiB]"),
        "{}",
        &long[long.len() - 40..]
    );
    let stream = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stream.contains('\u{1b}') && !stream.contains("\\u001b"),
        "no escape codes"
    );
}

#[test]
fn three_deploys_started_together_after_a_crash_deploy_once() {
    let p = Project::new();
    p.manifest(
        "RACE",
        "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources: [{ type: \"t:a:A\", name: a, seconds: 0.3 }]\n",
    );
    let dir = p.deployment_dir("RACE").join("journal/dev");
    for round in 0..10 {
        // What a `kill -9` leaves: a lock file whose holder is gone.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("lock"),
            r#"{"pid":999999,"runId":"dead","started":"x"}"#,
        )
        .unwrap();
        let before = std::fs::read_dir(&dir).unwrap().count();
        let mut runs: Vec<Child> = (0..3)
            .map(|_| {
                p.process()
                    // --force: each round deploys for real (not skipped as unchanged).
                    .args(["deploy", "RACE", "-e", "dev", "-o", "json", "--force"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut codes: Vec<i32> = runs.iter_mut().map(|c| exit_code(c, 30)).collect();
        codes.sort_unstable();
        assert_eq!(codes, [0, 3, 3], "round {round}");
        let journals = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "jsonl")
            })
            .count();
        // One new journal a round (history.json and the lock file come and go).
        assert!(
            journals == round + 1,
            "round {round}: {journals} journals ({before} files before)"
        );
    }
}

#[test]
fn status_follows_a_live_run_and_names_a_killed_one_interrupted() {
    let p = Project::new();
    p.manifest(
        "LIVE",
        "environments: [dev]\nstacks:\n  slow:\n    executor: simulate\n    resources: [{ type: \"t:a:A\", name: a, seconds: 60 }]\n",
    );
    let (mut child, _) = spawn(&p, "LIVE", &["-o", "json"]);
    let status = || {
        let out = p
            .cmd()
            .args(["status", "LIVE", "-e", "dev"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Long before the first stack ends, status reads the run.
    wait_for("status to read the live run", 10, || {
        let (code, text) = status();
        code == Some(0) && text.starts_with("LIVE-dev: deploying")
    });
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    let (code, text) = status();
    // A run that died is not a success: exit 1.
    assert_eq!(code, Some(1));
    assert!(
        text.starts_with(
            "LIVE-dev: failed (interrupted: the run stopped without finishing, its last event"
        ),
        "{text}"
    );
    // And the kernel let go of the lock with the process.
    p.manifest(
        "LIVE",
        "environments: [dev]\nstacks:\n  slow: { executor: simulate }\n",
    );
    let (code, _, _) = p.deploy_json("LIVE", &[]);
    assert_eq!(code, 0);
}

/// Process groups a test leaves behind if it fails midway: killed when it ends.
struct Groups(Vec<i32>);

impl Drop for Groups {
    fn drop(&mut self) {
        for &pgid in &self.0 {
            // SAFETY: signals a process group this test's run started.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// A deployment of four quick stacks, then `slow` (exits on SIGTERM) and `stubborn` (ignores
/// it), which write their pid to `<name>.pid` and run until killed, then `top` after `slow`.
fn left_running(p: &Project, id: &str) -> [PathBuf; 2] {
    let pid = |name: &str| p.root().join(format!("{name}.pid"));
    p.manifest(
        id,
        &format!(
            r#"
environments: [dev]
defaults: {{ executor: simulate }}
stacks:
  a: {{ resources: [{{ type: "t:a:A", name: a, seconds: 0 }}] }}
  b: {{ resources: [{{ type: "t:a:A", name: a, seconds: 0 }}] }}
  c: {{ resources: [{{ type: "t:a:A", name: a, seconds: 0 }}] }}
  d: {{ resources: [{{ type: "t:a:A", name: a, seconds: 0 }}] }}
  slow:
    executor: command
    dependencies: [a, b, c, d]
    deploy: "echo $$ > {slow}; exec sleep 300"
  stubborn:
    executor: command
    dependencies: [a, b, c, d]
    deploy: "trap '' TERM; echo $$ > {stubborn}; while true; do sleep 0.05; done"
  top:
    dependencies: [slow]
"#,
            slow = pid("slow").display(),
            stubborn = pid("stubborn").display()
        ),
    );
    [pid("slow"), pid("stubborn")]
}

/// Starts `id` (see [`left_running`]), waits until its journal holds the four quick stacks
/// deployed and the two slow ones running, and kills `cloud` with SIGKILL. Returns the pids of
/// the two programs it leaves running.
fn kill_9_midway(p: &Project, id: &str, pids: &[PathBuf; 2], guard: &mut Groups) -> [i32; 2] {
    for pid in pids {
        let _ = std::fs::remove_file(pid);
    }
    let (mut child, _) = spawn(p, id, &["-o", "json"]);
    let dir = p.deployment_dir(id).join("journal/dev");
    wait_for("4 stacks deployed and 2 running in the journal", 30, || {
        let Some(journal) = std::fs::read_dir(&dir).ok().and_then(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .max()
        }) else {
            return false;
        };
        let text = std::fs::read_to_string(journal).unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        of_type(&events, "stack_deployed").len() == 4
            && of_type(&events, "stack_deploying").len() == 6
            && pids.iter().all(|p| p.exists())
    });
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    let left = [read_pid(&pids[0]), read_pid(&pids[1])];
    guard.0.extend(left);
    left
}

#[test]
fn after_kill_9_the_next_run_refuses_beside_the_stacks_left_running_and_unlock_kill_stops_them() {
    let p = Project::new();
    let pids = left_running(&p, "LEFT");
    let mut guard = Groups(Vec::new());
    let [slow, stubborn] = kill_9_midway(&p, "LEFT", &pids, &mut guard);
    assert!(
        alive(slow) && alive(stubborn),
        "kill -9 of cloud leaves them"
    );

    // A new run (deploy or destroy) would run them again beside them: refused, naming them.
    for args in [
        vec!["deploy", "LEFT", "-e", "dev", "-o", "json"],
        vec!["destroy", "LEFT", "-e", "dev", "--yes", "-o", "json"],
    ] {
        // Spawned with a deadline: a run that is not refused would run them again, for ever.
        let mut run = p
            .process()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let code = exit_code(&mut run, 30);
        let stderr = stderr_of(&mut run);
        assert_eq!(code, 3, "{args:?}: {stderr}");
        for said in [
            format!("stack `slow` (pid {slow}, run "),
            format!("stack `stubborn` (pid {stubborn}, run "),
            "running for ".to_owned(),
            "cloud unlock LEFT -e dev --kill".to_owned(),
        ] {
            assert!(stderr.contains(&said), "`{said}` missing: {stderr}");
        }
    }
    assert_eq!(
        std::fs::read_dir(p.deployment_dir("LEFT").join("journal/dev"))
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jsonl"))
            .count(),
        1,
        "a refused run started nothing"
    );
    assert!(alive(slow) && alive(stubborn));
    // unlock without --kill names them and stops nothing.
    let out = p
        .cmd()
        .args(["unlock", "LEFT", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kill"));
    assert!(alive(slow) && alive(stubborn));

    // --kill: SIGTERM stops `slow`; `stubborn` ignores it and gets SIGKILL after the grace.
    let out = p
        .cmd()
        .args([
            "unlock",
            "LEFT",
            "-e",
            "dev",
            "--kill",
            "--grace-period",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("slow: process group {slow} of run"))
            && stdout.contains("stopped with SIGTERM")
            && stdout.contains(&format!("stubborn: process group {stubborn} of run"))
            && stdout.contains("killed with SIGKILL: still running 1s after SIGTERM"),
        "{stdout}"
    );
    wait_for("both groups to be gone", 10, || {
        !alive(slow) && !alive(stubborn)
    });

    // The records went with them: the next run starts.
    p.manifest(
        "LEFT",
        "environments: [dev]\nstacks:\n  a: { executor: simulate }\n",
    );
    let (code, _, out) = p.deploy_json("LEFT", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn groups_a_dead_run_left_that_ended_since_are_cleaned_up_without_a_word() {
    let p = Project::new();
    let pids = left_running(&p, "GONE");
    let mut guard = Groups(Vec::new());
    let left = kill_9_midway(&p, "GONE", &pids, &mut guard);
    let records = p.deployment_dir("GONE").join("journal/dev/groups");
    assert_eq!(
        std::fs::read_dir(&records).unwrap().count(),
        2,
        "one record a group"
    );
    for pgid in left {
        // SAFETY: the groups the killed run left.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    wait_for("the groups to be gone", 10, || {
        left.iter().all(|&p| !alive(p))
    });
    p.manifest(
        "GONE",
        "environments: [dev]\nstacks:\n  a: { executor: simulate }\n",
    );
    let (code, _, out) = p.deploy_json("GONE", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("still running"), "{stderr}");
    assert!(!records.exists(), "the records of gone groups stay");
}

#[test]
fn history_and_status_tell_a_killed_run_the_same_from_its_journal() {
    let p = Project::new();
    let pids = left_running(&p, "AGREE");
    let mut guard = Groups(Vec::new());
    kill_9_midway(&p, "AGREE", &pids, &mut guard);

    let out = p
        .cmd()
        .args(["history", "AGREE", "-e", "dev", "-o", "json"])
        .output()
        .unwrap();
    let runs = parse_events(&out.stdout);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (
            &runs[0]["status"],
            &runs[0]["reason"],
            &runs[0]["deployedStacks"]
        ),
        (
            &Value::from("failed"),
            &Value::from("interrupted"),
            &Value::from(4)
        ),
        "{}",
        runs[0]
    );
    let out = p
        .cmd()
        .args(["history", "AGREE", "-e", "dev"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("failed (interrupted)  4 "), "{text}");

    let out = p
        .cmd()
        .args(["status", "AGREE", "-e", "dev"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("AGREE-dev: failed (interrupted: the run stopped without finishing"),
        "{text}"
    );
    assert!(
        text.contains("(4/7 stacks deployed)") && !text.contains("ETA"),
        "{text}"
    );
    let state = |stack: &str| {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(stack))
            .unwrap_or_else(|| panic!("no line for {stack}: {text}"));
        line.split_whitespace().nth(4).unwrap().to_owned()
    };
    assert_eq!(state("a"), "deployed");
    assert_eq!(state("slow"), "interrupted");
    assert_eq!(state("stubborn"), "interrupted");
    assert_eq!(state("top"), "pending");
}

#[test]
fn a_corrupt_journal_line_is_skipped_with_a_warning() {
    let p = Project::new();
    p.manifest(
        "CORRUPT",
        "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources: [{ type: \"t:a:A\", name: a, seconds: 0 }]\n",
    );
    let (code, _, _) = p.deploy_json("CORRUPT", &[]);
    assert_eq!(code, 0);
    let dir = p.deployment_dir("CORRUPT").join("journal/dev");
    let journal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "{\"type\":\"stack_log\",garbage");
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let out = p
        .cmd()
        .args(["status", "CORRUPT", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped a line of the journal") && err.contains(".jsonl:3:"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("CORRUPT-dev: deployed"));
}

#[test]
fn a_journal_that_cannot_be_written_is_said_at_once_and_fails_the_run() {
    let p = Project::new();
    let Some(_unmount) = full_journal(&p, "a_journal_that_cannot_be_written…") else {
        return;
    };
    let (code, _, output) = p.deploy_json("FULL", &[]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot be written: No space left on device"),
        "said at once: {err}"
    );
    assert!(
        err.contains("deployed, but the run's record is incomplete"),
        "and at the end: {err}"
    );
}

#[test]
fn input_that_used_to_panic_is_bad_input() {
    let p = Project::new();
    for (yaml, want) in [
        (
            "stacks:\n  a:\n    executor: simulate\n    resources: [{ type: t, name: n, seconds: 1e30 }]\n",
            "`seconds` must be at most 86400",
        ),
        (
            "parallelism: 99999999999999999999\nstacks:\n  a: { executor: simulate }\n",
            "`parallelism` must be at most 100000, found 99999999999999999999",
        ),
        (
            "stacks:\n  a:\n    executor: simulate\n    resources:\n      - { type: t, name: n, seconds: 1 }\n      - { type: t, name: n, seconds: 2 }\n",
            "resource `t` `n` is listed twice in stack `a`",
        ),
    ] {
        p.manifest("PANIC", &format!("environments: [dev]\n{yaml}"));
        let out = p
            .cmd()
            .args(["deploy", "PANIC", "-e", "dev"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml}: {err}");
        assert!(err.contains(want), "{yaml}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    p.manifest(
        "GRACE",
        "environments: [dev]\nstacks:\n  a: { executor: simulate }\n",
    );
    let out = p
        .cmd()
        .args(["deploy", "GRACE", "-e", "dev", "--grace-period", "1e20"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--grace-period must be a number of seconds from 0 to 3600"),
        "{err}"
    );

    // An alias bomb: said to expand too much, not "define the anchor first".
    let mut bomb = String::from("environments: [dev]\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    p.manifest("BOMB", &bomb);
    let out = p.cmd().args(["validate", "BOMB"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("expands too much"), "{err}");
}

#[test]
fn a_stacks_percent_never_goes_down_and_unfinished_resources_are_closed() {
    let p = Project::new();
    p.manifest(
        "PCT",
        r#"
environments: [dev]
stacks:
  app:
    executor: command
    deploy: |
      echo '::cloud::{"progress":99,"message":"almost"}'
      echo '::cloud::{"progress":0,"message":"again"}'
      echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"op":"creating"}'
"#,
    );
    let (code, events, _) = p.deploy_json("PCT", &[]);
    assert_eq!(code, 0);
    let percents: Vec<u64> = of_type(&events, "stack_progress")
        .iter()
        .map(|e| e["data"]["progressPercent"].as_u64().unwrap())
        .collect();
    assert_eq!(percents, [99, 99]);
    let created = of_type(&events, "resource_created");
    assert_eq!(created.len(), 1, "the resource left creating is closed");
    assert!(log_messages(&events, "app", None)
        .iter()
        .any(|l| l.contains("was reported creating and never finished")));
    let deployed = &of_type(&events, "stack_deployed")[0]["data"];
    assert_eq!(deployed["resourcesCreated"], 1);
}
