//! Overload protection. When the controller cannot keep up, a new caller is
//! refused with 503 and `Retry-After` (counted as `unavailable`) so that the
//! calls already up keep their service; without it, a machine pushed past
//! its capacity accepts calls it cannot serve and everything degrades at
//! once: SIP retransmissions pile up, offers time out and pause agents,
//! ports and file descriptors run out (measured in docs/BENCHMARKS.md).
//!
//! "Cannot keep up" is either of two signs: the async runtime's scheduling
//! lag (a task asks to wake every [`TICK`] and measures how late it is
//! woken; the lag, averaged, entering above [`LagDetector::ENTER`] marks the
//! controller overloaded until it falls below [`LagDetector::LEAVE`]), or
//! the SIP stack falling behind the socket (more than [`SIP_BACKLOG_HIGH`]
//! datagrams read and not yet taken), or the process running out of file
//! descriptors (each call holds a few sockets: past [`FdHeadroom::ENTER`]
//! of `RLIMIT_NOFILE` in use, sampled every [`FD_EVERY`], new callers are
//! refused until under [`FdHeadroom::LEAVE`], rather than answered and then
//! failing to open their media). Agents' feature codes and requests within
//! calls are never refused for load.
//!
//! This softens overload, it does not remove it: past its capacity the
//! machine still loses SIP datagrams in the kernel before either sign shows
//! (docs/BENCHMARKS.md has the figures).

use crate::metrics::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the lag is sampled.
pub const TICK: Duration = Duration::from_millis(10);

/// The averaged scheduling lag and the overloaded state, with hysteresis.
#[derive(Debug, Clone, Default)]
pub struct LagDetector {
    ewma_secs: f64,
    overloaded: bool,
}

impl LagDetector {
    /// Averaged lag above which new calls are refused.
    pub const ENTER: Duration = Duration::from_millis(40);
    /// Averaged lag below which they are taken again.
    pub const LEAVE: Duration = Duration::from_millis(10);
    /// Weight of each sample (about the last 20 samples, 200 ms, count).
    const ALPHA: f64 = 0.1;

    /// One sample: how late the tick woke. Whether the controller is
    /// overloaded now.
    pub fn on_tick(&mut self, lag: Duration) -> bool {
        self.ewma_secs += Self::ALPHA * (lag.as_secs_f64() - self.ewma_secs);
        if self.overloaded && self.ewma_secs < Self::LEAVE.as_secs_f64() {
            self.overloaded = false;
        } else if !self.overloaded && self.ewma_secs > Self::ENTER.as_secs_f64() {
            self.overloaded = true;
        }
        self.overloaded
    }

    pub fn lag(&self) -> Duration {
        Duration::from_secs_f64(self.ewma_secs.max(0.0))
    }
}

/// How often the open file descriptors are counted (`/proc/self/fd`).
pub const FD_EVERY: Duration = Duration::from_secs(1);

/// Whether the file descriptors in use leave room for new calls, with
/// hysteresis.
#[derive(Debug, Clone, Default)]
pub struct FdHeadroom {
    short: bool,
}

impl FdHeadroom {
    /// Share of the limit in use (percent) above which new calls are refused.
    pub const ENTER: u64 = 90;
    /// Share below which they are taken again.
    pub const LEAVE: u64 = 80;

    /// One count: `open` descriptors of `limit`. Whether room is short now.
    pub fn on_sample(&mut self, open: u64, limit: u64) -> bool {
        if limit == 0 {
            self.short = false;
            return false;
        }
        let pct = open.saturating_mul(100) / limit;
        if self.short && pct < Self::LEAVE {
            self.short = false;
        } else if !self.short && pct > Self::ENTER {
            self.short = true;
        }
        self.short
    }
}

/// Open file descriptors of this process, where `/proc` tells.
fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// SIP datagrams read but not yet taken by the SIP stack above which the
/// stack is behind (the queue holds 4,096).
pub const SIP_BACKLOG_HIGH: usize = 512;

/// Whether new calls are refused: measured, or forced (tests, operators);
/// and whether the controller is draining (shutting down: new calls get 503,
/// `/health` says so). The one owner of both flags.
#[derive(Debug, Default)]
pub struct Overload {
    measured: AtomicBool,
    /// File descriptors nearly all in use.
    fds_short: AtomicBool,
    forced: AtomicBool,
    draining: AtomicBool,
    /// SIP datagrams waiting for the stack, as the socket front last saw.
    sip_backlog: std::sync::atomic::AtomicUsize,
}

impl Overload {
    pub fn is_overloaded(&self) -> bool {
        self.measured.load(Ordering::Relaxed)
            || self.fds_short.load(Ordering::Relaxed)
            || self.forced.load(Ordering::Relaxed)
            || self.sip_backlog.load(Ordering::Relaxed) > SIP_BACKLOG_HIGH
    }

    /// The socket front's queue to the SIP stack holds `n` datagrams.
    pub fn note_sip_backlog(&self, n: usize) {
        self.sip_backlog.store(n, Ordering::Relaxed);
    }

    /// From now on new calls are refused: the controller is stopping.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Refuse new calls whatever the measurement says (or stop doing so).
    pub fn force(&self, on: bool) {
        self.forced.store(on, Ordering::Relaxed);
    }

    /// Sample the runtime's lag until cancelled, publishing
    /// `centralita_overloaded` and `centralita_runtime_lag_seconds`.
    pub fn spawn_monitor(self: &Arc<Self>, metrics: Metrics, cancel: CancellationToken) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut detector = LagDetector::default();
            let mut fds = FdHeadroom::default();
            let fd_limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
                .filter(|l| *l > 0 && *l != rlimit::INFINITY);
            if let Some(l) = fd_limit {
                metrics.max_fds.set(i64::try_from(l).unwrap_or(i64::MAX));
            }
            let mut next_fd_count = tokio::time::Instant::now();
            loop {
                let due = tokio::time::Instant::now() + TICK;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(due) => {}
                }
                let lag = tokio::time::Instant::now().saturating_duration_since(due);
                let was = this.measured.load(Ordering::Relaxed);
                let now = detector.on_tick(lag);
                if now != was {
                    tracing::warn!(
                        lag_ms = detector.lag().as_millis() as u64,
                        "{}",
                        if now {
                            "overloaded: new calls are refused with 503"
                        } else {
                            "no longer overloaded: new calls are taken"
                        }
                    );
                }
                this.measured.store(now, Ordering::Relaxed);
                if let (Some(limit), true) =
                    (fd_limit, tokio::time::Instant::now() >= next_fd_count)
                {
                    next_fd_count = tokio::time::Instant::now() + FD_EVERY;
                    if let Some(open) = open_fds() {
                        metrics
                            .open_fds
                            .set(i64::try_from(open).unwrap_or(i64::MAX));
                        let was = this.fds_short.load(Ordering::Relaxed);
                        let short = fds.on_sample(open, limit);
                        if short != was {
                            tracing::warn!(
                                open,
                                limit,
                                "{}",
                                if short {
                                    "file descriptors nearly all in use: new calls are refused with 503"
                                } else {
                                    "file descriptors available again: new calls are taken"
                                }
                            );
                        }
                        this.fds_short.store(short, Ordering::Relaxed);
                    }
                }
                metrics.overloaded.set(i64::from(this.is_overloaded()));
                metrics
                    .sip_backlog
                    .set(this.sip_backlog.load(Ordering::Relaxed) as i64);
                metrics.runtime_lag.set(detector.lag().as_secs_f64());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut LagDetector, ms: u64, n: usize) -> bool {
        let mut last = false;
        for _ in 0..n {
            last = d.on_tick(Duration::from_millis(ms));
        }
        last
    }

    #[test]
    fn a_brief_stall_is_not_overload_a_lasting_one_is_with_hysteresis() {
        let mut d = LagDetector::default();
        assert!(!feed(&mut d, 1, 100), "a healthy runtime");
        assert!(!d.on_tick(Duration::from_millis(200)), "one 200 ms stall");
        assert!(!feed(&mut d, 1, 50));
        assert!(feed(&mut d, 60, 30), "lasting lag of 60 ms per tick");
        // Between the thresholds it stays overloaded...
        assert!(feed(&mut d, 20, 40));
        // ...until the lag is low again.
        assert!(!feed(&mut d, 1, 40));
        assert!(d.lag() < LagDetector::LEAVE);
    }

    #[test]
    fn new_calls_wait_for_file_descriptors_with_hysteresis() {
        let mut f = FdHeadroom::default();
        assert!(!f.on_sample(100, 1024));
        assert!(!f.on_sample(921, 1024), "90 % is still room");
        assert!(f.on_sample(932, 1024), "past 90 %");
        assert!(
            f.on_sample(830, 1024),
            "between the thresholds: still short"
        );
        assert!(!f.on_sample(818, 1024), "under 80 %");
        assert!(!f.on_sample(5, 0), "a zero limit is no reason to refuse");
    }

    #[test]
    fn forcing_overrides_the_measurement() {
        let o = Overload::default();
        assert!(!o.is_overloaded());
        o.force(true);
        assert!(o.is_overloaded());
        o.force(false);
        assert!(!o.is_overloaded());
    }
}
