//! Property tests of the manifest parser: it never panics, every error is one located,
//! single-line message with a fix, and valid manifests round-trip.

use std::collections::BTreeSet;
use std::path::Path;

use cloud::executor::Manifest;
use cloud::manifest::ManifestError;
use proptest::prelude::*;

const FILE: &str = "cloud/deploy/D1/deployment.yaml";

/// The manifest and its graph, as `cloud validate` checks them.
fn parse(file: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let manifest = cloud::manifest::parse(file, text, &cloud::executor::registry())?;
    cloud::plan::Plan::new(&manifest, &cloud::plan::NoPastRuns)?;
    Ok(manifest)
}

/// Checks the shape of any error `parse` returns for `text`.
fn check_error(text: &str, e: &ManifestError) {
    assert_eq!(e.file, Path::new(FILE));
    assert!(!e.message.is_empty(), "empty message for {text:?}");
    assert!(!e.help.is_empty(), "no help for {text:?}: {}", e.message);
    assert!(
        !e.message.contains('\n') && !e.help.contains('\n'),
        "multi-line error for {text:?}:\n{}",
        e.render()
    );
    // Every error from `parse` points into the file.
    let lines = text.split('\n').count() as u64;
    assert!(
        e.at.line >= 1 && e.at.line <= lines + 1 && e.at.column >= 1,
        "bad location for {text:?}:\n{}",
        e.render()
    );
    let rendered = e.render();
    assert!(rendered.starts_with("error: "), "{rendered}");
    let place = format!("{FILE}:{}:{}", e.at.line, e.at.column);
    assert!(rendered.contains(&place), "no {place} in {rendered}");
    assert!(rendered.contains("\n  help: "), "{rendered}");
}

fn parse_checked(text: &str) {
    if let Err(e) = parse(Path::new(FILE), text) {
        check_error(text, &e);
    }
}

// ---------------------------------------------------------------------------------------------
// A grammar of manifest-like YAML
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Y {
    Scalar(String),
    List(Vec<Y>),
    Map(Vec<(String, Y)>),
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "deploymentId",
        "environments",
        "parallelism",
        "defaults",
        "stacks",
        "notifications",
        "eventStore",
        "dependencies",
        "executor",
        "resources",
        "outputs",
        "path",
        "deploy",
        "destroy",
        "type",
        "name",
        "seconds",
        "fail",
        "id",
        "network",
        "security",
        "dns",
        "a",
        "b",
        "Bad_Name",
        "stack",
        "dependecies",
        "\"quoted key\"",
        "1",
        "~",
    ])
    .prop_map(str::to_owned)
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec!["&anchor x", "*anchor", "!tag x", "\"${SLACK_WEBHOOK_URL}\""])
            .prop_map(str::to_owned),
        30 => prop::sample::select(vec![
            "simulate",
            "pulumi",
            "command",
            "simulat",
            "dev",
            "prod",
            "D1",
            "D2",
            "network",
            "security",
            "dns",
            "a",
            "b",
            "0",
            "1",
            "4",
            "-1",
            "2.5",
            ".inf",
            "-.inf",
            ".nan",
            "1e999",
            "~",
            "null",
            "true",
            "no",
            "\"\"",
            "''",
            "./deploy.sh",
            "stacks/x",
            "[]",
            "{}",
        ])
        .prop_map(str::to_owned),
        15 => "[a-z0-9][a-z0-9-]{0,7}",
    ]
}

fn tree() -> impl Strategy<Value = Y> {
    scalar()
        .prop_map(Y::Scalar)
        .prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Y::List),
                prop::collection::vec((key(), inner), 0..6).prop_map(Y::Map),
            ]
        })
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "network", "security", "dns", "a", "b", "netwrk", "Bad_Name", "00",
    ])
    .prop_map(str::to_owned)
}

fn s(v: &str) -> Y {
    Y::Scalar(v.to_owned())
}

/// A value that often has the right shape for `key`.
fn value_for(key: &'static str) -> BoxedStrategy<Y> {
    let fitting: BoxedStrategy<Y> = match key {
        "dependencies" | "environments" => prop::collection::vec(name().prop_map(Y::Scalar), 0..4)
            .prop_map(Y::List)
            .boxed(),
        "executor" => prop::sample::select(vec!["simulate", "pulumi", "command", "simulat"])
            .prop_map(s)
            .boxed(),
        "resources" => prop::collection::vec(
            prop::collection::vec(
                (
                    prop::sample::select(vec!["type", "name", "seconds", "fail", "id", "secs"]),
                    prop::sample::select(vec!["t", "5", "-1", "0.5", ".inf", "x", "~"]),
                )
                    .prop_map(|(k, v)| (k.to_owned(), s(v))),
                0..5,
            )
            .prop_map(Y::Map),
            0..3,
        )
        .prop_map(Y::List)
        .boxed(),
        "parallelism" => prop::sample::select(vec!["0", "1", "4", "-3", "x"])
            .prop_map(s)
            .boxed(),
        "path" | "deploy" | "destroy" => {
            prop::sample::select(vec!["stacks/x", "./deploy.sh", "\"\""])
                .prop_map(s)
                .boxed()
        }
        "deploymentId" => prop::sample::select(vec!["D1", "D2", "../x"])
            .prop_map(s)
            .boxed(),
        _ => tree().boxed(),
    };
    prop_oneof![4 => fitting, 1 => tree()].boxed()
}

fn keyed(keys: Vec<&'static str>) -> impl Strategy<Value = (String, Y)> {
    prop::sample::select(keys).prop_flat_map(|k| (Just(k.to_owned()), value_for(k)))
}

fn stack() -> impl Strategy<Value = Y> {
    prop::collection::vec(
        keyed(vec![
            "dependencies",
            "executor",
            "executor",
            "resources",
            "outputs",
            "path",
            "deploy",
            "destroy",
            "dependecies",
        ]),
        0..5,
    )
    .prop_map(|entries| Y::Map(dedup(entries)))
}

/// Mostly drop repeated keys, so that validation gets past "duplicate key".
fn dedup(entries: Vec<(String, Y)>) -> Vec<(String, Y)> {
    let mut seen = BTreeSet::new();
    entries
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

/// A manifest-shaped document: mostly the manifest's keys, with values of mostly the right shape.
fn structured() -> impl Strategy<Value = Y> {
    (
        prop::collection::vec(
            keyed(vec![
                "deploymentId",
                "environments",
                "parallelism",
                "defaults",
                "notifications",
                "stack",
            ]),
            0..4,
        ),
        prop::option::weighted(0.9, value_for("environments")),
        prop::option::weighted(
            0.9,
            prop_oneof![
                6 => prop::collection::vec((name(), stack()), 0..6)
                    .prop_map(|stacks| Y::Map(dedup(stacks))),
                1 => tree(),
            ],
        ),
    )
        .prop_map(|(mut entries, envs, stacks)| {
            if let Some(e) = envs {
                entries.insert(0, ("environments".to_owned(), e));
            }
            if let Some(st) = stacks {
                entries.push(("stacks".to_owned(), st));
            }
            Y::Map(dedup(entries))
        })
}

/// A top-level document: manifest-shaped, or a free mapping whose keys favour the manifest's.
fn document() -> impl Strategy<Value = Y> {
    prop_oneof![
        3 => structured(),
        1 => prop::collection::vec((key(), tree()), 0..7).prop_map(Y::Map),
    ]
}

fn flow(y: &Y, out: &mut String) {
    match y {
        Y::Scalar(s) => out.push_str(s),
        Y::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Y::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                flow(v, out);
            }
            out.push('}');
        }
    }
}

/// Block style, switching to flow style below `flow_below` levels.
fn block(y: &Y, indent: usize, depth: usize, flow_below: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match y {
        Y::Scalar(_) => {
            flow(y, out);
            out.push('\n');
        }
        _ if depth >= flow_below => {
            flow(y, out);
            out.push('\n');
        }
        Y::List(items) if items.is_empty() => out.push_str("[]\n"),
        Y::Map(entries) if entries.is_empty() => out.push_str("{}\n"),
        Y::List(items) => {
            out.push('\n');
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                if matches!(item, Y::Scalar(_)) || depth + 1 >= flow_below {
                    flow(item, out);
                    out.push('\n');
                } else {
                    block(item, indent + 2, depth + 1, flow_below, out);
                }
            }
        }
        Y::Map(entries) => {
            out.push('\n');
            for (k, v) in entries {
                out.push_str(&pad);
                out.push_str(k);
                out.push_str(": ");
                block(v, indent + 2, depth + 1, flow_below, out);
            }
        }
    }
}

fn render(y: &Y, flow_below: usize) -> String {
    let mut out = String::new();
    match y {
        Y::Map(entries) => {
            for (k, v) in entries {
                out.push_str(k);
                out.push_str(": ");
                block(v, 2, 1, flow_below, &mut out);
            }
        }
        other => block(other, 0, 0, flow_below, &mut out),
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    None,
    Delete(usize),
    Insert(usize, char),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::None),
        1 => any::<usize>().prop_map(Mutation::Delete),
        1 => (any::<usize>(), prop::sample::select(vec![' ', '\n', ':', '-', '[', '{', '"', '\t', '#']))
            .prop_map(|(i, c)| Mutation::Insert(i, c)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(text: &str, m: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| {
        if chars.is_empty() {
            0
        } else {
            i % (chars.len() + 1)
        }
    };
    let mut out = chars.clone();
    match *m {
        Mutation::None => {}
        Mutation::Delete(i) => {
            if !chars.is_empty() {
                out.remove(i % chars.len());
            }
        }
        Mutation::Insert(i, c) => out.insert(at(i), c),
        Mutation::Truncate(i) => out.truncate(at(i)),
    }
    out.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Valid DAG manifests
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Dag {
    names: Vec<String>,
    /// `deps[i]`: indices of the stacks stack `i` depends on; all `< i` (a DAG by construction).
    deps: Vec<Vec<usize>>,
    /// 0 simulate, 1 command, 2 pulumi.
    executors: Vec<u8>,
    /// File order: a permutation of the stacks.
    order: Vec<usize>,
    flow_style: bool,
}

fn dag() -> impl Strategy<Value = Dag> {
    // A name YAML reads as an infinite number (`2e513`) is refused as such, not as a name.
    let name = "[a-z0-9][a-z0-9-]{0,10}"
        .prop_filter("YAML reads it as an infinite number", |n: &String| {
            n.parse::<f64>().map_or(true, f64::is_finite)
        });
    prop::collection::btree_set(name, 1..14)
        .prop_flat_map(|names: BTreeSet<String>| {
            let names: Vec<String> = names.into_iter().collect();
            let n = names.len();
            let deps = (0..n)
                .map(|i| {
                    prop::collection::btree_set(0..i.max(1), 0..=i.min(4))
                        .prop_map(move |s| s.into_iter().filter(|&d| d < i).collect::<Vec<_>>())
                        .prop_shuffle()
                })
                .collect::<Vec<_>>();
            (
                Just(names),
                deps,
                prop::collection::vec(0u8..3, n),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                any::<bool>(),
            )
        })
        .prop_map(|(names, deps, executors, order, flow_style)| Dag {
            names,
            deps,
            executors,
            order,
            flow_style,
        })
}

fn dag_yaml(d: &Dag) -> String {
    let mut out = String::from("environments: [dev, prod]\nstacks:\n");
    for &i in &d.order {
        let deps: Vec<&str> = d.deps[i].iter().map(|&j| d.names[j].as_str()).collect();
        let exec: &[(&str, &str)] = match d.executors[i] {
            0 => &[
                ("executor", "simulate"),
                ("resources", "[{ type: \"t:x\", name: r, seconds: 0.5 }]"),
            ],
            1 => &[("executor", "command"), ("deploy", "./deploy.sh")],
            _ => &[("executor", "pulumi"), ("path", "stacks/p")],
        };
        if d.flow_style {
            out.push_str(&format!(
                "  {}: {{ dependencies: [{}]",
                d.names[i],
                deps.join(", ")
            ));
            for (k, v) in exec {
                out.push_str(&format!(", {k}: {v}"));
            }
            out.push_str(" }\n");
        } else {
            out.push_str(&format!("  {}:\n", d.names[i]));
            if !deps.is_empty() {
                out.push_str("    dependencies:\n");
                for dep in &deps {
                    out.push_str(&format!("      - {dep}\n"));
                }
            }
            for (k, v) in exec {
                out.push_str(&format!("    {k}: {v}\n"));
            }
        }
    }
    out
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        parse_checked(&text);
    }

    #[test]
    fn yaml_alphabet_strings_never_panic(text in "[a-z0-9:\\-\\[\\]{}, \n\t#&*!|>'\"~?.%@`]{0,300}") {
        parse_checked(&text);
    }

    #[test]
    fn manifest_like_documents_never_panic(
        doc in document(),
        flow_below in 1usize..6,
        m in mutation(),
    ) {
        let text = mutate(&render(&doc, flow_below), &m);
        parse_checked(&text);
    }

    #[test]
    fn valid_dags_round_trip(d in dag()) {
        let text = dag_yaml(&d);
        let m = match parse(Path::new(FILE), &text) {
            Ok(m) => m,
            Err(e) => panic!("valid manifest rejected:\n{text}\n{}", e.render()),
        };
        prop_assert_eq!(m.deployment_id.as_str(), "D1");
        prop_assert_eq!(&m.environments, &["dev".to_owned(), "prod".to_owned()]);
        prop_assert_eq!(m.stacks.len(), d.order.len());
        for (stack, &i) in m.stacks.iter().zip(&d.order) {
            prop_assert_eq!(&stack.name, &d.names[i]);
            let deps: Vec<&str> = d.deps[i].iter().map(|&j| d.names[j].as_str()).collect();
            prop_assert_eq!(&stack.dependencies, &deps);
            let executor = &stack.executor;
            match (executor.name(), d.executors[i]) {
                ("simulate", 0) => {
                    prop_assert_eq!(executor.expected_resources(), Some(1));
                    prop_assert_eq!(executor.expected_seconds(), Some(0.5));
                }
                ("command", 1) => {
                    let shown = format!("{executor:?}");
                    prop_assert!(shown.contains("deploy: \"./deploy.sh\", destroy: None"), "{}", shown);
                }
                ("pulumi", 2) => {
                    prop_assert_eq!(&stack.path, Path::new("cloud/deploy/D1/stacks/p"));
                }
                (other, want) => prop_assert!(false, "executor {:?}, wanted {}", other, want),
            }
        }
    }

    #[test]
    fn a_back_edge_is_reported_as_a_cycle(d in dag(), pick in any::<prop::sample::Index>()) {
        // Add an edge from a stack to one of its (transitive) dependents: a cycle.
        let edges: Vec<(usize, usize)> = d
            .deps
            .iter()
            .enumerate()
            .flat_map(|(i, ds)| ds.iter().map(move |&j| (i, j)))
            .collect();
        prop_assume!(!edges.is_empty());
        let (from, to) = edges[pick.index(edges.len())];
        let mut cyclic = d.clone();
        cyclic.deps[to].push(from);
        let text = dag_yaml(&cyclic);
        let e = match parse(Path::new(FILE), &text) {
            Ok(_) => panic!("cycle not found:\n{text}"),
            Err(e) => e,
        };
        check_error(&text, &e);
        let cycle = e
            .message
            .strip_prefix("dependency cycle: ")
            .unwrap_or_else(|| panic!("not a cycle error: {}", e.render()));
        let names: Vec<&str> = cycle.split(" → ").collect();
        prop_assert!(names.len() >= 3, "{}", cycle);
        prop_assert_eq!(names.first(), names.last());
        // Each step is a real dependency, and no stack repeats.
        for pair in names.windows(2) {
            let a = cyclic.names.iter().position(|n| n == pair[0]).unwrap();
            let b = cyclic.names.iter().position(|n| n == pair[1]).unwrap();
            prop_assert!(cyclic.deps[a].contains(&b), "{} does not depend on {}", pair[0], pair[1]);
        }
        let distinct: BTreeSet<&&str> = names[1..].iter().collect();
        prop_assert_eq!(distinct.len(), names.len() - 1);
    }
}
