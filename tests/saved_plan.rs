//! Saved plans through the real binary: `cloud plan --out DIR` (what it writes, no secret in
//! it), `cloud deploy --plan DIR` (applies exactly that; refuses when the manifest, a stack's
//! files or its inputs changed), `--markdown`, and real Terraform 1.11 applying its saved plan
//! (and a stale one refused in cloud's words).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use common::*;

const TOKEN: &str = "tok-5ecret-value-9137";

/// `network` (simulate) → `app` (command, with a `plan:`, a secret input); `other` stands alone.
const MANIFEST: &str = r#"environments: [dev]
stacks:
  network:
    executor: simulate
    resources:
      - { type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0 }
    outputs: { vpcId: vpc-1 }
  app:
    executor: command
    path: app
    dependencies: [network]
    inputs:
      token: { value: "${env:SAVED_TOKEN}", secret: true }
    deploy: ./deploy.sh
    plan: ./plan.sh
  other:
    executor: command
    path: other
    inputs: { region: "${env:SAVED_REGION}" }
    deploy: echo '{}' > "$CLOUD_OUTPUTS" && echo ran >> ../other-ran.txt
    plan: echo '::cloud::{"resource":{"type":"t:x:Y","name":"thing"},"plan":"create"}'
"#;

/// Plans a policy named after the secret (cloud must mask it), and an old one deleted.
const APP_PLAN: &str = r#"#!/bin/sh
echo "::cloud::{\"resource\":{\"type\":\"aws:iam/policy:Policy\",\"name\":\"for-$CLOUD_INPUT_TOKEN\"},\"plan\":\"create\"}"
echo '::cloud::{"resource":{"type":"aws:iam/policy:Policy","name":"old"},"plan":"delete"}'
echo "planning with $CLOUD_INPUT_TOKEN"
"#;

const APP_DEPLOY: &str = r#"#!/bin/sh
echo ran >> ../app-ran.txt
echo '{"url":"https://app"}' > "$CLOUD_OUTPUTS"
"#;

fn project() -> Project {
    let p = Project::new();
    p.manifest("SP", MANIFEST);
    for (file, text) in [("app/plan.sh", APP_PLAN), ("app/deploy.sh", APP_DEPLOY)] {
        chmod_x(&p.file("SP", file, text));
    }
    p.file("SP", "other/README", "other\n");
    p
}

/// `cloud VERB SP -e dev --output json ARGS`: the exit code, the events, stderr.
fn run(p: &Project, verb: &str, args: &[&str]) -> (i32, Vec<Value>, String) {
    run_in(p, "eu-west-1", verb, args)
}

/// As [`run`], with `SAVED_REGION` (a non-secret input of `other`) set to `region`.
fn run_in(p: &Project, region: &str, verb: &str, args: &[&str]) -> (i32, Vec<Value>, String) {
    let output = p
        .cmd()
        .env("SAVED_TOKEN", TOKEN)
        .env("SAVED_REGION", region)
        .args([verb, "SP", "-e", "dev", "--output", "json"])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        parse_events(&output.stdout),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn plan_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("plan.json")).unwrap()).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn plan_out_writes_the_reviewed_plan_private_and_without_a_secret() {
    let p = project();
    let out = p.root().join("reviewed");
    let (code, events, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("plan saved in"), "{stderr}");

    let saved = plan_json(&out);
    assert_eq!(saved["deploymentId"], "SP");
    assert_eq!(saved["environment"], "dev");
    assert_eq!(saved["manifestDigest"].as_str().unwrap().len(), 32);
    assert!(saved["created"].as_str().unwrap().ends_with('Z'));
    assert!(saved["gitCommit"].is_null(), "not in a repository");
    let stacks = saved["stacks"].as_object().unwrap();
    assert_eq!(
        stacks.keys().collect::<Vec<_>>(),
        ["app", "network", "other"]
    );
    let app = &stacks["app"];
    for digest in ["fingerprint", "files", "inputs"] {
        assert_eq!(app[digest].as_str().unwrap().len(), 32, "{digest}: {app}");
    }
    assert_eq!(app["counts"]["add"], 1);
    assert_eq!(app["counts"]["destroy"], 1);
    assert_eq!(app["changes"], true);
    let labels: Vec<&str> = app["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert!(labels.iter().any(|l| l.contains("[secret]")), "{labels:?}");
    // The fingerprint is the one a deploy computes: the deploy records the same (`app`'s is
    // provisional: `network`'s outputs change as it applies).
    let planned_fp = stacks["other"]["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(
        of_type(&events, "stack_planned").len(),
        3,
        "every stack planned"
    );

    assert_eq!(mode(&out), 0o700);
    for file in files_under(&out) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "{} holds the secret",
            file.display()
        );
    }

    let (code, events, stderr) = run(&p, "deploy", &["--plan", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        event_of(&events, "stack_deployed", "other")["data"]["fingerprint"],
        planned_fp.as_str()
    );
}

#[test]
fn deploy_plan_applies_only_the_reviewed_stacks_and_shows_their_counts() {
    let p = project();
    let (code, _, stderr) = run(&p, "deploy", &[]);
    assert_eq!(code, 0, "{stderr}");
    // Only `other` changes: the plan holds it alone.
    p.file("SP", "other/README", "changed\n");
    let out = p.root().join("reviewed");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let stacks: Vec<String> = plan_json(&out)["stacks"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(stacks, ["other"]);

    let (code, events, stderr) = run(&p, "deploy", &["--plan", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stacks_of(&events, "stack_deployed"), ["other"]);
    assert_eq!(
        {
            let mut s = stacks_of(&events, "stack_skipped");
            s.sort();
            s
        },
        ["app", "network"]
    );
    let logs: Vec<&str> = of_type(&events, "stack_log")
        .iter()
        .filter(|e| e["data"]["stack"] == "other")
        .filter_map(|e| e["data"]["message"].as_str())
        .collect();
    assert!(
        logs.iter().any(|l| l
            .contains("the reviewed plan: +1 to add, ~0 to change, -0 to destroy, ±0 to replace")),
        "{logs:?}"
    );
    let ran = std::fs::read_to_string(p.deployment_dir("SP").join("other-ran.txt")).unwrap();
    assert_eq!(
        ran.lines().count(),
        2,
        "deployed once before, once from the plan"
    );
}

#[test]
fn deploy_plan_refuses_when_a_stacks_files_changed_since_the_plan() {
    let p = project();
    let out = p.root().join("reviewed");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    p.file("SP", "app/extra.txt", "added after the review\n");

    let (code, events, stderr) = run(&p, "deploy", &["--plan", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("`app`: its files changed"), "{stderr}");
    assert!(!stderr.contains("`network`"), "only what changed: {stderr}");
    assert!(stderr.contains("help: plan again"), "{stderr}");
    assert!(events.is_empty(), "nothing ran: {events:?}");
    assert!(!p.deployment_dir("SP").join("app-ran.txt").exists());
}

#[test]
fn deploy_plan_refuses_when_the_manifest_changed_since_the_plan() {
    let p = project();
    let out = p.root().join("reviewed");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    p.manifest("SP", &MANIFEST.replace("main-vpc", "other-vpc"));

    let (code, events, stderr) = run(&p, "deploy", &["--plan", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the manifest (deployment.yaml) changed"),
        "{stderr}"
    );
    assert!(stderr.contains("help: plan again"), "{stderr}");
    assert!(events.is_empty(), "nothing ran: {events:?}");
}

#[test]
fn deploy_plan_refuses_a_missing_plan_and_another_environments() {
    let p = project();
    let (code, _, stderr) = run(&p, "deploy", &["--plan", "/nonexistent/plan"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot read the saved plan"), "{stderr}");

    let out = p.root().join("reviewed");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let mut saved = plan_json(&out);
    saved["environment"] = "prod".into();
    std::fs::write(out.join("plan.json"), saved.to_string()).unwrap();
    let (code, _, stderr) = run(&p, "deploy", &["--plan", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is for SP -e prod, not SP -e dev"),
        "{stderr}"
    );
}

#[test]
fn plan_markdown_is_a_pull_request_comment_and_goes_to_the_step_summary() {
    let p = project();
    let md = p.root().join("plan.md");
    let summary = p.root().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let output = p
        .cmd()
        .env("SAVED_TOKEN", TOKEN)
        .env("SAVED_REGION", "eu-west-1")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["plan", "SP", "-e", "dev", "--markdown"])
        .arg(&md)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("## `cloud plan` SP -e dev"), "{text}");
    assert!(text.contains("| Stack | Add | Change | Destroy | Replace | Note |"));
    // app deletes something: it comes first, marked.
    let app = text.find("| ⚠️ **app** | 1 | 0 | 1 | 0 |").expect(&text);
    let network = text.find("| `network` | 1 | 0 | 0 | 0 |").expect(&text);
    assert!(app < network, "{text}");
    assert_eq!(text.matches("<details>").count(), 3, "{text}");
    assert!(
        text.contains("- **delete** `aws:iam/policy:Policy (old)`"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains("Cut to stay"), "{text}");
    let appended = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(appended, format!("earlier step\n{text}\n"));
}

/// Real Terraform 1.11 (built-in `terraform_data` only): fails in CI when it is missing.
fn terraform() -> Option<&'static Path> {
    let bin = Path::new("/usr/local/bin/terraform");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").is_err(),
        "real Terraform is not at /usr/local/bin/terraform (needed in CI)"
    );
    eprintln!("skipped: no Terraform at /usr/local/bin/terraform (outside CI)");
    None
}

fn tf_project(value: &str) -> Project {
    let p = Project::new();
    p.manifest(
        "TF",
        "environments: [dev]\nstacks:\n  net: { executor: terraform, path: net }\n",
    );
    tf_value(&p, value);
    p
}

fn tf_value(p: &Project, value: &str) {
    p.file(
        "TF",
        "net/main.tf",
        &format!(
            "resource \"terraform_data\" \"main\" {{\n  input = \"{value}\"\n}}\n\
             output \"id\" {{ value = terraform_data.main.output }}\n"
        ),
    );
}

fn tf(p: &Project, bin: &Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let output = p
        .cmd()
        .env("CLOUD_TERRAFORM_BIN", bin)
        .args([args[0], "TF", "-e", "dev", "--output", "json"])
        .args(&args[1..])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        parse_events(&output.stdout),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The commands cloud ran for `stack` (it logs each one).
fn commands(events: &[Value]) -> Vec<String> {
    of_type(events, "stack_log")
        .iter()
        .filter_map(|e| e["data"]["message"].as_str())
        .filter(|m| m.starts_with("terraform "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn real_terraform_applies_its_saved_plan_without_planning_again() {
    let Some(bin) = terraform() else { return };
    let p = tf_project("net-1");
    let out = p.root().join("reviewed");
    let (code, _, stderr) = tf(&p, bin, &["plan", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        plan_json(&out)["stacks"]["net"]["planFile"],
        "net.tfplan",
        "copied out of the run's scratch folder"
    );
    assert!(out.join("net.tfplan").is_file());
    assert_eq!(mode(&out.join("net.tfplan")), 0o600);

    let (code, events, stderr) = tf(&p, bin, &["deploy", "--plan", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let ran = commands(&events);
    let plan_file = out.join("net.tfplan");
    assert!(
        ran.iter()
            .any(|c| c == &format!("terraform apply -input=false -json {}", plan_file.display())),
        "{ran:?}"
    );
    assert!(
        !ran.iter()
            .any(|c| c.starts_with("terraform plan") || c.contains("-auto-approve")),
        "no new plan: {ran:?}"
    );
    assert_eq!(
        event_of(&events, "stack_deployed", "net")["data"]["outputs"]["id"],
        "net-1"
    );
}

/// Planning again into the same folder leaves no tool plan file of the earlier plan (it may
/// hold secrets, and names a stack that is no longer planned).
#[test]
fn plan_out_into_a_used_folder_removes_the_earlier_plans_tool_files() {
    let Some(bin) = terraform() else { return };
    let p = tf_project("net-1");
    let out = p.root().join("reviewed");
    let (code, _, stderr) = tf(&p, bin, &["plan", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.join("net.tfplan").is_file());
    p.manifest(
        "TF",
        "environments: [dev]\nstacks:\n  network: { executor: terraform, path: net }\n",
    );
    let (code, _, stderr) = tf(&p, bin, &["plan", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.join("network.tfplan").is_file());
    assert!(
        !out.join("net.tfplan").exists(),
        "the earlier plan's file is gone"
    );
}

/// A provisional Terraform stack planned again once its dependency applied is applied from
/// that new plan's file (what was compared and accepted), never with a fresh `-auto-approve`.
#[test]
fn real_terraform_applies_the_replans_own_plan_file() {
    let Some(bin) = terraform() else { return };
    let p = tf_project("net-1");
    p.manifest(
        "TF",
        "environments: [dev]\nstacks:\n  net: { executor: terraform, path: net }\n  \
         app: { executor: terraform, path: app, dependencies: [net], inputs: { net_id: \"${net.id}\" } }\n",
    );
    p.file(
        "TF",
        "app/main.tf",
        "variable \"net_id\" { type = string }\n\
         resource \"terraform_data\" \"main\" {\n  input = \"app-on-${var.net_id}\"\n}\n",
    );
    let (code, _, stderr) = tf(&p, bin, &["deploy"]);
    assert_eq!(code, 0, "{stderr}");
    tf_value(&p, "net-2");
    let out = p.root().join("reviewed");
    let (code, _, stderr) = tf(&p, bin, &["plan", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!plan_json(&out)["stacks"]["app"]["provisional"]
        .as_array()
        .unwrap()
        .is_empty());

    let (code, events, stderr) = tf(
        &p,
        bin,
        &[
            "deploy",
            "--plan",
            out.to_str().unwrap(),
            "--accept-replans",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let app: Vec<String> = commands(
        &events
            .iter()
            .filter(|e| e["data"]["stack"] == "app")
            .cloned()
            .collect::<Vec<_>>(),
    );
    let applied = app
        .iter()
        .find(|c| c.starts_with("terraform apply"))
        .unwrap_or_else(|| panic!("{app:?}"));
    assert!(
        applied.ends_with("plan.tfplan") && !applied.contains("-auto-approve"),
        "{applied}"
    );
    assert_eq!(stacks_of(&events, "stack_deployed"), ["net", "app"]);
}

#[test]
fn real_terraform_refuses_a_stale_saved_plan_in_clouds_words() {
    let Some(bin) = terraform() else { return };
    let p = tf_project("net-1");
    let out = p.root().join("reviewed");
    let (code, _, stderr) = tf(&p, bin, &["plan", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // Something else is applied in between: the state moves on.
    let (code, _, stderr) = tf(&p, bin, &["deploy"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, events, stderr) = tf(&p, bin, &["deploy", "--plan", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let failed = &event_of(&events, "stack_failed", "net")["data"]["error"];
    assert_eq!(failed["code"], "PLAN_CHANGED", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("the terraform state changed since the plan was made"),
        "{failed}"
    );
    assert!(
        failed["details"]
            .as_str()
            .unwrap()
            .starts_with("plan again"),
        "{failed}"
    );
}

/// `base` leaves the value in `base/value.txt` as its output `vpc`; `app` plans one policy, or
/// two when it is given `vpc-2`.
const REPLAN: &str = r#"environments: [dev]
stacks:
  base:
    executor: command
    path: base
    deploy: echo "{\"vpc\":\"$(cat value.txt)\"}" > "$CLOUD_OUTPUTS"
    plan: ./plan.sh
  app:
    executor: command
    path: app
    dependencies: [base]
    inputs: { vpc: "${base.vpc}" }
    deploy: echo '{}' > "$CLOUD_OUTPUTS"
    plan: ./plan.sh
"#;

const REPLAN_BASE: &str = r#"#!/bin/sh
echo '::cloud::{"resource":{"type":"t:v:Vpc","name":"vpc"},"plan":"update"}'
echo '::cloud::{"outputs":{"changed":["vpc"],"knownAfterApply":["vpc"]}}'
"#;

const REPLAN_APP: &str = r#"#!/bin/sh
echo "::cloud::{\"resource\":{\"type\":\"t:p:Policy\",\"name\":\"on-$CLOUD_INPUT_VPC\"},\"plan\":\"create\"}"
if [ "$CLOUD_INPUT_VPC" = vpc-2 ]; then
  echo '::cloud::{"resource":{"type":"t:p:Policy","name":"two"},"plan":"create"}'
fi
"#;

#[test]
fn a_provisional_stack_whose_new_plan_differs_stops_unless_replans_are_accepted() {
    let p = Project::new();
    p.manifest("SP", REPLAN);
    chmod_x(&p.file("SP", "base/plan.sh", REPLAN_BASE));
    chmod_x(&p.file("SP", "app/plan.sh", REPLAN_APP));
    p.file("SP", "base/value.txt", "vpc-1");
    let (code, _, stderr) = run(&p, "deploy", &[]);
    assert_eq!(code, 0, "{stderr}");

    p.file("SP", "base/value.txt", "vpc-2");
    let out = p.root().join("reviewed");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let app = &plan_json(&out)["stacks"]["app"];
    assert_eq!(
        app["provisional"],
        serde_json::json!(["depends on base.vpc (known after apply)"])
    );
    assert_eq!(app["counts"]["add"], 1, "planned on vpc-1");

    let (code, events, stderr) = run(&p, "deploy", &["--plan", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stacks_of(&events, "stack_deployed"), ["base"]);
    let error = &event_of(&events, "stack_failed", "app")["data"]["error"];
    assert_eq!(error["code"], "PLAN_CHANGED");
    assert_eq!(
        error["message"],
        "`app`'s plan changed since it was reviewed — reviewed: +1 to add, ~0 to change, \
         -0 to destroy, ±0 to replace | now: +2 to add, ~0 to change, -0 to destroy, ±0 to replace; not reviewed: create \
         t:p:Policy (on-vpc-2), create t:p:Policy (two); reviewed, no longer planned: create \
         t:p:Policy (on-vpc-1)"
    );
    assert!(
        error["details"]
            .as_str()
            .unwrap()
            .contains("--accept-replans"),
        "{error}"
    );

    let (code, events, stderr) = run(
        &p,
        "deploy",
        &["--plan", out.to_str().unwrap(), "--accept-replans"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stacks_of(&events, "stack_deployed"), ["base", "app"]);

    // The same counts with another resource is another plan: refused too.
    p.file("SP", "base/value.txt", "vpc-3");
    let (code, _, stderr) = run(&p, "deploy", &[]);
    assert_eq!(code, 0, "{stderr}");
    p.file("SP", "base/value.txt", "vpc-4");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let (code, events, stderr) = run(&p, "deploy", &["--plan", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let error = &event_of(&events, "stack_failed", "app")["data"]["error"];
    assert_eq!(
        error["message"],
        "`app`'s plan changed since it was reviewed — reviewed: +1 to add, ~0 to change, \
         -0 to destroy, ±0 to replace | now: +1 to add, ~0 to change, -0 to destroy, ±0 to replace; not reviewed: create \
         t:p:Policy (on-vpc-4); reviewed, no longer planned: create t:p:Policy (on-vpc-3)"
    );
}

#[test]
fn a_markdown_plan_too_big_for_a_comment_is_cut_and_says_so() {
    let p = Project::new();
    // 3,000 resources with long names: far more than a comment holds.
    p.manifest(
        "SP",
        r#"environments: [dev]
stacks:
  big:
    executor: command
    path: big
    deploy: echo '{}' > "$CLOUD_OUTPUTS"
    plan: ./plan.sh
"#,
    );
    chmod_x(&p.file(
        "SP",
        "big/plan.sh",
        r#"#!/bin/sh
i=0
while [ $i -lt 3000 ]; do
  echo "::cloud::{\"resource\":{\"type\":\"aws:s3/bucket:Bucket\",\"name\":\"a-rather-long-bucket-name-$i\"},\"plan\":\"create\"}"
  i=$((i+1))
done
"#,
    ));
    let md = p.root().join("plan.md");
    let (code, _, stderr) = run(&p, "plan", &["--markdown", md.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.chars().count() <= 65_536, "{}", text.chars().count());
    assert!(
        text.contains("| `big` | 3000 | 0 | 0 | 0 |"),
        "{}",
        &text[..600]
    );
    // The block is closed, and what was cut is said.
    assert_eq!(text.matches("<details>").count(), 1);
    assert_eq!(text.matches("</details>").count(), 1);
    assert!(text.contains("- create `aws:s3/bucket:Bucket (a-rather-long-bucket-name-0)`"));
    let shown = text.matches("- create `").count();
    assert!(shown > 500 && shown < 3000, "{shown}");
    assert!(
        text.contains(&format!("- … {} more not shown", 3000 - shown)),
        "{}",
        &text[text.len() - 500..]
    );
    assert!(text.ends_with(&format!(
        "> **Cut to stay within GitHub's 65536-character comment limit:** 0 table rows, 0 stacks' \
         resource lists and {} resource lines are not shown; the full plan is in `cloud plan \
         --report FILE` or the run's log.\n",
        3000 - shown
    )));
}

#[test]
fn deploy_plan_refuses_when_an_input_from_the_environment_changed_but_not_a_secret_one() {
    let p = project();
    let out = p.root().join("reviewed");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");

    let (code, events, stderr) = run_in(
        &p,
        "us-east-1",
        "deploy",
        &["--plan", out.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("`other`: its inputs changed"), "{stderr}");
    assert!(!stderr.contains("`app`"), "{stderr}");
    assert!(events.is_empty(), "nothing ran: {events:?}");

    // A secret input's value is in no digest: another token is not seen (nor could it be).
    let output = p
        .cmd()
        .env("SAVED_TOKEN", "another-token-value")
        .env("SAVED_REGION", "eu-west-1")
        .args(["deploy", "SP", "-e", "dev", "--output", "json", "--plan"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_failed_plan_saves_nothing_and_accept_replans_needs_a_plan() {
    let p = project();
    chmod_x(&p.file(
        "SP",
        "app/plan.sh",
        "#!/bin/sh\necho 'no such bucket' >&2\nexit 1\n",
    ));
    let out = p.root().join("reviewed");
    let md = p.root().join("plan.md");
    let (code, _, stderr) = run(
        &p,
        "plan",
        &[
            "--out",
            out.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the plan did not succeed: nothing was written to {}",
            out.display()
        )),
        "{stderr}"
    );
    assert!(!out.exists() && !md.exists());

    let (code, _, stderr) = run(&p, "deploy", &["--accept-replans"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--plan <DIR>"), "{stderr}");
}

#[test]
fn a_plan_in_a_git_repository_names_its_commit() {
    let p = project();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(p.root())
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "the deployment"]);
    let head = git(&["rev-parse", "HEAD"]);
    let out = p.root().join("reviewed");
    let (code, _, stderr) = run(&p, "plan", &["--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan_json(&out)["gitCommit"], head.as_str());
}
