//! `GET /api/v1/bans` (the sources banned and the accounts throttled by
//! the SIP limits, soonest to end first) and `DELETE /api/v1/bans/{key}`
//! (lift one: `key` is the address or the SIP user). Supervisors only.

use super::auth::Principal;
use super::{error, forbidden, ApiError, AppState};
use crate::sip::guard::BanView;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(super) struct BansReply {
    bans: Vec<BanView>,
}

pub(super) async fn list(
    State(st): State<AppState>,
    who: Principal,
) -> Result<Json<BansReply>, ApiError> {
    if !who.is_supervisor() {
        return Err(forbidden("bans are for supervisors"));
    }
    Ok(Json(BansReply {
        bans: st.guard.bans(),
    }))
}

pub(super) async fn lift(
    State(st): State<AppState>,
    who: Principal,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !who.is_supervisor() {
        return Err(forbidden("bans are for supervisors"));
    }
    if st.guard.lift(&key) {
        tracing::info!(by = %who.author(), "ban lift asked through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!(
                "no ban or throttle in force for {:?}",
                crate::text::Untrusted(&key).to_string()
            ),
        ))
    }
}
