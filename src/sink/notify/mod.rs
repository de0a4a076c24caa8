//! The notifier: a sink that tells people about a run on the seed's triggers — by email,
//! Slack, PagerDuty and signed webhooks (one file each) — and never at the cost of the run.
//!
//! It folds the events into [`Model`] (the one reducer) to know the summary, layers and
//! durations, asks [`notice::trigger`] which of the seed's triggers an event is (and
//! [`DriftWatch`] what a run's end says of drift: `drift_detected`, `drift_resolved`), and
//! hands a [`Job`] to each channel that wants it. Each channel has a worker of its own that delivers
//! its jobs in order ([`deliver`]: 3 attempts, a timeout each, a backoff between them). A
//! message that is not delivered is a warning ([`Inbox::warn`]: the file log's WARN line now,
//! the command's warning at the end); it never changes the exit code.
//!
//! When the run is over the bus sets a deadline: pending deliveries get until then (a
//! bounded flush), and what is still undelivered is said, not waited for.
//!
//! The sink runs on a thread of its own with a small runtime, so a slow endpoint never holds
//! a worker of the deploy's runtime.

mod deliver;
pub mod drift;
pub mod email;
pub mod notice;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::bus::{
    Delivery, Handle, Inbox, NoteWriter, Purpose, Received, Report, Sink, NOTES_MARGIN,
};
use crate::event::{Event, Operation};
use crate::manifest::notifications::{
    check_http_url, ChannelKind, ChannelSpec, Notifications, Unset, Unusable,
};
use crate::progress::Model;
pub use deliver::ATTEMPTS;
use deliver::{http_client, AttemptError, Deadline, Outcome};
use drift::DriftWatch;
use notice::{Notice, Trigger, What};
use pagerduty::Page;

/// Jobs waiting per channel before the sink waits for that channel (the bus keeps the events
/// meanwhile, spilling them to disk if need be: the run itself never waits).
const QUEUE: usize = 256;
/// How long deliveries get after the run when the bus set no deadline.
const DEFAULT_FLUSH: Duration = Duration::from_secs(10);
/// How often the inbox is asked whether the run is over (it has no signal for it).
const DEADLINE_POLL: Duration = Duration::from_millis(100);

/// Why a channel, or `dashboardUrl`, cannot be used this run: it is left out, and this is
/// said (a warning; the run goes on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// It reads a `${VAR}` that is not set.
    Unset(Unset),
    /// The value of `key` is not a usable `expected`.
    Unusable {
        key: String,
        expected: Expected,
        why: Unusable,
    },
    /// HTTPS or TLS could not be set up on this machine.
    Transport(String),
}

/// What a setting must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Url,
    SmtpServer,
    Mailbox,
}

impl SetupError {
    fn unusable(key: &str, expected: Expected) -> impl FnOnce(Unusable) -> SetupError + '_ {
        move |why| SetupError::Unusable {
            key: key.to_owned(),
            expected,
            why,
        }
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Unset(e) => e.fmt(f),
            SetupError::Unusable { key, expected, why } => match expected {
                Expected::Url => write!(f, "`{key}` is not a usable URL: {why}"),
                Expected::SmtpServer => write!(f, "`{key}` is not a usable SMTP server: {why}"),
                Expected::Mailbox => write!(f, "`{key}`: {why}"),
            },
            SetupError::Transport(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<Unset> for SetupError {
    fn from(e: Unset) -> Self {
        SetupError::Unset(e)
    }
}

/// Why a job has no payload on a channel (a delivery that fails before its first attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unsendable {
    /// The mail could not be built.
    Mail(String),
    /// A PagerDuty resolve without the incident it closes.
    NoIncident,
    /// A job of another kind of channel.
    NoMessage,
}

impl std::fmt::Display for Unsendable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsendable::Mail(why) => write!(f, "cannot compose the mail: {why}"),
            Unsendable::NoIncident => f.write_str("no incident to resolve"),
            Unsendable::NoMessage => f.write_str("this channel has no message for it"),
        }
    }
}

/// The channels of the manifest's `notifications:`, set up and ready to send. Those that
/// cannot be (a `${VAR}` that is not set, a value that is no URL or address) are left out,
/// with why.
pub struct Channels {
    pub channels: Vec<Channel>,
    /// `(label, why)` of each channel left out, and of a `dashboardUrl` that cannot be used.
    pub broken: Vec<(String, String)>,
    /// `dashboardUrl`, read.
    pub dashboard: Option<String>,
    /// One attempt's timeout.
    pub timeout: Duration,
}

impl Channels {
    pub fn new(spec: &Notifications) -> Channels {
        let mut broken = Vec::new();
        let mut dashboard = None;
        if let Some(setting) = &spec.dashboard_url {
            let url = setting
                .resolve()
                .map_err(SetupError::from)
                .and_then(|text| {
                    check_http_url(&text)
                        .map(|_| text)
                        .map_err(SetupError::unusable(&setting.key, Expected::Url))
                });
            match url {
                Ok(url) => dashboard = Some(url),
                Err(why) => broken.push((
                    "dashboardUrl".to_owned(),
                    format!("messages go without links: {why}"),
                )),
            }
        }
        let client = spec
            .channels
            .iter()
            .any(|c| !matches!(c.kind, ChannelKind::Email(_)))
            .then(|| http_client(spec.timeout));
        let mut channels = Vec::new();
        for c in &spec.channels {
            match Channel::new(c, spec.timeout, client.as_ref()) {
                Ok(channel) => channels.push(channel),
                Err(why) => broken.push((c.label.clone(), why.to_string())),
            }
        }
        Channels {
            channels,
            broken,
            dashboard,
            timeout: spec.timeout,
        }
    }
}

/// One channel, set up and ready to send.
pub struct Channel {
    /// `email`, `slack`, `webhook #2`…
    pub label: String,
    events: Vec<&'static str>,
    kind: Kind,
}

enum Kind {
    Email(email::Email),
    Slack(slack::Slack),
    PagerDuty(pagerduty::PagerDuty),
    Webhook(webhook::Webhook),
}

impl Channel {
    fn new(
        spec: &ChannelSpec,
        timeout: Duration,
        client: Option<&Result<reqwest::Client, SetupError>>,
    ) -> Result<Channel, SetupError> {
        let http = || match client {
            Some(Ok(client)) => Ok(client),
            Some(Err(why)) => Err(why.clone()),
            None => Err(SetupError::Transport("no HTTP client".to_owned())),
        };
        let kind = match &spec.kind {
            ChannelKind::Email(e) => Kind::Email(email::Email::new(e, timeout)?),
            ChannelKind::Slack(s) => Kind::Slack(slack::Slack::new(s, http()?)?),
            ChannelKind::PagerDuty(p) => Kind::PagerDuty(pagerduty::PagerDuty::new(p, http()?)?),
            ChannelKind::Webhook(w) => Kind::Webhook(webhook::Webhook::new(w, http()?)?),
        };
        Ok(Channel {
            label: spec.label.clone(),
            events: spec.events.clone(),
            kind,
        })
    }

    /// `slack (https://hooks.slack.com)`: the label and where it goes, without secrets.
    pub fn describe(&self) -> String {
        let to = match &self.kind {
            Kind::Email(c) => c.describe(),
            Kind::Slack(c) => c.describe(),
            Kind::PagerDuty(c) => c.describe(),
            Kind::Webhook(c) => c.describe(),
        };
        format!("{} ({to})", self.label)
    }

    fn route(&self) -> Route {
        Route {
            events: self.events.clone(),
            kind: match self.kind {
                Kind::Email(_) | Kind::Slack(_) => RouteKind::Message,
                Kind::PagerDuty(_) => RouteKind::PagerDuty,
                Kind::Webhook(_) => RouteKind::Webhook,
            },
        }
    }

    /// A job's payload, composed once for all its attempts. `incident` is the dedup key a
    /// PagerDuty resolve closes.
    fn prepare(&self, job: &Job, incident: Option<&str>) -> Result<Prepared, Unsendable> {
        Ok(match (&self.kind, job) {
            (Kind::Email(c), Job::Notice(n)) => Prepared::Mail(Box::new(
                c.compose(n).map_err(|e| Unsendable::Mail(e.to_string()))?,
            )),
            (Kind::Slack(_), Job::Notice(n)) => Prepared::Json(slack::message(n)),
            (Kind::PagerDuty(c), Job::Notice(n)) => Prepared::Json(c.trigger(n)),
            (Kind::PagerDuty(c), Job::Resolve(_)) => match incident {
                Some(key) => Prepared::Json(c.resolve(key)),
                None => return Err(Unsendable::NoIncident),
            },
            (Kind::Webhook(_), Job::Event(e, delivery)) => Prepared::Event {
                body: e.to_json_line().into_bytes(),
                event_type: e.data.type_name().to_owned(),
                delivery: delivery.clone(),
            },
            (Kind::Webhook(_), Job::Notice(n)) => Prepared::Event {
                body: test_envelope(n).into_bytes(),
                event_type: "notification_test".into(),
                delivery: format!("{}-test-{}", n.target(), n.at.timestamp_millis()),
            },
            _ => return Err(Unsendable::NoMessage),
        })
    }

    /// One attempt.
    async fn send(&self, prepared: &Prepared) -> Result<(), AttemptError> {
        match (&self.kind, prepared) {
            (Kind::Email(c), Prepared::Mail(m)) => c.send(m).await,
            (Kind::Slack(c), Prepared::Json(v)) => c.send(v).await,
            (Kind::PagerDuty(c), Prepared::Json(v)) => c.send(v).await,
            (
                Kind::Webhook(c),
                Prepared::Event {
                    body,
                    event_type,
                    delivery,
                },
            ) => c.send(body, event_type, delivery).await,
            _ => Err(AttemptError {
                message: "internal error: a payload of another channel".into(),
                retry: false,
            }),
        }
    }

    /// Up to `attempts` attempts (see [`deliver::deliver`]).
    async fn deliver(
        &self,
        prepared: &Prepared,
        attempts: u32,
        timeout: Duration,
        deadline: &Deadline,
    ) -> Outcome {
        deliver::deliver(attempts, timeout, deadline, || self.send(prepared)).await
    }
}

/// What the reading loop needs to know of a channel to give it jobs.
struct Route {
    events: Vec<&'static str>,
    kind: RouteKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    /// Email and Slack: a message per trigger they list.
    Message,
    PagerDuty,
    /// The events they list, as they are.
    Webhook,
}

impl Route {
    fn wants(&self, event_type: &str) -> bool {
        self.events.contains(&event_type)
    }

    /// The jobs this channel gets for an event (`triggers`: what the event is to people).
    ///
    /// - Webhooks get the events they list, as they are.
    /// - Email and Slack say each trigger they list. A failed run ends with
    ///   `deployment_failed` and `deployment_complete`: the failure is said once, on
    ///   `deployment_failed`, or on `deployment_complete` for a channel that lists only that.
    ///   A drift check is no deployment: its start and end are not said (a scheduled check
    ///   would mail every time), only what it found (`drift_detected`, `drift_resolved`) and
    ///   its failures.
    /// - PagerDuty triggers an incident on the failures it lists (not on a cancelled run:
    ///   someone chose to stop it), and asks for a resolve when a deploy succeeds; drift has
    ///   an incident of its own, resolved when no stack is drifted any more.
    fn jobs_for(&self, event: &Arc<Event>, triggers: &[Trigger], run_id: &str) -> Vec<Job> {
        if self.kind == RouteKind::Webhook {
            return match self.wants(event.data.type_name()) {
                true => vec![Job::Event(Arc::clone(event), delivery_id(run_id, event))],
                false => Vec::new(),
            };
        }
        triggers.iter().filter_map(|t| self.job_for(t)).collect()
    }

    fn job_for(&self, trigger: &Trigger) -> Option<Job> {
        let (wanted, notice) = match (self.kind, trigger) {
            (RouteKind::PagerDuty, Trigger::Started(_) | Trigger::DriftResolved(_)) => return None,
            (RouteKind::PagerDuty, Trigger::Failed(n)) if n.cancelled() => return None,
            (RouteKind::PagerDuty, Trigger::Complete { ok, notice }) => {
                let deployed = *ok && notice.operation == Operation::Deploy;
                return deployed.then_some(Job::Resolve(Page::Failure));
            }
            (RouteKind::PagerDuty, Trigger::DriftSettled) => {
                return Some(Job::Resolve(Page::Drift))
            }
            (_, Trigger::DriftSettled) => return None,
            (_, Trigger::Started(n)) if n.operation == Operation::Drift => return None,
            (_, Trigger::Complete { ok: true, notice }) if notice.operation == Operation::Drift => {
                return None
            }
            (_, Trigger::Started(n)) => (self.wants("deployment_started"), n),
            (_, Trigger::StackFailed(n)) => (self.wants("stack_failed"), n),
            (_, Trigger::Failed(n)) => (self.wants("deployment_failed"), n),
            (_, Trigger::Complete { ok, notice }) => (
                self.wants("deployment_complete") && (*ok || !self.wants("deployment_failed")),
                notice,
            ),
            (_, Trigger::DriftDetected(n)) => (self.wants("drift_detected"), n),
            (_, Trigger::DriftResolved(n)) => (self.wants("drift_resolved"), n),
        };
        wanted.then(|| Job::Notice(Box::new(notice.clone())))
    }
}

/// What one channel is asked to deliver.
#[derive(Debug, Clone)]
enum Job {
    /// Email, Slack: a message; PagerDuty: a trigger.
    Notice(Box<Notice>),
    /// PagerDuty: resolve the incident (of a failure, or of drift) an earlier run left open,
    /// if one is.
    Resolve(Page),
    /// Webhook: an event envelope, and its delivery id.
    Event(Arc<Event>, String),
}

impl Job {
    /// `deployment_failed`, `stack_failed (database-rds)`: what warnings call it.
    fn describe(&self) -> String {
        match self {
            Job::Notice(n) => match n.what {
                What::Started => "deployment_started".into(),
                What::Complete => "deployment_complete".into(),
                What::Failed => "deployment_failed".into(),
                What::StackFailed => format!("stack_failed ({})", n.stack()),
                What::DriftDetected => "drift_detected".into(),
                What::DriftResolved => "drift_resolved".into(),
                What::Test => "the test notification".into(),
            },
            Job::Resolve(Page::Failure) => "the resolve of the open incident".into(),
            Job::Resolve(Page::Drift) => "the resolve of the open drift incident".into(),
            Job::Event(e, _) => match e.data.stack() {
                Some(stack) => format!("{} ({stack})", e.data.type_name()),
                None => e.data.type_name().to_owned(),
            },
        }
    }
}

enum Prepared {
    Mail(Box<lettre::Message>),
    Json(serde_json::Value),
    Event {
        body: Vec<u8>,
        event_type: String,
        delivery: String,
    },
}

/// `<runId>-<sequence>`: the same on every attempt, so a receiver can drop duplicates.
fn delivery_id(run_id: &str, event: &Event) -> String {
    if run_id.is_empty() {
        format!(
            "{}-{}-{}",
            event.deployment_id, event.environment, event.sequence
        )
    } else {
        format!("{run_id}-{}", event.sequence)
    }
}

/// The envelope a webhook gets from `cloud notify test`.
fn test_envelope(notice: &Notice) -> String {
    json!({
        "type": "notification_test",
        "timestamp": crate::event::format_timestamp(&notice.at),
        "sequence": 0,
        "data": {
            "deploymentId": notice.deployment_id,
            "environment": notice.environment,
            "message": notice.headline(),
        },
    })
    .to_string()
}

/// The notifier of one run.
pub struct Notifier {
    channels: Channels,
    /// The environment's journal folder, where `pagerduty.json` lives.
    state_dir: PathBuf,
    /// The stacks' health, read before the run changes it.
    drift: DriftWatch,
}

impl Notifier {
    /// The notifier of a run whose journals are in `journal_dir`; `None` when the manifest
    /// configures no channel.
    pub fn for_run(spec: &Notifications, journal_dir: &Path) -> Option<Notifier> {
        if spec.channels.is_empty() {
            return None;
        }
        Some(Notifier {
            channels: Channels::new(spec),
            state_dir: journal_dir.to_path_buf(),
            drift: DriftWatch::load(journal_dir),
        })
    }

    async fn run(self, inbox: Inbox) -> Report {
        let mut report = Report::ok("notifications", 0);
        // What is not delivered is said as it happens (Inbox::warn).
        let notes = inbox.warner();
        for (label, why) in &self.channels.broken {
            notes.say(format!("{label} is off for this run: {why}"));
        }
        let inbox = Arc::new(inbox);
        let (set_deadline, deadline) = Deadline::new();
        let set_deadline = Arc::new(set_deadline);
        // The bus sets the deadline when the run is over; the workers need it at once, even
        // while the loop below waits for one of them.
        tokio::spawn({
            let (inbox, set_deadline) = (Arc::clone(&inbox), Arc::clone(&set_deadline));
            async move {
                loop {
                    if let Some(end) = inbox.deadline() {
                        let _ = set_deadline.send(Some(end.into()));
                        return;
                    }
                    tokio::time::sleep(DEADLINE_POLL).await;
                }
            }
        });
        let incidents = Arc::new(Incidents {
            dir: self.state_dir,
            lock: Mutex::new(()),
        });
        let mut routes = Vec::new();
        let mut workers = Vec::new();
        for channel in self.channels.channels {
            let (jobs, queue) = mpsc::channel(QUEUE);
            routes.push((channel.route(), jobs));
            let worker = Worker {
                channel,
                timeout: self.channels.timeout,
                deadline: deadline.clone(),
                incidents: Arc::clone(&incidents),
                notes: notes.clone(),
            };
            workers.push(tokio::spawn(worker.run(queue)));
        }
        let dashboard = self.channels.dashboard;
        let mut drift = self.drift;
        let mut model: Option<Model> = None;
        // Jobs not handed over, and events not read, when the deadline came.
        let (mut not_queued, mut unread) = (0u64, 0u64);
        loop {
            let item = tokio::select! {
                item = inbox.recv_async() => item,
                () = deadline.clone().passed() => {
                    unread = inbox.backlog();
                    break;
                }
            };
            let Some(item) = item else { break };
            let Received::Event(event) = item else {
                continue;
            };
            let model = crate::progress::fold(&mut model, &event);
            let mut triggers: Vec<Trigger> = notice::trigger(model, &event, dashboard.as_deref())
                .into_iter()
                .collect();
            triggers.extend(drift.follow(model, &event, dashboard.as_deref()));
            for (route, jobs) in &routes {
                for job in route.jobs_for(&event, &triggers, &model.run_id) {
                    // Waits only while this channel has QUEUE jobs pending.
                    tokio::select! {
                        sent = jobs.send(job) => drop(sent),
                        () = deadline.clone().passed() => not_queued += 1,
                    }
                }
            }
        }
        drop(routes);
        // The run is over: what is pending gets until the bus's deadline.
        set_deadline.send_if_modified(|end| {
            let unset = end.is_none();
            if unset {
                *end = Some(tokio::time::Instant::now() + DEFAULT_FLUSH);
            }
            unset
        });
        let end = deadline
            .get()
            .unwrap_or_else(|| tokio::time::Instant::now() + DEFAULT_FLUSH);
        // A worker ends by the deadline (attempts are cut there); the margin is for it to
        // say what it could not deliver, within the time the file log waits for notes.
        let margin = end + NOTES_MARGIN / 2;
        for worker in workers {
            match tokio::time::timeout_at(margin, worker).await {
                Ok(Ok(tally)) => {
                    report.delivered += tally.delivered;
                    report.undelivered += tally.undelivered;
                }
                Ok(Err(_)) => {
                    notes.say("a notification channel crashed; its pending messages are lost")
                }
                Err(_) => notes.say(
                    "a notification channel did not finish by the end of the run; its pending \
                     messages are lost",
                ),
            }
        }
        if not_queued > 0 {
            report.undelivered += not_queued;
            notes.say(format!(
                "{not_queued} notifications were not sent: the run was over before their turn"
            ));
        }
        if unread > 0 {
            notes.say(format!(
                "the run was over before {unread} of its events were read: the notifications \
                 they called for were not sent"
            ));
        }
        report
    }
}

impl Sink for Notifier {
    fn name(&self) -> String {
        "notifications".into()
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    /// Drained with the record, before the run's lock is released (PagerDuty's state is
    /// written under it); its failures are warnings all the same.
    fn purpose(&self) -> Purpose {
        Purpose::Record
    }

    fn start(self: Box<Self>, inbox: Inbox) -> std::io::Result<Handle> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Handle::thread("notifications", move || {
            let report = runtime.block_on(self.run(inbox));
            // Leave at once: a DNS lookup still running on a blocking thread must not hold
            // the report (the bus waits for it only so long).
            runtime.shutdown_background();
            report
        })
    }
}

/// Open PagerDuty incidents, remembered in `pagerduty.json` (see [`pagerduty::State`]).
struct Incidents {
    dir: PathBuf,
    /// Several PagerDuty channels share the file.
    lock: Mutex<()>,
}

impl Incidents {
    fn update<T>(
        &self,
        change: impl FnOnce(&mut pagerduty::State) -> T,
    ) -> (T, std::io::Result<()>) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = pagerduty::State::load(&self.dir);
        let before = state.clone();
        let out = change(&mut state);
        let saved = if state == before {
            Ok(())
        } else {
            state.save(&self.dir)
        };
        (out, saved)
    }

    fn open(&self, slot: &str) -> Option<String> {
        self.update(|s| s.open.get(slot).map(|i| i.dedup_key.clone()))
            .0
    }

    fn remember(&self, slot: &str, notice: &Notice) -> std::io::Result<()> {
        self.update(|s| {
            s.open.insert(
                slot.to_owned(),
                pagerduty::Incident {
                    dedup_key: pagerduty::dedup_of(notice),
                    run_id: notice.run_id.clone(),
                    triggered_at: crate::event::format_timestamp(&notice.at),
                },
            )
        })
        .1
    }

    fn forget(&self, slot: &str) -> std::io::Result<()> {
        self.update(|s| s.open.remove(slot)).1
    }

    fn path(&self) -> String {
        pagerduty::state_path(&self.dir).display().to_string()
    }
}

/// Delivers one channel's jobs, in order.
struct Worker {
    channel: Channel,
    timeout: Duration,
    deadline: Deadline,
    incidents: Arc<Incidents>,
    /// Where what it could not do is said.
    notes: NoteWriter,
}

/// What a worker did.
#[derive(Default)]
struct Tally {
    delivered: u64,
    undelivered: u64,
}

impl Worker {
    async fn run(self, mut queue: mpsc::Receiver<Job>) -> Tally {
        let mut tally = Tally::default();
        let describe = self.channel.describe();
        let mut failing = false;
        while let Some(job) = queue.recv().await {
            let what = job.describe();
            let pagerduty = matches!(self.channel.kind, Kind::PagerDuty(_));
            // The incident this resolve closes: its key, and where it is remembered.
            let mut incident = None;
            match (&job, pagerduty) {
                // Resolve only what a failure (or drift) left open.
                (Job::Resolve(page), true) => {
                    let slot = page.slot(&self.channel.label);
                    match self.incidents.open(&slot) {
                        Some(key) => incident = Some((key, slot)),
                        None => continue,
                    }
                }
                // Remember a trigger before sending it: one that may have arrived is worth a
                // resolve later (a resolve of an unknown key does nothing).
                (Job::Notice(n), true) => {
                    let slot = Page::of(n).slot(&self.channel.label);
                    if let Err(e) = self.incidents.remember(&slot, n) {
                        let later = match Page::of(n) {
                            Page::Failure => "a later successful deploy",
                            Page::Drift => "a later drift check in sync",
                        };
                        let message = format!(
                            "{describe}: cannot record the incident in {} ({e}); {later} will \
                             not resolve it",
                            self.incidents.path()
                        );
                        self.notes.say(message);
                    }
                }
                _ => {}
            }
            // A channel whose last message failed every attempt gets one attempt per message
            // until one goes through: a dead endpoint does not cost the backoff each time.
            let attempts = if failing { 1 } else { ATTEMPTS };
            let key = incident.as_ref().map(|(key, _)| key.as_str());
            let outcome = match self.channel.prepare(&job, key) {
                Ok(prepared) => {
                    self.channel
                        .deliver(&prepared, attempts, self.timeout, &self.deadline)
                        .await
                }
                Err(why) => Outcome::Failed {
                    attempts: 0,
                    error: why.to_string(),
                },
            };
            match outcome.failure() {
                None => {
                    failing = false;
                    tally.delivered += 1;
                    if let Some((_, slot)) = &incident {
                        if let Err(e) = self.incidents.forget(slot) {
                            let message = format!(
                                "{describe}: the incident is resolved, but {} could not be \
                                 updated ({e})",
                                self.incidents.path()
                            );
                            self.notes.say(message);
                        }
                    }
                }
                Some(failure) => {
                    tally.undelivered += 1;
                    let note = if failing {
                        " (tried once: the channel was already failing)"
                    } else {
                        ""
                    };
                    let message = format!("{describe}: {what} {failure}{note}");
                    self.notes.say(message);
                    failing |= matches!(outcome, Outcome::Failed { attempts, .. } if attempts > 0);
                }
            }
        }
        tally
    }
}

/// One channel's result in `cloud notify test`.
pub struct TestResult {
    /// `slack (https://hooks.slack.com)`.
    pub channel: String,
    /// `Err(why)` when it was not delivered.
    pub result: Result<(), TestFailure>,
}

/// Why `cloud notify test` did not get through to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestFailure {
    /// `not delivered after 3 attempts: HTTP 500 …`
    Undelivered(String),
    /// PagerDuty opened the test incident; its resolve was `not delivered …`.
    NotResolved(String),
    /// The channel is off for this run (a `${VAR}` not set, a value that is no URL).
    Off(String),
    Crashed,
}

impl std::fmt::Display for TestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestFailure::Undelivered(why) | TestFailure::Off(why) => f.write_str(why),
            TestFailure::NotResolved(why) => {
                write!(f, "the test incident was opened, but its resolve was {why}")
            }
            TestFailure::Crashed => f.write_str("it crashed"),
        }
    }
}

/// Sends a test message to every channel at once and says how each went (PagerDuty: an
/// `info` trigger on a test incident of its own, resolved right after). Channels that cannot
/// be set up are results too.
pub async fn send_test(
    spec: &Notifications,
    deployment_id: &str,
    environment: &str,
) -> Vec<TestResult> {
    let channels = Channels::new(spec);
    let notice = Notice::test(deployment_id, environment, channels.dashboard.as_deref());
    let timeout = channels.timeout;
    let mut tasks = Vec::new();
    for channel in channels.channels {
        let notice = notice.clone();
        tasks.push(tokio::spawn(async move {
            let never = Deadline::never();
            let job = Job::Notice(Box::new(notice.clone()));
            let pagerduty = matches!(channel.kind, Kind::PagerDuty(_));
            let outcome = match channel.prepare(&job, None) {
                Ok(p) => channel.deliver(&p, ATTEMPTS, timeout, &never).await,
                Err(why) => Outcome::Failed {
                    attempts: 0,
                    error: why.to_string(),
                },
            };
            let mut result = outcome
                .failure()
                .map_or(Ok(()), |why| Err(TestFailure::Undelivered(why)));
            if result.is_ok() && pagerduty {
                let key = pagerduty::dedup_of(&notice);
                let resolved = match channel.prepare(&Job::Resolve(Page::Failure), Some(&key)) {
                    Ok(p) => channel.deliver(&p, ATTEMPTS, timeout, &never).await,
                    Err(why) => Outcome::Failed {
                        attempts: 0,
                        error: why.to_string(),
                    },
                };
                if let Some(why) = resolved.failure() {
                    result = Err(TestFailure::NotResolved(why));
                }
            }
            TestResult {
                channel: channel.describe(),
                result,
            }
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap_or_else(|_| TestResult {
            channel: "a channel".into(),
            result: Err(TestFailure::Crashed),
        }));
    }
    for (label, why) in channels.broken {
        results.push(TestResult {
            channel: label,
            result: Err(TestFailure::Off(why)),
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::bus::Bus;
    use crate::event::{
        DeploymentComplete, DeploymentFailed, DeploymentStarted, DeploymentState, DriftStatus,
        DriftedAttribute, ErrorCode, ErrorDetail, EventData, PlanAction, PlannedStack,
        ResourceDrifted, ResourceRef, StackDriftChecked, StackFailed,
    };
    use crate::manifest::notifications::{
        DRIFT_TRIGGERS, EMAIL_DEFAULT, PAGERDUTY_DEFAULT, PAGERDUTY_EVENTS, SLACK_DEFAULT,
        WEBHOOK_DEFAULT,
    };
    use crate::testing;

    fn event(sequence: u64, data: EventData) -> Arc<Event> {
        Arc::new(crate::testing::event(sequence, data))
    }

    fn error(code: &ErrorCode) -> ErrorDetail {
        ErrorDetail {
            code: code.clone(),
            message: "Access Denied".into(),
            details: None,
        }
    }

    /// A run of two stacks in which `db` fails with `code`, as events.
    fn failed_run(code: ErrorCode, operation: Operation) -> Vec<Arc<Event>> {
        let stacks = ["network", "db"]
            .iter()
            .enumerate()
            .map(|(i, name)| PlannedStack {
                name: (*name).into(),
                layer: i as u32 + 1,
                ..Default::default()
            })
            .collect();
        vec![
            event(
                1,
                EventData::DeploymentStarted(DeploymentStarted {
                    total_stacks: 2,
                    total_layers: 2,
                    operation,
                    run_id: "run-1".into(),
                    stacks,
                    ..Default::default()
                }),
            ),
            event(
                2,
                EventData::StackFailed(StackFailed {
                    stack: "db".into(),
                    error: error(&code),
                    duration_seconds: 3,
                }),
            ),
            event(
                3,
                EventData::DeploymentFailed(DeploymentFailed {
                    failed_stacks: vec!["db".into()],
                    blocked_stacks: vec![],
                    stack: Some("db".into()),
                    layer: Some(2),
                    error: error(&code),
                    duration_seconds: 5,
                }),
            ),
            event(
                4,
                complete(DeploymentState::Failed, code == ErrorCode::Cancelled),
            ),
        ]
    }

    fn complete(status: DeploymentState, cancelled: bool) -> EventData {
        EventData::DeploymentComplete(DeploymentComplete {
            status,
            total_stacks: 2,
            deployed_stacks: if status == DeploymentState::Deployed {
                2
            } else {
                1
            },
            skipped_stacks: 0,
            failed_stacks: u32::from(status != DeploymentState::Deployed),
            blocked_stacks: 0,
            not_started_stacks: 0,
            duration_seconds: 5,
            cancelled,
        })
    }

    /// What a channel of `kind` listing `events` is asked to send for `run`.
    fn jobs(kind: RouteKind, events: &[&'static str], run: &[Arc<Event>]) -> Vec<String> {
        jobs_with(kind, events, run, None)
    }

    /// [`jobs`], with drift's triggers too when `drift` follows the run.
    fn jobs_with(
        kind: RouteKind,
        events: &[&'static str],
        run: &[Arc<Event>],
        mut drift: Option<DriftWatch>,
    ) -> Vec<String> {
        let route = Route {
            events: events.to_vec(),
            kind,
        };
        let mut model = Model::new("D1BRV40", "dev");
        let mut out = Vec::new();
        for e in run {
            model.apply(e);
            let mut triggers: Vec<Trigger> = notice::trigger(&model, e, None).into_iter().collect();
            if let Some(drift) = &mut drift {
                triggers.extend(drift.follow(&model, e, None));
            }
            for job in route.jobs_for(e, &triggers, &model.run_id) {
                out.push(match job {
                    Job::Notice(n) => format!("{:?} {}", n.what, n.title()),
                    Job::Resolve(Page::Failure) => "resolve".into(),
                    Job::Resolve(Page::Drift) => "resolve drift".into(),
                    Job::Event(e, delivery) => format!("{} {delivery}", e.data.type_name()),
                });
            }
        }
        out
    }

    #[test]
    fn a_failed_run_is_said_once_per_channel() {
        let run = failed_run(ErrorCode::InsufficientPermissions, Operation::Deploy);
        assert_eq!(
            jobs(RouteKind::Message, EMAIL_DEFAULT, &run),
            [
                "Started Deployment Started: D1BRV40-dev",
                "StackFailed Stack Failed: db (D1BRV40-dev)",
                "Failed Deployment Failed: D1BRV40-dev",
            ]
        );
        assert_eq!(
            jobs(RouteKind::Message, SLACK_DEFAULT, &run),
            [
                "StackFailed Stack Failed: db (D1BRV40-dev)",
                "Failed Deployment Failed: D1BRV40-dev",
            ]
        );
        // A channel told only about the end of runs hears of the failure there.
        assert_eq!(
            jobs(RouteKind::Message, &["deployment_complete"], &run),
            ["Failed Deployment Failed: D1BRV40-dev"]
        );
        assert_eq!(
            jobs(RouteKind::PagerDuty, PAGERDUTY_DEFAULT, &run),
            ["Failed Deployment Failed: D1BRV40-dev"]
        );
        assert_eq!(
            jobs(RouteKind::Webhook, WEBHOOK_DEFAULT, &run),
            [
                "deployment_started run-1-1",
                "stack_failed run-1-2",
                "deployment_failed run-1-3",
                "deployment_complete run-1-4",
            ]
        );
    }

    #[test]
    fn a_cancelled_run_pages_nobody_and_cancelled_stacks_are_not_failures() {
        let run = failed_run(ErrorCode::Cancelled, Operation::Deploy);
        assert!(jobs(RouteKind::PagerDuty, PAGERDUTY_EVENTS, &run).is_empty());
        assert_eq!(
            jobs(RouteKind::Message, EMAIL_DEFAULT, &run),
            [
                "Started Deployment Started: D1BRV40-dev",
                "Failed Deployment Cancelled: D1BRV40-dev",
            ]
        );
    }

    #[test]
    fn only_a_successful_deploy_resolves() {
        let mut run = failed_run(ErrorCode::CommandFailed, Operation::Deploy);
        run.truncate(1);
        run.push(event(2, complete(DeploymentState::Deployed, false)));
        assert_eq!(
            jobs(RouteKind::PagerDuty, PAGERDUTY_DEFAULT, &run),
            ["resolve"]
        );
        assert_eq!(
            jobs(RouteKind::Message, SLACK_DEFAULT, &run),
            ["Complete Deployment Complete: D1BRV40-dev"]
        );
        let mut destroy = failed_run(ErrorCode::CommandFailed, Operation::Destroy);
        destroy.truncate(1);
        destroy.push(event(2, complete(DeploymentState::Deployed, false)));
        assert!(jobs(RouteKind::PagerDuty, PAGERDUTY_DEFAULT, &destroy).is_empty());
        assert_eq!(
            jobs(RouteKind::Message, SLACK_DEFAULT, &destroy),
            ["Complete Destroy Complete: D1BRV40-dev"]
        );
    }

    /// A drift check of `network` and `db` in which `db`'s `sg` drifted (when `drifted`).
    fn drift_run(drifted: bool, cancelled: bool) -> Vec<Arc<Event>> {
        let stacks = ["network", "db"]
            .iter()
            .map(|name| PlannedStack {
                name: (*name).into(),
                layer: 1,
                ..Default::default()
            })
            .collect();
        let checked = |stack: &str, status| {
            EventData::StackDriftChecked(StackDriftChecked {
                stack: stack.into(),
                status,
                drifted_resources: u32::from(status == DriftStatus::Drifted),
                drifted_since: None,
                reason: None,
                duration_seconds: 1,
            })
        };
        let mut run = vec![event(
            1,
            EventData::DeploymentStarted(DeploymentStarted {
                total_stacks: 2,
                total_layers: 1,
                operation: Operation::Drift,
                run_id: "run-2".into(),
                stacks,
                ..Default::default()
            }),
        )];
        run.push(event(2, checked("network", DriftStatus::InSync)));
        if drifted {
            run.push(event(
                3,
                EventData::ResourceDrifted(ResourceDrifted {
                    stack: "db".into(),
                    resource: ResourceRef {
                        urn: "urn:sg".into(),
                        type_: "aws:ec2/securityGroup:SecurityGroup".into(),
                        name: "sg".into(),
                        id: None,
                        address: None,
                    },
                    action: PlanAction::Update,
                    attributes: vec![DriftedAttribute {
                        name: "password".into(),
                        before: None,
                        after: None,
                        sensitive: true,
                    }],
                }),
            ));
            run.push(event(4, checked("db", DriftStatus::Drifted)));
        } else {
            run.push(event(4, checked("db", DriftStatus::InSync)));
        }
        run.push(event(5, complete(DeploymentState::Deployed, cancelled)));
        run
    }

    /// `db` drifted since a check before this run.
    fn db_drifted_before() -> DriftWatch {
        let health = crate::health::Health {
            status: DriftStatus::Drifted,
            checked: crate::testing::at(0.0),
            since: Some(crate::testing::at(0.0)),
            resources: vec!["aws:ec2/securityGroup:SecurityGroup (sg)".into()],
        };
        DriftWatch::new([("db".to_owned(), health)].into())
    }

    #[test]
    fn drift_found_is_said_once_at_the_end_and_pages_its_own_incident() {
        let run = drift_run(true, false);
        let watch = || Some(DriftWatch::default());
        // No "started" or "complete" for a check: only what it found.
        assert_eq!(
            jobs_with(RouteKind::Message, EMAIL_DEFAULT, &run, watch()),
            ["DriftDetected Drift Detected: D1BRV40-dev"]
        );
        assert_eq!(
            jobs_with(RouteKind::PagerDuty, PAGERDUTY_DEFAULT, &run, watch()),
            ["DriftDetected Drift Detected: D1BRV40-dev"]
        );
        // A channel that does not list it is not told.
        assert!(jobs_with(RouteKind::Message, &["stack_failed"], &run, watch()).is_empty());
        // Webhooks get the events as they are.
        assert_eq!(
            jobs_with(
                RouteKind::Webhook,
                &["resource_drifted", "stack_drift_checked"],
                &run,
                watch()
            ),
            [
                "stack_drift_checked run-2-2",
                "resource_drifted run-2-3",
                "stack_drift_checked run-2-4"
            ]
        );
    }

    #[test]
    fn a_cancelled_drift_check_says_nothing_of_drift_and_pages_nobody() {
        let run = drift_run(true, true);
        let watch = || Some(DriftWatch::default());
        assert!(jobs_with(RouteKind::PagerDuty, PAGERDUTY_EVENTS, &run, watch()).is_empty());
        assert!(jobs_with(RouteKind::Message, DRIFT_TRIGGERS, &run, watch()).is_empty());
        // Nor does it resolve what was drifted before.
        let run = drift_run(false, true);
        let before = || Some(db_drifted_before());
        assert!(jobs_with(RouteKind::PagerDuty, PAGERDUTY_EVENTS, &run, before()).is_empty());
        assert!(jobs_with(RouteKind::Message, DRIFT_TRIGGERS, &run, before()).is_empty());
    }

    #[test]
    fn drift_resolved_for_stacks_drifted_before_and_in_sync_now() {
        let run = drift_run(false, false);
        let before = || Some(db_drifted_before());
        assert_eq!(
            jobs_with(RouteKind::Message, SLACK_DEFAULT, &run, before()),
            ["DriftResolved Drift Resolved: D1BRV40-dev"]
        );
        assert_eq!(
            jobs_with(RouteKind::PagerDuty, PAGERDUTY_DEFAULT, &run, before()),
            ["resolve drift"]
        );
        // Nothing drifted before: nothing resolved (PagerDuty's resolve goes only where an
        // incident is open, which the worker checks).
        let none = || Some(DriftWatch::default());
        assert!(jobs_with(RouteKind::Message, EMAIL_DEFAULT, &run, none()).is_empty());
        // Still drifted: neither.
        let run = drift_run(true, false);
        assert_eq!(
            jobs_with(RouteKind::PagerDuty, PAGERDUTY_DEFAULT, &run, before()),
            ["DriftDetected Drift Detected: D1BRV40-dev"]
        );
    }

    #[test]
    fn a_drift_notice_names_resources_and_never_a_sensitive_value() {
        let run = drift_run(true, false);
        let mut model = Model::new("D1BRV40", "dev");
        let mut watch = DriftWatch::default();
        let mut found = None;
        for e in &run {
            model.apply(e);
            for t in watch.follow(&model, e, Some("https://cloud.example.com")) {
                if let Trigger::DriftDetected(n) = t {
                    found = Some(n);
                }
            }
        }
        let notice = found.expect("drift_detected");
        let body = email::body(&notice);
        assert!(
            body.contains(
                "- aws:ec2/securityGroup:SecurityGroup (sg): password changed (sensitive)"
            ),
            "{body}"
        );
        assert!(
            body.contains("Heal it: cloud deploy D1BRV40 -e dev --only-drifted"),
            "{body}"
        );
        let slack = slack::message(&notice).to_string();
        assert!(slack.contains("password changed (sensitive)"), "{slack}");
    }

    fn log(sequence: u64) -> Arc<Event> {
        event(sequence, testing::log("app", &format!("line {sequence}")))
    }

    /// An endpoint that takes connections and never answers, and more events than a channel
    /// queues: the notifier still ends by the deadline, by itself, and says what it dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_endpoint_cannot_hold_the_run_past_its_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                held.push(stream);
            }
        });
        let yaml = format!(
            "environments: [dev]\nstacks: {{ app: {{ executor: simulate }} }}\nnotifications:\n  \
             timeout: 5s\n  webhooks: [ {{ url: \"http://127.0.0.1:{port}/hook\", events: [\"*\"] }} ]\n"
        );
        let manifest = crate::manifest::parse(
            Path::new("cloud/deploy/D1BRV40/deployment.yaml"),
            &yaml,
            &crate::executor::registry(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = manifest.notifications.as_ref().unwrap();
        let notifier = Notifier::for_run(spec, dir.path()).unwrap();
        let mut bus = Bus::new(dir.path());
        bus.attach(Box::new(notifier)).unwrap();
        let publisher = bus.publisher();
        let model = Model::new("D1BRV40", "dev");
        for sequence in 1..=(QUEUE as u64 + 50) {
            publisher.send(log(sequence), &model);
        }
        let shutdown = bus.shutdown(Duration::from_millis(1500)).await;
        let report = &shutdown.reports[0];
        assert_eq!(report.problem, None, "the bus had to give up on it");
        let said: Vec<&str> = shutdown
            .warnings
            .iter()
            .map(|n| n.message.as_str())
            .collect();
        let said = said.join("\n");
        assert!(
            said.contains("stack_log (app) not delivered after"),
            "{said}"
        );
        assert!(
            said.contains("the run was over before their turn")
                || said.contains("of its events were read"),
            "{said}"
        );
        assert_eq!(report.delivered, 0);
    }
}
