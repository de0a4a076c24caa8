//! One WebSocket connection: the seed's `subscribe` messages in, events out.
//!
//! Client → server (JSON text):
//! - `{"action":"subscribe","channel":"deployments/<ID>-<env>"}`, optionally with `"since": N`
//!   (the last sequence the client has; with `"runId"` to be sure it is the same run);
//! - `{"action":"unsubscribe","channel":…}`; `{"action":"ping"}`.
//!
//! Server → client: `subscribed` (`sequence` N, and `snapshot`: the seed's
//! `DeploymentProgress` as of N, or `replay: true` when the events after `since` follow instead),
//! then each event in the seed's envelope with sequence N+1, N+2, … and no gap; `snapshot`
//! (`reason`: `lagged` when the client fell too far behind, `new_run` when a new run begins)
//! resets the state the same way;
//! `unsubscribed`; `pong`; `error` (`error.code`: `BAD_REQUEST`, `UNKNOWN_ACTION`,
//! `NOT_FOUND`, `FORBIDDEN`) — the connection stays up.
//!
//! Each subscription is a task that reads its channel's ring in batches into the connection's
//! bounded queue; one writer task sends that queue to the socket (many frames, one flush) and
//! pings every [`PING_EVERY`]. When a subscription falls more than the ring behind, it queues
//! a resync: when the writer gets there it first waits for the client to have read what it
//! was sent — a numbered ping, answered once the client read up to it (the kernel's queues
//! cannot say it: on loopback they take megabytes a client never reads) — then builds the
//! snapshot (so it is the freshest state; one connection at a time server-wide, each given
//! the lag limit to hand it to the kernel) and drops the queued events it already covers.
//! So a client that stops reading holds only its queue and a socket buffer, never a copy of
//! the state; one that catches up later than the lag limit ([`super::limits::Limits`]) is
//! closed instead (1008, with the reason), and a socket that takes nothing for [`STALLED`] is
//! dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::auth::{Claims, Refused};
use super::hub::{snapshot_text, Frame, Hub, Start, Unresolved};
use super::store::ChannelKey;
use super::upgrade::{self, Sink, Socket};

/// Batches waiting for the socket, per connection (each at most [`BATCH`] frames). Few: each
/// batch a stalled client holds keeps its events' texts alive after the ring moved on (16
/// batches held ~160 KB per stalled client).
pub const QUEUE: usize = 2;
/// How often the server pings an idle client.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// A socket that accepts nothing for this long is given up.
pub const STALLED: Duration = Duration::from_secs(30);
/// The close code when the server ends a connection for what the client did (or let lapse):
/// policy violation.
const POLICY: u16 = 1008;
/// Frames taken from a ring at once, and written before one flush.
const BATCH: usize = 64;

/// Why the server ends its connections: (close code, reason).
pub type Closing = watch::Receiver<Option<(u16, String)>>;

/// `{"type":KIND,…fields}`, `type` first like the events' envelope.
fn message(kind: &str, fields: &[(&str, Value)]) -> Message {
    let mut text = format!(r#"{{"type":{}"#, Value::from(kind));
    for (key, value) in fields {
        text.push_str(&format!(",{}:{value}", Value::from(*key)));
    }
    text.push('}');
    Message::Text(Utf8Bytes::from(text))
}

fn error(code: &str, text: impl Into<String>, channel: Option<&str>) -> Message {
    let mut fields = vec![("error", json!({ "code": code, "message": text.into() }))];
    if let Some(channel) = channel {
        fields.push(("channel", Value::from(channel)));
    }
    message("error", &fields)
}

/// What a connection's writer is handed.
enum Out {
    /// A message as it is (replies, `subscribed`, replayed events, the close).
    Message(Message),
    /// Live frames of one subscription, in order; written unless a snapshot already covers them.
    Frames(Arc<Subscription>, Vec<Frame>),
    /// The subscription fell behind: a fresh snapshot, built when written.
    Resync(Arc<Subscription>),
}

/// One channel a connection subscribed to.
struct Subscription {
    key: ChannelKey,
    channel: String,
    /// False once unsubscribed: what is still queued for it is dropped.
    active: AtomicBool,
    /// A [`Out::Resync`] is queued and not yet written.
    resync_queued: AtomicBool,
    /// When the subscription last fell more than the ring behind.
    lagged_at: std::sync::Mutex<Instant>,
    /// What the client has been sent (only the writer changes these).
    generation: AtomicU64,
    sequence: AtomicU64,
}

impl Subscription {
    fn sent(&self) -> (u64, u64) {
        (
            self.generation.load(Ordering::Acquire),
            self.sequence.load(Ordering::Acquire),
        )
    }
    fn set_sent(&self, generation: u64, sequence: u64) {
        self.generation.store(generation, Ordering::Release);
        self.sequence.store(sequence, Ordering::Release);
    }
}

type Subscriptions = HashMap<String, (Arc<Subscription>, JoinHandle<()>)>;

/// How a connection ends.
enum End {
    /// The client left.
    Left,
    /// The server is closing: (code, reason), after what the rings still hold.
    Server(u16, String),
    /// Closed now, with (code, reason): what is queued is dropped.
    Now(u16, String),
}

/// Runs a connection until the client leaves, the server closes or the token expires.
pub async fn connection(
    socket: Socket,
    hub: Hub,
    claims: Claims,
    mut closing: Closing,
    lag_limit: Duration,
) {
    let (sink, mut stream) = socket.split();
    let (out, queue) = mpsc::channel::<Out>(QUEUE);
    // The highest numbered ping of the writer's that the client answered.
    let (echoes, echoed) = watch::channel(0u64);
    let writer = tokio::spawn(write(sink, queue, hub.clone(), echoed, lag_limit));
    let mut subscriptions = Subscriptions::new();
    // What was checked at the upgrade holds only until then.
    let expiry = tokio::time::sleep(claims.remaining());
    tokio::pin!(expiry);
    let end = loop {
        tokio::select! {
            () = &mut expiry => {
                break End::Now(POLICY, Refused::Expired.to_string());
            }
            message = stream.next() => {
                let Some(Ok(message)) = message else { break End::Left };
                let reply = match message {
                    Message::Text(body) => handle(&body, &hub, &claims, &out, &closing, &mut subscriptions),
                    Message::Binary(_) => Some(error("BAD_REQUEST", "send JSON text messages", None)),
                    Message::Close(_) => break End::Left,
                    Message::Pong(payload) => {
                        if let Some(n) = probe_number(&payload) {
                            echoes.send_if_modified(|seen| std::mem::replace(seen, n.max(*seen)) < n);
                        }
                        None
                    }
                    // Pings are answered by the protocol layer.
                    // (Whole frames are never read: only written, by upgrade::feed.)
                    Message::Ping(_) | Message::Frame(_) => None,
                };
                if let Some(reply) = reply {
                    if out.send(Out::Message(reply)).await.is_err() {
                        break End::Left;
                    }
                }
            }
            changed = closing.changed() => {
                let reason = closing.borrow().clone();
                match reason {
                    Some((code, reason)) => break End::Server(code, reason),
                    None if changed.is_err() => break End::Left,
                    None => {}
                }
            }
        }
    };
    let close = match end {
        End::Server(code, reason) => {
            // Each subscription forwards what its ring still holds.
            for (_, (_, task)) in subscriptions.drain() {
                let _ = task.await;
            }
            Some((code, reason))
        }
        End::Left => None,
        End::Now(code, reason) => Some((code, reason)),
    };
    for (_, (sub, task)) in subscriptions.drain() {
        sub.active.store(false, Ordering::Release);
        task.abort();
    }
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code: code.into(),
            reason: Utf8Bytes::from(reason),
        };
        let _ = out.send(Out::Message(Message::Close(Some(frame)))).await;
    }
    drop(out);
    let _ = writer.await;
}

/// Handles one client message; returns the direct reply, if any.
fn handle(
    body: &str,
    hub: &Hub,
    claims: &Claims,
    out: &mpsc::Sender<Out>,
    closing: &Closing,
    subscriptions: &mut Subscriptions,
) -> Option<Message> {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Some(error(
            "BAD_REQUEST",
            "not JSON; send e.g. {\"action\":\"subscribe\",\"channel\":\"deployments/<ID>-<env>\"}",
            None,
        ));
    };
    let Some(action) = value.get("action").and_then(Value::as_str) else {
        return Some(error(
            "BAD_REQUEST",
            "the message needs an \"action\": subscribe, unsubscribe or ping",
            None,
        ));
    };
    let channel = value.get("channel");
    let name = match (action, channel) {
        ("ping", _) => return Some(message("pong", &[])),
        ("subscribe" | "unsubscribe", Some(Value::String(name))) => name.clone(),
        ("subscribe" | "unsubscribe", _) => {
            return Some(error(
                "BAD_REQUEST",
                format!("{action} needs a \"channel\": \"deployments/<ID>-<env>\""),
                None,
            ))
        }
        (other, _) => {
            return Some(error(
                "UNKNOWN_ACTION",
                format!("unknown action `{other}`: use subscribe, unsubscribe or ping"),
                None,
            ))
        }
    };
    if action == "unsubscribe" {
        return Some(match subscriptions.remove(&name) {
            Some((sub, task)) => {
                sub.active.store(false, Ordering::Release);
                task.abort();
                message("unsubscribed", &[("channel", Value::from(name))])
            }
            None => error(
                "NOT_FOUND",
                format!("not subscribed to `{name}`"),
                Some(&name),
            ),
        });
    }
    let since = match value.get("since") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n),
            None => {
                return Some(error(
                    "BAD_REQUEST",
                    "\"since\" must be a sequence number (0 or more)",
                    Some(&name),
                ))
            }
        },
    };
    let run_id = value.get("runId").and_then(Value::as_str);
    if !name.starts_with("deployments/") {
        return Some(error(
            "BAD_REQUEST",
            format!("`{name}` is not a channel; channels are \"deployments/<ID>-<env>\""),
            Some(&name),
        ));
    }
    let named = &name["deployments/".len()..];
    let key = match hub.resolve(&name, |deployment| claims.allows(deployment)) {
        Ok(key) => key,
        Err(Unresolved::Forbidden) => {
            return Some(error(
                "FORBIDDEN",
                format!("this token may not see `{named}`"),
                Some(&name),
            ))
        }
        Err(Unresolved::NotFound) => {
            return Some(error(
                "NOT_FOUND",
                format!("no deployment and environment `{named}` here"),
                Some(&name),
            ))
        }
    };
    // Subscribing again restarts the subscription (say, with another `since`).
    if let Some((sub, task)) = subscriptions.remove(&name) {
        sub.active.store(false, Ordering::Release);
        task.abort();
    }
    let (start, rx) = hub.subscribe(&key, since, run_id);
    let (generation, sequence, first) = match start {
        Start::Snapshot {
            generation,
            sequence,
            snapshot,
        } => {
            let text = snapshot_text("subscribed", &name, None, sequence, snapshot.as_deref());
            (
                generation,
                sequence,
                vec![Message::Text(Utf8Bytes::from(text))],
            )
        }
        Start::Replay {
            generation,
            since,
            events,
        } => {
            let subscribed = message(
                "subscribed",
                &[
                    ("channel", Value::from(name.as_str())),
                    ("replay", Value::from(true)),
                    ("sequence", Value::from(since)),
                ],
            );
            let last = since + events.len() as u64;
            let mut first = vec![subscribed];
            first.extend(events.into_iter().map(Message::Text));
            (generation, last, first)
        }
    };
    let sub = Arc::new(Subscription {
        key,
        channel: name.clone(),
        active: AtomicBool::new(true),
        resync_queued: AtomicBool::new(false),
        lagged_at: std::sync::Mutex::new(Instant::now()),
        generation: AtomicU64::new(generation),
        sequence: AtomicU64::new(sequence),
    });
    let task = tokio::spawn(forward(
        Arc::clone(&sub),
        first,
        rx,
        out.clone(),
        closing.clone(),
    ));
    subscriptions.insert(name, (sub, task));
    None
}

/// Sends a subscription's start, then its live frames in batches, until the connection or
/// the channel ends (or, once the server closes, until its ring is drained).
async fn forward(
    sub: Arc<Subscription>,
    first: Vec<Message>,
    mut rx: broadcast::Receiver<Frame>,
    out: mpsc::Sender<Out>,
    mut closing: Closing,
) {
    for message in first {
        if out.send(Out::Message(message)).await.is_err() {
            return;
        }
    }
    let mut draining = closing.borrow().is_some();
    // Since when the connection's queue has been full, if it is.
    let mut stuck_since = None;
    loop {
        let mut frames = Vec::new();
        let mut lagged = false;
        let mut ended = false;
        let mut caught_up = false;
        if !draining {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(frame) => frames.push(frame),
                    Err(broadcast::error::RecvError::Lagged(_)) => lagged = true,
                    Err(broadcast::error::RecvError::Closed) => ended = true,
                },
                _ = closing.changed() => draining = true,
            }
        }
        // Whatever else is ready, up to a batch; a lag ends the batch (the snapshot comes next).
        while !lagged && !ended && frames.len() < BATCH {
            match rx.try_recv() {
                Ok(frame) => frames.push(frame),
                Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                Err(broadcast::error::TryRecvError::Closed) => ended = true,
                Err(broadcast::error::TryRecvError::Empty) => {
                    caught_up = true;
                    break;
                }
            }
        }
        if !frames.is_empty()
            && hand_over(
                &out,
                Out::Frames(Arc::clone(&sub), frames),
                &mut stuck_since,
            )
            .await
            .is_err()
        {
            return;
        }
        if lagged && !sub.resync_queued.swap(true, Ordering::AcqRel) {
            // Behind since the connection stopped taking frames, not since the lag was seen
            // (which is only once it takes them again).
            *sub.lagged_at.lock().unwrap_or_else(|e| e.into_inner()) =
                stuck_since.unwrap_or_else(Instant::now);
            if hand_over(&out, Out::Resync(Arc::clone(&sub)), &mut stuck_since)
                .await
                .is_err()
            {
                return;
            }
        }
        if ended || (draining && caught_up) {
            return;
        }
    }
}

/// Queues `item`, noting since when the queue has been full (`stuck_since`, cleared once an
/// item goes in at once). `Err` once the connection is gone.
async fn hand_over(
    out: &mpsc::Sender<Out>,
    item: Out,
    stuck_since: &mut Option<Instant>,
) -> Result<(), ()> {
    match out.try_send(item) {
        Ok(()) => {
            *stuck_since = None;
            Ok(())
        }
        Err(mpsc::error::TrySendError::Full(item)) => {
            stuck_since.get_or_insert_with(Instant::now);
            out.send(item).await.map_err(|_| ())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
    }
}

/// Lag snapshots being copied into connections' buffers at once, server-wide.
static SNAPSHOT_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Why the writer stops early.
enum Stop {
    /// The socket failed.
    Failed,
    /// A subscription caught up only after the lag limit.
    Behind,
}

impl From<tokio_tungstenite::tungstenite::Error> for Stop {
    fn from(_: tokio_tungstenite::tungstenite::Error) -> Self {
        Stop::Failed
    }
}

/// A numbered ping: `probe:` and the number, so that the writer's idle pings (empty) and a
/// client's own are told apart.
fn probe(n: u64) -> Message {
    Message::Ping(format!("probe:{n}").into_bytes().into())
}

fn probe_number(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload.strip_prefix(b"probe:")?)
        .ok()?
        .parse()
        .ok()
}

/// The writer's side of a connection.
struct Writer {
    sink: Sink,
    hub: Hub,
    /// The highest numbered ping the client answered (see [`Writer::catch_up`]).
    echoed: watch::Receiver<u64>,
    /// Numbered pings sent.
    probes: u64,
    lag_limit: Duration,
}

impl Writer {
    /// Waits until the client has read everything it was sent: a numbered ping after it, and
    /// its pong back (a client reads in order, and its WebSocket answers a ping as it reads
    /// it). A client that stopped reading never answers. (Bounded by the writer's
    /// [`STALLED`].)
    async fn catch_up(&mut self) -> Result<(), Stop> {
        self.probes += 1;
        let n = self.probes;
        self.sink.feed(probe(n)).await?;
        self.sink.flush().await?;
        match self.echoed.wait_for(|&seen| seen >= n).await {
            Ok(_) => Ok(()),
            // The connection's reader is gone: the client left.
            Err(_) => Err(Stop::Failed),
        }
    }

    /// Writes one queued item; how many frames it wrote.
    async fn emit(&mut self, item: Out) -> Result<usize, Stop> {
        match item {
            Out::Message(message) => {
                Ok(upgrade::feed(&mut self.sink, message).await.map(|()| 1)?)
            }
            Out::Frames(sub, frames) => {
                if !sub.active.load(Ordering::Acquire) {
                    return Ok(0);
                }
                let mut written = 0;
                for frame in frames {
                    let (generation, sequence) = sub.sent();
                    let stale = frame.generation < generation
                        || (frame.generation == generation && frame.sequence <= sequence);
                    if stale {
                        continue;
                    }
                    let message = match frame.text {
                        Some(event) => Message::Text(event),
                        None => {
                            let text =
                                snapshot_text("snapshot", &sub.channel, Some("new_run"), 0, None);
                            Message::Text(Utf8Bytes::from(text))
                        }
                    };
                    sub.set_sent(frame.generation, frame.sequence);
                    self.sink.feed(message).await?;
                    written += 1;
                }
                Ok(written)
            }
            Out::Resync(sub) if !sub.active.load(Ordering::Acquire) => Ok(0),
            Out::Resync(sub) => {
                // A snapshot only for a client that reads what it is sent: one that stopped
                // reading must not hold a copy of the whole state.
                self.catch_up().await?;
                let sink = &mut self.sink;
                let lagged_at = *sub.lagged_at.lock().unwrap_or_else(|e| e.into_inner());
                if lagged_at.elapsed() > self.lag_limit {
                    return Err(Stop::Behind);
                }
                // Each connection copies what it sends into a buffer of its own: a few at a
                // time, so clients that stop reading mid-snapshot cannot each hold a copy.
                let Ok(Ok(_turn)) =
                    tokio::time::timeout(self.lag_limit, SNAPSHOT_TURNS.acquire()).await
                else {
                    return Err(Stop::Behind);
                };
                // Cleared before the snapshot is taken: a lag after this point queues another.
                sub.resync_queued.store(false, Ordering::Release);
                let (generation, sequence, text) =
                    self.hub.snapshot_message(&sub.key, &sub.channel, "lagged");
                sub.set_sent(generation, sequence);
                // Handed to the kernel within the lag limit, or the client is not reading (and
                // gives its turn, and the snapshot, up).
                let handed = async {
                    upgrade::feed(sink, Message::Text(text)).await?;
                    sink.flush().await
                };
                match tokio::time::timeout(self.lag_limit, handed).await {
                    Ok(handed) => handed?,
                    Err(_) => return Err(Stop::Failed),
                }
                Ok(1)
            }
        }
    }
}

/// Sends the connection's queue to the socket: what is ready (up to a batch), then one flush.
async fn write(
    sink: Sink,
    mut queue: mpsc::Receiver<Out>,
    hub: Hub,
    echoed: watch::Receiver<u64>,
    lag_limit: Duration,
) {
    let mut writer = Writer {
        sink,
        hub,
        echoed,
        probes: 0,
        lag_limit,
    };
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let first = tokio::select! {
            item = queue.recv() => item,
            _ = ping.tick() => Some(Out::Message(Message::Ping(Default::default()))),
        };
        let Some(first) = first else { break };
        let mut closing = false;
        let sent = tokio::time::timeout(STALLED, async {
            let mut next = Some(first);
            let mut written = 0;
            while let Some(item) = next.take() {
                closing |= matches!(item, Out::Message(Message::Close(_)));
                written += writer.emit(item).await?;
                if closing || written >= BATCH {
                    break;
                }
                next = queue.try_recv().ok();
            }
            Ok::<(), Stop>(writer.sink.flush().await?)
        })
        .await;
        match sent {
            Ok(Ok(())) if !closing => continue,
            Ok(Err(Stop::Behind)) => {
                // Everything before it was taken: the client can read why.
                let reason = format!(
                    "fell behind for over {}s; reconnect and subscribe with since",
                    lag_limit.as_secs_f64()
                );
                let frame = CloseFrame {
                    code: POLICY.into(),
                    reason: Utf8Bytes::from(reason),
                };
                let _ =
                    tokio::time::timeout(STALLED, writer.sink.send(Message::Close(Some(frame))))
                        .await;
            }
            _ => {}
        }
        break;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.sink.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the writer's numbered pings count as the client having read up to them: the idle
    /// pings (empty) and whatever a client pings with itself do not.
    #[test]
    fn only_numbered_pings_answer_a_catch_up() {
        for n in [1, 42, u64::MAX] {
            let Message::Ping(payload) = probe(n) else {
                panic!("a probe is a ping");
            };
            assert_eq!(probe_number(&payload), Some(n));
        }
        for other in [
            &b""[..],
            b"42",
            b"probe:",
            b"probe:-1",
            b"probe:1x",
            b"\xff\xfe",
        ] {
            assert_eq!(probe_number(other), None, "{other:?}");
        }
    }
}
