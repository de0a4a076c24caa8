//! The lock across machines: when a DynamoDB table is configured, one deploy or destroy at a
//! time per deployment and environment is also an item in that table, written with a
//! conditional put. The holder renews a lease on it while the run lives; a run that dies
//! without releasing it (kill -9, a CI runner that vanished) leaves a lease that expires, and
//! the next run takes it over, saying so. The local lock ([`super::lock`]) still comes first:
//! it is free and catches a second run on the same machine at once.
//!
//! A holder that cannot renew in time, or finds the item taken over or removed, has lost the
//! lock: another machine may be deploying now. It halts its run ([`Cancel::halt`], code
//! [`ErrorCode::LockLost`]): nothing new starts, running stacks finish, the run fails. It halts a tenth
//! of a lease before the lease runs out, so that it has stopped starting stacks before another
//! run can take the lock over.
//!
//! Item: partition key `deploymentId` = `lock#<ID>#<env>` (never a deployment's partition, so
//! `cloud events` never reads it), sort key `timestamp` = `lock`; attributes `runId`, `user`,
//! `host`, `pid`, `started`, `renewed`, and `leaseExpires` (milliseconds since the epoch: the
//! conditions compare it with the writer's clock, so machines' clocks must agree to well
//! under a lease, which NTP gives).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::dynamodb::{self, Item, Table, TableError};
use super::lock::Holder;
use crate::cancel::Cancel;
use crate::event::{format_timestamp, ErrorCode, ErrorDetail};

/// How long a lease lasts unless renewed (`CLOUD_LOCK_LEASE_SECONDS` changes it: 3 to 3600).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How long a lock call keeps retrying a throttled or unreachable table.
pub const PATIENCE: Duration = Duration::from_secs(15);
/// Releasing waits less: a lock not released only waits out its lease.
const RELEASE_PATIENCE: Duration = Duration::from_secs(3);

/// The lease length this process uses.
pub fn lease() -> Result<Duration, BadLease> {
    match std::env::var("CLOUD_LOCK_LEASE_SECONDS") {
        Err(_) => Ok(DEFAULT_LEASE),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(s) if (3..=3600).contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(BadLease(text)),
        },
    }
}

/// `CLOUD_LOCK_LEASE_SECONDS` as found, when it is no lease length (bad input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLease(pub String);

impl std::fmt::Display for BadLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CLOUD_LOCK_LEASE_SECONDS must be a whole number of seconds from 3 to 3600, \
             found `{}`",
            self.0.escape_debug()
        )
    }
}

impl std::error::Error for BadLease {}

/// The lock item as read back: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: Holder,
    /// When the holder last renewed it, and when it expires unless renewed again.
    pub renewed: String,
    pub expires: DateTime<Utc>,
}

impl LeaseHolder {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires <= now
    }

    /// `run R (pid P, user U, host H) started at S`
    pub fn describe(&self) -> String {
        let h = &self.holder;
        format!(
            "run {} (pid {}, user {}, host {}) started at {}",
            h.run_id,
            h.pid,
            h.user.as_deref().unwrap_or("unknown"),
            h.host.as_deref().unwrap_or("unknown"),
            h.started
        )
    }

    /// The holder ran on this machine and its process is gone: nobody will renew the lease.
    pub fn dead_here(&self) -> bool {
        let h = &self.holder;
        h.host.is_some()
            && h.host == super::lock::host()
            && h.pid != 0
            && super::lock::process_gone(h.pid)
    }
}

/// Why the lock of `deployment`-`environment` in `table` was not taken.
#[derive(Debug)]
pub struct TableLockError {
    pub deployment: String,
    pub environment: String,
    pub table: String,
    pub why: Refused,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum Refused {
    /// Another run holds a live lease.
    Held(Box<LeaseHolder>),
    /// The table could not be asked (unreachable, missing, no permission).
    Table(TableError),
}

impl std::fmt::Display for TableLockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (deployment, env, table) = (&self.deployment, &self.environment, &self.table);
        match &self.why {
            Refused::Held(h) => write!(
                f,
                "{deployment}-{env} is locked: {} is deploying it\n  \
                 lock: DynamoDB table {table}, lease renewed at {}, expires at {} unless renewed\n  \
                 help: wait for that run to finish; if its machine is gone, the next deploy \
                 after the lease expires takes over, or `cloud unlock {deployment} -e {env} --force`",
                h.describe(),
                h.renewed,
                format_timestamp(&h.expires)
            ),
            Refused::Table(why) => write!(
                f,
                "cannot take the lock of {deployment}-{env} in DynamoDB table {table}: {why}\n  \
                 help: nothing was deployed (tried for {}s); the lock keeps two machines from \
                 deploying at once, so the run needs the table: check the AWS region, credentials \
                 and AWS_ENDPOINT_URL, or deploy without a table (no --dynamodb-table, \
                 CLOUD_DYNAMODB_TABLE or `eventStore.dynamodb`) to keep the local lock and journal only",
                PATIENCE.as_secs()
            ),
        }
    }
}

impl std::error::Error for TableLockError {}

/// What taking the lock did, for the note printed before the run.
#[derive(Debug)]
pub enum Taken {
    Free,
    /// Over an earlier holder whose lease had expired, or whose process is gone.
    TookOver(Box<LeaseHolder>),
}

/// The lock while held: a task renews the lease; [`TableLock::release`] deletes the item.
pub struct TableLock {
    table: Table,
    key: Item,
    run_id: String,
    renewer: tokio::task::JoinHandle<()>,
    /// What went wrong renewing, said after the run (the views own the terminal during it).
    trouble: Arc<Mutex<Option<String>>>,
}

fn key_of(deployment: &str, environment: &str) -> Item {
    HashMap::from([
        (
            "deploymentId".to_owned(),
            AttributeValue::S(format!("lock#{deployment}#{environment}")),
        ),
        ("timestamp".to_owned(), AttributeValue::S("lock".into())),
    ])
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn read(item: &Item) -> Option<LeaseHolder> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let number = |k: &str| item.get(k).and_then(|v| v.as_n().ok())?.parse::<i64>().ok();
    let expires = DateTime::<Utc>::from_timestamp_millis(number("leaseExpires")?)?;
    Some(LeaseHolder {
        holder: Holder {
            pid: number("pid")
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
            run_id: text("runId")?,
            user: text("user"),
            host: text("host"),
            started: text("started").unwrap_or_else(|| "an unknown time".into()),
        },
        renewed: text("renewed").unwrap_or_else(|| "an unknown time".into()),
        expires,
    })
}

fn is_condition_failure<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some("ConditionalCheckFailedException"))
}

/// Retries `call` while the table answers with something transient, for [`PATIENCE`] (or
/// the time given) at most.
macro_rules! retrying {
    ($call:expr) => {
        retrying!($call, PATIENCE)
    };
    ($call:expr, $patience:expr) => {{
        let until = Instant::now() + $patience;
        let mut attempt = 0u32;
        loop {
            match $call.await {
                Err(e) if dynamodb::is_transient(&e) && Instant::now() < until => {
                    attempt += 1;
                    let wait = Duration::from_millis(100 * u64::from(attempt.min(20)));
                    tokio::time::sleep(wait.min(until.saturating_duration_since(Instant::now())))
                        .await;
                }
                other => break other,
            }
        }
    }};
}

/// Who holds the lock of `deployment`/`environment` in `table`, if anyone (a consistent read).
pub async fn current(
    table: &Table,
    deployment: &str,
    environment: &str,
) -> Result<Option<LeaseHolder>, TableError> {
    let got = retrying!(table
        .client
        .get_item()
        .table_name(&table.name)
        .set_key(Some(key_of(deployment, environment)))
        .consistent_read(true)
        .send())
    .map_err(|e| TableError::of(&e, &table.name))?;
    Ok(got.item().and_then(read))
}

impl TableLock {
    /// Takes the lock for `holder`, or says who has it. A lease that expired, or whose holder
    /// ran on this machine and is gone, is taken over.
    pub async fn acquire(
        table: Table,
        deployment: &str,
        environment: &str,
        holder: &Holder,
        lease: Duration,
        halt: Cancel,
    ) -> Result<(TableLock, Taken), TableLockError> {
        let name = table.name.clone();
        Self::take(table, deployment, environment, holder, lease, halt)
            .await
            .map_err(|why| TableLockError {
                deployment: deployment.to_owned(),
                environment: environment.to_owned(),
                table: name,
                why,
            })
    }

    async fn take(
        table: Table,
        deployment: &str,
        environment: &str,
        holder: &Holder,
        lease: Duration,
        halt: Cancel,
    ) -> Result<(TableLock, Taken), Refused> {
        let key = key_of(deployment, environment);
        let now = SystemTime::now();
        let sent = Instant::now();
        let mut item = key.clone();
        item.insert("runId".into(), s(&holder.run_id));
        item.insert("pid".into(), n(i64::from(holder.pid)));
        item.insert("started".into(), s(&holder.started));
        item.insert("renewed".into(), s(&format_timestamp(&now.into())));
        item.insert("leaseExpires".into(), n(millis(now + lease)));
        if let Some(user) = &holder.user {
            item.insert("user".into(), s(user));
        }
        if let Some(host) = &holder.host {
            item.insert("host".into(), s(host));
        }
        let put = |condition: &str, values: Vec<(&str, AttributeValue)>| {
            let mut call = table
                .client
                .put_item()
                .table_name(&table.name)
                .set_item(Some(item.clone()))
                .condition_expression(condition)
                .return_values(ReturnValue::AllOld);
            for (k, v) in values {
                call = call.expression_attribute_values(k, v);
            }
            call.send()
        };
        let table_error = Refused::Table;
        // Free, or a lease that has run out. Released between our put and our read: again.
        let mut attempts = 0;
        let earlier = loop {
            attempts += 1;
            let first = retrying!(put(
                "attribute_not_exists(deploymentId) OR leaseExpires < :now",
                vec![(":now", n(millis(now)))],
            ));
            match first {
                Ok(out) => break out.attributes().and_then(read),
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(table_error(TableError::of(&e, &table.name))),
            }
            let found = current(&table, deployment, environment)
                .await
                .map_err(table_error)?;
            match found {
                None if attempts < 3 => continue,
                None => {
                    return Err(table_error(TableError(format!(
                        "the lock item in table {} keeps changing; try again",
                        table.name
                    ))))
                }
                Some(found) if found.dead_here() => {
                    // Its process is gone from this very machine: take it over now, unless
                    // someone else just did.
                    let run = s(&found.holder.run_id);
                    match retrying!(put("runId = :run", vec![(":run", run.clone())])) {
                        Ok(out) => break out.attributes().and_then(read),
                        Err(e) if is_condition_failure(&e) => {
                            let now_held = current(&table, deployment, environment)
                                .await
                                .map_err(table_error)?
                                .unwrap_or(found);
                            return Err(Refused::Held(Box::new(now_held)));
                        }
                        Err(e) => return Err(table_error(TableError::of(&e, &table.name))),
                    }
                }
                Some(found) => return Err(Refused::Held(Box::new(found))),
            }
        };
        let taken = match earlier {
            Some(old) => Taken::TookOver(Box::new(old)),
            None => Taken::Free,
        };
        let trouble = Arc::new(Mutex::new(None));
        let renewer = tokio::spawn(renew(
            Renewal {
                table: table.clone(),
                deployment: deployment.to_owned(),
                environment: environment.to_owned(),
                run_id: holder.run_id.clone(),
                lease,
                trouble: trouble.clone(),
                halt,
            },
            sent,
        ));
        Ok((
            TableLock {
                table,
                key,
                run_id: holder.run_id.clone(),
                renewer,
                trouble,
            },
            taken,
        ))
    }

    /// Stops renewing and deletes the item if it is still ours. Returns what went wrong while
    /// the run held it (a renewal that failed, the lock taken over), to be said after the run.
    pub async fn release(self) -> Option<String> {
        self.renewer.abort();
        // A table that does not answer at all would hold each try for the SDK's timeout.
        let deleted = tokio::time::timeout(RELEASE_PATIENCE, async {
            retrying!(
                self.table
                    .client
                    .delete_item()
                    .table_name(&self.table.name)
                    .set_key(Some(self.key.clone()))
                    .condition_expression("runId = :run")
                    .expression_attribute_values(":run", s(&self.run_id))
                    .send(),
                RELEASE_PATIENCE
            )
        })
        .await;
        let mut trouble = self.trouble.lock().map(|t| t.clone()).unwrap_or_default();
        match deleted {
            Ok(Ok(_)) => {}
            // The run was told it lost the lock already: that says it all.
            _ if trouble.is_some() => {}
            Err(_) => {
                trouble = Some(format!(
                    "could not release the DynamoDB lock in table {} (no answer within {}s); its \
                     lease expires on its own, or run `cloud unlock`",
                    self.table.name,
                    RELEASE_PATIENCE.as_secs()
                ));
            }
            // Someone took it over: said now.
            Ok(Err(e)) if is_condition_failure(&e) => {
                trouble.get_or_insert_with(|| {
                    format!(
                        "the DynamoDB lock in table {} was taken over by another run before this \
                         one ended",
                        self.table.name
                    )
                });
            }
            Ok(Err(e)) => {
                trouble = Some(format!(
                    "could not release the DynamoDB lock in table {} ({}); its lease expires on \
                     its own, or run `cloud unlock`",
                    self.table.name,
                    dynamodb::describe(&e, &self.table.name)
                ));
            }
        }
        trouble
    }
}

/// What the renewing task needs.
struct Renewal {
    table: Table,
    deployment: String,
    environment: String,
    run_id: String,
    lease: Duration,
    /// Where the loss is told after the run, and the run halted at once.
    trouble: Arc<Mutex<Option<String>>>,
    halt: Cancel,
}

impl Renewal {
    /// The lock is lost: say why (after the run) and halt the run (now).
    fn lost(&self, message: String) {
        if let Ok(mut t) = self.trouble.lock() {
            *t = Some(message.clone());
        }
        self.halt.halt(ErrorDetail {
            code: ErrorCode::LockLost,
            message,
            details: Some(format!(
                "no stack was started after the lock was lost; stacks already running were let \
                 finish. Check that the other run is done (`cloud history {} -e {}`), then \
                 deploy again",
                self.deployment, self.environment
            )),
        });
    }
}

/// Renews the lease every third of it, for as long as the run lives. A renewal that fails is
/// tried again after a ninth of the lease; when none succeeded before the lease runs out (a tenth of a
/// lease early), or the item names another run or is gone, the lock is lost.
async fn renew(r: Renewal, first_sent: Instant) {
    let key = key_of(&r.deployment, &r.environment);
    let name = format!("{}-{}", r.deployment, r.environment);
    let every = r.lease / 3;
    // The lease runs out `lease` after the last renewal that succeeded was sent.
    let margin = r.lease / 10;
    let mut halt_at = first_sent + r.lease - margin;
    let mut problem = "no renewal was tried".to_owned();
    // After a renewal that failed, the next try comes sooner.
    let mut wait = every;
    loop {
        let next = (Instant::now() + wait).min(halt_at);
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= halt_at {
            break;
        }
        let sent = Instant::now();
        let now = SystemTime::now();
        let call = r
            .table
            .client
            .update_item()
            .table_name(&r.table.name)
            .set_key(Some(key.clone()))
            .update_expression("SET leaseExpires = :until, renewed = :now")
            .condition_expression("runId = :run")
            .expression_attribute_values(":until", n(millis(now + r.lease)))
            .expression_attribute_values(":now", s(&format_timestamp(&now.into())))
            .expression_attribute_values(":run", s(&r.run_id))
            .send();
        match tokio::time::timeout_at(halt_at.into(), call).await {
            Ok(Ok(_)) => {
                halt_at = sent + r.lease - margin;
                wait = every;
                continue;
            }
            Ok(Err(e)) if is_condition_failure(&e) => {
                // Who holds it is worth a moment, not a delay in halting.
                let asked = current(&r.table, &r.deployment, &r.environment);
                let who = match tokio::time::timeout(Duration::from_secs(1), asked).await {
                    Ok(Ok(Some(h))) => format!("it is held now by {}", h.describe()),
                    Ok(Ok(None)) => "it was removed (by `cloud unlock --force`, or by a run \
                                     that took it over and ended)"
                        .to_owned(),
                    _ => "it names another run now, or was removed".to_owned(),
                };
                return r.lost(format!(
                    "lost the lock of {name} in DynamoDB table {}: {who}",
                    r.table.name
                ));
            }
            Ok(Err(e)) => problem = dynamodb::describe(&e, &r.table.name),
            Err(_) => problem = "the table did not answer".to_owned(),
        }
        wait = every / 3;
    }
    r.lost(format!(
        "lost the lock of {name} in DynamoDB table {}: its lease ran out without a renewal \
         ({problem}); another run may hold it now",
        r.table.name
    ));
}

/// Deletes the lock item of `deployment`/`environment` if it is still held by `run_id`
/// (`cloud unlock`). `Ok(false)` when another run holds it by now.
pub async fn remove(
    table: &Table,
    deployment: &str,
    environment: &str,
    run_id: &str,
) -> Result<bool, TableError> {
    let deleted = retrying!(table
        .client
        .delete_item()
        .table_name(&table.name)
        .set_key(Some(key_of(deployment, environment)))
        .condition_expression("runId = :run")
        .expression_attribute_values(":run", s(run_id))
        .send());
    match deleted {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(TableError::of(&e, &table.name)),
    }
}

/// The note said when a run took the lock over from an earlier holder ([`Taken::TookOver`]):
/// `took over the lock of D-dev in DynamoDB table T from run … (its lease expired at …)`.
pub struct TookOver<'a> {
    pub deployment: &'a str,
    pub environment: &'a str,
    pub table: &'a str,
    pub from: &'a LeaseHolder,
}

impl std::fmt::Display for TookOver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = if self.from.expired(Utc::now()) {
            format!(
                "its lease expired at {}",
                format_timestamp(&self.from.expires)
            )
        } else {
            "its process is gone from this machine".to_owned()
        };
        write!(
            f,
            "took over the lock of {}-{} in DynamoDB table {} from {} ({why})",
            self.deployment,
            self.environment,
            self.table,
            self.from.describe()
        )
    }
}
