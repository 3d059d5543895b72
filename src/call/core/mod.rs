//! [`CallCore`]: one call's life as a sans-IO state machine, in the shape
//! of the ACD core. The driver reports what happened with
//! [`CallCore::handle_event`] and, when [`CallCore::poll_timeout`] says so,
//! [`CallCore::handle_timeout`]; it drains [`CallCore::poll_action`] and
//! carries each action out. Nothing here names tokio or a socket, or reads
//! the clock: every input takes `now`.
//!
//! The core owns the call's phase (answering, IVR, queued with the offer it
//! rings, bridged with a transfer it waits on), its playback token, the
//! agent's keypad, every agent leg it has rung, and every deadline of the
//! call in one timer table. It acts on the ACD's answers, never ahead of
//! them: a transfer tears the agent's leg down only once the ACD confirms
//! it, and a callback is promised to the caller only once the ACD holds it.
//!
//! When the call ends, for whatever reason, [`CallCore`] hangs up every leg
//! still up, tells the ACD once, releases its line once and reports the
//! outcome last ([`CallAction::Finished`]); after that it ignores events.
//!
//! This file: the vocabulary, the event dispatch, the timers, arrival,
//! answer, the caller's media and the end. One concern per part file, each
//! an `impl CallCore` block: `ivr.rs` (the menus' decisions), `queue.rs`
//! (queue, offers, the agent's answer, callback), `bridge.rs` (keypad, blind
//! transfers, the agent hanging up), `hold.rs` (hold, refreshes, the
//! caller's hold mirrored), `consult/` (consultation, attended transfer).

mod bridge;
mod consult;
mod hold;
mod ivr;
mod queue;
mod ticket;

use super::keypad::{Keypad, KeypadAction};
use super::{
    AcdRequest, AgentLegRef, CallAction, CallCount, CallEvent, KeypadResult, LegId, LegRole, ReqId,
    SdpSession, TransferHow, TransferResult,
};
use crate::acd::driver::{Feature, QueueNews};
use crate::acd::{CallId, OfferFailReason, TransferTarget};
use crate::config::RuntimeConfig;
use crate::ivr::{IvrAction, IvrCall, IvrEvent, IvrScript};
use crate::media::dtmf::{info::parse_info_body, DigitSource};
use crate::media::sdp::{self, Negotiated};
use crate::metrics::CallOutcome;
use crate::sip::{AgentTarget, LegEnd};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The built-in menu a caller who dialed a queue's own number is named
/// with (it goes straight into the queue; the menu never runs).
pub const DIRECT_QUEUE_MENU: &str = "queue_direct";

/// The priority of a caller who dialed a queue's own number (the IVR's default).
const DIRECT_PRIORITY: u8 = 5;

/// Everything calls share, read-only.
pub struct CallSettings {
    pub config: RuntimeConfig,
    /// The operator's menus.
    pub ivr: Arc<IvrScript>,
    /// The built-in menus (feature codes, the direct-queue entry).
    pub feature_ivr: Arc<IvrScript>,
    /// How long our 200 OK waits for its ACK (64·T1, RFC 3261 §13.3.1.4).
    pub ack_timeout: Duration,
}

/// A new call, as the SIP side saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub call: CallId,
    pub dialed: String,
    /// The caller's From URI (personal data).
    pub from_uri: String,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// Our address for this caller's Contact and SDP.
    pub local_ip: IpAddr,
    pub offer: Option<Vec<u8>>,
    /// The agent whose credentials the INVITE carried (feature codes).
    pub agent: Option<String>,
    /// The RTP port set aside for the caller (`None`: none was free).
    pub rtp_port: Option<u16>,
    /// Whether the call took one of the trunk's lines.
    pub holds_line: bool,
}

/// Where a call stands, for the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Answering,
    Ivr,
    Queued,
    Ringing,
    OnCall,
    Transferring,
    /// The agent consults a colleague (the caller on hold).
    Consulting,
    Leaving,
    Ended,
}

/// The live view of a call, derived from its core.
#[derive(Debug, Clone, Copy)]
pub struct CallView<'a> {
    pub state: CallState,
    pub language: &'a str,
    pub queue: Option<&'a str>,
    pub priority: Option<u8>,
    pub agent: Option<&'a str>,
    pub fields: Option<&'a BTreeMap<String, String>>,
}

/// The call's deadlines, one slot each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Answer after ringing `sip.answer_after_ms`.
    Answer = 0,
    /// Our 200 OK has not been ACKed.
    Ack = 1,
    /// The IVR's own deadline (first digit, collect).
    Ivr = 2,
    /// The agent's keypad (a held prefix key, target digits).
    Keypad = 3,
}

const TIMERS: [Timer; 4] = [Timer::Answer, Timer::Ack, Timer::Ivr, Timer::Keypad];

#[derive(Debug)]
enum Phase {
    /// Waiting for the ACD to apply an agent's feature code.
    Feature {
        menu: &'static str,
    },
    /// Opening the call's ticket (answered once it is committed).
    Opening,
    /// 180 sent; answering when the Answer timer fires.
    Ringing,
    /// Answered without an offer: waiting for the ACK's SDP answer.
    AwaitingAck,
    Ivr,
    Queued(Queued),
    Bridged(Bridge),
    Ended,
}

#[derive(Debug)]
struct Queued {
    /// The offer whose phones ring now.
    offer: Option<Offer>,
    /// 9 pressed: the ACD has been asked to keep the place for a callback.
    callback_asked: bool,
}

#[derive(Debug)]
struct Offer {
    no: u32,
    agent: String,
    /// Legs placed (known once the driver reports `OfferRung`).
    contacts: Option<u16>,
    failed: u16,
    /// An answer that came while a callback request was pending: bridged
    /// if the ACD refuses the callback, hung up if it holds it.
    held_answer: Option<(AgentLegRef, Vec<u8>)>,
    /// Bridging this leg (waiting for `AgentBridged`), with its answer.
    bridging: Option<(AgentLegRef, Negotiated)>,
}

#[derive(Debug)]
struct Bridge {
    agent: String,
    leg: AgentLegRef,
    transfer: Option<PendingTransfer>,
    /// The agent's phone hung up while a transfer was pending.
    agent_gone: bool,
    /// A prompt playing to the agent (its token).
    to_agent: Option<u64>,
    /// The agent leg's media as last negotiated, and our SDP on it.
    agent_media: Negotiated,
    agent_sdp: LegSdp,
    /// Since when the agent holds the caller.
    held_since: Option<Instant>,
    /// The caller's own hold, as the agent's phone is told of it.
    mirror: Mirror,
    /// The consultation the agent is making (attended transfer).
    consult: Option<Box<consult::Consult>>,
}

impl Bridge {
    /// `agent` on `leg`, its media as answered and our SDP on it.
    fn new(agent: String, leg: AgentLegRef, agent_media: Negotiated, agent_sdp: LegSdp) -> Bridge {
        Bridge {
            agent,
            leg,
            transfer: None,
            agent_gone: false,
            to_agent: None,
            agent_media,
            agent_sdp,
            held_since: None,
            mirror: Mirror::default(),
            consult: None,
        }
    }
}

#[derive(Debug)]
struct PendingTransfer {
    how: TransferHow,
    to: TransferTarget,
}

/// How the caller's leg is ended when the call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallerEnd {
    /// It ended by itself (BYE, CANCEL) or was never up.
    Gone,
    /// Answered: send BYE.
    Bye,
    /// Not answered yet: a final error response.
    Reject(u16),
}

use hold::{HoldStats, Holder, LegSdp, Mirror};

/// One call's decisions (sans-IO).
pub struct CallCore {
    id: CallId,
    settings: Arc<CallSettings>,
    arrival: Arrival,
    phase: Phase,
    ivr: Option<IvrCall>,
    direct_queue: Option<String>,
    /// The caller's negotiated media, once it is up.
    media: Option<Negotiated>,
    answered: bool,
    confirmed: bool,
    /// Our SDP towards the caller.
    sdp: LegSdp,
    /// The time of the event being handled (hold times end with the call).
    now: Instant,
    holds: HoldStats,
    token: u64,
    announced: bool,
    /// The prompts playing end the call (goodbye, a queue's message).
    leaving: bool,
    keypad: Keypad,
    /// The call's ticket (once opened, or joined).
    ticket: Option<crate::tickets::TicketNumber>,
    /// The driver keeps a ticket for this call: changes are recorded.
    ticketed: bool,
    /// An agent answered it at least once.
    served: bool,
    /// The ACD holds a callback for the caller.
    callback_held: bool,
    /// A typed ticket number is being joined: the menus' next actions wait.
    joining: bool,
    offers: u32,
    /// Agent legs rung and not yet ended or hung up.
    legs: BTreeSet<AgentLegRef>,
    /// The queue and priority the caller last waited with.
    queue: Option<(String, u8)>,
    in_acd: bool,
    holds_line: bool,
    timers: [Option<Instant>; 4],
    actions: VecDeque<CallAction>,
    revision: u64,
}

impl CallCore {
    /// A call that has just arrived: decides at once whether it is taken
    /// (the first actions answer, ring, ask the ACD, or refuse it).
    pub fn new(now: Instant, settings: Arc<CallSettings>, arrival: Arrival) -> CallCore {
        let prefix = settings.config.features.transfer_prefix.clone();
        let mut core = CallCore {
            id: arrival.call,
            sdp: LegSdp::new(
                SocketAddr::new(arrival.local_ip, arrival.rtp_port.unwrap_or_default()),
                SdpSession::for_leg(LegId {
                    call: arrival.call,
                    role: LegRole::Caller,
                }),
            ),
            now,
            holds: HoldStats::default(),
            holds_line: arrival.holds_line,
            settings,
            arrival,
            phase: Phase::Ivr,
            ivr: None,
            direct_queue: None,
            media: None,
            answered: false,
            confirmed: false,
            token: 0,
            announced: false,
            leaving: false,
            keypad: Keypad::new(&prefix),
            ticket: None,
            ticketed: false,
            served: false,
            callback_held: false,
            joining: false,
            offers: 0,
            legs: BTreeSet::new(),
            queue: None,
            in_acd: false,
            timers: [None; 4],
            actions: VecDeque::new(),
            revision: 0,
        };
        core.route(now);
        core
    }

    pub fn handle_event(&mut self, now: Instant, ev: CallEvent) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        self.now = now;
        self.revision += 1;
        match ev {
            CallEvent::FeatureApplied { known } => self.feature_applied(now, known),
            CallEvent::AnswerFailed => self.end(CallOutcome::Failed, CallerEnd::Gone),
            CallEvent::CallerMediaFailed => self.media_failed(),
            CallEvent::CallerConfirmed { ack_body } => self.confirmed(now, ack_body),
            CallEvent::CallerInfo {
                req,
                content_type,
                body,
            } => self.info(now, req, &content_type, &body),
            CallEvent::CallerReoffer { req, sdp, invite } => {
                self.reoffer(req, sdp.as_deref(), invite)
            }
            CallEvent::CallerEnded(end) => self.caller_ended(end),
            CallEvent::CallerDigit { digit, source } => self.caller_digit(now, digit, source),
            CallEvent::CallerPlaybackFinished { token } => self.playback_finished(now, token),
            CallEvent::CallerRtpTimeout if self.phone_holds(Holder::Caller) => {
                // A phone that holds may well send nothing meanwhile.
                tracing::debug!("no RTP from the caller's phone, which holds");
            }
            CallEvent::CallerRtpTimeout => {
                tracing::info!("no RTP from the caller: ending the call");
                self.end(CallOutcome::Timeout, CallerEnd::Bye);
            }
            CallEvent::Acd(news) => self.acd_news(news),
            CallEvent::OfferRung { offer, contacts } => self.offer_rung(offer, contacts),
            CallEvent::AgentAnswered { leg, sdp } if self.is_colleague_leg(leg) => {
                self.colleague_answered(leg, &sdp)
            }
            CallEvent::AgentFailed { leg, status } if self.is_colleague_leg(leg) => {
                self.legs.remove(&leg);
                self.colleague_failed(leg, status)
            }
            CallEvent::AgentEnded { leg } if self.is_colleague_leg(leg) => {
                self.legs.remove(&leg);
                self.colleague_ended(leg)
            }
            CallEvent::AgentReoffer {
                leg,
                req,
                sdp,
                invite,
            } if self.is_colleague_leg(leg) => {
                self.colleague_reoffer(leg, req, sdp.as_deref(), invite)
            }
            CallEvent::AgentRefer { leg, req, .. } if self.is_colleague_leg(leg) => {
                self.emit(CallAction::ReplyRefer { req, status: 403 })
            }
            CallEvent::AgentAnswered { leg, sdp } => self.agent_answered(leg, sdp),
            CallEvent::AgentFailed { leg, status } => self.agent_failed(leg, status),
            CallEvent::AgentBridged { leg, local } => self.agent_bridged(leg, local),
            CallEvent::AgentReoffer {
                leg,
                req,
                sdp,
                invite,
            } => self.agent_reoffer(now, leg, req, sdp.as_deref(), invite),
            CallEvent::AgentBridgeFailed { leg } => self.bridge_failed(leg),
            CallEvent::AgentReofferAnswered { leg, answer } => {
                self.agent_reoffer_answered(leg, answer)
            }
            CallEvent::AgentRefer {
                leg,
                req,
                replaces: Some(replaced),
                ..
            } => self.refer_replaces(leg, req, replaced),
            CallEvent::AgentRefer {
                leg,
                req,
                target,
                replaces: None,
            } => self.refer(leg, req, &target),
            CallEvent::AgentEnded { leg } => self.agent_ended(leg),
            CallEvent::AgentDigit { digit, source } => self.agent_digit(now, digit, source),
            CallEvent::AgentPlaybackFinished { token } => self.agent_playback_finished(token),
            CallEvent::AgentRtpTimeout if self.phone_holds(Holder::Agent) => {
                tracing::debug!("no RTP from the agent's phone, which holds");
            }
            CallEvent::AgentRtpTimeout => self.agent_lost(),
            CallEvent::Shutdown => {
                let caller = self.caller_end_for(503);
                self.end(CallOutcome::Shutdown, caller);
            }
            CallEvent::ConsultCall(c) => self.consult_call(c),
            CallEvent::ConsultInfo {
                req,
                content_type,
                body,
            } => self.consult_call_info(now, req, &content_type, &body),
            CallEvent::ConsultReoffer { req, sdp, invite } => {
                self.consult_call_reoffer(req, sdp.as_deref(), invite)
            }
            CallEvent::ConsultEnded(end) => self.consult_call_ended(end),
            CallEvent::ConsultRefer { req, replaces } => self.consult_call_refer(req, replaces),
            CallEvent::CallerRefer { req } => {
                self.emit(CallAction::ReplyRefer { req, status: 403 })
            }
            CallEvent::ConsultDigit { digit, source } => {
                self.consult_call_digit(now, digit, source)
            }
            CallEvent::ConsultPlaybackFinished { token } => {
                self.consult_playback_finished(token);
            }
            CallEvent::ConsultRtpTimeout => self.consult_call_rtp_timeout(),
            CallEvent::ConsultMediaFailed => self.consult_call_media_failed(),
            CallEvent::ColleagueBridged { leg, local } => self.colleague_bridged(leg, local),
            CallEvent::ColleagueBridgeFailed { leg } => self.colleague_bridge_failed(leg),
            CallEvent::ColleagueRtpTimeout => self.colleague_rtp_timeout(),
            CallEvent::TicketOpened { ticket } => self.ticket_opened(now, ticket),
            CallEvent::TicketFailed => self.ticket_failed(),
            CallEvent::TicketJoined { ticket } => self.ticket_joined(ticket),
            CallEvent::DeskTransfer { to } => self.desk_transfer(to),
        }
        self.sync_timers();
    }

    /// Fire every deadline that `now` has reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for t in TIMERS {
            if matches!(self.phase, Phase::Ended) {
                return;
            }
            if self.timers[t as usize].is_some_and(|d| d <= now) {
                self.timers[t as usize] = None;
                self.revision += 1;
                self.fire(now, t);
            }
        }
        self.sync_timers();
    }

    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// The next deadline: call [`CallCore::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    pub fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }

    /// Goes up with every event: the live view needs refreshing.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn id(&self) -> CallId {
        self.id
    }

    /// The language the caller hears (the IVR's choice).
    pub fn language(&self) -> &str {
        self.ivr
            .as_ref()
            .map_or(&self.settings.config.default_language, |i| i.language())
    }

    /// Where the call stands, for the API.
    pub fn view(&self) -> CallView<'_> {
        let (state, agent) = match &self.phase {
            Phase::Feature { .. } | Phase::Opening | Phase::Ringing | Phase::AwaitingAck => {
                (CallState::Answering, None)
            }
            Phase::Ivr if self.leaving => (CallState::Leaving, None),
            Phase::Ivr => (CallState::Ivr, None),
            Phase::Queued(_) if self.leaving => (CallState::Leaving, None),
            Phase::Queued(q) => match &q.offer {
                Some(o) => (CallState::Ringing, Some(o.agent.as_str())),
                None => (CallState::Queued, None),
            },
            Phase::Bridged(b) if b.transfer.is_some() => {
                (CallState::Transferring, Some(b.agent.as_str()))
            }
            Phase::Bridged(b) if b.consult.is_some() => {
                (CallState::Consulting, Some(b.agent.as_str()))
            }
            Phase::Bridged(b) => (CallState::OnCall, Some(b.agent.as_str())),
            Phase::Ended => (CallState::Ended, None),
        };
        CallView {
            state,
            language: self.language(),
            queue: self.queue.as_ref().map(|(q, _)| q.as_str()),
            priority: self.queue.as_ref().map(|(_, p)| *p),
            agent,
            fields: self.ivr.as_ref().map(IvrCall::fields),
        }
    }

    // ---------------------------------------------------------- helpers

    fn emit(&mut self, a: CallAction) {
        self.actions.push_back(a);
    }

    fn count(&mut self, c: CallCount) {
        self.emit(CallAction::Count(c));
    }

    fn ask_acd(&mut self, r: AcdRequest) {
        self.emit(CallAction::Acd(r));
    }

    /// Play to the caller, replacing what plays (a new token).
    fn play(&mut self, prompts: Vec<String>) {
        self.token += 1;
        let language = self.language().to_string();
        self.emit(CallAction::Play {
            language,
            prompts,
            token: self.token,
        });
    }

    fn append(&mut self, prompts: Vec<String>) {
        let language = self.language().to_string();
        self.emit(CallAction::Append { language, prompts });
    }

    /// Say these prompts, then end the call.
    fn leave_after(&mut self, prompts: Vec<String>, append: bool) {
        self.leaving = true;
        self.emit(CallAction::HoldMusic(false));
        if append {
            self.append(prompts);
        } else {
            self.play(prompts);
        }
    }

    fn caller_end_for(&self, status: u16) -> CallerEnd {
        if self.answered {
            CallerEnd::Bye
        } else {
            CallerEnd::Reject(status)
        }
    }

    fn hang_up_leg(&mut self, leg: AgentLegRef) {
        if self.legs.remove(&leg) {
            self.emit(CallAction::HangUpAgent { leg });
        }
    }

    /// Hang up every leg of offer `no` but `keep`.
    fn hang_up_offer(&mut self, no: u32, keep: Option<AgentLegRef>) {
        let legs: Vec<AgentLegRef> = self
            .legs
            .iter()
            .copied()
            .filter(|l| l.offer == no && Some(*l) != keep)
            .collect();
        for leg in legs {
            self.hang_up_leg(leg);
        }
    }

    /// The one way a call ends: every leg hung up, the ACD told once, the
    /// line released once, the outcome reported last.
    fn end(&mut self, outcome: CallOutcome, caller: CallerEnd) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        self.record_end(outcome);
        self.end_consultation_with_call();
        self.leave_hold(self.now);
        let legs: Vec<AgentLegRef> = self.legs.iter().copied().collect();
        for leg in legs {
            self.hang_up_leg(leg);
        }
        match caller {
            CallerEnd::Gone => {}
            CallerEnd::Bye => self.emit(CallAction::HangUpCaller),
            CallerEnd::Reject(status) => self.emit(CallAction::Reject { status }),
        }
        if std::mem::take(&mut self.in_acd) {
            self.ask_acd(AcdRequest::CallerGone);
        }
        if std::mem::take(&mut self.holds_line) {
            self.emit(CallAction::ReleaseLine);
        }
        self.phase = Phase::Ended;
        self.timers = [None; 4];
        self.emit(CallAction::Finished { outcome });
    }

    /// Mirror the sub-cores' deadlines into the timer table.
    fn sync_timers(&mut self) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        self.timers[Timer::Ivr as usize] = self.ivr.as_ref().and_then(IvrCall::poll_timeout);
        self.timers[Timer::Keypad as usize] = match self.phase {
            Phase::Bridged(_) => [self.keypad.deadline(), self.consult_keypad_deadline()]
                .into_iter()
                .flatten()
                .min(),
            _ => None,
        };
    }

    fn fire(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Answer => self.answer(now),
            Timer::Ack => {
                tracing::info!("our 200 OK was never ACKed: ending the call");
                self.end(CallOutcome::Timeout, CallerEnd::Bye);
            }
            Timer::Ivr => {
                if let Some(ivr) = self.ivr.as_mut() {
                    ivr.handle_timeout(now);
                }
                self.drain_ivr();
            }
            Timer::Keypad => {
                let action = self.keypad.on_timeout(now);
                self.on_keypad(action);
                self.consult_keypad_timeout(now);
            }
        }
    }

    // ------------------------------------------------- arrival, answer

    /// What the dialed number is: an agent's feature code, a menu, a
    /// queue's own number, or nothing we serve (404).
    fn route(&mut self, now: Instant) {
        let config = &self.settings.config;
        let dialed = self.arrival.dialed.as_str();
        let feature = config.features.feature_of(dialed);
        if let (Some(agent), Some(feature)) = (self.arrival.agent.clone(), feature) {
            let menu = match feature {
                Feature::Ready => "agent_available",
                Feature::Pause => "agent_paused",
                Feature::Logout => "agent_logged_out",
            };
            self.phase = Phase::Feature { menu };
            return self.ask_acd(AcdRequest::Feature { agent, feature });
        }
        if let Some(menu) = config.numbers.get(dialed).cloned() {
            let script = Arc::clone(&self.settings.ivr);
            return self.take(now, script, &menu, true);
        }
        if let Some(queue) = config.queue_by_number(dialed).map(str::to_string) {
            self.direct_queue = Some(queue);
            let script = Arc::clone(&self.settings.feature_ivr);
            return self.take(now, script, DIRECT_QUEUE_MENU, true);
        }
        self.end(CallOutcome::NotFound, CallerEnd::Reject(404));
    }

    fn feature_applied(&mut self, now: Instant, known: bool) {
        let Phase::Feature { menu } = self.phase else {
            return;
        };
        if !known {
            return self.end(CallOutcome::NotFound, CallerEnd::Reject(404));
        }
        let script = Arc::clone(&self.settings.feature_ivr);
        self.take(now, script, menu, false);
    }

    /// The call is ours: set up its IVR, negotiate, open its ticket (a
    /// support number's call), ring or answer.
    fn take(&mut self, now: Instant, script: Arc<IvrScript>, menu: &str, ticketed: bool) {
        let language = self.settings.config.default_language.clone();
        match IvrCall::new(script, menu, &language, now) {
            Ok(ivr) => self.ivr = Some(ivr),
            Err(e) => {
                tracing::error!(error = %e, "IVR entry menu missing");
                return self.end(CallOutcome::Failed, CallerEnd::Reject(500));
            }
        }
        if self.arrival.rtp_port.is_none() {
            tracing::warn!("no RTP port free");
            return self.end(CallOutcome::Unavailable, CallerEnd::Reject(503));
        }
        if let Some(offer) = &self.arrival.offer {
            match sdp::parse_offer(offer).and_then(|o| sdp::negotiate(&o)) {
                Ok(n) => self.media = Some(n),
                Err(e) => {
                    tracing::debug!(error = %e, "SDP offer refused");
                    return self.end(CallOutcome::NoCodec, CallerEnd::Reject(e.sip_status()));
                }
            }
        }
        if ticketed {
            return self.open_ticket();
        }
        self.ring_or_answer(now);
    }

    fn ring_or_answer(&mut self, now: Instant) {
        let ring = self.settings.config.answer_after_ms;
        if ring > 0 {
            self.phase = Phase::Ringing;
            self.emit(CallAction::Ring);
            let delay = Duration::from_millis(u64::from(ring));
            self.timers[Timer::Answer as usize] = now.checked_add(delay);
        } else {
            self.answer(now);
        }
    }

    /// 200 OK: with our answer (and media starts now), or with our offer
    /// (media starts with the ACK's answer).
    fn answer(&mut self, now: Instant) {
        let ip = self.arrival.local_ip;
        let port = self.arrival.rtp_port.unwrap_or_default();
        let session = self.sdp.session.id;
        let local = match &self.media {
            Some(n) => {
                self.sdp.answered(n);
                sdp::build_answer(ip, port, n, session)
            }
            None => sdp::build_offer(ip, port, session),
        };
        self.answered = true;
        self.emit(CallAction::Answer { sdp: local });
        self.timers[Timer::Ack as usize] = now.checked_add(self.settings.ack_timeout);
        match self.media.clone() {
            Some(remote) => {
                self.emit(CallAction::StartCallerMedia { remote });
                self.begin(now);
            }
            None => self.phase = Phase::AwaitingAck,
        }
    }

    fn confirmed(&mut self, now: Instant, ack_body: Option<Vec<u8>>) {
        self.timers[Timer::Ack as usize] = None;
        if self.confirmed {
            return;
        }
        self.confirmed = true;
        if !matches!(self.phase, Phase::AwaitingAck) {
            return;
        }
        let answer = match ack_body {
            Some(b) => sdp::parse_answer(&b),
            None => Err(sdp::SdpError::Malformed("no SDP answer in the ACK".into())),
        };
        match answer {
            Ok(n) => {
                self.media = Some(n.clone());
                self.emit(CallAction::StartCallerMedia { remote: n });
                self.begin(now);
            }
            Err(e) => {
                tracing::debug!(error = %e, "no usable SDP answer in the ACK");
                self.end(CallOutcome::NoCodec, CallerEnd::Bye);
            }
        }
    }

    fn media_failed(&mut self) {
        let outcome = if self.arrival.offer.is_some() {
            CallOutcome::Failed
        } else {
            CallOutcome::NoCodec
        };
        self.end(outcome, CallerEnd::Bye);
    }

    /// Media is up: the IVR starts, or the caller who dialed a queue's own
    /// number goes straight into it (hold music, no menu).
    fn begin(&mut self, now: Instant) {
        self.phase = Phase::Ivr;
        match self.direct_queue.clone() {
            Some(q) => self.enter_queue(q, DIRECT_PRIORITY, None),
            None => {
                if let Some(ivr) = self.ivr.as_mut() {
                    ivr.handle_event(now, IvrEvent::Answered);
                }
                self.drain_ivr();
            }
        }
    }

    fn caller_ended(&mut self, end: LegEnd) {
        let outcome = match end {
            LegEnd::CallerBye => CallOutcome::CallerHangup,
            LegEnd::Cancelled => CallOutcome::Cancelled,
            LegEnd::OurBye => CallOutcome::IvrHangup,
            LegEnd::Timeout => CallOutcome::Timeout,
            LegEnd::Other(_) => CallOutcome::Failed,
        };
        self.end(outcome, CallerEnd::Gone);
    }

    // -------------------------------------------------- caller's media

    fn info(&mut self, now: Instant, req: ReqId, content_type: &str, body: &[u8]) {
        match parse_info_body(content_type, body) {
            Ok(digit) => {
                self.emit(CallAction::ReplyInfo { req, status: 200 });
                if self.on_hold() {
                    // On hold: the agent does not hear the caller's keys.
                    self.count(CallCount::Digit(DigitSource::Info));
                } else if matches!(self.phase, Phase::Bridged(_)) {
                    // Talking to an agent: the key goes on to the agent.
                    self.emit(CallAction::SendDigitToAgent(digit));
                } else {
                    self.caller_digit(now, digit, DigitSource::Info);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "INFO refused");
                self.emit(CallAction::ReplyInfo { req, status: 415 });
            }
        }
    }

    /// A re-INVITE or UPDATE: keep the codec, follow a new address; a
    /// refresh that changes nothing is answered with the same version.
    fn reoffer(&mut self, req: ReqId, body: Option<&[u8]>, invite: bool) {
        let answer = self.reanswer(body, invite);
        self.emit(CallAction::ReplyReoffer { req, answer });
    }

    fn reanswer(&mut self, body: Option<&[u8]>, invite: bool) -> Result<Option<String>, u16> {
        let Some(current) = &self.media else {
            return Err(491);
        };
        let Some(body) = body else {
            // An UPDATE without SDP needs none back; a re-INVITE without
            // one gets our offer (the session as it stands).
            return Ok(invite.then(|| self.sdp.offer(current)));
        };
        let remote = sdp::parse_offer(body).map_err(|e| e.sip_status())?;
        let n = sdp::negotiate_with(&remote, &[current.codec]).map_err(|e| e.sip_status())?;
        if n.may_send() || !n.remote_rtp.ip().is_unspecified() {
            self.emit(CallAction::SetCallerPeer { peer: n.remote_rtp });
        }
        let answer = self.sdp.answer(&n);
        self.caller_holds(n.remote_hold);
        Ok(Some(answer))
    }

    fn caller_digit(&mut self, now: Instant, digit: char, source: DigitSource) {
        self.count(CallCount::Digit(source));
        tracing::debug!(%digit, source = source.as_str(), "digit");
        if matches!(self.phase, Phase::Bridged(_)) {
            return;
        }
        if matches!(self.phase, Phase::Ivr) && !self.leaving {
            self.record_key(digit);
        }
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.handle_event(now, IvrEvent::Digit(digit));
        }
        self.drain_ivr();
        // While waiting in a queue, 9 asks to keep the place for a callback.
        if digit == '9' && !self.leaving {
            self.ask_callback_while_queued();
        }
    }

    fn playback_finished(&mut self, now: Instant, token: u64) {
        if token != self.token {
            return;
        }
        if self.leaving {
            return self.end(CallOutcome::IvrHangup, CallerEnd::Bye);
        }
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.handle_event(now, IvrEvent::PlaybackFinished);
        }
        self.drain_ivr();
    }
}

/// The caller's From user at `source` (never a host name from the message);
/// `caller` if the user part is missing or odd.
pub fn callback_contact(from_uri: &str, source: SocketAddr) -> String {
    let user = from_uri
        .split_once("sip:")
        .map(|(_, r)| r)
        .and_then(|r| r.split(['@', '>', ';']).next())
        .filter(|u| {
            !u.is_empty()
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_.".contains(c))
        })
        .unwrap_or("caller");
    format!("sip:{user}@{source}")
}
