//! The RTP port pool: even ports from the configured range, the odd port above
//! each kept free for RTCP. A port is taken by binding it (so another process
//! or a parallel test holding it is simply skipped) and goes back to the pool
//! the moment its [`RtpPort`] is dropped, at the end of the call.

use crate::config::PortRange;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

/// Hands out RTP sockets bound to even ports of a range.
pub struct PortPool {
    range: PortRange,
    bind_ip: IpAddr,
    state: Mutex<PoolState>,
    in_use_gauge: prometheus::IntGauge,
}

struct PoolState {
    cursor: u16,
    in_use: HashSet<u16>,
}

/// A bound RTP socket; its port returns to the pool on drop.
pub struct RtpPort {
    pub socket: UdpSocket,
    pub port: u16,
    pool: Arc<PortPool>,
}

impl Drop for RtpPort {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no free RTP port in {low}-{high}")]
pub struct PortsExhausted {
    pub low: u16,
    pub high: u16,
}

impl PortPool {
    pub fn new(range: PortRange, bind_ip: IpAddr, in_use_gauge: prometheus::IntGauge) -> Arc<Self> {
        Arc::new(PortPool {
            range,
            bind_ip,
            state: Mutex::new(PoolState {
                cursor: range.low,
                in_use: HashSet::new(),
            }),
            in_use_gauge,
        })
    }

    /// Number of even ports in the range.
    pub fn capacity(&self) -> usize {
        usize::from(self.range.high - self.range.low).div_ceil(2)
    }

    /// Bind the next free even port. Ports are handed out round-robin, so a
    /// port just released is not reused at once (late packets of the old
    /// call do not reach the new one).
    pub fn allocate(self: &Arc<Self>) -> Result<RtpPort, PortsExhausted> {
        let exhausted = PortsExhausted {
            low: self.range.low,
            high: self.range.high,
        };
        let mut st = self
            .state
            .lock()
            .map_err(|_| PortsExhausted { ..exhausted })?;
        for _ in 0..self.capacity() {
            let port = st.cursor;
            st.cursor = if port.saturating_add(2) >= self.range.high {
                self.range.low
            } else {
                port + 2
            };
            if st.in_use.contains(&port) {
                continue;
            }
            let Ok(socket) = UdpSocket::bind(SocketAddr::new(self.bind_ip, port)) else {
                continue;
            };
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            st.in_use.insert(port);
            self.in_use_gauge.inc();
            return Ok(RtpPort {
                socket,
                port,
                pool: Arc::clone(self),
            });
        }
        Err(exhausted)
    }

    fn release(&self, port: u16) {
        if let Ok(mut st) = self.state.lock() {
            if st.in_use.remove(&port) {
                self.in_use_gauge.dec();
            }
        }
    }

    pub fn in_use(&self) -> usize {
        self.state.lock().map(|s| s.in_use.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_even_and_return_on_drop() {
        let range = PortRange {
            low: 41000,
            high: 41011,
        };
        let pool = PortPool::new(
            range,
            "127.0.0.1".parse().expect("ip"),
            prometheus::IntGauge::new("g", "g").expect("gauge"),
        );
        let a = pool.allocate().expect("port");
        let b = pool.allocate().expect("port");
        assert_eq!(a.port % 2, 0);
        assert_eq!(b.port % 2, 0);
        assert_ne!(a.port, b.port);
        assert_eq!(pool.in_use(), 2);
        drop(a);
        assert_eq!(pool.in_use(), 1);
    }

    #[test]
    fn exhausted_pool_says_so() {
        let range = PortRange {
            low: 41100,
            high: 41103,
        };
        let pool = PortPool::new(
            range,
            "127.0.0.1".parse().expect("ip"),
            prometheus::IntGauge::new("g", "g").expect("gauge"),
        );
        let held: Vec<RtpPort> = std::iter::from_fn(|| pool.allocate().ok())
            .take(10)
            .collect();
        assert!(held.len() <= 2);
        assert!(pool.allocate().is_err());
    }
}
