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
//! (`reason`: `lagged` when the client fell too far behind, `new_run` when a new run begins,
//! `final` just before the server closes the connection) resets the state the same way; `unsubscribed`; `pong`; `error` (`error.code`:
//! `BAD_REQUEST`, `UNKNOWN_ACTION`, `NOT_FOUND`, `FORBIDDEN`) — the connection stays up.
//!
//! Each subscription is a task reading its channel's ring into the connection's bounded
//! queue; one writer task sends that queue to the socket, batching frames, and pings every
//! [`PING_EVERY`]. A socket that takes nothing for [`STALLED`] is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::auth::Claims;
use super::hub::{Frame, Hub, Start};
use super::store::ChannelKey;

/// Messages waiting for the socket, per connection.
pub const QUEUE: usize = 1024;
/// How often the server pings an idle client.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// A socket that accepts nothing for this long is given up.
pub const STALLED: Duration = Duration::from_secs(30);
/// Frames written before one flush.
const BATCH: usize = 256;

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

/// `subscribed` (from a snapshot) or `snapshot`: the state as of `sequence` (`null`: no run yet).
fn with_snapshot(
    kind: &str,
    channel: &str,
    reason: Option<&str>,
    sequence: u64,
    snapshot: Option<String>,
) -> Message {
    let reason = match reason {
        Some(reason) => format!(r#","reason":"{reason}""#),
        None => r#","replay":false"#.to_owned(),
    };
    Message::Text(Utf8Bytes::from(format!(
        r#"{{"type":"{kind}","channel":{}{reason},"sequence":{sequence},"snapshot":{}}}"#,
        Value::from(channel),
        snapshot.as_deref().unwrap_or("null")
    )))
}

/// Runs a connection until the client leaves or the server closes.
pub async fn connection(socket: WebSocket, hub: Hub, claims: Claims, mut closing: Closing) {
    let (sink, mut stream) = socket.split();
    let (out, queue) = mpsc::channel::<Message>(QUEUE);
    let writer = tokio::spawn(write(sink, queue));
    let mut subscriptions: HashMap<String, JoinHandle<()>> = HashMap::new();
    let close = loop {
        tokio::select! {
            message = stream.next() => {
                let Some(Ok(message)) = message else { break None };
                let reply = match message {
                    Message::Text(body) => handle(&body, &hub, &claims, &out, &closing, &mut subscriptions),
                    Message::Binary(_) => Some(error("BAD_REQUEST", "send JSON text messages", None)),
                    Message::Close(_) => break None,
                    // Pongs are answered by the protocol layer.
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply {
                    if out.send(reply).await.is_err() {
                        break None;
                    }
                }
            }
            changed = closing.changed() => {
                let reason = closing.borrow().clone();
                if changed.is_err() || reason.is_some() {
                    break reason;
                }
            }
        }
    };
    match close {
        Some((code, reason)) => {
            // Each subscription forwards what its ring still holds, then ends.
            for (_, task) in subscriptions.drain() {
                let _ = task.await;
            }
            let _ = out
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from(reason),
                })))
                .await;
        }
        None => {
            for (_, task) in subscriptions.drain() {
                task.abort();
            }
        }
    }
    drop(out);
    let _ = writer.await;
}

/// Handles one client message; returns the direct reply, if any.
fn handle(
    body: &str,
    hub: &Hub,
    claims: &Claims,
    out: &mpsc::Sender<Message>,
    closing: &Closing,
    subscriptions: &mut HashMap<String, JoinHandle<()>>,
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
            Some(task) => {
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
    let Some(key) = hub.resolve(&name) else {
        return Some(error(
            "NOT_FOUND",
            format!(
                "no deployment and environment `{}` here",
                &name["deployments/".len()..]
            ),
            Some(&name),
        ));
    };
    if !claims.allows(&key.deployment) {
        return Some(error(
            "FORBIDDEN",
            format!("this token may not see deployment `{}`", key.deployment),
            Some(&name),
        ));
    }
    // Subscribing again restarts the subscription (say, with another `since`).
    if let Some(task) = subscriptions.remove(&name) {
        task.abort();
    }
    let (start, rx) = hub.subscribe(&key, since, run_id);
    let task = tokio::spawn(forward(
        hub.clone(),
        key,
        Arc::from(name.as_str()),
        start,
        rx,
        out.clone(),
        closing.clone(),
    ));
    subscriptions.insert(name, task);
    None
}

/// Sends one subscription's start, then its live frames, until the connection or the
/// channel ends (or, once the server closes, until its ring is drained).
async fn forward(
    hub: Hub,
    key: ChannelKey,
    channel: Arc<str>,
    start: Start,
    mut rx: broadcast::Receiver<Frame>,
    out: mpsc::Sender<Message>,
    mut closing: Closing,
) {
    let (mut generation, mut last) = match start {
        Start::Snapshot {
            generation,
            sequence,
            snapshot,
        } => {
            let message = with_snapshot("subscribed", &channel, None, sequence, snapshot);
            if out.send(message).await.is_err() {
                return;
            }
            (generation, sequence)
        }
        Start::Replay {
            generation,
            since,
            events,
        } => {
            let subscribed = message(
                "subscribed",
                &[
                    ("channel", Value::from(&*channel)),
                    ("replay", Value::from(true)),
                    ("sequence", Value::from(since)),
                ],
            );
            if out.send(subscribed).await.is_err() {
                return;
            }
            let last = since + events.len() as u64;
            for event in events {
                if out.send(Message::Text(event)).await.is_err() {
                    return;
                }
            }
            (generation, last)
        }
    };
    let mut draining = closing.borrow().is_some();
    loop {
        let received = if draining {
            match rx.try_recv() {
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Err(broadcast::error::RecvError::Lagged(n))
                }
                Err(_) => {
                    // The last word: the final state, for clients that show state rather
                    // than fold events (the dashboard), then the close.
                    let (_, sequence, snapshot) = hub.resync(&key);
                    let message =
                        with_snapshot("snapshot", &channel, Some("final"), sequence, snapshot);
                    let _ = out.send(message).await;
                    return;
                }
                Ok(frame) => Ok(frame),
            }
        } else {
            tokio::select! {
                received = rx.recv() => received,
                _ = closing.changed() => {
                    draining = true;
                    continue;
                }
            }
        };
        let message = match received {
            Ok(frame) => {
                if frame.generation < generation
                    || (frame.generation == generation && frame.sequence <= last)
                {
                    continue;
                }
                match frame.text {
                    Some(event) => {
                        last = frame.sequence;
                        Message::Text(event)
                    }
                    None => {
                        generation = frame.generation;
                        last = 0;
                        with_snapshot("snapshot", &channel, Some("new_run"), 0, None)
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let (g, sequence, snapshot) = hub.resync(&key);
                generation = g;
                last = sequence;
                with_snapshot("snapshot", &channel, Some("lagged"), sequence, snapshot)
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if out.send(message).await.is_err() {
            return;
        }
    }
}

/// Sends the connection's queue to the socket: as many frames as are ready, then one flush.
async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let first = tokio::select! {
            message = queue.recv() => message,
            _ = ping.tick() => Some(Message::Ping(Default::default())),
        };
        let Some(first) = first else { break };
        let closing = matches!(first, Message::Close(_));
        let sent = tokio::time::timeout(STALLED, async {
            sink.feed(first).await?;
            if !closing {
                for _ in 1..BATCH {
                    match queue.try_recv() {
                        Ok(message) => sink.feed(message).await?,
                        Err(_) => break,
                    }
                }
            }
            sink.flush().await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) || closing {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}
