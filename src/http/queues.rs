//! `GET /api/v1/queues`: each queue's waiting callers, longest wait,
//! service level over its stats window and agents by state (the wallboard).

use super::auth::Principal;
use super::AppState;
use crate::acd::driver::QueueView;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(super) struct QueuesReply {
    queues: Vec<QueueView>,
}

pub(super) async fn list(State(st): State<AppState>, _who: Principal) -> Json<QueuesReply> {
    Json(QueuesReply {
        queues: st.switchboard.queues().await,
    })
}
