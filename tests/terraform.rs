//! The `terraform` executor through the real binary, with a fake `tofu` that answers `init`,
//! `workspace`, `output` and `apply`/`destroy` by printing recorded machine-readable UI streams
//! (tests/fixtures/tofu/) in chunks that split lines, with pauses.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The fake works in the stack's folder and reads what to do from files there:
/// `fake-apply.jsonl` (the stream apply/destroy prints), `fake-exit` (their exit status),
/// `fake-init-fails` (init fails as OpenTofu does when no provider version matches),
/// `fake-output.json` (what `output -json` prints), `fake-leak` (print the secret inputs on
/// stderr), `fake-hang` (after the stream, touch `fake-ready` and wait for SIGINT, then print
/// `fake-interrupted.jsonl` and exit 1). It appends every call to `fake-calls`, writes the
/// `TF_*` environment of apply/destroy to `fake-env`, and each SIGINT it gets to `fake-sigint`.
const FAKE_TOFU: &str = r#"#!/bin/sh
echo "$*" >> fake-calls
stream() {
  size=$(wc -c < "$1"); i=0
  while [ "$i" -lt "$size" ]; do
    tail -c +$((i + 1)) "$1" | head -c 97
    i=$((i + 97))
    sleep 0.01
  done
}
case "$1" in
init)
  if [ -f fake-init-fails ]; then
    echo "Initializing provider plugins..."
    printf '\n\342\225\267\n\342\224\202 Error: Failed to query available provider packages\n\342\224\202 \n' >&2
    printf '\342\224\202 Could not retrieve the list of available versions for provider\n' >&2
    printf '\342\224\202 hashicorp/aws: no available releases match the given constraints ~> 9.0\n\342\225\265\n' >&2
    exit 1
  fi
  mkdir -p .terraform
  echo "Initializing the backend..."
  echo "OpenTofu has been successfully initialized!"
  exit 0 ;;
workspace)
  case "$2" in
  select)
    [ -f ".fake-workspace-$4" ] && exit 0
    echo "Workspace \"$4\" doesn't exist." >&2
    exit 1 ;;
  new)
    touch ".fake-workspace-$4"
    echo "Created and switched to workspace \"$4\"!"
    exit 0 ;;
  esac ;;
output)
  cat fake-output.json
  exit 0 ;;
plan)
  stream fake-plan.jsonl
  exit "$(cat fake-plan-exit 2>/dev/null || echo 0)" ;;
show)
  [ -f fake-show.json ] && { cat fake-show.json; exit 0; }
  echo "fake tofu: no saved plan to show" >&2
  exit 1 ;;
apply|destroy)
  env | grep '^TF_' | sort > fake-env
  [ -f fake-leak ] && echo "debug: password=$TF_VAR_password secret=$TF_VAR_secret" >&2
  if [ -f fake-hang ]; then
    trap 'echo INT >> fake-sigint; cat fake-interrupted.jsonl; exit 1' INT
  fi
  stream fake-apply.jsonl
  if [ -f fake-hang ]; then
    touch fake-ready
    while :; do sleep 0.05; done
  fi
  exit "$(cat fake-exit 2>/dev/null || echo 0)" ;;
esac
echo "fake tofu: unexpected arguments: $*" >&2
exit 2
"#;

fn fixture(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tofu");
    let path = [dir.join(name), dir.join("recorded").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no fixture {name}"));
    std::fs::read_to_string(path).unwrap()
}

/// A project with the fake `tofu` in its own `bin/`.
struct Tf {
    p: Project,
    bin: PathBuf,
}

impl Tf {
    fn new() -> Tf {
        let p = Project::new();
        let bin = p.root().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tofu = bin.join("tofu");
        std::fs::write(&tofu, FAKE_TOFU).unwrap();
        chmod_x(&tofu);
        Tf { p, bin }
    }

    /// A root module for stack `name` under `stacks/<name>` that applies `stream`.
    fn stack(&self, id: &str, name: &str, stream: &str, exit: i32) -> PathBuf {
        let dir = self.p.deployment_dir(id).join("stacks").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("main.tf"),
            "resource \"terraform_data\" \"x\" {}\n",
        )
        .unwrap();
        std::fs::write(dir.join("fake-apply.jsonl"), stream).unwrap();
        std::fs::write(dir.join("fake-exit"), exit.to_string()).unwrap();
        dir
    }

    /// `cloud` with the fake as CLOUD_TERRAFORM_BIN.
    fn cloud(&self) -> assert_cmd::Command {
        let mut cmd = self.p.cmd();
        cmd.env("CLOUD_TERRAFORM_BIN", self.bin.join("tofu"));
        cmd
    }

    /// `cloud ARGS` with the fake as CLOUD_TERRAFORM_BIN.
    fn cmd(&self, args: &[&str]) -> Output {
        self.cloud().args(args).output().unwrap()
    }

    fn deploy(&self, id: &str) -> (i32, Vec<Value>, Output) {
        deploy_json_with(self.cloud(), id, &[])
    }
}

fn about<'a>(events: &'a [Value], stack: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["data"]["stack"] == stack)
        .collect()
}

/// `(type, urn, id)` of a stack's resource events, in order.
fn resource_events(events: &[Value], stack: &str) -> Vec<(String, String, Option<String>)> {
    about(events, stack)
        .into_iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("resource_"))
        .map(|e| {
            let r = &e["data"]["resource"];
            (
                e["type"].as_str().unwrap().to_owned(),
                r["urn"].as_str().unwrap().to_owned(),
                r["id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn only<'a>(events: &'a [Value], kind: &str, stack: &str) -> &'a Value {
    let found: Vec<&Value> = about(events, stack)
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} for {stack}: {found:?}");
    &found[0]["data"]
}

type Expected = &'static [(&'static str, &'static str, Option<&'static str>)];

/// What each recorded stream must become: `(event, urn, id)`, in order.
const STREAMS: &[(&str, Expected)] = &[
    (
        "fully_populated_complex.jsonl",
        &[
            (
                "resource_creating",
                "tfcoremock_complex_resource.complex",
                None,
            ),
            (
                "resource_created",
                "tfcoremock_complex_resource.complex",
                Some("64564E36-BFCB-458B-9405-EBBF6A3CAC7A"),
            ),
        ],
    ),
    (
        "fully_populated_complex_update.jsonl",
        &[
            (
                "resource_updating",
                "tfcoremock_complex_resource.complex",
                Some("64564E36-BFCB-458B-9405-EBBF6A3CAC7A"),
            ),
            (
                "resource_updated",
                "tfcoremock_complex_resource.complex",
                Some("64564E36-BFCB-458B-9405-EBBF6A3CAC7A"),
            ),
        ],
    ),
    (
        "fully_populated_complex_destroy.jsonl",
        &[
            (
                "resource_deleting",
                "tfcoremock_complex_resource.complex",
                Some("64564E36-BFCB-458B-9405-EBBF6A3CAC7A"),
            ),
            (
                "resource_deleted",
                "tfcoremock_complex_resource.complex",
                None,
            ),
        ],
    ),
    (
        // One resource replaced (the old object destroyed, then the new one created): one
        // resource updating, then updated once both halves are done.
        "replace_within_list.jsonl",
        &[
            (
                "resource_updating",
                "tfcoremock_list.list",
                Some("F40F2AB4-100C-4AE8-BFD0-BF332A158415"),
            ),
            (
                "resource_updated",
                "tfcoremock_list.list",
                Some("F40F2AB4-100C-4AE8-BFD0-BF332A158415"),
            ),
        ],
    ),
    (
        "local_provider_delete.jsonl",
        &[
            (
                "resource_deleting",
                "local_file.local_file",
                Some("2248ee2fa0aaaad99178531f924bf00b4b0a8f4e"),
            ),
            ("resource_deleted", "local_file.local_file", None),
        ],
    ),
    (
        "moved_with_drift.jsonl",
        &[
            (
                "resource_updating",
                "tfcoremock_simple_resource.base_after",
                Some("e450ef2f-b80f-0cce-8bdb-14d88f48649c"),
            ),
            (
                "resource_updated",
                "tfcoremock_simple_resource.base_after",
                Some("e450ef2f-b80f-0cce-8bdb-14d88f48649c"),
            ),
            (
                "resource_updating",
                "tfcoremock_simple_resource.dependent",
                Some("2ecc718c-8d04-5774-5c36-7d69bf77d34e"),
            ),
            (
                "resource_updated",
                "tfcoremock_simple_resource.dependent",
                Some("2ecc718c-8d04-5774-5c36-7d69bf77d34e"),
            ),
        ],
    ),
    (
        "drift_simple.jsonl",
        &[
            (
                "resource_updating",
                "tfcoremock_simple_resource.drift",
                Some("f3c6ddc5-37d5-0170-64ff-518ad421385a"),
            ),
            (
                "resource_updated",
                "tfcoremock_simple_resource.drift",
                Some("f3c6ddc5-37d5-0170-64ff-518ad421385a"),
            ),
        ],
    ),
    (
        "apply-with-warning.jsonl",
        &[
            ("resource_creating", "test_instance.foo", None),
            ("resource_created", "test_instance.foo", None),
        ],
    ),
    // A plan: the data source read is no resource, nothing is applied.
    ("plan.jsonl", &[]),
    (
        // Terraform 1.11.4: a module and for_each keys; two resources named `a` stay apart.
        "modules-and-outputs.jsonl",
        &[
            ("resource_creating", "module.m.terraform_data.a", None),
            (
                "resource_created",
                "module.m.terraform_data.a",
                Some("c868773e-3f00-5aa6-97f4-85a052ff7c80"),
            ),
            ("resource_creating", "terraform_data.b[\"k2\"]", None),
            (
                "resource_created",
                "terraform_data.b[\"k2\"]",
                Some("962374c4-bc52-812a-839f-7539a13c9645"),
            ),
            ("resource_creating", "terraform_data.a", None),
            (
                "resource_created",
                "terraform_data.a",
                Some("34f04850-6ecc-5af3-a706-48dc242b45a0"),
            ),
            ("resource_creating", "terraform_data.b[\"k1\"]", None),
            (
                "resource_created",
                "terraform_data.b[\"k1\"]",
                Some("9fa9eb22-6fe6-62a5-8e44-554e0550d0d6"),
            ),
        ],
    ),
    (
        // Terraform 1.11.4: `cbd` replaced create-before-destroy, `dtc` and `slow`
        // destroy-then-create; `slow` takes 11 s. Each is one resource replaced, done when both
        // its halves are.
        "replace-both-ways.jsonl",
        &[
            ("resource_updating", "terraform_data.cbd", None),
            (
                "resource_updating",
                "terraform_data.slow",
                Some("79716a20-bddb-b18f-469a-ba703730698e"),
            ),
            (
                "resource_updating",
                "terraform_data.dtc",
                Some("2aa4b16d-75bb-57c2-972f-cfbf59916ccd"),
            ),
            (
                "resource_updated",
                "terraform_data.cbd",
                Some("5816971a-4a69-c41b-35aa-0082f457cc41"),
            ),
            (
                "resource_updated",
                "terraform_data.dtc",
                Some("928b0e4d-d001-659c-2ce7-1cd30180a80b"),
            ),
            (
                "resource_updated",
                "terraform_data.slow",
                Some("455fdeb7-7706-fc52-cd23-c83e2101cc25"),
            ),
        ],
    ),
];

fn stack_name(fixture: &str) -> String {
    fixture
        .trim_end_matches(".jsonl")
        .replace('_', "-")
        .to_lowercase()
}

/// The add/change/remove counts of the stream's last apply or destroy `change_summary`.
fn summary(stream: &str) -> Option<(u64, u64, u64)> {
    stream
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["type"] == "change_summary" && m["changes"]["operation"] != "plan")
        .map(|m| {
            let c = &m["changes"];
            let n = |k: &str| c[k].as_u64().unwrap();
            (n("add"), n("change"), n("remove"))
        })
        .next()
}

#[test]
fn every_recorded_stream_becomes_the_events_it_describes() {
    let tf = Tf::new();
    let mut yaml = String::from("environments: [dev]\nstacks:\n");
    for (file, _) in STREAMS {
        let name = stack_name(file);
        let dir = tf.stack("REC", &name, &fixture(file), 0);
        // What `output -json` says after the apply (the stream masks sensitive values).
        std::fs::write(
            dir.join("fake-output.json"),
            r#"{"secret": {"sensitive": true, "type": "string", "value": "s"}}"#,
        )
        .unwrap();
        yaml.push_str(&format!(
            "  {name}:\n    executor: terraform\n    path: stacks/{name}\n"
        ));
    }
    tf.p.manifest("REC", &yaml);
    let (code, events, output) = tf.deploy("REC");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
    assert_gap_free(&events);

    for (file, expected) in STREAMS {
        let stack = stack_name(file);
        let got = resource_events(&events, &stack);
        let want: Vec<(String, String, Option<String>)> = expected
            .iter()
            .map(|(t, u, id)| (t.to_string(), u.to_string(), id.map(str::to_owned)))
            .collect();
        assert_eq!(got, want, "{file}");

        // Every resource event carries its type, the full address and, as name, the address.
        for e in about(&events, &stack)
            .into_iter()
            .filter(|e| e["type"].as_str().unwrap().starts_with("resource_"))
        {
            let r = &e["data"]["resource"];
            let address = r["address"].as_str().expect("resource.address");
            assert_eq!(r["urn"], r["name"], "{file}: {r}");
            assert_eq!(r["urn"], address, "{file}: {r}");
            let type_ = r["type"].as_str().unwrap();
            assert!(address.contains(&format!("{type_}.")), "{file}: {r}");
        }

        // The stack's counts are the stream's own; a replacement, which Terraform counts as
        // one added and one destroyed, is one replaced.
        let deployed = only(&events, "stack_deployed", &stack);
        let count = |kind: &str| got.iter().filter(|(t, _, _)| t == kind).count() as u64;
        let replaced = about(&events, &stack)
            .iter()
            .filter(|e| e["type"] == "resource_updated" && e["data"]["action"] == "replace")
            .count() as u64;
        let or_zero = |v: &Value| v.as_u64().unwrap_or(0);
        match summary(&fixture(file)) {
            Some((add, change, remove)) => {
                assert_eq!(deployed["resourcesCreated"], add - replaced, "{file}");
                assert_eq!(deployed["resourcesUpdated"], change, "{file}");
                assert_eq!(or_zero(&deployed["resourcesReplaced"]), replaced, "{file}");
                assert_eq!(
                    or_zero(&deployed["resourcesDeleted"]),
                    remove - replaced,
                    "{file}"
                );
                assert_eq!(count("resource_deleted"), remove - replaced, "{file}");
                assert_eq!(count("resource_created"), add - replaced, "{file}");
            }
            None => assert!(got.is_empty(), "{file}"),
        }
        let said = log_messages(&events, &stack, Some("info"));
        if let Some(line) = fixture(file)
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m["type"] == "change_summary")
        {
            let message = line["@message"].as_str().unwrap();
            assert!(said.iter().any(|l| l == message), "{file}: {said:?}");
        }

        // The percent is finished / planned operations, never backwards, 99 at the end.
        let percents: Vec<u64> = about(&events, &stack)
            .into_iter()
            .filter(|e| e["type"] == "stack_progress")
            .filter_map(|e| e["data"]["progressPercent"].as_u64())
            .collect();
        assert!(
            percents.windows(2).all(|w| w[0] <= w[1]),
            "{file}: {percents:?}"
        );
        if !expected.is_empty() {
            assert_eq!(percents.last(), Some(&99), "{file}: {percents:?}");
        }
        let warnings = log_messages(&events, &stack, Some("warn"));
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
    }

    // The replacement shows halfway, and the long create its elapsed time.
    let replace = about(&events, "replace-within-list");
    assert!(replace
        .iter()
        .any(|e| e["type"] == "stack_progress" && e["data"]["progressPercent"] == 50));
    assert!(about(&events, "replace-both-ways")
        .iter()
        .any(|e| e["type"] == "stack_progress"
            && e["data"]["message"] == "terraform_data.slow: Still creating... [10s elapsed]"));
    // Every stack ran init, the workspace (created), then apply with -json.
    let calls = std::fs::read_to_string(
        tf.p.deployment_dir("REC")
            .join("stacks/drift-simple/fake-calls"),
    )
    .unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "init -input=false -no-color",
            "workspace select -no-color dev",
            "workspace new -no-color dev",
            "apply -auto-approve -input=false -json",
        ]
    );
}

#[test]
fn a_failed_apply_reports_the_diagnostic_not_the_exit_status() {
    let tf = Tf::new();
    tf.stack("FAIL", "storage", &fixture("apply-errored.jsonl"), 1);
    tf.stack("FAIL", "denied", &fixture("apply-denied.jsonl"), 1);
    let init = tf.stack("FAIL", "init", "", 0);
    std::fs::write(init.join("fake-init-fails"), "").unwrap();
    tf.p.manifest(
        "FAIL",
        "environments: [dev]\ndefaults: { executor: terraform }\nstacks:\n  storage: { path: stacks/storage }\n  denied: { path: stacks/denied }\n  init: { path: stacks/init }\n  after: { path: stacks/storage, dependencies: [storage] }\n",
    );
    let (code, events, _) = tf.deploy("FAIL");
    assert_eq!(code, 1);

    let message = "creating S3 Bucket Policy (logs-bucket-123): MalformedPolicy: Policy has invalid resource: The policy names a resource outside the bucket: arn:aws:s3:::other-bucket/*";
    let failed = only(&events, "stack_failed", "storage");
    assert_eq!(failed["error"]["code"], "TERRAFORM_ERROR");
    assert_eq!(failed["error"]["message"], message);
    let details = failed["error"]["details"].as_str().unwrap();
    assert!(details.contains("exited with status 1"), "{details}");
    assert!(details.contains("at module.storage.aws_s3_bucket_policy.logs"));
    assert_eq!(
        resource_events(&events, "storage"),
        [
            (
                "resource_creating".into(),
                "aws_s3_bucket.logs".into(),
                None
            ),
            (
                "resource_created".into(),
                "aws_s3_bucket.logs".into(),
                Some("logs-bucket-123".into())
            ),
            (
                "resource_creating".into(),
                "module.storage.aws_s3_bucket_policy.logs".into(),
                None
            ),
            (
                "resource_failed".into(),
                "module.storage.aws_s3_bucket_policy.logs".into(),
                None
            ),
        ]
    );
    let resource_failed = only(&events, "resource_failed", "storage");
    assert_eq!(resource_failed["error"]["message"], message);
    assert_eq!(
        resource_failed["resource"]["address"],
        "module.storage.aws_s3_bucket_policy.logs"
    );
    assert_eq!(resource_failed["resource"]["type"], "aws_s3_bucket_policy");
    // The warning before the apply, and the operation's elapsed time while it ran.
    assert_eq!(
        log_messages(&events, "storage", Some("warn")),
        ["aws_s3_bucket.logs: Argument is deprecated: Use the aws_s3_bucket_versioning resource instead."]
    );
    assert!(about(&events, "storage")
        .iter()
        .any(|e| e["data"]["message"]
            == "module.storage.aws_s3_bucket_policy.logs: Still creating... [10s elapsed]"));
    assert_eq!(
        only(&events, "stack_blocked", "after")["blockedBy"],
        "storage"
    );

    // Real Terraform, access denied: the error names the permission, with its code.
    let denied = only(&events, "stack_failed", "denied");
    assert_eq!(denied["error"]["code"], "INSUFFICIENT_PERMISSIONS");
    assert_eq!(
        denied["error"]["message"],
        "local-exec provisioner error: Error running command 'echo 'AccessDenied: User arn:aws:iam::1:user/x is not authorized to perform: s3:CreateBucket' >&2; exit 3': exit status 3. Output: AccessDenied: User arn:aws:iam::1:user/x is not authorized to perform: s3:CreateBucket"
    );
    let bad = only(&events, "resource_failed", "denied");
    assert_eq!(bad["resource"]["urn"], "terraform_data.bad");
    assert_eq!(bad["error"]["code"], "INSUFFICIENT_PERMISSIONS");
    let done: Vec<String> = resource_events(&events, "denied")
        .into_iter()
        .filter(|(t, _, _)| t == "resource_created")
        .map(|(_, u, _)| u)
        .collect();
    assert_eq!(done, ["terraform_data.ok", "terraform_data.slow"]);
    assert!(log_messages(&events, "denied", Some("info"))
        .iter()
        .any(|l| l.starts_with("terraform_data.bad: (local-exec): AccessDenied")));

    // A failed init: its own error, from its human-readable output.
    let init = only(&events, "stack_failed", "init");
    assert_eq!(init["error"]["code"], "TERRAFORM_ERROR");
    assert_eq!(
        init["error"]["message"],
        "Failed to query available provider packages: Could not retrieve the list of available versions for provider hashicorp/aws: no available releases match the given constraints ~> 9.0"
    );
    assert!(init["error"]["details"]
        .as_str()
        .unwrap()
        .starts_with("`tofu init -input=false -no-color` exited with status 1"));

    let summary = &of_type(&events, "deployment_failed")[0]["data"];
    assert!(!summary["error"]["message"]
        .as_str()
        .unwrap()
        .contains("exit status 1"));
}

#[test]
fn a_held_state_lock_fails_with_locked_and_names_its_holder() {
    let tf = Tf::new();
    let dir = tf.stack("LOCK", "dns", &fixture("state-locked.jsonl"), 1);
    tf.p.manifest(
        "LOCK",
        "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/dns }\n",
    );
    let (code, events, _) = tf.deploy("LOCK");
    assert_eq!(code, 1);
    let failed = only(&events, "stack_failed", "dns");
    assert_eq!(failed["error"]["code"], "LOCKED");
    assert_eq!(
        failed["error"]["message"],
        "Error acquiring the state lock: held by root@vm (OperationTypeApply, since 2026-11-28 01:25:10 +0000 UTC, lock ID e58d7c1a-c4d6-1ef9-26a0-47499cd81434)"
    );
    let details = failed["error"]["details"].as_str().unwrap();
    assert!(
        details.contains(&format!(
            "release it with `tofu force-unlock e58d7c1a-c4d6-1ef9-26a0-47499cd81434` in {}",
            dir.display()
        )),
        "{details}"
    );
    assert!(resource_events(&events, "dns").is_empty());
}

#[test]
fn sensitive_outputs_are_masked_everywhere_and_inputs_reach_tofu_as_tf_vars() {
    let tf = Tf::new();
    let db = tf.stack("OUT", "db", &fixture("modules-and-outputs.jsonl"), 0);
    // Terraform never prints a sensitive value in the stream: `output -json` has it.
    std::fs::write(
        db.join("fake-output.json"),
        r#"{
  "a_id": { "sensitive": false, "type": "string", "value": "34f04850-6ecc-5af3-a706-48dc242b45a0" },
  "secret": { "sensitive": true, "type": "string", "value": "hunter2-hello" }
}"#,
    )
    .unwrap();
    let app = tf.stack("OUT", "app", &fixture("fully_populated_complex.jsonl"), 0);
    std::fs::write(app.join("fake-leak"), "").unwrap();
    tf.p.manifest(
        "OUT",
        r#"environments: [dev]
stacks:
  db: { executor: terraform, path: stacks/db }
  app:
    executor: terraform
    path: stacks/app
    dependencies: [db]
    inputs:
      a_id: "${db.a_id}"
      secret: "${db.secret}"
      password: "${db.db_password}"
      tags: "${db.tags}"
      port: 5432
"#,
    );
    let (code, events, output) = tf.deploy("OUT");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));

    let outputs = &only(&events, "stack_deployed", "db")["outputs"];
    assert_eq!(
        *outputs,
        serde_json::json!({
            "a_id": "34f04850-6ecc-5af3-a706-48dc242b45a0",
            "secret": "[secret]",
            "db_password": "[secret]",
            "tags": { "env": "dev", "n": "1" },
        })
    );
    // The real values reach the dependent's program, and only it.
    let env = std::fs::read_to_string(app.join("fake-env")).unwrap();
    for line in [
        "TF_IN_AUTOMATION=1",
        "TF_INPUT=0",
        "TF_VAR_a_id=34f04850-6ecc-5af3-a706-48dc242b45a0",
        "TF_VAR_secret=hunter2-hello",
        "TF_VAR_password=pw-from-the-stream-7731",
        r#"TF_VAR_tags={"env":"dev","n":"1"}"#,
        "TF_VAR_port=5432",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in {env}");
    }
    assert_eq!(
        log_messages(&events, "app", Some("warn")),
        ["debug: password=[secret] secret=[secret]"]
    );
    let calls = std::fs::read_to_string(db.join("fake-calls")).unwrap();
    assert!(
        calls.lines().any(|l| l == "output -json -no-color"),
        "{calls}"
    );

    // Nowhere else: not in the events, the journal, the logs, `status` or the verbose view.
    let verbose = tf.cmd(&["deploy", "OUT", "-e", "dev", "--verbose"]);
    assert_eq!(verbose.status.code(), Some(0));
    let status = tf.cmd(&["status", "OUT", "-e", "dev"]);
    let mut shown = String::new();
    for out in [&output, &verbose, &status] {
        shown.push_str(&String::from_utf8_lossy(&out.stdout));
        shown.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    for file in files_under(&tf.p.deployment_dir("OUT")) {
        if !file.starts_with(tf.p.deployment_dir("OUT").join("stacks")) {
            shown.push_str(&std::fs::read_to_string(&file).unwrap_or_default());
        }
    }
    assert!(shown.contains("[secret]"));
    for secret in ["hunter2-hello", "pw-from-the-stream-7731"] {
        assert!(!shown.contains(secret), "{secret} is shown");
    }
}

#[test]
fn ctrl_c_sends_tofu_one_sigint_and_the_stack_is_cancelled() {
    let tf = Tf::new();
    // Real Terraform: three resources start, one finishes; then it waits for SIGINT and
    // answers it as Terraform does (the operations in flight end, diagnostics follow).
    let first: String = fixture("apply-denied.jsonl")
        .lines()
        .take(13)
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tf.stack("INT", "dns", &first, 0);
    std::fs::write(dir.join("fake-hang"), "").unwrap();
    std::fs::write(
        dir.join("fake-interrupted.jsonl"),
        fixture("interrupted.jsonl"),
    )
    .unwrap();
    tf.p.manifest(
        "INT",
        "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/dns }\n",
    );
    let mut child =
        tf.p.process()
            .args([
                "deploy",
                "INT",
                "-e",
                "dev",
                "--output",
                "json",
                "--grace-period",
                "20",
            ])
            .env("CLOUD_TERRAFORM_BIN", tf.bin.join("tofu"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let ready = dir.join("fake-ready");
    if !poll_until(30, || ready.exists()) {
        let _ = child.kill();
        panic!("the fake tofu never finished its stream");
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    // One SIGINT: Terraform stops gracefully (a second would make it give up on its state).
    assert_eq!(
        std::fs::read_to_string(dir.join("fake-sigint")).unwrap(),
        "INT\n"
    );
    let events = parse_events(&output.stdout);
    assert_eq!(
        events,
        tf.p.journal("INT", "dev"),
        "stdout and journal agree"
    );
    let failed = only(&events, "stack_failed", "dns");
    assert_eq!(failed["error"]["code"], "CANCELLED");
    assert!(log_messages(&events, "dns", Some("info"))
        .iter()
        .any(|l| l == "Interrupt received."));
    // The operation Terraform stopped fails with its own words; the one it never reported
    // ending fails with the stack, still named by its address.
    let failed: Vec<(String, String, String)> = about(&events, "dns")
        .into_iter()
        .filter(|e| e["type"] == "resource_failed")
        .map(|e| {
            let d = &e["data"];
            (
                d["resource"]["address"].as_str().unwrap().to_owned(),
                d["error"]["code"].as_str().unwrap().to_owned(),
                d["error"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [
            (
                "terraform_data.slow".to_owned(),
                "TERRAFORM_ERROR".to_owned(),
                "local-exec provisioner error: Error running command 'sleep 4': signal: interrupt. Output:".to_owned()
            ),
            (
                "terraform_data.bad".to_owned(),
                "CANCELLED".to_owned(),
                "the run was interrupted".to_owned()
            ),
        ]
    );
    let last = events.last().unwrap();
    assert_eq!(last["data"]["cancelled"], true);
}

#[test]
fn init_runs_when_needed_and_the_workspace_is_created_once() {
    let tf = Tf::new();
    let stream = fixture("drift_simple.jsonl");
    let dns = tf.stack("WS", "dns", &stream, 0);
    std::fs::write(dns.join("common.tfvars"), "a = 1\n").unwrap();
    std::fs::write(dns.join("dev.tfvars"), "b = 2\n").unwrap();
    let shared = tf.stack("WS", "shared", &stream, 0);
    tf.p.manifest(
        "WS",
        r#"environments: [dev]
stacks:
  dns:
    executor: terraform
    path: stacks/dns
    varFiles: [common.tfvars, "${environment}.tfvars"]
  shared:
    executor: terraform
    path: stacks/shared
    workspace: false
"#,
    );
    // No CLOUD_TERRAFORM_BIN: `tofu` is found on PATH.
    let path = format!("{}:/usr/bin:/bin", tf.bin.display());
    let deploy = || {
        let out =
            tf.p.cmd()
                .env("PATH", &path)
                .env_remove("CLOUD_TERRAFORM_BIN")
                .args(["deploy", "WS", "-e", "dev", "--output", "json"])
                .output()
                .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        parse_events(&out.stdout)
    };
    let calls = |dir: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("fake-calls")).unwrap();
        std::fs::remove_file(dir.join("fake-calls")).unwrap();
        text.lines().map(str::to_owned).collect()
    };
    let apply =
        "apply -auto-approve -input=false -json -var-file=common.tfvars -var-file=dev.tfvars";

    let events = deploy();
    assert_eq!(
        calls(&dns),
        [
            "init -input=false -no-color",
            "workspace select -no-color dev",
            "workspace new -no-color dev",
            apply
        ]
    );
    assert_eq!(
        calls(&shared),
        [
            "init -input=false -no-color",
            "apply -auto-approve -input=false -json"
        ]
    );
    let said = log_messages(&events, "dns", Some("info"));
    assert!(
        said.contains(&"tofu init -input=false (no .terraform folder yet)".to_owned()),
        "{said:?}"
    );
    assert!(said.contains(&format!("tofu {apply}")), "{said:?}");

    // Initialized, the workspace exists: straight to apply.
    deploy();
    assert_eq!(calls(&dns), ["workspace select -no-color dev", apply]);

    // The dependency lock file changed (e.g. a provider upgrade): init again.
    let lock = std::fs::File::create(dns.join(".terraform.lock.hcl")).unwrap();
    lock.set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    let events = deploy();
    assert_eq!(
        calls(&dns),
        [
            "init -input=false -no-color",
            "workspace select -no-color dev",
            apply
        ]
    );
    assert!(log_messages(&events, "dns", Some("info")).contains(
        &"tofu init -input=false (.terraform.lock.hcl changed since the last init)".to_owned()
    ));
}

#[test]
fn validate_names_a_missing_program_a_folder_without_tf_files_and_bad_keys() {
    let tf = Tf::new();
    let dir = tf.stack("V", "dns", "", 0);
    let empty = tf.p.deployment_dir("V").join("stacks/empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("README.md"), "no configuration here\n").unwrap();
    let validate = |yaml: &str, path: &str, bin: Option<&Path>| {
        tf.p.manifest("V", yaml);
        let mut cmd = tf.p.cmd();
        cmd.env("PATH", path).args(["validate", "V"]);
        match bin {
            Some(b) => cmd.env("CLOUD_TERRAFORM_BIN", b),
            None => cmd.env_remove("CLOUD_TERRAFORM_BIN"),
        };
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let nothing = tf.p.root().join("no-programs");
    std::fs::create_dir_all(&nothing).unwrap();
    let nothing = nothing.to_str().unwrap();
    let fake = tf.bin.to_str().unwrap();
    let ok = "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/dns }\n";

    let (code, err) = validate(ok, fake, None);
    assert_eq!(code, Some(0), "{err}");

    let (code, err) = validate(ok, nothing, None);
    assert_eq!(code, Some(2));
    assert!(err.contains("stack `dns` needs OpenTofu or Terraform, but neither `tofu` nor `terraform` is on PATH"), "{err}");
    assert!(err.contains("help: install OpenTofu"), "{err}");

    let missing = tf.p.root().join("nowhere/tofu");
    let (code, err) = validate(ok, fake, Some(&missing));
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "CLOUD_TERRAFORM_BIN is `{}`, which does not exist or is not executable",
            missing.display()
        )),
        "{err}"
    );

    let (code, err) = validate(
        "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/dns, binary: terraform }\n",
        fake,
        None,
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("stack `dns` runs `terraform` (`binary: terraform`), which is not on PATH"),
        "{err}"
    );

    let (code, err) = validate(
        "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/empty }\n",
        fake,
        None,
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!("stack `dns` has no OpenTofu/Terraform configuration: {} holds no `*.tf` or `*.tofu` files", empty.display())),
        "{err}"
    );
    assert!(
        err.contains("point `path:` of `dns` at its root module"),
        "{err}"
    );

    let (code, err) = validate(
        "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/dns, varFiles: [prod.tfvars] }\n",
        fake,
        None,
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "var file `prod.tfvars` of stack `dns` does not exist: {}",
            dir.join("prod.tfvars").display()
        )),
        "{err}"
    );

    // Keys, with where they are written (line 3, at `token`).
    for (yaml, want, token) in [
        (
            "  dns: { executor: terraform }\n",
            "terraform stack `dns` has no `path`",
            "dns",
        ),
        (
            "  dns: { executor: terraform, path: stacks/dns, binary: terrafrom }\n",
            "`binary` of stack `dns` must be `tofu` or `terraform`, found `terrafrom`",
            "terrafrom",
        ),
        (
            "  dns: { executor: terraform, path: stacks/dns, workspace: \"no\" }\n",
            "`workspace` of stack `dns` must be true or false, found a string",
            "\"no\"",
        ),
        (
            "  dns: { executor: terraform, path: stacks/dns, varFiles: dev.tfvars }\n",
            "`varFiles` of stack `dns` must be a list of files, found a string",
            "dev.tfvars",
        ),
        (
            "  dns: { executor: terraform, path: stacks/dns, varFiles: [\"${env}.tfvars\"] }\n",
            "var file `${env}.tfvars` of stack `dns` uses an unknown `${…}`",
            "\"${env}",
        ),
        (
            "  dns: { executor: command, deploy: x, varFiles: [a] }\n",
            "varFiles",
            "varFiles",
        ),
    ] {
        let (code, err) = validate(&format!("environments: [dev]\nstacks:\n{yaml}"), fake, None);
        assert_eq!(code, Some(2), "{yaml}");
        assert!(err.contains(want), "{yaml}: {err}");
        let column = yaml.find(token).unwrap() + 1;
        assert!(
            err.contains(&format!("deployment.yaml:3:{column}")),
            "{yaml}: {err}"
        );
    }
    let (_, err) = validate(
        "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/dns, binary: terrafrom }\n",
        fake,
        None,
    );
    assert!(err.contains("did you mean `terraform`?"), "{err}");
}

#[test]
fn the_readmes_mixed_deployment_passes_outputs_from_simulate_through_terraform_to_command() {
    let tf = Tf::new();
    tf.p.manifest(
        "DEMO",
        r#"environments: [dev, prod]
stacks:
  network:
    executor: simulate
    resources:
      - { type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0.2, id: vpc-0a1b2c }
    outputs: { vpcId: vpc-0a1b2c }
  dns:
    executor: terraform                      # OpenTofu (or Terraform) root module
    dependencies: [network]
    path: stacks/dns
    varFiles: ["${environment}.tfvars"]      # -var-file=dev.tfvars
    inputs: { vpc_id: "${network.vpcId}" }   # TF_VAR_vpc_id
  app:
    executor: command
    dependencies: [dns]
    path: stacks/app
    deploy: ./deploy.sh
    inputs: { zone: "${dns.zone_id}" }       # CLOUD_INPUT_ZONE
"#,
    );
    // What Terraform 1.11.4 printed applying the README's module.
    let dns = tf.stack("DEMO", "dns", &fixture("readme-dns.jsonl"), 0);
    std::fs::write(dns.join("dev.tfvars"), "domain = \"dev.example.com\"\n").unwrap();
    let script = tf.p.file(
        "DEMO",
        "stacks/app/deploy.sh",
        "#!/bin/sh\necho \"deploying into zone $CLOUD_INPUT_ZONE\"\n",
    );
    chmod_x(&script);
    let (code, events, output) = tf.deploy("DEMO");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
    let env = std::fs::read_to_string(dns.join("fake-env")).unwrap();
    assert!(
        env.lines().any(|l| l == "TF_VAR_vpc_id=vpc-0a1b2c"),
        "{env}"
    );
    let calls = std::fs::read_to_string(dns.join("fake-calls")).unwrap();
    assert!(
        calls
            .lines()
            .any(|l| l.ends_with("-json -var-file=dev.tfvars")),
        "{calls}"
    );
    assert_eq!(
        only(&events, "stack_deployed", "dns")["outputs"],
        serde_json::json!({ "zone_id": "10f7128b-a61a-1e7d-2f59-eeedea69ae3d" })
    );
    assert_eq!(
        log_messages(&events, "app", Some("info")),
        ["deploying into zone 10f7128b-a61a-1e7d-2f59-eeedea69ae3d"]
    );
    let layers: Vec<u64> = ["network", "dns", "app"]
        .iter()
        .map(|s| {
            only(&events, "stack_deploying", s)["layer"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(layers, [1, 2, 3]);
    assert_eq!(of_type(&events, "stack_deployed").len(), 3);
}

/// The real program, when this machine has one (`terraform` or `tofu` on PATH): the README's
/// module (built-in resources only, so nothing is downloaded) deployed, deployed again
/// (skipped), then destroyed. Without either program it is skipped, loudly.
#[test]
fn a_real_terraform_deploys_skips_and_destroys_the_readmes_module() {
    let Some(binary) = ["tofu", "terraform"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        eprintln!("\n*** SKIPPED: neither tofu nor terraform is installed ***\n");
        return;
    };
    let p = Project::new();
    p.manifest(
        "REAL",
        &format!(
            r#"environments: [dev]
stacks:
  network:
    executor: simulate
    resources: [{{ type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0, id: vpc-0a1b2c }}]
    outputs: {{ vpcId: vpc-0a1b2c }}
  dns:
    executor: terraform
    binary: {binary}
    dependencies: [network]
    path: stacks/dns
    varFiles: ["${{environment}}.tfvars"]
    inputs: {{ vpc_id: "${{network.vpcId}}" }}
  app:
    executor: command
    dependencies: [dns]
    deploy: echo "zone $CLOUD_INPUT_ZONE"
    destroy: echo gone
    inputs: {{ zone: "${{dns.zone_id}}" }}
"#
        ),
    );
    p.file(
        "REAL",
        "stacks/dns/main.tf",
        r#"variable "vpc_id" { type = string }
variable "domain" { type = string }
resource "terraform_data" "zone" { input = "${var.domain} in ${var.vpc_id}" }
output "zone_id" { value = terraform_data.zone.id }
"#,
    );
    p.file(
        "REAL",
        "stacks/dns/dev.tfvars",
        "domain = \"dev.example.com\"\n",
    );
    let run = |args: &[&str]| {
        let out = p
            .cmd()
            .args(args)
            .env_remove("CLOUD_TERRAFORM_BIN")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .unwrap();
        let events = parse_events(&out.stdout);
        (
            out.status.code(),
            events,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, events, err) = run(&["deploy", "REAL", "-e", "dev", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let created = only(&events, "resource_created", "dns");
    assert_eq!(created["resource"]["address"], "terraform_data.zone");
    let zone = created["resource"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        only(&events, "stack_deployed", "dns")["outputs"]["zone_id"],
        zone.as_str()
    );
    assert_eq!(
        log_messages(&events, "app", Some("info")),
        [format!("zone {zone}")]
    );
    // The workspace is `dev`, its state where Terraform keeps workspaces.
    let state = p
        .deployment_dir("REAL")
        .join("stacks/dns/terraform.tfstate.d/dev/terraform.tfstate");
    assert!(std::fs::read_to_string(&state).unwrap().contains(&zone));

    // Nothing changed: every stack is skipped, Terraform is not run.
    let (code, events, err) = run(&["deploy", "REAL", "-e", "dev", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(of_type(&events, "stack_skipped").len(), 3);

    let (code, events, err) = run(&["destroy", "REAL", "-e", "dev", "--yes", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let order: Vec<&str> = of_type(&events, "stack_destroyed")
        .iter()
        .map(|e| e["data"]["stack"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["app", "dns", "network"]);
    assert_eq!(
        only(&events, "resource_deleted", "dns")["resource"]["address"],
        "terraform_data.zone"
    );
    assert!(!std::fs::read_to_string(&state).unwrap().contains(&zone));
}

/// One operation of a Terraform stack's executor, driven directly (`cloud plan` is not a
/// command yet, issue 19): what it ended with and every update it sent.
fn run_real(
    op: &str,
    stack: &std::sync::Arc<cloud::executor::terraform::TerraformStack>,
    dir: &Path,
    name: &str,
) -> (
    cloud::executor::Outcome,
    Vec<cloud::executor::ExecutorUpdate>,
) {
    use cloud::executor::{Job, Message, StackExecutor, Updates};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let job = Job {
        inputs: [(
            "name".to_owned(),
            cloud::manifest::InputValue {
                value: name.into(),
                secret: false,
            },
        )]
        .into(),
        ..cloud::testing::job("PLAN", "dns", dir, &dir.join("scratch"))
    };
    let updates = Updates::new(0, tx, Default::default());
    let stack = std::sync::Arc::clone(stack);
    let future = match op {
        "plan" => stack.plan(job, updates).expect("terraform stacks plan"),
        _ => stack.deploy(job, updates),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(future);
    let mut sent = Vec::new();
    while let Ok((_, Message::Update(u))) = rx.try_recv() {
        sent.push(u);
    }
    (outcome, sent)
}

/// (address, action) of each resource planned, and the plan's summary.
fn plan_parts(
    sent: &[cloud::executor::ExecutorUpdate],
) -> (
    Vec<(String, cloud::event::PlanAction)>,
    cloud::event::PlanSummary,
) {
    use cloud::executor::ExecutorUpdate;
    let planned = sent
        .iter()
        .filter_map(|u| match u {
            ExecutorUpdate::Planned { urn, action, .. } => Some((urn.clone(), *action)),
            _ => None,
        })
        .collect();
    let summaries: Vec<_> = sent
        .iter()
        .filter_map(|u| match u {
            ExecutorUpdate::PlanSummary(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(summaries.len(), 1, "one summary: {sent:?}");
    (planned, summaries.into_iter().next().unwrap())
}

/// The real program plans a new stack (+2), nothing after it is applied, then an update and a
/// replacement when its input changes; planning changes nothing (the same plan twice).
#[test]
fn a_real_terraform_plans_new_unchanged_and_changed_stacks() {
    use cloud::event::{PlanAction::*, PlanCounts};
    let Some(binary) = real_terraform() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        r#"variable "name" { type = string }
resource "terraform_data" "one" { input = var.name }
resource "terraform_data" "two" { triggers_replace = [var.name] }
output "id" { value = terraform_data.two.id }
output "name" { value = var.name }
"#,
    )
    .unwrap();
    let stack = std::sync::Arc::new(cloud::executor::terraform::TerraformStack {
        binary: Some(binary.to_owned()),
        workspace: true,
        var_files: vec![],
    });

    let (outcome, sent) = run_real("plan", &stack, dir.path(), "a");
    assert_eq!(outcome, Ok(Default::default()), "{sent:?}");
    let (planned, plan) = plan_parts(&sent);
    let mut planned_sorted = planned.clone();
    planned_sorted.sort();
    assert_eq!(
        planned_sorted,
        [
            ("terraform_data.one".to_owned(), Create),
            ("terraform_data.two".to_owned(), Create)
        ]
    );
    assert_eq!(
        plan.counts,
        PlanCounts {
            add: 2,
            ..Default::default()
        }
    );
    assert!(plan.changes);
    assert_eq!(plan.changed_outputs, ["id", "name"]);
    // `name` is the input; the new object's id only the apply knows.
    assert_eq!(plan.known_after_apply, ["id"]);
    let file = PathBuf::from(plan.plan_file.expect("the saved plan"));
    assert!(file.is_file(), "{}", file.display());

    let (outcome, sent) = run_real("deploy", &stack, dir.path(), "a");
    assert!(outcome.is_ok(), "{outcome:?} {sent:?}");

    let (outcome, sent) = run_real("plan", &stack, dir.path(), "a");
    assert_eq!(outcome, Ok(Default::default()), "{sent:?}");
    let (planned, plan) = plan_parts(&sent);
    assert_eq!(planned, []);
    assert_eq!(plan.counts, PlanCounts::default());
    assert!(!plan.changes);
    assert!(plan.known_after_apply.is_empty());

    for _ in 0..2 {
        let (outcome, sent) = run_real("plan", &stack, dir.path(), "b");
        assert_eq!(outcome, Ok(Default::default()), "{sent:?}");
        let (mut planned, plan) = plan_parts(&sent);
        planned.sort();
        assert_eq!(
            planned,
            [
                ("terraform_data.one".to_owned(), Update),
                ("terraform_data.two".to_owned(), Replace)
            ]
        );
        assert_eq!(
            plan.counts,
            PlanCounts {
                add: 1,
                change: 1,
                destroy: 1,
                replace: 1,
                ..Default::default()
            }
        );
        assert_eq!(plan.known_after_apply, ["id"]);
    }
}

/// A plan the real program refuses fails with its diagnostic, as a deploy does, and plans
/// nothing.
#[test]
fn a_real_terraform_plan_that_fails_says_why_in_its_words() {
    let Some(binary) = real_terraform() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        "resource \"terraform_data\" \"a\" { input = var.missing }\n",
    )
    .unwrap();
    let stack = std::sync::Arc::new(cloud::executor::terraform::TerraformStack {
        binary: Some(binary.to_owned()),
        workspace: false,
        var_files: vec![],
    });
    let (outcome, sent) = run_real("plan", &stack, dir.path(), "a");
    let error = outcome.unwrap_err();
    assert_eq!(error.code, cloud::event::ErrorCode::TerraformError);
    assert!(
        error
            .message
            .starts_with("Reference to undeclared input variable"),
        "{error:?}"
    );
    assert!(error.details.unwrap().contains("exited with status 1"));
    assert!(!sent.iter().any(|u| matches!(
        u,
        cloud::executor::ExecutorUpdate::Planned { .. }
            | cloud::executor::ExecutorUpdate::PlanSummary(_)
    )));
}

#[test]
fn a_replacement_is_one_resource_replaced_and_a_removal_is_counted_destroyed() {
    let tf = Tf::new();
    tf.stack("RPL", "swap", &fixture("replace-both-ways.jsonl"), 0);
    tf.stack("RPL", "dns", &fixture("local_provider_delete.jsonl"), 0);
    tf.p.manifest(
        "RPL",
        "environments: [dev]\nstacks:\n  swap:\n    executor: terraform\n    path: stacks/swap\n  dns:\n    executor: terraform\n    path: stacks/dns\n",
    );
    let (code, events, output) = tf.deploy("RPL");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
    // Each of the three is one resource: updating, then updated with action `replace`.
    let updated: Vec<&Value> = about(&events, "swap")
        .into_iter()
        .filter(|e| e["type"] == "resource_updated")
        .collect();
    assert_eq!(updated.len(), 3);
    assert!(updated.iter().all(|e| e["data"]["action"] == "replace"));
    let swap = only(&events, "stack_deployed", "swap");
    assert_eq!(
        (
            &swap["resourcesCreated"],
            &swap["resourcesUpdated"],
            &swap["resourcesReplaced"]
        ),
        (&Value::from(0), &Value::from(0), &Value::from(3)),
        "{swap}"
    );
    let dns = only(&events, "stack_deployed", "dns");
    assert_eq!(dns["resourcesDeleted"], 1, "{dns}");

    let verbose = tf.cmd(&["deploy", "RPL", "-e", "dev", "--verbose", "--force"]);
    let shown = String::from_utf8_lossy(&verbose.stdout);
    assert!(shown.contains(", 3 replaced)"), "{shown}");
    assert!(shown.contains("Replaced: terraform_data.cbd"), "{shown}");
    assert!(shown.contains(", 1 destroyed)"), "{shown}");
    let logged = String::from_utf8(tf.cmd(&["logs", "RPL", "-e", "dev"]).stdout).unwrap();
    assert!(
        logged.contains("(0 resources created, 0 updated, 3 replaced)"),
        "{logged}"
    );
    assert!(
        logged.contains("(0 resources created, 0 updated, 1 destroyed)"),
        "{logged}"
    );
    assert!(
        logged.contains("Replaced: terraform_data (terraform_data.slow)"),
        "{logged}"
    );
}

/// A drift check through the fake `tofu` replaying recorded streams (`drift_simple.jsonl`,
/// `moved_with_drift.jsonl`: their `planned_change` lines, as a drift check's `plan` prints
/// them for a stack configured as it was deployed). Without `show -json` (the fake has none)
/// the resources are named from the stream alone, and that is said.
#[test]
fn a_drift_check_replays_recorded_streams_through_the_fake_tool() {
    let tf = Tf::new();
    tf.p.manifest(
        "DR",
        "environments: [dev]\nstacks:\n  simple: { executor: terraform, path: stacks/simple }\n  moved: { executor: terraform, path: stacks/moved }\n",
    );
    let planned = |name: &str| -> String {
        fixture(name)
            .lines()
            .filter(|l| l.contains("\"type\":\"planned_change\""))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    for (stack, fixture_name) in [
        ("simple", "drift_simple.jsonl"),
        ("moved", "moved_with_drift.jsonl"),
    ] {
        let dir = tf.stack("DR", stack, "", 0);
        // What the fake writes beside the module is no part of what is deployed.
        std::fs::write(dir.join(".cloudignore"), "fake-*\n.fake-*\n").unwrap();
        std::fs::write(dir.join("fake-plan.jsonl"), planned(fixture_name)).unwrap();
        std::fs::write(dir.join("fake-output.json"), "{}").unwrap();
    }
    let (code, _, out) = tf.deploy("DR");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let out = tf.cmd(&["drift", "DR", "-e", "dev", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = parse_events(&out.stdout);
    let drifted = |stack: &str| -> Vec<String> {
        of_type(&events, "resource_drifted")
            .into_iter()
            .filter(|e| e["data"]["stack"] == stack)
            .map(|e| {
                e["data"]["resource"]["address"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(drifted("simple"), ["tfcoremock_simple_resource.drift"]);
    assert_eq!(
        drifted("moved"),
        [
            "tfcoremock_simple_resource.base_after",
            "tfcoremock_simple_resource.dependent"
        ]
    );
    let warned = log_messages(&events, "simple", Some("warn"));
    assert!(
        warned
            .iter()
            .any(|w| w.contains("named without their attributes")),
        "{warned:?}"
    );
    assert_eq!(
        event_of(&events, "stack_drift_checked", "moved")["data"]["driftedResources"],
        2
    );
}
