//! Consultation (attended transfer) on a bridged call: part of
//! [`CallCore`], sans-IO like the rest of it.
//!
//! The agent puts its caller on hold and asks a colleague (an agent's
//! extension) or a queue before handing the caller over. Two ways in:
//!
//! - **The phone's own:** the agent's phone holds the call and places a
//!   second call to the colleague's extension or the queue's number. The
//!   driver hands that call (the *consultation call*) to this call, which
//!   rings the colleague through the ACD (ringing shows on the agent's
//!   phone; a queue answers at once with its announcements and music). The
//!   phone's attended transfer — a REFER on the held call whose `Replaces`
//!   names the consultation call (RFC 3891, RFC 5589 §7) — hands the caller
//!   over; hanging the consultation call up goes back to the caller.
//! - **The keypad:** `##7303#` (the transfer prefix, `features.consult`, a
//!   target, `#`) holds the caller and consults on the agent's own line (it
//!   hears the ringing tone, or the queue's announcements); `##7#` hands the
//!   caller over, `##0#` (the hold code) goes back to the caller, and the
//!   agent hanging up once the colleague has answered hands over too.
//!
//! Everything waits on the ACD: the colleague is rung on its offer, and the
//! caller changes hands only on its `Completed`. A colleague who does not
//! answer, declines or hangs up, or an agent who gives up, leaves the caller
//! with its agent: nobody is stranded.
//!
//! Here: the consultation's state, its start, the ACD's news, the hand-over
//! and the end; `colleague.rs`: the colleague's leg; `phone.rs`: the
//! agent's own consultation call, its keys and the phone's REFER.

use super::{Bridge, CallCore, Phase};
use crate::acd::driver::ConsultNews;
use crate::acd::{OfferFailReason, TransferTarget};
use crate::call::keypad::Keypad;
use crate::call::{
    AcdRequest, AgentLegRef, Background, CallAction, CallCount, ConsultAction, ConsultResult, Side,
    TransferHow, TransferResult,
};
use crate::media::sdp::Negotiated;
use std::net::SocketAddr;

use super::hold::LegSdp;

mod colleague;
mod phone;

/// The consultation a bridged call's agent is making.
#[derive(Debug)]
pub(super) struct Consult {
    to: TransferTarget,
    via: Via,
    stage: Stage,
    /// The hand-over asked of the ACD, waiting for its answer.
    completing: Option<Completion>,
    /// The caller was put on hold for this consultation (not by the agent's
    /// phone): it comes off hold if the consultation ends without a
    /// hand-over.
    held_for_it: bool,
    /// A prompt playing to the consulting side.
    token: Option<u64>,
    /// The queue's first announcement was made.
    announced: bool,
}

#[derive(Debug)]
enum Via {
    /// On the agent's own leg of the call.
    Keypad,
    /// On the second call the agent's phone placed.
    Phone(Box<PhoneLeg>),
}

/// The agent's consultation call.
#[derive(Debug)]
struct PhoneLeg {
    /// Its media, negotiated from the phone's offer in the caller's codec.
    media: Negotiated,
    sdp: LegSdp,
    /// 200 OK sent and its media started.
    answered: bool,
    /// The agent's keys on it (the hand-over and return codes).
    keypad: Keypad,
}

#[derive(Debug)]
enum Stage {
    /// Waiting for the ACD's first answer.
    Asked,
    /// In the queue consulted.
    Waiting,
    /// The colleague's phones ring.
    Ringing {
        no: u32,
        agent: String,
        contacts: Option<u16>,
        failed: u16,
    },
    /// The colleague's answered leg is being bridged.
    Bridging {
        agent: String,
        leg: AgentLegRef,
        answer: Negotiated,
    },
    /// The agent and its colleague talk.
    Talking {
        agent: String,
        leg: AgentLegRef,
        media: Negotiated,
        sdp: LegSdp,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    /// The phone's attended transfer (REFER on this leg, with `Replaces`).
    Refer { leg: AgentLegRef },
    /// The same, sent on the consultation call instead (its `Replaces`
    /// naming the agent's leg of the call).
    ReferOnConsult,
    /// The keypad's hand-over code.
    Keypad,
    /// The agent hung up its leg of the call.
    AgentGone,
}

/// Why a consultation ended without a hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    /// The ACD refused it or nobody answered (the ACD's entry is gone).
    Refused(&'static str),
    /// The agent went back to the caller, hung up its consultation call, or
    /// the colleague hung up.
    Returned,
    /// The colleague's leg or media failed.
    Failed,
}

impl Consult {
    fn side(&self) -> Side {
        match self.via {
            Via::Keypad => Side::Agent,
            Via::Phone(_) => Side::Consult,
        }
    }

    fn to_agent(&self) -> bool {
        matches!(self.to, TransferTarget::Agent(_))
    }

    /// The colleague offer's number, while it rings or is being bridged.
    fn offer_no(&self) -> Option<u32> {
        match &self.stage {
            Stage::Ringing { no, .. } => Some(*no),
            Stage::Bridging { leg, .. } | Stage::Talking { leg, .. } => Some(leg.offer),
            _ => None,
        }
    }
}

impl CallCore {
    fn consult(&self) -> Option<&Consult> {
        match &self.phase {
            Phase::Bridged(b) => b.consult.as_deref(),
            _ => None,
        }
    }

    fn consult_mut(&mut self) -> Option<&mut Consult> {
        match &mut self.phase {
            Phase::Bridged(b) => b.consult.as_deref_mut(),
            _ => None,
        }
    }

    /// Whether the agent is consulting now.
    pub(super) fn consulting(&self) -> bool {
        self.consult().is_some()
    }

    /// Whether the consultation's keypad flow uses the agent's leg of the
    /// call (its hold and resume then belong to the consultation).
    pub(super) fn consulting_on_agent_leg(&self) -> bool {
        self.consult().is_some_and(|c| c.side() == Side::Agent)
    }

    /// Whether `leg` is one the consultation rang.
    pub(super) fn is_colleague_leg(&self, leg: AgentLegRef) -> bool {
        self.consult().and_then(Consult::offer_no) == Some(leg.offer)
    }

    fn emit_consult(&mut self, a: ConsultAction) {
        self.emit(CallAction::Consult(a));
    }

    // ------------------------------------------------------------ start

    /// `##7<target>#`: consult on the agent's own leg.
    pub(super) fn consult_from_keypad(&mut self, target: &str) {
        let Some(to) = self.settings.config.transfer_target(target) else {
            tracing::info!(%target, "consultation of an unknown number");
            return self.tell_agent_transfer_failed();
        };
        if !self.may_consult() {
            return self.tell_agent_transfer_failed();
        }
        tracing::info!(%target, "the agent consults (keypad)");
        self.begin_consult(to, Via::Keypad);
    }

    /// A bridged call whose agent is here and busy with nothing else.
    fn may_consult(&self) -> bool {
        matches!(&self.phase, Phase::Bridged(b)
            if b.consult.is_none() && b.transfer.is_none() && !b.agent_gone)
    }

    fn begin_consult(&mut self, to: TransferTarget, via: Via) {
        let held_for_it = !self.on_hold();
        if held_for_it {
            self.start_hold(self.now);
        }
        let keypad = matches!(via, Via::Keypad);
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        b.consult = Some(Box::new(Consult {
            to: to.clone(),
            via,
            stage: Stage::Asked,
            completing: None,
            held_for_it,
            token: None,
            announced: false,
        }));
        if keypad {
            self.emit_consult(ConsultAction::AgentToClock);
        }
        self.ask_acd(AcdRequest::Consult { to });
    }

    // ------------------------------------------------------ the ACD's news

    pub(super) fn consult_news(&mut self, news: ConsultNews) {
        if !self.consulting() {
            // Late news of a consultation that is over: a ringing offer it
            // made is withdrawn.
            if let ConsultNews::Offer { agent, .. } = news {
                let reason = OfferFailReason::Rejected;
                self.ask_acd(AcdRequest::ConsultOfferFailed { agent, reason });
            }
            return;
        }
        match news {
            ConsultNews::Queued => self.consult_queued(),
            ConsultNews::Announce {
                position,
                ewt_minutes,
            } => self.consult_announce(position, ewt_minutes),
            ConsultNews::Offer { agent, targets } => self.consult_offered(agent, targets),
            ConsultNews::CancelOffer { agent } => self.consult_offer_cancelled(&agent),
            ConsultNews::Rejected { reason } => self.consult_over(Over::Refused(reason)),
            ConsultNews::Completed => self.hand_over(),
            ConsultNews::CompletionRefused { reason } => self.completion_refused(reason),
        }
    }

    /// The consultation waits in its queue: the agent hears its music (and
    /// its announcements, which follow).
    fn consult_queued(&mut self) {
        let Some(c) = self.consult_mut() else { return };
        c.stage = Stage::Waiting;
        let side = c.side();
        self.answer_consult_call();
        self.emit_consult(ConsultAction::Background {
            side,
            sound: Background::HoldMusic,
        });
    }

    fn consult_announce(&mut self, position: usize, ewt_minutes: u32) {
        let language = self.language().to_string();
        let Some(c) = self.consult_mut() else { return };
        if !matches!(c.stage, Stage::Waiting) {
            return;
        }
        let first = !std::mem::replace(&mut c.announced, true);
        let prompts = super::queue::announcement(position, ewt_minutes, first);
        let side = c.side();
        self.emit_consult(ConsultAction::Append {
            side,
            language,
            prompts,
        });
    }

    /// The ACD offers the consultation to a colleague: ring its phones in
    /// the caller's codec (the caller is handed over without transcoding).
    fn consult_offered(&mut self, agent: String, targets: Vec<crate::sip::AgentTarget>) {
        let codec = self.media.clone();
        let consulting = match &self.phase {
            Phase::Bridged(b) => b.agent.clone(),
            _ => String::new(),
        };
        let ticket = self.ticket_label();
        self.offers += 1;
        let no = self.offers;
        let Some(c) = self.consult_mut() else { return };
        let (Stage::Asked | Stage::Waiting, Some(codec)) = (&c.stage, codec) else {
            let reason = OfferFailReason::Rejected;
            return self.ask_acd(AcdRequest::ConsultOfferFailed { agent, reason });
        };
        c.stage = Stage::Ringing {
            no,
            agent: agent.clone(),
            contacts: None,
            failed: 0,
        };
        let side = c.side();
        let answered = match &c.via {
            Via::Phone(p) => p.answered,
            Via::Keypad => true,
        };
        tracing::info!(%agent, contacts = targets.len(), "ringing the consulted colleague");
        self.emit(CallAction::RingAgent {
            offer: no,
            agent,
            targets,
            ticket,
            codec,
            consulted_by: Some(consulting),
        });
        if answered {
            self.emit_consult(ConsultAction::Background {
                side,
                sound: Background::Ringback,
            });
        } else {
            // The phone's own ringing tone, on its consultation call.
            self.emit_consult(ConsultAction::Ring);
        }
    }

    /// The consultation's offer was placed on `contacts` phones.
    pub(super) fn consult_offer_rung(&mut self, no: u32, contacts: u16) {
        let Some(c) = self.consult_mut() else { return };
        let Stage::Ringing {
            no: n,
            agent,
            contacts: placed,
            failed,
        } = &mut c.stage
        else {
            return;
        };
        if *n != no {
            return;
        }
        *placed = Some(contacts);
        if contacts == 0 || *failed >= contacts {
            let agent = agent.clone();
            self.consult_offer_lost(agent, OfferFailReason::Unreachable);
        }
    }

    /// The colleague's offer is over without a bridge: the ACD decides
    /// (a queue's consultation waits on; one to a colleague fails).
    fn consult_offer_lost(&mut self, agent: String, reason: OfferFailReason) {
        let Some(c) = self.consult_mut() else { return };
        let no = c.offer_no();
        c.stage = Stage::Waiting;
        let side = c.side();
        let queue = !c.to_agent();
        if let Some(no) = no {
            self.hang_up_offer(no, None);
        }
        if queue {
            self.emit_consult(ConsultAction::Background {
                side,
                sound: Background::HoldMusic,
            });
        }
        self.ask_acd(AcdRequest::ConsultOfferFailed { agent, reason });
    }

    fn consult_offer_cancelled(&mut self, agent: &str) {
        let Some(c) = self.consult_mut() else { return };
        let Stage::Ringing { no, agent: a, .. } = &c.stage else {
            return;
        };
        if a != agent {
            return;
        }
        let no = *no;
        c.stage = Stage::Waiting;
        let (side, queue) = (c.side(), !c.to_agent());
        self.hang_up_offer(no, None);
        if queue {
            self.emit_consult(ConsultAction::Background {
                side,
                sound: Background::HoldMusic,
            });
        }
    }

    // --------------------------------------------------------- hand-over

    fn complete(&mut self, how: Completion) {
        let Some(c) = self.consult_mut() else { return };
        if c.completing.is_some() {
            return;
        }
        if !matches!(c.stage, Stage::Talking { .. }) {
            tracing::info!("a hand-over before the colleague answered");
            return self.tell_consulting_agent(vec!["transfer_failed".into()]);
        }
        c.completing = Some(how);
        self.ask_acd(AcdRequest::CompleteConsult);
    }

    /// The agent hung up its leg of the call while consulting: once the
    /// colleague talks, that hands the caller over; before, the call ends
    /// as any call its agent hangs up.
    pub(super) fn agent_left_consultation(&mut self) -> bool {
        let talking = self
            .consult()
            .is_some_and(|c| matches!(c.stage, Stage::Talking { .. }) && c.completing.is_none());
        if let Phase::Bridged(b) = &mut self.phase {
            b.agent_gone = true;
        }
        if talking {
            tracing::info!("the agent hung up: the caller goes to the colleague");
            self.complete(Completion::AgentGone);
        }
        talking
    }

    /// The ACD moved the call to the colleague: bridge the caller with it;
    /// the consulting agent's legs end.
    fn hand_over(&mut self) {
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        if !matches!(
            b.consult.as_ref().map(|c| &c.stage),
            Some(Stage::Talking { .. })
        ) {
            return;
        }
        let Some(c) = b.consult.take() else { return };
        let (old_leg, to_agent, how) = (b.leg, c.to_agent(), c.completing);
        let phone_answered = matches!(&c.via, Via::Phone(p) if p.answered);
        let Stage::Talking {
            agent,
            leg,
            media,
            sdp,
        } = c.stage
        else {
            return;
        };
        self.leave_hold(self.now);
        let via = match how {
            Some(Completion::Refer { .. } | Completion::ReferOnConsult) => "attended refer",
            Some(Completion::AgentGone) => "agent hung up",
            _ => "keypad",
        };
        let to = c.to.clone();
        self.record_transfer(via, &to, Some(&agent));
        match how {
            Some(Completion::Refer { leg: l }) => {
                if self.legs.remove(&l) {
                    self.emit(CallAction::TransferDone { leg: l });
                }
            }
            Some(Completion::AgentGone) => {
                self.legs.remove(&old_leg);
            }
            Some(Completion::Keypad | Completion::ReferOnConsult) | None => {
                self.hang_up_leg(old_leg)
            }
        }
        if how == Some(Completion::ReferOnConsult) {
            self.emit_consult(ConsultAction::TransferDone);
        } else if phone_answered {
            self.emit_consult(ConsultAction::HangUp);
        }
        self.emit(CallAction::HoldMusic(false));
        self.emit_consult(ConsultAction::HandOver);
        tracing::info!(%agent, "the caller is handed over to the consulted colleague");
        let prefix = self.settings.config.features.transfer_prefix.clone();
        self.keypad = Keypad::new(&prefix);
        if let Phase::Bridged(b) = &mut self.phase {
            *b = Bridge::new(agent, leg, media, sdp);
        }
        let how = match how {
            Some(Completion::Refer { .. } | Completion::ReferOnConsult) => TransferHow::Refer,
            _ => TransferHow::Keypad,
        };
        self.count(CallCount::Transfer {
            how,
            to_agent,
            result: TransferResult::Done,
        });
        self.count(CallCount::Consultation {
            to_agent,
            result: ConsultResult::Transferred,
        });
    }

    fn completion_refused(&mut self, reason: &'static str) {
        let Some(c) = self.consult_mut() else { return };
        let Some(how) = c.completing.take() else {
            return;
        };
        tracing::info!(reason, "the hand-over was refused");
        match how {
            Completion::Refer { leg } => {
                self.emit(CallAction::TransferFailed { leg, status: 403 });
            }
            Completion::ReferOnConsult => {
                self.emit_consult(ConsultAction::TransferFailed { status: 403 })
            }
            Completion::Keypad => self.tell_consulting_agent(vec!["transfer_failed".into()]),
            Completion::AgentGone => {
                // Nobody is left with the caller.
                self.consult_over(Over::Failed);
                self.end(
                    crate::metrics::CallOutcome::AgentHangup,
                    super::CallerEnd::Bye,
                );
            }
        }
    }

    // --------------------------------------------------------------- end

    /// The consultation is over without a hand-over; the ACD is told.
    fn consult_over(&mut self, why: Over) {
        if let Some(Consult {
            via: Via::Phone(p), ..
        }) = self.consult_mut()
        {
            // Still up: the agent's consultation call is ended by us.
            let action = if p.answered {
                ConsultAction::HangUp
            } else {
                ConsultAction::Reject {
                    status: reject_status(why),
                }
            };
            self.emit_consult(action);
        }
        self.consult_over_quietly(why);
    }

    /// [`CallCore::consult_over`] once the consultation call needs nothing.
    fn consult_over_quietly(&mut self, why: Over) {
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        let Some(c) = b.consult.take() else { return };
        let agent_gone = b.agent_gone;
        match &c.stage {
            Stage::Ringing { no, .. } => self.hang_up_offer(*no, None),
            Stage::Bridging { leg, .. } | Stage::Talking { leg, .. } => self.hang_up_leg(*leg),
            Stage::Asked | Stage::Waiting => {}
        }
        self.emit_consult(ConsultAction::DropColleague);
        if !matches!(why, Over::Refused(_)) {
            self.ask_acd(AcdRequest::ConsultGone);
        }
        let result = match why {
            Over::Refused("no answer" | "declined") => ConsultResult::Unanswered,
            Over::Refused(_) => ConsultResult::Refused,
            Over::Returned | Over::Failed => ConsultResult::Returned,
        };
        self.count(CallCount::Consultation {
            to_agent: c.to_agent(),
            result,
        });
        if agent_gone {
            return;
        }
        // Back to the caller.
        match c.via {
            Via::Keypad => {
                self.leave_hold(self.now);
                self.emit(CallAction::HoldMusic(false));
                self.emit_consult(ConsultAction::Rejoin);
                if matches!(why, Over::Refused(_) | Over::Failed) {
                    self.tell_agent_transfer_failed();
                }
            }
            Via::Phone(_) if c.held_for_it => self.end_hold(self.now),
            // The phone holds the caller: it resumes it when the agent
            // goes back to the call.
            Via::Phone(_) => {}
        }
    }

    /// The call ends while its agent consults: the consultation's legs
    /// and the ACD's entry go with it.
    pub(super) fn end_consultation_with_call(&mut self) {
        let Some(c) = self.consult() else { return };
        let to_agent = c.to_agent();
        if let Some(Via::Phone(p)) = self.consult().map(|c| &c.via) {
            let action = if p.answered {
                ConsultAction::HangUp
            } else {
                ConsultAction::Reject { status: 487 }
            };
            self.emit_consult(action);
        }
        if let Phase::Bridged(b) = &mut self.phase {
            b.consult = None;
        }
        self.ask_acd(AcdRequest::ConsultGone);
        self.count(CallCount::Consultation {
            to_agent,
            result: ConsultResult::CallEnded,
        });
    }
}

/// What the agent's unanswered consultation call is refused with.
fn reject_status(why: Over) -> u16 {
    match why {
        Over::Refused("agent logged out" | "agent paused" | "no agents") => 480,
        Over::Refused("agent busy" | "declined") => 486,
        Over::Refused("no answer") => 480,
        Over::Refused("unknown agent" | "unknown queue") => 404,
        Over::Refused(_) => 403,
        Over::Returned => 487,
        Over::Failed => 500,
    }
}

/// Whether a re-offer's address is one to follow (not a hold's 0.0.0.0,
/// not the same).
fn followable(n: &Negotiated, current: SocketAddr) -> bool {
    !n.remote_rtp.ip().is_unspecified() && n.remote_rtp.port() != 0 && n.remote_rtp != current
}
