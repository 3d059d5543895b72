//! The caller in the IVR: what the menus decide is carried out here (a
//! prompt, a queue, a callback, a hang-up). Part of [`CallCore`], sans-IO.

use super::*;

impl CallCore {
    // ------------------------------------------------------------- IVR

    /// Carry out what the IVR decided.
    pub(super) fn drain_ivr(&mut self) {
        while let Some(action) = self
            .ivr
            .as_mut()
            .filter(|_| !self.joining)
            .and_then(IvrCall::poll_action)
        {
            if matches!(self.phase, Phase::Ended) {
                return;
            }
            self.ivr_action(action);
        }
    }

    pub(super) fn ivr_action(&mut self, action: IvrAction) {
        match action {
            IvrAction::Play {
                language, prompts, ..
            } => {
                self.token += 1;
                let token = self.token;
                self.emit(CallAction::Play {
                    language,
                    prompts,
                    token,
                });
            }
            IvrAction::StopPlayback => {
                self.token += 1;
                self.emit(CallAction::StopPlayback);
            }
            IvrAction::EnteredMenu { menu } => {
                tracing::debug!(%menu, "entered menu");
                self.record_menu(&menu);
                self.count(CallCount::MenuEntered(menu));
            }
            IvrAction::LanguageChosen { language } => {
                tracing::debug!(%language, "language chosen");
                self.record_language(&language);
            }
            IvrAction::FieldCollected { name, value } => {
                tracing::debug!(%name, %value, "field collected");
                self.record_field(&name, &value);
            }
            IvrAction::Queue {
                queue,
                priority,
                prompt,
            } => {
                self.count(CallCount::QueueRequested(queue.clone()));
                self.enter_queue(queue, priority, prompt);
            }
            IvrAction::RequestCallback {
                queue,
                number_field,
            } => self.ivr_callback(queue, number_field),
            IvrAction::Hangup { reason } => {
                tracing::debug!(%reason, "IVR hangs up");
                self.end(CallOutcome::IvrHangup, CallerEnd::Bye);
            }
        }
    }

    /// The IVR's callback option: a number the caller typed goes out
    /// through the trunk; else the caller is called back where its call
    /// came from. (The IVR plays the confirmation and hangs up itself.)
    pub(super) fn ivr_callback(&mut self, queue: String, number_field: Option<String>) {
        self.count(CallCount::CallbackRequested(queue.clone()));
        let typed = number_field
            .as_ref()
            .and_then(|f| self.ivr.as_ref().and_then(|i| i.fields().get(f)))
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .cloned();
        let target = match (typed, self.settings.config.callback_trunk()) {
            (Some(number), Some(trunk)) => AgentTarget {
                contact: trunk.uri_for(&number),
                source: trunk.addr,
                over_tcp: false,
            },
            _ => self.caller_contact(),
        };
        tracing::info!(%queue, "callback requested");
        tracing::debug!(contact = %crate::text::Untrusted(&target.contact.to_string()), "callback contact");
        let ticket = Some(self.ticket_label());
        self.record_callback(&queue);
        // The ACD hears when this line goes: the callback waits for it.
        self.in_acd = true;
        self.ask_acd(AcdRequest::RequestCallback {
            queue,
            priority: DIRECT_PRIORITY,
            ticket,
            target,
        });
    }

    /// Where to call the caller back: its From user at the address its
    /// INVITE came from (never a host name from the message).
    pub(super) fn caller_contact(&self) -> AgentTarget {
        AgentTarget {
            contact: callback_contact(&self.arrival.from_uri, self.arrival.source),
            source: self.arrival.source,
            over_tcp: false,
        }
    }
}
