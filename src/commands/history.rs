//! `cloud history <ID> [-e ENV]`: every run, oldest first — when it started and ended, how
//! it ended, its stacks deployed / failed / skipped / blocked, how long it took and who ran it. From
//! the DynamoDB table when one is configured, else from the journals. A run without an end is
//! counted from its events, folded by the one reducer as `cloud status` folds them.

use std::io::Write;

use super::shared::{self, Outcome};
use crate::cli::{self, Output};
use crate::progress::Model;
use crate::settings::Settings;
use crate::store::audit::{Filter, RunSummary};
use crate::words::format_duration;

pub fn run(settings: &Settings, args: cli::HistoryArgs) -> Outcome {
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, args.environment.as_deref())?;
    let rt = shared::runtime()?;
    let header = manifest.header();
    let source = shared::open_trail(&rt, &args.store, &header)?;
    let mut runs = rt.block_on(source.runs(args.environment.as_deref()))?;
    for run in runs.iter_mut().filter(|r| r.end.is_none()) {
        if shared::is_running(&rt, &source, &header, &run.environment, &run.run_id) {
            run.status = "running".into();
            run.reason = None;
        }
        let filter = Filter {
            environment: Some(run.environment.clone()),
            run_id: Some(run.run_id.clone()),
            ..Filter::default()
        };
        let mut events: Vec<_> = rt
            .block_on(source.events(&filter))?
            .into_iter()
            .filter_map(|r| r.event)
            .collect();
        events.sort_by_key(|e| e.sequence);
        if let Some(model) = Model::from_events(&events) {
            let s = &model.summary;
            run.total_stacks = s.total_stacks;
            run.deployed_stacks = s.deployed_stacks;
            run.failed_stacks = s.failed_stacks;
            run.skipped_stacks = s.skipped_stacks;
            run.blocked_stacks = s.blocked_stacks;
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match args.output {
        Output::Json => runs.iter().try_for_each(|r| {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)
        }),
        Output::Text if runs.is_empty() => {
            eprintln!(
                "{} has no recorded run{} ({})",
                manifest.deployment_id,
                args.environment
                    .as_deref()
                    .map(|e| format!(" in {e}"))
                    .unwrap_or_default(),
                source.describe()
            );
            Ok(())
        }
        Output::Text => out.write_all(table(&runs).as_bytes()).and_then(|()| {
            // Where the runs leave each stack's drift health (one environment only).
            let Some(env) = args.environment.as_deref() else {
                return Ok(());
            };
            let health = shared::health(&rt, &source, &header, env).unwrap_or_default();
            // Said when something drifted, or after a drift check (a deploy leaves its stacks
            // in sync: not worth a line of its own).
            let checked = runs
                .last()
                .is_some_and(|r| r.operation == crate::event::Operation::Drift);
            if !checked && !health.values().any(crate::health::Health::is_drifted) {
                return Ok(());
            }
            match health_line(&manifest, &health) {
                Some(line) => writeln!(out, "\n{line}"),
                None => Ok(()),
            }
        }),
    };
    let _ = written.and_then(|()| out.flush());
    Ok(())
}

/// `Health: 1 drifted (security, since 2026-12-04 05:20 UTC); 10 in sync; 1 unknown`, once
/// any stack was ever checked.
fn health_line(
    manifest: &crate::executor::Manifest,
    health: &std::collections::BTreeMap<String, crate::health::Health>,
) -> Option<String> {
    if health.is_empty() {
        return None;
    }
    let mut drifted = Vec::new();
    let (mut in_sync, mut unknown) = (0, 0);
    for stack in &manifest.stacks {
        match health.get(&stack.name) {
            Some(h) if h.is_drifted() => {
                drifted.push(format!("{} {}", stack.name, crate::health::words(Some(h))))
            }
            Some(_) => in_sync += 1,
            None => unknown += 1,
        }
    }
    let mut parts = Vec::new();
    if !drifted.is_empty() {
        parts.push(format!(
            "{} drifted ({})",
            drifted.len(),
            drifted.join("; ")
        ));
    }
    parts.push(format!("{in_sync} in sync"));
    if unknown > 0 {
        parts.push(format!("{unknown} unknown (never checked)"));
    }
    Some(format!("Health: {}", parts.join("; ")))
}

/// The runs as aligned columns.
pub fn table(runs: &[RunSummary]) -> String {
    let head = [
        "START (UTC)",
        "END",
        "ENV",
        "OPERATION",
        "STATUS",
        "DONE",
        "FAILED",
        "SKIPPED",
        "BLOCKED",
        "DURATION",
        "USER",
        "RUN",
    ];
    let short = |t: &str| t.get(..19).unwrap_or(t).replace('T', " ");
    let rows: Vec<[String; 12]> = runs
        .iter()
        .map(|r| {
            [
                short(&r.start),
                r.end.as_deref().map(short).unwrap_or_else(|| "-".into()),
                r.environment.clone(),
                r.operation.as_str().into(),
                match &r.reason {
                    Some(why) => format!("{} ({why})", r.status),
                    None => r.status.clone(),
                },
                r.deployed_stacks.to_string(),
                r.failed_stacks.to_string(),
                r.skipped_stacks.to_string(),
                r.blocked_stacks.to_string(),
                r.duration_seconds
                    .map(format_duration)
                    .unwrap_or_else(|| "-".into()),
                r.user.clone().unwrap_or_else(|| "-".into()),
                r.run_id.clone(),
            ]
        })
        .collect();
    let mut widths = head.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.push_str(parts.join("  ").trim_end());
        text.push('\n');
    };
    line(head.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}
