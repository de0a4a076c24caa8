//! `cloud validate <ID> [-e ENV]`: check the manifest and its graph, deploy nothing.

use super::{exit, Failure};
use crate::cli;
use crate::plan::NoHistory;
use crate::settings::Settings;
use crate::view::words::plural;

pub fn run(settings: &Settings, args: cli::Validate) -> Result<i32, Failure> {
    let registry = super::registry();
    let manifest = super::load(settings, &registry, &args.id, args.environment.as_deref())?;
    let plan = super::plan(settings, &manifest, &NoHistory)?;
    super::preflight(&registry, &manifest)?;
    println!(
        "{} is valid: {} in {} ({})",
        manifest.file.display(),
        plural(plan.stacks.len(), "stack"),
        plural(plan.total_layers(), "layer"),
        manifest.environments.join(", ")
    );
    Ok(exit::OK)
}
