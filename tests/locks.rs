//! Locks: the lock across machines (a conditional-write item with a lease in DynamoDB, against
//! a real `moto_server`; two project folders stand in for two machines: each has its own local
//! lock, they share the table), taking over what a dead run left, a run that loses its lease,
//! `cloud unlock`, and how `cloud history` names a killed run.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cloud::cancel::Cancel;
use cloud::store::dynamodb::{Table, Target};
use cloud::store::lock::Holder;
use cloud::store::table_lock::{self, TableLock};
use common::moto::{aws_env, create_table, moto, rt, table_name};
use common::{gate_script, poll_until, Project};
use serde_json::{json, Value};

/// A deployment whose `gate` stack runs until the file `go` exists (it touches `ready` first,
/// and writes its pid to `gate.pid`).
fn gated(p: &Project, id: &str) -> (PathBuf, PathBuf) {
    let ready = p.root().join("ready");
    let go = p.root().join("go");
    p.manifest(
        id,
        &format!(
            r#"
environments: [dev]
defaults: {{ executor: simulate }}
stacks:
  base:
    resources: [{{ type: "t:a:A", name: a, seconds: 0 }}]
  gate:
    executor: command
    dependencies: [base]
    deploy: "echo $$ > {pid}; {gate}"
  top:
    dependencies: [gate]
    resources: [{{ type: "t:a:A", name: a, seconds: 0 }}]
"#,
            gate = gate_script(&ready, &go),
            pid = p.root().join("gate.pid").display()
        ),
    );
    (ready, go)
}

/// `cloud ARGS` on project `p`, against the table `table` of moto at `endpoint`, with leases
/// of three seconds.
fn cloud(p: &Project, endpoint: &str, table: &str, args: &[&str]) -> Command {
    let mut cmd = p.process();
    cmd.args(args).args(["--dynamodb-table", table]);
    aws_env(&mut cmd, endpoint);
    cmd.env("CLOUD_LOCK_LEASE_SECONDS", "3");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out: Output = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits for `path` to exist; kills `child` and fails after 30 s.
fn wait_for(path: &Path, child: &mut Child) {
    if !poll_until(30, || path.exists()) {
        let _ = child.kill();
        panic!("timed out waiting for {}", path.display());
    }
}

/// The run ids of the journals of `id` in dev, oldest first.
fn runs(p: &Project, id: &str) -> Vec<String> {
    let dir = p.deployment_dir(id).join("journal/dev");
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".jsonl").map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids
}

/// Waits until the gate's program of `p` has ended (after `go`).
fn wait_for_gate_to_end(p: &Project) {
    let pid = std::fs::read_to_string(p.root().join("gate.pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    common::wait_for("the gate's program to end", 10, || {
        !std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z "))
    });
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

fn table(name: &str) -> Table {
    rt().block_on(Table::connect(&Target {
        table: name.into(),
        region: None,
    }))
    .unwrap()
}

/// Puts a lock item for `ID`/dev held by a run on another machine, with a lease of `lease`
/// that nobody renews (the runtime that would renew it is gone when this returns).
fn foreign_lock(table_name: &str, id: &str, run_id: &str, lease: Duration) {
    let rt = rt();
    let holder = Holder {
        pid: 4242,
        run_id: run_id.into(),
        user: Some("bob".into()),
        host: Some("ci-runner-7".into()),
        started: "2026-11-28T01:00:00.000Z".into(),
    };
    let (lock, _) = rt
        .block_on(TableLock::acquire(
            table(table_name),
            id,
            "dev",
            &holder,
            lease,
            Cancel::new(),
        ))
        .unwrap_or_else(|_| panic!("could not put the foreign lock"));
    // Leaves the item in place, unrenewed.
    std::mem::forget(lock);
    rt.shutdown_background();
}

#[test]
fn two_machines_cannot_deploy_at_once_and_the_lease_lives_as_long_as_the_run() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("lock-two");
    create_table(&name);
    let (a, b) = (Project::new(), Project::new());
    let (ready, go) = gated(&a, "SHARED");
    let (_, b_go) = gated(&b, "SHARED");
    std::fs::write(&b_go, "").unwrap();

    let mut first = cloud(
        &a,
        &endpoint,
        &name,
        &["deploy", "SHARED", "-e", "dev", "-o", "json"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for(&ready, &mut first);
    // Longer than a lease: only renewals keep it.
    std::thread::sleep(Duration::from_secs(5));
    let holder = runs(&a, "SHARED").pop().unwrap();
    let (code, _, stderr) = run(&mut cloud(
        &b,
        &endpoint,
        &name,
        &["deploy", "SHARED", "-e", "dev", "-o", "json"],
    ));
    assert_eq!(code, 3, "{stderr}");
    for said in [
        "SHARED-dev is locked",
        &format!("run {holder}"),
        "user ann",
        &format!("host {}", hostname()),
        &format!("DynamoDB table {name}"),
        "lease renewed at",
    ] {
        assert!(stderr.contains(said), "`{said}` missing from: {stderr}");
    }
    assert!(
        !b.deployment_dir("SHARED").join("journal/dev").exists() || runs(&b, "SHARED").is_empty(),
        "the refused run left a journal"
    );
    // The same from unlock: a live lease is not removed without --force.
    let (code, _, stderr) = run(&mut cloud(
        &b,
        &endpoint,
        &name,
        &["unlock", "SHARED", "-e", "dev"],
    ));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");

    std::fs::write(&go, "").unwrap();
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Released at the end: the other machine deploys at once, taking over nothing.
    let rt = rt();
    assert_eq!(
        rt.block_on(table_lock::current(&table(&name), "SHARED", "dev"))
            .unwrap(),
        None,
        "the lock item outlived its run"
    );
    let (code, _, stderr) = run(&mut cloud(
        &b,
        &endpoint,
        &name,
        &["deploy", "SHARED", "-e", "dev", "-o", "json"],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("took over"), "{stderr}");
}

#[test]
fn an_expired_lease_is_taken_over_saying_so_and_unlock_force_removes_a_live_one() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("lock-stale");
    create_table(&name);
    let p = Project::new();
    p.manifest(
        "STALE",
        "environments: [dev]\nstacks:\n  app:\n    executor: simulate\n    resources: [{ type: \"t:a:A\", name: a, seconds: 0 }]\n",
    );
    let deploy = ["deploy", "STALE", "-e", "dev", "-o", "json", "--force"];

    // A run on another machine holds it, its lease live: refused, naming it.
    foreign_lock(
        &name,
        "STALE",
        "20261128T010000000Z-0bob",
        Duration::from_secs(3),
    );
    let (code, _, stderr) = run(&mut cloud(&p, &endpoint, &name, &deploy));
    assert_eq!(code, 3, "{stderr}");
    for said in [
        "run 20261128T010000000Z-0bob",
        "user bob",
        "host ci-runner-7",
        "pid 4242",
        "started at 2026-11-28T01:00:00.000Z",
        "cloud unlock STALE -e dev --force",
    ] {
        assert!(stderr.contains(said), "`{said}` missing from: {stderr}");
    }
    // Its machine died: nobody renews; once the lease is over the next run takes it over.
    std::thread::sleep(Duration::from_millis(3500));
    let (code, _, stderr) = run(&mut cloud(&p, &endpoint, &name, &deploy));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("took over the lock of STALE-dev")
            && stderr.contains("run 20261128T010000000Z-0bob")
            && stderr.contains("its lease expired at"),
        "{stderr}"
    );

    // A live lease whose run is known to be gone: unlock --force removes it.
    foreign_lock(
        &name,
        "STALE",
        "20261128T020000000Z-0bob",
        Duration::from_secs(600),
    );
    let (code, _, stderr) = run(&mut cloud(
        &p,
        &endpoint,
        &name,
        &["unlock", "STALE", "-e", "dev"],
    ));
    assert_eq!(code, 3, "{stderr}");
    let (code, stdout, stderr) = run(&mut cloud(
        &p,
        &endpoint,
        &name,
        &["unlock", "STALE", "-e", "dev", "--force"],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("removed the lock in DynamoDB table")
            && stdout.contains("run 20261128T020000000Z-0bob"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&mut cloud(
        &p,
        &endpoint,
        &name,
        &["unlock", "STALE", "-e", "dev"],
    ));
    assert_eq!(code, 0);
    assert!(stdout.contains("STALE-dev is not locked"), "{stdout}");
    let (code, _, stderr) = run(&mut cloud(&p, &endpoint, &name, &deploy));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn after_kill_9_the_table_lock_is_taken_over_at_once_and_history_says_interrupted() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("lock-kill");
    create_table(&name);
    let p = Project::new();
    let (ready, go) = gated(&p, "KILLED");
    let mut child = cloud(
        &p,
        &endpoint,
        &name,
        &["deploy", "KILLED", "-e", "dev", "-o", "json"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for(&ready, &mut child);
    // base is done; let its record reach the disk (written at least every second).
    let history = p.deployment_dir("KILLED").join("journal/dev/history.json");
    common::wait_for("the history to record base", 10, || {
        std::fs::read_to_string(&history).is_ok_and(|h| h.contains("\"base\""))
    });
    let killed = runs(&p, "KILLED").pop().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(&go, "").unwrap();
    // What kill -9 left running ends by itself: nothing keeps the next run from starting.
    wait_for_gate_to_end(&p);

    // Its lease is live, but its process is gone from this machine: no wait for the lease.
    let (code, stdout, stderr) = run(&mut cloud(
        &p,
        &endpoint,
        &name,
        &["deploy", "KILLED", "-e", "dev", "-o", "json"],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("run {killed}")) && stderr.contains("its process is gone"),
        "{stderr}"
    );
    // It resumed: base was done before the kill.
    let skipped: Vec<String> = common::parse_events(stdout.as_bytes())
        .iter()
        .filter(|e| e["type"] == "stack_skipped")
        .map(|e| e["data"]["stack"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(skipped, ["base"]);

    let (code, stdout, stderr) = run(&mut cloud(
        &p,
        &endpoint,
        &name,
        &["history", "KILLED", "-e", "dev", "-o", "json"],
    ));
    assert_eq!(code, 0, "{stderr}");
    let listed: Vec<Value> = common::parse_events(stdout.as_bytes());
    assert_eq!(listed.len(), 2, "{stdout}");
    assert_eq!(listed[0]["runId"], killed.as_str());
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[0]["reason"], "interrupted");
    assert_eq!(listed[1]["status"], "deployed");
    assert!(listed[1].get("reason").is_none());
    let (_, text, _) = run(&mut cloud(
        &p,
        &endpoint,
        &name,
        &["history", "KILLED", "-e", "dev"],
    ));
    assert!(text.contains("failed (interrupted)"), "{text}");
}

#[test]
fn unlock_removes_a_lock_file_left_by_kill_9_but_never_a_live_runs_lock() {
    let p = Project::new();
    let (ready, go) = gated(&p, "LOCAL");
    let mut child = p
        .process()
        .args(["deploy", "LOCAL", "-e", "dev", "-o", "json"])
        .env("CLOUD_USER", "ann")
        .env_remove("CLOUD_DYNAMODB_TABLE")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ready, &mut child);
    let unlock = || {
        let out = common::cloud()
            .arg("--root")
            .arg(p.root())
            .args(["unlock", "LOCAL", "-e", "dev", "--force"])
            .env_remove("CLOUD_DYNAMODB_TABLE")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A live run: named, never broken, even with --force.
    let (code, _, stderr) = unlock();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", child.id()))
            && stderr.contains("user ann")
            && stderr.contains(&format!("kill {}", child.id())),
        "{stderr}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(&go, "").unwrap();
    wait_for_gate_to_end(&p);
    let lock_file = p.deployment_dir("LOCAL").join("journal/dev/lock");
    assert!(lock_file.exists(), "kill -9 leaves the file");
    let (code, stdout, stderr) = unlock();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("removed the leftover lock file"),
        "{stdout}"
    );
    assert!(!lock_file.exists());
    let (code, stdout, _) = unlock();
    assert_eq!(code, 0);
    assert!(stdout.contains("LOCAL-dev is not locked"), "{stdout}");
}

/// A TCP proxy to moto that can be told to stop answering: from then on it keeps every
/// connection open and reads what comes, but passes nothing on either way (a network path that
/// went dark, not one that refuses).
struct Proxy {
    url: String,
    dark: Arc<AtomicBool>,
}

impl Proxy {
    fn to(endpoint: &str) -> Proxy {
        let upstream = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let dark = Arc::new(AtomicBool::new(false));
        let flag = dark.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let flag = flag.clone();
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let pump = |mut from: TcpStream, mut to: TcpStream, flag: Arc<AtomicBool>| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => {
                                    let _ = to.shutdown(std::net::Shutdown::Write);
                                    return;
                                }
                                Ok(_) if flag.load(Ordering::SeqCst) => {}
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    flag.clone(),
                );
                pump(server, client, flag);
            }
        });
        Proxy { url, dark }
    }

    fn go_dark(&self) {
        self.dark.store(true, Ordering::SeqCst);
    }
}

/// The events in a file a run is still writing (a last line may be cut short).
fn events_so_far(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How machine A loses its lease while its `gate` stack runs.
enum Loss {
    /// Its path to the table goes dark; the lease runs out.
    Dark,
    /// Machine B removes its lock with `cloud unlock --force`.
    UnlockForce,
}

/// Machine A deploys (`base`, then `gate` until released, then `top`) and loses its lease
/// while `gate` runs; machine B then deploys. A must start nothing more (`top` fails with
/// LOCK_LOST at once, while `gate` still runs), let `gate` finish, and exit 1 naming the lock.
fn a_run_that_loses_its_lease(loss: Loss) -> (String, Vec<Value>) {
    let endpoint = moto().unwrap();
    let name = table_name("lock-lost");
    create_table(&name);
    let proxy = Proxy::to(&endpoint);
    let (a, b) = (Project::new(), Project::new());
    let (ready, go) = gated(&a, "LOST");
    let (_, b_go) = gated(&b, "LOST");
    std::fs::write(&b_go, "").unwrap();
    let a_out = a.root().join("a.jsonl");
    let mut first = cloud(
        &a,
        &proxy.url,
        &name,
        &["deploy", "LOST", "-e", "dev", "-o", "json"],
    )
    .stdout(std::fs::File::create(&a_out).unwrap())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for(&ready, &mut first);

    let b_took_over = match loss {
        Loss::Dark => {
            proxy.go_dark();
            // B waits for the lease to run out, as a second machine would.
            let rt = rt();
            common::wait_for("A's lease to run out", 20, || {
                rt.block_on(table_lock::current(&table(&name), "LOST", "dev"))
                    .unwrap()
                    .is_none_or(|l| l.expired(chrono::Utc::now()))
            });
            true
        }
        Loss::UnlockForce => {
            let (code, stdout, stderr) = run(&mut cloud(
                &b,
                &endpoint,
                &name,
                &["unlock", "LOST", "-e", "dev", "--force"],
            ));
            assert_eq!(code, 0, "{stderr}");
            assert!(
                stdout.contains("removed the lock in DynamoDB table"),
                "{stdout}"
            );
            false
        }
    };
    // A stops starting stacks at once, before `gate` ends: `top` fails with LOCK_LOST.
    let lost_top = || {
        events_so_far(&a_out).iter().any(|e| {
            e["type"] == "stack_failed"
                && e["data"]["stack"] == "top"
                && e["data"]["error"]["code"] == "LOCK_LOST"
        })
    };
    if !poll_until(20, lost_top) {
        std::fs::write(&go, "").unwrap();
        let out = first.wait_with_output().unwrap();
        panic!(
            "A never said it lost the lock; it ended {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // B deploys meanwhile, as it may now.
    let (code, _, stderr) = run(&mut cloud(
        &b,
        &endpoint,
        &name,
        &["deploy", "LOST", "-e", "dev", "-o", "json"],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr.contains("took over the lock"),
        b_took_over,
        "{stderr}"
    );

    std::fs::write(&go, "").unwrap();
    let out = first.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let events = events_so_far(&a_out);
    // `gate` was let finish; `top` never started.
    let deployed: Vec<&str> = common::of_type(&events, "stack_deployed")
        .iter()
        .map(|e| e["data"]["stack"].as_str().unwrap())
        .collect();
    assert_eq!(deployed, ["base", "gate"], "{stderr}");
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "stack_deploying" && e["data"]["stack"] == "top"),
        "A started a stack after it lost its lock"
    );
    // The stop is an event, told before the stacks it leaves unstarted: no grace, no force.
    let stops = common::of_type(&events, "deployment_cancelling");
    assert_eq!(stops.len(), 1, "{stops:?}");
    let stop = &stops[0]["data"];
    assert_eq!(
        (&stop["reason"], &stop["forced"]),
        (&json!("lock_lost"), &json!(false))
    );
    assert!(
        stop["message"]
            .as_str()
            .unwrap()
            .contains("lost the lock of LOST-dev"),
        "{stop}"
    );
    let top = events
        .iter()
        .find(|e| e["type"] == "stack_failed" && e["data"]["stack"] == "top")
        .unwrap();
    assert!(stops[0]["sequence"].as_u64() < top["sequence"].as_u64());
    let failed = &common::of_type(&events, "deployment_failed")[0]["data"]["error"];
    assert_eq!(failed["code"], "LOCK_LOST", "{failed}");
    assert!(
        failed["message"].as_str().unwrap().contains(&format!(
            "lost the lock of LOST-dev in DynamoDB table {name}"
        )),
        "{failed}"
    );
    // The journal says it as the output did.
    let journal = a.journal("LOST", "dev");
    assert_eq!(
        common::of_type(&journal, "deployment_failed")[0]["data"]["error"]["code"],
        "LOCK_LOST"
    );
    assert!(
        stderr.contains("error: lost the lock of LOST-dev"),
        "{stderr}"
    );
    (stderr, events)
}

#[test]
fn a_run_whose_path_to_the_table_goes_dark_stops_starting_stacks_when_its_lease_runs_out() {
    if moto().is_none() {
        return;
    }
    let (stderr, _) = a_run_that_loses_its_lease(Loss::Dark);
    assert!(
        stderr.contains("its lease ran out without a renewal"),
        "{stderr}"
    );
}

#[test]
fn a_run_whose_lock_is_removed_by_unlock_force_stops_starting_stacks() {
    if moto().is_none() {
        return;
    }
    let (stderr, _) = a_run_that_loses_its_lease(Loss::UnlockForce);
    assert!(
        stderr.contains("it is held now by run") || stderr.contains("it was removed"),
        "{stderr}"
    );
}
