//! The audit trail read back, from whichever source holds it: the DynamoDB table when one is
//! configured, else the local journals. Both give the same records (the event envelope, its
//! run and user), so `cloud events`, `cloud status` and `cloud history` print the same thing
//! from either.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::dynamodb::{Query, Stored, Table, TableError};
use super::journal;
use crate::event::{format_timestamp, DeploymentState, Event, EventData, Operation};

/// Where the trail is read from.
pub enum Source {
    Journal { manifest_dir: PathBuf },
    DynamoDb { table: Table, deployment_id: String },
}

/// Why the trail could not be read: a command that lists it fails (exit 1).
#[derive(Debug)]
pub enum ReadError {
    Journal(PathBuf, std::io::Error),
    Table(TableError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Journal(path, e) => {
                write!(f, "cannot read the journal {}: {e}", path.display())
            }
            ReadError::Table(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<TableError> for ReadError {
    fn from(e: TableError) -> Self {
        ReadError::Table(e)
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub environment: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub type_: Option<String>,
    pub stack: Option<String>,
    pub run_id: Option<String>,
}

/// One event of the trail.
#[derive(Debug, Clone)]
pub struct Record {
    /// `{"type","timestamp","sequence","data"}`, as emitted.
    pub envelope: serde_json::Value,
    /// The typed event (`None` when it was cut beyond reading to fit DynamoDB).
    pub event: Option<Event>,
    pub run_id: String,
    pub user: Option<String>,
}

impl Record {
    fn of_event(event: Event, run_id: &str, user: Option<&str>) -> Record {
        Record {
            envelope: serde_json::to_value(&event).unwrap_or_default(),
            event: Some(event),
            run_id: run_id.to_owned(),
            user: user.map(str::to_owned),
        }
    }

    fn of_stored(stored: Stored) -> Record {
        Record {
            event: stored.event(),
            envelope: stored.envelope,
            run_id: stored.run_id,
            user: stored.user,
        }
    }

    pub fn environment(&self) -> &str {
        self.envelope["data"]["environment"].as_str().unwrap_or("")
    }
}

/// One run, as `cloud history` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    pub environment: String,
    pub operation: Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// `deployed` (`destroyed`, `rolled back`), `failed`, `cancelled`, or `running` when it
    /// has no end yet; a run that stopped without an end (killed, machine died) is `failed`.
    pub status: String,
    /// Why a run failed without an end of its own: `interrupted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub total_stacks: u32,
    pub deployed_stacks: u32,
    pub failed_stacks: u32,
    pub skipped_stacks: u32,
    pub blocked_stacks: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
}

impl RunSummary {
    /// From a run's first and last events (`deployment_started`, `deployment_complete`).
    fn of(first: &Event, last: Option<&Event>, run_id: &str, user: Option<&str>) -> RunSummary {
        let mut run = RunSummary {
            run_id: run_id.to_owned(),
            environment: first.environment.clone(),
            operation: Operation::Deploy,
            user: user.map(str::to_owned),
            start: format_timestamp(&first.timestamp),
            end: None,
            status: "failed".into(),
            reason: Some("interrupted".into()),
            total_stacks: 0,
            deployed_stacks: 0,
            failed_stacks: 0,
            skipped_stacks: 0,
            blocked_stacks: 0,
            duration_seconds: None,
        };
        if let EventData::DeploymentStarted(s) = &first.data {
            run.operation = s.operation;
            run.total_stacks = s.total_stacks;
            if run.user.is_none() {
                run.user = s.user.clone();
            }
        }
        if let Some(Event {
            data: EventData::DeploymentComplete(c),
            timestamp,
            ..
        }) = last
        {
            run.end = Some(format_timestamp(timestamp));
            run.reason = None;
            run.status = if c.cancelled {
                "cancelled".into()
            } else if c.status == DeploymentState::Deployed {
                // A destroy that went through says so, not `deployed`.
                run.operation.done().into()
            } else {
                c.status.as_str().into()
            };
            run.total_stacks = c.total_stacks;
            run.deployed_stacks = c.deployed_stacks;
            run.failed_stacks = c.failed_stacks;
            run.skipped_stacks = c.skipped_stacks;
            run.blocked_stacks = c.blocked_stacks;
            run.duration_seconds = Some(c.duration_seconds);
        }
        run
    }
}

impl Source {
    /// What `cloud status` names as where it read.
    pub fn describe(&self) -> String {
        match self {
            Source::Journal { .. } => "journal".into(),
            Source::DynamoDb { table, .. } => format!("DynamoDB table {}", table.name),
        }
    }

    /// Every event matching `filter`, oldest first (by time, then run, then sequence).
    pub async fn events(&self, filter: &Filter) -> Result<Vec<Record>, ReadError> {
        let mut records = match self {
            Source::Journal { manifest_dir } => {
                let mut out = Vec::new();
                for (env, path) in journal_files(manifest_dir, filter.environment.as_deref()) {
                    let run_id = run_id_of(&path);
                    if filter.run_id.as_ref().is_some_and(|r| *r != run_id) {
                        continue;
                    }
                    let read =
                        journal::read(&path).map_err(|e| ReadError::Journal(path.clone(), e))?;
                    let user = read.events.first().and_then(|e| match &e.data {
                        EventData::DeploymentStarted(s) => s.user.clone(),
                        _ => None,
                    });
                    for event in read.events {
                        if event.environment != env || !keep(&event, filter) {
                            continue;
                        }
                        out.push(Record::of_event(event, &run_id, user.as_deref()));
                    }
                }
                out
            }
            Source::DynamoDb {
                table,
                deployment_id,
            } => {
                let query = Query {
                    since: filter.since.map(|t| format_timestamp(&t)),
                    environment: filter.environment.clone(),
                    run_id: filter.run_id.clone(),
                    stack: filter.stack.clone(),
                    type_: filter.type_.clone(),
                    ..Default::default()
                };
                table
                    .query(deployment_id, &query)
                    .await?
                    .iter()
                    .filter_map(Stored::from_item)
                    .map(Record::of_stored)
                    .collect()
            }
        };
        records.sort_by(|a, b| {
            let key = |r: &Record| {
                (
                    r.envelope["timestamp"].as_str().unwrap_or("").to_owned(),
                    r.run_id.clone(),
                    r.envelope["sequence"].as_u64().unwrap_or(0),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(records)
    }

    /// The newest run of `environment`: its id, every event in order, and what was passed
    /// over (a journal line that is not an event, an item cut beyond reading), in words.
    pub async fn latest_run(
        &self,
        environment: &str,
    ) -> Result<Option<(String, Vec<Event>, Vec<String>)>, ReadError> {
        match self {
            Source::Journal { manifest_dir } => {
                let Some(path) = journal::latest_run(&journal::dir(manifest_dir, environment))
                else {
                    return Ok(None);
                };
                let read = journal::read(&path).map_err(|e| ReadError::Journal(path.clone(), e))?;
                Ok(Some((run_id_of(&path), read.events, read.skipped)))
            }
            Source::DynamoDb {
                table,
                deployment_id,
            } => {
                let newest = table
                    .query(
                        deployment_id,
                        &Query {
                            environment: Some(environment.to_owned()),
                            type_: Some("deployment_started".into()),
                            newest_first: true,
                            limit: Some(1),
                            ..Default::default()
                        },
                    )
                    .await?;
                let Some(start) = newest.first().and_then(Stored::from_item) else {
                    return Ok(None);
                };
                let since = start.envelope["timestamp"].as_str().map(str::to_owned);
                let items = table
                    .query(
                        deployment_id,
                        &Query {
                            since,
                            environment: Some(environment.to_owned()),
                            run_id: Some(start.run_id.clone()),
                            ..Default::default()
                        },
                    )
                    .await?;
                let mut unreadable = Vec::new();
                let mut events: Vec<Event> = items
                    .iter()
                    .filter_map(|i| {
                        let e = Stored::from_item(i).and_then(|s| s.event());
                        if e.is_none() {
                            let key = match i.get("timestamp") {
                                Some(aws_sdk_dynamodb::types::AttributeValue::S(k)) => k.as_str(),
                                _ => "?",
                            };
                            unreadable.push(format!(
                                "item {key} of table {}: its data was cut beyond reading",
                                table.name
                            ));
                        }
                        e
                    })
                    .collect();
                events.sort_by_key(|e| e.sequence);
                Ok(Some((start.run_id, events, unreadable)))
            }
        }
    }

    /// Every run (of `environment`, or all), oldest first.
    pub async fn runs(&self, environment: Option<&str>) -> Result<Vec<RunSummary>, ReadError> {
        let mut runs = match self {
            Source::Journal { manifest_dir } => {
                let mut runs = Vec::new();
                for (_, path) in journal_files(manifest_dir, environment) {
                    let run_id = run_id_of(&path);
                    let Some((first, last)) = ends(&path) else {
                        continue;
                    };
                    runs.push(RunSummary::of(&first, last.as_ref(), &run_id, None));
                }
                runs
            }
            Source::DynamoDb {
                table,
                deployment_id,
            } => {
                let items = table
                    .query(
                        deployment_id,
                        &Query {
                            environment: environment.map(str::to_owned),
                            types_any: vec![
                                "deployment_started".into(),
                                "deployment_complete".into(),
                            ],
                            ..Default::default()
                        },
                    )
                    .await?;
                let mut by_run: std::collections::BTreeMap<
                    String,
                    (Option<Stored>, Option<Event>),
                > = Default::default();
                for stored in items.iter().filter_map(Stored::from_item) {
                    let slot = by_run.entry(stored.run_id.clone()).or_default();
                    if stored.envelope["type"] == "deployment_started" {
                        slot.0 = Some(stored);
                    } else {
                        slot.1 = stored.event();
                    }
                }
                by_run
                    .into_iter()
                    .filter_map(|(run_id, (start, end))| {
                        let start = start?;
                        let first = start.event()?;
                        Some(RunSummary::of(
                            &first,
                            end.as_ref(),
                            &run_id,
                            start.user.as_deref(),
                        ))
                    })
                    .collect()
            }
        };
        runs.sort_by(|a, b| (&a.start, &a.run_id).cmp(&(&b.start, &b.run_id)));
        Ok(runs)
    }
}

fn keep(event: &Event, filter: &Filter) -> bool {
    filter.since.is_none_or(|t| event.timestamp >= t)
        && filter
            .type_
            .as_ref()
            .is_none_or(|t| event.data.type_name() == t)
        && filter
            .stack
            .as_ref()
            .is_none_or(|s| event.data.stack() == Some(s.as_str()))
}

/// The run id of a journal file (its name).
pub fn run_id_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Journal files of `environment` (or of every environment), with their environment.
fn journal_files(manifest_dir: &Path, environment: Option<&str>) -> Vec<(String, PathBuf)> {
    let envs: Vec<String> = match environment {
        Some(e) => vec![e.to_owned()],
        None => std::fs::read_dir(manifest_dir.join("journal"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut files = Vec::new();
    for env in envs {
        let Ok(entries) = std::fs::read_dir(journal::dir(manifest_dir, &env)) else {
            continue;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().is_some_and(|x| x == "jsonl") {
                files.push((env.clone(), path));
            }
        }
    }
    files.sort_by(|a, b| a.1.file_name().cmp(&b.1.file_name()));
    files
}

/// The first event of a journal and its last one when that ends the run, reading only the
/// two ends of the file (a 10,000-stack run's journal is tens of megabytes).
fn ends(path: &Path) -> Option<(Event, Option<Event>)> {
    let mut file = File::open(path).ok()?;
    let mut first_line = String::new();
    BufReader::new(&file).read_line(&mut first_line).ok()?;
    let first: Event = serde_json::from_str(&first_line).ok()?;
    let len = file.metadata().ok()?.len();
    let tail = 64 * 1024u64;
    file.seek(SeekFrom::Start(len.saturating_sub(tail))).ok()?;
    let mut end = Vec::new();
    file.read_to_end(&mut end).ok()?;
    let text = String::from_utf8_lossy(&end);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str::<Event>(l).ok())
        .filter(|e| matches!(e.data, EventData::DeploymentComplete(_)));
    Some((first, last))
}
