//! `cloud deploy <ID> -e ENV`: the flags decided and checked ([`RunSettings`]), the manifest
//! loaded and `--only` checked against it, then the run ([`execute`]). With `--plan DIR`, the
//! reviewed plan's stacks alone, each applied as reviewed.

use super::execute::execute;
use super::shared::{self, Outcome};
use std::sync::Arc;

use crate::cli;
use crate::plan::saved::{SavedApply, SavedPlan};
use crate::settings::{RunSettings, Settings};

pub fn run(settings: &Settings, args: cli::Deploy) -> Outcome {
    // Before the manifest is read: a bad flag is refused before anything else.
    let mut run = RunSettings::deploy(settings, &args)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&run.environment))?;
    if let Some(dir) = &args.plan {
        let plan = SavedPlan::read(dir)?;
        plan.check_target(&manifest.deployment_id, &run.environment, dir)?;
        // Only what was reviewed is deployed.
        run.only = Some(plan.stack_names());
        run.saved = Some(Arc::new(SavedApply {
            plan,
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
            accept_replans: args.accept_replans,
        }));
    }
    if let Some(query) = &run.changed {
        match crate::changed::select(&manifest, &registry, query)? {
            Some(stacks) => run.only = Some(stacks),
            None => return Ok(()),
        }
    }
    if let Some(only) = &run.only {
        shared::check_only(&manifest, &run.environment, only, run.changed.is_some())?;
    }
    execute(settings, &registry, manifest, run)
}
