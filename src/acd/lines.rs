//! [`LineCapacity`]: the trunk's lines, with one owner. It admits a call
//! (a caller arriving, the customer leg of a callback) while a usable line
//! is free, keeps the configured reserve for other uses, and releases the
//! line when the [`LineGuard`] it handed out is dropped. The lines-in-use
//! gauge is set here and nowhere else.
//!
//! It is the seam a shared count replaces when several nodes serve one
//! trunk: nothing else counts lines, and nothing else decides whether one
//! is free. No IO and no clock; thread-safe (an atomic and a gauge).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The trunk's lines: `lines` in all, `reserve` of them never given to a
/// call centralita places or takes.
#[derive(Debug)]
pub struct LineCapacity {
    lines: u32,
    reserve: u32,
    in_use: AtomicU32,
    gauge: Option<prometheus::IntGauge>,
}

/// One line, taken until dropped.
#[derive(Debug)]
#[must_use = "the line is released when the guard is dropped"]
pub struct LineGuard {
    capacity: Arc<LineCapacity>,
}

impl LineCapacity {
    /// `reserve` must be below `lines` (the config checks it); the gauge,
    /// if any, follows the lines in use.
    pub fn new(lines: u32, reserve: u32, gauge: Option<prometheus::IntGauge>) -> Arc<Self> {
        Arc::new(LineCapacity {
            lines,
            reserve: reserve.min(lines),
            in_use: AtomicU32::new(0),
            gauge,
        })
    }

    /// The lines a call may take (all but the reserve).
    pub fn usable(&self) -> u32 {
        self.lines - self.reserve
    }

    pub fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::SeqCst)
    }

    /// A line, if a usable one is free (`None`: only reserved lines are).
    pub fn try_take(self: &Arc<Self>) -> Option<LineGuard> {
        let usable = self.usable();
        let taken = self
            .in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < usable).then_some(n + 1)
            });
        match taken {
            Ok(n) => {
                self.publish(n + 1);
                Some(LineGuard {
                    capacity: Arc::clone(self),
                })
            }
            Err(_) => None,
        }
    }

    fn publish(&self, n: u32) {
        if let Some(g) = &self.gauge {
            g.set(i64::from(n));
        }
    }
}

impl Drop for LineGuard {
    fn drop(&mut self) {
        let c = &self.capacity;
        let before = c
            .in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        c.publish(before.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_usable_lines_are_given_and_a_dropped_guard_frees_its_line() {
        let gauge = prometheus::IntGauge::new("lines", "lines").expect("gauge");
        let lines = LineCapacity::new(3, 1, Some(gauge.clone()));
        let a = lines.try_take().expect("first line");
        let b = lines.try_take().expect("second line");
        assert!(lines.try_take().is_none(), "the reserved line is kept");
        assert_eq!((lines.in_use(), gauge.get()), (2, 2));
        drop(a);
        assert_eq!((lines.in_use(), gauge.get()), (1, 1));
        let c = lines.try_take().expect("a freed line is given again");
        drop((b, c));
        assert_eq!((lines.in_use(), gauge.get()), (0, 0));
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
                        if let Some(g) = lines.try_take() {
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
