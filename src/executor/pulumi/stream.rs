//! The engine's event log: a file Pulumi appends to, read in complete lines, and its events
//! turned into resource updates, logs and the failure in Pulumi's own words.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::{MAX_EVENT_LINE, STACK_TYPE};
use crate::event::{
    DriftedAttribute, ErrorCode, ErrorDetail, LogLevel, PlanAction, PlanCounts, ResourceState,
};
use crate::executor::process::{self};
use crate::executor::{error_code, failure, ExecutorUpdate};

// ---------------------------------------------------------------------------------------------
// The event log.

/// Reads a file another process appends to, in complete lines.
pub(super) struct LineTail {
    pub(super) file: std::fs::File,
    /// The start of a line not finished yet.
    partial: Vec<u8>,
    /// Lines read so far (for messages).
    pub(super) lines: usize,
    /// The current line grew past [`MAX_EVENT_LINE`]: dropped up to its end.
    skipping: bool,
}

impl LineTail {
    pub(super) fn open(path: &Path) -> std::io::Result<LineTail> {
        Ok(LineTail {
            file: std::fs::File::open(path)?,
            partial: Vec::new(),
            lines: 0,
            skipping: false,
        })
    }

    /// The complete lines written since the last read, numbered; with `last`, also a final
    /// line without its newline (the writer is gone). Problems come as messages.
    pub(super) fn read(&mut self, last: bool) -> (Vec<(usize, Vec<u8>)>, Vec<String>) {
        let mut problems = Vec::new();
        let mut bytes = Vec::new();
        if let Err(e) = self.file.read_to_end(&mut bytes) {
            problems.push(format!("could not read Pulumi's event log: {e}"));
        }
        let mut lines = Vec::new();
        let mut rest = bytes.as_slice();
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.lines += 1;
            if self.skipping {
                self.skipping = false;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                lines.push((self.lines, line));
            }
            rest = &rest[end + 1..];
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_EVENT_LINE {
                problems.push(format!(
                    "skipped line {} of Pulumi's event log: longer than {} MiB",
                    self.lines + 1,
                    MAX_EVENT_LINE >> 20
                ));
                self.partial = Vec::new();
                self.skipping = true;
            }
        }
        if last && !self.partial.is_empty() {
            self.lines += 1;
            lines.push((self.lines, std::mem::take(&mut self.partial)));
        }
        (lines, problems)
    }
}

/// One line of the event log: an `apitype.EngineEvent` (Pulumi's
/// `sdk/go/common/apitype/events.go`). Exactly one kind is set; unknown kinds read as none.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EngineEvent {
    resource_pre_event: Option<StepEvent>,
    res_outputs_event: Option<StepEvent>,
    res_op_failed_event: Option<FailedEvent>,
    diagnostic_event: Option<DiagnosticEvent>,
    summary_event: Option<SummaryEvent>,
    cancel_event: Option<serde_json::Value>,
    stdout_event: Option<TextEvent>,
    policy_event: Option<PolicyEvent>,
    error_event: Option<ErrorEvent>,
}

#[derive(Debug, Deserialize)]
struct StepEvent {
    pub(super) metadata: StepMetadata,
    /// Set for the steps of a preview: nothing happened.
    #[serde(default)]
    planning: bool,
}

#[derive(Debug, Deserialize)]
struct FailedEvent {
    pub(super) metadata: StepMetadata,
}

#[derive(Debug, Deserialize)]
struct StepMetadata {
    pub(super) op: String,
    pub(super) urn: String,
    #[serde(rename = "type", default)]
    pub(super) type_: String,
    #[serde(default)]
    pub(super) old: Option<StepState>,
    #[serde(default)]
    pub(super) new: Option<StepState>,
    /// The properties that differ (a refresh: changed outside Pulumi since the last update).
    #[serde(default)]
    pub(super) diffs: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct StepState {
    #[serde(default)]
    pub(super) id: Option<String>,
    /// Pending deletion: the old copy of a resource replaced (now, or in an earlier update).
    #[serde(default)]
    delete: bool,
    /// The Stack resource's outputs are the stack's.
    #[serde(default)]
    pub(super) outputs: Option<serde_json::Map<String, serde_json::Value>>,
}

impl StepMetadata {
    /// The resource's id after the step (before it, for a delete).
    pub(super) fn id(&self) -> Option<String> {
        let id = |s: &Option<StepState>| {
            s.as_ref()
                .and_then(|s| s.id.clone())
                .filter(|id| !id.is_empty())
        };
        id(&self.new).or_else(|| id(&self.old))
    }

    pub(super) fn type_(&self) -> String {
        if self.type_.is_empty() {
            urn_type(&self.urn).to_owned()
        } else {
            self.type_.clone()
        }
    }
}

#[derive(Debug, Deserialize)]
struct DiagnosticEvent {
    #[serde(default)]
    pub(super) urn: String,
    #[serde(default)]
    pub(super) message: String,
    /// `debug`, `info`, `info#err` (a program's stderr), `warning` or `error`.
    #[serde(default)]
    severity: String,
    /// A status line meant to be replaced by the next one.
    #[serde(default)]
    ephemeral: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryEvent {
    #[serde(default)]
    maybe_corrupt: bool,
    #[serde(default)]
    duration_seconds: f64,
    #[serde(default)]
    is_preview: bool,
    /// Resources per step op (`create`, `update`, `same`, …), the Stack resource included.
    #[serde(default)]
    resource_changes: HashMap<String, u32>,
}

#[derive(Debug, Deserialize)]
struct TextEvent {
    #[serde(default)]
    pub(super) message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyEvent {
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    policy_name: String,
    #[serde(default)]
    policy_pack_name: String,
    #[serde(default)]
    enforcement_level: String,
}

#[derive(Debug, Deserialize)]
struct ErrorEvent {
    #[serde(default)]
    pub(super) error: String,
}

/// `urn:pulumi:<stack>::<project>::<parent$type>::<name>` → its type (without parents).
fn urn_type(urn: &str) -> &str {
    urn.split("::")
        .nth(2)
        .and_then(|qualified| qualified.rsplit('$').next())
        .unwrap_or("")
}

/// … and its name (which may itself hold `::`).
fn urn_name(urn: &str) -> &str {
    urn.splitn(4, "::").nth(3).unwrap_or(urn)
}

/// The stack's own resource and providers are bookkeeping, not the stack's resources.
pub(super) fn counts_as_resource(type_: &str) -> bool {
    type_ != STACK_TYPE && !type_.starts_with("pulumi:providers:")
}

/// What a step does to a resource, as `cloud` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Update,
    Delete,
    /// One of the steps of a replacement, which is shown as one resource being updated.
    Replace,
    /// Nothing changes (`same`, `read`, `refresh`, …): done, without events.
    Quiet,
}

fn step(op: &str) -> Step {
    match op {
        "create" | "import" => Step::Create,
        "update" => Step::Update,
        "delete" => Step::Delete,
        "replace" | "create-replacement" | "delete-replaced" | "import-replacement" => {
            Step::Replace
        }
        _ => Step::Quiet,
    }
}

/// A `delete-replaced` step of no replacement under way: the old copy of a resource replaced in
/// an earlier update (left pending deletion), deleted now. Pulumi says "deleted original". A
/// delete-before-create replacement starts with its `delete-replaced`, whose old copy is not
/// marked pending deletion.
fn lone_delete(m: &StepMetadata, replacing: &HashMap<String, Replacement>) -> bool {
    m.op == "delete-replaced"
        && !replacing.contains_key(&m.urn)
        && m.old.as_ref().is_some_and(|old| old.delete)
}

const REPLACE_OPS: [&str; 4] = [
    "replace",
    "create-replacement",
    "delete-replaced",
    "import-replacement",
];

#[derive(Debug, Default)]
struct Replacement {
    /// The new resource exists; its id.
    pub(super) created: bool,
    pub(super) id: Option<String>,
    /// The old one is gone.
    deleted: bool,
}

/// Resources per outcome, for the summary line.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    pub(super) created: u32,
    updated: u32,
    replaced: u32,
    deleted: u32,
    unchanged: u32,
    pub(super) failed: u32,
}

impl Counts {
    pub(super) fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.created, "created"),
            (self.updated, "updated"),
            (self.replaced, "replaced"),
            (self.deleted, "deleted"),
            (self.unchanged, "unchanged"),
            (self.failed, "failed"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "no resources".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Turns engine events into updates. Steps are keyed by (urn, op): a resource's outputs
/// registered twice (components do) or a step never started report nothing.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// Steps started and not ended, with their start's order.
    in_flight: HashMap<(String, String), usize>,
    started: usize,
    replacing: HashMap<String, Replacement>,
    /// The last error diagnostic about each resource, one line.
    resource_errors: HashMap<String, String>,
    /// Every error diagnostic, one line each, in order: the first is the root cause.
    pub(super) errors: Vec<String>,
    /// Resources the stack is expected to walk through (its previous state), for the percent.
    pub(super) expected: Option<u32>,
    finished: u32,
    pub(super) percent: u32,
    counts: Counts,
    /// `cancelEvent` was read: the stream is over.
    pub(super) ended: bool,
    /// Set when following a `preview`: what it plans.
    pub(super) plan: Option<Previewed>,
    /// Set when following a `refresh --preview-only` (a drift check): the resources reported
    /// drifted, by URN.
    pub(super) drift: Option<HashSet<String>>,
}

/// What a `pulumi preview` event log says will change.
#[derive(Debug, Default)]
pub(super) struct Previewed {
    /// From `summaryEvent.resourceChanges`: Pulumi's own count, the Stack resource included.
    pub(super) counts: PlanCounts,
    pub(super) summarized: bool,
    /// (urn, op) of the steps reported: components register outputs twice.
    seen: HashSet<(String, String)>,
    /// Stack outputs the preview changes, and those with a value only the update will know.
    pub(super) changed_outputs: Vec<String>,
    pub(super) known_after_apply: Vec<String>,
}

/// The value Pulumi's engine gives an output it cannot know during a preview.
const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// A preview step's op as a planned action; `None` for steps that change nothing (`same`,
/// `refresh`) and for the halves of a replacement, which its `replace` step stands for.
fn plan_action(op: &str) -> Option<PlanAction> {
    Some(match op {
        "create" => PlanAction::Create,
        "update" => PlanAction::Update,
        "delete" => PlanAction::Delete,
        "replace" => PlanAction::Replace,
        "import" => PlanAction::Import,
        "read" => PlanAction::Read,
        _ => return None,
    })
}

impl Previewed {
    /// A step of the preview: the resource planned, once per (urn, op).
    fn step(&mut self, m: &StepMetadata, out: &mut Vec<ExecutorUpdate>) {
        if m.type_() == STACK_TYPE {
            self.stack_outputs(m);
        }
        let Some(action) = plan_action(&m.op) else {
            return;
        };
        if !counts_as_resource(&m.type_()) || !self.seen.insert((m.urn.clone(), m.op.clone())) {
            return;
        }
        out.push(ExecutorUpdate::Planned {
            urn: m.urn.clone(),
            type_: m.type_(),
            name: urn_name(&m.urn).to_owned(),
            address: None,
            action,
            drift: false,
            previous_address: None,
        });
    }

    /// The Stack resource's outputs as planned against its current ones: which change, and
    /// which the update alone will know. Values are compared, never kept.
    fn stack_outputs(&mut self, m: &StepMetadata) {
        let Some(new) = m.new.as_ref().and_then(|n| n.outputs.as_ref()) else {
            return;
        };
        if new.is_empty() && m.op == "same" {
            // The step's start: outputs are registered later.
            return;
        }
        let old = m.old.as_ref().and_then(|o| o.outputs.as_ref());
        let mut names: Vec<&String> = new
            .keys()
            .chain(old.into_iter().flat_map(|o| o.keys()))
            .collect();
        names.sort();
        names.dedup();
        self.changed_outputs.clear();
        self.known_after_apply.clear();
        for name in names {
            let (before, after) = (old.and_then(|o| o.get(name)), new.get(name));
            if after.is_some_and(holds_unknown) {
                self.known_after_apply.push(name.clone());
            }
            if before.map(without_markers) != after.map(without_markers) {
                self.changed_outputs.push(name.clone());
            }
        }
    }

    fn summary(&mut self, changes: &HashMap<String, u32>) {
        let n = |op: &str| changes.get(op).copied().unwrap_or(0);
        // As Terraform counts them: a replacement adds one and destroys one.
        self.counts = PlanCounts {
            add: n("create") + n("replace"),
            change: n("update"),
            destroy: n("delete") + n("replace"),
            replace: n("replace"),
            moved: 0,
            import: n("import"),
        };
        self.summarized = true;
    }
}

/// Whether a planned value is, or holds, the engine's unknown.
fn holds_unknown(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s == UNKNOWN,
        serde_json::Value::Array(items) => items.iter().any(holds_unknown),
        serde_json::Value::Object(map) => map.values().any(holds_unknown),
        _ => false,
    }
}

/// A value without the `@isPulumiResource` markers the engine adds to resources it outputs.
fn without_markers(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Array(items) => items.iter().map(without_markers).collect(),
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| k.as_str() != "@isPulumiResource")
            .map(|(k, v)| (k.clone(), without_markers(v)))
            .collect(),
        other => other.clone(),
    }
}

impl Tracker {
    pub(super) fn new(expected: Option<u32>) -> Tracker {
        Tracker {
            expected,
            ..Tracker::default()
        }
    }

    /// Follows a `preview`: its steps are resources planned.
    pub(super) fn previewing() -> Tracker {
        Tracker {
            plan: Some(Previewed::default()),
            ..Tracker::default()
        }
    }

    /// Follows a `refresh --preview-only`: its steps that found differences are drifted
    /// resources.
    pub(super) fn checking_drift() -> Tracker {
        Tracker {
            drift: Some(HashSet::new()),
            ..Tracker::default()
        }
    }

    /// A refresh's step: a resource changed outside Pulumi (`diffs`: which properties, valued
    /// from its outputs before and after) or gone (`delete`), reported once.
    fn drift_step(&mut self, m: &StepMetadata, out: &mut Vec<ExecutorUpdate>) {
        let Some(seen) = self.drift.as_mut() else {
            return;
        };
        if !counts_as_resource(&m.type_()) {
            return;
        }
        let action = match m.op.as_str() {
            // Gone: the refresh found no resource where the state had one.
            "delete" => PlanAction::Delete,
            "refresh" if m.new.is_none() && m.old.is_some() => PlanAction::Delete,
            "refresh" | "update" if !m.diffs.is_empty() => PlanAction::Update,
            _ => return,
        };
        if !seen.insert(m.urn.clone()) {
            return;
        }
        let value = |state: &Option<StepState>, key: &str| {
            state
                .as_ref()
                .and_then(|s| s.outputs.as_ref())
                .and_then(|o| o.get(key))
                .map(without_markers)
        };
        let attributes = m
            .diffs
            .iter()
            .map(|key| {
                let (before, after) = (value(&m.old, key), value(&m.new, key));
                // Pulumi shows a secret as `[secret]`: never a value to compare or show.
                let sensitive = [&before, &after]
                    .iter()
                    .any(|v| v.as_ref().is_some_and(|v| v == crate::executor::SECRET));
                DriftedAttribute {
                    name: key.clone(),
                    before: before.filter(|_| !sensitive),
                    after: after.filter(|_| !sensitive),
                    sensitive,
                }
            })
            .collect();
        out.push(ExecutorUpdate::Drifted {
            urn: m.urn.clone(),
            type_: m.type_(),
            name: urn_name(&m.urn).to_owned(),
            address: None,
            action,
            attributes,
        });
    }

    pub(super) fn apply(&mut self, event: EngineEvent) -> Vec<ExecutorUpdate> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if let Some(e) = event.resource_pre_event {
            self.started(e, &mut out);
        }
        if let Some(e) = event.res_outputs_event {
            self.finished(e, &mut out);
        }
        if let Some(e) = event.res_op_failed_event {
            self.failed(e.metadata, &mut out);
        }
        if let Some(d) = event.diagnostic_event {
            self.diagnostic(d, &mut out);
        }
        if let Some(s) = event.summary_event {
            self.summary(s, &mut out);
        }
        if let Some(e) = event.stdout_event {
            for line in clean_lines(&e.message) {
                out.push(log(LogLevel::Info, line));
            }
        }
        if let Some(p) = event.policy_event {
            let level = match p.enforcement_level.as_str() {
                "mandatory" => LogLevel::Error,
                "advisory" | "warning" => LogLevel::Warn,
                _ => LogLevel::Info,
            };
            let message = one_line(&clean_lines(&p.message));
            out.push(log(
                level,
                format!(
                    "policy `{}` ({}): {message}",
                    p.policy_name, p.policy_pack_name
                ),
            ));
        }
        if let Some(e) = event.error_event {
            let message = one_line(&clean_lines(&e.error));
            if !message.is_empty() {
                self.errors.push(message.clone());
                out.push(log(LogLevel::Error, message));
            }
        }
        if event.cancel_event.is_some() {
            self.ended = true;
        }
        out
    }

    fn started(&mut self, e: StepEvent, out: &mut Vec<ExecutorUpdate>) {
        // A refresh's step is told when it ends, with the properties as they are now.
        if self.drift.is_some() {
            return;
        }
        if let Some(plan) = self.plan.as_mut() {
            plan.step(&e.metadata, out);
            return;
        }
        let m = e.metadata;
        if e.planning || !counts_as_resource(&m.type_()) {
            return;
        }
        self.started += 1;
        self.in_flight
            .insert((m.urn.clone(), m.op.clone()), self.started);
        let state = match step(&m.op) {
            Step::Create => ResourceState::Creating,
            Step::Update => ResourceState::Updating,
            Step::Delete => ResourceState::Deleting,
            Step::Replace if lone_delete(&m, &self.replacing) => ResourceState::Deleting,
            Step::Replace => {
                if self.replacing.contains_key(&m.urn) {
                    return;
                }
                self.replacing.insert(m.urn.clone(), Replacement::default());
                out.push(replacement(resource(
                    ResourceState::Updating,
                    &m.urn,
                    m.type_(),
                    None,
                    None,
                )));
                return;
            }
            Step::Quiet => return,
        };
        out.push(resource(state, &m.urn, m.type_(), None, None));
    }

    fn finished(&mut self, e: StepEvent, out: &mut Vec<ExecutorUpdate>) {
        if self.drift.is_some() {
            return self.drift_step(&e.metadata, out);
        }
        if let Some(plan) = self.plan.as_mut() {
            plan.step(&e.metadata, out);
            return;
        }
        let m = e.metadata;
        if e.planning
            || !counts_as_resource(&m.type_())
            || self
                .in_flight
                .remove(&(m.urn.clone(), m.op.clone()))
                .is_none()
        {
            return;
        }
        let (state, counter) = match step(&m.op) {
            Step::Create => (ResourceState::Created, &mut self.counts.created),
            Step::Update => (ResourceState::Updated, &mut self.counts.updated),
            Step::Delete => (ResourceState::Deleted, &mut self.counts.deleted),
            Step::Replace if lone_delete(&m, &self.replacing) => {
                (ResourceState::Deleted, &mut self.counts.deleted)
            }
            Step::Quiet => {
                self.counts.unchanged += 1;
                self.step_done(out);
                return;
            }
            Step::Replace => {
                let r = self.replacing.entry(m.urn.clone()).or_default();
                match m.op.as_str() {
                    "create-replacement" | "import-replacement" => {
                        r.created = true;
                        r.id = m.id();
                    }
                    "delete-replaced" => r.deleted = true,
                    _ => {}
                }
                if r.created && r.deleted && !self.replace_in_flight(&m.urn) {
                    self.replaced(&m.urn, m.type_(), out);
                }
                return;
            }
        };
        *counter += 1;
        out.push(resource(state, &m.urn, m.type_(), m.id(), None));
        self.step_done(out);
    }

    /// The steps of replacements that arrived alone finish by themselves once nothing of theirs
    /// is in flight: a new resource that exists is the replacement done (the old one was kept,
    /// or there was none); an old one deleted alone is a deletion.
    fn settle_replacements(&mut self, out: &mut Vec<ExecutorUpdate>) {
        let mut done: Vec<(String, bool)> = self
            .replacing
            .iter()
            .filter(|(urn, r)| (r.created || r.deleted) && !self.replace_in_flight(urn))
            .map(|(urn, r)| (urn.clone(), r.created))
            .collect();
        done.sort();
        for (urn, created) in done {
            let type_ = urn_type(&urn).to_owned();
            if created {
                self.replaced(&urn, type_, out);
            } else {
                self.replacing.remove(&urn);
                self.counts.deleted += 1;
                out.push(resource(ResourceState::Deleted, &urn, type_, None, None));
                self.step_done(out);
            }
        }
    }

    /// The engine stopped before its end (interrupted, or failed elsewhere): what was in flight
    /// was interrupted, as Pulumi shows it (`creating (interrupted)`), and fails saying so rather
    /// than with another resource's error.
    pub(super) fn interrupted(&mut self) -> Vec<ExecutorUpdate> {
        let mut out = Vec::new();
        if self.plan.is_some() {
            return out;
        }
        self.settle_replacements(&mut out);
        let mut steps: Vec<((String, String), usize)> = self.in_flight.drain().collect();
        steps.sort_by_key(|(_, order)| *order);
        let mut told = HashSet::new();
        for ((urn, op), _) in steps {
            let type_ = urn_type(&urn).to_owned();
            let doing = match step(&op) {
                Step::Create if op == "import" => "importing",
                Step::Create => "creating",
                Step::Update => "updating",
                Step::Delete => "deleting",
                Step::Replace if !self.replacing.contains_key(&urn) => "deleting",
                Step::Replace => "replacing",
                Step::Quiet => continue,
            };
            if !told.insert(urn.clone()) {
                continue;
            }
            let replacing = self.replacing.remove(&urn).is_some();
            let error = failure(
                ErrorCode::Cancelled,
                format!("interrupted while {doing}"),
                None,
            );
            self.counts.failed += 1;
            let failed = resource(ResourceState::Failed, &urn, type_, None, Some(error));
            out.push(if replacing {
                replacement(failed)
            } else {
                failed
            });
        }
        out
    }

    fn replace_in_flight(&self, urn: &str) -> bool {
        REPLACE_OPS.iter().any(|op| {
            self.in_flight
                .contains_key(&(urn.to_owned(), (*op).to_owned()))
        })
    }

    fn replaced(&mut self, urn: &str, type_: String, out: &mut Vec<ExecutorUpdate>) {
        let id = self.replacing.remove(urn).and_then(|r| r.id);
        self.counts.replaced += 1;
        out.push(replacement(resource(
            ResourceState::Updated,
            urn,
            type_,
            id,
            None,
        )));
        self.step_done(out);
    }

    fn failed(&mut self, m: StepMetadata, out: &mut Vec<ExecutorUpdate>) {
        // The stack resource's failure is the stack's: its diagnostics say why.
        if !counts_as_resource(&m.type_()) {
            return;
        }
        self.in_flight.remove(&(m.urn.clone(), m.op.clone()));
        let replacing = self.replacing.remove(&m.urn).is_some();
        let message = self
            .resource_errors
            .get(&m.urn)
            .cloned()
            .unwrap_or_else(|| format!("Pulumi reported that `{}` failed", m.op));
        let error = failure(error_code(&message, ErrorCode::PulumiError), message, None);
        self.counts.failed += 1;
        let failed = resource(ResourceState::Failed, &m.urn, m.type_(), None, Some(error));
        out.push(if replacing {
            replacement(failed)
        } else {
            failed
        });
        self.step_done(out);
    }

    fn diagnostic(&mut self, d: DiagnosticEvent, out: &mut Vec<ExecutorUpdate>) {
        let lines = clean_lines(&d.message);
        if lines.is_empty() {
            return;
        }
        let level = match d.severity.as_str() {
            "error" => LogLevel::Error,
            "warning" => LogLevel::Warn,
            "debug" => LogLevel::Debug,
            _ if d.ephemeral => LogLevel::Debug,
            _ => LogLevel::Info,
        };
        let level = if level == LogLevel::Error {
            let message = one_line(&lines);
            if !d.urn.is_empty() {
                self.resource_errors.insert(d.urn.clone(), message.clone());
            }
            self.errors.push(message);
            // Said once: by the resource's failure and the stack's error (the first is its
            // message, the others its details). The whole text stays in the logs, as detail.
            LogLevel::Debug
        } else {
            level
        };
        // About a resource: say which; the stack's own (the program's output) needs no label.
        let label = (!d.urn.is_empty() && counts_as_resource(urn_type(&d.urn)))
            .then(|| format!("{} ({}): ", urn_type(&d.urn), urn_name(&d.urn)));
        for (i, line) in lines.into_iter().enumerate() {
            let message = match (&label, i) {
                (Some(label), 0) => format!("{label}{line}"),
                _ => line,
            };
            out.push(log(level, message));
        }
    }

    fn summary(&mut self, s: SummaryEvent, out: &mut Vec<ExecutorUpdate>) {
        if let Some(plan) = self.plan.as_mut() {
            plan.summary(&s.resource_changes);
            return;
        }
        if s.is_preview {
            return;
        }
        self.settle_replacements(out);
        out.push(log(
            LogLevel::Info,
            format!(
                "Pulumi finished: {} in {}s",
                self.counts.describe(),
                s.duration_seconds
            ),
        ));
        if s.maybe_corrupt {
            out.push(log(
                LogLevel::Warn,
                "Pulumi reports that the stack's state may be corrupt (maybeCorrupt): check it \
                 with `pulumi stack export` and repair it with `pulumi refresh`",
            ));
        }
    }

    /// One more step done: the percent, when the expected count is known.
    fn step_done(&mut self, out: &mut Vec<ExecutorUpdate>) {
        self.finished += 1;
        if let Some(expected) = self.expected.filter(|n| *n > 0) {
            let percent = (self.finished * 100 / expected).min(99);
            if percent > self.percent {
                self.percent = percent;
                out.push(ExecutorUpdate::Progress {
                    percent: Some(percent),
                    message: None,
                    current_resource: None,
                });
            }
        }
    }
}

pub(super) fn resource(
    state: ResourceState,
    urn: &str,
    type_: String,
    id: Option<String>,
    error: Option<ErrorDetail>,
) -> ExecutorUpdate {
    ExecutorUpdate::Resource {
        state,
        urn: urn.to_owned(),
        type_,
        name: urn_name(urn).to_owned(),
        id,
        error,
        // Pulumi's URN is its full address already.
        address: None,
        action: None,
    }
}

/// The update as one of a replacement's.
fn replacement(mut update: ExecutorUpdate) -> ExecutorUpdate {
    if let ExecutorUpdate::Resource { action, .. } = &mut update {
        *action = Some(PlanAction::Replace);
    }
    update
}

pub(super) fn log(level: LogLevel, message: impl Into<String>) -> ExecutorUpdate {
    ExecutorUpdate::Log {
        level,
        message: message.into(),
    }
}

/// A message's lines without Pulumi's colour directives (`<{%fg 1%}>`), terminal control
/// sequences and blank lines around it.
fn clean_lines(raw: &str) -> Vec<String> {
    let mut text = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("<{%") {
        text.push_str(&rest[..start]);
        rest = match rest[start..].find("%}>") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    text.push_str(rest);
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| process::clean(l.as_bytes()).trim_end().to_owned())
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let first = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    lines.drain(..first);
    lines
}

/// A diagnostic as one line: Go's "1 error occurred:" header and bullets dropped, and no more
/// than its first three lines (the rest, a stack trace say, is in the stack's logs).
fn one_line(lines: &[String]) -> String {
    let is_header = |l: &str| {
        let words: Vec<&str> = l.split_whitespace().collect();
        matches!(words.as_slice(), [n, "error" | "errors", occurred] if n.parse::<u32>().is_ok() && occurred.trim_end_matches(':') == "occurred")
    };
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !is_header(l))
        .map(|l| l.trim_start_matches("* ").trim())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    fn events(lines: &[&str]) -> (Tracker, Vec<ExecutorUpdate>) {
        let mut tracker = Tracker::new(Some(4));
        let mut out = Vec::new();
        for line in lines {
            out.extend(tracker.apply(serde_json::from_str(line).unwrap()));
        }
        (tracker, out)
    }

    fn step_line(kind: &str, op: &str, name: &str, id: &str) -> String {
        format!(
            r#"{{"sequence":1,"timestamp":1,"{kind}":{{"metadata":{{"op":"{op}","urn":"urn:pulumi:dev::p::aws:s3/bucket:Bucket::{name}","type":"aws:s3/bucket:Bucket","old":null,"new":{{"id":"{id}"}}}}}}}}"#
        )
    }

    pub(in crate::executor::pulumi) fn states(
        out: &[ExecutorUpdate],
    ) -> Vec<(ResourceState, String, Option<String>)> {
        out.iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Resource {
                    state, name, id, ..
                } => Some((*state, name.clone(), id.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_replacement_is_one_resource_updated_once_both_halves_are_done() {
        let lines = [
            step_line("resourcePreEvent", "create-replacement", "b", ""),
            step_line("resOutputsEvent", "create-replacement", "b", "b-2"),
            step_line("resourcePreEvent", "replace", "b", ""),
            step_line("resOutputsEvent", "replace", "b", "b-2"),
            step_line("resourcePreEvent", "create", "c", ""),
            step_line("resOutputsEvent", "create", "c", "c-1"),
            step_line("resourcePreEvent", "delete-replaced", "b", ""),
            step_line("resOutputsEvent", "delete-replaced", "b", ""),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (tracker, out) = events(&lines);
        assert_eq!(
            states(&out),
            vec![
                (ResourceState::Updating, "b".into(), None),
                (ResourceState::Creating, "c".into(), None),
                (ResourceState::Created, "c".into(), Some("c-1".into())),
                (ResourceState::Updated, "b".into(), Some("b-2".into())),
            ]
        );
        assert_eq!(tracker.counts.replaced, 1);
        assert_eq!(tracker.counts.created, 1);
        let percents: Vec<u32> = out
            .iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Progress { percent, .. } => *percent,
                _ => None,
            })
            .collect();
        assert_eq!(percents, vec![25, 50]);
    }

    #[test]
    fn outputs_registered_twice_or_never_started_report_nothing() {
        let lines = [
            step_line("resourcePreEvent", "same", "a", "a-1"),
            step_line("resOutputsEvent", "same", "a", "a-1"),
            step_line("resOutputsEvent", "same", "a", "a-1"),
            step_line("resOutputsEvent", "create", "ghost", "g"),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (tracker, out) = events(&lines);
        assert!(states(&out).is_empty(), "{out:?}");
        assert_eq!(tracker.counts.unchanged, 1);
    }

    #[test]
    fn a_failed_step_carries_the_resources_own_error() {
        let diag = r#"{"diagnosticEvent":{"urn":"urn:pulumi:dev::p::aws:s3/bucket:Bucket::b","prefix":"<{%fg 1%}>error: <{%reset%}>","message":"<{%reset%}>1 error occurred:\n\t* creating bucket: AccessDenied: Access Denied\n<{%reset%}>\n","color":"raw","severity":"error"}}"#;
        let lines = [
            step_line("resourcePreEvent", "create", "b", ""),
            diag.to_owned(),
            step_line("resOpFailedEvent", "create", "b", ""),
            r#"{"cancelEvent":{}}"#.to_owned(),
            step_line("resourcePreEvent", "create", "late", ""),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (tracker, out) = events(&lines);
        let failed = out
            .iter()
            .find_map(|u| match u {
                ExecutorUpdate::Resource {
                    state: ResourceState::Failed,
                    error,
                    ..
                } => error.clone(),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            failed.message,
            "creating bucket: AccessDenied: Access Denied"
        );
        assert_eq!(failed.code, ErrorCode::InsufficientPermissions);
        assert_eq!(tracker.errors, vec![failed.message.clone()]);
        let logs: Vec<&str> = out
            .iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Log { message, .. } => Some(message.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(logs[0], "aws:s3/bucket:Bucket (b): 1 error occurred:");
        assert!(tracker.ended);
        assert!(
            !states(&out).iter().any(|(_, name, _)| name == "late"),
            "nothing is read after cancelEvent"
        );
    }

    #[test]
    fn the_stack_and_providers_are_not_resources() {
        assert!(!counts_as_resource("pulumi:pulumi:Stack"));
        assert!(!counts_as_resource("pulumi:providers:aws"));
        assert!(counts_as_resource("my:component:Child"));
        let urn = "urn:pulumi:dev::eks::eks:index:Cluster$aws:eks/cluster:Cluster::a::b";
        assert_eq!(urn_type(urn), "aws:eks/cluster:Cluster");
        assert_eq!(urn_name(urn), "a::b");
    }

    #[test]
    fn messages_lose_colour_directives_and_bullets() {
        let lines = clean_lines(
            "<{%reset%}>update failed: step application failed: not implemented<{%reset%}>\n",
        );
        assert_eq!(
            lines,
            vec!["update failed: step application failed: not implemented"]
        );
        assert_eq!(
            one_line(&clean_lines("2 errors occurred:\n\t* one\n\t* two\n\n")),
            "one two"
        );
        assert_eq!(
            one_line(&clean_lines(
                "Running program '/p' failed with an unhandled exception:\nError: boom\n    at f (/p/index.ts:3:9)\n    at g (/p/index.ts:9:1)\n"
            )),
            "Running program '/p' failed with an unhandled exception: Error: boom at f (/p/index.ts:3:9)"
        );
    }

    #[test]
    fn the_line_tail_returns_complete_lines_only() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut writer = std::fs::File::create(&path).unwrap();
        let mut tail = LineTail::open(&path).unwrap();
        writer.write_all(b"{\"a\":1}\n{\"b\":").unwrap();
        let (lines, _) = tail.read(false);
        assert_eq!(lines, vec![(1, b"{\"a\":1}".to_vec())]);
        writer.write_all(b"2}\n{\"c\"").unwrap();
        let (lines, _) = tail.read(false);
        assert_eq!(lines, vec![(2, b"{\"b\":2}".to_vec())]);
        let (lines, _) = tail.read(true);
        assert_eq!(lines, vec![(3, b"{\"c\"".to_vec())]);
    }

    /// A recorded event log (`tests/fixtures/pulumi/`) followed as a preview: what it
    /// planned, and each resource planned as (name, action).
    fn preview_of(log: &str) -> (Previewed, Vec<(String, PlanAction)>) {
        let mut tracker = Tracker::previewing();
        let mut out = Vec::new();
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            out.extend(tracker.apply(serde_json::from_str(line).unwrap()));
        }
        let planned = out
            .iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Planned { name, action, .. } => Some((name.clone(), *action)),
                _ => None,
            })
            .collect();
        (tracker.plan.unwrap(), planned)
    }

    fn recorded(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pulumi")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    /// The stream's `summaryEvent.resourceChanges`.
    fn changes_of(log: &str) -> HashMap<String, u32> {
        let line = log.lines().find(|l| l.contains("summaryEvent")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        serde_json::from_value(v["summaryEvent"]["resourceChanges"].clone()).unwrap()
    }

    /// 57 resources the same and one updated (its step told twice: once).
    #[test]
    fn a_preview_with_one_update_plans_that_update_once() {
        let log = recorded("template-body.json");
        assert_eq!(changes_of(&log)["update"], 1);
        let (plan, planned) = preview_of(&log);
        assert_eq!(planned, [("cluster-nodes".to_owned(), PlanAction::Update)]);
        assert_eq!(
            plan.counts,
            PlanCounts {
                change: 1,
                ..Default::default()
            }
        );
        assert!(plan.summarized);
        assert!(
            plan.changed_outputs.is_empty(),
            "{:?}",
            plan.changed_outputs
        );
    }

    /// Everything the same; the outputs differ only by the engine's `@isPulumiResource`
    /// markers, which are no change.
    #[test]
    fn a_preview_without_changes_plans_nothing() {
        let log = recorded("stack-output-resource-diff.json");
        assert_eq!(changes_of(&log).keys().collect::<Vec<_>>(), ["same"]);
        let (plan, planned) = preview_of(&log);
        assert_eq!(planned, []);
        assert!(!plan.counts.any());
        assert!(
            plan.changed_outputs.is_empty(),
            "{:?}",
            plan.changed_outputs
        );
        assert!(plan.known_after_apply.is_empty());
    }

    /// In the engine's shape: a create, a replacement (its halves are the replace step's), a
    /// delete, and stack outputs of which one only the update will know.
    #[test]
    fn a_preview_counts_replacements_as_pulumi_does_and_finds_unknown_outputs() {
        let step = |kind: &str, op: &str, name: &str| {
            format!(
                r#"{{"{kind}":{{"metadata":{{"op":"{op}","urn":"urn:pulumi:D-dev::p::aws:s3/bucket:Bucket::{name}","type":"aws:s3/bucket:Bucket"}},"planning":true}}}}"#
            )
        };
        let stack = r#"{"resOutputsEvent":{"metadata":{"op":"update","urn":"urn:pulumi:D-dev::p::pulumi:pulumi:Stack::p-D-dev","type":"pulumi:pulumi:Stack","old":{"outputs":{"name":"a","kept":1}},"new":{"outputs":{"name":"04da6b54-80e4-46f7-96ec-b56ff0331ba9","kept":1,"added":"x"}}},"planning":true}}"#;
        let log = [
            step("resourcePreEvent", "create", "logs"),
            step("resourcePreEvent", "replace", "data"),
            step("resourcePreEvent", "create-replacement", "data"),
            step("resourcePreEvent", "delete-replaced", "data"),
            step("resourcePreEvent", "delete", "old"),
            step("resourcePreEvent", "same", "kept"),
            stack.to_owned(),
            r#"{"summaryEvent":{"maybeCorrupt":false,"durationSeconds":1,"resourceChanges":{"create":1,"replace":1,"delete":1,"same":2,"update":1},"isPreview":true}}"#.to_owned(),
            r#"{"cancelEvent":{}}"#.to_owned(),
        ]
        .join("\n");
        let (plan, planned) = preview_of(&log);
        assert_eq!(
            planned,
            [
                ("logs".to_owned(), PlanAction::Create),
                ("data".to_owned(), PlanAction::Replace),
                ("old".to_owned(), PlanAction::Delete),
            ]
        );
        assert_eq!(
            plan.counts,
            PlanCounts {
                add: 2,
                change: 1,
                destroy: 2,
                replace: 1,
                ..Default::default()
            }
        );
        assert_eq!(plan.changed_outputs, ["added", "name"]);
        assert_eq!(plan.known_after_apply, ["name"]);
    }
}
