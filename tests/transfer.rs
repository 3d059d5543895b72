//! The agent during a call: keys pass both ways, except the agent's in-call
//! transfer code (`##`, a queue's number or an agent's extension, `#`),
//! which the caller never hears and which sends the caller on; REFER to
//! another agent; a caller dialing a queue's number directly.

mod common;

use common::phone::{caller_put_through, AgentPhone, PHONE_SSRC};
use common::*;
use std::sync::Arc;
use std::time::Duration;

/// The telephone-event codes in `pkts` (payload type `pt`), one per press
/// (consecutive packets of one press share a timestamp).
fn presses(pkts: &[RtpIn], pt: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last_ts = None;
    for p in pkts.iter().filter(|p| p.pt == pt) {
        if last_ts != Some(p.ts) {
            out.push(p.payload.first().copied().unwrap_or(255));
            last_ts = Some(p.ts);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_pass_both_ways_but_the_agents_transfer_code_never_reaches_the_caller() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    // 201 is the software queue's own number: no IVR menu.
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let software = metric(
        &server.metrics.render(),
        "centralita_ivr_menu_entries_total{menu=\"principal\"}",
    );
    assert_eq!(software, 0.0, "the caller went straight to the queue");

    // The caller's 7 reaches the agent as it was sent; a 3 sent by SIP INFO
    // reaches the agent as an RFC 4733 event.
    caller.send_rfc4733('7').await;
    wait_until(WAIT, "the agent hears the caller's 7", || {
        presses(&ana.rtp_packets(), 101) == vec![7]
    })
    .await;
    assert_eq!(
        caller
            .info("application/dtmf-relay", "Signal=3\r\nDuration=160\r\n")
            .await,
        Some(200)
    );
    wait_until(WAIT, "the agent hears the caller's 3", || {
        presses(&ana.rtp_packets(), 101) == vec![7, 3]
    })
    .await;

    // The agent's keys reach the caller: 5; then # and 4 (a # that does not
    // begin ## goes on with the next key).
    let m = caller.packets().len();
    ana.send_audio(&tone(1000.0, 5)).await;
    ana.send_rfc4733('5').await;
    ana.send_audio(&tone(1000.0, 5)).await;
    ana.send_rfc4733('#').await;
    ana.send_rfc4733('4').await;
    ana.send_audio(&tone(1000.0, 5)).await;
    let rec = Arc::clone(&caller.received);
    wait_until(WAIT, "the caller hears three keys", || {
        rec.lock()
            .map(|r| presses(&r[m..], 101).len() >= 3)
            .unwrap_or(false)
    })
    .await;
    assert_eq!(
        presses(&caller.packets()[m..], 101),
        vec![5, 11, 4],
        "the caller hears 5, # and 4"
    );
    // The agent's stream reached the caller with no gap in sequence numbers
    // (its own keys were withheld, ours put in their place).
    let from_agent: Vec<RtpIn> = caller.packets()[m..]
        .iter()
        .filter(|p| p.ssrc == PHONE_SSRC)
        .cloned()
        .collect();
    assert!(
        from_agent.len() >= 15 + 3 * 4,
        "{} packets",
        from_agent.len()
    );
    for w in from_agent.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence numbers continue"
        );
    }

    // ##202#: the caller goes to the hardware queue (202) and hears
    // "transferring"; the agent's leg ends; none of those keys was heard.
    let before = caller.packets().len();
    for k in "##202#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_until(WAIT, "BYE to the transferring agent", || {
        !ana.requests("BYE").is_empty()
    })
    .await;
    wait_status(&server, "ana", "wrap_up").await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"hardware\"}", 1.0).await;
    wait_metric(
        &server,
        "centralita_keypad_transfers_total{result=\"transferred\"}",
        1.0,
    )
    .await;
    let corr = heard_after(&caller, before, "es", "transferring").await;
    assert!(
        presses(&caller.packets()[before..], 101).is_empty(),
        "the caller heard none of the transfer code's keys"
    );
    assert!(corr >= 0.9, "transferring prompt correlation {corr:.3}");
    // Still the same call, waiting: the caller is not hung up on.
    assert!(!caller.expect_bye(Duration::from_millis(200)).await);
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_transfer_target_keeps_the_call_and_star_cancels() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let caller = caller_put_through(&server, "201", &ana, "ana").await;
    for k in "##999#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_metric(
        &server,
        "centralita_keypad_transfers_total{result=\"unknown_target\"}",
        1.0,
    )
    .await;
    for k in "##20*".chars() {
        ana.send_rfc4733(k).await;
    }
    // Then an ordinary key still passes: the call is intact, still bridged.
    let m = caller.packets().len();
    ana.send_rfc4733('8').await;
    let rec = Arc::clone(&caller.received);
    wait_until(WAIT, "the caller hears the 8", || {
        rec.lock()
            .map(|r| presses(&r[m..], 101) == vec![8])
            .unwrap_or(false)
    })
    .await;
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("on_call")
    );
    assert!(ana.requests("BYE").is_empty());
    assert_eq!(
        presses(&caller.packets(), 101),
        vec![8],
        "only the 8 reached the caller"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_sends_the_caller_to_another_agent_by_extension_and_by_refer() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let ticket = ana.requests("INVITE")[0]
        .header("x-centralita-ticket")
        .unwrap_or_default()
        .to_string();
    // Carmen (extension 303) gets ready while Ana talks; Ana types ##303#.
    let carmen = AgentPhone::ready(&server, "carmen").await;
    for k in "##303#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_until(Duration::from_secs(10), "Carmen's phone rings", || {
        !carmen.requests("INVITE").is_empty()
    })
    .await;
    let invite = carmen.requests("INVITE").remove(0);
    assert_eq!(
        invite.header("x-centralita-ticket"),
        Some(ticket.as_str()),
        "the same ticket follows the caller"
    );
    wait_status(&server, "carmen", "on_call").await;
    wait_status(&server, "ana", "wrap_up").await;
    // Carmen hears the caller.
    let caller_tone = tone(440.0, 25);
    caller.send_audio(&caller_tone).await;
    wait_until(WAIT, "Carmen hears the caller", || {
        carmen
            .rtp_packets()
            .iter()
            .any(|p| p.payload == caller_tone[10])
    })
    .await;

    // Ana is ready again (wrap-up is 15 s: the test makes her ready at once)
    // and Carmen sends the caller back to her with a REFER naming her user.
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_status(&server, "ana", "available").await;
    carmen.refer("ana").await;
    wait_until(WAIT, "NOTIFY to Carmen's phone", || {
        !carmen.requests("NOTIFY").is_empty()
    })
    .await;
    wait_until(Duration::from_secs(10), "Ana's phone rings again", || {
        ana.requests("INVITE").len() >= 2
    })
    .await;
    wait_status(&server, "ana", "on_call").await;
    wait_status(&server, "carmen", "wrap_up").await;
    let text = server.metrics.render();
    for (labels, n) in [
        ("how=\"keypad\",result=\"done\",to=\"agent\"", 1.0),
        ("how=\"refer\",result=\"done\",to=\"agent\"", 1.0),
        ("how=\"refer\",result=\"done\",to=\"queue\"", 0.0),
    ] {
        assert_eq!(
            metric(&text, &format!("centralita_transfers_total{{{labels}}}")),
            n,
            "{labels}"
        );
    }
    assert_eq!(caller.bye().await, Some(200));
    wait_until(WAIT, "BYE to Ana", || !ana.requests("BYE").is_empty()).await;
    server.shutdown().await;
}
