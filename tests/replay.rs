//! `cloud replay`: a past run through the real views, from its journal (or the DynamoDB trail).
//! The bundled example is deployed for real once (`--verbose`, ~25 s of simulated work); each
//! test replays a copy of that recording and compares with what the live run printed.

mod common;
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::moto::{create_table, moto, table_name};
use common::{copy_dir, parse_events, Project};
use serde_json::Value;

/// The example's one live run: where it was recorded and what `deploy --verbose` printed.
struct Recorded {
    root: PathBuf,
    live: Output,
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let p = common::example_project();
        let live = p
            .cmd()
            .args(["deploy", "D1BRV40", "-e", "dev", "--verbose"])
            .output()
            .unwrap();
        assert_eq!(live.status.code(), Some(0), "{live:?}");
        // Kept for the other tests of this binary (the test's own temporary folder).
        let root =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        copy_dir(p.root(), &root);
        Recorded { root, live }
    })
}

/// A project of its own holding the recorded run.
fn recording() -> Project {
    let p = Project::new();
    copy_dir(&recorded().root, p.root());
    p
}

/// The recorded run's journal file.
fn journal_file(p: &Project) -> PathBuf {
    let dir = p.deployment_dir("D1BRV40").join("journal/dev");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("the run's journal")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_instant_verbose_replay_prints_the_lines_the_run_printed() {
    let live = &recorded().live;
    let p = recording();
    let out = p
        .cmd()
        .args(["replay", "D1BRV40", "-e", "dev", "--instant", "--verbose"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Timestamps, elapsed times and ETAs included: the views read the recorded clock.
    assert_eq!(text(&out.stdout), text(&live.stdout));
    // The one mark of a replay is said apart from the view's lines.
    let run = journal_file(&p);
    let run_id = run.file_stem().unwrap().to_string_lossy();
    assert!(
        text(&out.stderr).contains(&format!("Replaying D1BRV40-dev (run {run_id}, instant)...")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn speed_10_replays_the_run_ten_times_faster() {
    let p = recording();
    let events = parse_events(&std::fs::read(journal_file(&p)).unwrap());
    let time =
        |e: &Value| chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
    let took = (time(events.last().unwrap()) - time(&events[0])).as_seconds_f64();
    assert!(took > 15.0, "the recorded run took {took}s");
    let started = Instant::now();
    let out = p
        .cmd()
        .args([
            "replay",
            "D1BRV40",
            "-e",
            "dev",
            "--speed",
            "10",
            "--verbose",
        ])
        .output()
        .unwrap();
    let replayed = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&recorded().live.stdout));
    // About a tenth of the run (≈2.5 s): not at once, and far from the run's own time.
    assert!(
        (took / 10.0 * 0.75..12.0).contains(&replayed),
        "a {took:.1}s run replayed at 10× took {replayed:.1}s"
    );
}

#[test]
fn json_output_prints_the_recorded_events() {
    let p = recording();
    let out = p
        .cmd()
        .args(["replay", "D1BRV40", "-e", "dev", "--instant", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let journal = parse_events(&std::fs::read(journal_file(&p)).unwrap());
    assert_eq!(parse_events(&out.stdout), journal);
}

#[test]
fn a_killed_run_replays_to_its_last_event_and_says_so() {
    let p = recording();
    let path = journal_file(&p);
    let whole = std::fs::read_to_string(&path).unwrap();
    // Killed while writing its 61st line: 60 whole events and a torn one.
    let lines: Vec<&str> = whole.lines().collect();
    let kept = lines[..60].join("\n") + "\n" + &lines[60][..20];
    std::fs::write(&path, kept).unwrap();
    let last: Value = serde_json::from_str(lines[59]).unwrap();

    let out = p
        .cmd()
        .args(["replay", "D1BRV40", "-e", "dev", "--instant", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(parse_events(&out.stdout).last(), Some(&last));
    let said = format!(
        "the run ended without deployment_complete (killed?): replayed to its last event #60 at {}",
        last["timestamp"].as_str().unwrap()
    );
    assert!(text(&out.stderr).contains(&said), "{}", text(&out.stderr));
}

#[test]
fn bad_input_says_what_and_how_to_list_the_runs() {
    let p = recording();
    let replay = |args: &[&str]| {
        let out = p.cmd().arg("replay").args(args).output().unwrap();
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        (out.status.code(), text(&out.stderr))
    };
    let (code, err) = replay(&["D1BRV40", "-e", "dev", "20990101T000000000Z-dead"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("D1BRV40 has no run `20990101T000000000Z-dead` in dev (journal)")
            && err.contains("cloud history D1BRV40 -e dev"),
        "{err}"
    );
    let (code, err) = replay(&["D1BRV40", "-e", "prod"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("D1BRV40 has no recorded run in prod") && err.contains("cloud history"),
        "{err}"
    );
    let (code, err) = replay(&["D1BRV40", "-e", "nowhere"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("environment `nowhere` is not listed"), "{err}");
    let (code, err) = replay(&["NOPE", "-e", "dev"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("NOPE"), "{err}");
    for speed in ["0", "-2"] {
        let (code, err) = replay(&["D1BRV40", "-e", "dev", "--speed", speed]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(&format!("--speed must be a number above 0 (how many times faster than the run), found {speed}")),
            "{err}"
        );
    }
}

#[test]
fn the_run_is_found_without_its_environment_and_by_its_id() {
    let p = recording();
    let run_id = journal_file(&p)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let out = p
        .cmd()
        .args(["replay", "D1BRV40", &run_id, "--instant", "--verbose"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&recorded().live.stdout));
}

#[test]
fn ctrl_c_stops_the_replay_at_once_with_130() {
    let p = recording();
    let mut child = p
        .process()
        .args(["replay", "D1BRV40", "-e", "dev", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first event is out: the replay is under way (the rest would take ~25 s).
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.contains("deployment_started"), "{first}");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the replay did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
}

#[test]
fn a_run_still_going_on_replays_to_its_last_event_so_far() {
    let p = Project::new();
    let dir = p.deployment_dir("LIVE");
    let (ready, go) = (dir.join("ready"), dir.join("go"));
    p.manifest(
        "LIVE",
        &format!(
            "environments: [dev]\nstacks:\n  gate:\n    executor: command\n    deploy: \"{}\"\n",
            common::gate_script(&ready, &go)
        ),
    );
    let mut deploy = common::spawn_deploy_until(&p, "LIVE", &["-o", "json"], Stdio::null(), &ready);
    let journals = dir.join("journal/dev");
    common::wait_for("the run's first events in its journal", 10, || {
        std::fs::read_dir(&journals).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.path().extension().is_some_and(|x| x == "jsonl")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            })
        })
    });
    let out = p
        .cmd()
        .args(["replay", "LIVE", "-e", "dev", "--instant", "-o", "json"])
        .output()
        .unwrap();
    std::fs::write(&go, "").unwrap();
    assert_eq!(deploy.wait().unwrap().code(), Some(0));
    // Going on is no failure (as `cloud status` says it).
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is still going on: replayed to its last event so far, #"),
        "{}",
        text(&out.stderr)
    );
    assert!(!parse_events(&out.stdout).is_empty());
}

/// Where the journal is not on this machine, the DynamoDB trail holds the run.
#[test]
fn a_run_only_in_the_dynamodb_trail_replays_from_it() {
    let Some(endpoint) = moto() else { return };
    let name = table_name("replay");
    create_table(&name);
    let p = Project::new();
    p.manifest(
        "TRAIL",
        "environments: [dev]\nstacks:\n  \
         net: { executor: simulate, resources: [{ type: \"t:a:A\", name: a, seconds: 0.2 }] }\n  \
         db: { executor: simulate, dependencies: [net], resources: [{ type: \"t:a:B\", name: b, seconds: 0.1, fail: \"Access Denied\" }] }\n",
    );
    let cloud = |args: &[&str]| {
        let mut cmd = p.cmd();
        cmd.envs(common::moto::aws_vars(&endpoint));
        for var in common::moto::AWS_CLEARED {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .args(["--dynamodb-table", &name])
            .output()
            .unwrap()
    };
    let live = cloud(&["deploy", "TRAIL", "-e", "dev", "--verbose"]);
    assert_eq!(live.status.code(), Some(1), "{}", text(&live.stderr));
    let journal = p.journal("TRAIL", "dev");
    // Another machine: no journal here.
    std::fs::remove_dir_all(p.deployment_dir("TRAIL").join("journal")).unwrap();

    let out = cloud(&["replay", "TRAIL", "-e", "dev", "--instant", "-o", "json"]);
    // The run failed: so does its replay.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(parse_events(&out.stdout), journal);
    let out = cloud(&["replay", "TRAIL", "-e", "dev", "--instant", "--verbose"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&live.stdout));
}

/// The live views fold the events as the run emits them; a replay (and `cloud status`) folds
/// them as recorded, to the millisecond. They must be the same times, or an elapsed second or
/// an ETA rounded at a boundary reads differently in the replay.
#[test]
fn events_carry_their_times_as_the_records_keep_them() {
    use cloud::cancel::Cancel;
    use cloud::event::Operation;
    use cloud::orchestrator::{self, RunOptions};
    use cloud::plan::{NoPastRuns, Plan};

    let yaml = "environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n  \
                a: { resources: [{ type: \"t:a:A\", name: x, seconds: 0.01 }] }\n  \
                b: { dependencies: [a], resources: [{ type: \"t:a:B\", name: y, seconds: 0.01 }] }\n";
    let manifest = cloud::manifest::parse(
        Path::new("cloud/deploy/MS/deployment.yaml"),
        yaml,
        &cloud::executor::registry(),
    )
    .unwrap();
    let plan = Plan::new(&manifest, &NoPastRuns).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let bus = cloud::bus::Bus::new(scratch.path());
    let opts = RunOptions {
        environment: "dev".into(),
        operation: Operation::Deploy,
        run_id: "r".into(),
        scratch: scratch.path().to_path_buf(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(orchestrator::run(
        &plan,
        &opts,
        bus.publisher(),
        Cancel::new(),
    ));
    let m = &result.model;
    let mut times = vec![m.start_time, m.end_time, m.last_event_time];
    for s in &m.stacks {
        times.extend([s.start_time, s.end_time]);
    }
    assert!(times.iter().flatten().count() >= 7, "{times:?}");
    for t in times.into_iter().flatten() {
        assert_eq!(t.timestamp_subsec_nanos() % 1_000_000, 0, "{t:?}");
    }
}

/// A replay served to the dashboard counts the run's own time: an old run's status mid-replay
/// says the seconds it had run then (not a day), and `now` is the replayed time.
#[test]
fn a_served_replay_of_an_old_run_tells_its_own_clock() {
    let p = recording();
    let journal = journal_file(&p);
    let started = common::backdate_journal(&journal, chrono::TimeDelta::days(1));
    let served = serve_support::start(
        p.root(),
        &[
            "replay",
            "D1BRV40",
            "-e",
            "dev",
            "-o",
            "json",
            "--serve",
            "127.0.0.1:0",
        ],
        &[("CLOUD_JWT_SECRET", serve_support::SECRET)],
    );
    let token = serve_support::token(None, 300);
    let path = "/api/v1/deployments/D1BRV40/status?environment=dev";
    let mut status = Value::Null;
    common::wait_for("the replay past its first stack", 30, || {
        status = served.get(path, Some(&token)).1;
        status["data"]["summary"]["deployedStacks"].as_u64() >= Some(1)
    });
    let data = &status["data"];
    assert_eq!(data["status"], "deploying", "{status}");
    let elapsed = data["metrics"]["durationSeconds"].as_u64().unwrap();
    assert!((5..60).contains(&elapsed), "elapsed {elapsed} s: {status}");
    let now: chrono::DateTime<chrono::Utc> = data["now"].as_str().unwrap().parse().unwrap();
    let since = (now - started).num_seconds();
    assert!(
        (5..60).contains(&since),
        "now is {since} s after the run's start"
    );
}
