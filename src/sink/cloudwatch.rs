//! CloudWatch Logs: every event of the run as one log event in group `/cloud/deployments/<ID>`,
//! stream `deploy-<env>-YYYY-MM-DD` (UTC, the run's start day). The message is the event's
//! JSON envelope led by `level` and a readable `message` (the file log's words), so Logs
//! Insights can filter on any field and the console still reads well.
//!
//! PutLogEvents in batches within the service's limits (10,000 events, 1 MiB counting 26 bytes
//! per event, one event at most 256 KiB: a longer one is cut with a marker), one batch at a
//! time per stream, retried with backoff and jitter on throttling. Like the DynamoDB sink it
//! runs on its own low-priority thread and never delays the deploy. CloudWatch is a copy for
//! reading (writing an event twice would show it twice, so nothing is replayed later): events
//! it cannot deliver are counted in its report, and the journal keeps them all.

use std::io;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::config::http::HttpResponse;
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;

use crate::bus::{Empty, Handle, Inbox, Received, Report, Sink};
use crate::event::{Event, LogLevel};
use crate::store::dynamodb::{sdk_config, TRUNCATED_MARKER};
use crate::store::filelog::{level_name, level_named};
use crate::words;

const MAX_EVENTS: usize = 10_000;
const MAX_BYTES: usize = 1_048_576;
const PER_EVENT: usize = 26;
const MAX_MESSAGE: usize = 256 * 1024 - PER_EVENT;
/// How often the inbox is looked at when it was empty.
const POLL: Duration = Duration::from_millis(10);
/// How long a partial batch waits for more.
const LINGER: Duration = Duration::from_secs(1);
/// While CloudWatch cannot be reached, how often a batch is tried.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Sending stops this long before the inbox deadline.
const MARGIN: Duration = Duration::from_millis(500);

pub struct CloudWatchSink {
    pub deployment_id: String,
    pub environment: String,
    pub region: Option<String>,
    /// The run's start (names the stream).
    pub start: chrono::DateTime<chrono::Utc>,
}

impl CloudWatchSink {
    pub fn group(&self) -> String {
        format!("/cloud/deployments/{}", self.deployment_id)
    }

    pub fn stream(&self) -> String {
        format!(
            "deploy-{}-{}",
            self.environment,
            self.start.format("%Y-%m-%d")
        )
    }
}

impl Sink for CloudWatchSink {
    fn name(&self) -> String {
        "CloudWatch Logs copy".into()
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Handle::thread("cloudwatch", move || {
            super::dynamodb::background_priority();
            runtime.block_on(self.run(inbox))
        })
    }
}

/// The log message of an event: `{"level":…,"message":…,<the envelope's fields>}`.
pub fn message(event: &Event) -> String {
    let (level, words) = words::describe(event);
    let words = match event.data.stack() {
        Some(stack) => format!("[{stack}] {words}"),
        None => words,
    };
    let envelope = event.to_json_line();
    let mut text = format!(
        "{{\"level\":\"{}\",\"message\":{},{}",
        level_name(level),
        serde_json::Value::String(words),
        envelope.strip_prefix('{').unwrap_or(&envelope)
    );
    if text.len() > MAX_MESSAGE {
        let len = text.len();
        let mut cut = MAX_MESSAGE - 128;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!(
            "… {TRUNCATED_MARKER} {len} bytes, the first {cut} kept]"
        ));
    }
    text
}

#[derive(Default)]
struct Batch {
    events: Vec<InputLogEvent>,
    bytes: usize,
    since: Option<Instant>,
}

impl Batch {
    fn fits(&self, message: &str) -> bool {
        self.events.len() < MAX_EVENTS && self.bytes + message.len() + PER_EVENT <= MAX_BYTES
    }
}

/// Where the sink stands with the service.
struct Link {
    client: Client,
    group: String,
    stream: String,
    /// Group and stream exist.
    ready: bool,
    trouble: Option<String>,
    /// When to try again after trouble.
    retry_at: Option<Instant>,
    report: Report,
}

impl Link {
    fn may_send(&self) -> bool {
        self.trouble.is_none() || self.retry_at.is_some_and(|t| Instant::now() >= t)
    }

    fn fail(&mut self, why: LogsError) {
        self.trouble = Some(why.to_string());
        self.retry_at = Some(Instant::now() + PROBE_EVERY);
    }

    /// Sends a batch (creating group and stream first), or counts it undelivered.
    async fn send(&mut self, batch: Batch, until: Option<Instant>) {
        let n = batch.events.len() as u64;
        if n == 0 {
            return;
        }
        if !self.may_send() {
            self.report.undelivered += n;
            return;
        }
        if !self.ready {
            match ensure(&self.client, &self.group, &self.stream).await {
                Ok(()) => self.ready = true,
                Err(why) => {
                    self.report.undelivered += n;
                    self.fail(why);
                    return;
                }
            }
        }
        match put(&self.client, &self.group, &self.stream, batch.events, until).await {
            Ok(()) => {
                self.report.delivered += n;
                self.trouble = None;
                self.retry_at = None;
            }
            Err(why) => {
                self.report.undelivered += n;
                self.fail(why);
            }
        }
    }
}

impl CloudWatchSink {
    async fn run(self, inbox: Inbox) -> Report {
        let config = sdk_config(self.region.as_deref()).await;
        let mut link = Link {
            client: Client::new(&config),
            group: self.group(),
            stream: self.stream(),
            ready: false,
            trouble: None,
            retry_at: None,
            report: Report::ok(&self.name(), 0),
        };
        if let Some(problem) = crate::store::dynamodb::config_problem(&config) {
            // No region: nothing can be sent, ever, this run.
            link.trouble = Some(problem.replace("eventStore.dynamodb", "eventStore.cloudwatch"));
        }
        let mut batch = Batch::default();
        let mut closed = false;
        let mut draining = false;
        loop {
            if !draining && inbox.deadline().is_some() {
                draining = true;
                super::dynamodb::normal_priority();
            }
            let cutoff = inbox.deadline().map(|d| d.checked_sub(MARGIN).unwrap_or(d));
            if cutoff.is_some_and(|c| Instant::now() >= c) {
                break;
            }
            let due = !batch.events.is_empty()
                && (closed || batch.since.is_some_and(|t| t.elapsed() >= LINGER));
            if due {
                link.send(std::mem::take(&mut batch), cutoff).await;
                continue;
            }
            if closed {
                break;
            }
            // Take what is queued, looking every few milliseconds rather than being woken per
            // event (which would cost the deploy's thread a system call each time).
            let mut took = 0;
            while took < MAX_EVENTS {
                let event = match inbox.try_recv() {
                    Ok(Received::Event(event)) => event,
                    Ok(Received::Resync(_)) => continue,
                    Err(Empty::Waiting) => break,
                    Err(Empty::Closed) => {
                        closed = true;
                        break;
                    }
                };
                took += 1;
                let text = message(&event);
                if !batch.fits(&text) {
                    link.send(std::mem::take(&mut batch), cutoff).await;
                }
                match InputLogEvent::builder()
                    .timestamp(event.timestamp.timestamp_millis())
                    .message(text)
                    .build()
                {
                    Ok(e) => {
                        batch.bytes += e.message.len() + PER_EVENT;
                        batch.since.get_or_insert_with(Instant::now);
                        batch.events.push(e);
                    }
                    Err(_) => link.report.undelivered += 1,
                }
            }
            if took == 0 && !closed {
                tokio::time::sleep(POLL).await;
            }
        }
        let mut report = link.report;
        report.undelivered += batch.events.len() as u64;
        while let Ok(item) = inbox.try_recv() {
            if let Received::Event(_) = item {
                report.undelivered += 1;
            }
        }
        if report.undelivered > 0 {
            inbox.warn(format!(
                "{} events did not reach log group {} ({}); the journal has them all",
                report.undelivered,
                link.group,
                link.trouble
                    .as_deref()
                    .unwrap_or("the end-of-run wait was over")
            ));
        }
        report
    }
}

/// Creates the group and the stream unless they exist.
async fn ensure(client: &Client, group: &str, stream: &str) -> Result<(), LogsError> {
    match client.create_log_group().log_group_name(group).send().await {
        Ok(_) => {}
        Err(e) if code(&e) == Some("ResourceAlreadyExistsException") => {}
        Err(e) => return Err(describe(&e)),
    }
    match client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("ResourceAlreadyExistsException") => Ok(()),
        Err(e) => Err(describe(&e)),
    }
}

/// One PutLogEvents, retried on throttling (and a few times when unreachable).
async fn put(
    client: &Client,
    group: &str,
    stream: &str,
    mut events: Vec<InputLogEvent>,
    until: Option<Instant>,
) -> Result<(), LogsError> {
    // The service wants them in time order; a run's events nearly are already.
    events.sort_by_key(|e| e.timestamp);
    let mut attempt = 0u32;
    loop {
        let sent = client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events.clone()))
            .send()
            .await;
        let e = match sent {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let retry = match &e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => attempt < 2,
            SdkError::ServiceError(s) => {
                matches!(
                    s.err().code(),
                    Some("ThrottlingException" | "ServiceUnavailableException")
                ) || s.raw().status().is_server_error()
            }
            SdkError::ResponseError(_) => true,
            _ => false,
        };
        attempt += 1;
        if !retry || attempt > 8 || until.is_some_and(|u| Instant::now() >= u) {
            return Err(describe(&e));
        }
        let cap = Duration::from_millis(100)
            .saturating_mul(1 << attempt.min(6))
            .min(Duration::from_secs(5));
        let jitter = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()) as f64)
            / 1e9;
        let mut wait = cap / 2 + cap.mul_f64(jitter / 2.0);
        if let Some(u) = until {
            wait = wait.min(u.saturating_duration_since(Instant::now()));
        }
        tokio::time::sleep(wait).await;
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Why CloudWatch Logs did not take a call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LogsError {
    /// The service answered no: its code and message.
    Refused { code: String, message: String },
    /// No answer: the innermost cause.
    Unreachable(String),
    /// Anything else the SDK says.
    Failed(String),
}

impl std::fmt::Display for LogsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogsError::Refused { code, message } => {
                write!(f, "CloudWatch Logs refused: {code}: {message}")
            }
            LogsError::Unreachable(cause) => {
                write!(f, "CloudWatch Logs cannot be reached ({cause})")
            }
            LogsError::Failed(why) => write!(f, "CloudWatch Logs request failed: {why}"),
        }
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, HttpResponse>,
) -> LogsError {
    match e {
        SdkError::ServiceError(s) => LogsError::Refused {
            code: s.err().code().unwrap_or("error").to_owned(),
            message: s.err().message().unwrap_or("").to_owned(),
        },
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            let mut cause = String::new();
            let mut cur = std::error::Error::source(e);
            while let Some(c) = cur {
                cause = c.to_string();
                cur = c.source();
            }
            LogsError::Unreachable(cause)
        }
        other => LogsError::Failed(other.to_string()),
    }
}

/// The level a CloudWatch message was written at (for tests and readers).
pub fn level_of(message: &str) -> Option<LogLevel> {
    let v: serde_json::Value = serde_json::from_str(message).ok()?;
    level_named(v.get("level")?.as_str()?)
}
