//! Limits per source address and per account, like Kamailio's pike and
//! fail2ban in front of Asterisk (sans-IO: every call takes `now`).
//!
//! - New INVITEs per source: a token bucket (`invites_per_sec`, burst
//!   `invite_burst`) and a cap on the calls a source holds at once. Beyond
//!   either the INVITE is refused (the driver answers 503 with
//!   Retry-After); a source refused `refused_before_ban` times within a
//!   minute is flooding and is banned.
//! - Digest failures (REGISTER, agents' INVITEs): `auth_failures_before_ban`
//!   within `auth_window` ban the source for `ban`; an account that fails
//!   `account_failures_before_throttle` times within the window (from any
//!   number of sources) is throttled for `account_throttle`: while it is,
//!   only its owner's registered phone is heard for it.
//! - A banned source is not answered at all (the socket front drops it).
//! - Sources in `exempt` (the callback trunk is added by the loader) are
//!   never limited nor banned.
//!
//! Memory is bounded: at most `max_sources` sources are tracked; idle ones
//! are forgotten first, and a source that finds the table full is let
//! through untracked (and counted by the driver).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// An address or a network (`192.0.2.0/24`, `2001:db8::/32`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// `IP` or `IP/PREFIX`.
    pub fn parse(s: &str) -> Result<Net, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or IP/PREFIX"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - u32::from(prefix))
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(u32::from(a).into(), 32, self.prefix)
                    == masked(u32::from(b).into(), 32, self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                masked(u128::from(a), 128, self.prefix) == masked(u128::from(b), 128, self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V4(b)) | (IpAddr::V4(b), IpAddr::V6(a)) => {
                // An IPv4-mapped IPv6 address is the IPv4 one.
                a.to_ipv4_mapped().is_some_and(|a| {
                    let n = Net {
                        addr: IpAddr::V4(a),
                        prefix: self.prefix.saturating_sub(96).min(32),
                    };
                    n.contains(IpAddr::V4(b))
                })
            }
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// The limits, from `[limits]` in the config (0 turns a limit off).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    pub calls_per_source: u32,
    pub invites_per_sec: u32,
    pub invite_burst: u32,
    pub refused_before_ban: u32,
    pub auth_failures_before_ban: u32,
    pub auth_window: Duration,
    pub ban: Duration,
    pub account_failures_before_throttle: u32,
    pub account_throttle: Duration,
    pub exempt: Vec<Net>,
    pub max_sources: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            calls_per_source: 10,
            invites_per_sec: 5,
            invite_burst: 10,
            refused_before_ban: 50,
            auth_failures_before_ban: 10,
            auth_window: Duration::from_secs(600),
            ban: Duration::from_secs(3600),
            account_failures_before_throttle: 30,
            account_throttle: Duration::from_secs(900),
            exempt: vec![],
            max_sources: 65_536,
        }
    }
}

/// Why an INVITE was refused with 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReason {
    /// More new INVITEs per second than the bucket allows.
    Rate,
    /// The source already holds `calls_per_source` calls.
    Calls,
}

impl LimitReason {
    pub fn label(self) -> &'static str {
        match self {
            LimitReason::Rate => "rate",
            LimitReason::Calls => "calls",
        }
    }
}

/// The decision about one new INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Let it through. `counted`: the call counts against its source until
    /// [`SourceLimits::call_ended`] (not for exempt or untracked sources).
    Admit { counted: bool },
    /// Refuse with 503 and this Retry-After. `warn`: the first refusal of
    /// this source in a minute (log it; the others are only counted).
    Limited {
        reason: LimitReason,
        retry_after_secs: u32,
        warn: bool,
    },
    /// The source is banned: say nothing.
    Banned,
}

/// What is banned or throttled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BanKey {
    Source(IpAddr),
    Account(String),
}

impl BanKey {
    pub fn kind(&self) -> &'static str {
        match self {
            BanKey::Source(_) => "source",
            BanKey::Account(_) => "account",
        }
    }
}

impl fmt::Display for BanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanKey::Source(ip) => write!(f, "{ip}"),
            BanKey::Account(a) => write!(f, "{a}"),
        }
    }
}

/// Why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// Digest failures (wrong passwords).
    Auth,
    /// INVITEs past the limits, again and again.
    Flood,
}

impl BanReason {
    pub fn label(self) -> &'static str {
        match self {
            BanReason::Auth => "auth",
            BanReason::Flood => "flood",
        }
    }
}

/// A ban (a source) or a throttle (an account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub key: BanKey,
    pub reason: BanReason,
    pub since: Instant,
    pub until: Instant,
    /// The failures (or refused INVITEs) that led to it.
    pub count: u32,
}

/// A count within a fixed window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    fn new(now: Instant) -> Self {
        Window {
            start: now,
            count: 0,
        }
    }

    fn hit(&mut self, now: Instant, len: Duration) -> u32 {
        if now.saturating_duration_since(self.start) >= len {
            *self = Window::new(now);
        }
        self.count = self.count.saturating_add(1);
        self.count
    }

    fn live(&self, now: Instant, len: Duration) -> bool {
        self.count > 0 && now.saturating_duration_since(self.start) < len
    }
}

#[derive(Debug)]
struct Source {
    tokens: f64,
    refilled: Instant,
    calls: u32,
    failures: Window,
    refused: Window,
    warned: Option<Instant>,
    ban: Option<Ban>,
}

#[derive(Debug)]
struct Account {
    failures: Window,
    throttle: Option<Ban>,
}

const MINUTE: Duration = Duration::from_secs(60);

/// The state of the limits; one per server, owned by its driver.
#[derive(Debug)]
pub struct SourceLimits {
    config: LimitsConfig,
    sources: HashMap<IpAddr, Source>,
    accounts: HashMap<String, Account>,
}

/// What happened besides the answer, for the driver to log and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitEvent {
    /// A source was banned, or an account throttled.
    Banned(Ban),
    /// A new source found the table full: it goes untracked.
    TableFull,
}

impl SourceLimits {
    pub fn new(config: LimitsConfig) -> Self {
        SourceLimits {
            config,
            sources: HashMap::new(),
            accounts: HashMap::new(),
        }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.config.exempt.iter().any(|n| n.contains(ip))
    }

    /// Whether `ip` is banned now (an expired ban is lifted here).
    pub fn is_banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        let Some(s) = self.sources.get_mut(&ip) else {
            return false;
        };
        match &s.ban {
            Some(b) if now < b.until => true,
            Some(_) => {
                s.ban = None;
                false
            }
            None => false,
        }
    }

    /// The source's entry, made if there is room (idle entries are
    /// forgotten to make it).
    fn source(
        &mut self,
        ip: IpAddr,
        now: Instant,
        events: &mut Vec<LimitEvent>,
    ) -> Option<&mut Source> {
        if !self.sources.contains_key(&ip) {
            if self.sources.len() >= self.config.max_sources {
                self.prune(now);
            }
            if self.sources.len() >= self.config.max_sources {
                events.push(LimitEvent::TableFull);
                return None;
            }
            self.sources.insert(
                ip,
                Source {
                    tokens: f64::from(self.config.invite_burst.max(1)),
                    refilled: now,
                    calls: 0,
                    failures: Window::new(now),
                    refused: Window::new(now),
                    warned: None,
                    ban: None,
                },
            );
        }
        self.sources.get_mut(&ip)
    }

    /// A new INVITE (not a retransmission) from `ip`.
    pub fn admit_invite(&mut self, ip: IpAddr, now: Instant) -> (Admission, Vec<LimitEvent>) {
        let mut events = vec![];
        if self.is_exempt(ip) {
            return (Admission::Admit { counted: false }, events);
        }
        if self.is_banned(ip, now) {
            return (Admission::Banned, events);
        }
        let c = self.config.clone();
        let Some(s) = self.source(ip, now, &mut events) else {
            return (Admission::Admit { counted: false }, events);
        };
        let mut refusal = None;
        if c.invites_per_sec > 0 {
            let rate = f64::from(c.invites_per_sec);
            let burst = f64::from(c.invite_burst.max(1));
            let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
            s.tokens = (s.tokens + elapsed * rate).min(burst);
            s.refilled = now;
            if s.tokens >= 1.0 {
                s.tokens -= 1.0;
            } else {
                let wait = ((1.0 - s.tokens) / rate).ceil().max(1.0);
                refusal = Some((LimitReason::Rate, wait as u32));
            }
        }
        if refusal.is_none() && c.calls_per_source > 0 && s.calls >= c.calls_per_source {
            refusal = Some((LimitReason::Calls, 10));
        }
        let Some((reason, retry_after_secs)) = refusal else {
            s.calls = s.calls.saturating_add(1);
            return (Admission::Admit { counted: true }, events);
        };
        let refused = s.refused.hit(now, MINUTE);
        if c.refused_before_ban > 0 && refused >= c.refused_before_ban {
            let ban = Ban {
                key: BanKey::Source(ip),
                reason: BanReason::Flood,
                since: now,
                until: now + c.ban,
                count: refused,
            };
            s.ban = Some(ban.clone());
            s.refused = Window::new(now);
            events.push(LimitEvent::Banned(ban));
        }
        let warn = s
            .warned
            .is_none_or(|t| now.saturating_duration_since(t) >= MINUTE);
        if warn {
            s.warned = Some(now);
        }
        (
            Admission::Limited {
                reason,
                retry_after_secs,
                warn,
            },
            events,
        )
    }

    /// A call admitted with `counted: true` ended.
    pub fn call_ended(&mut self, ip: IpAddr) {
        if let Some(s) = self.sources.get_mut(&ip) {
            s.calls = s.calls.saturating_sub(1);
        }
    }

    /// The calls `ip` holds now (counted ones).
    pub fn calls_of(&self, ip: IpAddr) -> u32 {
        self.sources.get(&ip).map_or(0, |s| s.calls)
    }

    /// Whether a digest attempt for `account` (a known account's user, or
    /// `None`) from `ip` is heard at all: not while the account is
    /// throttled, unless it comes from the owner's registered phone.
    pub fn auth_allowed(&mut self, account: Option<&str>, from_owner: bool, now: Instant) -> bool {
        if from_owner {
            return true;
        }
        let Some(a) = account.and_then(|a| self.accounts.get_mut(a)) else {
            return true;
        };
        match &a.throttle {
            Some(t) if now < t.until => false,
            Some(_) => {
                a.throttle = None;
                true
            }
            None => true,
        }
    }

    /// A digest failure from `ip` for `account` (a known account's user).
    pub fn auth_failed(
        &mut self,
        ip: IpAddr,
        account: Option<&str>,
        now: Instant,
    ) -> Vec<LimitEvent> {
        let mut events = vec![];
        let c = self.config.clone();
        if !self.is_exempt(ip) {
            if let Some(s) = self.source(ip, now, &mut events) {
                let n = s.failures.hit(now, c.auth_window);
                if c.auth_failures_before_ban > 0
                    && n >= c.auth_failures_before_ban
                    && s.ban.is_none()
                {
                    let ban = Ban {
                        key: BanKey::Source(ip),
                        reason: BanReason::Auth,
                        since: now,
                        until: now + c.ban,
                        count: n,
                    };
                    s.ban = Some(ban.clone());
                    s.failures = Window::new(now);
                    events.push(LimitEvent::Banned(ban));
                }
            }
        }
        if let Some(user) = account {
            let a = self
                .accounts
                .entry(user.to_string())
                .or_insert_with(|| Account {
                    failures: Window::new(now),
                    throttle: None,
                });
            let n = a.failures.hit(now, c.auth_window);
            let throttled = a.throttle.as_ref().is_some_and(|t| now < t.until);
            if c.account_failures_before_throttle > 0
                && n >= c.account_failures_before_throttle
                && !throttled
            {
                let ban = Ban {
                    key: BanKey::Account(user.to_string()),
                    reason: BanReason::Auth,
                    since: now,
                    until: now + c.account_throttle,
                    count: n,
                };
                a.throttle = Some(ban.clone());
                a.failures = Window::new(now);
                events.push(LimitEvent::Banned(ban));
            }
        }
        events
    }

    /// A digest success from `ip`: its failures so far are forgiven.
    pub fn auth_succeeded(&mut self, ip: IpAddr, now: Instant) {
        if let Some(s) = self.sources.get_mut(&ip) {
            s.failures = Window::new(now);
        }
    }

    /// The bans and throttles in force, soonest to end first.
    pub fn bans(&self, now: Instant) -> Vec<Ban> {
        let mut v: Vec<Ban> = self
            .sources
            .values()
            .filter_map(|s| s.ban.clone())
            .chain(self.accounts.values().filter_map(|a| a.throttle.clone()))
            .filter(|b| now < b.until)
            .collect();
        v.sort_by(|a, b| a.until.cmp(&b.until).then_with(|| a.key.cmp(&b.key)));
        v
    }

    /// Lift a ban or throttle now; whether there was one.
    pub fn lift(&mut self, key: &BanKey, now: Instant) -> bool {
        let ban = match key {
            BanKey::Source(ip) => self.sources.get_mut(ip).map(|s| {
                s.failures = Window::new(now);
                s.refused = Window::new(now);
                &mut s.ban
            }),
            BanKey::Account(a) => self.accounts.get_mut(a).map(|a| {
                a.failures = Window::new(now);
                &mut a.throttle
            }),
        };
        match ban {
            Some(b) => b.take().is_some_and(|b| now < b.until),
            None => false,
        }
    }

    /// Forget what no longer matters: idle sources (no calls, a full
    /// bucket, no live window, no ban) and expired bans.
    pub fn prune(&mut self, now: Instant) {
        let c = &self.config;
        let burst = f64::from(c.invite_burst.max(1));
        let rate = f64::from(c.invites_per_sec);
        self.sources.retain(|_, s| {
            if s.ban.as_ref().is_some_and(|b| now >= b.until) {
                s.ban = None;
            }
            let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
            let full = rate == 0.0 || s.tokens + elapsed * rate >= burst;
            s.calls > 0
                || s.ban.is_some()
                || !full
                || s.failures.live(now, c.auth_window)
                || s.refused.live(now, MINUTE)
        });
        self.accounts.retain(|_, a| {
            if a.throttle.as_ref().is_some_and(|b| now >= b.until) {
                a.throttle = None;
            }
            a.throttle.is_some() || a.failures.live(now, c.auth_window)
        });
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn limits(tune: impl FnOnce(&mut LimitsConfig)) -> SourceLimits {
        let mut c = LimitsConfig::default();
        tune(&mut c);
        SourceLimits::new(c)
    }

    #[test]
    fn networks_match_their_addresses_only() {
        let n = Net::parse("192.0.2.0/24").expect("net");
        assert!(n.contains(ip("192.0.2.77")));
        assert!(!n.contains(ip("192.0.3.1")));
        assert!(!n.contains(ip("2001:db8::1")));
        assert!(n.contains(ip("::ffff:192.0.2.9")));
        let one = Net::parse("127.0.0.1").expect("addr");
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        assert!(Net::parse("0.0.0.0/0")
            .expect("all")
            .contains(ip("8.8.8.8")));
        assert!(Net::parse("2001:db8::/32")
            .expect("v6")
            .contains(ip("2001:db8:ffff::1")));
        for bad in ["", "pbx.example", "10.0.0.0/33", "::/129", "10.0.0.0/x"] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Net::parse("10.1.0.0/16").expect("net").to_string(),
            "10.1.0.0/16"
        );
    }

    #[test]
    fn a_burst_past_the_bucket_is_refused_with_the_seconds_to_wait() {
        let mut l = limits(|c| {
            c.invites_per_sec = 5;
            c.invite_burst = 10;
            c.calls_per_source = 0;
        });
        let t0 = Instant::now();
        let a = ip("203.0.113.5");
        for _ in 0..10 {
            assert_eq!(l.admit_invite(a, t0).0, Admission::Admit { counted: true });
        }
        let (first, _) = l.admit_invite(a, t0);
        assert_eq!(
            first,
            Admission::Limited {
                reason: LimitReason::Rate,
                retry_after_secs: 1,
                warn: true
            }
        );
        let (second, _) = l.admit_invite(a, t0);
        assert!(matches!(second, Admission::Limited { warn: false, .. }));
        // Another source is not touched; a second later five more pass.
        assert!(matches!(
            l.admit_invite(ip("203.0.113.6"), t0).0,
            Admission::Admit { .. }
        ));
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..5 {
            assert!(matches!(l.admit_invite(a, t1).0, Admission::Admit { .. }));
        }
        assert!(matches!(l.admit_invite(a, t1).0, Admission::Limited { .. }));
    }

    #[test]
    fn a_source_holds_at_most_its_calls_until_one_ends() {
        let mut l = limits(|c| {
            c.calls_per_source = 3;
            c.invites_per_sec = 0;
        });
        let t = Instant::now();
        let a = ip("198.51.100.1");
        for _ in 0..3 {
            assert!(matches!(
                l.admit_invite(a, t).0,
                Admission::Admit { counted: true }
            ));
        }
        assert!(matches!(
            l.admit_invite(a, t).0,
            Admission::Limited {
                reason: LimitReason::Calls,
                ..
            }
        ));
        l.call_ended(a);
        assert_eq!(l.calls_of(a), 2);
        assert!(matches!(
            l.admit_invite(a, t).0,
            Admission::Admit { counted: true }
        ));
    }

    #[test]
    fn a_flood_past_the_limits_gets_the_source_banned_then_silence() {
        let mut l = limits(|c| {
            c.refused_before_ban = 20;
            c.ban = Duration::from_secs(60);
        });
        let t = Instant::now();
        let a = ip("203.0.113.9");
        let mut admitted = 0;
        let mut limited = 0;
        let mut banned_at = None;
        for i in 0..200 {
            let (adm, ev) = l.admit_invite(a, t);
            match adm {
                Admission::Admit { .. } => admitted += 1,
                Admission::Limited { .. } => limited += 1,
                Admission::Banned => {}
            }
            if ev.iter().any(|e| matches!(e, LimitEvent::Banned(_))) {
                banned_at = Some(i);
            }
        }
        assert_eq!(admitted, 10, "the burst");
        assert_eq!(limited, 20);
        assert_eq!(banned_at, Some(29));
        assert!(l.is_banned(a, t));
        let bans = l.bans(t);
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].reason, BanReason::Flood);
        // The ban expires by itself.
        assert!(!l.is_banned(a, t + Duration::from_secs(61)));
    }

    #[test]
    fn exempt_sources_are_never_limited() {
        let mut l = limits(|c| {
            c.exempt = vec![Net::parse("192.0.2.0/24").expect("net")];
            c.auth_failures_before_ban = 1;
        });
        let t = Instant::now();
        let trunk = ip("192.0.2.10");
        for _ in 0..500 {
            assert_eq!(
                l.admit_invite(trunk, t).0,
                Admission::Admit { counted: false }
            );
        }
        assert!(l.auth_failed(trunk, None, t).is_empty());
        assert!(!l.is_banned(trunk, t));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn password_guessing_bans_the_source_at_the_configured_count() {
        let mut l = limits(|c| {
            c.auth_failures_before_ban = 5;
            c.auth_window = Duration::from_secs(60);
        });
        let t = Instant::now();
        let a = ip("203.0.113.50");
        for i in 1..5 {
            assert!(l.auth_failed(a, Some("ana"), t).is_empty(), "failure {i}");
            assert!(!l.is_banned(a, t));
        }
        let ev = l.auth_failed(a, Some("ana"), t);
        assert!(matches!(
            &ev[..],
            [LimitEvent::Banned(Ban {
                key: BanKey::Source(_),
                count: 5,
                ..
            })]
        ));
        assert!(l.is_banned(a, t));
        // The supervisor lifts it; then it starts from zero.
        assert!(l.lift(&BanKey::Source(a), t));
        assert!(!l.is_banned(a, t));
        assert!(!l.lift(&BanKey::Source(a), t));
        assert!(l.auth_failed(a, None, t).is_empty());
    }

    #[test]
    fn failures_spread_over_a_longer_time_than_the_window_never_ban() {
        let mut l = limits(|c| {
            c.auth_failures_before_ban = 3;
            c.auth_window = Duration::from_secs(60);
        });
        let t = Instant::now();
        let a = ip("203.0.113.51");
        for i in 0..10 {
            l.auth_failed(a, None, t + Duration::from_secs(31 * i));
        }
        assert!(!l.is_banned(a, t + Duration::from_secs(310)));
    }

    #[test]
    fn an_account_under_attack_from_many_sources_hears_only_its_registered_phone() {
        let mut l = limits(|c| {
            c.auth_failures_before_ban = 0;
            c.account_failures_before_throttle = 20;
            c.account_throttle = Duration::from_secs(300);
        });
        let t = Instant::now();
        let mut events = vec![];
        for i in 0..20u8 {
            events.extend(l.auth_failed(IpAddr::from([198, 51, 100, i]), Some("ana"), t));
        }
        assert!(
            matches!(&events[..], [LimitEvent::Banned(Ban { key: BanKey::Account(a), .. })] if a == "ana")
        );
        assert!(
            !l.auth_allowed(Some("ana"), false, t),
            "a stranger is not heard"
        );
        assert!(l.auth_allowed(Some("ana"), true, t), "the owner's phone is");
        assert!(
            l.auth_allowed(Some("bruno"), false, t),
            "other accounts are"
        );
        assert!(l.auth_allowed(Some("ana"), false, t + Duration::from_secs(301)));
    }

    #[test]
    fn the_table_of_sources_stays_bounded_and_forgets_idle_ones() {
        let mut l = limits(|c| {
            c.max_sources = 100;
        });
        let t = Instant::now();
        let mut full = 0;
        for i in 0..1000u32 {
            let (adm, ev) = l.admit_invite(IpAddr::from(i.to_be_bytes()), t);
            assert!(matches!(adm, Admission::Admit { .. }));
            full += ev.iter().filter(|e| **e == LimitEvent::TableFull).count();
            // Each call ends at once: the source is idle once its bucket refills.
            l.call_ended(IpAddr::from(i.to_be_bytes()));
        }
        assert!(l.tracked() <= 100);
        assert_eq!(full, 900);
        // Two seconds later the bucket is full again: idle sources are forgotten.
        l.prune(t + Duration::from_secs(2));
        assert_eq!(l.tracked(), 0);
    }
}
