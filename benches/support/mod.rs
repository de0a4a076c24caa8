//! What the benchmarks share: the generated deployments (a random DAG of stacks written as a
//! manifest) and running a `cloud` binary with its wall time and peak RSS measured.

// Each bench uses its own part of this.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// xorshift64*: small, fixed-seed, good enough for shaping DAGs.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

/// A generated stack: its layer (1-based), dependencies (indexes of earlier stacks) and the
/// simulated seconds of each of its resources.
pub struct Stack {
    pub layer: usize,
    pub deps: Vec<usize>,
    pub resources: Vec<f64>,
}

/// A random DAG of `n` stacks in exactly `layers` layers. Every stack above layer 1 depends on
/// one stack of the layer just below (so its layer is exact) and on 0-2 more from any lower
/// layer. Stacks are written in layer order.
pub fn random_dag(
    rng: &mut Rng,
    n: usize,
    layers: usize,
    mut resources: impl FnMut(&mut Rng) -> Vec<f64>,
) -> Vec<Stack> {
    // Layer sizes: at least one stack each, the rest spread at random.
    let mut sizes = vec![1usize; layers];
    for _ in layers..n {
        sizes[rng.below(layers)] += 1;
    }
    let mut by_layer: Vec<Vec<usize>> = Vec::with_capacity(layers);
    let mut stacks: Vec<Stack> = Vec::with_capacity(n);
    for (l, &size) in sizes.iter().enumerate() {
        let mut here = Vec::with_capacity(size);
        for _ in 0..size {
            let mut deps = Vec::new();
            if l > 0 {
                let below = &by_layer[l - 1];
                deps.push(below[rng.below(below.len())]);
                let extra = rng.below(3);
                for _ in 0..extra {
                    // Any stack of a lower layer (all of them precede this layer's first stack).
                    let lower_end = by_layer[l - 1].last().copied().unwrap_or(0) + 1;
                    let d = rng.below(lower_end);
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
            }
            here.push(stacks.len());
            stacks.push(Stack {
                layer: l + 1,
                deps,
                resources: resources(rng),
            });
        }
        by_layer.push(here);
    }
    stacks
}

pub fn stack_name(i: usize) -> String {
    format!("s{i:05}")
}

/// Writes `<root>/cloud/deploy/<id>/deployment.yaml`; returns its size in bytes.
pub fn write_manifest(root: &Path, id: &str, stacks: &[Stack]) -> u64 {
    let dir = root.join("cloud/deploy").join(id);
    fs::create_dir_all(&dir).expect("create the deployment folder");
    let mut y = String::with_capacity(stacks.len() * 600);
    let _ = writeln!(y, "deploymentId: {id}");
    y.push_str("environments: [dev]\ndefaults: { executor: simulate }\n\nstacks:\n");
    for (i, s) in stacks.iter().enumerate() {
        let _ = writeln!(y, "  {}:", stack_name(i));
        if !s.deps.is_empty() {
            let deps: Vec<String> = s.deps.iter().map(|&d| stack_name(d)).collect();
            let _ = writeln!(y, "    dependencies: [{}]", deps.join(", "));
        }
        y.push_str("    resources:\n");
        for (r, secs) in s.resources.iter().enumerate() {
            let _ = writeln!(
                y,
                "      - {{ type: \"aws:s3/bucket:Bucket\", name: r{r}, seconds: {secs} }}"
            );
        }
    }
    let file = dir.join("deployment.yaml");
    fs::write(&file, &y).expect("write the manifest");
    y.len() as u64
}

/// What one run of the binary did.
pub struct Run {
    pub wall: Duration,
    /// Peak RSS of `cloud` itself in KiB, when measured.
    pub max_rss_kib: Option<u64>,
    pub exit: i32,
    pub stderr: String,
}

/// `/usr/bin/time`, used to measure the child's peak RSS: `ru_maxrss` from our own `wait4`
/// would not do, because Linux carries the spawning process's high-water mark into the
/// child's across vfork+exec (so the bench's own memory would show up as the child's).
/// A tiny intermediate process keeps that floor at ~1 MiB.
pub const TIME: &str = "/usr/bin/time";

/// Runs `binary <args>` (any `cloud` build) with stdout to /dev/null, measuring wall time
/// (spawn to reap) and, when `rss` is set, its peak RSS.
pub fn run_binary(binary: &str, args: &[&str], scratch: &Path, rss: bool) -> Run {
    run_binary_with(binary, args, &[], scratch, rss)
}

/// [`run_binary`] with these environment variables set.
// The child is reaped by `wait4` (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_binary_with(
    binary: &str,
    args: &[&str],
    env: &[(&str, &str)],
    scratch: &Path,
    rss: bool,
) -> Run {
    let stderr_file = scratch.join("stderr");
    let rss_file = scratch.join("rss");
    let err = fs::File::create(&stderr_file).expect("create the stderr file");
    let via_time = rss && Path::new(TIME).exists();
    let mut command = if via_time {
        let _ = fs::remove_file(&rss_file);
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    let start = Instant::now();
    let child = command
        .args(args)
        .envs(env.iter().copied())
        .env_remove("CLOUD_SIMULATE_SPEED")
        .env_remove("CLOUD_ROOT")
        .env_remove("CLOUD_DYNAMODB_TABLE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start cloud");
    let (status, rusage) = wait4(child.id() as libc::pid_t);
    let wall = start.elapsed();
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let max_rss_kib = if via_time {
        fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
    } else if rss {
        // An upper bound only (see TIME).
        Some(rusage.ru_maxrss.max(0) as u64)
    } else {
        None
    };
    Run {
        wall,
        max_rss_kib,
        exit,
        stderr: fs::read_to_string(&stderr_file).unwrap_or_default(),
    }
}

pub fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Reaps `pid`, returning its wait status and resource usage. (`Child` is not waited on
/// afterwards: dropping it neither waits nor kills.)
pub fn wait4(pid: libc::pid_t) -> (libc::c_int, libc::rusage) {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 only writes into the two pointers.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not reaped yet; the pointers are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if r == pid {
            return (status, rusage);
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}
