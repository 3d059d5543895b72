//! Scenario tests on a fake clock (base `Instant` + `Duration`s), one
//! behaviour per test.

use std::time::{Duration, Instant};

use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;

struct H {
    acd: Acd,
    t0: Instant,
    now: Instant,
    out: Vec<AcdAction>,
}

impl H {
    fn new(cfg: AcdConfig) -> H {
        let t0 = Instant::now();
        H {
            acd: Acd::new(cfg).expect("valid config"),
            t0,
            now: t0,
            out: Vec::new(),
        }
    }
    fn drain(&mut self) {
        while let Some(a) = self.acd.poll_action() {
            self.out.push(a);
        }
    }
    /// Advance the fake clock to t0 + secs, firing timers in order.
    fn at(&mut self, secs: u64) {
        let target = self.t0 + S(secs);
        while let Some(t) = self.acd.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.acd.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(target);
    }
    fn ev(&mut self, ev: AcdEvent) {
        self.acd.handle_event(self.now, ev);
        self.drain();
    }
    fn take(&mut self) -> Vec<AcdAction> {
        std::mem::take(&mut self.out)
    }
    fn cmd(&mut self, agent: &str, cmd: AgentCommand) {
        self.ev(AcdEvent::AgentCommand {
            agent: agent.into(),
            cmd,
        });
    }
    fn login(&mut self, agent: &str) {
        self.cmd(agent, AgentCommand::Login);
    }
    fn arrive(&mut self, call: u64, queue: &str, priority: u8) {
        self.ev(AcdEvent::CallArrived {
            call: CallId(call),
            queue: queue.into(),
            priority,
            ticket: None,
        });
    }
    fn answer(&mut self, call: u64, agent: &str) {
        self.ev(AcdEvent::AgentAnswered {
            call: CallId(call),
            agent: agent.into(),
        });
    }
    fn end(&mut self, call: u64) {
        self.ev(AcdEvent::CallEnded { call: CallId(call) });
    }
    fn state(&self, agent: &str) -> AgentState {
        self.acd
            .agent_state(agent)
            .cloned()
            .unwrap_or(AgentState::LoggedOut)
    }
    /// Offers (call, agent) among the actions taken so far (and clears them).
    fn offers(&mut self) -> Vec<(u64, String)> {
        self.take()
            .into_iter()
            .filter_map(|a| match a {
                AcdAction::Offer { call, agent, .. }
                | AcdAction::OfferCallback { call, agent, .. } => Some((call.0, agent)),
                _ => None,
            })
            .collect()
    }
}

fn has(actions: &[AcdAction], pred: impl Fn(&AcdAction) -> bool) -> bool {
    actions.iter().any(pred)
}

fn offer(call: u64, agent: &str) -> (u64, String) {
    (call, agent.to_string())
}

fn cfg(agents: Vec<AgentConfig>, queues: Vec<QueueConfig>) -> AcdConfig {
    AcdConfig {
        agents,
        queues,
        ..AcdConfig::default()
    }
}

fn ag(id: &str) -> AgentConfig {
    AgentConfig::new(id, id).skill("software", 6).wrap_up(S(10))
}

fn sales() -> QueueConfig {
    QueueConfig::new("support").skill("software", 5)
}

fn finished(actions: &[AcdAction], call: u64) -> Option<Outcome> {
    actions.iter().find_map(|a| match a {
        AcdAction::CallFinished { call: c, outcome } if c.0 == call => Some(*outcome),
        _ => None,
    })
}

#[test]
fn longest_idle_agent_gets_the_call() {
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2")], vec![sales()]));
    h.login("a2");
    h.at(5);
    h.login("a1");
    h.at(10);
    h.take();
    h.arrive(1, "support", 0);
    assert_eq!(h.offers(), vec![offer(1, "a2")]);
    assert_eq!(h.state("a2"), AgentState::Offered { call: CallId(1) });
}

#[test]
fn best_skill_strategy_prefers_higher_level() {
    let q = sales().strategy(Strategy::BestSkill);
    let a1 = AgentConfig::new("a1", "A").skill("software", 6);
    let a2 = AgentConfig::new("a2", "B").skill("software", 9);
    let mut h = H::new(cfg(vec![a1, a2], vec![q]));
    h.login("a1");
    h.at(5);
    h.login("a2");
    h.take();
    h.arrive(1, "support", 0);
    assert_eq!(h.offers(), vec![offer(1, "a2")]);
}

#[test]
fn fewest_calls_counts_calls_since_login() {
    let q = sales().strategy(Strategy::FewestCalls);
    let mut h = H::new(cfg(vec![ag("a1").wrap_up(S(1)), ag("a2")], vec![q]));
    h.login("a1");
    h.login("a2");
    h.take();
    h.arrive(1, "support", 0);
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
    h.answer(1, "a1");
    h.at(5);
    h.end(1);
    h.at(6); // a1 available again, idle since 6
    h.cmd("a2", AgentCommand::Pause("coffee".into()));
    h.at(8);
    h.cmd("a2", AgentCommand::Ready); // a2 idle since 8, but 0 calls
    h.at(10);
    h.take();
    h.arrive(2, "support", 0);
    assert_eq!(h.offers(), vec![offer(2, "a2")]);
    assert_eq!(h.acd.agent_calls("a1"), Some(1));
    h.cmd("a1", AgentCommand::Logout);
    h.login("a1");
    assert_eq!(h.acd.agent_calls("a1"), Some(0));
}

#[test]
fn round_robin_rotates() {
    let q = sales().strategy(Strategy::RoundRobin);
    let agents = vec![
        ag("a1").wrap_up(S(0)),
        ag("a2").wrap_up(S(0)),
        ag("a3").wrap_up(S(0)),
    ];
    let mut h = H::new(cfg(agents, vec![q]));
    for a in ["a3", "a2", "a1"] {
        h.login(a);
    }
    let mut got = Vec::new();
    for call in 1..=4u64 {
        h.take();
        h.arrive(call, "support", 0);
        let o = h.offers();
        assert_eq!(o.len(), 1);
        got.push(o[0].1.clone());
        h.answer(call, &o[0].1);
        h.end(call);
        h.at(call * 10);
    }
    assert_eq!(got, vec!["a1", "a2", "a3", "a1"]);
}

#[test]
fn ring_all_offers_every_qualified_agent_and_first_answer_wins() {
    let q = sales().strategy(Strategy::RingAll);
    let unq = AgentConfig::new("x", "X").skill("software", 2);
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2"), ag("a3"), unq], vec![q]));
    for a in ["a1", "a2", "a3", "x"] {
        h.login(a);
    }
    h.take();
    h.arrive(1, "support", 0);
    let mut o = h.offers();
    o.sort();
    assert_eq!(o, vec![offer(1, "a1"), offer(1, "a2"), offer(1, "a3")]);
    for a in ["a1", "a2", "a3"] {
        assert_eq!(h.state(a), AgentState::Offered { call: CallId(1) });
    }
    h.answer(1, "a2");
    let acts = h.take();
    for a in ["a1", "a3"] {
        assert!(has(&acts, |x| *x
            == AcdAction::CancelOffer {
                call: CallId(1),
                agent: a.into()
            }));
        assert_eq!(h.state(a), AgentState::Available);
    }
    assert_eq!(h.state("a2"), AgentState::OnCall { call: CallId(1) });
    // A late answer from a cancelled leg is refused, not a second call.
    h.answer(1, "a1");
    assert!(has(&h.take(), |x| *x
        == AcdAction::CancelOffer {
            call: CallId(1),
            agent: "a1".into()
        }));
    assert_eq!(h.state("a1"), AgentState::Available);
    h.arrive(2, "support", 0);
    let mut o = h.offers();
    o.sort();
    assert_eq!(o, vec![offer(2, "a1"), offer(2, "a3")]);
}

#[test]
fn ring_timeout_requeues_at_head_and_pauses_agent() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.arrive(2, "support", 0);
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
    h.at(14);
    assert_eq!(h.state("a1"), AgentState::Offered { call: CallId(1) });
    h.at(15);
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::CancelOffer {
            call: CallId(1),
            agent: "a1".into()
        }));
    assert_eq!(
        h.state("a1"),
        AgentState::Paused {
            reason: "no-answer".into()
        }
    );
    assert_eq!(h.acd.position_of(CallId(1)), Some(1));
    assert_eq!(h.acd.position_of(CallId(2)), Some(2));
    h.cmd("a1", AgentCommand::Ready);
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
}

#[test]
fn reject_requeues_at_head_and_pauses_agent() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 3);
    h.arrive(2, "support", 3);
    h.take();
    h.ev(AcdEvent::OfferFailed {
        call: CallId(1),
        agent: "a1".into(),
        reason: OfferFailReason::Rejected,
    });
    assert_eq!(
        h.state("a1"),
        AgentState::Paused {
            reason: "no-answer".into()
        }
    );
    assert_eq!(h.acd.position_of(CallId(1)), Some(1));
    assert_eq!(h.acd.position_of(CallId(2)), Some(2));
    assert!(h.offers().is_empty());
}

#[test]
fn caller_hangup_during_offer_cancels_agent_leg() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.take();
    h.ev(AcdEvent::CallerHungUp { call: CallId(1) });
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::CancelOffer {
            call: CallId(1),
            agent: "a1".into()
        }));
    assert_eq!(finished(&acts, 1), Some(Outcome::Abandoned));
    assert_eq!(h.state("a1"), AgentState::Available);
}

#[test]
fn abandoned_caller_leaves_queue_at_once() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.arrive(1, "support", 0);
    h.arrive(2, "support", 0);
    h.at(3);
    h.ev(AcdEvent::CallerHungUp { call: CallId(1) });
    assert_eq!(finished(&h.take(), 1), Some(Outcome::Abandoned));
    assert_eq!(h.acd.position_of(CallId(1)), None);
    assert_eq!(h.acd.position_of(CallId(2)), Some(1));
    let st = h.acd.queue_stats("support", h.now).expect("queue");
    // After 3 s: a short abandon (under 5 s), left out of the window's
    // abandons but counted in the total.
    assert_eq!((st.waiting, st.abandoned, st.abandoned_total), (1, 0, 1));
    h.at(10);
    h.ev(AcdEvent::CallerHungUp { call: CallId(2) });
    let acts = h.take();
    assert!(has(&acts, |x| matches!(
        x,
        AcdAction::Measured(Measure::Abandoned {
            queue: 0,
            short: false,
            within: true,
            ..
        })
    )));
    let st = h.acd.queue_stats("support", h.now).expect("queue");
    assert_eq!((st.waiting, st.abandoned, st.abandoned_total), (0, 1, 2));
}

#[test]
fn wrap_up_then_available() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.answer(1, "a1");
    h.at(10);
    h.end(1);
    assert_eq!(finished(&h.take(), 1), Some(Outcome::Served));
    assert_eq!(
        h.state("a1"),
        AgentState::WrapUp {
            until: h.t0 + S(20)
        }
    );
    h.at(15);
    h.arrive(2, "support", 0);
    assert!(h.offers().is_empty(), "no offer during wrap-up");
    h.at(19);
    assert!(matches!(h.state("a1"), AgentState::WrapUp { .. }));
    h.at(20);
    assert_eq!(h.offers(), vec![offer(2, "a1")]);
    // AHT sample = talk 10 s + wrap 10 s.
    let st = h.acd.queue_stats("support", h.now).expect("queue");
    assert_eq!(st.average_handle_time, S(20));
}

#[test]
fn the_end_of_a_wrap_up_names_the_last_calls_ticket_and_how_long_it_took() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.ev(AcdEvent::CallArrived {
        call: CallId(1),
        queue: "support".into(),
        priority: 0,
        ticket: Some("100007".into()),
    });
    h.answer(1, "a1");
    h.at(10);
    h.end(1);
    h.take();
    h.at(16);
    h.cmd("a1", AgentCommand::Ready);
    assert!(h.take().contains(&AcdAction::WrapUpEnded {
        agent: "a1".into(),
        ticket: Some("100007".into()),
        after: S(6),
    }));
}

#[test]
fn ready_during_wrap_up_ends_it_and_the_next_caller_is_offered() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.answer(1, "a1");
    h.at(10);
    h.end(1);
    h.take();
    h.at(12);
    h.arrive(2, "support", 0);
    assert!(h.offers().is_empty(), "no offer during wrap-up");
    h.cmd("a1", AgentCommand::Ready);
    assert_eq!(h.offers(), vec![offer(2, "a1")]);
    // AHT sample = talk 10 s + the 2 s of wrap-up taken.
    let st = h.acd.queue_stats("support", h.now).expect("queue");
    assert_eq!(st.average_handle_time, S(12));
    // The old wrap-up timer does not fire into the new call.
    h.answer(2, "a1");
    h.at(20);
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(2) });
}

#[test]
fn pause_during_call_takes_effect_after_wrap_up() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.answer(1, "a1");
    h.cmd("a1", AgentCommand::Pause("lunch".into()));
    assert_eq!(h.state("a1"), AgentState::OnCall { call: CallId(1) });
    h.at(5);
    h.end(1);
    assert!(matches!(h.state("a1"), AgentState::WrapUp { .. }));
    h.at(15);
    assert_eq!(
        h.state("a1"),
        AgentState::Paused {
            reason: "lunch".into()
        }
    );
}

#[test]
fn logout_during_call_takes_effect_after_wrap_up() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.answer(1, "a1");
    h.cmd("a1", AgentCommand::Logout);
    h.end(1);
    h.at(10);
    assert_eq!(h.state("a1"), AgentState::LoggedOut);
}

#[test]
fn illegal_command_is_rejected() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.cmd("a1", AgentCommand::Ready);
    h.cmd("nobody", AgentCommand::Login);
    let acts = h.take();
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, AcdAction::CommandRejected { .. }))
            .count(),
        2
    );
    assert_eq!(h.state("a1"), AgentState::LoggedOut);
}

#[test]
fn higher_priority_caller_served_first() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.arrive(1, "support", 0);
    h.at(1);
    h.arrive(2, "support", 5);
    assert_eq!(h.acd.position_of(CallId(2)), Some(1));
    h.login("a1");
    assert_eq!(h.offers(), vec![offer(2, "a1")]);
}

#[test]
fn fifo_within_priority() {
    let mut h = H::new(cfg(vec![ag("a1").wrap_up(S(0))], vec![sales()]));
    for c in 1..=3 {
        h.arrive(c, "support", 4);
        h.at(c);
    }
    h.login("a1");
    let mut order = Vec::new();
    for step in 0..3u64 {
        let o = h.offers();
        let (c, a) = o[0].clone();
        order.push(c);
        h.answer(c, &a);
        h.end(c);
        h.at(10 + step);
    }
    assert_eq!(order, vec![1, 2, 3]);
}

#[test]
fn widening_after_60s_includes_level2() {
    let q = sales().widen(S(60), Widen::AlsoLevel2);
    let l2 = ag("l2").support_level(2);
    let mut h = H::new(cfg(vec![l2], vec![q]));
    h.login("l2");
    h.arrive(1, "support", 0);
    h.at(59);
    assert!(h.offers().is_empty());
    h.at(60);
    assert_eq!(h.offers(), vec![offer(1, "l2")]);
}

#[test]
fn widening_lowers_min_skill() {
    let q = QueueConfig::new("support")
        .skill("software", 7)
        .widen(S(30), Widen::LowerMinSkill(2));
    let mut h = H::new(cfg(
        vec![AgentConfig::new("a1", "A").skill("software", 5)],
        vec![q],
    ));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.at(29);
    assert!(h.offers().is_empty());
    h.at(30);
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
}

#[test]
fn max_wait_overflows_to_other_queue() {
    let a = sales().max_wait(
        S(60),
        Fallback::Overflow {
            queue: "general".into(),
        },
    );
    let b = QueueConfig::new("general");
    let gen = AgentConfig::new("g", "G"); // no software skill
    let mut h = H::new(cfg(vec![gen], vec![a, b]));
    h.login("g");
    h.arrive(1, "support", 2);
    h.at(59);
    assert!(h.offers().is_empty());
    h.at(60);
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::Overflowed {
            call: CallId(1),
            from: "support".into(),
            to: "general".into()
        }));
    assert!(has(
        &acts,
        |x| matches!(x, AcdAction::Offer { call: CallId(1), agent, .. } if agent == "g")
    ));
}

#[test]
fn max_wait_offers_callback() {
    let q = sales().max_wait(S(30), Fallback::OfferCallback);
    let mut h = H::new(cfg(vec![ag("a1")], vec![q]));
    h.arrive(1, "support", 0);
    h.at(30);
    let acts = h.take();
    assert_eq!(
        acts.iter()
            .filter(|a| **a == AcdAction::OfferCallbackToCaller { call: CallId(1) })
            .count(),
        1
    );
    assert_eq!(h.acd.position_of(CallId(1)), Some(1));
    h.at(120);
    assert!(!has(&h.take(), |a| matches!(
        a,
        AcdAction::OfferCallbackToCaller { .. }
    )));
}

#[test]
fn no_agents_logged_in_plays_message() {
    let q = sales().on_no_agents(Fallback::MessageAndHangup {
        prompt: "closed".into(),
    });
    let mut h = H::new(cfg(vec![ag("a1")], vec![q]));
    h.arrive(1, "support", 0);
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::PlayAndHangup {
            call: CallId(1),
            prompt: "closed".into()
        }));
    assert_eq!(finished(&acts, 1), Some(Outcome::MessageHangup));
    // Paused counts as logged in: the call is accepted.
    h.login("a1");
    h.cmd("a1", AgentCommand::Pause("meeting".into()));
    h.arrive(2, "support", 0);
    assert_eq!(finished(&h.take(), 2), None);
    assert_eq!(h.acd.position_of(CallId(2)), Some(1));
}

#[test]
fn a_call_for_an_unknown_queue_is_blocked() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.arrive(1, "nowhere", 0);
    let acts = h.take();
    assert!(has(&acts, |x| *x == AcdAction::Block { call: CallId(1) }));
    assert_eq!(finished(&acts, 1), Some(Outcome::Blocked));
}

#[test]
fn callback_keeps_place_and_waits_for_the_callers_line_to_go() {
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2")], vec![sales()]));
    for c in 1..=3 {
        h.arrive(c, "support", 0);
    }
    h.ev(AcdEvent::RequestCallback {
        call: CallId(1),
        number: Some("+34600".into()),
    });
    assert!(has(&h.take(), |x| *x
        == AcdAction::ReleaseLine { call: CallId(1) }));
    assert_eq!(h.acd.position_of(CallId(1)), Some(1));
    assert_eq!(h.acd.position_of(CallId(2)), Some(2));
    // Still on the line (hearing the confirmation): not called back yet.
    h.login("a1");
    assert_eq!(h.offers(), vec![offer(2, "a1")]);
    // The driver hangs the line up: that is not an abandon, and the
    // callback may go ahead now.
    h.ev(AcdEvent::CallerHungUp { call: CallId(1) });
    assert_eq!(finished(&h.take(), 1), None);
    h.login("a2");
    assert!(has(&h.take(), |x| *x
        == AcdAction::OfferCallback {
            call: CallId(1),
            agent: "a2".into(),
            number: Some("+34600".into()),
            ticket: None
        }));
    h.answer(1, "a2");
    h.ev(AcdEvent::CallbackConnected { call: CallId(1) });
    assert_eq!(h.state("a2"), AgentState::OnCall { call: CallId(1) });
    h.end(1);
    assert_eq!(finished(&h.take(), 1), Some(Outcome::CalledBack));
}

#[test]
fn a_callback_asked_while_the_offer_rings_withdraws_it_and_keeps_the_place() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.arrive(2, "support", 0);
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
    h.ev(AcdEvent::RequestCallback {
        call: CallId(1),
        number: None,
    });
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::CancelOffer {
            call: CallId(1),
            agent: "a1".into()
        }));
    assert!(has(&acts, |x| *x == AcdAction::ReleaseLine { call: CallId(1) }));
    // The agent is not paused for it, and the next caller rings meanwhile.
    assert_eq!(h.state("a1"), AgentState::Offered { call: CallId(2) });
    assert_eq!(h.acd.position_of(CallId(1)), Some(1), "the place is kept");
    assert_eq!(finished(&acts, 1), None);
}

#[test]
fn a_callback_for_a_caller_transferred_to_one_agent_is_refused() {
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.answer(1, "a1");
    h.ev(AcdEvent::Transfer {
        call: CallId(1),
        to: TransferTarget::Agent("a2".into()),
    });
    assert!(has(&h.take(), |x| *x
        == AcdAction::TransferRejected {
            call: CallId(1),
            reason: "agent logged out"
        }));
    h.login("a2");
    h.cmd("a2", AgentCommand::Pause("x".into()));
    h.ev(AcdEvent::Transfer {
        call: CallId(1),
        to: TransferTarget::Agent("a2".into()),
    });
    assert!(has(&h.take(), |x| *x
        == AcdAction::Transferred { call: CallId(1) }));
    h.ev(AcdEvent::RequestCallback {
        call: CallId(1),
        number: None,
    });
    assert!(has(&h.take(), |x| *x
        == AcdAction::CallbackRefused { call: CallId(1) }));
}

#[test]
fn a_due_callback_without_a_free_line_waits_and_looks_again() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.arrive(1, "support", 0);
    h.ev(AcdEvent::RequestCallback {
        call: CallId(1),
        number: None,
    });
    h.ev(AcdEvent::CallerHungUp { call: CallId(1) });
    h.arrive(2, "support", 0);
    h.take();
    h.login("a1");
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
    // The driver could not claim a line for the customer's leg: the agent
    // takes the next caller meanwhile, without a pause.
    h.ev(AcdEvent::NoLineForCallback { call: CallId(1) });
    assert_eq!(h.offers(), vec![offer(2, "a1")]);
    h.answer(2, "a1");
    h.end(2);
    h.cmd("a1", AgentCommand::Ready);
    h.at(2);
    assert_eq!(
        h.offers(),
        vec![offer(1, "a1")],
        "looked again: a line is free"
    );
    assert_eq!(
        h.acd.call_status(CallId(1)),
        Some(CallStatus::Offered {
            agents: vec!["a1".into()]
        })
    );
}

#[test]
fn callback_retried_then_given_up() {
    let mut c = cfg(vec![ag("a1")], vec![sales()]);
    c.callback_retries = 1;
    c.callback_retry_delay = S(60);
    let mut h = H::new(c);
    h.arrive(1, "support", 0);
    h.ev(AcdEvent::RequestCallback {
        call: CallId(1),
        number: None,
    });
    h.ev(AcdEvent::CallerHungUp { call: CallId(1) });
    h.login("a1");
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
    h.answer(1, "a1");
    h.at(5);
    h.ev(AcdEvent::CallbackFailed { call: CallId(1) });
    assert_eq!(h.state("a1"), AgentState::Available);
    assert_eq!(
        h.acd.call_status(CallId(1)),
        Some(CallStatus::Queued {
            queue: "support".into(),
            callback: true
        })
    );
    h.at(64);
    assert!(h.offers().is_empty(), "retry waits for the delay");
    h.at(65);
    assert_eq!(h.offers(), vec![offer(1, "a1")]);
    h.ev(AcdEvent::CallbackFailed { call: CallId(1) });
    assert_eq!(finished(&h.take(), 1), Some(Outcome::CallbackGaveUp));
    assert_eq!(h.state("a1"), AgentState::Available);
}

#[test]
fn callback_customer_no_answer_times_out() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.arrive(1, "support", 0);
    h.ev(AcdEvent::RequestCallback {
        call: CallId(1),
        number: None,
    });
    h.login("a1");
    h.answer(1, "a1");
    h.at(15);
    assert_eq!(
        h.state("a1"),
        AgentState::Available,
        "agent never stuck on a dead callback"
    );
    assert!(matches!(
        h.acd.call_status(CallId(1)),
        Some(CallStatus::Queued { callback: true, .. })
    ));
}

#[test]
fn position_and_ewt_announced_on_entry_and_periodically() {
    let q = sales().announce_every(S(30));
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2")], vec![q]));
    h.login("a1");
    h.cmd("a1", AgentCommand::Pause("x".into())); // logged in but not serving
    h.take();
    h.arrive(1, "support", 0);
    h.arrive(2, "support", 0);
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::Announce {
            call: CallId(1),
            position: 1,
            ewt_minutes: 3
        }));
    assert!(has(&acts, |x| *x
        == AcdAction::Announce {
            call: CallId(2),
            position: 2,
            ewt_minutes: 6
        }));
    assert_eq!(h.acd.estimated_wait_minutes(CallId(2)), Some(6));
    h.at(29);
    assert!(h.take().is_empty());
    h.at(30);
    let acts = h.take();
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, AcdAction::Announce { .. }))
            .count(),
        2
    );
    // A second serving agent (Available counts; Offered too) halves the EWT.
    h.login("a2"); // takes call 1; call 2 is now first: 1 × 180 s / 1 serving = 3 min
    assert_eq!(h.acd.position_of(CallId(2)), Some(1));
    assert_eq!(h.acd.estimated_wait_minutes(CallId(2)), Some(3));
    h.cmd("a1", AgentCommand::Ready); // a1 takes call 2? no: a1 Available now, 2 serving
    assert!(h.offers().contains(&offer(2, "a1")));
}

#[test]
fn transfer_requeues_with_priority() {
    let a = sales();
    let b = QueueConfig::new("billing").skill("billing", 5);
    let billing = AgentConfig::new("b1", "B").skill("billing", 6);
    let mut h = H::new(cfg(vec![ag("a1"), billing], vec![a, b]));
    h.login("a1");
    h.login("b1");
    h.cmd("b1", AgentCommand::Pause("busy".into()));
    h.arrive(2, "billing", 0);
    h.ev(AcdEvent::CallArrived {
        call: CallId(1),
        queue: "support".into(),
        priority: 7,
        ticket: Some("T-9".into()),
    });
    h.answer(1, "a1");
    h.take();
    h.ev(AcdEvent::Transfer {
        call: CallId(1),
        to: TransferTarget::Queue("billing".into()),
    });
    assert!(matches!(h.state("a1"), AgentState::WrapUp { .. }));
    assert_eq!(h.acd.position_of(CallId(1)), Some(1));
    assert_eq!(h.acd.position_of(CallId(2)), Some(2));
    h.cmd("b1", AgentCommand::Ready);
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::Offer {
            call: CallId(1),
            agent: "b1".into(),
            ticket: Some("T-9".into())
        }));
    h.answer(1, "b1");
    h.end(1);
    assert_eq!(finished(&h.take(), 1), Some(Outcome::Served));
}

#[test]
fn a_lost_agent_is_paused_and_its_caller_is_offered_first_to_the_next() {
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.answer(1, "a1");
    h.arrive(2, "support", 0);
    h.take();
    h.ev(AcdEvent::AgentLost { call: CallId(1) });
    assert_eq!(
        h.state("a1"),
        AgentState::Paused {
            reason: "unreachable".into()
        }
    );
    assert_eq!(h.acd.position_of(CallId(1)), Some(1), "ahead of call 2");
    h.login("a2");
    assert_eq!(h.offers(), vec![offer(1, "a2")]);
    h.answer(1, "a2");
    h.end(1);
    assert_eq!(finished(&h.take(), 1), Some(Outcome::Served));
    // A call not on a call is left alone.
    h.ev(AcdEvent::AgentLost { call: CallId(2) });
    assert_eq!(h.acd.position_of(CallId(2)), Some(1));
}

#[test]
fn transfer_to_agent_waits_for_that_agent() {
    let mut h = H::new(cfg(vec![ag("a1"), ag("a2"), ag("a3")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.answer(1, "a1");
    h.login("a2");
    h.cmd("a2", AgentCommand::Pause("x".into()));
    h.login("a3");
    h.take();
    h.ev(AcdEvent::Transfer {
        call: CallId(1),
        to: TransferTarget::Agent("a2".into()),
    });
    assert!(
        h.offers().is_empty(),
        "a3 is free but the call waits for a2"
    );
    assert_eq!(
        h.acd.call_status(CallId(1)),
        Some(CallStatus::WaitingForAgent { agent: "a2".into() })
    );
    h.cmd("a2", AgentCommand::Ready);
    assert_eq!(h.offers(), vec![offer(1, "a2")]);
    // Transfer to a logged-out agent is refused and the call stays put.
    h.answer(1, "a2");
    h.cmd("a1", AgentCommand::Logout);
    h.at(10);
    h.ev(AcdEvent::Transfer {
        call: CallId(1),
        to: TransferTarget::Agent("a1".into()),
    });
    assert!(has(&h.take(), |x| matches!(
        x,
        AcdAction::TransferRejected { .. }
    )));
    assert_eq!(h.state("a2"), AgentState::OnCall { call: CallId(1) });
}

#[test]
fn unreachable_agent_is_logged_out_and_offer_withdrawn() {
    let mut h = H::new(cfg(vec![ag("a1")], vec![sales()]));
    h.login("a1");
    h.arrive(1, "support", 0);
    h.arrive(2, "support", 0);
    h.take();
    h.ev(AcdEvent::AgentUnreachable { agent: "a1".into() });
    let acts = h.take();
    assert!(has(&acts, |x| *x
        == AcdAction::CancelOffer {
            call: CallId(1),
            agent: "a1".into()
        }));
    assert_eq!(h.state("a1"), AgentState::LoggedOut);
    assert_eq!(h.acd.position_of(CallId(1)), Some(1));
    assert_eq!(h.acd.position_of(CallId(2)), Some(2));
}

#[test]
fn service_level_counts_answers_within_target() {
    let mut h = H::new(cfg(vec![ag("a1").wrap_up(S(0))], vec![sales()]));
    h.arrive(1, "support", 0);
    h.arrive(2, "support", 0);
    h.at(10);
    h.login("a1");
    h.answer(1, "a1");
    h.end(1);
    h.at(24); // wrap-up (0 s) ends at 10, call 2 rings from 10
    h.answer(2, "a1"); // waited 24 s > 20 s target
    let st = h.acd.queue_stats("support", h.now).expect("queue");
    assert_eq!((st.answered, st.answered_within_target), (2, 1));
    assert_eq!(st.service_level, Some(0.5));
    assert_eq!(st.agents.on_call, 1);
    assert_eq!(h.acd.queue_stats("nope", h.now), None);
    // The window (an hour) slides without any new record: the answer at
    // 10 s leaves it first (the one within target), then the one at 24 s.
    let later = h.t0 + S(3611);
    let st = h.acd.queue_stats("support", later).expect("queue");
    assert_eq!((st.answered, st.answered_within_target), (1, 0));
    let st = h.acd.queue_stats("support", h.t0 + S(3625)).expect("queue");
    assert_eq!((st.answered, st.answered_within_target), (0, 0));
    assert_eq!(st.service_level, None);
}

#[test]
fn config_validation_rejects_unknown_overflow_queue() {
    let q = sales().max_wait(
        S(10),
        Fallback::Overflow {
            queue: "nowhere".into(),
        },
    );
    assert!(matches!(
        Acd::new(cfg(vec![], vec![q])),
        Err(AcdConfigError::UnknownOverflowQueue { .. })
    ));
    let dup = cfg(vec![ag("a"), ag("a")], vec![]);
    assert_eq!(
        Acd::new(dup).err(),
        Some(AcdConfigError::DuplicateAgent("a".into()))
    );
    let bad = cfg(vec![AgentConfig::new("a", "A").skill("x", 11)], vec![]);
    assert!(matches!(
        Acd::new(bad),
        Err(AcdConfigError::SkillLevelOutOfRange { .. })
    ));
    let unknown_skill = cfg(
        vec![ag("a")],
        vec![QueueConfig::new("q").skill("klingon", 1)],
    );
    assert!(Acd::new(unknown_skill).is_ok());
}

#[test]
fn no_agents_overflow_loop_is_bounded() {
    let a = QueueConfig::new("a").on_no_agents(Fallback::Overflow { queue: "b".into() });
    let b = QueueConfig::new("b").on_no_agents(Fallback::Overflow { queue: "a".into() });
    let mut h = H::new(cfg(vec![], vec![a, b]));
    h.arrive(1, "a", 0);
    assert!(matches!(
        h.acd.call_status(CallId(1)),
        Some(CallStatus::Queued { .. })
    ));
}

mod consult;
