//! ETA accuracy (issue 11): the bundled example deployment, after five recorded runs whose
//! resource durations vary by ±20% (a new draw each run), is deployed three more times (new
//! draws, each then recorded too). At 25%, 50% and 75% of each measured run's wall time, the
//! `estimatedTimeRemaining` of the nearest `deployment_progress` event is compared with the
//! time that was actually left. Target: within 15%. Prints a report and writes it to
//! `target/bench-eta.md`; exits 0.
//!
//! Run: `cargo bench --bench eta` (eight runs of the example at its written speed: ~4 min).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const CLOUD: &str = env!("CARGO_BIN_EXE_cloud");
const RUNS_BEFORE: usize = 5;
const MEASURED: usize = 3;
const SPEED: &str = "1";

/// xorshift64*, fixed seed: the same draws every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The example manifest with every `seconds: X` drawn from X·[0.8, 1.2].
fn varied(example: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut rest = example;
    while let Some(at) = rest.find("seconds: ") {
        out.push_str(&rest[..at + 9]);
        rest = &rest[at + 9..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let seconds: f64 = rest[..end].parse().expect("a number of seconds");
        let factor = 0.8 + 0.4 * rng.next();
        let _ = write!(out, "{:.3}", seconds * factor);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn deploy(root: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(CLOUD)
        .args(["--root"])
        .arg(root)
        .args(["deploy", "D1BRV40", "-e", "dev", "-o", "json", "--force"])
        .env("CLOUD_SIMULATE_SPEED", SPEED)
        .env_remove("CLOUD_ROOT")
        .output()
        .expect("run cloud");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect()
}

fn time(e: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    e["timestamp"].as_str().unwrap().parse().unwrap()
}

fn main() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/example/cloud/deploy/D1BRV40/deployment.yaml"),
    )
    .expect("the example manifest");
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path().join("cloud/deploy/D1BRV40");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(0x5eed_e7a0);
    for _ in 0..RUNS_BEFORE {
        std::fs::write(dir.join("deployment.yaml"), varied(&example, &mut rng)).unwrap();
        deploy(tmp.path());
    }
    let mut md = format!(
        "# ETA accuracy\n\nThe example deployment ({SPEED}× speed) after {RUNS_BEFORE} runs whose resource \
         durations varied ±20%, then {MEASURED} measured runs (each varied anew).\n\n\
         | run | at | progress | ETA shown | actually left | error |\n|---|---|---|---|---|---|\n"
    );
    println!("ETA accuracy: {RUNS_BEFORE} earlier runs (±20%), then {MEASURED} measured runs");
    let mut worst = 0.0f64;
    let mut all = Vec::new();
    for run in 1..=MEASURED {
        std::fs::write(dir.join("deployment.yaml"), varied(&example, &mut rng)).unwrap();
        let events = deploy(tmp.path());
        let start = time(&events[0]);
        let end = time(events.last().unwrap());
        let total = (end - start).num_milliseconds() as f64 / 1000.0;
        let progress: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["type"] == "deployment_progress")
            .collect();
        for fraction in [0.25, 0.5, 0.75] {
            let target = total * fraction;
            let Some(e) = progress.iter().min_by(|a, b| {
                let da = ((time(a) - start).num_milliseconds() as f64 / 1000.0 - target).abs();
                let db = ((time(b) - start).num_milliseconds() as f64 / 1000.0 - target).abs();
                da.total_cmp(&db)
            }) else {
                println!("no deployment_progress event");
                return;
            };
            let at = (time(e) - start).num_milliseconds() as f64 / 1000.0;
            let left = total - at;
            let eta = e["data"]["estimatedTimeRemaining"].as_f64().unwrap_or(0.0);
            let error = (eta - left).abs() / left;
            worst = worst.max(error);
            all.push(error);
            let line = format!(
                "| {run} ({total:.1} s) | {:.0}% ({at:.2} s) | {}% | {eta:.0} s | {left:.2} s | {:.1}% |",
                fraction * 100.0,
                e["data"]["progressPercent"],
                error * 100.0
            );
            println!("  {line}");
            let _ = writeln!(md, "{line}");
        }
    }
    let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
    let verdict = if worst <= 0.15 { "PASS" } else { "FAIL" };
    println!(
        "  mean error {:.1}%, worst {:.1}% (target ≤ 15%) {verdict}",
        mean * 100.0,
        worst * 100.0
    );
    let _ = writeln!(
        md,
        "\nMean error {:.1}%, worst {:.1}% (target ≤ 15%) {verdict}. The ETA is whole seconds, as in \
         the seed's events.",
        mean * 100.0,
        worst * 100.0
    );
    let target_dir = Path::new(CLOUD)
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("target"));
    let _ = std::fs::write(target_dir.join("bench-eta.md"), md);
}
