//! `cloud unlock <ID> -e ENV [--force] [--kill]`: removes what a run left locked. The local
//! lock is an OS lock that dies with its process, so only a leftover file can be removed (a
//! live holder on this machine is named, never broken: stop that process instead). Programs of
//! the stacks a dead run left running (`kill -9` of `cloud`) are named, and stopped with
//! `--kill`. The DynamoDB lock item is removed when its lease expired or its process is gone
//! from this machine; a live lease only with `--force` (for a run whose machine is gone but
//! whose clock says otherwise).

use std::time::Duration;

use super::shared::{self, Outcome};
use crate::cli;
use crate::error::Error;
use crate::event::format_timestamp;
use crate::manifest::Header;
use crate::settings::{grace_period, Settings};
use crate::store::dynamodb::Table;
use crate::store::groups::{self, Records};
use crate::store::journal;
use crate::store::lock::{Holder, Lock, LockError};
use crate::store::table_lock;

pub fn run(settings: &Settings, args: cli::Unlock) -> Outcome {
    // A bad flag is refused before the manifest is read.
    let grace = grace_period(args.grace_period)?;
    let registry = shared::registry();
    let manifest = shared::load_header(settings, &registry, &args.id, Some(&args.environment))?;
    let local = unlock_here(&manifest, &args, grace)?;
    let table = unlock_table(&manifest, &args)?;
    if !local && !table {
        println!(
            "{}-{} is not locked",
            manifest.deployment_id, args.environment
        );
    }
    Ok(())
}

/// The local lock: only a file nobody holds can go. Taken while the programs left running
/// are looked at, so that no run starts meanwhile. Whether anything was removed or stopped.
fn unlock_here(manifest: &Header, args: &cli::Unlock, grace: Duration) -> Result<bool, Error> {
    let env = &args.environment;
    let name = format!("{}-{env}", manifest.deployment_id);
    let dir = journal::dir(&manifest.dir, env);
    let mut removed = false;
    if dir.exists() {
        let leftover = dir.join("lock").exists();
        let lock = match Lock::acquire(&dir, &name, &Holder::me("unlock")) {
            Ok(lock) => lock,
            Err(LockError::Held { holder, .. }) => {
                return Err(Error::locked(format!(
                    "{name} is locked by run {} (pid {}, user {}), which is running on \
                     this machine since {}",
                    holder.run_id,
                    holder.pid,
                    holder.user.as_deref().unwrap_or("unknown"),
                    holder.started,
                ))
                .hint(format!(
                    "an OS lock goes away with its process, so it is not removed{}: \
                     stop that run (Ctrl-C in its terminal, or `kill {}`)",
                    if args.force || args.kill {
                        ", even with --force or --kill"
                    } else {
                        ""
                    },
                    holder.pid
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let records = Records::beside_lock(&dir);
        let left = records.left_running();
        if !left.is_empty() && !args.kill {
            return Err(Error::locked(format!(
                "{name}: programs of an earlier run that ended without stopping them \
                 are still running:\n{}",
                groups::list(&left, chrono::Utc::now(), crate::words::format_duration),
            ))
            .hint(format!(
                "`cloud unlock {} -e {env} --kill` stops them (SIGTERM, then SIGKILL \
                 after --grace-period)",
                manifest.deployment_id
            )));
        }
        for said in records.stop(&left, grace) {
            println!("{said}");
            removed = true;
        }
        // Dropping the lock removes its file.
        drop(lock);
        if leftover {
            println!("removed the leftover lock file in {}", dir.display());
            removed = true;
        }
    }
    Ok(removed)
}

/// The lock item in the DynamoDB table, when one is configured. Whether it was removed.
fn unlock_table(manifest: &Header, args: &cli::Unlock) -> Result<bool, Error> {
    let env = &args.environment;
    let name = format!("{}-{env}", manifest.deployment_id);
    let mut removed = false;
    if let Some(target) = shared::table_target(&args.store, Some(manifest))? {
        let rt = shared::runtime()?;
        let table = rt.block_on(Table::connect(&target))?;
        let found = rt.block_on(table_lock::current(&table, &manifest.deployment_id, env))?;
        if let Some(found) = found {
            let now = chrono::Utc::now();
            let why = if found.expired(now) {
                format!("its lease expired at {}", format_timestamp(&found.expires))
            } else if found.dead_here() {
                "its process is gone from this machine".to_owned()
            } else if args.force {
                format!(
                    "--force; its lease, renewed at {}, ran until {}",
                    found.renewed,
                    format_timestamp(&found.expires)
                )
            } else {
                return Err(Error::locked(format!(
                    "{name} is locked in DynamoDB table {}: {} holds it, lease renewed \
                     at {}, expires at {} unless renewed",
                    target.table,
                    found.describe(),
                    found.renewed,
                    format_timestamp(&found.expires),
                ))
                .hint(format!(
                    "a live lease means that run is probably still going; if its \
                     machine is gone, wait for the lease to expire or run `cloud unlock {} \
                     -e {env} --force`",
                    manifest.deployment_id
                )));
            };
            let gone = rt.block_on(table_lock::remove(
                &table,
                &manifest.deployment_id,
                env,
                &found.holder.run_id,
            ))?;
            if !gone {
                return Err(Error::locked(format!(
                    "{name} was locked again in DynamoDB table {} by another run while \
                     unlocking; nothing was removed",
                    target.table
                )));
            }
            println!(
                "removed the lock in DynamoDB table {} of {} ({why})",
                target.table,
                found.describe()
            );
            removed = true;
        }
    }
    Ok(removed)
}
