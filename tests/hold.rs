//! Hold, resume and session refreshes from the agent's phone, end to end:
//! a re-INVITE with `a=sendonly` (or the old `c=0.0.0.0`) puts the caller on
//! the hold music, `a=sendrecv` bridges them again, and a refresh that
//! changes nothing is answered with the same SDP version. The caller's own
//! hold shows on the agent's phone (our re-INVITE), and an offer from the
//! phone while ours waits is glare (491).

mod common;

use common::phone::{caller_hears, caller_put_through, AgentPhone, Answer};
use common::*;

/// The phone's SDP, at its RTP port, with `c=` `conn` and `extra` lines.
fn phone_sdp(phone: &AgentPhone, conn: &str, extra: &str) -> String {
    let port = phone.rtp.local_addr().expect("addr").port();
    format!(
        "v=0\r\no=phone 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {conn}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
    )
}

fn o_line(m: &Msg) -> String {
    String::from_utf8_lossy(&m.body)
        .lines()
        .find(|l| l.starts_with("o="))
        .unwrap_or_default()
        .to_string()
}

/// The agent holds with `conn`/`extra`: answered 200 recvonly (or
/// inactive), the caller hears the hold music, the gauge says so; then
/// sendrecv: bridged again, the caller hears the agent.
async fn hold_and_resume(conn: &str, extra: &str, answered: &str) {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let mark = caller.packets().len();
    let resp = ana
        .reinvite(&phone_sdp(&ana, conn, extra))
        .await
        .expect("an answer to the hold");
    assert_eq!(resp.status(), Some(200), "never 488 for a hold");
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    assert!(body.contains(answered), "{body}");
    wait_metric(&server, "centralita_calls_on_hold", 1.0).await;
    let corr = heard_after(&caller, mark, "music", "hold").await;
    assert!(corr >= 0.9, "the caller hears the hold music: {corr:.3}");
    // Resume: bridged both ways again.
    let resp = ana
        .reinvite(&phone_sdp(&ana, "127.0.0.1", "a=sendrecv\r\n"))
        .await
        .expect("an answer to the resume");
    assert_eq!(resp.status(), Some(200));
    assert!(String::from_utf8_lossy(&resp.body).contains("a=sendrecv"));
    assert_eq!(scrape(&server, "centralita_calls_on_hold").await, 0.0);
    caller_hears(&caller, &ana, 0x2a, "the caller hears the agent again").await;
    caller.send_audio(&vec![vec![0x55u8; 160]; 25]).await;
    wait_until(WAIT, "the agent hears the caller again", || {
        ana.rtp_packets()
            .iter()
            .any(|p| p.payload.iter().all(|b| *b == 0x55))
    })
    .await;
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_holds_with_sendonly_and_resumes() {
    hold_and_resume("127.0.0.1", "a=sendonly\r\n", "a=recvonly").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_holds_with_the_old_zero_address_form_and_resumes() {
    hold_and_resume("0.0.0.0", "", "a=recvonly").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_refreshes_on_both_legs_are_answered_with_the_same_version() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    // The agent's phone refreshes the session twice with the same SDP.
    let sdp = phone_sdp(&ana, "127.0.0.1", "a=sendrecv\r\n");
    let first = ana.reinvite(&sdp).await.expect("answer");
    let second = ana.reinvite(&sdp).await.expect("answer");
    assert_eq!((first.status(), second.status()), (Some(200), Some(200)));
    assert_eq!(o_line(&first), o_line(&second), "same version");
    // And the caller's phone too.
    let offer = sdp_offer(caller.rtp.local_addr().expect("addr"), "0 101");
    let first = caller.reinvite(&offer).await.expect("answer");
    let second = caller.reinvite(&offer).await.expect("answer");
    assert_eq!((first.status(), second.status()), (Some(200), Some(200)));
    assert_eq!(o_line(&first), o_line(&second), "same version");
    // Still bridged: the agent is on the call.
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("on_call")
    );
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_keypad_code_holds_and_resumes_for_phones_without_a_hold_key() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let caller = caller_put_through(&server, "201", &ana, "ana").await;
    let mark = caller.packets().len();
    for k in "##0#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_metric(&server, "centralita_calls_on_hold", 1.0).await;
    let corr = heard_after(&caller, mark, "music", "hold").await;
    assert!(corr >= 0.9, "the caller hears the hold music: {corr:.3}");
    for k in "##0#".chars() {
        ana.send_rfc4733(k).await;
    }
    wait_until(WAIT, "resumed", || {
        metric(&server.metrics.render(), "centralita_calls_on_hold") == 0.0
    })
    .await;
    caller_hears(&caller, &ana, 0x2a, "the caller hears the agent again").await;
    assert!(
        ana.requests("BYE").is_empty(),
        "the call goes on with the agent"
    );
    server.shutdown().await;
}

/// The INVITEs the phone got whose SDP says `direction` (re-INVITEs of ours).
fn phone_told(phone: &AgentPhone, direction: &str) -> usize {
    phone
        .requests("INVITE")
        .iter()
        .filter(|m| m.header("to").unwrap_or_default().contains("tag="))
        .filter(|m| String::from_utf8_lossy(&m.body).contains(direction))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_hold_shows_on_the_agents_phone_and_resume_too() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let rtp = caller.rtp.local_addr().expect("addr");
    let hold = sdp_offer(rtp, "0 101").replace("a=sendrecv", "a=sendonly");
    let resp = caller.reinvite(&hold).await.expect("an answer to the hold");
    assert_eq!(resp.status(), Some(200));
    assert!(String::from_utf8_lossy(&resp.body).contains("a=recvonly"));
    wait_until(WAIT, "the agent's phone told of the hold", || {
        phone_told(&ana, "a=sendonly") == 1
    })
    .await;
    let resp = caller
        .reinvite(&sdp_offer(rtp, "0 101"))
        .await
        .expect("an answer to the resume");
    assert_eq!(resp.status(), Some(200));
    wait_until(WAIT, "the agent's phone told of the resume", || {
        phone_told(&ana, "a=sendrecv") == 1
    })
    .await;
    // Still bridged: the caller hears the agent.
    caller_hears(&caller, &ana, 0x2a, "the caller hears the agent").await;
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_from_the_agents_phone_while_our_reinvite_waits_is_glare_491() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    // The phone leaves our re-INVITE ringing.
    ana.set_answer(Answer::Never);
    let rtp = caller.rtp.local_addr().expect("addr");
    let hold = sdp_offer(rtp, "0 101").replace("a=sendrecv", "a=sendonly");
    assert_eq!(
        caller.reinvite(&hold).await.and_then(|m| m.status()),
        Some(200)
    );
    wait_until(WAIT, "our re-INVITE at the phone", || {
        phone_told(&ana, "a=sendonly") == 1
    })
    .await;
    let resp = ana
        .reinvite(&phone_sdp(&ana, "127.0.0.1", "a=sendonly\r\n"))
        .await
        .expect("an answer to the phone's re-INVITE");
    assert_eq!(resp.status(), Some(491), "glare");
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("on_call")
    );
    assert_eq!(caller.bye().await, Some(200));
    server.shutdown().await;
}
