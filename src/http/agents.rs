//! `GET /agents` (every agent's state, from the ACD's one state machine) and
//! `POST /agents/{id}/state` (`{"state": "available" | "paused" |
//! "logged_out", "reason": "…"}`): the same change as the agent's feature
//! codes — pause and log out during a call take effect after wrap-up;
//! available during wrap-up ends it; logging in needs a registered phone.

use super::{error, AppState};
use crate::acd::driver::{AgentStatus, AgentView, CommandError, Feature};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The longest pause reason taken.
const MAX_REASON: usize = 64;

#[derive(Debug, Serialize)]
pub(super) struct AgentsReply {
    agents: Vec<AgentView>,
}

pub(super) async fn list(State(st): State<AppState>) -> Json<AgentsReply> {
    Json(AgentsReply {
        agents: st.switchboard.statuses().await,
    })
}

/// The state asked for.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum WantedState {
    Available,
    Paused,
    LoggedOut,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateRequest {
    state: WantedState,
    /// Why the agent pauses (default "break").
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct StateReply {
    id: String,
    state: AgentStatus,
}

pub(super) async fn set_state(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<StateRequest>, JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(r)) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"state\": \"available\" | \"paused\" | \"logged_out\", \"reason\": \"…\"}}: {}", e.body_text()),
            )
        }
    };
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.chars().count() > MAX_REASON)
    {
        let msg = format!("expected \"reason\" to be 1 to {MAX_REASON} characters");
        return error(StatusCode::BAD_REQUEST, msg);
    }
    let feature = match req.state {
        WantedState::Available => Feature::Ready,
        WantedState::Paused => Feature::Pause,
        WantedState::LoggedOut => Feature::Logout,
    };
    match st.switchboard.command(&id, feature, req.reason, true).await {
        Ok(state) => Json(StateReply { id, state }).into_response(),
        Err(e @ CommandError::UnknownAgent) => error(StatusCode::NOT_FOUND, format!("{id}: {e}")),
        Err(e @ CommandError::NoPhone) => error(StatusCode::CONFLICT, format!("{id}: {e}")),
        Err(e @ CommandError::Stopped) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
