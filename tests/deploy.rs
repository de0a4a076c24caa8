//! Deploys driven through the real binary: scheduling, failures, the command executor,
//! interrupts, the journal and `status`.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn stack_states(events: &[Value]) -> std::collections::BTreeMap<String, String> {
    let mut states = std::collections::BTreeMap::new();
    for e in events {
        let state = match e["type"].as_str().unwrap() {
            "stack_deploying" => "deploying",
            "stack_deployed" => "deployed",
            "stack_failed" => "failed",
            "stack_blocked" => "blocked",
            "stack_skipped" => "skipped",
            _ => continue,
        };
        states.insert(
            e["data"]["stack"].as_str().unwrap().to_owned(),
            state.to_owned(),
        );
    }
    states
}

#[test]
fn the_example_deploys_with_the_seed_keys_for_every_event_type() {
    let p = example_project();
    let output = p
        .cmd()
        .env("CLOUD_SIMULATE_SPEED", "25")
        .args(["deploy", "D1BRV40", "-e", "dev", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let events = parse_events(&output.stdout);
    assert_gap_free(&events);

    // The seed's keys, type by type.
    let expect: &[(&str, &[&str])] = &[
        (
            "deployment_started",
            &["totalStacks", "totalLayers", "estimatedDuration"],
        ),
        (
            "deployment_progress",
            &[
                "progressPercent",
                "deployedStacks",
                "currentLayer",
                "estimatedTimeRemaining",
            ],
        ),
        (
            "deployment_complete",
            &[
                "status",
                "totalStacks",
                "deployedStacks",
                "skippedStacks",
                "failedStacks",
                "durationSeconds",
            ],
        ),
        ("layer_started", &["layer", "totalLayers", "stacks"]),
        (
            "layer_complete",
            &["layer", "deployedStacks", "failedStacks", "durationSeconds"],
        ),
        ("stack_deploying", &["stack", "layer", "dependencies"]),
        (
            "stack_deployed",
            &[
                "stack",
                "status",
                "resourcesCreated",
                "durationSeconds",
                "outputs",
            ],
        ),
        ("resource_creating", &["stack", "resource"]),
        (
            "resource_created",
            &["stack", "resource", "durationSeconds"],
        ),
    ];
    for (kind, keys) in expect {
        let found = of_type(&events, kind);
        assert!(!found.is_empty(), "no {kind} event");
        for e in found {
            assert!(e["timestamp"].as_str().unwrap().ends_with('Z'), "{e}");
            for key in ["deploymentId", "environment"].iter().chain(keys.iter()) {
                assert!(!e["data"][key].is_null(), "{kind} lacks {key}: {e}");
            }
        }
    }
    let created = of_type(&events, "resource_created")[0];
    for key in ["urn", "type", "name", "id"] {
        assert!(created["data"]["resource"][key].is_string(), "{created}");
    }
    assert!(created["data"]["resource"]["urn"]
        .as_str()
        .unwrap()
        .starts_with("urn:pulumi:D1BRV40-dev::network::aws:ec2/vpc:Vpc::main-vpc"));

    // The seed's scenario: 12 stacks in 5 layers, layer 2 = security, secrets, dns.
    let started = &of_type(&events, "deployment_started")[0]["data"];
    assert_eq!(started["totalStacks"], 12);
    assert_eq!(started["totalLayers"], 5);
    let layer2 = of_type(&events, "layer_started")
        .into_iter()
        .find(|e| e["data"]["layer"] == 2)
        .unwrap();
    assert_eq!(
        layer2["data"]["stacks"],
        serde_json::json!(["security", "secrets", "dns"])
    );
    let done = of_type(&events, "deployment_complete");
    assert_eq!(done.len(), 1);
    assert_eq!(events.last().unwrap()["type"], "deployment_complete");
    assert_eq!(done[0]["data"]["status"], "deployed");
    assert_eq!(done[0]["data"]["deployedStacks"], 12);
    let rds = of_type(&events, "stack_deployed")
        .into_iter()
        .find(|e| e["data"]["stack"] == "database-rds")
        .unwrap();
    assert_eq!(rds["data"]["outputs"]["port"], 5432);
    assert_eq!(rds["data"]["resourcesCreated"], 4);
    // Percent never goes down and ends at 100.
    let percents: Vec<u64> = of_type(&events, "deployment_progress")
        .iter()
        .map(|e| e["data"]["progressPercent"].as_u64().unwrap())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    assert_eq!(percents.last(), Some(&100));

    // The journal holds exactly what was printed.
    assert_eq!(p.journal("D1BRV40", "dev"), events);
}

const FAILING: &str = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  base:
    resources: [{ type: "aws:ec2/vpc:Vpc", name: vpc, seconds: 0.1 }]
  db:
    dependencies: [base]
    resources:
      - { type: "aws:rds/subnetGroup:SubnetGroup", name: subnets, seconds: 0.1 }
      - { type: "aws:rds/instance:Instance", name: main, seconds: 0.2, fail: "Access Denied" }
  api:
    dependencies: [db]
    resources: [{ type: "aws:ecs/service:Service", name: api, seconds: 0.1 }]
  web:
    dependencies: [api]
    resources: [{ type: "aws:ecs/service:Service", name: web, seconds: 0.1 }]
  logs:
    dependencies: [base]
    resources: [{ type: "aws:s3/bucket:Bucket", name: logs, seconds: 0.8 }]
"#;

#[test]
fn a_failed_stack_blocks_its_dependents_while_independent_stacks_finish() {
    let p = Project::new();
    p.manifest("FAIL", FAILING);
    let (code, events, output) = p.deploy_json("FAIL", &[]);
    assert_eq!(code, 1, "{output:?}");
    assert_gap_free(&events);
    let states = stack_states(&events);
    assert_eq!(states["base"], "deployed");
    assert_eq!(states["db"], "failed");
    assert_eq!(states["api"], "blocked");
    assert_eq!(states["web"], "blocked");
    assert_eq!(
        states["logs"], "deployed",
        "an independent stack keeps going"
    );
    // `logs` was still running when `db` failed, and finished afterwards.
    assert!(seq_of(&events, "stack_failed", "db") < seq_of(&events, "stack_deployed", "logs"));

    let blocked = of_type(&events, "stack_blocked");
    assert!(
        blocked.iter().all(|e| e["data"]["blockedBy"] == "db"),
        "{blocked:?}"
    );
    let failed = &of_type(&events, "stack_failed")[0]["data"];
    assert_eq!(failed["error"]["code"], "RESOURCE_FAILED");
    assert!(failed["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Access Denied"));
    let resource_failed = &of_type(&events, "resource_failed")[0]["data"];
    assert_eq!(resource_failed["resource"]["name"], "main");

    let n = events.len();
    assert_eq!(events[n - 2]["type"], "deployment_failed");
    assert_eq!(events[n - 1]["type"], "deployment_complete");
    let summary = &events[n - 2]["data"];
    assert_eq!(summary["failedStacks"], serde_json::json!(["db"]));
    assert_eq!(summary["stack"], "db");
    assert_eq!(summary["layer"], 2);
    assert_eq!(summary["error"]["code"], "RESOURCE_FAILED");
    assert_eq!(events[n - 1]["data"]["status"], "failed");
    assert_eq!(events[n - 1]["data"]["blockedStacks"], 2);
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure() {
    let p = Project::new();
    p.manifest(
        "FF",
        r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  broken:
    resources: [{ type: "t:a:A", name: a, seconds: 0.1, fail: "boom" }]
  slow:
    resources: [{ type: "t:a:A", name: a, seconds: 0.5 }]
  after-slow:
    dependencies: [slow]
    resources: [{ type: "t:a:A", name: a, seconds: 0.1 }]
"#,
    );
    let (code, events, _) = p.deploy_json("FF", &["--fail-fast"]);
    assert_eq!(code, 1);
    let states = stack_states(&events);
    assert_eq!(states["slow"], "deployed", "running stacks finish");
    assert!(
        !states.contains_key("after-slow"),
        "nothing new starts: {states:?}"
    );
    let complete = &events.last().unwrap()["data"];
    assert_eq!(complete["notStartedStacks"], 1);

    // Without --fail-fast the independent chain runs to the end.
    let (_, events, _) = p.deploy_json("FF", &[]);
    assert_eq!(stack_states(&events)["after-slow"], "deployed");
}

#[test]
fn stacks_start_when_their_own_dependencies_are_done_not_their_layer() {
    let p = Project::new();
    p.manifest(
        "EAGER",
        r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  quick:
    resources: [{ type: "t:a:A", name: a, seconds: 0.1 }]
  slow:
    resources: [{ type: "t:a:A", name: a, seconds: 1.5 }]
  after-quick:
    dependencies: [quick]
    resources: [{ type: "t:a:A", name: a, seconds: 0.1 }]
"#,
    );
    let (code, events, _) = p.deploy_json("EAGER", &[]);
    assert_eq!(code, 0);
    // after-quick (layer 2) deploys while slow (layer 1) is still running.
    assert!(
        seq_of(&events, "stack_deployed", "after-quick")
            < seq_of(&events, "stack_deployed", "slow")
    );
}

#[test]
fn parallelism_limits_running_stacks_and_the_critical_path_goes_first() {
    let p = Project::new();
    p.manifest(
        "PAR",
        r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  a: { resources: [{ type: "t:a:A", name: a, seconds: 0.1 }] }
  b: { resources: [{ type: "t:a:A", name: a, seconds: 0.1 }] }
  c: { resources: [{ type: "t:a:A", name: a, seconds: 0.1 }] }
  long-chain: { resources: [{ type: "t:a:A", name: a, seconds: 0.1 }] }
  top:
    dependencies: [long-chain]
    resources: [{ type: "t:a:A", name: a, seconds: 0.6 }]
"#,
    );
    let (code, events, _) = p.deploy_json("PAR", &["--parallelism", "2"]);
    assert_eq!(code, 0);
    let mut running = 0;
    let mut most = 0;
    for e in &events {
        match e["type"].as_str().unwrap() {
            "stack_deploying" => running += 1,
            "stack_deployed" | "stack_failed" => running -= 1,
            _ => {}
        }
        most = most.max(running);
    }
    assert_eq!(most, 2);
    let first = of_type(&events, "stack_deploying")[0]["data"]["stack"].clone();
    assert_eq!(
        first, "long-chain",
        "the longest remaining path starts first"
    );
    assert_eq!(
        of_type(&events, "deployment_started")[0]["data"]["parallelism"],
        2
    );
}

#[test]
fn the_command_executor_reports_resources_and_passes_outputs_on() {
    let p = Project::new();
    p.manifest(
        "CMD",
        r#"
environments: [dev]
stacks:
  producer:
    executor: command
    path: stacks/producer
    deploy: ./deploy.sh
  consumer:
    executor: command
    dependencies: [producer]
    path: stacks/consumer
    deploy: ./deploy.sh
"#,
    );
    p.file(
        "CMD",
        "stacks/producer/deploy.sh",
        r#"#!/bin/sh
echo "starting in $CLOUD_STACK for $CLOUD_DEPLOYMENT_ID/$CLOUD_ENVIRONMENT ($CLOUD_OPERATION)"
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"op":"creating"}'
echo '::cloud::{"progress":45,"message":"Creating bucket..."}'
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"op":"created","id":"b-1"}'
echo "careful" >&2
echo '{"bucket":"logs-bucket","count":3}' > "$CLOUD_OUTPUTS"
"#,
    );
    p.file(
        "CMD",
        "stacks/consumer/deploy.sh",
        r#"#!/bin/sh
cat "$CLOUD_DEPENDENCY_OUTPUTS"
"#,
    );
    for stack in ["producer", "consumer"] {
        let script = p
            .deployment_dir("CMD")
            .join(format!("stacks/{stack}/deploy.sh"));
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(script)
            .status()
            .unwrap();
    }
    let (code, events, output) = p.deploy_json("CMD", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
    assert_gap_free(&events);
    let logs: Vec<(String, String)> = of_type(&events, "stack_log")
        .iter()
        .map(|e| {
            (
                e["data"]["level"].as_str().unwrap().to_owned(),
                e["data"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        logs.contains(&(
            "info".into(),
            "starting in producer for CMD/dev (deploy)".into()
        )),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("warn".into(), "careful".into())),
        "{logs:?}"
    );
    let created = &of_type(&events, "resource_created")[0]["data"];
    assert_eq!(created["resource"]["id"], "b-1");
    assert_eq!(
        created["resource"]["urn"],
        "urn:pulumi:CMD-dev::producer::aws:s3/bucket:Bucket::logs"
    );
    let progress = &of_type(&events, "stack_progress")[0]["data"];
    assert_eq!(progress["progressPercent"], 45);
    assert_eq!(progress["message"], "Creating bucket...");
    let deployed = of_type(&events, "stack_deployed");
    assert_eq!(deployed[0]["data"]["outputs"]["bucket"], "logs-bucket");
    assert_eq!(deployed[0]["data"]["resourcesCreated"], 1);
    // The consumer printed the dependency outputs file it was given.
    let consumer_said: String = of_type(&events, "stack_log")
        .iter()
        .filter(|e| e["data"]["stack"] == "consumer")
        .map(|e| e["data"]["message"].as_str().unwrap().to_owned())
        .collect();
    let given: Value = serde_json::from_str(&consumer_said).unwrap();
    assert_eq!(
        given,
        serde_json::json!({"producer": {"bucket": "logs-bucket", "count": 3}})
    );
}

#[test]
fn a_failing_command_reports_its_exit_status_and_stderr_tail() {
    let p = Project::new();
    p.manifest(
        "BAD",
        r#"
environments: [dev]
stacks:
  broken:
    executor: command
    deploy: "echo one >&2; echo two >&2; exit 3"
"#,
    );
    let (code, events, _) = p.deploy_json("BAD", &[]);
    assert_eq!(code, 1);
    let error = &of_type(&events, "stack_failed")[0]["data"]["error"];
    assert_eq!(error["code"], "COMMAND_FAILED");
    // No line reads as an error: its last words are the message; the status is a detail.
    assert_eq!(error["message"], "two");
    assert_eq!(
        error["details"],
        "`echo one >&2; echo two >&2; exit 3` exited with status 3\none"
    );
}

#[test]
fn a_failure_names_the_tools_own_error_not_the_exit_status() {
    let p = Project::new();
    p.manifest(
        "RDS",
        r#"
environments: [dev]
stacks:
  database-rds:
    executor: command
    deploy: ./deploy.sh
"#,
    );
    let script = p.file(
        "RDS",
        "deploy.sh",
        r#"#!/bin/sh
echo '::cloud::{"resource":{"type":"aws:rds/instance:Instance","name":"main-db"},"op":"creating"}'
echo "Creating RDS instance..."
echo "Error: creating RDS DB Instance (main-db): operation error RDS: CreateDBInstance, https response error StatusCode: 403, RequestID: 1f2e, api error AccessDenied: User: arn:aws:iam::123:user/ci is not authorized to perform: rds:CreateDBInstance" >&2
echo "  with aws_db_instance.main," >&2
exit 1
"#,
    );
    chmod_x(&script);
    let (code, events, _) = p.deploy_json("RDS", &[]);
    assert_eq!(code, 1);
    let error = &of_type(&events, "stack_failed")[0]["data"]["error"];
    assert_eq!(error["code"], "INSUFFICIENT_PERMISSIONS");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Error: creating RDS DB Instance (main-db)"),
        "{message}"
    );
    assert!(!message.contains("exited with status"), "{message}");
    assert!(error["details"]
        .as_str()
        .unwrap()
        .starts_with("`./deploy.sh` exited with status 1"));
    // The resource in flight failed with that message.
    let failed = &of_type(&events, "resource_failed")[0]["data"];
    assert_eq!(failed["resource"]["name"], "main-db");
    assert_eq!(failed["error"]["message"], message);
    // The summary says it too.
    let summary = &of_type(&events, "deployment_failed")[0]["data"]["error"];
    assert_eq!(summary["message"], message);
}

#[test]
fn sigint_stops_the_children_and_records_the_cancelled_run() {
    let p = Project::new();
    let marker = p.root().join("child-got-sigint");
    let ready = p.root().join("child-ready");
    p.manifest(
        "INT",
        &format!(
            r#"
environments: [dev]
stacks:
  waits:
    executor: command
    deploy: "trap 'echo interrupted > {marker}; exit 130' INT; touch {ready}; while true; do sleep 0.05; done"
  after:
    executor: simulate
    dependencies: [waits]
    resources: [{{ type: "t:a:A", name: a, seconds: 0.1 }}]
"#,
            marker = marker.display(),
            ready = ready.display(),
        ),
    );
    let child = spawn_deploy_until(
        &p,
        "INT",
        &["--output", "json", "--grace-period", "5"],
        std::process::Stdio::piped(),
        &ready,
    );
    let journal_dir = p.deployment_dir("INT").join("journal/dev");
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "interrupted"
    );

    let events = p.journal("INT", "dev");
    assert_gap_free(&events);
    assert_eq!(
        parse_events(&output.stdout),
        events,
        "stdout and journal agree"
    );
    let failed = &of_type(&events, "stack_failed")[0]["data"];
    assert_eq!(failed["stack"], "waits");
    assert_eq!(failed["error"]["code"], "CANCELLED");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "deployment_complete");
    assert_eq!(last["data"]["status"], "failed");
    assert_eq!(last["data"]["cancelled"], true);
    assert_eq!(
        events[events.len() - 2]["data"]["error"]["code"],
        "CANCELLED"
    );
    // The lock is released.
    assert!(!journal_dir.join("lock").exists());
}

#[test]
fn status_reads_the_latest_run_from_the_journal() {
    let p = Project::new();
    p.manifest("ST", FAILING);
    let before = p
        .cmd()
        .args(["status", "ST", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&before.stderr).contains("cloud deploy ST -e dev"));

    let (code, _, _) = p.deploy_json("ST", &[]);
    assert_eq!(code, 1);
    let out = p
        .cmd()
        .args(["status", "ST", "-e", "dev", "--output", "json"])
        .output()
        .unwrap();
    // The latest run failed: status says so and exits 1, so CI can gate on it.
    assert_eq!(out.status.code(), Some(1));
    let data: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(data["deploymentId"], "ST");
    assert_eq!(data["status"], "failed");
    assert_eq!(data["summary"]["totalStacks"], 5);
    assert_eq!(data["summary"]["deployedStacks"], 2);
    assert_eq!(data["summary"]["failedStacks"], 1);
    assert_eq!(data["stacks"]["db"]["status"], "failed");
    assert_eq!(data["stacks"]["db"]["error"]["code"], "RESOURCE_FAILED");
    assert_eq!(data["stacks"]["api"]["status"], "blocked");
    assert_eq!(data["metrics"]["resourcesCreated"], 3);
    assert_eq!(data["metrics"]["resourcesFailed"], 1);

    let text = p
        .cmd()
        .args(["status", "ST", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("ST-dev: failed"), "{text}");
    assert!(text.contains("RESOURCE_FAILED"), "{text}");
    assert!(text.contains("blocked by db"), "{text}");
}

#[test]
fn a_held_lock_exits_3_and_names_its_holder() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let p = Project::new();
    p.manifest("LOCK", FAILING);
    let dir = p.deployment_dir("LOCK").join("journal/dev");
    std::fs::create_dir_all(&dir).unwrap();
    // Another run holds the lock: an OS lock on the file, which names it.
    let mut held = std::fs::File::create(dir.join("lock")).unwrap();
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let holder = serde_json::json!({"pid": 4242, "runId": "r-1", "user": "alice", "host": "ci-7", "started": "2026-01-01T00:00:00.000Z"});
    held.write_all(holder.to_string().as_bytes()).unwrap();
    let out = p
        .cmd()
        .args(["deploy", "LOCK", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LOCK-dev is locked")
            && err.contains("alice")
            && err.contains("r-1")
            && err.contains("ci-7"),
        "{err}"
    );

    // The file alone, without its holder's OS lock (the holder died), holds nothing back.
    drop(held);
    let (code, _, _) = p.deploy_json("LOCK", &[]);
    assert_eq!(code, 1, "the run went ahead (and failed as FAILING does)");
    assert!(
        !dir.join("lock").exists(),
        "the lock file goes with its run"
    );
}

#[test]
fn verbose_prints_the_seed_format_without_cursor_movement() {
    let p = example_project();
    let out = p
        .cmd()
        .env("CLOUD_SIMULATE_SPEED", "25")
        .args(["deploy", "D1BRV40", "-e", "dev", "--verbose"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no escape sequences when not on a terminal"
    );
    assert!(!text.contains('\r'));
    let has = |needle: &str| assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    has("] Deployment started: D1BRV40-dev");
    has("] Total stacks: 12 (5 layers)");
    has("] ─── Layer 1/5 ───");
    has("] Deploying: network");
    has("]   ├─ Creating: aws:ec2/vpc:Vpc (main-vpc)");
    has("]   └─ Stack deployed: network (");
    has("] Deploying (parallel): security, secrets, dns");
    has("]   [security] Creating: aws:ec2/securityGroup:SecurityGroup (web-sg)");
    has("]   [storage] ✓ Deployed (");
    has("] Progress: 8% (1/12 stacks deployed) | Elapsed: ");
    has("✓ Complete: D1BRV40-dev");
    // Every non-empty line starts with a [HH:MM:SS] clock.
    for line in text.lines().filter(|l| !l.is_empty()) {
        let clock = &line[..10];
        assert!(
            clock.starts_with('[') && clock.ends_with(']') && clock.as_bytes()[3] == b':',
            "{line}"
        );
    }
    // With a limit, the layer line says which stacks wait for a slot.
    let limited = p
        .cmd()
        .env("CLOUD_SIMULATE_SPEED", "25")
        .args([
            "deploy",
            "D1BRV40",
            "-e",
            "dev",
            "--verbose",
            "-p",
            "2",
            "--force",
        ])
        .output()
        .unwrap();
    let limited = String::from_utf8(limited.stdout).unwrap();
    assert!(
        limited.contains(
            "] Deploying (parallel): security, secrets · queued (at most 2 at once): dns\n"
        ),
        "{limited}"
    );
    assert!(limited.contains("]   [dns] Deploying\n"), "{limited}");
    // CI=true gets the same lines.
    let ci = p
        .cmd()
        .env("CI", "true")
        .env("CLOUD_SIMULATE_SPEED", "25")
        .args(["deploy", "D1BRV40", "-e", "dev", "--force"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ci.stdout).contains("─── Layer 5/5"));
}

#[test]
fn every_stack_is_announced_once_with_its_layer() {
    let p = example_project();
    let out = p
        .cmd()
        .env("CLOUD_SIMULATE_SPEED", "50")
        .args(["deploy", "D1BRV40", "-e", "dev", "-o", "json", "-p", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events = parse_events(&out.stdout);
    let mut seen = HashSet::new();
    for e in of_type(&events, "stack_deploying") {
        assert!(seen.insert(e["data"]["stack"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen.len(), 12);
}

#[test]
fn a_stack_that_ignores_sigint_is_killed_after_the_grace_period() {
    let p = Project::new();
    let ready = p.root().join("stubborn-ready");
    p.manifest(
        "KILL",
        &format!(
            r#"
environments: [dev]
stacks:
  stubborn:
    executor: command
    deploy: "trap '' INT; touch {ready}; while true; do sleep 0.05; done"
"#,
            ready = ready.display()
        ),
    );
    let mut child = spawn_deploy_until(
        &p,
        "KILL",
        &["-o", "json", "--grace-period", "0.5"],
        std::process::Stdio::null(),
        &ready,
    );
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "it did not wait forever"
    );
    let events = p.journal("KILL", "dev");
    assert_gap_free(&events);
    let error = &of_type(&events, "stack_failed")[0]["data"]["error"];
    assert_eq!(error["code"], "CANCELLED");
    let details = error["details"].as_str().unwrap();
    assert!(
        details.contains("SIGKILL after a 0.5s grace period"),
        "{details}"
    );
    assert_eq!(events.last().unwrap()["data"]["cancelled"], true);
}

#[test]
fn colour_follows_the_color_flag() {
    let p = Project::new();
    p.manifest("COL", FAILING);
    let run = |args: &[&str]| {
        let out = p
            .cmd()
            .args(["deploy", "COL", "-e", "dev", "--verbose"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let always = run(&["--color", "always"]);
    assert!(always.contains("\x1b[31m✗ Failed after"), "{always}");
    assert!(always.contains("\x1b[32m"), "{always}");
    let never = run(&["--color", "never"]);
    assert!(!never.contains('\x1b'), "{never}");
    assert!(never.contains("✗ Failed after"), "{never}");
}

/// The ETA is computed by the run alone and carried in `deployment_progress`; consumers count
/// it down. A stack that runs past its usual time makes the run carry a new ETA while it runs
/// (not only when a stack ends), so no consumer is left counting down to nothing.
#[test]
fn a_stack_past_its_usual_time_makes_the_run_carry_a_new_eta() {
    let p = Project::new();
    let (ready, gate) = (p.root().join("ready"), p.root().join("gate"));
    p.manifest(
        "LATE",
        &format!(
            "environments: [dev]\nstacks:\n  slow:\n    executor: command\n    deploy: \"touch {}; while [ ! -f {} ]; do sleep 0.02; done\"\n",
            ready.display(),
            gate.display()
        ),
    );
    // Its usual time: a moment.
    std::fs::write(&gate, "").unwrap();
    let (code, _, _) = p.deploy_json("LATE", &["--force"]);
    assert_eq!(code, 0);
    std::fs::remove_file(&gate).unwrap();
    std::fs::remove_file(&ready).unwrap();
    let out = p.root().join("late.jsonl");
    let mut child = spawn_deploy_until(
        &p,
        "LATE",
        &["-o", "json", "--force"],
        std::fs::File::create(&out).unwrap().into(),
        &ready,
    );
    let carried = || {
        parse_events(&std::fs::read(&out).unwrap())
            .into_iter()
            .filter(|e| e["type"] == "deployment_progress")
            .filter_map(|e| e["data"]["estimatedTimeRemaining"].as_u64())
            .collect::<Vec<_>>()
    };
    if !common::poll_until(30, || carried().iter().any(|&eta| eta > 0)) {
        std::fs::write(&gate, "").unwrap();
        let _ = child.wait();
        panic!("no ETA was carried while the stack ran past its time");
    }
    std::fs::write(&gate, "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let events = p.journal("LATE", "dev");
    let progress = of_type(&events, "deployment_progress");
    // Carried while `slow` ran (before it ended), with the percent it had.
    let ended = seq_of(&events, "stack_deployed", "slow");
    let first = &progress[0];
    assert!(first["sequence"].as_u64().unwrap() < ended, "{progress:?}");
    assert_eq!(first["data"]["progressPercent"], 0);
}

/// `cloud status` counts a stack's resources in words: `1 resource`, `2 resources`.
#[test]
fn status_says_one_resource_not_one_resources() {
    let p = Project::new();
    p.manifest(
        "ONE",
        "environments: [dev]\nstacks:\n  a:\n    executor: simulate\n    resources: [{ type: \"t:a:A\", name: x, seconds: 0 }]\n  b:\n    executor: simulate\n    resources: [{ type: \"t:a:A\", name: x, seconds: 0 }, { type: \"t:a:A\", name: y, seconds: 0 }]\n",
    );
    assert_eq!(p.deploy_json("ONE", &[]).0, 0);
    let out = p
        .cmd()
        .args(["status", "ONE", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |stack: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {stack}  layer")))
            .unwrap_or_else(|| panic!("{stack}: {text}"))
    };
    assert!(line("a").ends_with("  1 resource"), "{text}");
    assert!(line("b").ends_with("  2 resources"), "{text}");
}
