//! `cloud unlock <ID> -e ENV [--force]`: removes what a run left locked. The local lock is an
//! OS lock that dies with its process, so only a leftover file can be removed (a live holder
//! on this machine is named, never broken: stop that process instead). The DynamoDB lock item
//! is removed when its lease expired or its process is gone from this machine; a live lease
//! only with `--force` (for a run whose machine is gone but whose clock says otherwise).

use super::{exit, Failure};
use crate::cli;
use crate::event::format_timestamp;
use crate::settings::Settings;
use crate::store::dynamodb::Table;
use crate::store::journal;
use crate::store::lock::{self, Holder, Lock, LockError};
use crate::store::table_lock;

pub fn run(settings: &Settings, args: cli::Unlock) -> Result<i32, Failure> {
    let registry = super::registry();
    let manifest = super::load(settings, &registry, &args.id, Some(&args.environment))?;
    let env = &args.environment;
    let name = format!("{}-{env}", manifest.deployment_id);
    let dir = journal::dir(&manifest.dir, env);
    let mut removed = false;

    // The local lock: only a file nobody holds can go.
    if dir.join("lock").exists() {
        match Lock::acquire(&dir, &name, &Holder::me("unlock")) {
            // Taken and dropped at once: dropping removes the file.
            Ok(lock) => {
                drop(lock);
                println!("removed the leftover lock file in {}", dir.display());
                removed = true;
            }
            Err(LockError::Held { holder, .. }) => {
                return Err(Failure::new(
                    exit::LOCKED,
                    format!(
                        "error: {name} is locked by run {} (pid {}, user {}), which is running on \
                         this machine since {}\n  \
                         help: an OS lock goes away with its process, so it is not removed{}: \
                         stop that run (Ctrl-C in its terminal, or `kill {}`)",
                        holder.run_id,
                        holder.pid,
                        holder.user.as_deref().unwrap_or("unknown"),
                        holder.started,
                        if args.force {
                            ", even with --force"
                        } else {
                            ""
                        },
                        holder.pid
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    } else if let Some(holder) = lock::holder(&dir) {
        // Raced with a run that just started.
        return Err(Failure::new(
            exit::LOCKED,
            format!(
                "error: {name} is locked by run {}, which just started",
                holder.run_id
            ),
        ));
    }

    // The lock item in the DynamoDB table, when one is configured.
    if let Some(target) = super::events::target(&args.store, Some(&manifest))? {
        let rt = super::events::runtime()?;
        let table = rt
            .block_on(Table::connect(&target))
            .map_err(|why| Failure::new(exit::FAILED, format!("error: {why}")))?;
        let found = rt
            .block_on(table_lock::current(&table, &manifest.deployment_id, env))
            .map_err(|why| Failure::new(exit::FAILED, format!("error: {why}")))?;
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
                return Err(Failure::new(
                    exit::LOCKED,
                    format!(
                        "error: {name} is locked in DynamoDB table {}: {} holds it, lease renewed \
                         at {}, expires at {} unless renewed\n  \
                         help: a live lease means that run is probably still going; if its \
                         machine is gone, wait for the lease to expire or run `cloud unlock {} \
                         -e {env} --force`",
                        target.table,
                        found.describe(),
                        found.renewed,
                        format_timestamp(&found.expires),
                        manifest.deployment_id
                    ),
                ));
            };
            let gone = rt
                .block_on(table_lock::remove(
                    &table,
                    &manifest.deployment_id,
                    env,
                    &found.holder.run_id,
                ))
                .map_err(|why| Failure::new(exit::FAILED, format!("error: {why}")))?;
            if !gone {
                return Err(Failure::new(
                    exit::LOCKED,
                    format!(
                        "error: {name} was locked again in DynamoDB table {} by another run while \
                         unlocking; nothing was removed",
                        target.table
                    ),
                ));
            }
            println!(
                "removed the lock in DynamoDB table {} of {} ({why})",
                target.table,
                found.describe()
            );
            removed = true;
        }
    }
    if !removed {
        println!("{name} is not locked");
    }
    Ok(exit::OK)
}
