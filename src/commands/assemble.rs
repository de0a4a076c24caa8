//! Where a run's events go: the one assembly of the bus. A deploy or a destroy records its run
//! (journal, file log, history, and the audit trail, notifications and reports it asks for),
//! may feed a server's hub, and shows it in a view; `cloud watch` only shows one. Adding a sink
//! is one file under `sink/` and its place in [`recorders`].

use std::path::{Path, PathBuf};

use crate::bus::{Bus, Sink};
use crate::cancel::Cancel;
use crate::error::Error;
use crate::executor::Manifest;
use crate::server::hub::{Hub, HubSink};
use crate::settings::{RunSettings, Settings, Show};
use crate::sink::cloudwatch::CloudWatchSink;
use crate::sink::dynamodb::DynamoSink;
use crate::sink::filelog::FileLogSink;
use crate::sink::history::HistorySink;
use crate::sink::journal::JournalSink;
use crate::sink::notify::Notifier;
use crate::sink::report::ReportSink;
use crate::store::dynamodb::Target;
use crate::store::history::RunHistory;
use crate::view::{Clock, Control, Palette, ViewSink};

/// What the recording sinks need to know of a run.
pub struct RunRecord<'a> {
    pub manifest: &'a Manifest,
    pub run: &'a RunSettings,
    pub run_id: &'a str,
    pub user: Option<String>,
    /// `journal/<env>/` of the deployment.
    pub journal_dir: &'a Path,
    /// What earlier runs left: the history sink carries it on.
    pub history: RunHistory,
    /// The DynamoDB audit trail, when one is configured.
    pub dynamodb: Option<Target>,
}

/// The runtime a run's tasks (the orchestrator, a followed WebSocket) go on. Sinks are
/// threads, each with its own runtime where it needs one: none needs this one entered.
pub fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(started)
}

/// A machine that cannot give a run a thread or a runtime.
fn started(e: std::io::Error) -> Error {
    Error::internal(format!("cannot start the run: {e}"))
}

/// The view `show` asks for; `cancel` is what it stops the run with (a key, as Ctrl-C).
pub fn view(settings: &Settings, show: Show, cancel: &Cancel) -> ViewSink {
    ViewSink {
        kind: show.view,
        control: Control {
            palette: Palette::new(settings.color),
            exit_on_done: show.exit_on_done,
            cancel: cancel.clone(),
            github_actions: settings.github_actions,
            clock: Clock::Real,
        },
    }
}

/// Every event goes to these, in this order: the sinks that record the run (none for a run
/// watched from elsewhere), a server's hub, the view. Queues that overflow spill to `scratch`.
pub fn bus(
    scratch: &Path,
    record: Option<RunRecord>,
    hub: Option<Hub>,
    view: ViewSink,
) -> Result<Bus, Error> {
    let mut sinks = match record {
        Some(record) => recorders(record)?,
        None => Vec::new(),
    };
    sinks.extend(hub.map(|hub| boxed(HubSink { hub })));
    sinks.push(boxed(view));
    let mut bus = Bus::new(scratch);
    for sink in sinks {
        bus.attach(sink).map_err(started)?;
    }
    Ok(bus)
}

/// The sinks that keep the run's record, as the run asks for them, in the order they attach.
fn recorders(r: RunRecord) -> Result<Vec<Box<dyn Sink>>, Error> {
    let (manifest, run, env) = (r.manifest, r.run, r.run.environment.as_str());
    let journal = JournalSink::create(r.journal_dir, r.run_id).map_err(|e| {
        Error::failed(format!(
            "cannot write the journal in {}: {e}",
            r.journal_dir.display()
        ))
    })?;
    let operation = run.operation.as_str();
    let header = format!(
        "cloud {operation} {} -e {env} · run {} · user {}",
        manifest.deployment_id,
        r.run_id,
        r.user.as_deref().unwrap_or("unknown")
    );
    let file_log = FileLogSink::create(&manifest.dir, operation, env, &header).map_err(|e| {
        Error::failed(format!(
            "cannot write the file log in {}: {e}",
            crate::store::filelog::dir(&manifest.dir).display()
        ))
    })?;
    let dynamodb = r.dynamodb.map(|target| DynamoSink {
        target,
        manifest_dir: manifest.dir.clone(),
        environment: env.to_owned(),
        run_id: r.run_id.to_owned(),
        user: r.user.clone(),
        journal: journal.path().to_path_buf(),
        journal_flushed: Some(journal.flushed()),
    });
    let cloudwatch_region = manifest
        .event_store
        .as_ref()
        .and_then(|s| s.cloudwatch.as_ref())
        .map(|c| c.region.clone());
    let cloudwatch = (run.cloudwatch || cloudwatch_region.is_some()).then(|| CloudWatchSink {
        deployment_id: manifest.deployment_id.clone(),
        environment: env.to_owned(),
        region: cloudwatch_region.flatten(),
        start: chrono::Utc::now(),
    });
    let notifications = manifest.notifications.as_ref().filter(|_| run.notify);
    let notifier = notifications.and_then(|n| Notifier::for_run(n, r.journal_dir));
    let report = (run.report.is_some() || run.junit.is_some()).then(|| ReportSink {
        json: run.report.clone(),
        junit: run.junit.clone(),
    });
    let history = HistorySink {
        dir: PathBuf::from(r.journal_dir),
        history: r.history,
    };

    let mut sinks = vec![boxed(journal), boxed(file_log)];
    sinks.extend(dynamodb.map(boxed));
    sinks.extend(cloudwatch.map(boxed));
    sinks.push(boxed(history));
    sinks.extend(notifier.map(boxed));
    sinks.extend(report.map(boxed));
    Ok(sinks)
}

fn boxed(sink: impl Sink + 'static) -> Box<dyn Sink> {
    Box::new(sink)
}
