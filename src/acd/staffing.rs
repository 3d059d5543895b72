//! Live staffing: how much traffic each queue and the trunk are offered
//! now, and what Erlang B and C make of it. Sans-IO: the switchboard feeds
//! cumulative counts with the time, once a second, and publishes what
//! comes out.
//!
//! - [`Traffic`]: a rate over the last 15 minutes from samples of a
//!   cumulative count (bounded: one sample a second at most).
//! - [`queue_staffing`]: a queue's offered erlangs, agents needed for its
//!   goal, and the service level and speed of answer expected with the
//!   agents it has.
//! - [`trunk_blocking`]: the trunk's offered traffic and its blocking.
//! - [`AgentClock`]: each agent's logged-in and handling time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::erlang;

/// How far back the traffic is measured.
pub const TRAFFIC_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The rate of a cumulative count over the last [`TRAFFIC_WINDOW`] (or
/// since the first sample, while the window has not filled).
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    samples: VecDeque<(Instant, f64)>,
}

impl Traffic {
    /// Record the count's value at `now`. Samples closer than a second to
    /// the last one replace it, so the window holds at most ~900.
    pub fn record(&mut self, now: Instant, total: f64) {
        let several = self.samples.len() > 1;
        if let Some(last) = self.samples.back_mut() {
            if several && now.saturating_duration_since(last.0) < Duration::from_secs(1) {
                *last = (now.max(last.0), total);
                return self.prune(now);
            }
        }
        self.samples.push_back((now, total));
        self.prune(now);
    }

    /// Keep one sample at or before the window's start, as its base.
    fn prune(&mut self, now: Instant) {
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= TRAFFIC_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// The count's growth over the last [`TRAFFIC_WINDOW`], per second of
    /// the window: "arrivals in the last 15 minutes / 15 minutes". Until
    /// the window has filled (just after a start), the growth since the
    /// first sample still counts over the whole window: the figure rises to
    /// the rate rather than jumping at the first few calls.
    pub fn per_second(&self) -> f64 {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        // The base sample may be a little older than the window (it is the
        // last one at or before its start): scale to the span it covers.
        let span = last
            .0
            .saturating_duration_since(first.0)
            .max(TRAFFIC_WINDOW)
            .as_secs_f64();
        ((last.1 - first.1) / span).max(0.0)
    }
}

/// A queue's staffing now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Staffing {
    pub offered_erlangs: f64,
    pub agents_needed: u32,
    /// Needed minus serving, never below 0.
    pub agents_short: u32,
    pub expected_service_level: f64,
    /// Seconds; infinite when the agents cannot keep up.
    pub expected_asa: f64,
}

/// What a queue needs for `arrivals_per_sec` callers of `aht` each, to
/// answer `goal` (0–1) of them within `threshold`, and what `serving`
/// agents are expected to do.
pub fn queue_staffing(
    arrivals_per_sec: f64,
    aht: Duration,
    threshold: Duration,
    goal: f64,
    serving: u32,
) -> Staffing {
    let aht = aht.as_secs_f64();
    let t = threshold.as_secs_f64();
    let a = arrivals_per_sec * aht;
    let needed = erlang::agents_needed(a, aht, t, goal);
    Staffing {
        offered_erlangs: if a.is_finite() { a.max(0.0) } else { 0.0 },
        agents_needed: needed,
        agents_short: needed.saturating_sub(serving),
        expected_service_level: erlang::service_level(serving, a, aht, t),
        expected_asa: erlang::average_speed_of_answer(serving, a, aht),
    }
}

/// The trunk's offered traffic (erlangs) and its blocking probability on
/// `usable` lines, from the lines carried (line-seconds per second) and
/// the share of callers refused: offered = carried / (1 − refused share).
pub fn trunk_blocking(
    carried_erlangs: f64,
    taken_per_sec: f64,
    blocked_per_sec: f64,
    usable: u32,
) -> (f64, f64) {
    let arrivals = taken_per_sec + blocked_per_sec;
    let refused = if arrivals > 0.0 {
        (blocked_per_sec / arrivals).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let carried = if carried_erlangs.is_finite() {
        carried_erlangs.max(0.0)
    } else {
        0.0
    };
    // Every caller refused: what was carried says nothing of the offer;
    // the lines' own count is the least it was.
    let offered = if refused >= 1.0 {
        carried.max(f64::from(usable))
    } else {
        carried / (1.0 - refused)
    };
    (offered, erlang::erlang_b(usable, offered))
}

/// An agent's time: logged in, and handling calls (on a call or in
/// wrap-up), accounted as its state changes and once a second.
#[derive(Debug, Clone, Copy)]
pub struct AgentClock {
    since: Instant,
    logged_in: bool,
    handling: bool,
}

impl AgentClock {
    pub fn new(now: Instant) -> AgentClock {
        AgentClock {
            since: now,
            logged_in: false,
            handling: false,
        }
    }

    /// The time since the last call, as (logged in, handling) seconds; the
    /// agent is `logged_in` and `handling` from now on.
    pub fn advance(&mut self, now: Instant, logged_in: bool, handling: bool) -> (f64, f64) {
        let dt = now.saturating_duration_since(self.since).as_secs_f64();
        let out = (
            if self.logged_in { dt } else { 0.0 },
            if self.handling { dt } else { 0.0 },
        );
        self.since = self.since.max(now);
        self.logged_in = logged_in;
        self.handling = handling && logged_in;
        out
    }

    pub fn state(&self) -> (bool, bool) {
        (self.logged_in, self.handling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_the_rate_over_the_window() {
        let t0 = Instant::now();
        let mut t = Traffic::default();
        assert_eq!(t.per_second(), 0.0);
        t.record(t0, 0.0);
        // One call every 10 s: after 7.5 minutes, 45 calls over the
        // 15-minute window.
        for s in 1..=450u64 {
            t.record(t0 + Duration::from_secs(s), (s / 10) as f64);
        }
        assert!((t.per_second() - 0.05).abs() < 1e-9, "{}", t.per_second());
        // After 20 minutes, the window is full: 90 calls in 15 minutes.
        for s in 451..=1200u64 {
            t.record(t0 + Duration::from_secs(s), (s / 10) as f64);
        }
        assert!((t.per_second() - 0.1).abs() < 0.005, "{}", t.per_second());
        assert!(t.samples.len() <= 902, "{}", t.samples.len());
        // Then nothing for 15 minutes: the rate falls to 0.
        for s in 1201..=2200u64 {
            t.record(t0 + Duration::from_secs(s), 120.0);
        }
        assert_eq!(t.per_second(), 0.0);
    }

    #[test]
    fn a_half_hour_of_the_published_example_needs_14_agents() {
        // 100 calls in 30 min, 180 s each: 10 E; 80 % within 20 s.
        let s = queue_staffing(
            100.0 / 1800.0,
            Duration::from_secs(180),
            Duration::from_secs(20),
            0.8,
            12,
        );
        assert!((s.offered_erlangs - 10.0).abs() < 1e-9);
        assert_eq!((s.agents_needed, s.agents_short), (14, 2));
        assert!(s.expected_service_level < 0.8);
        let enough = queue_staffing(
            100.0 / 1800.0,
            Duration::from_secs(180),
            Duration::from_secs(20),
            0.8,
            14,
        );
        assert_eq!(enough.agents_short, 0);
        assert!((enough.expected_service_level - 0.8884).abs() < 5e-4);
        let idle = queue_staffing(
            0.0,
            Duration::from_secs(180),
            Duration::from_secs(20),
            0.8,
            3,
        );
        assert_eq!((idle.agents_needed, idle.agents_short), (0, 0));
        assert_eq!((idle.expected_service_level, idle.expected_asa), (1.0, 0.0));
    }

    #[test]
    fn the_trunk_offer_adds_the_refused_callers_back() {
        // 10 E carried, no one refused: B(12, 10) = 0.1197.
        let (a, b) = trunk_blocking(10.0, 0.1, 0.0, 12);
        assert!((a - 10.0).abs() < 1e-9 && (b - 0.1197).abs() < 5e-5);
        // Half the callers refused: twice the traffic was offered.
        let (a, _) = trunk_blocking(6.0, 0.05, 0.05, 12);
        assert!((a - 12.0).abs() < 1e-9);
        let (a, b) = trunk_blocking(0.0, 0.0, 1.0, 5);
        assert!(a >= 5.0 && b > 0.0);
        assert_eq!(trunk_blocking(0.0, 0.0, 0.0, 5), (0.0, 0.0));
    }

    #[test]
    fn an_agent_clock_counts_logged_in_and_handling_time() {
        let t0 = Instant::now();
        let mut c = AgentClock::new(t0);
        // (seconds after t0, logged in from then, handling from then) →
        // (logged-in, handling) seconds since the step before.
        for (at, l, h, want) in [
            (5, true, false, (0.0, 0.0)),
            (15, true, true, (10.0, 0.0)),
            (45, false, false, (30.0, 30.0)),
            (60, false, false, (0.0, 0.0)),
        ] {
            assert_eq!(
                c.advance(t0 + Duration::from_secs(at), l, h),
                want,
                "at {at} s"
            );
        }
    }
}
