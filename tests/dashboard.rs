//! The dashboard in a real browser (Debian's headless `chromium`, driven over the DevTools
//! protocol) during a live `cloud deploy --serve`: the page shows the run as it goes — the
//! gated stack deploying with its resources, then every stack deployed. Screenshots go to
//! `target/dashboard-mid.png` and `target/dashboard.png`.
//!
//! Needs chromium: fails in CI (`CI` set) without it, skips loudly elsewhere.

mod common;
mod serve_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve_support::*;
use tokio_tungstenite::tungstenite::Message;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A page in headless chromium, spoken to over the DevTools protocol.
struct Browser {
    child: std::process::Child,
    socket: Socket,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    async fn open(binary: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_owned());
                }
            }
        });
        let Ok(endpoint) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium never said where its DevTools listen");
        };
        let socket = connect(&endpoint).await;
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({"url": url}))
            .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        loop {
            let reply = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("chromium did not answer")
                .expect("chromium hung up")
                .unwrap();
            let Message::Text(text) = reply else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates JavaScript in the page; its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// The text of the element with id `id`, as the page shows it.
    async fn text(&mut self, id: &str) -> String {
        let value = self
            .eval(&format!("document.getElementById('{id}').innerText"))
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `expression` is true in the page, failing after 30 s.
    async fn wait_for(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.eval(expression).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let page = self.eval("document.body.innerText").await;
                panic!("the dashboard never showed {what}; it shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}

/// Chromium, or `None` outside CI when it is missing (said); in CI its absence fails.
fn chromium_for(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is missing: `apt-get install -y chromium` (.ci/run does)");
        }
        eprintln!("SKIPPED {test}: chromium is not installed (apt-get install -y chromium)");
    }
    found
}

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// `network` deploys; `queue` and `cache` fail in layer 2 (each with its own message); `api`
/// is blocked by `queue`.
const FAILING: &str = r#"deploymentId: FAIL
environments: [dev]
defaults: { executor: simulate }
stacks:
  network:
    resources:
      - { type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0 }
  queue:
    dependencies: [network]
    executor: command
    deploy: echo 'QueueDeletedRecently' >&2; exit 3
  cache:
    dependencies: [network]
    executor: command
    deploy: echo 'no such cluster' >&2; exit 4
  api:
    dependencies: [queue]
    resources:
      - { type: "aws:lambda/function:Function", name: handler, seconds: 0 }
"#;

/// A project whose FAIL deployment has run (and failed), served by `cloud serve`; the page's
/// address for `FAIL-dev`.
fn failed_run_served() -> (Project, Served, String) {
    let p = Project::new();
    p.manifest("FAIL", FAILING);
    let (code, _, _) = p.deploy_json("FAIL", &[]);
    assert_eq!(code, 1);
    let served = start(p.root(), &["serve", "--addr", "127.0.0.1:0"], &[]);
    let url = format!(
        "http://{}/?token={}&deployment=FAIL&environment=dev",
        served.host,
        served.token.as_deref().unwrap()
    );
    (p, served, url)
}

/// Whether `text` starts with a 24-hour UTC clock, `23:05:09 UTC`.
fn utc_clock(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 12
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && b[2] == b':'
        && b[5] == b':'
        && &text[8..12] == " UTC"
        && text[..2] < *"24"
}

/// `[stack, status]` as the page shows them.
const STATES: &str = "JSON.stringify([...document.querySelectorAll('[data-stack]')].map(e => [e.dataset.stack, e.dataset.status]))";

#[test]
fn the_dashboard_shows_a_live_deploy_in_chromium() {
    let Some(binary) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is missing: `apt-get install -y chromium` (.ci/run does)");
        }
        eprintln!(
            "SKIPPED the dashboard test: chromium is not installed (apt-get install -y chromium)"
        );
        return;
    };
    let p = Project::new();
    p.manifest("D1BRV40", &gated_manifest("D1BRV40"));
    let mut served = serve_deploy(p.root(), "D1BRV40", &[]);
    let dir = p.deployment_dir("D1BRV40");
    wait_for_file(&dir.join("ready"));
    let url = format!(
        "http://{}/?token={}&deployment=D1BRV40&environment=dev",
        served.host,
        served.token.as_deref().unwrap()
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&shots).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        // Mid-run: network deployed, the gated stack deploying with its resources and logs.
        browser
            .wait_for(
                "the run in the middle",
                "!!document.querySelector('[data-stack=network][data-status=deployed]') && \
                 !!document.querySelector('[data-stack=database-rds][data-status=deploying]')",
            )
            .await;
        let mid = browser.eval(STATES).await;
        eprintln!("mid-run: {mid}");
        browser
            .wait_for(
                "the gated stack's resources and logs",
                "!!document.querySelector('#resources-body tr[data-resource=main-database]') && \
                 document.getElementById('logs').innerText.includes('Creating RDS instance')",
            )
            .await;
        assert_eq!(browser.text("connection").await, "live");
        assert!(browser.text("overall-stacks").await.ends_with("/4"));
        browser.screenshot(&shots.join("dashboard-mid.png")).await;

        std::fs::write(dir.join("release"), "").unwrap();
        browser
            .wait_for(
                "every stack deployed",
                "document.querySelectorAll('[data-stack]').length === 4 && \
                 document.querySelectorAll('[data-stack][data-status=deployed]').length === 4 && \
                 document.getElementById('overall-percent').innerText === '100%' && \
                 document.getElementById('badge').innerText.toLowerCase() === 'deployed'",
            )
            .await;
        let end = browser.eval(STATES).await;
        eprintln!("at the end: {end}");
        browser.screenshot(&shots.join("dashboard.png")).await;
        let activity = browser.text("activity").await;
        assert!(
            activity.contains("Complete: D1BRV40-dev deployed in"),
            "{activity}"
        );
    });
    let (code, _) = served.wait();
    assert_eq!(code, 0);
}

#[test]
fn the_dashboard_page_is_served_without_a_token_and_loads_nothing_from_elsewhere() {
    let p = Project::new();
    p.manifest("D1BRV40", &gated_manifest("D1BRV40"));
    let served = start(p.root(), &["serve", "--addr", "127.0.0.1:0"], &[]);
    let (code, page) = http_get_text(&served.host, "/", None);
    assert_eq!(code, 200);
    assert!(page.contains("<title>cloud</title>"));
    for outside in ["http://", "https://", "//cdn", "src=\"//"] {
        assert!(!page.contains(outside), "the page refers to {outside}");
    }
}

#[test]
fn the_dashboard_reconnects_and_resumes_with_since_after_the_server_drops() {
    let Some(binary) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is missing: `apt-get install -y chromium` (.ci/run does)");
        }
        eprintln!("SKIPPED the dashboard reconnect test: chromium is not installed");
        return;
    };
    let p = Project::new();
    p.manifest("D1BRV40", &gated_manifest("D1BRV40"));
    let dir = p.deployment_dir("D1BRV40");
    // A deploy without a server of its own; `cloud serve` follows its journal.
    let mut deploy = spawn_deploy_until(
        &p,
        "D1BRV40",
        &["--output", "json"],
        Stdio::null(),
        &dir.join("ready"),
    );
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let envs = [("CLOUD_JWT_SECRET", SECRET)];
    let first = start(p.root(), &["serve", "--addr", &addr], &envs);
    let token = serve_support::token(Some(vec!["D1BRV40"]), 600);
    let url = format!("http://{addr}/?token={token}&deployment=D1BRV40&environment=dev");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the gated stack deploying",
                "!!document.querySelector('[data-stack=database-rds][data-status=deploying]')",
            )
            .await;
        // The server goes away mid-run; the run goes on and ends without it.
        drop(first);
        browser
            .wait_for(
                "that the connection dropped",
                "document.getElementById('connection').innerText.startsWith('reconnecting')",
            )
            .await;
        std::fs::write(dir.join("release"), "").unwrap();
        assert!(deploy.wait().unwrap().success());
        // Back on the same address: the page resumes from the last event it had, so the
        // events it missed arrive one by one (they fill its activity list).
        let _second = start(p.root(), &["serve", "--addr", &addr], &envs);
        browser
            .wait_for(
                "every stack deployed after the reconnect",
                "document.querySelectorAll('[data-stack][data-status=deployed]').length === 4 && \
                 document.getElementById('connection').innerText === 'finished'",
            )
            .await;
        browser
            .wait_for(
                "the missed events replayed",
                "document.getElementById('activity').innerText.includes('[api] Deployed in') && \
                 document.getElementById('activity').innerText.includes('[database-rds] Created: ')",
            )
            .await;
    });
}

#[test]
fn the_deployments_list_shows_the_list_alone() {
    let Some(binary) = chromium_for("the list page test") else {
        return;
    };
    let (_p, served, _) = failed_run_served();
    let url = format!(
        "http://{}/?token={}",
        served.host,
        served.token.as_deref().unwrap()
    );
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for("the list", "!!document.querySelector('#notice a')")
            .await;
        let page = browser.eval("document.body.innerText").await;
        let page = page.as_str().unwrap();
        assert!(page.contains("FAIL-dev"), "{page}");
        // No empty run panel beside it.
        assert!(!page.contains("Progress:"), "{page:?}");
        assert!(!page.contains("0/0"), "{page:?}");
        assert_eq!(
            browser
                .eval("getComputedStyle(document.getElementById('run')).display")
                .await,
            "none"
        );
    });
}

#[test]
fn times_are_utc_and_24_hour_as_in_every_other_view() {
    let Some(binary) = chromium_for("the UTC times test") else {
        return;
    };
    let (_p, served, url) = failed_run_served();
    let list = format!(
        "http://{}/?token={}",
        served.host,
        served.token.as_deref().unwrap()
    );
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the failed stack's logs",
                "document.getElementById('logs').innerText.includes('QueueDeletedRecently')",
            )
            .await;
        let logs = browser.text("logs").await;
        let stamped =
            |l: &str| l.starts_with('[') && utc_clock(&l[1..]) && l[13..].starts_with("] ");
        assert!(logs.lines().all(stamped), "{logs}");
        drop(browser);
        let mut browser = Browser::open(&binary, &list).await;
        browser
            .wait_for("the list", "!!document.querySelector('#notice a')")
            .await;
        let page = browser.eval("document.body.innerText").await;
        let page = page.as_str().unwrap();
        // `2026-12-03 23:50:38 UTC`
        let started = page.lines().find(|l| l.starts_with("FAIL-dev")).unwrap();
        let started = started.rsplit('\t').next().unwrap();
        assert!(
            started.len() == 23 && started.as_bytes()[10] == b' ' && utc_clock(&started[11..]),
            "{page}"
        );
        assert!(!page.contains(" AM") && !page.contains(" PM"), "{page}");
    });
}

#[test]
fn a_finished_run_says_how_it_ended_instead_of_live() {
    let Some(binary) = chromium_for("the finished-run connection test") else {
        return;
    };
    let (_p, _served, url) = failed_run_served();
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the failed run",
                "document.getElementById('badge').innerText.toLowerCase() === 'failed'",
            )
            .await;
        browser
            .wait_for(
                "that the run is over, not live",
                "document.getElementById('connection').innerText === 'failed' && \
                 !document.getElementById('connection').classList.contains('live')",
            )
            .await;
    });
}

#[test]
fn the_failure_banner_names_every_failed_stack_with_its_message_once() {
    let Some(binary) = chromium_for("the failure banner test") else {
        return;
    };
    let (_p, _served, url) = failed_run_served();
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the failure banner",
                "!document.getElementById('failure').hidden",
            )
            .await;
        let banner = browser.text("failure").await;
        for said in [
            "queue failed in layer 2",
            "cache failed in layer 2",
            "QueueDeletedRecently",
            "no such cluster",
            "blocked: api",
        ] {
            assert_eq!(banner.matches(said).count(), 1, "{said}: {banner}");
        }
    });
}

#[test]
fn opened_mid_run_the_activity_shows_what_happened_before() {
    let Some(binary) = chromium_for("the activity backfill test") else {
        return;
    };
    let p = Project::new();
    p.manifest("D1BRV40", &gated_manifest("D1BRV40"));
    let mut served = serve_deploy(p.root(), "D1BRV40", &[]);
    let dir = p.deployment_dir("D1BRV40");
    // The page opens once network is deployed and database-rds waits at its gate.
    wait_for_file(&dir.join("ready"));
    let url = format!(
        "http://{}/?token={}&deployment=D1BRV40&environment=dev",
        served.host,
        served.token.as_deref().unwrap()
    );
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the events from before it opened",
                "(t => t.includes('[network]') && t.includes('(main-vpc)') && \
                  t.includes('[database-rds]') && t.includes('(db-subnets)'))\
                 (document.getElementById('activity').innerText)",
            )
            .await;
    });
    std::fs::write(dir.join("release"), "").unwrap();
    assert_eq!(served.wait().0, 0);
}

#[test]
fn activity_says_sentences_as_the_verbose_view_does_without_progress_ticks() {
    let Some(binary) = chromium_for("the activity sentences test") else {
        return;
    };
    let (p, _served, url) = failed_run_served();
    // What the terminal says of each event (words::describe): the page's mirror must
    // say the same (first lines; progress ticks and in-flight steps are left out).
    let said_by_the_terminal: Vec<String> = p
        .journal("FAIL", "dev")
        .into_iter()
        .map(|e| serde_json::from_value::<cloud::event::Event>(e).unwrap())
        .map(|e| cloud::words::describe(&e))
        .filter(|(level, _)| *level != cloud::event::LogLevel::Debug)
        .map(|(_, text)| text.lines().next().unwrap_or_default().to_owned())
        .collect();
    assert!(said_by_the_terminal.len() > 10);
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the run's activity",
                "document.getElementById('activity').innerText.includes('Complete: FAIL-dev failed after')",
            )
            .await;
        let activity = browser.text("activity").await;
        for said in [
            "Deployment started: FAIL-dev (4 stacks, 3 layers",
            "Layer 1/3 started: network",
            "[network] Created: aws:ec2/vpc:Vpc (main-vpc)",
            "[network] Deployed in 0s (1 resource created, 0 updated)",
            "Layer 1 complete in 0s: 1 deployed, 0 skipped, 0 failed, 0 blocked",
            "[queue] Failed after 0s: COMMAND_FAILED: QueueDeletedRecently",
            "[api] Blocked: queue failed",
            // A run's events name no stack, even the failure's (it names them all).
            "UTC Failed: queue, cache (layer 2); blocked: api",
        ] {
            assert!(activity.contains(said), "{said}: {activity}");
        }
        for said in &said_by_the_terminal {
            assert!(activity.contains(said.as_str()), "{said}: {activity}");
        }
        for raw in [
            "stack deployed",
            "layer complete",
            "deployment failed",
            "deployment progress",
            "Progress:",
        ] {
            assert!(!activity.contains(raw), "{raw}: {activity}");
        }
        // Each line: a UTC time, then the sentence.
        assert!(activity.lines().all(utc_clock), "{activity}");
    });
}

/// tests/plan.rs's project: `network` (simulate) → `storage` (a `plan:` that creates one bucket,
/// replaces one, deletes one) → `app` (reads storage's ARN, known only after apply); `legacy`
/// has no `plan:`.
const PLAN_MANIFEST: &str = r#"environments: [dev]
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
    deploy: echo '{"bucketArn":"arn:aws:s3:::logs-1"}' > "$CLOUD_OUTPUTS"
    plan: |
      echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"plan":"create"}'
      echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"data"},"plan":"replace"}'
      echo '::cloud::{"resource":{"type":"aws:s3/bucket:Bucket","name":"old"},"plan":"delete"}'
      echo '::cloud::{"outputs":{"changed":["bucketArn"],"knownAfterApply":["bucketArn"]}}'
  app:
    executor: command
    path: app
    dependencies: [storage]
    inputs: { bucket: "${storage.bucketArn}" }
    deploy: echo '{"url":"https://app"}' > "$CLOUD_OUTPUTS"
    plan: echo '::cloud::{"resource":{"type":"aws:iam/policy:Policy","name":"p"},"plan":"update"}'
  legacy:
    executor: command
    path: legacy
    deploy: echo deploying
"#;

#[test]
fn a_plan_run_shows_each_stacks_changes_the_totals_and_destructive_ones_in_red() {
    let Some(binary) = chromium_for("the plan view test") else {
        return;
    };
    let p = Project::new();
    p.manifest("PLAN", PLAN_MANIFEST);
    for dir in ["storage", "app", "legacy"] {
        p.file("PLAN", &format!("{dir}/README"), "here\n");
    }
    // network deployed as it is: the plan would skip it.
    let (code, _, _) = p.deploy_json("PLAN", &["--only", "network"]);
    assert_eq!(code, 0);
    let args = [
        "plan",
        "PLAN",
        "-e",
        "dev",
        "--serve",
        "127.0.0.1:0",
        "--serve-for",
        "5m",
    ];
    let served = start(p.root(), &args, &[]);
    served.stderr_line("Still serving the finished run at");
    let url = format!(
        "http://{}/?token={}&deployment=PLAN&environment=dev",
        served.host,
        served.token.as_deref().unwrap()
    );
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the plan",
                "document.querySelectorAll('[data-plan-stack]').length === 4",
            )
            .await;
        let text = |stack: &str| {
            format!("document.querySelector('[data-plan-stack={stack}] .plan-text').innerText")
        };
        let said = browser.eval(&text("storage")).await;
        assert_eq!(
            said,
            "+2 to add, ~0 to change, -2 to destroy, ±1 to replace (destructive)"
        );
        assert_eq!(
            browser.eval(&text("network")).await,
            "unchanged (would skip)"
        );
        assert_eq!(browser.eval(&text("legacy")).await, "no preview (will run)");
        assert_eq!(browser.eval(&text("app")).await, "no preview (will run)");
        let app = browser
            .eval("document.querySelector('[data-plan-stack=app]').innerText")
            .await;
        assert!(
            app.as_str()
                .unwrap()
                .contains("provisional: depends on storage.bucketArn (known after apply)"),
            "{app}"
        );
        // Destructive changes (destroy, replace) are marked and red; the others are not.
        let red = "rgb(248, 81, 73)";
        let color = |selector: &str| {
            format!("getComputedStyle(document.querySelector('{selector}')).color")
        };
        for destructive in [
            "[data-plan-stack=storage] .plan-head",
            "[data-plan-stack=storage] [data-action=replace]",
            "[data-plan-stack=storage] [data-action=delete]",
            "#plan-total",
        ] {
            assert_eq!(
                browser.eval(&color(destructive)).await,
                red,
                "{destructive}"
            );
        }
        for not in [
            "[data-plan-stack=storage] [data-action=create]",
            "[data-plan-stack=network] .plan-head",
        ] {
            assert_ne!(browser.eval(&color(not)).await, red, "{not}");
        }
        let replace = browser
            .eval("document.querySelector('[data-plan-stack=storage] [data-action=replace]').innerText")
            .await;
        assert_eq!(
            replace,
            "± replace aws:s3/bucket:Bucket (data) (destructive)"
        );
        let total = browser.text("plan-total").await;
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        browser.screenshot(&shots.join("dashboard-plan.png")).await;
        assert_eq!(
            total,
            "Total: +2 to add, ~0 to change, -2 to destroy, ±1 to replace · 3 stacks changing, \
             1 unchanged, 1 provisional, 2 without preview"
        );
    });
}

/// A drift check served: the dashboard marks the drifted stack and names its resource and
/// attribute; the REST status carries each stack's health.
#[test]
fn a_drift_check_shows_the_drifted_stack_and_the_status_its_health() {
    let Some(binary) = chromium_for("the drift view test") else {
        return;
    };
    let manifest = |knob: &str| {
        format!(
            r#"
deploymentId: DRIFT
environments: [dev]
defaults: {{ executor: simulate }}
stacks:
  network:
    resources: [{{ type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 0 }}]
  security:
    dependencies: [network]
    resources: [{{ type: "aws:ec2/securityGroup:SecurityGroup", name: web-sg, seconds: 0 }}]
    {knob}
"#
        )
    };
    let p = Project::new();
    p.manifest("DRIFT", &manifest(""));
    assert_eq!(p.deploy_json("DRIFT", &[]).0, 0);
    p.manifest(
        "DRIFT",
        &manifest(r#"drift: { web-sg: { "ingress[0].cidr": 0.0.0.0/0 } }"#),
    );
    let args = [
        "drift",
        "DRIFT",
        "-e",
        "dev",
        "--serve",
        "127.0.0.1:0",
        "--serve-for",
        "5m",
    ];
    let served = start(p.root(), &args, &[]);
    served.stderr_line("Still serving the finished run at");
    let (code, body) = served.get(
        "/api/v1/deployments/DRIFT/status?environment=dev",
        served.token.as_deref(),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["health"]["security"]["status"], "drifted");
    assert_eq!(body["data"]["health"]["network"]["status"], "in_sync");
    assert_eq!(
        body["data"]["health"]["security"]["resources"][0],
        "aws:ec2/securityGroup:SecurityGroup (web-sg)"
    );
    let url = format!(
        "http://{}/?token={}&deployment=DRIFT&environment=dev",
        served.host,
        served.token.as_deref().unwrap()
    );
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the drift check",
                "document.querySelectorAll('[data-drift]').length === 2",
            )
            .await;
        let row =
            |stack: &str| format!("document.querySelector('.stack[data-stack={stack}]').innerText");
        let security = browser.eval(&row("security")).await;
        let security = security.as_str().unwrap();
        assert!(security.contains("drifted"), "{security}");
        assert!(
            security.contains("web-sg): ingress[0].cidr now \"0.0.0.0/0\""),
            "{security}"
        );
        let network = browser.eval(&row("network")).await;
        assert!(network.as_str().unwrap().contains("in sync"), "{network}");
    });
}

/// A stack waiting to retry a transient error: the dashboard's row says so as the terminal
/// views do (`↻ retry 2/3 in 30s: ThrottlingException: Rate exceeded`).
#[test]
fn a_retrying_stack_shows_its_retry_on_the_dashboard() {
    let Some(binary) = chromium_for("the retry line test") else {
        return;
    };
    let p = Project::new();
    p.manifest(
        "RETRY",
        r#"
deploymentId: RETRY
environments: [dev]
stacks:
  queue:
    executor: command
    deploy: "echo 'ThrottlingException: Rate exceeded' >&2; exit 1"
    retry: { attempts: 3, backoff: { first: 60s, cap: 60s } }
"#,
    );
    let args = ["deploy", "RETRY", "-e", "dev", "--serve", "127.0.0.1:0"];
    let served = start(p.root(), &args, &[]);
    let url = format!(
        "http://{}/?token={}&deployment=RETRY&environment=dev",
        served.host,
        served.token.as_deref().unwrap()
    );
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "the retry line",
                "(document.querySelector('.stack[data-stack=queue] .sub') || {innerText: ''}).innerText.startsWith('↻ retry 2/3 in ')",
            )
            .await;
        let sub = browser
            .eval("document.querySelector('.stack[data-stack=queue] .sub').innerText")
            .await;
        assert!(
            sub.as_str()
                .unwrap()
                .ends_with("s: ThrottlingException: Rate exceeded"),
            "{sub}"
        );
    });
    served.interrupt();
}

/// The timeline: a bar per stack, the critical path marked — live, the chain the run's ETA
/// hangs on (`criticalPath` of its `deployment_progress`) while a gated stack holds the run;
/// once it ended, its critical path as it really was, with where the time went.
#[test]
fn the_timeline_shows_each_stack_and_marks_the_critical_path() {
    let Some(binary) = chromium_for("the timeline test") else {
        return;
    };
    let p = Project::new();
    let dir = p.deployment_dir("LIVE");
    let (ready, go) = (dir.join("ready"), dir.join("go"));
    p.manifest(
        "LIVE",
        &format!(
            r#"
environments: [dev]
defaults: {{ executor: simulate }}
stacks:
  net: {{ resources: [{{ type: "t:a:A", name: a, seconds: 0.3 }}] }}
  db:
    dependencies: [net]
    executor: command
    deploy: "{gate}"
  cache:
    dependencies: [net]
    resources: [{{ type: "t:a:A", name: a, seconds: 0.2 }}]
  api:
    dependencies: [db, cache]
    resources: [{{ type: "t:a:A", name: a, seconds: 0.3 }}]
  docs: {{ resources: [{{ type: "t:a:A", name: a, seconds: 0.1 }}] }}
"#,
            gate = gate_script(&ready, &go)
        ),
    );
    let args = ["deploy", "LIVE", "-e", "dev", "--output", "json"];
    let serve = ["--serve", "127.0.0.1:0", "--serve-for", "60s"];
    let served = start(p.root(), &[&args[..], &serve[..]].concat(), &[]);
    let url = format!(
        "http://{}/?token={}&deployment=LIVE&environment=dev",
        served.host,
        served.token.as_deref().unwrap()
    );
    let rows = "JSON.stringify([...document.querySelectorAll('.tl-row')].map(e => [e.dataset.tlStack, e.classList.contains('critical')]))";
    let marked = "JSON.stringify([...document.querySelectorAll('.stack.critical')].map(e => e.dataset.stack))";
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    block_on(async {
        let mut browser = Browser::open(&binary, &url).await;
        browser
            .wait_for(
                "what the run waits on, while db holds it and the others have run",
                "document.getElementById('waiting-on').innerText.startsWith('Waiting on: db') && \
                 document.querySelectorAll('[data-tl-stack=cache] .tl-bar.deployed, [data-tl-stack=docs] .tl-bar.deployed').length === 2",
            )
            .await;
        // The stacks the run says it waits on are marked, in the timeline and the list.
        let waiting = browser.text("waiting-on").await;
        let path: Vec<String> = (waiting.trim_start_matches("Waiting on: ").split(" → "))
            .map(str::to_owned)
            .collect();
        let live: Vec<(String, bool)> =
            serde_json::from_str(browser.eval(rows).await.as_str().unwrap()).unwrap();
        assert_eq!(live.len(), 5, "a row for every stack: {live:?}");
        for (stack, critical) in &live {
            assert_eq!(*critical, path.contains(stack), "{waiting}: {live:?}");
        }
        let stacks: Vec<String> =
            serde_json::from_str(browser.eval(marked).await.as_str().unwrap()).unwrap();
        assert_eq!(stacks.len(), path.len(), "{waiting}: {stacks:?}");
        // A bar for each stack that started (api has not), the running one growing.
        let bars = "document.querySelectorAll('.tl-bar').length";
        assert_eq!(browser.eval(bars).await, json!(4));
        let width = "parseFloat(document.querySelector('[data-tl-stack=db] .tl-bar').style.width)";
        assert!(browser.eval(width).await.as_f64().unwrap() > 0.0);
        browser
            .screenshot(&shots.join("dashboard-timeline-live.png"))
            .await;

        std::fs::write(&go, "").unwrap();
        browser
            .wait_for(
                "where the time went",
                "document.getElementById('time-went').innerText.includes('Critical path')",
            )
            .await;
        let done: Vec<(String, bool)> =
            serde_json::from_str(browser.eval(rows).await.as_str().unwrap()).unwrap();
        let critical: Vec<&str> = (done.iter())
            .filter(|(_, c)| *c)
            .map(|(s, _)| s.as_str())
            .collect();
        assert_eq!(critical, ["net", "db", "api"], "{done:?}");
        let went = browser.text("time-went").await;
        assert!(went.starts_with("Where the time went: "), "{went}");
        assert!(went.contains("Sooner without it: db "), "{went}");
        let waiting = browser
            .eval("document.getElementById('waiting-on').hidden")
            .await;
        assert_eq!(waiting, json!(true), "a finished run waits on nothing");
        browser
            .screenshot(&shots.join("dashboard-timeline.png"))
            .await;
    });
}

/// `cloud replay --serve`: the dashboard gets the replayed events through the hub, as from a
/// live `deploy --serve`, and ends on the state the live run's page ends on.
#[test]
fn a_replay_served_ends_on_the_live_runs_final_state_in_chromium() {
    let Some(binary) = chromium_for("the replay dashboard test") else {
        return;
    };
    let (p, _live, live_url) = failed_run_served();
    let replay = start(
        p.root(),
        &[
            "replay",
            "FAIL",
            "-e",
            "dev",
            "--output",
            "json",
            "--serve",
            "127.0.0.1:0",
            "--serve-for",
            "60s",
        ],
        &[],
    );
    let replay_url = format!(
        "http://{}/?token={}&deployment=FAIL&environment=dev",
        replay.host,
        replay.token.as_deref().unwrap()
    );
    const FINAL: &str = "JSON.stringify({stacks: [...document.querySelectorAll('[data-stack]')].map(e => [e.dataset.stack, e.dataset.status]), \
        badge: document.getElementById('badge').innerText, percent: document.getElementById('overall-percent').innerText, \
        count: document.getElementById('overall-stacks').innerText, failure: document.getElementById('failure').innerText})";
    const FAILED: &str =
        "document.getElementById('badge').innerText.toLowerCase() === 'failed' && \
        !document.getElementById('failure').hidden";
    block_on(async {
        let mut live = Browser::open(&binary, &live_url).await;
        live.wait_for("the failed run", FAILED).await;
        let live_state = live.eval(FINAL).await;
        let mut replayed = Browser::open(&binary, &replay_url).await;
        replayed.wait_for("the replayed failed run", FAILED).await;
        assert_eq!(replayed.eval(FINAL).await, live_state);
        assert!(
            live_state
                .as_str()
                .unwrap()
                .contains("QueueDeletedRecently"),
            "{live_state}"
        );
    });
}
