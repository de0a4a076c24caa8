//! `cloud destroy <ID> -e ENV`: the deployment's stacks destroyed in reverse dependency order
//! (what depends on a stack goes first). Asks first on a terminal; elsewhere needs `--yes`.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use super::deploy::{execute, Request};
use super::Outcome;
use crate::cli;
use crate::error::Error;
use crate::event::Operation;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: cli::Destroy) -> Outcome {
    let registry = super::registry();
    let manifest = super::load(settings, &registry, &args.id, Some(&args.environment))?;
    let target = format!("{}-{}", manifest.deployment_id, args.environment);
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
    execute(
        settings,
        &registry,
        manifest,
        Request {
            environment: args.environment,
            operation: Operation::Destroy,
            parallelism: args.parallelism,
            fail_fast: args.fail_fast,
            output: args.output,
            interactive: args.interactive,
            exit_on_done: args.exit_on_done,
            grace_period: args.grace_period,
            force: true,
            only: None::<BTreeSet<String>>,
            rollback_on_failure: false,
            notify: !args.no_notify,
            report: None,
            junit: None,
            serve: None,
            store: args.store,
            cloudwatch: args.cloudwatch,
        },
    )
}
