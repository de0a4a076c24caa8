//! The `-json` stream (Terraform's machine-readable UI, one JSON message a line) turned into
//! resource events, progress, logs, outputs and the failure in the tool's own words.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;

use super::{CODE, TAIL};
use crate::event::{ErrorCode, ErrorDetail, LogLevel, PlanAction, PlanCounts, ResourceState};
use crate::executor::{error_code, failure, root_cause, Deployed, ExecutorUpdate, Updates, SECRET};

/// One message of the machine-readable UI. Everything is optional: a message of an unknown
/// or changed shape is ignored, never fatal.
#[derive(Debug, Default, Deserialize)]
struct Message {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(rename = "@message", default)]
    message: String,
    hook: Option<Hook>,
    change: Option<Change>,
    diagnostic: Option<Diagnostic>,
    outputs: Option<serde_json::Map<String, Json>>,
    /// `change_summary`.
    changes: Option<ChangeSummary>,
}

/// `change_summary.changes`: what the plan (or apply) counts. Terraform says `remove` for
/// destroy.
#[derive(Debug, Default, Deserialize)]
struct ChangeSummary {
    #[serde(default)]
    add: u32,
    #[serde(default)]
    change: u32,
    #[serde(default)]
    remove: u32,
    #[serde(default)]
    import: u32,
}

#[derive(Debug, Deserialize)]
struct Hook {
    resource: Option<Address>,
    #[serde(default)]
    action: String,
    id_value: Option<Json>,
}

#[derive(Debug, Deserialize)]
struct Change {
    resource: Option<Address>,
    #[serde(default)]
    action: String,
    /// Where a moved resource was.
    previous_resource: Option<Address>,
    /// Set when the resource is imported.
    importing: Option<Json>,
}

/// `hook.resource` / `change.resource`.
#[derive(Debug, Deserialize)]
struct Address {
    /// The full address: module path, type, name and key (`module.a.aws_s3_bucket.b["x"]`).
    addr: String,
    #[serde(default)]
    resource_type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Diagnostic {
    #[serde(default)]
    severity: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    detail: String,
    address: Option<String>,
}

/// A resource as reported: the URN is the address.
#[derive(Debug, Clone)]
struct Resource {
    urn: String,
    type_: String,
    address: String,
    /// One half (create or delete) of a planned replacement.
    replacement: bool,
}

/// A replacement's halves done so far, and its new object's id.
#[derive(Debug, Default)]
struct Halves {
    started: bool,
    created: bool,
    deleted: bool,
    id: Option<String>,
}

/// Follows the `-json` stream of one apply or destroy and reports it as it comes.
pub(super) struct JsonStream {
    /// The program's name, for hints (`tofu force-unlock`).
    tool: String,
    path: PathBuf,
    /// Operations planned; a replacement counts two (destroy and create). For the percent.
    planned: u32,
    finished: u32,
    /// Addresses planned to be replaced.
    replacing: HashSet<String>,
    /// Replacements under way: one resource updating until both its halves are done.
    replacements: HashMap<String, Halves>,
    in_flight: HashMap<String, Resource>,
    /// Resources that errored, waiting for their diagnostic: Terraform prints diagnostics
    /// only once every operation in flight has ended.
    errored: Vec<Resource>,
    /// Error diagnostics, in order.
    pub(super) errors: Vec<Diagnostic>,
    /// Error diagnostics that name no resource (indexes into `errors`), for errored
    /// resources whose own never came.
    unclaimed: VecDeque<usize>,
    refreshing: bool,
    /// Outputs as shown (sensitive ones masked) and the real values of sensitive ones.
    outputs: BTreeMap<String, Json>,
    pub(super) secret_outputs: BTreeMap<String, Json>,
    /// Sensitive outputs the stream gave without their value.
    pub(super) sensitive_unknown: Vec<String>,
    /// The last lines of stdout that were not JSON (an error printed outside the stream).
    plain_lines: VecDeque<String>,
    /// Set when following a `plan`: what it plans, reported as it comes.
    pub(super) plan: Option<Planned>,
}

/// What a `plan -json` stream says will change.
#[derive(Debug, Default)]
pub(super) struct Planned {
    /// Counted from `planned_change`, then as `change_summary` says (the tool's own count).
    pub(super) counts: PlanCounts,
    /// Resources `resource_drift` found changed outside the tool.
    pub(super) drifted: u32,
    /// Outputs the plan creates, changes or removes (`outputs` with an `action`).
    pub(super) changed_outputs: Vec<String>,
    /// Whether `change_summary` came (a plan that ended well always sends it).
    pub(super) summarized: bool,
    /// A drift check's plan: changes are kept here (address, type, action, drift) instead of
    /// being reported as planned.
    pub(super) kept: Option<Vec<(String, String, PlanAction, bool)>>,
}

impl JsonStream {
    pub(super) fn new(tool: &str, path: &Path) -> JsonStream {
        JsonStream {
            tool: tool.to_owned(),
            path: path.to_owned(),
            planned: 0,
            finished: 0,
            replacing: HashSet::new(),
            replacements: HashMap::new(),
            in_flight: HashMap::new(),
            errored: Vec::new(),
            errors: Vec::new(),
            unclaimed: VecDeque::new(),
            refreshing: false,
            outputs: BTreeMap::new(),
            secret_outputs: BTreeMap::new(),
            sensitive_unknown: Vec::new(),
            plain_lines: VecDeque::new(),
            plan: None,
        }
    }

    /// Follows a `plan -json`: planned changes and drift are reported as resources planned.
    pub(super) fn planning(tool: &str, path: &Path) -> JsonStream {
        JsonStream {
            plan: Some(Planned::default()),
            ..JsonStream::new(tool, path)
        }
    }

    /// Follows the `plan -json` of a drift check: changes are kept, not reported.
    pub(super) fn checking_drift(tool: &str, path: &Path) -> JsonStream {
        JsonStream {
            plan: Some(Planned {
                kept: Some(Vec::new()),
                ..Planned::default()
            }),
            ..JsonStream::new(tool, path)
        }
    }

    /// One line of stdout.
    pub(super) fn line(&mut self, text: &str, updates: &Updates) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let Ok(json) = serde_json::from_str::<Json>(text) else {
            updates.log(LogLevel::Info, text);
            push_tail(&mut self.plain_lines, text.to_owned());
            return;
        };
        let Ok(message) = serde_json::from_value::<Message>(json) else {
            return;
        };
        self.message(message, updates);
    }

    fn message(&mut self, m: Message, updates: &Updates) {
        match m.kind.as_str() {
            "planned_change" | "resource_drift" if self.plan.is_some() => {
                self.planned_change(&m, updates);
            }
            "change_summary" if self.plan.is_some() => {
                if let (Some(plan), Some(c)) = (self.plan.as_mut(), &m.changes) {
                    // The tool's count is the one to show; replacements and moves are ours.
                    plan.counts.add = c.add;
                    plan.counts.change = c.change;
                    plan.counts.destroy = c.remove;
                    plan.counts.import = c.import;
                    plan.summarized = true;
                }
                if !m.message.is_empty() {
                    updates.log(LogLevel::Info, m.message);
                }
            }
            "planned_change" => {
                if let Some(change) = &m.change {
                    self.planned += match change.action.as_str() {
                        "create" | "update" | "delete" => 1,
                        "replace" => 2,
                        _ => 0,
                    };
                    if change.action == "replace" {
                        if let Some(r) = &change.resource {
                            self.replacing.insert(r.addr.clone());
                        }
                    }
                }
            }
            "apply_start" => self.apply_start(&m, updates),
            "apply_progress" => {
                if let Some(Hook {
                    resource: Some(r), ..
                }) = &m.hook
                {
                    updates.send(ExecutorUpdate::Progress {
                        percent: None,
                        message: Some(m.message.clone()).filter(|s| !s.is_empty()),
                        current_resource: Some(r.resource_type.clone()),
                    });
                }
            }
            "apply_complete" | "apply_errored" => self.apply_end(&m, updates),
            "diagnostic" => {
                if let Some(d) = m.diagnostic {
                    self.diagnostic(d, updates);
                }
            }
            "outputs" => self.outputs(m.outputs.unwrap_or_default()),
            "change_summary" | "resource_drift" | "provision_progress" if !m.message.is_empty() => {
                updates.log(LogLevel::Info, m.message);
            }
            "log" => {
                for line in m.message.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    updates.log(LogLevel::Info, line);
                }
            }
            "refresh_start" if !self.refreshing => {
                self.refreshing = true;
                updates.send(ExecutorUpdate::Progress {
                    percent: None,
                    message: Some("Refreshing state...".into()),
                    current_resource: None,
                });
            }
            "version" => updates.log(LogLevel::Debug, m.message),
            // Newer and quieter types (refresh_complete, provision_start, ephemeral_op_*, …).
            _ => {}
        }
    }

    /// `planned_change` (what the plan will do) or `resource_drift` (what changed outside the
    /// tool since the last run), as a resource planned.
    fn planned_change(&mut self, m: &Message, updates: &Updates) {
        let (Some(change), Some(plan)) = (&m.change, self.plan.as_mut()) else {
            return;
        };
        let Some(r) = &change.resource else { return };
        let drift = m.kind == "resource_drift";
        let action = match (change.action.as_str(), change.importing.is_some()) {
            ("create", _) => PlanAction::Create,
            ("update", _) => PlanAction::Update,
            ("delete" | "remove", _) => PlanAction::Delete,
            ("replace", _) => PlanAction::Replace,
            ("noop", true) => PlanAction::Import,
            ("move", _) => PlanAction::Move,
            ("read", _) => PlanAction::Read,
            ("noop", false) => PlanAction::NoOp,
            // `forget` (a `removed` block: out of the state, not destroyed) and newer actions:
            // said in the tool's words rather than guessed at.
            _ => {
                if !m.message.is_empty() {
                    updates.log(LogLevel::Info, m.message.clone());
                }
                return;
            }
        };
        let previous_address = change
            .previous_resource
            .as_ref()
            .map(|p| p.addr.clone())
            .filter(|p| *p != r.addr);
        if drift {
            plan.drifted += 1;
        } else {
            plan.counts.count(action);
            if previous_address.is_some() && action != PlanAction::Move {
                plan.counts.moved += 1;
            }
            if change.importing.is_some() && action != PlanAction::Import {
                plan.counts.import += 1;
            }
        }
        if let Some(kept) = plan.kept.as_mut() {
            kept.push((r.addr.clone(), r.resource_type.clone(), action, drift));
            return;
        }
        updates.send(ExecutorUpdate::Planned {
            urn: r.addr.clone(),
            type_: r.resource_type.clone(),
            name: r.addr.clone(),
            address: Some(r.addr.clone()),
            action,
            drift,
            previous_address,
        });
    }

    /// The resource a hook is about, or `None` for actions that change nothing
    /// (`read` of a data source, `noop`, `forget`, …). The create and the delete of a planned
    /// replacement (either order) are one resource replaced, as `plan` counts it.
    fn resource(&self, hook: &Hook) -> Option<(Resource, ResourceState, ResourceState)> {
        let r = hook.resource.as_ref()?;
        let (start, end) = match hook.action.as_str() {
            "create" => (ResourceState::Creating, ResourceState::Created),
            "update" => (ResourceState::Updating, ResourceState::Updated),
            "delete" => (ResourceState::Deleting, ResourceState::Deleted),
            "replace" => (ResourceState::Updating, ResourceState::Updated),
            _ => return None,
        };
        let replacement =
            matches!(hook.action.as_str(), "create" | "delete") && self.replacing.contains(&r.addr);
        let (start, end) = if replacement {
            (ResourceState::Updating, ResourceState::Updated)
        } else {
            (start, end)
        };
        Some((
            Resource {
                urn: r.addr.clone(),
                type_: r.resource_type.clone(),
                address: r.addr.clone(),
                replacement,
            },
            start,
            end,
        ))
    }

    fn apply_start(&mut self, m: &Message, updates: &Updates) {
        let Some(hook) = &m.hook else { return };
        let Some((resource, start, _)) = self.resource(hook) else {
            // Reads of data sources and the like: worth a line, not a resource.
            if !m.message.is_empty() {
                updates.send(ExecutorUpdate::Progress {
                    percent: None,
                    message: Some(m.message.clone()),
                    current_resource: None,
                });
            }
            return;
        };
        if resource.replacement {
            let halves = self
                .replacements
                .entry(resource.address.clone())
                .or_default();
            if std::mem::replace(&mut halves.started, true) {
                // Its second half: the resource is shown updating already.
                return;
            }
        }
        // Updates and deletes name the object they change.
        let id = hook.id_value.as_ref().map(plain_value);
        send(updates, &resource, start, id, None);
        self.in_flight.insert(resource.urn.clone(), resource);
    }

    fn apply_end(&mut self, m: &Message, updates: &Updates) {
        let Some(hook) = &m.hook else { return };
        let Some((resource, _, end)) = self.resource(hook) else {
            return;
        };
        self.in_flight.remove(&resource.urn);
        self.finished += 1;
        if m.kind == "apply_errored" {
            self.replacements.remove(&resource.address);
            // resource_failed waits for the diagnostic that says why.
            self.errored.push(resource);
            updates.send(ExecutorUpdate::Progress {
                percent: self.percent(),
                message: Some(m.message.clone()).filter(|s| !s.is_empty()),
                current_resource: None,
            });
            return;
        }
        let mut id = hook.id_value.as_ref().map(plain_value);
        let done = if resource.replacement {
            let halves = self
                .replacements
                .entry(resource.address.clone())
                .or_default();
            if hook.action == "create" {
                halves.created = true;
                halves.id = id.take();
            } else {
                halves.deleted = true;
            }
            let both = halves.created && halves.deleted;
            if both {
                id = self
                    .replacements
                    .remove(&resource.address)
                    .and_then(|h| h.id);
            }
            both
        } else {
            true
        };
        if done {
            send(updates, &resource, end, id, None);
        }
        if let Some(percent) = self.percent() {
            updates.send(ExecutorUpdate::Progress {
                percent: Some(percent),
                message: None,
                current_resource: None,
            });
        }
    }

    fn percent(&self) -> Option<u32> {
        (self.planned > 0).then(|| (self.finished * 100 / self.planned).min(100))
    }

    fn diagnostic(&mut self, d: Diagnostic, updates: &Updates) {
        if d.severity != "error" {
            let mut text = diagnostic_text(&d);
            if let Some(address) = d.address.as_deref().filter(|a| !a.is_empty()) {
                text = format!("{address}: {text}");
            }
            updates.log(LogLevel::Warn, text);
            return;
        }
        // Terraform repeats some (`execution halted` once per stopped branch of its graph).
        if self
            .errors
            .iter()
            .any(|e| (&e.summary, &e.detail, &e.address) == (&d.summary, &d.detail, &d.address))
        {
            return;
        }
        let claimed = d
            .address
            .as_deref()
            .and_then(|a| self.errored.iter().position(|r| r.address == a));
        match claimed {
            Some(i) => {
                let resource = self.errored.remove(i);
                let error = self.error_of(&d);
                send(updates, &resource, ResourceState::Failed, None, Some(error));
            }
            None => {
                // Not about a resource that failed: say it now, unless it is the stack's
                // own error (the first), which `stack_failed` tells.
                if d.address.is_none() {
                    self.unclaimed.push_back(self.errors.len());
                }
                if !self.errors.is_empty() {
                    updates.log(LogLevel::Error, diagnostic_text(&d));
                }
            }
        }
        self.errors.push(d);
    }

    fn outputs(&mut self, outputs: serde_json::Map<String, Json>) {
        // During the plan, `outputs` lists the planned changes of outputs (with `action`,
        // without values); the one that counts comes after the apply.
        if outputs.values().any(|o| o.get("action").is_some()) {
            if let Some(plan) = self.plan.as_mut() {
                plan.changed_outputs = outputs
                    .iter()
                    .filter(|(_, o)| {
                        o.get("action").and_then(Json::as_str).unwrap_or("noop") != "noop"
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
            }
            return;
        }
        self.outputs.clear();
        self.secret_outputs.clear();
        self.sensitive_unknown.clear();
        for (name, output) in outputs {
            let sensitive = output.get("sensitive").and_then(Json::as_bool) == Some(true);
            let value = output.get("value").cloned();
            if sensitive {
                self.outputs
                    .insert(name.clone(), Json::String(SECRET.into()));
                match value {
                    Some(value) => {
                        self.secret_outputs.insert(name, value);
                    }
                    None => self.sensitive_unknown.push(name),
                }
            } else {
                self.outputs.insert(name, value.unwrap_or(Json::Null));
            }
        }
    }

    /// The error a diagnostic describes: a held state lock, access denied, or else.
    fn error_of(&self, d: &Diagnostic) -> ErrorDetail {
        if is_lock(d) {
            return self.lock_error(d);
        }
        let message = diagnostic_text(d);
        let mut details = Vec::new();
        if let Some(address) = &d.address {
            details.push(format!("at {address}"));
        }
        if d.detail.trim().contains('\n') {
            details.push(d.detail.trim().to_owned());
        }
        failure(
            error_code(&message, CODE),
            message,
            (!details.is_empty()).then(|| details.join("\n")),
        )
    }

    /// `LOCKED`, naming who holds the lock, since when, and how to release a stale one.
    fn lock_error(&self, d: &Diagnostic) -> ErrorDetail {
        let field = |name: &str| {
            d.detail.lines().find_map(|l| {
                let value = l.trim().strip_prefix(name)?.strip_prefix(':')?.trim();
                (!value.is_empty()).then(|| value.to_owned())
            })
        };
        let summary = d.summary.trim();
        let message = match field("Who") {
            Some(who) => {
                let mut about = Vec::new();
                if let Some(op) = field("Operation") {
                    about.push(op);
                }
                if let Some(created) = field("Created") {
                    about.push(format!("since {}", without_fraction(&created)));
                }
                if let Some(id) = field("ID") {
                    about.push(format!("lock ID {id}"));
                }
                if about.is_empty() {
                    format!("{summary}: held by {who}")
                } else {
                    format!("{summary}: held by {who} ({})", about.join(", "))
                }
            }
            None => diagnostic_text(d),
        };
        let mut details = d.detail.trim().to_owned();
        if let Some(id) = field("ID") {
            details.push_str(&format!(
                "\n\nWhen no run holds it any more, release it with `{} force-unlock {id}` in {}",
                self.tool,
                self.path.display()
            ));
        }
        failure(ErrorCode::Locked, message, Some(details))
    }

    /// Why the run failed: the first error diagnostic; without one, the tool's error line.
    pub(super) fn failure(&self, how: &str, stderr: &VecDeque<String>) -> ErrorDetail {
        let mut details = vec![how.to_owned()];
        let mut error = match self.errors.first() {
            Some(first) => {
                let error = self.error_of(first);
                details.extend(error.details.clone());
                for other in self.errors.iter().skip(1) {
                    details.push(format!("also: {}", diagnostic_text(other)));
                }
                error
            }
            None => {
                let cause = text_diagnostic(stderr.iter().map(String::as_str))
                    .or_else(|| text_diagnostic(self.plain_lines.iter().map(String::as_str)))
                    .or_else(|| root_cause(stderr.iter().map(String::as_str)))
                    .or_else(|| root_cause(self.plain_lines.iter().map(String::as_str)))
                    .or_else(|| stderr.back().cloned());
                match cause {
                    Some(message) => failure(error_code(&message, CODE), message, None),
                    None => failure(CODE, format!("{how} without printing an error"), None),
                }
            }
        };
        // The tail, without the lines the message already says (a text diagnostic's summary).
        let tail: Vec<&str> = stderr
            .iter()
            .map(String::as_str)
            .filter(|l| {
                let said = l.trim().trim_start_matches('│').trim();
                let said = said.strip_prefix("Error:").unwrap_or(said).trim();
                said.is_empty() || !error.message.contains(said)
            })
            .collect();
        if tail.iter().any(|l| {
            !l.trim()
                .trim_start_matches(['│', '╷', '╵'])
                .trim()
                .is_empty()
        }) {
            details.push(tail.join("\n"));
        }
        error.details = Some(details.join("\n"));
        error
    }

    /// Errored resources whose diagnostic never came fail with an error that names no
    /// resource, else with `fallback` (the stack's error).
    pub(super) fn close_errored(&mut self, updates: &Updates, fallback: &ErrorDetail) {
        for resource in std::mem::take(&mut self.errored) {
            let error = match self.unclaimed.pop_front() {
                Some(i) => self.error_of(&self.errors[i]),
                None => fallback.clone(),
            };
            send(updates, &resource, ResourceState::Failed, None, Some(error));
        }
    }

    pub(super) fn into_deployed(self) -> Deployed {
        Deployed {
            outputs: self.outputs,
            secret_outputs: self.secret_outputs,
        }
    }
}

fn send(
    updates: &Updates,
    r: &Resource,
    state: ResourceState,
    id: Option<String>,
    error: Option<ErrorDetail>,
) {
    updates.send(ExecutorUpdate::Resource {
        state,
        urn: r.urn.clone(),
        type_: r.type_.clone(),
        name: r.urn.clone(),
        id,
        address: Some(r.address.clone()),
        error,
        action: r.replacement.then_some(PlanAction::Replace),
    });
}

fn is_lock(d: &Diagnostic) -> bool {
    let summary = d.summary.to_lowercase();
    summary.contains("acquiring the state lock") || summary.contains("error locking state")
}

/// `summary: detail` on one line, as the tool wrote them.
pub(super) fn diagnostic_text(d: &Diagnostic) -> String {
    let summary = d.summary.trim();
    let detail = d.detail.split_whitespace().collect::<Vec<_>>().join(" ");
    if detail.is_empty() {
        summary.to_owned()
    } else if summary.is_empty() {
        detail
    } else if summary.ends_with(['.', ':']) {
        format!("{summary} {detail}")
    } else {
        format!("{summary}: {detail}")
    }
}

/// The first error of a human-readable diagnostic (`Error: summary`, blank, detail, in or out
/// of its `╷ │ ╵` box) as `summary: detail`.
pub(super) fn text_diagnostic<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut summary: Option<String> = None;
    let mut detail: Vec<String> = Vec::new();
    for line in lines {
        // The end of the box the first error is drawn in.
        if summary.is_some() && line.trim_start().starts_with('╵') {
            break;
        }
        let line = line.trim().trim_start_matches(['│', '╷', '╵']).trim();
        match &summary {
            None => {
                if let Some(s) = line.strip_prefix("Error: ") {
                    summary = Some(s.trim().to_owned());
                }
            }
            Some(_) => {
                if line.starts_with("Error: ") || line.starts_with("Warning: ") {
                    break;
                }
                if !line.is_empty() {
                    detail.push(line.to_owned());
                }
            }
        }
    }
    summary.map(|summary| {
        diagnostic_text(&Diagnostic {
            summary,
            detail: detail.join("\n"),
            ..Default::default()
        })
    })
}

/// `2024-01-01 12:00:00.123456 +0000 UTC` → `2024-01-01 12:00:00 +0000 UTC`.
fn without_fraction(time: &str) -> String {
    match time.find('.') {
        Some(dot) => {
            let rest = &time[dot..];
            let end = rest.find(' ').unwrap_or(rest.len());
            format!("{}{}", &time[..dot], &rest[end..])
        }
        None => time.to_owned(),
    }
}

/// A value as Terraform reads it from `TF_VAR_*`: strings as they are, anything else as JSON
/// (which HCL reads as the same list, map or number).
pub(super) fn plain_value(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::Message as Sent;
    use tokio::sync::mpsc;

    /// Feeds a stream through [`JsonStream`] and returns what it reported.
    fn follow(stream: &str) -> (JsonStream, Vec<ExecutorUpdate>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let updates = Updates::new(0, tx, Default::default());
        let mut f = JsonStream::new("tofu", Path::new("/stacks/dns"));
        for line in stream.lines() {
            f.line(line, &updates);
        }
        let mut sent = Vec::new();
        while let Ok((_, Sent::Update(u))) = rx.try_recv() {
            sent.push(u);
        }
        (f, sent)
    }

    fn resources(sent: &[ExecutorUpdate]) -> Vec<(ResourceState, String)> {
        sent.iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Resource { state, urn, .. } => Some((*state, urn.clone())),
                _ => None,
            })
            .collect()
    }

    fn hook(kind: &str, addr: &str, action: &str) -> String {
        format!(
            r#"{{"type":"{kind}","@message":"{addr}: {kind}","hook":{{"resource":{{"addr":"{addr}","resource_type":"t"}},"action":"{action}"}}}}"#
        )
    }

    #[test]
    fn a_replacement_either_way_is_one_resource_updated_once_both_halves_are_done() {
        use ResourceState::*;
        for (first, second) in [("create", "delete"), ("delete", "create")] {
            let stream = [
                r#"{"type":"planned_change","change":{"resource":{"addr":"t.a","resource_type":"t"},"action":"replace"}}"#.to_owned(),
                hook("apply_start", "t.a", first),
                hook("apply_complete", "t.a", first),
                hook("apply_start", "t.a", second),
                hook("apply_complete", "t.a", second),
            ]
            .join("\n");
            let (f, sent) = follow(&stream);
            assert_eq!(
                resources(&sent),
                [(Updating, "t.a".into()), (Updated, "t.a".into())],
                "{first} first"
            );
            assert_eq!((f.planned, f.finished), (2, 2));
            assert!(sent.iter().all(|u| matches!(
                u,
                ExecutorUpdate::Resource {
                    action: Some(PlanAction::Replace),
                    ..
                } | ExecutorUpdate::Progress { .. }
            )));
        }
    }

    #[test]
    fn plan_outputs_are_not_values_and_sensitive_ones_are_masked() {
        let stream = r#"{"type":"outputs","outputs":{"a":{"sensitive":false,"action":"create"}}}
{"type":"outputs","outputs":{"a":{"sensitive":false,"type":"string","value":"x"},"n":{"sensitive":false,"value":null},"p":{"sensitive":true,"value":"pw"},"q":{"sensitive":true}}}"#;
        let (f, _) = follow(stream);
        assert_eq!(f.outputs["a"], "x");
        assert_eq!(f.outputs["n"], Json::Null);
        assert_eq!(f.outputs["p"], SECRET);
        assert_eq!(f.outputs["q"], SECRET);
        assert_eq!(f.secret_outputs["p"], "pw");
        assert_eq!(f.sensitive_unknown, ["q"]);
    }

    #[test]
    fn an_errored_resource_fails_with_its_own_diagnostic() {
        let stream = [
            hook("apply_start", "t.a", "create"),
            hook("apply_start", "t.b", "create"),
            hook("apply_errored", "t.a", "create"),
            hook("apply_errored", "t.b", "create"),
            r#"{"type":"diagnostic","diagnostic":{"severity":"error","summary":"execution halted","detail":""}}"#.into(),
            r#"{"type":"diagnostic","diagnostic":{"severity":"error","summary":"execution halted","detail":""}}"#.into(),
            r#"{"type":"diagnostic","diagnostic":{"severity":"error","summary":"creating b","detail":"AccessDenied: no\n  really","address":"t.b"}}"#.into(),
            "not json at all".into(),
        ]
        .join("\n");
        let (mut f, sent) = follow(&stream);
        let failed: Vec<_> = sent
            .iter()
            .filter_map(|u| match u {
                ExecutorUpdate::Resource {
                    urn,
                    error: Some(e),
                    ..
                } => Some((urn.clone(), e.code.clone(), e.message.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            failed,
            [(
                "t.b".to_owned(),
                ErrorCode::InsufficientPermissions.to_owned(),
                "creating b: AccessDenied: no really".to_owned()
            )]
        );
        assert!(sent.iter().any(|u| matches!(u, ExecutorUpdate::Log { level: LogLevel::Info, message } if message == "not json at all")));
        // The repeated diagnostic is told once, and the first error is the stack's to tell.
        assert!(!sent.iter().any(|u| matches!(
            u,
            ExecutorUpdate::Log {
                level: LogLevel::Error,
                ..
            }
        )));
        let error = f.failure("`tofu apply` exited with status 1", &VecDeque::new());
        assert_eq!(error.message, "execution halted");
        assert!(error.details.unwrap().contains("also: creating b"));
        // t.a never got its own diagnostic: the one that names no resource is its.
        let (tx, mut rx) = mpsc::unbounded_channel();
        f.close_errored(
            &Updates::new(0, tx, Default::default()),
            &failure(CODE, "x", None),
        );
        let Ok((_, Sent::Update(ExecutorUpdate::Resource { urn, error, .. }))) = rx.try_recv()
        else {
            panic!("t.a is not closed")
        };
        assert_eq!(
            (urn.as_str(), error.unwrap().message.as_str()),
            ("t.a", "execution halted")
        );
    }

    /// The stderr tail in the details leaves out the lines the message already says.
    #[test]
    fn the_details_do_not_repeat_the_message() {
        let f = JsonStream::new("tofu", Path::new("/stacks/dns"));
        let stderr: VecDeque<String> = [
            "╷",
            "│ Error: Invalid provider configuration",
            "│ ",
            "│ Provider \"aws\" requires a region.",
            "╵",
            "some other line",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let error = f.failure("`tofu apply` exited with status 1", &stderr);
        assert_eq!(
            error
                .message
                .matches("Invalid provider configuration")
                .count(),
            1
        );
        let details = error.details.unwrap();
        assert!(
            !details.contains("Invalid provider configuration"),
            "{details}"
        );
        assert!(details.contains("some other line"), "{details}");
    }

    #[test]
    fn a_held_state_lock_names_its_holder() {
        let d = Diagnostic {
            severity: "error".into(),
            summary: "Error acquiring the state lock".into(),
            detail: "Error message: resource temporarily unavailable\nLock Info:\n  ID:        e58d7c1a\n  Path:      terraform.tfstate\n  Operation: OperationTypeApply\n  Who:       alice@laptop\n  Version:   1.11.4\n  Created:   2026-11-28 01:25:10.952647203 +0000 UTC\n  Info:      \n\n\nTerraform acquires a state lock...".into(),
            address: None,
        };
        let f = JsonStream::new("tofu", Path::new("/stacks/dns"));
        let e = f.error_of(&d);
        assert_eq!(e.code, ErrorCode::Locked);
        assert_eq!(
            e.message,
            "Error acquiring the state lock: held by alice@laptop (OperationTypeApply, since 2026-11-28 01:25:10 +0000 UTC, lock ID e58d7c1a)"
        );
        assert!(e
            .details
            .unwrap()
            .contains("`tofu force-unlock e58d7c1a` in /stacks/dns"));
    }

    #[test]
    fn human_diagnostics_read_as_summary_and_detail() {
        let init = [
            "Initializing the backend...",
            "╷",
            "│ Error: Failed to query available provider packages",
            "│ ",
            "│ Could not retrieve the list of available versions for provider",
            "│ hashicorp/aws: no available releases match the given constraints",
            "╵",
            "Initializing provider plugins...",
        ];
        assert_eq!(
            text_diagnostic(init.iter().copied()).unwrap(),
            "Failed to query available provider packages: Could not retrieve the list of available versions for provider hashicorp/aws: no available releases match the given constraints"
        );
        assert_eq!(
            text_diagnostic(
                ["Error: Invalid reference", "", "Warning: x"]
                    .iter()
                    .copied()
            )
            .unwrap(),
            "Invalid reference"
        );
        assert_eq!(text_diagnostic(["all fine"].iter().copied()), None);
    }

    /// A resource planned: (address, action, drift, previous address).
    type PlannedRow = (String, PlanAction, bool, Option<String>);

    /// A recorded stream (`tests/fixtures/tofu/`, or `recorded/` there).
    fn fixture(name: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tofu");
        let path = [dir.join(name), dir.join("recorded").join(name)]
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no fixture {name}"));
        std::fs::read_to_string(path).unwrap()
    }

    /// Follows a stream as a plan: what it planned, and the resources planned in order as
    /// (address, action, drift, previous address).
    fn plan_of(stream: &str) -> (Planned, Vec<PlannedRow>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let updates = Updates::new(0, tx, Default::default());
        let mut f = JsonStream::planning("tofu", Path::new("/stacks/dns"));
        for line in stream.lines() {
            f.line(line, &updates);
        }
        let mut planned = Vec::new();
        while let Ok((_, Sent::Update(u))) = rx.try_recv() {
            if let ExecutorUpdate::Planned {
                address,
                action,
                drift,
                previous_address,
                ..
            } = u
            {
                planned.push((address.unwrap(), action, drift, previous_address));
            }
        }
        (f.plan.unwrap(), planned)
    }

    /// The stream's own `change_summary` as (add, change, destroy, import).
    fn summary_of(stream: &str) -> (u32, u32, u32, u32) {
        let line = stream
            .lines()
            .find(|l| l.contains(r#""type":"change_summary""#))
            .expect("a change_summary");
        let c = &serde_json::from_str::<Json>(line).unwrap()["changes"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0) as u32;
        (n("add"), n("change"), n("remove"), n("import"))
    }

    /// Counts made from the planned changes alone (the stream's `change_summary` left out)
    /// equal the stream's `change_summary`; with it, the tool's numbers are kept.
    fn counts_agree(name: &str) -> (Planned, Vec<PlannedRow>) {
        let stream = fixture(name);
        let without: String = stream
            .lines()
            .filter(|l| !l.contains(r#""type":"change_summary""#))
            .map(|l| format!("{l}\n"))
            .collect();
        let (ours, _) = plan_of(&without);
        let c = ours.counts;
        assert_eq!(
            (c.add, c.change, c.destroy, c.import),
            summary_of(&stream),
            "{name}"
        );
        assert!(!ours.summarized);
        let (plan, planned) = plan_of(&stream);
        assert!(plan.summarized, "{name}");
        assert_eq!(plan.counts, c, "{name}");
        (plan, planned)
    }

    #[test]
    fn a_plan_of_new_resources_counts_them_to_add() {
        use PlanAction::*;
        let (plan, planned) = counts_agree("plan.jsonl");
        // The data source read while planning is no planned change.
        assert_eq!(planned, [("test_instance.foo".into(), Create, false, None)]);
        assert!(plan.counts.any());
        assert_eq!(plan.counts.add, 1);
    }

    #[test]
    fn a_replacement_within_a_list_is_one_replace_adding_and_destroying_one() {
        use PlanAction::*;
        let (plan, planned) = counts_agree("replace_within_list.jsonl");
        assert_eq!(
            planned,
            [("tfcoremock_list.list".into(), Replace, false, None)]
        );
        assert_eq!(
            (plan.counts.replace, plan.counts.add, plan.counts.destroy),
            (1, 1, 1)
        );
        assert!(Replace.is_destructive());
    }

    #[test]
    fn a_moved_resource_is_an_update_that_names_its_old_address() {
        use PlanAction::*;
        let (plan, planned) = counts_agree("moved_with_drift.jsonl");
        assert_eq!(
            planned,
            [
                (
                    "tfcoremock_simple_resource.base_after".into(),
                    Update,
                    false,
                    Some("tfcoremock_simple_resource.base_before".into())
                ),
                (
                    "tfcoremock_simple_resource.dependent".into(),
                    Update,
                    false,
                    None
                ),
            ]
        );
        assert_eq!((plan.counts.change, plan.counts.moved), (2, 1));
    }

    #[test]
    fn an_update_after_drift_is_one_change() {
        use PlanAction::*;
        let (plan, planned) = counts_agree("drift_simple.jsonl");
        assert_eq!(
            planned,
            [(
                "tfcoremock_simple_resource.drift".into(),
                Update,
                false,
                None
            )]
        );
        assert_eq!(plan.counts.change, 1);
    }

    /// Terraform 1.11.4: `terraform_data` with a changed `input` (update) and a changed
    /// `triggers_replace` (replace); both outputs change.
    #[test]
    fn a_real_plan_updates_and_replaces_and_its_outputs_change() {
        use PlanAction::*;
        let (plan, planned) = counts_agree("plan-update-replace.jsonl");
        assert_eq!(
            planned,
            [
                ("terraform_data.two".into(), Replace, false, None),
                ("terraform_data.one".into(), Update, false, None),
            ]
        );
        assert_eq!(plan.changed_outputs, ["id", "name"]);
    }

    /// `resource_drift` (in Terraform's `views/json` shape: a `change` like `planned_change`'s)
    /// is reported as drift and not counted as a change the plan makes; `importing` is an
    /// import; `forget` is said in the tool's words, not guessed at.
    #[test]
    fn drift_is_reported_apart_and_imports_count() {
        use PlanAction::*;
        let change = |kind: &str, addr: &str, action: &str, extra: &str| {
            format!(
                r#"{{"type":"{kind}","@message":"{addr}: {action}","change":{{"resource":{{"addr":"{addr}","resource_type":"t"}},"action":"{action}"{extra}}}}}"#
            )
        };
        let stream = [
            change("resource_drift", "t.a", "update", ""),
            change("resource_drift", "t.b", "delete", ""),
            change("planned_change", "t.a", "update", ""),
            change(
                "planned_change",
                "t.c",
                "noop",
                r#","importing":{"id":"c-1"}"#,
            ),
            change(
                "planned_change",
                "t.d",
                "move",
                r#","previous_resource":{"addr":"t.old","resource_type":"t"}"#,
            ),
            change("planned_change", "t.e", "forget", ""),
        ]
        .join("\n");
        let (plan, planned) = plan_of(&stream);
        assert_eq!(
            planned,
            [
                ("t.a".into(), Update, true, None),
                ("t.b".into(), Delete, true, None),
                ("t.a".into(), Update, false, None),
                ("t.c".into(), Import, false, None),
                ("t.d".into(), Move, false, Some("t.old".into())),
            ]
        );
        assert_eq!(plan.drifted, 2);
        assert_eq!(
            plan.counts,
            PlanCounts {
                change: 1,
                import: 1,
                moved: 1,
                ..Default::default()
            }
        );
    }

    /// A plan that fails says why in the tool's words (Terraform 1.11.4, an undeclared
    /// variable).
    #[test]
    fn a_failed_plan_fails_with_its_diagnostic() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let updates = Updates::new(0, tx, Default::default());
        let mut f = JsonStream::planning("terraform", Path::new("/stacks/dns"));
        for line in fixture("plan-errored.jsonl").lines() {
            f.line(line, &updates);
        }
        let error = f.failure("`terraform plan` exited with status 1", &VecDeque::new());
        assert_eq!(error.code, ErrorCode::TerraformError);
        assert!(
            error.message.starts_with("Reference to undeclared input variable: An input variable with the name \"missing\""),
            "{}",
            error.message
        );
        assert!(!f.plan.unwrap().summarized);
    }
}
