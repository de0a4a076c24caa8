//! Notifications through the real binary, to real receivers on loopback: a local SMTP server
//! (PyPI `aiosmtpd`, `tests/support/smtp_receiver.py`) and HTTP receivers written here that
//! stand in for Slack, PagerDuty and webhook endpoints, recording what they get.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloud::executor::registry;
use common::{deploy_json_with, of_type, Project};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const ID: &str = "D1BRV40";

/// Four stacks in four layers; `database-rds` (layer 3) fails with `fail` when given.
fn manifest(notifications: &str, fail: Option<&str>) -> String {
    let fail = fail.map_or(String::new(), |f| format!(", fail: \"{f}\""));
    format!(
        r#"environments: [dev, prod]
stacks:
  network:
    executor: simulate
    resources: [ {{ type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0.02 }} ]
  security:
    dependencies: [network]
    executor: simulate
    resources: [ {{ type: "aws:iam/role:Role", name: app-role, seconds: 0.02 }} ]
  database-rds:
    dependencies: [security]
    executor: simulate
    resources: [ {{ type: "aws:rds/instance:Instance", name: main-db, seconds: 0.02{fail} }} ]
  api:
    dependencies: [database-rds]
    executor: simulate
    resources: [ {{ type: "aws:lambda/function:Function", name: api, seconds: 0.02 }} ]
notifications:
{notifications}
"#
    )
}

/// `cloud deploy D1BRV40 -e dev --output json` with `env` set.
fn deploy(p: &Project, args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<Value>, Output) {
    let mut cmd = p.cmd();
    cmd.envs(env.iter().copied());
    deploy_json_with(cmd, ID, args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// An HTTP receiver.

#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map_or("", String::as_str)
    }
}

/// Records every request and answers with the status `answer` gives for its path.
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(answer: fn(&str) -> u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                std::thread::spawn(move || serve(stream, answer, &record));
            }
        });
        Receiver { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests to `path`, in the order they came.
    fn requests(&self, path: &str) -> Vec<Request> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// One connection: requests until the client closes it (keep-alive) or after an error answer.
fn serve(stream: TcpStream, answer: fn(&str) -> u16, record: &Mutex<Vec<Request>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = answer(&path);
        record.lock().unwrap().push(Request {
            path,
            headers,
            body,
        });
        let (reason, text) = match status {
            200 => ("OK", "ok"),
            202 => (
                "Accepted",
                r#"{"status":"success","message":"Event processed"}"#,
            ),
            400 => ("Bad Request", "invalid_payload"),
            _ => ("Internal Server Error", "boom"),
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn answers_ok(path: &str) -> u16 {
    if path.starts_with("/pagerduty") {
        202
    } else {
        200
    }
}

// ---------------------------------------------------------------------------------------------
// A local SMTP server.

/// The Python that has aiosmtpd: `CLOUD_TEST_PYTHON` (`.ci/run` sets it), else `python3`.
/// Missing: the test fails in CI and is skipped, loudly, elsewhere.
fn smtp_python(test: &str) -> Option<String> {
    let candidates: Vec<String> = std::env::var("CLOUD_TEST_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_owned()])
        .collect();
    for python in &candidates {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python.clone());
        }
    }
    let how = "python3 -m venv /tmp/smtp-venv && /tmp/smtp-venv/bin/pip install aiosmtpd, \
               then run the tests with CLOUD_TEST_PYTHON=/tmp/smtp-venv/bin/python";
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{test}: aiosmtpd is missing (tried {candidates:?}); {how}");
    }
    eprintln!("\n*** SKIPPED {test}: aiosmtpd is missing (tried {candidates:?}); {how} ***\n");
    None
}

struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start(python: &str, login: Option<(&str, &str)>) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_receiver.py");
        let mut cmd = Command::new(python);
        cmd.arg(script).arg(dir.path());
        if let Some((user, password)) = login {
            cmd.args([user, password]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            panic!("the SMTP receiver did not start (it said {line:?})");
        };
        SmtpServer { child, port, dir }
    }

    /// Every mail received, in order.
    fn mails(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[track_caller]
fn has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn slack_pagerduty_and_webhooks_on_a_failure_then_a_resolve_on_success() {
    let rx = Receiver::start(answers_ok);
    let slack_path = "/services/T000/B000/XXXXSECRET";
    let notifications = format!(
        r#"  dashboardUrl: https://cloud.example.com
  slack: {{ webhookUrl: "${{TEST_SLACK_URL}}" }}
  pagerduty: {{ routingKey: "${{TEST_PD_KEY}}", url: "{}" }}
  webhooks: [ {{ url: "{}", secret: "${{TEST_HOOK_SECRET}}" }} ]"#,
        rx.url("/pagerduty/v2/enqueue"),
        rx.url("/hook"),
    );
    let slack_url = rx.url(slack_path);
    let env = [
        ("TEST_SLACK_URL", slack_url.as_str()),
        ("TEST_PD_KEY", "R0UT1NGKEY0000000000000000000000"),
        ("TEST_HOOK_SECRET", "whsec-test-4f2a"),
    ];
    let p = Project::new();
    p.manifest(
        ID,
        &manifest(&notifications, Some("Insufficient IAM permissions")),
    );
    let (code, events, out) = deploy(&p, &[], &env);
    assert_eq!(code, 1, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // Slack: the stack's failure, then the run's (the seed's message), nothing more.
    let slack = rx.requests(slack_path);
    assert_eq!(slack.len(), 2, "{slack:?}");
    let stack_failed = slack[0].json();
    assert_eq!(
        stack_failed["text"],
        "❌ Stack Failed: database-rds (D1BRV40-dev)"
    );
    let failed = slack[1].json();
    assert_eq!(failed["text"], "🚨 Deployment Failed: D1BRV40-dev");
    let blocks = &failed["blocks"];
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["text"]["text"],
        "🚨 Deployment Failed: D1BRV40-dev"
    );
    assert_eq!(
        blocks[1]["text"]["text"],
        "*Stack:* database-rds\n*Error:* Unable to create aws:rds/instance:Instance (main-db): \
         Insufficient IAM permissions"
    );
    let timing = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(timing.starts_with("*Duration:* "), "{timing}");
    assert!(timing.ends_with("\n*Failed at:* Layer 3/4"), "{timing}");
    let actions = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("buttons");
    let buttons: Vec<(&str, &str)> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["text"]["text"].as_str().unwrap(),
                b["url"].as_str().unwrap(),
            )
        })
        .collect();
    let base = "https://cloud.example.com/deployments/D1BRV40/dev";
    assert_eq!(
        buttons,
        [
            ("View Logs", &*format!("{base}/logs?stack=database-rds")),
            ("Retry", &*format!("{base}/retry")),
            ("Rollback", &*format!("{base}/rollback")),
        ]
    );

    // PagerDuty: one trigger, keyed by deployment and environment; remembered for a resolve.
    let pd = rx.requests("/pagerduty/v2/enqueue");
    assert_eq!(pd.len(), 1, "{pd:?}");
    let trigger = pd[0].json();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(trigger["dedup_key"], "cloud-D1BRV40-dev");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["payload"]["source"], "D1BRV40-dev");
    assert_eq!(trigger["payload"]["component"], "database-rds");
    assert_eq!(
        trigger["payload"]["summary"],
        "Deployment Failed: D1BRV40-dev: database-rds: Unable to create \
         aws:rds/instance:Instance (main-db): Insufficient IAM permissions"
    );
    assert_eq!(
        trigger["payload"]["custom_details"]["failedAt"],
        "Layer 3/4"
    );
    assert_eq!(trigger["client_url"], base);
    let state_file = p.deployment_dir(ID).join("journal/dev/pagerduty.json");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["open"]["pagerduty"]["dedupKey"], "cloud-D1BRV40-dev");

    // Webhooks: the four trigger events, each its envelope as journaled, signed.
    let hooks = rx.requests("/hook");
    let types: Vec<String> = hooks
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "deployment_started",
            "stack_failed",
            "deployment_failed",
            "deployment_complete"
        ]
    );
    let journal = p.journal(ID, "dev");
    let run_id = of_type(&events, "deployment_started")[0]["data"]["runId"]
        .as_str()
        .unwrap()
        .to_owned();
    for hook in &hooks {
        let body = hook.json();
        let journaled = journal
            .iter()
            .find(|e| e["sequence"] == body["sequence"])
            .unwrap();
        assert_eq!(&body, journaled);
        assert_eq!(hook.header("X-Cloud-Event"), body["type"]);
        assert_eq!(hook.header("content-type"), "application/json");
        assert_eq!(
            hook.header("X-Cloud-Delivery"),
            format!("{run_id}-{}", body["sequence"])
        );
        verify_signature(hook, b"whsec-test-4f2a");
    }

    // The run goes well now: Slack says so, and PagerDuty's incident is resolved.
    p.manifest(ID, &manifest(&notifications, None));
    let (code, _, out) = deploy(&p, &[], &env);
    assert_eq!(code, 0, "{}", stderr(&out));
    let slack = rx.requests(slack_path);
    assert_eq!(slack.len(), 3);
    let complete = slack[2].json();
    assert_eq!(complete["text"], "✅ Deployment Complete: D1BRV40-dev");
    let fields: Vec<&str> = complete["blocks"][2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    // The two stacks that deployed in the failed run are unchanged: smart skip leaves them.
    assert_eq!(
        &fields[..3],
        ["*Total Stacks:*\n4", "*Deployed:*\n2", "*Skipped:*\n2"]
    );
    assert!(fields[3].starts_with("*Duration:*\n"), "{fields:?}");
    let pd = rx.requests("/pagerduty/v2/enqueue");
    assert_eq!(pd.len(), 2);
    let resolve = pd[1].json();
    assert_eq!(
        resolve,
        serde_json::json!({
            "routing_key": "R0UT1NGKEY0000000000000000000000",
            "event_action": "resolve",
            "dedup_key": "cloud-D1BRV40-dev",
        })
    );
    assert!(!state_file.exists(), "the incident is still remembered");

    // A third success resolves nothing more.
    let (code, _, _) = deploy(&p, &[], &env);
    assert_eq!(code, 0);
    assert_eq!(rx.requests("/pagerduty/v2/enqueue").len(), 2);
}

/// `X-Cloud-Signature: sha256=<hex>` is HMAC-SHA256 of `<X-Cloud-Timestamp>.<body>`.
#[track_caller]
fn verify_signature(request: &Request, secret: &[u8]) {
    let timestamp = request.header("X-Cloud-Timestamp");
    let now = chrono::Utc::now().timestamp();
    let ts: i64 = timestamp.parse().expect("a Unix timestamp");
    assert!((now - ts).abs() < 300, "timestamp {ts} is not now ({now})");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        request.header("X-Cloud-Signature"),
        format!("sha256={expected}")
    );
}

#[test]
fn mail_on_start_failure_and_completion_in_the_seeds_words() {
    let Some(python) = smtp_python("mail_on_start_failure_and_completion_in_the_seeds_words")
    else {
        return;
    };
    let smtp = SmtpServer::start(&python, None);
    let notifications = format!(
        r#"  dashboardUrl: https://cloud.example.com/
  email:
    smtp: "smtp://127.0.0.1:{}"
    from: "cloud <cloud@example.com>"
    to: [owner@example.com, oncall@example.com]"#,
        smtp.port
    );
    let p = Project::new();
    p.manifest(
        ID,
        &manifest(&notifications, Some("Insufficient IAM permissions")),
    );
    let (code, _, out) = deploy(&p, &[], &[]);
    assert_eq!(code, 1, "{}", stderr(&out));
    let mails = smtp.mails();
    let subjects: Vec<&str> = mails
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "→ Deployment Started: D1BRV40-dev",
            "✗ Stack Failed: database-rds (D1BRV40-dev)",
            "✗ Deployment Failed: D1BRV40-dev",
        ]
    );
    for mail in &mails {
        assert_eq!(mail["mailFrom"], "cloud@example.com");
        assert_eq!(
            mail["rcptTos"],
            serde_json::json!(["owner@example.com", "oncall@example.com"])
        );
        assert_eq!(mail["contentType"], "text/plain");
    }
    let started = mails[0]["body"].as_str().unwrap();
    has_line(started, "Deployment D1BRV40 to dev environment started.");
    has_line(started, "- Stacks: 4 in 4 layers");
    let failed = mails[2]["body"].as_str().unwrap();
    for line in [
        "Deployment D1BRV40 to dev environment failed.",
        "Stack: database-rds",
        "Error: Unable to create aws:rds/instance:Instance (main-db): Insufficient IAM permissions",
        "Failed at: Layer 3/4",
        "Blocked: api",
        "- Total Stacks: 4",
        "- Deployed: 2",
        "- Failed: 1",
        "- Blocked: 1",
        "View logs: https://cloud.example.com/deployments/D1BRV40/dev/logs?stack=database-rds",
        "View details: https://cloud.example.com/deployments/D1BRV40/dev",
        "Run it again: cloud deploy D1BRV40 -e dev",
    ] {
        has_line(failed, line);
    }
    let stack = mails[1]["body"].as_str().unwrap();
    has_line(stack, "Layer: 3/4");
    has_line(
        stack,
        "Error: Unable to create aws:rds/instance:Instance (main-db): Insufficient IAM permissions",
    );

    // Success: the seed's "Deployment Complete" mail.
    p.manifest(ID, &manifest(&notifications, None));
    let (code, _, out) = deploy(&p, &[], &[]);
    assert_eq!(code, 0, "{}", stderr(&out));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 5);
    assert_eq!(mails[4]["subject"], "✓ Deployment Complete: D1BRV40-dev");
    let body = mails[4]["body"].as_str().unwrap();
    let l = lines(body);
    assert_eq!(
        &l[..6],
        [
            "Deployment D1BRV40 to dev environment completed successfully.",
            "",
            "Summary:",
            "- Total Stacks: 4",
            // The two stacks that deployed in the failed run are unchanged: skipped.
            "- Deployed: 2",
            "- Skipped: 2",
        ],
        "{body}"
    );
    assert!(
        l[6].starts_with("- Duration: ") && l[6].ends_with('s'),
        "{body}"
    );
    assert_eq!(
        &l[7..9],
        [
            "",
            "View details: https://cloud.example.com/deployments/D1BRV40/dev"
        ]
    );
}

#[test]
fn smtp_login_comes_from_the_environment_and_is_never_shown() {
    let Some(python) = smtp_python("smtp_login_comes_from_the_environment_and_is_never_shown")
    else {
        return;
    };
    let password = "pa55-Zq7-not-for-logs";
    let smtp = SmtpServer::start(&python, Some(("cloud-bot", password)));
    let notifications = format!(
        r#"  email:
    smtp: "smtp://127.0.0.1:{}"
    username: cloud-bot
    password: "${{TEST_SMTP_PASSWORD}}"
    from: cloud@example.com
    to: owner@example.com
    events: [deployment_complete]"#,
        smtp.port
    );
    let p = Project::new();
    p.manifest(ID, &manifest(&notifications, None));
    let (code, _, out) = deploy(&p, &["-v"], &[("TEST_SMTP_PASSWORD", password)]);
    assert_eq!(code, 0, "{}", stderr(&out));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{}", stderr(&out));
    assert_eq!(mails[0]["login"], "cloud-bot");
    assert_eq!(mails[0]["subject"], "✓ Deployment Complete: D1BRV40-dev");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains(password));

    // A wrong password: a warning naming the server's answer, not the password; exit 0.
    let (code, _, out) = deploy(&p, &[], &[("TEST_SMTP_PASSWORD", "wrong-Zq7-secret")]);
    assert_eq!(code, 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: notifications: email (owner@example.com via smtp://127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains("deployment_complete not delivered after 1 attempt"),
        "{err}"
    );
    assert!(!err.contains("wrong-Zq7-secret"), "{err}");
    assert_eq!(smtp.mails().len(), 1);
}

#[test]
fn endpoints_that_fail_are_warnings_after_retries_and_the_deploy_exits_0() {
    let rx = Receiver::start(|path| if path == "/bad" { 400 } else { 500 });
    let dead = closed_port();
    let notifications = format!(
        r#"  email: {{ smtp: "smtp://127.0.0.1:{dead}", from: cloud@example.com, to: [owner@example.com], events: [deployment_complete] }}
  slack: {{ webhookUrl: "{}" }}
  pagerduty: {{ routingKey: "${{TEST_UNSET_ROUTING_KEY}}" }}
  webhooks:
    - {{ url: "http://127.0.0.1:{dead}/hook", secret: "${{TEST_HOOK_SECRET}}", events: [deployment_complete] }}
    - {{ url: "{}", events: [deployment_complete] }}"#,
        rx.url("/services/T0/B0/SECRETPATH"),
        rx.url("/bad"),
    );
    let p = Project::new();
    p.manifest(ID, &manifest(&notifications, None));
    let (code, events, out) = deploy(&p, &[], &[("TEST_HOOK_SECRET", "hook-secret-value")]);
    assert_eq!(code, 0, "{}", stderr(&out));
    assert_eq!(
        of_type(&events, "deployment_complete")[0]["data"]["status"],
        "deployed"
    );
    let err = stderr(&out);
    let warning = |text: &str| {
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning: notifications: ") && l.contains(text)),
            "no warning with {text:?} in:\n{err}"
        )
    };
    // A 500 is tried 3 times, a 400 once, a dead port 3 times.
    assert_eq!(rx.requests("/services/T0/B0/SECRETPATH").len(), 3);
    warning(&format!(
        "slack (http://127.0.0.1:{}): deployment_complete not delivered after 3 attempts: HTTP 500 Internal Server Error: boom",
        rx.port
    ));
    assert_eq!(rx.requests("/bad").len(), 1);
    warning(&format!(
        "webhook #2 (http://127.0.0.1:{} (unsigned)): deployment_complete not delivered after 1 attempt: HTTP 400 Bad Request: invalid_payload",
        rx.port
    ));
    warning(&format!(
        "webhook #1 (http://127.0.0.1:{dead} (signed)): deployment_complete not delivered after 3 attempts: "
    ));
    warning(&format!(
        "email (owner@example.com via smtp://127.0.0.1:{dead} (none)): deployment_complete not delivered after 3 attempts: "
    ));
    warning(
        "pagerduty is off for this run: `pagerduty.routingKey` reads ${TEST_UNSET_ROUTING_KEY}, which is not set",
    );
    for secret in ["SECRETPATH", "hook-secret-value"] {
        assert!(!err.contains(secret), "{secret} shown:\n{err}");
    }
    assert_file_log_warns(&p, &err, 5);
    let log = file_log(&p);
    for secret in ["SECRETPATH", "hook-secret-value"] {
        assert!(!log.contains(secret), "{secret} in the file log");
    }
}

/// The text of the run's file log.
fn file_log(p: &Project) -> String {
    let logs = p.deployment_dir(ID).join("logs");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("the run's file log");
    std::fs::read_to_string(log).unwrap()
}

/// The run's file log says each of the (at least `least`) notification warnings on stderr as
/// a WARN line before its end mark.
#[track_caller]
fn assert_file_log_warns(p: &Project, err: &str, least: usize) {
    let log = file_log(p);
    let warnings: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("warning: notifications: "))
        .collect();
    assert!(warnings.len() >= least, "{err}");
    let end = log
        .rfind(cloud::store::filelog::END_MARK)
        .expect("the end mark");
    for warning in warnings {
        let at = log
            .lines()
            .position(|l| l.contains(" WARN  [notifications] ") && l.ends_with(warning))
            .unwrap_or_else(|| panic!("no WARN line for {warning:?} in:\n{log}"));
        let offset: usize = log.lines().take(at).map(|l| l.len() + 1).sum();
        assert!(offset < end, "after the end mark: {warning}");
    }
}

#[test]
fn a_delivery_cut_at_the_end_of_run_deadline_is_a_warn_line_in_the_file_log() {
    // Accepts connections and never answers: only the end-of-run deadline ends the attempt.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().flatten().collect();
        drop(held);
    });
    let notifications = format!(
        r#"  timeout: 120s
  webhooks: [ {{ url: "http://127.0.0.1:{port}/hook", events: [deployment_complete] }} ]"#
    );
    let p = Project::new();
    p.manifest(ID, &manifest(&notifications, None));
    let (code, _, out) = deploy(&p, &[], &[]);
    assert_eq!(code, 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: notifications: webhook")
                && l.contains("deployment_complete")),
        "{err}"
    );
    assert_file_log_warns(&p, &err, 1);
}

#[test]
fn no_notify_sends_nothing() {
    let rx = Receiver::start(answers_ok);
    let notifications = format!(
        "  slack: {{ webhookUrl: \"{}\" }}\n  webhooks: [ {{ url: \"{}\", events: [\"*\"] }} ]",
        rx.url("/slack"),
        rx.url("/hook")
    );
    let p = Project::new();
    p.manifest(ID, &manifest(&notifications, Some("boom")));
    let (code, _, out) = deploy(&p, &["--no-notify"], &[]);
    assert_eq!(code, 1, "{}", stderr(&out));
    assert_eq!(rx.count(), 0);
    // Without it, `"*"` sends a webhook every event.
    let (_, events, _) = deploy(&p, &[], &[]);
    assert_eq!(rx.requests("/hook").len(), events.len());
}

#[test]
fn notify_test_reports_each_channel() {
    let rx = Receiver::start(|path| match path {
        "/broken" => 500,
        p if p.starts_with("/pagerduty") => 202,
        _ => 200,
    });
    let notifications = format!(
        r#"  dashboardUrl: https://cloud.example.com
  slack:
    - {{ webhookUrl: "{}" }}
    - {{ webhookUrl: "${{TEST_UNSET_SLACK_URL}}" }}
  pagerduty: {{ routingKey: routing-key-1, url: "{}" }}
  webhooks: [ {{ url: "{}", secret: s3cret }} ]"#,
        rx.url("/slack"),
        rx.url("/pagerduty/v2/enqueue"),
        rx.url("/broken"),
    );
    let p = Project::new();
    p.manifest(ID, &manifest(&notifications, None));
    let out = p
        .cmd()
        .args(["notify", "test", ID, "-e", "prod"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let port = rx.port;
    let expected = [
        "Sending a test notification for D1BRV40 (prod) to 4 channels (up to 3 attempts each)..."
            .to_owned(),
        format!("  ✓ slack #1 (http://127.0.0.1:{port}): delivered"),
        format!("  ✓ pagerduty (http://127.0.0.1:{port}): delivered"),
        format!(
            "  ✗ webhook (http://127.0.0.1:{port} (signed)): not delivered after 3 attempts: \
             HTTP 500 Internal Server Error: boom"
        ),
        "  ✗ slack #2: `slack.webhookUrl` reads ${TEST_UNSET_SLACK_URL}, which is not set (set \
         TEST_UNSET_SLACK_URL in the environment of `cloud`)"
            .to_owned(),
        "2 of 4 delivered.".to_owned(),
    ];
    assert_eq!(
        lines(&text),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let slack = rx.requests("/slack");
    assert_eq!(
        slack[0].json()["text"],
        "🔔 Test Notification: D1BRV40-prod"
    );
    let pd: Vec<Value> = rx
        .requests("/pagerduty/v2/enqueue")
        .iter()
        .map(Request::json)
        .collect();
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["payload"]["severity"], "info");
    assert_eq!(pd[1]["event_action"], "resolve");
    assert_eq!(pd[0]["dedup_key"], "cloud-D1BRV40-prod-test");
    assert_eq!(pd[1]["dedup_key"], "cloud-D1BRV40-prod-test");
    let hook = &rx.requests("/broken")[0];
    assert_eq!(hook.json()["type"], "notification_test");
    verify_signature(hook, b"s3cret");

    // No channel: bad input.
    let p = Project::new();
    p.manifest(
        ID,
        "environments: [dev]\nstacks: { a: { executor: simulate } }\n",
    );
    let out = p.cmd().args(["notify", "test", ID]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("deployment `D1BRV40` has no notification channels"),
        "{}",
        stderr(&out)
    );
}

/// `notifications:` mistakes: one error each, with its place and the fix.
#[test]
fn notification_settings_are_checked_where_they_are_written() {
    let file = std::path::Path::new("cloud/deploy/D1BRV40/deployment.yaml");
    let check = |block: &str, message: &str, line: u64, column: u64, help: &str| {
        let yaml = format!(
            "environments: [dev]\nstacks: {{ a: {{ executor: simulate }} }}\nnotifications:\n{block}\n"
        );
        let e = match cloud::manifest::parse(file, &yaml, &registry()) {
            Ok(_) => panic!("expected {message:?} for:\n{yaml}"),
            Err(e) => e,
        };
        assert!(
            e.message.contains(message),
            "{:?} lacks {message:?}",
            e.message
        );
        assert_eq!((e.at.line, e.at.column), (line, column), "{}", e.render());
        assert!(e.help.contains(help), "help {:?} lacks {help:?}", e.help);
    };
    check(
        "  slack: { webhookURL: x }",
        "unknown key `webhookURL` in `slack`",
        4,
        12,
        "did you mean `webhookUrl`?",
    );
    check(
        "  pagerduty: { routingKey: k, events: [deployment_complete] }",
        "pagerduty has no message for `deployment_complete`",
        4,
        40,
        "a later successful deploy resolves the incident by itself",
    );
    // Drift's triggers are messages; webhooks get drift's events themselves.
    check(
        "  webhooks: [ { url: \"https://x.example.com\", events: [drift_detected] } ]",
        "webhooks have no message for `drift_detected`",
        4,
        56,
        "list `stack_drift_checked`",
    );
    check(
        "  pagerduty: { routingKey: k, events: [drift_resolved] }",
        "pagerduty has no message for `drift_resolved`",
        4,
        40,
        "a drift incident: a later run after which no stack is drifted",
    );
    check(
        "  email: { smtp: \"smtp://me:pw@mail.example.com\", from: a@example.com, to: b@example.com }",
        "`email.smtp` is not a usable SMTP server: it holds credentials",
        4,
        18,
        "smtp://smtp.example.com:587",
    );
    check(
        "  email: { smtp: \"smtp://mail.example.com\", from: nobody, to: b@example.com }",
        "`nobody` in `email.from`: it is not an email address",
        4,
        51,
        "cloud@example.com",
    );
    check(
        "  webhooks: [ { url: \"ftp://x.example.com\" } ]",
        "`webhooks.url` is not a usable URL: it must start with https:// or http://",
        4,
        22,
        "url: https://hooks.example.com/cloud",
    );
    check(
        "  slack: { webhookUrl: \"${SLACK URL}\" }",
        "reads an invalid environment variable name `SLACK URL`",
        4,
        24,
        "`${VAR}`",
    );
    check(
        "  slack: { webhookUrl: \"https://x.example.com\", events: [stack_faild] }",
        "unknown event type `stack_faild`",
        4,
        58,
        "did you mean `stack_failed`?",
    );
    check(
        "  email: { smtp: \"smtp://mail.example.com\", tls: ssl, from: a@example.com, to: b@example.com }",
        "unknown `tls` mode `ssl`",
        4,
        50,
        "starttls, tls, none",
    );
    check(
        "  email: { smtp: \"smtp://mail.example.com\", from: a@example.com }",
        "`email` has no `to`",
        4,
        10,
        "to: [owner@example.com]",
    );
    check("  timeout: 1h", "it must be at most 5m", 4, 12, "10s");

    // Through the binary: exit 2 with the place.
    let p = Project::new();
    p.manifest(
        ID,
        "environments: [dev]\nstacks: { a: { executor: simulate } }\nnotifications:\n  slak: {}\n",
    );
    let out = p.cmd().args(["validate", ID]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("unknown key `slak` in `notifications`"),
        "{err}"
    );
    assert!(err.contains("deployment.yaml:4:3"), "{err}");
    assert!(err.contains("did you mean `slack`?"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Drift: `drift_detected` and `drift_resolved`.

/// Three simulated stacks; `security`'s `web-sg` drifts when `drift` (the simulator's knob:
/// changed outside since the deploy).
fn drift_manifest(notifications: &str, drift: bool) -> String {
    let knob = match drift {
        true => r#"drift: { web-sg: { "ingress[0].cidr": 0.0.0.0/0 } }"#,
        false => "",
    };
    format!(
        r#"environments: [dev]
defaults: {{ executor: simulate }}
stacks:
  network:
    resources: [ {{ type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0 }} ]
  security:
    dependencies: [network]
    resources: [ {{ type: "aws:ec2/securityGroup:SecurityGroup", name: web-sg, seconds: 0 }} ]
    {knob}
  api:
    dependencies: [security]
    resources: [ {{ type: "aws:lambda/function:Function", name: api, seconds: 0 }} ]
notifications:
{notifications}
"#
    )
}

/// `cloud ARGS D1BRV40 -e dev -o json` with `env` set: the exit code and stderr.
fn run_with(p: &Project, command: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = p
        .cmd()
        .envs(env.iter().copied())
        .args(command)
        .args([ID, "-e", "dev", "-o", "json"])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), stderr(&out))
}

/// Email, Slack and PagerDuty on their default triggers (and a webhook told only of drift's
/// own events), for the drift tests.
struct DriftChannels {
    smtp: SmtpServer,
    rx: Receiver,
    notifications: String,
    env: Vec<(&'static str, String)>,
}

const DRIFT_SLACK: &str = "/services/T000/B000/DRIFTSECRET";

impl DriftChannels {
    fn start(python: &str) -> DriftChannels {
        let smtp = SmtpServer::start(python, None);
        let rx = Receiver::start(answers_ok);
        let notifications = format!(
            r#"  dashboardUrl: https://cloud.example.com
  email: {{ smtp: "smtp://127.0.0.1:{}", from: cloud@example.com, to: owner@example.com }}
  slack: {{ webhookUrl: "${{TEST_SLACK_URL}}" }}
  pagerduty: {{ routingKey: routing-key-1, url: "{}" }}
  webhooks: [ {{ url: "{}", events: [stack_drift_checked, resource_drifted] }} ]"#,
            smtp.port,
            rx.url("/pagerduty/v2/enqueue"),
            rx.url("/hook"),
        );
        let env = vec![("TEST_SLACK_URL", rx.url(DRIFT_SLACK))];
        DriftChannels {
            smtp,
            rx,
            notifications,
            env,
        }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    fn subjects(&self) -> Vec<String> {
        self.smtp
            .mails()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_owned())
            .collect()
    }

    fn slack(&self) -> Vec<Value> {
        self.rx
            .requests(DRIFT_SLACK)
            .iter()
            .map(Request::json)
            .collect()
    }

    fn pagerduty(&self) -> Vec<Value> {
        self.rx
            .requests("/pagerduty/v2/enqueue")
            .iter()
            .map(Request::json)
            .collect()
    }
}

/// The texts of a Slack message's blocks, joined.
fn slack_text(message: &Value) -> String {
    let mut out = Vec::new();
    for block in message["blocks"].as_array().unwrap() {
        if let Some(text) = block["text"]["text"].as_str() {
            out.push(text.to_owned());
        }
        for e in block["elements"].as_array().into_iter().flatten() {
            if let Some(text) = e["text"].as_str().or(e["text"]["text"].as_str()) {
                out.push(text.to_owned());
            }
        }
    }
    out.join("\n")
}

#[test]
fn drift_is_said_once_per_check_paged_then_resolved_by_a_check_in_sync() {
    let test = "drift_is_said_once_per_check_paged_then_resolved_by_a_check_in_sync";
    let Some(python) = smtp_python(test) else {
        return;
    };
    let ch = DriftChannels::start(&python);
    let p = Project::new();
    p.manifest(ID, &drift_manifest(&ch.notifications, false));
    let (code, err) = run_with(&p, &["deploy", "--no-notify"], &ch.env());
    assert_eq!(code, 0, "{err}");
    // Changed outside after the deploy.
    p.manifest(ID, &drift_manifest(&ch.notifications, true));
    let (code, err) = run_with(&p, &["drift"], &ch.env());
    assert_eq!(code, 2, "drift found: {err}");
    assert!(!err.contains("warning"), "{err}");

    // Email: one message for the run, naming the stack, the resource and its attribute, and
    // how to heal it. A drift check is no deployment: no "started" or "complete" mail.
    assert_eq!(ch.subjects(), ["⚠ Drift Detected: D1BRV40-dev"]);
    let mail = ch.smtp.mails()[0]["body"].as_str().unwrap().to_owned();
    has_line(
        &mail,
        "Drift check of D1BRV40 in dev environment found 1 drifted stack.",
    );
    let stack_line = mail
        .lines()
        .find(|l| l.starts_with("Stack: security (drifted since "))
        .unwrap_or_else(|| panic!("no stack line in:\n{mail}"));
    assert!(stack_line.ends_with(" UTC)"), "{mail}");
    has_line(
        &mail,
        "- aws:ec2/securityGroup:SecurityGroup (web-sg): ingress[0].cidr now \"0.0.0.0/0\"",
    );
    has_line(&mail, "- Drifted: 1");
    has_line(&mail, "- In sync: 2");
    has_line(&mail, "Heal it: cloud deploy D1BRV40 -e dev --only-drifted");
    has_line(
        &mail,
        "View details: https://cloud.example.com/deployments/D1BRV40/dev",
    );

    // Slack: one message, the same facts.
    let slack = ch.slack();
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert_eq!(slack[0]["text"], "🌀 Drift Detected: D1BRV40-dev");
    let text = slack_text(&slack[0]);
    for part in [
        "*security* · drifted since ",
        "aws:ec2/securityGroup:SecurityGroup (web-sg): ingress[0].cidr now \"0.0.0.0/0\"",
        "`cloud deploy D1BRV40 -e dev --only-drifted`",
        "View Details",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }

    // PagerDuty: a trigger on the drift incident, not the failure one.
    let pd = ch.pagerduty();
    assert_eq!(pd.len(), 1, "{pd:?}");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["dedup_key"], "cloud-D1BRV40-dev-drift");
    assert_eq!(
        pd[0]["payload"]["summary"],
        "Drift Detected: D1BRV40-dev: security (1 resource)"
    );
    assert_eq!(pd[0]["payload"]["class"], "drift");
    let details = &pd[0]["payload"]["custom_details"];
    assert_eq!(
        details["driftedStacks"]["security"]["resources"][0],
        "aws:ec2/securityGroup:SecurityGroup (web-sg): ingress[0].cidr now \"0.0.0.0/0\""
    );
    assert_eq!(
        details["heal"],
        "cloud deploy D1BRV40 -e dev --only-drifted"
    );
    let state_file = p.deployment_dir(ID).join("journal/dev/pagerduty.json");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(
        state["open"]["pagerduty (drift)"]["dedupKey"],
        "cloud-D1BRV40-dev-drift"
    );

    // Webhooks get the events themselves, as they list them.
    let hooks: Vec<String> = ch
        .rx
        .requests("/hook")
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hooks.iter().filter(|t| *t == "resource_drifted").count(), 1);
    assert_eq!(
        hooks.iter().filter(|t| *t == "stack_drift_checked").count(),
        3
    );

    // Fixed outside: the next check finds it in sync, says so, and resolves the incident.
    p.manifest(ID, &drift_manifest(&ch.notifications, false));
    let (code, err) = run_with(&p, &["drift"], &ch.env());
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(
        ch.subjects(),
        [
            "⚠ Drift Detected: D1BRV40-dev",
            "✓ Drift Resolved: D1BRV40-dev"
        ]
    );
    let mail = ch.smtp.mails()[1]["body"].as_str().unwrap().to_owned();
    has_line(
        &mail,
        "Drift check of D1BRV40 in dev environment found 1 drifted stack back in sync.",
    );
    let stack_line = mail
        .lines()
        .find(|l| l.starts_with("Stack: security (in sync again; drifted since "))
        .unwrap_or_else(|| panic!("no stack line in:\n{mail}"));
    assert!(stack_line.ends_with(" UTC)"), "{mail}");
    let slack = ch.slack();
    assert_eq!(slack.len(), 2, "{slack:?}");
    assert_eq!(slack[1]["text"], "✅ Drift Resolved: D1BRV40-dev");
    assert!(
        slack_text(&slack[1]).contains("*security*"),
        "{:?}",
        slack[1]
    );
    let pd = ch.pagerduty();
    assert_eq!(pd.len(), 2, "{pd:?}");
    assert_eq!(
        pd[1],
        serde_json::json!({
            "routing_key": "routing-key-1",
            "event_action": "resolve",
            "dedup_key": "cloud-D1BRV40-dev-drift",
        })
    );
    assert!(!state_file.exists(), "the incident is closed");

    // In sync again, and nothing drifted before: nothing more to say.
    let (code, err) = run_with(&p, &["drift"], &ch.env());
    assert_eq!(code, 0, "{err}");
    assert_eq!(ch.subjects().len(), 2);
    assert_eq!(ch.slack().len(), 2);
    assert_eq!(ch.pagerduty().len(), 2);
}

#[test]
fn a_check_in_sync_with_nothing_drifted_before_says_nothing() {
    let test = "a_check_in_sync_with_nothing_drifted_before_says_nothing";
    let Some(python) = smtp_python(test) else {
        return;
    };
    let ch = DriftChannels::start(&python);
    let p = Project::new();
    p.manifest(ID, &drift_manifest(&ch.notifications, false));
    let (code, err) = run_with(&p, &["deploy", "--no-notify"], &ch.env());
    assert_eq!(code, 0, "{err}");
    let (code, err) = run_with(&p, &["drift"], &ch.env());
    assert_eq!(code, 0, "{err}");
    assert!(ch.subjects().is_empty(), "{:?}", ch.subjects());
    assert!(ch.slack().is_empty(), "{:?}", ch.slack());
    assert!(ch.pagerduty().is_empty(), "{:?}", ch.pagerduty());
    // The webhook still gets the events it lists.
    assert_eq!(ch.rx.requests("/hook").len(), 3);
}

#[test]
fn a_deploy_that_heals_drift_says_so_and_resolves_the_drift_incident() {
    let test = "a_deploy_that_heals_drift_says_so_and_resolves_the_drift_incident";
    let Some(python) = smtp_python(test) else {
        return;
    };
    let ch = DriftChannels::start(&python);
    let p = Project::new();
    p.manifest(ID, &drift_manifest(&ch.notifications, false));
    let (code, err) = run_with(&p, &["deploy", "--no-notify"], &ch.env());
    assert_eq!(code, 0, "{err}");
    p.manifest(ID, &drift_manifest(&ch.notifications, true));
    let (code, err) = run_with(&p, &["drift"], &ch.env());
    assert_eq!(code, 2, "{err}");
    assert_eq!(ch.pagerduty().len(), 1);

    let (code, err) = run_with(&p, &["deploy", "--only-drifted"], &ch.env());
    assert_eq!(code, 0, "{err}");
    let subjects = ch.subjects();
    assert!(
        subjects.contains(&"✓ Drift Resolved: D1BRV40-dev".to_owned()),
        "{subjects:?}"
    );
    let mails = ch.smtp.mails();
    let resolved = mails
        .iter()
        .find(|m| m["subject"] == "✓ Drift Resolved: D1BRV40-dev")
        .unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    has_line(
        &resolved,
        "Deployment D1BRV40 to dev environment brought 1 drifted stack back in sync.",
    );
    let pd = ch.pagerduty();
    assert_eq!(pd.len(), 2, "{pd:?}");
    assert_eq!(pd[1]["event_action"], "resolve");
    assert_eq!(pd[1]["dedup_key"], "cloud-D1BRV40-dev-drift");
}
