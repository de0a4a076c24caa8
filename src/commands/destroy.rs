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
    let run = RunSettings::destroy(settings, &args)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&args.environment))?;
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
            .hint(format!(
                "add --yes to destroy its {} stacks",
                manifest.stacks.len()
            )));
        }
        eprint!(
            "Destroy {target}: {} stacks and the resources they manage? Type `{}` to confirm: ",
            manifest.stacks.len(),
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
