//! Property tests of the one reducer: for any valid order of a run's events, counts never
//! exceed totals and the overall percent never goes down.

use chrono::{DateTime, Utc};
use cloud::event::*;
use cloud::progress::Model;
use proptest::prelude::*;

/// A random DAG (dependencies point to earlier stacks), which stacks fail, and a stream of
/// choices that drives one valid interleaving of the run.
#[derive(Debug, Clone)]
struct Scenario {
    deps: Vec<Vec<usize>>,
    resources: Vec<u32>,
    fails: Vec<bool>,
    choices: Vec<u32>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..14).prop_flat_map(|n| {
        let deps = (0..n)
            .map(|i| proptest::collection::vec(0..i.max(1), 0..=i.min(3)))
            .collect::<Vec<_>>();
        (
            deps,
            proptest::collection::vec(0u32..5, n),
            proptest::collection::vec(proptest::bool::weighted(0.2), n),
            proptest::collection::vec(any::<u32>(), 200..400),
        )
            .prop_map(|(deps, resources, fails, choices)| {
                let deps = deps
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut d)| {
                        d.retain(|&x| x < i);
                        d.sort_unstable();
                        d.dedup();
                        d
                    })
                    .collect();
                Scenario {
                    deps,
                    resources,
                    fails,
                    choices,
                }
            })
    })
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum S {
    Pending,
    Running(u32),
    Deployed,
    Failed,
    Blocked,
}

/// Plays the scenario into events, in an order a real run could produce.
fn events(sc: &Scenario) -> Vec<EventData> {
    let n = sc.deps.len();
    let name = |i: usize| format!("s{i}");
    let mut layer = vec![1u32; n];
    for i in 0..n {
        for &d in &sc.deps[i] {
            layer[i] = layer[i].max(layer[d] + 1);
        }
    }
    let mut out = vec![EventData::DeploymentStarted(DeploymentStarted {
        total_stacks: n as u32,
        total_layers: *layer.iter().max().unwrap(),
        estimated_duration: 10,
        stacks: (0..n)
            .map(|i| PlannedStack {
                name: name(i),
                layer: layer[i],
                dependencies: sc.deps[i].iter().map(|&d| name(d)).collect(),
                estimated_seconds: 3.0,
                expected_resources: Some(sc.resources[i]),
            })
            .collect(),
        ..Default::default()
    })];
    let mut state = vec![S::Pending; n];
    let mut choices = sc.choices.iter().copied().cycle();
    let resource = |i: usize, r: u32| ResourceEvent {
        stack: name(i),
        resource: ResourceRef {
            urn: format!("urn:s{i}:r{r}"),
            type_: "t:m:T".into(),
            name: format!("r{r}"),
            id: None,
            address: None,
        },
        duration_seconds: None,
        error: None,
        action: None,
    };
    loop {
        let ready: Vec<usize> = (0..n)
            .filter(|&i| {
                state[i] == S::Pending && sc.deps[i].iter().all(|&d| state[d] == S::Deployed)
            })
            .collect();
        let running: Vec<usize> = (0..n)
            .filter(|&i| matches!(state[i], S::Running(_)))
            .collect();
        if ready.is_empty() && running.is_empty() {
            break;
        }
        let pick = choices.next().unwrap() as usize;
        let start = running.is_empty() || (!ready.is_empty() && pick.is_multiple_of(3));
        if start {
            let i = ready[pick % ready.len()];
            state[i] = S::Running(0);
            out.push(EventData::StackDeploying(StackDeploying {
                stack: name(i),
                layer: layer[i],
                dependencies: sc.deps[i].iter().map(|&d| name(d)).collect(),
            }));
            continue;
        }
        let i = running[pick % running.len()];
        let S::Running(done) = state[i] else {
            unreachable!()
        };
        match (pick / 7) % 4 {
            0 => out.push(EventData::StackProgress(StackProgress {
                stack: name(i),
                progress_percent: (pick % 120) as u32,
                current_resource: None,
                message: Some(format!("step {pick}")),
            })),
            1 => out.push(EventData::StackLog(StackLog {
                stack: name(i),
                level: LogLevel::Info,
                message: "log".into(),
            })),
            _ if done < sc.resources[i] => {
                out.push(EventData::ResourceCreating(resource(i, done)));
                out.push(EventData::ResourceCreated(resource(i, done)));
                state[i] = S::Running(done + 1);
            }
            _ if sc.fails[i] => {
                state[i] = S::Failed;
                out.push(EventData::StackFailed(StackFailed {
                    stack: name(i),
                    error: ErrorDetail::default(),
                    duration_seconds: 1,
                }));
                let mut stack = vec![i];
                while let Some(f) = stack.pop() {
                    for (j, deps) in sc.deps.iter().enumerate() {
                        if state[j] == S::Pending && deps.contains(&f) {
                            state[j] = S::Blocked;
                            out.push(EventData::StackBlocked(StackBlocked {
                                stack: name(j),
                                blocked_by: name(i),
                            }));
                            stack.push(j);
                        }
                    }
                }
            }
            _ => {
                state[i] = S::Deployed;
                out.push(EventData::StackDeployed(StackDeployed {
                    stack: name(i),
                    status: StackState::Deployed,
                    resources_created: done,
                    resources_updated: 0,
                    duration_seconds: 1,
                    outputs: Outputs::new(),
                    fingerprint: None,
                    resources_replaced: None,
                    resources_deleted: None,
                }));
            }
        }
    }
    let count = |s: S| state.iter().filter(|&&x| x == s).count() as u32;
    let failed = count(S::Failed) > 0;
    out.push(EventData::DeploymentComplete(DeploymentComplete {
        status: if failed {
            DeploymentState::Failed
        } else {
            DeploymentState::Deployed
        },
        total_stacks: n as u32,
        deployed_stacks: count(S::Deployed),
        skipped_stacks: 0,
        failed_stacks: count(S::Failed),
        blocked_stacks: count(S::Blocked),
        not_started_stacks: 0,
        duration_seconds: 5,
        cancelled: false,
    }));
    out
}

fn at(i: usize) -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000 + i as i64, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn counts_stay_within_totals_and_percent_never_goes_down(sc in scenario()) {
        let mut model = Model::new("D1BRV40", "dev");
        let mut last_percent = 0;
        let stream = events(&sc);
        for (i, data) in stream.iter().enumerate() {
            let event = Event {
                timestamp: at(i),
                ..cloud::testing::event(i as u64 + 1, data.clone())
            };
            model.apply(&event);
            let s = &model.summary;
            prop_assert_eq!(s.total_stacks as usize, sc.deps.len());
            prop_assert!(s.finished() + s.running_stacks <= s.total_stacks, "{:?}", s);
            prop_assert!(s.progress_percent <= 100);
            prop_assert!(s.progress_percent >= last_percent, "percent went down: {} -> {}", last_percent, s.progress_percent);
            // The percent counts at least the settled stacks (progress::Progress).
            let tally = model.tally();
            prop_assert!(s.progress_percent >= tally.settled() * 100 / tally.total.max(1), "{:?}", tally);
            last_percent = s.progress_percent;
            for stack in &model.stacks {
                prop_assert!(stack.resources.created <= stack.resources.total);
                prop_assert!(stack.progress_percent <= 100);
                prop_assert!(stack.logs.len() <= cloud::progress::LOG_RING);
            }
            prop_assert!(model.eta(event.timestamp).is_some());
        }
        prop_assert!(model.is_finished());
        let s = &model.summary;
        if s.failed_stacks == 0 {
            prop_assert_eq!(s.progress_percent, 100);
            prop_assert_eq!(s.deployed_stacks, s.total_stacks);
        }
        // 100% exactly when every stack is settled: a failed run whose other stacks all ended.
        let tally = model.tally();
        prop_assert_eq!(s.progress_percent == 100, tally.settled() == tally.total, "{:?}", tally);
        let created: u32 = model.stacks.iter().map(|st| st.resources.created).sum();
        prop_assert_eq!(created, model.metrics.resources_created);
    }

    #[test]
    fn the_model_from_a_journal_equals_the_live_one(sc in scenario()) {
        // Serializing every event and folding them back (as `cloud status` does) gives the
        // same model as folding them live.
        let stream = events(&sc);
        let events: Vec<Event> = stream.into_iter().enumerate().map(|(i, data)| Event {
            timestamp: at(i),
            ..cloud::testing::event(i as u64 + 1, data)
        }).collect();
        let live = Model::from_events(&events).unwrap();
        let read: Vec<Event> = events.iter().map(|e| serde_json::from_str(&e.to_json_line()).unwrap()).collect();
        let replayed = Model::from_events(&read).unwrap();
        prop_assert_eq!(serde_json::to_value(&live).unwrap(), serde_json::to_value(&replayed).unwrap());
    }
}
