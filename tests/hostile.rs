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

/// A bare INVITE to `dialed` from `client`, with an offer (the RTP port
/// is never listened on: a flood's calls say nothing).
fn invite_from(client: &SipClient, dialed: &str, call_id: &str) -> Vec<u8> {
    let me = client.local;
    let sdp = format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        ip = me.ip()
    );
    format!(
        "INVITE sip:{dialed}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:flood@{me}>;tag=f{call_id}\r\nTo: <sip:{dialed}@{srv}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:flood@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
        srv = client.server,
        len = sdp.len()
    )
    .into_bytes()
}

fn bearer() -> String {
    format!("Bearer {DEMO_TOKEN}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invites_never_acked_leaves_a_real_caller_answered_at_once() {
    // The shipped limits: 10 calls per source, 5 INVITEs/s after a burst of
    // 10, banned after 50 refusals in a minute.
    let server = start_server().await;
    let flooder = SipClient::new_at(server.sip_addr, "127.0.0.3").await;
    for i in 0..200 {
        flooder
            .send(&invite_from(&flooder, "soporte", &format!("flood-{i}")))
            .await;
    }
    // What the flood heard: 200 for the burst, 503 with Retry-After for the
    // next, then nothing once banned.
    let mut answered = std::collections::BTreeSet::new();
    let mut refused = std::collections::BTreeSet::new();
    while answered.len() + refused.len() < 60 {
        let m = flooder
            .wait_for(Duration::from_secs(10), |m| {
                m.status().is_some_and(|s| s >= 200)
            })
            .await
            .unwrap_or_else(|| {
                panic!(
                    "the flood's answers: {} answered, {} refused",
                    answered.len(),
                    refused.len()
                )
            });
        let cid = m.header("call-id").unwrap_or_default().to_string();
        match m.status() {
            Some(200) => {
                answered.insert(cid);
            }
            Some(503) => {
                assert!(m.header("retry-after").is_some(), "503 says when to retry");
                refused.insert(cid);
            }
            other => panic!("unexpected {other:?} to {cid}"),
        }
    }
    assert_eq!(answered.len(), 10, "the burst is answered");
    assert_eq!(refused.len(), 50, "then refused until banned");
    let more = flooder
        .wait_for(Duration::from_millis(300), |m| {
            m.status().is_some_and(|s| s >= 300)
                && !refused.contains(m.header("call-id").unwrap_or_default())
        })
        .await;
    assert!(more.is_none(), "a banned source hears nothing: {more:?}");

    // A real caller from another address is answered at once.
    let caller = std::sync::Arc::new(SipClient::new_at(server.sip_addr, "127.0.0.2").await);
    let started = std::time::Instant::now();
    let (_call, resp) = Call::place(caller, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200), "the real caller is answered");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once, not after {:?}",
        started.elapsed()
    );
    let text = server.metrics.render();
    assert!(
        metric_sum(&text, "centralita_lines_in_use") <= 11.0,
        "the flood holds 10 lines at most"
    );
    assert_eq!(
        metric(
            &text,
            "centralita_sip_invites_limited_total{reason=\"rate\"}"
        ),
        50.0
    );
    assert_eq!(
        metric(
            &text,
            "centralita_sip_bans_total{kind=\"source\",reason=\"flood\"}"
        ),
        1.0
    );
    assert!(
        metric(
            &text,
            "centralita_sip_messages_dropped_total{reason=\"banned\"}"
        ) >= 100.0
    );

    // The supervisor sees the ban, and lifts it.
    let (status, body) = http_get(server.http_addr, "/api/v1/bans").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let bans = v["bans"].as_array().expect("bans");
    assert_eq!(bans.len(), 1, "{body}");
    assert_eq!(bans[0]["key"], "127.0.0.3");
    assert_eq!(bans[0]["kind"], "source");
    assert_eq!(bans[0]["reason"], "flood");
    assert!(bans[0]["remaining_secs"].as_u64().is_some_and(|s| s > 3000));
    let lifted = http_send(
        server.http_addr,
        "DELETE",
        "/api/v1/bans/127.0.0.3",
        &[("Authorization", &bearer())],
        None,
    )
    .await;
    assert_eq!(lifted.status, 204, "{}", lifted.body);
    let reply = flooder
        .transact(&flooder.options("after-lift"))
        .await
        .expect("answered again once lifted");
    assert_eq!(reply.status(), Some(200));
    let again = http_send(
        server.http_addr,
        "DELETE",
        "/api/v1/bans/127.0.0.3",
        &[("Authorization", &bearer())],
        None,
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.body);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_guessing_passwords_is_banned_at_the_configured_count() {
    let server = start_server_tuned(
        |c| c.limits.auth_failures_before_ban = 7,
        Default::default(),
    )
    .await;
    let guesser = SipClient::new_at(server.sip_addr, "127.0.0.4").await;
    for attempt in 1..=7 {
        let (challenge, answer) = guesser
            .register("ana", &format!("guess-{attempt}"), 60, "MD5")
            .await;
        assert_eq!(challenge.status(), Some(401));
        assert_eq!(answer.status(), Some(403), "attempt {attempt}");
    }
    // Banned at the 7th: the next REGISTER gets no answer at all.
    let cid = format!("after-ban-{}", rand_u64());
    guesser
        .send(&guesser.register_bytes("ana", &cid, 1, 60, None))
        .await;
    let heard = guesser
        .wait_for(Duration::from_millis(500), |m| {
            m.header("call-id") == Some(cid.as_str())
        })
        .await;
    assert!(heard.is_none(), "the banned source heard: {heard:?}");
    wait_metric(
        &server,
        "centralita_sip_messages_dropped_total{reason=\"banned\"}",
        1.0,
    )
    .await;
    let text = server.metrics.render();
    assert_eq!(
        metric(
            &text,
            "centralita_sip_bans_total{kind=\"source\",reason=\"auth\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "centralita_sip_banned{kind=\"source\"}"), 1.0);
    assert_eq!(
        metric(
            &text,
            "centralita_sip_auth_failures_total{method=\"REGISTER\"}"
        ),
        7.0
    );
    let (_, body) = http_get(server.http_addr, "/api/v1/bans").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["bans"][0]["key"], "127.0.0.4", "{body}");
    assert_eq!(v["bans"][0]["reason"], "auth");
    assert_eq!(v["bans"][0]["count"], 7);

    // Ana's own phone, elsewhere, is not touched.
    let phone = SipClient::new_at(server.sip_addr, "127.0.0.5").await;
    let (_, ok) = phone.register("ana", "ana-demo-1234", 60, "MD5").await;
    assert_eq!(ok.status(), Some(200));

    // An agent (not a supervisor) may not see the bans.
    let agent = http_send(
        server.http_addr,
        "POST",
        "/api/v1/session",
        &[],
        Some(r#"{"user":"ana","password":"ana-demo-1234"}"#),
    )
    .await;
    let cookie = agent
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session")
        .to_string();
    let denied = http_send(
        server.http_addr,
        "GET",
        "/api/v1/bans",
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_guessed_from_many_sources_hears_only_its_registered_phone() {
    let server = start_server_tuned(
        |c| {
            c.limits.auth_failures_before_ban = 0;
            c.limits.account_failures_before_throttle = 12;
        },
        Default::default(),
    )
    .await;
    // Bruno's phone registers first.
    let phone = SipClient::new_at(server.sip_addr, "127.0.0.6").await;
    let (_, ok) = phone.register("bruno", "bruno-demo-1234", 600, "MD5").await;
    assert_eq!(ok.status(), Some(200));
    // Twelve sources guess once each.
    for i in 1..=12 {
        let bot = SipClient::new_at(server.sip_addr, &format!("127.0.1.{i}")).await;
        let (_, no) = bot.register("bruno", "123456", 60, "MD5").await;
        assert_eq!(no.status(), Some(403));
    }
    wait_metric(
        &server,
        "centralita_sip_bans_total{kind=\"account\",reason=\"auth\"}",
        1.0,
    )
    .await;
    // Now even the right password from a stranger is not heard…
    let stranger = SipClient::new_at(server.sip_addr, "127.0.2.1").await;
    let (_, no) = stranger
        .register("bruno", "bruno-demo-1234", 60, "MD5")
        .await;
    assert_eq!(no.status(), Some(403), "throttled for strangers");
    // …but Bruno's registered phone renews as usual.
    let (_, ok) = phone.register("bruno", "bruno-demo-1234", 600, "MD5").await;
    assert_eq!(ok.status(), Some(200), "the owner's phone is heard");
    let (_, body) = http_get(server.http_addr, "/api/v1/bans").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["bans"][0]["kind"], "account", "{body}");
    assert_eq!(v["bans"][0]["key"], "bruno");
    // Lifted, the stranger (Bruno on another network) gets in.
    let lifted = http_send(
        server.http_addr,
        "DELETE",
        "/api/v1/bans/bruno",
        &[("Authorization", &bearer())],
        None,
    )
    .await;
    assert_eq!(lifted.status, 204, "{}", lifted.body);
    let (_, ok) = stranger
        .register("bruno", "bruno-demo-1234", 60, "MD5")
        .await;
    assert_eq!(ok.status(), Some(200));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_past_the_caps_are_closed_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_server().await;
    let connect = || async {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind("127.0.0.7:0".parse().expect("addr")).expect("bind");
        s.connect(server.sip_addr).await.expect("connect")
    };
    // 64 connections from one address are kept; the 65th is closed at once.
    let mut kept = vec![];
    for _ in 0..64 {
        kept.push(connect().await);
    }
    let mut extra = connect().await;
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut byte))
        .await
        .expect("closed in time");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    wait_metric(
        &server,
        "centralita_limits_hit_total{cap=\"tcp_connections\"}",
        1.0,
    )
    .await;

    // A message past the size limit closes its connection.
    let mut big = kept.pop().expect("a connection");
    let mut msg = b"OPTIONS sip:soporte@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.7:5099;branch=z9hG4bKbig\r\nX-Padding: ".to_vec();
    msg.extend(std::iter::repeat_n(b'a', 9000));
    big.write_all(&msg).await.expect("write");
    let closed = tokio::time::timeout(Duration::from_secs(5), big.read(&mut byte))
        .await
        .expect("closed in time");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    wait_metric(
        &server,
        "centralita_limits_hit_total{cap=\"tcp_buffer\"}",
        1.0,
    )
    .await;

    // With one given back, a phone's connection from there is served.
    drop(kept.pop());
    let mut phone = connect().await;
    let opts = b"OPTIONS sip:soporte@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.7:5099;branch=z9hG4bKok1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.7>;tag=t1\r\nTo: <sip:soporte@127.0.0.1>\r\nCall-ID: tcp-cap-ok\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let mut answer = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        // The freed slot is given back when its task sees the close.
        loop {
            phone.write_all(opts).await.expect("write");
            match tokio::time::timeout(Duration::from_millis(500), phone.read(&mut answer)).await {
                Ok(Ok(n)) if n > 0 => return String::from_utf8_lossy(&answer[..n]).into_owned(),
                Ok(_) => phone = connect().await,
                Err(_) => {}
            }
        }
    })
    .await
    .expect("answered in time");
    assert!(got.starts_with("SIP/2.0 200"), "{got}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_through_feature_codes_counts_and_bans_too() {
    let server = start_server_tuned(
        |c| c.limits.auth_failures_before_ban = 3,
        Default::default(),
    )
    .await;
    let guesser = std::sync::Arc::new(SipClient::new_at(server.sip_addr, "127.0.0.8").await);
    for attempt in 1..=3 {
        let (_call, resp) =
            Call::place_as_agent(guesser.clone(), "*11", "ana", &format!("pw{attempt}")).await;
        assert_eq!(resp.status(), Some(403), "attempt {attempt}");
    }
    assert_eq!(
        scrape(
            &server,
            "centralita_sip_auth_failures_total{method=\"INVITE\"}"
        )
        .await,
        3.0
    );
    let cid = "after-ban-invite";
    guesser.send(&invite_from(&guesser, "*11", cid)).await;
    let heard = guesser
        .wait_for(Duration::from_millis(500), |m| {
            m.header("call-id") == Some(cid)
        })
        .await;
    assert!(heard.is_none(), "the banned source heard: {heard:?}");
    assert_eq!(
        scrape(
            &server,
            "centralita_sip_bans_total{kind=\"source\",reason=\"auth\"}"
        )
        .await,
        1.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_and_slow_drip_tcp_connections_are_closed_in_64_t1() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // T1 = 20 ms: a message must be complete within 64·T1 = 1.28 s.
    let server = start_server_with(centralita::server::ServerOptions {
        sip_t1: Some(Duration::from_millis(20)),
    })
    .await;
    // Connected, never a byte; then half a message and nothing more.
    for (sent, cap) in [
        (&b""[..], "tcp_connections"),
        (
            b"OPTIONS sip:soporte@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bKdrip\r\n",
            "tcp_buffer",
        ),
    ] {
        let mut conn = tokio::net::TcpStream::connect(server.sip_addr)
            .await
            .expect("connect");
        conn.write_all(sent).await.expect("write");
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut byte))
            .await
            .expect("closed in time");
        assert!(matches!(closed, Ok(0) | Err(_)), "{cap}: {closed:?}");
        wait_metric(
            &server,
            &format!("centralita_limits_hit_total{{cap=\"{cap}\"}}"),
            1.0,
        )
        .await;
    }
    server.shutdown().await;
}
