//! The caller in a queue: announcements, the ACD's offers and the agent
//! legs they ring, the bridge with the agent who answers, and a callback
//! instead of waiting. Part of [`CallCore`], sans-IO.

use super::*;

impl CallCore {
    // ----------------------------------------------------------- queue

    /// Hand the caller to the ACD: `prompt` (if any), then hold music while
    /// it waits.
    pub(super) fn enter_queue(&mut self, queue: String, priority: u8, prompt: Option<String>) {
        tracing::info!(%queue, priority, "queued");
        self.record_queued(&queue, priority);
        self.play(prompt.into_iter().collect());
        self.emit(CallAction::HoldMusic(true));
        let ticket = Some(self.ticket_label());
        self.queue = Some((queue.clone(), priority));
        self.in_acd = true;
        self.phase = Phase::Queued(Queued {
            offer: None,
            callback_asked: false,
        });
        self.ask_acd(AcdRequest::Enqueue {
            queue,
            priority,
            ticket,
        });
    }

    /// 9 while queued (an offer may be ringing): ask the ACD to keep the
    /// place. The caller hears the confirmation once the ACD holds it.
    pub(super) fn ask_callback_while_queued(&mut self) {
        let Phase::Queued(q) = &mut self.phase else {
            return;
        };
        if q.callback_asked {
            return;
        }
        q.callback_asked = true;
        let Some((queue, priority)) = self.queue.clone() else {
            return;
        };
        self.count(CallCount::CallbackRequested(queue.clone()));
        let target = self.caller_contact();
        let ticket = Some(self.ticket_label());
        self.ask_acd(AcdRequest::RequestCallback {
            queue,
            priority,
            ticket,
            target,
        });
    }

    pub(super) fn acd_news(&mut self, news: QueueNews) {
        match news {
            QueueNews::Announce {
                position,
                ewt_minutes,
            } => self.announce(position, ewt_minutes),
            QueueNews::OfferCallback => {
                if self.waiting() {
                    self.append(vec!["callback_offer".into()]);
                }
            }
            QueueNews::PlayAndHangup { prompt } => self.leave_after(vec![prompt], true),
            QueueNews::Blocked => self.leave_after(vec!["no_agents".into()], true),
            QueueNews::Offer {
                agent,
                targets,
                ticket,
            } => self.offered(agent, targets, ticket),
            QueueNews::CancelOffer { agent } => self.offer_cancelled(&agent),
            QueueNews::Finished(outcome) => {
                tracing::debug!(outcome = outcome.label(), "left the queue");
                self.in_acd = false;
            }
            QueueNews::CallbackHeld => self.callback_held(),
            QueueNews::CallbackRefused => self.callback_refused(),
            QueueNews::Transferred => self.transferred(),
            QueueNews::TransferRejected { reason } => self.transfer_rejected(reason),
            QueueNews::Consult(news) => self.consult_news(news),
        }
    }

    /// Queued, not leaving, not ringing an answered agent: hears the queue.
    pub(super) fn waiting(&self) -> bool {
        matches!(self.phase, Phase::Queued(_)) && !self.leaving
    }

    pub(super) fn announce(&mut self, position: usize, ewt_minutes: u32) {
        if !self.waiting() {
            return;
        }
        let first = !std::mem::replace(&mut self.announced, true);
        self.append(announcement(position, ewt_minutes, first));
    }

    /// The ACD offers the call to `agent`: ring its phones, unless the
    /// caller is busy elsewhere (then the offer fails at once).
    pub(super) fn offered(
        &mut self,
        agent: String,
        targets: Vec<AgentTarget>,
        ticket: Option<String>,
    ) {
        let media = self.media.clone();
        let Phase::Queued(q) = &mut self.phase else {
            return self.ask_acd(AcdRequest::OfferFailed {
                agent,
                reason: OfferFailReason::Rejected,
            });
        };
        if q.callback_asked {
            // The ACD withdraws this offer when it takes the callback request.
            return;
        }
        let (None, Some(codec), false) = (&q.offer, media, self.leaving) else {
            return self.ask_acd(AcdRequest::OfferFailed {
                agent,
                reason: OfferFailReason::Rejected,
            });
        };
        self.offers += 1;
        let no = self.offers;
        q.offer = Some(Offer {
            no,
            agent: agent.clone(),
            contacts: None,
            failed: 0,
            held_answer: None,
            bridging: None,
        });
        let ticket = ticket.unwrap_or_else(|| self.ticket_label());
        tracing::info!(%agent, contacts = targets.len(), %ticket, "ringing the agent");
        self.record_offer(&agent, targets.len());
        self.emit(CallAction::RingAgent {
            offer: no,
            agent,
            targets,
            ticket,
            codec,
            consulted_by: None,
        });
    }

    /// The current offer, if `no` is it.
    pub(super) fn offer_mut(&mut self, no: u32) -> Option<&mut Offer> {
        match &mut self.phase {
            Phase::Queued(Queued { offer: Some(o), .. }) if o.no == no => Some(o),
            _ => None,
        }
    }

    pub(super) fn offer_rung(&mut self, no: u32, contacts: u16) {
        for contact in 0..contacts {
            self.legs.insert(AgentLegRef { offer: no, contact });
        }
        if matches!(self.phase, Phase::Bridged(_)) {
            return self.consult_offer_rung(no, contacts);
        }
        let Some(o) = self.offer_mut(no) else {
            // Withdrawn before its legs were placed.
            return self.hang_up_offer(no, None);
        };
        o.contacts = Some(contacts);
        if contacts == 0 || o.failed >= contacts {
            let agent = o.agent.clone();
            self.offer_lost(agent, OfferFailReason::Unreachable);
        }
    }

    /// The current offer is over without a bridge: the ACD decides what next.
    pub(super) fn offer_lost(&mut self, agent: String, reason: OfferFailReason) {
        if let Phase::Queued(q) = &mut self.phase {
            if let Some(o) = q.offer.take() {
                let result = match reason {
                    OfferFailReason::NoAnswer => "no_answer",
                    OfferFailReason::Rejected => "rejected",
                    OfferFailReason::Unreachable => "unreachable",
                };
                self.record_offer_ended(&o.agent, result);
                self.hang_up_offer(o.no, None);
            }
        }
        self.ask_acd(AcdRequest::OfferFailed { agent, reason });
    }

    pub(super) fn offer_cancelled(&mut self, agent: &str) {
        let Phase::Queued(q) = &mut self.phase else {
            return;
        };
        if let Some(o) = q.offer.take_if(|o| o.agent == agent) {
            self.record_offer_ended(&o.agent, "cancelled");
            self.hang_up_offer(o.no, None);
        }
    }

    pub(super) fn agent_answered(&mut self, leg: AgentLegRef, answer: Vec<u8>) {
        let callback_asked = matches!(&self.phase, Phase::Queued(q) if q.callback_asked);
        let Some(o) = self.offer_mut(leg.offer).filter(|o| o.bridging.is_none()) else {
            // A leg of an offer already withdrawn, or a second phone.
            return self.hang_up_leg(leg);
        };
        if callback_asked {
            o.held_answer = Some((leg, answer));
            return;
        }
        self.connect(leg, &answer);
    }

    /// Bridge the answering phone: its other phones stop ringing.
    pub(super) fn connect(&mut self, leg: AgentLegRef, answer: &[u8]) {
        let Some(o) = self.offer_mut(leg.offer) else {
            return self.hang_up_leg(leg);
        };
        let agent = o.agent.clone();
        match sdp::parse_answer(answer) {
            Ok(remote) => {
                o.bridging = Some((leg, remote.clone()));
                self.hang_up_offer(leg.offer, Some(leg));
                self.record_answered(&agent);
                self.emit(CallAction::BridgeAgent { leg, remote });
            }
            Err(e) => {
                tracing::debug!(error = %e, "the agent's phone answered without usable SDP");
                self.offer_lost(agent, OfferFailReason::Rejected);
            }
        }
    }

    pub(super) fn agent_failed(&mut self, leg: AgentLegRef, status: u16) {
        self.legs.remove(&leg);
        let Some(o) = self.offer_mut(leg.offer) else {
            return;
        };
        o.failed += 1;
        if o.contacts.is_some_and(|n| o.failed >= n) {
            let agent = o.agent.clone();
            let reason = match status {
                486 | 600 | 603 => OfferFailReason::Rejected,
                _ => OfferFailReason::NoAnswer,
            };
            tracing::info!(%agent, status, "offer failed");
            self.offer_lost(agent, reason);
        }
    }

    pub(super) fn agent_bridged(&mut self, leg: AgentLegRef, local: SocketAddr) {
        let codec = self.media.clone();
        let Some(o) = self.offer_mut(leg.offer) else {
            return self.hang_up_leg(leg);
        };
        let (Some((_, answer)), Some(codec)) = (o.bridging.take_if(|(l, _)| *l == leg), codec)
        else {
            return self.hang_up_leg(leg);
        };
        let agent = o.agent.clone();
        tracing::info!(%agent, "caller and agent connected");
        let prefix = self.settings.config.features.transfer_prefix.clone();
        self.keypad = Keypad::new(&prefix);
        let session = SdpSession::for_leg(LegId {
            call: self.id,
            role: LegRole::Agent { offer: leg.offer },
        });
        let sdp = LegSdp::offered(local, session, &codec);
        self.phase = Phase::Bridged(Bridge::new(agent.clone(), leg, answer, sdp));
        self.ask_acd(AcdRequest::AgentAnswered { agent });
    }

    pub(super) fn bridge_failed(&mut self, leg: AgentLegRef) {
        let Some(o) = self.offer_mut(leg.offer) else {
            return self.hang_up_leg(leg);
        };
        let agent = o.agent.clone();
        self.offer_lost(agent, OfferFailReason::Rejected);
    }

    // -------------------------------------------------------- callback

    /// The ACD holds the callback: the caller's place is kept; say so and
    /// hang up (the ACD calls back once it hears the line is down).
    pub(super) fn callback_held(&mut self) {
        let Phase::Queued(q) = &mut self.phase else {
            return;
        };
        if let Some(o) = q.offer.take() {
            self.hang_up_offer(o.no, None);
        }
        let queue = self
            .queue
            .as_ref()
            .map_or_else(|| "the queue".to_string(), |(q, _)| q.clone());
        self.record_callback(&queue);
        self.leave_after(vec!["callback_confirm".into(), "goodbye".into()], false);
    }

    /// The ACD cannot keep this caller's place (it waits for one agent):
    /// it keeps waiting; an answer held meanwhile is bridged.
    pub(super) fn callback_refused(&mut self) {
        let Phase::Queued(q) = &mut self.phase else {
            return;
        };
        q.callback_asked = false;
        let held = q.offer.as_mut().and_then(|o| o.held_answer.take());
        if let Some((leg, answer)) = held {
            self.connect(leg, &answer);
        }
    }
}

/// A queue announcement: the position and the estimated wait, after "all
/// our technicians are busy, please hold" the `first` time.
pub(super) fn announcement(position: usize, ewt_minutes: u32, first: bool) -> Vec<String> {
    let mut names = Vec::new();
    if first {
        names.push("queue_wait".to_string());
    }
    names.extend([
        "position_is".to_string(),
        format!("numbers/{}", position.min(99)),
        "estimated_wait".into(),
    ]);
    match ewt_minutes {
        0 => names.push("less_than_a_minute".into()),
        1 => names.extend(["numbers/1".to_string(), "minute".into()]),
        n => names.extend([format!("numbers/{}", n.min(99)), "minutes".into()]),
    }
    names
}
