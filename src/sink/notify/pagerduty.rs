//! PagerDuty Events API v2: `trigger` when a deploy fails, `resolve` when a later deploy of the
//! same deployment and environment succeeds. One `dedup_key` per deployment and environment,
//! so repeated failures add to one incident.
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

    /// A `trigger` for a failed run or stack (a test: severity `info`).
    pub fn trigger(&self, notice: &Notice) -> Value {
        let f = notice.failure.as_ref();
        let mut summary = notice.title();
        if let Some(f) = f {
            if let Some(stack) = &f.stack {
                summary.push_str(&format!(": {stack}"));
            }
            summary.push_str(&format!(": {}", f.error.message));
        }
        let summary: String = summary
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(SUMMARY_MAX)
            .collect();
        let mut details = serde_json::Map::new();
        details.insert("deploymentId".into(), json!(notice.deployment_id));
        details.insert("environment".into(), json!(notice.environment));
        if !notice.run_id.is_empty() {
            details.insert("runId".into(), json!(notice.run_id));
        }
        details.insert("duration".into(), json!(notice.duration()));
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
        let mut payload = json!({
            "summary": summary,
            "source": notice.target(),
            "severity": if notice.what == What::Test { "info" } else { self.severity.as_str() },
            "timestamp": format_timestamp(&notice.at),
            "group": notice.deployment_id,
            "custom_details": details,
        });
        if let Some(f) = f {
            if let Some(stack) = &f.stack {
                payload["component"] = json!(stack);
            }
            if !f.error.code.as_str().is_empty() {
                payload["class"] = json!(f.error.code);
            }
        }
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

/// The incident a notice's trigger belongs to. A test has its own (resolved at once), so it
/// never touches a real incident.
pub fn dedup_of(notice: &Notice) -> String {
    match notice.what {
        What::Test => format!("{}-test", notice.dedup_key()),
        _ => notice.dedup_key(),
    }
}

/// Incidents this deployment and environment left open, by channel label.
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
