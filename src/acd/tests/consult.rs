//! Consultation (attended transfer) scenarios on a fake clock: the agent on
//! a call consults a colleague or a queue, then hands the caller over, or
//! keeps it.

use super::*;

/// The consultation's id in these scenarios.
const C: u64 = 100;

/// a1 (level 1) is on call 1; a2 and a3 are ready.
fn on_call() -> H {
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2"), ag("a3")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 6);
    h.answer(1, "a1");
    h.login("a2");
    h.login("a3");
    h.take();
    h
}

fn consult(h: &mut H, to: TransferTarget) {
    h.ev(AcdEvent::Consult {
        call: CallId(1),
        consult: CallId(C),
        to,
    });
}

fn agent(id: &str) -> TransferTarget {
    TransferTarget::Agent(id.into())
}

fn rejected(actions: &[AcdAction]) -> Option<&'static str> {
    actions.iter().find_map(|a| match a {
        AcdAction::ConsultRejected { call, reason } if call.0 == C => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_consulted_colleague_rings_and_the_hand_over_gives_it_the_caller() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    assert_eq!(h.offers(), vec![offer(C, "a2")]);
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(1) });
    h.answer(C, "a2");
    assert_eq!(h.state("a2"), AgentState::OnCall { call: CallId(C) });
    h.ev(AcdEvent::CompleteConsult { consult: CallId(C) });
    let acts = h.take();
    assert!(acts.contains(&AcdAction::ConsultCompleted { call: CallId(C) }));
    assert_eq!(finished(&acts, C), Some(Outcome::Consultation));
    assert_eq!(h.state("a2"), AgentState::OnCall { call: CallId(1) });
    assert!(matches!(h.state("a1"), AgentState::WrapUp { .. }));
    assert_eq!(
        h.acd.call_status(CallId(1)),
        Some(CallStatus::OnCall { agent: "a2".into() })
    );
    // The caller's call ends with its new agent: served once, a2 wraps up.
    h.end(1);
    let acts = h.take();
    assert_eq!(finished(&acts, 1), Some(Outcome::Served));
    assert!(matches!(h.state("a2"), AgentState::WrapUp { .. }));
    // The queue counted one answer, not two.
    let st = h.acd.queue_stats("support", h.now).expect("queue");
    assert_eq!((st.answered, st.abandoned), (1, 0));
}

#[test]
fn a_colleague_who_is_busy_paused_logged_out_or_the_agent_itself_is_refused_at_once() {
    let mut h = on_call();
    h.cmd("a2", AgentCommand::Pause("lunch".into()));
    h.cmd("a3", AgentCommand::Logout);
    h.take();
    for (to, reason) in [
        (agent("a2"), "agent paused"),
        (agent("a3"), "agent logged out"),
        (agent("a1"), "same agent"),
        (agent("nobody"), "unknown agent"),
        (TransferTarget::Queue("nowhere".into()), "unknown queue"),
    ] {
        consult(&mut h, to);
        let acts = h.take();
        assert_eq!(rejected(&acts), Some(reason));
        assert!(!has(&acts, |a| matches!(a, AcdAction::Offer { .. })));
    }
    // A colleague on a call of its own is busy.
    h.cmd("a2", AgentCommand::Ready);
    h.arrive(2, "support", 0);
    h.answer(2, "a2");
    h.take();
    consult(&mut h, agent("a2"));
    assert_eq!(rejected(&h.take()), Some("agent busy"));
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(1) });
}

#[test]
fn a_consultation_that_rings_out_fails_and_the_agent_keeps_its_caller() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    h.take();
    h.at(15);
    let acts = h.take();
    assert!(acts.contains(&AcdAction::CancelOffer {
        call: CallId(C),
        agent: "a2".into()
    }));
    assert_eq!(rejected(&acts), Some("no answer"));
    assert_eq!(finished(&acts, C), Some(Outcome::Consultation));
    assert_eq!(
        h.state("a2"),
        AgentState::Paused {
            reason: "no-answer".into()
        }
    );
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(1) });
    // Another consultation may follow.
    consult(&mut h, agent("a3"));
    assert_eq!(h.offers(), vec![offer(C, "a3")]);
}

#[test]
fn a_colleague_who_declines_is_not_paused() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    h.take();
    h.ev(AcdEvent::OfferFailed {
        call: CallId(C),
        agent: "a2".into(),
        reason: OfferFailReason::Rejected,
    });
    assert_eq!(rejected(&h.take()), Some("declined"));
    assert_eq!(h.state("a2"), AgentState::Available);
}

#[test]
fn a_consultation_to_a_queue_waits_like_a_caller_and_counts_in_no_figure() {
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2")], vec![sales()]));
    h.login("a1");
    h.login("a2");
    h.arrive(1, "support", 6);
    h.arrive(2, "support", 6);
    h.answer(1, "a1");
    h.answer(2, "a2");
    h.take();
    consult(&mut h, TransferTarget::Queue("support".into()));
    let acts = h.take();
    assert!(acts.contains(&AcdAction::ConsultQueued { call: CallId(C) }));
    assert!(has(&acts, |a| matches!(a,
        AcdAction::Announce { call, position: 1, .. } if call.0 == C)));
    // a2 finishes its call: after its wrap-up, the consultation rings it.
    h.end(2);
    h.take();
    h.at(20);
    assert_eq!(h.offers(), vec![offer(C, "a2")]);
    h.answer(C, "a2");
    h.ev(AcdEvent::CompleteConsult { consult: CallId(C) });
    assert_eq!(h.state("a2"), AgentState::OnCall { call: CallId(1) });
    let st = h.acd.queue_stats("support", h.now).expect("queue");
    assert_eq!(st.answered, 2, "the two callers, not the consultation");
}

#[test]
fn a_consultation_to_a_queue_with_nobody_logged_in_is_refused() {
    let other = QueueConfig::new("hardware").skill("hardware", 5);
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales(), other]));
    h.login("a1");
    h.arrive(1, "support", 6);
    h.answer(1, "a1");
    h.take();
    consult(&mut h, TransferTarget::Queue("hardware".into()));
    assert_eq!(rejected(&h.take()), Some("no agents"));
}

#[test]
fn giving_up_frees_a_ringing_colleague_and_wraps_up_one_who_talked() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    h.take();
    // Given up while it rings: a2 is free again at once.
    h.end(C);
    let acts = h.take();
    assert!(acts.contains(&AcdAction::CancelOffer {
        call: CallId(C),
        agent: "a2".into()
    }));
    assert_eq!(finished(&acts, C), Some(Outcome::Consultation));
    assert_eq!(h.state("a2"), AgentState::Available);
    // Given up after they talked: a2 wraps up; a1 still has its caller.
    consult(&mut h, agent("a2"));
    h.answer(C, "a2");
    h.end(C);
    assert!(matches!(h.state("a2"), AgentState::WrapUp { .. }));
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(1) });
    h.end(1);
    assert_eq!(finished(&h.take(), 1), Some(Outcome::Served));
}

#[test]
fn the_call_ending_ends_its_consultation_too() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    h.take();
    h.end(1);
    let acts = h.take();
    assert!(acts.contains(&AcdAction::CancelOffer {
        call: CallId(C),
        agent: "a2".into()
    }));
    assert_eq!(finished(&acts, C), Some(Outcome::Consultation));
    assert_eq!(finished(&acts, 1), Some(Outcome::Served));
    assert_eq!(h.state("a2"), AgentState::Available);
    assert!(matches!(h.state("a1"), AgentState::WrapUp { .. }));
    assert_eq!(h.acd.live_calls(), 0);
}

#[test]
fn a_hand_over_before_the_colleague_answers_is_refused_and_changes_nothing() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    h.take();
    h.ev(AcdEvent::CompleteConsult { consult: CallId(C) });
    assert!(has(&h.take(), |a| matches!(
        a,
        AcdAction::CompletionRefused { .. }
    )));
    assert_eq!(h.state("a2"), AgentState::Offered { call: CallId(C) });
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(1) });
}

#[test]
fn one_consultation_at_a_time_and_no_blind_transfer_meanwhile() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    h.take();
    h.ev(AcdEvent::Consult {
        call: CallId(1),
        consult: CallId(C + 1),
        to: agent("a3"),
    });
    let acts = h.take();
    assert!(acts.contains(&AcdAction::ConsultRejected {
        call: CallId(C + 1),
        reason: "consultation in progress"
    }));
    h.ev(AcdEvent::Transfer {
        call: CallId(1),
        to: TransferTarget::Queue("support".into()),
    });
    assert!(h.take().contains(&AcdAction::TransferRejected {
        call: CallId(1),
        reason: "consultation in progress"
    }));
}

#[test]
fn a_colleague_whose_phone_goes_away_while_it_rings_fails_the_consultation() {
    let mut h = on_call();
    consult(&mut h, agent("a2"));
    h.take();
    h.ev(AcdEvent::AgentUnreachable { agent: "a2".into() });
    assert_eq!(rejected(&h.take()), Some("no answer"));
    assert_eq!(h.state("a2"), AgentState::LoggedOut);
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(1) });
}
