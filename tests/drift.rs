//! `cloud drift`: each deployed stack's real infrastructure against what was deployed, through
//! the real binary — the simulator's `drift:` knob, command stacks' `drift:` commands and the
//! real Terraform on a local module changed behind its back — then the health it leaves
//! (`cloud status`, smart skip, `deploy --only-drifted`).

mod common;

use common::{chmod_x, event_of, of_type, parse_events, real_terraform, stacks_of, Project};
use serde_json::Value;

/// `cloud drift ID -e dev -o json ARGS`: the exit code and the events.
fn drift_json(p: &Project, id: &str, args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = p
        .cmd()
        .args(["drift", id, "-e", "dev", "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        parse_events(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn text(p: &Project, args: &[&str]) -> (i32, String) {
    let out = p.cmd().args(args).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

const SIMULATED: &str = r#"
deploymentId: SIM
environments: [dev]
defaults: { executor: simulate }
stacks:
  network:
    resources: [{ type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0 }]
    outputs: { vpcId: vpc-1 }
  security:
    dependencies: [network]
    resources:
      - { type: "aws:ec2/securityGroup:SecurityGroup", name: web-sg, seconds: 0 }
      - { type: "aws:iam/role:Role", name: app-role, seconds: 0 }
    DRIFT
  api:
    dependencies: [security]
    resources: [{ type: "aws:lambda/function:Function", name: handler, seconds: 0 }]
"#;

fn simulated(drift: bool) -> String {
    let knob = match drift {
        true => r#"drift: { web-sg: { "ingress[0].cidr": 0.0.0.0/0 } }"#,
        false => "",
    };
    SIMULATED.replace("DRIFT", knob)
}

#[test]
fn a_stack_never_deployed_is_not_checked_and_the_check_exits_0() {
    let p = Project::new();
    p.manifest("SIM", &simulated(true));
    let (code, events, stderr) = drift_json(&p, "SIM", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stacks_of(&events, "stack_skipped").len(), 3);
    assert_eq!(
        event_of(&events, "stack_skipped", "security")["data"]["reason"],
        "not_deployed"
    );
    assert!(of_type(&events, "stack_drift_checked").is_empty());
}

#[test]
fn a_drifted_simulated_resource_is_named_with_its_attribute_and_exits_2() {
    let p = Project::new();
    p.manifest("SIM", &simulated(false));
    let (code, _, _) = p.deploy_json("SIM", &[]);
    assert_eq!(code, 0);
    // Made to drift after the deploy: the knob is no part of what is deployed.
    p.manifest("SIM", &simulated(true));
    let (code, events, stderr) = drift_json(&p, "SIM", &[]);
    assert_eq!(code, 2, "drift found exits 2: {stderr}");
    let drifted = of_type(&events, "resource_drifted");
    assert_eq!(drifted.len(), 1, "{drifted:?}");
    let d = &drifted[0]["data"];
    assert_eq!(d["stack"], "security");
    assert_eq!(d["resource"]["name"], "web-sg");
    assert_eq!(d["attributes"][0]["name"], "ingress[0].cidr");
    assert_eq!(d["attributes"][0]["after"], "0.0.0.0/0");
    let checked = |stack| event_of(&events, "stack_drift_checked", stack)["data"].clone();
    assert_eq!(checked("security")["status"], "drifted");
    assert_eq!(checked("security")["driftedResources"], 1);
    assert_eq!(checked("network")["status"], "in_sync");
    assert_eq!(checked("api")["status"], "in_sync");
    // All at once: a drift check has no layers, nothing waits.
    assert!(of_type(&events, "layer_started").is_empty());

    // The verbose view says it in words.
    let (code, out) = text(&p, &["drift", "SIM", "-e", "dev", "--verbose"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(
            "[security] ⚠ drifted: aws:ec2/securityGroup:SecurityGroup (web-sg): \
             ingress[0].cidr now \"0.0.0.0/0\""
        ),
        "{out}"
    );
    assert!(
        out.contains("Drift: 1 stack drifted (security: 1 resource); 2 in sync"),
        "{out}"
    );

    // Kept as the stack's health: drifted since the first check that found it.
    let first_seen = checked("security")["driftedSince"].as_str().unwrap()[..16].replace('T', " ");
    let (_, status) = text(&p, &["status", "SIM", "-e", "dev"]);
    assert!(
        status.contains(&format!("drifted since {first_seen} UTC")),
        "{status}"
    );
    let (_, history) = text(&p, &["history", "SIM", "-e", "dev"]);
    assert!(
        history.contains("Health: 1 drifted (security drifted since"),
        "{history}"
    );
}

#[test]
fn a_drifted_stack_is_never_skipped_and_only_drifted_deploys_just_it() {
    let p = Project::new();
    p.manifest("SIM", &simulated(false));
    assert_eq!(p.deploy_json("SIM", &[]).0, 0);
    // A deploy leaves its stacks in sync: nothing to heal.
    let (code, out) = text(&p, &["deploy", "SIM", "-e", "dev", "--only-drifted"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Nothing has drifted in dev"), "{out}");

    p.manifest("SIM", &simulated(true));
    assert_eq!(drift_json(&p, "SIM", &[]).0, 2);
    let (code, events, _) = p.deploy_json("SIM", &["--only-drifted"]);
    assert_eq!(code, 0);
    assert_eq!(stacks_of(&events, "stack_deploying"), ["security"]);
    let logs = common::log_messages(&events, "security", None);
    assert!(
        logs.iter()
            .any(|l| l.starts_with("runs again: drifted since")),
        "{logs:?}"
    );
    assert_eq!(
        event_of(&events, "stack_skipped", "api")["data"]["reason"],
        "not_selected"
    );

    // Deployed: in sync again, so a plain deploy skips everything.
    let (_, status) = text(&p, &["status", "SIM", "-e", "dev"]);
    assert!(
        status.contains("security") && !status.contains("drifted since"),
        "{status}"
    );
    let (_, events, _) = p.deploy_json("SIM", &[]);
    assert!(stacks_of(&events, "stack_deploying").is_empty());
    // And a stack found drifted is not skipped by a plain deploy either.
    assert_eq!(drift_json(&p, "SIM", &[]).0, 2);
    let (_, events, _) = p.deploy_json("SIM", &[]);
    assert_eq!(stacks_of(&events, "stack_deploying"), ["security"]);
}

#[test]
fn command_stacks_check_with_their_drift_command_and_without_one_are_unknown() {
    let p = Project::new();
    p.manifest(
        "CMD",
        r#"
deploymentId: CMD
environments: [dev]
defaults: { executor: command }
stacks:
  queue:
    deploy: "true"
    drift: ./drift.sh
  cache:
    deploy: "true"
    drift: "exit 0"
  broken:
    deploy: "true"
    drift: "echo 'Error: AccessDenied reading the queue' >&2; exit 1"
  plain:
    deploy: "true"
"#,
    );
    let script = p.file(
        "CMD",
        "drift.sh",
        "#!/bin/sh\n\
         echo '::cloud::{\"resource\":{\"type\":\"aws:sqs/queue:Queue\",\"name\":\"jobs\"},\"drift\":true,\
         \"attributes\":[{\"name\":\"visibilityTimeout\",\"before\":30,\"after\":90}]}'\n\
         exit 2\n",
    );
    chmod_x(&script);
    assert_eq!(p.deploy_json("CMD", &[]).0, 0);
    let (code, events, stderr) = drift_json(&p, "CMD", &[]);
    // An error wins over drift: 1.
    assert_eq!(code, 1, "{stderr}");
    let checked = |stack| event_of(&events, "stack_drift_checked", stack)["data"].clone();
    assert_eq!(checked("queue")["status"], "drifted");
    assert_eq!(checked("cache")["status"], "in_sync");
    assert_eq!(checked("plain")["status"], "unknown");
    assert!(
        checked("plain")["reason"]
            .as_str()
            .unwrap()
            .contains("add `drift: <command>`"),
        "{events:?}"
    );
    let failed = event_of(&events, "stack_failed", "broken");
    assert_eq!(
        failed["data"]["error"]["message"],
        "Error: AccessDenied reading the queue"
    );
    let d = &of_type(&events, "resource_drifted")[0]["data"];
    assert_eq!(d["attributes"][0]["before"], 30);
    assert_eq!(d["attributes"][0]["after"], 90);

    // Only the ones in sync or drifted: 2.
    let (code, _, _) = drift_json(&p, "CMD", &["--only", "queue,cache"]);
    assert_eq!(code, 2);
    let (code, _, _) = drift_json(&p, "CMD", &["--only", "cache"]);
    assert_eq!(code, 0);
}

#[test]
fn only_drifted_without_any_record_says_to_check_first() {
    let p = Project::new();
    p.manifest("SIM", &simulated(false));
    let (code, out) = text(&p, &["deploy", "SIM", "-e", "dev", "--only-drifted"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("check first: cloud drift SIM -e dev"), "{out}");
}

#[test]
fn bad_input_exits_1_because_2_means_drifted() {
    let p = Project::new();
    p.manifest("SIM", &simulated(false));
    let (code, out) = text(&p, &["drift", "SIM", "-e", "nope"]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = text(&p, &["drift", "SIM", "-e", "dev", "--only", "nope"]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = text(&p, &["drift", "SIM", "--bogus"]);
    assert_eq!(code, 1, "{out}");
}

/// Real Terraform: deploy a `terraform_data`, change its recorded input behind Terraform's
/// back, and `cloud drift` names the resource and attribute; the next deploy does not skip
/// it; after it, drift again exits 0.
#[test]
fn real_terraform_drift_is_found_named_and_healed_by_the_next_deploy() {
    let Some(binary) = real_terraform() else {
        return;
    };
    let p = Project::new();
    p.manifest(
        "TF",
        &format!(
            r#"
deploymentId: TF
environments: [dev]
stacks:
  app:
    executor: terraform
    binary: {binary}
    path: stacks/app
"#
        ),
    );
    p.file(
        "TF",
        "stacks/app/main.tf",
        "resource \"terraform_data\" \"cert\" {\n  input = \"v1\"\n}\n",
    );
    let (code, _, out) = p.deploy_json("TF", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let (code, events, stderr) = drift_json(&p, "TF", &[]);
    assert_eq!(
        code, 0,
        "in sync right after the deploy: {stderr} {events:?}"
    );

    let state = p
        .deployment_dir("TF")
        .join("stacks/app/terraform.tfstate.d/dev/terraform.tfstate");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    json["resources"][0]["instances"][0]["attributes"]["input"] =
        serde_json::json!({"value": "edited by hand", "type": "string"});
    json["serial"] = (json["serial"].as_u64().unwrap() + 1).into();
    std::fs::write(&state, serde_json::to_vec(&json).unwrap()).unwrap();

    let (code, events, stderr) = drift_json(&p, "TF", &[]);
    assert_eq!(code, 2, "{stderr}");
    let d = &of_type(&events, "resource_drifted")[0]["data"];
    assert_eq!(d["resource"]["address"], "terraform_data.cert");
    assert_eq!(d["attributes"][0]["name"], "input");
    assert_eq!(d["attributes"][0]["before"], "v1");
    assert_eq!(d["attributes"][0]["after"], "edited by hand");
    let (_, status) = text(&p, &["status", "TF", "-e", "dev"]);
    assert!(status.contains("drifted since"), "{status}");
    assert!(status.contains("terraform_data.cert"), "{status}");

    let (code, events, _) = p.deploy_json("TF", &[]);
    assert_eq!(code, 0);
    assert_eq!(
        stacks_of(&events, "stack_deploying"),
        ["app"],
        "not skipped"
    );
    let (code, _, stderr) = drift_json(&p, "TF", &[]);
    assert_eq!(code, 0, "healed: {stderr}");
}

/// With the DynamoDB table, health is the trail's: another machine (here: the same project with
/// its journals gone) sees the stack drifted, `cloud status` says so, and its next deploy does
/// not skip it.
#[test]
fn every_machine_sees_the_same_health_through_the_table() {
    let Some(endpoint) = common::moto::moto() else {
        return;
    };
    let table = common::moto::table_name("drift-health");
    common::moto::create_table(&table);
    let p = Project::new();
    p.manifest("SIM", &simulated(false));
    let with_table = |args: &[&str]| {
        let mut cmd = p.cmd();
        cmd.envs(common::moto::aws_vars(&endpoint))
            .env("CLOUD_DYNAMODB_TABLE", &table)
            .args(args);
        let out = cmd.output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text, out.stdout)
    };
    assert_eq!(
        with_table(&["deploy", "SIM", "-e", "dev", "-o", "json"]).0,
        0
    );
    p.manifest("SIM", &simulated(true));
    let (code, text, _) = with_table(&["drift", "SIM", "-e", "dev", "-o", "json"]);
    assert_eq!(code, 2, "{text}");

    // Another machine: the same checkout, without this one's journals and history.
    std::fs::remove_dir_all(p.deployment_dir("SIM").join("journal")).unwrap();
    let (_, status, _) = with_table(&["status", "SIM", "-e", "dev"]);
    assert!(
        status.contains("drifted since")
            && status.contains("(aws:ec2/securityGroup:SecurityGroup (web-sg))"),
        "{status}"
    );
    let (code, text, stdout) = with_table(&[
        "deploy",
        "SIM",
        "-e",
        "dev",
        "-o",
        "json",
        "--only",
        "network,security",
    ]);
    assert_eq!(code, 0, "{text}");
    let events = parse_events(&stdout);
    let logs = common::log_messages(&events, "security", None);
    assert!(
        logs.iter()
            .any(|l| l.starts_with("runs again: drifted since")),
        "{logs:?}"
    );
}
