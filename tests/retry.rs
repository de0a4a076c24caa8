//! Retries of transient errors (`retry:` in the manifest, `--no-retry`), through the real
//! binary: a command stack whose script fails with a throttling error, then succeeds.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A deploy script that counts its runs in `counter` and fails the first `failures` of them,
/// printing `message` on stderr.
fn flaky(counter: &Path, failures: u32, message: &str) -> String {
    format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; \
         if [ $n -le {failures} ]; then echo '{message}' >&2; exit 1; fi; echo done",
        c = counter.display()
    )
}

/// A manifest with one command stack `api` running `script`, with `retry` (YAML) when given.
fn manifest(p: &Project, script: &str, retry: Option<&str>, defaults: Option<&str>) {
    let mut yaml = String::from("environments: [dev]\n");
    if let Some(defaults) = defaults {
        yaml.push_str(&format!("defaults:\n  retry: {defaults}\n"));
    }
    yaml.push_str(&format!(
        "stacks:\n  api:\n    executor: command\n    deploy: {}\n",
        serde_json::to_string(script).unwrap()
    ));
    if let Some(retry) = retry {
        yaml.push_str(&format!("    retry: {retry}\n"));
    }
    p.manifest("R", &yaml);
}

fn runs(counter: &Path) -> u32 {
    std::fs::read_to_string(counter)
        .map(|t| t.trim().parse().unwrap())
        .unwrap_or(0)
}

const THROTTLED: &str = "ThrottlingException: Rate exceeded";
const FAST: &str = "{ attempts: 3, backoff: { first: 0.1s, cap: 0.2s } }";

fn counter(p: &Project) -> PathBuf {
    p.root().join("runs")
}

#[test]
fn a_throttled_command_stack_is_deployed_on_its_third_attempt() {
    let p = Project::new();
    let runs_file = counter(&p);
    manifest(&p, &flaky(&runs_file, 2, THROTTLED), Some(FAST), None);
    let (junit, report) = (p.root().join("junit.xml"), p.root().join("report.json"));
    let output = p
        .cmd()
        .args(["deploy", "R", "-e", "dev", "--junit"])
        .arg(&junit)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(runs(&runs_file), 3, "three attempts");

    // The view says each retry, and the warning the stack ends with.
    assert!(text.contains("↻ retry 2/3 in"), "{text}");
    assert!(text.contains("↻ retry 3/3 in"), "{text}");
    assert!(
        text.contains("deployed on attempt 3 of 3 after ThrottlingException"),
        "{text}"
    );

    // The journal: two retries (attempt N of M, the pattern, the error, the delay), then the
    // stack deployed on its third attempt.
    let events = p.journal("R", "dev");
    let retrying = of_type(&events, "stack_retrying");
    assert_eq!(retrying.len(), 2, "{events:#?}");
    for (n, e) in retrying.iter().enumerate() {
        let data = &e["data"];
        assert_eq!(data["stack"], "api");
        assert_eq!(data["attempt"], n as u64 + 2);
        assert_eq!(data["attempts"], 3);
        assert_eq!(data["pattern"], "ThrottlingException");
        assert_eq!(data["error"]["message"], THROTTLED);
        let delay = data["delaySeconds"].as_f64().unwrap();
        assert!((0.0..=0.2).contains(&delay), "{delay}");
    }
    assert_eq!(of_type(&events, "stack_deployed").len(), 1);
    assert!(log_messages(&events, "api", Some("warn"))
        .contains(&"deployed on attempt 3 of 3 after ThrottlingException".to_owned()));

    // The JUnit case passed, with its attempts noted; the report counts them.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(xml.contains("<system-out>attempt 1 of 3 failed (ThrottlingException): ThrottlingException: Rate exceeded; retried after"), "{xml}");
    assert!(xml.contains("attempt 2 of 3 failed"), "{xml}");
    assert!(
        xml.contains("deployed on attempt 3 of 3 after ThrottlingException</system-out>"),
        "{xml}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let stack = &report["stacks"][0];
    assert_eq!(stack["attempts"], 3);
    assert_eq!(stack["retries"].as_array().unwrap().len(), 2);

    // The file log has the retry lines too.
    let logs: String = files_under(&p.deployment_dir("R").join("logs"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(logs.contains("WARN  [api] ↻ retry 2/3 in"), "{logs}");
}

#[test]
fn a_stack_that_runs_out_of_attempts_fails_with_its_last_error_and_says_how_many() {
    let p = Project::new();
    let runs_file = counter(&p);
    manifest(
        &p,
        &flaky(&runs_file, 99, THROTTLED),
        Some("{ attempts: 2, backoff: { first: 0.1s } }"),
        None,
    );
    let (code, events, _) = p.deploy_json("R", &[]);
    assert_eq!(code, 1);
    assert_eq!(runs(&runs_file), 2);
    assert_eq!(of_type(&events, "stack_retrying").len(), 1);
    let failed = &event_of(&events, "stack_failed", "api")["data"]["error"];
    assert_eq!(
        failed["message"],
        "ThrottlingException: Rate exceeded (failed on attempt 2 of 2)"
    );
}

#[test]
fn a_failure_that_is_not_transient_is_not_retried() {
    let p = Project::new();
    let runs_file = counter(&p);
    let taken = "BucketAlreadyExists: the requested bucket name is not available";
    manifest(&p, &flaky(&runs_file, 1, taken), Some(FAST), None);
    let (code, events, _) = p.deploy_json("R", &[]);
    assert_eq!(code, 1);
    assert_eq!(runs(&runs_file), 1, "one attempt");
    assert!(of_type(&events, "stack_retrying").is_empty());
    let failed = &event_of(&events, "stack_failed", "api")["data"]["error"];
    assert_eq!(failed["message"], taken);
}

/// A validation error is the code's, not the weather's: never retried, even when a pattern of
/// `errors:` matches it.
#[test]
fn a_validation_error_is_never_retried() {
    let p = Project::new();
    let runs_file = counter(&p);
    manifest(
        &p,
        &flaky(&runs_file, 1, "Error: Invalid reference"),
        Some("{ attempts: 3, errors: ['Error'], backoff: { first: 0.1s } }"),
        None,
    );
    let (code, events, _) = p.deploy_json("R", &[]);
    assert_eq!(code, 1);
    assert_eq!(runs(&runs_file), 1, "one attempt");
    assert!(of_type(&events, "stack_retrying").is_empty());
    let failed = &event_of(&events, "stack_failed", "api")["data"]["error"];
    assert_eq!(failed["message"], "Error: Invalid reference");
}

/// A script may not be safe to run twice: only its own `retry:` says it is.
#[test]
fn a_command_stack_without_its_own_retry_is_not_retried() {
    let p = Project::new();
    let runs_file = counter(&p);
    manifest(&p, &flaky(&runs_file, 1, THROTTLED), None, Some(FAST));
    let (code, events, _) = p.deploy_json("R", &[]);
    assert_eq!(code, 1);
    assert_eq!(runs(&runs_file), 1, "one attempt");
    assert!(of_type(&events, "stack_retrying").is_empty());
}

#[test]
fn no_retry_tries_each_stack_once() {
    let p = Project::new();
    let runs_file = counter(&p);
    manifest(&p, &flaky(&runs_file, 1, THROTTLED), Some(FAST), None);
    let (code, events, _) = p.deploy_json("R", &["--no-retry"]);
    assert_eq!(code, 1);
    assert_eq!(runs(&runs_file), 1, "one attempt");
    assert!(of_type(&events, "stack_retrying").is_empty());
}

/// Ctrl-C during a backoff wait stops at once: the run does not sit out the wait.
#[test]
fn ctrl_c_during_a_backoff_exits_130_at_once() {
    let p = Project::new();
    let runs_file = counter(&p);
    manifest(
        &p,
        &flaky(&runs_file, 1, THROTTLED),
        Some("{ attempts: 3, backoff: { first: 1h, cap: 1h } }"),
        None,
    );
    let mut child = p
        .process()
        .args(["deploy", "R", "-e", "dev", "--output", "json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = p.deployment_dir("R").join("journal/dev");
    let retrying = || {
        files_under(&journal).iter().any(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| t.contains("\"type\":\"stack_retrying\""))
        })
    };
    if !poll_until(30, retrying) {
        let _ = child.kill();
        panic!("the stack was never retried");
    }
    let sent = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = sent + Duration::from_secs(1);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running a second after SIGINT, during a backoff");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(runs(&runs_file), 1, "the second attempt never started");
    let events = p.journal("R", "dev");
    let failed = &event_of(&events, "stack_failed", "api")["data"]["error"];
    assert_eq!(failed["code"], "CANCELLED");
    let last = events.last().unwrap();
    assert_eq!(last["data"]["cancelled"], true);
}

/// Each mistake in `retry:` is refused with its place and a fix.
#[test]
fn a_bad_retry_says_what_and_where() {
    let cases = [
        (
            "{ errors: ['Rate (exceeded'] }",
            "`retry.errors`: `Rate (exceeded` is not a valid regular expression",
            "deployment.yaml:6:",
        ),
        (
            "{ attempts: 0 }",
            "`retry.attempts` must be a whole number from 1 to 20, found `0`",
            "deployment.yaml:6:",
        ),
        (
            "{ backof: { first: 1s } }",
            "unknown key `backof` in `retry` of stack `api`",
            "did you mean `backoff`?",
        ),
        (
            "{ backoff: { first: 10s, cap: 5s } }",
            "`retry.backoff.cap` (5s) is shorter than `first` (10s)",
            "deployment.yaml:6:",
        ),
        (
            "{ backoff: { first: soon } }",
            "`retry.backoff.first` must be a duration",
            "deployment.yaml:6:",
        ),
    ];
    for (retry, message, place) in cases {
        let p = Project::new();
        manifest(&p, "true", Some(retry), None);
        let output = p.cmd().args(["validate", "R"]).output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{retry}: {err}");
        assert!(err.contains(message), "{retry}: {err}");
        assert!(err.contains(place), "{retry}: {err}");
    }
    // Under `defaults:` too.
    let p = Project::new();
    manifest(&p, "true", None, Some("{ only: ['[a-'] }"));
    let output = p.cmd().args(["validate", "R"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`retry.only`: `[a-` is not a valid regular expression"),
        "{err}"
    );
    assert!(err.contains("deployment.yaml:3:"), "{err}");
}

/// A destroy is retried like a deploy, and says so the same way.
#[test]
fn a_throttled_destroy_is_retried() {
    let p = Project::new();
    let runs_file = counter(&p);
    p.manifest(
        "R",
        &format!(
            "environments: [dev]\nstacks:\n  api:\n    executor: command\n    deploy: 'true'\n    \
             destroy: {}\n    retry: {FAST}\n",
            serde_json::to_string(&flaky(&runs_file, 1, THROTTLED)).unwrap()
        ),
    );
    let output = p
        .cmd()
        .args(["destroy", "R", "-e", "dev", "--yes", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(runs(&runs_file), 2);
    let events = parse_events(&output.stdout);
    assert_eq!(of_type(&events, "stack_retrying").len(), 1);
    assert_eq!(of_type(&events, "stack_destroyed").len(), 1);
    assert!(log_messages(&events, "api", Some("warn"))
        .contains(&"destroyed on attempt 2 of 3 after ThrottlingException".to_owned()));
}

/// The audit trail's item of a `stack_retrying` names its stack, and reads back as written.
#[test]
fn a_retry_is_an_audit_trail_item_like_any_event() {
    use cloud::event::*;
    let data = EventData::StackRetrying(StackRetrying {
        stack: "api".into(),
        attempt: 2,
        attempts: 3,
        pattern: "ThrottlingException".into(),
        error: ErrorDetail {
            code: ErrorCode::CommandFailed,
            message: THROTTLED.into(),
            details: None,
        },
        delay_seconds: 4.5,
    });
    let event = cloud::testing::event(7, data.clone());
    let item = cloud::store::dynamodb::item_json(&event, "run-1", None);
    assert_eq!(item["type"], "stack_retrying");
    assert_eq!(item["stack"], "api");
    assert_eq!(item["data"]["attempt"], 2);
    assert_eq!(item["data"]["delaySeconds"], 4.5);
    let back = EventData::from_type_and_value("stack_retrying", data.body_value()).unwrap();
    assert_eq!(back, data);
}

/// Terraform is retried without asking (its state says what is done): a provisioner throttled
/// once is applied on the second attempt, by the real program.
#[test]
fn a_real_terraform_stack_throttled_once_is_applied_on_its_second_attempt() {
    let Some(_) = real_terraform() else {
        return;
    };
    let p = Project::new();
    let runs_file = counter(&p);
    p.file(
        "T",
        "stacks/queue/main.tf",
        &format!(
            "resource \"terraform_data\" \"queue\" {{\n  provisioner \"local-exec\" {{\n    \
             command = {}\n  }}\n}}\n",
            serde_json::to_string(&flaky(&runs_file, 1, THROTTLED)).unwrap()
        ),
    );
    p.manifest(
        "T",
        "environments: [dev]\ndefaults:\n  retry: { backoff: { first: 0.1s } }\nstacks:\n  \
         queue: { executor: terraform, path: stacks/queue }\n",
    );
    let (code, events, output) = p.deploy_json("T", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(runs(&runs_file), 2);
    let retrying = of_type(&events, "stack_retrying");
    assert_eq!(retrying.len(), 1, "{events:#?}");
    let data = &retrying[0]["data"];
    assert_eq!(
        (data["attempt"].as_u64(), data["attempts"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(data["error"]["code"], "TERRAFORM_ERROR");
    assert!(log_messages(&events, "queue", Some("warn"))
        .contains(&"deployed on attempt 2 of 3 after ThrottlingException".to_owned()));
}
