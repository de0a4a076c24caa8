//! The REST API, the WebSocket upgrade and the dashboard page, on axum.
//!
//! Bodies are the seed's: `{"success":true,"data":…}`, errors
//! `{"success":false,"error":{"code","message"}}` with the HTTP status that fits (400 bad
//! query, 401 no valid token, 403 outside the token's scope, 404 unknown deployment,
//! environment, stack or path).

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::auth::{Auth, Claims};
use super::hub::{snapshot_json, Hub};
use super::limits::{self, ConnInfo, Limits};
use super::store::ChannelKey;
use super::upgrade::{self, Upgrade};
use super::ws::{self, Closing};

/// The dashboard: one page, no build step, nothing loaded from elsewhere.
pub const DASHBOARD: &str = include_str!("../../assets/dashboard.html");

#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub auth: Auth,
    pub closing: Closing,
    /// Open WebSocket connections, so that shutdown can wait for them.
    pub connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub limits: Limits,
}

/// An error answer.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "error": { "code": self.code, "message": self.message },
        });
        json_response(self.status, body.to_string())
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn success(data: &Value) -> Response {
    success_raw(&data.to_string())
}

/// `data` already JSON.
fn success_raw(data: &str) -> Response {
    json_response(
        StatusCode::OK,
        format!(r#"{{"success":true,"data":{data}}}"#),
    )
}

pub type Params = Query<HashMap<String, String>>;

/// The token of a request: `Authorization: Bearer …`, else `?token=…` (browsers cannot set
/// headers on a WebSocket).
pub fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Claims, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
    let token = bearer.or(params.get("token").map(String::as_str));
    state
        .auth
        .verify(token)
        .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", why.to_string()))
}

/// The deployment and environment a path and query name, checked against the token.
fn channel(
    state: &AppState,
    claims: &Claims,
    id: &str,
    params: &Params,
) -> Result<ChannelKey, ApiError> {
    let Some(env) = params.get("environment").filter(|e| !e.is_empty()) else {
        return Err(ApiError::bad_request(
            "the query needs `environment`, e.g. ?environment=dev",
        ));
    };
    if !claims.allows(id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("this token may not see deployment `{id}`"),
        ));
    }
    let key = ChannelKey::new(id, env);
    if !state.hub.knows(&key) {
        return Err(ApiError::not_found(if state.hub.knows_deployment(id) {
            format!("deployment `{id}` has no environment `{env}` here")
        } else {
            format!("no deployment `{id}` here")
        }));
    }
    Ok(key)
}

/// The API, the WebSocket and the dashboard, with `pages` (routes that take the same state:
/// the pages notifications link to) beside them.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/api/v1/deployments", get(deployments))
        .route("/api/v1/deployments/{id}/status", get(status))
        .route(
            "/api/v1/deployments/{id}/stacks/{stack}/progress",
            get(stack_progress),
        )
        .route("/api/v1/deployments/{id}/events", get(events))
        .route("/ws", get(websocket))
        .merge(pages)
        .fallback(|| async { ApiError::not_found("no such path; see /api/v1/deployments") })
        .layer(axum::middleware::from_fn(limits::track))
        .with_state(state)
}

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        DASHBOARD,
    )
        .into_response()
}

async fn healthz() -> Response {
    success(&json!({"status": "ok"}))
}

async fn deployments(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let claims = authorize(&state, &headers, &params)?;
    let mut list: Vec<Value> = Vec::new();
    for key in state.hub.keys() {
        if !claims.allows(&key.deployment) {
            continue;
        }
        let last_run = state.hub.with_model(&key, |m| {
            let mut run = json!({
                "runId": m.run_id,
                "operation": m.operation,
                "status": m.status,
                "progressPercent": m.summary.progress_percent,
                "sequence": m.sequence,
            });
            if let Some(t) = m.start_time {
                run["startTime"] = json!(t);
            }
            if let Some(t) = m.end_time {
                run["endTime"] = json!(t);
            }
            run
        });
        let env = json!({"environment": key.environment, "lastRun": last_run});
        match list.last_mut() {
            Some(d) if d["deploymentId"] == key.deployment.as_str() => {
                if let Some(envs) = d["environments"].as_array_mut() {
                    envs.push(env);
                }
            }
            _ => list.push(json!({"deploymentId": key.deployment, "environments": [env]})),
        }
    }
    Ok(success(&json!({ "deployments": list })))
}

fn no_run(key: &ChannelKey) -> ApiError {
    ApiError::not_found(format!(
        "{} has no run in {} yet",
        key.deployment, key.environment
    ))
}

async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let claims = authorize(&state, &headers, &params)?;
    let key = channel(&state, &claims, &id, &params)?;
    // A finished run also says where its time went (the dashboard's timeline shows its path).
    let (data, timing) = state
        .hub
        .with_model_at(&key, |m, now| {
            let timing = (m.end_time).map(|end| crate::timing::json(m, end).to_string());
            (snapshot_json(m, now), timing)
        })
        .ok_or_else(|| no_run(&key))?;
    let data = match (timing, data.strip_prefix('{')) {
        (Some(timing), Some(rest)) if !rest.trim_start().starts_with('}') => {
            format!("{{\"timing\":{timing},{rest}")
        }
        _ => data,
    };
    // Each stack's drift health beside the run (`{}` when none was ever checked).
    let health = state
        .hub
        .store()
        .map(|store| store.health(&key))
        .unwrap_or_default();
    let health = serde_json::to_string(&health).unwrap_or_else(|_| "{}".into());
    let data = match data.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{\"health\":{health}}}"),
        Some(rest) => format!("{{\"health\":{health},{rest}"),
        None => data,
    };
    Ok(success_raw(&data))
}

async fn stack_progress(
    State(state): State<AppState>,
    Path((id, stack)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let claims = authorize(&state, &headers, &params)?;
    let key = channel(&state, &claims, &id, &params)?;
    let found = state
        .hub
        .with_model(&key, |m| {
            m.stack(&stack).map(|s| {
                // The seed's stack progress: the stack's fields, named by `stack`, in its deployment.
                let mut data = json!({
                    "deploymentId": m.deployment_id,
                    "environment": m.environment,
                    "stack": s.name,
                });
                if let Ok(Value::Object(fields)) = serde_json::to_value(s) {
                    for (k, v) in fields {
                        if k != "name" {
                            data[k] = v;
                        }
                    }
                }
                data
            })
        })
        .ok_or_else(|| no_run(&key))?;
    let data = found
        .ok_or_else(|| ApiError::not_found(format!("deployment `{id}` has no stack `{stack}`")))?;
    Ok(success(&data))
}

async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let claims = authorize(&state, &headers, &params)?;
    let key = channel(&state, &claims, &id, &params)?;
    let since = match params.get("since") {
        None => 0,
        Some(s) => s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("`since` must be a sequence number, found `{s}`"))
        })?,
    };
    let head = |run_id: &str| {
        format!(
            r#"{{"success":true,"data":{{"deploymentId":{},"environment":{},"runId":{},"events":["#,
            json!(key.deployment),
            json!(key.environment),
            json!(run_id)
        )
    };
    // Recent events come from memory (already serialized); older ones from the store.
    let body = if let Some((run_id, texts)) = state.hub.recent_events(&key, since) {
        let mut body = head(&run_id);
        for (i, text) in texts.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(text.as_str());
        }
        body
    } else {
        let store = state.hub.store().cloned().ok_or_else(|| no_run(&key))?;
        let key2 = key.clone();
        let stored = tokio::task::spawn_blocking(move || store.events(&key2, since))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
            })?
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    format!("cannot read the stored events: {e}"),
                )
            })?
            .ok_or_else(|| no_run(&key))?;
        let run_id = stored
            .iter()
            .find_map(|e| match &e.data {
                crate::event::EventData::DeploymentStarted(s) => Some(s.run_id.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let mut body = head(&run_id);
        for (i, event) in stored.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&event.to_json_line());
        }
        body
    };
    Ok(json_response(StatusCode::OK, body + "]}}"))
}

/// `/ws?token=…`: refused with 401 before the upgrade unless the token is valid.
async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(ConnInfo(conn)): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    params: Params,
    upgrade: Result<Upgrade, upgrade::Refused>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|upgrade::Refused(status, why)| {
        ApiError::new(
            status,
            "BAD_REQUEST",
            format!("not a WebSocket request: {why}"),
        )
    })?;
    let claims = authorize(&state, &headers, &params)?;
    let hub = state.hub.clone();
    let closing = state.closing.clone();
    let connections = state.connections.clone();
    let lag_limit = state.limits.lag_limit;
    // Clients send a few small messages; memory per connection stays small (the writer
    // flushes its own batches, and sends big messages in pieces). The write buffer is what a
    // client that stops reading keeps full: it grows to this plus a frame, 16 KiB at 8 KiB
    // (32 KiB at 16 KiB: 6.5 MB for 200 stalled clients).
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(Some(64 * 1024));
    Ok(upgrade.on_upgrade(config, move |socket| async move {
        use std::sync::atomic::Ordering;
        conn.upgraded();
        connections.fetch_add(1, Ordering::AcqRel);
        ws::connection(socket, hub, claims, closing, lag_limit).await;
        connections.fetch_sub(1, Ordering::AcqRel);
    }))
}
