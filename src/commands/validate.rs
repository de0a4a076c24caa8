//! `cloud validate <ID> [-e ENV]`: check the manifest and its graph, deploy nothing.

use super::shared::{self, Outcome};
use crate::cli;
use crate::plan::NoPastRuns;
use crate::settings::Settings;
use crate::words::plural;

pub fn run(settings: &Settings, args: cli::Validate) -> Outcome {
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, args.environment.as_deref())?;
    let plan = shared::plan(&manifest, &NoPastRuns)?;
    shared::preflight(&registry, &manifest)?;
    println!(
        "{} is valid: {} in {} ({})",
        manifest.file.display(),
        plural(plan.stacks.len(), "stack"),
        plural(plan.total_layers(), "layer"),
        manifest.environments.join(", ")
    );
    for warning in shared::destroy_warnings(&manifest) {
        eprintln!("{warning}");
    }
    Ok(())
}
