//! Erlang B and Erlang C, the staffing arithmetic of telephony: how likely
//! a call is blocked on a trunk of `n` lines, how many agents a queue needs
//! to answer a share of its calls within a threshold, and the service level
//! and speed of answer expected with the agents there are.
//!
//! Pure functions on `f64`, no state. Written by hand: the formulas are a
//! few lines, and the crates that offer them compute factorials and powers
//! (overflowing past ~170 servers). Here Erlang B runs by the recursion
//! `B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1))`, which stays in `[0, 1]` for
//! any size, and Erlang C is derived from B:
//! `C = n·B / (n − A·(1 − B))`.
//!
//! Traffic `A` is in erlangs: arrival rate × average handle time.

/// The probability that a call offered to `servers` lines carrying
/// `erlangs` of offered traffic finds every line busy (Erlang B).
///
/// `0.0` servers: every call is blocked (`1.0`); no traffic: none is.
pub fn erlang_b(servers: u32, erlangs: f64) -> f64 {
    let a = sane(erlangs);
    if a == 0.0 {
        return if servers == 0 { 1.0 } else { 0.0 };
    }
    let mut b = 1.0;
    for n in 1..=servers {
        b = a * b / (f64::from(n) + a * b);
    }
    b
}

/// The most traffic `servers` lines carry with at most `blocking` of the
/// calls blocked (the inverse of [`erlang_b`] in the traffic), to 1e-9 E.
pub fn erlang_b_capacity(servers: u32, blocking: f64) -> f64 {
    if servers == 0 || blocking.is_nan() || blocking <= 0.0 {
        return 0.0;
    }
    if blocking >= 1.0 {
        return f64::INFINITY;
    }
    // B grows with the traffic: bisect between 0 and a traffic surely too big.
    let (mut lo, mut hi) = (0.0_f64, f64::from(servers).max(1.0));
    while erlang_b(servers, hi) <= blocking {
        hi *= 2.0;
    }
    while hi - lo > 1e-9 {
        let mid = (lo + hi) / 2.0;
        if erlang_b(servers, mid) <= blocking {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The probability that a call waits at all, with `agents` agents and
/// `erlangs` of traffic (Erlang C). `1.0` when the agents cannot keep up
/// (`agents ≤ erlangs`): the queue only grows.
pub fn erlang_c(agents: u32, erlangs: f64) -> f64 {
    let a = sane(erlangs);
    let n = f64::from(agents);
    if a == 0.0 {
        return 0.0;
    }
    if n <= a {
        return 1.0;
    }
    c_from_b(n, a, erlang_b(agents, a))
}

fn c_from_b(n: f64, a: f64, b: f64) -> f64 {
    (n * b / (n - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// The share of calls answered within `threshold_secs`, with `agents`
/// agents, `erlangs` of traffic and an average handle time of `aht_secs`:
/// `1 − C·e^{−(n−A)·t/AHT}`.
pub fn service_level(agents: u32, erlangs: f64, aht_secs: f64, threshold_secs: f64) -> f64 {
    let a = sane(erlangs);
    let n = f64::from(agents);
    if a == 0.0 {
        return 1.0;
    }
    if n <= a || aht_secs.is_nan() || aht_secs <= 0.0 {
        return 0.0;
    }
    sl_from_c(n, a, erlang_c(agents, a), aht_secs, threshold_secs)
}

fn sl_from_c(n: f64, a: f64, c: f64, aht: f64, t: f64) -> f64 {
    (1.0 - c * (-(n - a) * sane(t) / aht).exp()).clamp(0.0, 1.0)
}

/// The average speed of answer (seconds, over every call, those answered
/// at once included): `C·AHT / (n − A)`; infinite when the agents cannot
/// keep up.
pub fn average_speed_of_answer(agents: u32, erlangs: f64, aht_secs: f64) -> f64 {
    let a = sane(erlangs);
    let n = f64::from(agents);
    if a == 0.0 {
        return 0.0;
    }
    if n <= a {
        return f64::INFINITY;
    }
    erlang_c(agents, a) * sane(aht_secs) / (n - a)
}

/// The agents' occupancy: the share of their time spent handling calls.
pub fn occupancy(agents: u32, erlangs: f64) -> f64 {
    if agents == 0 {
        return 0.0;
    }
    (sane(erlangs) / f64::from(agents)).min(1.0)
}

/// Whatever the inputs, this many agents is as far as the search goes
/// (a queue asking for more is told this many).
pub const MAX_AGENTS: u32 = 100_000;

/// The fewest agents that answer `target` (0–1) of the calls within
/// `threshold_secs`, for `erlangs` of traffic and an average handle time of
/// `aht_secs` (Erlang C). No traffic needs no agent.
///
/// Linear in the answer: Erlang B is carried from one candidate to the next.
pub fn agents_needed(erlangs: f64, aht_secs: f64, threshold_secs: f64, target: f64) -> u32 {
    let a = sane(erlangs);
    if a == 0.0 {
        return 0;
    }
    let target = if target.is_nan() {
        0.0
    } else {
        target.min(1.0)
    };
    let aht = if aht_secs > 0.0 { aht_secs } else { 1.0 };
    let mut b = 1.0;
    for n in 1..=MAX_AGENTS {
        b = a * b / (f64::from(n) + a * b);
        let nf = f64::from(n);
        if nf <= a {
            continue;
        }
        let c = c_from_b(nf, a, b);
        if sl_from_c(nf, a, c, aht, threshold_secs) >= target {
            return n;
        }
    }
    MAX_AGENTS
}

/// Traffic that is negative, NaN or infinite is no traffic we can staff
/// for: NaN and negatives count as none, infinity as the most we search.
fn sane(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        0.0
    } else {
        x.min(f64::from(MAX_AGENTS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn erlang_b_matches_the_published_table() {
        // 12 lines, 10 E: 11.97 % blocked.
        assert!(
            close(erlang_b(12, 10.0), 0.1197, 5e-5),
            "{}",
            erlang_b(12, 10.0)
        );
        // The textbook's small case: 2 lines, 1 E → 1/5.
        assert!(close(erlang_b(2, 1.0), 0.2, 1e-12));
        assert_eq!(erlang_b(0, 3.0), 1.0);
        assert_eq!(erlang_b(5, 0.0), 0.0);
    }

    #[test]
    fn fifteen_lines_at_one_percent_carry_8_108_erlangs() {
        let a = erlang_b_capacity(15, 0.01);
        assert!(close(a, 8.108, 5e-4), "{a}");
        assert!(erlang_b(15, a) <= 0.01);
    }

    #[test]
    fn erlang_c_staffs_the_published_half_hour() {
        // 100 calls in 30 minutes, 180 s each: 10 E; 80 % within 20 s.
        let a = 100.0 / 1800.0 * 180.0;
        assert!(close(a, 10.0, 1e-12));
        let n = agents_needed(a, 180.0, 20.0, 0.8);
        assert_eq!(n, 14);
        assert!(close(erlang_c(14, a), 0.1741, 5e-5), "{}", erlang_c(14, a));
        assert!(close(service_level(14, a, 180.0, 20.0), 0.8884, 5e-5));
        assert!(close(occupancy(14, a), 0.7143, 5e-5));
        // One fewer misses the target.
        assert!(service_level(13, a, 180.0, 20.0) < 0.8);
    }

    #[test]
    fn twenty_erlangs_on_26_agents_wait_15_percent_and_3_seconds() {
        // 600 calls an hour of 120 s: 20 E.
        let a = 600.0 / 3600.0 * 120.0;
        let c = erlang_c(26, a);
        assert!(close(c, 0.15, 0.01), "{c}");
        let asa = average_speed_of_answer(26, a, 120.0);
        assert!(close(asa, 3.0, 0.2), "{asa}");
    }

    #[test]
    fn too_few_agents_never_catch_up() {
        assert_eq!(erlang_c(10, 10.0), 1.0);
        assert_eq!(service_level(9, 10.0, 180.0, 20.0), 0.0);
        assert_eq!(average_speed_of_answer(10, 10.0, 180.0), f64::INFINITY);
        assert_eq!(agents_needed(0.0, 180.0, 20.0, 0.8), 0);
        assert_eq!(service_level(0, 0.0, 180.0, 20.0), 1.0);
    }

    #[test]
    fn large_centers_stay_finite() {
        let b = erlang_b(1000, 900.0);
        assert!(b.is_finite() && (0.0..=1.0).contains(&b), "{b}");
        let c = erlang_c(1000, 900.0);
        assert!(c.is_finite() && (0.0..=1.0).contains(&c), "{c}");
        let sl = service_level(1000, 900.0, 180.0, 20.0);
        assert!(sl.is_finite() && (0.0..=1.0).contains(&sl), "{sl}");
        let asa = average_speed_of_answer(1000, 900.0, 180.0);
        assert!(asa.is_finite() && asa >= 0.0, "{asa}");
        let n = agents_needed(900.0, 180.0, 20.0, 0.8);
        assert!((901..1000).contains(&n), "{n}");
        assert!(service_level(n, 900.0, 180.0, 20.0) >= 0.8);
        assert!(service_level(n - 1, 900.0, 180.0, 20.0) < 0.8);
    }

    #[test]
    fn nonsense_inputs_give_numbers() {
        for x in [f64::NAN, -1.0, f64::INFINITY] {
            assert!(erlang_b(10, x).is_finite());
            assert!(erlang_c(10, x).is_finite());
            assert!(service_level(10, x, 180.0, 20.0).is_finite());
            let _ = agents_needed(x, 180.0, 20.0, 0.8);
        }
        assert_eq!(agents_needed(5.0, 0.0, 20.0, f64::NAN), 6);
        assert_eq!(erlang_b_capacity(10, f64::NAN), 0.0);
    }
}
