//! The ACD end to end: a caller chooses software in the IVR, the ACD offers
//! the call to the ready agent with that skill, the agent's phone (our own
//! test softphone, registered with digest auth) rings and answers, and the
//! two hear each other through the bridge.

mod common;

use common::phone::AgentPhone;
use common::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_software_caller_is_bridged_to_the_ready_software_agent() {
    let server = start_server().await;
    // Ana is registered and ready; a caller chooses Spanish, then software;
    // Ana's phone rings with the ticket, answers, and she is on the call.
    let (phone, mut caller) = ready_agent_and_caller(&server, common::phone::Answer::Auto).await;
    let invite = phone.requests("INVITE").remove(0);
    assert!(
        invite.header("x-centralita-ticket").is_some(),
        "the INVITE names the ticket"
    );
    let info = invite.header("call-info").unwrap_or_default().to_string();
    assert!(info.contains("http://"), "Call-Info links the call: {info}");
    let path = info
        .split(&server.http_addr.to_string())
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or_default()
        .to_string();
    let ticket = invite
        .header("x-centralita-ticket")
        .unwrap_or_default()
        .to_string();
    let mut status = None;
    for _ in 0..200 {
        status = server.agent_status("ana").await.map(|s| s.as_str());
        if status == Some("on_call") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, Some("on_call"));
    // The link shows the agent the caller's record: ticket, queue, state.
    let (code, body) = http_get(server.http_addr, &path).await;
    assert_eq!(code, 200, "{info} -> {path}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["ticket"], ticket.as_str());
    assert_eq!(json["queue"], "software");
    assert_eq!(json["agent"], "ana");
    assert_eq!(json["state"], "on_call");
    // The supervisors' view: the queue's KPIs in Prometheus.
    let text = server.metrics.render();
    for (name, want) in [
        (
            "centralita_queue_agents{queue=\"software\",state=\"on_call\"}",
            1.0,
        ),
        (
            "centralita_queue_answered_in_window{queue=\"software\"}",
            1.0,
        ),
        (
            "centralita_queue_service_level_ratio{queue=\"software\"}",
            1.0,
        ),
        (
            "centralita_queue_abandoned_in_window{queue=\"software\"}",
            0.0,
        ),
    ] {
        assert_eq!(metric(&text, name), want, "{name}");
    }

    // The caller's audio reaches the agent, and the agent's the caller.
    let caller_tone = tone(440.0, 25);
    caller.send_audio(&caller_tone).await;
    wait_until(WAIT, "the agent hears the caller", || {
        phone
            .rtp_packets()
            .iter()
            .any(|p| p.payload == caller_tone[10])
    })
    .await;
    let agent_tone = tone(1000.0, 25);
    let before = caller.packets().len();
    phone.send_audio(&agent_tone).await;
    let rec = Arc::clone(&caller.received);
    wait_until(WAIT, "the caller hears the agent", || {
        rec.lock()
            .map(|r| r[before..].iter().any(|p| p.payload == agent_tone[10]))
            .unwrap_or(false)
    })
    .await;
    let (to_agent, to_caller) = relayed(&server);
    assert!(
        to_agent >= 20.0 && to_caller >= 20.0,
        "{to_agent} / {to_caller}"
    );

    // The caller hangs up: the agent's phone gets a BYE and Ana wraps up.
    assert_eq!(caller.bye().await, Some(200));
    wait_until(WAIT, "BYE to the agent", || {
        !phone.requests("BYE").is_empty()
    })
    .await;
    let mut status = None;
    for _ in 0..200 {
        status = server.agent_status("ana").await.map(|s| s.as_str());
        if status == Some("wrap_up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        status,
        Some("wrap_up"),
        "wrap-up after the call, never skipped"
    );
    wait_metric(
        &server,
        "centralita_queue_calls_total{outcome=\"served\",queue=\"software\"}",
        1.0,
    )
    .await;
    server.shutdown().await;
}

/// Ana registered and ready; a caller waiting in the software queue.
async fn ready_agent_and_caller(
    server: &centralita::server::Server,
    answer: common::phone::Answer,
) -> (AgentPhone, Call) {
    let phone = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    phone.set_answer(answer);
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut caller, _) = Call::place(client, "soporte", "0 101").await;
    caller.wait_packets(5, WAIT).await;
    caller.send_rfc4733('1').await;
    wait_metric(
        server,
        "centralita_ivr_menu_entries_total{menu=\"principal\"}",
        1.0,
    )
    .await;
    caller.send_rfc4733('1').await;
    wait_until(
        Duration::from_secs(10),
        "INVITE to the agent's phone",
        || !phone.requests("INVITE").is_empty(),
    )
    .await;
    (phone, caller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_agent_is_paused_and_the_caller_keeps_its_place() {
    let server = start_server().await;
    let (_phone, mut caller) = ready_agent_and_caller(&server, common::phone::Answer::Busy).await;
    wait_status(&server, "ana", "paused").await;
    assert_eq!(
        scrape(&server, "centralita_queue_waiting{queue=\"software\"}").await,
        1.0,
        "the caller is still queued"
    );
    assert_eq!(caller.bye().await, Some(200));
    wait_metric(
        &server,
        "centralita_queue_calls_total{outcome=\"abandoned\",queue=\"software\"}",
        1.0,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hanging_up_while_the_agent_rings_cancels_the_agent_leg() {
    let server = start_server().await;
    let (phone, mut caller) = ready_agent_and_caller(&server, common::phone::Answer::Never).await;
    wait_status(&server, "ana", "offered").await;
    assert_eq!(caller.bye().await, Some(200));
    wait_until(WAIT, "CANCEL to the ringing phone", || {
        !phone.requests("CANCEL").is_empty()
    })
    .await;
    wait_status(&server, "ana", "available").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_phone_unregisters_mid_offer_loses_the_call_but_the_caller_keeps_its_place()
{
    let server = start_server().await;
    let (phone, caller) = ready_agent_and_caller(&server, common::phone::Answer::Never).await;
    wait_status(&server, "ana", "offered").await;
    // The phone goes away while ringing (log off everywhere): the ringing
    // leg is cancelled, Ana is logged out, the caller is back in the queue.
    let client = SipClient::new(server.sip_addr).await;
    let gone = client.unregister_all("ana", "ana-demo-1234").await;
    assert_eq!(gone.status(), Some(200));
    wait_until(WAIT, "CANCEL to the unregistered phone", || {
        !phone.requests("CANCEL").is_empty()
    })
    .await;
    wait_status(&server, "ana", "logged_out").await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"software\"}", 1.0).await;
    // Ana comes back on another phone: the same caller rings there.
    let second = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_until(
        Duration::from_secs(10),
        "the caller rings on the new phone",
        || !second.requests("INVITE").is_empty(),
    )
    .await;
    wait_status(&server, "ana", "on_call").await;
    assert_eq!(
        phone.requests("INVITE").len(),
        1,
        "the old phone is not rung again"
    );
    drop(caller);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_timeout_cancels_the_offer_and_pauses_the_agent() {
    let server = start_server_tuned(
        |c| {
            if let Some(q) = c.queues.get_mut("software") {
                q.ring_timeout_secs = 3;
            }
        },
        centralita::server::ServerOptions::default(),
    )
    .await;
    let (phone, mut caller) = ready_agent_and_caller(&server, common::phone::Answer::Never).await;
    wait_status(&server, "ana", "offered").await;
    wait_until(
        Duration::from_secs(8),
        "CANCEL after the ring timeout",
        || !phone.requests("CANCEL").is_empty(),
    )
    .await;
    wait_status(&server, "ana", "paused").await;
    assert_eq!(
        scrape(&server, "centralita_queue_waiting{queue=\"software\"}").await,
        1.0,
        "back in the queue, never lost"
    );
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_hanging_up_ends_the_call_for_the_caller_and_starts_wrap_up() {
    let server = start_server().await;
    let (phone, caller) = ready_agent_and_caller(&server, common::phone::Answer::Auto).await;
    wait_status(&server, "ana", "on_call").await;
    phone.hang_up().await;
    assert!(
        caller.expect_bye(Duration::from_secs(5)).await,
        "the caller gets a BYE"
    );
    wait_status(&server, "ana", "wrap_up").await;
    wait_metric(
        &server,
        "centralita_calls_total{outcome=\"agent_hangup\"}",
        1.0,
    )
    .await;
    wait_until(WAIT, "no dialog left behind", || server.sip_dialogs() == 0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_call_whose_audio_stops_is_ended_as_dead() {
    let server = start_server_tuned(
        |c| c.rtp_timeout_secs = 5,
        centralita::server::ServerOptions::default(),
    )
    .await;
    let (_phone, caller) = ready_agent_and_caller(&server, common::phone::Answer::Auto).await;
    wait_status(&server, "ana", "on_call").await;
    // Neither side sends any more audio: after 5 s the call is dead (the
    // agent's phone may be found silent first: the caller, requeued, is
    // silent too).
    assert!(
        caller.expect_bye(Duration::from_secs(15)).await,
        "the caller gets a BYE"
    );
    wait_metric(&server, "centralita_calls_total{outcome=\"timeout\"}", 1.0).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_agents_phone_vanishes_is_put_through_to_the_next_agent() {
    let server = start_server_tuned(
        |c| {
            c.rtp_timeout_secs = 3;
            // Carmen takes first-line software calls here.
            if let Some(carmen) = c.agents.get_mut("carmen") {
                carmen.level = 1;
            }
        },
        centralita::server::ServerOptions::default(),
    )
    .await;
    let (ana, mut caller) = ready_agent_and_caller(&server, common::phone::Answer::Auto).await;
    wait_status(&server, "ana", "on_call").await;
    // Carmen (software 9, first line here) gets ready while Ana talks.
    let carmen = AgentPhone::register(server.sip_addr, "carmen", "carmen-demo-1234").await;
    carmen.set_answer(common::phone::Answer::Auto);
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "carmen", "carmen-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_status(&server, "carmen", "available").await;
    // The caller talks on; Ana's phone sends nothing (it vanished).
    let m = caller.packets().len();
    let started = std::time::Instant::now();
    let carmen_talks = async {
        wait_until(Duration::from_secs(8), "Carmen's phone rings", || {
            !carmen.requests("INVITE").is_empty()
        })
        .await;
        wait_status(&server, "carmen", "on_call").await;
        carmen.send_audio(&tone(600.0, 100)).await;
    };
    let speech = tone(440.0, 300);
    tokio::join!(caller.send_audio(&speech), carmen_talks);
    assert!(
        !ana.requests("BYE").is_empty(),
        "Ana's dead leg was hung up"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        server.agent_status("carmen").await.map(|s| s.as_str()),
        Some("on_call")
    );
    // Ana is paused (no more calls to a dead phone) until she is back.
    let ana_state = server.agent_status("ana").await.map(|s| s.as_str());
    assert_eq!(ana_state, Some("paused"));
    // The caller heard Carmen (her phone's tone), and the logbook says why.
    assert!(caller.packets().len() > m, "audio reached the caller");
    let mut logbook = String::new();
    for _ in 0..200 {
        logbook = http_get(server.http_addr, "/api/v1/tickets/100001").await.1;
        if logbook.contains("stopped sending audio") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        logbook.contains("The agent's phone stopped sending audio (lost); the caller is back at the head of software."),
        "{logbook}"
    );
    assert_eq!(
        scrape(&server, "centralita_calls_total{outcome=\"timeout\"}").await,
        0.0,
        "the call goes on"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_transfers_the_caller_to_another_queue_by_refer() {
    let server = start_server().await;
    let (phone, caller) = ready_agent_and_caller(&server, common::phone::Answer::Auto).await;
    wait_status(&server, "ana", "on_call").await;
    let m = caller.packets().len();
    phone.refer("hardware").await;
    // 202, a NOTIFY with the outcome, then our BYE to the agent's phone.
    wait_until(WAIT, "NOTIFY to the transferring phone", || {
        !phone.requests("NOTIFY").is_empty()
    })
    .await;
    let notify = phone.requests("NOTIFY").remove(0);
    assert!(
        String::from_utf8_lossy(&notify.body).contains("200"),
        "sipfrag says 200"
    );
    wait_until(WAIT, "BYE to the agent", || {
        !phone.requests("BYE").is_empty()
    })
    .await;
    wait_status(&server, "ana", "wrap_up").await;
    // The caller is in the hardware queue, hearing "transferring", never silence.
    wait_metric(&server, "centralita_queue_waiting{queue=\"hardware\"}", 1.0).await;
    let corr = heard_after(&caller, m, "es", "transferring").await;
    assert!(corr >= 0.9, "transferring prompt correlation {corr:.3}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_phone_of_the_agent_rings_and_the_first_to_answer_wins() {
    let server = start_server().await;
    let desk_phone = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    desk_phone.set_answer(common::phone::Answer::Never);
    let (mobile, caller) = ready_agent_and_caller(&server, common::phone::Answer::Auto).await;
    wait_status(&server, "ana", "on_call").await;
    assert_eq!(
        desk_phone.requests("INVITE").len(),
        1,
        "the desk phone rang too"
    );
    assert_eq!(mobile.requests("INVITE").len(), 1);
    wait_until(WAIT, "CANCEL to the phone that did not answer", || {
        !desk_phone.requests("CANCEL").is_empty()
    })
    .await;
    assert!(
        mobile.requests("CANCEL").is_empty(),
        "the answering phone keeps the call"
    );
    drop(caller);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_keeps_the_place_then_rings_the_agent_and_then_the_customer() {
    let server = start_server().await;
    let phone = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    // The caller asks to be called back (9) and is hung up on.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    ask_for_callback(&server, &client).await;
    // Ana gets ready: her phone rings first, with the ticket, and answers.
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_until(
        Duration::from_secs(10),
        "the agent is rung for the callback",
        || !phone.requests("INVITE").is_empty(),
    )
    .await;
    let to_agent = phone.requests("INVITE").remove(0);
    assert_eq!(to_agent.header("x-centralita-callback"), Some("yes"));
    // Then the customer, at the address its call came from.
    let invite = client
        .wait_for(Duration::from_secs(10), |m| m.method() == Some("INVITE"))
        .await
        .expect("the customer is called back");
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("rtp");
    let sdp = sdp_offer(rtp.local_addr().expect("addr"), "0 101");
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for (k, v) in &invite.headers {
        match k.as_str() {
            "via" | "from" | "call-id" | "cseq" => ok.push_str(&format!("{k}: {v}\r\n")),
            "to" => ok.push_str(&format!("to: {v};tag=customer1\r\n")),
            _ => {}
        }
    }
    ok.push_str(&format!(
        "Contact: <sip:caller@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        client.local,
        sdp.len()
    ));
    client.send(ok.as_bytes()).await;
    // Bridged: the customer's audio reaches Ana.
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    let ours = sdp_media_addr(&offer).expect("our RTP address");
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 5];
    packet.extend(std::iter::repeat_n(0x55u8, 160));
    for _ in 0..20 {
        rtp.send_to(&packet, ours).await.expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until(WAIT, "the agent hears the customer", || {
        phone
            .rtp_packets()
            .iter()
            .any(|p| p.payload.iter().all(|b| *b == 0x55))
    })
    .await;
    wait_status(&server, "ana", "on_call").await;
    // The customer hangs up: the agent's leg ends too; the callback is counted.
    let contact = invite.header("contact").unwrap_or_default();
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default();
    let bye = format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKcbbye;rport\r\nMax-Forwards: 70\r\nFrom: {to};tag=customer1\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        me = client.local,
        to = invite.header("to").unwrap_or_default(),
        from = invite.header("from").unwrap_or_default(),
        cid = invite.header("call-id").unwrap_or_default(),
    );
    client.send(bye.as_bytes()).await;
    wait_until(WAIT, "BYE to the agent", || {
        !phone.requests("BYE").is_empty()
    })
    .await;
    wait_metric(
        &server,
        "centralita_queue_calls_total{outcome=\"called_back\",queue=\"general\"}",
        1.0,
    )
    .await;
    wait_status(&server, "ana", "wrap_up").await;
    // The ticket has both calls: the caller's, and the callback's.
    assert_eq!(to_agent.header("x-centralita-ticket"), Some("100001"));
    let store = server.store_options().path.clone();
    let mut ticket = None;
    wait_until(WAIT, "the callback's end in the ticket", || {
        ticket = centralita::tickets::sqlite::Reader::open(&store)
            .ok()
            .and_then(|r| {
                r.show(centralita::tickets::TicketNumber::FIRST)
                    .ok()
                    .flatten()
            });
        ticket
            .as_ref()
            .is_some_and(|t| t.calls.len() == 2 && t.calls[1].outcome.is_some())
    })
    .await;
    let t = ticket.expect("ticket");
    use centralita::tickets::CallOutcome as Ended;
    assert_eq!(t.calls[0].outcome, Some(Ended::CallbackRequested));
    assert_eq!(t.calls[1].outcome, Some(Ended::CallbackDone));
    assert_eq!(t.calls[1].agent.as_deref(), Some("ana"));
    let texts: Vec<&str> = t.logbook.iter().map(|e| e.text.as_str()).collect();
    for words in [
        "The caller asked to be called back; its place in general is kept.",
        "Calling the customer back: ringing ana first.",
        "ana answered; calling the customer.",
        "The customer answered: ana and the customer talk.",
        "The callback ended.",
    ] {
        assert!(texts.contains(&words), "{words} not in {texts:?}");
    }
    server.shutdown().await;
}

/// The first caller of the test, on `client`, chooses Spanish, then 9 (a
/// callback): it hears the confirmation and is hung up on, its place kept.
async fn ask_for_callback(server: &centralita::server::Server, client: &Arc<SipClient>) {
    let (mut caller, _) = Call::place(Arc::clone(client), "soporte", "0 101").await;
    caller.wait_packets(5, WAIT).await;
    caller.send_rfc4733('1').await;
    wait_metric(
        server,
        "centralita_ivr_menu_entries_total{menu=\"principal\"}",
        1.0,
    )
    .await;
    caller.send_rfc4733('9').await;
    assert!(
        caller.expect_bye(Duration::from_secs(30)).await,
        "the line is freed after the confirmation"
    );
}

/// Answer an INVITE the test client received: `status` (e.g. "486 Busy
/// Here"), with `sdp` when given.
async fn respond(client: &SipClient, invite: &Msg, status: &str, sdp: Option<&str>) {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for (k, v) in &invite.headers {
        match k.as_str() {
            "via" | "from" | "call-id" | "cseq" => r.push_str(&format!("{k}: {v}\r\n")),
            "to" => r.push_str(&format!("to: {v};tag=customer1\r\n")),
            _ => {}
        }
    }
    let body = sdp.unwrap_or_default();
    if sdp.is_some() {
        r.push_str("Content-Type: application/sdp\r\n");
    }
    r.push_str(&format!(
        "Contact: <sip:caller@{}>\r\nContent-Length: {}\r\n\r\n{body}",
        client.local,
        body.len()
    ));
    client.send(r.as_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_callback_is_retried_then_given_up_and_the_agent_is_not_stuck() {
    let server = start_server_tuned(
        |c| {
            c.acd.callback_retries = 1;
            c.acd.callback_retry_secs = 1;
        },
        centralita::server::ServerOptions::default(),
    )
    .await;
    let phone = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    ask_for_callback(&server, &client).await;
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    // Two attempts: each rings Ana first, then the customer, who is busy.
    let mut seen: Vec<String> = Vec::new();
    for attempt in 1..=2 {
        let invite = client
            .wait_for(Duration::from_secs(10), |m| {
                m.method() == Some("INVITE")
                    && !seen.iter().any(|c| m.header("call-id") == Some(c.as_str()))
            })
            .await
            .unwrap_or_else(|| panic!("callback attempt {attempt} reaches the customer"));
        assert_eq!(phone.requests("INVITE").len(), attempt, "Ana rang first");
        seen.push(invite.header("call-id").unwrap_or_default().to_string());
        respond(&client, &invite, "486 Busy Here", None).await;
        wait_until(WAIT, "BYE to Ana's leg after the customer refused", || {
            phone.requests("BYE").len() >= attempt
        })
        .await;
    }
    wait_metric(
        &server,
        "centralita_queue_calls_total{outcome=\"callback_gave_up\",queue=\"general\"}",
        1.0,
    )
    .await;
    assert_eq!(
        scrape(
            &server,
            "centralita_queue_callbacks_pending{queue=\"general\"}"
        )
        .await,
        0.0
    );
    // No third attempt, and Ana is free for the next caller.
    wait_status(&server, "ana", "available").await;
    assert_eq!(phone.requests("INVITE").len(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_callback_waits_while_only_reserved_lines_are_free() {
    // Three lines, one reserved: two usable.
    let server = start_server_tuned(
        |c| {
            c.acd.lines = 3;
            c.acd.reserve = 1;
        },
        centralita::server::ServerOptions::default(),
    )
    .await;
    let phone = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    // A caller asks for a callback and is hung up on (its line is freed).
    ask_for_callback(&server, &Arc::new(SipClient::new(server.sip_addr).await)).await;
    // Two callers listen to the IVR: both usable lines are taken.
    let (first, _) = Call::place(
        Arc::new(SipClient::new(server.sip_addr).await),
        "soporte",
        "0 101",
    )
    .await;
    let (second, _) = Call::place(
        Arc::new(SipClient::new(server.sip_addr).await),
        "soporte",
        "0 101",
    )
    .await;
    wait_until(WAIT, "both callers hold a line", || {
        metric_sum(&server.metrics.render(), "centralita_lines_in_use") >= 2.0
    })
    .await;
    // Ana gets ready: the callback is due but has no line, so she is not rung.
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_status(&server, "ana", "available").await;
    assert!(phone.requests("INVITE").is_empty(), "no line: no callback");
    assert_eq!(
        scrape(
            &server,
            "centralita_queue_callbacks_pending{queue=\"general\"}"
        )
        .await,
        1.0
    );
    // One of them hangs up: a line is free and the callback goes ahead.
    let mut first = first;
    assert_eq!(first.bye().await, Some(200));
    wait_until(
        Duration::from_secs(10),
        "the agent is rung for the callback",
        || !phone.requests("INVITE").is_empty(),
    )
    .await;
    drop(second);
    server.shutdown().await;
}
