//! `GET /api/v1/calls` (the calls in progress and their phase) and
//! `GET /api/v1/calls/{id}` (one: the page an agent's phone links to in
//! `Call-Info`), from the live view each call's driver publishes. The
//! caller's address is personal data: an agent sees its own calls only.

use super::auth::Principal;
use super::{error, forbidden, AppState, Reply};
use crate::http::live::LiveCall;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(super) struct CallsReply {
    calls: Vec<LiveCall>,
}

fn mine(c: &LiveCall, who: &Principal) -> bool {
    match who.agent() {
        None => true,
        Some(me) => c.agent.as_deref() == Some(me),
    }
}

pub(super) async fn list(State(st): State<AppState>, who: Principal) -> Json<CallsReply> {
    Json(CallsReply {
        calls: st
            .live
            .all()
            .into_iter()
            .filter(|c| mine(c, &who))
            .collect(),
    })
}

pub(super) async fn one(
    State(st): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Reply {
    let Ok(id) = id.parse::<u64>() else {
        return Err(error(StatusCode::NOT_FOUND, "a call id is a number"));
    };
    match st.live.get(id) {
        Some(c) if mine(&c, &who) => Ok(Json(c).into_response()),
        Some(_) => Err(forbidden(format!("call {id} is not yours"))),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("no call {id} in progress"),
        )),
    }
}
