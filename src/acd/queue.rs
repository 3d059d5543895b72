//! Per-queue runtime state. Owns the waiting order (priority 9..0, then
//! arrival; requeued-at-head calls go before their priority band), the
//! per-widening-level qualified-agent index and per-state counters used for
//! fast routing, the average handle time, and the service-level / abandon
//! windows behind [`QueueStats`]. Sans-IO: every time is passed in.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::agent::{Agent, KINDS};
use super::config::{QueueConfig, Widen};
use super::CallId;

/// Ordering key in a queue: higher priority first, then `order` ascending.
/// Tail inserts use increasing positive orders, head re-inserts decreasing
/// negative ones, so a requeued call goes first within its priority.
pub(crate) type WaitKey = (Reverse<u8>, i64);

/// Resolved fallback (queue names turned into indexes).
#[derive(Debug, Clone)]
pub(crate) enum Fb {
    Accept,
    Overflow(usize),
    OfferCallback,
    MessageAndHangup(String),
}

/// Agents of a queue by state (qualified at the widest level).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCounts {
    pub logged_out: u32,
    pub available: u32,
    pub offered: u32,
    pub on_call: u32,
    pub wrap_up: u32,
    pub paused: u32,
}

impl AgentCounts {
    /// The counts in the order of the driver's `AgentStatus::ALL`:
    /// logged out, available, offered, on a call, wrap-up, paused.
    pub fn by_state(&self) -> [u32; 6] {
        [
            self.logged_out,
            self.available,
            self.offered,
            self.on_call,
            self.wrap_up,
            self.paused,
        ]
    }
}

/// Metrics snapshot of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// Callers waiting with a line (not callback-pending, not ringing).
    pub waiting: usize,
    /// Callers waiting for a callback (place kept, line released).
    pub callbacks_pending: usize,
    /// Longest current wait among `waiting`.
    pub longest_wait: Duration,
    pub agents: AgentCounts,
    /// Answered within the stats window.
    pub answered: u32,
    /// Of those, answered within the service-level target.
    pub answered_within_target: u32,
    /// answered_within_target / answered (None when nothing answered).
    pub service_level: Option<f64>,
    /// Abandoned within the stats window.
    pub abandoned: u32,
    pub abandoned_total: u64,
    pub average_handle_time: Duration,
}

/// Qualification rule at one widening level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LevelRule {
    pub also_level2: bool,
    pub lower: u8,
}

#[derive(Debug)]
pub(crate) struct Queue {
    pub cfg: QueueConfig,
    /// (skill id, min level).
    pub reqs: Vec<(usize, u8)>,
    /// Rule per level; index 0 = no widening, k = after step k.
    pub rules: Vec<LevelRule>,
    /// Widening step times, sorted, parallel to rules[1..].
    pub step_after: Vec<Duration>,
    /// Agents qualified at each level (cumulative, sorted by agent index).
    pub qualified: Vec<Vec<usize>>,
    /// counts[min_level][state kind]: agents whose lowest qualifying level is min_level.
    pub counts: Vec<[u32; KINDS]>,
    pub waiting: BTreeMap<WaitKey, CallId>,
    pub on_max_wait: Fb,
    pub on_no_agents: Fb,
    pub rr_last: Option<usize>,
    aht: VecDeque<Duration>,
    aht_cap: usize,
    initial_aht: Duration,
    answered: VecDeque<(Instant, bool)>,
    /// How many of `answered` were within the target (kept with the deque,
    /// so the window is counted without walking it).
    answered_within: u32,
    abandoned: VecDeque<Instant>,
    pub abandoned_total: u64,
}

impl Queue {
    pub fn new(
        cfg: QueueConfig,
        reqs: Vec<(usize, u8)>,
        aht_cap: usize,
        initial_aht: Duration,
    ) -> Queue {
        let mut steps = cfg.widening.clone();
        steps.sort_by_key(|s| s.after);
        let mut rules = vec![LevelRule {
            also_level2: false,
            lower: 0,
        }];
        let mut step_after = Vec::new();
        for s in &steps {
            let mut r = rules[rules.len() - 1];
            match s.widen {
                Widen::AlsoLevel2 => r.also_level2 = true,
                Widen::LowerMinSkill(n) => r.lower = r.lower.saturating_add(n),
            }
            rules.push(r);
            step_after.push(s.after);
        }
        let levels = rules.len();
        Queue {
            cfg,
            reqs,
            rules,
            step_after,
            qualified: vec![Vec::new(); levels],
            counts: vec![[0; KINDS]; levels],
            waiting: BTreeMap::new(),
            on_max_wait: Fb::Accept,
            on_no_agents: Fb::Accept,
            rr_last: None,
            aht: VecDeque::new(),
            aht_cap,
            initial_aht,
            answered: VecDeque::new(),
            answered_within: 0,
            abandoned: VecDeque::new(),
            abandoned_total: 0,
        }
    }

    pub fn max_level(&self) -> usize {
        self.rules.len() - 1
    }

    /// Does `agent` qualify at `level`?
    pub fn qualifies(&self, agent: &Agent, level: usize) -> bool {
        let Some(rule) = self.rules.get(level) else {
            return false;
        };
        let support_ok = agent.support_level == self.cfg.support_level
            || (rule.also_level2 && agent.support_level == 2);
        support_ok
            && self.reqs.iter().all(|&(skill, min)| {
                agent.skills.get(skill).copied().unwrap_or(0) >= min.saturating_sub(rule.lower)
            })
    }

    /// Widening level of a call that entered at `entered`.
    pub fn level_at(&self, entered: Instant, now: Instant) -> usize {
        let waited = now.saturating_duration_since(entered);
        self.step_after.iter().take_while(|a| **a <= waited).count()
    }

    /// When the next widening step after `now` happens.
    pub fn next_step(&self, entered: Instant, now: Instant) -> Option<Instant> {
        let lvl = self.level_at(entered, now);
        self.step_after
            .get(lvl)
            .and_then(|a| entered.checked_add(*a))
    }

    /// Agents in state `kind` qualified at `level`.
    pub fn count_at(&self, level: usize, kind: usize) -> u32 {
        self.counts.iter().take(level + 1).map(|c| c[kind]).sum()
    }

    pub fn available_at(&self, level: usize) -> u32 {
        self.count_at(level, 1)
    }

    /// Logged in (any state but LoggedOut), at the widest level.
    pub fn logged_in(&self) -> u32 {
        let l = self.max_level();
        (1..KINDS).map(|k| self.count_at(l, k)).sum()
    }

    /// Serving = logged in and not paused, at the widest level.
    pub fn serving(&self) -> u32 {
        let l = self.max_level();
        (1..5).map(|k| self.count_at(l, k)).sum()
    }

    pub fn aht(&self) -> Duration {
        if self.aht.is_empty() {
            return self.initial_aht;
        }
        let total: Duration = self.aht.iter().sum();
        total / self.aht.len() as u32
    }

    pub fn record_handle_time(&mut self, d: Duration) {
        if self.aht.len() >= self.aht_cap {
            self.aht.pop_front();
        }
        self.aht.push_back(d);
    }

    /// EWT in whole minutes for a 1-based position.
    pub fn ewt_minutes(&self, position: usize) -> u32 {
        let agents = u64::from(self.serving().max(1));
        let aht_ms = u64::try_from(self.aht().as_millis()).unwrap_or(u64::MAX);
        let total_ms = (position as u64).saturating_mul(aht_ms);
        let secs = total_ms.div_ceil(1000).div_ceil(agents);
        u32::try_from(secs.div_ceil(60)).unwrap_or(u32::MAX)
    }

    fn prune(&mut self, now: Instant) {
        let w = self.cfg.stats_window;
        while self
            .answered
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > w)
        {
            if let Some((_, true)) = self.answered.pop_front() {
                self.answered_within = self.answered_within.saturating_sub(1);
            }
        }
        while self
            .abandoned
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > w)
        {
            self.abandoned.pop_front();
        }
    }

    pub fn record_answer(&mut self, now: Instant, waited: Duration) {
        self.prune(now);
        let ok = waited <= self.cfg.service_level_target;
        self.answered.push_back((now, ok));
        self.answered_within += u32::from(ok);
    }

    pub fn record_abandon(&mut self, now: Instant) {
        self.prune(now);
        self.abandoned.push_back(now);
        self.abandoned_total += 1;
    }

    /// Answered / within-target / abandoned in the window ending at `now`.
    /// The deques are in time order and pruned on every record, so only the
    /// entries that expired since then (a prefix) are walked: this runs on
    /// every ACD event and must not cost the window's length.
    pub fn window(&self, now: Instant) -> (u32, u32, u32) {
        let w = self.cfg.stats_window;
        let expired = |t: &Instant| now.saturating_duration_since(*t) > w;
        let (mut gone, mut gone_within) = (0u32, 0u32);
        for (_, ok) in self.answered.iter().take_while(|(t, _)| expired(t)) {
            gone += 1;
            gone_within += u32::from(*ok);
        }
        let gone_abandoned = self.abandoned.iter().take_while(|t| expired(t)).count();
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (
            len(self.answered.len()).saturating_sub(gone),
            self.answered_within.saturating_sub(gone_within),
            len(self.abandoned.len().saturating_sub(gone_abandoned)),
        )
    }

    pub fn agent_counts(&self) -> AgentCounts {
        let l = self.max_level();
        AgentCounts {
            logged_out: self.count_at(l, 0),
            available: self.count_at(l, 1),
            offered: self.count_at(l, 2),
            on_call: self.count_at(l, 3),
            wrap_up: self.count_at(l, 4),
            paused: self.count_at(l, 5),
        }
    }
}
