//! The checkpoint a finished run leaves beside its journal (`<runId>.model.json`): `cloud status`
//! reads it instead of folding the whole journal, says exactly what the journal says, and
//! turns it down at the least doubt (the journal changed, the checkpoint damaged).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::Project;

/// A failure that blocks its dependent, beside a stack that deploys (resources, outputs, logs,
/// times that give `--timing` a path to tell).
const MIXED: &str = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  network:
    resources: [{ type: "aws:ec2/vpc:Vpc", name: vpc, seconds: 0.2, id: vpc-1 }]
    outputs: { vpcId: vpc-1 }
  db:
    dependencies: [network]
    resources: [{ type: "aws:rds/instance:Instance", name: db, seconds: 0.1, fail: "Access Denied" }]
  app:
    dependencies: [db]
    resources: [{ type: "aws:ecs/service:Service", name: app, seconds: 0 }]
  cache:
    dependencies: [network]
    resources: [{ type: "aws:elasticache/cluster:Cluster", name: cache, seconds: 0.3 }]
"#;

const FINE: &str = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  network:
    resources: [{ type: "aws:ec2/vpc:Vpc", name: vpc, seconds: 0 }]
  app:
    dependencies: [network]
    resources: [{ type: "aws:ecs/service:Service", name: app, seconds: 0 }]
"#;

fn journal_dir(p: &Project, id: &str) -> PathBuf {
    p.deployment_dir(id).join("journal/dev")
}

/// The newest run's journal and its checkpoint's path.
fn newest(p: &Project, id: &str) -> (PathBuf, PathBuf) {
    let journal = std::fs::read_dir(journal_dir(p, id))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
        .expect("a journal");
    let checkpoint = journal.with_extension("model.json");
    (journal, checkpoint)
}

/// A project whose `FINE` deployment ran once, well: its journal and its checkpoint's path.
fn deployed_fine() -> (Project, PathBuf, PathBuf) {
    let p = Project::new();
    p.manifest("FINE", FINE);
    assert_eq!(
        run(&p, &["deploy", "FINE", "-e", "dev", "--output", "json"]),
        Some(0)
    );
    let (journal, checkpoint) = newest(&p, "FINE");
    (p, journal, checkpoint)
}

/// `cloud status` in each of its forms: (form, exit code, stdout, stderr).
fn statuses(p: &Project, id: &str) -> Vec<(String, Option<i32>, String, String)> {
    let forms: [&[&str]; 4] = [
        &[],
        &["--output", "json"],
        &["--timing"],
        &["--output", "json", "--timing"],
    ];
    forms
        .iter()
        .map(|form| {
            let out = p
                .cmd()
                .args(["status", id, "-e", "dev"])
                .args(*form)
                .env("COLUMNS", "120")
                .output()
                .unwrap();
            (
                form.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

/// The run left a checkpoint, and status prints the same with it as from the journal alone.
fn same_with_and_without_checkpoint(
    p: &Project,
    id: &str,
) -> Vec<(String, Option<i32>, String, String)> {
    let (_, checkpoint) = newest(p, id);
    assert!(
        checkpoint.exists(),
        "no checkpoint {}",
        checkpoint.display()
    );
    let with = statuses(p, id);
    std::fs::remove_file(&checkpoint).unwrap();
    let without = statuses(p, id);
    for (a, b) in with.iter().zip(&without) {
        assert_eq!(a, b, "status {} differs with the checkpoint", a.0);
    }
    with
}

fn run(p: &Project, args: &[&str]) -> Option<i32> {
    let out = p.cmd().args(args).output().unwrap();
    out.status.code()
}

#[test]
fn status_says_the_same_from_a_checkpoint_as_from_the_journal_for_every_kind_of_run() {
    let p = Project::new();
    p.manifest("MIX", MIXED);
    // A failure, a stack blocked by it, one left unstarted.
    assert_eq!(
        run(
            &p,
            &["deploy", "MIX", "-e", "dev", "-p", "1", "--output", "json"]
        ),
        Some(1)
    );
    let said = same_with_and_without_checkpoint(&p, "MIX");
    assert_eq!(said[0].1, Some(1));
    assert!(said[0].2.contains("blocked by db"), "{}", said[0].2);
    // Rolled back.
    assert_eq!(
        run(
            &p,
            &[
                "deploy",
                "MIX",
                "-e",
                "dev",
                "--rollback-on-failure",
                "--force",
                "--output",
                "json"
            ]
        ),
        Some(1)
    );
    let said = same_with_and_without_checkpoint(&p, "MIX");
    assert!(said[0].2.contains("rolled back"), "{}", said[0].2);

    let q = Project::new();
    q.manifest("FINE", FINE);
    assert_eq!(
        run(&q, &["deploy", "FINE", "-e", "dev", "--output", "json"]),
        Some(0)
    );
    let said = same_with_and_without_checkpoint(&q, "FINE");
    assert_eq!(said[0].1, Some(0));
    // Deployed again unchanged: its stacks skipped.
    assert_eq!(
        run(&q, &["deploy", "FINE", "-e", "dev", "--output", "json"]),
        Some(0)
    );
    let said = same_with_and_without_checkpoint(&q, "FINE");
    assert!(said[0].2.contains("skipped"), "{}", said[0].2);
    // A plan (journalled like any run), then a destroy.
    assert_eq!(run(&q, &["plan", "FINE", "-e", "dev", "--all"]), Some(0));
    same_with_and_without_checkpoint(&q, "FINE");
    assert_eq!(
        run(
            &q,
            &["destroy", "FINE", "-e", "dev", "--yes", "--output", "json"]
        ),
        Some(0)
    );
    let said = same_with_and_without_checkpoint(&q, "FINE");
    assert!(said[0].2.contains("destroy"), "{}", said[0].2);
}

/// A deploy whose one stack runs until it is stopped, started in the background; returns once
/// its stack started (its journal says so).
fn long_deploy(p: &Project) -> std::process::Child {
    p.manifest(
        "LONG",
        "environments: [dev]\nstacks:\n  slow:\n    executor: simulate\n    resources: [{ type: \"aws:s3/bucket:Bucket\", name: b, seconds: 120 }]\n",
    );
    let child = p
        .process()
        .args(["deploy", "LONG", "-e", "dev", "--output", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = journal_dir(p, "LONG");
    common::wait_for("the stack to start", 30, || {
        std::fs::read_dir(&dir).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.path().extension().is_some_and(|x| x == "jsonl")
                    && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("resource_"))
            })
        })
    });
    child
}

fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let mut code = None;
    common::wait_for("the deploy to end", 30, || {
        match child.try_wait().unwrap() {
            Some(status) => {
                code = Some(status.code());
                true
            }
            None => false,
        }
    });
    code.unwrap()
}

#[test]
fn a_cancelled_run_has_a_checkpoint_that_says_cancelled_like_its_journal() {
    let p = Project::new();
    let mut child = long_deploy(&p);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(wait_exit(&mut child), Some(130));
    let said = same_with_and_without_checkpoint(&p, "LONG");
    assert_eq!(said[0].1, Some(1));
    assert!(said[0].2.contains("cancelled"), "{}", said[0].2);
}

#[test]
fn a_run_killed_before_its_checkpoint_is_told_from_its_journal() {
    let p = Project::new();
    let mut child = long_deploy(&p);
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    assert_eq!(wait_exit(&mut child), None);
    let (_, checkpoint) = newest(&p, "LONG");
    assert!(!checkpoint.exists());
    let said = statuses(&p, "LONG");
    assert_eq!(said[0].1, Some(1));
    assert!(said[0].2.contains("interrupted"), "{}", said[0].2);
}

/// Rewrites the journal's `n`th line (1-based) in place, keeping its length and its mtime.
fn damage_line_keeping_stamp(journal: &Path, n: usize) {
    let modified = std::fs::metadata(journal).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(journal).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[n - 1] = "x".repeat(lines[n - 1].len());
    std::fs::write(journal, lines.join("\n") + "\n").unwrap();
    let file = std::fs::File::options().write(true).open(journal).unwrap();
    file.set_modified(modified).unwrap();
}

#[test]
fn status_reads_the_checkpoint_while_the_journal_is_unchanged() {
    let (p, journal, checkpoint) = deployed_fine();
    assert!(checkpoint.exists());
    // A middle line damaged behind the checkpoint's back (same length, same mtime, same last
    // line): the checkpoint is read, not the journal, so nothing says a line was skipped.
    damage_line_keeping_stamp(&journal, 3);
    let said = statuses(&p, "FINE");
    assert!(!said[0].3.contains("skipped a line"), "{}", said[0].3);
    assert_eq!(said[0].1, Some(0));
    // Without it, the journal is read and its damage said.
    std::fs::remove_file(&checkpoint).unwrap();
    let said = statuses(&p, "FINE");
    assert!(said[0].3.contains("skipped a line"), "{}", said[0].3);
}

#[test]
fn a_checkpoint_is_turned_down_when_the_journal_says_more_or_less_or_it_is_damaged() {
    let (p, journal, checkpoint) = deployed_fine();
    let kept = std::fs::read(&checkpoint).unwrap();
    let whole = std::fs::read_to_string(&journal).unwrap();
    let from_journal = |p: &Project| {
        std::fs::remove_file(&checkpoint).unwrap();
        let said = statuses(p, "FINE");
        std::fs::write(&checkpoint, &kept).unwrap();
        said
    };

    // The last line cut (as a run killed while it wrote it): the run reads as interrupted.
    let lines: Vec<&str> = whole.lines().collect();
    std::fs::write(&journal, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let expected = from_journal(&p);
    assert_eq!(expected[0].1, Some(1));
    assert_eq!(statuses(&p, "FINE"), expected);

    // A valid event appended after the end: the journal's word is what status says.
    let mut last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    let log = serde_json::json!({
        "type": "stack_log",
        "timestamp": last["timestamp"],
        "sequence": last["sequence"].as_u64().unwrap() + 1,
        "data": {"deploymentId": "FINE", "environment": "dev", "stack": "app",
                 "level": "info", "message": "appended later"},
    });
    last = log;
    std::fs::write(&journal, format!("{whole}{last}\n")).unwrap();
    let expected = from_journal(&p);
    assert!(
        expected[1].2.contains("appended later"),
        "{}",
        expected[1].2
    );
    assert_eq!(statuses(&p, "FINE"), expected);

    // Only touched: its mtime no longer the one the checkpoint holds.
    std::fs::write(&journal, &whole).unwrap();
    let expected = from_journal(&p);
    assert!(!expected[1].2.contains("appended later"));
    let file = std::fs::File::options().write(true).open(&journal).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    damage_line_keeping_stamp(&journal, 3);
    // (damaged and touched: turned down, so the damage is said)
    let said = statuses(&p, "FINE");
    assert!(said[0].3.contains("skipped a line"), "{}", said[0].3);

    // The checkpoint cut short, or not JSON: the journal is read, same output and exit code.
    std::fs::write(&journal, &whole).unwrap();
    std::fs::write(&checkpoint, &kept).unwrap();
    let expected = from_journal(&p);
    std::fs::write(&checkpoint, &kept[..kept.len() / 2]).unwrap();
    assert_eq!(statuses(&p, "FINE"), expected);
    std::fs::write(&checkpoint, b"{not json\n").unwrap();
    assert_eq!(statuses(&p, "FINE"), expected);
}

/// A run killed while it wrote its checkpoint leaves a temporary file as big as its model; the
/// next run's checkpoint removes it, and never one of a process still running.
#[test]
fn a_killed_runs_half_written_checkpoint_is_swept_by_the_next_run() {
    let (p, journal, _) = deployed_fine();
    let dir = journal.parent().unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let left = dir.join(format!(
        "20200101T000000000Z-dead.model.json.{gone_pid}.model.tmp"
    ));
    let other = dir.join(format!(
        "20200101T000000000Z-live.model.json.{}.checkpoint.tmp",
        std::process::id()
    ));
    let unrelated = dir.join("notes.tmp");
    for file in [&left, &other, &unrelated] {
        std::fs::write(file, "{").unwrap();
    }
    assert_eq!(
        run(
            &p,
            &["deploy", "FINE", "-e", "dev", "--force", "--output", "json"]
        ),
        Some(0)
    );
    assert!(!left.exists(), "a dead process's leftover stays");
    assert!(
        other.exists(),
        "a living process's temporary file was removed"
    );
    assert!(unrelated.exists());
}
