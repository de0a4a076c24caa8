//! `cloud deploy <ID> -e ENV`: plan, take the lock, assemble the bus, run the orchestrator,
//! shut the bus down in order, record the history, and map the outcome to an exit code.

use std::time::Duration;

use super::{exit, Failure};
use crate::bus::Bus;
use crate::cancel::Cancel;
use crate::cli;
use crate::event::{DeploymentState, Operation};
use crate::orchestrator::{self, RunOptions};
use crate::settings::Settings;
use crate::sink::cloudwatch::CloudWatchSink;
use crate::sink::dynamodb::DynamoSink;
use crate::sink::filelog::{self, FileLogSink};
use crate::sink::journal::JournalSink;
use crate::store::history::History;
use crate::store::journal;
use crate::store::lock::{Holder, Lock};
use crate::view::{Control, Palette, ViewSink};

/// The longest grace period a stopping stack may be given: an hour.
const MAX_GRACE_SECONDS: f64 = 3600.0;
/// How long the recording sinks get to finish once the run is over.
const DRAIN: Duration = Duration::from_secs(10);

pub fn run(settings: &Settings, args: cli::Deploy) -> Result<i32, Failure> {
    let registry = super::registry();
    let manifest = super::load(settings, &registry, &args.id, Some(&args.environment))?;
    if !(args.grace_period.is_finite() && (0.0..=MAX_GRACE_SECONDS).contains(&args.grace_period)) {
        return Err(Failure::input(format!(
            "error: --grace-period must be a number of seconds from 0 to {MAX_GRACE_SECONDS}, found {}\n  \
             help: e.g. `--grace-period 30`",
            args.grace_period
        )));
    }
    let env = args.environment.clone();
    let journal_dir = journal::dir(&manifest.dir, &env);
    let mut history = History::load(&journal_dir);
    let plan = super::plan(settings, &manifest, &history)?;
    super::preflight(&registry, &manifest)?;
    let dynamodb_target = super::events::target(&args.store, Some(&manifest))?;

    let run_id = journal::new_run_id();
    let holder = Holder::me(&run_id);
    let lock = Lock::acquire(
        &journal_dir,
        &format!("{}-{env}", manifest.deployment_id),
        &holder,
    )?;
    let journal = JournalSink::create(&journal_dir, &run_id).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!(
                "error: cannot write the journal in {}: {e}",
                journal_dir.display()
            ),
        )
    })?;

    let header = format!(
        "cloud deploy {} -e {env} · run {run_id} · user {}",
        manifest.deployment_id,
        holder.user.as_deref().unwrap_or("unknown")
    );
    let file_log = FileLogSink::create(&manifest.dir, "deploy", &env, &header).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!(
                "error: cannot write the file log in {}: {e}",
                filelog::dir(&manifest.dir).display()
            ),
        )
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
    let cloudwatch = (args.cloudwatch || cloudwatch_region.is_some()).then(|| CloudWatchSink {
        deployment_id: manifest.deployment_id.clone(),
        environment: env.clone(),
        region: cloudwatch_region.flatten(),
        start: chrono::Utc::now(),
    });

    let scratch = std::env::temp_dir().join(format!("cloud-{run_id}"));
    let cancel = Cancel::new();
    let view = ViewSink {
        kind: settings.view(args.output, args.interactive),
        control: Control {
            palette: Palette::new(settings.color),
            exit_on_done: args.exit_on_done,
            cancel: cancel.clone(),
            grace: Duration::from_secs_f64(args.grace_period),
        },
    };
    let started =
        |e: std::io::Error| Failure::new(exit::FAILED, format!("error: cannot start the run: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(started)?;
    // Where every event goes. A new sink is one more line here.
    let mut bus = Bus::new(&scratch);
    bus.attach(Box::new(journal)).map_err(started)?;
    bus.attach(Box::new(file_log)).map_err(started)?;
    if let Some(sink) = dynamodb {
        bus.attach(Box::new(sink)).map_err(started)?;
    }
    if let Some(sink) = cloudwatch {
        bus.attach(Box::new(sink)).map_err(started)?;
    }
    bus.attach(Box::new(view)).map_err(started)?;

    let opts = RunOptions {
        environment: env,
        operation: Operation::Deploy,
        parallelism: args.parallelism.map(|p| p as usize),
        fail_fast: args.fail_fast,
        grace: Duration::from_secs_f64(args.grace_period),
        run_id,
        user: holder.user.clone(),
        scratch: scratch.clone(),
    };
    let (result, shutdown) = runtime.block_on(async {
        watch_signals(cancel.clone());
        let result = orchestrator::run(&plan, &opts, bus.publisher(), cancel).await;
        (result, bus.shutdown(DRAIN).await)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&scratch);

    // The record is complete: remember the run and let the next one start, while the view may
    // still show the final state.
    let mut record_failed = false;
    for report in &shutdown.reports {
        if let Some(note) = &report.note {
            eprintln!("warning: the {}: {note}", report.name);
        }
        if let Some(problem) = &report.problem {
            record_failed = true;
            eprintln!(
                "error: the {} could not be written completely ({} events lost): {problem}",
                report.name, report.undelivered
            );
        }
    }
    history.record(&result.model);
    if let Err(e) = history.save(&journal_dir) {
        eprintln!(
            "warning: could not save run history in {}: {e}",
            journal_dir.display()
        );
    }
    drop(lock);
    for (name, handle) in shutdown.views {
        if let Some(problem) = handle.join(&name).problem {
            eprintln!("warning: the view stopped early: {problem}");
        }
    }
    let code = if result.cancelled {
        exit::INTERRUPTED
    } else if result.status == DeploymentState::Deployed && !record_failed {
        exit::OK
    } else {
        exit::FAILED
    };
    if record_failed && result.status == DeploymentState::Deployed && !result.cancelled {
        eprintln!("error: deployed, but the run's record is incomplete (see above)");
    }
    // The process exits next: freeing a 10,000-stack plan and model piece by piece only costs
    // time (~0.1 s), so they are left to the operating system.
    std::mem::forget((manifest, plan, result));
    Ok(code)
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed) stop the run cleanly: stacks get SIGINT,
/// then SIGKILL after the grace period. A second signal forces it: SIGKILL now.
fn watch_signals(cancel: Cancel) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            cancel.escalate();
        }
    });
}
