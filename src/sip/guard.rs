//! The driver of [`SourceLimits`]: owns it behind one lock, reads the
//! clock, counts in `/metrics`, logs at warn (once per ban, once a minute
//! per limited source — never per packet) and hands out [`CallSlot`]s that
//! give a source's call back when dropped.

use super::limits::{Admission, Ban, BanKey, LimitEvent, LimitsConfig, SourceLimits};
use crate::metrics::Metrics;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// The limits of one server.
pub struct Guard {
    core: Mutex<SourceLimits>,
    metrics: Metrics,
    /// The same moment on both clocks: bans are shown in wall-clock time.
    epoch: (Instant, SystemTime),
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").finish_non_exhaustive()
    }
}

/// One admitted call of a source, given back when dropped.
pub struct CallSlot {
    guard: Arc<Guard>,
    ip: IpAddr,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        if let Ok(mut l) = self.guard.core.lock() {
            l.call_ended(self.ip);
        }
    }
}

/// What to do with a new INVITE.
pub enum InviteVerdict {
    /// Go on; keep the slot (if any) as long as the call lasts.
    Admit(Option<CallSlot>),
    /// Answer 503 with this Retry-After.
    Refuse { retry_after_secs: u32 },
    /// Say nothing.
    Silence,
}

/// A ban as a supervisor sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BanView {
    /// `source` (an address, banned) or `account` (a SIP user, throttled).
    pub kind: &'static str,
    /// The address or the SIP user.
    pub key: String,
    /// `auth` (wrong passwords) or `flood` (INVITEs past the limits).
    pub reason: &'static str,
    /// The failures (or refused INVITEs) that led to it.
    pub count: u32,
    pub since: String,
    pub until: String,
    pub remaining_secs: u64,
}

impl Guard {
    pub fn new(config: LimitsConfig, metrics: Metrics) -> Arc<Guard> {
        Arc::new(Guard {
            core: Mutex::new(SourceLimits::new(config)),
            metrics,
            epoch: (Instant::now(), SystemTime::now()),
        })
    }

    /// Whether a request from `ip` is dropped unanswered (a banned source).
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.core
            .lock()
            .is_ok_and(|mut l| l.is_banned(ip, Instant::now()))
    }

    /// A new INVITE from `ip`.
    pub fn admit_invite(self: &Arc<Self>, ip: IpAddr) -> InviteVerdict {
        let Ok(mut l) = self.core.lock() else {
            return InviteVerdict::Admit(None);
        };
        let (admission, events) = l.admit_invite(ip, Instant::now());
        let calls = l.calls_of(ip);
        let limits = l.config().clone();
        drop(l);
        self.on_events(&events);
        match admission {
            Admission::Admit { counted } => InviteVerdict::Admit(counted.then(|| CallSlot {
                guard: Arc::clone(self),
                ip,
            })),
            Admission::Limited {
                reason,
                retry_after_secs,
                warn,
            } => {
                self.metrics
                    .sip_limited
                    .with_label_values(&[reason.label()])
                    .inc();
                if warn {
                    tracing::warn!(
                        source = %ip,
                        reason = reason.label(),
                        calls,
                        calls_per_source = limits.calls_per_source,
                        invites_per_sec = limits.invites_per_sec,
                        "new calls from this source refused 503 (logged once a minute per source)"
                    );
                }
                InviteVerdict::Refuse { retry_after_secs }
            }
            Admission::Banned => {
                self.metrics.dropped("banned");
                InviteVerdict::Silence
            }
        }
    }

    /// Whether a digest attempt for `account` is heard (see
    /// [`SourceLimits::auth_allowed`]); counted when it is not.
    pub fn auth_allowed(&self, account: Option<&str>, from_owner: bool) -> bool {
        let ok = self
            .core
            .lock()
            .map(|mut l| l.auth_allowed(account, from_owner, Instant::now()))
            .unwrap_or(true);
        if !ok {
            self.metrics
                .limits_hit
                .with_label_values(&["account_throttle"])
                .inc();
        }
        ok
    }

    /// A digest failure from `ip` for `account` (a known account's user).
    pub fn auth_failed(&self, ip: IpAddr, account: Option<&str>) {
        let events = self
            .core
            .lock()
            .map(|mut l| l.auth_failed(ip, account, Instant::now()))
            .unwrap_or_default();
        self.on_events(&events);
    }

    pub fn auth_succeeded(&self, ip: IpAddr) {
        if let Ok(mut l) = self.core.lock() {
            l.auth_succeeded(ip, Instant::now());
        }
    }

    fn on_events(&self, events: &[LimitEvent]) {
        for e in events {
            match e {
                LimitEvent::TableFull => {
                    self.metrics
                        .limits_hit
                        .with_label_values(&["sources"])
                        .inc();
                }
                LimitEvent::Banned(b) => {
                    self.metrics
                        .sip_bans
                        .with_label_values(&[b.key.kind(), b.reason.label()])
                        .inc();
                    let secs = b.until.saturating_duration_since(b.since).as_secs();
                    match &b.key {
                        BanKey::Source(ip) => tracing::warn!(
                            source = %ip,
                            reason = b.reason.label(),
                            count = b.count,
                            secs,
                            "source banned: its requests are dropped unanswered"
                        ),
                        BanKey::Account(a) => tracing::warn!(
                            account = %crate::text::Untrusted(a),
                            count = b.count,
                            secs,
                            "account under attack throttled: only its registered phone is heard"
                        ),
                    }
                    self.set_gauges();
                }
            }
        }
    }

    fn set_gauges(&self) {
        let bans = self.bans_now();
        for kind in ["source", "account"] {
            let n = bans.iter().filter(|b| b.key.kind() == kind).count();
            self.metrics
                .sip_banned
                .with_label_values(&[kind])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn bans_now(&self) -> Vec<Ban> {
        self.core
            .lock()
            .map(|l| l.bans(Instant::now()))
            .unwrap_or_default()
    }

    fn wall(&self, t: Instant) -> String {
        let (i0, s0) = self.epoch;
        let st = if t >= i0 {
            s0 + t.duration_since(i0)
        } else {
            s0 - i0.duration_since(t)
        };
        jiff::Timestamp::try_from(st)
            .map(|ts| ts.round(jiff::Unit::Second).unwrap_or(ts).to_string())
            .unwrap_or_default()
    }

    /// The bans and throttles in force, soonest to end first.
    pub fn bans(&self) -> Vec<BanView> {
        let now = Instant::now();
        self.bans_now()
            .into_iter()
            .map(|b| BanView {
                kind: b.key.kind(),
                key: b.key.to_string(),
                reason: b.reason.label(),
                count: b.count,
                since: self.wall(b.since),
                until: self.wall(b.until),
                remaining_secs: b.until.saturating_duration_since(now).as_secs(),
            })
            .collect()
    }

    /// Lift the ban of an address, or the throttle of an account (`key`
    /// is either); whether there was one.
    pub fn lift(&self, key: &str) -> bool {
        let key = match key.parse::<IpAddr>() {
            Ok(ip) => BanKey::Source(ip),
            Err(_) => BanKey::Account(key.to_string()),
        };
        let lifted = self
            .core
            .lock()
            .is_ok_and(|mut l| l.lift(&key, Instant::now()));
        if lifted {
            tracing::warn!(key = %crate::text::Untrusted(&key.to_string()), "ban lifted by a supervisor");
            self.set_gauges();
        }
        lifted
    }

    /// Forget idle sources and expired bans once a second, until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Ok(mut l) = self.core.lock() {
                l.prune(Instant::now());
            }
            self.set_gauges();
        }
    }
}
