//! The bridged call: the agent's keypad (transfer, hold and consultation
//! codes), blind transfers (REFER or keypad) decided by the ACD, and the
//! agent's phone hanging up. Part of [`CallCore`], sans-IO.

use super::*;

impl CallCore {
    // ---------------------------------------------------------- bridge

    pub(super) fn agent_ended(&mut self, leg: AgentLegRef) {
        self.legs.remove(&leg);
        let Phase::Bridged(b) = &mut self.phase else {
            // An answered leg of an offer that was withdrawn meanwhile.
            if let Some(o) = self.offer_mut(leg.offer) {
                if o.bridging.as_ref().is_some_and(|(l, _)| *l == leg) {
                    let agent = o.agent.clone();
                    self.offer_lost(agent, OfferFailReason::Rejected);
                }
            }
            return;
        };
        if b.leg != leg {
            return;
        }
        if b.transfer.is_some() {
            // The phone hung up after its REFER: the ACD's answer decides.
            b.agent_gone = true;
            return;
        }
        if b.consult.is_some() && self.agent_left_consultation() {
            return;
        }
        self.end(CallOutcome::AgentHangup, CallerEnd::Bye);
    }

    /// No audio from the agent's phone for the RTP timeout: it vanished
    /// (link down, crash). The caller goes back to the head of its queue
    /// and hears "transferring", then hold music; the agent's leg is hung
    /// up and the ACD pauses the agent. With a transfer or a consultation
    /// under way the call ends instead, as the agent's.
    pub(super) fn agent_lost(&mut self) {
        let Phase::Bridged(b) = &self.phase else {
            return;
        };
        if b.transfer.is_some() || b.consult.is_some() || self.queue.is_none() {
            tracing::info!("no RTP from the agent: ending the call");
            return self.end(CallOutcome::Timeout, CallerEnd::Bye);
        }
        let leg = b.leg;
        tracing::warn!("no RTP from the agent's phone: the caller goes back to the queue");
        self.leave_hold(self.now);
        if self.legs.remove(&leg) {
            self.emit(CallAction::HangUpAgent { leg });
        }
        self.ask_acd(AcdRequest::AgentLost);
        self.record_agent_lost();
        self.back_to_queue();
    }

    /// Out of the bridge, waiting again: "transferring", then hold music.
    fn back_to_queue(&mut self) {
        self.phase = Phase::Queued(Queued {
            offer: None,
            callback_asked: false,
        });
        self.announced = false;
        self.emit(CallAction::Unbridge);
        self.play(vec!["transferring".into()]);
        self.emit(CallAction::HoldMusic(true));
    }

    pub(super) fn agent_digit(&mut self, now: Instant, digit: char, source: DigitSource) {
        if !matches!(self.phase, Phase::Bridged(_)) {
            return;
        }
        self.count(CallCount::Digit(source));
        let action = self.keypad.on_key(now, digit);
        self.on_keypad(action);
    }

    /// Carry out what the agent's keypad decided.
    pub(super) fn on_keypad(&mut self, action: KeypadAction) {
        match action {
            KeypadAction::None => {}
            KeypadAction::Pass(keys) => {
                for k in keys {
                    self.emit(CallAction::SendDigitToCaller(k));
                }
            }
            KeypadAction::Cancelled => tracing::info!("the agent abandoned a feature code"),
            KeypadAction::Transfer(code) if self.consulting() => self.consult_code(&code),
            KeypadAction::Transfer(target)
                if target.len() > self.settings.config.features.consult.len()
                    && target.starts_with(&self.settings.config.features.consult) =>
            {
                let code = self.settings.config.features.consult.len();
                self.consult_from_keypad(&target[code..]);
            }
            KeypadAction::Transfer(target) if target == self.settings.config.features.hold => {
                // The in-call hold code: hold, or resume.
                if self.on_hold() {
                    self.end_hold(self.now);
                } else {
                    self.start_hold(self.now);
                }
            }
            KeypadAction::Transfer(target) => match self.settings.config.transfer_target(&target) {
                Some(to) => {
                    tracing::info!(%target, "the agent transfers the caller (keypad)");
                    self.request_transfer(TransferHow::Keypad, to);
                }
                None => {
                    tracing::info!(%target, "keypad transfer to an unknown number");
                    self.count(CallCount::KeypadTransfer(KeypadResult::UnknownTarget));
                    self.tell_agent_transfer_failed();
                }
            },
        }
    }

    pub(super) fn refer(&mut self, leg: AgentLegRef, req: ReqId, target: &str) {
        let bridged = matches!(&self.phase, Phase::Bridged(b) if b.leg == leg);
        // A transfer already asked for, or a consultation in progress (the
        // phone's attended transfer completes it with `Replaces` instead).
        let pending = matches!(&self.phase, Phase::Bridged(b)
            if b.transfer.is_some() || b.consult.is_some());
        let to = self.settings.config.transfer_target(target);
        match (bridged, pending, to) {
            (true, false, Some(to)) => {
                tracing::info!(target = %crate::text::Untrusted(target), "the agent transfers the caller (REFER)");
                self.emit(CallAction::ReplyRefer { req, status: 202 });
                self.request_transfer(TransferHow::Refer, to);
            }
            (true, true, _) => self.emit(CallAction::ReplyRefer { req, status: 491 }),
            _ => self.emit(CallAction::ReplyRefer { req, status: 404 }),
        }
    }

    /// The agent's desk moves the caller on (an escalation that re-queues
    /// it): as the keypad's transfer, asked of the ACD.
    pub(super) fn desk_transfer(&mut self, to: TransferTarget) {
        let pending = matches!(&self.phase, Phase::Bridged(b) if b.transfer.is_some());
        if !matches!(self.phase, Phase::Bridged(_)) || pending {
            tracing::info!(
                "a transfer from the desk, but the caller is not talking with its agent"
            );
            return;
        }
        tracing::info!(?to, "the desk transfers the caller");
        self.request_transfer(TransferHow::Desk, to);
    }

    /// Ask the ACD; the bridge stays until it answers.
    pub(super) fn request_transfer(&mut self, how: TransferHow, to: TransferTarget) {
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        if b.transfer.is_some() {
            return;
        }
        if b.consult.is_some() {
            // One move at a time: the consultation is completed or given
            // up before the caller can be sent elsewhere.
            tracing::info!("a transfer while the agent consults: refused");
            if how == TransferHow::Keypad {
                self.count(CallCount::KeypadTransfer(KeypadResult::Refused));
                self.tell_agent_transfer_failed();
            }
            return;
        }
        b.transfer = Some(PendingTransfer {
            how,
            to: to.clone(),
        });
        self.ask_acd(AcdRequest::Transfer { to });
    }

    /// The ACD took the transfer: the agent's leg ends, the caller hears
    /// "transferring" then hold music while it waits again.
    pub(super) fn transferred(&mut self) {
        if !matches!(&self.phase, Phase::Bridged(b) if b.transfer.is_some()) {
            return;
        }
        self.leave_hold(self.now);
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        let Some(t) = b.transfer.take() else {
            return;
        };
        let (leg, gone) = (b.leg, b.agent_gone);
        self.record_transfer(t.how.label(), &t.to, None);
        if !gone && self.legs.remove(&leg) {
            self.emit(match t.how {
                TransferHow::Refer => CallAction::TransferDone { leg },
                TransferHow::Keypad | TransferHow::Desk => CallAction::HangUpAgent { leg },
            });
        }
        let to_agent = matches!(t.to, TransferTarget::Agent(_));
        if t.how == TransferHow::Keypad {
            self.count(CallCount::KeypadTransfer(KeypadResult::Transferred));
        }
        self.count(CallCount::Transfer {
            how: t.how,
            to_agent,
            result: TransferResult::Done,
        });
        if let (TransferTarget::Queue(q), Some((_, p))) = (&t.to, &self.queue) {
            self.queue = Some((q.clone(), *p));
        }
        self.back_to_queue();
    }

    /// The ACD refused the transfer: the bridge stays, the REFER's NOTIFY
    /// says so, and the agent hears that it failed.
    pub(super) fn transfer_rejected(&mut self, reason: &'static str) {
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        let Some(t) = b.transfer.take() else {
            return;
        };
        tracing::info!(reason, "the transfer was refused");
        let (leg, gone) = (b.leg, b.agent_gone);
        if t.how == TransferHow::Refer && !gone {
            let status = match reason {
                "agent logged out" => 480,
                _ => 403,
            };
            self.emit(CallAction::TransferFailed { leg, status });
        }
        if t.how == TransferHow::Keypad {
            self.count(CallCount::KeypadTransfer(KeypadResult::Refused));
        }
        self.count(CallCount::Transfer {
            how: t.how,
            to_agent: matches!(t.to, TransferTarget::Agent(_)),
            result: TransferResult::Refused,
        });
        if gone {
            // Nobody is left to talk to: the call ends as the agent's.
            return self.end(CallOutcome::AgentHangup, CallerEnd::Bye);
        }
        self.tell_agent_transfer_failed();
    }

    /// "Transfer failed", to the agent only (not while it holds the caller:
    /// the caller would hear nothing of the agent meanwhile anyway).
    pub(super) fn tell_agent_transfer_failed(&mut self) {
        if self.on_hold() {
            return;
        }
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        self.token += 1;
        b.to_agent = Some(self.token);
        let language = self.language().to_string();
        self.emit(CallAction::PlayToAgent {
            language,
            prompts: vec!["transfer_failed".into()],
            token: self.token,
        });
    }

    pub(super) fn agent_playback_finished(&mut self, token: u64) {
        if self.consult_playback_finished(token) {
            return;
        }
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        if b.to_agent == Some(token) {
            b.to_agent = None;
            self.emit(CallAction::ResumeBridge);
        }
    }
}
