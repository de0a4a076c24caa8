//! Where the time went, through the real binary: a simulated deployment with known durations,
//! its critical path and what each stack on it cost (`cloud status --timing`, the end-of-run
//! summary, `--report`), checked against a re-simulation of the run's own recorded durations.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use common::{of_type, Project};
use serde_json::Value;

/// net → {db, cache} → api, and docs alone: without a limit the run hangs on net → db → api.
const TIMED: &str = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  net: { resources: [{ type: "t:a:A", name: a, seconds: 0.4 }] }
  db:
    dependencies: [net]
    resources: [{ type: "t:a:A", name: a, seconds: 1.2 }]
  cache:
    dependencies: [net]
    resources: [{ type: "t:a:A", name: a, seconds: 0.3 }]
  api:
    dependencies: [db, cache]
    resources: [{ type: "t:a:A", name: a, seconds: 0.6 }]
  docs: { resources: [{ type: "t:a:A", name: a, seconds: 0.5 }] }
"#;

fn time(event: &Value) -> DateTime<Utc> {
    event["timestamp"].as_str().unwrap().parse().unwrap()
}

/// Each stack's seconds, as the run recorded them (its start and end events).
fn durations(events: &[Value]) -> BTreeMap<String, f64> {
    let started: BTreeMap<&str, DateTime<Utc>> = of_type(events, "stack_deploying")
        .into_iter()
        .map(|e| (e["data"]["stack"].as_str().unwrap(), time(e)))
        .collect();
    of_type(events, "stack_deployed")
        .into_iter()
        .map(|e| {
            let stack = e["data"]["stack"].as_str().unwrap();
            let took = (time(e) - started[stack]).num_milliseconds() as f64 / 1000.0;
            (stack.to_owned(), took)
        })
        .collect()
}

/// How long the run takes with these durations and no limit: its longest chain.
fn longest_chain(d: &BTreeMap<String, f64>) -> f64 {
    let through_net = d["net"] + d["db"].max(d["cache"]) + d["api"];
    through_net.max(d["docs"])
}

/// The `sooner` column of `stack`'s row of the `--timing` table, and whether it is on the path.
fn row(table: &str, stack: &str) -> (bool, Option<f64>) {
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{stack} ")) && l.contains('s'))
        .unwrap_or_else(|| panic!("no row for {stack} in:\n{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    let on_path = cells.get(2) == Some(&"*");
    let sooner = on_path.then(|| cells[3].trim_end_matches('s').parse().unwrap());
    (on_path, sooner)
}

#[test]
fn status_timing_names_the_critical_path_and_what_each_stack_on_it_cost() {
    let p = Project::new();
    p.manifest("TIME", TIMED);
    let (code, events, _) = p.deploy_json("TIME", &[]);
    assert_eq!(code, 0);
    let out = p
        .cmd()
        .args(["status", "TIME", "-e", "dev", "--timing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let path = regex_lite::Regex::new(
        r"Critical path \d+\.\ds: net \d+\.\ds → db \d+\.\ds → api \d+\.\ds\n",
    )
    .unwrap();
    assert!(path.is_match(&text), "{text}");
    // Each saving is what a re-simulation of the recorded durations without it gives.
    let d = durations(&events);
    let all = longest_chain(&d);
    for stack in ["net", "db", "api"] {
        let mut without = d.clone();
        without.insert(stack.to_owned(), 0.0);
        let expected = all - longest_chain(&without);
        let (on_path, sooner) = row(&text, stack);
        assert!(on_path, "{stack} is on the path:\n{text}");
        let sooner = sooner.unwrap();
        // Shown in tenths; the journal keeps milliseconds.
        assert!(
            (sooner - expected).abs() <= 0.06,
            "{stack}: shown {sooner}, re-simulated {expected:.3} ({d:?})\n{text}"
        );
    }
    // db (1.2 s) beside cache (0.3 s): all but cache's time is db's cost.
    assert!(row(&text, "db").1.unwrap() >= 0.7, "{text}");
    for stack in ["cache", "docs"] {
        assert_eq!(row(&text, stack), (false, None), "{text}");
    }
    // The timeline: a bar on every row, the path's in full blocks.
    assert!(
        text.lines().any(|l| l.contains(" db ") && l.contains('█')),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" docs ") && l.contains('▒')),
        "{text}"
    );

    // The same figures as JSON.
    let out = p
        .cmd()
        .args([
            "status", "TIME", "-e", "dev", "--timing", "--output", "json",
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let path: Vec<&str> = (json["timing"]["criticalPath"].as_array().unwrap().iter())
        .map(|s| s["stack"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["net", "db", "api"], "{json}");
}

#[test]
fn every_run_ends_with_where_the_time_went() {
    let p = Project::new();
    p.manifest("TIME", TIMED);
    let out = p
        .cmd()
        .args(["deploy", "TIME", "-e", "dev", "--verbose"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    let summary = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    let expected = regex_lite::Regex::new(concat!(
        r"\] Where the time went: \d+\.\ds wall, \d+% of the least possible \d+\.\ds \(the critical path\)\n",
        r".*\]   Critical path \d+\.\ds: net \d+\.\ds → db \d+\.\ds → api \d+\.\ds\n",
        r".*\]   Sooner without it: db \d+\.\ds, ",
    ))
    .unwrap();
    assert!(expected.is_match(&summary), "{text}");

    // One slot: every stack in a row, and the path goes through the stack whose end freed the
    // slot for the next (docs, which depends on nothing, waited for it).
    let out = p
        .cmd()
        .args([
            "deploy",
            "TIME",
            "-e",
            "dev",
            "--verbose",
            "--force",
            "-p",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = (text.lines())
        .find(|l| l.contains("Critical path "))
        .unwrap_or_else(|| panic!("no critical path in:\n{text}"));
    for stack in ["net", "db", "cache", "api", "docs"] {
        assert!(line.contains(&format!("{stack} ")), "{line}");
    }
    assert!(line.contains("waited"), "{line}");
    assert!(line.contains("for a free slot"), "{line}");
}

#[test]
fn the_report_says_where_the_time_went() {
    let p = Project::new();
    p.manifest("TIME", TIMED);
    let report = p.root().join("report.json");
    let (code, events, _) = p.deploy_json("TIME", &["--report", report.to_str().unwrap()]);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let timing = &json["timing"];
    let path: Vec<&str> = (timing["criticalPath"].as_array().unwrap().iter())
        .map(|s| s["stack"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["net", "db", "api"], "{timing}");
    let d = durations(&events);
    let db = &timing["criticalPath"][1];
    assert!(
        (db["seconds"].as_f64().unwrap() - d["db"]).abs() < 0.005,
        "{timing}"
    );
    let mut without = d.clone();
    without.insert("db".into(), 0.0);
    let saving = longest_chain(&d) - longest_chain(&without);
    assert!(
        (db["savingSeconds"].as_f64().unwrap() - saving).abs() < 0.005,
        "{timing}"
    );
    // Every stack's span, for a timeline.
    assert_eq!(timing["stacks"].as_array().unwrap().len(), 5, "{timing}");
    // (The journal keeps milliseconds: a few of them either way.)
    assert!(
        timing["wallSeconds"].as_f64().unwrap() >= longest_chain(&d) - 0.005,
        "{timing}"
    );
}
