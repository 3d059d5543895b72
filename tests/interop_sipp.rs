//! Interop with SIPp (Debian `sip-tester`): a real SIP load generator calls
//! the in-process server. Skipped with a printed reason when `sipp` is not
//! installed, failed instead under CENTRALITA_REQUIRE_INTEROP=1.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// The last `n` lines of SIPp's output, for a failure message.
fn last_lines(out: &str, n: usize) -> String {
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn sipp_available() -> bool {
    peer_available("sipp", "-v", "sip-tester")
}

/// A free UDP port on loopback (for SIPp's own signalling and media ports).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn free_media_port() -> u16 {
    // SIPp uses media_port and media_port+2 (RTCP +1): find an even free one.
    for _ in 0..50 {
        let p = free_udp_port() & !1;
        if (0..4).all(|i| std::net::UdpSocket::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    }
    panic!("no free media port pair");
}

/// Run SIPp to completion (bounded); returns (exit status ok, stdout+stderr).
async fn run_sipp(
    server: std::net::SocketAddr,
    scenario: &str,
    extra: &[&str],
    limit: Duration,
) -> (bool, String) {
    run_sipp_on(server, free_udp_port(), scenario, extra, limit).await
}

/// As [`run_sipp`], with SIPp's SIP on `port`.
async fn run_sipp_on(
    server: std::net::SocketAddr,
    port: u16,
    scenario: &str,
    extra: &[&str],
    limit: Duration,
) -> (bool, String) {
    let scenario = format!("{}/tests/sipp/{scenario}", env!("CARGO_MANIFEST_DIR"));
    let port = port.to_string();
    let mport = free_media_port().to_string();
    let dir = std::env::temp_dir().join(format!("centralita-sipp-{}", rand_u64()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut args: Vec<String> = vec![
        server.to_string(),
        "-sf".into(),
        scenario,
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port,
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        mport,
        "-nostdin".into(),
        "-timeout".into(),
        format!("{}s", limit.as_secs()),
        "-timeout_error".into(),
        "-trace_err".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipp").args(&args).current_dir(&dir).output()
    })
    .await
    .expect("join")
    .expect("sipp runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_200_calls_at_20_per_second_all_hear_their_prompt() {
    if !sipp_available() {
        return;
    }
    // About 40 calls at once: more than the shipped 30-line trunk.
    let server = start_server_tuned(
        |c| c.acd.lines = 1000,
        centralita::server::ServerOptions::default(),
    )
    .await;
    let (ok, out) = run_sipp(
        server.sip_addr,
        "uac_prompt.xml",
        &["-m", "200", "-r", "20", "-l", "100"],
        Duration::from_secs(60),
    )
    .await;
    let tail = last_lines(&out, 40);
    assert!(ok, "SIPp reported failed calls:\n{tail}");
    wait_metric(
        &server,
        "centralita_calls_total{outcome=\"caller_hangup\"}",
        200.0,
    )
    .await;
    let text = server.metrics.render();
    assert_eq!(
        metric(&text, "centralita_calls_total{outcome=\"failed\"}"),
        0.0
    );
    assert_eq!(
        metric(&text, "centralita_ivr_menu_entries_total{menu=\"idioma\"}"),
        200.0
    );
    // 2 s of prompt each is 100 packets; allow for the call set-up edges.
    let sent = metric(&text, "centralita_rtp_packets_sent_total");
    assert!(
        sent >= 200.0 * 90.0,
        "each call was sent its prompt: {sent} packets for 200 calls"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_rfc2833_pcap_digits_reach_the_chosen_menu() {
    if !sipp_available() {
        return;
    }
    let server = start_server().await;
    let (ok, out) = run_sipp(
        server.sip_addr,
        "uac_dtmf.xml",
        &["-m", "1"],
        Duration::from_secs(30),
    )
    .await;
    let tail = last_lines(&out, 40);
    assert!(ok, "SIPp call failed:\n{tail}");
    wait_metric(
        &server,
        "centralita_calls_total{outcome=\"caller_hangup\"}",
        1.0,
    )
    .await;
    let text = server.metrics.render();
    assert_eq!(
        metric(&text, "centralita_dtmf_digits_total{source=\"rfc4733\"}"),
        2.0,
        "the two pcap digits, each counted once"
    );
    assert_eq!(
        metric(
            &text,
            "centralita_ivr_menu_entries_total{menu=\"principal\"}"
        ),
        1.0,
        "digit 1 chose Spanish and entered the main menu"
    );
    assert_eq!(
        metric(
            &text,
            "centralita_ivr_queue_requests_total{queue=\"redes\"}"
        ),
        1.0,
        "digit 3 chose the network queue"
    );
    server.shutdown().await;
}

/// The desk's IVR with one more option: 8, type the number to be called
/// back on, then #.
const TYPED_CALLBACK_IVR: &str = r#"
[menu.idioma]
prompts = ["main_menu"]
timeout_ms = 10000
max_retries = 1
fallback = { action = "hangup" }

[menu.idioma.options.8]
action = "collect"
field = "phone"
prompts = ["ticket_prompt"]
max_length = 15
next = { action = "callback", queue = "general", number_field = "phone", prompt = "callback_confirm", goodbye = "goodbye" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_to_a_typed_number_goes_out_through_the_trunk_to_a_sipp_gateway() {
    if !sipp_available() {
        return;
    }
    use common::phone::AgentPhone;
    use std::sync::Arc;
    // The gateway: SIPp on loopback, answering one call and echoing its RTP.
    let gw_port = free_udp_port();
    let server = start_server_loaded(
        |l| {
            l.config.acd.callback_trunk = Some(format!("sip:127.0.0.1:{gw_port}"));
            l.ivr = Arc::new(
                centralita::ivr::IvrScript::load_sources([(
                    std::path::Path::new("typed-callback.toml"),
                    TYPED_CALLBACK_IVR,
                )])
                .expect("test IVR loads"),
            );
        },
        centralita::server::ServerOptions::default(),
    )
    .await;
    let sip = server.sip_addr;
    let gateway = tokio::spawn(async move {
        run_sipp_on(
            sip,
            gw_port,
            "gateway_uas.xml",
            &["-m", "1", "-rtp_echo"],
            Duration::from_secs(60),
        )
        .await
    });
    wait_until(Duration::from_secs(10), "SIPp listens", || {
        std::net::UdpSocket::bind(("127.0.0.1", gw_port)).is_err()
    })
    .await;

    // The caller presses 8, types 600123456#, hears the confirmation and is
    // hung up on: its place is kept.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut caller, _) = Call::place(client, "soporte", "0 101").await;
    caller.wait_packets(5, WAIT).await;
    caller.send_rfc4733('8').await;
    for d in "600123456#".chars() {
        caller.send_rfc4733(d).await;
    }
    assert!(
        caller.expect_bye(Duration::from_secs(30)).await,
        "hung up after the confirmation"
    );
    wait_metric(
        &server,
        "centralita_queue_callbacks_pending{queue=\"general\"}",
        1.0,
    )
    .await;

    // Ana gets ready: her phone rings first, then the gateway gets the
    // INVITE for the typed number (SIPp fails the call otherwise).
    let phone = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_status(&server, "ana", "on_call").await;
    // Bridged through the gateway: Ana's voice goes out and comes back
    // (SIPp echoes it), so audio crosses the trunk leg both ways.
    let voice = tone(700.0, 50);
    let echoed = |phone: &AgentPhone| phone.rtp_packets().iter().any(|p| p.payload == voice[20]);
    let mut heard = false;
    for _ in 0..3 {
        phone.send_audio(&voice).await;
        if echoed(&phone) {
            heard = true;
            break;
        }
    }
    assert!(heard, "Ana hears herself through the gateway's echo");
    let (to_agent, to_caller) = relayed(&server);
    assert!(
        to_agent >= 20.0 && to_caller >= 20.0,
        "{to_agent} / {to_caller}"
    );
    // Ana hangs up: centralita sends the gateway its BYE; SIPp's one call
    // completes; the callback is counted.
    phone.hang_up().await;
    let (ok, out) = tokio::time::timeout(Duration::from_secs(60), gateway)
        .await
        .expect("SIPp finishes")
        .expect("join");
    assert!(ok, "the gateway's call failed:\n{}", last_lines(&out, 40));
    wait_metric(
        &server,
        "centralita_queue_calls_total{outcome=\"called_back\",queue=\"general\"}",
        1.0,
    )
    .await;
    server.shutdown().await;
}
