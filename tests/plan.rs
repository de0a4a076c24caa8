//! `cloud plan` through the real binary: each stack's preview in dependency order (simulate and
//! command stacks; real Terraform 1.11 at the end), what a deploy would skip, provisional
//! dependents, failures, the exit codes (`--detailed-exitcode` too), the lock, and that a plan
//! changes no history.

mod common;

use std::path::Path;

use serde_json::Value;

use common::*;

/// `network` (simulate) → `storage` (command, with a `plan:`) → `app` (reads storage's output
/// through an input); `legacy` has no `plan:`.
const MANIFEST: &str = r#"environments: [dev]
stacks:
  network:
    executor: simulate
    resources:
      - { type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0 }
    outputs: { vpcId: vpc-1 }
  storage:
    executor: command
    path: storage
    dependencies: [network]
    deploy: ./deploy.sh
    plan: ./plan.sh
  app:
    executor: command
    path: app
    dependencies: [storage]
    inputs: { bucket: "${storage.bucketArn}" }
    deploy: echo '{"url":"https://app"}' > "$CLOUD_OUTPUTS"
    plan: ./plan.sh
  legacy:
    executor: command
    path: legacy
    deploy: echo deploying
"#;

const STORAGE_DEPLOY: &str = r#"#!/bin/sh
echo '{"bucketArn":"arn:aws:s3:::logs-1"}' > "$CLOUD_OUTPUTS"
"#;

/// Creates one bucket, replaces one, deletes one; its ARN is known only after apply. With
/// `PLAN_HOLD=DIR` it first writes its pid there, touches `ready`, and waits.
const STORAGE_PLAN: &str = r#"#!/bin/sh
if [ -n "$PLAN_HOLD" ]; then echo $$ > "$PLAN_HOLD/pid"; touch "$PLAN_HOLD/ready"; sleep 30; fi
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"plan":"create"}'
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"data"},"plan":"replace"}'
echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"old"},"plan":"delete"}'
echo '::cloud::{"outputs":{"changed":["bucketArn"],"knownAfterApply":["bucketArn"]}}'
"#;

/// Plans a policy named after the bucket it is given: what it was planned with shows.
const APP_PLAN: &str = r#"#!/bin/sh
echo "::cloud::{\"resource\":{\"type\":\"aws:iam/policy:Policy\",\"name\":\"for-$CLOUD_INPUT_BUCKET\"},\"plan\":\"update\"}"
"#;

fn project() -> Project {
    let p = Project::new();
    p.manifest("PLAN", MANIFEST);
    for (file, text) in [
        ("storage/deploy.sh", STORAGE_DEPLOY),
        ("storage/plan.sh", STORAGE_PLAN),
        ("app/plan.sh", APP_PLAN),
        ("legacy/README", "no plan here\n"),
    ] {
        let path = p.file("PLAN", file, text);
        chmod_x(&path);
    }
    p
}

/// `cloud plan PLAN -e dev ARGS`: the exit code and its output.
fn plan(p: &Project, args: &[&str]) -> (i32, std::process::Output) {
    let output = p
        .cmd()
        .args(["plan", "PLAN", "-e", "dev"])
        .args(args)
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), output)
}

/// `cloud plan … --output json`: the exit code and the events.
fn plan_json(p: &Project, args: &[&str]) -> (i32, Vec<Value>) {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let (code, output) = plan(p, &all);
    (code, parse_events(&output.stdout))
}

fn deploy(p: &Project) {
    let (code, _, output) = p.deploy_json("PLAN", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
}

/// `(name, action, destructive)` of a stack's `resource_planned` events.
fn planned(events: &[Value], stack: &str) -> Vec<(String, String, bool)> {
    of_type(events, "resource_planned")
        .into_iter()
        .filter(|e| e["data"]["stack"] == stack)
        .map(|e| {
            let d = &e["data"];
            (
                d["resource"]["name"].as_str().unwrap().to_owned(),
                d["action"].as_str().unwrap().to_owned(),
                d["destructive"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn counts(add: u64, change: u64, destroy: u64, replace: u64) -> Value {
    serde_json::json!({"add": add, "change": change, "destroy": destroy, "replace": replace,
        "move": 0, "import": 0})
}

fn text(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_plan_previews_each_stack_in_order_with_its_counts_and_actions() {
    let p = project();
    let (code, events) = plan_json(&p, &[]);
    assert_eq!(code, 0);
    assert_gap_free(&events);
    let started = &of_type(&events, "deployment_started")[0]["data"];
    assert_eq!(started["operation"], "plan");

    assert_eq!(
        planned(&events, "network"),
        [("main-vpc".into(), "create".into(), false)]
    );
    let network = &event_of(&events, "stack_planned", "network")["data"];
    assert_eq!(network["counts"], counts(1, 0, 0, 0));
    assert_eq!(network["changes"], true);

    assert_eq!(
        planned(&events, "storage"),
        [
            ("logs".into(), "create".into(), false),
            ("data".into(), "replace".into(), true),
            ("old".into(), "delete".into(), true),
        ]
    );
    let storage = &event_of(&events, "stack_planned", "storage")["data"];
    assert_eq!(storage["counts"], counts(2, 0, 2, 1));
    assert_eq!(storage["knownAfterApply"][0], "bucketArn");
    // Its dependency's plan changes the outputs it is given: provisional, and why.
    assert_eq!(
        storage["provisional"],
        serde_json::json!(["depends on network.vpcId (changes)"])
    );
    // Dependency order: a stack is planned after what it depends on.
    assert!(
        seq_of(&events, "stack_planned", "network") < seq_of(&events, "stack_deploying", "storage")
    );

    // Never deployed, `app`'s input has no value: never planned on an invented one.
    let app = &event_of(&events, "stack_planned", "app")["data"];
    assert_eq!(
        app["noPreview"],
        "its inputs are known only once `storage` is deployed"
    );
    assert_eq!(
        app["provisional"],
        serde_json::json!(["depends on storage.bucketArn (known after apply)"])
    );
    assert!(planned(&events, "app").is_empty());
    // No `plan:`: reported, and a deploy would run it.
    let legacy = &event_of(&events, "stack_planned", "legacy")["data"];
    assert_eq!(legacy["noPreview"], "its executor has no preview");
    assert_eq!(legacy["changes"], true);
    let complete = &of_type(&events, "deployment_complete")[0]["data"];
    assert_eq!(complete["status"], "deployed");
    assert!(of_type(&events, "stack_deployed").is_empty());

    // The journal holds the plan, as any run's.
    let journal = p.journal("PLAN", "dev");
    assert_eq!(journal.len(), events.len());
    assert_eq!(journal[0]["data"]["operation"], "plan");
    // `cloud status` and `cloud history` tell it as a plan.
    let status = p
        .cmd()
        .args(["status", "PLAN", "-e", "dev"])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.starts_with("PLAN-dev: planned\n"), "{status}");
    let history = p.cmd().args(["history", "PLAN"]).output().unwrap();
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(history.contains(" plan       planned "), "{history}");
}

#[test]
fn the_text_views_show_counts_destructive_changes_and_a_summary_table() {
    let p = project();
    let (code, output) = plan(&p, &["--verbose", "--color", "never"]);
    assert_eq!(code, 0);
    let out = text(&output);
    for line in [
        "+ create aws:s3/bucket:Bucket (logs)",
        "± replace aws:s3/bucket:Bucket (data) (destructive)",
        "- delete aws:s3/bucket:Bucket (old) (destructive)",
        "[legacy] ✓ Planned (","s): no preview (will run)",
        "│ its inputs are known only once `storage` is deployed",
        "): +2 to add, ~0 to change, -2 to destroy, ±1 to replace (destructive)",
        "provisional: depends on network.vpcId (changes)",
        "Stack    Plan",
        "network  +1 to add, ~0 to change, -0 to destroy, ±0 to replace",
        "storage  +2 to add, ~0 to change, -2 to destroy, ±1 to replace (destructive)",
        "app      no preview (will run)",
        "legacy   no preview (will run)",
        "Total    +3 to add, ~0 to change, -2 to destroy, ±1 to replace · 4 stacks changing, 2 provisional, 2 without preview",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
    // Deploy durations would make a wrong estimate of a plan's: no ETA.
    assert!(!out.contains("ETA"), "{out}");
    // In colour, a destructive change is red.
    let (_, output) = plan(&p, &["--verbose", "--color", "always"]);
    let out = text(&output);
    assert!(
        out.contains("\u{1b}[31m- delete aws:s3/bucket:Bucket (old) (destructive)"),
        "{out}"
    );
}

#[test]
fn the_simple_and_interactive_views_show_each_stacks_plan() {
    use cloud::view::{interactive, simple, Palette};
    let p = project();
    let (_, output) = plan(&p, &["--output", "json"]);
    let events: Vec<cloud::event::Event> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let model = cloud::progress::Model::from_events(&events).unwrap();
    let now = model.end_time.unwrap();
    let opts = simple::Options {
        width: 200,
        height: 40,
        palette: Palette { enabled: false },
    };
    let lines = simple::Simple::new().finish(&model, now, &opts).join("\n");
    // `✓ <stack> (<duration>): <plan>`
    let stack_line = |stack: &str, plan: &str| {
        lines
            .lines()
            .any(|l| l.starts_with(&format!("  ✓ {stack} (")) && l.ends_with(&format!("): {plan}")))
    };
    assert!(
        stack_line(
            "storage",
            "+2 to add, ~0 to change, -2 to destroy, ±1 to replace (destructive)"
        ),
        "{lines}"
    );
    assert!(stack_line("legacy", "no preview (will run)"), "{lines}");
    for line in [
        "    provisional: depends on network.vpcId (changes)",
        "Total    +3 to add, ~0 to change, -2 to destroy, ±1 to replace",
    ] {
        assert!(lines.contains(line), "no `{line}` in:\n{lines}");
    }
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    let look = interactive::Look {
        color: false,
        offset: chrono::FixedOffset::east_opt(0).unwrap(),
    };
    let mut ui = interactive::Ui::default();
    terminal
        .draw(|f| interactive::draw(f, Some(&model), &mut ui, now, &look))
        .unwrap();
    let screen = terminal.backend().to_string();
    assert!(
        screen.contains("+2 to add, ~0 to change, -2 to destroy, ±1 to replace"),
        "{screen}"
    );
    assert!(screen.contains("no preview (will run)"), "{screen}");
}

#[test]
fn the_report_holds_each_stacks_actions_counts_and_provisional_reasons() {
    let p = project();
    let file = p.root().join("plan.json");
    let (code, _) = plan_json(&p, &["--report", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(report["operation"], "plan");
    let storage = &report["stacks"][2];
    assert_eq!(storage["name"], "storage");
    assert_eq!(storage["plan"]["counts"], counts(2, 0, 2, 1));
    assert_eq!(
        storage["plan"]["resources"][1],
        serde_json::json!({"label": "aws:s3/bucket:Bucket (data)", "action": "replace"})
    );
    assert_eq!(
        storage["plan"]["provisional"][0],
        "depends on network.vpcId (changes)"
    );
    assert_eq!(report["planTotals"]["counts"], counts(3, 0, 2, 1));
    assert_eq!(report["planTotals"]["changedStacks"], 4);
}

#[test]
fn after_a_deploy_unchanged_stacks_would_skip_and_all_plans_them_anyway() {
    let p = project();
    deploy(&p);
    let (code, events) = plan_json(&p, &["--detailed-exitcode"]);
    assert_eq!(code, 0, "nothing would change");
    for stack in ["network", "storage", "app", "legacy"] {
        let skipped = &event_of(&events, "stack_skipped", stack)["data"];
        assert_eq!(skipped["reason"], "unchanged", "{stack}");
    }
    assert!(of_type(&events, "stack_planned").is_empty());
    let (_, output) = plan(&p, &["--verbose", "--color", "never"]);
    let out = text(&output);
    assert!(
        out.contains("Would skip: 4 stacks unchanged (network, "),
        "{out}"
    );
    assert!(out.contains("network  unchanged (would skip)"), "{out}");

    let (code, events) = plan_json(&p, &["--all", "--detailed-exitcode"]);
    assert_eq!(
        code, 2,
        "--all plans them, and storage's plan.sh plans changes"
    );
    assert!(of_type(&events, "stack_skipped").is_empty());
    assert_eq!(of_type(&events, "stack_planned").len(), 4);
    // The simulated network was deployed and has not changed since: nothing to do.
    assert!(planned(&events, "network").is_empty());
    let network = &event_of(&events, "stack_planned", "network")["data"];
    assert_eq!(network["counts"], counts(0, 0, 0, 0), "{network}");
    assert!(network["provisional"].is_null(), "{network}");

    // Changed since its deploy: its resources are updates, not creates.
    let manifest = std::fs::read_to_string(p.deployment_dir("PLAN").join("deployment.yaml"))
        .unwrap()
        .replace(
            "name: main-vpc, seconds: 0 }",
            "name: main-vpc, seconds: 1 }",
        );
    p.manifest("PLAN", &manifest);
    let (_, events) = plan_json(&p, &[]);
    assert_eq!(
        planned(&events, "network"),
        [("main-vpc".into(), "update".into(), false)]
    );
}

#[test]
fn a_dependent_is_planned_on_last_known_values_and_provisional_when_they_change() {
    let p = project();
    deploy(&p);
    // storage changes (its files), so it is planned; its plan says its ARN is known after apply.
    p.file("PLAN", "storage/notes.txt", "changed\n");
    let (code, events) = plan_json(&p, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        event_of(&events, "stack_skipped", "network")["data"]["reason"],
        "unchanged"
    );
    assert!(event_of(&events, "stack_planned", "storage")["data"]["provisional"].is_null());
    let app = &event_of(&events, "stack_planned", "app")["data"];
    assert_eq!(
        app["provisional"],
        serde_json::json!(["depends on storage.bucketArn (known after apply)"])
    );
    assert!(app["noPreview"].is_null());
    // Planned with the value the last deploy left, not an invented one.
    assert_eq!(
        planned(&events, "app"),
        [("for-arn:aws:s3:::logs-1".into(), "update".into(), false)]
    );
    // legacy did not change: it would be skipped.
    assert_eq!(
        event_of(&events, "stack_skipped", "legacy")["data"]["reason"],
        "unchanged"
    );
}

#[test]
fn a_plan_changes_no_history_and_a_deploy_after_it_still_deploys() {
    let p = project();
    let history = p.deployment_dir("PLAN").join("journal/dev/history.json");
    let (code, _) = plan_json(&p, &[]);
    assert_eq!(code, 0);
    assert!(!history.exists(), "a plan wrote history.json");
    let (code, events, _) = p.deploy_json("PLAN", &[]);
    assert_eq!(code, 0);
    assert_eq!(of_type(&events, "stack_deployed").len(), 4);
    assert!(of_type(&events, "stack_skipped").is_empty());

    let before = std::fs::read(&history).unwrap();
    // Every stack planned, one failing: still nothing recorded.
    p.file(
        "PLAN",
        "storage/plan.sh",
        "#!/bin/sh\necho 'Error: denied' >&2\nexit 1\n",
    );
    let (code, _) = plan_json(&p, &["--all"]);
    assert_eq!(code, 1);
    assert_eq!(
        std::fs::read(&history).unwrap(),
        before,
        "history.json changed"
    );
    // The next deploy skips only what is unchanged, as if no plan had run.
    p.file("PLAN", "storage/plan.sh", STORAGE_PLAN);
    let (code, events, _) = p.deploy_json("PLAN", &[]);
    assert_eq!(code, 0);
    let mut skipped = stacks_of(&events, "stack_skipped");
    skipped.sort();
    assert_eq!(skipped, ["app", "legacy", "network", "storage"]);
}

#[test]
fn a_plan_killed_half_way_leaves_no_stack_interrupted_for_the_next_deploy() {
    let p = project();
    deploy(&p);
    let hold = p.root().join("hold");
    std::fs::create_dir(&hold).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("cloud"))
        .arg("--root")
        .arg(p.root())
        .args(["plan", "PLAN", "-e", "dev", "--all", "--output", "json"])
        .env("PLAN_HOLD", &hold)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !hold.join("ready").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "storage's plan never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Until the journal says storage is being planned (it is written in batches).
    let running = |events: &[Value]| {
        events
            .iter()
            .any(|e| e["type"] == "stack_deploying" && e["data"]["stack"] == "storage")
    };
    while !running(&p.journal("PLAN", "dev")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the journal never said it"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    // Its program, in a process group of its own, outlives the kill: stop the group.
    let pid: i32 = std::fs::read_to_string(hold.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let group = unsafe { libc::getpgid(pid) };
    assert!(group > 0, "plan.sh is gone already");
    unsafe { libc::kill(-group, libc::SIGKILL) };
    while unsafe { libc::kill(-group, 0) } == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the group outlived SIGKILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The killed plan's journal says storage was running: a plan changed nothing, so the
    // deploy still skips it.
    let (code, events, _) = p.deploy_json("PLAN", &[]);
    assert_eq!(code, 0);
    let mut skipped = stacks_of(&events, "stack_skipped");
    skipped.sort();
    assert_eq!(skipped, ["app", "legacy", "network", "storage"]);
}

#[test]
fn a_failed_plan_says_the_tools_diagnostic_and_its_dependents_are_skipped_with_the_reason() {
    let p = project();
    p.file(
        "PLAN",
        "storage/plan.sh",
        "#!/bin/sh\necho planning\necho 'Error: the bucket policy is invalid' >&2\nexit 3\n",
    );
    let (code, events) = plan_json(&p, &[]);
    assert_eq!(code, 1);
    let failed = &event_of(&events, "stack_failed", "storage")["data"];
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the bucket policy is invalid"),
        "{failed}"
    );
    assert_eq!(
        event_of(&events, "stack_blocked", "app")["data"]["blockedBy"],
        "storage"
    );
    // The others are planned all the same.
    event_of(&events, "stack_planned", "network");
    event_of(&events, "stack_planned", "legacy");
    let (code, output) = plan(
        &p,
        &["--verbose", "--color", "never", "--detailed-exitcode"],
    );
    assert_eq!(code, 1);
    let out = text(&output);
    assert!(out.contains("storage  ✗ failed: "), "{out}");
    assert!(
        out.contains("app      ⊘ not planned: storage failed"),
        "{out}"
    );
}

#[test]
fn the_exit_codes_with_and_without_detailed_exitcode() {
    let p = project();
    let code = |args: &[&str]| plan(&p, args).0;
    // Changes: 0, or 2 when asked.
    assert_eq!(code(&[]), 0);
    assert_eq!(code(&["--detailed-exitcode"]), 2);
    // Bad input: 2, but 1 when 2 means "changes" (ours, and clap's).
    assert_eq!(code(&["-e", "nope"]), 2);
    assert_eq!(code(&["-e", "nope", "--detailed-exitcode"]), 1);
    assert_eq!(code(&["--parallelism", "0"]), 2);
    assert_eq!(code(&["--parallelism", "0", "--detailed-exitcode"]), 1);
    assert_eq!(code(&["--only", "nothing", "--detailed-exitcode"]), 1);
    // No changes: 0 either way.
    deploy(&p);
    assert_eq!(code(&["--detailed-exitcode"]), 0);
    assert_eq!(code(&[]), 0);
    // An error: 1 either way.
    p.file("PLAN", "storage/plan.sh", "#!/bin/sh\nexit 1\n");
    assert_eq!(code(&["--all"]), 1);
    assert_eq!(code(&["--all", "--detailed-exitcode"]), 1);
}

#[test]
fn a_plan_during_a_deploy_of_the_same_environment_is_refused() {
    let p = project();
    let ready = p.root().join("ready");
    p.manifest(
        "PLAN",
        &MANIFEST.replace(
            "deploy: echo deploying",
            &format!("deploy: touch {} && sleep 30", ready.display()),
        ),
    );
    let mut deploy = spawn_deploy_until(
        &p,
        "PLAN",
        &["--only", "legacy", "--output", "json"],
        std::process::Stdio::null(),
        &ready,
    );
    let (code, output) = plan(&p, &[]);
    // Ctrl-C: the deploy stops its stack and ends.
    unsafe { libc::kill(deploy.id() as i32, libc::SIGINT) };
    let _ = deploy.wait();
    assert_eq!(code, 3, "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("PLAN-dev"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
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

/// `name`'s configuration: one `terraform_data` holding `value`, and an output of it.
fn tf_stack(p: &Project, name: &str, input: Option<&str>, value: &str) {
    let variable = match input {
        Some(var) => format!("variable \"{var}\" {{ type = string }}\n"),
        None => String::new(),
    };
    p.file(
        "TF",
        &format!("{name}/main.tf"),
        &format!(
            "{variable}resource \"terraform_data\" \"main\" {{\n  input = {value}\n}}\n\
             output \"id\" {{ value = terraform_data.main.output }}\n"
        ),
    );
}

#[test]
fn real_terraform_three_stacks_with_inputs() {
    let Some(bin) = terraform() else { return };
    let p = Project::new();
    p.manifest(
        "TF",
        r#"environments: [dev]
defaults: { executor: terraform }
stacks:
  net: { path: net }
  db: { path: db, dependencies: [net], inputs: { net_id: "${net.id}" } }
  app: { path: app, dependencies: [db], inputs: { db_id: "${db.id}" } }
"#,
    );
    tf_stack(&p, "net", None, "\"net-1\"");
    tf_stack(&p, "db", Some("net_id"), "\"db-on-${var.net_id}\"");
    tf_stack(&p, "app", Some("db_id"), "\"app-on-${var.db_id}\"");
    let run = |args: &[&str]| {
        let output = p
            .cmd()
            .env("CLOUD_TERRAFORM_BIN", bin)
            .args(args)
            .args(["TF", "-e", "dev", "--output", "json"])
            .output()
            .unwrap();
        let code = output.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 2,
            "{args:?}: {code}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        (code, parse_events(&output.stdout))
    };

    // Nothing deployed: net is planned; what reads its id cannot be planned yet.
    let (code, events) = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2);
    let net = &event_of(&events, "stack_planned", "net")["data"];
    assert_eq!(net["counts"], counts(1, 0, 0, 0));
    assert_eq!(
        planned(&events, "net"),
        [("terraform_data.main".into(), "create".into(), false)]
    );
    let db = &event_of(&events, "stack_planned", "db")["data"];
    assert_eq!(
        db["noPreview"],
        "its inputs are known only once `net` is deployed"
    );

    let (code, _) = run(&["deploy"]);
    assert_eq!(code, 0);
    let (code, events) = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "nothing changed since the deploy");
    assert_eq!(stacks_of(&events, "stack_skipped"), ["net", "db", "app"]);

    // net's value changes: its output is known after apply, so db is provisional (planned on
    // the id it has now), and app — whose input db's plan changes — too.
    tf_stack(&p, "net", None, "\"net-2\"");
    let (code, events) = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2);
    let net = &event_of(&events, "stack_planned", "net")["data"];
    assert_eq!(net["counts"], counts(0, 1, 0, 0));
    assert!(net["provisional"].is_null());
    let db = &event_of(&events, "stack_planned", "db")["data"];
    assert_eq!(
        db["provisional"],
        serde_json::json!(["depends on net.id (known after apply)"])
    );
    assert_eq!(
        db["counts"],
        counts(0, 0, 0, 0),
        "planned on the id it has now"
    );
    // db's own plan may change once net applies, so app's may too.
    let app = &event_of(&events, "stack_planned", "app")["data"];
    assert_eq!(
        app["provisional"],
        serde_json::json!(["depends on `db` (provisional)"])
    );
}
