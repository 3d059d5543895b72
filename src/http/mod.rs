//! The HTTP listener: `/health` and `/metrics` (Prometheus text) for
//! anyone; the JSON API under `/api/v1` for agents, supervisors and
//! scripts (signed in, or with a bearer token); the agents' desk page at
//! `/desk`.
//!
//! - `auth/` — sign-in, sessions, tokens, roles, throttled failures.
//! - `session.rs`, `tickets.rs`, `agents.rs`, `queues.rs`, `calls.rs`,
//!   `events.rs` (server-sent events), `kb.rs` — the API's routes.
//! - `desk.rs` — the desk's files (`web/`, embedded at compile time).
//! - `openapi.json` — the API's description, served at
//!   `/api/v1/openapi.json` and checked against [`API_ROUTES`] by a test.
//!
//! Every error is a JSON `{"error": …}` (with `"field"` when one field of
//! the request is wrong) and its status: 400 malformed, 401 who are you,
//! 403 not yours, 404, 405, 413 too big, 422 a field is wrong, 429 slow
//! down.

mod agents;
pub mod auth;
mod bans;
mod calls;
mod desk;
mod events;
pub use events::spawn_queue_ticker;
mod kb;
pub mod live;
mod queues;
mod session;
mod tickets;

use crate::acd::driver::Switchboard;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::tickets::sqlite::ReaderPool;
use auth::Auth;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use live::LiveCalls;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

/// The largest request body taken (a logbook entry is at most 8 KiB).
pub const MAX_BODY: usize = 16 * 1024;

/// What the API shows of the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct DeskConfig {
    /// Wrap-up codes.
    pub dispositions: Vec<String>,
    /// Queues: name, number, support level, service-level target.
    pub queues: Vec<QueueInfo>,
    /// Level 1's time to resolve a ticket (minutes).
    pub level1_due_mins: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueInfo {
    pub name: String,
    pub number: Option<String>,
    pub level: u8,
    pub skills: Vec<String>,
    pub service_level_percent: u8,
    pub service_level_secs: u32,
}

impl DeskConfig {
    pub fn from_config(c: &crate::config::RuntimeConfig) -> DeskConfig {
        DeskConfig {
            dispositions: c.dispositions.clone(),
            queues: c
                .queues
                .iter()
                .map(|(name, q)| QueueInfo {
                    name: name.clone(),
                    number: q.number.clone(),
                    level: q.level,
                    skills: q.skills.keys().cloned().collect(),
                    service_level_percent: q.service_level_percent,
                    service_level_secs: q.service_level_secs,
                })
                .collect(),
            level1_due_mins: c.store.due.levels[0],
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    metrics: Metrics,
    overload: Arc<crate::server::overload::Overload>,
    live: Arc<LiveCalls>,
    switchboard: Switchboard,
    store: Arc<crate::tickets::SqliteStore>,
    readers: Arc<ReaderPool>,
    auth: Arc<Auth>,
    events: EventBus,
    desk: Arc<DeskConfig>,
    kb: Arc<crate::kb::Kb>,
    guard: Arc<crate::sip::guard::Guard>,
}

/// What the router is made of.
pub struct HttpParts {
    pub metrics: Metrics,
    pub overload: Arc<crate::server::overload::Overload>,
    pub live: Arc<LiveCalls>,
    pub switchboard: Switchboard,
    pub store: Arc<crate::tickets::SqliteStore>,
    pub readers: Arc<ReaderPool>,
    pub auth: Arc<Auth>,
    pub events: EventBus,
    pub desk: DeskConfig,
    pub kb: Arc<crate::kb::Kb>,
    pub guard: Arc<crate::sip::guard::Guard>,
}

/// Every route of the API: the one list the router is built from, and the
/// one the OpenAPI description is checked against.
pub fn api_routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    use axum::routing::{delete, patch, post};
    vec![
        (Method::POST, "/api/v1/session", post(session::sign_in)),
        (Method::GET, "/api/v1/session", get(session::whoami)),
        (Method::DELETE, "/api/v1/session", delete(session::sign_out)),
        (Method::GET, "/api/v1/tickets", get(tickets::list)),
        (Method::GET, "/api/v1/tickets/{number}", get(tickets::show)),
        (
            Method::PATCH,
            "/api/v1/tickets/{number}",
            patch(tickets::change),
        ),
        (
            Method::POST,
            "/api/v1/tickets/{number}/entries",
            post(tickets::append),
        ),
        (Method::GET, "/api/v1/agents", get(agents::list)),
        (
            Method::POST,
            "/api/v1/agents/{id}/state",
            post(agents::set_state),
        ),
        (Method::GET, "/api/v1/queues", get(queues::list)),
        (Method::GET, "/api/v1/calls", get(calls::list)),
        (Method::GET, "/api/v1/calls/{id}", get(calls::one)),
        (Method::GET, "/api/v1/events", get(events::stream)),
        (Method::GET, "/api/v1/kb", get(kb::search)),
        (Method::GET, "/api/v1/kb/{id}", get(kb::article)),
        (Method::GET, "/api/v1/bans", get(bans::list)),
        (Method::DELETE, "/api/v1/bans/{key}", delete(bans::lift)),
        (Method::GET, "/api/v1/openapi.json", get(openapi)),
    ]
}

/// The API's description (OpenAPI 3.1).
pub const OPENAPI: &str = include_str!("openapi.json");

/// Build the router.
pub fn router(p: HttpParts) -> Router {
    let mut r = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text));
    for (_, path, handler) in api_routes() {
        r = r.route(path, handler);
    }
    desk::routes(r)
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState {
            metrics: p.metrics,
            overload: p.overload,
            live: p.live,
            switchboard: p.switchboard,
            store: p.store,
            readers: p.readers,
            auth: p.auth,
            events: p.events,
            desk: Arc::new(p.desk),
            kb: p.kb,
            guard: p.guard,
        })
}

/// An error reply: its status, `{"error": …}`, and the field that is
/// wrong when one is.
#[derive(Debug, Serialize)]
pub(crate) struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// What a handler gives back.
pub(crate) type Reply = Result<Response, ApiError>;

/// `status` with `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        error: message.into(),
        field: None,
    }
}

/// 422: one field of the request is wrong.
pub(crate) fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        error: message.into(),
        field: Some(field.to_string()),
    }
}

/// 403: not this caller's.
pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
    error(StatusCode::FORBIDDEN, message)
}

/// A JSON body, or the error that says what is wrong with it: 400 for
/// what is not JSON, 413 for too big, 415 without the JSON content type,
/// 422 (naming the field when serde does) for the wrong shape.
pub(crate) fn json_body<T: DeserializeOwned>(
    body: Result<Json<T>, JsonRejection>,
) -> Result<T, ApiError> {
    match body {
        Ok(Json(v)) => Ok(v),
        Err(JsonRejection::JsonDataError(e)) => {
            let text = e.body_text();
            let field = text
                .split("missing field `")
                .nth(1)
                .or_else(|| text.split("unknown field `").nth(1))
                .and_then(|t| t.split('`').next())
                .or_else(|| {
                    // "…: field: invalid type …" (the path to the field).
                    text.split(": ").nth(1).filter(|t| !t.contains(' '))
                })
                .unwrap_or("")
                .to_string();
            Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                error: text,
                field: (!field.is_empty()).then_some(field),
            })
        }
        Err(e) => Err(error(e.status(), e.body_text())),
    }
}

/// Now, as the store keeps time.
pub(crate) fn now_rfc3339() -> String {
    crate::tickets::Millis::now().rfc3339()
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

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "not found")
}

async fn not_allowed() -> ApiError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "this method is not allowed here",
    )
}
