//! The DynamoDB event store and CloudWatch Logs against a real `moto_server` (started by
//! `.ci/run`; `AWS_ENDPOINT_URL` names it, default http://127.0.0.1:5000). Faults — an outage,
//! throttling, partial `UnprocessedItems` — come from a small HTTP proxy in front of it that
//! the test controls. Without moto these tests fail in CI and skip (loudly) elsewhere.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cloud::bus::Bus;
use cloud::event::{Event, EventData, LogLevel, StackLog};
use cloud::progress::Model;
use cloud::sink::dynamodb::DynamoSink;
use cloud::sink::journal::JournalSink;
use cloud::store::dynamodb::{Query, Stored, Table, Target, TRUNCATED_MARKER};
use common::moto::{aws_env, create_table, moto, rt, table_name};
use common::{gate_script, parse_events, wait_for_file, Project};
use serde_json::Value;

/// `cloud` with the AWS environment pointing at `endpoint`.
fn cloud(p: &Project, endpoint: &str) -> assert_cmd::Command {
    let mut cmd = p.cmd();
    cmd.envs(common::moto::aws_vars(endpoint));
    for var in common::moto::AWS_CLEARED {
        cmd.env_remove(var);
    }
    cmd
}

/// Every item of a deployment, read straight from the table (no spool replay).
fn items(table: &Table, id: &str) -> Vec<Stored> {
    rt().block_on(table.query(id, &Query::default()))
        .unwrap()
        .iter()
        .map(|i| Stored::from_item(i).expect("an item of ours"))
        .collect()
}

/// (runId, sequence) of every item, and whether any came twice.
fn keys(stored: &[Stored]) -> BTreeSet<(String, u64)> {
    let set: BTreeSet<(String, u64)> = stored
        .iter()
        .map(|s| (s.run_id.clone(), s.envelope["sequence"].as_u64().unwrap()))
        .collect();
    assert_eq!(set.len(), stored.len(), "an event is in the table twice");
    set
}

/// (runId, sequence) of every event in every journal of `id` / `env`.
fn journal_keys(p: &Project, id: &str, env: &str) -> BTreeSet<(String, u64)> {
    let dir = p.deployment_dir(id).join("journal").join(env);
    let mut set = BTreeSet::new();
    for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if path.extension().is_some_and(|x| x == "jsonl") {
            let run = path.file_stem().unwrap().to_str().unwrap().to_owned();
            for e in parse_events(&std::fs::read(&path).unwrap()) {
                set.insert((run.clone(), e["sequence"].as_u64().unwrap()));
            }
        }
    }
    set
}

/// Spool files (`.jsonl`) and run markers (`.pending`) left for `id`.
fn spooled(p: &Project, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let root = p.deployment_dir(id).join("spool");
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Many small stacks: a few hundred events.
fn wide_manifest(stacks: usize) -> String {
    let mut y = String::from("environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n");
    for i in 0..stacks {
        y.push_str(&format!(
            "  s{i}:\n    resources:\n      - {{ type: \"t:a:A\", name: a, seconds: 0 }}\n      - {{ type: \"t:a:B\", name: b, seconds: 0 }}\n"
        ));
    }
    y
}

/// `cloud deploy ID -e dev --output json --force --dynamodb-table TABLE`, stdout dropped, to
/// spawn (the tests set stderr and the AWS endpoint).
fn table_deploy(p: &Project, id: &str, table: &str) -> Command {
    let mut cmd = p.process();
    cmd.args(["deploy", id, "-e", "dev", "--output", "json", "--force"])
        .args(["--dynamodb-table", table])
        .stdout(Stdio::null());
    cmd
}

#[test]
fn ten_thousand_events_of_one_millisecond_are_ten_thousand_items() {
    let Some(_) = moto() else { return };
    let name = table_name("same-ms");
    let table = create_table(&name);
    let dir = tempfile::tempdir().unwrap();
    let timestamp = "2025-10-09T14:30:00.123Z".parse().unwrap();
    let rt = rt();
    let report = rt.block_on(async {
        let mut bus = Bus::new(&dir.path().join("scratch"));
        bus.attach(Box::new(DynamoSink {
            target: Target {
                table: name.clone(),
                region: None,
            },
            manifest_dir: dir.path().to_path_buf(),
            environment: "dev".into(),
            run_id: "20251009T143000123Z-0001".into(),
            user: Some("ann".into()),
            journal: dir.path().join("journal.jsonl"),
            journal_flushed: None,
        }))
        .unwrap();
        let publisher = bus.publisher();
        let model = Model::new("SAME", "dev");
        for sequence in 1..=10_000 {
            let event = Event {
                sequence,
                timestamp,
                deployment_id: "SAME".into(),
                environment: "dev".into(),
                data: EventData::StackLog(StackLog {
                    stack: "app".into(),
                    level: LogLevel::Info,
                    message: format!("line {sequence}"),
                }),
            };
            publisher.send(Arc::new(event), &model);
        }
        bus.shutdown(Duration::from_secs(120)).await
    });
    let (report, warnings) = (report.reports, report.warnings);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].delivered, 10_000, "{:?}", report[0]);
    assert_eq!(report[0].problem, None);
    let stored = items(&table, "SAME");
    assert_eq!(stored.len(), 10_000);
    let seqs = keys(&stored);
    assert_eq!(seqs.len(), 10_000);
    assert!(stored
        .iter()
        .all(|s| s.envelope["timestamp"] == "2025-10-09T14:30:00.123Z"
            && s.user.as_deref() == Some("ann")));
    // Nothing spooled, no marker left.
    assert!(spooled_files(dir.path()).is_empty());
}

/// A table far slower than the run: what the sink has not sent when its time is up is read
/// back from the journal (the sink keeps no second copy of it) and spooled. Table and spool
/// then hold every event once, each as the journal has it.
/// A run of `events` log events through the journal and the DynamoDB sink (reading back
/// from the file at `read_back`, the journal's own unless a test moves it), given `drain` to
/// finish once the last is published.
fn journal_and_table(
    dir: &Path,
    table: &str,
    run_id: &str,
    events: u64,
    read_back: Option<&Path>,
    drain: Duration,
) -> cloud::bus::Shutdown {
    rt().block_on(async {
        let mut bus = Bus::new(&dir.join("scratch"));
        let journal = JournalSink::create(&dir.join("journal"), run_id).unwrap();
        let sink = DynamoSink {
            target: Target {
                table: table.to_owned(),
                region: None,
            },
            manifest_dir: dir.to_path_buf(),
            environment: "dev".into(),
            run_id: run_id.into(),
            user: None,
            journal: read_back.map_or_else(|| journal.path().to_path_buf(), Path::to_path_buf),
            journal_flushed: Some(journal.flushed()),
        };
        bus.attach(Box::new(journal)).unwrap();
        bus.attach(Box::new(sink)).unwrap();
        let publisher = bus.publisher();
        let model = Model::new("BEHIND", "dev");
        for sequence in 1..=events {
            let event = Event {
                sequence,
                timestamp: chrono::Utc::now(),
                deployment_id: "BEHIND".into(),
                environment: "dev".into(),
                data: EventData::StackLog(StackLog {
                    stack: format!("s{}", sequence % 7),
                    level: LogLevel::Info,
                    message: format!("line {sequence}: {}", "x".repeat((sequence % 50) as usize)),
                }),
            };
            publisher.send(Arc::new(event), &model);
        }
        bus.shutdown(drain).await
    })
}

/// A table far slower than the run: what the sink has not sent when its time is up is read
/// back from the journal (the sink keeps no second copy of it) and spooled. Table and spool
/// then hold every event once, each as the journal has it.
#[test]
fn events_a_slow_table_cannot_take_are_read_back_from_the_journal_and_spooled() {
    let Some(_) = moto() else { return };
    let name = table_name("behind");
    let table = create_table(&name);
    let dir = tempfile::tempdir().unwrap();
    const EVENTS: u64 = 40_000;
    let run_id = "20251009T143000123Z-0002";
    let journal_dir = dir.path().join("journal");
    // Seconds: far too short for a local table to take 40,000 items.
    let shut = journal_and_table(
        dir.path(),
        &name,
        run_id,
        EVENTS,
        None,
        Duration::from_secs(3),
    );
    let reports = &shut.reports;
    assert_eq!(reports[0].delivered, EVENTS, "{:?}", reports[0]);
    assert_eq!(reports[1].problem, None, "{:?}", reports[1]);
    assert!(
        shut.warnings
            .iter()
            .any(|w| w.message.contains("wait in the spool")),
        "{:?}",
        shut.warnings
    );
    let journal: Vec<Value> =
        parse_events(&std::fs::read(journal_dir.join(format!("{run_id}.jsonl"))).unwrap());
    assert_eq!(journal.len() as u64, EVENTS);

    let sent = keys(&items(&table, "BEHIND"));
    assert!(sent.len() as u64 >= reports[1].delivered);
    let files = spooled_files(dir.path());
    assert_eq!(
        files.len(),
        1,
        "one spool file, no marker or overflow left: {files:?}"
    );
    let (spool, bad) = cloud::store::spool::read(&files[0]).unwrap();
    assert_eq!(bad, 0);
    let mut spooled = BTreeSet::new();
    for item in &spool {
        let stored = Stored::from_item(item).unwrap();
        let sequence = stored.envelope["sequence"].as_u64().unwrap();
        assert_eq!(stored.envelope, journal[sequence as usize - 1]);
        assert!(
            spooled.insert((run_id.to_owned(), sequence)),
            "{sequence} spooled twice"
        );
    }
    // Batches cut off in flight at the end are spooled, though the table may have taken
    // them (sending them again writes the same items).
    assert!(sent.intersection(&spooled).count() <= 8 * 25);
    let every: BTreeSet<_> = sent.union(&spooled).cloned().collect();
    let all: BTreeSet<_> = (1..=EVENTS).map(|s| (run_id.to_owned(), s)).collect();
    assert_eq!(every, all);
    assert!(
        spool.len() as u64 > EVENTS / 2,
        "most were left: {}",
        spool.len()
    );
}

/// The journal gone from under the run: what the sink left to it cannot be read back. That is
/// said as the sink's problem, counted, and the run's marker stays (it is never guessed at).
#[test]
fn events_that_cannot_be_read_back_from_the_journal_are_said_lost_not_guessed() {
    let Some(_) = moto() else { return };
    let name = table_name("unread");
    let _table = create_table(&name);
    let dir = tempfile::tempdir().unwrap();
    let run_id = "20251009T143000123Z-0003";
    let gone = dir.path().join("gone.jsonl");
    let shut = journal_and_table(
        dir.path(),
        &name,
        run_id,
        30_000,
        Some(&gone),
        Duration::from_secs(3),
    );
    let report = &shut.reports[1];
    let problem = report.problem.as_deref().unwrap_or_default();
    assert!(
        problem.contains("could not be read back from the journal")
            && problem.contains(&*gone.to_string_lossy())
            && problem.contains("more wait in the spool"),
        "{report:?}"
    );
    assert!(report.undelivered > 0, "{report:?}");
    // Memory's worth was sent or spooled; what was left to the journal is what is missing.
    assert!(report.undelivered <= 10_000, "{report:?}");
    let files = spooled_files(dir.path());
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|x| x == "pending")),
        "{files:?}"
    );
}

fn spooled_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("spool")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn a_one_megabyte_log_message_is_stored_cut_with_a_marker() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("big");
    let table = create_table(&name);
    let p = Project::new();
    p.manifest(
        "BIG",
        "environments: [dev]\nstacks:\n  app: { executor: simulate }\n",
    );
    let rt = rt();
    let reports = rt.block_on(async {
        let mut bus = Bus::new(&p.root().join("scratch"));
        bus.attach(Box::new(DynamoSink {
            target: Target {
                table: name.clone(),
                region: None,
            },
            manifest_dir: p.deployment_dir("BIG"),
            environment: "dev".into(),
            run_id: "20251009T143000123Z-0002".into(),
            user: None,
            journal: p.root().join("none.jsonl"),
            journal_flushed: None,
        }))
        .unwrap();
        let event = Event {
            sequence: 1,
            timestamp: chrono::Utc::now(),
            deployment_id: "BIG".into(),
            environment: "dev".into(),
            data: EventData::StackLog(StackLog {
                stack: "app".into(),
                level: LogLevel::Warn,
                message: "x".repeat(1 << 20),
            }),
        };
        bus.publisher()
            .send(Arc::new(event), &Model::new("BIG", "dev"));
        bus.shutdown(Duration::from_secs(60)).await.reports
    });
    assert_eq!(reports[0].delivered, 1, "{:?}", reports[0]);
    let stored = items(&table, "BIG");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].truncated);
    // Read back through the binary: the cut message, marked.
    let out = cloud(&p, &endpoint)
        .args([
            "events",
            "BIG",
            "--dynamodb-table",
            &name,
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = parse_events(&out.stdout);
    let message = events[0]["data"]["message"].as_str().unwrap();
    assert!(message.len() < 400 * 1024, "{}", message.len());
    assert!(message.starts_with("xxxx"));
    assert!(
        message.ends_with(&format!(
            "{TRUNCATED_MARKER} 1048576 bytes, the first {} kept]",
            message.find('…').unwrap()
        )),
        "{}",
        &message[message.len() - 100..]
    );
}

#[test]
fn status_history_and_events_read_the_same_from_the_table_and_the_journal() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("same");
    create_table(&name);
    let p = Project::new();
    p.manifest(
        "SAME",
        &format!(
            "environments: [dev]\neventStore: {{ dynamodb: {{ table: {name} }} }}\nstacks:\n  \
             net: {{ executor: simulate, resources: [{{ type: \"t:a:A\", name: a, seconds: 0.05 }}] }}\n  \
             db: {{ executor: simulate, dependencies: [net], resources: [{{ type: \"t:a:B\", name: b, seconds: 0, fail: \"Access Denied\" }}] }}\n"
        ),
    );
    // The manifest turns the table on; the run's events land there.
    let out = cloud(&p, &endpoint)
        .args(["deploy", "SAME", "-e", "dev", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("spool"));
    let journal = journal_keys(&p, "SAME", "dev");
    assert_eq!(keys(&items(&create_table_handle(&name), "SAME")), journal);

    let read = |args: &[&str]| {
        let out = cloud(&p, &endpoint).args(args).output().unwrap();
        // The run failed: `status` says so with exit 1; the other readers succeed.
        let expected = if args[0] == "status" { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let from_table: Vec<String> = [
        &["status", "SAME", "-e", "dev", "--output", "json"][..],
        &["history", "SAME", "--output", "json"],
        &["events", "SAME", "--output", "json"],
        &["status", "SAME", "-e", "dev"],
        &["events", "SAME"],
    ]
    .iter()
    .map(|a| read(a))
    .collect();
    // Now without the table: the journal.
    p.manifest(
        "SAME",
        "environments: [dev]\nstacks:\n  \
         net: { executor: simulate, resources: [{ type: \"t:a:A\", name: a, seconds: 0.05 }] }\n  \
         db: { executor: simulate, dependencies: [net], resources: [{ type: \"t:a:B\", name: b, seconds: 0, fail: \"Access Denied\" }] }\n",
    );
    let from_journal: Vec<String> = [
        &["status", "SAME", "-e", "dev", "--output", "json"][..],
        &["history", "SAME", "--output", "json"],
        &["events", "SAME", "--output", "json"],
        &["status", "SAME", "-e", "dev"],
        &["events", "SAME"],
    ]
    .iter()
    .map(|a| read(a))
    .collect();
    assert_eq!(from_table[0], from_journal[0], "status --output json");
    assert_eq!(from_table[1], from_journal[1], "history --output json");
    assert_eq!(from_table[2], from_journal[2], "events --output json");
    assert_eq!(from_table[4], from_journal[4], "events");
    // The text of status differs only in the line that says where it read.
    let without_place = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("  journal: ") && !l.starts_with("  events: DynamoDB"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(from_table[3].contains(&format!("  events: DynamoDB table {name}")));
    assert_eq!(
        without_place(&from_table[3]),
        without_place(&from_journal[3])
    );
    let history = parse_events(from_table[1].as_bytes());
    assert_eq!(history[0]["user"], "ann");
    assert_eq!(history[0]["status"], "failed");
}

fn create_table_handle(name: &str) -> Table {
    rt().block_on(Table::connect(&Target {
        table: name.into(),
        region: None,
    }))
    .unwrap()
}

/// An HTTP proxy in front of moto whose faults the test sets.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
    /// BatchWriteItem requests still to answer with a fault (FLAKY).
    faulty: Arc<AtomicU64>,
    /// Faults answered.
    faults: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

const PASS: u8 = 0;
/// The server is gone: connections are refused.
const DOWN: u8 = 1;
/// BatchWriteItem gets throttling errors and partial UnprocessedItems, in turn.
const FLAKY: u8 = 2;

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            mode: Arc::new(AtomicU8::new(PASS)),
            faulty: Arc::new(AtomicU64::new(0)),
            faults: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (mode, faulty, faults, stop) = (
            proxy.mode.clone(),
            proxy.faulty.clone(),
            proxy.faults.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !stop.load(Ordering::SeqCst) {
                // Down: no listener at all, so connecting is refused, as with a stopped server.
                if mode.load(Ordering::SeqCst) == DOWN {
                    listener = None;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let l = match &listener {
                    Some(l) => l,
                    None => match TcpListener::bind(("127.0.0.1", port)) {
                        Ok(l) => listener.insert(l),
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    },
                };
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let (mode, faulty, faults) = (mode.clone(), faulty.clone(), faults.clone());
                        std::thread::spawn(move || {
                            let _ = serve(client, upstream, &mode, &faulty, &faults);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One HTTP request: the head (request line and headers) and the body.
fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let len = head
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok((head, body))
}

fn write_message(w: &mut TcpStream, head: &[String], body: &[u8]) -> std::io::Result<()> {
    let mut out = String::new();
    for (i, h) in head.iter().enumerate() {
        let name = h.split(':').next().unwrap_or("").to_ascii_lowercase();
        if i > 0
            && matches!(
                name.as_str(),
                "content-length" | "connection" | "keep-alive"
            )
        {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    w.write_all(out.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

fn forward(
    upstream: SocketAddr,
    head: &[String],
    body: &[u8],
) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    let mut up = TcpStream::connect(upstream)?;
    write_message(&mut up, head, body)?;
    read_message(&mut BufReader::new(up))
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mode: &AtomicU8,
    faulty: &AtomicU64,
    faults: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let (head, body) = read_message(&mut reader)?;
    if mode.load(Ordering::SeqCst) == DOWN {
        return Ok(());
    }
    let batch = head.iter().any(|h| {
        h.to_ascii_lowercase().starts_with("x-amz-target:") && h.contains("BatchWriteItem")
    });
    let fault = batch
        && mode.load(Ordering::SeqCst) == FLAKY
        && faulty
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if !fault {
        let (rhead, rbody) = forward(upstream, &head, &body)?;
        return write_message(&mut client, &rhead, &rbody);
    }
    let n = faults.fetch_add(1, Ordering::SeqCst);
    let mut request: Value = serde_json::from_slice(&body).unwrap();
    let (table, list) = {
        let items = request["RequestItems"].as_object().unwrap();
        let (t, l) = items.iter().next().unwrap();
        (t.clone(), l.as_array().unwrap().clone())
    };
    if n.is_multiple_of(2) || list.len() < 2 {
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;
        let head = vec![
            "HTTP/1.1 400 Bad Request".to_owned(),
            "Content-Type: application/x-amz-json-1.0".to_owned(),
            "x-amzn-ErrorType: ProvisionedThroughputExceededException".to_owned(),
        ];
        return write_message(&mut client, &head, body);
    }
    // Write the first half; answer the second half as unprocessed.
    let half = list.len() / 2;
    request["RequestItems"][&table] = Value::Array(list[..half].to_vec());
    let forwarded = serde_json::to_vec(&request).unwrap();
    let (rhead, rbody) = forward(upstream, &head, &forwarded)?;
    let mut reply: Value = serde_json::from_slice(&rbody).unwrap();
    reply["UnprocessedItems"] = serde_json::json!({ table: list[half..].to_vec() });
    write_message(&mut client, &rhead, &serde_json::to_vec(&reply).unwrap())
}

#[test]
fn throttling_and_unprocessed_items_still_land_every_event_once() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("flaky");
    let table = create_table(&name);
    let proxy = Proxy::start(&endpoint);
    proxy.faulty.store(40, Ordering::SeqCst);
    proxy.set(FLAKY);
    let p = Project::new();
    p.manifest("FLAKY", &wide_manifest(60));
    let out = cloud(&p, &proxy.url())
        .args([
            "deploy",
            "FLAKY",
            "-e",
            "dev",
            "--output",
            "json",
            "--force",
            "--dynamodb-table",
            &name,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("spool"), "{stderr}");
    assert!(
        proxy.faults.load(Ordering::SeqCst) >= 40,
        "the proxy injected no fault"
    );
    let journal = journal_keys(&p, "FLAKY", "dev");
    assert!(journal.len() > 300);
    assert_eq!(keys(&items(&table, "FLAKY")), journal);
    assert!(
        spooled(&p, "FLAKY").is_empty(),
        "{:?}",
        spooled(&p, "FLAKY")
    );
}

#[test]
fn an_outage_mid_deploy_is_spooled_and_sent_later_exactly_once() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("outage");
    let table = create_table(&name);
    let proxy = Proxy::start(&endpoint);
    let p = Project::new();
    let ready = p.root().join("ready");
    let go = p.root().join("go");
    let manifest = format!(
        "{}  gate:\n    executor: command\n    dependencies: [s0]\n    deploy: \"{gate}; echo through\"\n  after:\n    executor: simulate\n    dependencies: [gate]\n    resources: [{{ type: \"t:a:A\", name: a, seconds: 0 }}]\n",
        wide_manifest(20),
        gate = gate_script(&ready, &go)
    );
    p.manifest("OUT", &manifest);
    let deploy = || {
        let _ = std::fs::remove_file(&ready);
        let _ = std::fs::remove_file(&go);
        let mut cmd = table_deploy(&p, "OUT", &name);
        cmd.stderr(Stdio::piped());
        aws_env(&mut cmd, &proxy.url());
        let child = cmd.spawn().unwrap();
        wait_for_file(&ready);
        // The server goes away in the middle of the run.
        proxy.set(DOWN);
        std::fs::write(&go, "").unwrap();
        child.wait_with_output().unwrap()
    };

    // 1. The deploy succeeds; what could not be sent waits in the spool.
    let out = deploy();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("wait in the spool") && stderr.contains("cloud events sync"),
        "{stderr}"
    );
    let journal = journal_keys(&p, "OUT", "dev");
    let before = keys(&items(&table, "OUT"));
    assert!(before.len() < journal.len(), "nothing was spooled");
    assert!(!spooled(&p, "OUT").is_empty());
    // Still down: sync says so and keeps the spool.
    let out = cloud(&p, &proxy.url())
        .args(["events", "sync", "OUT", "--dynamodb-table", &name])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("still wait in the spool"));
    // 2. Back up: sync leaves the table with exactly the journal's events.
    proxy.set(PASS);
    let out = cloud(&p, &proxy.url())
        .args(["events", "sync", "OUT", "--dynamodb-table", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(keys(&items(&table, "OUT")), journal);
    assert!(spooled(&p, "OUT").is_empty(), "{:?}", spooled(&p, "OUT"));
    // Syncing again sends nothing twice.
    let again = cloud(&p, &proxy.url())
        .args(["events", "sync", "OUT", "--dynamodb-table", &name])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("sent 0 "));
    assert_eq!(items(&table, "OUT").len(), journal.len());

    // 3. Another outage; this time the next command that reads the table sends the spool.
    let out = deploy();
    assert_eq!(out.status.code(), Some(0));
    proxy.set(PASS);
    let status = cloud(&p, &proxy.url())
        .args(["status", "OUT", "-e", "dev", "--dynamodb-table", &name])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("OUT-dev: deployed"));
    assert_eq!(keys(&items(&table, "OUT")), journal_keys(&p, "OUT", "dev"));
    assert!(spooled(&p, "OUT").is_empty());

    // 4. A run killed outright (no chance to spool): its journal is sent again whole.
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(&go);
    let mut cmd = table_deploy(&p, "OUT", &name);
    cmd.stderr(Stdio::null());
    proxy.set(PASS);
    aws_env(&mut cmd, &proxy.url());
    let mut child = cmd.spawn().unwrap();
    wait_for_file(&ready);
    proxy.set(DOWN);
    // Let the sink meet the outage with events in hand, then kill it.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(spooled(&p, "OUT").iter().any(|f| f.ends_with(".pending")));
    proxy.set(PASS);
    let out = cloud(&p, &proxy.url())
        .args(["events", "sync", "OUT", "--dynamodb-table", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(keys(&items(&table, "OUT")), journal_keys(&p, "OUT", "dev"));
    assert!(spooled(&p, "OUT").is_empty(), "{:?}", spooled(&p, "OUT"));
}

#[test]
fn a_table_back_before_the_end_of_the_run_gets_the_events_spooled_meanwhile() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("back");
    let table = create_table(&name);
    let proxy = Proxy::start(&endpoint);
    let p = Project::new();
    let ready = p.root().join("ready");
    let go = p.root().join("go");
    // `gate` logs a line every 50 ms until `go`: events keep coming while the table is away.
    let manifest = format!(
        "{}  gate:\n    executor: command\n    dependencies: [s0]\n    deploy: \"touch {ready}; while [ ! -f {go} ]; do echo waiting; sleep 0.05; done; echo through\"\n  after:\n    executor: simulate\n    dependencies: [gate]\n    resources: [{{ type: \"t:a:A\", name: a, seconds: 0 }}]\n",
        wide_manifest(5),
        ready = ready.display(),
        go = go.display()
    );
    p.manifest("BACK", &manifest);
    let mut cmd = table_deploy(&p, "BACK", &name);
    cmd.stderr(Stdio::piped());
    aws_env(&mut cmd, &proxy.url());
    let child = cmd.spawn().unwrap();
    wait_for_file(&ready);
    // The table goes away; the sink meets it (its batch fails, what follows is spooled)…
    proxy.set(DOWN);
    let spool = p
        .deployment_dir("BACK")
        .join("spool/dynamodb")
        .join(&name)
        .join("dev");
    common::wait_for("something to be spooled", 30, || {
        std::fs::read_dir(&spool)
            .into_iter()
            .flatten()
            .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "jsonl"))
    });
    // …and comes back 2 s before the run ends: sooner than the sink's next probe (5 s after
    // the failure), so only the end-of-run drain can find it back.
    proxy.set(PASS);
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("wait in the spool"), "{stderr}");
    assert_eq!(
        keys(&items(&table, "BACK")),
        journal_keys(&p, "BACK", "dev")
    );
    assert!(spooled(&p, "BACK").is_empty(), "{:?}", spooled(&p, "BACK"));
}

#[test]
fn cloudwatch_logs_get_every_event_in_the_runs_stream() {
    let Some(endpoint) = moto() else { return };
    let p = Project::new();
    let id = format!("CW{}", std::process::id());
    p.manifest(&id, &wide_manifest(5));
    let out = cloud(&p, &endpoint)
        .args([
            "deploy",
            &id,
            "-e",
            "dev",
            "--output",
            "json",
            "--cloudwatch",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = p.journal(&id, "dev");
    let stream = format!("deploy-dev-{}", chrono::Utc::now().format("%Y-%m-%d"));
    let rt = rt();
    let messages = rt.block_on(async {
        let config = cloud::store::dynamodb::sdk_config(None).await;
        let client = aws_sdk_cloudwatchlogs::Client::new(&config);
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .get_log_events()
                .log_group_name(format!("/cloud/deployments/{id}"))
                .log_stream_name(&stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap();
            let n = page.events().len();
            all.extend(
                page.events()
                    .iter()
                    .filter_map(|e| e.message().map(str::to_owned)),
            );
            let next = page.next_forward_token().map(str::to_owned);
            if n == 0 || next == token {
                break;
            }
            token = next;
        }
        all
    });
    assert_eq!(messages.len(), journal.len());
    let first: Value = serde_json::from_str(&messages[0]).unwrap();
    assert_eq!(first["type"], "deployment_started");
    assert_eq!(first["level"], "INFO");
    assert!(first["message"]
        .as_str()
        .unwrap()
        .starts_with("Deployment started"));
    let last: Value = serde_json::from_str(messages.last().unwrap()).unwrap();
    assert_eq!(last["type"], "deployment_complete");
    assert_eq!(last["sequence"], journal.last().unwrap()["sequence"]);
}

/// What the deploy's sink could not read in an earlier run's spool (here a marker that is not
/// one) is said, once, as a warning after the run and a WARN line in the file log; it used to
/// be dropped with the replay's result. The run itself succeeds.
#[test]
fn what_an_earlier_spool_cannot_give_is_a_warning_of_the_deploy() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("bad-marker");
    create_table(&name);
    let p = Project::new();
    p.manifest(
        "MARK",
        "environments: [dev]\nstacks:\n  app:\n    executor: simulate\n    \
         resources: [{ type: \"aws:s3/bucket:Bucket\", name: logs, seconds: 0.3 }]\n",
    );
    let spool = p
        .deployment_dir("MARK")
        .join("spool/dynamodb")
        .join(&name)
        .join("dev");
    std::fs::create_dir_all(&spool).unwrap();
    let marker = spool.join("20250101T000000000Z-0001.pending");
    std::fs::write(&marker, "not a marker").unwrap();
    let mut cmd = table_deploy(&p, "MARK", &name);
    cmd.stderr(Stdio::piped());
    aws_env(&mut cmd, &endpoint);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let said = format!(
        "an earlier run's spool: {} is not a run marker; remove it",
        marker.display()
    );
    let warnings: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("warning: DynamoDB event store: "))
        .collect();
    assert_eq!(warnings, [said.as_str()], "{err}");
    let logs = p.deployment_dir("MARK").join("logs");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .next()
        .expect("the run's file log");
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN  [DynamoDB event store] ") && l.ends_with(&said)),
        "{log}"
    );
}
