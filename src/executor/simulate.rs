//! The built-in simulator: resources with durations, optional failures and outputs.
//! The demo, the tests and the benchmarks run on it.

use std::time::Duration;

use super::{cancelled, BoxFuture, Executor, ExecutorUpdate, Job, Updates};
use crate::event::{ErrorDetail, Operation, ResourceState};
use crate::manifest::ExecutorSpec;

pub struct Simulate;

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
    fn run(&self, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(async move {
            let ExecutorSpec::Simulate { resources } = &job.stack.executor else {
                return Err(ErrorDetail {
                    code: "EXECUTOR_MISMATCH".into(),
                    message: "the simulate executor got a stack of another kind".into(),
                    details: None,
                });
            };
            let (start, end) = match job.operation {
                Operation::Deploy => (ResourceState::Creating, ResourceState::Created),
                Operation::Destroy | Operation::Rollback => {
                    (ResourceState::Deleting, ResourceState::Deleted)
                }
            };
            let ordered: Vec<_> = match job.operation {
                Operation::Deploy => resources.iter().collect(),
                _ => resources.iter().rev().collect(),
            };
            for resource in ordered {
                let urn = job.urn(&resource.type_, &resource.name);
                let report = |state, id, error| {
                    updates.send(ExecutorUpdate::Resource {
                        state,
                        urn: urn.clone(),
                        type_: resource.type_.clone(),
                        name: resource.name.clone(),
                        id,
                        error,
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
                    let error = ErrorDetail {
                        code: "RESOURCE_FAILED".into(),
                        message: format!(
                            "Unable to {} {}: {message}",
                            if start == ResourceState::Creating {
                                "create"
                            } else {
                                "delete"
                            },
                            resource.label()
                        ),
                        details: None,
                    };
                    report(ResourceState::Failed, None, Some(error.clone()));
                    return Err(error);
                }
                let id = resource.id.clone().unwrap_or_else(|| {
                    made_up_id(&job.stack.name, &resource.type_, &resource.name)
                });
                report(end, Some(id), None);
            }
            Ok(job.stack.outputs.clone())
        })
    }
}

trait Label {
    fn label(&self) -> String;
}

impl Label for crate::manifest::SimResource {
    fn label(&self) -> String {
        format!("{} ({})", self.type_, self.name)
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
