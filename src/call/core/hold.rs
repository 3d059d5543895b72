//! Hold, resume and session refreshes on a bridged call: part of
//! [`CallCore`], sans-IO like the rest of it.
//!
//! A re-INVITE or UPDATE on either leg gets a proper answer: hold as
//! `a=sendonly`, `a=inactive` or the old `c=0.0.0.0` form, resume as
//! `a=sendrecv`, a new address followed, a refresh that changes nothing
//! answered with the same SDP version (RFC 3264 §8), an offerless re-INVITE
//! answered with our offer. While the agent holds, neither side hears the
//! other and the caller hears the hold music; its keys reach the agent again
//! once resumed, not meanwhile.
//!
//! The caller's own hold is mirrored: a re-INVITE of ours tells the agent's
//! phone (`a=sendonly`, then `a=sendrecv` on resume), so that it shows the
//! call held. While that re-INVITE waits for its answer, an offer from the
//! agent's phone is glare and gets 491 (RFC 3261 §14.2); the phone retries.

use super::{Bridge, CallCore, Phase};
use crate::call::AgentLegRef;
use crate::call::{CallAction, CallCount, ReqId, SdpSession};
use crate::media::sdp::{self, Direction, Negotiated};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The call's holds, for its ticket: how many, for how long in all, the
/// longest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HoldStats {
    pub count: u32,
    pub total: Duration,
    pub longest: Duration,
}

impl HoldStats {
    fn add(&mut self, held: Duration) {
        self.total += held;
        self.longest = self.longest.max(held);
    }
}

/// The caller's own hold, as the agent's phone knows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mirror {
    /// The caller's phone holds (its last offer said so).
    caller_held: bool,
    /// The agent's phone holds (its last offer said so).
    agent_phone_held: bool,
    /// What the agent's phone was last told: the caller holds.
    told: bool,
    /// Our re-INVITE to the agent's phone waits for its answer.
    pending: bool,
}

impl Mirror {
    /// Our direction towards the agent's phone: we send unless the caller
    /// holds, we hear it unless it holds.
    fn direction(&self) -> Direction {
        match (self.caller_held, self.agent_phone_held) {
            (false, false) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (true, true) => Direction::Inactive,
        }
    }
}

/// Whose phone holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Caller,
    Agent,
}

/// What our SDP states on a leg (besides the address): a new answer that
/// states the same is a refresh and keeps the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stated {
    direction: Direction,
    pt: u8,
    dtmf_pt: Option<u8>,
}

impl Stated {
    fn of(n: &Negotiated) -> Stated {
        Stated {
            direction: n.direction,
            pt: n.pt,
            dtmf_pt: n.dtmf_pt,
        }
    }
}

/// Our side of one leg's SDP: our RTP address on it, its session (id and
/// version), and what we last stated.
#[derive(Debug, Clone)]
pub struct LegSdp {
    pub local: SocketAddr,
    pub session: SdpSession,
    last: Option<Stated>,
}

impl LegSdp {
    pub fn new(local: SocketAddr, session: SdpSession) -> LegSdp {
        LegSdp {
            local,
            session,
            last: None,
        }
    }

    /// The leg we offered `codec` on, sendrecv (an agent's).
    pub fn offered(local: SocketAddr, session: SdpSession, codec: &Negotiated) -> LegSdp {
        let mut stated = Stated::of(codec);
        stated.direction = Direction::SendRecv;
        LegSdp {
            local,
            session,
            last: Some(stated),
        }
    }

    /// Our first answer stated `n`.
    pub fn answered(&mut self, n: &Negotiated) {
        self.last = Some(Stated::of(n));
    }

    /// Our answer to a new offer negotiated into `n`: the same version if
    /// it states what we stated last, the next one if not.
    pub fn answer(&mut self, n: &Negotiated) -> String {
        let stated = Stated::of(n);
        if self.last != Some(stated) {
            self.session.next_version();
            self.last = Some(stated);
        }
        let v = self.session.version;
        sdp::build_reanswer(self.local.ip(), self.local.port(), n, self.session.id, v)
    }

    /// Our offer for an offerless re-INVITE: the session as it stands.
    pub fn offer(&mut self, current: &Negotiated) -> String {
        let direction = self.last.map_or(Direction::SendRecv, |l| l.direction);
        self.offer_with(current, direction)
    }

    /// Our offer of the session as it stands, in `direction`.
    pub fn offer_with(&mut self, current: &Negotiated, direction: Direction) -> String {
        let mut ours = current.clone();
        ours.media_lines.clear();
        ours.direction = direction;
        self.answer(&ours)
    }
}

impl CallCore {
    /// A re-INVITE or UPDATE from the bridged agent's phone.
    pub(super) fn agent_reoffer(
        &mut self,
        now: Instant,
        leg: AgentLegRef,
        req: ReqId,
        body: Option<&[u8]>,
        invite: bool,
    ) {
        let answer = self.agent_reanswer(now, leg, body, invite);
        self.emit(CallAction::ReplyReoffer { req, answer });
    }

    fn agent_reanswer(
        &mut self,
        now: Instant,
        leg: AgentLegRef,
        body: Option<&[u8]>,
        invite: bool,
    ) -> Result<Option<String>, u16> {
        let Phase::Bridged(b) = &mut self.phase else {
            return Err(481);
        };
        if b.leg != leg {
            return Err(481);
        }
        if b.mirror.pending {
            // Glare: our own re-INVITE to this phone is unanswered.
            return Err(491);
        }
        let Some(body) = body else {
            return Ok(invite.then(|| b.agent_sdp.offer(&b.agent_media)));
        };
        let remote = sdp::parse_offer(body).map_err(|e| e.sip_status())?;
        let n = sdp::negotiate_with(&remote, &[b.agent_media.codec]).map_err(|e| e.sip_status())?;
        let answer = b.agent_sdp.answer(&n);
        let moved = !n.remote_rtp.ip().is_unspecified()
            && n.remote_rtp.port() != 0
            && n.remote_rtp != b.agent_media.remote_rtp;
        let (hold, peer) = (n.remote_hold, n.remote_rtp);
        b.mirror.agent_phone_held = hold;
        let kept = b.agent_media.remote_rtp;
        b.agent_media = n;
        if !moved {
            b.agent_media.remote_rtp = kept;
        } else {
            self.emit(CallAction::SetAgentPeer { peer });
        }
        if self.consulting_on_agent_leg() {
            // The agent's leg carries a consultation from the keypad: the
            // caller stays on hold until it is over.
        } else if hold {
            self.start_hold(now);
        } else {
            self.end_hold(now);
        }
        Ok(Some(answer))
    }

    /// The caller's phone held (or resumed) with its re-INVITE: tell the
    /// agent's phone, once no re-INVITE of ours is pending.
    pub(super) fn caller_holds(&mut self, held: bool) {
        let Some(b) = self.bridge_mut() else { return };
        if b.mirror.caller_held != held {
            tracing::info!(held, "the caller's phone holds");
        }
        b.mirror.caller_held = held;
        self.mirror_hold();
    }

    fn mirror_hold(&mut self) {
        let Some(b) = self.bridge_mut() else { return };
        let m = &mut b.mirror;
        if m.pending || m.told == m.caller_held {
            return;
        }
        m.pending = true;
        m.told = m.caller_held;
        let direction = m.direction();
        let sdp = b.agent_sdp.offer_with(&b.agent_media, direction);
        let leg = b.leg;
        self.emit(CallAction::ReofferAgent { leg, sdp });
    }

    /// The agent's phone answered our re-INVITE (or it failed): a new
    /// address is followed, and a hold change meanwhile is told next.
    pub(super) fn agent_reoffer_answered(
        &mut self,
        leg: AgentLegRef,
        answer: Result<Vec<u8>, u16>,
    ) {
        let Some(b) = self.bridge_mut().filter(|b| b.leg == leg) else {
            return;
        };
        b.mirror.pending = false;
        match answer.map(|body| sdp::parse_answer(&body)) {
            Ok(Ok(n)) => {
                let moved = !n.remote_rtp.ip().is_unspecified()
                    && n.remote_rtp.port() != 0
                    && n.remote_rtp != b.agent_media.remote_rtp;
                if moved {
                    b.agent_media.remote_rtp = n.remote_rtp;
                    let peer = n.remote_rtp;
                    self.emit(CallAction::SetAgentPeer { peer });
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the agent's phone answered our re-INVITE without usable SDP")
            }
            Err(status) => tracing::info!(status, "the agent's phone refused our re-INVITE"),
        }
        self.mirror_hold();
    }

    fn bridge_mut(&mut self) -> Option<&mut Bridge> {
        match &mut self.phase {
            Phase::Bridged(b) => Some(b),
            _ => None,
        }
    }

    /// The agent holds: the caller hears the hold music.
    pub(super) fn start_hold(&mut self, now: Instant) {
        let Some(b) = self.bridge_mut() else { return };
        if b.held_since.is_some() {
            return;
        }
        b.held_since = Some(now);
        // A prompt playing to the agent alone ends first.
        if b.to_agent.take().is_some() {
            self.emit(CallAction::ResumeBridge);
        }
        self.holds.count += 1;
        tracing::info!("the agent holds the caller");
        self.emit(CallAction::HoldCaller);
        self.emit(CallAction::HoldMusic(true));
        self.count(CallCount::OnHold(true));
    }

    /// The agent resumes: bridged both ways again.
    pub(super) fn end_hold(&mut self, now: Instant) {
        if self.leave_hold(now) {
            tracing::info!("the agent resumes the call");
            self.emit(CallAction::HoldMusic(false));
            self.emit(CallAction::ResumeCaller);
        }
    }

    /// The hold is over (resumed, transferred, or the call ended): its time
    /// is counted. Whether the caller was on hold.
    pub(super) fn leave_hold(&mut self, now: Instant) -> bool {
        let Some(since) = self.bridge_mut().and_then(|b| b.held_since.take()) else {
            return false;
        };
        self.holds.add(now.saturating_duration_since(since));
        self.count(CallCount::OnHold(false));
        true
    }

    /// Whether that phone's last offer on the bridged call was a hold (it
    /// may send no RTP meanwhile: `a=inactive`, `c=0.0.0.0`).
    pub(super) fn phone_holds(&self, who: Holder) -> bool {
        match &self.phase {
            Phase::Bridged(b) => match who {
                Holder::Caller => b.mirror.caller_held,
                Holder::Agent => b.mirror.agent_phone_held,
            },
            _ => false,
        }
    }

    /// Whether the agent holds the caller now.
    pub(super) fn on_hold(&self) -> bool {
        matches!(&self.phase, Phase::Bridged(b) if b.held_since.is_some())
    }

    /// The call's holds so far.
    pub fn hold_stats(&self) -> HoldStats {
        self.holds
    }
}
