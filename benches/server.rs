//! The server under load (issue #12, "Speed"), driving the release binary:
//! 1,000 WebSocket subscribers on loopback follow a `cloud deploy --serve` that emits about
//! 20,000 events. Reports whether every client received every event in order, the latency
//! from emit (the event's own timestamp) to receipt (p50 / p99 / max), the deploy process's
//! peak memory, and the deploy's wall time beside the same deploy with no server at all.
//!
//! The deploy: a gate stack (so that all clients are subscribed before the run's events
//! flow), then 100 simulated stacks of 99 resources each, all at once; a resource takes
//! from half to one and a half times `BENCH_RESOURCE_SECONDS` (default 0.4 s), so the 20,000
//! events come over ~40 s (~500 a second, 500,000 frames a second to the clients together).
//!
//! With `BENCH_STALLED=N` it measures instead what clients that stop reading cost: the same
//! served deploy (default 1,000 stacks x 48 zero-second resources, ~98,000 events, a ~24 MB
//! model) with no client, then with N clients that subscribe before the run and never read;
//! it reports the deploy's peak RSS of each and their ratio (target ≤ 1.2x for 200).
//!
//! Run: `cargo bench --bench server` (`BENCH_CLIENTS`, `BENCH_STACKS`, `BENCH_RESOURCES`,
//! `BENCH_RESOURCE_SECONDS` change the shape). The clients run in this process, on the same
//! machine as the server: on 2 cores they share the CPU with it. Prints PASS/FAIL against
//! the targets (all in order, p99 ≤ 50 ms); the report also goes to `target/bench-server.md`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const CLOUD: &str = env!("CARGO_BIN_EXE_cloud");
/// Latency buckets, one per millisecond; the last holds everything slower.
const BUCKETS: usize = 5000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn manifest(stacks: usize, resources: usize, seconds: f64) -> String {
    let mut yaml = String::from(
        "deploymentId: BENCH\nenvironments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  gate:\n    executor: command\n    deploy: touch ready; while [ ! -f go ]; do sleep 0.01; done\n",
    );
    for s in 0..stacks {
        let _ = writeln!(yaml, "  s{s}:\n    dependencies: [gate]\n    resources:");
        for r in 0..resources {
            // Spread from half to one and a half times the mean, so stacks drift apart as real
            // ones do (in lockstep every resource of every stack would finish at once).
            let spread = 0.5 + ((s * 31 + r * 17) % 100) as f64 / 100.0;
            let _ = writeln!(
                yaml,
                "      - {{ type: \"aws:s3/bucket:Bucket\", name: b{r}, seconds: {:.3} }}",
                seconds * spread
            );
        }
    }
    yaml
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Peak resident memory of a running process, in KiB (`VmHWM`).
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Deploy {
    child: std::process::Child,
    /// `127.0.0.1:PORT` when serving.
    host: Option<String>,
    token: Option<String>,
}

fn start_deploy(root: &Path, serve: bool) -> Deploy {
    let mut cmd = match std::env::var("BENCH_WRAP") {
        Ok(wrap) if serve => {
            let mut cmd = Command::new(wrap);
            cmd.arg(CLOUD);
            cmd
        }
        _ => Command::new(CLOUD),
    };
    cmd.arg("--root")
        .arg(root)
        .args(["deploy", "BENCH", "-e", "dev", "--output", "json"])
        .env_remove("CLOUD_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if serve {
        cmd.args(["--serve", "127.0.0.1:0"]);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("http://") {
                let _ = tx.send(line[at..].to_owned());
            } else {
                eprintln!("[cloud] {line}");
            }
        }
    });
    let (host, token) = if serve {
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a served URL");
        let host = url["http://".len()..].split('/').next().unwrap().to_owned();
        let token = url
            .split("token=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        (Some(host), Some(token))
    } else {
        (None, None)
    };
    Deploy { child, host, token }
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// How a deploy went: wall time from the release of the gate, peak KiB, CPU seconds.
struct Ran {
    wall: Duration,
    peak_kib: u64,
    cpu: f64,
}

/// Releases the gate and waits for the deploy to end.
fn release_and_wait(dir: &Path, child: &mut std::process::Child) -> Ran {
    let go = Instant::now();
    std::fs::write(dir.join("go"), "").unwrap();
    let mut peak = 0;
    let mut cpu = 0.0;
    let pid = child.id().to_string();
    loop {
        if let Some(kib) = peak_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(used) = cpu_seconds(&pid) {
            cpu = used;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the deploy failed: {status}");
            return Ran {
                wall: go.elapsed(),
                peak_kib: peak,
                cpu,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Default)]
struct ClientStats {
    events: u64,
    in_order: bool,
    last: u64,
    latency: Vec<u64>,
}

const DAY_MS: i64 = 86_400_000;

/// Milliseconds since midnight UTC of `2025-10-09T14:30:00.123Z…` (the events' own form),
/// read by hand: the clients read millions of them.
fn millis_of_day(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() < 24 || b[10] != b'T' || b[23] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> { ts.get(from..to)?.parse().ok() };
    Some(((num(11, 13)? * 60 + num(14, 16)?) * 60 + num(17, 19)?) * 1000 + num(20, 23)?)
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    Some(&text[at..])
}

async fn client(
    url: String,
    subscribed: Arc<AtomicUsize>,
    measure_from: Arc<std::sync::atomic::AtomicI64>,
) -> ClientStats {
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let subscribe = r#"{"action":"subscribe","channel":"deployments/BENCH-dev","since":0}"#;
    ws.send(Message::text(subscribe)).await.unwrap();
    let mut stats = ClientStats {
        in_order: true,
        latency: vec![0; BUCKETS],
        ..Default::default()
    };
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let text = text.as_str();
        if text.starts_with(r#"{"type":"subscribed""#) {
            subscribed.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        if text.starts_with(r#"{"type":"snapshot""#) {
            if text.contains(r#""reason":"lagged""#) {
                stats.in_order = false;
            }
            continue;
        }
        let received = now_ms();
        let sequence: u64 = field(text, r#""sequence":"#)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if sequence != stats.last + 1 {
            stats.in_order = false;
        }
        stats.last = sequence;
        stats.events += 1;
        let from = measure_from.load(Ordering::Relaxed);
        if let (Some(emitted), true) = (
            field(text, r#""timestamp":""#).and_then(millis_of_day),
            from != i64::MAX,
        ) {
            // Times of day (UTC): the run is short, and this works across midnight too.
            let after_gate = (emitted - from % DAY_MS).rem_euclid(DAY_MS) < DAY_MS / 2;
            if after_gate {
                let ms = (received % DAY_MS - emitted).rem_euclid(DAY_MS) as usize;
                stats.latency[ms.min(BUCKETS - 1)] += 1;
            }
        }
        if text.starts_with(r#"{"type":"deployment_complete""#) {
            break;
        }
    }
    stats
}

fn percentile(histogram: &[u64], p: f64) -> usize {
    let total: u64 = histogram.iter().sum();
    let want = (total as f64 * p).ceil() as u64;
    let mut seen = 0;
    for (ms, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= want.max(1) {
            return ms;
        }
    }
    BUCKETS
}

/// Peak RSS (KiB) of a served deploy of `yaml` with `stalled` clients that subscribe before the
/// run and then read nothing; and the events it made.
fn served_with_stalled(yaml: &str, stalled: usize) -> (u64, u64) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cloud/deploy/BENCH");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("deployment.yaml"), yaml).unwrap();
    let mut served = start_deploy(root.path(), true);
    wait_for(&dir.join("ready"));
    let url = format!(
        "ws://{}/ws?token={}",
        served.host.as_deref().unwrap(),
        served.token.as_deref().unwrap()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Held, never read again once subscribed.
    let sockets: Vec<_> = runtime.block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..stalled {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("connect");
            let subscribe = r#"{"action":"subscribe","channel":"deployments/BENCH-dev"}"#;
            ws.send(Message::text(subscribe)).await.unwrap();
            while let Some(Ok(message)) = ws.next().await {
                if matches!(&message, Message::Text(t) if t.as_str().starts_with(r#"{"type":"subscribed""#)) {
                    break;
                }
            }
            sockets.push(ws);
        }
        sockets
    });
    let ran = release_and_wait(&dir, &mut served.child);
    drop(sockets);
    let journal = std::fs::read_dir(dir.join("journal/dev"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .unwrap()
        .path();
    let events = std::fs::read_to_string(journal).unwrap().lines().count() as u64;
    (ran.peak_kib, events)
}

fn stalled_main(stalled: usize) {
    let stacks: usize = env_or("BENCH_STACKS", 1000);
    let resources: usize = env_or("BENCH_RESOURCES", 48);
    let seconds: f64 = env_or("BENCH_RESOURCE_SECONDS", 0.0);
    let yaml = manifest(stacks, resources, seconds);
    let (none, events) = served_with_stalled(&yaml, 0);
    eprintln!("no client: {none} KiB");
    let (with, _) = served_with_stalled(&yaml, stalled);
    let ratio = with as f64 / none as f64;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# cloud server benchmark: clients that stop reading\n"
    );
    let _ = writeln!(
        report,
        "a served deploy of {events} events ({stacks} stacks x {resources} resources of {seconds} s); {stalled} clients subscribed before the run, then never read\n"
    );
    let _ = writeln!(report, "| what | result | target |\n|---|---|---|");
    let _ = writeln!(
        report,
        "| deploy process peak RSS | {:.1} MiB with {stalled} stalled clients vs {:.1} MiB with none: **{ratio:.2}x** {} | ≤ 1.2x |",
        with as f64 / 1024.0,
        none as f64 / 1024.0,
        if ratio <= 1.2 { "PASS" } else { "FAIL" }
    );
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-server-stalled.md");
    let _ = std::fs::write(out, report);
}

fn main() {
    let stalled: usize = env_or("BENCH_STALLED", 0);
    if stalled > 0 {
        return stalled_main(stalled);
    }
    let clients: usize = env_or("BENCH_CLIENTS", 1000);
    let stacks: usize = env_or("BENCH_STACKS", 100);
    let resources: usize = env_or("BENCH_RESOURCES", 99);
    let seconds: f64 = env_or("BENCH_RESOURCE_SECONDS", 0.4);
    let yaml = manifest(stacks, resources, seconds);

    // 1. The same deploy with no server: the baseline.
    let base_root = tempfile::tempdir().unwrap();
    let base_dir = base_root.path().join("cloud/deploy/BENCH");
    std::fs::create_dir_all(&base_dir).unwrap();
    std::fs::write(base_dir.join("deployment.yaml"), &yaml).unwrap();
    let mut base = start_deploy(base_root.path(), false);
    wait_for(&base_dir.join("ready"));
    let base_run = release_and_wait(&base_dir, &mut base.child);
    let (base_wall, base_peak) = (base_run.wall, base_run.peak_kib);
    eprintln!(
        "baseline: {base_wall:?}, {base_peak} KiB, {:.1} s CPU",
        base_run.cpu
    );

    // 2. Served, with the clients subscribed before the gate opens.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cloud/deploy/BENCH");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("deployment.yaml"), &yaml).unwrap();
    let mut served = start_deploy(root.path(), true);
    wait_for(&dir.join("ready"));
    let url = format!(
        "ws://{}/ws?token={}",
        served.host.as_deref().unwrap(),
        served.token.as_deref().unwrap()
    );
    // The clients share this process's two threads (one each is too few for 1,000 of them).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let subscribed = Arc::new(AtomicUsize::new(0));
    let measure_from = Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (url, subscribed, measure_from) = (
                url.clone(),
                Arc::clone(&subscribed),
                Arc::clone(&measure_from),
            );
            runtime.spawn(async move {
                // Connect in waves so the listen backlog never overflows.
                tokio::time::sleep(Duration::from_millis((i / 50) as u64 * 20)).await;
                client(url, subscribed, measure_from).await
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while subscribed.load(Ordering::SeqCst) < clients {
        assert!(
            Instant::now() < deadline,
            "only {} clients subscribed",
            subscribed.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let idle_kib = peak_kib(served.child.id()).unwrap_or(0);
    measure_from.store(now_ms(), Ordering::SeqCst);
    let clients_cpu_before = cpu_seconds("self").unwrap_or(0.0);
    let ran = release_and_wait(&dir, &mut served.child);
    let clients_cpu = cpu_seconds("self").unwrap_or(0.0) - clients_cpu_before;
    let (wall, peak) = (ran.wall, ran.peak_kib);
    let results: Vec<ClientStats> = runtime.block_on(async {
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.unwrap());
        }
        all
    });
    let journal = std::fs::read_dir(dir.join("journal/dev"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .unwrap()
        .path();
    let events = std::fs::read_to_string(journal).unwrap().lines().count() as u64;
    let complete = results
        .iter()
        .filter(|s| s.in_order && s.events == events && s.last == events)
        .count();
    let mut histogram = vec![0u64; BUCKETS];
    for s in &results {
        for (b, n) in s.latency.iter().enumerate() {
            histogram[b] += n;
        }
    }
    let samples: u64 = histogram.iter().sum();
    let (p50, p99) = (percentile(&histogram, 0.50), percentile(&histogram, 0.99));
    let max = histogram.iter().rposition(|&n| n > 0).unwrap_or(0);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let mut report = String::new();
    let _ = writeln!(report, "# cloud server benchmark\n");
    let _ = writeln!(
        report,
        "{} cores, load average {load} at the end (other work on the machine shares them)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        report,
        "{clients} WebSocket subscribers, a deploy of {events} events ({stacks} stacks x {resources} resources of {seconds} s) over {:.1} s ({:.0} events/s, {:.0} frames/s in all)\n",
        wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64(),
        (events * clients as u64) as f64 / wall.as_secs_f64()
    );
    let _ = writeln!(report, "| what | result | target |\n|---|---|---|");
    let _ = writeln!(
        report,
        "| clients that got every event, in order, no gap | {complete}/{clients} {} | all |",
        if complete == clients { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(
        report,
        "| emit → receipt latency over {samples} receipts | p50 {p50} ms, **p99 {p99} ms**, max {max} ms {} | p99 ≤ 50 ms |",
        if p99 <= 50 { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(
        report,
        "| deploy process peak RSS (deploy + server) | {:.1} MiB served ({:.1} MiB with the {clients} clients subscribed, before the run) vs {:.1} MiB without a server | reported |",
        peak as f64 / 1024.0,
        idle_kib as f64 / 1024.0,
        base_peak as f64 / 1024.0
    );
    let _ = writeln!(
        report,
        "| deploy wall time from the gate | {:.2} s served vs {:.2} s without a server ({:.3}x) | reported |",
        wall.as_secs_f64(),
        base_wall.as_secs_f64(),
        wall.as_secs_f64() / base_wall.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| CPU during the run | deploy + server {:.1} s (without a server {:.1} s); the {clients} clients {:.1} s | reported |",
        ran.cpu, base_run.cpu, clients_cpu
    );
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-server.md");
    let _ = std::fs::write(out, report);
}
