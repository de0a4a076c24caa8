//! `cloud replay <ID> [-e ENV] [RUN] [--speed N | --instant]`: a past run shown again through
//! the real views (and the dashboard, with `--serve`), its events published at their recorded
//! pace, N times faster, or at once.
//!
//! The run is found as `cloud history` lists it and read as `cloud events` reads it: from the
//! DynamoDB table when one is configured, else the journals — from the local journal whenever
//! this machine has it (whole, where the table may hold items cut to fit; and read straight
//! into events, as `cloud status` reads it). As `cloud watch`
//! does, the views are the one sink on a bus of their own; their clock ([`Clock::Replay`])
//! reads the replayed time, so elapsed times and ETAs show what they showed then. The exit
//! code is the run's: 0 deployed, 1 failed or killed; 130 when the replay is stopped.

use std::sync::Arc;
use std::time::Duration;

use super::assemble;
use super::shared::{self, Outcome};
use crate::bus::Publisher;
use crate::cancel::Cancel;
use crate::cli;
use crate::error::{Error, Kind};
use crate::event::{format_timestamp, Event, EventData};
use crate::manifest::Header;
use crate::progress::{self, Model};
use crate::server::AfterRun;
use crate::settings::{replay_pace, Pace, Settings, Show};
use crate::store::audit::{Filter, ReadError, RunSummary, Source};
use crate::store::journal;
use crate::view::{Clock, Replay};

pub fn run(settings: &Settings, args: cli::Replay) -> Outcome {
    let pace = replay_pace(args.speed, args.instant)?;
    let registry = shared::registry();
    let manifest = shared::load_header(settings, &registry, &args.id, args.environment.as_deref())?;
    let rt = shared::runtime()?;
    let source = shared::open_trail(&rt, &args.store, &manifest)?;
    let run = find_run(&rt, &source, &manifest, &args)?;
    let events = read_run(&rt, &source, &manifest, &run)?;
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(Error::failed(format!(
            "run {} holds no event ({})",
            run.run_id,
            source.describe()
        )));
    };
    let (first_time, last_time, last_sequence) = (first.timestamp, last.timestamp, last.sequence);
    let ended = matches!(last.data, EventData::DeploymentComplete(_));

    let env = run.environment.clone();
    let speed = match pace {
        Pace::Speed(n) => format!("{n}×"),
        Pace::Instant => "instant".into(),
    };
    let clock = Arc::new(Replay::new(format!("[replay {speed}]"), first_time));
    eprintln!(
        "Replaying {}-{env} (run {}, {speed})...",
        manifest.deployment_id, run.run_id
    );
    let server = shared::serve_deploy(
        args.serve.serve.as_deref(),
        settings,
        &manifest.deployment_id,
        &env,
    )?;
    let cancel = Cancel::new();
    shared::stop_on_signals(cancel.clone());
    let show = Show::new(settings, args.output, args.interactive, args.exit_on_done);
    let mut view = assemble::view(settings, show, &cancel);
    view.control.clock = Clock::Replay(Arc::clone(&clock));
    let scratch = std::env::temp_dir().join(format!("cloud-replay-{}", std::process::id()));
    // Only the views (and the dashboard's hub): the run was recorded when it ran.
    let bus = assemble::bus(&scratch, None, server.as_ref().map(|s| s.hub.clone()), view)?;
    let publisher = bus.publisher();
    let (stopped, model, shutdown) = rt.block_on(async {
        let mut model = None;
        let stopped = tokio::select! {
            () = play(events, pace, &clock, &publisher, &mut model) => false,
            () = cancel.cancelled() => true,
        };
        // The views' clock stays where the replay ended.
        clock.set(clock.now().min(last_time), 0.0);
        if let Some(model) = &model {
            publisher.settle(model);
        }
        (stopped, model, bus.shutdown(Duration::from_secs(2)).await)
    });
    for (name, handle) in shutdown.views {
        if let Some(problem) = handle.join(&name).problem {
            eprintln!("warning: the view stopped early: {problem}");
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if let Some(server) = server {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
        let after = AfterRun::decide(args.serve.serve_for, terminal, stopped);
        let cancel = cancel.clone();
        server.after_run(
            after,
            async move { cancel.cancelled().await },
            shared::LINGER,
        );
    }

    if stopped {
        return Err(Error::shown(Kind::Interrupted));
    }
    if !ended {
        let at = format_timestamp(&last_time);
        if shared::is_running(&rt, &source, &manifest, &env, &run.run_id) {
            eprintln!(
                "run {} is still going on: replayed to its last event so far, #{last_sequence} \
                 at {at} (`cloud status` or `cloud logs --follow` follow it)",
                run.run_id
            );
            return Ok(());
        }
        eprintln!(
            "the run ended without deployment_complete (killed?): replayed to its last event \
             #{last_sequence} at {at}"
        );
        return Err(Error::shown(Kind::Failed));
    }
    // The views have shown how it ended.
    match model {
        Some(m) if m.succeeded() => Ok(()),
        _ => Err(Error::shown(Kind::Failed)),
    }
}

/// The run `RUN` names (of `-e ENV` when given), or the latest one; as `cloud history` lists them.
fn find_run(
    rt: &tokio::runtime::Runtime,
    source: &Source,
    manifest: &Header,
    args: &cli::Replay,
) -> Result<RunSummary, Error> {
    let env = args.environment.as_deref();
    let mut runs = rt.block_on(source.runs(env))?;
    let found = match &args.run {
        Some(id) => runs.into_iter().find(|r| r.run_id == *id),
        None => runs.pop(),
    };
    found.ok_or_else(|| {
        let id = &manifest.deployment_id;
        let in_env = env.map(|e| format!(" in {e}")).unwrap_or_default();
        let listed = format!(
            "cloud history {id}{}",
            env.map(|e| format!(" -e {e}")).unwrap_or_default()
        );
        let what = match &args.run {
            Some(run) => format!("{id} has no run `{}`{in_env}", run.escape_debug()),
            None => format!("{id} has no recorded run{in_env}"),
        };
        Error::input(format!("{what} ({})", source.describe()))
            .hint(format!("the runs there are listed by `{listed}`"))
    })
}

/// Every event of `run`, in order: from its journal when this machine has it (read as `cloud
/// status` reads it), else from the table (passing over items cut beyond reading, said once).
fn read_run(
    rt: &tokio::runtime::Runtime,
    source: &Source,
    manifest: &Header,
    run: &RunSummary,
) -> Result<Vec<Event>, Error> {
    let path = journal::path(&journal::dir(&manifest.dir, &run.environment), &run.run_id);
    if path.is_file() {
        let read = journal::read(&path).map_err(|e| ReadError::Journal(path.clone(), e))?;
        for skipped in &read.skipped {
            eprintln!("warning: skipped a line of the journal: {skipped}");
        }
        return Ok(read.events);
    }
    let filter = Filter {
        environment: Some(run.environment.clone()),
        run_id: Some(run.run_id.clone()),
        ..Filter::default()
    };
    let records = rt.block_on(source.events(&filter))?;
    let total = records.len();
    let mut events: Vec<Event> = records.into_iter().filter_map(|r| r.event).collect();
    if events.len() < total {
        eprintln!(
            "warning: {} events of run {} were cut beyond reading to fit {}; the replay passes over them",
            total - events.len(),
            run.run_id,
            source.describe()
        );
    }
    events.sort_by_key(|e| e.sequence);
    Ok(events)
}

/// Publishes `events` as they were emitted: each at its recorded time from the first, divided
/// by the speed, or all at once; the views' clock follows.
async fn play(
    events: Vec<Event>,
    pace: Pace,
    clock: &Replay,
    publisher: &Publisher,
    model: &mut Option<Model>,
) {
    let Some(first) = events.first().map(|e| e.timestamp) else {
        return;
    };
    let start = tokio::time::Instant::now();
    if let Pace::Speed(speed) = pace {
        clock.set(first, speed);
    }
    for event in events {
        match pace {
            Pace::Speed(speed) => {
                let offset = (event.timestamp - first).to_std().unwrap_or_default();
                tokio::time::sleep_until(start + offset.div_f64(speed)).await;
            }
            Pace::Instant => clock.set(event.timestamp, 0.0),
        }
        let m = progress::fold(model, &event);
        publisher.send(Arc::new(event), m);
    }
}
