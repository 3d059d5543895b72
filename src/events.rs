//! What happens, as it happens, for whoever listens: the desk's event
//! stream (`GET /api/v1/events`) and the helpdesk webhooks. Calls publish
//! after the ticket write that records the step is committed (an event
//! never shows what the store does not keep); the switchboard publishes
//! agents' states and the queues' numbers.
//!
//! A `tokio::sync::broadcast` channel: publishing never waits and never
//! grows a buffer; a listener that falls behind by more than
//! [`CAPACITY`] events is told it lagged (the desk then reloads what it
//! shows).

use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for a slow listener before it lags.
pub const CAPACITY: usize = 1024;

/// One thing that happened. Times are RFC 3339 (UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A call reached a support number and its ticket is open.
    CallArrived {
        call: u64,
        ticket: u64,
        /// The caller's number (the From URI's user part).
        caller: String,
        caller_name: Option<String>,
        dialed: String,
        at: String,
    },
    /// An agent's phone starts ringing with this call (the screen pop).
    Offered {
        agent: String,
        call: u64,
        ticket: u64,
        caller: String,
        caller_name: Option<String>,
        dialed: String,
        language: String,
        queue: Option<String>,
        /// How long the caller has waited so far (ms).
        waited_ms: u64,
        at: String,
    },
    /// The offer to `agent` ended without an answer (`no_answer`,
    /// `rejected`, `cancelled`).
    OfferEnded {
        agent: String,
        call: u64,
        ticket: u64,
        result: String,
        at: String,
    },
    /// The agent answered: the call is in progress.
    Answered {
        agent: String,
        call: u64,
        ticket: u64,
        caller: String,
        at: String,
    },
    /// The call ended: its outcome, who hung up, and the agent it had.
    Ended {
        call: u64,
        ticket: u64,
        agent: Option<String>,
        outcome: String,
        hung_up_by: String,
        caller: String,
        dialed: String,
        at: String,
    },
    /// An agent's state changed.
    AgentState {
        agent: String,
        state: String,
        reason: Option<String>,
        at: String,
    },
    /// A ticket was changed from the API (an entry, a status, a level).
    TicketChanged { ticket: u64, by: String, at: String },
    /// The queues' numbers changed (at most once a second).
    Queues { queues: serde_json::Value },
}

impl Event {
    /// The agent the event is about, if one (an agent's stream carries
    /// only its own).
    pub fn agent(&self) -> Option<&str> {
        match self {
            Event::Offered { agent, .. }
            | Event::OfferEnded { agent, .. }
            | Event::Answered { agent, .. }
            | Event::AgentState { agent, .. } => Some(agent),
            Event::Ended { agent, .. } => agent.as_deref(),
            Event::CallArrived { .. } | Event::TicketChanged { .. } | Event::Queues { .. } => None,
        }
    }

    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::CallArrived { .. } => "call_arrived",
            Event::Offered { .. } => "offered",
            Event::OfferEnded { .. } => "offer_ended",
            Event::Answered { .. } => "answered",
            Event::Ended { .. } => "ended",
            Event::AgentState { .. } => "agent_state",
            Event::TicketChanged { .. } => "ticket_changed",
            Event::Queues { .. } => "queues",
        }
    }
}

/// Where events are published; cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(CAPACITY);
        EventBus { tx }
    }

    /// Publish (nobody listening is fine).
    pub fn publish(&self, e: Event) {
        let _ = self.tx.send(Arc::new(e));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_json_tagged_by_its_type_and_says_whose_it_is() {
        let e = Event::Offered {
            agent: "ana".into(),
            call: 7,
            ticket: 100_001,
            caller: "5550101".into(),
            caller_name: Some("Ana Pérez".into()),
            dialed: "soporte".into(),
            language: "es".into(),
            queue: Some("software".into()),
            waited_ms: 1200,
            at: "2026-12-05T10:00:00.000Z".into(),
        };
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["type"], "offered");
        assert_eq!(v["ticket"], 100_001);
        assert_eq!(e.agent(), Some("ana"));
        assert_eq!(e.name(), "offered");
    }

    #[tokio::test]
    async fn a_listener_that_falls_behind_is_told_and_memory_stays_bounded() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        for i in 0..(CAPACITY as u64 + 10) {
            bus.publish(Event::TicketChanged {
                ticket: i,
                by: "supervisor:sara".into(),
                at: String::new(),
            });
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
        assert!(rx.recv().await.is_ok());
    }
}
