//! A deploy, a destroy or a plan, from its decided [`RunSettings`] to its exit code: plan, take the
//! locks, assemble the bus, run the orchestrator, shut the bus down in order, say what went
//! wrong with the record, and map the outcome to an exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::assemble::{self, RunRecord};
use super::shared::{self, Outcome};
use crate::bus::Shutdown;
use crate::cancel::Cancel;
use crate::error::{Error, Kind};
use crate::event::{DeploymentState, ErrorDetail, Operation};
use crate::executor::{Manifest, Registry};
use crate::orchestrator::{self, Previous, RunOptions, RunResult, SkipPolicy};
use crate::plan::saved::{self, SavedPlan, SavedStack};
use crate::plan::{fingerprint, markdown, Plan};
use crate::server::{AfterRun, Server};
use crate::settings::{RunSettings, Settings};
use crate::store::dynamodb::{Table, Target};
use crate::store::groups::{self, Records};
use crate::store::history::RunHistory;
use crate::store::lock::{Holder, LeftRunning, Lock};
use crate::store::table_lock::{self, Refused, TableLock, TableLockError, Taken, TookOver};
use crate::store::{checkpoint, journal};

/// How long the recording sinks get to finish once the run is over.
const DRAIN: Duration = Duration::from_secs(10);

/// How the run went, for [`finish`].
struct Ended {
    result: RunResult,
    /// Why the run's lock was lost while it went on (the run failed for it).
    lock_lost: Option<ErrorDetail>,
    /// What went wrong with the table lock after the run (only said).
    lock_trouble: Option<String>,
}

/// Runs a deploy, a destroy or a plan of `manifest` to its end.
pub fn execute(
    settings: &Settings,
    registry: &Registry,
    manifest: Manifest,
    run: RunSettings,
) -> Outcome {
    let env = run.environment.clone();
    let journal_dir = journal::dir(&manifest.dir, &env);
    let mut history = RunHistory::load(&journal_dir);
    // A run killed before history.json caught up still left its journal.
    history.note_interrupted_run(&journal_dir);
    let deploy_plan = shared::plan(&manifest, &history)?;
    shared::preflight(registry, &manifest)?;
    let plan = match run.operation {
        Operation::Deploy | Operation::Plan | Operation::Drift => deploy_plan,
        // `destroy --changed`: the selection alone (it holds its dependents).
        Operation::Destroy | Operation::Rollback => match &run.only {
            Some(only) => deploy_plan.subset(|name| only.contains(name)).reversed(),
            None => deploy_plan.reversed(),
        },
    };
    let dynamodb_target = shared::table_target(&run.store, Some(&manifest.header()))?;
    if dynamodb_target.is_some() {
        learn_trail_health(&run, &manifest, &mut history);
    }
    let heal = match run.only_drifted {
        true => match drifted_stacks(&manifest, &env, &history)? {
            Some(heal) => Some(heal),
            None => return Ok(()),
        },
        false => None,
    };
    // Before the lock: a taken port or a refused address is bad input, and nothing ran.
    let server = shared::serve_deploy(
        run.serve.as_deref(),
        settings,
        &manifest.deployment_id,
        &env,
    )?;

    let run_id = journal::new_run_id();
    let holder = Holder::me(&run_id);
    let scratch = std::env::temp_dir().join(format!("cloud-{run_id}"));
    let mut opts = options(&run, &plan, &history, &holder, scratch.clone());
    opts.skip.heal = heal;
    // `deploy --plan`: refused before anything runs when what was reviewed changed.
    if let Some(apply) = &opts.saved {
        let digest = saved::manifest_digest(&manifest.file)?;
        apply
            .plan
            .changes(&digest, &digests_now(&plan, &opts))
            .refuse(&apply.dir)?;
    }
    let lock = take_lock(&journal_dir, &manifest.deployment_id, &env, &holder)?;
    let runtime = assemble::runtime(2)?;
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
    let bus = assemble::bus(
        &scratch,
        Some(RunRecord {
            manifest: &manifest,
            run: &run,
            run_id: &run_id,
            user: holder.user.clone(),
            journal_dir: &journal_dir,
            history,
            dynamodb: dynamodb_target,
        }),
        server.as_ref().map(|s| s.hub.clone()),
        assemble::view(settings, run.show, &cancel),
    )?;

    shared::stop_on_signals(cancel.clone());
    let (ended, shutdown) = runtime.block_on(async {
        let mut result = orchestrator::run(&plan, &opts, bus.publisher(), cancel.clone()).await;
        // The run's model is serialized for its checkpoint while the sinks drain.
        let journal = journal::path(&journal_dir, &run_id);
        let keeping = checkpoint::Keeping::start(&mut result.model, &journal);
        // Lost while the run went on, it failed the run; lost after, it is only said.
        let lock_lost = cancel.halt_reason().cloned();
        let shutdown = bus.shutdown(DRAIN).await;
        // The record is complete: the next run, here or elsewhere, may start.
        let lock_trouble = match table_lock {
            Some(lock) => lock.release().await,
            None => None,
        };
        // Beside the complete journal, for `cloud status` to read instead of it.
        let complete =
            (shutdown.reports.iter()).all(|r| r.name != "journal" || r.problem.is_none());
        result.model = keeping.write(&journal, complete);
        let ended = Ended {
            result,
            lock_lost,
            lock_trouble,
        };
        (ended, shutdown)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    // The tools' plan files are copied out of the scratch folder before it goes.
    let saved = save_plan(settings, &run, &manifest, &ended.result);
    let _ = std::fs::remove_dir_all(&scratch);
    // The printed link goes on answering after the run: until Ctrl-C on a terminal, for
    // `--serve-for`, or (unattended, e.g. CI) not at all, so nothing hangs.
    let after = AfterRun::decide(
        run.serve_for,
        std::io::IsTerminal::is_terminal(&std::io::stdin()),
        ended.result.cancelled,
    );
    let server = server.map(|s| (s, after, cancel));
    let outcome = finish(&ended, shutdown, lock, server, run.operation)
        .and(saved)
        .and_then(|()| {
            // `--detailed-exitcode`: a plan that would change something exits 2; so does a
            // drift check that found drift.
            let model = &ended.result.model;
            let changes = run.detailed_exitcode && model.plan_totals.changed_stacks > 0;
            let drifted = run.operation == Operation::Drift && model.drift_totals.drifted > 0;
            match changes || drifted {
                true => Err(Error::shown(Kind::Changes)),
                false => Ok(()),
            }
        });
    // The process exits next: freeing a 10,000-stack plan and model piece by piece only costs
    // time (~0.1 s), so they are left to the operating system.
    std::mem::forget((manifest, plan, ended));
    outcome
}

/// Each stack's health as the shared trail (DynamoDB) tells it, where it is newer than what
/// this machine's history knows: a drift found elsewhere is never skipped here. A trail that
/// cannot be read is said, and the local history used.
fn learn_trail_health(run: &RunSettings, manifest: &Manifest, history: &mut RunHistory) {
    let trail = shared::runtime().and_then(|rt| {
        let header = manifest.header();
        let source = shared::open_trail(&rt, &run.store, &header)?;
        shared::health(&rt, &source, &header, &run.environment)
    });
    match trail {
        Ok(trail) => {
            for (stack, health) in trail {
                let entry = history.stacks.entry(stack).or_default();
                if entry
                    .health
                    .as_ref()
                    .is_none_or(|local| local.checked <= health.checked)
                {
                    entry.health = Some(health);
                }
            }
        }
        Err(e) => eprintln!(
            "warning: could not read the stacks' drift health from the audit trail ({e}); \
             using this machine's history"
        ),
    }
}

/// `deploy --only-drifted`: the stacks drift checks found drifted; `None` (said) when none
/// is; an error when no check was ever recorded (nothing to go on).
fn drifted_stacks(
    manifest: &Manifest,
    env: &str,
    history: &RunHistory,
) -> Result<Option<std::collections::BTreeSet<String>>, Error> {
    let known: Vec<(&String, &crate::health::Health)> = manifest
        .stacks
        .iter()
        .filter_map(|s| Some((&s.name, history.stacks.get(&s.name)?.health.as_ref()?)))
        .collect();
    if known.is_empty() {
        return Err(Error::input(format!(
            "--only-drifted: no drift check of {} in {env} is recorded",
            manifest.deployment_id
        ))
        .hint(format!(
            "check first: cloud drift {} -e {env}",
            manifest.deployment_id
        )));
    }
    let drifted: std::collections::BTreeSet<String> = known
        .iter()
        .filter(|(_, h)| h.is_drifted())
        .map(|(name, _)| (*name).clone())
        .collect();
    if drifted.is_empty() {
        let last = known
            .iter()
            .map(|(_, h)| h.checked)
            .max()
            .expect("not empty");
        eprintln!(
            "Nothing has drifted in {env} (last checked {}): nothing to deploy.",
            last.format("%Y-%m-%d %H:%M UTC")
        );
        return Ok(None);
    }
    Ok(Some(drifted))
}

/// What the orchestrator needs of the run: the decided flags, what earlier runs left, and
/// which stacks it may skip.
fn options(
    run: &RunSettings,
    plan: &Plan,
    history: &RunHistory,
    holder: &Holder,
    scratch: PathBuf,
) -> RunOptions {
    let specs: Vec<_> = plan.stacks.iter().map(|s| &s.spec).collect();
    let skip = SkipPolicy {
        force: run.force,
        only: run.only.clone(),
        files: match run.operation {
            // With --force too: what it deploys is recorded, so the next run can skip it.
            Operation::Deploy | Operation::Plan | Operation::Drift => {
                fingerprint::stacks_files(&specs)
            }
            _ => plan.stacks.iter().map(|_| None).collect(),
        },
        heal: None,
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
                    health: h.health.clone(),
                },
            )
        })
        .collect();
    RunOptions {
        environment: run.environment.clone(),
        operation: run.operation,
        parallelism: run.parallelism,
        fail_fast: run.fail_fast,
        grace: run.grace,
        run_id: holder.run_id.clone(),
        user: holder.user.clone(),
        scratch,
        previous,
        skip,
        rollback_on_failure: run.rollback_on_failure,
        saved: run.saved.clone(),
        no_retry: run.no_retry,
    }
}

/// Per stack: its name, its files' fingerprint and its inputs' digest as a run would start
/// it now (its dependencies' outputs as the last runs left them).
fn digests_now<'p>(
    plan: &'p Plan,
    opts: &'p RunOptions,
) -> Vec<(&'p str, Option<&'p str>, String)> {
    let empty = crate::event::Outputs::new();
    plan.stacks
        .iter()
        .enumerate()
        .map(|(i, stack)| {
            let deps: Vec<_> = stack
                .spec
                .dependencies
                .iter()
                .map(|d| {
                    let shown = opts.previous.get(d).map_or(&empty, |p| &p.outputs);
                    (d.as_str(), shown)
                })
                .collect();
            let files = opts.skip.files.get(i).and_then(|f| f.as_deref());
            (
                stack.name(),
                files,
                saved::inputs_digest(&opts.environment, &stack.spec.inputs, &deps),
            )
        })
        .collect()
}

/// A plan run with `--out` or `--markdown`: writes them once the plan succeeded (a failed
/// plan is not one to apply).
fn save_plan(
    settings: &Settings,
    run: &RunSettings,
    manifest: &Manifest,
    result: &RunResult,
) -> Outcome {
    // Under GitHub Actions the plan's summary goes to the job's summary page too.
    let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|p| settings.github_actions && !p.is_empty())
        .map(PathBuf::from);
    if !run.operation.changes_nothing()
        || (run.out.is_none() && run.markdown.is_none() && step_summary.is_none())
    {
        return Ok(());
    }
    // A drift check's findings, errors included (they are findings too), unless it was stopped.
    if run.operation == Operation::Drift {
        if result.cancelled {
            return Ok(());
        }
        return markdown::write(
            run.markdown.as_deref(),
            step_summary.as_deref(),
            &result.model,
        );
    }
    if result.cancelled || result.status != DeploymentState::Deployed {
        for what in run.out.iter().chain(&run.markdown) {
            eprintln!(
                "note: the plan did not succeed: nothing was written to {}",
                what.display()
            );
        }
        return Ok(());
    }
    markdown::write(
        run.markdown.as_deref(),
        step_summary.as_deref(),
        &result.model,
    )?;
    let Some(dir) = &run.out else {
        return Ok(());
    };
    let mut stacks = BTreeMap::new();
    let mut tool_files = BTreeMap::new();
    for (name, digests) in &result.planned {
        let plan = result
            .model
            .stacks
            .iter()
            .find(|s| &s.name == name)
            .and_then(|s| s.plan.clone())
            .unwrap_or_default();
        if let Some(file) = &digests.plan_file {
            tool_files.insert(name.clone(), file.clone());
        }
        stacks.insert(
            name.clone(),
            SavedStack {
                fingerprint: digests.fingerprint.clone(),
                files: digests.files.clone(),
                inputs: digests.inputs.clone(),
                counts: plan.counts,
                changes: plan.changes,
                resources: plan.resources,
                provisional: plan.provisional,
                no_preview: plan.no_preview,
                plan_file: None,
            },
        );
    }
    let saved = SavedPlan {
        version: saved::VERSION,
        deployment_id: manifest.deployment_id.clone(),
        environment: run.environment.clone(),
        manifest_digest: saved::manifest_digest(&manifest.file)?,
        git_commit: saved::git_commit(&manifest.dir),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stacks,
    };
    saved.write(dir, &tool_files)?;
    eprintln!(
        "note: plan saved in {} (apply it with `cloud deploy {} -e {} --plan {}`)",
        dir.display(),
        manifest.deployment_id,
        run.environment,
        dir.display()
    );
    Ok(())
}

/// Says what the run's end left to say (the record, the locks, the view, the sinks'
/// warnings), lets the next run start, and gives the outcome.
fn finish(
    ended: &Ended,
    shutdown: Shutdown,
    lock: Lock,
    server: Option<(Server, AfterRun, Cancel)>,
    operation: Operation,
) -> Outcome {
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
    match (&ended.lock_lost, &ended.lock_trouble) {
        // The run failed for it; the views said so as it happened.
        (Some(lost), _) => eprintln!(
            "error: {}\n  help: {}",
            lost.message,
            lost.details.as_deref().unwrap_or_default()
        ),
        (None, Some(trouble)) => eprintln!("warning: {trouble}"),
        (None, None) => {}
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
    if let Some((server, after, cancel)) = server {
        // Clients get what is left of the run, then a close that says why.
        server.after_run(
            after,
            async move { cancel.cancelled().await },
            shared::LINGER,
        );
    }
    // A failed or stopped run was shown by the views as it went.
    if ended.result.cancelled {
        Err(Error::shown(Kind::Interrupted))
    } else if ended.result.status != DeploymentState::Deployed {
        Err(Error::shown(Kind::Failed))
    } else if record_failed {
        Err(Error::failed(format!(
            "{}, but the run's record is incomplete (see above)",
            crate::words::done(operation)
        )))
    } else {
        Ok(())
    }
}

/// Takes the local lock of the deployment and environment, or says who holds it (exit 3).
/// Holding it: stacks' programs of a dead run (`kill -9`) that still run keep this run from
/// starting beside them (exit 3); records of those gone are dropped. The programs this run
/// starts are recorded beside the lock.
fn take_lock(
    journal_dir: &Path,
    deployment: &str,
    env: &str,
    holder: &Holder,
) -> Result<Lock, Error> {
    let lock = Lock::acquire(journal_dir, &format!("{deployment}-{env}"), holder)?;
    let records = Records::beside_lock(journal_dir);
    let left = records.left_running();
    if !left.is_empty() {
        return Err(Error::locked(
            LeftRunning {
                deployment: deployment.to_owned(),
                environment: env.to_owned(),
                programs: groups::list(&left, chrono::Utc::now(), crate::words::format_duration),
                records: records.dir().to_path_buf(),
            }
            .to_string(),
        ));
    }
    crate::executor::process::record_groups(records, &holder.run_id);
    Ok(lock)
}

/// Takes the lock item in the DynamoDB table, or says who holds it (exit 3) or why the table
/// cannot be asked (exit 1: without it two machines could deploy at once, so nothing starts).
fn take_table_lock(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
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
    match taken? {
        (lock, Taken::Free) => Ok(lock),
        (lock, Taken::TookOver(old)) => {
            let note = TookOver {
                deployment,
                environment: env,
                table: &target.table,
                from: &old,
            };
            eprintln!("note: {note}");
            Ok(lock)
        }
    }
}
