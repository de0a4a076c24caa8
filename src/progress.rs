//! The one reducer: [`Model::apply`] folds events into the seed's `DeploymentProgress`.
//!
//! Every consumer that needs state (views, `cloud status`, the hub, the notifier, `cloud watch`,
//! the orchestrator's own `deployment_progress` events) folds the same events through this code,
//! with [`fold`]. Only the model holds run state, and only events change it: a stop is
//! `deployment_cancelling`, the ETA is the one `deployment_progress` carries ([`Model::eta`]);
//! reading the model changes nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::eta;
use crate::event::{
    DeploymentCancelling, DeploymentFailed, DeploymentProgress, DeploymentState, DriftStatus,
    ErrorDetail, Event, EventData, LogLevel, Operation, Outputs, PlanAction, PlanCounts,
    PlannedStack, ResourceDrifted, ResourceEvent, ResourceState, SkipReason, StackPlanned,
    StackRetrying, StackState, StackTally, StopReason,
};

/// Log lines kept per stack; older ones fall off so memory stays flat on huge runs.
pub const LOG_RING: usize = 100;

/// The seed's `DeploymentProgress`. Read back from its serialized form (a server's snapshot)
/// with [`Model::from_snapshot`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub deployment_id: String,
    pub environment: String,
    pub status: DeploymentState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_layer: Option<u32>,
    pub total_layers: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_stack: Option<String>,
    pub summary: Summary,
    #[serde(
        serialize_with = "serialize_stacks",
        deserialize_with = "deserialize_stacks"
    )]
    pub stacks: Vec<StackModel>,
    pub metrics: Metrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeploymentFailed>,
    /// The stop going on (`deployment_cancelling`, the last one), if the run is stopping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelling: Option<DeploymentCancelling>,
    pub operation: Operation,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// A plan's totals over its planned stacks (`stack_planned`).
    #[serde(default, skip_serializing_if = "PlanTotals::is_empty")]
    pub plan_totals: PlanTotals,
    /// A drift check's totals (`stack_drift_checked`).
    #[serde(default, skip_serializing_if = "DriftTotals::is_empty")]
    pub drift_totals: DriftTotals,
    /// The chain of unfinished stacks the run's ETA hangs on, as the run last said it
    /// (`deployment_progress.criticalPath`); empty once nothing is left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_path: Vec<String>,
    /// The last event folded in.
    pub sequence: u64,
    /// When the last event folded in happened.
    #[serde(skip)]
    pub last_event_time: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub layers: Vec<LayerModel>,
    #[serde(skip)]
    pub parallelism: Option<usize>,
    /// Median seconds of an operation per resource type, from earlier runs (ETA).
    #[serde(skip)]
    pub resource_seconds: std::collections::BTreeMap<String, f64>,
    #[serde(skip)]
    pub cancelled: bool,
    #[serde(skip)]
    index: HashMap<String, usize>,
    /// Sum of the progress of running stacks, in percent, for the overall percent.
    #[serde(skip)]
    running_percent_sum: u64,
    /// When `metrics.estimated_time_remaining` was said (the run's ETA is counted down from
    /// then: see [`Model::eta`]).
    #[serde(skip)]
    eta_at: Option<DateTime<Utc>>,
    /// Whether any stack was rolled back: until then [`Model::tally`], which runs for every
    /// event, has nothing to count stack by stack (it was a third of a 10,000-stack run).
    #[serde(skip)]
    any_rolled_back: bool,
    /// [`Model::predecessors`], worked out once for the graph as it stands (reset whenever a
    /// stack, its dependencies or the run's direction change): the ETA simulates the remaining
    /// schedule again and again, and looking every dependency up by name each time was a
    /// fifth of a 10,000-stack run's main thread.
    #[serde(skip)]
    graph: std::sync::OnceLock<Arc<[Vec<usize>]>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total_stacks: u32,
    pub deployed_stacks: u32,
    pub failed_stacks: u32,
    pub skipped_stacks: u32,
    pub blocked_stacks: u32,
    pub running_stacks: u32,
    pub progress_percent: u32,
    /// The stacks the percent counts as settled ([`Progress`]): what `N` of `N/M stacks` is.
    #[serde(default)]
    pub settled_stacks: u32,
}

impl Summary {
    /// Stacks that will not change again this run.
    pub fn finished(&self) -> u32 {
        self.deployed_stacks + self.skipped_stacks + self.failed_stacks + self.blocked_stacks
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub duration_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_time_remaining: Option<u64>,
    pub resources_created: u32,
    pub resources_failed: u32,
}

/// The seed's `StackProgress`, plus what views need (dependencies, resource list, outputs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackModel {
    pub name: String,
    pub status: StackState,
    pub layer: u32,
    pub dependencies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    pub progress_percent: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_resource: Option<String>,
    /// The last progress message the executor gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub resources: ResourceSummary,
    pub resource_list: Vec<ResourceModel>,
    pub logs: VecDeque<LogEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    /// Deployed by the run, then rolled back after a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
    #[serde(default, skip_serializing_if = "Outputs::is_empty")]
    pub outputs: Outputs,
    pub estimated_seconds: f64,
    /// A plan run: what the stack's plan does (`resource_planned`, `stack_planned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<StackPlan>>,
    /// A drift check: what it found (`resource_drifted`, `stack_drift_checked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Box<StackDrift>>,
    /// Retried after a transient error (`stack_retrying`): its latest attempt, and when that
    /// one starts (or started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Box<StackRetry>>,
    /// Resource positions by key ([`resource_key`]), once the stack has more than
    /// [`SCANNED`] resources (fewer are searched: a map per stack was a tenth of a
    /// 10,000-stack run's memory).
    #[serde(skip)]
    resource_index: HashMap<String, usize>,
}

/// Up to this many resources, a stack's are searched rather than indexed.
const SCANNED: usize = 32;

/// How a resource is known: by URN, else by type and name.
fn resource_key(urn: &str, type_: &str, name: &str) -> String {
    match urn {
        "" => format!("{type_}::{name}"),
        urn => urn.to_owned(),
    }
}

/// Whether `r` is known as ([`resource_key`]) `urn`, `type_`, `name` are.
fn same_resource(r: &ResourceModel, urn: &str, type_: &str, name: &str) -> bool {
    // Written out as `type::name` where either has no URN.
    let by_name = |key: &str, type_: &str, name: &str| {
        (key.strip_prefix(type_))
            .and_then(|rest| rest.strip_prefix("::"))
            .is_some_and(|rest| rest == name)
    };
    match (r.urn.as_str(), urn) {
        ("", "") => r.type_ == type_ && r.name == name,
        ("", key) => by_name(key, &r.type_, &r.name),
        (key, "") => by_name(key, type_, name),
        (a, b) => a == b,
    }
}

/// A stack's retry, from its latest `stack_retrying`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackRetry {
    /// The attempt waited for or running (2 after the first failed).
    pub attempt: u32,
    pub attempts: u32,
    /// The transient pattern the last error matched.
    pub pattern: String,
    /// The last failed attempt's error message.
    pub error: String,
    /// When the attempt starts (or started): the backoff's end.
    pub next_at: DateTime<Utc>,
    /// Each failed attempt, as its `stack_retrying` told it.
    pub failed: Vec<StackRetrying>,
}

impl StackModel {
    /// Attempts made so far (1 when it was never retried).
    pub fn attempts(&self) -> u32 {
        self.retry.as_deref().map_or(1, |r| r.attempt)
    }
}

/// A stack's plan: its resources as `resource_planned` tells them, then its counts and
/// provisional reasons once `stack_planned` ends it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackPlan {
    pub resources: Vec<PlannedResource>,
    /// From `stack_planned` on.
    pub done: bool,
    pub counts: PlanCounts,
    /// Applying it changes something (resources or outputs, or it was not previewed).
    pub changes: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisional: Vec<String>,
    /// Why it was not previewed, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_preview: Option<String>,
}

impl StackPlan {
    /// Whether it deletes or replaces anything.
    pub fn destructive(&self) -> bool {
        self.counts.destroy > 0 || self.resources.iter().any(|r| r.action.is_destructive())
    }
}

/// A stack's drift check: the drifted resources as `resource_drifted` tells them, then its
/// status once `stack_drift_checked` ends it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackDrift {
    /// `None` until the check ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DriftStatus>,
    pub resources: Vec<ResourceDrifted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Why it was not checked (`unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A drift check's totals: stacks by health, and drifted resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftTotals {
    pub in_sync: u32,
    pub drifted: u32,
    pub unknown: u32,
    pub resources: u32,
}

impl DriftTotals {
    fn is_empty(&self) -> bool {
        *self == DriftTotals::default()
    }
}

/// One resource of a stack's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedResource {
    /// The tool's address, else `Type (name)`.
    pub label: String,
    pub action: PlanAction,
    /// Changed outside the tool (found by the plan), not a change it makes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
}

/// A plan run's totals: resources per action over every planned stack, and stacks by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanTotals {
    pub counts: PlanCounts,
    /// Stacks whose plan changes something.
    pub changed_stacks: u32,
    pub provisional_stacks: u32,
    pub no_preview_stacks: u32,
}

impl PlanTotals {
    fn is_empty(&self) -> bool {
        *self == PlanTotals::default()
    }

    fn add(&mut self, e: &StackPlanned) {
        let (c, n) = (&mut self.counts, &e.plan.counts);
        c.add += n.add;
        c.change += n.change;
        c.destroy += n.destroy;
        c.replace += n.replace;
        c.moved += n.moved;
        c.import += n.import;
        self.changed_stacks += u32::from(e.plan.changes);
        self.provisional_stacks += u32::from(!e.provisional.is_empty());
        self.no_preview_stacks += u32::from(e.no_preview.is_some());
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    pub total: u32,
    pub created: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated: u32,
    /// Replacements (an `updated` with action `replace`), not counted as updated.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replaced: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deleted: u32,
    pub failed: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Total announced before the stack ran, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceModel {
    pub urn: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tool's full address of the resource, when it has one (Terraform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub status: ResourceState,
    pub start_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<ErrorDetail>>,
    /// `replace` for a replacement (its state says updating/updated); views may say
    /// "Replaced".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PlanAction>,
}

impl ResourceModel {
    /// The tool's address (`terraform_data.cert`), else `Type (name)`.
    pub fn label(&self) -> String {
        match &self.address {
            Some(address) => address.clone(),
            None => format!("{} ({})", self.type_, self.name),
        }
    }
}

/// The seed's `LogEntry`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub timestamp: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    Pending,
    Running,
    Done,
}

#[derive(Debug, Clone)]
pub struct LayerModel {
    pub number: u32,
    /// Indexes into [`Model::stacks`].
    pub stacks: Vec<usize>,
    pub state: LayerState,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

fn serialize_stacks<S: Serializer>(stacks: &[StackModel], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(stacks.len()))?;
    for stack in stacks {
        map.serialize_entry(&stack.name, stack)?;
    }
    map.end()
}

fn deserialize_stacks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<StackModel>, D::Error> {
    struct Stacks;
    impl<'de> Visitor<'de> for Stacks {
        type Value = Vec<StackModel>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of stacks by name")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut stacks = Vec::new();
            while let Some((name, mut stack)) = map.next_entry::<String, StackModel>()? {
                stack.name = name;
                stacks.push(stack);
            }
            Ok(stacks)
        }
    }
    // In the order written: the model's own (dependency) order.
    d.deserialize_map(Stacks)
}

impl StackModel {
    fn new(planned: &PlannedStack) -> Self {
        StackModel {
            name: planned.name.clone(),
            status: StackState::Pending,
            layer: planned.layer,
            dependencies: planned.dependencies.clone(),
            start_time: None,
            end_time: None,
            progress_percent: 0,
            duration_seconds: None,
            current_resource: None,
            message: None,
            resources: ResourceSummary {
                expected: planned.expected_resources,
                ..Default::default()
            },
            resource_list: Vec::new(),
            logs: VecDeque::new(),
            error: None,
            blocked_by: None,
            skip_reason: None,
            rolled_back: false,
            outputs: Outputs::new(),
            estimated_seconds: planned.estimated_seconds,
            plan: None,
            drift: None,
            retry: None,
            resource_index: HashMap::new(),
        }
    }

    /// Seconds since the stack started (until it ended).
    pub fn elapsed(&self, now: DateTime<Utc>) -> f64 {
        match self.start_time {
            Some(start) => seconds_between(start, self.end_time.unwrap_or(now)),
            None => 0.0,
        }
    }

    /// A resource by URN.
    pub fn resource(&self, urn: &str) -> Option<&ResourceModel> {
        (self.find_resource(urn, "", "")).map(|i| &self.resource_list[i])
    }

    /// The position of the resource known as `urn` (else `type_` and `name`).
    fn find_resource(&self, urn: &str, type_: &str, name: &str) -> Option<usize> {
        if self.resource_index.is_empty() {
            // The latest first: a resource's events come close together.
            (0..self.resource_list.len())
                .rev()
                .find(|&i| same_resource(&self.resource_list[i], urn, type_, name))
        } else if urn.is_empty() {
            self.resource_index
                .get(&resource_key(urn, type_, name))
                .copied()
        } else {
            self.resource_index.get(urn).copied()
        }
    }

    /// Adds `resource` (not known yet) at the end.
    fn add_resource(&mut self, resource: ResourceModel) -> usize {
        let i = self.resource_list.len();
        if i == SCANNED {
            self.index_resources();
        }
        if i >= SCANNED {
            let key = resource_key(&resource.urn, &resource.type_, &resource.name);
            self.resource_index.insert(key, i);
        }
        self.resource_list.push(resource);
        i
    }

    fn index_resources(&mut self) {
        self.resource_index = (self.resource_list.iter().enumerate())
            .map(|(i, r)| (resource_key(&r.urn, &r.type_, &r.name), i))
            .collect();
    }

    fn push_log(&mut self, timestamp: DateTime<Utc>, level: LogLevel, message: String) {
        if self.logs.len() == LOG_RING {
            self.logs.pop_front();
        }
        self.logs.push_back(LogEntry {
            timestamp,
            level,
            message,
        });
    }

    /// The resources in flight (creating, updating, deleting), the longest-running first: what
    /// every view says a running stack is doing ([`crate::words::in_flight`]).
    pub fn in_flight(&self) -> Vec<&ResourceModel> {
        let mut flying: Vec<&ResourceModel> = (self.resource_list.iter())
            .filter(|r| !r.status.is_finished())
            .collect();
        flying.sort_by_key(|r| r.start_time);
        flying
    }

    /// Percent from finished resources when the total is known ahead; never 100 while running.
    fn resource_percent(&self) -> Option<u32> {
        let expected = self.resources.expected.filter(|n| *n > 0)?;
        let finished = self
            .resource_list
            .iter()
            .filter(|r| r.status.is_finished())
            .count() as u32;
        Some((finished * 100 / expected).min(99))
    }
}

/// How far a run is, defined once for every view, the file log (`deployment_progress`) and
/// the REST status (`summary.progressPercent`):
///
/// - a stack is **settled** once this run decided its outcome: deployed (destroyed, planned),
///   skipped, failed (interrupted ones too), blocked by a failed dependency, or rolled back;
///   a stack never started because the run was cancelled is not settled;
/// - **percent** = (100 × settled stacks + the percent of each running stack) / all stacks.
///   It never goes down, and reaches 100% exactly when every stack is settled — a failed run
///   whose other stacks all ended too, but not a cancelled one;
/// - beside it, `N/M stacks` counts the settled ones and says what they are:
///   `35% (4/12 stacks deployed)`, `83% (10/12 stacks: 1 deployed, 7 skipped, 2 failed)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub percent: u32,
    pub operation: Operation,
    pub stacks: StackTally,
}

impl Progress {
    /// The progress a `deployment_progress` event carries; `None` for a record older than
    /// its counts.
    pub fn of_event(e: &DeploymentProgress) -> Option<Progress> {
        Some(Progress {
            percent: e.progress_percent,
            operation: e.operation.unwrap_or_default(),
            stacks: e.stacks?,
        })
    }
}

/// Folds `event` into a model that starts with the first event's deployment: the one fold of
/// every consumer (bus, views, hub, notifier, `cloud watch`).
pub fn fold<'m>(model: &'m mut Option<Model>, event: &Event) -> &'m mut Model {
    let model = model.get_or_insert_with(|| Model::new(&event.deployment_id, &event.environment));
    model.apply(event);
    model
}

pub fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds().max(0) as f64 / 1000.0
}

impl Model {
    pub fn new(deployment_id: &str, environment: &str) -> Self {
        Model {
            deployment_id: deployment_id.to_owned(),
            environment: environment.to_owned(),
            status: DeploymentState::Initializing,
            start_time: None,
            end_time: None,
            current_layer: None,
            total_layers: 0,
            current_stack: None,
            summary: Summary::default(),
            stacks: Vec::new(),
            metrics: Metrics::default(),
            failure: None,
            cancelling: None,
            operation: Operation::Deploy,
            run_id: String::new(),
            plan_totals: PlanTotals::default(),
            drift_totals: DriftTotals::default(),
            critical_path: Vec::new(),
            sequence: 0,
            last_event_time: None,
            layers: Vec::new(),
            parallelism: None,
            resource_seconds: Default::default(),
            cancelled: false,
            index: HashMap::new(),
            running_percent_sum: 0,
            eta_at: None,
            any_rolled_back: false,
            graph: Default::default(),
        }
    }

    /// A model read back from its serialized form (e.g. a server's snapshot), its indexes and
    /// layers rebuilt, so that folding the events after it goes on as if it had seen them all.
    pub fn from_snapshot(json: &str) -> Result<Model, serde_json::Error> {
        let mut model: Model = serde_json::from_str(json)?;
        model.rebuild();
        // A snapshot's ETA is brought to the time it is read (see `server::hub`).
        model.eta_at = Some(Utc::now());
        Ok(model)
    }

    fn rebuild(&mut self) {
        self.graph.take();
        self.index.clear();
        self.layers.clear();
        self.running_percent_sum = 0;
        for i in 0..self.stacks.len() {
            let stack = &mut self.stacks[i];
            stack.resource_index.clear();
            if stack.resource_list.len() > SCANNED {
                stack.index_resources();
            }
            let (name, layer, status, percent) = (
                stack.name.clone(),
                stack.layer,
                stack.status,
                stack.progress_percent,
            );
            let (start, end) = (stack.start_time, stack.end_time);
            self.index.insert(name, i);
            self.any_rolled_back |= stack.rolled_back;
            if status == StackState::Deploying {
                self.running_percent_sum += u64::from(percent);
            }
            if layer > 0 {
                let l = self.ensure_layer(layer);
                l.stacks.push(i);
                if let Some(start) = start {
                    l.state = LayerState::Running;
                    l.start_time = Some(l.start_time.map_or(start, |t| t.min(start)));
                }
                if let Some(end) = end {
                    l.end_time = Some(l.end_time.map_or(end, |t| t.max(end)));
                }
            }
        }
        for l in 0..self.layers.len() {
            let done = self.layers[l]
                .stacks
                .iter()
                .all(|&s| self.stacks[s].status.is_finished());
            let layer = &mut self.layers[l];
            if done {
                layer.state = LayerState::Done;
            } else {
                layer.end_time = None;
            }
        }
        self.last_event_time = self.end_time;
    }

    /// A model built by folding `events` in order.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Self> {
        let mut model = None;
        for event in events {
            fold(&mut model, event);
        }
        model
    }

    pub fn stack(&self, name: &str) -> Option<&StackModel> {
        self.index.get(name).map(|&i| &self.stacks[i])
    }

    pub fn stacks_status(&self, name: &str) -> Option<StackState> {
        self.stack(name).map(|s| s.status)
    }

    pub fn stack_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// A stop was asked (Ctrl-C, a signal), whether the run ended since or not. A lost lock is
    /// no such stop: running stacks finish.
    pub fn stop_asked(&self) -> bool {
        (self.cancelling.as_ref()).is_some_and(|c| c.reason != StopReason::LockLost)
    }

    /// True once `deployment_complete` was folded in.
    pub fn is_finished(&self) -> bool {
        self.end_time.is_some()
    }

    /// The run ended and did what it set out to (deployed, destroyed, planned, checked): what
    /// exit 0 means for the commands that tell a recorded run (`status`, `replay`).
    pub fn succeeded(&self) -> bool {
        self.is_finished() && !self.cancelled && self.status == DeploymentState::Deployed
    }

    /// Seconds since the run started (until it ended).
    pub fn elapsed(&self, now: DateTime<Utc>) -> f64 {
        match self.start_time {
            Some(start) => seconds_between(start, self.end_time.unwrap_or(now)),
            None => 0.0,
        }
    }

    /// Fold one event in. Unknown stacks are added, so a partial stream still gives a model.
    pub fn apply(&mut self, event: &Event) {
        self.sequence = event.sequence;
        let at = event.timestamp;
        self.last_event_time = Some(at);
        if let Some(start) = self.start_time {
            self.metrics.duration_seconds = seconds_between(start, at).round() as u64;
        }
        match &event.data {
            EventData::DeploymentStarted(e) => {
                self.status = DeploymentState::Deploying;
                self.start_time = Some(at);
                if self.operation != e.operation {
                    self.graph.take();
                }
                self.operation = e.operation;
                self.run_id = e.run_id.clone();
                self.parallelism = e.parallelism;
                self.resource_seconds = e.resource_seconds.clone();
                self.total_layers = e.total_layers;
                self.metrics.estimated_time_remaining = Some(e.estimated_duration);
                self.eta_at = Some(at);
                self.stacks.reserve_exact(e.stacks.len());
                for planned in &e.stacks {
                    self.ensure_stack(&planned.name, Some(planned));
                }
                self.summary.total_stacks = self.summary.total_stacks.max(e.total_stacks);
            }
            EventData::DeploymentProgress(e) => {
                self.metrics.estimated_time_remaining = e.estimated_time_remaining;
                self.eta_at = Some(at);
                if let Some(path) = &e.critical_path {
                    self.critical_path.clone_from(path);
                }
            }
            EventData::DeploymentCancelling(e) => {
                self.cancelling = Some(e.clone());
            }
            EventData::DeploymentFailed(e) => {
                self.failure = Some(e.clone());
            }
            EventData::DeploymentComplete(e) => {
                self.status = e.status;
                self.end_time = Some(at);
                self.cancelled = e.cancelled;
                self.metrics.duration_seconds = e.duration_seconds;
                self.metrics.estimated_time_remaining = Some(0);
                self.critical_path.clear();
                self.current_stack = None;
                if e.status == DeploymentState::Deployed {
                    self.summary.progress_percent = 100;
                }
            }
            EventData::LayerStarted(e) => {
                let layer = self.ensure_layer(e.layer);
                layer.state = LayerState::Running;
                layer.start_time.get_or_insert(at);
                self.total_layers = self.total_layers.max(e.total_layers);
                self.current_layer = Some(self.current_layer.unwrap_or(0).max(e.layer));
            }
            EventData::LayerComplete(e) => {
                let layer = self.ensure_layer(e.layer);
                layer.state = LayerState::Done;
                layer.end_time = Some(at);
            }
            EventData::StackDeploying(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.set_status(i, StackState::Deploying);
                let stack = &mut self.stacks[i];
                stack.start_time = Some(at);
                stack.layer = e.layer;
                if stack.dependencies != e.dependencies {
                    stack.dependencies.clone_from(&e.dependencies);
                    self.graph.take();
                }
                self.current_stack = Some(e.stack.clone());
            }
            EventData::StackDestroying(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.set_status(i, StackState::Deploying);
                self.stacks[i].start_time = Some(at);
                self.current_stack = Some(e.stack.clone());
            }
            EventData::StackProgress(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.raise_percent(i, e.progress_percent.min(99));
                let stack = &mut self.stacks[i];
                if let Some(resource) = &e.current_resource {
                    stack.current_resource = Some(resource.clone());
                }
                if let Some(message) = &e.message {
                    if stack.message.as_deref() != Some(message) {
                        stack.push_log(at, LogLevel::Info, message.clone());
                    }
                    stack.message = Some(message.clone());
                }
            }
            EventData::StackDeployed(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.finish_stack(i, StackState::Deployed, at);
                let stack = &mut self.stacks[i];
                stack.duration_seconds = Some(e.duration_seconds);
                stack.outputs = e.outputs.clone();
            }
            EventData::StackDestroyed(e) => {
                let i = self.ensure_stack(&e.stack, None);
                if self.status == DeploymentState::RollingBack {
                    // Rolled back: it is as before the run, not deployed.
                    self.finish_stack(i, StackState::Pending, at);
                    self.stacks[i].rolled_back = true;
                    self.any_rolled_back = true;
                } else {
                    self.finish_stack(i, StackState::Deployed, at);
                }
                self.stacks[i].duration_seconds = Some(e.duration_seconds);
            }
            EventData::StackFailed(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.finish_stack(i, StackState::Failed, at);
                let stack = &mut self.stacks[i];
                stack.duration_seconds = Some(e.duration_seconds);
                stack.error = Some(e.error.clone());
                stack.push_log(at, LogLevel::Error, e.error.message.clone());
            }
            EventData::StackSkipped(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.finish_stack(i, StackState::Skipped, at);
                let stack = &mut self.stacks[i];
                stack.skip_reason = Some(e.reason);
                stack.outputs = e.outputs.clone();
            }
            EventData::StackBlocked(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.finish_stack(i, StackState::Blocked, at);
                self.stacks[i].blocked_by = Some(e.blocked_by.clone());
            }
            EventData::StackLog(e) => {
                let i = self.ensure_stack(&e.stack, None);
                self.stacks[i].push_log(at, e.level, e.message.clone());
            }
            EventData::StackRetrying(e) => {
                let i = self.ensure_stack(&e.stack, None);
                let stack = &mut self.stacks[i];
                let delay = chrono::Duration::milliseconds((e.delay_seconds * 1000.0) as i64);
                let mut failed = stack.retry.take().map(|r| r.failed).unwrap_or_default();
                failed.push(e.clone());
                stack.retry = Some(Box::new(StackRetry {
                    attempt: e.attempt,
                    attempts: e.attempts,
                    pattern: e.pattern.clone(),
                    error: e.error.message.clone(),
                    next_at: at + delay,
                    failed,
                }));
                // The next attempt starts afresh.
                stack.message = None;
                stack.current_resource = None;
                // The error as the tool said it; the retry itself is `retry` (the views say it).
                stack.push_log(at, LogLevel::Warn, e.error.message.clone());
            }
            EventData::ResourcePlanned(e) => {
                let i = self.ensure_stack(&e.stack, None);
                let plan = self.stacks[i].plan.get_or_insert_with(Box::default);
                let label = (e.resource.address.clone()).unwrap_or_else(|| e.resource.label());
                plan.resources.push(PlannedResource {
                    label,
                    action: e.action,
                    drift: e.drift,
                });
            }
            EventData::StackPlanned(e) => {
                let i = self.ensure_stack(&e.stack, None);
                // Previewed: done, as a deployed stack is in a deploy.
                self.finish_stack(i, StackState::Deployed, at);
                let stack = &mut self.stacks[i];
                stack.duration_seconds = Some(e.duration_seconds);
                let plan = stack.plan.get_or_insert_with(Box::default);
                plan.done = true;
                plan.counts = e.plan.counts;
                plan.changes = e.plan.changes;
                plan.provisional = e.provisional.clone();
                plan.no_preview = e.no_preview.clone();
                self.plan_totals.add(e);
            }
            EventData::ResourceDrifted(e) => {
                let i = self.ensure_stack(&e.stack, None);
                let drift = self.stacks[i].drift.get_or_insert_with(Box::default);
                drift.resources.push(e.clone());
            }
            EventData::StackDriftChecked(e) => {
                let i = self.ensure_stack(&e.stack, None);
                // Checked: done, as a deployed stack is in a deploy.
                self.finish_stack(i, StackState::Deployed, at);
                let stack = &mut self.stacks[i];
                stack.duration_seconds = Some(e.duration_seconds);
                let drift = stack.drift.get_or_insert_with(Box::default);
                drift.status = Some(e.status);
                drift.since = e.drifted_since;
                drift.reason = e.reason.clone();
                let t = &mut self.drift_totals;
                match e.status {
                    DriftStatus::InSync => t.in_sync += 1,
                    DriftStatus::Drifted => t.drifted += 1,
                    DriftStatus::Unknown => t.unknown += 1,
                }
                t.resources += e.drifted_resources;
            }
            EventData::RollbackStarted(_) => self.status = DeploymentState::RollingBack,
            EventData::RollbackComplete(e) => self.status = e.status,
            data => {
                if let Some((state, resource)) = data.as_resource() {
                    self.apply_resource(state, resource, at);
                }
            }
        }
        self.refresh_percent();
    }

    fn apply_resource(&mut self, state: ResourceState, e: &ResourceEvent, at: DateTime<Utc>) {
        let i = self.ensure_stack(&e.stack, None);
        let stack = &mut self.stacks[i];
        let (urn, type_, name) = (&e.resource.urn, &e.resource.type_, &e.resource.name);
        let r = match stack.find_resource(urn, type_, name) {
            Some(r) => r,
            None => {
                if stack.resource_list.is_empty() {
                    // As many as announced, not the doubling growth's spare room (a third of a
                    // 10,000-stack run's memory).
                    let expected = stack.resources.expected.unwrap_or(0) as usize;
                    stack.resource_list.reserve_exact(expected.min(10_000));
                }
                let r = stack.add_resource(ResourceModel {
                    urn: urn.clone(),
                    type_: type_.clone(),
                    name: name.clone(),
                    id: None,
                    address: e.resource.address.clone(),
                    status: state,
                    start_time: at,
                    duration_seconds: None,
                    error: None,
                    action: None,
                });
                stack.resources.total = stack.resources.total.max(stack.resource_list.len() as u32);
                r
            }
        };
        let resource = &mut stack.resource_list[r];
        let previous = resource.status;
        if previous.is_finished() && !state.is_finished() {
            // A new operation on a resource already done (e.g. replace = delete + create).
            resource.start_time = at;
            resource.duration_seconds = None;
        }
        resource.status = state;
        if e.resource.id.is_some() {
            resource.id = e.resource.id.clone();
        }
        if state.is_finished() {
            resource.duration_seconds = Some(
                e.duration_seconds
                    .unwrap_or_else(|| seconds_between(resource.start_time, at)),
            );
        }
        if let Some(error) = &e.error {
            resource.error = Some(Box::new(error.clone()));
        }
        if e.action.is_some() {
            resource.action = e.action;
        }
        let counter_changed = previous != state || !previous.is_finished();
        match state {
            ResourceState::Creating | ResourceState::Updating | ResourceState::Deleting => {
                // Written over the last one's text (two allocations per resource saved).
                let current = stack.resources.current.get_or_insert_with(String::new);
                current.clear();
                crate::event::write_resource_label(current, &e.resource.type_, &e.resource.name);
                let kind = stack.current_resource.get_or_insert_with(String::new);
                kind.clone_from(&e.resource.type_);
            }
            ResourceState::Created if counter_changed => {
                stack.resources.created += 1;
                self.metrics.resources_created += 1;
            }
            ResourceState::Updated if counter_changed && e.action == Some(PlanAction::Replace) => {
                stack.resources.replaced += 1
            }
            ResourceState::Updated if counter_changed => stack.resources.updated += 1,
            ResourceState::Deleted if counter_changed => stack.resources.deleted += 1,
            ResourceState::Failed if counter_changed => {
                stack.resources.failed += 1;
                self.metrics.resources_failed += 1;
                if let Some(error) = &e.error {
                    stack.push_log(
                        at,
                        LogLevel::Error,
                        format!("{}: {}", e.resource.label(), error.message),
                    );
                }
            }
            _ => {}
        }
        if state.is_finished()
            && (stack.resources.current.as_deref()).is_some_and(|c| e.resource.is_label(c))
        {
            stack.resources.current = None;
        }
        if let Some(percent) = stack.resource_percent() {
            self.raise_percent(i, percent);
        }
    }

    fn ensure_layer(&mut self, number: u32) -> &mut LayerModel {
        let pos = match self.layers.binary_search_by_key(&number, |l| l.number) {
            Ok(pos) => pos,
            Err(pos) => {
                self.layers.insert(
                    pos,
                    LayerModel {
                        number,
                        stacks: Vec::new(),
                        state: LayerState::Pending,
                        start_time: None,
                        end_time: None,
                    },
                );
                pos
            }
        };
        &mut self.layers[pos]
    }

    fn ensure_stack(&mut self, name: &str, planned: Option<&PlannedStack>) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let fallback;
        let planned = match planned {
            Some(p) => p,
            None => {
                fallback = PlannedStack {
                    name: name.to_owned(),
                    ..Default::default()
                };
                &fallback
            }
        };
        let i = self.stacks.len();
        self.stacks.push(StackModel::new(planned));
        self.graph.take();
        self.index.insert(name.to_owned(), i);
        self.summary.total_stacks = self.summary.total_stacks.max(self.stacks.len() as u32);
        if planned.layer > 0 {
            self.ensure_layer(planned.layer).stacks.push(i);
        }
        i
    }

    fn counter(&mut self, state: StackState) -> Option<&mut u32> {
        Some(match state {
            StackState::Deployed => &mut self.summary.deployed_stacks,
            StackState::Failed => &mut self.summary.failed_stacks,
            StackState::Skipped => &mut self.summary.skipped_stacks,
            StackState::Blocked => &mut self.summary.blocked_stacks,
            StackState::Deploying => &mut self.summary.running_stacks,
            StackState::Pending => return None,
        })
    }

    /// Moves a stack to `state`, keeping the summary counts in step.
    fn set_status(&mut self, i: usize, state: StackState) {
        let old = self.stacks[i].status;
        if old == state {
            return;
        }
        if let Some(n) = self.counter(old) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = self.counter(state) {
            *n += 1;
        }
        if old == StackState::Deploying {
            self.running_percent_sum -= u64::from(self.stacks[i].progress_percent);
        }
        if state == StackState::Deploying {
            self.running_percent_sum += u64::from(self.stacks[i].progress_percent);
        }
        self.stacks[i].status = state;
    }

    fn raise_percent(&mut self, i: usize, percent: u32) {
        let stack = &mut self.stacks[i];
        if percent > stack.progress_percent {
            if stack.status == StackState::Deploying {
                self.running_percent_sum += u64::from(percent - stack.progress_percent);
            }
            stack.progress_percent = percent;
        }
    }

    fn finish_stack(&mut self, i: usize, state: StackState, at: DateTime<Utc>) {
        self.set_status(i, state);
        let stack = &mut self.stacks[i];
        stack.end_time = Some(at);
        stack.resources.current = None;
        if matches!(state, StackState::Deployed | StackState::Skipped) {
            stack.progress_percent = 100;
        }
        if self.current_stack.as_deref() == Some(&stack.name) {
            self.current_stack = self
                .stacks
                .iter()
                .rev()
                .filter(|s| s.status == StackState::Deploying)
                .max_by_key(|s| s.start_time)
                .map(|s| s.name.clone());
        }
        self.refresh_layer(self.stacks[i].layer, at);
    }

    /// A layer whose stacks all finished is done even before `layer_complete` arrives.
    fn refresh_layer(&mut self, number: u32, at: DateTime<Utc>) {
        let Ok(pos) = self.layers.binary_search_by_key(&number, |l| l.number) else {
            return;
        };
        let done = self.layers[pos]
            .stacks
            .iter()
            .all(|&s| self.stacks[s].status.is_finished());
        let layer = &mut self.layers[pos];
        if done && layer.state != LayerState::Done {
            layer.state = LayerState::Done;
            layer.end_time.get_or_insert(at);
        }
    }

    /// The run's percent, by [`Progress`]'s definition; never goes down.
    fn refresh_percent(&mut self) {
        let total = u64::from(self.summary.total_stacks.max(1));
        let settled = self.tally().settled();
        self.summary.settled_stacks = settled;
        let settled = u64::from(settled);
        let percent = ((settled * 100 + self.running_percent_sum) / total).min(100) as u32;
        self.summary.progress_percent = self.summary.progress_percent.max(percent);
    }

    /// The run's stacks by where they stand.
    pub fn tally(&self) -> StackTally {
        let s = &self.summary;
        let (mut rolled_back, mut not_started) = (0, 0);
        // Stack by stack only when there is something to count: rolled-back stacks, or pending
        // ones of a finished run.
        let stacks = match self.any_rolled_back || self.is_finished() {
            true => &self.stacks[..],
            false => &[],
        };
        for stack in stacks.iter().filter(|s| s.status == StackState::Pending) {
            if stack.rolled_back {
                rolled_back += 1;
            } else if self.is_finished() {
                not_started += 1;
            }
        }
        StackTally {
            total: s.total_stacks,
            done: s.deployed_stacks,
            skipped: s.skipped_stacks,
            failed: s.failed_stacks,
            blocked: s.blocked_stacks,
            rolled_back,
            not_started,
        }
    }

    /// Where the run stands: the one figure every view, the file log and the REST status show
    /// (see [`Progress`]).
    pub fn progress(&self) -> Progress {
        Progress {
            percent: self.summary.progress_percent,
            operation: self.operation,
            stacks: self.tally(),
        }
    }

    /// The run's ETA at `now`: the one the run last carried (`deployment_progress`, or the
    /// planned duration at the start), counted down since, and never below what the slowest
    /// running stack has left ([`Model::eta_floor`]). Every consumer reads this; only the run
    /// computes it ([`Model::schedule_remaining`], smoothed by [`eta::Countdown`]).
    pub fn eta(&self, now: DateTime<Utc>) -> Option<u64> {
        // Every stack ended: nothing is left, whatever the last carried ETA counts down from.
        let all_ended =
            self.summary.total_stacks > 0 && self.summary.finished() >= self.summary.total_stacks;
        if self.is_finished() || all_ended {
            return Some(0);
        }
        Some(self.carried_eta(now)?.max(self.eta_floor(now)))
    }

    /// The ETA the run last carried, counted down to `now`, without [`Model::eta_floor`]: for
    /// the run to know when the events' ETA went stale.
    pub fn carried_eta(&self, now: DateTime<Utc>) -> Option<u64> {
        let said = self.metrics.estimated_time_remaining?;
        let since = self.eta_at.map_or(0.0, |at| seconds_between(at, now));
        Some((said as f64 - since).max(0.0).round() as u64)
    }

    /// The least the run's ETA can be at `now`: what its slowest running stack has left (the
    /// run cannot end before it; the views show that figure beside the stack), and never 0
    /// while a stack is left. 0 once every stack ended.
    pub fn eta_floor(&self, now: DateTime<Utc>) -> u64 {
        let all_ended =
            self.summary.total_stacks > 0 && self.summary.finished() >= self.summary.total_stacks;
        if self.is_finished() || all_ended {
            return 0;
        }
        let slowest = (self.running())
            .filter_map(|s| self.stack_left(s, now))
            .max();
        slowest.unwrap_or(0).max(1)
    }

    /// Whole seconds left for a running stack, as the views show them beside it (at least 1):
    /// [`Model::stack_remaining`], rounded.
    pub fn stack_left(&self, stack: &StackModel, now: DateTime<Utc>) -> Option<u64> {
        let left = self.stack_remaining(stack, now)?;
        Some((left.round() as u64).max(1))
    }

    /// Seconds left if what remains takes as long as expected: the remaining schedule simulated
    /// under the parallelism limit (see [`crate::eta`]), unsmoothed. For the run to compute
    /// the ETA it carries; consumers read [`Model::eta`].
    pub fn schedule_remaining(&self, now: DateTime<Utc>) -> f64 {
        self.schedule(now).seconds
    }

    /// The remaining schedule simulated (see [`crate::eta::schedule`]): its length and the
    /// chain it hangs on, as indexes of [`Model::stacks`].
    pub fn schedule(&self, now: DateTime<Utc>) -> eta::Schedule {
        if self.is_finished() {
            return eta::Schedule::default();
        }
        let preds = self.predecessors();
        let tasks: Vec<eta::Task> = (self.stacks.iter().zip(preds.iter()))
            .map(|(s, dependencies)| {
                let (state, seconds) = match s.status {
                    StackState::Pending if !s.rolled_back => {
                        (eta::TaskState::Todo, s.estimated_seconds)
                    }
                    StackState::Deploying => (
                        eta::TaskState::Running,
                        self.stack_remaining(s, now).unwrap_or(0.0).max(1.0),
                    ),
                    _ => (eta::TaskState::Done, 0.0),
                };
                eta::Task {
                    state,
                    seconds,
                    dependencies,
                }
            })
            .collect();
        eta::schedule(&tasks, self.parallelism)
    }

    /// What must end before each stack (by index) can start: its dependencies; in a destroy,
    /// the stacks that depend on it (they go first, and the model lists them first too).
    pub fn predecessors(&self) -> Arc<[Vec<usize>]> {
        self.graph
            .get_or_init(|| self.work_out_predecessors())
            .clone()
    }

    fn work_out_predecessors(&self) -> Arc<[Vec<usize>]> {
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); self.stacks.len()];
        for (i, s) in self.stacks.iter().enumerate() {
            for d in s.dependencies.iter().filter_map(|d| self.stack_index(d)) {
                match self.operation {
                    Operation::Destroy => preds[d].push(i),
                    _ => preds[i].push(d),
                }
            }
        }
        preds.into()
    }

    /// The `deployment_progress` event for the current state and the run's ETA.
    pub fn progress_event(&self, estimated_time_remaining: Option<u64>) -> DeploymentProgress {
        DeploymentProgress {
            progress_percent: self.summary.progress_percent,
            deployed_stacks: self.summary.deployed_stacks,
            current_layer: self.current_layer,
            current_stack: self.current_stack.clone(),
            estimated_time_remaining,
            stacks: Some(self.tally()),
            operation: Some(self.operation),
            critical_path: None,
        }
    }

    /// The stacks a stack still waits for: its dependencies not deployed or skipped yet (a
    /// destroy: the stacks that depend on it, not destroyed yet). Empty for a pending stack
    /// means it waits for a free slot (the parallelism limit).
    pub fn waiting_for(&self, stack: &str) -> Vec<&str> {
        let Some(s) = self.stack(stack) else {
            return Vec::new();
        };
        let done = |name: &str| {
            matches!(
                self.stacks_status(name),
                Some(StackState::Deployed | StackState::Skipped)
            )
        };
        match self.operation {
            Operation::Destroy => self
                .stacks
                .iter()
                .filter(|d| d.dependencies.iter().any(|x| x == stack) && !done(&d.name))
                .map(|d| d.name.as_str())
                .collect(),
            _ => s
                .dependencies
                .iter()
                .filter(|d| !done(d))
                .map(String::as_str)
                .collect(),
        }
    }

    /// Expected seconds left for a running stack, knowing what its resources took before.
    pub fn stack_remaining(&self, stack: &StackModel, now: DateTime<Utc>) -> Option<f64> {
        if stack.status != StackState::Deploying {
            return None;
        }
        if let Some(retry) = &stack.retry {
            // The backoff left, then the whole attempt (less what it has run).
            let wait = seconds_between(now, retry.next_at);
            let ran = seconds_between(retry.next_at, now);
            return Some(wait + (stack.estimated_seconds - ran).max(1.0));
        }
        let typical = |type_: &str| self.resource_seconds.get(type_).copied();
        let known: Vec<f64> = stack
            .resource_list
            .iter()
            .filter_map(|r| typical(&r.type_))
            .collect();
        let typical_resource = eta::median(known)
            .or_else(|| eta::median(self.resource_seconds.values().copied().collect()));
        let in_flight: Vec<eta::InFlight> = stack
            .resource_list
            .iter()
            .filter(|r| !r.status.is_finished())
            .map(|r| (typical(&r.type_), seconds_between(r.start_time, now)))
            .collect();
        let finished: Vec<(f64, f64)> = (stack.resource_list.iter())
            .filter(|r| r.status.is_finished() && r.error.is_none())
            .filter_map(|r| Some((r.duration_seconds?, typical(&r.type_)?)))
            .collect();
        let running = eta::Running {
            elapsed: stack.elapsed(now),
            expected: stack.estimated_seconds,
            slowdown: eta::slowdown(finished.iter().copied()),
            deviation: finished.iter().map(|(took, typical)| took - typical).sum(),
            not_started: stack.resources.expected.map_or(0, |n| {
                (n as usize).saturating_sub(stack.resource_list.len())
            }),
            typical_resource,
        };
        eta::running_remaining(running, &in_flight)
    }

    /// Stacks that are running, most recently started first.
    pub fn running(&self) -> impl Iterator<Item = &StackModel> {
        self.stacks
            .iter()
            .filter(|s| s.status == StackState::Deploying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;

    fn ev(sequence: u64, secs: i64, data: EventData) -> Event {
        Event {
            timestamp: crate::testing::at(secs as f64),
            deployment_id: "D".into(),
            ..crate::testing::event(sequence, data)
        }
    }

    fn started(stacks: &[(&str, u32, &[&str])]) -> EventData {
        EventData::DeploymentStarted(DeploymentStarted {
            total_stacks: stacks.len() as u32,
            total_layers: stacks.iter().map(|s| s.1).max().unwrap_or(0),
            estimated_duration: 10,
            stacks: stacks
                .iter()
                .map(|(n, l, d)| PlannedStack {
                    name: (*n).into(),
                    layer: *l,
                    dependencies: d.iter().map(|s| (*s).into()).collect(),
                    estimated_seconds: 10.0,
                    expected_resources: Some(2),
                })
                .collect(),
            ..Default::default()
        })
    }

    /// A stack's resources are searched while few and indexed once many: either way each
    /// event finds its resource (by URN, or by type and name without one), across the switch.
    #[test]
    fn resources_are_found_whether_searched_or_indexed() {
        let mut m = Model::new("D", "dev");
        let mut seq = 0;
        let mut send = |m: &mut Model, data: EventData| {
            seq += 1;
            m.apply(&ev(seq, 1, data));
        };
        let urnless = |i: usize| {
            let mut r = resource("a", &format!("n{i}"));
            r.resource.urn = String::new();
            r
        };
        for i in 0..SCANNED * 2 + 5 {
            let r = if i % 3 == 0 {
                urnless(i)
            } else {
                resource("a", &format!("n{i}"))
            };
            send(&mut m, EventData::ResourceCreating(r));
            // An earlier one again: found, not added.
            let back = i / 2;
            let again = if back % 3 == 0 {
                urnless(back)
            } else {
                resource("a", &format!("n{back}"))
            };
            send(&mut m, EventData::ResourceCreating(again));
        }
        for i in 0..SCANNED * 2 + 5 {
            let r = if i % 3 == 0 {
                urnless(i)
            } else {
                resource("a", &format!("n{i}"))
            };
            send(&mut m, EventData::ResourceCreated(r));
        }
        let stack = m.stack("a").unwrap();
        assert_eq!(stack.resource_list.len(), SCANNED * 2 + 5);
        assert_eq!(stack.resources.total as usize, SCANNED * 2 + 5);
        assert_eq!(stack.resources.created as usize, SCANNED * 2 + 5);
        assert!(!stack.resource_index.is_empty());
        assert_eq!(
            stack.resource("urn:a:n1").map(|r| r.name.as_str()),
            Some("n1")
        );
        let key = "aws:s3/bucket:Bucket::n3";
        assert_eq!(stack.resource(key).map(|r| r.name.as_str()), Some("n3"));
        // The same through a snapshot (indexes rebuilt).
        let back = Model::from_snapshot(&serde_json::to_string(&m).unwrap()).unwrap();
        let stack = back.stack("a").unwrap();
        assert_eq!(stack.resource(key).map(|r| r.name.as_str()), Some("n3"));
        assert_eq!(
            stack.resource("urn:a:n68").map(|r| r.name.as_str()),
            Some("n68")
        );
    }

    fn resource(stack: &str, name: &str) -> ResourceEvent {
        ResourceEvent {
            stack: stack.into(),
            resource: ResourceRef {
                urn: format!("urn:{stack}:{name}"),
                type_: "aws:s3/bucket:Bucket".into(),
                name: name.into(),
                id: None,
                address: None,
            },
            duration_seconds: None,
            error: None,
            action: None,
        }
    }

    #[test]
    fn counts_and_percent_follow_the_run() {
        let mut m = Model::new("D", "dev");
        m.apply(&ev(1, 0, started(&[("a", 1, &[]), ("b", 2, &["a"])])));
        assert_eq!(m.summary.total_stacks, 2);
        assert_eq!(m.stack("b").unwrap().status, StackState::Pending);
        m.apply(&ev(
            2,
            0,
            EventData::StackDeploying(StackDeploying {
                stack: "a".into(),
                layer: 1,
                dependencies: vec![],
            }),
        ));
        m.apply(&ev(3, 1, EventData::ResourceCreating(resource("a", "x"))));
        m.apply(&ev(4, 2, EventData::ResourceCreated(resource("a", "x"))));
        assert_eq!(m.stack("a").unwrap().progress_percent, 50);
        assert_eq!(m.summary.progress_percent, 25);
        assert_eq!(m.metrics.resources_created, 1);
        let x = &m.stack("a").unwrap().resource_list[0];
        assert_eq!(x.status, ResourceState::Created);
        assert_eq!(x.duration_seconds, Some(1.0));
        m.apply(&ev(
            5,
            3,
            EventData::StackDeployed(StackDeployed {
                stack: "a".into(),
                status: StackState::Deployed,
                resources_created: 1,
                resources_updated: 0,
                duration_seconds: 3,
                outputs: Outputs::new(),
                fingerprint: None,
                resources_replaced: None,
                resources_deleted: None,
            }),
        ));
        assert_eq!(m.summary.deployed_stacks, 1);
        assert_eq!(m.summary.running_stacks, 0);
        assert_eq!(m.summary.progress_percent, 50);
        // b alone remains: its estimate is the ETA.
        assert_eq!(m.schedule_remaining(m.start_time.unwrap()), 10.0);
    }

    #[test]
    fn the_eta_is_the_one_the_run_carried_counted_down() {
        let mut m = Model::new("D", "dev");
        assert_eq!(m.eta(ev(0, 0, started(&[])).timestamp), None);
        m.apply(&ev(1, 0, started(&[("a", 1, &[])])));
        let at = |secs| ev(0, secs, started(&[])).timestamp;
        // The planned duration, from the start.
        assert_eq!(m.eta(at(4)), Some(6));
        m.apply(&ev(
            2,
            2,
            EventData::DeploymentProgress(m.progress_event(Some(100))),
        ));
        assert_eq!(m.eta(at(12)), Some(90));
        assert_eq!(m.eta(at(12)), Some(90), "a read changes nothing");
        // Counted down past its end while a stack is left: never 0 while the run goes on.
        assert_eq!(m.eta(at(500)), Some(1));
        // Its one stack ended: nothing is left, before the run's next progress says so.
        m.apply(&ev(
            3,
            13,
            EventData::StackDeployed(StackDeployed {
                stack: "a".into(),
                status: StackState::Deployed,
                resources_created: 0,
                resources_updated: 0,
                duration_seconds: 11,
                outputs: Outputs::new(),
                fingerprint: None,
                resources_replaced: None,
                resources_deleted: None,
            }),
        ));
        assert_eq!(m.eta(at(13)), Some(0));
    }

    #[test]
    fn the_eta_is_never_below_what_a_running_stack_has_left() {
        let mut m = Model::new("D", "dev");
        m.apply(&ev(1, 0, started(&[("a", 1, &[])])));
        m.apply(&ev(
            2,
            0,
            EventData::StackDeploying(StackDeploying {
                stack: "a".into(),
                layer: 1,
                dependencies: vec![],
            }),
        ));
        // The run said 2s at 0s; `a` (expected to take 10s) has 8s left at 2s.
        m.apply(&ev(
            3,
            0,
            EventData::DeploymentProgress(m.progress_event(Some(2))),
        ));
        let now = ev(0, 2, started(&[])).timestamp;
        let left = m.stack_remaining(m.stack("a").unwrap(), now).unwrap();
        assert_eq!(left, 8.0);
        assert_eq!(m.eta(now), Some(8));
    }

    /// A stack waiting to retry has the backoff left, then a whole attempt, to go: the ETA
    /// counts the wait; the views say the retry with the seconds left.
    #[test]
    fn a_retrying_stack_counts_its_wait_and_then_its_new_attempt() {
        let mut m = Model::new("D", "dev");
        m.apply(&ev(1, 0, started(&[("a", 1, &[])])));
        m.apply(&ev(
            2,
            0,
            EventData::StackDeploying(StackDeploying {
                stack: "a".into(),
                layer: 1,
                dependencies: vec![],
            }),
        ));
        // `a` (expected to take 10s) fails at 4s and waits 30s.
        m.apply(&ev(
            3,
            4,
            EventData::StackRetrying(StackRetrying {
                stack: "a".into(),
                attempt: 2,
                attempts: 3,
                pattern: "ThrottlingException".into(),
                error: ErrorDetail {
                    code: ErrorCode::CommandFailed,
                    message: "ThrottlingException: Rate exceeded".into(),
                    details: None,
                },
                delay_seconds: 30.0,
            }),
        ));
        let stack = m.stack("a").unwrap();
        assert_eq!(stack.attempts(), 2);
        assert_eq!(stack.status, StackState::Deploying);
        let now = ev(0, 12, started(&[])).timestamp;
        assert_eq!(m.stack_remaining(stack, now), Some(22.0 + 10.0));
        assert_eq!(
            crate::words::doing_now(stack, now).as_deref(),
            Some("↻ retry 2/3 in 22s: ThrottlingException: Rate exceeded")
        );
        // Its second attempt, 3s in.
        let now = ev(0, 37, started(&[])).timestamp;
        assert_eq!(m.stack_remaining(stack, now), Some(7.0));
        assert_eq!(
            crate::words::doing_now(stack, now).as_deref(),
            Some("↻ attempt 2/3")
        );
        // The failed attempt's error is in its logs (the retry itself is `retry`).
        let last = stack.logs.back().unwrap();
        assert_eq!(last.message, "ThrottlingException: Rate exceeded");
        assert_eq!(last.level, LogLevel::Warn);
    }

    #[test]
    fn logs_are_a_bounded_ring() {
        let mut m = Model::new("D", "dev");
        m.apply(&ev(1, 0, started(&[("a", 1, &[])])));
        for n in 0..(LOG_RING as u64 + 50) {
            m.apply(&ev(
                n + 2,
                0,
                EventData::StackLog(StackLog {
                    stack: "a".into(),
                    level: LogLevel::Info,
                    message: format!("line {n}"),
                }),
            ));
        }
        let logs = &m.stack("a").unwrap().logs;
        assert_eq!(logs.len(), LOG_RING);
        assert_eq!(
            logs.back().unwrap().message,
            format!("line {}", LOG_RING + 49)
        );
    }

    #[test]
    fn a_snapshot_read_back_folds_on_like_the_original() {
        let mut m = Model::new("D", "dev");
        m.apply(&ev(1, 0, started(&[("b", 1, &[]), ("a", 2, &["b"])])));
        let deploying = |seq, stack: &str, layer| {
            ev(
                seq,
                1,
                EventData::StackDeploying(StackDeploying {
                    stack: stack.into(),
                    layer,
                    dependencies: vec![],
                }),
            )
        };
        m.apply(&deploying(2, "b", 1));
        m.apply(&ev(3, 1, EventData::ResourceCreating(resource("b", "x"))));
        let mut back = Model::from_snapshot(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(
            back.stacks.iter().map(|s| &s.name).collect::<Vec<_>>(),
            ["b", "a"],
            "stacks keep their order"
        );
        assert_eq!(back.layers.len(), 2);
        assert_eq!(back.layers[0].state, LayerState::Running);
        for e in [
            ev(4, 2, EventData::ResourceCreated(resource("b", "x"))),
            ev(5, 2, EventData::ResourceCreating(resource("b", "y"))),
        ] {
            m.apply(&e);
            back.apply(&e);
        }
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&m).unwrap()
        );
        assert_eq!(back.stack("b").unwrap().resources.created, 1);
        assert_eq!(back.summary.progress_percent, m.summary.progress_percent);
    }

    #[test]
    fn serializes_with_the_seed_names() {
        let mut m = Model::new("D", "dev");
        m.apply(&ev(1, 0, started(&[("a", 1, &[])])));
        let v = serde_json::to_value(&m).unwrap();
        for key in [
            "deploymentId",
            "status",
            "startTime",
            "totalLayers",
            "summary",
            "metrics",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["summary"]["totalStacks"], 1);
        assert_eq!(v["stacks"]["a"]["status"], "pending");
        assert_eq!(v["stacks"]["a"]["resources"]["total"], 0);
    }

    #[test]
    fn a_plan_folds_into_each_stacks_plan_and_the_runs_totals() {
        let mut m = Model::new("D", "dev");
        let mut start = started(&[("a", 1, &[]), ("b", 2, &["a"])]);
        if let EventData::DeploymentStarted(s) = &mut start {
            s.operation = Operation::Plan;
        }
        m.apply(&ev(1, 0, start));
        for (seq, stack) in [(2, "a"), (5, "b")] {
            m.apply(&ev(
                seq,
                1,
                EventData::StackDeploying(StackDeploying {
                    stack: stack.into(),
                    layer: 1,
                    dependencies: vec![],
                }),
            ));
        }
        let planned = |action| {
            EventData::ResourcePlanned(ResourcePlanned {
                stack: "a".into(),
                resource: resource("a", "logs").resource,
                action,
                destructive: PlanAction::is_destructive(action),
                drift: false,
                previous_address: None,
            })
        };
        m.apply(&ev(3, 1, planned(PlanAction::Replace)));
        let mut counts = PlanCounts::default();
        counts.count(PlanAction::Replace);
        m.apply(&ev(
            4,
            2,
            EventData::StackPlanned(StackPlanned {
                stack: "a".into(),
                plan: PlanSummary {
                    counts,
                    changes: true,
                    known_after_apply: vec!["arn".into()],
                    ..Default::default()
                },
                provisional: vec![],
                no_preview: None,
                duration_seconds: 1,
            }),
        ));
        m.apply(&ev(
            6,
            3,
            EventData::StackPlanned(StackPlanned {
                stack: "b".into(),
                plan: PlanSummary {
                    changes: true,
                    ..Default::default()
                },
                provisional: vec!["depends on a.arn (known after apply)".into()],
                no_preview: Some("its executor has no preview".into()),
                duration_seconds: 0,
            }),
        ));
        let a = m.stack("a").unwrap();
        assert_eq!(a.status, StackState::Deployed);
        let plan = a.plan.as_deref().unwrap();
        assert!(plan.done && plan.destructive());
        assert_eq!(plan.resources[0].action, PlanAction::Replace);
        assert_eq!(plan.resources[0].label, "aws:s3/bucket:Bucket (logs)");
        let b = m.stack("b").unwrap().plan.as_deref().unwrap();
        assert_eq!(b.provisional.len(), 1);
        assert!(b.no_preview.is_some());
        assert_eq!(m.plan_totals.counts, counts);
        assert_eq!(m.plan_totals.changed_stacks, 2);
        assert_eq!(m.plan_totals.provisional_stacks, 1);
        assert_eq!(m.plan_totals.no_preview_stacks, 1);
        assert_eq!(m.summary.deployed_stacks, 2);
        // A server's snapshot carries the plan.
        let back = Model::from_snapshot(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.plan_totals, m.plan_totals);
        assert_eq!(
            back.stack("b")
                .unwrap()
                .plan
                .as_ref()
                .unwrap()
                .provisional
                .len(),
            1
        );
    }
}
