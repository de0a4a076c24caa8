//! `cloud destroy <ID> -e ENV`: the deployment's stacks destroyed in reverse dependency order
//! (what depends on a stack goes first). Asks first on a terminal; elsewhere needs `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use super::execute::execute;
use super::shared::{self, Outcome};
use crate::cli;
use crate::error::Error;
use crate::settings::{RunSettings, Settings};

pub fn run(settings: &Settings, args: cli::Destroy) -> Outcome {
    // Before the manifest is read, and before asking: a bad flag is refused first.
    let mut run = RunSettings::destroy(settings, &args)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&args.environment))?;
    if let Some(query) = &run.changed {
        if !query.dependents {
            // Its dependents would be left pointing at what is gone.
            return Err(Error::input(
                "destroy --changed takes the stacks that depend on the changed ones too: \
                 --no-dependents would leave them using what it destroys",
            )
            .hint("drop --no-dependents"));
        }
        match crate::changed::select(&manifest, &registry, query)? {
            Some(stacks) => run.only = Some(stacks),
            None => return Ok(()),
        }
    }
    let count = run.only.as_ref().map_or(manifest.stacks.len(), |o| o.len());
    let target = format!("{}-{}", manifest.deployment_id, args.environment);
    // Said before asking (and with --yes): the run would otherwise find out at the end.
    for warning in shared::destroy_warnings(&manifest) {
        eprintln!("{warning}");
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::input(format!(
                "refusing to destroy {target} without confirmation: stdin is not a terminal"
            ))
            .hint(format!("add --yes to destroy its {count} stacks")));
        }
        eprint!(
            "Destroy {target}: {count} stacks and the resources they manage? Type `{}` to confirm: ",
            manifest.deployment_id
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != manifest.deployment_id {
            return Err(Error::input(format!(
                "{target} not destroyed: the answer was not `{}`",
                manifest.deployment_id
            )));
        }
    }
    execute(settings, &registry, manifest, run)
}
