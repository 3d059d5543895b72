//! `GET /api/v1/events`: server-sent events for the signed-in user. An
//! agent hears about itself (offered — the screen pop —, answered, ended,
//! its state); a supervisor hears everything (every call and agent, the
//! queues' numbers once a second while they change, tickets changed from
//! the API). A listener that falls behind gets a `lagged` event and should
//! reload what it shows.

use super::auth::Principal;
use super::AppState;
use crate::acd::driver::Switchboard;
use crate::events::{Event, EventBus};
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::Stream;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Keeps the listeners' gauge right: one while the stream lives.
struct Listening(prometheus::IntGauge);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub(super) async fn stream(
    State(st): State<AppState>,
    who: Principal,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = st.events.subscribe();
    st.metrics.api_event_listeners.inc();
    let guard = Listening(st.metrics.api_event_listeners.clone());
    let hello = SseEvent::default()
        .event("hello")
        .json_data(&who)
        .unwrap_or_default();
    let events =
        futures_util::stream::unfold((rx, who, guard), |(mut rx, who, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) if for_whom(&e, &who) => {
                        let ev = SseEvent::default()
                            .event(e.name())
                            .json_data(&*e)
                            .unwrap_or_default();
                        return Some((Ok(ev), (rx, who, guard)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        let ev = SseEvent::default()
                            .event("lagged")
                            .data(format!("{{\"missed\":{n}}}"));
                        return Some((Ok(ev), (rx, who, guard)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(hello) }),
        events,
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Whether `who` hears about `e`.
fn for_whom(e: &Event, who: &Principal) -> bool {
    match who.agent() {
        None => true,
        Some(me) => e.agent() == Some(me),
    }
}

/// Publish the queues' numbers once a second while they change, until
/// `cancel`.
pub fn spawn_queue_ticker(switchboard: Switchboard, events: EventBus, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut last = serde_json::Value::Null;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let queues = switchboard.queues().await;
            // Waits move every second; what a wallboard redraws for is
            // the rest (and the waits once they change by a second).
            let now = serde_json::to_value(&queues).unwrap_or_default();
            if now != last {
                events.publish(Event::Queues {
                    queues: now.clone(),
                });
                last = now;
            }
        }
    });
}
