//! The file log and what reads the local trail back (`cloud logs`, `cloud events`,
//! `cloud history` from the journals), through the real binary. No server needed.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::{gate_script, parse_events, wait_for_file, Project};

fn log_files(p: &Project, id: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(p.deployment_dir(id).join("logs"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

const TWO_STACKS: &str = r#"
environments: [dev]
stacks:
  network:
    executor: simulate
    resources: [{ type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0.05 }]
  app:
    executor: command
    dependencies: [network]
    deploy: "echo hello from the script; echo careful >&2"
  db:
    executor: simulate
    resources: [{ type: "aws:rds/instance:Instance", name: main, seconds: 0.05, fail: "Access Denied" }]
  api:
    executor: simulate
    dependencies: [db]
"#;

#[test]
fn every_event_is_a_readable_line_with_the_seeds_level() {
    let p = Project::new();
    p.manifest("FL", TWO_STACKS);
    let (code, events, _) = p.deploy_json("FL", &[]);
    assert_eq!(code, 1);
    let files = log_files(&p, "FL");
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("deploy-dev-") && name.ends_with(".log") && name.len() == 31,
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("# cloud deploy FL -e dev · run "),
        "{}",
        lines[0]
    );
    assert_eq!(*lines.last().unwrap(), "# end of run");
    // One first line per event (continuation lines are indented).
    let firsts = lines
        .iter()
        .filter(|l| !l.starts_with('#') && !l.starts_with("    "))
        .count();
    assert_eq!(firsts, events.len(), "{text}");
    let has = |needle: &str| {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "no line with {needle:?} in:\n{text}"
        )
    };
    has("INFO  [network] Deployed in 0s");
    has("DEBUG [network] Creating: aws:ec2/vpc:Vpc (main-vpc) urn:pulumi:FL-dev::network::");
    has("INFO  [app] hello from the script");
    has("WARN  [app] careful");
    has("ERROR [db] Failed after 0s: ");
    has("ERROR [db] Resource failed: aws:rds/instance:Instance (main): ");
    has("WARN  [api] Blocked: db failed");
    has("ERROR Failed: db (layer 1); blocked: api");
    // Each error once: the resource's line, then its stack's; the run's end names the stack.
    let access_denied = lines.iter().filter(|l| l.contains("Access Denied")).count();
    assert_eq!(access_denied, 2, "{text}");
    has("ERROR Complete: FL-dev failed after ");
}

#[test]
fn a_run_never_overwrites_a_log_and_two_runs_in_a_minute_get_two_files() {
    let p = Project::new();
    p.manifest(
        "TWICE",
        "environments: [dev]\nstacks:\n  a: { executor: simulate }\n",
    );
    // Files of this minute and the next exist already: whichever minute the run starts in,
    // its name is taken, and the run must pick `-2`.
    let logs = p.deployment_dir("TWICE").join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let now = chrono::Utc::now();
    let mut taken = Vec::new();
    for t in [now, now + chrono::TimeDelta::minutes(1)] {
        let path = logs.join(format!("deploy-dev-{}.log", t.format("%Y-%m-%d-%H-%M")));
        std::fs::write(&path, "an earlier run\n").unwrap();
        taken.push(path);
    }
    assert_eq!(p.deploy_json("TWICE", &[]).0, 0);
    assert_eq!(p.deploy_json("TWICE", &[]).0, 0);
    for path in &taken {
        assert_eq!(std::fs::read_to_string(path).unwrap(), "an earlier run\n");
    }
    // (The next minute's file would be the newest log; it is only there for the race.)
    let future = taken.pop().unwrap();
    let files = log_files(&p, "TWICE");
    assert_eq!(files.len(), 4, "{files:?}");
    let suffixed: Vec<_> = files
        .iter()
        .filter(|f| {
            let n = f.file_name().unwrap().to_str().unwrap();
            n.ends_with("-2.log") || n.ends_with("-3.log")
        })
        .collect();
    assert_eq!(suffixed.len(), 2, "{files:?}");
    std::fs::remove_file(future).unwrap();
    // `cloud logs` shows the newest run's file.
    let out = p
        .cmd()
        .args(["logs", "TWICE", "-e", "dev"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<_> = std::fs::read_dir(p.deployment_dir("TWICE").join("journal/dev"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .max()
        .into_iter()
        .collect();
    assert!(shown.contains(&format!("run {}", runs[0])), "{shown}");
}

#[test]
fn logs_filters_by_level_and_stack() {
    let p = Project::new();
    p.manifest("LV", TWO_STACKS);
    assert_eq!(p.deploy_json("LV", &[]).0, 1);
    let logs = |args: &[&str]| {
        let out = p
            .cmd()
            .args(["logs", "LV", "-e", "dev"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let warn = logs(&["--level", "warn"]);
    assert!(!warn.is_empty());
    for line in warn.lines().filter(|l| !l.starts_with("    ")) {
        assert!(
            line.contains(" WARN ") || line.contains(" ERROR "),
            "{line}"
        );
    }
    let app = logs(&["--stack", "app"]);
    assert!(app.contains("[app] hello from the script"), "{app}");
    assert!(app.lines().all(|l| l.contains("[app]")), "{app}");
    let errors_of_db = logs(&["--stack", "db", "--level", "error"]);
    assert!(errors_of_db
        .lines()
        .any(|l| l.contains("ERROR [db] Failed")));

    let bad = p
        .cmd()
        .args(["logs", "LV", "-e", "dev", "--stack", "ap"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("no stack `ap`") && err.contains("did you mean `app`"),
        "{err}"
    );
}

#[test]
fn logs_follow_prints_a_live_run_until_it_ends() {
    let p = Project::new();
    let ready = p.root().join("ready");
    let go = p.root().join("go");
    p.manifest(
        "FOLLOW",
        &format!(
            r#"
environments: [dev]
stacks:
  gate:
    executor: command
    deploy: "echo before the gate; {gate}; echo after the gate"
"#,
            gate = gate_script(&ready, &go)
        ),
    );
    let mut deploy = p
        .process()
        .args(["deploy", "FOLLOW", "-e", "dev", "--output", "json"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_file(&ready);
    let follow = p
        .process()
        .args(["logs", "FOLLOW", "-e", "dev", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(&go, "").unwrap();
    assert!(deploy.wait().unwrap().success());
    // It ends by itself once the run's end mark is written.
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[gate] before the gate"), "{text}");
    assert!(text.contains("[gate] after the gate"), "{text}");
    assert!(text.trim_end().ends_with("# end of run"), "{text}");
}

#[test]
fn events_and_history_read_the_journals() {
    let p = Project::new();
    p.manifest("HI", TWO_STACKS);
    assert_eq!(p.deploy_json("HI", &[]).0, 1);
    p.manifest(
        "HI",
        "environments: [dev, prod]\nstacks:\n  a: { executor: simulate }\n",
    );
    assert_eq!(p.deploy_json("HI", &[]).0, 0);

    let out = p
        .cmd()
        .args(["history", "HI", "--output", "json"])
        .env("CLOUD_USER", "ann")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = parse_events(&out.stdout);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["deployedStacks"], 2);
    assert_eq!(runs[0]["failedStacks"], 1);
    assert_eq!(runs[1]["status"], "deployed");
    assert!(runs[0]["runId"].as_str().unwrap() < runs[1]["runId"].as_str().unwrap());
    assert!(runs[1]["end"].is_string() && runs[1]["durationSeconds"].is_u64());
    let text = p
        .cmd()
        .args(["history", "HI", "-e", "dev"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("START (UTC)"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    // Every stack of the failed run is in one column: done + failed + skipped + blocked = all.
    let cells: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    let head: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    // The header's "START (UTC)" is two words, a row's start and end two each: one more.
    let count = |name: &str| {
        let at = head.iter().position(|h| *h == name).unwrap() + 1;
        cells[at].parse::<u64>().unwrap()
    };
    assert_eq!(
        count("DONE") + count("FAILED") + count("SKIPPED") + count("BLOCKED"),
        runs[0]["totalStacks"].as_u64().unwrap(),
        "{text}"
    );
    assert!(count("BLOCKED") >= 1, "{text}");

    // All events of the failed run's db stack, as envelopes; the same as the journal's.
    let out = p
        .cmd()
        .args([
            "events", "HI", "-e", "dev", "--stack", "db", "--output", "json",
        ])
        .output()
        .unwrap();
    let listed = parse_events(&out.stdout);
    let first_run = runs[0]["runId"].as_str().unwrap();
    let journal = parse_events(
        &std::fs::read(
            p.deployment_dir("HI")
                .join("journal/dev")
                .join(format!("{first_run}.jsonl")),
        )
        .unwrap(),
    );
    // Events about the stack (not the run's summary, which names it too).
    let expected: Vec<_> = journal
        .into_iter()
        .filter(|e| e["data"]["stack"] == "db" && e["type"] != "deployment_failed")
        .collect();
    assert_eq!(listed, expected);
    let failed = p
        .cmd()
        .args(["events", "HI", "--type", "stack_failed", "--since", "1h"])
        .output()
        .unwrap();
    let failed = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(
        failed.lines().filter(|l| l.contains("ERROR [db]")).count(),
        1,
        "{failed}"
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let p = Project::new();
    p.manifest(
        "BAD",
        "environments: [dev]\nstacks:\n  a: { executor: simulate }\n",
    );
    let run = |args: &[&str]| {
        let out = p.cmd().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["deploy", "BAD", "-e", "dev", "--dynamodb-table", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid DynamoDB table name `x`"), "{err}");
    assert!(!p.deployment_dir("BAD").join("journal").exists());
    assert!(!p.deployment_dir("BAD").join("logs").exists());
    let (code, err) = run(&["events", "BAD", "--since", "last tuesday"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--since last tuesday") && err.contains("30m"),
        "{err}"
    );
    let (code, err) = run(&["events", "BAD", "--type", "stack_deploed"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("did you mean `stack_deployed`"), "{err}");
    let (code, err) = run(&["logs", "BAD", "-e", "dev"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no file log") && err.contains("cloud deploy BAD -e dev"),
        "{err}"
    );
    let (code, err) = run(&["events", "sync"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no DynamoDB table is configured"), "{err}");
}

/// Sinks report trouble one way: a run report that cannot be written (like an undelivered
/// notification, an event store or log copy left behind) is a WARN line in the run's file log,
/// before its end mark, and one warning on stderr after the run; the exit code stays.
#[test]
fn a_sink_that_cannot_do_its_part_warns_in_the_file_log_and_after_the_run() {
    let p = Project::new();
    p.manifest(
        "SAY",
        "environments: [dev]\nstacks:\n  app: { executor: simulate }\n",
    );
    let report = p.root().join("no-such-folder").join("report.json");
    let out = p
        .cmd()
        .args(["deploy", "SAY", "-e", "dev", "-o", "json", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let said = format!("cannot write {}: ", report.display());
    let warnings: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("warning: run report: "))
        .collect();
    assert!(
        warnings.len() == 1 && warnings[0].starts_with(&said),
        "{err}"
    );
    let files = log_files(&p, "SAY");
    let log = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let warn = lines
        .iter()
        .position(|l| l.contains(" WARN  [run report] ") && l.ends_with(warnings[0]))
        .unwrap_or_else(|| panic!("no WARN line for the report in:\n{log}"));
    let end = lines
        .iter()
        .position(|l| *l == cloud::store::filelog::END_MARK)
        .unwrap_or_else(|| panic!("no end mark in:\n{log}"));
    assert!(warn < end, "{log}");
}
