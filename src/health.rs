//! A stack's drift health: whether its real infrastructure matched what was deployed when it
//! was last checked (`cloud drift`), and since when it has not. Unknown until a check says;
//! a successful deploy brings it back in sync; a destroy forgets it.
//!
//! Kept in `history.json` (the journal's side) as runs go, and folded from the audit trail's
//! events ([`fold`]) where the trail is shared (DynamoDB), so that every machine sees the same.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{DriftStatus, Event, EventData};

/// What the latest drift check (or deploy since) says of a stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `in_sync` or `drifted` (an unknown health is no [`Health`]).
    pub status: DriftStatus,
    /// When it was last checked (or deployed, which brings it in sync).
    pub checked: DateTime<Utc>,
    /// When it was first found drifted, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The drifted resources, as the check named them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

impl Health {
    pub fn is_drifted(&self) -> bool {
        self.status == DriftStatus::Drifted
    }
}

/// Follows events into each stack's health (the resources a check names come before its
/// `stack_drift_checked`).
#[derive(Debug, Default)]
pub struct Tracker {
    /// Drifted resources seen for a stack whose check has not ended yet.
    pending: BTreeMap<String, Vec<String>>,
}

/// What one event does to a stack's health.
pub enum Change {
    Set(String, Health),
    Forget(String),
}

impl Tracker {
    /// The change `event` makes, given the stack's health before it (`before`).
    pub fn change(
        &mut self,
        event: &Event,
        before: impl Fn(&str) -> Option<Health>,
    ) -> Option<Change> {
        // To the millisecond, as every event's time is written (journal and table alike).
        let at = event.timestamp.trunc_subsecs(3);
        match &event.data {
            EventData::ResourceDrifted(e) => {
                let label = e
                    .resource
                    .address
                    .clone()
                    .unwrap_or_else(|| e.resource.label());
                self.pending.entry(e.stack.clone()).or_default().push(label);
                None
            }
            EventData::StackDriftChecked(e) => {
                let resources = self.pending.remove(&e.stack).unwrap_or_default();
                let since = match e.status {
                    DriftStatus::InSync => None,
                    DriftStatus::Drifted => e.drifted_since.or_else(|| {
                        before(&e.stack)
                            .filter(Health::is_drifted)
                            .and_then(|h| h.since)
                            .or(Some(at))
                    }),
                    DriftStatus::Unknown => return None,
                };
                Some(Change::Set(
                    e.stack.clone(),
                    Health {
                        status: e.status,
                        checked: at,
                        since: since.map(|t| t.trunc_subsecs(3)),
                        resources,
                    },
                ))
            }
            // Deployed from its manifest: what is there is what was deployed.
            EventData::StackDeployed(e) => Some(Change::Set(
                e.stack.clone(),
                Health {
                    status: DriftStatus::InSync,
                    checked: at,
                    since: None,
                    resources: Vec::new(),
                },
            )),
            EventData::StackDestroyed(e) => Some(Change::Forget(e.stack.clone())),
            EventData::StackFailed(e) => {
                self.pending.remove(&e.stack);
                None
            }
            _ => None,
        }
    }
}

/// Each stack's health after `events` (oldest first; any runs of one environment).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> BTreeMap<String, Health> {
    let mut health: BTreeMap<String, Health> = BTreeMap::new();
    let mut tracker = Tracker::default();
    for event in events {
        let change = tracker.change(event, |s| health.get(s).cloned());
        match change {
            Some(Change::Set(stack, h)) => {
                health.insert(stack, h);
            }
            Some(Change::Forget(stack)) => {
                health.remove(&stack);
            }
            None => {}
        }
    }
    health
}

/// The event types [`fold`] reads (what a trail is asked for).
pub const EVENT_TYPES: &[&str] = &[
    "resource_drifted",
    "stack_drift_checked",
    "stack_deployed",
    "stack_destroyed",
    "stack_failed",
];

/// `drifted since 2026-12-04 05:00 UTC (terraform_data.x, +1 more)`.
pub fn drifted_words(since: DateTime<Utc>, resources: &[String]) -> String {
    let mut text = format!("drifted since {}", since.format("%Y-%m-%d %H:%M UTC"));
    match resources {
        [] => {}
        [one] => text.push_str(&format!(" ({one})")),
        [first, rest @ ..] => text.push_str(&format!(" ({first}, +{} more)", rest.len())),
    }
    text
}

/// A stack's health in words: `in sync (checked 2026-12-04 05:00 UTC)`, `drifted since …`,
/// `unknown (never checked)`.
pub fn words(health: Option<&Health>) -> String {
    match health {
        None => "unknown (never checked)".to_owned(),
        Some(h) if h.is_drifted() => drifted_words(h.since.unwrap_or(h.checked), &h.resources),
        Some(h) => format!(
            "in sync (checked {})",
            h.checked.format("%Y-%m-%d %H:%M UTC")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        PlanAction, ResourceDrifted, ResourceRef, StackDeployed, StackDriftChecked, StackState,
    };
    use chrono::TimeZone;

    fn at(minute: u32, data: EventData) -> Event {
        Event {
            sequence: 1,
            timestamp: Utc.with_ymd_and_hms(2026, 12, 4, 5, minute, 0).unwrap(),
            deployment_id: "D".into(),
            environment: "dev".into(),
            data,
        }
    }

    fn checked(status: DriftStatus) -> EventData {
        EventData::StackDriftChecked(StackDriftChecked {
            stack: "db".into(),
            status,
            drifted_resources: u32::from(status == DriftStatus::Drifted),
            drifted_since: None,
            reason: None,
            duration_seconds: 1,
        })
    }

    fn drifted() -> EventData {
        EventData::ResourceDrifted(ResourceDrifted {
            stack: "db".into(),
            resource: ResourceRef {
                urn: "u".into(),
                type_: "terraform_data".into(),
                name: "x".into(),
                id: None,
                address: Some("terraform_data.x".into()),
            },
            action: PlanAction::Update,
            attributes: Vec::new(),
        })
    }

    #[test]
    fn drifted_since_the_first_check_that_found_it_until_a_deploy() {
        let deployed = EventData::StackDeployed(StackDeployed {
            stack: "db".into(),
            status: StackState::Deployed,
            resources_created: 0,
            resources_updated: 0,
            duration_seconds: 1,
            outputs: Default::default(),
            fingerprint: None,
            resources_replaced: None,
            resources_deleted: None,
        });
        let events = [
            at(1, checked(DriftStatus::InSync)),
            at(2, drifted()),
            at(2, checked(DriftStatus::Drifted)),
            at(3, drifted()),
            at(3, checked(DriftStatus::Drifted)),
        ];
        let h = fold(&events);
        let db = &h["db"];
        assert!(db.is_drifted());
        assert_eq!(db.since, Some(events[1].timestamp), "since the first time");
        assert_eq!(db.checked, events[4].timestamp);
        assert_eq!(db.resources, ["terraform_data.x"]);
        assert!(words(Some(db)).starts_with("drifted since 2026-12-04 05:02 UTC"));

        let mut healed = events.to_vec();
        healed.push(at(4, deployed));
        let h = fold(&healed);
        assert_eq!(h["db"].status, DriftStatus::InSync);
        assert_eq!(h["db"].since, None);
        assert_eq!(words(None), "unknown (never checked)");
    }
}
