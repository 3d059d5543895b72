//! RFC 4475 and RFC 5118 torture messages, sent byte-exact (with the fixes
//! the archive needs, see tests/sip-torture/README.md) over UDP to the
//! running server. Each must get exactly the answer in
//! `tests/sip_torture_expected.tsv`; a "dropped" message is proven dropped by
//! an OPTIONS probe still being answered and the dropped counter moving.
//! Then a normal call must still work.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn torture_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sip-torture"))
}

fn expected() -> BTreeMap<String, (String, String)> {
    let text = include_str!("sip_torture_expected.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some((
                f.next()?.to_string(),
                (f.next()?.to_string(), f.next()?.to_string()),
            ))
        })
        .collect()
}

/// The message as it must be sent: RFC 5118 files get CRLF line ends, the
/// two without an end of headers get one, and two wrong Content-Lengths are
/// corrected (both are errors of that RFC's archive, not of the test).
fn prepare(name: &str, raw: Vec<u8>, lf_only: bool) -> Vec<u8> {
    let mut m = raw;
    if lf_only {
        let mut out = Vec::with_capacity(m.len() + 64);
        for &b in &m {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        m = out;
    }
    if name == "ipv6-bug-abnf-3-colons" || name == "ipv6-correct-abnf-2-colons" {
        m.extend_from_slice(b"\r\n");
    }
    if name == "ipv6-in-sdp" || name == "mult-ip-in-sdp" {
        let text = String::from_utf8_lossy(&m).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let fixed: Vec<String> = head
                .split("\r\n")
                .map(|l| {
                    if l.to_ascii_lowercase().starts_with("content-length") || l.starts_with("l:") {
                        format!("Content-Length: {}", body.len())
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            m = format!("{}\r\n\r\n{}", fixed.join("\r\n"), body).into_bytes();
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_torture_message_gets_its_listed_answer_then_a_call_works() {
    let server = start_server().await;
    let table = expected();
    let index = std::fs::read_to_string(torture_dir().join("INDEX.tsv"))
        .expect("INDEX.tsv (tests/sip-torture)");
    let mut mismatches = Vec::new();
    let mut seen = 0;
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (name, lf_only) = (cols[0], cols.get(6) == Some(&"LF"));
        let raw = std::fs::read(torture_dir().join(format!("{name}.dat"))).expect("torture file");
        let msg = prepare(name, raw, lf_only);
        let Some((want, _reason)) = table.get(name) else {
            mismatches.push(format!("{name}: not in sip_torture_expected.tsv"));
            continue;
        };
        seen += 1;
        let client = SipClient::new(server.sip_addr).await;
        let dropped_before = sum_dropped(&server.metrics.render());
        client.send(&msg).await;
        let probe_id = format!("probe-{name}");
        client.send(&client.options(&probe_id)).await;
        let probe = client
            .wait_for(Duration::from_secs(3), |m| {
                m.header("call-id") == Some(probe_id.as_str()) && m.status().is_some()
            })
            .await;
        if probe.as_ref().and_then(Msg::status) != Some(200) {
            mismatches.push(format!(
                "{name}: the OPTIONS probe after it was not answered 200"
            ));
            continue;
        }
        // The probe was answered: the front has handled the message. An
        // answer to it may still be on its way from a transaction task.
        let answer = client
            .wait_for(
                Duration::from_millis(if want == "dropped" { 300 } else { 3000 }),
                |m| {
                    m.status().is_some_and(|s| s >= 200)
                        && m.header("call-id") != Some(probe_id.as_str())
                },
            )
            .await;
        let got = match &answer {
            Some(m) => m.status().map(|s| s.to_string()).unwrap_or_default(),
            None => "dropped".to_string(),
        };
        if &got != want {
            mismatches.push(format!("{name}: expected {want}, got {got}"));
            continue;
        }
        if want == "dropped" {
            let after = sum_dropped(&server.metrics.render());
            if after <= dropped_before {
                mismatches.push(format!(
                    "{name}: dropped, but the dropped-message counter did not move"
                ));
            }
        }
        if let Some(m) = &answer {
            for (code, header) in [
                ("405", "allow"),
                ("501", "allow"),
                ("415", "accept"),
                ("406", "accept"),
                ("420", "unsupported"),
            ] {
                if got == code && m.header(header).is_none() {
                    mismatches.push(format!("{name}: {code} without {header}"));
                }
            }
        }
    }
    assert_eq!(
        seen,
        table.len(),
        "every row of the table names a torture file"
    );
    assert!(
        mismatches.is_empty(),
        "torture mismatches:\n{}",
        mismatches.join("\n")
    );

    // After all that, a normal call.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, resp) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200));
    call.wait_packets(25, WAIT).await;
    assert_eq!(call.bye().await, Some(200));
    server.shutdown().await;
}

fn sum_dropped(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("centralita_sip_messages_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
