//! What an operator trusts `cloud` with: a secret is never shown (in any form, in any sink) and
//! never replaced by a placeholder value; a stack whose last attempt did not succeed is never
//! skipped; nothing `cloud` writes counts in a fingerprint. Every test drives the real binary.

mod common;
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{event_of as only, files_under, of_type, parse_events, stacks_of, Project};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` but those under `leave_out` (the stacks' own folders), as text. A
/// file gone between the listing and the read (a run going on renames `history.json.tmp`
/// into place) is passed over.
fn recorded(dir: &Path, leave_out: &[PathBuf]) -> String {
    files_under(dir)
        .iter()
        .filter(|path| !leave_out.iter().any(|l| path.starts_with(l)))
        .filter_map(|path| match std::fs::read(path) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned() + "\n"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("{}: {e}", path.display()),
        })
        .collect()
}

/// A Terraform stack's sensitive output feeds a command stack. When only the command stack
/// changes, the Terraform stack is skipped and its secret is read back from Terraform: the
/// dependent gets the real value, never `[secret]` (with `--only app --force` too), and the
/// output the dependent derives from it is secret as a whole.
#[test]
fn a_skipped_stacks_sensitive_output_is_read_back_never_a_placeholder() {
    let Some(binary) = common::real_terraform() else {
        return;
    };
    let p = Project::new();
    let received = p.root().join("received");
    p.manifest(
        "SEC",
        &format!(
            r#"environments: [dev]
stacks:
  db:
    executor: terraform
    binary: {binary}
    path: stacks/db
    inputs: {{ seed: {{ value: "${{env:SEED}}", secret: true }} }}
  app:
    executor: command
    dependencies: [db]
    path: stacks/app
    deploy: ./deploy.sh
    inputs: {{ pw: "${{db.password}}", copy: "${{db.seed_copy}}" }}
"#
        ),
    );
    p.file(
        "SEC",
        "stacks/db/main.tf",
        r#"variable "seed" { type = string }
resource "terraform_data" "db" { input = "db" }
output "password" {
  value     = "s3cr3t-pa55w0rd-xy"
  sensitive = true
}
output "seed_copy" { value = var.seed }
output "host" { value = "db.internal" }
"#,
    );
    let script = |version: &str| {
        format!(
            "#!/bin/sh\n# {version}\nprintf '%s|%s' \"$CLOUD_INPUT_PW\" \"$CLOUD_INPUT_COPY\" > {}\n\
             echo \"{{\\\"conn\\\": \\\"postgres://u:$CLOUD_INPUT_PW@db\\\"}}\" > \"$CLOUD_OUTPUTS\"\n",
            received.display()
        )
    };
    let deploy_sh = p.file("SEC", "stacks/app/deploy.sh", &script("v1"));
    common::chmod_x(&deploy_sh);
    let run = |args: &[&str]| {
        let out = p
            .cmd()
            .args(["deploy", "SEC", "-e", "dev", "-o", "json"])
            .args(args)
            .env("SEED", "seed-value-4242")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env_remove("CLOUD_TERRAFORM_BIN")
            .output()
            .unwrap();
        let events = parse_events(&out.stdout);
        (out.status.code(), events, out)
    };
    let real = "s3cr3t-pa55w0rd-xy|seed-value-4242";

    let (code, events, out) = run(&[]);
    assert_eq!(code, Some(0), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&received).unwrap(), real);
    let db = &only(&events, "stack_deployed", "db")["data"]["outputs"];
    assert_eq!(db["password"], "[secret]");
    // An output that echoes a secret input is secret.
    assert_eq!(db["seed_copy"], "[secret]");
    assert_eq!(db["host"], "db.internal");
    // An output derived from a secret is secret as a whole, not `postgres://u:[secret]@db`.
    assert_eq!(
        only(&events, "stack_deployed", "app")["data"]["outputs"]["conn"],
        "[secret]"
    );

    // Only the app changed: db is skipped, its secrets are read back from Terraform.
    std::fs::remove_file(&received).unwrap();
    std::fs::write(&deploy_sh, script("v2")).unwrap();
    let (code, events, out) = run(&[]);
    assert_eq!(code, Some(0), "{}", text(&out));
    assert_eq!(stacks_of(&events, "stack_skipped"), ["db"]);
    assert_eq!(stacks_of(&events, "stack_deployed"), ["app"]);
    assert_eq!(std::fs::read_to_string(&received).unwrap(), real);

    std::fs::remove_file(&received).unwrap();
    let (code, events, out) = run(&["--only", "app", "--force"]);
    assert_eq!(code, Some(0), "{}", text(&out));
    assert_eq!(stacks_of(&events, "stack_deployed"), ["app"]);
    assert_eq!(std::fs::read_to_string(&received).unwrap(), real);

    let everything = text(&out)
        + &recorded(
            &p.deployment_dir("SEC"),
            &[p.deployment_dir("SEC").join("stacks")],
        );
    assert!(everything.contains("[secret]"));
    for secret in ["s3cr3t-pa55w0rd-xy", "seed-value-4242", "u:[secret]@db"] {
        assert!(!everything.contains(secret), "`{secret}` is recorded");
    }
}

/// A command stack's secret output (derived from a secret input) cannot be read back from a
/// tool: when that stack is skipped, the dependent that reads it fails with
/// SECRET_UNAVAILABLE, naming the output and the stack, and its program never runs.
#[test]
fn a_secret_that_cannot_be_read_back_fails_the_dependent_with_secret_unavailable() {
    let p = Project::new();
    let received = p.root().join("received");
    let manifest = |version: &str| {
        format!(
            r#"environments: [dev]
stacks:
  src:
    executor: command
    deploy: |
      echo "{{\"conn\": \"postgres://u:$CLOUD_INPUT_TOKEN@db\"}}" > "$CLOUD_OUTPUTS"
    inputs: {{ token: {{ value: "${{env:TOKEN}}", secret: true }} }}
  user:
    executor: command
    dependencies: [src]
    deploy: printf '%s' "$CLOUD_INPUT_CONN" > {}; true {version}
    inputs: {{ conn: "${{src.conn}}" }}
"#,
            received.display()
        )
    };
    p.manifest("UN", &manifest("v1"));
    let run = || {
        let out = p
            .cmd()
            .args(["deploy", "UN", "-e", "dev", "-o", "json"])
            .env("TOKEN", "tok-98765")
            .output()
            .unwrap();
        (out.status.code(), parse_events(&out.stdout), out)
    };
    let (code, _, out) = run();
    assert_eq!(code, Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&received).unwrap(),
        "postgres://u:tok-98765@db"
    );

    std::fs::remove_file(&received).unwrap();
    p.manifest("UN", &manifest("v2"));
    let (code, events, out) = run();
    assert_eq!(code, Some(1), "{}", text(&out));
    assert_eq!(stacks_of(&events, "stack_skipped"), ["src"]);
    let error = &only(&events, "stack_failed", "user")["data"]["error"];
    assert_eq!(error["code"], "SECRET_UNAVAILABLE", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`conn`") && message.contains("`src`"),
        "{message}"
    );
    assert!(
        error["details"]
            .as_str()
            .unwrap()
            .contains("--only src,user"),
        "{error}"
    );
    assert!(!received.exists(), "the dependent ran with a placeholder");
}

/// Secrets in every form a program prints them — in a `::cloud::` resource's name, id and
/// URN, JSON-escaped (`cat "$CLOUD_INPUTS"`), URL-encoded, a multi-line key line by line, and
/// in an output derived from one — reach no sink: not the JSON stream, the verbose view, the
/// journal, history, file logs, `status` or `events`.
#[test]
fn secrets_never_reach_any_sink_in_any_form() {
    let p = Project::new();
    p.manifest(
        "LEAK",
        r#"environments: [dev]
stacks:
  app:
    executor: command
    path: app
    deploy: ./deploy.sh
    inputs:
      pw: { value: "${env:PW}", secret: true }
      name: { value: "${env:NAME}", secret: true }
      key: { value: "${env:KEY}", secret: true }
"#,
    );
    let script = p.file(
        "LEAK",
        "app/deploy.sh",
        r#"#!/bin/sh
echo "::cloud::{\"resource\":{\"type\":\"aws:s3/bucket:Bucket\",\"name\":\"b-$CLOUD_INPUT_NAME\"},\"op\":\"creating\"}"
echo "::cloud::{\"resource\":{\"type\":\"aws:s3/bucket:Bucket\",\"name\":\"b-$CLOUD_INPUT_NAME\"},\"op\":\"created\",\"id\":\"id-$CLOUD_INPUT_NAME\"}"
cat "$CLOUD_INPUTS"
python3 -c 'import os, urllib.parse; print("url:", urllib.parse.quote(os.environ["CLOUD_INPUT_PW"], safe=""))'
echo "$CLOUD_INPUT_KEY"
echo "$CLOUD_INPUT_KEY" >&2
echo "{\"conn\": \"postgres://u:$CLOUD_INPUT_NAME@db\", \"plain\": \"ok\"}" > "$CLOUD_OUTPUTS"
"#,
    );
    common::chmod_x(&script);
    let pw = r#"p@ss "w0rd"/x y"#;
    let name = "hunter2hunter2";
    let key =
        "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0\nAQEFAASCBKcwggSjAgEAAo\n-----END KEY-----";
    let with_secrets = |args: &[&str]| {
        p.cmd()
            .args(args)
            .env("PW", pw)
            .env("NAME", name)
            .env("KEY", key)
            .output()
            .unwrap()
    };
    let json = with_secrets(&["deploy", "LEAK", "-e", "dev", "-o", "json", "--force"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let events = parse_events(&json.stdout);
    assert_eq!(
        only(&events, "stack_deployed", "app")["data"]["outputs"],
        serde_json::json!({ "conn": "[secret]", "plain": "ok" })
    );
    let verbose = with_secrets(&["deploy", "LEAK", "-e", "dev", "--verbose", "--force"]);
    assert_eq!(verbose.status.code(), Some(0), "{}", text(&verbose));
    let status = with_secrets(&["status", "LEAK", "-e", "dev", "-o", "json"]);
    let listed = with_secrets(&["events", "LEAK", "-e", "dev"]);
    let logs = with_secrets(&["logs", "LEAK", "-e", "dev"]);
    let timing = with_secrets(&["status", "LEAK", "-e", "dev", "--timing"]);
    let replayed = with_secrets(&["replay", "LEAK", "-e", "dev", "--instant", "--verbose"]);
    let replayed_json = with_secrets(&["replay", "LEAK", "-e", "dev", "--instant", "-o", "json"]);
    assert_eq!(replayed.status.code(), Some(0), "{}", text(&replayed));
    let everything = [
        &json,
        &verbose,
        &status,
        &listed,
        &logs,
        &timing,
        &replayed,
        &replayed_json,
    ]
    .iter()
    .map(|o| text(o))
    .collect::<String>()
        + &recorded(
            &p.deployment_dir("LEAK"),
            &[p.deployment_dir("LEAK").join("app")],
        );
    assert!(everything.contains("[secret]"));
    let json_escaped = serde_json::to_string(pw).unwrap();
    let url = "p%40ss%20%22w0rd%22%2Fx%20y";
    let mut forms = vec![
        pw,
        &json_escaped[1..json_escaped.len() - 1],
        url,
        name,
        "MIIEvQIBADANBgkqhkiG9w0",
        "AQEFAASCBKcwggSjAgEAAo",
    ];
    forms.push("w0rd");
    for form in forms {
        assert!(!everything.contains(form), "`{form}` is shown");
    }
}

/// A stack whose change failed half-way is not skipped when the change is reverted: its
/// state may hold what the failed attempt did. It runs again, and says why.
#[test]
fn a_stack_whose_last_attempt_failed_is_never_skipped() {
    let p = Project::new();
    let state = p.root().join("state");
    p.manifest(
        "FAIL",
        &format!(
            r#"environments: [dev]
stacks:
  s:
    executor: command
    path: s
    deploy: cp conf {state} && ! grep -q B conf
"#,
            state = state.display()
        ),
    );
    p.file("FAIL", "s/conf", "A\n");
    let deploy = |args: &[&str]| {
        p.cmd()
            .args(["deploy", "FAIL", "-e", "dev", "--verbose"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = deploy(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // B fails after changing the state.
    p.file("FAIL", "s/conf", "B\n");
    let out = deploy(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "B\n");
    // Back to A: the fingerprint is A's again, but the state is B's.
    p.file("FAIL", "s/conf", "A\n");
    let out = deploy(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(!shown.contains("Smart skip"), "{shown}");
    assert!(shown.contains("its last attempt failed"), "{shown}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "A\n");
    // Now it succeeded: the next run skips it.
    let out = p
        .cmd()
        .args(["deploy", "FAIL", "-e", "dev", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(
        stacks_of(&parse_events(&out.stdout), "stack_skipped"),
        ["s"]
    );
}

/// A run killed with SIGKILL while a stack ran leaves that stack unsettled, even when
/// history.json had no time to say so: the next run deploys it again.
#[test]
fn a_stack_running_when_cloud_was_killed_runs_again() {
    let p = Project::new();
    let gate = p.root().join("slow");
    let started = p.root().join("started");
    let pid = p.root().join("pid");
    p.manifest(
        "KILL",
        &format!(
            r#"environments: [dev]
stacks:
  s:
    executor: command
    deploy: if [ -f {gate} ]; then echo $$ > {pid}; touch {started}; sleep 60; fi
"#,
            gate = gate.display(),
            pid = pid.display(),
            started = started.display()
        ),
    );
    let out = p
        .cmd()
        .args(["deploy", "KILL", "-e", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(&gate, "").unwrap();
    let mut child = common::spawn_deploy_until(
        &p,
        "KILL",
        &["--force", "-o", "json"],
        std::process::Stdio::null(),
        &started,
    );
    // Killed once the journal holds the stack's start (history.json is saved at most once a
    // second, so it may not say so yet).
    let journal = p.deployment_dir("KILL").join("journal/dev");
    common::wait_for("two stack_deploying journaled", 20, || {
        recorded(&journal, &[]).contains(r#""type":"stack_deploying""#)
            && recorded(&journal, &[]).matches("stack_deploying").count() >= 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Its program outlived it; stop it as an operator would.
    let sh: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(-sh, libc::SIGKILL) };
    unsafe { libc::kill(sh, libc::SIGKILL) };
    // A signal is not a death: the next deploy would still see the group under a loaded machine.
    common::wait_for("the killed program to end", 10, || {
        cloud::store::groups::members(sh as u32).is_empty()
    });
    std::fs::remove_file(&gate).unwrap();

    let out = p
        .cmd()
        .args(["deploy", "KILL", "-e", "dev", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events = parse_events(&out.stdout);
    assert_eq!(
        stacks_of(&events, "stack_deployed"),
        ["s"],
        "{}",
        text(&out)
    );
    assert!(of_type(&events, "stack_log")
        .iter()
        .any(|e| e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("its last attempt was interrupted")));
}

/// A stack without `path` deploys from the deployment folder, where `cloud` keeps its journal,
/// logs, history and spool: none of them makes it look changed.
#[test]
fn what_cloud_writes_beside_the_manifest_does_not_redeploy_a_stack() {
    let p = Project::new();
    p.manifest(
        "SPOOL",
        r#"environments: [dev]
stacks:
  s: { executor: command, deploy: echo hi }
"#,
    );
    let deploy = || {
        let out = p
            .cmd()
            .args(["deploy", "SPOOL", "-e", "dev", "-o", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        parse_events(&out.stdout)
    };
    assert_eq!(stacks_of(&deploy(), "stack_deployed"), ["s"]);
    // What a run with an unreachable DynamoDB table leaves behind.
    p.file(
        "SPOOL",
        "spool/dynamodb/cloud-deployment-events/dev/20261203T000000000Z-0001.jsonl",
        "{}\n",
    );
    assert_eq!(stacks_of(&deploy(), "stack_skipped"), ["s"]);
    assert_eq!(stacks_of(&deploy(), "stack_skipped"), ["s"]);
}
