//! `cloud validate <ID> [-e ENV]`: check the manifest and its graph, deploy nothing.

use super::Outcome;
use crate::cli;
use crate::plan::NoHistory;
use crate::settings::Settings;
use crate::view::words::plural;

pub fn run(settings: &Settings, args: cli::Validate) -> Outcome {
    let registry = super::registry();
    let manifest = super::load(settings, &registry, &args.id, args.environment.as_deref())?;
    let plan = super::plan(&manifest, &NoHistory)?;
    super::preflight(&registry, &manifest)?;
    println!(
        "{} is valid: {} in {} ({})",
        manifest.file.display(),
        plural(plan.stacks.len(), "stack"),
        plural(plan.total_layers(), "layer"),
        manifest.environments.join(", ")
    );
    Ok(())
}
