//! What the run is waiting on, live: `deployment_progress.criticalPath` against the longest
//! remaining chain the test computes itself from the same events, and progress said at least
//! every second while stacks run.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;

fn time(e: &Value) -> DateTime<Utc> {
    e["timestamp"].as_str().unwrap().parse().unwrap()
}

/// Known durations (the simulator's expected seconds are the sum of its resources'): the
/// chains are a → b → d (2 + 5 + 1.5 = 8.5 s), a → c → e (2 + 2 + 2.5 = 6.5 s) and f (4 s), so
/// the ETA waits on a → b → d, then b → d, then d — never on c, e or f.
const DAG: &str = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  a: { resources: [{ type: "t:x:A", name: a, seconds: 2 }] }
  b:
    dependencies: [a]
    resources: [{ type: "t:x:B", name: b1, seconds: 2.5 }, { type: "t:x:B", name: b2, seconds: 2.5 }]
  c:
    dependencies: [a]
    resources: [{ type: "t:x:C", name: c, seconds: 2 }]
  d:
    dependencies: [b]
    resources: [{ type: "t:x:D", name: d, seconds: 1.5 }]
  e:
    dependencies: [c]
    resources: [{ type: "t:x:E", name: e, seconds: 2.5 }]
  f: { resources: [{ type: "t:x:F", name: f, seconds: 4 }] }
"#;

/// The longest chain of unfinished stacks at `now`, by the expected durations (a running
/// stack: what is left of it, at least a second), from the stacks that wait for nothing.
fn longest_chain(
    deps: &BTreeMap<String, Vec<String>>,
    expected: &BTreeMap<String, f64>,
    started: &BTreeMap<String, DateTime<Utc>>,
    ended: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let left = |s: &str| match started.get(s) {
        Some(at) => (expected[s] - (now - *at).num_milliseconds() as f64 / 1000.0).max(1.0),
        None => expected[s],
    };
    let unfinished: Vec<&String> = deps.keys().filter(|s| !ended.contains(*s)).collect();
    // The longest chain starting at `s`: itself, then its longest unfinished dependent's.
    fn chain(
        s: &str,
        deps: &BTreeMap<String, Vec<String>>,
        unfinished: &[&String],
        left: &dyn Fn(&str) -> f64,
    ) -> (f64, Vec<String>) {
        let next = unfinished
            .iter()
            .filter(|d| deps[d.as_str()].iter().any(|x| x == s))
            .map(|d| chain(d, deps, unfinished, left))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let (seconds, mut rest) = next.unwrap_or_default();
        rest.insert(0, s.to_string());
        (left(s) + seconds, rest)
    }
    unfinished
        .iter()
        .filter(|s| deps[s.as_str()].iter().all(|d| ended.contains(d)))
        .map(|s| chain(s, deps, &unfinished, &left))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|c| c.1)
        .unwrap_or_default()
}

#[test]
fn the_live_critical_path_is_the_longest_remaining_chain() {
    let p = Project::new();
    p.manifest("CP", DAG);
    let (code, events, out) = p.deploy_json("CP", &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let started = &of_type(&events, "deployment_started")[0]["data"];
    let mut deps = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for s in started["stacks"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap().to_string();
        let d: Vec<String> = (s["dependencies"].as_array().unwrap().iter())
            .map(|d| d.as_str().unwrap().to_string())
            .collect();
        deps.insert(name.clone(), d);
        expected.insert(name, s["estimatedSeconds"].as_f64().unwrap());
    }
    let (mut began, mut ended) = (BTreeMap::new(), BTreeSet::new());
    let mut held: Vec<String> = Vec::new();
    let mut said = Vec::new();
    for e in &events {
        let data = &e["data"];
        match e["type"].as_str().unwrap() {
            "stack_deploying" => {
                began.insert(data["stack"].as_str().unwrap().to_string(), time(e));
            }
            "stack_deployed" => {
                ended.insert(data["stack"].as_str().unwrap().to_string());
            }
            "deployment_progress" => {
                if let Some(path) = data["criticalPath"].as_array() {
                    held = path.iter().map(|s| s.as_str().unwrap().into()).collect();
                }
                let truth = longest_chain(&deps, &expected, &began, &ended, time(e));
                assert_eq!(
                    held, truth,
                    "at {} (#{}), the path held is not the longest remaining chain",
                    e["timestamp"], e["sequence"]
                );
                said.push(held.clone());
            }
            _ => {}
        }
    }
    said.dedup();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        said,
        vec![
            names(&["a", "b", "d"]),
            names(&["b", "d"]),
            names(&["d"]),
            vec![]
        ],
        "the chains said, in order"
    );
}

#[test]
fn progress_is_said_every_second_while_stacks_run_and_the_path_only_when_it_moves() {
    let p = Project::new();
    p.manifest("CP", DAG);
    let (code, events, _) = p.deploy_json("CP", &[]);
    assert_eq!(code, 0);
    let progress: Vec<&Value> = of_type(&events, "deployment_progress");
    let first = time(progress[0]);
    let last_end = time(of_type(&events, "stack_deployed").last().unwrap());
    let mut at = first;
    for e in &progress[1..] {
        let gap = (time(e) - at).num_milliseconds();
        assert!(
            gap <= 1500,
            "{gap} ms without deployment_progress while stacks ran (#{})",
            e["sequence"]
        );
        at = time(e);
    }
    assert!((last_end - at).num_milliseconds() <= 1500);
    // Said when it changes, not with every tick.
    let with_path = progress
        .iter()
        .filter(|e| e["data"].get("criticalPath").is_some())
        .count();
    assert!(progress.len() >= 8, "{} progress events", progress.len());
    assert_eq!(with_path, 4, "the path is carried only when it moved");
}

#[test]
fn the_verbose_view_says_what_the_run_waits_on_when_it_changes() {
    let p = Project::new();
    p.manifest("CP", DAG);
    let out = p
        .cmd()
        .args(["deploy", "CP", "-e", "dev", "--verbose"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let waits: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("] Waiting on: ").map(|x| x.1))
        .collect();
    assert_eq!(waits.len(), 3, "{text}");
    assert!(waits[0].starts_with("a → b → d (ETA ~"), "{text}");
    assert!(waits[1].starts_with("b → d (ETA ~"), "{text}");
    assert!(waits[2].starts_with("d (ETA ~"), "{text}");
}

#[test]
fn a_stack_past_its_usual_time_is_said_to_run_long_and_the_eta_never_says_zero() {
    let p = Project::new();
    let manifest = |seconds: f64| {
        format!(
            "environments: [dev]\ndefaults: {{ executor: simulate }}\nstacks:\n  \
             base: {{ resources: [{{ type: \"t:x:A\", name: a, seconds: 0.5 }}] }}\n  \
             api:\n    dependencies: [base]\n    resources:\n      \
             - {{ type: \"t:x:Api\", name: one, seconds: {seconds} }}\n      \
             - {{ type: \"t:x:Api\", name: two, seconds: {seconds} }}\n"
        )
    };
    // Its usual: 2 × 1.5 s, from a recorded run.
    p.manifest("LONG", &manifest(1.5));
    let (code, _, _) = p.deploy_json("LONG", &[]);
    assert_eq!(code, 0);
    // Now three times that.
    p.manifest("LONG", &manifest(4.5));
    let out = p
        .cmd()
        .args(["deploy", "LONG", "-e", "dev", "--verbose", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("running long: ") && l.contains(" over its usual 3s")),
        "{text}"
    );
    // The ETA a consumer holds (the run's events folded, as the REST status does) is never 0
    // while more than a second is left, and after the first resource it knows the second
    // will be as slow.
    let journal = p.journal("LONG", "dev");
    let events: Vec<cloud::event::Event> = journal
        .iter()
        .map(|e| cloud::event::Event::from_json_line(&e.to_string()).unwrap())
        .collect();
    let start = events[0].timestamp;
    let end = events.last().unwrap().timestamp;
    let first_done = events
        .iter()
        .find(|e| matches!(&e.data, cloud::event::EventData::ResourceCreated(r) if r.resource.name == "one" && r.stack == "api"))
        .expect("api's first resource")
        .timestamp;
    let mut at = start;
    while end - at > chrono::Duration::seconds(1) {
        let seen = events.iter().take_while(|e| e.timestamp <= at);
        let model = cloud::progress::Model::from_events(seen).unwrap();
        let eta = model.eta(at).expect("an ETA while the run goes on");
        assert!(eta > 0, "ETA 0 at {at} with {} left", end - at);
        let left = (end - at).num_milliseconds() as f64 / 1000.0;
        // (The ETA is whole seconds: the last two are left out.)
        if at > first_done + chrono::Duration::milliseconds(200) && left >= 2.0 {
            assert!(
                (eta as f64 - left).abs() <= 0.3 * left + 0.5,
                "ETA {eta} s at {at} with {left} s left"
            );
        }
        at += chrono::Duration::milliseconds(250);
    }
}

/// A destroy goes the other way: what it waits on starts at the stacks nothing depends on and
/// ends at the root, destroyed last.
#[test]
fn a_destroys_critical_path_runs_from_the_leaves_to_the_root() {
    let p = Project::new();
    p.manifest("CP", DAG);
    let (code, _, _) = p.deploy_json("CP", &[]);
    assert_eq!(code, 0);
    let out = p
        .cmd()
        .args(["destroy", "CP", "-e", "dev", "--yes", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let events = parse_events(&out.stdout);
    let first = of_type(&events, "deployment_progress")
        .into_iter()
        .find_map(|e| e["data"]["criticalPath"].as_array().cloned())
        .expect("a critical path");
    let first: Vec<&str> = first.iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(first.last(), Some(&"a"), "{first:?}");
    assert!(["d", "e", "f"].contains(&first[0]), "{first:?}");
}
