//! Interop with baresip (Debian `baresip-core`) as an agent's softphone:
//! it registers with digest authentication (MD5, as Debian's baresip does)
//! and the registrar counts it; it is bridged with a caller; its own
//! `/transfer` (a REFER) sends the caller to another queue. Skipped with a printed reason when baresip
//! is missing, failed instead under CENTRALITA_REQUIRE_INTEROP=1.

mod common;

use common::baresip::{baresip_available, baresip_dir, spawn_baresip};
use common::*;
use std::process::Command;
use std::time::Duration;

/// The PCMA audio of SIPp's g711a.pcap, decoded (independently of the server).
fn pcap_audio(path: &str) -> Vec<i16> {
    let d = std::fs::read(path).expect("pcap");
    let mut off = 24;
    let mut out = Vec::new();
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes([d[off + 8], d[off + 9], d[off + 10], d[off + 11]]) as usize;
        let pkt = &d[off + 16..(off + 16 + incl).min(d.len())];
        off += 16 + incl;
        if let Some(rtp) = pkt.get(42..).and_then(parse_rtp) {
            if rtp.pt == 8 {
                out.extend(
                    rtp.payload
                        .iter()
                        .map(|&b| audio_codec_algorithms::decode_alaw(b)),
                );
            }
        }
    }
    out
}

fn sipp_found() -> bool {
    peer_available("sipp", "-v", "sip-tester")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_as_an_agent_with_digest_md5() {
    if !baresip_available() {
        return;
    }
    let server = start_server().await;
    let dir = baresip_dir(server.sip_addr, "bruno", "bruno-demo-1234");
    let mut child = spawn_baresip(&dir, &["-t", "30"]);
    let registered = {
        let start = std::time::Instant::now();
        loop {
            if server.metrics.agents_registered.get() == 1 {
                break true;
            }
            if start.elapsed() > Duration::from_secs(15) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(registered, "baresip registered within 15 s");
    let text = server.metrics.render();
    assert_eq!(
        metric(
            &text,
            "centralita_sip_auth_failures_total{method=\"REGISTER\"}"
        ),
        0.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sipp_caller_choosing_hardware_is_bridged_to_the_baresip_agent() {
    if !baresip_available() || !sipp_found() {
        return;
    }
    let server = start_server().await;
    let dir = baresip_dir(server.sip_addr, "bruno", "bruno-demo-1234");
    // Bruno's softphone registers, auto-answers, and dials *11 (ready).
    let mut child = spawn_baresip(&dir, &["-e", "/dial *11", "-t", "60"]);
    let mut ready = false;
    for _ in 0..1500 {
        if server.agent_status("bruno").await.map(|s| s.as_str()) == Some("available")
            && server.metrics.agents_registered.get() == 1
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !ready {
        let _ = child.kill();
        panic!("baresip did not register and get ready within 15 s");
    }
    // A SIPp caller: 1 (Spanish), 2 (hardware), then real speech.
    let scenario = format!("{}/tests/sipp/uac_agent.xml", env!("CARGO_MANIFEST_DIR"));
    let sip = server.sip_addr.to_string();
    let work = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .unwrap_or(5071);
        Command::new("sipp")
            .args([
                sip.as_str(),
                "-sf",
                &scenario,
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-mi",
                "127.0.0.1",
                "-m",
                "1",
            ])
            .args(["-nostdin", "-timeout", "40s", "-timeout_error"])
            .current_dir(&work)
            .output()
    })
    .await
    .expect("join")
    .expect("sipp runs");
    let (to_agent, to_caller) = relayed(&server);
    // baresip closes its recording when our BYE ends the call: wait for a
    // recording of more than 5 s to be complete (bounded).
    let recording = |dir: &std::path::Path| -> Vec<i16> {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .filter_map(|p| {
                        hound::WavReader::open(&p).ok().map(|r| {
                            r.into_samples::<i16>()
                                .filter_map(Result::ok)
                                .collect::<Vec<_>>()
                        })
                    })
                    .max_by_key(Vec::len)
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    };
    let mut heard = Vec::new();
    for _ in 0..500 {
        heard = recording(&dir);
        if heard.len() > 5 * 8000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SIPp call failed:\n{}",
        stdout.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    assert!(
        to_agent >= 200.0,
        "caller's audio relayed to the agent: {to_agent} packets"
    );
    assert!(
        to_caller >= 200.0,
        "agent's audio relayed to the caller: {to_caller} packets"
    );
    // What baresip heard on the bridged call is the caller's speech.
    let speech = pcap_audio("/usr/share/sip-tester/g711a.pcap");
    let chunk = &speech[8000..8000 * 4];
    let corr = best_correlation(&heard, chunk, heard.len() / 160);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        corr >= 0.9,
        "baresip's recording matches the caller's audio: correlation {corr:.3} ({} samples heard)",
        heard.len()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_transfers_its_caller_to_another_queue_with_refer() {
    if !baresip_available() {
        return;
    }
    use std::io::Write;
    use std::sync::Arc;
    let server = start_server().await;
    let dir = baresip_dir(server.sip_addr, "bruno", "bruno-demo-1234");
    // Bruno's softphone, driven through its keyboard (stdin): ready with *11.
    let mut child = spawn_baresip(&dir, &["-t", "60"]);
    let mut keyboard = child.stdin.take().expect("baresip's stdin");
    let mut command = |line: &str| {
        let _ = keyboard.write_all(format!("{line}\n").as_bytes());
        let _ = keyboard.flush();
    };
    wait_until(Duration::from_secs(15), "baresip registers", || {
        server.metrics.agents_registered.get() == 1
    })
    .await;
    command("/dial *11");
    wait_status(&server, "bruno", "available").await;
    // A caller dials the hardware queue's number: Bruno's baresip answers.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (caller, _) = Call::place(client, "202", "0 101").await;
    wait_status(&server, "bruno", "on_call").await;
    let m = caller.packets().len();
    // Bruno transfers the caller to software (201) from the softphone.
    command(&format!("/transfer sip:201@{}", server.sip_addr));
    wait_metric(&server, "centralita_queue_waiting{queue=\"software\"}", 1.0).await;
    wait_status(&server, "bruno", "wrap_up").await;
    // The caller stays on the line and hears "transferring".
    let corr = heard_after(&caller, m, "es", "transferring").await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(corr >= 0.9, "transferring prompt correlation {corr:.3}");
    let text = server.metrics.render();
    assert_eq!(
        metric(
            &text,
            "centralita_sip_requests_total{direction=\"in\",method=\"REFER\"}"
        ),
        1.0,
        "one REFER from baresip"
    );
    server.shutdown().await;
}
