//! One call's life: the caller's SIP leg, its media, its IVR session, its
//! time in a queue, the agent's legs it rings and the bridge it ends in.
//!
//! - `core.rs` — [`CallCore`], the call as a sans-IO state machine: it takes
//!   [`CallEvent`]s with `now`, and hands back [`CallAction`]s and the next
//!   deadline. It decides everything (what to play, whom to ring, when a
//!   transfer tears the agent's leg down) and touches nothing.
//! - `driver.rs` — the tokio task per call: it turns SIP, media, ACD and
//!   timer events into `CallEvent`s and carries out the `CallAction`s.
//! - `keypad.rs` — the agent's in-call feature code (sans-IO).
//! - `callback.rs` — a callback whose turn has come: the agent, then the
//!   customer, bridged.
//!
//! This file holds the vocabulary the core and its driver share.

pub mod callback;
mod core;
pub mod driver;
pub mod keypad;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use self::core::{Arrival, CallCore, CallSettings, CallState, CallView};
pub use driver::{feature_script, CallContext, Calls, QUEUE_PROMPTS};

use crate::acd::driver::{Feature, QueueNews};
use crate::acd::{CallId, OfferFailReason, TransferTarget};
use crate::media::dtmf::DigitSource;
use crate::media::sdp::Negotiated;
use crate::metrics::CallOutcome;
use crate::sip::{AgentTarget, LegEnd};
use std::net::SocketAddr;

/// One leg of a call: the caller's, the legs of an offer to an agent, or
/// the two legs of a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId {
    pub call: CallId,
    pub role: LegRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegRole {
    Caller,
    /// The `offer`-th offer of this call to an agent (all of the agent's
    /// phones ring with the same offer).
    Agent {
        offer: u32,
    },
    CallbackAgent,
    CallbackCustomer,
    /// The agent's own consultation call (its phone's second call).
    Consult,
}

/// A leg's SDP session (RFC 4566 `o=`): its id, fixed for the leg's life,
/// and its version, which goes up with each new answer (RFC 3264 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpSession {
    pub id: u64,
    pub version: u64,
}

impl SdpSession {
    /// Each leg of a call gets its own session: the call's number in the
    /// high bits, the leg's role in the low 20.
    pub fn for_leg(leg: LegId) -> SdpSession {
        let role = match leg.role {
            LegRole::Caller => 0,
            LegRole::CallbackAgent => 1,
            LegRole::CallbackCustomer => 2,
            LegRole::Agent { offer } => 3 + u64::from(offer % 0xf_fff0),
            LegRole::Consult => 0xf_ffff,
        };
        let id = (leg.call.0 << 20) | role;
        SdpSession { id, version: id }
    }

    /// The version of the next answer in this session.
    pub fn next_version(&mut self) -> u64 {
        self.version = self.version.wrapping_add(1);
        self.version
    }
}

/// One of the agent's phones rung for an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentLegRef {
    pub offer: u32,
    /// Which of the agent's registered contacts.
    pub contact: u16,
}

/// An in-dialog request waiting for the core's answer (INFO, re-INVITE,
/// REFER); the driver keeps the transaction under this number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReqId(pub u64);

pub use crate::metrics::{ConsultResult, KeypadResult, TransferHow, TransferResult};

/// Something to count (the driver holds the metric handles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCount {
    Digit(DigitSource),
    MenuEntered(String),
    QueueRequested(String),
    CallbackRequested(String),
    KeypadTransfer(KeypadResult),
    /// The caller went on hold (`true`) or came off it.
    OnHold(bool),
    Transfer {
        how: TransferHow,
        to_agent: bool,
        result: TransferResult,
    },
    Consultation {
        to_agent: bool,
        result: ConsultResult,
    },
}

/// Where the consulting agent talks during a consultation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Its leg of the call (a consultation from the keypad).
    Agent,
    /// The second call its phone placed (its own consultation call).
    Consult,
}

/// What a dialog named in a REFER's `Replaces` is, among the call's legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The agent's consultation call.
    ConsultLeg,
    /// One of the agent legs this call rang.
    AgentLeg(AgentLegRef),
    /// No leg of this call.
    Unknown,
}

/// A sound looped under a leg's prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    HoldMusic,
    /// The ringing tone (a colleague's phone rings).
    Ringback,
}

/// A consultation's SIP and media work, for the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsultAction {
    /// 180 Ringing on the agent's consultation call.
    Ring,
    /// 200 OK with our SDP answer on the consultation call.
    Answer { sdp: String },
    /// A final error response to the consultation call's INVITE.
    Reject { status: u16 },
    /// BYE the answered consultation call.
    HangUp,
    /// NOTIFY the consultation call `SIP/2.0 200 OK` (its REFER is done),
    /// then BYE it.
    TransferDone,
    /// NOTIFY the consultation call that its REFER failed (`status`).
    TransferFailed { status: u16 },
    /// Start the consultation call's media towards `remote`; it hears the
    /// media clock (prompts, music) until bridged. Fails with
    /// [`CallEvent::ConsultMediaFailed`].
    StartMedia { remote: Negotiated },
    /// The agent's leg of the call leaves the held caller and hears the
    /// media clock (a consultation from the keypad).
    AgentToClock,
    /// Play to the consulting side, replacing what plays.
    Play {
        side: Side,
        language: String,
        prompts: Vec<String>,
        token: u64,
    },
    /// Play after what plays on the consulting side.
    Append {
        side: Side,
        language: String,
        prompts: Vec<String>,
    },
    /// Loop this under the consulting side's prompts.
    Background { side: Side, sound: Background },
    /// Start the colleague leg's media on its offer's port and bridge it
    /// with `side`; answered with [`CallEvent::ColleagueBridged`] or
    /// [`CallEvent::ColleagueBridgeFailed`].
    Bridge {
        leg: AgentLegRef,
        remote: Negotiated,
        side: Side,
    },
    /// A key of the agent's, from its consultation call on to the colleague.
    SendDigit(char),
    /// The consultation call's RTP goes to a new address (its re-INVITE).
    SetPeer { peer: SocketAddr },
    /// The colleague's RTP goes to a new address (its re-INVITE).
    SetColleaguePeer { peer: SocketAddr },
    /// The colleague's media goes (the consultation ended without a
    /// hand-over).
    DropColleague,
    /// Caller and the agent's leg of the call bridged again, afresh (a
    /// consultation from the keypad is over).
    Rejoin,
    /// Caller and colleague bridged: the colleague's leg is the call's
    /// agent leg from now on; the consulting agent's media go.
    HandOver,
}

/// What the call asks of the ACD (the switchboard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdRequest {
    /// An agent's feature code; answered with [`CallEvent::FeatureApplied`].
    Feature {
        agent: String,
        feature: Feature,
    },
    Enqueue {
        queue: String,
        priority: u8,
        ticket: Option<String>,
    },
    /// Keep the caller's place and call it back at `target`; answered with
    /// `QueueNews::CallbackHeld` (or `CallbackRefused`).
    RequestCallback {
        queue: String,
        priority: u8,
        ticket: Option<String>,
        target: AgentTarget,
    },
    AgentAnswered {
        agent: String,
    },
    OfferFailed {
        agent: String,
        reason: OfferFailReason,
    },
    /// Answered with `QueueNews::Transferred` or `TransferRejected`.
    Transfer {
        to: TransferTarget,
    },
    /// The call is over (sent once, if the call ever reached the ACD).
    CallerGone,
    /// The agent's phone vanished (no RTP): the caller is back in the queue.
    AgentLost,
    /// The agent consults `to` before handing the caller over; the news
    /// come as `QueueNews::Consult`.
    Consult {
        to: TransferTarget,
    },
    /// The consulted colleague's phone answered.
    ConsultAnswered {
        agent: String,
    },
    ConsultOfferFailed {
        agent: String,
        reason: OfferFailReason,
    },
    /// Hand the caller over to the colleague; answered with
    /// `ConsultNews::Completed` or `CompletionRefused`.
    CompleteConsult,
    /// The consultation is over without a hand-over.
    ConsultGone,
}

/// What happened to the call, reported to its core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// The agent's desk asks to move the caller on (a re-queue that comes
    /// with an escalation).
    DeskTransfer {
        to: crate::acd::TransferTarget,
    },
    /// The ACD applied the agent's feature code (`known`: the agent exists).
    FeatureApplied {
        known: bool,
    },
    /// The 200 OK could not be sent.
    AnswerFailed,
    /// The caller's media could not start (no socket).
    CallerMediaFailed,
    /// The ACK came; its body is the SDP answer when we made the offer.
    CallerConfirmed {
        ack_body: Option<Vec<u8>>,
    },
    /// A SIP INFO (DTMF relay) to answer with [`CallAction::ReplyInfo`].
    CallerInfo {
        req: ReqId,
        content_type: String,
        body: Vec<u8>,
    },
    /// A re-INVITE or UPDATE to answer with [`CallAction::ReplyReoffer`].
    CallerReoffer {
        req: ReqId,
        sdp: Option<Vec<u8>>,
        /// A re-INVITE (an empty one wants our offer), not an UPDATE.
        invite: bool,
    },
    CallerEnded(LegEnd),
    CallerDigit {
        digit: char,
        source: DigitSource,
    },
    CallerPlaybackFinished {
        token: u64,
    },
    CallerRtpTimeout,
    /// What the ACD says about this call.
    Acd(QueueNews),
    /// [`CallAction::RingAgent`] placed `contacts` legs (0: none could be).
    OfferRung {
        offer: u32,
        contacts: u16,
    },
    AgentAnswered {
        leg: AgentLegRef,
        sdp: Vec<u8>,
    },
    AgentFailed {
        leg: AgentLegRef,
        status: u16,
    },
    /// [`CallAction::BridgeAgent`] is done: caller and agent hear each
    /// other; `local` is our RTP address on the agent's leg.
    AgentBridged {
        leg: AgentLegRef,
        local: SocketAddr,
    },
    /// [`CallAction::BridgeAgent`] failed (no media for the agent's leg).
    AgentBridgeFailed {
        leg: AgentLegRef,
    },
    /// The bridged agent's phone asks to transfer the caller (REFER); with
    /// `replaces`, an attended transfer naming that dialog.
    AgentRefer {
        leg: AgentLegRef,
        req: ReqId,
        target: String,
        replaces: Option<Replaced>,
    },
    /// A re-INVITE or UPDATE from the bridged agent's phone (hold, resume,
    /// a new address, a refresh): answer it with [`CallAction::ReplyReoffer`].
    AgentReoffer {
        leg: AgentLegRef,
        req: ReqId,
        sdp: Option<Vec<u8>>,
        invite: bool,
    },
    /// The agent's phone answered our re-INVITE ([`CallAction::ReofferAgent`]):
    /// its SDP, or the error status (0: no answer at all).
    AgentReofferAnswered {
        leg: AgentLegRef,
        answer: Result<Vec<u8>, u16>,
    },
    /// An answered agent leg ended (the agent's BYE, or ours).
    AgentEnded {
        leg: AgentLegRef,
    },
    AgentDigit {
        digit: char,
        source: DigitSource,
    },
    AgentPlaybackFinished {
        token: u64,
    },
    AgentRtpTimeout,
    /// The controller is stopping.
    Shutdown,
    /// The bridged agent's phone called a colleague or a queue (a second
    /// call, while this one is on hold): its consultation call. The driver
    /// holds its SIP leg and set `rtp_port` aside for it.
    ConsultCall(ConsultCall),
    ConsultInfo {
        req: ReqId,
        content_type: String,
        body: Vec<u8>,
    },
    ConsultReoffer {
        req: ReqId,
        sdp: Option<Vec<u8>>,
        invite: bool,
    },
    /// A REFER on the consultation call; with `replaces`, an attended
    /// transfer naming that dialog.
    ConsultRefer {
        req: ReqId,
        replaces: Option<Replaced>,
    },
    /// A REFER on the caller's own leg (callers do not transfer).
    CallerRefer {
        req: ReqId,
    },
    /// The consultation call ended (the agent hung it up, or it failed).
    ConsultEnded(LegEnd),
    ConsultDigit {
        digit: char,
        source: DigitSource,
    },
    ConsultPlaybackFinished {
        token: u64,
    },
    ConsultRtpTimeout,
    /// [`ConsultAction::StartMedia`] failed, or the 200 OK could not be sent.
    ConsultMediaFailed,
    /// [`ConsultAction::Bridge`] is done: the agent and its colleague hear
    /// each other; `local` is our RTP address on the colleague's leg.
    ColleagueBridged {
        leg: AgentLegRef,
        local: SocketAddr,
    },
    ColleagueBridgeFailed {
        leg: AgentLegRef,
    },
    ColleagueRtpTimeout,
    /// [`Record::Open`] is committed: the call's ticket.
    TicketOpened {
        ticket: crate::tickets::TicketNumber,
    },
    /// No ticket could be opened (the store is failing).
    TicketFailed,
    /// [`Record::Join`] is done: the ticket the call is on now (`None`:
    /// it stays on its own).
    TicketJoined {
        ticket: Option<crate::tickets::TicketNumber>,
    },
}

/// What the call writes to its ticket.
#[derive(Debug, Clone)]
pub enum Record {
    /// Open the call's ticket (before the call is answered); answered with
    /// [`CallEvent::TicketOpened`] or [`CallEvent::TicketFailed`].
    Open { language: String },
    /// A change of the call, and the logbook entry that says it.
    Change {
        change: Box<crate::tickets::CallChange>,
        entry: String,
    },
    /// The caller typed a ticket number: the call joins that ticket if it
    /// exists; answered with [`CallEvent::TicketJoined`].
    Join { typed: String },
}

impl PartialEq for Record {
    /// Records compare by what they say (tests).
    fn eq(&self, other: &Record) -> bool {
        match (self, other) {
            (Record::Open { language: a }, Record::Open { language: b }) => a == b,
            (Record::Change { entry: a, .. }, Record::Change { entry: b, .. }) => a == b,
            (Record::Join { typed: a }, Record::Join { typed: b }) => a == b,
            _ => false,
        }
    }
}

/// The agent's consultation call, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsultCall {
    /// The agent whose credentials it carried.
    pub agent: String,
    pub dialed: String,
    pub offer: Option<Vec<u8>>,
    /// Our address for its Contact and SDP.
    pub local_ip: std::net::IpAddr,
    /// The RTP port set aside for it (`None`: none was free).
    pub rtp_port: Option<u16>,
}

/// What the core asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    Acd(AcdRequest),
    /// A final error response to the caller's INVITE.
    Reject {
        status: u16,
    },
    /// 180 Ringing.
    Ring,
    /// 200 OK with this SDP (an answer, or our offer).
    Answer {
        sdp: String,
    },
    /// Start the caller's RTP towards `remote`.
    StartCallerMedia {
        remote: Negotiated,
    },
    /// BYE to the caller.
    HangUpCaller,
    ReplyInfo {
        req: ReqId,
        status: u16,
    },
    /// 200 with our SDP (if any), or the error status.
    ReplyReoffer {
        req: ReqId,
        answer: Result<Option<String>, u16>,
    },
    /// The caller's RTP goes to a new address (re-INVITE).
    SetCallerPeer {
        peer: SocketAddr,
    },
    /// Play to the caller, replacing what plays; `token` comes back in
    /// [`CallEvent::CallerPlaybackFinished`].
    Play {
        language: String,
        prompts: Vec<String>,
        token: u64,
    },
    /// Play after what is playing (the token stays).
    Append {
        language: String,
        prompts: Vec<String>,
    },
    StopPlayback,
    /// Hold music under the caller's prompts, or none.
    HoldMusic(bool),
    /// A key the caller sent by SIP INFO, on to the bridged agent.
    SendDigitToAgent(char),
    /// A key of the agent's, on to the caller.
    SendDigitToCaller(char),
    /// Ring every target with an offer in the caller's codec; answered with
    /// [`CallEvent::OfferRung`], then events per leg. `consulted_by`: a
    /// consultation from that agent (the phone is told).
    RingAgent {
        offer: u32,
        agent: String,
        targets: Vec<AgentTarget>,
        ticket: String,
        codec: Negotiated,
        consulted_by: Option<String>,
    },
    /// CANCEL a ringing agent leg, BYE an answered one.
    HangUpAgent {
        leg: AgentLegRef,
    },
    /// Start the agent leg's media on the offer's port and bridge it with
    /// the caller's; answered with `AgentBridged` or `AgentBridgeFailed`.
    BridgeAgent {
        leg: AgentLegRef,
        remote: Negotiated,
    },
    /// The caller leaves the bridge (prompts and music play to it again).
    Unbridge,
    /// The agent holds: neither side hears the other, the caller hears the
    /// hold music ([`CallAction::HoldMusic`] follows).
    HoldCaller,
    /// The agent resumes: bridged both ways again.
    ResumeCaller,
    /// Re-INVITE the agent's phone with our offer (the caller's hold,
    /// mirrored); answered with [`CallEvent::AgentReofferAnswered`].
    ReofferAgent {
        leg: AgentLegRef,
        sdp: String,
    },
    /// The agent's RTP goes to a new address (its re-INVITE).
    SetAgentPeer {
        peer: SocketAddr,
    },
    /// Play to the bridged agent only; the caller's audio to the agent is
    /// held back meanwhile. `token` comes back in `AgentPlaybackFinished`.
    PlayToAgent {
        language: String,
        prompts: Vec<String>,
        token: u64,
    },
    /// After [`CallAction::PlayToAgent`]: caller and agent hear each other again.
    ResumeBridge,
    ReplyRefer {
        req: ReqId,
        status: u16,
    },
    /// NOTIFY the transferring phone `SIP/2.0 200 OK`, then BYE it.
    TransferDone {
        leg: AgentLegRef,
    },
    /// NOTIFY the transferring phone that the transfer failed (`status`).
    TransferFailed {
        leg: AgentLegRef,
        status: u16,
    },
    Count(CallCount),
    /// The call's trunk line is free again (once, at its end).
    ReleaseLine,
    /// A consultation's SIP and media work.
    Consult(ConsultAction),
    /// Write to the call's ticket; the driver waits for the commit before
    /// it carries out the next action (what it records is never shown
    /// before it is kept).
    Record(Record),
    /// The call is over (the last action).
    Finished {
        outcome: CallOutcome,
    },
}
