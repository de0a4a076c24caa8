//! The plan: the manifest's stacks as a DAG (petgraph) — checked for cycles — their layers,
//! expected durations and critical paths, and the `graph` renderings.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

pub mod fingerprint;
pub mod markdown;
pub mod saved;

use crate::event::PlannedStack;
use crate::executor::{Manifest, StackSpec};
use crate::manifest::ManifestError;

/// Expected seconds for a stack with nothing else to go by.
pub const DEFAULT_STACK_SECONDS: f64 = 60.0;

#[derive(Debug, Clone)]
pub struct PlanStack {
    pub spec: StackSpec,
    /// 1 + the longest chain of dependencies below it.
    pub layer: u32,
    /// Indexes into [`Plan::stacks`].
    pub dependencies: Vec<usize>,
    pub dependents: Vec<usize>,
    /// Expected seconds: recent median, simulated total, or the default.
    pub estimate: f64,
    /// Expected seconds from this stack's start to the end of the longest chain above it.
    pub critical_path: f64,
}

impl PlanStack {
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub deployment_id: String,
    /// In dependency order: by layer, then as written in the manifest.
    pub stacks: Vec<PlanStack>,
    /// `layers[n]` holds the stacks of layer n + 1.
    pub layers: Vec<Vec<usize>>,
    pub parallelism: Option<usize>,
    /// Median seconds of an operation per resource type, from earlier runs.
    pub resource_seconds: BTreeMap<String, f64>,
}

/// Where expected durations come from besides the manifest (recent runs).
pub trait PastRuns {
    /// Median of the stack's recent successful runs, in seconds.
    fn median_seconds(&self, stack: &str) -> Option<f64>;
    /// Median seconds of an operation on a resource (of any type), from earlier runs.
    fn resource_median(&self) -> Option<f64> {
        None
    }
    /// Median seconds of an operation per resource type, from earlier runs.
    fn resource_medians(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }
}

/// The run history kept beside the journals (`history.json`).
impl PastRuns for crate::store::history::RunHistory {
    fn median_seconds(&self, stack: &str) -> Option<f64> {
        crate::store::history::RunHistory::median_seconds(self, stack)
    }
    fn resource_median(&self) -> Option<f64> {
        crate::store::history::RunHistory::resource_median(self, None)
    }
    fn resource_medians(&self) -> BTreeMap<String, f64> {
        crate::store::history::RunHistory::resource_medians(self)
    }
}

/// No history: estimates come from the manifest alone.
pub struct NoPastRuns;

impl PastRuns for NoPastRuns {
    fn median_seconds(&self, _stack: &str) -> Option<f64> {
        None
    }
}

impl Plan {
    /// Builds the plan of a manifest; a dependency cycle is an error naming every stack on it.
    pub fn new(manifest: &Manifest, history: &dyn PastRuns) -> Result<Plan, ManifestError> {
        let specs = &manifest.stacks;
        let mut graph = DiGraph::<usize, ()>::with_capacity(specs.len(), specs.len());
        let nodes: Vec<NodeIndex> = (0..specs.len()).map(|i| graph.add_node(i)).collect();
        let by_name: HashMap<&str, usize> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        for (i, spec) in specs.iter().enumerate() {
            for dep in &spec.dependencies {
                if let Some(&d) = by_name.get(dep.as_str()) {
                    graph.add_edge(nodes[d], nodes[i], ());
                }
            }
        }
        if petgraph::algo::toposort(&graph, None).is_err() {
            return Err(cycle_error(manifest, &graph, &by_name));
        }

        let estimates = specs
            .iter()
            .map(|spec| {
                // Its own recent runs; else what its executor expects (simulated seconds);
                // else its resources at the pace resources went in earlier runs.
                history
                    .median_seconds(&spec.name)
                    .or_else(|| spec.executor.expected_seconds())
                    .or_else(|| {
                        let n = spec.executor.expected_resources()?;
                        Some(f64::from(n) * history.resource_median()?)
                    })
                    .unwrap_or(DEFAULT_STACK_SECONDS)
            })
            .collect();
        let deps = specs
            .iter()
            .map(|spec| {
                spec.dependencies
                    .iter()
                    .filter_map(|d| by_name.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut plan = Plan::arrange(
            &manifest.deployment_id,
            manifest.parallelism,
            specs.clone(),
            estimates,
            deps,
        );
        plan.resource_seconds = history.resource_medians();
        Ok(plan)
    }

    /// A plan of `specs` (in file order) whose stack `i` depends on `deps[i]` (indexes into
    /// `specs`, no cycle), each expected to take `estimates[i]` seconds.
    fn arrange(
        deployment_id: &str,
        parallelism: Option<usize>,
        specs: Vec<StackSpec>,
        estimates: Vec<f64>,
        deps: Vec<Vec<usize>>,
    ) -> Plan {
        let n = specs.len();
        // Layers in topological order (Kahn): 1 + the longest chain below.
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let mut layer = vec![1u32; n];
        let mut queue: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        while let Some(i) = queue.pop() {
            for &j in &dependents[i] {
                layer[j] = layer[j].max(layer[i] + 1);
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    queue.push(j);
                }
            }
        }
        // Dependency order that reads well: by layer, then as written.
        let mut sorted: Vec<usize> = (0..n).collect();
        sorted.sort_by_key(|&i| (layer[i], i));
        let mut position = vec![0usize; n];
        for (p, &i) in sorted.iter().enumerate() {
            position[i] = p;
        }
        let mut specs: Vec<Option<StackSpec>> = specs.into_iter().map(Some).collect();
        let mut stacks: Vec<PlanStack> = sorted
            .iter()
            .map(|&i| PlanStack {
                dependencies: deps[i].iter().map(|&d| position[d]).collect(),
                dependents: Vec::new(),
                layer: layer[i],
                estimate: estimates[i],
                critical_path: 0.0,
                spec: specs[i].take().expect("each spec once"),
            })
            .collect();
        for i in 0..stacks.len() {
            for d in stacks[i].dependencies.clone() {
                stacks[d].dependents.push(i);
            }
        }
        for i in (0..stacks.len()).rev() {
            let above = stacks[i]
                .dependents
                .iter()
                .map(|&j| stacks[j].critical_path)
                .fold(0.0, f64::max);
            stacks[i].critical_path = stacks[i].estimate + above;
        }
        let total_layers = stacks.iter().map(|s| s.layer).max().unwrap_or(0) as usize;
        let mut layers = vec![Vec::new(); total_layers];
        for (i, s) in stacks.iter().enumerate() {
            layers[s.layer as usize - 1].push(i);
        }
        Plan {
            deployment_id: deployment_id.to_owned(),
            stacks,
            layers,
            parallelism,
            resource_seconds: BTreeMap::new(),
        }
    }

    /// The same stacks with every dependency turned around: what used to depend on a stack now
    /// goes before it (destroy and rollback order).
    pub fn reversed(&self) -> Plan {
        let specs = self.stacks.iter().map(|s| s.spec.clone()).collect();
        let estimates = self.stacks.iter().map(|s| s.estimate).collect();
        let deps = self.stacks.iter().map(|s| s.dependents.clone()).collect();
        self.rearranged(specs, estimates, deps)
    }

    /// The stacks `keep` names, with the dependencies among them.
    pub fn subset(&self, keep: impl Fn(&str) -> bool) -> Plan {
        let kept: Vec<usize> = (0..self.stacks.len())
            .filter(|&i| keep(self.stacks[i].name()))
            .collect();
        let mut new_index = vec![usize::MAX; self.stacks.len()];
        for (k, &i) in kept.iter().enumerate() {
            new_index[i] = k;
        }
        let specs = kept.iter().map(|&i| self.stacks[i].spec.clone()).collect();
        let estimates = kept.iter().map(|&i| self.stacks[i].estimate).collect();
        let deps = kept
            .iter()
            .map(|&i| {
                self.stacks[i]
                    .dependencies
                    .iter()
                    .map(|&d| new_index[d])
                    .filter(|&d| d != usize::MAX)
                    .collect()
            })
            .collect();
        self.rearranged(specs, estimates, deps)
    }

    /// A plan of other stacks or dependencies, with this one's deployment, limit and history.
    fn rearranged(
        &self,
        specs: Vec<StackSpec>,
        estimates: Vec<f64>,
        deps: Vec<Vec<usize>>,
    ) -> Plan {
        let mut plan = Plan::arrange(
            &self.deployment_id,
            self.parallelism,
            specs,
            estimates,
            deps,
        );
        plan.resource_seconds = self.resource_seconds.clone();
        plan
    }

    pub fn total_layers(&self) -> u32 {
        self.layers.len() as u32
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.stacks.iter().position(|s| s.spec.name == name)
    }

    /// Expected wall time: the critical path, or the total work over the parallelism limit.
    pub fn estimated_seconds(&self, parallelism: Option<usize>) -> f64 {
        let critical = self
            .stacks
            .iter()
            .map(|s| s.critical_path)
            .fold(0.0, f64::max);
        let work: f64 = self.stacks.iter().map(|s| s.estimate).sum();
        let spread = parallelism.map_or(0.0, |p| work / p.max(1) as f64);
        critical.max(spread)
    }

    /// What a layer-by-layer barrier schedule (each layer waits for the one below) would take.
    pub fn barrier_seconds(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| {
                l.iter()
                    .map(|&i| self.stacks[i].estimate)
                    .fold(0.0, f64::max)
            })
            .sum()
    }

    /// The stacks as announced in `deployment_started`.
    pub fn planned_stacks(&self) -> Vec<PlannedStack> {
        self.stacks
            .iter()
            .map(|s| PlannedStack {
                name: s.spec.name.clone(),
                layer: s.layer,
                dependencies: s.spec.dependencies.clone(),
                estimated_seconds: (s.estimate * 1000.0).round() / 1000.0,
                expected_resources: s.spec.executor.expected_resources(),
            })
            .collect()
    }

    /// `cloud graph`: the stacks by layer, each with what it waits for.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}: {} stacks in {} layers\n",
            self.deployment_id,
            self.stacks.len(),
            self.layers.len()
        );
        let width = self
            .stacks
            .iter()
            .map(|s| s.name().len())
            .max()
            .unwrap_or(0);
        for (n, layer) in self.layers.iter().enumerate() {
            let _ = writeln!(out, "\nLayer {}/{}", n + 1, self.layers.len());
            for &i in layer {
                let s = &self.stacks[i];
                if s.spec.dependencies.is_empty() {
                    let _ = writeln!(out, "  {}", s.name());
                } else {
                    let _ = writeln!(
                        out,
                        "  {:width$}  ← {}",
                        s.name(),
                        s.spec.dependencies.join(", ")
                    );
                }
            }
        }
        out
    }

    /// `cloud graph --format dot`: Graphviz, one rank per layer.
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir=BT;\n  node [shape=box];\n",
            self.deployment_id
        );
        for (n, layer) in self.layers.iter().enumerate() {
            let _ = write!(out, "  subgraph layer_{} {{ rank=same;", n + 1);
            for &i in layer {
                let _ = write!(out, " \"{}\";", self.stacks[i].name());
            }
            out.push_str(" }\n");
        }
        for s in &self.stacks {
            for dep in &s.spec.dependencies {
                let _ = writeln!(out, "  \"{}\" -> \"{}\";", s.name(), dep);
            }
        }
        out.push_str("}\n");
        out
    }

    /// `cloud graph --format json`.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Layer<'a> {
            layer: usize,
            stacks: Vec<&'a str>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Stack<'a> {
            name: &'a str,
            layer: u32,
            dependencies: &'a [String],
            executor: &'static str,
            estimated_seconds: f64,
        }
        serde_json::json!({
            "deploymentId": self.deployment_id,
            "totalStacks": self.stacks.len(),
            "totalLayers": self.layers.len(),
            "layers": self.layers.iter().enumerate().map(|(n, l)| Layer {
                layer: n + 1,
                stacks: l.iter().map(|&i| self.stacks[i].name()).collect(),
            }).collect::<Vec<_>>(),
            "stacks": self.stacks.iter().map(|s| Stack {
                name: s.name(),
                layer: s.layer,
                dependencies: &s.spec.dependencies,
                executor: s.spec.executor.name(),
                estimated_seconds: s.estimate,
            }).collect::<Vec<_>>(),
        })
    }
}

/// The error for a graph with a cycle: one cycle, each stack on it in order (`a → b → c → a`,
/// "a depends on b"), pointing at the dependency that closes it.
fn cycle_error(
    manifest: &Manifest,
    graph: &DiGraph<usize, ()>,
    by_name: &HashMap<&str, usize>,
) -> ManifestError {
    let specs = &manifest.stacks;
    // A strongly connected component with more than one stack holds a cycle (a stack that
    // depends on itself was rejected with the manifest). The first one in file order.
    let component: Vec<usize> = petgraph::algo::tarjan_scc(graph)
        .into_iter()
        .map(|c| {
            let mut c: Vec<usize> = c.into_iter().map(|n| graph[n]).collect();
            c.sort_unstable();
            c
        })
        .filter(|c| c.len() > 1)
        .min_by_key(|c| c[0])
        .unwrap_or_default();
    let in_component = |i: &usize| component.binary_search(i).is_ok();
    // Walk dependencies inside the component until a stack repeats: that closes a cycle.
    let mut path: Vec<usize> = component.first().copied().into_iter().collect();
    let (cycle, closing) = loop {
        let Some(&current) = path.last() else {
            break (Vec::new(), None);
        };
        let deps = &specs[current].dependencies;
        let Some((k, next)) = deps
            .iter()
            .enumerate()
            .filter_map(|(k, d)| by_name.get(d.as_str()).map(|&j| (k, j)))
            .find(|(_, j)| in_component(j))
        else {
            break (Vec::new(), None);
        };
        if let Some(from) = path.iter().position(|&p| p == next) {
            let mut cycle = path[from..].to_vec();
            cycle.push(next);
            break (cycle, Some((current, k)));
        }
        path.push(next);
    };
    let names: Vec<&str> = cycle.iter().map(|&i| specs[i].name.as_str()).collect();
    let (at, help) = match closing {
        Some((stack, k)) => (
            specs[stack]
                .dependencies_at
                .get(k)
                .copied()
                .unwrap_or(specs[stack].at),
            format!(
                "stacks cannot depend on each other in a circle; remove one of these \
                 dependencies (e.g. `{}` from the dependencies of `{}`)",
                specs[stack].dependencies[k], specs[stack].name
            ),
        ),
        None => (
            Default::default(),
            "remove one dependency of the cycle".to_owned(),
        ),
    };
    ManifestError::new(
        &manifest.file,
        at,
        format!("dependency cycle: {}", names.join(" → ")),
        help,
    )
}
