//! What each subcommand does. Every failure becomes a [`Failure`] with its exit code.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use crate::cli::{self, ColorChoice, Command, GraphFormat, Output};
use crate::event::{DeploymentState, Operation};
use crate::lock::{Holder, Lock, LockError};
use crate::manifest::{self, Manifest, ManifestError};
use crate::orchestrator::{self, CancelHandle, RunOptions};
use crate::plan::{NoHistory, Plan};
use crate::progress::Model;
use crate::sink::{journal, Bus};
use crate::view::{self, format_duration, Control, ViewKind};

/// Exit codes (DESIGN.md): 0 deployed, 1 a stack failed, 2 bad input, 3 locked, 130 interrupted.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const LOCKED: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
}

/// Why a command stopped: the message for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ManifestError> for Failure {
    fn from(e: ManifestError) -> Self {
        Failure::new(exit::BAD_INPUT, e.render())
    }
}

impl From<LockError> for Failure {
    fn from(e: LockError) -> Self {
        let code = match e {
            LockError::Held { .. } => exit::LOCKED,
            LockError::Io { .. } => exit::FAILED,
        };
        Failure::new(code, format!("error: {e}"))
    }
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: cli::Cli) -> Result<i32, Failure> {
    let global = cli.global;
    match cli.command {
        Command::Deploy(args) => deploy(&global, args),
        Command::Validate(args) => validate(&global, args),
        Command::Graph(args) => graph(&global, args),
        Command::Status(args) => status(&global, args),
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut cli::command(),
                "cloud",
                &mut std::io::stdout(),
            );
            Ok(exit::OK)
        }
    }
}

fn load(global: &cli::Global, id: &str, environment: Option<&str>) -> Result<Manifest, Failure> {
    let manifest = manifest::load(&global.root, id)?;
    if let Some(env) = environment {
        manifest.check_environment(env)?;
    }
    Ok(manifest)
}

fn validate(global: &cli::Global, args: cli::Validate) -> Result<i32, Failure> {
    let manifest = load(global, &args.id, args.environment.as_deref())?;
    let plan = Plan::new(&manifest, &NoHistory);
    println!(
        "{} is valid: {} stacks in {} layers ({})",
        manifest.file.display(),
        plan.stacks.len(),
        plan.total_layers(),
        manifest.environments.join(", ")
    );
    Ok(exit::OK)
}

fn graph(global: &cli::Global, args: cli::Graph) -> Result<i32, Failure> {
    let manifest = load(global, &args.id, None)?;
    let plan = Plan::new(&manifest, &NoHistory);
    let text = match args.format {
        GraphFormat::Text => plan.to_text(),
        GraphFormat::Dot => plan.to_dot(),
        GraphFormat::Json => format!("{:#}\n", plan.to_json()),
    };
    print!("{text}");
    Ok(exit::OK)
}

fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// json / interactive / verbose as asked; otherwise simple on a terminal, verbose elsewhere.
fn choose_view(global: &cli::Global, args: &cli::Deploy) -> ViewKind {
    if args.output == Output::Json {
        ViewKind::Json
    } else if args.interactive {
        ViewKind::Interactive
    } else if global.verbose || !std::io::stdout().is_terminal() || in_ci() {
        ViewKind::Verbose
    } else {
        ViewKind::Simple
    }
}

fn deploy(global: &cli::Global, args: cli::Deploy) -> Result<i32, Failure> {
    let manifest = load(global, &args.id, Some(&args.environment))?;
    if !(args.grace_period.is_finite() && args.grace_period >= 0.0) {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "error: --grace-period must be a number of seconds, 0 or more",
        ));
    }
    refuse_unavailable_executors(&manifest)?;
    let env = args.environment.clone();
    let journal_dir = journal::dir(&manifest.dir, &env);
    let run_id = journal::new_run_id();
    let user = std::env::var("USER").ok();
    let lock = Lock::acquire(
        &journal_dir,
        &format!("{}-{env}", manifest.deployment_id),
        Holder {
            pid: std::process::id(),
            run_id: run_id.clone(),
            user: user.clone(),
            started: crate::event::format_timestamp(&chrono::Utc::now()),
        },
    )?;
    let mut history = journal::History::load(&journal_dir);
    let plan = Plan::new(&manifest, &history);

    let cancel = CancelHandle::default();
    let kind = choose_view(global, &args);
    let (view_tx, view_thread) = view::spawn(
        kind,
        Control {
            color: color_enabled(global.color),
            exit_on_done: args.exit_on_done,
            cancel: cancel.clone(),
        },
    );
    let (journal_tx, journal_thread) = journal::start(&journal_dir, &run_id).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!(
                "error: cannot write the journal in {}: {e}",
                journal_dir.display()
            ),
        )
    })?;
    let mut bus = Bus::new();
    bus.add(journal_tx);
    bus.add(view_tx);

    let scratch = std::env::temp_dir().join(format!("cloud-{run_id}"));
    let opts = RunOptions {
        environment: env,
        operation: Operation::Deploy,
        parallelism: args.parallelism.map(|p| p as usize),
        fail_fast: args.fail_fast,
        grace: Duration::from_secs_f64(args.grace_period),
        run_id,
        user,
        scratch: scratch.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                exit::FAILED,
                format!("error: cannot start the runtime: {e}"),
            )
        })?;
    let result = runtime.block_on(async {
        watch_signals(cancel.clone());
        orchestrator::run(&plan, opts, bus, cancel).await
    });
    // The bus is gone with the run: the views and the journal drain and stop.
    // The journal and history are complete before the view lets go (the interactive view may
    // stay open on the final state): the next run can start meanwhile.
    let journal_result = journal_thread.join();
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&scratch);
    history.record(&result.model);
    if let Err(e) = history.save(&journal_dir) {
        eprintln!(
            "warning: could not save run history in {}: {e}",
            journal_dir.display()
        );
    }
    match journal_result {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("error: the journal could not be written completely: {e}"),
        Err(_) => eprintln!("error: the journal writer crashed"),
    }
    drop(lock);
    let view_result = view_thread.join();
    if let Ok(Err(e)) = view_result {
        // A closed pipe (e.g. `| head`) is no reason to fail a deploy that succeeded.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: the view stopped early: {e}");
        }
    }
    let code = if result.cancelled {
        exit::INTERRUPTED
    } else if result.status == DeploymentState::Deployed {
        exit::OK
    } else {
        exit::FAILED
    };
    // The process exits next: freeing a 10,000-stack plan and model piece by piece only costs
    // time (~0.1 s), so they are left to the operating system.
    std::mem::forget((manifest, plan, result));
    Ok(code)
}

/// The Pulumi executor is not built yet: say so before anything runs, never half-way through.
fn refuse_unavailable_executors(manifest: &Manifest) -> Result<(), Failure> {
    let pulumi: Vec<&str> = manifest
        .stacks
        .iter()
        .filter(|s| matches!(s.executor, manifest::ExecutorSpec::Pulumi))
        .map(|s| s.name.as_str())
        .collect();
    if pulumi.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        exit::BAD_INPUT,
        format!(
            "error: the `pulumi` executor is not in this build yet (stacks: {})\n  --> {}\n  \
             help: run them with `executor: command` and `deploy: pulumi up --stack <ID>-<env> --yes` meanwhile",
            pulumi.join(", "),
            manifest.file.display()
        ),
    ))
}

/// Ctrl-C and SIGTERM stop the run cleanly (stacks get SIGINT, then SIGKILL after the grace).
fn watch_signals(cancel: CancelHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        cancel.cancel();
    });
}

fn status(global: &cli::Global, args: cli::Status) -> Result<i32, Failure> {
    let manifest = load(global, &args.id, Some(&args.environment))?;
    let dir = journal::dir(&manifest.dir, &args.environment);
    let Some(path) = journal::latest_run(&dir) else {
        return Err(Failure::new(
            exit::BAD_INPUT,
            format!(
                "error: {} has no recorded run in {}\n  help: deploy it first: cloud deploy {} -e {}",
                manifest.deployment_id,
                args.environment,
                manifest.deployment_id,
                args.environment
            ),
        ));
    };
    let events = journal::read(&path)
        .map_err(|e| Failure::new(exit::FAILED, format!("error: cannot read the journal: {e}")))?;
    let Some(model) = Model::from_events(&events) else {
        return Err(Failure::new(
            exit::FAILED,
            format!("error: the journal {} holds no event", path.display()),
        ));
    };
    let running = dir.join("lock").exists();
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &model).map_err(std::io::Error::other)
        }
        Output::Text => out.write_all(status_text(&model, &path, running).as_bytes()),
    };
    let _ = written.and_then(|()| writeln!(out));
    Ok(exit::OK)
}

/// `cloud status` for people: where the latest run is, and what went wrong.
fn status_text(model: &Model, journal: &Path, running: bool) -> String {
    let now = chrono::Utc::now();
    let state = if !model.is_finished() && !running {
        "interrupted (the run stopped without finishing)".to_owned()
    } else {
        model.status.as_str().to_owned()
    };
    let mut out = format!(
        "{}-{}: {state}\n  run {} · started {} · {}\n  journal: {}\n{}\n\n",
        model.deployment_id,
        model.environment,
        model.run_id,
        model
            .start_time
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default(),
        format_duration(model.elapsed(now).round() as u64),
        journal.display(),
        view::progress_line(model, now),
    );
    let width = model.stacks.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &model.stacks {
        let mut line = format!(
            "  {} {:width$}  layer {}  {:9}",
            s.status.symbol(),
            s.name,
            s.layer,
            s.status.as_str()
        );
        if let Some(d) = s.duration_seconds {
            line.push_str(&format!("  {}", format_duration(d)));
        }
        if s.resources.total > 0 {
            line.push_str(&format!("  {} resources", s.resources.total));
        }
        if let Some(e) = &s.error {
            line.push_str(&format!("\n      {}: {}", e.code, e.message));
        }
        if let Some(by) = &s.blocked_by {
            line.push_str(&format!("  (blocked by {by})"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
