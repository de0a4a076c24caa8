//! The pages notifications link to under `dashboardUrl` (`<dashboardUrl>/deployments/<ID>/<env>`
//! and its `/logs` and `/retry`): people open them from Slack or an email, so they answer in
//! text or HTML, never JSON. They need a token like the rest (`?token=…`), and never run
//! anything: retry says the command to run. The details link goes to the dashboard's page.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::http::{authorize, AppState, Params};
use super::store::{is_plain_name, ChannelKey};
use crate::event::Operation;
use crate::store::filelog::{self, Parsed};

/// `/deployments/<ID>/<env>`, its `/logs` and `/retry`.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/deployments/{id}/{env}", get(details))
        .route("/deployments/{id}/{env}/logs", get(logs))
        .route("/deployments/{id}/{env}/retry", get(retry))
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A refusal: its status and what it says.
type Refused = (StatusCode, String);

/// The deployment and environment a link names, checked: the token, its scope, the names
/// (they become a folder), and that they exist here.
fn checked(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    (id, env): (&str, &str),
) -> Result<ChannelKey, Refused> {
    let claims = authorize(state, headers, params).map_err(|e| {
        (
            StatusCode::UNAUTHORIZED,
            format!(
                "{}\nOpen this link with ?token=… (the token the server printed, or one from `cloud token`).\n",
                e.message()
            ),
        )
    })?;
    if !claims.allows(id) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("this token may not see deployment `{id}`\n"),
        ));
    }
    let key = ChannelKey::new(id, env);
    if !is_plain_name(id) || !is_plain_name(env) || !state.hub.knows(&key) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no deployment `{id}` with an environment `{env}` here\n"),
        ));
    }
    Ok(key)
}

/// `/deployments/<ID>/<env>/logs[?stack=S]`: the newest run's file log as text (one stack's
/// lines with `stack`).
async fn logs(
    State(state): State<AppState>,
    Path((id, env)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let key = match checked(&state, &headers, &params, (&id, &env)) {
        Ok(key) => key,
        Err((status, why)) => return text(status, why),
    };
    let Some(store) = state.hub.store().cloned() else {
        return text(StatusCode::NOT_FOUND, "this server keeps no logs\n".into());
    };
    let read = tokio::task::spawn_blocking(move || store.file_log(&key)).await;
    match read {
        Ok(Ok(Some(log))) => {
            let body = match params.get("stack").filter(|s| !s.is_empty()) {
                Some(stack) => only_stack(&log, stack),
                None => log,
            };
            text(StatusCode::OK, body)
        }
        Ok(Ok(None)) => text(
            StatusCode::NOT_FOUND,
            format!("{id}-{env} has no file log here yet\n"),
        ),
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the file log of {id}-{env}: {e}\n"),
        ),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// A file log's header and the lines of one stack (with the lines that continue them).
fn only_stack(log: &str, stack: &str) -> String {
    let mut out = String::new();
    let mut showing = false;
    for line in log.lines() {
        showing = match filelog::parse(line) {
            Parsed::Note => true,
            Parsed::Event { stack: s, .. } => s == Some(stack),
            Parsed::More => showing,
        };
        if showing {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `/deployments/<ID>/<env>/retry`: the command that runs it again. A deploy skips what is
/// unchanged since its last deploy, so it picks up where the failed run stopped.
async fn retry(
    State(state): State<AppState>,
    Path((id, env)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let key = match checked(&state, &headers, &params, (&id, &env)) {
        Ok(key) => key,
        Err((status, why)) => return text(status, why),
    };
    let operation = state.hub.with_model(&key, |m| m.operation);
    let verb = match operation {
        Some(Operation::Destroy) => "destroy",
        Some(Operation::Plan) => "plan",
        _ => "deploy",
    };
    // The names are plain (checked above): nothing here needs escaping.
    let command = format!("cloud {verb} {id} -e {env}");
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Retry {id}-{env}</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:40px;max-width:46em}} code{{background:#eee;padding:2px 6px;border-radius:4px}}</style>
</head><body>
<h1>Retry {id}-{env}</h1>
<p>This page runs nothing. To run it again, where the deployment's files are (the folder with <code>cloud/deploy/{id}/</code>):</p>
<p><code id="command">{command}</code></p>
<p>A deploy skips the stacks unchanged since their last successful deploy, so it picks up where the failed run stopped
(<code>--force</code> deploys every stack).</p>
</body></html>
"#
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// `/deployments/<ID>/<env>` ("View details"): the dashboard's page for the run, with the
/// link's token passed on (the page asks for one without it).
async fn details(Path((id, env)): Path<(String, String)>, params: Params) -> Response {
    let query = |v: &str| url_escape(v);
    let mut to = format!("/?deployment={}&environment={}", query(&id), query(&env));
    if let Some(token) = params.get("token") {
        to.push_str(&format!("&token={}", query(token)));
    }
    Redirect::to(&to).into_response()
}

/// `text` fit for a URL's query.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
