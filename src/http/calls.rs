//! `GET /calls` (every call in progress) and `GET /calls/{id}` (one: the
//! page an agent's phone links to in `Call-Info`), from the live view each
//! call's driver publishes.

use super::{error, AppState};
use crate::http::live::LiveCall;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(super) struct CallsReply {
    calls: Vec<LiveCall>,
}

pub(super) async fn list(State(st): State<AppState>) -> Json<CallsReply> {
    Json(CallsReply {
        calls: st.live.all(),
    })
}

pub(super) async fn one(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "a call id is a number");
    };
    match st.live.get(id) {
        Some(c) => Json(c).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no call {id} in progress")),
    }
}
