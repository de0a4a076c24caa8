//! `executor: pulumi`: the stacks are Pulumi projects (`path`). Running them through the
//! Pulumi CLI is not in this build yet: such a manifest validates, and `deploy` refuses it up
//! front (before anything runs), never half-way through.

use std::sync::Arc;

use super::{failure, BoxFuture, Configured, Executor, Job, Updates};
use crate::manifest::{Res, StackEntry};

pub struct Pulumi;

#[derive(Debug, Clone)]
pub struct PulumiStack;

impl Executor for Pulumi {
    fn name(&self) -> &'static str {
        "pulumi"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn configure(&self, entry: &StackEntry<'_>) -> Res<Configured> {
        if entry.path_at.is_none() {
            return Err(entry.err(
                entry.at,
                format!("pulumi stack `{}` has no `path`", entry.stack),
                format!(
                    "add `path:` with the folder of its Pulumi project, relative to {}",
                    entry.dir_display()
                ),
            ));
        }
        Ok(Arc::new(PulumiStack))
    }

    fn preflight(&self, stacks: &[&str]) -> Result<(), String> {
        Err(format!(
            "the `pulumi` executor is not in this build yet (stacks: {})\n  \
             help: run them with `executor: command` and `deploy: pulumi up --stack <ID>-<env> --yes` meanwhile",
            stacks.join(", ")
        ))
    }
}

impl super::StackExecutor for PulumiStack {
    fn name(&self) -> &'static str {
        "pulumi"
    }

    fn deploy(self: Arc<Self>, _job: Job, _updates: Updates) -> BoxFuture {
        Box::pin(async { Err(unavailable()) })
    }

    fn destroy(self: Arc<Self>, _job: Job, _updates: Updates) -> BoxFuture {
        Box::pin(async { Err(unavailable()) })
    }
}

fn unavailable() -> crate::event::ErrorDetail {
    failure(
        "EXECUTOR_UNAVAILABLE",
        "the `pulumi` executor is not available in this build",
        None,
    )
}
