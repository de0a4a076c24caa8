//! `cloud events <ID>`: the audit trail, from DynamoDB when a table is configured, else from
//! the journals; `cloud events init-table` creates the table; `cloud events sync` sends what
//! waits in the local spool. (Which table a command uses, and opening the trail for reading,
//! are `shared::table_target` and `shared::open_trail`.)

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::shared::{self, open_trail, runtime, table_target, Outcome};
use crate::cli::{self, EventsAction, Output, TableArgs};
use crate::error::Error;
use crate::event::EVENT_TYPES;
use crate::manifest::Header;
use crate::manifest::{did_you_mean, list};
use crate::settings::Settings;
use crate::sink::filelog;
use crate::store::audit::{Filter, Record};
use crate::store::dynamodb::{Table, Target, DEFAULT_TABLE};
use crate::store::spool;

pub fn run(settings: &Settings, args: cli::Events) -> Outcome {
    match args.action {
        Some(EventsAction::InitTable(t)) => init_table(settings, t),
        Some(EventsAction::Sync(t)) => sync(settings, t),
        None => list_events(settings, args),
    }
}

fn list_events(settings: &Settings, args: cli::Events) -> Outcome {
    let id = args.id.unwrap_or_default();
    let registry = shared::registry();
    let manifest = shared::load_header(settings, &registry, &id, args.environment.as_deref())?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, Utc::now()))
        .transpose()?;
    if let Some(t) = &args.type_ {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(Error::input(format!(
                "unknown event type `{}` (--type)",
                t.escape_debug()
            ))
            .hint(format!(
                "{}event types: {}",
                did_you_mean(t, EVENT_TYPES),
                list(EVENT_TYPES)
            )));
        }
    }
    let rt = runtime()?;
    let source = open_trail(&rt, &args.store, &manifest)?;
    let filter = Filter {
        environment: args.environment.clone(),
        since,
        type_: args.type_.clone(),
        stack: args.stack.clone(),
        run_id: args.run.clone(),
    };
    let records = rt.block_on(source.events(&filter))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match args.output {
        Output::Json => records.iter().try_for_each(|r| {
            serde_json::to_writer(&mut out, &r.envelope)?;
            writeln!(out)
        }),
        Output::Text => write_text(&mut out, &records),
    };
    let _ = written.and_then(|()| out.flush());
    if records.is_empty() && args.output == Output::Text {
        eprintln!("no events match (source: {})", source.describe());
    }
    Ok(())
}

/// One line per event, under a heading per run.
fn write_text(out: &mut impl Write, records: &[Record]) -> std::io::Result<()> {
    let mut run: Option<&str> = None;
    let mut line = String::new();
    for r in records {
        if run != Some(r.run_id.as_str()) {
            run = Some(&r.run_id);
            writeln!(
                out,
                "── run {} ({}){}",
                r.run_id,
                r.environment(),
                r.user
                    .as_deref()
                    .map(|u| format!(" by {u}"))
                    .unwrap_or_default()
            )?;
        }
        match &r.event {
            Some(event) => {
                line.clear();
                filelog::line(event, &mut line);
                write!(out, "{line}")?;
            }
            None => writeln!(
                out,
                "{} ?     {} (its data was cut to fit DynamoDB; see --output json)",
                r.envelope["timestamp"].as_str().unwrap_or(""),
                r.envelope["type"].as_str().unwrap_or("")
            )?,
        }
    }
    Ok(())
}

/// `2025-10-09T14:30:00Z`, `2025-10-09T14:30`, `2025-10-09` (UTC), or an age: `45s`, `30m`,
/// `2h`, `7d`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    for form in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(t, form) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let (digits, unit) = t.split_at(t.len().saturating_sub(1));
    let seconds = match (digits.parse::<i64>(), unit) {
        (Ok(n), "s") if n >= 0 => Some(n),
        (Ok(n), "m") if n >= 0 => n.checked_mul(60),
        (Ok(n), "h") if n >= 0 => n.checked_mul(3600),
        (Ok(n), "d") if n >= 0 => n.checked_mul(86_400),
        _ => None,
    };
    seconds
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| {
            Error::input(format!(
                "cannot read `--since {}` as a time",
                text.escape_debug()
            ))
            .hint(
                "write a UTC time (`2025-10-09T14:30:00Z`, `2025-10-09`) or an age \
                 (`45s`, `30m`, `2h`, `7d`)",
            )
        })
}

/// The table `init-table` / `sync` work on, and the deployment folder when one was named.
fn table_args(
    settings: &Settings,
    args: &TableArgs,
    needed: bool,
) -> Result<(Target, Option<Header>), Error> {
    let manifest = match &args.id {
        Some(id) => Some(shared::load_header(
            settings,
            &shared::registry(),
            id,
            None,
        )?),
        None => None,
    };
    match table_target(&args.store, manifest.as_ref())? {
        Some(t) => Ok((t, manifest)),
        None if !needed => Ok((
            Target {
                table: DEFAULT_TABLE.into(),
                region: None,
            },
            manifest,
        )),
        None => Err(Error::input("no DynamoDB table is configured").hint(
            "pass `--dynamodb-table TABLE`, set CLOUD_DYNAMODB_TABLE, or name a deployment \
                 whose manifest has `eventStore: { dynamodb: { table: TABLE } }`",
        )),
    }
}

fn init_table(settings: &Settings, args: TableArgs) -> Outcome {
    let (target, _) = table_args(settings, &args, false)?;
    let rt = runtime()?;
    let table = rt.block_on(Table::connect(&target))?;
    match rt.block_on(table.create())? {
        true => println!("created DynamoDB table {} (on-demand billing)", table.name),
        false => println!("DynamoDB table {} exists already", table.name),
    }
    Ok(())
}

fn sync(settings: &Settings, args: TableArgs) -> Outcome {
    let (target, manifest) = table_args(settings, &args, true)?;
    let dirs: Vec<std::path::PathBuf> = match &manifest {
        Some(m) => vec![m.dir.clone()],
        None => crate::manifest::deployments(&settings.root)
            .iter()
            .map(|id| settings.root.join("cloud").join("deploy").join(id))
            .collect(),
    };
    let rt = runtime()?;
    let table = rt.block_on(Table::connect(&target))?;
    let (mut sent, mut left, mut trouble) = (0, 0, None);
    for dir in &dirs {
        let r = rt.block_on(spool::replay(&table, dir, None, None));
        sent += r.sent;
        left += r.left;
        for problem in &r.problems {
            eprintln!("warning: {problem}");
        }
        trouble = trouble.or(r.trouble);
    }
    let deployment = |d: &Path| {
        d.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let names: Vec<String> = dirs.iter().map(|d| deployment(d)).collect();
    println!(
        "sent {sent} spooled events to DynamoDB table {} ({})",
        table.name,
        if names.is_empty() {
            "no deployments found".into()
        } else {
            names.join(", ")
        }
    );
    if left > 0 {
        return Err(Error::failed(format!(
            "{left} events still wait in the spool: {}",
            trouble.as_ref().map_or("unknown", |t| t.message())
        ))
        .hint("run `cloud events sync` again once the table can be reached"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_times_dates_and_ages() {
        let now: DateTime<Utc> = "2025-10-09T14:30:00Z".parse().unwrap();
        let at = |s: &str| parse_since(s, now).map(|t| t.to_rfc3339());
        assert_eq!(at("2h").unwrap(), "2025-10-09T12:30:00+00:00");
        assert_eq!(at("7d").unwrap(), "2025-10-02T14:30:00+00:00");
        assert_eq!(at("2025-10-01").unwrap(), "2025-10-01T00:00:00+00:00");
        assert_eq!(at("2025-10-01T10:00").unwrap(), "2025-10-01T10:00:00+00:00");
        assert_eq!(
            at("2025-10-01T10:00:00+02:00").unwrap(),
            "2025-10-01T08:00:00+00:00"
        );
        assert!(at("yesterday")
            .unwrap_err()
            .to_string()
            .contains("--since yesterday"));
        assert!(at("-5m").is_err());
    }
}
