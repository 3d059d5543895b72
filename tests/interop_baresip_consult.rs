//! Interop: baresip as the consulted colleague. A level-1 agent (the test
//! phone) consults Carmen from its keypad (`##7303#`): baresip's phone rings
//! with the consultation, answers, and the agent hears it; `##7#` hands the
//! caller over, and the caller hears baresip. A binary of its own, so that
//! it never runs beside the other baresip tests. Skipped with a printed
//! reason when baresip is missing, failed instead under
//! CENTRALITA_REQUIRE_INTEROP=1.

mod common;

use common::baresip::{baresip_available, baresip_dir, spawn_baresip};
use common::phone::{caller_put_through, AgentPhone};
use common::*;
use std::time::Duration;

/// The share of the signal's power at `freq` (Goertzel), 0..1.
fn tone_share(samples: &[i16], freq: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if energy == 0.0 {
        0.0
    } else {
        (2.0 * power / (n * energy)).min(1.0)
    }
}

/// The last second of what came after packet `mark`, decoded (µ-law).
fn last_second(pkts: &[RtpIn], mark: usize) -> Vec<i16> {
    let after = pkts.get(mark..).unwrap_or_default();
    let tail = after.len().saturating_sub(50);
    decode(&after[tail..], 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_answers_a_consultation_and_takes_the_caller() {
    if !baresip_available() {
        return;
    }
    let server = start_server().await;
    let dir = baresip_dir(server.sip_addr, "carmen", "carmen-demo-1234");
    let mut child = spawn_baresip(&dir, &["-e", "/dial *11", "-t", "60"]);
    let ready = {
        let start = std::time::Instant::now();
        loop {
            if server.agent_status("carmen").await.map(|s| s.as_str()) == Some("available") {
                break true;
            }
            if start.elapsed() > Duration::from_secs(15) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(ready, "baresip registered as Carmen and got ready");
    wait_until(
        Duration::from_secs(10),
        "the feature-code call is over",
        || server.metrics.calls_active.get() == 0,
    )
    .await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    // Ana consults Carmen from her keypad.
    for k in "##7303#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_status(&server, "carmen", "on_call").await;
    // Ana hears Carmen's phone (its 700 Hz microphone).
    let mark = ana.rtp_packets().len();
    wait_until(
        Duration::from_secs(10),
        "Ana hears a second of Carmen",
        || ana.rtp_packets().len() >= mark + 75,
    )
    .await;
    let share = tone_share(&last_second(&ana.rtp_packets(), mark), 700.0);
    assert!(share > 0.5, "Ana hears baresip's tone: {share:.2}");
    // ##7#: the caller goes to Carmen.
    for k in "##7#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_until(WAIT, "BYE to Ana", || !ana.requests("BYE").is_empty()).await;
    let mark = caller.packets().len();
    wait_until(
        Duration::from_secs(10),
        "the caller hears a second of Carmen",
        || caller.packets().len() >= mark + 75,
    )
    .await;
    let share = tone_share(&last_second(&caller.packets(), mark), 700.0);
    let (to_carmen, _) = relayed(&server);
    caller.send_audio(&vec![vec![0x55u8; 160]; 25]).await;
    wait_until(WAIT, "the caller's audio relayed to Carmen", || {
        relayed(&server).0 >= to_carmen + 20.0
    })
    .await;
    assert_eq!(caller.bye().await, Some(200));
    wait_status(&server, "carmen", "wrap_up").await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(share > 0.5, "the caller hears baresip's tone: {share:.2}");
    server.shutdown().await;
}
