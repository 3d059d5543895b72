//! The agent's own consultation call (its phone's second call): taken in
//! the caller's codec, answered when the colleague does (or at once for a
//! queue), its keys (the hand-over and return codes), its refreshes, and
//! the phone's attended transfer (REFER with `Replaces`).

use super::{followable, Completion, Consult, Over, PhoneLeg, Stage, Via};
use crate::call::core::{CallCore, Phase};
use crate::call::keypad::{Keypad, KeypadAction};
use crate::call::{
    AgentLegRef, CallAction, CallCount, ConsultAction, ConsultCall, LegId, LegRole, Replaced,
    ReqId, SdpSession,
};
use crate::media::dtmf::{info::parse_info_body, DigitSource};
use crate::media::sdp;
use crate::sip::LegEnd;
use std::net::SocketAddr;
use std::time::Instant;

use crate::call::core::hold::LegSdp;

impl CallCore {
    /// The agent's phone called a colleague or a queue while on this call.
    pub(in crate::call::core) fn consult_call(&mut self, c: ConsultCall) {
        let reject = |status| CallAction::Consult(ConsultAction::Reject { status });
        let (ours, busy) = match &self.phase {
            Phase::Bridged(b) => (b.agent == c.agent && !b.agent_gone, !self.may_consult()),
            _ => (false, true),
        };
        if !ours {
            return self.emit(reject(403));
        }
        if busy {
            return self.emit(reject(486));
        }
        let Some(to) = self.settings.config.transfer_target(&c.dialed) else {
            return self.emit(reject(404));
        };
        let (Some(caller), Some(port)) = (self.media.as_ref(), c.rtp_port) else {
            return self.emit(reject(503));
        };
        // Offerless INVITEs are not taken for a consultation: our offer
        // would have to wait for the ACK's answer before the bridge.
        let media = match c
            .offer
            .as_deref()
            .map(|o| sdp::parse_offer(o).and_then(|r| sdp::negotiate_with(&r, &[caller.codec])))
        {
            Some(Ok(n)) => n,
            Some(Err(e)) => return self.emit(reject(e.sip_status())),
            None => return self.emit(reject(488)),
        };
        tracing::info!(dialed = %crate::text::Untrusted(&c.dialed), "the agent's phone consults");
        let session = SdpSession::for_leg(LegId {
            call: self.id,
            role: LegRole::Consult,
        });
        let prefix = self.settings.config.features.transfer_prefix.clone();
        let leg = PhoneLeg {
            media,
            sdp: LegSdp::new(SocketAddr::new(c.local_ip, port), session),
            answered: false,
            keypad: Keypad::new(&prefix),
        };
        self.begin_consult(to, Via::Phone(Box::new(leg)));
    }

    /// Answer the consultation call (200 with our SDP) and start its media.
    pub(super) fn answer_consult_call(&mut self) {
        let Some(Consult {
            via: Via::Phone(p), ..
        }) = self.consult_mut()
        else {
            return;
        };
        if p.answered {
            return;
        }
        p.answered = true;
        p.sdp.answered(&p.media);
        let (ip, port) = (p.sdp.local.ip(), p.sdp.local.port());
        let sdp = sdp::build_answer(ip, port, &p.media, p.sdp.session.id);
        let remote = p.media.clone();
        self.emit_consult(ConsultAction::Answer { sdp });
        self.emit_consult(ConsultAction::StartMedia { remote });
    }

    // --------------------------------------- the agent's consultation call

    pub(in crate::call::core) fn consult_call_ended(&mut self, end: LegEnd) {
        if !matches!(self.consult().map(|c| &c.via), Some(Via::Phone(_))) {
            return;
        }
        tracing::info!(?end, "the agent's consultation call ended");
        // Gone already: nothing to hang up.
        self.consult_over_quietly(Over::Returned);
    }

    /// No RTP on the consultation call: over, unless the phone holds it
    /// (it switched back to its caller, and may send nothing meanwhile).
    pub(in crate::call::core) fn consult_call_rtp_timeout(&mut self) {
        match self.consult().map(|c| &c.via) {
            Some(Via::Phone(p)) if p.media.remote_hold => {
                tracing::debug!("no RTP on the consultation call, which the phone holds");
            }
            _ => self.consult_call_media_failed(),
        }
    }

    pub(in crate::call::core) fn consult_call_media_failed(&mut self) {
        if matches!(self.consult().map(|c| &c.via), Some(Via::Phone(_))) {
            tracing::info!("the agent's consultation call has no media");
            self.consult_over(Over::Failed);
        }
    }

    pub(in crate::call::core) fn consult_call_info(
        &mut self,
        now: Instant,
        req: ReqId,
        content_type: &str,
        body: &[u8],
    ) {
        match parse_info_body(content_type, body) {
            Ok(digit) => {
                self.emit(CallAction::ReplyInfo { req, status: 200 });
                self.consult_call_digit(now, digit, DigitSource::Info);
            }
            Err(_) => self.emit(CallAction::ReplyInfo { req, status: 415 }),
        }
    }

    /// A key the agent pressed on its consultation call.
    pub(in crate::call::core) fn consult_call_digit(
        &mut self,
        now: Instant,
        digit: char,
        source: DigitSource,
    ) {
        self.count(CallCount::Digit(source));
        let Some(Consult {
            via: Via::Phone(p), ..
        }) = self.consult_mut()
        else {
            return;
        };
        let action = p.keypad.on_key(now, digit);
        self.on_consult_keypad(action);
    }

    /// The consultation call's keypad deadline.
    pub(in crate::call::core) fn consult_keypad_deadline(&self) -> Option<Instant> {
        match self.consult().map(|c| &c.via) {
            Some(Via::Phone(p)) => p.keypad.deadline(),
            _ => None,
        }
    }

    pub(in crate::call::core) fn consult_keypad_timeout(&mut self, now: Instant) {
        let Some(Consult {
            via: Via::Phone(p), ..
        }) = self.consult_mut()
        else {
            return;
        };
        let action = p.keypad.on_timeout(now);
        self.on_consult_keypad(action);
    }

    pub(super) fn on_consult_keypad(&mut self, action: KeypadAction) {
        match action {
            KeypadAction::None | KeypadAction::Cancelled => {}
            KeypadAction::Pass(keys) => {
                for k in keys {
                    self.emit_consult(ConsultAction::SendDigit(k));
                }
            }
            KeypadAction::Transfer(code) => self.consult_code(&code),
        }
    }

    /// A feature code typed while consulting (on either side): the
    /// hand-over code, the hold code (back to the caller), or nothing
    /// that may be done now.
    pub(in crate::call::core) fn consult_code(&mut self, code: &str) {
        let features = &self.settings.config.features;
        if code == features.consult {
            return self.complete(Completion::Keypad);
        }
        if code == features.hold {
            tracing::info!("the agent goes back to its caller");
            return self.consult_over(Over::Returned);
        }
        tracing::info!(%code, "not a code while consulting");
        self.tell_consulting_agent(vec!["transfer_failed".into()]);
    }

    pub(in crate::call::core) fn consult_call_reoffer(
        &mut self,
        req: ReqId,
        body: Option<&[u8]>,
        invite: bool,
    ) {
        let answer = self.consult_call_reanswer(body, invite);
        self.emit(CallAction::ReplyReoffer { req, answer });
    }

    pub(super) fn consult_call_reanswer(
        &mut self,
        body: Option<&[u8]>,
        invite: bool,
    ) -> Result<Option<String>, u16> {
        let Some(Consult {
            via: Via::Phone(p), ..
        }) = self.consult_mut()
        else {
            return Err(481);
        };
        let Some(body) = body else {
            return Ok(invite.then(|| p.sdp.offer(&p.media)));
        };
        let remote = sdp::parse_offer(body).map_err(|e| e.sip_status())?;
        let n = sdp::negotiate_with(&remote, &[p.media.codec]).map_err(|e| e.sip_status())?;
        let answer = p.sdp.answer(&n);
        p.media.remote_hold = n.remote_hold;
        if followable(&n, p.media.remote_rtp) {
            p.media.remote_rtp = n.remote_rtp;
            let peer = n.remote_rtp;
            self.emit_consult(ConsultAction::SetPeer { peer });
        }
        Ok(Some(answer))
    }

    pub(in crate::call::core) fn consult_playback_finished(&mut self, token: u64) -> bool {
        let Some(c) = self.consult_mut() else {
            return false;
        };
        if c.token != Some(token) {
            return false;
        }
        c.token = None;
        true
    }

    /// Say `prompts` to the consulting agent.
    pub(super) fn tell_consulting_agent(&mut self, prompts: Vec<String>) {
        self.token += 1;
        let token = self.token;
        let language = self.language().to_string();
        let Some(c) = self.consult_mut() else { return };
        c.token = Some(token);
        let side = c.side();
        self.emit_consult(ConsultAction::Play {
            side,
            language,
            prompts,
            token,
        });
    }

    /// The phone's attended transfer: a REFER on the agent's leg whose
    /// `Replaces` names its consultation call.
    pub(in crate::call::core) fn refer_replaces(
        &mut self,
        leg: AgentLegRef,
        req: ReqId,
        replaced: Replaced,
    ) {
        let bridged = matches!(&self.phase, Phase::Bridged(b) if b.leg == leg);
        let ok = bridged
            && replaced == Replaced::ConsultLeg
            && self.consult().is_some_and(|c| {
                matches!(c.via, Via::Phone(_))
                    && matches!(c.stage, Stage::Talking { .. })
                    && c.completing.is_none()
            });
        if !ok {
            tracing::info!(?replaced, "an attended transfer that cannot be made now");
            return self.emit(CallAction::ReplyRefer { req, status: 403 });
        }
        tracing::info!("the agent's phone hands the caller over (REFER with Replaces)");
        self.emit(CallAction::ReplyRefer { req, status: 202 });
        self.complete(Completion::Refer { leg });
    }

    /// A REFER on the consultation call itself: an attended transfer when
    /// its `Replaces` names the agent's leg of the call (some phones send it
    /// there, RFC 5589 §7.3); anything else is refused.
    pub(in crate::call::core) fn consult_call_refer(
        &mut self,
        req: ReqId,
        replaced: Option<Replaced>,
    ) {
        let agent_leg = match &self.phase {
            Phase::Bridged(b) => Some(b.leg),
            _ => None,
        };
        let ok = agent_leg.is_some_and(|l| replaced == Some(Replaced::AgentLeg(l)))
            && self.consult().is_some_and(|c| {
                matches!(c.via, Via::Phone(_))
                    && matches!(c.stage, Stage::Talking { .. })
                    && c.completing.is_none()
            });
        if !ok {
            tracing::info!(
                ?replaced,
                "a REFER on the consultation call that cannot be taken"
            );
            return self.emit(CallAction::ReplyRefer { req, status: 403 });
        }
        tracing::info!("the agent's phone hands the caller over (REFER on its second call)");
        self.emit(CallAction::ReplyRefer { req, status: 202 });
        self.complete(Completion::ReferOnConsult);
    }
}
