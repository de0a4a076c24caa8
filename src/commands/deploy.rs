//! `cloud deploy <ID> -e ENV`: the flags decided and checked ([`RunSettings`]), the manifest
//! loaded and `--only` checked against it, then the run ([`execute`]).

use std::collections::BTreeSet;

use super::execute::execute;
use super::shared::{self, Outcome};
use crate::cli;
use crate::error::Error;
use crate::executor::Manifest;
use crate::settings::{RunSettings, Settings};
use crate::store::history::RunHistory;
use crate::store::journal;

pub fn run(settings: &Settings, args: cli::Deploy) -> Outcome {
    // Before the manifest is read: a bad flag is refused before anything else.
    let run = RunSettings::deploy(settings, &args)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&run.environment))?;
    if let Some(only) = &run.only {
        check_only(&manifest, &run.environment, only)?;
    }
    execute(settings, &registry, manifest, run)
}

/// `--only` stacks whose dependencies have never been deployed cannot run: say so up front.
fn check_only(manifest: &Manifest, env: &str, only: &BTreeSet<String>) -> Result<(), Error> {
    let names: Vec<&str> = manifest.stacks.iter().map(|s| s.name.as_str()).collect();
    for stack in only {
        if manifest.stack(stack).is_none() {
            return Err(Error::input(format!(
                "--only names `{stack}`, which is not a stack of {}",
                manifest.deployment_id,
            ))
            .hint(format!(
                "{}stacks: {}",
                crate::manifest::did_you_mean(stack, &names),
                crate::manifest::list(&names)
            )));
        }
    }
    let history = RunHistory::load(&journal::dir(&manifest.dir, env));
    for stack in only {
        let spec = manifest.stack(stack).expect("checked above");
        for dep in &spec.dependencies {
            let deployed = history
                .stacks
                .get(dep)
                .is_some_and(|h| h.fingerprint.is_some());
            if !only.contains(dep) && !deployed {
                return Err(Error::input(format!(
                    "`{stack}` depends on `{dep}`, which has never been deployed to {env}"
                ))
                .hint(format!(
                    "deploy it first, or add it: --only {},{dep}",
                    only.iter().cloned().collect::<Vec<_>>().join(",")
                )));
            }
        }
    }
    Ok(())
}
