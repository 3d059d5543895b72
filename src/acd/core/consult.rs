//! Consultation (attended transfer) in the ACD core: the agent on a call
//! asks a colleague, or a queue, before handing its caller over. Sans-IO
//! like the rest of [`Acd`].
//!
//! A consultation is an entry of its own (its own [`CallId`], chosen by the
//! driver) that remembers the call it was made from. It rings an Available
//! colleague at once, or waits in a queue like a caller; it never counts in
//! a queue's figures. Completion moves the caller's call to the colleague
//! who answered (and the consulting agent to wrap-up); giving up, the
//! colleague hanging up or the call ending close it without a hand-over.

use super::{Acd, Call, Place};
use crate::acd::{AcdAction, AgentState, CallId, Outcome, TransferTarget};
use std::time::Instant;

impl Acd {
    /// The agent on `x` consults `to`; `c` is the consultation's id.
    pub(super) fn consult(&mut self, now: Instant, x: CallId, c: CallId, to: TransferTarget) {
        let reject = |reason| AcdAction::ConsultRejected { call: c, reason };
        if self.calls.contains_key(&c) {
            return; // a duplicate id: ignored
        }
        let Some(call) = self.calls.get(&x) else {
            return self.emit(reject("unknown call"));
        };
        let Place::OnCall(from) = call.place else {
            return self.emit(reject("not on a call"));
        };
        if call.consult.is_some() || call.consult_of.is_some() {
            return self.emit(reject("consultation in progress"));
        }
        let entry = Call {
            queue: call.queue,
            priority: call.priority,
            ticket: call.ticket.clone(),
            arrived: now,
            entered: now,
            place: Place::Offered {
                agents: Vec::new(),
                agent_answered: false,
            },
            callback: None,
            called_back: false,
            answered: false,
            offered_cb: false,
            directed: None,
            timers: [None; 5],
            consult_of: Some(x),
            consult: None,
        };
        match to {
            TransferTarget::Agent(id) => {
                let Some(&t) = self.agent_ix.get(&id) else {
                    return self.emit(reject("unknown agent"));
                };
                if t == from {
                    return self.emit(reject("same agent"));
                }
                let refused = match self.agents.get(t).map(|a| &a.state) {
                    Some(AgentState::Available) => None,
                    Some(AgentState::LoggedOut) | None => Some("agent logged out"),
                    Some(AgentState::Paused { .. }) => Some("agent paused"),
                    Some(_) => Some("agent busy"),
                };
                if let Some(reason) = refused {
                    return self.emit(reject(reason));
                }
                self.open_consultation(
                    x,
                    c,
                    Call {
                        directed: Some(t),
                        ..entry
                    },
                );
                self.offer(now, c, vec![t]);
            }
            TransferTarget::Queue(name) => {
                let Some(&qi) = self.queue_ix.get(&name) else {
                    return self.emit(reject("unknown queue"));
                };
                if self.queues.get(qi).is_none_or(|q| q.logged_in() == 0) {
                    return self.emit(reject("no agents"));
                }
                self.open_consultation(x, c, entry);
                self.emit(AcdAction::ConsultQueued { call: c });
                self.enter_queue(now, c, qi, 0, false);
            }
        }
    }

    fn open_consultation(&mut self, x: CallId, c: CallId, entry: Call) {
        self.calls.insert(c, entry);
        if let Some(call) = self.calls.get_mut(&x) {
            call.consult = Some(c);
        }
    }

    /// Hand the caller over to the colleague who answered consultation `c`.
    pub(super) fn complete_consult(&mut self, now: Instant, c: CallId) {
        let refuse = |reason| AcdAction::CompletionRefused { call: c, reason };
        let Some(entry) = self.calls.get(&c) else {
            return self.emit(refuse("unknown consultation"));
        };
        let (Some(x), Place::OnCall(colleague)) = (entry.consult_of, &entry.place) else {
            return self.emit(refuse("the colleague has not answered"));
        };
        let colleague = *colleague;
        let Some(call) = self.calls.get_mut(&x) else {
            return self.emit(refuse("unknown call"));
        };
        let Place::OnCall(from) = call.place else {
            return self.emit(refuse("not on a call"));
        };
        call.place = Place::OnCall(colleague);
        call.consult = None;
        call.directed = None;
        self.emit(AcdAction::ConsultCompleted { call: c });
        self.finish(c, Outcome::Consultation);
        // The colleague keeps its talk time; the caller's call is its now.
        self.set_agent_state(now, colleague, AgentState::OnCall { call: x });
        self.start_wrap_up(now, from);
    }

    /// `c` hung up or ended: if it is a consultation, or a call with one,
    /// the consultation is over (colleague freed, or in wrap-up if it
    /// talked). Whether `c` itself was a consultation (nothing more to do).
    pub(super) fn consultation_over(&mut self, now: Instant, c: CallId) -> bool {
        let Some(call) = self.calls.get(&c) else {
            return false;
        };
        if call.consult_of.is_some() {
            self.end_consult(now, c);
            return true;
        }
        if let Some(consult) = call.consult {
            self.end_consult(now, consult);
        }
        false
    }

    fn end_consult(&mut self, now: Instant, c: CallId) {
        let Some(entry) = self.calls.get(&c) else {
            return;
        };
        let from = entry.consult_of;
        match &entry.place {
            Place::Offered { agents, .. } => {
                let agents = agents.clone();
                self.cancel_offers(now, c, agents, None);
            }
            Place::OnCall(colleague) => {
                let colleague = *colleague;
                self.start_wrap_up(now, colleague);
            }
            Place::Queued(_) | Place::Directed(_) => {}
        }
        self.detach(from);
        self.finish(c, Outcome::Consultation);
    }

    /// Every offer of consultation `c` lapsed: one made to a colleague
    /// fails (`reason`: "no answer" or "declined"); one waiting in a queue
    /// goes on waiting. Whether `c` was one to a colleague.
    pub(super) fn consult_unanswered(&mut self, c: CallId, reason: &'static str) -> bool {
        let Some(entry) = self.calls.get(&c) else {
            return false;
        };
        let (Some(from), Some(_)) = (entry.consult_of, entry.directed) else {
            return false;
        };
        self.emit(AcdAction::ConsultRejected { call: c, reason });
        self.detach(Some(from));
        self.finish(c, Outcome::Consultation);
        true
    }

    /// The call a consultation was made from has none any more.
    fn detach(&mut self, from: Option<CallId>) {
        if let Some(call) = from.and_then(|x| self.calls.get_mut(&x)) {
            call.consult = None;
        }
    }
}
