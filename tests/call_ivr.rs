//! End to end, in-process: a caller of our own test client dials the IVR,
//! hears the real prompts (decoded and correlated with the WAVs), presses
//! keys by RFC 4733, SIP INFO and in-band tones, and walks the menus.

mod common;

use centralita::server::ServerOptions;
use common::*;
use std::sync::Arc;
use std::time::Duration;

const FRAME: usize = 160;

async fn heard(call: &Call, lang: &str, name: &str) -> f64 {
    heard_after(call, 0, lang, name).await
}

fn mark(call: &Call) -> usize {
    call.packets().len()
}

async fn menu_entries(server: &centralita::server::Server, menu: &str) -> f64 {
    scrape(
        server,
        &format!("centralita_ivr_menu_entries_total{{menu=\"{menu}\"}}"),
    )
    .await
}

async fn wait_menu(server: &centralita::server::Server, menu: &str, n: f64) {
    wait_metric(
        server,
        &format!("centralita_ivr_menu_entries_total{{menu=\"{menu}\"}}"),
        n,
    )
    .await;
}

/// A caller who has chosen a language with `digit` and is in the main menu.
async fn caller_in_main_menu(server: &centralita::server::Server, digit: char) -> Call {
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, resp) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200));
    call.wait_packets(5, WAIT).await;
    call.send_rfc4733(digit).await;
    wait_menu(server, "principal", 1.0).await;
    call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_probe_is_answered_200_with_allow() {
    let server = start_server().await;
    let client = SipClient::new(server.sip_addr).await;
    let resp = client
        .transact(&client.options("opt-1"))
        .await
        .expect("OPTIONS answered");
    assert_eq!(resp.status(), Some(200));
    assert!(resp.header("allow").is_some_and(|a| a.contains("INVITE")));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_hears_the_spanish_welcome_prompt() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, resp) = Call::place(client, "soporte", "0 8 101").await;
    assert_eq!(resp.status(), Some(200));
    assert_eq!(call.pt, 0, "PCMU chosen, the caller's first preference");
    let corr = heard(&call, "es", "welcome").await;
    assert!(corr >= 0.9, "welcome prompt correlation {corr:.3}");
    assert_eq!(menu_entries(&server, "idioma").await, 1.0);
    // RTP is well formed: one SSRC, consecutive sequence numbers, 160-sample steps.
    let pkts = call.packets();
    assert!(
        pkts.windows(2)
            .all(|w| w[1].seq == w[0].seq.wrapping_add(1)),
        "sequence numbers step by one"
    );
    assert!(
        pkts.windows(2)
            .all(|w| w[1].ts == w[0].ts.wrapping_add(160)),
        "timestamps step by 160"
    );
    assert!(pkts.iter().all(|p| p.ssrc == pkts[0].ssrc));
    assert!(
        pkts[0].marker,
        "first packet of the talkspurt has the marker bit"
    );
    assert_eq!(call.bye().await, Some(200));
    wait_metric(
        &server,
        "centralita_calls_total{outcome=\"caller_hangup\"}",
        1.0,
    )
    .await;
    assert!(scrape(&server, "centralita_rtp_packets_sent_total").await >= pkts.len() as f64);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_caller_hears_the_prompt_in_pcma() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, resp) = Call::place(client, "100", "8 101").await;
    assert_eq!(resp.status(), Some(200));
    assert_eq!(call.pt, 8);
    let corr = heard(&call, "es", "welcome").await;
    assert!(corr >= 0.9, "welcome prompt correlation {corr:.3}");
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_digits_walk_to_the_software_queue() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, _) = Call::place(client, "soporte", "0 101").await;
    call.wait_packets(10, WAIT).await;
    // Barge in on the welcome: 1 = Spanish.
    let m = mark(&call);
    call.send_rfc4733('1').await;
    wait_menu(&server, "principal", 1.0).await;
    let corr = heard_after(&call, m, "es", "main_menu").await;
    assert!(corr >= 0.9, "main menu correlation {corr:.3}");
    let m = mark(&call);
    call.send_rfc4733('1').await;
    let corr = heard_after(&call, m, "es", "transfer_software").await;
    assert!(corr >= 0.9, "transfer_software correlation {corr:.3}");
    assert_eq!(
        scrape(&server, "centralita_dtmf_digits_total{source=\"rfc4733\"}").await,
        2.0,
        "each press counted once"
    );
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_choice_by_sip_info_plays_the_english_menu() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, _) = Call::place(client, "soporte", "0 101").await;
    call.wait_packets(10, WAIT).await;
    let m = mark(&call);
    assert_eq!(
        call.info("application/dtmf-relay", "Signal=2\r\nDuration=160\r\n")
            .await,
        Some(200)
    );
    wait_menu(&server, "principal", 1.0).await;
    let corr = heard_after(&call, m, "en", "main_menu").await;
    assert!(corr >= 0.9, "English main menu correlation {corr:.3}");
    assert_eq!(
        scrape(&server, "centralita_dtmf_digits_total{source=\"info\"}").await,
        1.0
    );
    assert_eq!(
        call.info("application/unknown", "x").await,
        Some(415),
        "an INFO we cannot read is refused"
    );
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_key_plays_invalid_option_then_the_menu_again() {
    let server = start_server().await;
    let mut call = caller_in_main_menu(&server, '1').await;
    call.wait_packets(5, WAIT).await;
    let m = mark(&call);
    call.send_rfc4733('7').await;
    let corr = heard_after(&call, m, "es", "invalid_option").await;
    assert!(corr >= 0.9, "invalid_option correlation {corr:.3}");
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_after_the_prompt_plays_no_input() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, _) = Call::place(client, "soporte", "0 101").await;
    // welcome + choose_language, then 5 s of silence, then no_input.
    let welcome =
        prompt_samples("es", "welcome").len() + prompt_samples("es", "choose_language").len();
    let no_input = prompt_samples("es", "no_input");
    let frames = (welcome + no_input.len()) / FRAME + 250 + 40;
    call.wait_packets(frames, Duration::from_secs(40)).await;
    let corr = best_correlation(&call.audio(), &no_input, frames);
    assert!(corr >= 0.9, "no_input correlation {corr:.3}");
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_number_is_collected_until_hash() {
    let server = start_server().await;
    let mut call = caller_in_main_menu(&server, '1').await;
    let m = mark(&call);
    for d in ['4', '1', '2', '3', '#'] {
        call.send_rfc4733(d).await;
    }
    let corr = heard_after(&call, m, "es", "ticket_thanks").await;
    assert!(corr >= 0.9, "ticket_thanks correlation {corr:.3}");
    assert_eq!(
        scrape(&server, "centralita_dtmf_digits_total{source=\"rfc4733\"}").await,
        6.0
    );
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_request_confirms_and_hangs_up() {
    let server = start_server().await;
    let mut call = caller_in_main_menu(&server, '1').await;
    call.send_rfc4733('9').await;
    assert!(
        call.expect_bye(Duration::from_secs(30)).await,
        "the IVR hangs up after the confirmation"
    );
    let corr = best_correlation(
        &call.audio(),
        &prompt_samples("es", "callback_confirm"),
        2000,
    );
    assert!(corr >= 0.9, "callback_confirm correlation {corr:.3}");
    wait_metric(
        &server,
        "centralita_calls_total{outcome=\"ivr_hangup\"}",
        1.0,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_dtmf_tone_selects_english() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, _) = Call::place(client, "soporte", "0").await;
    call.wait_packets(5, WAIT).await;
    // '2' = 697 Hz + 1336 Hz, 100 ms, then silence; µ-law encoded by the
    // independent codec.
    let mut frames = Vec::new();
    for f in 0..15 {
        let frame: Vec<u8> = (0..FRAME)
            .map(|i| {
                let n = (f * FRAME + i) as f64;
                let s = if f < 5 {
                    let t = n / 8000.0;
                    6000.0 * (2.0 * std::f64::consts::PI * 697.0 * t).sin()
                        + 6000.0 * (2.0 * std::f64::consts::PI * 1336.0 * t).sin()
                } else {
                    0.0
                };
                audio_codec_algorithms::encode_ulaw(s as i16)
            })
            .collect();
        frames.push(frame);
    }
    let m = mark(&call);
    call.send_audio(&frames).await;
    wait_menu(&server, "principal", 1.0).await;
    assert_eq!(
        scrape(&server, "centralita_dtmf_digits_total{source=\"inband\"}").await,
        1.0
    );
    let corr = heard_after(&call, m, "en", "main_menu").await;
    assert!(corr >= 0.9, "English main menu correlation {corr:.3}");
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_gets_404_and_no_common_codec_gets_488() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (_, resp) = Call::place(Arc::clone(&client), "nobody", "0").await;
    assert_eq!(resp.status(), Some(404));
    let (_, resp) = Call::place(Arc::clone(&client), "soporte", "9").await;
    assert_eq!(resp.status(), Some(488));
    wait_metric(&server, "centralita_calls_total{outcome=\"no_codec\"}", 1.0).await;
    wait_until(WAIT, "RTP port returned", || {
        server.metrics.rtp_ports_in_use.get() == 0
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_invite_is_absorbed_into_one_call() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let mut call = Call::new(Arc::clone(&client), "soporte").await;
    let offer = sdp_offer(call.rtp.local_addr().expect("addr"), "0 101");
    let inv = call.invite_bytes(Some(&offer), "z9hG4bKretrans1");
    client.send(&inv).await;
    client.send(&inv).await;
    client.send(&inv).await;
    let cid = call.call_id.clone();
    let first = client
        .wait_for(WAIT, |m| {
            m.status() == Some(200) && m.header("call-id") == Some(cid.as_str())
        })
        .await
        .expect("200 OK");
    call.on_answered(&first, None).await;
    call.wait_packets(10, WAIT).await;
    assert_eq!(server.metrics.calls_active.get(), 1, "one call, not three");
    assert_eq!(menu_entries(&server, "idioma").await, 1.0);
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_without_sdp_gets_our_offer_and_the_answer_from_the_ack() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let mut call = Call::new(Arc::clone(&client), "soporte").await;
    let inv = call.invite_bytes(None, "z9hG4bKnosdp1");
    let resp = client.transact(&inv).await.expect("final response");
    assert_eq!(resp.status(), Some(200));
    let offer = String::from_utf8_lossy(&resp.body).into_owned();
    assert!(
        offer.contains("m=audio"),
        "the 200 carries an offer: {offer}"
    );
    let answer = sdp_offer(call.rtp.local_addr().expect("addr"), "8 101");
    call.on_answered(&resp, Some(&answer)).await;
    call.pt = 8;
    let corr = heard(&call, "es", "welcome").await;
    assert!(
        corr >= 0.9,
        "welcome in PCMA after the ACK's answer, correlation {corr:.3}"
    );
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_ends_the_call_with_487() {
    let server = start_server_tuned(|c| c.answer_after_ms = 3000, ServerOptions::default()).await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let call = Call::new(Arc::clone(&client), "soporte").await;
    let offer = sdp_offer(call.rtp.local_addr().expect("addr"), "0 101");
    let inv = call.invite_bytes(Some(&offer), "z9hG4bKcancel1");
    client.send(&inv).await;
    let cid = call.call_id.clone();
    client
        .wait_for(WAIT, |m| {
            m.status() == Some(180) && m.header("call-id") == Some(cid.as_str())
        })
        .await
        .expect("180 Ringing while the answer is delayed");
    let cancel = String::from_utf8_lossy(&inv)
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let cancel = cancel
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace(
            &format!("Content-Length: {}", offer.len()),
            "Content-Length: 0",
        )
        .replace("Content-Type: application/sdp\r\n", "")
        + "\r\n\r\n";
    client.send(cancel.as_bytes()).await;
    let r487 = client
        .wait_for(WAIT, |m| {
            m.status() == Some(487) && m.header("call-id") == Some(cid.as_str())
        })
        .await;
    assert!(r487.is_some(), "the INVITE ends with 487");
    wait_metric(
        &server,
        "centralita_calls_total{outcome=\"cancelled\"}",
        1.0,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_between_calls_are_counted_and_harmless() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut first, _) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    first.wait_packets(5, WAIT).await;
    let junk: [&[u8]; 5] = [
        b"\x00\x01\x02garbage",
        b"INVITE sip:x SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n\r\n",
        b"HELLO\r\n\r\n",
        &[0xffu8; 3000],
    ];
    for j in junk {
        client.send(j).await;
    }
    let probe = client.transact(&client.options("after-junk")).await;
    assert_eq!(probe.and_then(|m| m.status()), Some(200));
    let text = server.metrics.render();
    let dropped: f64 = text
        .lines()
        .filter(|l| l.starts_with("centralita_sip_messages_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let refused: f64 = text
        .lines()
        .filter(|l| l.starts_with("centralita_sip_messages_refused_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        dropped + refused >= 5.0,
        "every bad datagram counted (dropped {dropped}, refused {refused})"
    );
    // The call in progress is undisturbed and a new call works.
    let before = first.packets().len();
    first.wait_packets(before + 10, WAIT).await;
    let (mut second, resp) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200));
    second.wait_packets(10, WAIT).await;
    assert_eq!(first.bye().await, Some(200));
    assert_eq!(second.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_bye_and_refuses_new_calls_with_503() {
    let server = start_server().await;
    let sip = server.sip_addr;
    let client = Arc::new(SipClient::new(sip).await);
    let (call, _) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    call.wait_packets(5, WAIT).await;
    let started = std::time::Instant::now();
    let shutdown = tokio::spawn(server.shutdown());
    // The BYE comes; while we hold our answer, a new call is refused.
    let cid = call.call_id.clone();
    let bye = client
        .wait_for(WAIT, |m| {
            m.method() == Some("BYE") && m.header("call-id") == Some(cid.as_str())
        })
        .await;
    assert!(bye.is_some(), "active call gets a BYE");
    let other = SipClient::new(sip).await;
    let (_, resp) = Call::place(Arc::new(other), "soporte", "0").await;
    assert_eq!(resp.status(), Some(503));
    assert!(
        resp.header("retry-after").is_some(),
        "503 carries Retry-After"
    );
    shutdown.await.expect("shutdown task");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown within 5 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_overloaded_new_calls_get_503_but_calls_up_and_agents_codes_go_on() {
    let server = start_server().await;
    let sip = server.sip_addr;
    let client = Arc::new(SipClient::new(sip).await);
    let (mut up, _) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    up.wait_packets(5, WAIT).await;
    server.force_overload(true);
    wait_metric(&server, "centralita_overloaded", 1.0).await;
    // A new caller is refused, told when to retry, and counted.
    let (_, resp) = Call::place(Arc::new(SipClient::new(sip).await), "soporte", "0").await;
    assert_eq!(resp.status(), Some(503));
    assert!(
        resp.header("retry-after").is_some(),
        "503 carries Retry-After"
    );
    assert_eq!(
        scrape(&server, "centralita_calls_total{outcome=\"unavailable\"}").await,
        1.0
    );
    // The call already up keeps its prompt; an agent's feature code is taken.
    let before = up.packets().len();
    up.wait_packets(before + 10, WAIT).await;
    let desk = Arc::new(SipClient::new(sip).await);
    let (_, ok) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert_eq!(
        ok.status(),
        Some(200),
        "feature codes are never refused for load"
    );
    // Load gone: calls are taken again.
    server.force_overload(false);
    wait_until(WAIT, "no longer overloaded", || {
        metric(&server.metrics.render(), "centralita_overloaded") == 0.0
    })
    .await;
    let (_, resp) = Call::place(Arc::new(SipClient::new(sip).await), "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200));
    assert_eq!(up.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_are_served() {
    let server = start_server().await;
    let (status, body) = http_get(server.http_addr, "/health").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\""), "{body}");
    let (status, body) = http_get(server.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    for family in [
        "centralita_calls_total",
        "centralita_calls_active",
        "centralita_dtmf_digits_total",
        "centralita_rtp_send_lateness_seconds",
    ] {
        assert!(body.contains(family), "{family} exported");
    }
    let (status, body) = http_get(server.http_addr, "/api/v1/calls/abc").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"error\""), "JSON error: {body}");
    let (status, _) = http_get(server.http_addr, "/api/v1/calls/999").await;
    assert_eq!(status, 404);
    let (status, body) = http_get(server.http_addr, "/api/v1/calls").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"calls\""), "{body}");
    let (status, body) = http_get(server.http_addr, "/nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""), "JSON error: {body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_body_gets_415_and_an_accept_without_sdp_gets_406() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let call = Call::new(Arc::clone(&client), "soporte").await;
    let offer = sdp_offer(call.rtp.local_addr().expect("addr"), "0");
    let inv = String::from_utf8_lossy(&call.invite_bytes(Some(&offer), "z9hG4bK415a")).replace(
        "Content-Type: application/sdp",
        "Content-Type: application/unknownformat",
    );
    let resp = client.transact(inv.as_bytes()).await.expect("answer");
    assert_eq!(resp.status(), Some(415));
    assert_eq!(resp.header("accept"), Some("application/sdp"));
    let call = Call::new(Arc::clone(&client), "soporte").await;
    let inv = String::from_utf8_lossy(&call.invite_bytes(Some(&offer), "z9hG4bK406a")).replace(
        "Content-Type: application/sdp",
        "Accept: text/nobodyKnowsThis\r\nContent-Type: application/sdp",
    );
    let resp = client.transact(inv.as_bytes()).await.expect("answer");
    assert_eq!(resp.status(), Some(406));
    assert_eq!(resp.header("accept"), Some("application/sdp"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_moves_the_prompt_to_the_new_address() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, _) = Call::place(client, "soporte", "0 101").await;
    call.wait_packets(5, WAIT).await;
    let moved = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let offer = sdp_offer(moved.local_addr().expect("addr"), "0 101");
    let resp = call
        .reinvite(&offer)
        .await
        .expect("answer to the re-INVITE");
    assert_eq!(resp.status(), Some(200));
    let answer = String::from_utf8_lossy(&resp.body).into_owned();
    assert!(answer.contains("m=audio"), "{answer}");
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(WAIT, moved.recv_from(&mut buf))
        .await
        .expect("RTP reaches the new address")
        .expect("recv");
    assert!(parse_rtp(&buf[..n]).is_some_and(|p| p.pt == 0));
    // A re-offer of a codec other than the call's is refused, the call goes on.
    let resp = call
        .reinvite(&sdp_offer(moved.local_addr().expect("addr"), "8"))
        .await
        .expect("answer");
    assert_eq!(resp.status(), Some(488));
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_200_is_retransmitted_until_the_ack() {
    let opts = ServerOptions {
        sip_t1: Some(Duration::from_millis(100)),
    };
    let server = start_server_with(opts).await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let mut call = Call::new(Arc::clone(&client), "soporte").await;
    let offer = sdp_offer(call.rtp.local_addr().expect("addr"), "0 101");
    client
        .send(&call.invite_bytes(Some(&offer), "z9hG4bKrtx2xx"))
        .await;
    let cid = call.call_id.clone();
    let is_ok = |m: &Msg| m.status() == Some(200) && m.header("call-id") == Some(cid.as_str());
    let first = client.wait_for(WAIT, is_ok).await.expect("200 OK");
    let again = client.wait_for(Duration::from_secs(2), is_ok).await;
    assert!(
        again.is_some(),
        "without an ACK the 200 is sent again (T1 = 100 ms)"
    );
    call.on_answered(&first, None).await;
    // Drain a retransmission that may already be in flight, then none more.
    let _ = client.wait_for(Duration::from_millis(150), is_ok).await;
    let after = client.wait_for(Duration::from_millis(800), is_ok).await;
    assert!(after.is_none(), "the ACK stops the retransmissions");
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_never_acked_ends_the_call_after_64_t1_and_frees_its_line() {
    // T1 = 50 ms: 64·T1 is 3.2 s (RFC 3261 §13.3.1.4), well before the
    // 30 s RTP timeout that used to end such a call.
    let opts = ServerOptions {
        sip_t1: Some(Duration::from_millis(50)),
    };
    let server = start_server_with(opts).await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let call = Call::new(Arc::clone(&client), "soporte").await;
    let offer = sdp_offer(call.rtp.local_addr().expect("addr"), "0 101");
    client
        .send(&call.invite_bytes(Some(&offer), "z9hG4bKnoack"))
        .await;
    let cid = call.call_id.clone();
    let ok = client
        .wait_for(WAIT, |m| {
            m.status() == Some(200) && m.header("call-id") == Some(cid.as_str())
        })
        .await;
    assert!(ok.is_some(), "answered");
    assert_eq!(
        metric_sum(&server.metrics.render(), "centralita_lines_in_use"),
        1.0
    );
    let started = std::time::Instant::now();
    wait_until(Duration::from_secs(8), "the line is freed", || {
        metric_sum(&server.metrics.render(), "centralita_lines_in_use") == 0.0
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before 64·T1"
    );
    wait_metric(&server, "centralita_calls_total{outcome=\"timeout\"}", 1.0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_sends_no_rtp_is_hung_up() {
    let server = start_server_tuned(|c| c.rtp_timeout_secs = 5, ServerOptions::default()).await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (call, _) = Call::place(client, "soporte", "0 101").await;
    assert!(
        call.expect_bye(Duration::from_secs(10)).await,
        "BYE after 5 s without RTP"
    );
    wait_metric(&server, "centralita_calls_total{outcome=\"timeout\"}", 1.0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_from_the_signalling_host_is_latched_and_other_sources_ignored() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    // The SDP names 127.0.0.2 (an address this caller never sends from, as
    // a phone behind NAT would), while its RTP comes from 127.0.0.1.
    let mut call = Call::new(Arc::clone(&client), "soporte").await;
    let rtp_port = call.rtp.local_addr().expect("addr").port();
    let offer = sdp_offer(
        format!("127.0.0.2:{rtp_port}").parse().expect("addr"),
        "0 101",
    );
    let resp = client
        .transact(&call.invite_bytes(Some(&offer), "z9hG4bKlatch1"))
        .await
        .expect("answer");
    assert_eq!(resp.status(), Some(200));
    call.on_answered(&resp, None).await;
    let m = mark(&call);
    call.send_rfc4733('2').await;
    wait_menu(&server, "principal", 1.0).await;
    assert_eq!(
        scrape(&server, "centralita_rtp_peers_latched_total").await,
        1.0
    );
    let corr = heard_after(&call, m, "en", "main_menu").await;
    assert!(
        corr >= 0.9,
        "after latching, the prompt comes to where the RTP came from: {corr:.3}"
    );
    // A stranger on the caller's host, but not the first to send, is ignored.
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let peer = call.remote_rtp.expect("server rtp");
    let mut pkt = vec![0x80, 101, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7];
    pkt.extend_from_slice(&[1, 0x80 | 10, 0, 160]);
    for _ in 0..3 {
        stranger.send_to(&pkt, peer).await.expect("send");
    }
    wait_metric(
        &server,
        "centralita_rtp_packets_ignored_total{reason=\"wrong_source\"}",
        3.0,
    )
    .await;
    assert_eq!(
        scrape(&server, "centralita_dtmf_digits_total{source=\"rfc4733\"}").await,
        1.0,
        "only the caller's digit"
    );
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_caller_hears_its_position_and_wait_and_abandons_at_once() {
    let server = start_server().await;
    let mut call = caller_in_main_menu(&server, '1').await;
    let m = mark(&call);
    call.send_rfc4733('1').await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"software\"}", 1.0).await;
    // transfer_software, then "all technicians are busy", then
    // "your position is" "one", "the estimated wait is" ...
    let intro =
        prompt_samples("es", "transfer_software").len() + prompt_samples("es", "queue_wait").len();
    let position = prompt_samples("es", "position_is");
    let one = prompt_samples("es", "numbers/1");
    let frames = (intro + position.len() + one.len()) / 160 + 60;
    call.wait_packets(m + frames, Duration::from_secs(40)).await;
    let audio = decode(&call.packets()[m..], call.pt);
    let corr = best_correlation(&audio, &position, frames);
    assert!(corr >= 0.9, "position_is correlation {corr:.3}");
    let corr = best_correlation(&audio, &one, frames);
    assert!(corr >= 0.9, "\"uno\" (position 1) correlation {corr:.3}");
    assert_eq!(call.bye().await, Some(200));
    wait_metric(
        &server,
        "centralita_queue_calls_total{outcome=\"abandoned\",queue=\"software\"}",
        1.0,
    )
    .await;
    wait_until(WAIT, "queue empty", || {
        metric(
            &server.metrics.render(),
            "centralita_queue_waiting{queue=\"software\"}",
        ) == 0.0
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_only_reserved_lines_are_free_a_new_call_gets_486() {
    let server = start_server_tuned(
        |c| {
            c.acd.lines = 3;
            c.acd.reserve = 2;
        },
        ServerOptions::default(),
    )
    .await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut first, resp) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200), "one usable line");
    let (_, resp) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(486), "the other two lines are reserved");
    assert_eq!(
        scrape(&server, "centralita_calls_total{outcome=\"blocked\"}").await,
        1.0
    );
    assert_eq!(
        metric_sum(&server.metrics.render(), "centralita_lines_in_use"),
        1.0
    );
    assert_eq!(first.bye().await, Some(200));
    wait_until(WAIT, "line freed", || {
        metric_sum(&server.metrics.render(), "centralita_lines_in_use") == 0.0
    })
    .await;
    let (mut again, resp) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200), "the freed line is used again");
    assert_eq!(again.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_9_while_queued_keeps_the_place_and_frees_the_line() {
    let server = start_server().await;
    let mut call = caller_in_main_menu(&server, '1').await;
    call.send_rfc4733('2').await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"hardware\"}", 1.0).await;
    let m = mark(&call);
    call.send_rfc4733('9').await;
    assert!(
        call.expect_bye(Duration::from_secs(30)).await,
        "the line is freed after the confirmation"
    );
    let corr = best_correlation(
        &decode(&call.packets()[m..], call.pt),
        &prompt_samples("es", "callback_confirm"),
        60,
    );
    assert!(corr >= 0.9, "callback_confirm correlation {corr:.3}");
    wait_metric(
        &server,
        "centralita_queue_callbacks_pending{queue=\"hardware\"}",
        1.0,
    )
    .await;
    assert_eq!(
        scrape(&server, "centralita_queue_waiting{queue=\"hardware\"}").await,
        0.0
    );
    wait_until(WAIT, "the line is free", || {
        metric_sum(&server.metrics.render(), "centralita_lines_in_use") == 0.0
    })
    .await;
    server.shutdown().await;
}
