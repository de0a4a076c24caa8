//! The `plan` operation of the command and simulate executors (and a Terraform plan against a
//! fake program), driven through the library, below `cloud plan` (tests/plan.rs drives the
//! command): a manifest is loaded as `cloud` loads it and each stack's executor is asked for
//! its plan.

mod common;

use std::sync::Arc;

use cloud::event::{PlanAction, PlanCounts, PlanSummary};
use cloud::executor::{ExecutorUpdate, Job, Message, Outcome, Updates};
use cloud::testing::job;
use common::*;

const MANIFEST: &str = r#"environments: [dev]
stacks:
  network:
    executor: simulate
    resources:
      - { type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 30 }
      - { type: "aws:ec2/subnet:Subnet", name: public-0, seconds: 30, fail: "Access Denied" }
    outputs: { vpcId: vpc-1 }
  storage:
    executor: command
    dependencies: [network]
    deploy: echo deploying
    plan: ./plan.sh
  broken:
    executor: command
    plan: 'echo "Error: the bucket policy is invalid" >&2; exit 3'
    deploy: echo deploying
  legacy:
    executor: command
    deploy: echo deploying
"#;

const PLAN_SH: &str = r#"#!/bin/sh
echo "planning for $CLOUD_OPERATION"
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"plan":"create"}'
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"data"},"plan":"replace"}'
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"old"},"plan":"delete"}'
echo '::cloud::{"resource":{"type":"aws:iam/role:Role","name":"writer"},"plan":"update","drift":true}'
echo '::cloud::{"outputs":{"changed":["bucketArn"],"knownAfterApply":["bucketArn"]}}'
echo '{"bucketArn":"arn:aws:s3:::logs"}' > "$CLOUD_OUTPUTS"
"#;

/// How a plan ended and what it sent.
type Planned = (Outcome, Vec<ExecutorUpdate>);

/// Each stack's plan: `None` when it has none.
fn plans(p: &Project) -> Vec<(String, Option<Planned>)> {
    let manifest = cloud::manifest::load(p.root(), "PLAN", &cloud::executor::registry()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    manifest
        .stacks
        .iter()
        .map(|spec| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let job = job("PLAN", &spec.name, &spec.path, &p.root().join("scratch"));
            let plan = Arc::clone(&spec.executor)
                .plan(job, Updates::new(0, tx, Default::default()))
                .map(|future| {
                    let outcome = runtime.block_on(future);
                    let mut sent = Vec::new();
                    while let Ok((_, Message::Update(u))) = rx.try_recv() {
                        sent.push(u);
                    }
                    (outcome, sent)
                });
            (spec.name.clone(), plan)
        })
        .collect()
}

fn planned(sent: &[ExecutorUpdate]) -> Vec<(String, PlanAction, bool)> {
    sent.iter()
        .filter_map(|u| match u {
            ExecutorUpdate::Planned {
                name,
                action,
                drift,
                ..
            } => Some((name.clone(), *action, *drift)),
            _ => None,
        })
        .collect()
}

fn summary(sent: &[ExecutorUpdate]) -> PlanSummary {
    let all: Vec<&PlanSummary> = sent
        .iter()
        .filter_map(|u| match u {
            ExecutorUpdate::PlanSummary(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(all.len(), 1, "{sent:?}");
    all[0].clone()
}

#[test]
fn command_stacks_plan_with_their_plan_command_and_simulate_plans_creates() {
    use PlanAction::*;
    let p = Project::new();
    p.manifest("PLAN", MANIFEST);
    chmod_x(&p.file("PLAN", "plan.sh", PLAN_SH));
    let plans = plans(&p);
    let of = |name: &str| {
        plans
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, plan)| plan.as_ref())
    };

    // Simulate: every resource a create, at once (not its 60 simulated seconds), the one
    // that would fail too; its outputs are known.
    let (outcome, sent) = of("network").expect("simulate plans");
    assert_eq!(*outcome, Ok(Default::default()));
    assert_eq!(
        planned(sent),
        [
            ("main-vpc".into(), Create, false),
            ("public-0".into(), Create, false)
        ]
    );
    let plan = summary(sent);
    assert_eq!(
        plan.counts,
        PlanCounts {
            add: 2,
            ..Default::default()
        }
    );
    assert_eq!(plan.changed_outputs, ["vpcId"]);
    assert!(plan.known_after_apply.is_empty());
    // Never deployed (`last_deploy: None`): every resource a create, nothing more to say.
    assert!(!sent.iter().any(|u| matches!(u, ExecutorUpdate::Log { .. })));

    // A `plan:` command: its ::cloud:: plan lines, CLOUD_OPERATION=plan, no outputs.
    let (outcome, sent) = of("storage").expect("a plan: command");
    assert_eq!(*outcome, Ok(Default::default()), "{sent:?}");
    assert_eq!(
        planned(sent),
        [
            ("logs".into(), Create, false),
            ("data".into(), Replace, false),
            ("old".into(), Delete, false),
            ("writer".into(), Update, true),
        ]
    );
    let plan = summary(sent);
    assert_eq!(
        plan.counts,
        PlanCounts {
            add: 2,
            destroy: 2,
            replace: 1,
            ..Default::default()
        }
    );
    assert_eq!(plan.drifted, 1);
    assert!(plan.changes);
    assert_eq!(plan.known_after_apply, ["bucketArn"]);
    assert!(sent.iter().any(|u| matches!(
        u,
        ExecutorUpdate::Log { message, .. } if message == "planning for plan"
    )));

    // A plan command that fails: its own error line, as a deploy's.
    let (outcome, _) = of("broken").expect("a plan: command");
    let error = outcome.as_ref().unwrap_err();
    assert_eq!(error.message, "Error: the bucket policy is invalid");
    assert!(error.details.as_deref().unwrap().contains("status 3"));

    // No `plan:`: no preview.
    assert!(of("legacy").is_none());
}

#[test]
fn a_plan_key_that_is_not_a_command_is_bad_input() {
    let p = Project::new();
    p.manifest(
        "BAD",
        "environments: [dev]\nstacks:\n  s:\n    executor: command\n    deploy: echo hi\n    plan: [./plan.sh]\n",
    );
    let out = p.cmd().args(["validate", "BAD"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`plan` must be a string, found a list"),
        "{err}"
    );
    assert!(err.contains("plan: ./plan.sh"), "{err}");
}

/// A deploy that prints plan lines is told they are ignored: they are no change.
#[test]
fn plan_lines_in_a_deploy_are_ignored_with_a_warning() {
    let p = Project::new();
    p.manifest(
        "DEP",
        r#"environments: [dev]
stacks:
  s:
    executor: command
    deploy: echo '::cloud::{"resource":{"type":"t","name":"n"},"plan":"create"}'
"#,
    );
    let (code, events, _) = p.deploy_json("DEP", &[]);
    assert_eq!(code, 0);
    let warned = of_type(&events, "stack_log").into_iter().any(|e| {
        e["data"]["level"] == "warn"
            && e["data"]["message"]
                .as_str()
                .unwrap()
                .starts_with("ignored a ::cloud:: plan line outside a plan")
    });
    assert!(warned, "{events:#?}");
    assert!(of_type(&events, "resource_planned").is_empty());
}

/// A fake `terraform` whose plan plans one create and whose `show -json` (reading the saved
/// plan for outputs known only after apply) waits until it is interrupted.
const FAKE_TERRAFORM: &str = r#"#!/bin/sh
case "$1" in
init|workspace) exit 0 ;;
plan)
  echo '{"type":"planned_change","change":{"resource":{"addr":"t.a","resource_type":"t"},"action":"create"}}'
  echo '{"type":"change_summary","changes":{"add":1,"change":0,"remove":0,"import":0,"operation":"plan"}}'
  echo '{"type":"outputs","outputs":{"id":{"sensitive":false,"action":"create"}}}'
  exit 0 ;;
show)
  trap 'exit 130' INT
  touch showing
  while :; do sleep 0.05; done ;;
esac
echo "fake terraform: unexpected $*" >&2
exit 2
"#;

/// Interrupted while it reads the saved plan, a Terraform plan is cancelled, not reported as
/// a plan whose outputs all changed.
#[test]
fn a_terraform_plan_interrupted_while_reading_its_plan_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("terraform");
    std::fs::write(&bin, FAKE_TERRAFORM).unwrap();
    chmod_x(&bin);
    std::fs::write(dir.path().join("main.tf"), "").unwrap();
    std::fs::create_dir_all(dir.path().join(".terraform")).unwrap();
    std::fs::write(dir.path().join(".terraform/cloud-init.stamp"), "").unwrap();
    // This file's only Terraform test: the program is found through the process environment.
    std::env::set_var("CLOUD_TERRAFORM_BIN", &bin);
    let stack = Arc::new(cloud::executor::terraform::TerraformStack {
        binary: None,
        workspace: false,
        var_files: vec![],
    });
    let cancel = cloud::cancel::Cancel::new();
    let job = Job {
        cancel: cancel.clone(),
        ..job("TF", "dns", dir.path(), &dir.path().join("scratch"))
    };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let future =
        cloud::executor::StackExecutor::plan(stack, job, Updates::new(0, tx, Default::default()))
            .unwrap();
    let planning = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    });
    common::wait_for("show -json to run", 20, || {
        dir.path().join("showing").exists()
    });
    cancel.cancel();
    let outcome = planning.join().unwrap();
    let error = outcome.unwrap_err();
    assert_eq!(error.code, cloud::event::ErrorCode::Cancelled, "{error:?}");
}
