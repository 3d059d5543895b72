//! A public number gets hostile traffic: what centralita does with it,
//! seen from outside.

mod common;

use common::*;
use std::time::Duration;

/// An OPTIONS like a scanner's sweep, with this User-Agent.
fn options_as(client: &SipClient, call_id: &str, user_agent: &str) -> Vec<u8> {
    let plain = String::from_utf8(client.options(call_id)).expect("text");
    plain
        .replacen(
            "Content-Length: 0\r\n",
            &format!("User-Agent: {user_agent}\r\nContent-Length: 0\r\n"),
            1,
        )
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanners_requests_get_no_answer_and_are_counted_while_a_phone_is_answered() {
    let server = start_server().await;
    let client = SipClient::new(server.sip_addr).await;
    client
        .send(&options_as(&client, "sweep-1", "friendly-scanner"))
        .await;
    wait_metric(
        &server,
        "centralita_sip_messages_dropped_total{reason=\"scanner\"}",
        1.0,
    )
    .await;
    // The same address with a phone's User-Agent is answered; by then the
    // scanner's request (sent first, on the same socket) has had its turn.
    let reply = client
        .transact(&options_as(
            &client,
            "phone-1",
            "Yealink SIP-T46U 108.86.0.90",
        ))
        .await
        .expect("the phone's OPTIONS is answered");
    assert_eq!(reply.status(), Some(200));
    let scanner_reply = client
        .wait_for(Duration::from_millis(1), |m| {
            m.header("call-id") == Some("sweep-1")
        })
        .await;
    assert!(scanner_reply.is_none(), "the scanner heard nothing");
    server.shutdown().await;
}
