//! The consulted colleague's leg: its phones ring on the ACD's offer, the
//! one that answers is bridged with the consulting side; its failures go
//! back to the ACD, its hanging up ends the consultation.

use super::{followable, Over, Stage};
use crate::acd::OfferFailReason;
use crate::call::core::CallCore;
use crate::call::{
    AcdRequest, AgentLegRef, CallAction, ConsultAction, LegId, LegRole, ReqId, SdpSession,
};
use crate::media::sdp;
use std::net::SocketAddr;

use crate::call::core::hold::LegSdp;

impl CallCore {
    // ------------------------------------------------- the colleague's leg

    pub(in crate::call::core) fn colleague_answered(&mut self, leg: AgentLegRef, answer: &[u8]) {
        let Some(c) = self.consult_mut() else {
            return self.hang_up_leg(leg);
        };
        let Stage::Ringing { no, agent, .. } = &c.stage else {
            // A second phone of the colleague's, or a late answer.
            return self.hang_up_leg(leg);
        };
        if *no != leg.offer {
            return self.hang_up_leg(leg);
        }
        let agent = agent.clone();
        let remote = match sdp::parse_answer(answer) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "the colleague's phone answered without usable SDP");
                return self.consult_offer_lost(agent, OfferFailReason::Rejected);
            }
        };
        c.stage = Stage::Bridging {
            agent,
            leg,
            answer: remote.clone(),
        };
        let side = c.side();
        self.hang_up_offer(leg.offer, Some(leg));
        // The agent's own consultation call is answered now (its phone
        // stops ringing) and bridged with the colleague.
        self.answer_consult_call();
        self.emit_consult(ConsultAction::Bridge { leg, remote, side });
    }

    pub(in crate::call::core) fn colleague_bridged(&mut self, leg: AgentLegRef, local: SocketAddr) {
        let codec = self.media.clone();
        let id = self.id;
        let Some(c) = self.consult_mut() else {
            return self.hang_up_leg(leg);
        };
        let Stage::Bridging { agent, answer, .. } = &c.stage else {
            return self.hang_up_leg(leg);
        };
        let (agent, answer) = (agent.clone(), answer.clone());
        let session = SdpSession::for_leg(LegId {
            call: id,
            role: LegRole::Agent { offer: leg.offer },
        });
        let Some(codec) = codec else { return };
        tracing::info!(%agent, "the agent and the consulted colleague talk");
        c.stage = Stage::Talking {
            agent: agent.clone(),
            leg,
            media: answer,
            sdp: LegSdp::offered(local, session, &codec),
        };
        self.ask_acd(AcdRequest::ConsultAnswered { agent });
    }

    pub(in crate::call::core) fn colleague_bridge_failed(&mut self, leg: AgentLegRef) {
        let agent = match self.consult().map(|c| &c.stage) {
            Some(Stage::Bridging { agent, leg: l, .. }) if *l == leg => agent.clone(),
            _ => return self.hang_up_leg(leg),
        };
        self.consult_offer_lost(agent, OfferFailReason::Rejected);
    }

    pub(in crate::call::core) fn colleague_failed(&mut self, leg: AgentLegRef, status: u16) {
        let Some(c) = self.consult_mut() else { return };
        let Stage::Ringing {
            no,
            agent,
            contacts,
            failed,
        } = &mut c.stage
        else {
            return;
        };
        if *no != leg.offer {
            return;
        }
        *failed += 1;
        if contacts.is_some_and(|n| *failed >= n) {
            let agent = agent.clone();
            let reason = match status {
                486 | 600 | 603 => OfferFailReason::Rejected,
                _ => OfferFailReason::NoAnswer,
            };
            tracing::info!(%agent, status, "the consulted colleague did not answer");
            self.consult_offer_lost(agent, reason);
        }
    }

    /// The colleague's leg ended: while they talked, the agent goes back to
    /// its caller; while it was being bridged, the offer failed.
    pub(in crate::call::core) fn colleague_ended(&mut self, leg: AgentLegRef) {
        let stage = self.consult().map(|c| &c.stage);
        match stage {
            Some(Stage::Talking { leg: l, .. }) if *l == leg => {
                tracing::info!("the consulted colleague hung up");
                self.consult_over(Over::Returned);
            }
            Some(Stage::Bridging { leg: l, agent, .. }) if *l == leg => {
                let agent = agent.clone();
                self.consult_offer_lost(agent, OfferFailReason::Rejected);
            }
            _ => {}
        }
    }

    /// The colleague's media stopped: the consultation is over.
    pub(in crate::call::core) fn colleague_rtp_timeout(&mut self) {
        // A colleague's phone that holds may send nothing meanwhile.
        if matches!(
            self.consult().map(|c| &c.stage),
            Some(Stage::Talking { media, .. }) if !media.remote_hold
        ) {
            tracing::info!("no RTP from the consulted colleague");
            self.consult_over(Over::Failed);
        }
    }

    /// A re-INVITE or UPDATE from the colleague's phone while they talk.
    pub(in crate::call::core) fn colleague_reoffer(
        &mut self,
        leg: AgentLegRef,
        req: ReqId,
        body: Option<&[u8]>,
        invite: bool,
    ) {
        let answer = self.colleague_reanswer(leg, body, invite);
        self.emit(CallAction::ReplyReoffer { req, answer });
    }

    pub(super) fn colleague_reanswer(
        &mut self,
        leg: AgentLegRef,
        body: Option<&[u8]>,
        invite: bool,
    ) -> Result<Option<String>, u16> {
        let Some(Stage::Talking {
            leg: l, media, sdp, ..
        }) = self.consult_mut().map(|c| &mut c.stage)
        else {
            return Err(481);
        };
        if *l != leg {
            return Err(481);
        }
        let Some(body) = body else {
            return Ok(invite.then(|| sdp.offer(media)));
        };
        let remote = sdp::parse_offer(body).map_err(|e| e.sip_status())?;
        let n = sdp::negotiate_with(&remote, &[media.codec]).map_err(|e| e.sip_status())?;
        let answer = sdp.answer(&n);
        media.remote_hold = n.remote_hold;
        let moved = followable(&n, media.remote_rtp);
        if moved {
            media.remote_rtp = n.remote_rtp;
            let peer = n.remote_rtp;
            self.emit_consult(ConsultAction::SetColleaguePeer { peer });
        }
        Ok(Some(answer))
    }
}
