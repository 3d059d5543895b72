//! Consultation (attended transfer) scenarios of the call core on a fake
//! clock: from the keypad on the agent's own leg, and from the phone's own
//! second call with its REFER-with-Replaces.

use super::*;
use crate::acd::driver::ConsultNews;

/// The colleague's phone (the consultation's offer is the call's second).
fn colleague() -> AgentLegRef {
    AgentLegRef {
        offer: 2,
        contact: 0,
    }
}

fn colleague_local() -> std::net::SocketAddr {
    "127.0.0.1:31002".parse().expect("addr")
}

fn carmen() -> TransferTarget {
    TransferTarget::Agent("carmen".into())
}

impl H {
    fn keys(&mut self, keys: &str) -> Vec<CallAction> {
        keys.chars().flat_map(|k| self.agent_key(k)).collect()
    }

    fn consult_news(&mut self, news: ConsultNews) -> Vec<CallAction> {
        self.news(QueueNews::Consult(news))
    }

    /// The ACD offers the consultation to Carmen; her phone is placed.
    fn carmen_rings(&mut self) -> Vec<CallAction> {
        let mut acts = self.consult_news(ConsultNews::Offer {
            agent: "carmen".into(),
            targets: vec![target(3)],
        });
        acts.extend(self.ev(CallEvent::OfferRung {
            offer: 2,
            contacts: 1,
        }));
        acts
    }

    /// Carmen answers and is bridged with the consulting side.
    fn carmen_talks(&mut self) -> Vec<CallAction> {
        let mut acts = self.ev(CallEvent::AgentAnswered {
            leg: colleague(),
            sdp: answer_sdp(43000),
        });
        acts.extend(self.ev(CallEvent::ColleagueBridged {
            leg: colleague(),
            local: colleague_local(),
        }));
        acts
    }

    /// Bridged with Ana, who consults Carmen from the keypad; Carmen talks.
    fn consulting_by_keypad() -> H {
        let mut h = H::bridged();
        h.keys("##7303#");
        h.carmen_rings();
        h.carmen_talks();
        assert_eq!(h.state(), CallState::Consulting);
        h.take();
        h
    }

    /// Bridged with Ana, whose phone holds the caller and calls extension
    /// `dialed` (its consultation call).
    fn phone_consults(dialed: &str) -> (H, Vec<CallAction>) {
        let mut h = H::bridged();
        agent_reoffer(&mut h, 1, agent_offer("a=sendonly\r\n", "127.0.0.1"));
        let acts = h.ev(consult_call("ana", dialed));
        (h, acts)
    }
}

fn consult_call(agent: &str, dialed: &str) -> CallEvent {
    CallEvent::ConsultCall(ConsultCall {
        agent: agent.into(),
        dialed: dialed.into(),
        offer: Some(OFFER.replace("40000", "40010").into_bytes()),
        local_ip: "127.0.0.1".parse().expect("ip"),
        rtp_port: Some(30010),
    })
}

fn consult(acts: &[CallAction]) -> Vec<ConsultAction> {
    acts.iter()
        .filter_map(|a| match a {
            CallAction::Consult(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn counted(acts: &[CallAction], result: ConsultResult) -> bool {
    acts.iter().any(|a| {
        matches!(a, CallAction::Count(CallCount::Consultation { result: r, .. }) if *r == result)
    })
}

fn told_failed(acts: &[CallAction]) -> bool {
    acts.iter().any(|a| {
        matches!(a, CallAction::PlayToAgent { prompts, .. }
            | CallAction::Consult(ConsultAction::Play { prompts, .. })
            if prompts == &["transfer_failed"])
    })
}

// ------------------------------------------------------------- keypad

#[test]
fn the_keypad_code_holds_the_caller_and_rings_the_colleague_with_the_ticket() {
    let mut h = H::bridged();
    let acts = h.keys("##7303#");
    assert!(!acts
        .iter()
        .any(|a| matches!(a, CallAction::SendDigitToCaller(_))));
    assert!(acts.contains(&CallAction::HoldCaller));
    assert!(acts.contains(&CallAction::HoldMusic(true)));
    assert_eq!(consult(&acts), vec![ConsultAction::AgentToClock]);
    assert_eq!(acd(&acts), vec![AcdRequest::Consult { to: carmen() }]);
    assert_eq!(h.state(), CallState::Consulting);
    let acts = h.carmen_rings();
    assert!(acts.iter().any(|a| matches!(a,
        CallAction::RingAgent { offer: 2, agent, consulted_by: Some(by), .. }
            if agent == "carmen" && by == "ana")));
    assert!(consult(&acts).contains(&ConsultAction::Background {
        side: Side::Agent,
        sound: Background::Ringback
    }));
}

#[test]
fn the_colleague_answers_and_the_hand_over_code_gives_it_the_caller() {
    let mut h = H::bridged();
    h.keys("##7303#");
    h.carmen_rings();
    let acts = h.carmen_talks();
    assert!(consult(&acts).iter().any(|c| matches!(c,
        ConsultAction::Bridge { leg, side: Side::Agent, .. } if *leg == colleague())));
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::ConsultAnswered {
            agent: "carmen".into()
        }]
    );
    let acts = h.keys("##7#");
    assert_eq!(acd(&acts), vec![AcdRequest::CompleteConsult]);
    assert!(!acts.contains(&CallAction::Consult(ConsultAction::HandOver)));
    let acts = h.consult_news(ConsultNews::Completed);
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert!(acts.contains(&CallAction::HoldMusic(false)));
    assert!(acts.contains(&CallAction::Consult(ConsultAction::HandOver)));
    assert!(acts.contains(&CallAction::Count(CallCount::OnHold(false))));
    assert!(acts.contains(&CallAction::Count(CallCount::Transfer {
        how: TransferHow::Keypad,
        to_agent: true,
        result: TransferResult::Done
    })));
    assert!(counted(&acts, ConsultResult::Transferred));
    assert_eq!(h.state(), CallState::OnCall);
    assert_eq!(h.core.view().agent, Some("carmen"));
    // Carmen is the call's agent now: her hanging up ends it.
    let acts = h.ev(CallEvent::AgentEnded { leg: colleague() });
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(h.finished(), Some(CallOutcome::AgentHangup));
}

#[test]
fn the_hold_code_goes_back_to_the_caller_and_lets_the_colleague_go() {
    let mut h = H::consulting_by_keypad();
    let acts = h.keys("##0#");
    assert!(acts.contains(&CallAction::HangUpAgent { leg: colleague() }));
    assert_eq!(acd(&acts), vec![AcdRequest::ConsultGone]);
    let c = consult(&acts);
    assert!(c.contains(&ConsultAction::DropColleague));
    assert!(c.contains(&ConsultAction::Rejoin));
    assert!(acts.contains(&CallAction::HoldMusic(false)));
    assert!(acts.contains(&CallAction::Count(CallCount::OnHold(false))));
    assert!(counted(&acts, ConsultResult::Returned));
    assert_eq!(h.state(), CallState::OnCall);
    assert_eq!(h.core.view().agent, Some("ana"));
    assert_eq!(h.core.hold_stats().count, 1);
}

#[test]
fn a_refused_consultation_puts_the_agent_back_with_its_caller_and_says_so() {
    let mut h = H::bridged();
    h.keys("##7303#");
    let acts = h.consult_news(ConsultNews::Rejected {
        reason: "agent busy",
    });
    assert!(consult(&acts).contains(&ConsultAction::Rejoin));
    assert!(told_failed(&acts));
    assert!(acd(&acts).is_empty(), "the ACD's entry is gone already");
    assert!(counted(&acts, ConsultResult::Refused));
    assert_eq!(h.state(), CallState::OnCall);
}

#[test]
fn a_colleague_who_does_not_answer_fails_the_offer_and_the_acd_decides() {
    let mut h = H::bridged();
    h.keys("##7303#");
    h.carmen_rings();
    let acts = h.ev(CallEvent::AgentFailed {
        leg: colleague(),
        status: 408,
    });
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::ConsultOfferFailed {
            agent: "carmen".into(),
            reason: OfferFailReason::NoAnswer
        }]
    );
    assert_eq!(h.state(), CallState::Consulting);
    let acts = h.consult_news(ConsultNews::Rejected {
        reason: "no answer",
    });
    assert!(consult(&acts).contains(&ConsultAction::Rejoin));
    assert!(counted(&acts, ConsultResult::Unanswered));
}

#[test]
fn the_agent_hanging_up_once_the_colleague_talks_hands_the_caller_over() {
    let mut h = H::consulting_by_keypad();
    let acts = h.ev(CallEvent::AgentEnded { leg: leg(0) });
    assert_eq!(acd(&acts), vec![AcdRequest::CompleteConsult]);
    assert!(h.finished().is_none());
    let acts = h.consult_news(ConsultNews::Completed);
    assert!(acts.contains(&CallAction::Consult(ConsultAction::HandOver)));
    assert!(!acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert_eq!(h.core.view().agent, Some("carmen"));
}

#[test]
fn the_agent_hanging_up_while_the_colleague_rings_ends_the_call() {
    let mut h = H::bridged();
    h.keys("##7303#");
    h.carmen_rings();
    let acts = h.ev(CallEvent::AgentEnded { leg: leg(0) });
    assert!(acts.contains(&CallAction::HangUpAgent { leg: colleague() }));
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::ConsultGone, AcdRequest::CallerGone]
    );
    assert_eq!(h.finished(), Some(CallOutcome::AgentHangup));
}

#[test]
fn the_caller_hanging_up_during_a_consultation_lets_everyone_go() {
    let mut h = H::consulting_by_keypad();
    let acts = h.ev(CallEvent::CallerEnded(LegEnd::CallerBye));
    assert!(acts.contains(&CallAction::HangUpAgent { leg: colleague() }));
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::ConsultGone, AcdRequest::CallerGone]
    );
    assert!(counted(&acts, ConsultResult::CallEnded));
    assert_eq!(
        h.count(|a| *a == CallAction::Count(CallCount::OnHold(false))),
        1,
        "the hold gauge is balanced"
    );
}

#[test]
fn a_hand_over_before_the_colleague_answers_is_not_asked() {
    let mut h = H::bridged();
    h.keys("##7303#");
    h.carmen_rings();
    let acts = h.keys("##7#");
    assert!(acd(&acts).is_empty());
    assert!(told_failed(&acts));
    assert_eq!(h.state(), CallState::Consulting);
}

#[test]
fn a_blind_transfer_code_while_consulting_is_refused_to_the_agent() {
    let mut h = H::consulting_by_keypad();
    let acts = h.keys("##202#");
    assert!(acd(&acts).is_empty());
    assert!(told_failed(&acts));
    // And a consultation of an unknown number never starts.
    let mut h = H::bridged();
    let acts = h.keys("##7999#");
    assert!(acd(&acts).is_empty());
    assert_eq!(h.state(), CallState::OnCall);
}

#[test]
fn a_consultation_of_a_queue_hears_its_announcements_then_the_ringing() {
    let mut h = H::bridged();
    let acts = h.keys("##7202#");
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::Consult {
            to: TransferTarget::Queue("hardware".into())
        }]
    );
    let acts = h.consult_news(ConsultNews::Queued);
    assert!(consult(&acts).contains(&ConsultAction::Background {
        side: Side::Agent,
        sound: Background::HoldMusic
    }));
    let acts = h.consult_news(ConsultNews::Announce {
        position: 1,
        ewt_minutes: 2,
    });
    assert!(consult(&acts).iter().any(|c| matches!(c,
        ConsultAction::Append { side: Side::Agent, prompts, .. }
            if prompts.first().map(String::as_str) == Some("queue_wait"))));
    let acts = h.carmen_rings();
    assert!(consult(&acts).contains(&ConsultAction::Background {
        side: Side::Agent,
        sound: Background::Ringback
    }));
    // The ring timeout: back to the queue's music until the next offer.
    let acts = h.consult_news(ConsultNews::CancelOffer {
        agent: "carmen".into(),
    });
    assert!(acts.contains(&CallAction::HangUpAgent { leg: colleague() }));
    assert!(consult(&acts).contains(&ConsultAction::Background {
        side: Side::Agent,
        sound: Background::HoldMusic
    }));
}

#[test]
fn a_reinvite_from_the_agents_phone_during_a_keypad_consultation_keeps_the_caller_held() {
    let mut h = H::consulting_by_keypad();
    let acts = agent_reoffer(&mut h, 7, agent_offer("a=sendrecv\r\n", "127.0.0.1"));
    assert!(reoffer_answer(&acts).is_some());
    assert!(!acts.contains(&CallAction::ResumeCaller));
    assert_eq!(h.state(), CallState::Consulting);
}

// ---------------------------------------------------- the phone's own

#[test]
fn the_phones_consultation_call_rings_the_colleague_and_its_refer_with_replaces_hands_over() {
    let (mut h, acts) = H::phone_consults("303");
    assert_eq!(acd(&acts), vec![AcdRequest::Consult { to: carmen() }]);
    assert!(
        !acts.contains(&CallAction::HoldCaller),
        "the phone holds already"
    );
    let acts = h.carmen_rings();
    assert!(consult(&acts).contains(&ConsultAction::Ring));
    let acts = h.carmen_talks();
    let c = consult(&acts);
    assert!(
        c.iter().any(|a| matches!(a, ConsultAction::Answer { sdp } if sdp.contains("m=audio 30010 RTP/AVP 0"))),
        "{c:?}"
    );
    assert!(c
        .iter()
        .any(|a| matches!(a, ConsultAction::StartMedia { .. })));
    assert!(c.iter().any(|a| matches!(
        a,
        ConsultAction::Bridge {
            side: Side::Consult,
            ..
        }
    )));
    let acts = h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(4),
        target: "303".into(),
        replaces: Some(Replaced::ConsultLeg),
    });
    assert!(acts.contains(&CallAction::ReplyRefer {
        req: ReqId(4),
        status: 202
    }));
    assert_eq!(acd(&acts), vec![AcdRequest::CompleteConsult]);
    let acts = h.consult_news(ConsultNews::Completed);
    assert!(acts.contains(&CallAction::TransferDone { leg: leg(0) }));
    let c = consult(&acts);
    assert!(c.contains(&ConsultAction::HangUp));
    assert!(c.contains(&ConsultAction::HandOver));
    assert!(acts.contains(&CallAction::Count(CallCount::Transfer {
        how: TransferHow::Refer,
        to_agent: true,
        result: TransferResult::Done
    })));
    assert_eq!(h.core.view().agent, Some("carmen"));
    // The new agent's phone may hold the caller in its turn.
    let acts = h.ev(CallEvent::AgentReoffer {
        leg: colleague(),
        req: ReqId(5),
        sdp: Some(agent_offer("a=sendonly\r\n", "127.0.0.1")),
        invite: true,
    });
    assert!(acts.contains(&CallAction::HoldCaller));
    let answer = reoffer_answer(&acts).unwrap_or_default();
    assert!(answer.contains("m=audio 31002"), "{answer}");
}

#[test]
fn a_refer_with_replaces_naming_no_talking_consultation_is_refused_403() {
    let (mut h, _) = H::phone_consults("303");
    h.carmen_rings();
    for replaced in [Replaced::ConsultLeg, Replaced::Unknown] {
        let acts = h.ev(CallEvent::AgentRefer {
            leg: leg(0),
            req: ReqId(4),
            target: "303".into(),
            replaces: Some(replaced),
        });
        assert_eq!(
            acts,
            vec![CallAction::ReplyRefer {
                req: ReqId(4),
                status: 403
            }]
        );
    }
}

#[test]
fn a_blind_refer_of_the_caller_while_the_phone_consults_is_refused_491() {
    // Found by the proptest: the transfer went through and left the
    // consultation call up after the call had ended.
    let (mut h, _) = H::phone_consults("303");
    h.carmen_rings();
    let acts = h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(4),
        target: "202".into(),
        replaces: None,
    });
    assert_eq!(
        acts,
        vec![CallAction::ReplyRefer {
            req: ReqId(4),
            status: 491
        }]
    );
    assert_eq!(h.state(), CallState::Consulting);
}

#[test]
fn hanging_up_the_consultation_call_goes_back_and_the_phone_resumes_its_caller() {
    let (mut h, _) = H::phone_consults("303");
    h.carmen_rings();
    h.carmen_talks();
    let acts = h.ev(CallEvent::ConsultEnded(LegEnd::CallerBye));
    assert!(acts.contains(&CallAction::HangUpAgent { leg: colleague() }));
    assert_eq!(acd(&acts), vec![AcdRequest::ConsultGone]);
    assert!(
        !consult(&acts).contains(&ConsultAction::HangUp),
        "gone already"
    );
    assert!(
        !acts.contains(&CallAction::ResumeCaller),
        "the phone holds the caller"
    );
    assert_eq!(h.state(), CallState::OnCall);
    let acts = agent_reoffer(&mut h, 9, agent_offer("a=sendrecv\r\n", "127.0.0.1"));
    assert!(acts.contains(&CallAction::ResumeCaller));
}

#[test]
fn a_refused_consultation_call_gets_the_reason_and_the_caller_stays_held() {
    for (reason, status) in [
        ("agent busy", 486),
        ("agent logged out", 480),
        ("no answer", 480),
        ("declined", 486),
    ] {
        let (mut h, _) = H::phone_consults("303");
        let acts = h.consult_news(ConsultNews::Rejected { reason });
        assert_eq!(
            consult(&acts),
            vec![
                ConsultAction::Reject { status },
                ConsultAction::DropColleague
            ]
        );
        assert!(!acts.contains(&CallAction::ResumeCaller));
    }
}

#[test]
fn consultation_calls_that_cannot_be_taken_are_refused() {
    let (mut h, _) = H::phone_consults("303");
    // A second one while the first goes on: busy.
    let acts = h.ev(consult_call("ana", "302"));
    assert_eq!(consult(&acts), vec![ConsultAction::Reject { status: 486 }]);
    for (agent, dialed, status) in [("bruno", "303", 403), ("ana", "999", 404)] {
        let mut h = H::bridged();
        let acts = h.ev(consult_call(agent, dialed));
        assert_eq!(consult(&acts), vec![ConsultAction::Reject { status }]);
        assert_eq!(h.state(), CallState::OnCall);
    }
    // An offer without the caller's codec.
    let mut h = H::bridged();
    let mut call = consult_call("ana", "303");
    if let CallEvent::ConsultCall(c) = &mut call {
        c.offer = Some(OFFER.replace("RTP/AVP 0 101", "RTP/AVP 8 101").into_bytes());
    }
    let acts = h.ev(call);
    assert_eq!(consult(&acts), vec![ConsultAction::Reject { status: 488 }]);
}

#[test]
fn a_phone_that_calls_without_holding_first_has_its_caller_held_and_resumed_for_it() {
    let mut h = H::bridged();
    let acts = h.ev(consult_call("ana", "303"));
    assert!(acts.contains(&CallAction::HoldCaller));
    h.carmen_rings();
    let acts = h.ev(CallEvent::ConsultEnded(LegEnd::Cancelled));
    assert!(acts.contains(&CallAction::HangUpAgent { leg: colleague() }));
    assert!(acts.contains(&CallAction::ResumeCaller));
}

#[test]
fn keys_on_the_consultation_call_reach_the_colleague_and_its_codes_work() {
    let (mut h, _) = H::phone_consults("303");
    h.carmen_rings();
    h.carmen_talks();
    let acts = h.ev(CallEvent::ConsultDigit {
        digit: '5',
        source: DigitSource::Rfc4733,
    });
    assert_eq!(consult(&acts), vec![ConsultAction::SendDigit('5')]);
    let mut acts = Vec::new();
    for k in "##7#".chars() {
        acts.extend(h.ev(CallEvent::ConsultDigit {
            digit: k,
            source: DigitSource::Rfc4733,
        }));
    }
    assert_eq!(acd(&acts), vec![AcdRequest::CompleteConsult]);
    let acts = h.consult_news(ConsultNews::Completed);
    assert!(
        acts.contains(&CallAction::HangUpAgent { leg: leg(0) }),
        "the agent's held leg ends"
    );
    assert!(consult(&acts).contains(&ConsultAction::HangUp));
}

#[test]
fn a_refer_on_the_consultation_call_naming_the_agents_leg_hands_over_too() {
    let (mut h, _) = H::phone_consults("303");
    h.carmen_rings();
    h.carmen_talks();
    let acts = h.ev(CallEvent::ConsultRefer {
        req: ReqId(6),
        replaces: Some(Replaced::Unknown),
    });
    assert_eq!(
        acts,
        vec![CallAction::ReplyRefer {
            req: ReqId(6),
            status: 403
        }]
    );
    let acts = h.ev(CallEvent::ConsultRefer {
        req: ReqId(7),
        replaces: Some(Replaced::AgentLeg(leg(0))),
    });
    assert!(acts.contains(&CallAction::ReplyRefer {
        req: ReqId(7),
        status: 202
    }));
    assert_eq!(acd(&acts), vec![AcdRequest::CompleteConsult]);
    let acts = h.consult_news(ConsultNews::Completed);
    let c = consult(&acts);
    assert!(c.contains(&ConsultAction::TransferDone), "{c:?}");
    assert!(!c.contains(&ConsultAction::HangUp));
    assert!(c.contains(&ConsultAction::HandOver));
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert_eq!(h.core.view().agent, Some("carmen"));
}

#[test]
fn a_refer_on_the_callers_own_leg_is_refused() {
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::CallerRefer { req: ReqId(3) });
    assert_eq!(
        acts,
        vec![CallAction::ReplyRefer {
            req: ReqId(3),
            status: 403
        }]
    );
    assert_eq!(h.state(), CallState::OnCall);
}

#[test]
fn a_consultation_call_or_colleague_that_holds_is_not_ended_for_its_silence() {
    let (mut h, _) = H::phone_consults("303");
    h.carmen_rings();
    h.carmen_talks();
    // The phone swaps back to its caller: it holds the consultation call.
    let acts = h.ev(CallEvent::ConsultReoffer {
        req: ReqId(8),
        sdp: Some(
            OFFER
                .replace("40000", "40010")
                .replace("a=fmtp:101 0-16\r\n", "a=fmtp:101 0-16\r\na=inactive\r\n")
                .into_bytes(),
        ),
        invite: true,
    });
    assert!(reoffer_answer(&acts).is_some_and(|a| a.contains("a=inactive")));
    assert!(h.ev(CallEvent::ConsultRtpTimeout).is_empty());
    // Carmen's phone holds too: still consulting.
    let acts = h.ev(CallEvent::AgentReoffer {
        leg: colleague(),
        req: ReqId(9),
        sdp: Some(agent_offer("a=inactive\r\n", "127.0.0.1")),
        invite: true,
    });
    assert!(reoffer_answer(&acts).is_some());
    assert!(h.ev(CallEvent::ColleagueRtpTimeout).is_empty());
    assert_eq!(h.state(), CallState::Consulting);
    // Resumed and silent: over.
    h.ev(CallEvent::ConsultReoffer {
        req: ReqId(10),
        sdp: Some(OFFER.replace("40000", "40010").into_bytes()),
        invite: true,
    });
    let acts = h.ev(CallEvent::ConsultRtpTimeout);
    assert!(consult(&acts).contains(&ConsultAction::HangUp));
    assert_eq!(h.state(), CallState::OnCall);
}
