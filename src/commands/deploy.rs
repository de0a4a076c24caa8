//! `cloud deploy <ID> -e ENV`: the flags decided and checked ([`RunSettings`]), the manifest
//! loaded and `--only` checked against it, then the run ([`execute`]).

use super::execute::execute;
use super::shared::{self, Outcome};
use crate::cli;
use crate::settings::{RunSettings, Settings};

pub fn run(settings: &Settings, args: cli::Deploy) -> Outcome {
    // Before the manifest is read: a bad flag is refused before anything else.
    let run = RunSettings::deploy(settings, &args)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&run.environment))?;
    if let Some(only) = &run.only {
        shared::check_only(&manifest, &run.environment, only)?;
    }
    execute(settings, &registry, manifest, run)
}
