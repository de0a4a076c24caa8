//! PagerDuty Events API v2: `trigger` when a deploy fails, `resolve` when a later deploy of the
//! same deployment and environment succeeds. One `dedup_key` per deployment and environment,
//! so repeated failures add to one incident.
//!
//! Drift has an incident of its own (`cloud-<ID>-<env>-drift`, [`Page::Drift`]): triggered by
//! a drift check that finds drifted stacks, resolved at the end of a later run after which no
//! stack is drifted (a check that finds them in sync, or a deploy that healed them).
//!
//! Which incidents are open is remembered across runs in `pagerduty.json` beside the journals
//! of the environment (`cloud/deploy/<ID>/journal/<env>/`): written under the run's lock,
//! before a trigger is sent (a trigger that may have arrived is worth a resolve later), and
//! cleared once the resolve is accepted.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::deliver::{AttemptError, Endpoint};
use super::notice::{Notice, What};
use crate::event::format_timestamp;
use crate::manifest::notifications::{PagerDutySpec, Severity};

/// PagerDuty's limit on `payload.summary`.
const SUMMARY_MAX: usize = 1024;
/// The state file, in the environment's journal folder.
pub const STATE_FILE: &str = "pagerduty.json";

pub struct PagerDuty {
    endpoint: Endpoint,
    routing_key: String,
    severity: Severity,
}

impl PagerDuty {
    pub fn new(
        spec: &PagerDutySpec,
        client: &reqwest::Client,
    ) -> Result<PagerDuty, super::SetupError> {
        let routing_key = spec.routing_key.resolve()?;
        Ok(PagerDuty {
            endpoint: Endpoint::new(&spec.url, client)?,
            routing_key: routing_key.trim().to_owned(),
            severity: spec.severity,
        })
    }

    pub fn describe(&self) -> String {
        self.endpoint.shown.clone()
    }

    /// A `trigger` for a failed run or stack, or drift (a test: severity `info`).
    pub fn trigger(&self, notice: &Notice) -> Value {
        if notice.what == What::DriftDetected {
            return self.drift_trigger(notice);
        }
        let f = notice.failure.as_ref();
        let mut summary = notice.title();
        if let Some(f) = f {
            if let Some(stack) = &f.stack {
                summary.push_str(&format!(": {stack}"));
            }
            summary.push_str(&format!(": {}", f.error.message));
        }
        let mut details = common_details(notice);
        if let Some(f) = f {
            details.insert("error".into(), json!(f.error.message));
            details.insert("errorCode".into(), json!(f.error.code));
            if let Some(at) = notice.failed_at() {
                details.insert("failedAt".into(), json!(at));
            }
            if notice.what == What::Failed {
                details.insert("failedStacks".into(), json!(f.failed_stacks));
                details.insert("blockedStacks".into(), json!(f.blocked_stacks));
            }
            details.insert("retry".into(), json!(notice.retry_command()));
        }
        let mut payload = self.payload(notice, &summary, details);
        if let Some(f) = f {
            if let Some(stack) = &f.stack {
                payload["component"] = json!(stack);
            }
            if !f.error.code.as_str().is_empty() {
                payload["class"] = json!(f.error.code);
            }
        }
        self.event(notice, payload)
    }

    /// A `trigger` of drift's incident: the drifted stacks, their resources, how to heal.
    fn drift_trigger(&self, notice: &Notice) -> Value {
        let stacks = notice.drift_stacks();
        let named: Vec<String> = stacks
            .iter()
            .map(|s| {
                let n = crate::words::plural(s.resources.len(), "resource");
                format!("{} ({n})", s.stack)
            })
            .collect();
        let summary = format!("{}: {}", notice.title(), named.join(", "));
        let mut details = common_details(notice);
        let drifted: serde_json::Map<String, Value> = stacks
            .iter()
            .map(|s| {
                let since = s.since.as_ref().map(format_timestamp);
                let entry = json!({ "since": since, "resources": s.resources });
                (s.stack.clone(), entry)
            })
            .collect();
        details.insert("driftedStacks".into(), Value::Object(drifted));
        details.insert("heal".into(), json!(notice.heal_command()));
        let mut payload = self.payload(notice, &summary, details);
        payload["class"] = json!("drift");
        if let Some(first) = stacks.first() {
            payload["component"] = json!(first.stack);
        }
        self.event(notice, payload)
    }

    /// The event's `payload`; `summary` is made one line, within PagerDuty's limit.
    fn payload(
        &self,
        notice: &Notice,
        summary: &str,
        details: serde_json::Map<String, Value>,
    ) -> Value {
        let summary: String = summary
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(SUMMARY_MAX)
            .collect();
        json!({
            "summary": summary,
            "source": notice.target(),
            "severity": if notice.what == What::Test { "info" } else { self.severity.as_str() },
            "timestamp": format_timestamp(&notice.at),
            "group": notice.deployment_id,
            "custom_details": details,
        })
    }

    /// The `trigger` event around `payload`, with the dashboard's links.
    fn event(&self, notice: &Notice, payload: Value) -> Value {
        let mut event = json!({
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_of(notice),
            "payload": payload,
            "client": "cloud",
        });
        let links = &notice.links;
        if let Some(details) = &links.details {
            event["client_url"] = json!(details);
            let mut list = vec![json!({ "href": details, "text": "View details" })];
            if let Some(logs) = &links.logs {
                list.push(json!({ "href": logs, "text": "View logs" }));
            }
            event["links"] = json!(list);
        }
        event
    }

    /// A `resolve` of the incident `dedup_key` names.
    pub fn resolve(&self, dedup_key: &str) -> Value {
        json!({
            "routing_key": self.routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        })
    }

    pub async fn send(&self, event: &Value) -> Result<(), AttemptError> {
        let body = serde_json::to_vec(event).unwrap_or_default();
        self.endpoint.post(body, &[]).await
    }
}

/// What every trigger's `custom_details` has.
fn common_details(notice: &Notice) -> serde_json::Map<String, Value> {
    let mut details = serde_json::Map::new();
    details.insert("deploymentId".into(), json!(notice.deployment_id));
    details.insert("environment".into(), json!(notice.environment));
    if !notice.run_id.is_empty() {
        details.insert("runId".into(), json!(notice.run_id));
    }
    details.insert("duration".into(), json!(notice.duration()));
    details
}

/// The incident a notice's trigger belongs to. A test has its own (resolved at once), so it
/// never touches a real incident; drift has its own, so healing drift never closes a failure.
pub fn dedup_of(notice: &Notice) -> String {
    match notice.what {
        What::Test => format!("{}-test", notice.dedup_key()),
        What::DriftDetected => format!("{}-drift", notice.dedup_key()),
        _ => notice.dedup_key(),
    }
}

/// Which of a deployment and environment's incidents a trigger or resolve is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// A failed run or stack: resolved by a later successful deploy.
    Failure,
    /// Drift: resolved at the end of a later run after which no stack is drifted.
    Drift,
}

impl Page {
    pub fn of(notice: &Notice) -> Page {
        match notice.what {
            What::DriftDetected => Page::Drift,
            _ => Page::Failure,
        }
    }

    /// Where the open incident is remembered in the state file: under the channel's label
    /// (`pagerduty`), drift's under `pagerduty (drift)`.
    pub fn slot(self, label: &str) -> String {
        match self {
            Page::Failure => label.to_owned(),
            Page::Drift => format!("{label} (drift)"),
        }
    }
}

/// Incidents this deployment and environment left open, by channel label (drift's under
/// `<label> (drift)`, see [`Page::slot`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[serde(default)]
    pub open: BTreeMap<String, Incident>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub dedup_key: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub triggered_at: String,
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

impl State {
    /// The state in `dir`; none when the file is missing or unreadable (then nothing is
    /// resolved that should not be: a resolve for an unknown key is harmless anyway).
    pub fn load(dir: &Path) -> State {
        std::fs::read(state_path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the state (atomically: a crash leaves the old or the new file).
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let path = state_path(dir);
        if self.open.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{STATE_FILE}.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)
    }
}
