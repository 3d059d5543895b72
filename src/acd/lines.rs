//! [`LineCapacity`]: the trunk's lines, with one owner. It admits a call
//! (a caller arriving, the customer leg of a callback) while a usable line
//! is free, keeps the configured reserve for other uses, and releases the
//! line when the [`LineGuard`] it handed out is dropped. Each line taken is
//! in one [`LinePhase`] at a time (the guard's owner says which), so the
//! lines in use are known by phase. The line gauges are set here and
//! nowhere else.
//!
//! It is the seam a shared count replaces when several nodes serve one
//! trunk: nothing else counts lines, and nothing else decides whether one
//! is free. No IO. It reads the clock (the one module of the ACD that
//! does): line time is accounted exactly at every change of a line's phase,
//! and a guard is released wherever its call ends, by `Drop`, with no time
//! to pass in. Thread-safe: the admission is an atomic; the phase counts
//! and their time sit behind one short lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a line is being used for (label `phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinePhase {
    /// The caller hears the IVR (greeting, menus, goodbye).
    Ivr,
    /// The caller waits in a queue.
    Queue,
    /// An agent's phone rings for the caller.
    Ringing,
    /// The caller talks with an agent (or is held by it).
    Talking,
    /// The customer leg of a callback.
    Callback,
    /// The caller is being moved to another queue or agent.
    Transfer,
}

impl LinePhase {
    pub const ALL: [LinePhase; 6] = [
        LinePhase::Ivr,
        LinePhase::Queue,
        LinePhase::Ringing,
        LinePhase::Talking,
        LinePhase::Callback,
        LinePhase::Transfer,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LinePhase::Ivr => "ivr",
            LinePhase::Queue => "queue",
            LinePhase::Ringing => "ringing",
            LinePhase::Talking => "talking",
            LinePhase::Callback => "callback",
            LinePhase::Transfer => "transfer",
        }
    }

    fn ix(self) -> usize {
        self as usize
    }
}

/// The gauges and counters of the lines (`crate::metrics::LineMetrics`
/// builds them), by phase in [`LinePhase::ALL`]'s order.
#[derive(Debug, Clone)]
pub struct LineGauges {
    pub in_use: [prometheus::IntGauge; 6],
    pub seconds: [prometheus::Counter; 6],
    pub occupancy: prometheus::Gauge,
}

/// The trunk's lines: `lines` in all, `reserve` of them never given to a
/// call centralita places or takes.
#[derive(Debug)]
pub struct LineCapacity {
    lines: u32,
    reserve: u32,
    in_use: AtomicU32,
    /// Calls refused for want of a free usable line, and lines taken.
    blocked: AtomicU64,
    taken: AtomicU64,
    /// When the line time was last accounted, and the line-seconds so far.
    book: Mutex<Book>,
    gauges: Option<LineGauges>,
}

/// The lines by phase, and the line time so far: the integral of the
/// counts, brought up to date at every change.
#[derive(Debug, Default)]
struct Book {
    by_phase: [u32; 6],
    last: Option<Instant>,
    seconds: f64,
}

impl Book {
    /// Add the time since the last change, each phase's lines × seconds.
    fn settle(&mut self, now: Instant, gauges: Option<&LineGauges>) {
        let dt = self
            .last
            .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
        self.last = Some(self.last.map_or(now, |t| t.max(now)));
        if dt == 0.0 {
            return;
        }
        for (i, n) in self.by_phase.iter().enumerate() {
            let s = f64::from(*n) * dt;
            if s > 0.0 {
                self.seconds += s;
                if let Some(g) = gauges {
                    g.seconds[i].inc_by(s);
                }
            }
        }
    }
}

/// One line, taken until dropped.
#[derive(Debug)]
#[must_use = "the line is released when the guard is dropped"]
pub struct LineGuard {
    capacity: Arc<LineCapacity>,
    phase: LinePhase,
}

/// The counts behind the trunk's traffic: cumulative, for a driver that
/// differences them over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LineTotals {
    /// Line-seconds used so far (as of the last [`LineCapacity::account`]).
    pub seconds: f64,
    pub taken: u64,
    pub blocked: u64,
}

impl LineCapacity {
    /// `reserve` must be below `lines` (the config checks it); the gauges,
    /// if any, follow the lines in use.
    pub fn new(lines: u32, reserve: u32, gauges: Option<LineGauges>) -> Arc<Self> {
        Arc::new(LineCapacity {
            lines,
            reserve: reserve.min(lines),
            in_use: AtomicU32::new(0),
            blocked: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            book: Mutex::new(Book::default()),
            gauges,
        })
    }

    /// The lines a call may take (all but the reserve).
    pub fn usable(&self) -> u32 {
        self.lines - self.reserve
    }

    pub fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::SeqCst)
    }

    /// Lines in use in `phase`.
    pub fn in_phase(&self, phase: LinePhase) -> u32 {
        self.book().by_phase[phase.ix()]
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line for a call that starts in `phase`, if a usable one is free
    /// (`None`: only reserved lines are).
    pub fn try_take(self: &Arc<Self>, phase: LinePhase) -> Option<LineGuard> {
        let usable = self.usable();
        let taken = self
            .in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < usable).then_some(n + 1)
            });
        match taken {
            Ok(n) => {
                self.taken.fetch_add(1, Ordering::Relaxed);
                self.shift(None, Some(phase));
                self.publish_total(n + 1);
                Some(LineGuard {
                    capacity: Arc::clone(self),
                    phase,
                })
            }
            Err(_) => None,
        }
    }

    /// A caller was refused for want of a line (counted for the trunk's
    /// offered traffic; a callback that waits for a line is not one).
    pub fn note_blocked(&self) {
        self.blocked.fetch_add(1, Ordering::Relaxed);
    }

    /// Bring the line time up to `now` and return the totals (the
    /// switchboard calls it once a second, so that a long wait shows
    /// while it lasts).
    pub fn account(&self, now: Instant) -> LineTotals {
        let seconds = {
            let mut book = self.book();
            book.settle(now, self.gauges.as_ref());
            book.seconds
        };
        LineTotals {
            seconds,
            taken: self.taken.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
        }
    }

    /// A line leaves phase `from` (none: it is new) for `to` (none: it is
    /// released).
    fn shift(&self, from: Option<LinePhase>, to: Option<LinePhase>) {
        let now = Instant::now();
        let mut book = self.book();
        book.settle(now, self.gauges.as_ref());
        if let Some(p) = from {
            let n = &mut book.by_phase[p.ix()];
            *n = n.saturating_sub(1);
            self.set_gauge(p, *n);
        }
        if let Some(p) = to {
            let n = &mut book.by_phase[p.ix()];
            *n = n.saturating_add(1);
            self.set_gauge(p, *n);
        }
    }

    fn set_gauge(&self, p: LinePhase, n: u32) {
        if let Some(g) = &self.gauges {
            g.in_use[p.ix()].set(i64::from(n));
        }
    }

    fn publish_total(&self, n: u32) {
        if let Some(g) = &self.gauges {
            g.occupancy.set(f64::from(n) / f64::from(self.lines.max(1)));
        }
    }
}

impl LineGuard {
    /// The call moved on: its line counts in `phase` from now.
    pub fn set_phase(&mut self, phase: LinePhase) {
        if phase != self.phase {
            self.capacity.shift(Some(self.phase), Some(phase));
            self.phase = phase;
        }
    }

    pub fn phase(&self) -> LinePhase {
        self.phase
    }
}

impl Drop for LineGuard {
    fn drop(&mut self) {
        let c = &self.capacity;
        c.shift(Some(self.phase), None);
        let before = c
            .in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        c.publish_total(before.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_usable_lines_are_given_and_a_dropped_guard_frees_its_line() {
        let m = crate::metrics::Metrics::new();
        let lines = LineCapacity::new(3, 1, Some(m.line_gauges()));
        let gauge = m.lines_in_use.with_label_values(&["ivr"]);
        let a = lines.try_take(LinePhase::Ivr).expect("first line");
        let b = lines.try_take(LinePhase::Ivr).expect("second line");
        assert!(
            lines.try_take(LinePhase::Ivr).is_none(),
            "the reserved line is kept"
        );
        assert_eq!((lines.in_use(), gauge.get()), (2, 2));
        assert!((m.line_occupancy.get() - 2.0 / 3.0).abs() < 1e-9);
        drop(a);
        assert_eq!((lines.in_use(), gauge.get()), (1, 1));
        let c = lines
            .try_take(LinePhase::Ivr)
            .expect("a freed line is given again");
        drop((b, c));
        assert_eq!((lines.in_use(), gauge.get()), (0, 0));
        assert_eq!(m.line_occupancy.get(), 0.0);
    }

    #[test]
    fn each_line_counts_in_its_phase_and_line_time_adds_up_per_phase() {
        let m = crate::metrics::Metrics::new();
        let lines = LineCapacity::new(10, 0, Some(m.line_gauges()));
        let t0 = Instant::now();
        assert_eq!(lines.account(t0).seconds, 0.0);
        let mut a = lines.try_take(LinePhase::Ivr).expect("line");
        let _b = lines.try_take(LinePhase::Ivr).expect("line");
        a.set_phase(LinePhase::Queue);
        assert_eq!(
            (
                lines.in_phase(LinePhase::Ivr),
                lines.in_phase(LinePhase::Queue)
            ),
            (1, 1)
        );
        let totals = lines.account(t0 + std::time::Duration::from_secs(3));
        // The real clock moved a little between the takes: within 10 ms.
        assert!((totals.seconds - 6.0).abs() < 0.01, "{}", totals.seconds);
        let secs = |p: &str| m.line_seconds.with_label_values(&[p]).get();
        assert!((secs("queue") - 3.0).abs() < 0.01 && (secs("ivr") - 3.0).abs() < 0.01);
        a.set_phase(LinePhase::Talking);
        drop(a);
        assert_eq!(lines.in_phase(LinePhase::Talking), 0);
        assert_eq!(lines.in_phase(LinePhase::Queue), 0);
        lines.note_blocked();
        let totals = lines.account(t0 + std::time::Duration::from_secs(4));
        assert_eq!((totals.taken, totals.blocked), (2, 1));
        assert!((totals.seconds - 7.0).abs() < 0.01, "{}", totals.seconds);
    }

    #[test]
    fn contending_threads_never_take_more_than_the_usable_lines() {
        let lines = LineCapacity::new(10, 2, None);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lines = Arc::clone(&lines);
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for _ in 0..1000 {
                        if let Some(g) = lines.try_take(LinePhase::Queue) {
                            assert!(lines.in_use() <= 8);
                            held.push(g);
                        }
                        if held.len() > 2 {
                            drop(held.remove(0));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(lines.in_use(), 0);
    }
}
