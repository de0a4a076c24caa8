//! `cloud notify test <ID> [-e ENV]`: a test message to every notification channel of the
//! manifest, and how each went. Exit 0 when every channel took it, 1 when one did not, 2 when
//! the manifest is wrong or configures no channel.

use super::shared::{self, Outcome};
use crate::cli;
use crate::error::{Error, Kind};
use crate::event::StackState;
use crate::manifest;
use crate::settings::Settings;
use crate::sink::notify::{self, ATTEMPTS};

pub fn test(settings: &Settings, args: cli::NotifyTest) -> Outcome {
    let manifest = manifest::load(&settings.root, &args.id, &shared::registry())?;
    let environment = match &args.environment {
        Some(env) => {
            manifest.check_environment(env)?;
            env.clone()
        }
        None => manifest.environments[0].clone(),
    };
    let Some(spec) = manifest
        .notifications
        .as_ref()
        .filter(|n| !n.channels.is_empty())
    else {
        return Err(Error::input(format!(
            "deployment `{}` has no notification channels\n  --> {}",
            manifest.deployment_id,
            manifest.file.display()
        ))
        .hint(
            "add them under `notifications:` in the manifest, e.g. `notifications: { slack: { \
             webhookUrl: \"${SLACK_WEBHOOK_URL}\" } }`",
        ));
    };
    let count = spec.channels.len();
    println!(
        "Sending a test notification for {} ({environment}) to {} (up to {ATTEMPTS} attempts each)...",
        manifest.deployment_id,
        crate::words::plural(count, "channel"),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start: {e}")))?;
    let results = runtime.block_on(notify::send_test(
        spec,
        &manifest.deployment_id,
        &environment,
    ));
    let mut delivered = 0;
    for r in &results {
        match &r.result {
            Ok(()) => {
                delivered += 1;
                println!(
                    "  {} {}: delivered",
                    StackState::Deployed.symbol(),
                    r.channel
                );
            }
            Err(why) => println!("  {} {}: {why}", StackState::Failed.symbol(), r.channel),
        }
    }
    println!("{delivered} of {} delivered.", results.len());
    // Each channel's outcome is printed above.
    if delivered == results.len() {
        Ok(())
    } else {
        Err(Error::shown(Kind::Failed))
    }
}
