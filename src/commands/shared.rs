//! What several commands do alike: read a deployment's manifest and plan it, watch for Ctrl-C,
//! find and open the audit trail (the DynamoDB table or the journals), tell a run that is going
//! on, and serve one deploy. Commands use these; no command imports another.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::cli;
use crate::error::Error;
use crate::executor::{self, Manifest, Registry};
use crate::health::{self, Health};
use crate::manifest;
use crate::plan::{PastRuns, Plan};
use crate::server::auth::Auth;
use crate::server::hub::Hub;
use crate::server::limits::Limits;
use crate::server::store::{ChannelKey, JournalStore};
use crate::server::{self, Server};
use crate::settings::{table_flag, Settings};
use crate::store::audit::{Filter, Source};
use crate::store::dynamodb::{Table, Target};
use crate::store::history::RunHistory;
use crate::store::{journal, lock, spool, table_lock};

/// What a command gives back: done, or why not ([`Error`] decides the exit code).
pub type Outcome = Result<(), Error>;

/// How long a read waits for the spool to be sent before reading anyway.
const REPLAY_BEFORE_READ: Duration = Duration::from_secs(30);
/// How long clients get to receive what is left once a server stops.
pub const LINGER: Duration = Duration::from_secs(3);
/// The life of the token a server prints.
pub const PRINTED_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// The executors, for commands that read manifests.
pub fn registry() -> Registry {
    executor::registry()
}

/// The deployment's manifest, with its executors configured, checked for `environment`.
pub fn load(
    settings: &Settings,
    registry: &Registry,
    id: &str,
    environment: Option<&str>,
) -> Result<Manifest, Error> {
    let manifest = manifest::load(&settings.root, id, registry)?;
    if let Some(env) = environment {
        manifest.check_environment(env)?;
    }
    manifest.check_inputs_env()?;
    Ok(manifest)
}

/// What commands that read recorded runs need of the manifest (see [`manifest::Header`]),
/// checked for `environment`: read without its stacks when it can be.
pub fn load_header(
    settings: &Settings,
    registry: &Registry,
    id: &str,
    environment: Option<&str>,
) -> Result<manifest::Header, Error> {
    let header = manifest::load_header(&settings.root, id, registry)?;
    if let Some(env) = environment {
        header.check_environment(env)?;
    }
    Ok(header)
}

/// Asks each executor the manifest uses whether it can run (its program is installed…).
pub fn preflight(registry: &Registry, manifest: &Manifest) -> Result<(), Error> {
    registry
        .preflight(&manifest.stacks)
        .map_err(|e| Error::input(format!("{e}\n  --> {}", manifest.file.display())))
}

/// Stacks `cloud destroy` cannot destroy, each with why and the fix, as warning lines
/// (`validate` and `destroy` say them before anything runs).
pub fn destroy_warnings(manifest: &Manifest) -> Vec<String> {
    manifest
        .stacks
        .iter()
        .filter_map(|s| {
            let why = s.executor.cannot_destroy()?;
            Some(format!(
                "warning: `cloud destroy` cannot destroy stack `{}` ({why}): it will fail there, \
                 and the stacks it depends on stay; add `destroy: <command>` to it in {}",
                s.name,
                manifest.file.display()
            ))
        })
        .collect()
}

/// The plan of a loaded manifest (a dependency cycle is bad input).
pub fn plan(manifest: &Manifest, history: &dyn PastRuns) -> Result<Plan, Error> {
    Ok(Plan::new(manifest, history)?)
}

/// `--only` names stacks of the manifest, and stacks whose dependencies have never been
/// deployed cannot run: say so up front (deploy and plan). `changed`: the selection is
/// `--changed`'s, which `--only` cannot be added to.
pub fn check_only(
    manifest: &Manifest,
    env: &str,
    only: &BTreeSet<String>,
    changed: bool,
) -> Result<(), Error> {
    check_only_names(manifest, only)?;
    check_only_dependencies(manifest, env, only, changed)
}

/// `--only` names stacks of the manifest (a drift check's stacks run on their own).
pub fn check_only_names(manifest: &Manifest, only: &BTreeSet<String>) -> Result<(), Error> {
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
    Ok(())
}

fn check_only_dependencies(
    manifest: &Manifest,
    env: &str,
    only: &BTreeSet<String>,
    changed: bool,
) -> Result<(), Error> {
    let history = RunHistory::load(&journal::dir(&manifest.dir, env));
    for stack in only {
        let spec = manifest.stack(stack).expect("checked above");
        for dep in &spec.dependencies {
            let deployed = history
                .stacks
                .get(dep)
                .is_some_and(|h| h.fingerprint.is_some());
            if !only.contains(dep) && !deployed {
                let error = Error::input(format!(
                    "`{stack}` depends on `{dep}`, which has never been deployed to {env}"
                ));
                return Err(match changed {
                    // Its outputs come from the journal of its last deploy, here.
                    true => error.hint(format!(
                        "deploy it first (`cloud deploy {} -e {env} --only {dep}`), or run \
                         --changed where its last deploy's journal is",
                        manifest.deployment_id
                    )),
                    false => error.hint(format!(
                        "deploy it first, or add it: --only {},{dep}",
                        only.iter().cloned().collect::<Vec<_>>().join(",")
                    )),
                });
            }
        }
    }
    Ok(())
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed) cancel `cancel`: a deploy's stacks get
/// SIGINT, then SIGKILL after the grace period; a second signal forces it (SIGKILL now). A
/// thread of its own, not a task: after the run the runtime is gone, and a signal must still
/// reach a view that shows the final state (it leaves on it).
pub fn stop_on_signals(cancel: Cancel) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                cancel.escalate(match signal {
                    SIGINT => crate::event::StopReason::Interrupt,
                    _ => crate::event::StopReason::Signal,
                });
            }
        });
}

/// A runtime for the commands that talk to AWS.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start: {e}")))
}

/// Each stack's drift health in `env`: folded from the DynamoDB trail when one is configured
/// (every machine sees the same), else as `history.json` keeps it.
pub fn health(
    rt: &tokio::runtime::Runtime,
    source: &Source,
    manifest: &manifest::Header,
    env: &str,
) -> Result<BTreeMap<String, Health>, Error> {
    if let Source::Journal { .. } = source {
        let history = RunHistory::load(&journal::dir(&manifest.dir, env));
        return Ok(history
            .stacks
            .into_iter()
            .filter_map(|(name, h)| Some((name, h.health?)))
            .collect());
    }
    let mut events = Vec::new();
    for type_ in health::EVENT_TYPES {
        let filter = Filter {
            environment: Some(env.to_owned()),
            type_: Some((*type_).to_owned()),
            ..Filter::default()
        };
        let records = rt.block_on(source.events(&filter))?;
        events.extend(
            records
                .into_iter()
                .filter_map(|r| Some((r.run_id, r.event?))),
        );
    }
    events.sort_by(|(ra, a), (rb, b)| {
        (a.timestamp, ra, a.sequence).cmp(&(b.timestamp, rb, b.sequence))
    });
    Ok(health::fold(events.iter().map(|(_, e)| e)))
}

/// The DynamoDB table this command uses, if any: `--dynamodb-table` / `CLOUD_DYNAMODB_TABLE`,
/// else the manifest's `eventStore.dynamodb`. The one place that decides it.
pub fn table_target(
    store: &cli::EventStoreArgs,
    manifest: Option<&manifest::Header>,
) -> Result<Option<Target>, Error> {
    let from_manifest = manifest
        .and_then(|m| m.event_store.as_ref())
        .and_then(|s| s.dynamodb.as_ref());
    match table_flag(store)? {
        Some(table) => Ok(Some(Target {
            table: table.to_owned(),
            region: from_manifest.and_then(|d| d.region.clone()),
        })),
        None => Ok(from_manifest.map(|d| Target {
            table: d.table.clone(),
            region: d.region.clone(),
        })),
    }
}

/// Where `status`, `events` and `history` read: the table (after sending this deployment's
/// spool to it, so nothing recorded is missing), or the journals.
pub fn open_trail(
    rt: &tokio::runtime::Runtime,
    store: &cli::EventStoreArgs,
    manifest: &manifest::Header,
) -> Result<Source, Error> {
    let Some(target) = table_target(store, Some(manifest))? else {
        return Ok(Source::Journal {
            manifest_dir: manifest.dir.clone(),
        });
    };
    let table = rt.block_on(Table::connect(&target))?;
    let replayed = rt.block_on(spool::replay(
        &table,
        &manifest.dir,
        None,
        Some(Instant::now() + REPLAY_BEFORE_READ),
    ));
    if replayed.sent > 0 {
        eprintln!(
            "note: sent {} spooled events to table {} first",
            replayed.sent, table.name
        );
    }
    for problem in &replayed.problems {
        eprintln!("warning: {problem}");
    }
    if replayed.left > 0 {
        eprintln!(
            "warning: {} events still wait in the spool ({}); the table lacks them for now",
            replayed.left,
            replayed
                .trouble
                .as_ref()
                .map_or("the wait was over", |t| t.message())
        );
    }
    Ok(Source::DynamoDb {
        table,
        deployment_id: manifest.deployment_id.clone(),
    })
}

/// Whether run `run_id` without an end is going on: its process holds the lock (the local one,
/// or the DynamoDB item with a live lease, for runs elsewhere). Else it was cut short. As
/// `cloud status` and `cloud history` tell it.
pub fn is_running(
    rt: &tokio::runtime::Runtime,
    source: &Source,
    manifest: &manifest::Header,
    environment: &str,
    run_id: &str,
) -> bool {
    let remote = match source {
        Source::DynamoDb { table, .. } => rt
            .block_on(table_lock::current(
                table,
                &manifest.deployment_id,
                environment,
            ))
            .ok()
            .flatten()
            .filter(|l| !l.expired(chrono::Utc::now()))
            .map(|l| l.holder.run_id),
        Source::Journal { .. } => None,
    };
    let dir = journal::dir(&manifest.dir, environment);
    remote.as_deref() == Some(run_id) || lock::holder(&dir).is_some_and(|h| h.run_id == run_id)
}

/// Who mints the printed tokens.
pub fn me() -> String {
    lock::user().unwrap_or_else(|| "cloud".into())
}

/// Binds `addr` and starts serving `hub` there.
pub fn start_server(addr: &str, hub: Hub, auth: &Auth) -> Result<Server, Error> {
    let addr = server::listen_addr(addr, auth)?;
    let limits = Limits::from_env()?;
    let listener = server::bind(addr)?;
    Server::start(listener, hub, auth.clone(), limits)
        .map_err(|e| Error::internal(format!("cannot start the server: {e}")))
}

/// The server of one deploy (`cloud deploy --serve`): its hub is a sink on the run's bus.
/// Prints the dashboard's URL with a token for this deployment. `None` without `--serve`.
pub fn serve_deploy(
    addr: Option<&str>,
    settings: &Settings,
    deployment: &str,
    environment: &str,
) -> Result<Option<Server>, Error> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let auth = Auth::from_env_or_random()?;
    let key = ChannelKey::new(deployment, environment);
    let store = JournalStore::new(&settings.root).only(key.clone());
    let hub = Hub::only(&[key], Some(Arc::new(store)));
    let mut server = start_server(addr, hub, &auth)?;
    let token = auth.mint(&me(), Some(vec![deployment.to_owned()]), PRINTED_TOKEN_TTL);
    let url = server.dashboard_url(&token, deployment, environment);
    eprintln!("Serving {deployment}-{environment}: {url}");
    server.url = Some(url);
    eprintln!(
        "  WebSocket: ws://{}/ws?token=… channel deployments/{deployment}-{environment}",
        server.addr
    );
    Ok(Some(server))
}
