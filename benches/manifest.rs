//! Reading big deployments (issue 24), this build against another one (`CLOUD_BENCH_BASELINE`,
//! say `main` as of the issue built in a worktree), the two run in turn in every round so that
//! machine noise hits both alike; medians of the rounds. On a generated 10,000-stack deployment
//! (10 zero-second simulated resources each, up to 3 dependencies; ~6.9 MB of YAML) and a
//! 1,000-stack one:
//!
//! 1. `cloud validate` of 10,000 stacks: wall and MB/s (target ≤ 0.2 s, ≥ 40 MB/s).
//! 2. Tab completion of `--only s0099` (bash's call back into `cloud`), 1,000 and 10,000 stacks
//!    (targets ≤ 50 ms and ≤ 150 ms), with the number of candidates each build offered.
//! 3. `cloud deploy -e dev --output json --force` of 10,000 stacks (journal and file log on):
//!    wall and peak RSS (targets ≤ 0.5× the baseline, ≤ 100 MiB).
//! 4. `cloud status -e dev` of that run (target ≤ 0.3 s).
//!
//! Prints PASS/FAIL against each target and writes `target/bench-manifest.md`; always exits 0.
//! Run: `CLOUD_BENCH_BASELINE=/path/to/other/cloud cargo bench --bench manifest` (`ROUNDS`,
//! default 5; a filter argument selects sections by number or name, as in `deploy`).

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{median, random_dag, run_binary_with, write_manifest, Rng, Run};

const CLOUD: &str = env!("CARGO_BIN_EXE_cloud");
const ID: &str = "BIG";

/// The builds compared: this one first, then the baseline when there is one.
fn binaries() -> Vec<(&'static str, String)> {
    let mut all = vec![("this build", CLOUD.to_owned())];
    if let Ok(b) = std::env::var("CLOUD_BENCH_BASELINE") {
        all.push(("baseline", b));
    }
    all
}

fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
}

/// A deployment of `n` stacks under a new temporary root; its manifest's size in bytes.
fn deployment(n: usize) -> (tempfile::TempDir, u64) {
    let mut rng = Rng::new(0x5eed_0002);
    let stacks = random_dag(&mut rng, n, (n / 200).max(5), |_| vec![0.0; 10]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let size = write_manifest(tmp.path(), ID, &stacks);
    (tmp, size)
}

/// Runs every build `rounds()` times in turn (alternating which goes first); each build's runs.
fn interleaved(
    mut run: impl FnMut(&str) -> Run,
    report: &mut String,
) -> Vec<(&'static str, Vec<Run>)> {
    let builds = binaries();
    let mut runs: Vec<(&'static str, Vec<Run>)> =
        builds.iter().map(|(name, _)| (*name, Vec::new())).collect();
    for round in 0..rounds() {
        let mut order: Vec<usize> = (0..builds.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let r = run(&builds[i].1);
            if r.exit != 0 {
                note(
                    report,
                    &format!("{} exited {}: {}", builds[i].0, r.exit, r.stderr.trim()),
                );
            }
            runs[i].1.push(r);
        }
    }
    runs
}

fn secs(runs: &[Run]) -> Vec<f64> {
    runs.iter().map(|r| r.wall.as_secs_f64()).collect()
}

fn peak_mib(runs: &[Run]) -> f64 {
    median(
        &runs
            .iter()
            .map(|r| r.max_rss_kib.unwrap_or(0) as f64 / 1024.0)
            .collect::<Vec<_>>(),
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn section(report: &mut String, title: &str) {
    println!("\n== {title}");
    let _ = writeln!(report, "\n## {title}\n\n| build | result |\n|---|---|");
}

fn row(report: &mut String, build: &str, value: String) {
    println!("  {build:<12} {value}");
    let _ = writeln!(report, "| {build} | {value} |");
}

fn note(report: &mut String, text: &str) {
    println!("  {text}");
    let _ = writeln!(report, "\n{text}");
}

/// Each build's median wall and peak RSS, the rounds, and the ratio to the baseline.
fn summary(report: &mut String, runs: &[(&str, Vec<Run>)], target: impl Fn(f64, f64) -> String) {
    let base = runs.get(1).map(|(_, r)| median(&secs(r)));
    for (build, r) in runs {
        let wall = median(&secs(r));
        let ratio = base.map_or(String::new(), |b| {
            format!(", {:.2}× the baseline", wall / b)
        });
        let rounds: Vec<String> = secs(r).iter().map(|s| format!("{s:.3}")).collect();
        let target = if *build == "this build" {
            format!("; {}", target(wall, base.unwrap_or(f64::NAN)))
        } else {
            String::new()
        };
        row(
            report,
            build,
            format!(
                "**{wall:.3} s** median{ratio}, peak RSS {:.1} MiB (rounds: {} s){target}",
                peak_mib(r),
                rounds.join(", ")
            ),
        );
    }
}

fn bench_validate(report: &mut String) {
    section(report, "1. `cloud validate` of 10,000 stacks");
    let (tmp, size) = deployment(10_000);
    let root = tmp.path().to_str().expect("utf-8 temp path").to_owned();
    note(report, &format!("manifest: {size} bytes"));
    let runs = interleaved(
        |b| run_binary_with(b, &["--root", &root, "validate", ID], &[], tmp.path(), true),
        report,
    );
    summary(report, &runs, |wall, _| {
        format!(
            "{:.1} MB/s (target ≤ 0.2 s, ≥ 40 MB/s) {}",
            size as f64 / wall / 1e6,
            verdict(wall <= 0.2)
        )
    });
}

/// What bash's completion function runs on Tab after `cloud deploy BIG --only s0099`.
fn complete_args(root: &str) -> Vec<String> {
    [
        "--", "cloud", "--root", root, "deploy", ID, "--only", "s0099",
    ]
    .map(str::to_owned)
    .to_vec()
}

const COMPLETE_ENV: &[(&str, &str)] = &[
    ("CLOUD_COMPLETE", "bash"),
    ("_CLAP_IFS", "\n"),
    ("_CLAP_COMPLETE_INDEX", "6"),
];

/// The candidates a build offers (checked once: a fast build that offers nothing is no win).
fn candidates(binary: &str, root: &str) -> usize {
    let out = Command::new(binary)
        .args(complete_args(root))
        .envs(COMPLETE_ENV.iter().copied())
        .env_remove("CLOUD_ROOT")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run cloud");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn bench_complete(report: &mut String) {
    for (n, target) in [(1_000, 0.05), (10_000, 0.15)] {
        section(
            report,
            &format!("2. Tab completion of `--only s0099`, {n} stacks"),
        );
        let (tmp, _) = deployment(n);
        let root = tmp.path().to_str().expect("utf-8 temp path").to_owned();
        for (build, binary) in binaries() {
            note(
                report,
                &format!("{build}: {} candidates", candidates(&binary, &root)),
            );
        }
        let args = complete_args(&root);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let runs = interleaved(
            |b| run_binary_with(b, &args, COMPLETE_ENV, tmp.path(), true),
            report,
        );
        summary(report, &runs, |wall, _| {
            format!(
                "(target ≤ {} ms) {}",
                target * 1000.0,
                verdict(wall <= target)
            )
        });
    }
}

fn bench_deploy_and_status(report: &mut String, deploy: bool, status: bool) {
    let (tmp, _) = deployment(10_000);
    let root = tmp.path().to_str().expect("utf-8 temp path").to_owned();
    let dir = tmp.path().join("cloud/deploy").join(ID);
    let deploy_args = [
        "--root", &root, "deploy", ID, "-e", "dev", "--output", "json", "--force",
    ];
    if deploy {
        section(
            report,
            "3. `cloud deploy -e dev --output json --force` of 10,000 stacks (journal, file log)",
        );
        let runs = interleaved(
            |b| {
                // Each run with the same history behind it: none.
                for sub in ["journal", "logs"] {
                    let _ = std::fs::remove_dir_all(dir.join(sub));
                }
                run_binary_with(b, &deploy_args, &[], tmp.path(), true)
            },
            report,
        );
        summary(report, &runs, |wall, base| {
            format!(
                "(target ≤ 0.5× the baseline, ≤ 100 MiB) {}",
                verdict(wall <= 0.5 * base && peak_mib(&runs[0].1) <= 100.0)
            )
        });
    }
    if status {
        section(report, "4. `cloud status -e dev` of the 10,000-stack run");
        // One run, deployed by this build (which leaves its checkpoint beside the journal),
        // for both builds to read (the baseline reads the journal).
        let _ = run_binary_with(CLOUD, &deploy_args, &[], tmp.path(), false);
        let args = ["--root", &root, "status", ID, "-e", "dev"];
        let runs = interleaved(|b| run_binary_with(b, &args, &[], tmp.path(), true), report);
        summary(report, &runs, |wall, _| {
            format!("(target ≤ 0.3 s) {}", verdict(wall <= 0.3))
        });
        // And this build without the checkpoint (a run killed before its end, a changed
        // journal): the journal read and folded.
        let journals = Path::new(&root)
            .join("cloud/deploy")
            .join(ID)
            .join("journal/dev");
        for entry in std::fs::read_dir(&journals).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".model.json") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let runs: Vec<Run> = (0..rounds())
            .map(|_| run_binary_with(CLOUD, &args, &[], tmp.path(), true))
            .collect();
        note(
            report,
            &format!(
                "this build, the journal read without the checkpoint: **{:.3} s** median, peak RSS {:.1} MiB",
                median(&runs.iter().map(|r| r.wall.as_secs_f64()).collect::<Vec<_>>()),
                peak_mib(&runs)
            ),
        );
    }
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |n: &str, name: &str| {
        filter.is_empty() || filter.iter().any(|f| f == n || name.contains(f.as_str()))
    };
    let mut report = String::new();
    let builds: Vec<String> = binaries()
        .iter()
        .map(|(name, b)| format!("{name} `{b}`"))
        .collect();
    let _ = writeln!(
        report,
        "# cloud manifest benchmarks\n\n{}; {} interleaved rounds; load average at start: {}",
        builds.join(", "),
        rounds(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("{}", report.trim());
    if wanted("1", "validate") {
        bench_validate(&mut report);
    }
    if wanted("2", "complete") {
        bench_complete(&mut report);
    }
    let (deploy, status) = (wanted("3", "deploy"), wanted("4", "status"));
    if deploy || status {
        bench_deploy_and_status(&mut report, deploy, status);
    }
    // The binary sits in <target>/release/; the report goes beside it in <target>/.
    let target = Path::new(CLOUD)
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let out = target.join("bench-manifest.md");
    match std::fs::write(&out, &report) {
        Ok(()) => println!("\nReport written to {}", out.display()),
        Err(e) => eprintln!("cannot write {}: {e}", out.display()),
    }
}
