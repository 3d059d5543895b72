//! The HTTP listener: `/health` and `/metrics` (Prometheus text). Later
//! issues add the REST API and the agent desk here.

use crate::live::LiveCalls;
use crate::metrics::Metrics;
use crate::switchboard::Switchboard;
use axum::extract::Path;
use axum::{extract::State, http::header, response::IntoResponse, routing::get, Json, Router};
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
        .map(|(id, s)| serde_json::json!({ "id": id, "state": s.as_str() }))
        .collect();
    Json(serde_json::json!({ "agents": agents }))
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
