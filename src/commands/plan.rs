//! `cloud plan <ID> -e ENV`: what a deploy would change, stack by stack, through the deploy's
//! own run ([`execute`]) with each stack's preview in place of its deploy. Nothing changes:
//! no history, fingerprint or output. With `--detailed-exitcode` the exit code says whether
//! anything would change (0 no, 2 yes) and any error is 1, bad input included.

use super::execute::execute;
use super::shared::{self, Outcome};
use crate::cli;
use crate::settings::{RunSettings, Settings};

pub fn run(settings: &Settings, args: cli::Plan) -> Outcome {
    let detailed = args.detailed_exitcode;
    let planned = plan(settings, args);
    match planned {
        Err(e) if detailed => Err(e.input_as_failure()),
        planned => planned,
    }
}

fn plan(settings: &Settings, args: cli::Plan) -> Outcome {
    // Before the manifest is read: a bad flag is refused before anything else.
    let mut run = RunSettings::plan(settings, &args)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&run.environment))?;
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
