//! Failed sign-ins, per source address (sans-IO: the caller gives `now`).
//! After [`SLOW_AFTER`] failures within [`WINDOW`] each new attempt from
//! that address is answered later and later; after [`REFUSE_AFTER`] the
//! address is refused outright for [`REFUSE_FOR`]. A success clears its
//! record. At most [`MAX_SOURCES`] addresses are remembered (the stalest
//! record goes first), so a flood of sources cannot grow it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures are counted over this long.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed before attempts are slowed down.
pub const SLOW_AFTER: u32 = 3;
/// Each failure past [`SLOW_AFTER`] adds this much to the answer's delay.
pub const SLOW_STEP: Duration = Duration::from_millis(500);
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Failures within the window that get the address refused.
pub const REFUSE_AFTER: u32 = 10;
/// How long it is refused.
pub const REFUSE_FOR: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most.
pub const MAX_SOURCES: usize = 10_000;

/// What to do with a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password, answering after `delay`.
    Go { delay: Duration },
    /// Refuse without checking (429), for this much longer.
    Refused { retry_after: Duration },
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    last: Instant,
    refused_until: Option<Instant>,
}

/// Failed sign-ins by source address.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    sources: HashMap<IpAddr, Failures>,
}

impl SignInThrottle {
    pub fn new() -> SignInThrottle {
        SignInThrottle::default()
    }

    /// Before checking a password from `ip`.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        let Some(f) = self.sources.get(&ip).copied() else {
            return Verdict::Go {
                delay: Duration::ZERO,
            };
        };
        if let Some(until) = f.refused_until {
            if now < until {
                return Verdict::Refused {
                    retry_after: until - now,
                };
            }
            self.sources.remove(&ip);
            return Verdict::Go {
                delay: Duration::ZERO,
            };
        }
        if now.saturating_duration_since(f.first) > WINDOW {
            self.sources.remove(&ip);
            return Verdict::Go {
                delay: Duration::ZERO,
            };
        }
        let over = f.count.saturating_sub(SLOW_AFTER);
        Verdict::Go {
            delay: (SLOW_STEP * over).min(MAX_DELAY),
        }
    }

    /// The password from `ip` was wrong; whether the address is refused now.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            self.forget_stalest(now);
        }
        let f = self.sources.entry(ip).or_insert(Failures {
            count: 0,
            first: now,
            last: now,
            refused_until: None,
        });
        if now.saturating_duration_since(f.first) > WINDOW {
            *f = Failures {
                count: 0,
                first: now,
                last: now,
                refused_until: None,
            };
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count >= REFUSE_AFTER {
            f.refused_until = Some(now + REFUSE_FOR);
            return true;
        }
        false
    }

    /// The password from `ip` was right: its failures are forgotten.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.sources.remove(&ip);
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Make room: drop what has expired, else the stalest record.
    fn forget_stalest(&mut self, now: Instant) {
        self.sources.retain(|_, f| match f.refused_until {
            Some(until) => now < until,
            None => now.saturating_duration_since(f.first) <= WINDOW,
        });
        if self.sources.len() >= MAX_SOURCES {
            if let Some(ip) = self
                .sources
                .iter()
                .filter(|(_, f)| f.refused_until.is_none())
                .min_by_key(|(_, f)| f.last)
                .or_else(|| self.sources.iter().min_by_key(|(_, f)| f.last))
                .map(|(ip, _)| *ip)
            {
                self.sources.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn failures_slow_the_address_down_then_refuse_it_for_a_while() {
        let t0 = Instant::now();
        let mut t = SignInThrottle::new();
        let a = ip(1);
        let go = |d: u64| Verdict::Go {
            delay: Duration::from_millis(d),
        };
        for _ in 0..SLOW_AFTER {
            assert_eq!(t.check(a, t0), go(0));
            assert!(!t.failed(a, t0));
        }
        assert_eq!(t.check(a, t0), go(0));
        assert!(!t.failed(a, t0));
        assert_eq!(t.check(a, t0), go(500), "slowed after {SLOW_AFTER}");
        for _ in SLOW_AFTER + 1..REFUSE_AFTER - 1 {
            assert!(!t.failed(a, t0));
        }
        assert!(t.failed(a, t0), "refused at the {REFUSE_AFTER}th failure");
        assert_eq!(
            t.check(a, t0 + Duration::from_secs(60)),
            Verdict::Refused {
                retry_after: REFUSE_FOR - Duration::from_secs(60)
            }
        );
        assert_eq!(
            t.check(ip(2), t0),
            go(0),
            "other addresses are not bothered"
        );
        assert_eq!(t.check(a, t0 + REFUSE_FOR), go(0), "the refusal ends");
    }

    #[test]
    fn a_success_or_a_quiet_window_forgets_the_failures() {
        let t0 = Instant::now();
        let mut t = SignInThrottle::new();
        for _ in 0..5 {
            t.failed(ip(1), t0);
            t.failed(ip(2), t0);
        }
        t.succeeded(ip(1));
        assert_eq!(
            t.check(ip(1), t0),
            Verdict::Go {
                delay: Duration::ZERO
            }
        );
        assert_eq!(
            t.check(ip(2), t0 + WINDOW + Duration::from_secs(1)),
            Verdict::Go {
                delay: Duration::ZERO
            }
        );
        assert!(t.is_empty());
    }

    #[test]
    fn a_flood_of_sources_is_remembered_within_bounds() {
        let t0 = Instant::now();
        let mut t = SignInThrottle::new();
        for n in 0..(MAX_SOURCES as u32 + 500) {
            t.failed(ip(n), t0 + Duration::from_millis(u64::from(n)));
        }
        assert!(t.len() <= MAX_SOURCES);
        // The latest are still known.
        let last = ip(MAX_SOURCES as u32 + 499);
        assert!(t.sources.contains_key(&last));
    }
}
