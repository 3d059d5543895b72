//! Property tests: random sequences of events and time steps against a
//! three-queue, four-agent setup, with invariants checked after every step:
//! - an agent is never offered two calls at once; an Offered agent's call is
//!   exactly one, and that call lists the agent among its legs;
//! - no caller is lost: every arrived call is either live in exactly one place
//!   or finished with exactly one outcome;
//! - FIFO within a priority: a never-offered, non-callback call is never offered
//!   while an earlier-entered one of the same queue and priority still waits
//!   (calls requeued at head, callbacks and transfers are excluded);
//! - per-queue agent counters match the agents' states;
//! - liveness: once every agent is ready and answers, and time passes, every
//!   call ends with an outcome.
//!
//! Consultations (an agent on a call consulting a colleague or a queue, then
//! handing over) are among the events: their entries must keep the same
//! invariants, and finish with their own outcome.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::{
    any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig,
    TestCaseError,
};

use super::Strategy;
use super::*;
use proptest::strategy::Strategy as _;

const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];
const QUEUES: [&str; 3] = ["sw", "gen", "bill"];

fn config(strategy: Strategy, wrap: u64) -> AcdConfig {
    let w = Duration::from_secs(wrap);
    let agents = vec![
        AgentConfig::new("a0", "A0").skill("software", 8).wrap_up(w),
        AgentConfig::new("a1", "A1").skill("software", 5).wrap_up(w),
        AgentConfig::new("a2", "A2")
            .skill("software", 3)
            .support_level(2)
            .wrap_up(w),
        AgentConfig::new("a3", "A3").skill("billing", 6).wrap_up(w),
    ];
    let s = Duration::from_secs;
    let queues = vec![
        QueueConfig::new("sw")
            .skill("software", 5)
            .strategy(strategy)
            .widen(s(20), Widen::AlsoLevel2)
            .widen(s(40), Widen::LowerMinSkill(2))
            .max_wait(
                s(90),
                Fallback::Overflow {
                    queue: "gen".into(),
                },
            )
            .announce_every(s(30)),
        QueueConfig::new("gen").ring_timeout(s(10)).max_wait(
            s(120),
            Fallback::MessageAndHangup {
                prompt: "sorry".into(),
            },
        ),
        QueueConfig::new("bill")
            .skill("billing", 5)
            .max_wait(s(60), Fallback::OfferCallback)
            .on_no_agents(Fallback::OfferCallback),
    ];
    AcdConfig {
        agents,
        queues,
        callback_retries: 1,
        callback_retry_delay: s(20),
        ..AcdConfig::default()
    }
}

/// Agents qualified at each queue's widest level.
fn qualified(queue: &str) -> &'static [&'static str] {
    match queue {
        "sw" => &["a0", "a1", "a2"],
        "gen" => &["a0", "a1", "a3"],
        _ => &["a3"],
    }
}

#[derive(Debug, Clone)]
enum Op {
    Arrive {
        queue: usize,
        prio: u8,
    },
    HangUp(usize),
    Cmd {
        agent: usize,
        cmd: u8,
    },
    Unreachable(usize),
    Answer(usize),
    Fail(usize, u8),
    End(usize),
    RequestCallback(usize),
    CallbackConnected(usize),
    CallbackFailed(usize),
    NoLine(usize),
    Transfer(usize, usize),
    Consult(usize, usize),
    CompleteConsult(usize),
    Advance(u64),
    /// An out-of-place event for an arbitrary call/agent (robustness).
    Junk {
        kind: u8,
        call: usize,
        agent: usize,
    },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3u8).prop_map(|(queue, prio)| Op::Arrive { queue, prio }),
        1 => any::<usize>().prop_map(Op::HangUp),
        3 => (0..4usize, 0..4u8).prop_map(|(agent, cmd)| Op::Cmd { agent, cmd }),
        1 => (0..4usize).prop_map(Op::Unreachable),
        3 => any::<usize>().prop_map(Op::Answer),
        1 => (any::<usize>(), 0..3u8).prop_map(|(i, r)| Op::Fail(i, r)),
        2 => any::<usize>().prop_map(Op::End),
        1 => any::<usize>().prop_map(Op::RequestCallback),
        1 => any::<usize>().prop_map(Op::CallbackConnected),
        1 => any::<usize>().prop_map(Op::CallbackFailed),
        1 => any::<usize>().prop_map(Op::NoLine),
        1 => (any::<usize>(), 0..7usize).prop_map(|(i, t)| Op::Transfer(i, t)),
        1 => (any::<usize>(), 0..7usize).prop_map(|(i, t)| Op::Consult(i, t)),
        1 => any::<usize>().prop_map(Op::CompleteConsult),
        3 => (0..40u64).prop_map(Op::Advance),
        1 => (0..6u8, any::<usize>(), 0..4usize).prop_map(|(kind, call, agent)| Op::Junk { kind, call, agent }),
    ]
}

fn strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
    prop_oneof![
        Just(Strategy::LongestIdle),
        Just(Strategy::BestSkill),
        Just(Strategy::FewestCalls),
        Just(Strategy::RoundRobin),
        Just(Strategy::RingAll),
    ]
}

struct World {
    acd: Acd,
    now: Instant,
    next_id: u64,
    arrived: Vec<u64>,
    live: BTreeSet<u64>,
    outcomes: HashMap<u64, Outcome>,
    /// agent -> call it is ringing for, as told by the actions.
    outstanding: HashMap<String, CallId>,
    /// queue -> fresh (never offered, not callback) waiting call -> (priority, entry seq).
    fresh: HashMap<String, BTreeMap<u64, (u8, u64)>>,
    seq: u64,
    callbacks: HashSet<u64>,
    /// Consultations the ACD took (their own ids).
    consults: BTreeSet<u64>,
}

impl World {
    fn new(strategy: Strategy, wrap: u64) -> World {
        World {
            acd: Acd::new(config(strategy, wrap)).expect("valid"),
            now: Instant::now(),
            next_id: 1,
            arrived: Vec::new(),
            live: BTreeSet::new(),
            outcomes: HashMap::new(),
            outstanding: HashMap::new(),
            fresh: HashMap::new(),
            seq: 0,
            callbacks: HashSet::new(),
            consults: BTreeSet::new(),
        }
    }

    fn pick<T: Clone>(v: &[T], i: usize) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            v.get(i % v.len()).cloned()
        }
    }

    fn live_vec(&self) -> Vec<u64> {
        self.live.iter().copied().collect()
    }

    fn agents_in(&self, f: impl Fn(&AgentState) -> Option<CallId>) -> Vec<(CallId, String)> {
        AGENTS
            .iter()
            .filter_map(|a| {
                self.acd
                    .agent_state(a)
                    .and_then(&f)
                    .map(|c| (c, a.to_string()))
            })
            .collect()
    }

    fn offered(&self) -> Vec<(CallId, String)> {
        self.agents_in(|s| match s {
            AgentState::Offered { call } => Some(*call),
            _ => None,
        })
    }

    fn on_call(&self) -> Vec<(CallId, String)> {
        self.agents_in(|s| match s {
            AgentState::OnCall { call } => Some(*call),
            _ => None,
        })
    }

    fn untaint(&mut self, call: u64) -> Option<(String, u8, u64)> {
        for (q, m) in self.fresh.iter_mut() {
            if let Some((p, s)) = m.remove(&call) {
                return Some((q.clone(), p, s));
            }
        }
        None
    }

    fn event(&mut self, ev: AcdEvent) -> Result<(), TestCaseError> {
        self.acd.handle_event(self.now, ev);
        self.drain()
    }

    fn advance(&mut self, secs: u64) -> Result<(), TestCaseError> {
        let target = self.now + Duration::from_secs(secs);
        while let Some(t) = self.acd.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.acd.handle_timeout(self.now);
            self.drain()?;
        }
        self.now = target;
        Ok(())
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        while let Some(a) = self.acd.poll_action() {
            match a {
                AcdAction::Offer { call, agent, .. }
                | AcdAction::OfferCallback { call, agent, .. } => {
                    prop_assert!(
                        !self.outstanding.contains_key(&agent),
                        "{agent} offered {call:?} while ringing for {:?}",
                        self.outstanding.get(&agent)
                    );
                    self.outstanding.insert(agent, call);
                    if let Some((q, p, s)) = self.untaint(call.0) {
                        let earlier: Vec<u64> = self
                            .fresh
                            .get(&q)
                            .into_iter()
                            .flatten()
                            .filter(|(_, (p2, s2))| *p2 == p && *s2 < s)
                            .map(|(c, _)| *c)
                            .collect();
                        prop_assert!(
                            earlier.is_empty(),
                            "FIFO: {call:?} offered before {earlier:?} in {q}"
                        );
                    }
                }
                AcdAction::CancelOffer { call, agent }
                    if self.outstanding.get(&agent) == Some(&call) =>
                {
                    self.outstanding.remove(&agent);
                }
                AcdAction::AgentStateChanged { agent, state } => match state {
                    AgentState::Offered { call } => {
                        prop_assert_eq!(self.outstanding.get(&agent), Some(&call));
                    }
                    _ => {
                        self.outstanding.remove(&agent);
                    }
                },
                AcdAction::CallFinished { call, outcome } => {
                    prop_assert_eq!(
                        outcome == Outcome::Consultation,
                        self.consults.contains(&call.0),
                        "{:?} finished as {:?}",
                        call,
                        outcome
                    );
                    let first = self.outcomes.insert(call.0, outcome);
                    prop_assert!(first.is_none(), "{call:?} finished twice");
                    prop_assert!(
                        self.live.remove(&call.0),
                        "{call:?} finished but was not live"
                    );
                    self.untaint(call.0);
                }
                AcdAction::Overflowed { call, to, .. } => {
                    if let Some((_, p, _)) = self.untaint(call.0) {
                        self.seq += 1;
                        self.fresh
                            .entry(to)
                            .or_default()
                            .insert(call.0, (p, self.seq));
                    }
                }
                AcdAction::Announce { call, position, .. } => {
                    prop_assert!(position >= 1);
                    prop_assert!(self.live.contains(&call.0));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let live = self.live_vec();
        match op {
            Op::Arrive { queue, prio } => {
                let id = self.next_id;
                self.next_id += 1;
                self.arrived.push(id);
                self.live.insert(id);
                self.seq += 1;
                let q = QUEUES[queue].to_string();
                self.fresh
                    .entry(q.clone())
                    .or_default()
                    .insert(id, (prio, self.seq));
                self.event(AcdEvent::CallArrived {
                    call: CallId(id),
                    queue: q,
                    priority: prio,
                    ticket: None,
                })?;
            }
            Op::HangUp(i) => {
                if let Some(c) = Self::pick(&live, i) {
                    self.event(AcdEvent::CallerHungUp { call: CallId(c) })?;
                }
            }
            Op::Cmd { agent, cmd } => {
                let cmd = match cmd {
                    0 => AgentCommand::Login,
                    1 => AgentCommand::Ready,
                    2 => AgentCommand::Pause("p".into()),
                    _ => AgentCommand::Logout,
                };
                self.event(AcdEvent::AgentCommand {
                    agent: AGENTS[agent].into(),
                    cmd,
                })?;
            }
            Op::Unreachable(a) => self.event(AcdEvent::AgentUnreachable {
                agent: AGENTS[a].into(),
            })?,
            Op::Answer(i) => {
                if let Some((call, agent)) = Self::pick(&self.offered(), i) {
                    self.event(AcdEvent::AgentAnswered { call, agent })?;
                }
            }
            Op::Fail(i, r) => {
                if let Some((call, agent)) = Self::pick(&self.offered(), i) {
                    let reason = [
                        OfferFailReason::NoAnswer,
                        OfferFailReason::Rejected,
                        OfferFailReason::Unreachable,
                    ][usize::from(r % 3)];
                    self.event(AcdEvent::OfferFailed {
                        call,
                        agent,
                        reason,
                    })?;
                }
            }
            Op::End(i) => {
                if let Some((call, _)) = Self::pick(&self.on_call(), i) {
                    self.event(AcdEvent::CallEnded { call })?;
                }
            }
            Op::RequestCallback(i) => {
                if let Some(c) = Self::pick(&live, i) {
                    self.event(AcdEvent::RequestCallback {
                        call: CallId(c),
                        number: None,
                    })?;
                    // Held (waiting, or its ringing offer withdrawn): a
                    // callback from now on, out of the FIFO check.
                    if let Some(CallStatus::Queued { callback: true, .. }) =
                        self.acd.call_status(CallId(c))
                    {
                        self.callbacks.insert(c);
                        self.untaint(c);
                    }
                }
            }
            Op::CallbackConnected(i) => {
                if let Some((call, _)) = Self::pick(&self.offered(), i) {
                    self.event(AcdEvent::CallbackConnected { call })?;
                }
            }
            Op::CallbackFailed(i) => {
                if let Some((call, _)) = Self::pick(&self.offered(), i) {
                    self.event(AcdEvent::CallbackFailed { call })?;
                }
            }
            Op::NoLine(i) => {
                if let Some((call, _)) = Self::pick(&self.offered(), i) {
                    self.event(AcdEvent::NoLineForCallback { call })?;
                }
            }
            Op::Transfer(i, t) => {
                if let Some((call, _)) = Self::pick(&self.on_call(), i) {
                    let to = match t {
                        0..=2 => TransferTarget::Queue(QUEUES[t].into()),
                        3..=6 => TransferTarget::Agent(AGENTS[t - 3].into()),
                        _ => TransferTarget::Queue("nope".into()),
                    };
                    self.event(AcdEvent::Transfer { call, to })?;
                }
            }
            Op::Consult(i, t) => {
                if let Some((call, _)) = Self::pick(&self.on_call(), i) {
                    let to = match t {
                        0..=2 => TransferTarget::Queue(QUEUES[t].into()),
                        3..=6 => TransferTarget::Agent(AGENTS[t - 3].into()),
                        _ => TransferTarget::Queue("nope".into()),
                    };
                    let id = self.next_id;
                    self.next_id += 1;
                    let consult = CallId(id);
                    self.live.insert(id);
                    self.consults.insert(id);
                    self.event(AcdEvent::Consult { call, consult, to })?;
                    if self.acd.call_status(consult).is_some() {
                        self.arrived.push(id);
                    } else {
                        // Refused at once: never an entry.
                        prop_assert!(!self.outcomes.contains_key(&id));
                        self.live.remove(&id);
                    }
                }
            }
            Op::CompleteConsult(i) => {
                let live: Vec<u64> = self.consults.intersection(&self.live).copied().collect();
                if let Some(c) = Self::pick(&live, i) {
                    self.event(AcdEvent::CompleteConsult { consult: CallId(c) })?;
                }
            }
            Op::Advance(s) => self.advance(s)?,
            Op::Junk { kind, call, agent } => {
                // Duplicate CallArrived only for live ids (a finished id may be reused).
                let pool = if kind >= 5 {
                    live.clone()
                } else {
                    self.arrived.clone()
                };
                let picked = Self::pick(&pool, call);
                if kind >= 5 && picked.is_none() {
                    return self.check();
                }
                let call = CallId(picked.unwrap_or(999_999));
                let agent = AGENTS[agent].to_string();
                let ev = match kind {
                    0 => AcdEvent::AgentAnswered { call, agent },
                    1 => AcdEvent::OfferFailed {
                        call,
                        agent,
                        reason: OfferFailReason::NoAnswer,
                    },
                    2 => AcdEvent::CallEnded { call },
                    3 => AcdEvent::CallbackConnected { call },
                    4 => AcdEvent::CallbackFailed { call },
                    _ => AcdEvent::CallArrived {
                        call,
                        queue: "sw".into(),
                        priority: 0,
                        ticket: None,
                    },
                };
                // A duplicate CallArrived must be ignored; an unknown id is never arrived.
                self.event(ev)?;
            }
        }
        self.check()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        // Agents: at most one call, consistent with the call's legs.
        for a in AGENTS {
            let st = self.acd.agent_state(a).cloned();
            match st {
                Some(AgentState::Offered { call }) => {
                    prop_assert_eq!(self.outstanding.get(a), Some(&call));
                    match self.acd.call_status(call) {
                        Some(CallStatus::Offered { agents }) => {
                            prop_assert!(agents.iter().any(|x| x == a))
                        }
                        other => prop_assert!(false, "{a} Offered {call:?} but call is {other:?}"),
                    }
                }
                Some(AgentState::OnCall { call }) => {
                    prop_assert_eq!(
                        self.acd.call_status(call),
                        Some(CallStatus::OnCall { agent: a.into() })
                    );
                    prop_assert!(!self.outstanding.contains_key(a));
                }
                _ => prop_assert!(!self.outstanding.contains_key(a), "{a} has a stale offer"),
            }
        }
        // The kept per-state counts match a recount.
        let mut recount = [0u32; 6];
        for a in AGENTS {
            if let Some(st) = self.acd.agent_state(a) {
                recount[st.kind()] += 1;
            }
        }
        prop_assert_eq!(self.acd.agent_state_counts(), recount);
        // Calls: live ones are somewhere, finished ones nowhere.
        prop_assert_eq!(self.acd.live_calls(), self.live.len());
        for &c in &self.live {
            let st = self.acd.call_status(CallId(c));
            prop_assert!(st.is_some(), "call {c} lost");
            prop_assert!(!self.outcomes.contains_key(&c));
            if let Some(CallStatus::Offered { agents }) = st {
                prop_assert!(!agents.is_empty());
                for a in agents {
                    prop_assert_eq!(
                        self.acd.agent_state(&a),
                        Some(&AgentState::Offered { call: CallId(c) })
                    );
                }
            }
        }
        for c in self.outcomes.keys() {
            prop_assert!(self.acd.call_status(CallId(*c)).is_none());
        }
        // Per-queue counters agree with the agents' states.
        for q in QUEUES {
            let stats = self.acd.queue_stats(q, self.now);
            prop_assert!(stats.is_some());
            let counts = stats.map(|s| s.agents).unwrap_or_default();
            let mut expect = AgentCounts::default();
            for a in qualified(q) {
                match self.acd.agent_state(a) {
                    Some(AgentState::LoggedOut) => expect.logged_out += 1,
                    Some(AgentState::Available) => expect.available += 1,
                    Some(AgentState::Offered { .. }) => expect.offered += 1,
                    Some(AgentState::OnCall { .. }) => expect.on_call += 1,
                    Some(AgentState::WrapUp { .. }) => expect.wrap_up += 1,
                    Some(AgentState::Paused { .. }) => expect.paused += 1,
                    None => {}
                }
            }
            prop_assert_eq!(counts, expect, "counters of {}", q);
        }
        Ok(())
    }

    /// Everyone ready, answering and hanging up; time passes.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..400 {
            if self.live.is_empty() {
                break;
            }
            // A caller whose callback is held hangs up its own line.
            for c in self.live_vec() {
                if let Some(CallStatus::Queued { callback: true, .. }) =
                    self.acd.call_status(CallId(c))
                {
                    self.event(AcdEvent::CallerHungUp { call: CallId(c) })?;
                }
            }
            for a in AGENTS {
                match self.acd.agent_state(a) {
                    Some(AgentState::LoggedOut) => self.event(AcdEvent::AgentCommand {
                        agent: a.into(),
                        cmd: AgentCommand::Login,
                    })?,
                    Some(AgentState::Paused { .. }) => self.event(AcdEvent::AgentCommand {
                        agent: a.into(),
                        cmd: AgentCommand::Ready,
                    })?,
                    _ => self.event(AcdEvent::AgentCommand {
                        agent: a.into(),
                        cmd: AgentCommand::Ready,
                    })?,
                }
                self.check()?;
            }
            for (call, agent) in self.offered() {
                self.event(AcdEvent::AgentAnswered { call, agent })?;
                if self.callbacks.contains(&call.0) {
                    self.event(AcdEvent::CallbackConnected { call })?;
                }
                self.check()?;
            }
            for (call, _) in self.on_call() {
                self.event(AcdEvent::CallEnded { call })?;
                self.check()?;
            }
            self.advance(7)?;
            self.check()?;
        }
        prop_assert!(
            self.live.is_empty(),
            "calls never finished: {:?}",
            self.live
        );
        for c in &self.arrived {
            prop_assert!(self.outcomes.contains_key(c), "call {c} has no outcome");
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_invariants(
        strategy in strategy(),
        wrap in 0..6u64,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut w = World::new(strategy, wrap);
        for op in ops {
            w.apply(op)?;
        }
        w.settle()?;
    }
}
