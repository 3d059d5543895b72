//! The switchboard's side of the queue KPIs, staffing and agents' time:
//! it turns the core's [`Measure`]s into counters and histograms as they
//! happen, and once a second ([`Kpis::tick`]) recomputes staffing (Erlang
//! C per queue, Erlang B for the trunk) and accounts line and agent time.
//! The handles are looked up once, at start; no lock is shared with a
//! scrape beyond the metrics' own atomics.
//!
//! No clock of its own: the switchboard passes `now`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Counter, Gauge, Histogram, IntCounter};

use super::lines::LineCapacity;
use super::staffing::{self, AgentClock, Traffic};
use super::{Acd, AgentState, Measure, QueueConfig};
use crate::metrics::Metrics;

/// One queue's handles, its targets and its arrivals.
struct QueueKpi {
    name: String,
    threshold: Duration,
    goal: f64,
    offered: IntCounter,
    answered: IntCounter,
    answered_within: IntCounter,
    abandoned: IntCounter,
    abandoned_within: IntCounter,
    short_abandoned: IntCounter,
    wait: Histogram,
    abandon_wait: Histogram,
    talk: Histogram,
    wrap_up: Histogram,
    arrivals: Traffic,
    /// The last second's figures.
    staffing: Option<staffing::Staffing>,
    erlangs: Gauge,
    needed: Gauge,
    short: Gauge,
    expected_sl: Gauge,
    expected_asa: Gauge,
}

struct AgentKpi {
    clock: AgentClock,
    logged_in: Counter,
    handling: Counter,
}

/// The trunk's traffic: line-seconds, lines taken, callers refused.
#[derive(Default)]
struct Trunk {
    carried: Traffic,
    taken: Traffic,
    blocked: Traffic,
}

pub(crate) struct Kpis {
    queues: Vec<QueueKpi>,
    agents: HashMap<String, AgentKpi>,
    lines: Arc<LineCapacity>,
    trunk: Trunk,
    offered_erlangs: Gauge,
    blocking: Gauge,
}

impl Kpis {
    /// Handles for `queues` (in the ACD's order: a [`Measure`]'s index)
    /// and `agents`; the queues' targets are published at once.
    pub fn new(
        queues: &[QueueConfig],
        agents: &[String],
        metrics: &Metrics,
        lines: Arc<LineCapacity>,
        now: Instant,
    ) -> Kpis {
        let m = &metrics.queue;
        let s = &metrics.staffing;
        let queues = queues
            .iter()
            .map(|q| {
                let l = [q.name.as_str()];
                let goal = f64::from(q.service_level_percent) / 100.0;
                m.service_level_target.with_label_values(&l).set(goal);
                m.service_level_threshold
                    .with_label_values(&l)
                    .set(q.service_level_target.as_secs_f64());
                if let Some(max) = q.max_wait {
                    m.max_wait.with_label_values(&l).set(max.as_secs_f64());
                }
                QueueKpi {
                    name: q.name.clone(),
                    threshold: q.service_level_target,
                    goal,
                    offered: m.offered.with_label_values(&l),
                    answered: m.answered.with_label_values(&l),
                    answered_within: m.answered_within.with_label_values(&l),
                    abandoned: m.abandoned.with_label_values(&l),
                    abandoned_within: m.abandoned_within.with_label_values(&l),
                    short_abandoned: m.short_abandoned.with_label_values(&l),
                    wait: m.wait.with_label_values(&l),
                    abandon_wait: m.abandon_wait.with_label_values(&l),
                    talk: m.talk.with_label_values(&l),
                    wrap_up: m.wrap_up.with_label_values(&l),
                    arrivals: Traffic::default(),
                    staffing: None,
                    erlangs: s.offered_erlangs.with_label_values(&l),
                    needed: s.agents_needed.with_label_values(&l),
                    short: s.agents_short.with_label_values(&l),
                    expected_sl: s.expected_service_level.with_label_values(&l),
                    expected_asa: s.expected_asa.with_label_values(&l),
                }
            })
            .collect();
        let agents = agents
            .iter()
            .map(|a| {
                let l = [a.as_str()];
                let kpi = AgentKpi {
                    clock: AgentClock::new(now),
                    logged_in: metrics.agent_logged_in_seconds.with_label_values(&l),
                    handling: metrics.agent_handling_seconds.with_label_values(&l),
                };
                (a.clone(), kpi)
            })
            .collect();
        Kpis {
            queues,
            agents,
            lines,
            trunk: Trunk::default(),
            offered_erlangs: metrics.lines_offered_erlangs.clone(),
            blocking: metrics.lines_blocking.clone(),
        }
    }

    /// Count what the core measured.
    pub fn measured(&self, m: Measure) {
        match m {
            Measure::Offered { queue } => {
                if let Some(q) = self.queues.get(queue) {
                    q.offered.inc();
                }
            }
            Measure::Answered {
                queue,
                waited,
                within,
            } => {
                if let Some(q) = self.queues.get(queue) {
                    q.answered.inc();
                    if within {
                        q.answered_within.inc();
                    }
                    q.wait.observe(waited.as_secs_f64());
                }
            }
            Measure::Abandoned {
                queue,
                waited,
                short,
                within,
            } => {
                if let Some(q) = self.queues.get(queue) {
                    q.abandon_wait.observe(waited.as_secs_f64());
                    if short {
                        q.short_abandoned.inc();
                    } else {
                        q.abandoned.inc();
                        if within {
                            q.abandoned_within.inc();
                        }
                    }
                }
            }
            Measure::Handled {
                queue,
                talk,
                wrap_up,
            } => {
                if let Some(q) = self.queues.get(queue) {
                    q.talk.observe(talk.as_secs_f64());
                    q.wrap_up.observe(wrap_up.as_secs_f64());
                }
            }
        }
    }

    /// An agent's state changed: the time before goes where it belongs.
    pub fn agent_state(&mut self, now: Instant, agent: &str, state: &AgentState) {
        if let Some(a) = self.agents.get_mut(agent) {
            let (logged_in, handling) = a.clock.advance(now, logged_in(state), handling(state));
            a.logged_in.inc_by(logged_in);
            a.handling.inc_by(handling);
        }
    }

    /// The queue's staffing as last computed (`None` before the first
    /// second, or for an unknown queue).
    pub fn staffing(&self, queue: &str) -> Option<staffing::Staffing> {
        self.queues
            .iter()
            .find(|q| q.name == queue)
            .and_then(|q| q.staffing)
    }

    /// Once a second: line and agent time, and staffing.
    pub fn tick(&mut self, acd: &Acd, now: Instant) {
        let totals = self.lines.account(now);
        let t = &mut self.trunk;
        t.carried.record(now, totals.seconds);
        t.taken.record(now, totals.taken as f64);
        t.blocked.record(now, totals.blocked as f64);
        let (offered, blocking) = staffing::trunk_blocking(
            t.carried.per_second(),
            t.taken.per_second(),
            t.blocked.per_second(),
            self.lines.usable(),
        );
        self.offered_erlangs.set(offered);
        self.blocking.set(blocking);
        for q in &mut self.queues {
            q.arrivals.record(now, q.offered.get() as f64);
            let Some(st) = acd.queue_stats(&q.name, now) else {
                continue;
            };
            let a = st.agents;
            let serving = a.available + a.offered + a.on_call + a.wrap_up;
            let s = staffing::queue_staffing(
                q.arrivals.per_second(),
                st.average_handle_time,
                q.threshold,
                q.goal,
                serving,
            );
            q.staffing = Some(s);
            q.erlangs.set(s.offered_erlangs);
            q.needed.set(f64::from(s.agents_needed));
            q.short.set(f64::from(s.agents_short));
            q.expected_sl.set(s.expected_service_level);
            q.expected_asa.set(s.expected_asa);
        }
        for (id, a) in &mut self.agents {
            let (l, h) = match acd.agent_state(id) {
                Some(state) => (logged_in(state), handling(state)),
                None => a.clock.state(),
            };
            let (logged_in, handling) = a.clock.advance(now, l, h);
            a.logged_in.inc_by(logged_in);
            a.handling.inc_by(handling);
        }
    }
}

fn logged_in(s: &AgentState) -> bool {
    !matches!(s, AgentState::LoggedOut)
}

/// Handling a call: talking (or holding, consulting) and the after-call
/// work; ringing is not handling yet.
fn handling(s: &AgentState) -> bool {
    matches!(s, AgentState::OnCall { .. } | AgentState::WrapUp { .. })
}
