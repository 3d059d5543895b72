//! Skills-based routing end to end with the three demo agents and several
//! callers of our own test client: who rang, in what order, and who waited.
//!
//! Ana: software 8, level 1. Bruno: hardware 8 (software 3), level 1.
//! Carmen: everything, level 2 (joins the software and hardware queues only
//! after their 60 s widening step).

mod common;

use common::phone::AgentPhone;
use common::*;
use std::sync::Arc;
use std::time::Duration;

/// A caller dialing a queue's own number (201 software, 202 hardware).
async fn dial(server: &centralita::server::Server, number: &str) -> Call {
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    Call::place(client, number, "0 101").await.0
}

fn rang(phone: &AgentPhone) -> usize {
    phone.requests("INVITE").len()
}

/// The ticket each INVITE to `phone` named, in order.
fn tickets(phone: &AgentPhone) -> Vec<String> {
    phone
        .requests("INVITE")
        .iter()
        .map(|m| {
            m.header("x-centralita-ticket")
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_rings_the_agent_with_the_skill_and_the_rest_wait_in_order() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let bruno = AgentPhone::ready(&server, "bruno").await;
    let carmen = AgentPhone::ready(&server, "carmen").await;

    // Hardware: Bruno, the only level-1 agent with hardware >= 5.
    let mut hw = dial(&server, "202").await;
    wait_until(WAIT, "Bruno rings for hardware", || rang(&bruno) == 1).await;
    wait_status(&server, "bruno", "on_call").await;
    // Software: Ana (Bruno's software 3 is below the queue's 5).
    let mut sw1 = dial(&server, "201").await;
    wait_until(WAIT, "Ana rings for software", || rang(&ana) == 1).await;
    wait_status(&server, "ana", "on_call").await;
    // Two more software callers: nobody qualified is free (Carmen is level 2
    // and joins only after 60 s), so they wait, first come first served.
    let sw2 = dial(&server, "201").await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"software\"}", 1.0).await;
    // Having dialed the queue's own number, it hears no menu: straight away
    // "all our technicians are busy", over hold music.
    let corr = heard_after(&sw2, 0, "es", "queue_wait").await;
    assert!(corr >= 0.9, "queue_wait correlation {corr:.3}");
    let sw3 = dial(&server, "201").await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"software\"}", 2.0).await;
    assert_eq!(rang(&carmen), 0, "the expert is kept for widening");
    assert_eq!((rang(&ana), rang(&bruno)), (1, 1), "no agent offered twice");

    // The first software call ends; Ana wraps up, then (ready at once with
    // *11) is offered the caller who waited longest.
    assert_eq!(sw1.bye().await, Some(200));
    wait_status(&server, "ana", "wrap_up").await;
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_until(WAIT, "Ana rings for the next software caller", || {
        rang(&ana) == 2
    })
    .await;
    let t = tickets(&ana);
    assert_ne!(t[0], t[1], "a different caller");
    wait_until(WAIT, "the third caller still waits, alone", || {
        metric(
            &server.metrics.render(),
            "centralita_queue_waiting{queue=\"software\"}",
        ) == 1.0
    })
    .await;
    // The one rung is the second caller: the first to come (its live record
    // is on_call with Ana, the third is still queued).
    let (_, body) = http_get(server.http_addr, "/api/v1/calls").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let calls = v["calls"].as_array().cloned().unwrap_or_default();
    let by_ticket = |ticket: &str| {
        calls
            .iter()
            .find(|c| c["ticket"] == ticket)
            .cloned()
            .unwrap_or_default()
    };
    let second = by_ticket(&t[1]);
    assert_eq!(second["agent"], "ana", "{body}");
    let queued: Vec<u64> = calls
        .iter()
        .filter(|c| c["state"] == "queued")
        .filter_map(|c| c["id"].as_u64())
        .collect();
    let second_id = second["id"].as_u64().unwrap_or(u64::MAX);
    assert_eq!(queued.len(), 1, "{body}");
    assert!(
        queued[0] > second_id,
        "FIFO: the later caller waits ({body})"
    );

    // The hardware caller hangs up: Bruno wraps up; nobody else rang.
    assert_eq!(hw.bye().await, Some(200));
    wait_status(&server, "bruno", "wrap_up").await;
    assert_eq!(rang(&carmen), 0);
    drop((sw2, sw3));
    server.shutdown().await;
}
