//! The call's ticket: what the core asks to be written (a [`Record`]) as
//! things happen, before anyone outside sees them. Part of [`CallCore`],
//! sans-IO: the driver writes each record and waits for its commit before
//! it carries out the next action.
//!
//! A call that reaches a support number (a menu or a queue's number) opens
//! its ticket before it is answered; feature codes and refused calls open
//! none. The entries say, in plain words, what happened.

use super::*;
use crate::call::Record;
use crate::tickets::{CallChange, CallOutcome as Ended, CallPhase, TicketNumber};

/// Who ended the call, for its ticket.
fn hung_up_by(outcome: CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::CallerHangup | CallOutcome::Cancelled => "caller",
        CallOutcome::AgentHangup => "agent",
        _ => "centralita",
    }
}

impl CallCore {
    /// Write `change` to the ticket with `entry` (if the call has one).
    pub(super) fn record(&mut self, change: CallChange, entry: String) {
        if !self.ticketed {
            return;
        }
        self.emit(CallAction::Record(Record::Change {
            change: Box::new(change),
            entry,
        }));
    }

    /// Open the ticket, then go on with `then` once it is committed.
    pub(super) fn open_ticket(&mut self) {
        self.phase = Phase::Opening;
        let language = self.language().to_string();
        self.emit(CallAction::Record(Record::Open { language }));
    }

    pub(super) fn ticket_opened(&mut self, now: Instant, ticket: TicketNumber) {
        if !matches!(self.phase, Phase::Opening) {
            return;
        }
        tracing::info!(%ticket, "ticket opened");
        self.ticket = Some(ticket);
        self.ticketed = true;
        self.ring_or_answer(now);
    }

    /// No ticket can be opened: the call is refused (503) and not taken.
    pub(super) fn ticket_failed(&mut self) {
        if matches!(self.phase, Phase::Opening) {
            tracing::warn!("no ticket could be opened: 503");
            self.end(CallOutcome::Unavailable, CallerEnd::Reject(503));
        }
    }

    /// The join is done: the menus go on (their next actions waited, so
    /// that the queue and the agent hear of the ticket the call is on now).
    pub(super) fn ticket_joined(&mut self, ticket: Option<TicketNumber>) {
        if let Some(t) = ticket.filter(|t| self.ticket != Some(*t)) {
            tracing::info!(ticket = %t, "the call joins the ticket the caller typed");
            self.ticket = Some(t);
        }
        if std::mem::take(&mut self.joining) {
            self.drain_ivr();
        }
    }

    /// The ticket's number as the agent's phone and desk see it.
    pub(super) fn ticket_label(&self) -> String {
        match self.ticket {
            Some(t) => t.to_string(),
            None => format!("call-{}", self.id.0),
        }
    }

    /// The call's ticket, once it has one.
    pub fn ticket(&self) -> Option<TicketNumber> {
        self.ticket
    }

    /// The call ends: how, and who hung up, on its ticket.
    pub(super) fn record_end(&mut self, outcome: CallOutcome) {
        let ended = if outcome == CallOutcome::Shutdown {
            Ended::Interrupted
        } else if self.served {
            Ended::Answered
        } else if self.callback_held {
            Ended::CallbackRequested
        } else if self.queue.is_some() {
            Ended::AbandonedQueue
        } else {
            Ended::AbandonedIvr
        };
        let by = hung_up_by(outcome);
        let entry = match (ended, by) {
            (Ended::Interrupted, _) => "The call was ended by a stop of centralita.".to_string(),
            (Ended::CallbackRequested, _) => {
                "The caller's line was freed; it will be called back.".to_string()
            }
            (Ended::AbandonedQueue, "caller") => "The caller hung up while waiting.".to_string(),
            (Ended::AbandonedIvr, "caller") => "The caller hung up in the menus.".to_string(),
            (_, "caller") => "The caller hung up.".to_string(),
            (_, "agent") => "The agent hung up.".to_string(),
            (_, _) => format!("Centralita ended the call ({}).", outcome.as_str()),
        };
        let holds = (self.holds.count > 0).then(|| {
            (
                self.holds.count,
                u64::try_from(self.holds.total.as_millis()).unwrap_or(u64::MAX),
            )
        });
        let change = CallChange {
            phase: Some(CallPhase::Ended),
            ended: Some((ended, by.to_string())),
            holds,
            ..CallChange::default()
        };
        self.record(change, entry);
    }

    // --------------------------------------------- what the menus did

    pub(super) fn record_menu(&mut self, menu: &str) {
        let change = CallChange {
            phase: Some(CallPhase::Ivr),
            ivr_step: Some((menu.to_string(), None)),
            ..CallChange::default()
        };
        self.record(change, format!("Entered menu {menu}."));
    }

    /// A key pressed in a menu (keys typed into a field are the field's).
    pub(super) fn record_key(&mut self, digit: char) {
        let Some(menu) = self
            .ivr
            .as_ref()
            .filter(|i| !i.collecting())
            .and_then(|i| i.current_menu())
            .map(str::to_string)
        else {
            return;
        };
        let change = CallChange {
            ivr_step: Some((menu.clone(), Some(digit))),
            ..CallChange::default()
        };
        self.record(change, format!("Pressed {digit} in menu {menu}."));
    }

    pub(super) fn record_language(&mut self, language: &str) {
        let change = CallChange {
            language: Some(language.to_string()),
            ..CallChange::default()
        };
        self.record(change, format!("Language chosen: {language}."));
    }

    /// A field the caller typed; a typed ticket number joins that ticket.
    pub(super) fn record_field(&mut self, name: &str, value: &str) {
        let change = CallChange {
            field: Some((name.to_string(), value.to_string())),
            ..CallChange::default()
        };
        self.record(change, format!("The caller typed {name}: {value}."));
        if name == "ticket" && self.ticketed {
            self.joining = true;
            self.emit(CallAction::Record(Record::Join {
                typed: value.to_string(),
            }));
        }
    }

    // ------------------------------------------------ queue and agents

    pub(super) fn record_queued(&mut self, queue: &str, priority: u8) {
        let change = CallChange {
            phase: Some(CallPhase::Queue),
            queue: Some((queue.to_string(), priority)),
            enqueued: true,
            ..CallChange::default()
        };
        self.record(
            change,
            format!("Queued in {queue} with priority {priority}."),
        );
    }

    pub(super) fn record_offer(&mut self, agent: &str, phones: usize) {
        let change = CallChange {
            phase: Some(CallPhase::Ringing),
            offered: Some(agent.to_string()),
            ..CallChange::default()
        };
        self.record(
            change,
            format!("Offered to {agent} ({phones} phone(s) ringing)."),
        );
    }

    /// The offer to `agent` ended without an answer (`result`:
    /// `no_answer`, `rejected`, `unreachable`, `cancelled`).
    pub(super) fn record_offer_ended(&mut self, agent: &str, result: &str) {
        let change = CallChange {
            phase: Some(CallPhase::Queue),
            offer_ended: Some(result.to_string()),
            ..CallChange::default()
        };
        let entry = match result {
            "no_answer" => format!("{agent} did not answer; the caller keeps its place."),
            "rejected" => format!("{agent} refused the call; the caller keeps its place."),
            "unreachable" => format!("{agent}'s phone could not be reached."),
            _ => format!("The offer to {agent} was withdrawn."),
        };
        self.record(change, entry);
    }

    pub(super) fn record_answered(&mut self, agent: &str) {
        self.served = true;
        let change = CallChange {
            phase: Some(CallPhase::Talking),
            answered_by: Some(agent.to_string()),
            ..CallChange::default()
        };
        self.record(change, format!("Answered by {agent}."));
    }

    /// A transfer the ACD took: how (refer, keypad, attended) and to what.
    pub(super) fn record_transfer(&mut self, how: &str, to: &TransferTarget, agent: Option<&str>) {
        let to_text = match to {
            TransferTarget::Queue(q) => format!("queue {q}"),
            TransferTarget::Agent(a) => format!("agent {a}"),
        };
        let change = CallChange {
            phase: Some(match agent {
                Some(_) => CallPhase::Talking,
                None => CallPhase::Queue,
            }),
            transfer: Some((how.to_string(), to_text.clone())),
            agent: agent.map(str::to_string),
            ..CallChange::default()
        };
        let entry = match agent {
            Some(a) => format!("Handed over to {a} after a consultation ({how})."),
            None => format!("Transferred ({how}) to {to_text}."),
        };
        self.record(change, entry);
    }

    /// The agent's phone vanished: the caller is back in the queue.
    pub(super) fn record_agent_lost(&mut self) {
        let change = CallChange {
            phase: Some(CallPhase::Queue),
            ..CallChange::default()
        };
        let queue = self.queue.as_ref().map(|(q, _)| q.as_str()).unwrap_or("?");
        let entry = format!(
            "The agent's phone stopped sending audio (lost); the caller is back at the head of {queue}."
        );
        self.record(change, entry);
    }

    /// The caller asked to be called back from `queue`.
    pub(super) fn record_callback(&mut self, queue: &str) {
        self.callback_held = true;
        let entry = format!("The caller asked to be called back; its place in {queue} is kept.");
        self.record(CallChange::default(), entry);
    }
}
