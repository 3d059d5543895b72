//! Consultation (attended transfer), end to end with the test phones: a
//! level-1 agent holds its caller, calls a level-2 colleague from the same
//! phone and hands the caller over with the phone's attended transfer (a
//! REFER whose `Replaces` names the consultation call); the colleague who
//! does not answer or declines leaves the caller with its agent; and the
//! same from the keypad for phones without a transfer key.

mod common;

use common::phone::{caller_hears, caller_put_through, AgentPhone, Answer, PHONE_SSRC};
use common::*;
use std::sync::Arc;
use std::time::Duration;

/// The phone's SDP at its RTP port with `direction`.
fn phone_sdp(phone: &AgentPhone, direction: &str) -> String {
    let port = phone.rtp.local_addr().expect("addr").port();
    format!(
        "v=0\r\no=phone 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

/// Ana's phone places its consultation call to `dialed` (digest
/// authenticated as Ana); the final response.
async fn ana_calls(server: &centralita::server::Server, dialed: &str) -> (Call, Msg) {
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    Call::place_as_agent(client, dialed, "ana", "ana-demo-1234").await
}

/// `phone` hears `frames` of µ-law `byte` after packet `mark`.
fn phone_heard(phone: &AgentPhone, mark: usize, byte: u8) -> bool {
    phone
        .rtp_packets()
        .get(mark..)
        .unwrap_or_default()
        .iter()
        .any(|p| p.payload.len() == 160 && p.payload.iter().all(|b| *b == byte))
}

fn consultations(server: &centralita::server::Server, to: &str, result: &str) -> f64 {
    metric(
        &server.metrics.render(),
        &format!("centralita_consultations_total{{result=\"{result}\",to=\"{to}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_1_agent_consults_a_level_2_colleague_and_hands_the_caller_over_by_refer_with_replaces(
) {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let carmen = AgentPhone::ready(&server, "carmen").await;
    // The software queue is level 1: the caller goes to Ana.
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let ticket = ana.requests("INVITE")[0]
        .header("x-centralita-ticket")
        .map(str::to_string);
    // Ana's phone holds the caller, who hears the hold music.
    let mark = caller.packets().len();
    let held = ana.reinvite(&phone_sdp(&ana, "sendonly")).await;
    assert_eq!(held.and_then(|m| m.status()), Some(200));
    // Then calls Carmen's extension from the same phone.
    let (mut consult, resp) = ana_calls(&server, "303").await;
    assert_eq!(resp.status(), Some(200), "Carmen answered the consultation");
    let invite = carmen
        .requests("INVITE")
        .pop()
        .expect("Carmen's phone rang");
    assert_eq!(invite.header("x-centralita-consultation"), Some("ana"));
    assert_eq!(
        invite.header("x-centralita-ticket").map(str::to_string),
        ticket,
        "the caller's ticket pops on Carmen's desk"
    );
    wait_status(&server, "carmen", "on_call").await;
    let corr = heard_after(&caller, mark, "music", "hold").await;
    assert!(corr >= 0.9, "the caller hears the hold music: {corr:.3}");
    // Ana and Carmen hear each other; the caller hears neither.
    let carmen_mark = carmen.rtp_packets().len();
    consult.send_audio(&vec![vec![0x33u8; 160]; 25]).await;
    wait_until(WAIT, "Carmen hears Ana", || {
        phone_heard(&carmen, carmen_mark, 0x33)
    })
    .await;
    let heard = consult.packets().len();
    carmen.send_audio(&vec![vec![0x2au8; 160]; 25]).await;
    wait_until(WAIT, "Ana hears Carmen", || {
        consult.packets()[heard..]
            .iter()
            .any(|p| p.ssrc == PHONE_SSRC)
    })
    .await;
    assert!(
        !caller.packets().iter().any(|p| p.ssrc == PHONE_SSRC),
        "the caller heard nothing of the consultation"
    );
    // Ana's phone hands the caller over: REFER with Replaces.
    let refer = ana
        .refer_replaces(
            "303",
            &consult.call_id,
            &consult.to_header,
            &consult.from_tag,
        )
        .await;
    assert_eq!(refer.and_then(|m| m.status()), Some(202));
    wait_until(WAIT, "NOTIFY 200 and BYE to Ana's call", || {
        ana.requests("NOTIFY")
            .iter()
            .any(|m| String::from_utf8_lossy(&m.body).contains("SIP/2.0 200"))
            && !ana.requests("BYE").is_empty()
    })
    .await;
    assert!(consult.expect_bye(WAIT).await, "the consultation call ends");
    wait_status(&server, "ana", "wrap_up").await;
    assert_eq!(
        server.agent_status("carmen").await.map(|s| s.as_str()),
        Some("on_call")
    );
    // Caller and Carmen hear each other.
    caller_hears(&caller, &carmen, 0x2a, "the caller hears Carmen").await;
    let carmen_mark = carmen.rtp_packets().len();
    caller.send_audio(&vec![vec![0x55u8; 160]; 25]).await;
    wait_until(WAIT, "Carmen hears the caller", || {
        phone_heard(&carmen, carmen_mark, 0x55)
    })
    .await;
    assert_eq!(consultations(&server, "agent", "transferred"), 1.0);
    assert_eq!(
        metric(
            &server.metrics.render(),
            "centralita_transfers_total{how=\"refer\",result=\"done\",to=\"agent\"}"
        ),
        1.0
    );
    assert_eq!(scrape(&server, "centralita_calls_on_hold").await, 0.0);
    // The caller hangs up: Carmen's phone gets the BYE, she wraps up.
    assert_eq!(caller.bye().await, Some(200));
    wait_until(WAIT, "BYE to Carmen", || !carmen.requests("BYE").is_empty()).await;
    wait_status(&server, "carmen", "wrap_up").await;
    server.shutdown().await;
}

/// Ana holds her caller and consults Carmen, whose phone answers `answer`;
/// the consultation call's final status, then Ana resumes and the caller
/// hears her again.
async fn consultation_fails(answer: Answer, ring_secs: u32) -> (u16, centralita::server::Server) {
    let server = start_server_tuned(
        |c| {
            if let Some(q) = c.queues.get_mut("software") {
                q.ring_timeout_secs = ring_secs;
            }
        },
        Default::default(),
    )
    .await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let carmen = AgentPhone::ready(&server, "carmen").await;
    carmen.set_answer(answer);
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let held = ana.reinvite(&phone_sdp(&ana, "sendonly")).await;
    assert_eq!(held.and_then(|m| m.status()), Some(200));
    let (_consult, resp) = ana_calls(&server, "303").await;
    let status = resp.status().unwrap_or_default();
    assert!(!carmen.requests("INVITE").is_empty(), "Carmen's phone rang");
    // Nobody is stranded: Ana still has her caller, on hold.
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("on_call")
    );
    assert_eq!(scrape(&server, "centralita_calls_on_hold").await, 1.0);
    let resumed = ana.reinvite(&phone_sdp(&ana, "sendrecv")).await;
    assert_eq!(resumed.and_then(|m| m.status()), Some(200));
    caller_hears(&caller, &ana, 0x2a, "the caller hears Ana again").await;
    assert_eq!(caller.bye().await, Some(200));
    (status, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_who_does_not_answer_leaves_the_caller_with_its_agent() {
    let (status, server) = consultation_fails(Answer::Never, 2).await;
    assert_eq!(status, 480, "the consultation call is refused: no answer");
    assert_eq!(consultations(&server, "agent", "unanswered"), 1.0);
    // Carmen did not answer: paused, as for any offer she leaves ringing.
    assert_eq!(
        server.agent_status("carmen").await.map(|s| s.as_str()),
        Some("paused")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_who_declines_is_busy_for_the_agent_and_stays_ready() {
    let (status, server) = consultation_fails(Answer::Busy, 15).await;
    assert_eq!(status, 486, "the consultation call is refused: busy");
    assert_eq!(consultations(&server, "agent", "unanswered"), 1.0);
    assert_eq!(
        server.agent_status("carmen").await.map(|s| s.as_str()),
        Some("available")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_logged_out_is_refused_at_once() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let _caller = caller_put_through(&server, "201", &ana, "ana").await;
    let (_consult, resp) = ana_calls(&server, "303").await;
    assert_eq!(resp.status(), Some(480), "Carmen is logged out");
    assert_eq!(consultations(&server, "agent", "refused"), 1.0);
    // The phone did not hold first: the caller was held for the
    // consultation and is back with Ana.
    assert_eq!(scrape(&server, "centralita_calls_on_hold").await, 0.0);
    server.shutdown().await;
}

/// Ana's phone presses `keys` (RFC 4733).
async fn press(phone: &AgentPhone, keys: &str) {
    for k in keys.chars() {
        phone.send_rfc4733(k).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keypad_consults_a_queue_and_hands_the_caller_over() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let bruno = AgentPhone::ready(&server, "bruno").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    // ##7202#: consult the hardware queue, where Bruno is ready.
    press(&ana, "##7202#").await;
    wait_until(WAIT, "Bruno's phone rings", || {
        !bruno.requests("INVITE").is_empty()
    })
    .await;
    let invite = bruno.requests("INVITE").pop().expect("INVITE");
    assert_eq!(invite.header("x-centralita-consultation"), Some("ana"));
    wait_status(&server, "bruno", "on_call").await;
    wait_metric(&server, "centralita_calls_on_hold", 1.0).await;
    // Ana talks to Bruno on her own line.
    let ana_mark = ana.rtp_packets().len();
    bruno.send_audio(&vec![vec![0x2au8; 160]; 25]).await;
    wait_until(WAIT, "Ana hears Bruno", || {
        phone_heard(&ana, ana_mark, 0x2a)
    })
    .await;
    let bruno_mark = bruno.rtp_packets().len();
    ana.send_audio(&vec![vec![0x33u8; 160]; 25]).await;
    wait_until(WAIT, "Bruno hears Ana", || {
        phone_heard(&bruno, bruno_mark, 0x33)
    })
    .await;
    // ##7#: the caller goes to Bruno; Ana's call ends.
    press(&ana, "##7#").await;
    wait_until(WAIT, "BYE to Ana", || !ana.requests("BYE").is_empty()).await;
    wait_status(&server, "ana", "wrap_up").await;
    assert!(
        !bruno.rtp_packets().iter().any(|p| p.pt == 101),
        "Ana's codes never reached Bruno"
    );
    caller_hears(&caller, &bruno, 0x2a, "the caller hears Bruno").await;
    assert_eq!(consultations(&server, "queue", "transferred"), 1.0);
    assert_eq!(
        metric(
            &server.metrics.render(),
            "centralita_transfers_total{how=\"keypad\",result=\"done\",to=\"queue\"}"
        ),
        1.0
    );
    assert_eq!(caller.bye().await, Some(200));
    wait_until(WAIT, "BYE to Bruno", || !bruno.requests("BYE").is_empty()).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_keypad_consultation_tells_the_agent_and_gives_it_its_caller_back() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let mark = ana.rtp_packets().len();
    // Carmen is logged out.
    press(&ana, "##7303#").await;
    // Its first second, anywhere in the first 30 frames Ana gets.
    let mut expected = prompt_samples("es", "transfer_failed");
    expected.truncate(8000);
    let frames = expected.len() / 160 + 30;
    wait_until(Duration::from_secs(20), "Ana hears the prompt", || {
        ana.rtp_packets().len() >= mark + frames
    })
    .await;
    let corr = best_correlation(&decode(&ana.rtp_packets()[mark..], 0), &expected, 30);
    assert!(corr >= 0.9, "Ana hears that it failed: {corr:.3}");
    assert_eq!(consultations(&server, "agent", "refused"), 1.0);
    // And has her caller back.
    wait_until(WAIT, "off hold", || {
        metric(&server.metrics.render(), "centralita_calls_on_hold") == 0.0
    })
    .await;
    caller_hears(&caller, &ana, 0x2a, "the caller hears Ana again").await;
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_sends_its_refer_on_the_consultation_call_hands_over_too() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let carmen = AgentPhone::ready(&server, "carmen").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let held = ana.reinvite(&phone_sdp(&ana, "sendonly")).await;
    assert_eq!(held.and_then(|m| m.status()), Some(200));
    let (mut consult, resp) = ana_calls(&server, "303").await;
    assert_eq!(resp.status(), Some(200));
    wait_status(&server, "carmen", "on_call").await;
    // The REFER goes on the second call; its Replaces names the first.
    let first = ana.requests("INVITE")[0]
        .header("call-id")
        .unwrap_or_default()
        .replace('@', "%40");
    let refer_to = format!(
        "<sip:caller@{}?Replaces={first}%3Bto-tag%3Dphone1%3Bfrom-tag%3Dx>",
        server.sip_addr.ip()
    );
    let resp = consult.refer(&refer_to).await;
    assert_eq!(resp.and_then(|m| m.status()), Some(202));
    let notify = consult
        .expect_request("NOTIFY", WAIT)
        .await
        .expect("NOTIFY");
    assert!(String::from_utf8_lossy(&notify.body).contains("SIP/2.0 200"));
    assert!(consult.expect_bye(WAIT).await, "the second call ends");
    wait_until(WAIT, "BYE to Ana's first call", || {
        !ana.requests("BYE").is_empty()
    })
    .await;
    wait_status(&server, "ana", "wrap_up").await;
    caller_hears(&caller, &carmen, 0x2a, "the caller hears Carmen").await;
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_consults_a_queue_by_its_number_and_hands_the_caller_over() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let bruno = AgentPhone::ready(&server, "bruno").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let held = ana.reinvite(&phone_sdp(&ana, "sendonly")).await;
    assert_eq!(held.and_then(|m| m.status()), Some(200));
    // Ana's phone dials the hardware queue's number on its second line; a
    // queue number is anybody's, but from Ana's registered phone it is
    // challenged and taken as her consultation.
    let second = ana.dial("202", "ana", "ana-demo-1234").await;
    assert_eq!(
        second.status, 200,
        "the queue answers the consultation at once"
    );
    wait_until(WAIT, "Bruno's phone rings", || {
        !bruno.requests("INVITE").is_empty()
    })
    .await;
    let invite = bruno.requests("INVITE").pop().expect("INVITE");
    assert_eq!(invite.header("x-centralita-consultation"), Some("ana"));
    wait_status(&server, "bruno", "on_call").await;
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("on_call"),
        "Ana still has her caller"
    );
    let refer = ana
        .refer_replaces("202", &second.call_id, &second.to_header, &second.from_tag)
        .await;
    assert_eq!(refer.and_then(|m| m.status()), Some(202));
    wait_until(WAIT, "both of Ana's calls end", || {
        ana.requests("BYE").len() >= 2
    })
    .await;
    caller_hears(&caller, &bruno, 0x2a, "the caller hears Bruno").await;
    assert_eq!(consultations(&server, "queue", "transferred"), 1.0);
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}
