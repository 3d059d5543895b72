//! RTP pacing as a caller hears it: place N calls to a running centralita,
//! record when each RTP packet arrives, and report the spacing between
//! consecutive packets (p50, p99, max) over all sampled calls.
//!
//!   cargo run --release --example rtp_sampler -- 127.0.0.1:5090 100 20
//!
//! Used by scripts/load.sh next to a SIPp load; loopback only, bounded by
//! the number of calls and seconds given.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Call, SipClient};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let server: std::net::SocketAddr =
        args.get(1).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            eprintln!("usage: rtp_sampler SERVER_ADDR [CALLS] [SECONDS]");
            std::process::exit(2)
        });
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let secs: u64 = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .clamp(2, 600);
    let client = Arc::new(SipClient::new(server).await);
    let mut calls = Vec::new();
    for _ in 0..n {
        let (call, resp) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
        if resp.status() == Some(200) {
            calls.push(call);
        } else {
            eprintln!("call refused: {:?}", resp.status());
        }
    }
    // Skip the first second (set-up), then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for c in &calls {
        c.clear_audio();
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let mut gaps: Vec<f64> = Vec::new();
    let mut packets = 0usize;
    let mut lost = 0i64;
    for c in &calls {
        let p = c.packets();
        packets += p.len();
        if let (Some(first), Some(last)) = (p.first(), p.last()) {
            lost += i64::from(last.seq.wrapping_sub(first.seq)) + 1 - p.len() as i64;
        }
        gaps.extend(
            p.windows(2)
                .map(|w| w[1].at.duration_since(w[0].at).as_secs_f64() * 1000.0),
        );
    }
    for c in &mut calls {
        let _ = c.bye().await;
    }
    gaps.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        gaps.get(((gaps.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let over25 = gaps.iter().filter(|g| **g > 25.0).count();
    println!(
        "sampled {} calls, {} packets over {secs} s, {lost} lost/reordered; spacing ms: p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; > 25 ms: {:.3}%",
        calls.len(),
        packets,
        q(0.5),
        q(0.99),
        q(0.999),
        gaps.last().copied().unwrap_or(f64::NAN),
        100.0 * over25 as f64 / gaps.len().max(1) as f64
    );
}
