//! The ACD core: [`Acd`]. Owns the calls, the timers and the
//! dispatch loop that matches waiting callers with Available qualified agents.
//! Sans-IO: `handle_event` / `handle_timeout` take `now`, `poll_action` /
//! `poll_timeout` hand work back to the driver. Never panics on input: unknown
//! calls/agents and out-of-state events are ignored (agent commands and
//! transfers are answered with `CommandRejected` / `TransferRejected`).
//!
//! Routing cost: each queue keeps, per widening level, the sorted list of
//! qualified agents (static) and per-state counters (updated in
//! `set_agent_state`), so a dispatch pass skips queues/levels with nobody
//! Available in O(1) and only scans a qualified list when a match is certain:
//! O(queues + matches × qualified agents) per event, never agents × calls.

mod consult;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::time::{Duration, Instant};

/// How long a due callback that found no free line waits before it looks
/// again (lines free up without telling the ACD: a caller in the IVR hangs up).
const LINE_RECHECK: Duration = Duration::from_secs(1);

use super::agent::{self, Agent, AgentState, CmdEffect, Pending};
use super::config::{AcdConfig, AcdConfigError, Fallback, Strategy};
use super::queue::{Abandon, Fb, Queue, QueueStats, WaitKey};
use super::strategy;
use super::{
    AcdAction, AcdEvent, AgentCommand, CallId, Measure, OfferFailReason, Outcome, TransferTarget,
};

type TimerKey = (Instant, u64);

#[derive(Debug, Clone, Copy)]
enum Timer {
    Call(CallId, Slot),
    WrapUp(usize),
}

/// Per-call timer slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Ring = 0,
    Widen = 1,
    MaxWait = 2,
    Announce = 3,
    Retry = 4,
}

#[derive(Debug)]
enum Place {
    Queued(WaitKey),
    Directed(usize),
    Offered {
        agents: Vec<usize>,
        agent_answered: bool,
    },
    OnCall(usize),
}

#[derive(Debug)]
struct Callback {
    number: Option<String>,
    failures: u32,
    not_before: Option<Instant>,
    /// The caller's own call is over (it is not called back before).
    caller_released: bool,
}

#[derive(Debug)]
struct Call {
    queue: usize,
    priority: u8,
    ticket: Option<String>,
    arrived: Instant,
    /// When it entered its current queue (widening and max wait count from here).
    entered: Instant,
    place: Place,
    /// Some while the caller waits for a callback (place kept, no line).
    callback: Option<Callback>,
    /// The callback reached the customer (outcome CalledBack).
    called_back: bool,
    answered: bool,
    offered_cb: bool,
    /// Transferred to this agent only.
    directed: Option<usize>,
    timers: [Option<TimerKey>; 5],
    /// This entry is a consultation made from that call.
    consult_of: Option<CallId>,
    /// The consultation this call's agent is making.
    consult: Option<CallId>,
}

/// Where a live call is (see [`Acd::call_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    /// In a queue; `callback` when its line is released and it waits for a callback.
    Queued {
        queue: String,
        callback: bool,
    },
    /// Transferred to an agent, waiting for that agent.
    WaitingForAgent {
        agent: String,
    },
    /// Ringing these agents (a callback rings one).
    Offered {
        agents: Vec<String>,
    },
    OnCall {
        agent: String,
    },
}

/// The skills-based ACD decision core (sans-IO).
#[derive(Debug)]
pub struct Acd {
    agents: Vec<Agent>,
    agent_ix: HashMap<String, usize>,
    queues: Vec<Queue>,
    queue_ix: HashMap<String, usize>,
    calls: HashMap<CallId, Call>,
    timers: BTreeMap<TimerKey, Timer>,
    timer_seq: u64,
    actions: VecDeque<AcdAction>,
    tail: i64,
    head: i64,
    available_total: u32,
    /// Agents by state kind (logged out, available, offered, on call,
    /// wrap-up, paused), kept as states change.
    state_counts: [u32; 6],
    directed_waiting: BTreeSet<usize>,
    to_announce: Vec<CallId>,
    no_answer_pause: Option<String>,
    callback_retries: u32,
    callback_retry_delay: Duration,
}

impl Acd {
    pub fn new(config: AcdConfig) -> Result<Acd, AcdConfigError> {
        config.validate()?;
        let mut skill_ix: HashMap<String, usize> = HashMap::new();
        for (name, _) in config
            .agents
            .iter()
            .flat_map(|a| &a.skills)
            .chain(config.queues.iter().flat_map(|q| &q.skills))
        {
            let n = skill_ix.len();
            skill_ix.entry(name.clone()).or_insert(n);
        }
        let nskills = skill_ix.len();
        let mut agents: Vec<Agent> = config
            .agents
            .iter()
            .map(|c| {
                let mut skills = vec![0u8; nskills];
                for (name, level) in &c.skills {
                    if let Some(s) = skill_ix.get(name).and_then(|&i| skills.get_mut(i)) {
                        *s = *level;
                    }
                }
                Agent {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    skills,
                    support_level: c.support_level,
                    wrap_up: c.wrap_up,
                    state: AgentState::LoggedOut,
                    pending: None,
                    idle_since: None,
                    calls_since_login: 0,
                    memberships: Vec::new(),
                    wrap_timer: None,
                    talk: None,
                    directed: VecDeque::new(),
                    last_ticket: None,
                    wrap_started: None,
                }
            })
            .collect();
        let queue_ix: HashMap<String, usize> = config
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.name.clone(), i))
            .collect();
        let resolve = |f: &Fallback| match f {
            Fallback::Accept => Fb::Accept,
            Fallback::Overflow { queue } => {
                queue_ix.get(queue).map_or(Fb::Accept, |&i| Fb::Overflow(i))
            }
            Fallback::OfferCallback => Fb::OfferCallback,
            Fallback::MessageAndHangup { prompt } => Fb::MessageAndHangup(prompt.clone()),
        };
        let mut queues = Vec::with_capacity(config.queues.len());
        for (qi, qc) in config.queues.iter().enumerate() {
            let reqs = qc
                .skills
                .iter()
                .filter_map(|(n, min)| skill_ix.get(n).map(|&i| (i, *min)))
                .collect();
            let mut q = Queue::new(qc.clone(), reqs, config.aht_samples, config.initial_aht);
            q.on_max_wait = if qc.max_wait.is_some() {
                resolve(&qc.on_max_wait)
            } else {
                Fb::Accept
            };
            q.on_no_agents = resolve(&qc.on_no_agents);
            for (ai, a) in agents.iter_mut().enumerate() {
                if let Some(lvl) = (0..=q.max_level()).find(|&l| q.qualifies(a, l)) {
                    for list in q.qualified.iter_mut().skip(lvl) {
                        list.push(ai);
                    }
                    if let Some(c) = q.counts.get_mut(lvl) {
                        c[0] += 1;
                    }
                    a.memberships.push((qi, lvl));
                }
            }
            queues.push(q);
        }
        let agent_ix = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        let logged_out = u32::try_from(agents.len()).unwrap_or(u32::MAX);
        Ok(Acd {
            agents,
            agent_ix,
            queues,
            queue_ix,
            calls: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            actions: VecDeque::new(),
            tail: 0,
            head: 0,
            available_total: 0,
            state_counts: [logged_out, 0, 0, 0, 0, 0],
            directed_waiting: BTreeSet::new(),
            to_announce: Vec::new(),
            no_answer_pause: config.no_answer_pause,
            callback_retries: config.callback_retries,
            callback_retry_delay: config.callback_retry_delay,
        })
    }

    // ----------------------------------------------------------------- API

    pub fn handle_event(&mut self, now: Instant, ev: AcdEvent) {
        match ev {
            AcdEvent::CallArrived {
                call,
                queue,
                priority,
                ticket,
            } => self.call_arrived(now, call, &queue, priority, ticket),
            AcdEvent::CallerHungUp { call } => self.caller_hung_up(now, call),
            AcdEvent::AgentCommand { agent, cmd } => self.agent_command(now, &agent, cmd),
            AcdEvent::AgentUnreachable { agent } => self.agent_unreachable(now, &agent),
            AcdEvent::AgentAnswered { call, agent } => self.agent_answered(now, call, &agent),
            AcdEvent::OfferFailed {
                call,
                agent,
                reason,
            } => self.offer_failed(now, call, &agent, reason),
            AcdEvent::CallEnded { call } => self.call_ended(now, call),
            AcdEvent::RequestCallback { call, number } => self.request_callback(now, call, number),
            AcdEvent::NoLineForCallback { call } => self.no_line_for_callback(now, call),
            AcdEvent::CallbackConnected { call } => self.callback_connected(now, call),
            AcdEvent::CallbackFailed { call } => self.callback_failed(now, call),
            AcdEvent::Transfer { call, to } => self.transfer(now, call, to),
            AcdEvent::AgentLost { call } => self.agent_lost(now, call),
            AcdEvent::Consult { call, consult, to } => self.consult(now, call, consult, to),
            AcdEvent::CompleteConsult { consult } => self.complete_consult(now, consult),
        }
        self.dispatch(now);
        self.flush_announcements();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((&key, &timer)) = self.timers.first_key_value() {
            if key.0 > now {
                break;
            }
            self.timers.remove(&key);
            match timer {
                Timer::Call(c, slot) => {
                    let Some(call) = self.calls.get_mut(&c) else {
                        continue;
                    };
                    call.timers[slot as usize] = None;
                    self.call_timer(now, c, slot);
                }
                Timer::WrapUp(a) => {
                    if let Some(ag) = self.agents.get_mut(a) {
                        ag.wrap_timer = None;
                    }
                    self.end_wrap_up(now, a);
                }
            }
        }
        self.dispatch(now);
        self.flush_announcements();
    }

    pub fn poll_action(&mut self) -> Option<AcdAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|k| k.0)
    }

    /// How many agents are in each state: logged out, available, offered,
    /// on call, wrap-up, paused (without walking the agents).
    pub fn agent_state_counts(&self) -> [u32; 6] {
        self.state_counts
    }

    pub fn agent_state(&self, agent: &str) -> Option<&AgentState> {
        self.agent_ix
            .get(agent)
            .and_then(|&i| self.agents.get(i))
            .map(|a| &a.state)
    }

    /// Calls taken since the agent's last login.
    pub fn agent_calls(&self, agent: &str) -> Option<u32> {
        self.agent_ix
            .get(agent)
            .and_then(|&i| self.agents.get(i))
            .map(|a| a.calls_since_login)
    }

    pub fn queue_stats(&self, queue: &str, now: Instant) -> Option<QueueStats> {
        let qi = *self.queue_ix.get(queue)?;
        let q = self.queues.get(qi)?;
        let mut waiting = 0;
        let mut callbacks = 0;
        let mut longest = Duration::ZERO;
        for c in q.waiting.values().filter_map(|c| self.calls.get(c)) {
            if c.callback.is_some() {
                callbacks += 1;
            } else {
                waiting += 1;
                longest = longest.max(now.saturating_duration_since(c.entered));
            }
        }
        let w = q.window(now);
        Some(QueueStats {
            waiting,
            callbacks_pending: callbacks,
            longest_wait: longest,
            agents: q.agent_counts(),
            answered: w.answered,
            answered_within_target: w.answered_within,
            service_level: super::service_level(&w, q.cfg.abandons),
            abandoned: w.abandoned,
            average_speed_of_answer: w.average_speed_of_answer(),
            abandoned_total: q.abandoned_total,
            average_handle_time: q.aht(),
        })
    }

    /// 1-based position in its queue (callback-pending callers keep theirs), or
    /// in the waiting list of the agent it was transferred to.
    pub fn position_of(&self, call: CallId) -> Option<usize> {
        let c = self.calls.get(&call)?;
        match &c.place {
            Place::Queued(key) => Some(self.queues.get(c.queue)?.waiting.range(..*key).count() + 1),
            Place::Directed(a) => Some(
                self.agents
                    .get(*a)?
                    .directed
                    .iter()
                    .position(|x| *x == call)?
                    + 1,
            ),
            _ => None,
        }
    }

    /// ceil(position × AHT / max(1, serving agents)) in whole minutes (rounded up).
    pub fn estimated_wait_minutes(&self, call: CallId) -> Option<u32> {
        let pos = self.position_of(call)?;
        let c = self.calls.get(&call)?;
        Some(self.queues.get(c.queue)?.ewt_minutes(pos))
    }

    /// Where a live call is; `None` once finished (or never seen).
    pub fn call_status(&self, call: CallId) -> Option<CallStatus> {
        let c = self.calls.get(&call)?;
        let name = |a: &usize| {
            self.agents
                .get(*a)
                .map_or_else(String::new, |x| x.id.clone())
        };
        Some(match &c.place {
            Place::Queued(_) => CallStatus::Queued {
                queue: self
                    .queues
                    .get(c.queue)
                    .map_or_else(String::new, |q| q.cfg.name.clone()),
                callback: c.callback.is_some(),
            },
            Place::Directed(a) => CallStatus::WaitingForAgent { agent: name(a) },
            Place::Offered { agents, .. } => CallStatus::Offered {
                agents: agents.iter().map(name).collect(),
            },
            Place::OnCall(a) => CallStatus::OnCall { agent: name(a) },
        })
    }

    /// Live calls (not finished).
    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    // ------------------------------------------------------------ helpers

    fn emit(&mut self, a: AcdAction) {
        self.actions.push_back(a);
    }

    fn agent_id(&self, a: usize) -> String {
        self.agents
            .get(a)
            .map_or_else(String::new, |x| x.id.clone())
    }

    fn queue_name(&self, q: usize) -> String {
        self.queues
            .get(q)
            .map_or_else(String::new, |x| x.cfg.name.clone())
    }

    fn set_timer(&mut self, c: CallId, slot: Slot, at: Option<Instant>) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        if let Some(k) = call.timers[slot as usize].take() {
            self.timers.remove(&k);
        }
        if let Some(at) = at {
            self.timer_seq += 1;
            let key = (at, self.timer_seq);
            self.timers.insert(key, Timer::Call(c, slot));
            call.timers[slot as usize] = Some(key);
        }
    }

    /// The one place an agent's state changes: keeps queue counters in step
    /// and reports `AgentStateChanged`.
    fn set_agent_state(&mut self, now: Instant, a: usize, new: AgentState) {
        let Some(agent) = self.agents.get_mut(a) else {
            return;
        };
        let (ok, nk) = (agent.state.kind(), new.kind());
        if ok != nk {
            for &(q, l) in &agent.memberships {
                if let Some(c) = self.queues.get_mut(q).and_then(|q| q.counts.get_mut(l)) {
                    c[ok] = c[ok].saturating_sub(1);
                    c[nk] += 1;
                }
            }
            if let Some(n) = self.state_counts.get_mut(ok) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = self.state_counts.get_mut(nk) {
                *n += 1;
            }
            if ok == 1 {
                self.available_total = self.available_total.saturating_sub(1);
            }
            if nk == 1 {
                self.available_total += 1;
            }
            if ok == 4 {
                if let Some(k) = agent.wrap_timer.take() {
                    self.timers.remove(&k);
                }
            }
        }
        agent.state = new.clone();
        let id = agent.id.clone();
        let logged_out = nk == 0;
        let directed: Vec<CallId> = if logged_out {
            agent.pending = None;
            agent.directed.drain(..).collect()
        } else {
            Vec::new()
        };
        self.emit(AcdAction::AgentStateChanged {
            agent: id,
            state: new,
        });
        if logged_out {
            self.directed_waiting.remove(&a);
            // Calls waiting for this agent go back to the head of their queue.
            for c in directed {
                if let Some(call) = self.calls.get_mut(&c) {
                    call.directed = None;
                }
                self.requeue_head(now, c);
            }
        }
    }

    /// An offer to `a` ended without a call: pending logout wins, then the
    /// no-answer pause (if any), then a pending pause, else Available (idle
    /// time kept).
    /// Stop ringing these agents for `c` and free them (paused if `pause`).
    fn cancel_offers(
        &mut self,
        now: Instant,
        c: CallId,
        agents: impl IntoIterator<Item = usize>,
        pause: Option<String>,
    ) {
        for a in agents {
            let agent = self.agent_id(a);
            self.emit(AcdAction::CancelOffer { call: c, agent });
            self.free_agent(now, a, pause.clone());
        }
    }

    fn free_agent(&mut self, now: Instant, a: usize, pause: Option<String>) {
        let Some(agent) = self.agents.get_mut(a) else {
            return;
        };
        let next = match (agent.pending.take(), pause) {
            (Some(Pending::Logout), _) => AgentState::LoggedOut,
            (_, Some(reason)) => AgentState::Paused { reason },
            (Some(Pending::Pause(reason)), None) => AgentState::Paused { reason },
            (None, None) => AgentState::Available,
        };
        self.set_agent_state(now, a, next);
    }

    fn fail_pause(&self, reason: OfferFailReason) -> Option<String> {
        self.no_answer_pause.as_ref().map(|r| match reason {
            OfferFailReason::Unreachable => "unreachable".to_string(),
            _ => r.clone(),
        })
    }

    fn start_wrap_up(&mut self, now: Instant, a: usize) {
        let Some(agent) = self.agents.get(a) else {
            return;
        };
        let until = now + agent.wrap_up;
        self.set_agent_state(now, a, AgentState::WrapUp { until });
        self.timer_seq += 1;
        let key = (until, self.timer_seq);
        self.timers.insert(key, Timer::WrapUp(a));
        if let Some(agent) = self.agents.get_mut(a) {
            agent.wrap_timer = Some(key);
            agent.wrap_started = Some(now);
        }
    }

    fn end_wrap_up(&mut self, now: Instant, a: usize) {
        let Some(agent) = self.agents.get_mut(a) else {
            return;
        };
        if !matches!(agent.state, AgentState::WrapUp { .. }) {
            return;
        }
        let ended = AcdAction::WrapUpEnded {
            agent: agent.id.clone(),
            ticket: agent.last_ticket.take(),
            after: agent
                .wrap_started
                .take()
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s)),
        };
        let wrap_start = match &ended {
            AcdAction::WrapUpEnded { after, .. } => now.checked_sub(*after),
            _ => None,
        };
        if let Some((q, start)) = agent.talk.take() {
            if let Some(queue) = self.queues.get_mut(q) {
                queue.record_handle_time(now.saturating_duration_since(start));
                let wrap_start = wrap_start.unwrap_or(now).max(start);
                self.emit(AcdAction::Measured(Measure::Handled {
                    queue: q,
                    talk: wrap_start.saturating_duration_since(start),
                    wrap_up: now.saturating_duration_since(wrap_start),
                }));
            }
        }
        self.emit(ended);
        let Some(agent) = self.agents.get_mut(a) else {
            return;
        };
        let next = match agent.pending.take() {
            Some(Pending::Logout) => AgentState::LoggedOut,
            Some(Pending::Pause(reason)) => AgentState::Paused { reason },
            None => {
                agent.idle_since = Some(now);
                AgentState::Available
            }
        };
        self.set_agent_state(now, a, next);
    }

    /// Remove a call for good with its outcome.
    fn finish(&mut self, c: CallId, outcome: Outcome) {
        let Some(call) = self.calls.remove(&c) else {
            return;
        };
        for k in call.timers.iter().flatten() {
            self.timers.remove(k);
        }
        match call.place {
            Place::Queued(key) => {
                if let Some(q) = self.queues.get_mut(call.queue) {
                    q.waiting.remove(&key);
                }
            }
            Place::Directed(a) => {
                if let Some(ag) = self.agents.get_mut(a) {
                    ag.directed.retain(|x| *x != c);
                    if ag.directed.is_empty() {
                        self.directed_waiting.remove(&a);
                    }
                }
            }
            _ => {}
        }
        self.emit(AcdAction::CallFinished { call: c, outcome });
    }

    /// Arm widening / max-wait / announce timers for a queued call.
    fn arm_queue_timers(&mut self, now: Instant, c: CallId) {
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        let Some(q) = self.queues.get(call.queue) else {
            return;
        };
        let widen = q.next_step(call.entered, now);
        let plain = call.callback.is_none();
        let max_wait = match (&q.on_max_wait, q.cfg.max_wait) {
            (Fb::OfferCallback, Some(_)) if call.offered_cb => None,
            (Fb::Accept, _) => None,
            // A consultation waits until its agent gives up.
            _ if call.consult_of.is_some() => None,
            (_, Some(d)) if plain => call.entered.checked_add(d),
            _ => None,
        };
        let announce = q
            .cfg
            .announce_every
            .filter(|_| plain)
            .and_then(|d| now.checked_add(d));
        let retry = call.callback.as_ref().and_then(|cb| cb.not_before);
        self.set_timer(c, Slot::Widen, widen);
        self.set_timer(c, Slot::MaxWait, max_wait);
        self.set_timer(c, Slot::Announce, announce);
        self.set_timer(c, Slot::Retry, retry);
        self.set_timer(c, Slot::Ring, None);
    }

    fn clear_timers(&mut self, c: CallId) {
        for slot in [
            Slot::Ring,
            Slot::Widen,
            Slot::MaxWait,
            Slot::Announce,
            Slot::Retry,
        ] {
            self.set_timer(c, slot, None);
        }
    }

    /// Enter `qi` at the tail of the call's priority band. `hops` guards
    /// against overflow loops when the no-agents fallback applies.
    fn enter_queue(
        &mut self,
        now: Instant,
        c: CallId,
        qi: usize,
        hops: usize,
        no_agents_rule: bool,
    ) {
        let Some(q) = self.queues.get(qi) else { return };
        let mut offer_cb = false;
        if no_agents_rule && hops <= self.queues.len() && q.logged_in() == 0 {
            match q.on_no_agents.clone() {
                Fb::Accept => {}
                Fb::Overflow(t) => {
                    let (from, to) = (self.queue_name(qi), self.queue_name(t));
                    self.emit(AcdAction::Overflowed { call: c, from, to });
                    return self.enter_queue(now, c, t, hops + 1, true);
                }
                Fb::OfferCallback => offer_cb = true,
                Fb::MessageAndHangup(prompt) => {
                    self.emit(AcdAction::PlayAndHangup { call: c, prompt });
                    return self.finish(c, Outcome::MessageHangup);
                }
            }
        }
        self.tail += 1;
        let tail = self.tail;
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        let key = (Reverse(call.priority), tail);
        call.queue = qi;
        call.entered = now;
        call.place = Place::Queued(key);
        if offer_cb {
            call.offered_cb = true;
        }
        // Offered to the queue: a caller not answered yet (arriving, or
        // overflowing from another queue); consultations never count.
        let offered = !call.answered && call.consult_of.is_none();
        if let Some(q) = self.queues.get_mut(qi) {
            q.waiting.insert(key, c);
        }
        if offered {
            self.emit(AcdAction::Measured(Measure::Offered { queue: qi }));
        }
        self.arm_queue_timers(now, c);
        self.to_announce.push(c);
        if offer_cb {
            self.emit(AcdAction::OfferCallbackToCaller { call: c });
        }
    }

    /// Back to the head of its priority band (or of its target agent's list).
    fn requeue_head(&mut self, now: Instant, c: CallId) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        if let Some(a) = call.directed {
            if self
                .agents
                .get(a)
                .is_some_and(|ag| ag.state != AgentState::LoggedOut)
            {
                call.place = Place::Directed(a);
                if let Some(ag) = self.agents.get_mut(a) {
                    ag.directed.push_front(c);
                }
                self.directed_waiting.insert(a);
                self.clear_timers(c);
                return;
            }
            call.directed = None;
        }
        self.head -= 1;
        let key = (Reverse(call.priority), self.head);
        call.place = Place::Queued(key);
        if let Some(q) = self.queues.get_mut(call.queue) {
            q.waiting.insert(key, c);
        }
        self.arm_queue_timers(now, c);
    }

    /// Every agent leg of an offer is gone (`declined`: the last one was
    /// refused): the caller goes back to the head of its queue; a
    /// consultation of one colleague fails.
    fn offer_lapsed(&mut self, now: Instant, c: CallId, declined: bool) {
        let reason = if declined { "declined" } else { "no answer" };
        if self.consult_unanswered(c, reason) {
            return;
        }
        self.requeue_head(now, c);
    }

    fn flush_announcements(&mut self) {
        for c in std::mem::take(&mut self.to_announce) {
            self.announce(c);
        }
    }

    fn announce(&mut self, c: CallId) {
        let queued = self
            .calls
            .get(&c)
            .is_some_and(|x| matches!(x.place, Place::Queued(_)) && x.callback.is_none());
        if !queued {
            return;
        }
        if let (Some(position), Some(ewt)) = (self.position_of(c), self.estimated_wait_minutes(c)) {
            self.emit(AcdAction::Announce {
                call: c,
                position,
                ewt_minutes: ewt,
            });
        }
    }

    // ------------------------------------------------------------- routing

    fn dispatch(&mut self, now: Instant) {
        if self.available_total == 0 {
            return;
        }
        // Calls transferred to a specific agent first.
        let ready: Vec<usize> = self
            .directed_waiting
            .iter()
            .copied()
            .filter(|&a| {
                self.agents
                    .get(a)
                    .is_some_and(|x| x.state == AgentState::Available)
            })
            .collect();
        for a in ready {
            let next = self.agents.get_mut(a).and_then(|x| x.directed.pop_front());
            if self.agents.get(a).is_some_and(|x| x.directed.is_empty()) {
                self.directed_waiting.remove(&a);
            }
            if let Some(c) = next {
                self.offer(now, c, vec![a]);
            }
        }
        // Queues in order of their head caller (priority, then time in queue).
        let mut order: Vec<(Reverse<u8>, Instant, usize)> = Vec::new();
        for (qi, q) in self.queues.iter().enumerate() {
            if q.waiting.is_empty() || q.available_at(q.max_level()) == 0 {
                continue;
            }
            if let Some(call) = q.waiting.values().next().and_then(|c| self.calls.get(c)) {
                order.push((Reverse(call.priority), call.entered, qi));
            }
        }
        order.sort();
        for (_, _, qi) in order {
            if self.available_total == 0 {
                break;
            }
            self.dispatch_queue(now, qi);
        }
    }

    fn dispatch_queue(&mut self, now: Instant, qi: usize) {
        // Walk the queue in order with a key cursor (the map changes as calls
        // are offered); stop as soon as nobody qualified is Available.
        let mut cursor: Option<WaitKey> = None;
        loop {
            let Some(q) = self.queues.get(qi) else { return };
            if q.available_at(q.max_level()) == 0 {
                return;
            }
            let next = match cursor {
                None => q.waiting.iter().next(),
                Some(k) => q
                    .waiting
                    .range((Bound::Excluded(k), Bound::Unbounded))
                    .next(),
            };
            let Some((&key, &c)) = next else { return };
            cursor = Some(key);
            let Some(call) = self.calls.get(&c) else {
                continue;
            };
            let level = q.level_at(call.entered, now);
            if q.available_at(level) == 0 {
                continue;
            }
            if let Some(cb) = &call.callback {
                if !cb.caller_released || cb.not_before.is_some_and(|t| t > now) {
                    continue;
                }
            }
            let Some(qualified) = q.qualified.get(level) else {
                continue;
            };
            let mut picked =
                strategy::pick(q.cfg.strategy, qualified, &self.agents, &q.reqs, q.rr_last);
            if call.callback.is_some() {
                picked.truncate(1); // a callback rings one agent, even under RingAll
            }
            let Some(&first) = picked.first() else {
                continue;
            };
            if q.cfg.strategy == Strategy::RoundRobin {
                if let Some(q) = self.queues.get_mut(qi) {
                    q.rr_last = Some(first);
                }
            }
            self.offer(now, c, picked);
        }
    }

    fn offer(&mut self, now: Instant, c: CallId, agents: Vec<usize>) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        if let Place::Queued(key) = call.place {
            if let Some(q) = self.queues.get_mut(call.queue) {
                q.waiting.remove(&key);
            }
        }
        call.place = Place::Offered {
            agents: agents.clone(),
            agent_answered: false,
        };
        let ticket = call.ticket.clone();
        let callback = call.callback.as_ref().map(|cb| cb.number.clone());
        let ring = self
            .queues
            .get(call.queue)
            .map_or(Duration::from_secs(15), |q| q.cfg.ring_timeout);
        self.clear_timers(c);
        self.set_timer(c, Slot::Ring, now.checked_add(ring));
        for a in agents {
            let agent = self.agent_id(a);
            self.emit(match &callback {
                Some(number) => AcdAction::OfferCallback {
                    call: c,
                    agent,
                    number: number.clone(),
                    ticket: ticket.clone(),
                },
                None => AcdAction::Offer {
                    call: c,
                    agent,
                    ticket: ticket.clone(),
                },
            });
            self.set_agent_state(now, a, AgentState::Offered { call: c });
        }
    }

    // -------------------------------------------------------------- events

    fn call_arrived(
        &mut self,
        now: Instant,
        c: CallId,
        queue: &str,
        priority: u8,
        ticket: Option<String>,
    ) {
        if self.calls.contains_key(&c) {
            return; // duplicate id: ignored
        }
        let qi = match self.queue_ix.get(queue) {
            Some(&qi) => qi,
            None => {
                self.emit(AcdAction::Block { call: c });
                self.emit(AcdAction::CallFinished {
                    call: c,
                    outcome: Outcome::Blocked,
                });
                return;
            }
        };
        self.calls.insert(
            c,
            Call {
                queue: qi,
                priority: priority.min(9),
                ticket,
                arrived: now,
                entered: now,
                place: Place::Queued((Reverse(0), 0)),
                callback: None,
                called_back: false,
                answered: false,
                offered_cb: false,
                directed: None,
                timers: [None; 5],
                consult_of: None,
                consult: None,
            },
        );
        self.enter_queue(now, c, qi, 0, true);
    }

    fn caller_hung_up(&mut self, now: Instant, c: CallId) {
        if self.consultation_over(now, c) {
            return;
        }
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        let q = call.queue;
        match &call.place {
            // Waiting for a callback: the caller's line is down now (on
            // purpose, not an abandon); the callback may go ahead.
            Place::Queued(_) if call.callback.is_some() => {
                if let Some(cb) = call.callback.as_mut() {
                    cb.caller_released = true;
                }
            }
            Place::Queued(_) | Place::Directed(_) => {
                self.abandoned(now, c, q);
                self.finish(c, Outcome::Abandoned);
            }
            Place::Offered { .. } if call.callback.is_some() => {} // the callback legs report themselves
            Place::Offered { agents, .. } => {
                let agents = agents.clone();
                for a in agents {
                    let agent = self.agent_id(a);
                    self.emit(AcdAction::CancelOffer { call: c, agent });
                    self.free_agent(now, a, None);
                }
                self.abandoned(now, c, q);
                self.finish(c, Outcome::Abandoned);
            }
            Place::OnCall(_) => self.call_ended(now, c),
        }
    }

    /// The caller of `c` hung up waiting in queue `q`: counted, and
    /// measured, as the queue's short or real abandon.
    fn abandoned(&mut self, now: Instant, c: CallId, q: usize) {
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        if call.consult_of.is_some() || call.answered {
            return; // a consultation, or a transferred caller: not the queue's abandon
        }
        let waited = now.saturating_duration_since(call.arrived);
        let Some(queue) = self.queues.get_mut(q) else {
            return;
        };
        let kind = queue.record_abandon(now, waited);
        self.emit(AcdAction::Measured(Measure::Abandoned {
            queue: q,
            waited,
            short: kind == Abandon::Short,
            within: kind == Abandon::Within,
        }));
    }

    fn call_ended(&mut self, now: Instant, c: CallId) {
        if self.consultation_over(now, c) {
            return;
        }
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        let Place::OnCall(a) = call.place else {
            return self.caller_hung_up(now, c);
        };
        let outcome = if call.called_back {
            Outcome::CalledBack
        } else {
            Outcome::Served
        };
        self.start_wrap_up(now, a);
        self.finish(c, outcome);
    }

    fn agent_command(&mut self, now: Instant, id: &str, cmd: AgentCommand) {
        let Some(&a) = self.agent_ix.get(id) else {
            return self.emit(AcdAction::CommandRejected {
                agent: id.to_string(),
                reason: "unknown agent",
            });
        };
        let Some(agent) = self.agents.get_mut(a) else {
            return;
        };
        // Ready during wrap-up: the agent has finished the notes early.
        if cmd == AgentCommand::Ready && matches!(agent.state, AgentState::WrapUp { .. }) {
            agent.pending = None;
            return self.end_wrap_up(now, a);
        }
        match agent::command(&agent.state, &cmd) {
            CmdEffect::Become(next) => {
                if next == AgentState::Available {
                    agent.idle_since = Some(now);
                    if cmd == AgentCommand::Login {
                        agent.calls_since_login = 0;
                    }
                }
                self.set_agent_state(now, a, next);
            }
            CmdEffect::SetPending(p) => agent.pending = p,
            CmdEffect::Noop => {}
            CmdEffect::Reject(reason) => self.emit(AcdAction::CommandRejected {
                agent: id.to_string(),
                reason,
            }),
        }
    }

    fn agent_unreachable(&mut self, now: Instant, id: &str) {
        let Some(&a) = self.agent_ix.get(id) else {
            return;
        };
        let Some(agent) = self.agents.get_mut(a) else {
            return;
        };
        match agent.state.clone() {
            AgentState::LoggedOut => {}
            AgentState::Available | AgentState::Paused { .. } => {
                self.set_agent_state(now, a, AgentState::LoggedOut)
            }
            AgentState::OnCall { .. } | AgentState::WrapUp { .. } => {
                agent.pending = Some(Pending::Logout)
            }
            AgentState::Offered { call } => {
                let left = self.remove_leg(call, a);
                self.emit(AcdAction::CancelOffer {
                    call,
                    agent: id.to_string(),
                });
                self.set_agent_state(now, a, AgentState::LoggedOut);
                if left == Some(0) {
                    self.offer_lapsed(now, call, false);
                }
            }
        }
    }

    /// Remove agent `a` from the call's offered legs; returns legs left.
    fn remove_leg(&mut self, c: CallId, a: usize) -> Option<usize> {
        let call = self.calls.get_mut(&c)?;
        let Place::Offered { agents, .. } = &mut call.place else {
            return None;
        };
        let before = agents.len();
        agents.retain(|x| *x != a);
        (agents.len() < before).then_some(agents.len())
    }

    fn agent_answered(&mut self, now: Instant, c: CallId, id: &str) {
        let Some(&a) = self.agent_ix.get(id) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&c) else {
            return self.emit(AcdAction::CancelOffer {
                call: c,
                agent: id.to_string(),
            });
        };
        let ring = self
            .queues
            .get(call.queue)
            .map_or(Duration::from_secs(15), |q| q.cfg.ring_timeout);
        let others = match &mut call.place {
            Place::Offered {
                agents,
                agent_answered,
            } if agents.contains(&a) => {
                if call.callback.is_some() {
                    // Agent leg up; now the customer leg rings, under a fresh timer.
                    *agent_answered = true;
                    self.set_timer(c, Slot::Ring, now.checked_add(ring));
                    return;
                }
                agents
                    .iter()
                    .copied()
                    .filter(|x| *x != a)
                    .collect::<Vec<_>>()
            }
            Place::OnCall(x) if *x == a => return,
            _ => {
                return self.emit(AcdAction::CancelOffer {
                    call: c,
                    agent: id.to_string(),
                })
            }
        };
        call.place = Place::OnCall(a);
        // A consultation is never a queue's answer.
        let first_answer = !call.answered && call.consult_of.is_none();
        call.answered = true;
        let (q, waited) = (call.queue, now.saturating_duration_since(call.arrived));
        self.set_timer(c, Slot::Ring, None);
        if first_answer {
            if let Some(queue) = self.queues.get_mut(q) {
                let within = queue.record_answer(now, waited);
                self.emit(AcdAction::Measured(Measure::Answered {
                    queue: q,
                    waited,
                    within,
                }));
            }
        }
        self.cancel_offers(now, c, others, None);
        self.connect(now, c, a, q);
    }

    fn connect(&mut self, now: Instant, c: CallId, a: usize, q: usize) {
        let ticket = self.calls.get(&c).and_then(|x| x.ticket.clone());
        if let Some(agent) = self.agents.get_mut(a) {
            agent.calls_since_login += 1;
            agent.talk = Some((q, now));
            agent.last_ticket = ticket;
        }
        self.set_agent_state(now, a, AgentState::OnCall { call: c });
    }

    fn offer_failed(&mut self, now: Instant, c: CallId, id: &str, reason: OfferFailReason) {
        let Some(&a) = self.agent_ix.get(id) else {
            return;
        };
        let Some(left) = self.remove_leg(c, a) else {
            return;
        };
        let declined = reason == OfferFailReason::Rejected
            && self.calls.get(&c).is_some_and(|x| x.consult_of.is_some());
        // A colleague may decline a consultation without being paused.
        let pause = if declined {
            None
        } else {
            self.fail_pause(reason)
        };
        self.free_agent(now, a, pause);
        if left == 0 {
            self.offer_lapsed(now, c, reason == OfferFailReason::Rejected);
        }
    }

    fn call_timer(&mut self, now: Instant, c: CallId, slot: Slot) {
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        match slot {
            Slot::Ring => {
                let Place::Offered {
                    agents,
                    agent_answered,
                } = &call.place
                else {
                    return;
                };
                if call.callback.is_some() && *agent_answered {
                    return self.callback_failed(now, c);
                }
                let agents = agents.clone();
                let pause = self.fail_pause(OfferFailReason::NoAnswer);
                if let Some(call) = self.calls.get_mut(&c) {
                    call.place = Place::Offered {
                        agents: Vec::new(),
                        agent_answered: false,
                    };
                }
                self.cancel_offers(now, c, agents, pause);
                self.offer_lapsed(now, c, false);
            }
            Slot::Widen => {
                if matches!(call.place, Place::Queued(_)) {
                    let next = self
                        .queues
                        .get(call.queue)
                        .and_then(|q| q.next_step(call.entered, now));
                    self.set_timer(c, Slot::Widen, next);
                }
            }
            Slot::MaxWait => {
                let Place::Queued(key) = call.place else {
                    return;
                };
                if call.callback.is_some() {
                    return;
                }
                let qi = call.queue;
                let fb = self
                    .queues
                    .get(qi)
                    .map_or(Fb::Accept, |q| q.on_max_wait.clone());
                match fb {
                    Fb::Accept => {}
                    Fb::Overflow(t) => {
                        if let Some(q) = self.queues.get_mut(qi) {
                            q.waiting.remove(&key);
                        }
                        let (from, to) = (self.queue_name(qi), self.queue_name(t));
                        self.emit(AcdAction::Overflowed { call: c, from, to });
                        self.enter_queue(now, c, t, 1, true);
                    }
                    Fb::OfferCallback => {
                        if let Some(call) = self.calls.get_mut(&c) {
                            if !call.offered_cb {
                                call.offered_cb = true;
                                self.emit(AcdAction::OfferCallbackToCaller { call: c });
                            }
                        }
                    }
                    Fb::MessageAndHangup(prompt) => {
                        self.emit(AcdAction::PlayAndHangup { call: c, prompt });
                        self.finish(c, Outcome::MessageHangup);
                    }
                }
            }
            Slot::Announce => {
                if matches!(call.place, Place::Queued(_)) && call.callback.is_none() {
                    let every = self
                        .queues
                        .get(call.queue)
                        .and_then(|q| q.cfg.announce_every);
                    self.announce(c);
                    self.set_timer(c, Slot::Announce, every.and_then(|d| now.checked_add(d)));
                }
            }
            Slot::Retry => {} // dispatch runs after timers
        }
    }

    /// Keep the caller's place and call it back. A caller waiting in its
    /// queue is held (`ReleaseLine`); so is one whose offer is ringing: the
    /// offer is withdrawn, the agent freed without a pause, the caller put
    /// back at the head. A caller transferred to one agent is refused
    /// (`CallbackRefused`). The callback waits until the caller's line is
    /// down (its `CallerHungUp`), so that nobody is called back while still
    /// on the line.
    fn request_callback(&mut self, now: Instant, c: CallId, number: Option<String>) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        if let Some(cb) = &mut call.callback {
            cb.number = number;
            return;
        }
        let ringing = match &call.place {
            Place::Queued(_) => None,
            Place::Offered {
                agents,
                agent_answered: false,
            } if call.directed.is_none() => Some(agents.clone()),
            _ => return self.emit(AcdAction::CallbackRefused { call: c }),
        };
        call.callback = Some(Callback {
            number,
            failures: 0,
            not_before: None,
            caller_released: false,
        });
        if let Some(agents) = ringing {
            call.place = Place::Offered {
                agents: Vec::new(),
                agent_answered: false,
            };
            self.cancel_offers(now, c, agents, None);
            self.requeue_head(now, c);
        }
        self.set_timer(c, Slot::MaxWait, None);
        self.set_timer(c, Slot::Announce, None);
        self.emit(AcdAction::ReleaseLine { call: c });
    }

    /// The driver found no free line for a due callback: the agent goes back
    /// to Available (idle time kept), the callback to the head of its queue,
    /// and it looks again after [`LINE_RECHECK`] (not a failed attempt).
    fn no_line_for_callback(&mut self, now: Instant, c: CallId) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        let (Some(cb), Place::Offered { agents, .. }) = (&mut call.callback, &call.place) else {
            return;
        };
        cb.not_before = now.checked_add(LINE_RECHECK);
        let agents = agents.clone();
        call.place = Place::Offered {
            agents: Vec::new(),
            agent_answered: false,
        };
        self.set_timer(c, Slot::Ring, None);
        self.cancel_offers(now, c, agents, None);
        self.requeue_head(now, c);
    }

    fn callback_connected(&mut self, now: Instant, c: CallId) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        if call.callback.is_none() {
            return;
        }
        let Place::Offered { agents, .. } = &call.place else {
            return;
        };
        let Some(&a) = agents.first() else { return };
        let others: Vec<usize> = agents.iter().copied().skip(1).collect();
        call.place = Place::OnCall(a);
        call.callback = None;
        call.called_back = true;
        let q = call.queue;
        self.set_timer(c, Slot::Ring, None);
        self.cancel_offers(now, c, others, None);
        self.connect(now, c, a, q);
    }

    fn callback_failed(&mut self, now: Instant, c: CallId) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        let Some(cb) = &mut call.callback else { return };
        let Place::Offered { agents, .. } = &call.place else {
            return;
        };
        cb.failures += 1;
        let give_up = cb.failures > self.callback_retries;
        cb.not_before = now.checked_add(self.callback_retry_delay);
        let agents = agents.clone();
        call.place = Place::Offered {
            agents: Vec::new(),
            agent_answered: false,
        };
        self.cancel_offers(now, c, agents, None);
        if give_up {
            self.finish(c, Outcome::CallbackGaveUp);
        } else {
            self.requeue_head(now, c);
        }
    }

    /// The phone of the agent talking on `c` vanished: the agent is paused
    /// `unreachable` (no call is offered to a dead phone; the agent makes
    /// itself ready again once it is back) and the caller goes back to the
    /// head of its queue, to be offered to the next agent.
    fn agent_lost(&mut self, now: Instant, c: CallId) {
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        let Place::OnCall(from) = call.place else {
            return;
        };
        if call.consult.is_some() || call.consult_of.is_some() {
            return;
        }
        self.free_agent(now, from, Some("unreachable".to_string()));
        if let Some(call) = self.calls.get_mut(&c) {
            call.directed = None;
        }
        self.requeue_head(now, c);
    }

    fn transfer(&mut self, now: Instant, c: CallId, to: TransferTarget) {
        let reject = |reason| AcdAction::TransferRejected { call: c, reason };
        let Some(call) = self.calls.get(&c) else {
            return self.emit(reject("unknown call"));
        };
        let Place::OnCall(from) = call.place else {
            return self.emit(reject("not on a call"));
        };
        if call.consult.is_some() || call.consult_of.is_some() {
            return self.emit(reject("consultation in progress"));
        }
        match to {
            TransferTarget::Queue(name) => {
                let Some(&t) = self.queue_ix.get(&name) else {
                    return self.emit(reject("unknown queue"));
                };
                self.emit(AcdAction::Transferred { call: c });
                self.start_wrap_up(now, from);
                if let Some(call) = self.calls.get_mut(&c) {
                    call.directed = None;
                    call.callback = None;
                }
                self.enter_queue(now, c, t, 0, false);
            }
            TransferTarget::Agent(id) => {
                let Some(&t) = self.agent_ix.get(&id) else {
                    return self.emit(reject("unknown agent"));
                };
                if t == from {
                    return self.emit(reject("same agent"));
                }
                if self
                    .agents
                    .get(t)
                    .is_none_or(|x| x.state == AgentState::LoggedOut)
                {
                    return self.emit(reject("agent logged out"));
                }
                self.emit(AcdAction::Transferred { call: c });
                self.start_wrap_up(now, from);
                self.clear_timers(c);
                if let Some(call) = self.calls.get_mut(&c) {
                    call.directed = Some(t);
                    call.callback = None;
                    call.place = Place::Directed(t);
                }
                if let Some(ag) = self.agents.get_mut(t) {
                    ag.directed.push_back(c);
                }
                self.directed_waiting.insert(t);
            }
        }
    }
}
