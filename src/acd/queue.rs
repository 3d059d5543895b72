//! Per-queue runtime state. Owns the waiting order (priority 9..0, then
//! arrival; requeued-at-head calls go before their priority band), the
//! per-widening-level qualified-agent index and per-state counters used for
//! fast routing, the average handle time, and the service-level / abandon
//! windows behind [`QueueStats`]. Sans-IO: every time is passed in.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::agent::{Agent, KINDS};
use super::config::{AbandonMode, QueueConfig, Widen};
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
    /// The window's service level, abandons counted the queue's way
    /// (`None` while nothing counts).
    pub service_level: Option<f64>,
    /// Abandoned within the stats window (short abandons left out).
    pub abandoned: u32,
    /// The window's average speed of answer.
    pub average_speed_of_answer: Option<Duration>,
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
    /// Answers in the stats window: when, and how long the caller waited.
    answered: VecDeque<(Instant, Duration)>,
    /// Abandons in the window (short ones left out): when, and the wait.
    abandoned: VecDeque<(Instant, Duration)>,
    /// The window's sums, kept with the deques so that reading them does
    /// not walk the window.
    sums: Window,
    pub abandoned_total: u64,
}

/// A queue's figures over its stats window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub answered: u32,
    /// Answered within the service-level threshold.
    pub answered_within: u32,
    /// Abandoned (short abandons left out).
    pub abandoned: u32,
    /// Abandoned within the service-level threshold.
    pub abandoned_within: u32,
    /// The answered callers' waits, summed (for the average speed of
    /// answer).
    pub answered_wait: Duration,
}

impl Window {
    fn add(&mut self, answered: bool, within: bool, wait: Duration) {
        if answered {
            self.answered += 1;
            self.answered_within += u32::from(within);
            self.answered_wait += wait;
        } else {
            self.abandoned += 1;
            self.abandoned_within += u32::from(within);
        }
    }

    fn sub(&mut self, answered: bool, within: bool, wait: Duration) {
        if answered {
            self.answered = self.answered.saturating_sub(1);
            self.answered_within = self.answered_within.saturating_sub(u32::from(within));
            self.answered_wait = self.answered_wait.saturating_sub(wait);
        } else {
            self.abandoned = self.abandoned.saturating_sub(1);
            self.abandoned_within = self.abandoned_within.saturating_sub(u32::from(within));
        }
    }

    /// The average speed of answer (`None` before any answer).
    pub fn average_speed_of_answer(&self) -> Option<Duration> {
        (self.answered > 0).then(|| self.answered_wait / self.answered)
    }
}

/// The service level of a window, abandons counted the `mode` way; `None`
/// while nothing counts (nothing answered, nor abandoned where abandons
/// count).
pub fn service_level(w: &Window, mode: AbandonMode) -> Option<f64> {
    let (num, den) = match mode {
        AbandonMode::Ignore => (w.answered_within, w.answered),
        AbandonMode::Against => (w.answered_within, w.answered + w.abandoned),
        AbandonMode::InFavour => (
            w.answered_within + w.abandoned_within,
            w.answered + w.abandoned,
        ),
    };
    (den > 0).then(|| f64::from(num) / f64::from(den))
}

/// What an abandon was, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandon {
    /// Sooner than the queue's short-abandon time: not counted as one.
    Short,
    /// Within the service-level threshold.
    Within,
    /// After it.
    After,
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
            abandoned: VecDeque::new(),
            sums: Window::default(),
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
        let target = self.cfg.service_level_target;
        let expired = |t: &Instant| now.saturating_duration_since(*t) > w;
        while let Some(&(t, wait)) = self.answered.front() {
            if !expired(&t) {
                break;
            }
            self.answered.pop_front();
            self.sums.sub(true, wait <= target, wait);
        }
        while let Some(&(t, wait)) = self.abandoned.front() {
            if !expired(&t) {
                break;
            }
            self.abandoned.pop_front();
            self.sums.sub(false, wait <= target, wait);
        }
    }

    /// A caller answered after `waited`; whether that was within the
    /// service-level threshold.
    pub fn record_answer(&mut self, now: Instant, waited: Duration) -> bool {
        self.prune(now);
        let within = waited <= self.cfg.service_level_target;
        self.answered.push_back((now, waited));
        self.sums.add(true, within, waited);
        within
    }

    /// A caller hung up after waiting `waited`.
    pub fn record_abandon(&mut self, now: Instant, waited: Duration) -> Abandon {
        self.prune(now);
        self.abandoned_total += 1;
        if waited < self.cfg.short_abandon {
            return Abandon::Short;
        }
        let within = waited <= self.cfg.service_level_target;
        self.abandoned.push_back((now, waited));
        self.sums.add(false, within, waited);
        if within {
            Abandon::Within
        } else {
            Abandon::After
        }
    }

    /// The figures of the window ending at `now`. The deques are in time
    /// order and pruned on every record, so only the entries that expired
    /// since then (a prefix) are walked: this runs on every ACD event and
    /// must not cost the window's length.
    pub fn window(&self, now: Instant) -> Window {
        let w = self.cfg.stats_window;
        let target = self.cfg.service_level_target;
        let expired = |t: &Instant| now.saturating_duration_since(*t) > w;
        let mut sums = self.sums;
        for &(_, wait) in self.answered.iter().take_while(|(t, _)| expired(t)) {
            sums.sub(true, wait <= target, wait);
        }
        for &(_, wait) in self.abandoned.iter().take_while(|(t, _)| expired(t)) {
            sums.sub(false, wait <= target, wait);
        }
        sums
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The published example: 1,000 answered, 860 of them within 20 s; 60
    /// abandoned, 20 of them within 20 s.
    const EXAMPLE: Window = Window {
        answered: 1000,
        answered_within: 860,
        abandoned: 60,
        abandoned_within: 20,
        answered_wait: Duration::ZERO,
    };

    #[test]
    fn service_level_counts_abandons_the_three_ways() {
        let sl = |mode| service_level(&EXAMPLE, mode).expect("figures");
        assert!((sl(AbandonMode::Ignore) - 0.86).abs() < 1e-9);
        // 860 / 1,060 = 81.1 %.
        assert!((sl(AbandonMode::Against) - 0.8113).abs() < 1e-4);
        // (860 + 20) / 1,060 = 83.0 %.
        assert!((sl(AbandonMode::InFavour) - 0.8302).abs() < 1e-4);
        let empty = Window::default();
        assert_eq!(service_level(&empty, AbandonMode::Against), None);
        let only_abandons = Window {
            abandoned: 2,
            ..Window::default()
        };
        assert_eq!(service_level(&only_abandons, AbandonMode::Ignore), None);
        assert_eq!(
            service_level(&only_abandons, AbandonMode::Against),
            Some(0.0)
        );
    }

    #[test]
    fn the_window_keeps_waits_and_drops_short_abandons_and_old_figures() {
        let mut cfg = QueueConfig::new("q");
        cfg.short_abandon = Duration::from_secs(5);
        cfg.stats_window = Duration::from_secs(60);
        let mut q = Queue::new(cfg, Vec::new(), 10, Duration::from_secs(180));
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(q.record_answer(t0, s(10)));
        assert!(!q.record_answer(t0 + s(1), s(30)));
        assert_eq!(q.record_abandon(t0 + s(2), s(3)), Abandon::Short);
        assert_eq!(q.record_abandon(t0 + s(3), s(15)), Abandon::Within);
        assert_eq!(q.record_abandon(t0 + s(4), s(40)), Abandon::After);
        let w = q.window(t0 + s(5));
        assert_eq!(
            (
                w.answered,
                w.answered_within,
                w.abandoned,
                w.abandoned_within
            ),
            (2, 1, 2, 1)
        );
        assert_eq!(w.average_speed_of_answer(), Some(s(20)));
        assert_eq!(q.abandoned_total, 3);
        // A minute later the first answer has left the window.
        let w = q.window(t0 + s(61));
        assert_eq!((w.answered, w.answered_within), (1, 0));
        assert_eq!(w.average_speed_of_answer(), Some(s(30)));
        let w = q.window(t0 + s(65));
        assert_eq!(w, Window::default());
    }
}
