//! The two races a call used to lose, end to end: a transfer the ACD
//! refuses (the caller must stay with its agent, the REFER's NOTIFY must
//! say it failed), and a callback asked for while an offer already rings
//! (the offer is withdrawn and the caller is called back).

mod common;

use common::phone::{caller_put_through, AgentPhone, Answer, PHONE_SSRC};
use common::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_to_a_logged_out_agent_keeps_the_caller_with_the_agent_and_notifies_the_failure() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let mark = ana.rtp_packets().len();
    let caller_mark = caller.packets().len();
    // Carmen is logged out: the ACD refuses the transfer.
    ana.refer("carmen").await;
    wait_until(WAIT, "NOTIFY to the transferring phone", || {
        !ana.requests("NOTIFY").is_empty()
    })
    .await;
    let notify = ana.requests("NOTIFY").remove(0);
    let frag = String::from_utf8_lossy(&notify.body).into_owned();
    assert!(frag.starts_with("SIP/2.0 480"), "sipfrag says 480: {frag}");
    // The agent hears that the transfer failed; the caller never hears it.
    // The prompt lasts ~2.5 s, and the clock stops playing to the agent once
    // it is over: its first 1.5 s, found in the first 2 s heard, is proof.
    let mut expected = prompt_samples("es", "transfer_failed");
    expected.truncate(12_000);
    let frames = 100;
    wait_until(
        Duration::from_secs(10),
        "the prompt reaches the agent",
        || ana.rtp_packets().len() >= mark + frames,
    )
    .await;
    let heard = decode(&ana.rtp_packets()[mark..], 0);
    let corr = best_correlation(&heard, &expected, 60);
    assert!(corr >= 0.9, "transfer_failed heard by the agent: {corr:.3}");
    // (A packet of the hold music may still have been on its way.)
    let to_caller = caller.packets().len() - caller_mark;
    assert!(
        to_caller < 5,
        "the caller hears none of it: {to_caller} packets"
    );
    assert!(ana.requests("BYE").is_empty(), "the agent keeps the call");
    assert!(!caller.expect_bye(Duration::from_millis(200)).await);
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("on_call")
    );
    // Still bridged both ways: the caller's audio reaches the agent again
    // once the prompt is over, and the agent's reaches the caller.
    let frame = vec![0x55u8; 160];
    caller.send_audio(&vec![frame.clone(); 25]).await;
    wait_until(WAIT, "the agent hears the caller", || {
        ana.rtp_packets()
            .iter()
            .skip(mark + frames)
            .any(|p| p.payload.iter().all(|b| *b == 0x55))
    })
    .await;
    ana.send_audio(&vec![vec![0x2au8; 160]; 25]).await;
    wait_until(WAIT, "the caller hears the agent", || {
        caller.packets().iter().any(|p| p.ssrc == PHONE_SSRC)
    })
    .await;
    assert_eq!(
        scrape(
            &server,
            "centralita_transfers_total{how=\"refer\",result=\"refused\",to=\"agent\"}"
        )
        .await,
        1.0
    );
    assert_eq!(caller.bye().await, Some(200));
    wait_until(WAIT, "BYE to the agent", || !ana.requests("BYE").is_empty()).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keypad_transfer_to_a_logged_out_agent_keeps_the_call() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let caller = caller_put_through(&server, "201", &ana, "ana").await;
    // 303 is Carmen's extension; she is logged out.
    for k in "##303#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_metric(
        &server,
        "centralita_keypad_transfers_total{result=\"refused\"}",
        1.0,
    )
    .await;
    assert!(ana.requests("BYE").is_empty(), "the agent keeps the call");
    assert!(!caller.expect_bye(Duration::from_millis(300)).await);
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("on_call")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_pressed_while_the_offer_rings_withdraws_it_and_the_caller_is_called_back() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    ana.set_answer(Answer::Never);
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut caller, _) = Call::place(Arc::clone(&client), "201", "0 101").await;
    wait_until(Duration::from_secs(10), "Ana's phone rings", || {
        !ana.requests("INVITE").is_empty()
    })
    .await;
    wait_status(&server, "ana", "offered").await;
    let mark = caller.packets().len();
    caller.send_rfc4733('9').await;
    wait_until(WAIT, "the ringing offer is withdrawn", || {
        !ana.requests("CANCEL").is_empty()
    })
    .await;
    // Ana's phone answers from now on: the call back may ring it as soon as
    // the caller's line is down.
    ana.set_answer(Answer::Auto);
    // The caller hears the promise only once the ACD holds it, then goodbye.
    let corr = heard_after(&caller, mark, "es", "callback_confirm").await;
    assert!(corr >= 0.9, "callback_confirm correlation {corr:.3}");
    assert!(
        caller.expect_bye(Duration::from_secs(20)).await,
        "the line is freed after the confirmation"
    );
    assert_ne!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("paused"),
        "a withdrawn offer does not pause the agent"
    );
    // The call back: Ana's phone first (it answers this time), then the
    // customer at the address its call came from.
    wait_until(
        Duration::from_secs(10),
        "Ana is rung for the callback",
        || {
            ana.requests("INVITE")
                .iter()
                .any(|m| m.header("x-centralita-callback") == Some("yes"))
        },
    )
    .await;
    let invite = client
        .wait_for(Duration::from_secs(10), |m| m.method() == Some("INVITE"))
        .await
        .expect("the customer is called back");
    assert!(
        invite.start.contains(&format!("@{}", client.local)),
        "called back where the call came from: {}",
        invite.start
    );
    assert_eq!(
        scrape(
            &server,
            "centralita_queue_calls_total{outcome=\"abandoned\",queue=\"software\"}"
        )
        .await,
        0.0,
        "not counted as abandoned"
    );
    server.shutdown().await;
}
