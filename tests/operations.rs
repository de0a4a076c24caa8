//! Everyday operations through the real binary: smart skip and what invalidates it, `--force`,
//! `--only`, resuming after `kill -9`, destroy and rollback.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// `stack → (event types about it, in order)` of one run.
fn per_stack(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        if let Some(stack) = e["data"]["stack"].as_str() {
            let kind = e["type"].as_str().unwrap();
            if kind.starts_with("stack_") && kind != "stack_log" && kind != "stack_progress" {
                out.entry(stack.to_owned())
                    .or_default()
                    .push(kind.to_owned());
            }
        }
    }
    out
}

fn skipped(events: &[Value]) -> Vec<String> {
    stacks_of(events, "stack_skipped")
}

fn deployed(events: &[Value]) -> Vec<String> {
    stacks_of(events, "stack_deployed")
}

/// network (command, outputs from a file) → app (command, reads it) ; dns (simulate).
const THREE: &str = r#"
environments: [dev, prod]
stacks:
  network:
    executor: command
    path: stacks/network
    deploy: 'cat vpc.json > "$CLOUD_OUTPUTS"'
  app:
    executor: command
    path: stacks/app
    dependencies: [network]
    deploy: 'echo "app on $CLOUD_INPUT_VPC"'
    inputs: { vpc: "${network.vpcId}" }
  dns:
    executor: simulate
    resources: [{ type: "aws:route53/zone:Zone", name: main, seconds: 0 }]
"#;

fn three() -> Project {
    let p = Project::new();
    p.manifest("OPS", THREE);
    p.file("OPS", "stacks/network/vpc.json", r#"{"vpcId":"vpc-1"}"#);
    p.file("OPS", "stacks/app/main.sh", "echo app\n");
    p
}

#[test]
fn an_unchanged_deployment_is_skipped_and_each_change_redeploys_what_it_touches() {
    let p = three();
    let (code, events, _) = p.deploy_json("OPS", &[]);
    assert_eq!(code, 0);
    assert_eq!(deployed(&events).len(), 3);

    // Nothing changed: everything skipped, with its last outputs.
    let (code, events, _) = p.deploy_json("OPS", &[]);
    assert_eq!(code, 0);
    assert_eq!(
        skipped(&events),
        ["network", "dns", "app"].map(String::from)
    );
    let net = of_type(&events, "stack_skipped")[0];
    assert_eq!(net["data"]["reason"], "unchanged");
    assert_eq!(net["data"]["outputs"]["vpcId"], "vpc-1");
    let complete = &events.last().unwrap()["data"];
    assert_eq!(
        (
            complete["status"].as_str(),
            complete["skippedStacks"].as_u64()
        ),
        (Some("deployed"), Some(3))
    );

    // A file under app's path: app alone.
    p.file("OPS", "stacks/app/main.sh", "echo app v2\n");
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert_eq!(deployed(&events), ["app"]);

    // A file ignored by .cloudignore, and a log file: nothing.
    p.file("OPS", "stacks/app/.cloudignore", "scratch/\n");
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert_eq!(
        deployed(&events),
        ["app"],
        ".cloudignore itself is a change"
    );
    p.file("OPS", "stacks/app/scratch/x", "noise");
    p.file("OPS", "stacks/app/run.log", "noise");
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert!(deployed(&events).is_empty(), "{:?}", deployed(&events));

    // network's outputs change: network, and app which reads them.
    p.file("OPS", "stacks/network/vpc.json", r#"{"vpcId":"vpc-2"}"#);
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert_eq!(deployed(&events), ["network", "app"]);
    let said: Vec<&str> = of_type(&events, "stack_log")
        .iter()
        .filter_map(|e| e["data"]["message"].as_str())
        .collect();
    assert!(said.contains(&"app on vpc-2"), "{said:?}");

    // network redeployed with the same outputs: app stays skipped.
    p.file(
        "OPS",
        "stacks/network/extra.txt",
        "a change that changes no output",
    );
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert_eq!(deployed(&events), ["network"]);
    assert!(skipped(&events).contains(&"app".to_owned()));

    // The manifest entry (not its layout or comments).
    let edited = THREE.replace(
        "resources: [{ type: \"aws:route53/zone:Zone\", name: main, seconds: 0 }]",
        "# a comment\n    resources:\n      - { name: main, type: \"aws:route53/zone:Zone\", seconds: 0 }",
    );
    p.manifest("OPS", &edited);
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert!(
        deployed(&events).is_empty(),
        "layout only: {:?}",
        deployed(&events)
    );
    p.manifest(
        "OPS",
        &edited.replace("seconds: 0 }", "seconds: 0, id: z-1 }"),
    );
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert_eq!(deployed(&events), ["dns"]);

    // Another environment has its own record.
    let out = p
        .cmd()
        .args(["deploy", "OPS", "-e", "prod", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(deployed(&parse_events(&out.stdout)).len(), 3);

    // --force deploys everything, and records it: the next run skips everything again.
    let (_, events, _) = p.deploy_json("OPS", &["--force"]);
    assert_eq!(deployed(&events).len(), 3);
    let (_, events, _) = p.deploy_json("OPS", &[]);
    assert!(deployed(&events).is_empty(), "{:?}", deployed(&events));
}

#[test]
fn verbose_says_how_many_stacks_smart_skip_left_alone() {
    let p = three();
    assert_eq!(p.deploy_json("OPS", &[]).0, 0);
    p.file("OPS", "stacks/app/main.sh", "changed");
    let out = p
        .cmd()
        .args(["deploy", "OPS", "-e", "dev", "--verbose"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("] Smart skip: 2 stacks unchanged (network, dns)"),
        "{text}"
    );
}

#[test]
fn only_deploys_the_named_stacks_and_refuses_what_cannot_run() {
    let p = three();
    // app needs network's outputs, and network never ran.
    let out = p
        .cmd()
        .args(["deploy", "OPS", "-e", "dev", "--only", "app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`app` depends on `network`, which has never been deployed to dev"),
        "{err}"
    );
    assert!(err.contains("--only app,network"), "{err}");
    let out = p
        .cmd()
        .args(["deploy", "OPS", "-e", "dev", "--only", "ap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `app`?"));

    let (code, events, _) = p.deploy_json("OPS", &["--only", "network,app"]);
    assert_eq!(code, 0);
    assert_eq!(deployed(&events), ["network", "app"]);
    let dns = of_type(&events, "stack_skipped")[0];
    assert_eq!(dns["data"]["stack"], "dns");
    assert_eq!(dns["data"]["reason"], "not_selected");
    // Now network has run: app alone may go (even unchanged: it was asked for).
    let (code, events, _) = p.deploy_json("OPS", &["--only", "app"]);
    assert_eq!(code, 0);
    assert_eq!(deployed(&events), ["app"]);
}

#[test]
fn after_kill_9_the_next_deploy_resumes_where_it_stopped() {
    let p = Project::new();
    let ready = p.root().join("slow-started");
    let pid = p.root().join("slow-pid");
    p.manifest(
        "RESUME",
        &format!(
            r#"
environments: [dev]
defaults: {{ executor: simulate }}
stacks:
  base:
    resources: [{{ type: "t:a:A", name: a, seconds: 0 }}]
  other:
    resources: [{{ type: "t:a:A", name: a, seconds: 0 }}]
  slow:
    executor: command
    dependencies: [base]
    deploy: "echo $$ > {}; touch {}; sleep 30"
  top:
    dependencies: [slow]
"#,
            pid.display(),
            ready.display()
        ),
    );
    let mut child = spawn_deploy_until(
        &p,
        "RESUME",
        &["-o", "json"],
        std::process::Stdio::null(),
        &ready,
    );
    // base and other are done; let their record reach the disk (written at least every second).
    let history = p.deployment_dir("RESUME").join("journal/dev/history.json");
    common::wait_for("the history to record base and other", 10, || {
        std::fs::read_to_string(&history)
            .is_ok_and(|h| h.contains("\"other\"") && h.contains("\"base\""))
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    // Its program, in a process group of its own, outlives the kill: stop the whole group
    // (the next run refuses to start beside it, rightly).
    let group: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(-group, libc::SIGKILL) };
    common::wait_for("the stack's group to end after SIGKILL", 10, || unsafe {
        libc::kill(-group, 0) != 0
    });

    p.manifest(
        "RESUME",
        &std::fs::read_to_string(p.deployment_dir("RESUME").join("deployment.yaml"))
            .unwrap()
            .replace("sleep 30", "true"),
    );
    let (code, events, _) = p.deploy_json("RESUME", &[]);
    assert_eq!(code, 0, "the lock went with the killed process");
    assert_eq!(skipped(&events), ["base", "other"]);
    assert_eq!(deployed(&events), ["slow", "top"]);
}

#[test]
fn destroy_goes_in_reverse_dependency_order_and_needs_a_yes_off_a_terminal() {
    let p = Project::new();
    let order = p.root().join("order");
    let step = |name: &str| {
        format!(
            "    executor: command\n    deploy: 'true'\n    destroy: 'echo {name} >> {}'\n",
            order.display()
        )
    };
    p.manifest(
        "DOWN",
        &format!(
            "environments: [dev]\nstacks:\n  network:\n{}  db:\n    dependencies: [network]\n{}  app:\n    dependencies: [db]\n{}  cdn:\n    dependencies: [network]\n{}",
            step("network"),
            step("db"),
            step("app"),
            step("cdn")
        ),
    );
    let out = p
        .cmd()
        .args(["destroy", "DOWN", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --yes"));
    assert!(!order.exists());

    let out = p
        .cmd()
        .args([
            "destroy", "DOWN", "-e", "dev", "--yes", "-o", "json", "-p", "1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = std::fs::read_to_string(&order)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let at = |s: &str| lines.iter().position(|l| l == s).unwrap();
    assert!(
        at("app") < at("db") && at("db") < at("network") && at("cdn") < at("network"),
        "{lines:?}"
    );
    let events = parse_events(&out.stdout);
    assert_eq!(events[0]["data"]["operation"], "destroy");
    let per = per_stack(&events);
    assert_eq!(per["app"], ["stack_destroying", "stack_destroyed"]);
    let complete = &events.last().unwrap()["data"];
    assert_eq!(complete["status"], "deployed");

    // A destroyed deployment is deployed again in full (nothing is "unchanged" any more).
    let (_, events, _) = p.deploy_json("DOWN", &[]);
    assert_eq!(deployed(&events).len(), 4);
}

#[test]
fn a_failed_deploy_rolls_back_what_it_deployed_in_reverse_order() {
    let p = Project::new();
    let log = p.root().join("rollback-log");
    p.manifest(
        "RB",
        &format!(
            r#"
environments: [dev]
stacks:
  network:
    executor: simulate
    resources: [{{ type: "aws:ec2/vpc:Vpc", name: vpc, seconds: 0 }}]
  db:
    executor: command
    dependencies: [network]
    deploy: 'true'
    rollback: 'echo db >> {log}'
  legacy:
    executor: command
    dependencies: [network]
    deploy: 'true'
  app:
    executor: command
    dependencies: [db, legacy]
    deploy: 'echo "Error: app cannot start" >&2; exit 1'
"#,
            log = log.display()
        ),
    );
    let (code, events, _) = p.deploy_json("RB", &["--rollback-on-failure"]);
    assert_eq!(code, 1);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let started = kinds.iter().position(|k| *k == "rollback_started").unwrap();
    let done = kinds
        .iter()
        .position(|k| *k == "rollback_complete")
        .unwrap();
    assert!(started < done);
    assert_eq!(kinds[kinds.len() - 2], "deployment_failed");
    let rb = &events[started]["data"];
    assert!(
        rb["reason"].as_str().unwrap().contains("app cannot start"),
        "{rb}"
    );
    // db rolled back by its `rollback:`; legacy has none: said, and network (below it) stays.
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "db");
    let complete = &events[done]["data"];
    assert_eq!(complete["status"], "failed");
    assert_eq!(complete["rolledBackStacks"], serde_json::json!(["db"]));
    let legacy_failed = of_type(&events, "stack_failed")
        .into_iter()
        .find(|e| e["data"]["stack"] == "legacy")
        .expect("legacy is reported");
    assert_eq!(legacy_failed["data"]["error"]["code"], "NO_ROLLBACK");
    let logs: Vec<&str> = of_type(&events, "stack_log")
        .iter()
        .filter(|e| e["data"]["stack"] == "network")
        .filter_map(|e| e["data"]["message"].as_str())
        .collect();
    assert!(
        logs.iter().any(|l| l.contains("not rolled back: `legacy`")),
        "{logs:?}"
    );
    assert_eq!(events.last().unwrap()["data"]["status"], "failed");

    // Without legacy in the way, everything rolls back: rolled_back.
    let p2 = Project::new();
    p2.manifest(
        "RB2",
        r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  network: { resources: [{ type: "aws:ec2/vpc:Vpc", name: vpc, seconds: 0 }] }
  db:
    dependencies: [network]
    resources: [{ type: "aws:rds/instance:Instance", name: db, seconds: 0 }]
  app:
    dependencies: [db]
    resources: [{ type: "aws:ecs/service:Service", name: app, seconds: 0, fail: "no capacity" }]
"#,
    );
    let (code, events, _) = p2.deploy_json("RB2", &["--rollback-on-failure"]);
    assert_eq!(code, 1);
    let order: Vec<&str> = of_type(&events, "stack_destroyed")
        .iter()
        .map(|e| e["data"]["stack"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["db", "network"]);
    let deleted: Vec<&str> = of_type(&events, "resource_deleted")
        .iter()
        .map(|e| e["data"]["resource"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["db", "vpc"]);
    let last = &events.last().unwrap()["data"];
    assert_eq!(last["status"], "rolled_back");
    // And the record forgets them: the next deploy does them all again.
    let (_, events, _) = p2.deploy_json("RB2", &[]);
    assert!(skipped(&events).is_empty());
}

// --- What a failed command says. ---------------------------------------------------------------

/// A `queue` stack whose multi-line `deploy:` warns, fails and exits 3.
const QUEUE: &str = r#"
environments: [dev]
stacks:
  queue:
    executor: command
    deploy: |
      echo "validating…"
      echo "warning: retrying CreateQueue" >&2
      echo "Error: QueueDeletedRecently: wait 60 seconds before you create a queue with the same name" >&2
      exit 3
"#;

const QUEUE_CAUSE: &str =
    "QueueDeletedRecently: wait 60 seconds before you create a queue with the same name";

/// `cloud logs` of the newest run.
fn file_log(p: &Project, id: &str) -> String {
    let out = p.cmd().args(["logs", id, "-e", "dev"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_failed_multi_line_command_is_named_by_its_first_line_never_by_its_script() {
    let p = Project::new();
    p.manifest("MLC", QUEUE);
    let (code, events, _) = p.deploy_json("MLC", &[]);
    assert_eq!(code, 1);
    let error = &event_of(&events, "stack_failed", "queue")["data"]["error"];
    assert_eq!(error["code"], "COMMAND_FAILED");
    assert!(
        error["message"].as_str().unwrap().ends_with(QUEUE_CAUSE),
        "the root cause is the script's error line: {error}"
    );
    let details = error["details"].as_str().unwrap();
    assert_eq!(
        details,
        "`echo \"validating…\"` (+3 lines) exited with status 3\nwarning: retrying CreateQueue",
        "the script's name and its stderr, but the message: said once"
    );
    let verbose = p
        .cmd()
        .args(["deploy", "MLC", "-e", "dev", "--verbose"])
        .output()
        .unwrap();
    let said = format!(
        "{}{}{}",
        String::from_utf8_lossy(&verbose.stdout),
        String::from_utf8_lossy(&verbose.stderr),
        file_log(&p, "MLC")
    );
    for line in ["exit 3", "echo \"warning: retrying"] {
        assert!(
            !said.contains(line) && !details.contains(line),
            "the script is not echoed ({line}): {said}\n{details}"
        );
    }

    // A multi-line script that leaves a process behind is named the same way.
    let p = Project::new();
    p.manifest(
        "BGD",
        "environments: [dev]\nstacks:\n  worker:\n    executor: command\n    deploy: |\n      sleep 3 &\n      echo started\n",
    );
    let (code, events, _) = p.deploy_json("BGD", &[]);
    assert_eq!(code, 0);
    let warned = log_messages(&events, "worker", Some("warn"));
    assert!(
        warned
            .iter()
            .any(|m| m.starts_with("`sleep 3 &` (+1 line) exited, but ")),
        "{warned:?}"
    );
}

#[test]
fn a_stderr_line_that_says_its_level_is_logged_at_it_without_a_second_prefix() {
    let p = Project::new();
    p.manifest("LVL", QUEUE);
    let (code, events, _) = p.deploy_json("LVL", &[]);
    assert_eq!(code, 1);
    let said = logs(&events, "queue");
    assert!(
        said.contains(&("warn".into(), "retrying CreateQueue".into())),
        "{said:?}"
    );
    assert!(
        said.contains(&("error".into(), QUEUE_CAUSE.into())),
        "an `Error:` line on stderr is an error: {said:?}"
    );
    let verbose = p
        .cmd()
        .args(["deploy", "LVL", "-e", "dev", "--verbose"])
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&verbose.stdout),
        file_log(&p, "LVL")
    );
    assert!(shown.contains("warning: retrying CreateQueue"), "{shown}");
    for doubled in ["warning: warning:", "warning: Error:", "error: Error:"] {
        assert!(!shown.contains(doubled), "{doubled}: {shown}");
    }
}

#[test]
fn a_failed_resource_is_named_once_beside_its_error() {
    let p = Project::new();
    p.manifest(
        "ONCE",
        r#"
environments: [dev]
stacks:
  database-rds:
    executor: simulate
    resources:
      - { type: "aws:rds/instance:Instance", name: main-database, seconds: 0, fail: "Insufficient IAM permissions" }
"#,
    );
    let (code, events, _) = p.deploy_json("ONCE", &[]);
    assert_eq!(code, 1);
    let resource = &of_type(&events, "resource_failed")[0]["data"]["error"];
    assert_eq!(resource["message"], "Insufficient IAM permissions");
    // The stack's error names the resource: it is told without it.
    let stack = &event_of(&events, "stack_failed", "database-rds")["data"]["error"];
    assert_eq!(
        stack["message"],
        "Unable to create aws:rds/instance:Instance (main-database): Insufficient IAM permissions"
    );
    let verbose = p
        .cmd()
        .args(["deploy", "ONCE", "-e", "dev", "--verbose"])
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&verbose.stdout),
        file_log(&p, "ONCE")
    );
    assert!(
        shown.contains(
            "Failed: aws:rds/instance:Instance (main-database): Insufficient IAM permissions"
        ),
        "{shown}"
    );
    for line in shown.lines() {
        assert!(
            line.matches("(main-database)").count() <= 1,
            "the resource is named once a line: {line}"
        );
    }
}

/// What was recorded stays readable when the manifest's stacks were broken since: `status`,
/// `replay`, `events` and `unlock` need only its id, environments and event store; a command
/// that runs stacks still refuses with the precise error.
#[test]
fn recorded_runs_stay_readable_when_the_manifests_stacks_are_broken() {
    let p = three();
    let (code, _, _) = p.deploy_json("OPS", &[]);
    assert_eq!(code, 0);
    let manifest = p.deployment_dir("OPS").join("deployment.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}  broken: {{ executor: nosuch }}\n"),
    )
    .unwrap();
    let status = p
        .cmd()
        .args(["status", "OPS", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert!(String::from_utf8_lossy(&status.stdout).contains("OPS-dev: deployed"));
    let replay = (p.cmd())
        .args(["replay", "OPS", "-e", "dev", "--instant", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(0), "{replay:?}");
    let deploy = p
        .cmd()
        .args(["deploy", "OPS", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(deploy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&deploy.stderr).contains("nosuch"));
    // An environment the manifest does not list is still refused, with its place.
    let other = p
        .cmd()
        .args(["status", "OPS", "-e", "qa"])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("environment `qa` is not listed"));
}
