//! `cloud watch <ID> -e ENV --url ws://HOST:PORT [--token T]`: the simple, verbose,
//! interactive or JSON view of a deployment running elsewhere, fed by its server.
//!
//! The view is the one sink on a bus of its own here (`assemble::bus`, with nothing to
//! record): what arrives over the WebSocket is folded with the one reducer and published to
//! it, as the orchestrator does on a deploy. It asks
//! for the run from its first event (`since: 0`); a server that no longer holds those (or a
//! view that fell behind) sends a snapshot, which seeds the model. After a dropped connection
//! it reconnects and goes on from the last event it has. The exit code is the run's: 0
//! deployed, 1 failed; 130 when you stop watching.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

use super::assemble;
use super::shared::{self, Outcome};
use crate::bus::Publisher;
use crate::cancel::Cancel;
use crate::cli;
use crate::error::{Error, Kind};
use crate::event::{DeploymentState, Event, EventData};
use crate::progress::Model;
use crate::server::auth::{self, Auth};
use crate::settings::{Settings, Show};

/// How long to keep trying to get a lost server back.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// `ws://host:port` from what the user wrote (`http://` works too, a trailing `/ws` or `/` is fine).
fn socket_url(url: &str, token: &str) -> Result<String, Error> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix("/ws").unwrap_or(url);
    let rest = if let Some(rest) = url.strip_prefix("ws://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("wss://") || url.starts_with("https://") {
        return Err(Error::input(format!("--url {url}: TLS is not supported"))
            .hint("reach the server over ws:// (e.g. through an SSH tunnel)"));
    } else {
        return Err(
            Error::input(format!("--url `{url}` is not a server address"))
                .hint("e.g. --url ws://127.0.0.1:7070"),
        );
    };
    if rest.is_empty() || rest.contains(['/', '?', '#']) {
        return Err(Error::input(format!(
            "--url `{url}` must be just the server, e.g. ws://127.0.0.1:7070"
        )));
    }
    Ok(format!("ws://{rest}/ws?token={token}"))
}

/// A message from the server that is not an event.
#[derive(Deserialize)]
struct ServerMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    snapshot: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

enum Ended {
    /// The run ended (its last event arrived).
    Finished,
    /// The user stopped watching.
    Stopped,
}

pub fn run(settings: &Settings, args: cli::Watch) -> Outcome {
    let token = match args.token.filter(|t| !t.trim().is_empty()) {
        Some(token) => token,
        None => match Auth::from_env()? {
            Some(auth) => auth.mint(
                &shared::me(),
                Some(vec![args.id.clone()]),
                Duration::from_secs(3600),
            ),
            None => {
                return Err(Error::input("no token for the server").hint(format!(
                    "pass --token (the one `cloud deploy --serve` printed), \
                     set CLOUD_TOKEN, or set {} to the server's secret",
                    auth::SECRET_ENV
                )))
            }
        },
    };
    let url = socket_url(&args.url, &token)?;
    let channel = format!("deployments/{}-{}", args.id, args.environment);
    let cancel = Cancel::new();
    shared::stop_on_signals(cancel.clone());
    let show = Show::new(settings, args.output, args.interactive, args.exit_on_done);
    let runtime = assemble::runtime(1)?;
    let scratch = std::env::temp_dir().join(format!("cloud-watch-{}", std::process::id()));
    // Only a view: the run is recorded where it runs.
    let bus = assemble::bus(
        &scratch,
        None,
        None,
        assemble::view(settings, show, &cancel),
    )?;
    let publisher = bus.publisher();
    let (outcome, model, shutdown) = runtime.block_on(async {
        let mut model = None;
        let outcome = tokio::select! {
            outcome = follow(&url, &channel, &publisher, &mut model) => outcome,
            _ = cancel.cancelled() => Ok(Ended::Stopped),
        };
        if let Some(model) = &model {
            publisher.settle(model);
        }
        (outcome, model, bus.shutdown(Duration::from_secs(2)).await)
    });
    for (name, handle) in shutdown.views {
        if let Some(problem) = handle.join(&name).problem {
            eprintln!("warning: the view stopped early: {problem}");
        }
    }
    runtime.shutdown_timeout(Duration::from_millis(200));
    let _ = std::fs::remove_dir_all(&scratch);
    match outcome? {
        // The view has shown how it ended.
        Ended::Stopped => Err(Error::shown(Kind::Interrupted)),
        Ended::Finished => match model.map(|m| m.status) {
            Some(DeploymentState::Deployed) => Ok(()),
            _ => Err(Error::shown(Kind::Failed)),
        },
    }
}

/// Follows `channel` until its run ends, reconnecting after drops.
async fn follow(
    url: &str,
    channel: &str,
    publisher: &Publisher,
    model: &mut Option<Model>,
) -> Result<Ended, Error> {
    let mut lost_since: Option<Instant> = None;
    let mut ever_connected = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        let why = match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status();
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .into_owned();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or(body);
                return Err(Error::input(format!(
                    "the server refused the connection ({status}): {message}"
                )));
            }
            Err(e) => e.to_string(),
            Ok((socket, _)) => {
                ever_connected = true;
                lost_since = None;
                backoff = Duration::from_millis(100);
                match session(socket, channel, publisher, model).await? {
                    Some(ended) => return Ok(ended),
                    None => "the connection was closed".to_owned(),
                }
            }
        };
        let since = *lost_since.get_or_insert_with(Instant::now);
        if !ever_connected || since.elapsed() > RECONNECT_FOR {
            return Err(Error::failed(format!(
                "cannot reach the server at {}: {why}",
                url.split('?').next().unwrap_or(url)
            )));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connection: subscribe from where the model is, fold and publish what arrives. `None`
/// when the connection dropped before the run ended.
async fn session(
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    channel: &str,
    publisher: &Publisher,
    model: &mut Option<Model>,
) -> Result<Option<Ended>, Error> {
    let (mut sink, mut stream) = socket.split();
    let mut subscribe = json!({"action": "subscribe", "channel": channel, "since": 0});
    if let Some(m) = model.as_ref() {
        subscribe["since"] = json!(m.sequence);
        subscribe["runId"] = json!(m.run_id);
    }
    if sink
        .send(Message::text(subscribe.to_string()))
        .await
        .is_err()
    {
        return Ok(None);
    }
    while let Some(message) = stream.next().await {
        let Ok(message) = message else {
            return Ok(None);
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Ok(None),
            _ => continue,
        };
        let Ok(control) = serde_json::from_str::<ServerMessage>(&text) else {
            continue;
        };
        match control.kind.as_str() {
            "subscribed" | "snapshot" => {
                if control.reason.as_deref() == Some("new_run") && model.is_some() {
                    // The run watched was replaced by a new one (it never ended).
                    eprintln!("cloud: a new run of {channel} started; watch again to follow it");
                    return Ok(Some(Ended::Finished));
                }
                let Some(raw) = control.snapshot.filter(|s| s.get() != "null") else {
                    continue;
                };
                let seeded = Model::from_snapshot(raw.get()).map_err(|e| {
                    Error::failed(format!(
                        "the server sent a snapshot this version cannot read: {e}"
                    ))
                })?;
                publisher.resync(&seeded);
                let finished = seeded.is_finished();
                *model = Some(seeded);
                if finished {
                    return Ok(Some(Ended::Finished));
                }
            }
            "error" => {
                let (code, message) = control
                    .error
                    .map_or((String::new(), String::new()), |e| (e.code, e.message));
                return Err(Error::input(format!("the server says {code}: {message}")));
            }
            "pong" | "unsubscribed" => {}
            _ => {
                let Ok(event) = serde_json::from_str::<Event>(&text) else {
                    continue;
                };
                if model.as_ref().is_some_and(|m| event.sequence <= m.sequence) {
                    continue;
                }
                let m = crate::progress::fold(model, &event);
                let done = matches!(event.data, EventData::DeploymentComplete(_));
                publisher.send(Arc::new(event), m);
                if done {
                    return Ok(Some(Ended::Finished));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let ok = |u: &str| socket_url(u, "T").unwrap();
        assert_eq!(ok("ws://127.0.0.1:7070"), "ws://127.0.0.1:7070/ws?token=T");
        assert_eq!(ok("http://h:1/"), "ws://h:1/ws?token=T");
        assert_eq!(ok("ws://h:1/ws"), "ws://h:1/ws?token=T");
        assert!(socket_url("wss://h:1", "T").is_err());
        assert!(socket_url("h:1", "T").is_err());
        assert!(socket_url("ws://h:1/x/y", "T").is_err());
    }
}
