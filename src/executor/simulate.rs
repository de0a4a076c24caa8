//! The built-in simulator: resources with durations, optional failures and outputs.
//! The demo, the tests and the benchmarks run on it.
//!
//! ```yaml
//! network:
//!   executor: simulate
//!   resources:                 # run one after another
//!     - { type: "aws:ec2/vpc:Vpc", name: main-vpc, seconds: 5, id: vpc-abc123 }
//!     - { type: "aws:ec2/subnet:Subnet", name: public-0, seconds: 2, fail: "Access Denied" }
//!   outputs: { vpcId: vpc-abc123 }
//!   drift:                     # changed outside since the deploy (`cloud drift` finds it)
//!     main-vpc: { cidr: 10.1.0.0/16 }
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::{cancelled, failure, BoxFuture, Configured, Executor, ExecutorUpdate, Job, Updates};
use crate::event::{
    DriftedAttribute, ErrorCode, LogLevel, Operation, Outputs, PlanAction, PlanCounts, PlanSummary,
    ResourceState,
};
use crate::manifest::{ManifestResult, StackEntry, Value};

/// The longest a simulated resource may take: a day.
const MAX_SECONDS: f64 = 86_400.0;

pub struct Simulate;

#[derive(Debug, Clone)]
pub struct SimulateStack {
    pub resources: Vec<SimResource>,
    /// Reported as the stack's outputs when it is deployed.
    pub outputs: Outputs,
    /// `drift:`: resources (by name) changed outside since they were deployed, with their
    /// attributes' values now. The simulator has no real infrastructure: the drift lasts
    /// while the key is there.
    pub drift: Vec<SimDrift>,
}

/// A resource (by name) changed outside, and its attributes' values now.
pub type SimDrift = (String, Vec<(String, serde_json::Value)>);

#[derive(Debug, Clone)]
pub struct SimResource {
    // (Boxed text, not `String`: a 10,000-stack manifest holds 100,000 of these.)
    pub type_: Box<str>,
    pub name: Box<str>,
    pub seconds: f64,
    /// When set, the resource fails with this message.
    pub fail: Option<Box<str>>,
    /// The id reported when created; a made-up one otherwise.
    pub id: Option<Box<str>>,
}

impl SimResource {
    fn label(&self) -> String {
        crate::event::resource_label(&self.type_, &self.name)
    }
}

/// `CLOUD_SIMULATE_SPEED=10` runs simulated resources ten times faster (tests, demos).
pub fn speed() -> f64 {
    static SPEED: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *SPEED.get_or_init(|| {
        std::env::var("CLOUD_SIMULATE_SPEED")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(1.0)
    })
}

impl Executor for Simulate {
    fn name(&self) -> &'static str {
        "simulate"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["resources", "outputs", "drift"]
    }

    fn configure(&self, entry: &StackEntry<'_>) -> ManifestResult<Configured> {
        let resources = match entry.get("resources") {
            Some(v) => parse_resources(entry.stack, v)?,
            None => Vec::new(),
        };
        let mut outputs = Outputs::new();
        if let Some(v) = entry.get("outputs") {
            if !v.is_null() {
                if !v.is_map() {
                    return Err(v.wrong_type(
                        &format!("`outputs` of stack `{}`", entry.stack),
                        "a mapping",
                        "outputs: { vpcId: vpc-abc123 }",
                    ));
                }
                for (k, _, value) in v.entries("`outputs`", "outputs: { vpcId: vpc-1 }")? {
                    outputs.insert(k, value.json()?);
                }
            }
        }
        let drift = match entry.get("drift") {
            Some(v) if !v.is_null() => parse_drift(entry.stack, &resources, v)?,
            _ => Vec::new(),
        };
        Ok(Arc::new(SimulateStack {
            resources,
            outputs,
            drift,
        }))
    }
}

fn parse_resources(stack: &str, n: Value) -> ManifestResult<Vec<SimResource>> {
    let example = "- { type: \"aws:ec2/vpc:Vpc\", name: main-vpc, seconds: 5 }";
    let items = n.items(
        &format!("`resources` of stack `{stack}`"),
        "a list",
        example,
    )?;
    let mut out: Vec<SimResource> = Vec::with_capacity(items.len());
    for item in items {
        let what = format!("a resource of stack `{stack}`");
        let mut type_ = None;
        let mut name = None;
        let mut seconds = None;
        let mut fail = None;
        let mut id = None;
        for (key, key_at, v) in item.entries(&what, example)? {
            match key.as_str() {
                "type" => type_ = Some(v.nonempty_string("`type`", "type: aws:s3/bucket:Bucket")?),
                "name" => name = Some(v.nonempty_string("`name`", "name: logs")?),
                "seconds" => seconds = Some(parse_seconds(v)?),
                "fail" => fail = Some(v.string("`fail`", "fail: \"Access Denied\"")?),
                "id" => id = Some(v.nonempty_string("`id`", "id: vpc-abc123")?),
                _ => {
                    return Err(item.doc().unknown_key(
                        &key,
                        key_at,
                        &what,
                        &["type", "name", "seconds", "fail", "id"],
                    ))
                }
            }
        }
        let missing = |key: &str, fix: &str| {
            item.err(
                format!("{what} has no `{key}`"),
                format!("add `{fix}` to it"),
            )
        };
        let type_: Box<str> =
            (type_.ok_or_else(|| missing("type", "type: \"aws:s3/bucket:Bucket\""))?).into();
        let name: Box<str> = (name.ok_or_else(|| missing("name", "name: logs"))?).into();
        let seconds = seconds.ok_or_else(|| missing("seconds", "seconds: 5"))?;
        if let Some(first) = out.iter().position(|r| r.type_ == type_ && r.name == name) {
            return Err(item.err(
                format!("resource `{type_}` `{name}` is listed twice in stack `{stack}`"),
                format!(
                    "give one of them another `name` (it is resource {} and {} of the stack)",
                    first + 1,
                    out.len() + 1
                ),
            ));
        }
        out.push(SimResource {
            type_,
            name,
            seconds,
            fail: fail.map(String::into_boxed_str),
            id: id.map(String::into_boxed_str),
        });
    }
    Ok(out)
}

fn parse_drift(stack: &str, resources: &[SimResource], n: Value) -> ManifestResult<Vec<SimDrift>> {
    let example = "drift: { main-vpc: { cidr: 10.1.0.0/16 } }";
    if !n.is_map() {
        return Err(n.wrong_type(&format!("`drift` of stack `{stack}`"), "a mapping", example));
    }
    let mut out = Vec::new();
    for (name, at, attrs) in n.entries("`drift`", example)? {
        if !resources.iter().any(|r| *r.name == *name) {
            let names: Vec<&str> = resources.iter().map(|r| &*r.name).collect();
            return Err(n.doc().err(
                at,
                format!("`drift` names resource `{name}`, which stack `{stack}` does not have"),
                format!(
                    "name one of its resources: {}",
                    crate::manifest::list(&names)
                ),
            ));
        }
        if !attrs.is_map() {
            return Err(attrs.wrong_type(
                &format!("`drift.{name}` of stack `{stack}`"),
                "a mapping of attributes to their values now",
                example,
            ));
        }
        let mut changed = Vec::new();
        for (attr, _, value) in attrs.entries(&format!("`drift.{name}`"), example)? {
            changed.push((attr, value.json()?));
        }
        out.push((name, changed));
    }
    Ok(out)
}

fn parse_seconds(n: Value) -> ManifestResult<f64> {
    let help = "write a duration in seconds, from 0 to 86400 (a day), like `seconds: 5` or \
                `seconds: 0.5`";
    let Some(s) = n.number() else {
        return Err(n.err(
            format!("`seconds` must be a number, found {}", n.kind()),
            help,
        ));
    };
    if !s.is_finite() {
        return Err(n.err(format!("`seconds` must be finite, found {s}"), help));
    }
    if s < 0.0 {
        return Err(n.err(format!("`seconds` must not be negative, found {s}"), help));
    }
    if s > MAX_SECONDS {
        return Err(n.err(
            format!("`seconds` must be at most 86400 (a day), found {s}"),
            help,
        ));
    }
    Ok(s)
}

impl super::StackExecutor for SimulateStack {
    fn name(&self) -> &'static str {
        "simulate"
    }

    fn expected_seconds(&self) -> Option<f64> {
        Some(self.resources.iter().map(|r| r.seconds).sum::<f64>() / speed())
    }

    fn expected_resources(&self) -> Option<u32> {
        Some(self.resources.len() as u32)
    }

    /// Its manifest entry is all it deploys from.
    fn reads_files(&self) -> bool {
        false
    }

    fn deploy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { self.simulate(&job, &updates).await })
    }

    fn destroy(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move { self.simulate(&job, &updates).await })
    }

    fn rollback(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(async move { self.simulate(&job, &updates).await }))
    }

    fn plan(self: Arc<Self>, job: Job, updates: Updates) -> Option<BoxFuture> {
        Some(Box::pin(async move { Ok(self.plan_all(&job, &updates)) }))
    }

    fn no_drift_check(&self) -> Option<String> {
        None
    }

    /// Reads each resource back (a tenth of its time) and reports those `drift:` names.
    fn drift(self: Arc<Self>, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move {
            for resource in &self.resources {
                let read = resource.seconds / 10.0 / speed();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(read)) => {}
                    _ = job.cancel.cancelled() => {
                        return Err(cancelled(format!("stopped while reading {}", resource.label())));
                    }
                }
                let Some((_, attrs)) = self.drift.iter().find(|(n, _)| **n == *resource.name)
                else {
                    continue;
                };
                updates.send(ExecutorUpdate::Drifted {
                    urn: job.urn(&resource.type_, &resource.name),
                    type_: resource.type_.to_string(),
                    name: resource.name.to_string(),
                    address: None,
                    action: PlanAction::Update,
                    attributes: attrs
                        .iter()
                        .map(|(name, now)| DriftedAttribute {
                            name: name.clone(),
                            before: None,
                            after: Some(now.clone()),
                            sensitive: false,
                        })
                        .collect(),
                });
            }
            Ok(super::Deployed::default())
        })
    }
}

impl SimulateStack {
    /// What a deploy would do, from the stack's last deploy (the simulator keeps no state of
    /// its own): never deployed here, every resource a create; deployed and unchanged since,
    /// nothing; changed since, every resource an update (it does not know which changed).
    fn plan_all(&self, job: &Job, updates: &Updates) -> super::Deployed {
        let action = match &job.last_deploy {
            None => Some(PlanAction::Create),
            Some(last) if last.unchanged => None,
            Some(_) => {
                updates.log(
                    LogLevel::Info,
                    "changed since its last deploy: simulate plans every resource as an update \
                     (it keeps no record of which changed)",
                );
                Some(PlanAction::Update)
            }
        };
        let mut counts = PlanCounts::default();
        for resource in self.resources.iter().filter(|_| action.is_some()) {
            let action = action.expect("filtered");
            counts.count(action);
            updates.send(ExecutorUpdate::Planned {
                urn: job.urn(&resource.type_, &resource.name),
                type_: resource.type_.to_string(),
                name: resource.name.to_string(),
                address: None,
                action,
                drift: false,
                previous_address: None,
            });
        }
        // An output changes when the last deploy did not report the value it will.
        let before = job.last_deploy.as_ref().map(|l| &l.outputs);
        let changed_outputs: Vec<String> = self
            .outputs
            .iter()
            .filter(|(k, v)| before.and_then(|b| b.get(*k)) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        updates.send(ExecutorUpdate::PlanSummary(PlanSummary {
            counts,
            changes: counts.any() || !changed_outputs.is_empty(),
            changed_outputs,
            ..PlanSummary::default()
        }));
        super::Deployed::default()
    }

    /// Creates the resources in order (deploy), or deletes them in reverse (destroy, rollback).
    async fn simulate(&self, job: &Job, updates: &Updates) -> super::Outcome {
        let deploying = job.operation == Operation::Deploy;
        let (start, end) = if deploying {
            (ResourceState::Creating, ResourceState::Created)
        } else {
            (ResourceState::Deleting, ResourceState::Deleted)
        };
        let ordered: Vec<&SimResource> = if deploying {
            self.resources.iter().collect()
        } else {
            self.resources.iter().rev().collect()
        };
        for resource in ordered {
            let urn = job.urn(&resource.type_, &resource.name);
            let report = |state, id, error| {
                updates.send(ExecutorUpdate::Resource {
                    state,
                    urn: urn.clone(),
                    type_: resource.type_.to_string(),
                    name: resource.name.to_string(),
                    id,
                    address: None,
                    error,
                    action: None,
                })
            };
            report(start, None, None);
            if resource.seconds > 0.0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(resource.seconds / speed())) => {}
                    _ = job.cancel.cancelled() => {
                        let error = cancelled(format!("stopped while {} {}", start.as_str(), resource.label()));
                        report(ResourceState::Failed, None, Some(error.clone()));
                        return Err(error);
                    }
                }
            } else {
                // Zero-second resources still let other stacks run.
                tokio::task::yield_now().await;
            }
            if let Some(message) = &resource.fail {
                // The resource's own error is the cause alone (it is told beside the resource);
                // the stack's names the resource.
                let verb = if deploying { "create" } else { "delete" };
                report(
                    ResourceState::Failed,
                    None,
                    Some(failure(
                        ErrorCode::ResourceFailed,
                        message.to_string(),
                        None,
                    )),
                );
                return Err(failure(
                    ErrorCode::ResourceFailed,
                    format!("Unable to {verb} {}: {message}", resource.label()),
                    None,
                ));
            }
            let id = (resource.id.as_deref())
                .map(str::to_owned)
                .unwrap_or_else(|| made_up_id(&job.stack, &resource.type_, &resource.name));
            report(end, Some(id), None);
        }
        Ok(if deploying {
            self.outputs.clone().into()
        } else {
            Outputs::new().into()
        })
    }
}

/// A stable, realistic-looking id: `vpc-3f9a1c2b` for an `aws:ec2/vpc:Vpc`.
fn made_up_id(stack: &str, type_: &str, name: &str) -> String {
    // `SecurityGroup` → `sg`, `Vpc` → `vpc`: the initials of a compound name, like AWS ids.
    let kind = type_.rsplit(':').next().unwrap_or_default();
    let initials: String = kind.chars().filter(char::is_ascii_uppercase).collect();
    let prefix = if initials.len() > 1 {
        initials.to_ascii_lowercase()
    } else {
        kind.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let prefix = if prefix.is_empty() {
        "res".into()
    } else {
        prefix
    };
    // FNV-1a: stable across runs and platforms.
    let mut hash: u32 = 0x811c9dc5;
    for byte in stack.bytes().chain([0]).chain(name.bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    format!("{prefix}-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_typed() {
        let a = made_up_id("network", "aws:ec2/vpc:Vpc", "main-vpc");
        assert!(a.starts_with("vpc-"), "{a}");
        let sg = made_up_id("security", "aws:ec2/securityGroup:SecurityGroup", "web");
        assert!(sg.starts_with("sg-"), "{sg}");
        assert_eq!(a, made_up_id("network", "aws:ec2/vpc:Vpc", "main-vpc"));
        assert_ne!(a, made_up_id("network", "aws:ec2/vpc:Vpc", "other-vpc"));
    }
}
