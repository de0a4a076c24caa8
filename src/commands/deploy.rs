//! `cloud deploy <ID> -e ENV`: plan, take the lock, assemble the bus, run the orchestrator,
//! shut the bus down in order, and map the outcome to an exit code. `cloud destroy` runs the
//! same way on the reversed plan ([`execute`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Outcome;
use crate::bus::Bus;
use crate::cancel::Cancel;
use crate::cli::{self, Output};
use crate::error::{Error, Kind};
use crate::event::format_timestamp;
use crate::event::{DeploymentState, Operation};
use crate::executor::Manifest;
use crate::orchestrator::{self, Previous, RunOptions, SkipPolicy};
use crate::plan::{fingerprint, Plan};
use crate::server::hub::HubSink;
use crate::settings::Settings;
use crate::sink::cloudwatch::CloudWatchSink;
use crate::sink::dynamodb::DynamoSink;
use crate::sink::filelog::FileLogSink;
use crate::sink::history::HistorySink;
use crate::sink::journal::JournalSink;
use crate::sink::notify::Notifier;
use crate::sink::report::ReportSink;
use crate::store::dynamodb::Table;
use crate::store::groups::{self, Records};
use crate::store::history::History;
use crate::store::journal;
use crate::store::lock::{Holder, Lock};
use crate::store::table_lock::{self, Refused, TableLock, TableLockError, Taken};
use crate::view::{Control, Palette, ViewSink};

/// The longest grace period a stopping stack may be given: an hour.
const MAX_GRACE_SECONDS: f64 = 3600.0;
/// How long the recording sinks get to finish once the run is over.
const DRAIN: Duration = Duration::from_secs(10);

pub fn run(settings: &Settings, args: cli::Deploy) -> Outcome {
    let registry = super::registry();
    let manifest = super::load(settings, &registry, &args.id, Some(&args.environment))?;
    let only: Option<BTreeSet<String>> =
        (!args.only.is_empty()).then(|| args.only.iter().cloned().collect());
    if let Some(only) = &only {
        check_only(&manifest, &args.environment, only)?;
    }
    execute(
        settings,
        &registry,
        manifest,
        Request {
            environment: args.environment,
            operation: Operation::Deploy,
            parallelism: args.parallelism,
            fail_fast: args.fail_fast,
            output: args.output,
            interactive: args.interactive,
            exit_on_done: args.exit_on_done,
            grace_period: args.grace_period,
            force: args.force,
            only,
            rollback_on_failure: args.rollback_on_failure,
            notify: !args.no_notify,
            report: args.report,
            junit: args.junit,
            serve: args.serve,
            store: args.store,
            cloudwatch: args.cloudwatch,
        },
    )
}

/// A run as the command line asks for it.
pub(super) struct Request {
    pub environment: String,
    pub operation: Operation,
    pub parallelism: Option<u32>,
    pub fail_fast: bool,
    pub output: Output,
    pub interactive: bool,
    pub exit_on_done: bool,
    pub grace_period: f64,
    pub force: bool,
    pub only: Option<BTreeSet<String>>,
    pub rollback_on_failure: bool,
    /// Send the manifest's notifications.
    pub notify: bool,
    /// Where to write the run's summary as JSON, and as JUnit XML.
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// Serve the run (dashboard, REST, WebSocket) on this address.
    pub serve: Option<String>,
    /// The DynamoDB audit trail's table, and whether to send events to CloudWatch Logs.
    pub store: cli::Store,
    pub cloudwatch: bool,
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
    let history = History::load(&journal::dir(&manifest.dir, env));
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

/// `--grace-period`, checked.
pub(super) fn grace_period(seconds: f64) -> Result<Duration, Error> {
    if !(seconds.is_finite() && (0.0..=MAX_GRACE_SECONDS).contains(&seconds)) {
        return Err(Error::input(format!(
            "--grace-period must be a number of seconds from 0 to {MAX_GRACE_SECONDS}, found {seconds}"
        ))
        .hint("e.g. `--grace-period 30`"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Runs a deploy or a destroy of `manifest` to its end.
pub(super) fn execute(
    settings: &Settings,
    registry: &crate::executor::Registry,
    manifest: Manifest,
    request: Request,
) -> Outcome {
    let grace = grace_period(request.grace_period)?;
    let env = request.environment.clone();
    let journal_dir = journal::dir(&manifest.dir, &env);
    let mut history = History::load(&journal_dir);
    // A run killed before history.json caught up still left its journal.
    history.note_interrupted_run(&journal_dir);
    let deploy_plan = super::plan(&manifest, &history)?;
    super::preflight(registry, &manifest)?;
    let plan = match request.operation {
        Operation::Deploy => deploy_plan,
        Operation::Destroy | Operation::Rollback => deploy_plan.reversed(),
    };
    let dynamodb_target = super::events::target(&request.store, Some(&manifest))?;
    // Before the lock: a taken port or a refused address is bad input, and nothing ran.
    let server = match &request.serve {
        Some(addr) => Some(super::serve::for_deploy(
            addr,
            settings,
            &manifest.deployment_id,
            &env,
        )?),
        None => None,
    };

    let started = |e: std::io::Error| Error::internal(format!("cannot start the run: {e}"));
    let run_id = journal::new_run_id();
    let holder = Holder::me(&run_id);
    let lock = Lock::acquire(
        &journal_dir,
        &format!("{}-{env}", manifest.deployment_id),
        &holder,
    )?;
    let records = Records::beside_lock(&journal_dir);
    refuse_beside_left_groups(&records, &manifest.deployment_id, &env)?;
    crate::executor::process::record_groups(records, &run_id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(started)?;
    let cancel = Cancel::new();
    // Across machines too, when the table is configured. Losing it halts the run.
    let table_lock = match &dynamodb_target {
        Some(target) => Some(take_table_lock(
            &runtime,
            target,
            (&manifest.deployment_id, &env),
            &holder,
            cancel.clone(),
        )?),
        None => None,
    };
    let journal = JournalSink::create(&journal_dir, &run_id).map_err(|e| {
        Error::failed(format!(
            "cannot write the journal in {}: {e}",
            journal_dir.display()
        ))
    })?;

    let skip = SkipPolicy {
        force: request.force,
        only: request.only.clone(),
        files: match request.operation {
            // With --force too: what it deploys is recorded, so the next run can skip it.
            Operation::Deploy => files_fingerprints(&plan),
            _ => plan.stacks.iter().map(|_| None).collect(),
        },
    };
    let previous: BTreeMap<String, Previous> = history
        .stacks
        .iter()
        .map(|(name, h)| {
            (
                name.clone(),
                Previous {
                    outputs: h.outputs.clone(),
                    fingerprint: h.fingerprint.clone(),
                    unsettled: h.unsettled.clone(),
                },
            )
        })
        .collect();

    let header = format!(
        "cloud {} {} -e {env} · run {run_id} · user {}",
        request.operation.as_str(),
        manifest.deployment_id,
        holder.user.as_deref().unwrap_or("unknown")
    );
    let file_log = FileLogSink::create(&manifest.dir, request.operation.as_str(), &env, &header)
        .map_err(|e| {
            Error::failed(format!(
                "cannot write the file log in {}: {e}",
                crate::store::filelog::dir(&manifest.dir).display()
            ))
        })?;
    let dynamodb = dynamodb_target.map(|target| DynamoSink {
        target,
        manifest_dir: manifest.dir.clone(),
        environment: env.clone(),
        run_id: run_id.clone(),
        user: holder.user.clone(),
        journal: journal.path().to_path_buf(),
    });
    let cloudwatch_region = manifest
        .event_store
        .as_ref()
        .and_then(|s| s.cloudwatch.as_ref())
        .map(|c| c.region.clone());
    let cloudwatch = (request.cloudwatch || cloudwatch_region.is_some()).then(|| CloudWatchSink {
        deployment_id: manifest.deployment_id.clone(),
        environment: env.clone(),
        region: cloudwatch_region.flatten(),
        start: chrono::Utc::now(),
    });

    let scratch = std::env::temp_dir().join(format!("cloud-{run_id}"));
    let view = ViewSink {
        kind: settings.view(request.output, request.interactive),
        control: Control {
            palette: Palette::new(settings.color),
            exit_on_done: request.exit_on_done,
            cancel: cancel.clone(),
            github_actions: settings.github_actions,
        },
    };
    // Where every event goes. A new sink is one more line here.
    let mut bus = Bus::new(&scratch);
    {
        // Sinks that are tasks start on the runtime.
        let _entered = runtime.enter();
        bus.attach(Box::new(journal)).map_err(started)?;
        bus.attach(Box::new(file_log)).map_err(started)?;
        if let Some(sink) = dynamodb {
            bus.attach(Box::new(sink)).map_err(started)?;
        }
        if let Some(sink) = cloudwatch {
            bus.attach(Box::new(sink)).map_err(started)?;
        }
        bus.attach(Box::new(HistorySink {
            dir: journal_dir.clone(),
            history,
        }))
        .map_err(started)?;
        let notifications = manifest.notifications.as_ref().filter(|_| request.notify);
        if let Some(notifier) = notifications.and_then(|n| Notifier::for_run(n, &journal_dir)) {
            bus.attach(Box::new(notifier)).map_err(started)?;
        }
        if request.report.is_some() || request.junit.is_some() {
            bus.attach(Box::new(ReportSink {
                json: request.report.clone(),
                junit: request.junit.clone(),
            }))
            .map_err(started)?;
        }
        if let Some(server) = &server {
            bus.attach(Box::new(HubSink {
                hub: server.hub.clone(),
            }))
            .map_err(started)?;
        }
        bus.attach(Box::new(view)).map_err(started)?;
    }

    let opts = RunOptions {
        environment: env,
        operation: request.operation,
        parallelism: request.parallelism.map(|p| p as usize),
        fail_fast: request.fail_fast,
        grace,
        run_id,
        user: holder.user.clone(),
        scratch: scratch.clone(),
        previous,
        skip,
        rollback_on_failure: request.rollback_on_failure,
    };
    super::stop_on_signals(cancel.clone());
    let (result, lock_lost, shutdown, lock_trouble) = runtime.block_on(async {
        let result = orchestrator::run(&plan, &opts, bus.publisher(), cancel.clone()).await;
        // Lost while the run went on, it failed the run; lost after, it is only said.
        let lock_lost = cancel.halt_reason().cloned();
        let shutdown = bus.shutdown(DRAIN).await;
        // The record is complete: the next run, here or elsewhere, may start.
        let lock_trouble = match table_lock {
            Some(lock) => lock.release().await,
            None => None,
        };
        (result, lock_lost, shutdown, lock_trouble)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&scratch);

    // The record is complete: let the next run start, while the view may still show the
    // final state.
    let mut record_failed = false;
    for report in &shutdown.reports {
        if let Some(problem) = &report.problem {
            record_failed = true;
            eprintln!(
                "error: the {} could not be written completely ({} events lost): {problem}",
                report.name, report.undelivered
            );
        }
    }
    drop(lock);
    match (lock_lost, lock_trouble) {
        // The run failed for it; the views said so as it happened.
        (Some(lost), _) => eprintln!(
            "error: {}\n  help: {}",
            lost.message,
            lost.details.as_deref().unwrap_or_default()
        ),
        (None, Some(trouble)) => eprintln!("warning: {trouble}"),
        (None, None) => {}
    }
    if let Some(server) = server {
        // Clients get what is left of the run, then a close that says why.
        server.stop(1000, "the run is over", super::serve::LINGER);
    }
    for (name, handle) in shutdown.views {
        if let Some(problem) = handle.join(&name).problem {
            eprintln!("warning: the view stopped early: {problem}");
        }
    }
    // What sinks could not do that the run does not depend on (undelivered notifications).
    for note in &shutdown.warnings {
        eprintln!("warning: {}: {}", note.source, note.message);
    }
    let succeeded = result.status == DeploymentState::Deployed;
    // A failed or stopped run was shown by the views as it went.
    let outcome = if result.cancelled {
        Err(Error::shown(Kind::Interrupted))
    } else if !succeeded {
        Err(Error::shown(Kind::Failed))
    } else if record_failed {
        Err(Error::failed(format!(
            "{}, but the run's record is incomplete (see above)",
            crate::view::words::done(request.operation)
        )))
    } else {
        Ok(())
    };
    // The process exits next: freeing a 10,000-stack plan and model piece by piece only costs
    // time (~0.1 s), so they are left to the operating system.
    std::mem::forget((manifest, plan, result));
    outcome
}

/// Holding the lock: stacks' programs of a dead run (`kill -9`) that still run keep this run
/// from starting beside them (exit 3); records of those gone are dropped.
fn refuse_beside_left_groups(records: &Records, deployment: &str, env: &str) -> Result<(), Error> {
    let left = records.left_running();
    if !left.is_empty() {
        return Err(Error::locked(format!(
            "{deployment}-{env}: programs of an earlier run that ended without stopping \
             them (killed?) are still running:\n{}\n  records: {}",
            groups::list(
                &left,
                chrono::Utc::now(),
                crate::view::words::format_duration
            ),
            records.dir().display()
        ))
        .hint(format!(
            "this run would deploy beside them (two copies of one apply race on its \
             state); wait for them to end, or stop them with `cloud unlock {deployment} -e \
             {env} --kill` (SIGTERM, then SIGKILL after --grace-period), then run again"
        )));
    }
    Ok(())
}

/// Takes the lock item in the DynamoDB table, or says who holds it (exit 3) or why the table
/// cannot be asked (exit 1: without it two machines could deploy at once, so nothing starts).
fn take_table_lock(
    runtime: &tokio::runtime::Runtime,
    target: &crate::store::dynamodb::Target,
    (deployment, env): (&str, &str),
    holder: &Holder,
    halt: Cancel,
) -> Result<TableLock, Error> {
    let lease = table_lock::lease()?;
    let taken = runtime.block_on(async {
        let table = Table::connect(target).await.map_err(|why| TableLockError {
            deployment: deployment.to_owned(),
            environment: env.to_owned(),
            table: target.table.clone(),
            why: Refused::Table(why),
        })?;
        TableLock::acquire(table, deployment, env, holder, lease, halt).await
    });
    match taken {
        Ok((lock, Taken::Free)) => Ok(lock),
        Ok((lock, Taken::TookOver(old))) => {
            let why = if old.expired(chrono::Utc::now()) {
                format!("its lease expired at {}", format_timestamp(&old.expires))
            } else {
                "its process is gone from this machine".to_owned()
            };
            eprintln!(
                "note: took over the lock of {deployment}-{env} in DynamoDB table {} from {} ({why})",
                target.table,
                old.describe()
            );
            Ok(lock)
        }
        Err(refused) => Err(refused.into()),
    }
}

/// The fingerprint of the files under each stack's `path` (but not under another stack's own
/// path inside it), computed once per folder, on a few threads. `Some("")` for stacks whose
/// executor reads no files; `None` where a folder cannot be read: never skipped as unchanged.
fn files_fingerprints(plan: &Plan) -> Vec<Option<String>> {
    type Key = (PathBuf, &'static [&'static str]);
    let mut folders: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    let mut out = vec![None; plan.stacks.len()];
    for (i, s) in plan.stacks.iter().enumerate() {
        if s.spec.executor.reads_files() {
            folders
                .entry((s.spec.path.clone(), s.spec.executor.fingerprint_ignores()))
                .or_default()
                .push(i);
        } else {
            out[i] = Some(String::new());
        }
    }
    let all_paths: Vec<&Path> = plan.stacks.iter().map(|s| s.spec.path.as_path()).collect();
    let jobs: Vec<_> = folders.into_iter().collect();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let chunk = jobs.len().div_ceil(workers).max(1);
    let results: Vec<(Vec<usize>, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                let all_paths = &all_paths;
                scope.spawn(move || {
                    part.iter()
                        .map(|((path, ignores), stacks)| {
                            let others: Vec<&Path> = all_paths
                                .iter()
                                .copied()
                                .filter(|p| *p != path.as_path())
                                .collect();
                            (
                                stacks.clone(),
                                fingerprint::files(path, ignores, &others).ok(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (stacks, hash) in results {
        for i in stacks {
            out[i] = hash.clone();
        }
    }
    out
}
