//! The `pulumi` executor through the real `cloud` binary, against a fake `pulumi`: a shell
//! script that answers the commands the executor runs from files the test writes, records
//! every call, and for `up` replays a recorded engine event stream
//! (`tests/fixtures/pulumi/`) into the `--event-log` file in small chunks that end in the
//! middle of lines, with pauses, then exits with the chosen code.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The fake Pulumi CLI. State per project lives in `$FAKE_PULUMI/<project folder name>/`.
const FAKE: &str = r#"#!/bin/sh
# A stand-in for the Pulumi CLI, for tests: it answers from files under
# $FAKE_PULUMI/<project folder>/ and records each call in $FAKE_PULUMI/calls.log.
S="$FAKE_PULUMI"
D="$S/$(basename "$PWD")"
mkdir -p "$D"
{
  printf 'cwd=%s\037debug=%s' "$PWD" "${PULUMI_DEBUG_COMMANDS:-}"
  for a in "$@"; do printf '\037%s' "$a"; done
  printf '\n'
} >> "$S/calls.log"

after() { want="$1"; shift; while [ $# -gt 0 ]; do if [ "$1" = "$want" ]; then printf '%s' "$2"; return 0; fi; shift; done; return 1; }
has() { want="$1"; shift; for a in "$@"; do [ "$a" = "$want" ] && return 0; done; return 1; }
last() { for a in "$@"; do l="$a"; done; printf '%s' "$l"; }

case "$1" in
whoami)
  if [ -f "$S/whoami-error" ]; then cat "$S/whoami-error" >&2; exit 255; fi
  echo tester
  exit 0 ;;
stack)
  case "$2" in
  select)
    if [ -f "$D/select-error" ]; then cat "$D/select-error" >&2; exit 255; fi
    # `missing`: the stack does not exist until selected with --create.
    if [ -f "$D/missing" ]; then
      if has --create "$@"; then rm "$D/missing"; else echo "error: no stack named '$(last "$@")' found" >&2; exit 255; fi
    fi
    exit 0 ;;
  rm)
    touch "$D/missing"
    exit 0 ;;
  export)
    file=$(after --file "$@")
    if [ -f "$D/export.json" ]; then cp "$D/export.json" "$file"; else echo '{"version":3,"deployment":{}}' > "$file"; fi
    exit 0 ;;
  output)
    if has --show-secrets "$@"; then cat "$D/outputs-shown-secrets.json" 2>/dev/null || echo '{}'
    else cat "$D/outputs.json" 2>/dev/null || echo '{}'; fi
    exit 0 ;;
  esac ;;
config)
  key=$(last "$@")
  case "$2" in
  get)
    if [ -f "$D/config-get-$key.json" ]; then cat "$D/config-get-$key.json"; exit 0; fi
    echo "error: configuration key '$key' not found for stack" >&2
    exit 255 ;;
  set)
    cat > "$D/config-set-$key.stdin"
    exit 0 ;;
  esac ;;
up|destroy|preview|refresh)
  if has --help "$@"; then
    [ -f "$S/saves-plans" ] && echo "      --save-plan string   [EXPERIMENTAL] Save the operations proposed by the preview to a plan file at the given path"
    exit 0
  fi
  if plan=$(after --save-plan "$@"); then echo '{"experimental":"a saved plan"}' > "$plan"; fi
  log=$(after --event-log "$@")
  if [ -f "$D/hold" ]; then
    ints=0
    on_int() {
      ints=$((ints + 1))
      echo "INT $ints" >> "$D/signals"
      if [ "$ints" -ge 2 ]; then
        cat "$D/after-second-int" >> "$log"
        echo "error: update canceled" >&2
        exit 255
      fi
      cat "$D/after-first-int" >> "$log"
    }
    trap on_int INT
  fi
  if [ -d "$D/chunks" ]; then
    for c in "$D"/chunks/*; do cat "$c" >> "$log"; sleep 0.01; done
  fi
  if [ -f "$D/hold" ]; then
    touch "$D/holding"
    while true; do sleep 0.05; done
  fi
  if [ -f "$D/stderr" ]; then cat "$D/stderr" >&2; fi
  exit "$(cat "$D/exit" 2>/dev/null || echo 0)" ;;
esac
echo "error: the fake pulumi does not know: $*" >&2
exit 2
"#;

struct Fake {
    bin: PathBuf,
    state: PathBuf,
}

/// One recorded call of the fake.
#[derive(Debug)]
struct Call {
    cwd: String,
    debug: String,
    args: Vec<String>,
}

impl Fake {
    fn new(p: &Project) -> Fake {
        let root = p.root().join("fake-pulumi");
        let bin = root.join("bin/pulumi");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, FAKE).unwrap();
        chmod_x(&bin);
        let state = root.join("state");
        std::fs::create_dir_all(&state).unwrap();
        Fake { bin, state }
    }

    /// The fake's folder for the Pulumi project in folder `project`.
    fn project(&self, project: &str) -> PathBuf {
        let dir = self.state.join(project);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(&self, project: &str, name: &str, content: &str) {
        std::fs::write(self.project(project).join(name), content).unwrap();
    }

    /// `pulumi up` in `project` replays `stream`, then exits with `exit`.
    fn replay(&self, project: &str, stream: &str, exit: i32) {
        let chunks = self.project(project).join("chunks");
        std::fs::create_dir_all(&chunks).unwrap();
        for (i, chunk) in split(stream.as_bytes()).iter().enumerate() {
            std::fs::write(chunks.join(format!("{i:04}")), chunk).unwrap();
        }
        self.write(project, "exit", &exit.to_string());
    }

    fn calls(&self) -> Vec<Call> {
        let log = std::fs::read_to_string(self.state.join("calls.log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let mut fields = line.split('\x1f');
                let cwd = fields.next().unwrap().trim_start_matches("cwd=").to_owned();
                let debug = fields
                    .next()
                    .unwrap()
                    .trim_start_matches("debug=")
                    .to_owned();
                Call {
                    cwd,
                    debug,
                    args: fields.map(str::to_owned).collect(),
                }
            })
            .collect()
    }

    /// The calls whose arguments start with `prefix`.
    fn calls_of(&self, prefix: &[&str]) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.args.len() >= prefix.len() && c.args[..prefix.len()] == *prefix)
            .collect()
    }
}

/// Pieces of a stream whose ends fall in the middle of lines: a few big ones and some of one
/// or a few bytes, so that every kind of boundary is crossed.
fn split(bytes: &[u8]) -> Vec<&[u8]> {
    let base = (bytes.len() / 24).max(64);
    let sizes = [base, 1, base / 3 + 5, 17, base * 2, 3];
    let mut out = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + size).min(bytes.len());
        out.push(&bytes[at..end]);
        at = end;
    }
    assert!(
        out.iter().any(|c| !c.ends_with(b"\n")),
        "some chunk ends mid-line"
    );
    out
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pulumi")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Pulumi project folder beside the manifest.
fn pulumi_project(p: &Project, id: &str, folder: &str) {
    p.file(
        id,
        &format!("{folder}/Pulumi.yaml"),
        &format!("name: {folder}\nruntime: yaml\n"),
    );
}

/// One pulumi stack `db` in folder `db`.
fn one_stack(p: &Project, id: &str) {
    p.manifest(
        id,
        "environments: [dev]\nstacks:\n  db:\n    executor: pulumi\n    path: db\n",
    );
    pulumi_project(p, id, "db");
}

fn cloud_with(p: &Project, fake: &Fake) -> assert_cmd::Command {
    let mut cmd = p.cmd();
    cmd.env("CLOUD_PULUMI_BIN", &fake.bin)
        .env("FAKE_PULUMI", &fake.state);
    cmd
}

/// `cloud deploy ID -e dev --output json`: the exit code, the events and the output.
fn deploy(p: &Project, fake: &Fake, id: &str, env: &[(&str, &str)]) -> (i32, Vec<Value>, Output) {
    let mut cmd = cloud_with(p, fake);
    cmd.envs(env.iter().copied());
    deploy_json_with(cmd, id, &[])
}

/// Every resource event as `state type name [id]`; each one's URN is checked to be Pulumi's
/// own, naming the same type and name.
fn resource_events(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("resource_"))
        .map(|e| {
            let r = &e["data"]["resource"];
            let (type_, name) = (r["type"].as_str().unwrap(), r["name"].as_str().unwrap());
            let urn = r["urn"].as_str().unwrap();
            assert!(
                urn.starts_with("urn:pulumi:") && urn.ends_with(&format!("{type_}::{name}")),
                "the URN is Pulumi's: {urn} ({type_} {name})"
            );
            let state = e["type"].as_str().unwrap().trim_start_matches("resource_");
            match r["id"].as_str() {
                Some(id) => format!("{state} {type_} {name} {id}"),
                None => format!("{state} {type_} {name}"),
            }
        })
        .collect()
}

fn percents(events: &[Value]) -> Vec<u64> {
    of_type(events, "stack_progress")
        .iter()
        .map(|e| e["data"]["progressPercent"].as_u64().unwrap())
        .collect()
}

/// Replays `name` as the output of `pulumi up` for one stack; returns the exit code and events.
fn replayed(name: &str, exit: i32) -> (i32, Vec<Value>, Output) {
    let p = Project::new();
    one_stack(&p, "FIX");
    let fake = Fake::new(&p);
    fake.replay("db", &fixture(name), exit);
    let (code, events, output) = deploy(&p, &fake, "FIX", &[]);
    assert_gap_free(&events);
    (code, events, output)
}

fn deployed(events: &[Value]) -> &Value {
    &of_type(events, "stack_deployed")[0]["data"]
}

fn failed(events: &[Value]) -> &Value {
    &of_type(events, "stack_failed")[0]["data"]
}

// --- Every recorded stream maps to the resource events it records. ---------------------------

#[test]
fn a_destroy_with_components_deletes_each_child_and_component() {
    let (code, events, output) = replayed("destroy-with-components.json", 0);
    assert_eq!(code, 0, "{output:?}");
    assert_eq!(
        resource_events(&events),
        [
            "deleting my:component:Child mychild",
            "deleted my:component:Child mychild mychild-id",
            "deleting my:component:Component mycomponent",
            "deleted my:component:Component mycomponent",
        ]
    );
    assert_eq!(deployed(&events)["resourcesCreated"], 0);
}

#[test]
fn a_deep_hierarchy_is_deleted_from_the_leaves_up() {
    let (code, events, _) = replayed("destroy-with-deep-hierarchy.json", 0);
    assert_eq!(code, 0);
    assert_eq!(
        resource_events(&events),
        [
            "deleting my:component:Grandchild mygrandchild",
            "deleted my:component:Grandchild mygrandchild mygrandchild-id",
            "deleting my:component:Child mychild",
            "deleted my:component:Child mychild",
            "deleting my:component:Parent myparent",
            "deleted my:component:Parent myparent",
        ]
    );
    assert!(logs(&events, "db")
        .iter()
        .any(|(_, m)| m == "Pulumi finished: 3 deleted in 9s"));
}

#[test]
fn a_failed_import_fails_the_resource_and_the_stack_with_the_first_error() {
    for (name, resource, first, rest) in [
        (
            "failed-import-create.json",
            "resB",
            "not implemented",
            "update failed: step application failed: not implemented",
        ),
        (
            "failed-continue-on-error-import.json",
            "resA",
            "intentionally failed read",
            "update failed",
        ),
    ] {
        let (code, events, _) = replayed(name, 255);
        assert_eq!(code, 1, "{name}");
        assert_eq!(
            resource_events(&events),
            [
                format!("creating pkgA:m:typA {resource}"),
                format!("failed pkgA:m:typA {resource}"),
            ],
            "{name}: the Stack resource is not one of the stack's resources"
        );
        let resource_failed = &of_type(&events, "resource_failed")[0]["data"];
        assert_eq!(resource_failed["error"]["message"], first, "{name}");
        let error = &failed(&events)["error"];
        assert_eq!(
            error["message"], first,
            "{name}: the first error diagnostic"
        );
        assert_eq!(error["code"], "PULUMI_ERROR", "{name}");
        let details = error["details"].as_str().unwrap();
        assert!(details.contains(rest), "{name}: {details}");
        assert!(
            details.contains("`pulumi up` exited with status 255"),
            "{name}: {details}"
        );
        // Said once, by the resource's failure and the stack's error: no error line besides.
        let said = logs(&events, "db");
        assert!(
            said.iter()
                .any(|(level, m)| level == "debug"
                    && m == &format!("pkgA:m:typA ({resource}): {first}")),
            "{name}: {said:?}"
        );
        assert!(
            !said
                .iter()
                .any(|(level, m)| level == "error" && m.contains(first)),
            "{name}: {said:?}"
        );
    }
}

#[test]
fn previews_and_unchanged_stacks_report_no_resource_events() {
    for name in [
        "stack-output-resource-diff.json",
        "template-body.json",
        "up-2.json",
        "up-truncate.json",
    ] {
        let (code, events, output) = replayed(name, 0);
        assert_eq!(code, 0, "{name}: {output:?}");
        assert_eq!(resource_events(&events), Vec::<String>::new(), "{name}");
        let deployed = deployed(&events);
        assert_eq!(deployed["resourcesCreated"], 0, "{name}");
        assert_eq!(deployed["resourcesUpdated"], 0, "{name}");
    }
}

#[test]
fn an_update_reports_the_changed_resource_and_the_percent_from_the_previous_state() {
    let p = Project::new();
    one_stack(&p, "UPD");
    let fake = Fake::new(&p);
    fake.replay("db", &fixture("up-4.json"), 0);
    // The stack held 5 resources besides itself and its provider.
    fake.write(
        "db",
        "export.json",
        r#"{"version":3,"deployment":{"resources":[
            {"urn":"urn:pulumi:dev::eks::pulumi:pulumi:Stack::eks-dev","type":"pulumi:pulumi:Stack"},
            {"urn":"urn:pulumi:dev::eks::pulumi:providers:aws::default_4_36_0","type":"pulumi:providers:aws"},
            {"urn":"a","type":"aws:iam/role:Role"},
            {"urn":"b","type":"aws:iam/rolePolicyAttachment:RolePolicyAttachment"},
            {"urn":"c","type":"aws:iam/rolePolicyAttachment:RolePolicyAttachment"},
            {"urn":"d","type":"aws:ec2/securityGroup:SecurityGroup"},
            {"urn":"e","type":"aws:eks/cluster:Cluster"}]}}"#,
    );
    let (code, events, output) = deploy(&p, &fake, "UPD", &[]);
    assert_eq!(code, 0, "{output:?}");
    assert_eq!(
        resource_events(&events),
        [
            "updating aws:ec2/securityGroup:SecurityGroup eks-sg",
            "updated aws:ec2/securityGroup:SecurityGroup eks-sg sg-0d1f8bb63e78926f4",
        ]
    );
    assert_eq!(deployed(&events)["resourcesUpdated"], 1);
    assert_eq!(percents(&events), [20, 40, 60, 80, 99]);
    assert!(logs(&events, "db")
        .iter()
        .any(|(_, m)| m == "Pulumi finished: 1 updated, 4 unchanged in 2s"));
}

#[test]
fn a_create_before_delete_replacement_is_one_resource_replaced() {
    let (code, events, _) = replayed("replace-create-before-delete.json", 0);
    assert_eq!(code, 0);
    assert_eq!(
        resource_events(&events),
        [
            "updating pkgA:m:typA resA",
            "updated pkgA:m:typA resA 7eae9fe9-450d-4acb-985d-599cd767977d",
        ],
        "the provider's replacement is not shown"
    );
    assert_eq!(deployed(&events)["resourcesUpdated"], 0);
    assert_eq!(deployed(&events)["resourcesReplaced"], 1);
    let updated = of_type(&events, "resource_updated");
    assert_eq!(updated[0]["data"]["action"], "replace");
}

#[test]
fn a_delete_before_create_replacement_ends_when_the_new_resource_exists() {
    let (code, events, _) = replayed("replace-delete-before-create.json", 0);
    assert_eq!(code, 0);
    assert_eq!(
        resource_events(&events),
        [
            "updating pkgA:m:typA K",
            "updating pkgA:m:typA F",
            "updating pkgA:m:typA E",
            "updating pkgA:m:typA B",
            "updated pkgA:m:typA B 10",
            "updated pkgA:m:typA E 13",
            "updated pkgA:m:typA F 14",
            "updating pkgA:m:typA G",
            "updated pkgA:m:typA G 15",
            "updating pkgA:m:typA I",
            "updated pkgA:m:typA I 3",
            "updating pkgA:m:typA J",
            "updated pkgA:m:typA J 15",
            "updated pkgA:m:typA K 16",
            "updating pkgA:m:typA L",
            "updated pkgA:m:typA L 17",
        ]
    );
    assert_eq!(deployed(&events)["resourcesUpdated"], 4);
    assert_eq!(deployed(&events)["resourcesReplaced"], 4);
    assert!(logs(&events, "db")
        .iter()
        .any(|(_, m)| m == "Pulumi finished: 4 updated, 4 replaced, 1 unchanged in 1s"));
}

#[test]
fn access_denied_fails_with_insufficient_permissions_in_the_providers_words() {
    let (code, events, _) = replayed("create-access-denied.json", 255);
    assert_eq!(code, 1);
    assert_eq!(
        resource_events(&events),
        [
            "creating aws:ec2/securityGroup:SecurityGroup db-sg",
            "created aws:ec2/securityGroup:SecurityGroup db-sg sg-0a1b2c3d",
            "creating aws:rds/subnetGroup:SubnetGroup db-subnets",
            "created aws:rds/subnetGroup:SubnetGroup db-subnets db-subnets-4f2a",
            "creating aws:rds/instance:Instance main-database",
            "failed aws:rds/instance:Instance main-database",
        ]
    );
    let error = &failed(&events)["error"];
    assert_eq!(error["code"], "INSUFFICIENT_PERMISSIONS");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "creating RDS DB Instance (main-database): operation error RDS: CreateDBInstance"
        ) && message.contains("is not authorized to perform: rds:CreateDBInstance"),
        "{message}"
    );
    let resource_error = &of_type(&events, "resource_failed")[0]["data"]["error"];
    assert_eq!(resource_error["message"], message);
    assert_eq!(resource_error["code"], "INSUFFICIENT_PERMISSIONS");
    assert!(error["details"].as_str().unwrap().contains("update failed"));
    let said = logs(&events, "db");
    assert!(
        said.contains(&("info".into(), "Creating RDS instance in vpc-abc123".into())),
        "the program's output, without a resource label: {said:?}"
    );
    assert!(
        said.contains(&(
            "warn".into(),
            "aws:rds/subnetGroup:SubnetGroup (db-subnets): name is deprecated: use name_prefix"
                .into()
        )),
        "{said:?}"
    );
    assert_eq!(deployed_count(&events), 0);
}

fn deployed_count(events: &[Value]) -> usize {
    of_type(events, "stack_deployed").len()
}

// --- Streams that end badly. ------------------------------------------------------------------

#[test]
fn a_run_that_fails_before_the_engine_starts_writes_no_event_log() {
    let p = Project::new();
    one_stack(&p, "PRE");
    let fake = Fake::new(&p);
    fake.write(
        "db",
        "stderr",
        "error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables\n",
    );
    fake.write("db", "exit", "255");
    let (code, events, _) = deploy(&p, &fake, "PRE", &[]);
    assert_eq!(code, 1);
    assert!(resource_events(&events).is_empty());
    let error = &failed(&events)["error"];
    assert_eq!(
        error["message"],
        "error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
    );
    assert_eq!(error["code"], "PULUMI_ERROR");
    assert_eq!(
        error["details"], "`pulumi up` exited with status 255",
        "the message is not said again"
    );
}

#[test]
fn steps_in_flight_when_the_engine_stops_fail_as_interrupted_not_with_another_error() {
    let p = Project::new();
    one_stack(&p, "CUT");
    let fake = Fake::new(&p);
    // Up to the database's start, then the engine stops: summary and cancel, no outputs.
    let full = fixture("create-access-denied.json");
    let mut stream: String = full
        .lines()
        .take_while(|l| !l.contains("\"diagnosticEvent\":{\"urn\":\"urn:pulumi:D1BRV40-dev::database-rds::aws:rds/instance"))
        .filter(|l| !l.contains("resOutputsEvent") || l.contains("db-sg"))
        .map(|l| format!("{l}\n"))
        .collect();
    stream.push_str(r#"{"sequence":40,"timestamp":1760020590,"summaryEvent":{"maybeCorrupt":false,"durationSeconds":16,"resourceChanges":{"create":2},"PolicyPacks":{}}}"#);
    stream.push('\n');
    stream.push_str(r#"{"sequence":41,"timestamp":1760020590,"cancelEvent":{}}"#);
    stream.push('\n');
    fake.replay("db", &stream, 255);
    fake.write("db", "stderr", "error: update failed\n");
    let (code, events, _) = deploy(&p, &fake, "CUT", &[]);
    assert_eq!(code, 1);
    assert_eq!(
        resource_events(&events),
        [
            "creating aws:ec2/securityGroup:SecurityGroup db-sg",
            "created aws:ec2/securityGroup:SecurityGroup db-sg sg-0a1b2c3d",
            "creating aws:rds/subnetGroup:SubnetGroup db-subnets",
            "creating aws:rds/instance:Instance main-database",
            "failed aws:rds/subnetGroup:SubnetGroup db-subnets",
            "failed aws:rds/instance:Instance main-database",
        ]
    );
    assert_eq!(failed(&events)["error"]["message"], "error: update failed");
    for e in of_type(&events, "resource_failed") {
        let error = &e["data"]["error"];
        assert_eq!(error["message"], "interrupted while creating", "{e}");
        assert_eq!(error["code"], "CANCELLED", "{e}");
    }
}

/// A `delete-replaced` step of its own (the old copy of a resource replaced in an earlier update,
/// left pending deletion: `old.delete`), in the engine's shape.
fn lone_delete_replaced(kind: &str) -> String {
    let urn =
        "urn:pulumi:D1BRV40-dev::database-rds::aws:rds/parameterGroup:ParameterGroup::db-params";
    format!(
        r#"{{"sequence":7,"timestamp":1760020575,"{kind}":{{"metadata":{{"op":"delete-replaced","urn":"{urn}","type":"aws:rds/parameterGroup:ParameterGroup","old":{{"type":"aws:rds/parameterGroup:ParameterGroup","urn":"{urn}","custom":true,"delete":true,"id":"db-params-old","parent":"","inputs":{{}},"outputs":{{}},"provider":""}},"new":null,"detailedDiff":null,"provider":""}}}}}}"#
    )
}

#[test]
fn a_lone_delete_replaced_step_is_the_old_copy_deleted() {
    let p = Project::new();
    one_stack(&p, "DRP");
    let fake = Fake::new(&p);
    let stream = [
        r#"{"sequence":1,"timestamp":1760020574,"preludeEvent":{"config":{}}}"#.to_owned(),
        lone_delete_replaced("resourcePreEvent"),
        lone_delete_replaced("resOutputsEvent"),
        r#"{"sequence":9,"timestamp":1760020576,"summaryEvent":{"maybeCorrupt":false,"durationSeconds":2,"resourceChanges":{"same":1},"PolicyPacks":{}}}"#.to_owned(),
        r#"{"sequence":10,"timestamp":1760020576,"cancelEvent":{}}"#.to_owned(),
    ]
    .join("\n")
        + "\n";
    fake.replay("db", &stream, 0);
    let (code, events, output) = deploy(&p, &fake, "DRP", &[]);
    assert_eq!(code, 0, "{output:?}");
    assert_eq!(
        resource_events(&events),
        [
            "deleting aws:rds/parameterGroup:ParameterGroup db-params",
            "deleted aws:rds/parameterGroup:ParameterGroup db-params db-params-old",
        ]
    );
    let said = logs(&events, "db");
    assert!(
        said.iter()
            .any(|(_, m)| m == "Pulumi finished: 1 deleted in 2s"),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|(_, m)| m.contains("never finished")),
        "{said:?}"
    );
}

#[test]
fn a_malformed_line_is_reported_and_skipped() {
    let p = Project::new();
    one_stack(&p, "BAD");
    let fake = Fake::new(&p);
    let full = fixture("up-4.json");
    let mut stream = String::new();
    for (i, line) in full.lines().enumerate() {
        if i == 3 {
            stream.push_str("{\"resourcePreEvent\": {\"metadata\": tru\n");
            stream.push_str("{\"resourcePreEvent\": 5}\n");
        }
        stream.push_str(line);
        stream.push('\n');
    }
    fake.replay("db", &stream, 0);
    let (code, events, _) = deploy(&p, &fake, "BAD", &[]);
    assert_eq!(code, 0);
    assert_eq!(
        resource_events(&events),
        [
            "updating aws:ec2/securityGroup:SecurityGroup eks-sg",
            "updated aws:ec2/securityGroup:SecurityGroup eks-sg sg-0d1f8bb63e78926f4",
        ]
    );
    let skipped: Vec<String> = logs(&events, "db")
        .into_iter()
        .filter(|(level, m)| level == "warn" && m.starts_with("skipped line"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0]
            .starts_with("skipped line 4 of Pulumi's event log, which is not an engine event"),
        "{skipped:?}"
    );
    assert!(skipped[1].starts_with("skipped line 5 "), "{skipped:?}");
}

#[test]
fn a_locked_stack_fails_with_locked_and_names_the_holder() {
    let p = Project::new();
    one_stack(&p, "LCK");
    let fake = Fake::new(&p);
    fake.write(
        "db",
        "stderr",
        "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.\n  s3://state/.pulumi/locks/organization/db/LCK-dev/9f1c.json: created by alice@ci-7 (pid 4242) at 2025-10-09T14:30:00Z\n",
    );
    fake.write("db", "exit", "255");
    let (code, events, _) = deploy(&p, &fake, "LCK", &[]);
    assert_eq!(code, 1);
    let error = &failed(&events)["error"];
    assert_eq!(error["code"], "LOCKED");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("the stack is currently locked"),
        "{message}"
    );
    assert!(
        message.contains("created by alice@ci-7 (pid 4242) at 2025-10-09T14:30:00Z"),
        "{message}"
    );
}

#[test]
fn ctrl_c_interrupts_pulumi_twice_then_the_stack_is_cancelled() {
    let p = Project::new();
    one_stack(&p, "INT");
    let fake = Fake::new(&p);
    // The run stops with the database being created and the subnet group in flight.
    let full = fixture("create-access-denied.json");
    let upto: String = full
        .lines()
        .take_while(|l| !l.contains("\"diagnosticEvent\":{\"urn\":\"urn:pulumi:D1BRV40-dev::database-rds::aws:rds/instance"))
        .filter(|l| !l.contains("db-subnets-4f2a"))
        .map(|l| format!("{l}\n"))
        .collect();
    fake.replay("db", &upto, 0);
    fake.write("db", "hold", "");
    // The first SIGINT lets operations in flight finish; the second stops the engine.
    let subnets_done = full
        .lines()
        .find(|l| l.contains("db-subnets-4f2a"))
        .unwrap();
    fake.write("db", "after-first-int", &format!("{subnets_done}\n"));
    fake.write(
        "db",
        "after-second-int",
        "{\"summaryEvent\":{\"maybeCorrupt\":false,\"durationSeconds\":3,\"resourceChanges\":{\"create\":2}}}\n{\"cancelEvent\":{}}\n",
    );
    let mut child = p
        .process()
        .args([
            "deploy",
            "INT",
            "-e",
            "dev",
            "--output",
            "json",
            "--grace-period",
            "4",
        ])
        .env("CLOUD_PULUMI_BIN", &fake.bin)
        .env("FAKE_PULUMI", &fake.state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the database never started: {seen:?}");
            }
        };
        let creating_db = line.contains("resource_creating") && line.contains("main-database");
        seen.push(line);
        if creating_db {
            break;
        }
    }
    wait_for_file(&fake.project("db").join("holding"));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    assert_eq!(status.code(), Some(130));
    let signals = std::fs::read_to_string(fake.project("db").join("signals")).unwrap();
    assert_eq!(signals, "INT 1\nINT 2\n", "SIGINT, then a second one");

    let events: Vec<Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_gap_free(&events);
    assert_eq!(events, p.journal("INT", "dev"), "stdout and journal agree");
    assert_eq!(
        resource_events(&events),
        [
            "creating aws:ec2/securityGroup:SecurityGroup db-sg",
            "created aws:ec2/securityGroup:SecurityGroup db-sg sg-0a1b2c3d",
            "creating aws:rds/subnetGroup:SubnetGroup db-subnets",
            "creating aws:rds/instance:Instance main-database",
            "created aws:rds/subnetGroup:SubnetGroup db-subnets db-subnets-4f2a",
            "failed aws:rds/instance:Instance main-database",
        ],
        "the event log is followed until Pulumi stops"
    );
    let error = &failed(&events)["error"];
    assert_eq!(error["code"], "CANCELLED");
    // The code says it: "CANCELLED: the run was interrupted", not "CANCELLED: Cancelled: …".
    assert_eq!(error["message"], "the run was interrupted");
    let db = &of_type(&events, "resource_failed")[0]["data"]["error"];
    assert_eq!(db["message"], "interrupted while creating");
    assert!(error["details"]
        .as_str()
        .unwrap()
        .contains("stopped by SIGINT"));
    assert_eq!(events.last().unwrap()["data"]["cancelled"], true);
}

// --- Config, inputs, outputs. -----------------------------------------------------------------

const PRODUCER: &str = r#"#!/bin/sh
echo '{"vpcId":"vpc-123","port":5432,"password":"hunter2-from-outputs"}' > "$CLOUD_OUTPUTS"
"#;

#[test]
fn config_and_inputs_reach_pulumi_and_secret_values_never_show() {
    let p = Project::new();
    p.manifest(
        "SEC",
        r#"
environments: [dev, prod]
stacks:
  network:
    executor: command
    deploy: ./producer.sh
  db:
    executor: pulumi
    path: db
    dependencies: [network]
    config:
      aws:region: eu-west-1
      instanceClass: { dev: db.t3.micro, prod: db.r6g.large }
      replicas: 2
      greeting: "hello ${env:PUL_TEST_NAME} $${literal}"
      apiToken: { value: "${env:PUL_TEST_TOKEN}", secret: true }
      onlyProd: { prod: x }
    inputs:
      vpcId: "${network.vpcId}"
      port: "${network.port}"
      masterPassword: { value: "${network.password}", secret: true }
"#,
    );
    chmod_x(&p.file("SEC", "producer.sh", PRODUCER));
    pulumi_project(&p, "SEC", "db");
    let fake = Fake::new(&p);
    // The program prints what it was given; the stack already holds the password.
    fake.replay(
        "db",
        "{\"diagnosticEvent\":{\"urn\":\"urn:pulumi:SEC-dev::db::pulumi:pulumi:Stack::db-SEC-dev\",\"message\":\"token s3cr3t-token-value, password hunter2-from-outputs\\n\",\"severity\":\"info\"}}\n{\"cancelEvent\":{}}\n",
        0,
    );
    fake.write(
        "db",
        "config-get-masterPassword.json",
        "{\n  \"value\": \"hunter2-from-outputs\",\n  \"secret\": true\n}\n",
    );
    let (code, events, output) = deploy(
        &p,
        &fake,
        "SEC",
        &[
            ("PUL_TEST_NAME", "world"),
            ("PUL_TEST_TOKEN", "s3cr3t-token-value"),
        ],
    );
    assert_eq!(code, 0, "{output:?}");

    let select = fake.calls_of(&["stack", "select"]);
    assert_eq!(
        select[0].args,
        [
            "stack",
            "select",
            "--create",
            "--non-interactive",
            "--color",
            "never",
            "SEC-dev"
        ]
    );
    let up = fake.calls_of(&["up"]);
    assert_eq!(up.len(), 1);
    let up = &up[0];
    assert!(up.cwd.ends_with("/cloud/deploy/SEC/db"), "{up:?}");
    assert_eq!(up.debug, "true", "PULUMI_DEBUG_COMMANDS is set");
    let log = &up.args[9];
    assert!(
        log.starts_with('/') && log.ends_with("events.jsonl"),
        "{log}"
    );
    let mut args = up.args.clone();
    args[9] = "LOG".into();
    assert_eq!(
        args,
        [
            "up",
            "--stack",
            "SEC-dev",
            "--yes",
            "--skip-preview",
            "--non-interactive",
            "--color",
            "never",
            "--event-log",
            "LOG",
            "--config",
            "aws:region=eu-west-1",
            "--config",
            "instanceClass=db.t3.micro",
            "--config",
            "replicas=2",
            "--config",
            "greeting=hello world ${literal}",
            "--config",
            "port=5432",
            "--config",
            "vpcId=vpc-123",
        ]
    );
    // Secret values: through `config set --secret` with the value on stdin, and only when the
    // stack does not hold it yet.
    let sets = fake.calls_of(&["config", "set"]);
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(
        sets[0].args,
        [
            "config",
            "set",
            "--stack",
            "SEC-dev",
            "--secret",
            "--non-interactive",
            "--color",
            "never",
            "apiToken"
        ]
    );
    let stdin =
        std::fs::read_to_string(fake.project("db").join("config-set-apiToken.stdin")).unwrap();
    assert_eq!(stdin, "s3cr3t-token-value");
    for call in fake.calls() {
        let line = call.args.join(" ");
        assert!(
            !line.contains("s3cr3t-token-value") && !line.contains("hunter2-from-outputs"),
            "no secret on a command line: {line}"
        );
    }

    let said = logs(&events, "db");
    assert!(
        said.contains(&("info".into(), "token [secret], password [secret]".into())),
        "{said:?}"
    );
    assert!(said.iter().any(|(_, m)| m
        == "config `onlyProd` has no value for environment `dev`: not passed (the stack's own Pulumi config applies)"));
    assert!(
        said.iter().any(|(_, m)| m.contains("with config aws:region, instanceClass, replicas, greeting, apiToken (secret), masterPassword (secret), port, vpcId")),
        "{said:?}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let journal = std::fs::read_dir(p.deployment_dir("SEC").join("journal/dev"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    for text in [stdout.as_ref(), journal.as_str()] {
        assert!(!text.contains("s3cr3t-token-value"));
        assert!(!text.contains("hunter2-from-outputs") || text.contains("\"stack\":\"network\""));
    }
    // The password is an output of `network` (shown there), never in `db`'s events.
    for e in events.iter().filter(|e| e["data"]["stack"] == "db") {
        assert!(!e.to_string().contains("hunter2-from-outputs"), "{e}");
    }
}

#[test]
fn outputs_reach_dependents_and_secret_ones_only_as_secret_inputs() {
    let p = Project::new();
    p.manifest(
        "OUT",
        r#"
environments: [dev]
stacks:
  db:
    executor: pulumi
    path: db
  app:
    executor: command
    dependencies: [db]
    deploy: 'test "$CLOUD_INPUT_PW" = "real-pass-123" && echo "password reached app: $CLOUD_INPUT_PW"; echo "endpoint=$CLOUD_INPUT_ENDPOINT"; cat "$CLOUD_DEPENDENCY_OUTPUTS"'
    inputs:
      pw: "${db.password}"
      endpoint: "${db.endpoint}"
"#,
    );
    pulumi_project(&p, "OUT", "db");
    let fake = Fake::new(&p);
    fake.replay("db", &fixture("up-2.json"), 0);
    fake.write(
        "db",
        "outputs.json",
        "{\n  \"endpoint\": \"db.internal:5432\",\n  \"nested\": {\n    \"key\": \"[secret]\",\n    \"plain\": 1\n  },\n  \"password\": \"[secret]\"\n}\n",
    );
    fake.write(
        "db",
        "outputs-shown-secrets.json",
        "{\n  \"endpoint\": \"db.internal:5432\",\n  \"nested\": {\n    \"key\": \"k-456\",\n    \"plain\": 1\n  },\n  \"password\": \"real-pass-123\"\n}\n",
    );
    let (code, events, output) = deploy(&p, &fake, "OUT", &[]);
    assert_eq!(code, 0, "{output:?}");
    let db = of_type(&events, "stack_deployed")
        .into_iter()
        .find(|e| e["data"]["stack"] == "db")
        .unwrap();
    assert_eq!(
        db["data"]["outputs"],
        serde_json::json!({"endpoint": "db.internal:5432", "nested": {"key": "[secret]", "plain": 1}, "password": "[secret]"})
    );
    let said = log_messages(&events, "app", None);
    assert!(
        said.contains(&"password reached app: [secret]".to_owned()),
        "{said:?}"
    );
    assert!(
        said.contains(&"endpoint=db.internal:5432".to_owned()),
        "{said:?}"
    );
    let printed = said[2..].join("\n");
    let dependency_outputs: Value = serde_json::from_str(&printed).unwrap();
    // Secret outputs are not in CLOUD_DEPENDENCY_OUTPUTS: `[secret]` is never a value, and
    // the real one reaches a program only as an input it names.
    assert_eq!(
        dependency_outputs["db"],
        serde_json::json!({"endpoint": "db.internal:5432"})
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("real-pass-123") && !stdout.contains("k-456"));
    assert_eq!(fake.calls_of(&["stack", "output"]).len(), 2);
    assert!(fake.calls_of(&["stack", "output"])[1]
        .args
        .contains(&"--show-secrets".to_owned()));
}

/// A skipped Pulumi stack's secret outputs are read back (`pulumi stack output --json
/// --show-secrets`) for a dependent that changed: the dependent gets the real value, never
/// `[secret]`, and Pulumi is not run to deploy anything.
#[test]
fn a_skipped_stacks_secret_outputs_are_read_back_from_pulumi() {
    let p = Project::new();
    let received = p.root().join("received");
    let manifest = |version: &str| {
        format!(
            r#"
environments: [dev]
stacks:
  db:
    executor: pulumi
    path: db
  app:
    executor: command
    dependencies: [db]
    deploy: printf '%s' "$CLOUD_INPUT_PW" > {}; true {version}
    inputs:
      pw: "${{db.password}}"
"#,
            received.display()
        )
    };
    p.manifest("RB", &manifest("v1"));
    pulumi_project(&p, "RB", "db");
    let fake = Fake::new(&p);
    fake.replay("db", &fixture("up-2.json"), 0);
    fake.write(
        "db",
        "outputs.json",
        "{\"endpoint\": \"db.internal:5432\", \"password\": \"[secret]\"}\n",
    );
    fake.write(
        "db",
        "outputs-shown-secrets.json",
        "{\"endpoint\": \"db.internal:5432\", \"password\": \"real-pass-123\"}\n",
    );
    let (code, _, output) = deploy(&p, &fake, "RB", &[]);
    assert_eq!(code, 0, "{output:?}");
    assert_eq!(std::fs::read_to_string(&received).unwrap(), "real-pass-123");
    let ups = fake.calls_of(&["up"]).len();
    assert_eq!(ups, 1);

    std::fs::remove_file(&received).unwrap();
    p.manifest("RB", &manifest("v2"));
    let (code, events, output) = deploy(&p, &fake, "RB", &[]);
    assert_eq!(code, 0, "{output:?}");
    let skipped: Vec<&str> = of_type(&events, "stack_skipped")
        .iter()
        .map(|e| e["data"]["stack"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["db"]);
    assert_eq!(std::fs::read_to_string(&received).unwrap(), "real-pass-123");
    assert_eq!(
        fake.calls_of(&["up"]).len(),
        ups,
        "db was not deployed again"
    );
    let reads = fake.calls_of(&["stack", "output"]);
    assert!(reads
        .last()
        .unwrap()
        .args
        .contains(&"--show-secrets".to_owned()));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("real-pass-123"));
}

// --- Before anything runs. ----------------------------------------------------------------

/// `cloud validate ID` with the fake: the exit code and stderr.
fn validate(p: &Project, fake: &Fake, id: &str, env: &[(&str, &str)]) -> (i32, String) {
    let out = cloud_with(p, fake)
        .envs(env.iter().copied())
        .args(["validate", id])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn preflight_names_what_is_missing_before_anything_runs() {
    let p = Project::new();
    let fake = Fake::new(&p);

    // No Pulumi project in the folder.
    p.manifest(
        "PF",
        "environments: [dev]\nstacks:\n  db:\n    executor: pulumi\n    path: db\n",
    );
    p.file("PF", "db/index.ts", "");
    let (code, err) = validate(&p, &fake, "PF", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("stack `db`: ") && err.contains("holds no Pulumi.yaml"),
        "{err}"
    );
    assert!(err.contains("help: point `path:` at the folder"), "{err}");

    // Not logged in: Pulumi's own words, and how to log in.
    pulumi_project(&p, "PF", "db");
    std::fs::write(
        fake.state.join("whoami-error"),
        "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions\n",
    )
    .unwrap();
    let out = cloud_with(&p, &fake)
        .args(["deploy", "PF", "-e", "dev"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("failed: error: PULUMI_ACCESS_TOKEN must be set"),
        "{err}"
    );
    assert!(
        err.contains("help: log in to the stacks' backend first"),
        "{err}"
    );
    assert!(
        !p.deployment_dir("PF").join("journal").exists(),
        "nothing ran"
    );
    assert!(fake.calls_of(&["up"]).is_empty());
    std::fs::remove_file(fake.state.join("whoami-error")).unwrap();

    // An environment variable that config reads is not set: where, and how to fix it.
    p.manifest(
        "PF",
        "environments: [dev]\nstacks:\n  db:\n    executor: pulumi\n    path: db\n    config:\n      token: { value: \"${env:SURELY_UNSET_PUL_42}\", secret: true }\n",
    );
    let (code, err) = validate(&p, &fake, "PF", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "config `token` of stack `db` reads ${env:SURELY_UNSET_PUL_42}, which is not set"
        ),
        "{err}"
    );
    assert!(err.contains("deployment.yaml:7:"), "{err}");
    let (code, err) = validate(&p, &fake, "PF", &[("SURELY_UNSET_PUL_42", "x")]);
    assert_eq!(code, 0, "{err}");

    // A key set in both `config:` and `inputs:`.
    p.manifest(
        "PF",
        "environments: [dev]\nstacks:\n  net:\n    executor: simulate\n  db:\n    executor: pulumi\n    path: db\n    dependencies: [net]\n    config: { vpcId: a }\n    inputs: { vpcId: \"${net.vpcId}\" }\n",
    );
    let (code, err) = validate(&p, &fake, "PF", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("sets `vpcId` twice, in `config:` and in `inputs:`"),
        "{err}"
    );
}

#[test]
fn bad_config_is_bad_input_with_its_place_and_fix() {
    let p = Project::new();
    let fake = Fake::new(&p);
    for (config, want) in [
        ("{ \"bad key\": x }", "invalid config key `bad key` in stack `db`: it holds spaces"),
        ("{ region: [a, b] }", "config `region` of stack `db` must be a string, number or boolean, found a list"),
        ("{ vpc: \"${network.vpcId}\" }", "config `vpc` of stack `db` reads `${network.vpcId}`, which is not an environment variable"),
        ("{ t: { value: x, prod: y } }", "unknown key `prod` in config `t` of stack `db`"),
        ("{ t: { secret: true } }", "config `t` of stack `db` has no `value`"),
        ("{ t: { dev: { prod: x } } }", "config `t` of stack `db` (environment `dev`) must be one value, found a mapping"),
        ("[a]", "`config` of stack `db` must be a mapping, found a list"),
    ] {
        p.manifest(
            "CFG",
            &format!("environments: [dev]\nstacks:\n  db:\n    executor: pulumi\n    path: db\n    config: {config}\n"),
        );
        pulumi_project(&p, "CFG", "db");
        let (code, err) = validate(&p, &fake, "CFG", &[]);
        assert_eq!(code, 2, "{config}: {err}");
        assert!(err.contains(want), "{config}: want {want:?}\n{err}");
        assert!(err.contains("deployment.yaml:6:"), "{config}: {err}");
        assert!(err.contains("help: "), "{config}: {err}");
    }
}

/// A Pulumi stack's preview, driven through its executor (`cloud plan` is not a command yet,
/// issue 19) against the fake: `pulumi preview` (never `up`), its event log read as
/// resources planned and the summary's counts, `--save-plan` only when the CLI's help has it,
/// and a failed preview's error in Pulumi's words.
#[test]
fn a_preview_plans_the_recorded_steps_and_saves_the_plan_when_the_cli_can() {
    use cloud::event::{PlanAction, PlanCounts};
    use cloud::executor::{ExecutorUpdate, Message, Updates};
    let p = Project::new();
    one_stack(&p, "PRE");
    let fake = Fake::new(&p);
    // The only test of this file that calls the executor in-process: the fake is found
    // through the process's own environment (every other test sets both on its `cloud`).
    std::env::set_var("CLOUD_PULUMI_BIN", &fake.bin);
    std::env::set_var("FAKE_PULUMI", &fake.state);
    let manifest = cloud::manifest::load(p.root(), "PRE", &cloud::executor::registry()).unwrap();
    let spec = manifest.stacks.iter().find(|s| s.name == "db").unwrap();
    let preview = || {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let job = cloud::testing::job("PRE", "db", &spec.path, &p.root().join("scratch"));
        let future = std::sync::Arc::clone(&spec.executor)
            .plan(job, Updates::new(0, tx, Default::default()))
            .expect("pulumi stacks preview");
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future);
        let mut sent = Vec::new();
        while let Ok((_, Message::Update(u))) = rx.try_recv() {
            sent.push(u);
        }
        (outcome, sent)
    };
    let planned = |sent: &[ExecutorUpdate]| -> Vec<(String, PlanAction)> {
        sent.iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Planned { name, action, .. } => Some((name.clone(), *action)),
                _ => None,
            })
            .collect()
    };
    let summary = |sent: &[ExecutorUpdate]| {
        sent.iter()
            .find_map(|u| match u {
                ExecutorUpdate::PlanSummary(s) => Some(s.clone()),
                _ => None,
            })
            .expect("a plan summary")
    };

    fake.replay("db", &fixture("template-body.json"), 0);
    let (outcome, sent) = preview();
    assert_eq!(outcome, Ok(Default::default()), "{sent:?}");
    assert_eq!(
        planned(&sent),
        [("cluster-nodes".to_owned(), PlanAction::Update)]
    );
    let plan = summary(&sent);
    assert_eq!(
        plan.counts,
        PlanCounts {
            change: 1,
            ..Default::default()
        }
    );
    assert!(plan.changes);
    assert_eq!(
        plan.plan_file, None,
        "this CLI's preview has no --save-plan"
    );
    let previews = fake.calls_of(&["preview", "--stack", "PRE-dev"]);
    assert_eq!(previews.len(), 1);
    let args = &previews[0].args;
    assert!(!args.contains(&"--yes".to_owned()), "{args:?}");
    assert!(!args.contains(&"--save-plan".to_owned()), "{args:?}");
    assert!(args.contains(&"--event-log".to_owned()), "{args:?}");
    assert_eq!(previews[0].debug, "true");
    assert!(fake.calls_of(&["up"]).is_empty());

    std::fs::write(fake.state.join("saves-plans"), "").unwrap();
    std::fs::remove_dir_all(fake.project("db").join("chunks")).unwrap();
    fake.replay("db", &fixture("stack-output-resource-diff.json"), 0);
    let (outcome, sent) = preview();
    assert_eq!(outcome, Ok(Default::default()), "{sent:?}");
    assert_eq!(planned(&sent), []);
    let plan = summary(&sent);
    assert!(!plan.changes);
    let file = PathBuf::from(plan.plan_file.expect("a saved plan"));
    assert!(file.is_file(), "{}", file.display());

    // A stack never deployed: made for the preview, removed after it (a plan changes nothing).
    std::fs::remove_dir_all(fake.project("db").join("chunks")).unwrap();
    fake.replay("db", &fixture("stack-output-resource-diff.json"), 0);
    fake.write("db", "missing", "");
    let (outcome, sent) = preview();
    assert_eq!(outcome, Ok(Default::default()), "{sent:?}");
    assert_eq!(fake.calls_of(&["stack", "select", "--create"]).len(), 1);
    assert_eq!(fake.calls_of(&["stack", "rm", "--yes"]).len(), 1);
    assert!(
        fake.project("db").join("missing").exists(),
        "the stack is gone again"
    );
    assert!(sent.iter().any(|u| matches!(
        u,
        ExecutorUpdate::Log { message, .. } if message.contains("created for the preview, then removed")
    )));

    std::fs::remove_dir_all(fake.project("db").join("chunks")).unwrap();
    let _ = std::fs::remove_file(fake.project("db").join("missing"));
    fake.write(
        "db",
        "stderr",
        "error: preview failed: missing required configuration variable 'db:password'\n",
    );
    fake.write("db", "exit", "255");
    let (outcome, _) = preview();
    let error = outcome.unwrap_err();
    assert_eq!(
        error.message,
        "error: preview failed: missing required configuration variable 'db:password'"
    );
}

#[test]
fn deploy_plan_applies_pulumis_saved_plan_with_up_plan() {
    let p = Project::new();
    one_stack(&p, "SAV");
    let fake = Fake::new(&p);
    std::fs::write(fake.state.join("saves-plans"), "").unwrap();
    fake.replay("db", &fixture("template-body.json"), 0);
    let out = p.root().join("reviewed");
    let run = |args: &[&str]| {
        let output = cloud_with(&p, &fake)
            .args(args)
            .args(["SAV", "-e", "dev", "--output", "json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    };
    run(&["plan", "--out", out.to_str().unwrap()]);
    let saved = out.join("db.plan.json");
    assert!(saved.is_file(), "Pulumi's saved plan is copied out");
    let previews = fake.calls_of(&["preview", "--stack", "SAV-dev"]).len();

    run(&["deploy", "--plan", out.to_str().unwrap()]);
    let ups = fake.calls_of(&["up", "--stack", "SAV-dev"]);
    assert_eq!(ups.len(), 1);
    let args = &ups[0].args;
    let at = args.iter().position(|a| a == "--plan").expect("up --plan");
    assert_eq!(args[at + 1], saved.display().to_string(), "{args:?}");
    assert_eq!(
        fake.calls_of(&["preview", "--stack", "SAV-dev"]).len(),
        previews,
        "no new preview: the saved plan is applied"
    );
}

#[test]
fn deploy_plan_without_a_saved_pulumi_plan_previews_again_and_compares_the_counts() {
    let p = Project::new();
    one_stack(&p, "SAV");
    let fake = Fake::new(&p);
    // This CLI saves no plan: the reviewed counts are checked against a fresh preview.
    fake.replay("db", &fixture("template-body.json"), 0);
    let out = p.root().join("reviewed");
    let run = |args: &[&str]| {
        let output = cloud_with(&p, &fake)
            .args(args)
            .args(["SAV", "-e", "dev", "--output", "json"])
            .output()
            .unwrap();
        (output.status.code(), parse_events(&output.stdout))
    };
    assert_eq!(run(&["plan", "--out", out.to_str().unwrap()]).0, Some(0));
    let previews = fake.calls_of(&["preview", "--stack", "SAV-dev"]).len();

    let (code, events) = run(&["deploy", "--plan", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{events:?}");
    assert_eq!(
        fake.calls_of(&["preview", "--stack", "SAV-dev"]).len(),
        previews + 1
    );
    let ups = fake.calls_of(&["up", "--stack", "SAV-dev"]);
    assert!(
        !ups[0].args.contains(&"--plan".to_owned()),
        "{:?}",
        ups[0].args
    );
    assert!(
        logs(&events, "db").iter().any(|(_, m)| m
            == "planned again: the reviewed plan (+0 to add, ~1 to change, -0 to destroy, ±0 to replace)"),
        "{:?}",
        logs(&events, "db")
    );

    // The reviewed plan said something else: it stops, both side by side.
    let mut saved: Value =
        serde_json::from_slice(&std::fs::read(out.join("plan.json")).unwrap()).unwrap();
    saved["stacks"]["db"]["counts"]["change"] = 2.into();
    std::fs::write(out.join("plan.json"), saved.to_string()).unwrap();
    let (code, events) = run(&["deploy", "--plan", out.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert_eq!(
        failed(&events)["error"]["message"],
        "`db`'s plan changed since it was reviewed — reviewed: +0 to add, ~2 to change, \
         -0 to destroy, ±0 to replace | now: +0 to add, ~1 to change, -0 to destroy, ±0 to replace"
    );
}

/// A `pulumi refresh --preview-only` event log written from Pulumi's documented engine event
/// types (`sdk/go/common/apitype/events.go`: `resOutputsEvent.metadata` with `op: refresh`,
/// `old`/`new` state and `diffs`): a bucket whose tags were changed by hand, one whose secret
/// changed, one deleted outside, one unchanged, and the Stack resource.
const REFRESH: &str = r#"{"sequence":0,"timestamp":1,"preludeEvent":{"config":{}}}
{"sequence":1,"timestamp":1,"resourcePreEvent":{"metadata":{"op":"refresh","urn":"urn:pulumi:D-dev::db::pulumi:pulumi:Stack::db-D-dev","type":"pulumi:pulumi:Stack","old":{"outputs":{}},"new":{"outputs":{}}},"planning":true}}
{"sequence":2,"timestamp":1,"resourcePreEvent":{"metadata":{"op":"refresh","urn":"urn:pulumi:D-dev::db::aws:s3/bucket:Bucket::logs","type":"aws:s3/bucket:Bucket","old":{"id":"logs-1","outputs":{"tags":{"Owner":"team-a"}}},"new":{"id":"logs-1","outputs":{"tags":{"Owner":"team-a"}}}},"planning":true}}
{"sequence":3,"timestamp":1,"resOutputsEvent":{"metadata":{"op":"refresh","urn":"urn:pulumi:D-dev::db::aws:s3/bucket:Bucket::logs","type":"aws:s3/bucket:Bucket","old":{"id":"logs-1","outputs":{"tags":{"Owner":"team-a"},"acl":"private"}},"new":{"id":"logs-1","outputs":{"tags":{"Owner":"someone"},"acl":"private"}},"diffs":["tags"]},"planning":true}}
{"sequence":4,"timestamp":1,"resOutputsEvent":{"metadata":{"op":"refresh","urn":"urn:pulumi:D-dev::db::aws:rds/instance:Instance::main","type":"aws:rds/instance:Instance","old":{"id":"db-1","outputs":{"password":"[secret]"}},"new":{"id":"db-1","outputs":{"password":"[secret]"}},"diffs":["password"]},"planning":true}}
{"sequence":5,"timestamp":1,"resOutputsEvent":{"metadata":{"op":"refresh","urn":"urn:pulumi:D-dev::db::aws:sqs/queue:Queue::jobs","type":"aws:sqs/queue:Queue","old":{"id":"jobs-1","outputs":{}},"new":null},"planning":true}}
{"sequence":6,"timestamp":1,"resOutputsEvent":{"metadata":{"op":"refresh","urn":"urn:pulumi:D-dev::db::aws:s3/bucket:Bucket::data","type":"aws:s3/bucket:Bucket","old":{"id":"data-1","outputs":{"acl":"private"}},"new":{"id":"data-1","outputs":{"acl":"private"}}},"planning":true}}
{"sequence":7,"timestamp":1,"summaryEvent":{"maybeCorrupt":false,"durationSeconds":1,"resourceChanges":{"same":2,"update":2,"delete":1},"PolicyPacks":{}}}
"#;

#[test]
fn a_drift_check_is_a_refresh_preview_naming_what_changed_outside_pulumi() {
    let p = Project::new();
    one_stack(&p, "D");
    let fake = Fake::new(&p);
    fake.write("db", "exit", "0");
    let (code, _, out) = deploy(&p, &fake, "D", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    fake.replay("db", REFRESH, 0);
    let out = cloud_with(&p, &fake)
        .args(["drift", "D", "-e", "dev", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = parse_events(&out.stdout);
    let drifted: Vec<&Value> = of_type(&events, "resource_drifted")
        .into_iter()
        .map(|e| &e["data"])
        .collect();
    let names: Vec<&str> = drifted
        .iter()
        .map(|d| d["resource"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["logs", "main", "jobs"], "{drifted:?}");
    assert_eq!(drifted[0]["attributes"][0]["name"], "tags");
    assert_eq!(drifted[0]["attributes"][0]["before"]["Owner"], "team-a");
    assert_eq!(drifted[0]["attributes"][0]["after"]["Owner"], "someone");
    // A secret is never a value: only that it changed.
    assert_eq!(drifted[1]["attributes"][0]["sensitive"], true);
    assert!(drifted[1]["attributes"][0].get("after").is_none());
    assert_eq!(drifted[2]["action"], "delete");
    let checked = event_of(&events, "stack_drift_checked", "db");
    assert_eq!(checked["data"]["driftedResources"], 3);
    // The refresh is previewed, never applied.
    let refresh = fake.calls_of(&["refresh"]);
    assert_eq!(refresh.len(), 1);
    assert!(
        refresh[0].args.contains(&"--preview-only".to_owned()),
        "{:?}",
        refresh[0].args
    );
}
