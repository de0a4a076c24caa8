//! `cloud validate <ID> [-e ENV]`: check the manifest and its graph, deploy nothing. With
//! `--changed`, the whole manifest is still checked, and the executors' programs only for the
//! stacks a git change touches (what a `deploy --changed` would need).

use super::shared::{self, Outcome};
use crate::cli;
use crate::plan::NoPastRuns;
use crate::settings::{changed_flag, Settings};
use crate::words::plural;

pub fn run(settings: &Settings, args: cli::Validate) -> Outcome {
    let changed = changed_flag(&args.changed)?;
    let registry = shared::registry();
    let mut manifest = shared::load(settings, &registry, &args.id, args.environment.as_deref())?;
    let plan = shared::plan(&manifest, &NoPastRuns)?;
    if let Some(query) = &changed {
        let only = crate::changed::select(&manifest, &registry, query)?.unwrap_or_default();
        manifest.stacks.retain(|s| only.contains(&s.name));
    }
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
    // The process ends here: a big manifest and its plan are left to the system.
    std::mem::forget((manifest, plan));
    Ok(())
}
