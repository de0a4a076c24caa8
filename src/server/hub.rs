//! The hub: a sink on the bus (or fed by a [`super::store::Follower`]) that folds every event
//! with the one reducer into a [`Model`] per deployment and environment, keeps the recent
//! events for `since` replay, and fans each event out to the WebSocket clients.
//!
//! Fan-out is one [`broadcast`] ring per channel: each event is serialized once and every
//! subscriber reads it from the ring at its own pace. The ring is the bound on what a client
//! may fall behind by; a client that falls further behind is told so ([`Recv::Lagged`]) and
//! gets a fresh snapshot instead of the events it missed — never a silent gap. Nothing here
//! waits for a client, so no client can slow the deploy or the others.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::store::{ChannelKey, StoredRuns};
use crate::bus::{Delivery, Handle, Inbox, Purpose, Received, Report, Sink};
use crate::event::{Event, EventData};
use crate::progress::Model;

/// Events a client may fall behind by before it is resynced with a snapshot.
pub const RING: usize = 4096;
/// Events of the current run kept in memory for `since` replay and the REST audit trail
/// (older ones are read from the store).
pub const REPLAY: usize = 50_000;

/// One event (or the start of a new run) as the subscribers receive it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Counts the runs seen on the channel; a frame of an older run is stale.
    pub generation: u64,
    pub sequence: u64,
    /// The event's JSON; `None` announces a new run (generation), whose events follow.
    pub text: Option<Utf8Bytes>,
}

/// Where a new subscriber starts.
pub enum Start {
    /// The whole state (`None` when no run is known yet) as of `sequence`.
    Snapshot {
        generation: u64,
        sequence: u64,
        snapshot: Option<String>,
    },
    /// The events after `since`, from memory; live ones follow.
    Replay {
        generation: u64,
        since: u64,
        events: Vec<Utf8Bytes>,
    },
}

/// Why a channel name leads nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// Outside the token's scope (existing or not).
    Forbidden,
    /// In scope, and no such deployment and environment.
    NotFound,
}

/// A run's last known state, for listings.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub key: ChannelKey,
    pub snapshot: Option<String>,
}

struct ChannelState {
    generation: u64,
    model: Option<Model>,
    /// When the last event arrived (the run's clock counts on from its time: [`run_clock`]).
    received: Option<Instant>,
    replay: VecDeque<(u64, Utf8Bytes)>,
    /// The last snapshot message built, shared by the subscribers that resync at that point.
    cached: Option<CachedSnapshot>,
}

struct CachedSnapshot {
    generation: u64,
    sequence: u64,
    channel: String,
    reason: &'static str,
    built: Instant,
    text: Utf8Bytes,
}

/// How long a cached snapshot's clock (duration, ETA) may be behind.
const SNAPSHOT_FRESH: Duration = Duration::from_secs(1);

struct Channel {
    state: Mutex<ChannelState>,
    tx: broadcast::Sender<Frame>,
}

impl Channel {
    fn new() -> Self {
        Channel {
            state: Mutex::new(ChannelState {
                generation: 0,
                model: None,
                received: None,
                replay: VecDeque::new(),
                cached: None,
            }),
            tx: broadcast::channel(RING).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Shared by the sink, the follower and every connection; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    channels: RwLock<HashMap<ChannelKey, Arc<Channel>>>,
    store: Option<Arc<dyn StoredRuns>>,
    /// Only the channels opened with [`Hub::open`] exist (`cloud deploy --serve`).
    closed_set: bool,
}

/// The state as clients see it (JSON, the stacks in the model's order): the model, with the
/// run's clock and the ETA it carried counted down to `now` while it is going, and `now`
/// itself (`"now"`: the run's time, which clients count on from).
pub fn snapshot_json(model: &Model, now: DateTime<Utc>) -> String {
    let text = if !model.is_finished() && model.start_time.is_some() {
        let mut live = model.clone();
        live.metrics.duration_seconds = model.elapsed(now).round() as u64;
        live.metrics.estimated_time_remaining = model.eta(now);
        serde_json::to_string(&live).map(|json| match json.strip_prefix('{') {
            Some(rest) => format!("{{\"now\":{},{rest}", serde_json::json!(now)),
            None => json,
        })
    } else {
        serde_json::to_string(model)
    };
    // Plain data always serializes.
    text.unwrap_or_else(|_| "null".into())
}

/// The run's time now: its last event's time, plus the time since that event arrived. A live
/// run's is the real time; a replayed run's (`cloud replay --serve`) the time it replays,
/// which the real clock is not.
fn run_clock(state: &ChannelState) -> DateTime<Utc> {
    let last = state.model.as_ref().and_then(|m| m.last_event_time);
    match (last, state.received) {
        (Some(at), Some(received)) => {
            at + chrono::Duration::from_std(received.elapsed()).unwrap_or_default()
        }
        _ => Utc::now(),
    }
}

impl Hub {
    /// A hub whose channels are whatever the store (and the events) name.
    pub fn new(store: Option<Arc<dyn StoredRuns>>) -> Hub {
        Hub::build(store, false)
    }

    /// A hub for exactly these channels (a deploy serving itself).
    pub fn only(keys: &[ChannelKey], store: Option<Arc<dyn StoredRuns>>) -> Hub {
        let hub = Hub::build(store, true);
        for key in keys {
            hub.open(key);
        }
        hub
    }

    fn build(store: Option<Arc<dyn StoredRuns>>, closed_set: bool) -> Hub {
        Hub {
            inner: Arc::new(Inner {
                channels: RwLock::new(HashMap::new()),
                store,
                closed_set,
            }),
        }
    }

    pub fn store(&self) -> Option<&Arc<dyn StoredRuns>> {
        self.inner.store.as_ref()
    }

    fn open(&self, key: &ChannelKey) -> Arc<Channel> {
        if let Some(channel) = self.channel(key) {
            return channel;
        }
        let mut channels = self
            .inner
            .channels
            .write()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            channels
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Channel::new())),
        )
    }

    fn channel(&self, key: &ChannelKey) -> Option<Arc<Channel>> {
        self.inner
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Is `key` a deployment and environment this server can show (now or once it runs)?
    pub fn knows(&self, key: &ChannelKey) -> bool {
        if self.channel(key).is_some() {
            return true;
        }
        if self.inner.closed_set {
            return false;
        }
        self.inner.store.as_ref().is_some_and(|store| {
            store.deployments().is_ok_and(|all| {
                all.iter()
                    .any(|d| d.id == key.deployment && d.environments.contains(&key.environment))
            })
        })
    }

    /// Does any environment of `deployment` exist here?
    pub fn knows_deployment(&self, deployment: &str) -> bool {
        self.keys().iter().any(|k| k.deployment == deployment)
    }

    /// The channel a subscribe message names, `deployments/<ID>-<env>`, among the readings
    /// whose deployment `visible` lets through: `Err(Forbidden)` when it lets none through,
    /// whether or not one exists (a token must not learn what exists outside its scope).
    pub fn resolve(
        &self,
        channel: &str,
        visible: impl Fn(&str) -> bool,
    ) -> Result<ChannelKey, Unresolved> {
        let candidates = ChannelKey::candidates(channel);
        if !candidates.is_empty() && !candidates.iter().any(|k| visible(&k.deployment)) {
            return Err(Unresolved::Forbidden);
        }
        candidates
            .into_iter()
            .find(|k| visible(&k.deployment) && self.knows(k))
            .ok_or(Unresolved::NotFound)
    }

    /// Every deployment and environment known, sorted.
    pub fn keys(&self) -> Vec<ChannelKey> {
        let mut keys: Vec<ChannelKey> = self
            .inner
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        if !self.inner.closed_set {
            if let Some(Ok(stored)) = self.inner.store.as_ref().map(|s| s.deployments()) {
                for d in stored {
                    for env in d.environments {
                        keys.push(ChannelKey::new(&d.id, &env));
                    }
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Folds `event` in and sends it to the channel's subscribers. An event that does not
    /// follow the last one (sequence 1 again, another run id) starts a new run.
    pub fn publish(&self, event: &Event) {
        let key = ChannelKey::new(&event.deployment_id, &event.environment);
        if self.inner.closed_set && self.channel(&key).is_none() {
            return;
        }
        let channel = self.open(&key);
        let mut state = channel.lock();
        let new_run = state.model.as_ref().is_some_and(|m| {
            event.sequence <= m.sequence
                || matches!(&event.data, EventData::DeploymentStarted(s) if !m.run_id.is_empty() && s.run_id != m.run_id)
        });
        if new_run {
            state.generation += 1;
            state.model = None;
            state.replay.clear();
            let _ = channel.tx.send(Frame {
                generation: state.generation,
                sequence: 0,
                text: None,
            });
        }
        crate::progress::fold(&mut state.model, event);
        state.received = Some(Instant::now());
        let text = Utf8Bytes::from(event.to_json_line());
        if state.replay.len() == REPLAY {
            state.replay.pop_front();
        }
        state.replay.push_back((event.sequence, text.clone()));
        // No subscriber is no error.
        let _ = channel.tx.send(Frame {
            generation: state.generation,
            sequence: event.sequence,
            text: Some(text),
        });
    }

    /// Subscribes to `key`: where to start (a snapshot, or the events after `since` when they
    /// are still in memory and of the run `run_id` names), and the live frames after it.
    pub fn subscribe(
        &self,
        key: &ChannelKey,
        since: Option<u64>,
        run_id: Option<&str>,
    ) -> (Start, broadcast::Receiver<Frame>) {
        let channel = self.open(key);
        let state = channel.lock();
        // Subscribed under the lock: the receiver gets exactly the frames after this state.
        let rx = channel.tx.subscribe();
        let generation = state.generation;
        let current = state.model.as_ref().map_or(0, |m| m.sequence);
        let same_run = match (&state.model, run_id) {
            (Some(m), Some(id)) => m.run_id == id,
            _ => true,
        };
        if let Some(since) = since.filter(|&s| same_run && s <= current) {
            let oldest = state.replay.front().map_or(current + 1, |(seq, _)| *seq);
            if since + 1 >= oldest {
                let events = state
                    .replay
                    .iter()
                    .filter(|(seq, _)| *seq > since)
                    .map(|(_, text)| text.clone())
                    .collect();
                return (
                    Start::Replay {
                        generation,
                        since,
                        events,
                    },
                    rx,
                );
            }
        }
        let start = Start::Snapshot {
            generation,
            sequence: current,
            snapshot: (state.model.as_ref()).map(|m| snapshot_json(m, run_clock(&state))),
        };
        (start, rx)
    }

    /// The state now as a `snapshot` message for `channel` with `reason` (a subscriber that
    /// fell behind, or the server closing): (generation, sequence, message). Subscribers that
    /// ask at the same point share one message.
    pub fn snapshot_message(
        &self,
        key: &ChannelKey,
        channel: &str,
        reason: &'static str,
    ) -> (u64, u64, Utf8Bytes) {
        let shared = self.open(key);
        let mut state = shared.lock();
        let generation = state.generation;
        let sequence = state.model.as_ref().map_or(0, |m| m.sequence);
        if let Some(c) = &state.cached {
            if (c.generation, c.sequence, c.reason) == (generation, sequence, reason)
                && c.channel == channel
                && c.built.elapsed() < SNAPSHOT_FRESH
            {
                return (generation, sequence, c.text.clone());
            }
        }
        let snapshot = (state.model.as_ref()).map(|m| snapshot_json(m, run_clock(&state)));
        let text = Utf8Bytes::from(snapshot_text(
            "snapshot",
            channel,
            Some(reason),
            sequence,
            snapshot.as_deref(),
        ));
        state.cached = Some(CachedSnapshot {
            generation,
            sequence,
            channel: channel.to_owned(),
            reason,
            built: Instant::now(),
            text: text.clone(),
        });
        (generation, sequence, text)
    }

    /// Reads the model of `key` (none before its first run is known).
    pub fn with_model<T>(&self, key: &ChannelKey, read: impl FnOnce(&Model) -> T) -> Option<T> {
        self.with_model_at(key, |model, _| read(model))
    }

    /// Reads the model of `key` and the run's time now ([`run_clock`]).
    pub fn with_model_at<T>(
        &self,
        key: &ChannelKey,
        read: impl FnOnce(&Model, DateTime<Utc>) -> T,
    ) -> Option<T> {
        let channel = self.channel(key)?;
        let state = channel.lock();
        let now = run_clock(&state);
        state.model.as_ref().map(|model| read(model, now))
    }

    /// The current run's events after `since`, when memory still holds them all.
    pub fn recent_events(&self, key: &ChannelKey, since: u64) -> Option<(String, Vec<Utf8Bytes>)> {
        let channel = self.channel(key)?;
        let state = channel.lock();
        let model = state.model.as_ref()?;
        let oldest = state
            .replay
            .front()
            .map_or(model.sequence + 1, |(seq, _)| *seq);
        (since + 1 >= oldest).then(|| {
            (
                model.run_id.clone(),
                state
                    .replay
                    .iter()
                    .filter(|(seq, _)| *seq > since)
                    .map(|(_, text)| text.clone())
                    .collect(),
            )
        })
    }

    /// Has every known run ended?
    pub fn all_finished(&self) -> bool {
        let channels = self
            .inner
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner());
        channels
            .values()
            .all(|c| c.lock().model.as_ref().is_none_or(Model::is_finished))
    }

    /// Events published so far on `key` (its current run), for tests and shutdown.
    pub fn sequence(&self, key: &ChannelKey) -> u64 {
        self.with_model(key, |m| m.sequence).unwrap_or(0)
    }
}

/// The hub as a sink on a deploy's bus.
pub struct HubSink {
    pub hub: Hub,
}

impl Sink for HubSink {
    fn name(&self) -> String {
        "server".into()
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    fn purpose(&self) -> Purpose {
        // Drained before the run's end is reported, so clients see the last event.
        Purpose::Record
    }

    fn start(self: Box<Self>, inbox: Inbox) -> io::Result<Handle> {
        Handle::thread("server-hub", move || {
            let mut delivered = 0;
            while let Some(item) = inbox.recv() {
                if let Received::Event(event) = item {
                    self.hub.publish(&event);
                    delivered += 1;
                }
            }
            Report::ok("server", delivered)
        })
    }
}

/// The text of a WebSocket `subscribed` (from a snapshot; no `reason`) or `snapshot`: the state
/// as of `sequence` (`null`: no run yet).
pub(crate) fn snapshot_text(
    kind: &str,
    channel: &str,
    reason: Option<&str>,
    sequence: u64,
    snapshot: Option<&str>,
) -> String {
    let reason = match reason {
        Some(reason) => format!(r#","reason":"{reason}""#),
        None => r#","replay":false"#.to_owned(),
    };
    format!(
        r#"{{"type":"{kind}","channel":{}{reason},"sequence":{sequence},"snapshot":{}}}"#,
        serde_json::Value::from(channel),
        snapshot.unwrap_or("null")
    )
}
