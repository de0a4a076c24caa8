//! `cloud drift <ID> -e ENV`: every deployed stack's real infrastructure compared with what was
//! last deployed, all at once, through the deploy's own run ([`execute`]) with each stack's drift
//! check in place of its deploy. Nothing changes but each stack's health. Exit 0 when every
//! checked stack is in sync, 2 when any drifted, 1 on any error (bad input included: 2 means
//! "drifted").

use super::execute::execute;
use super::shared::{self, Outcome};
use crate::cli;
use crate::settings::{RunSettings, Settings};

pub fn run(settings: &Settings, args: cli::Drift) -> Outcome {
    check(settings, args).map_err(|e| e.input_as_failure())
}

fn check(settings: &Settings, args: cli::Drift) -> Outcome {
    // Before the manifest is read: a bad flag is refused before anything else.
    let run = RunSettings::drift(settings, &args)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&run.environment))?;
    if let Some(only) = &run.only {
        shared::check_only_names(&manifest, only)?;
    }
    execute(settings, &registry, manifest, run)
}
