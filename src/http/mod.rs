//! The HTTP listener: `/health`, `/metrics` (Prometheus text), the calls in
//! progress (`calls.rs`) and the agents' states (`agents.rs`: read, and
//! changed by supervisors or the agents' desk). Requests and replies are
//! typed structs; every error is a JSON `{"error": …}` with its status.

mod agents;
mod calls;
pub mod live;

use crate::acd::driver::Switchboard;
use crate::metrics::Metrics;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use live::LiveCalls;
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    overload: Arc<crate::server::overload::Overload>,
    live: Arc<LiveCalls>,
    switchboard: Switchboard,
    store: Arc<crate::tickets::SqliteStore>,
}

/// Build the router.
pub fn router(
    metrics: Metrics,
    overload: Arc<crate::server::overload::Overload>,
    live: Arc<LiveCalls>,
    switchboard: Switchboard,
    store: Arc<crate::tickets::SqliteStore>,
) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/calls", get(calls::list))
        .route("/calls/{id}", get(calls::one))
        .route("/agents", get(agents::list))
        .route("/agents/{id}/state", post(agents::set_state))
        .fallback(not_found)
        .with_state(AppState {
            metrics,
            overload,
            live,
            switchboard,
            store,
        })
}

/// The body of every error reply.
#[derive(Debug, Serialize)]
struct ErrorReply {
    error: String,
}

/// An error reply: `status` with `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorReply {
        error: message.into(),
    };
    (status, Json(body)).into_response()
}

#[derive(Debug, Serialize)]
struct HealthReply {
    /// `ok`; `draining` while shutting down; `store_failing` while no
    /// ticket can be written (new calls get 503).
    status: &'static str,
    /// The ticket store: `ok` or `failing`.
    store: &'static str,
    calls_active: i64,
}

async fn health(State(st): State<AppState>) -> Response {
    let draining = st.overload.is_draining();
    let failing = st.store.failing();
    let (code, status) = if draining {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if failing {
        (StatusCode::SERVICE_UNAVAILABLE, "store_failing")
    } else {
        (StatusCode::OK, "ok")
    };
    let body = HealthReply {
        status,
        store: if failing { "failing" } else { "ok" },
        calls_active: st.metrics.calls_active.get(),
    };
    (code, Json(body)).into_response()
}

async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}
