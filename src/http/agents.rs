//! `GET /api/v1/agents` (every agent's state, from the ACD's one state
//! machine) and `POST /api/v1/agents/{id}/state` (`{"state": "available" |
//! "paused" | "logged_out", "reason": "…"}`): the same change as the
//! agent's feature codes — pause and log out during a call take effect
//! after wrap-up; available during wrap-up ends it; logging in needs a
//! registered phone. An agent changes its own state only.

use super::auth::Principal;
use super::{bad_field, error, forbidden, json_body, AppState, Reply};
use crate::acd::driver::{AgentStatus, AgentView, CommandError, Feature};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

/// The longest pause reason taken.
const MAX_REASON: usize = 64;

#[derive(Debug, Serialize)]
pub(super) struct AgentsReply {
    agents: Vec<AgentView>,
}

pub(super) async fn list(State(st): State<AppState>, _who: Principal) -> Json<AgentsReply> {
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
    who: Principal,
    Path(id): Path<String>,
    body: Result<Json<StateRequest>, JsonRejection>,
) -> Reply {
    if who.agent().is_some_and(|me| me != id) {
        return Err(forbidden("an agent changes its own state only"));
    }
    let req = json_body(body)?;
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.trim().is_empty() || r.chars().count() > MAX_REASON)
    {
        return Err(bad_field(
            "reason",
            format!("expected 1 to {MAX_REASON} characters"),
        ));
    }
    let feature = match req.state {
        WantedState::Available => Feature::Ready,
        WantedState::Paused => Feature::Pause,
        WantedState::LoggedOut => Feature::Logout,
    };
    match st.switchboard.command(&id, feature, req.reason, true).await {
        Ok(state) => Ok(Json(StateReply { id, state }).into_response()),
        Err(e @ CommandError::UnknownAgent) => {
            Err(error(StatusCode::NOT_FOUND, format!("{id}: {e}")))
        }
        Err(e @ CommandError::NoPhone) => Err(error(StatusCode::CONFLICT, format!("{id}: {e}"))),
        Err(e @ CommandError::Stopped) => {
            Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
        }
    }
}
