//! The HTTP listener: `/health`, `/metrics` (Prometheus text), calls in
//! progress, and the agents' states (read, and changed by supervisors or the
//! agents' desk: `POST /agents/{id}/state`).

pub mod live;

use crate::acd::driver::{CommandError, Feature, Switchboard};
use crate::metrics::Metrics;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{extract::State, http::header, response::IntoResponse, routing::get, Json, Router};
use live::LiveCalls;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    draining: Arc<AtomicBool>,
    live: Arc<LiveCalls>,
    switchboard: Switchboard,
}

/// Build the router.
pub fn router(
    metrics: Metrics,
    draining: Arc<AtomicBool>,
    live: Arc<LiveCalls>,
    switchboard: Switchboard,
) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/calls", get(calls))
        .route("/agents", get(agents))
        .route("/agents/{id}/state", post(set_agent_state))
        .route("/calls/{id}", get(call))
        .fallback(not_found)
        .with_state(AppState {
            metrics,
            draining,
            live,
            switchboard,
        })
}

/// Every agent and its state (from the ACD's one state machine).
async fn agents(State(st): State<AppState>) -> impl IntoResponse {
    let agents: Vec<serde_json::Value> = st
        .switchboard
        .statuses()
        .await
        .into_iter()
        .map(|a| serde_json::json!({ "id": a.id, "state": a.status.as_str(), "reason": a.reason }))
        .collect();
    Json(serde_json::json!({ "agents": agents }))
}

/// `POST /agents/{id}/state` with `{"state": "available" | "paused" |
/// "logged_out", "reason": "..."}`: the same change as the agent's feature
/// codes (pause and log out during a call take effect after wrap-up;
/// available during wrap-up ends it). Answers the state afterwards.
async fn set_agent_state(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> axum::response::Response {
    let error = |code: StatusCode, msg: String| {
        (code, Json(serde_json::json!({ "error": msg }))).into_response()
    };
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected a JSON body: {e}"),
            )
        }
    };
    let feature = match body.get("state").and_then(|s| s.as_str()) {
        Some("available") => Feature::Ready,
        Some("paused") => Feature::Pause,
        Some("logged_out") => Feature::Logout,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected \"state\": \"available\", \"paused\" or \"logged_out\"".into(),
            )
        }
    };
    let reason = match body.get("reason") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(r)) if !r.is_empty() && r.len() <= 64 => Some(r.clone()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected \"reason\" to be a string of 1 to 64 characters".into(),
            )
        }
    };
    match st.switchboard.command(&id, feature, reason, true).await {
        Ok(s) => Json(serde_json::json!({ "id": id, "state": s.as_str() })).into_response(),
        Err(e @ CommandError::UnknownAgent) => error(StatusCode::NOT_FOUND, format!("{id}: {e}")),
        Err(e @ CommandError::NoPhone) => error(StatusCode::CONFLICT, format!("{id}: {e}")),
        Err(e @ CommandError::Stopped) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Calls in progress.
async fn calls(State(st): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({ "calls": st.live.all() }))
}

/// One call in progress: what the agent's phone links to (Call-Info).
async fn call(State(st): State<AppState>, Path(id): Path<String>) -> axum::response::Response {
    let Ok(id) = id.parse::<u64>() else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "a call id is a number" })),
        )
            .into_response();
    };
    match st.live.get(id) {
        Some(c) => Json(c).into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("no call {id} in progress") })),
        )
            .into_response(),
    }
}

async fn health(State(st): State<AppState>) -> impl IntoResponse {
    let draining = st.draining.load(Ordering::SeqCst);
    let status = if draining { "draining" } else { "ok" };
    let code = if draining {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        axum::http::StatusCode::OK
    };
    (
        code,
        Json(
            serde_json::json!({ "status": status, "calls_active": st.metrics.calls_active.get() }),
        ),
    )
}

async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}

async fn not_found() -> impl IntoResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "not found" })),
    )
}
