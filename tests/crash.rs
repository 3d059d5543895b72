//! A crash with calls up, on the real binary: 50 calls (in the menus, in a
//! queue, talking with agents), `kill -9`, start again on the same data
//! directory. Every entry acknowledged before the crash is still there,
//! every one of those calls is closed `interrupted` with an entry saying
//! where it was, and `centralita logbook verify` passes.

mod common;

use centralita::tickets::sqlite::Reader;
use centralita::tickets::{CallOutcome, TicketFilter, TicketNumber};
use common::binary::{start_binary, BIN};
use common::phone::AgentPhone;
use common::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The shipped config with absolute paths and enough lines for 50 callers.
fn config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(format!("{ROOT}/config/centralita.toml")).expect("config");
    let text = text
        .replace(
            "sounds_dir = \"../sounds\"",
            &format!("sounds_dir = \"{ROOT}/sounds\""),
        )
        .replace("dir = \"../ivr\"", &format!("dir = \"{ROOT}/ivr\""))
        .replace("lines = 30", "lines = 80");
    let path = dir.join("centralita.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Start the binary; its SIP and HTTP addresses once it says them.
fn start(config: &Path, data: &Path, rtp: &str) -> (Child, SocketAddr, SocketAddr) {
    let args: [&OsStr; 10] = [
        "--sip-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--http-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--rtp-ports".as_ref(),
        rtp.as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    let (child, line) = start_binary(&args);
    // "centralita: SIP on 127.0.0.1:P, HTTP on http://127.0.0.1:Q"
    let sip = line
        .split("SIP on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|a| a.trim().parse().ok())
        .expect("SIP address");
    let http = line
        .split("http://")
        .nth(1)
        .and_then(|a| a.trim().parse().ok())
        .expect("HTTP address");
    (child, sip, http)
}

async fn metric_of(http: SocketAddr, name: &str) -> f64 {
    let (_, body) = http_get(http, "/metrics").await;
    metric(&body, name)
}

async fn wait_http<F: Fn(&str) -> bool>(http: SocketAddr, path: &str, what: &str, cond: F) {
    for _ in 0..1000 {
        let (_, body) = http_get(http, path).await;
        if cond(&body) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// An agent's phone registered and ready (`*11`).
async fn ready(sip: SocketAddr, http: SocketAddr, user: &str) -> AgentPhone {
    let password = format!("{user}-demo-1234");
    let phone = AgentPhone::register(sip, user, &password).await;
    let client = Arc::new(SipClient::new(sip).await);
    let (call, _) = Call::place_as_agent(client, "*11", user, &password).await;
    assert!(call.expect_bye(Duration::from_secs(10)).await);
    wait_http(http, "/api/v1/agents", "the agent ready", |b| {
        serde_json::from_str::<serde_json::Value>(b).is_ok_and(|v| {
            v["agents"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["id"] == user && x["state"] == "available")
            })
        })
    })
    .await;
    phone
}

/// Every entry of every ticket: ticket → [(seq, text)].
fn entries(reader: &Reader) -> BTreeMap<TicketNumber, Vec<(u64, String)>> {
    let all = reader
        .list(&TicketFilter {
            limit: 1000,
            ..TicketFilter::default()
        })
        .expect("list");
    all.iter()
        .map(|t| {
            let v = reader.show(t.number).expect("show").expect("ticket");
            let e = v.logbook.into_iter().map(|e| (e.seq, e.text)).collect();
            (t.number, e)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_with_50_calls_up_loses_nothing_and_closes_them_interrupted() {
    let dir = std::env::temp_dir().join(format!("centralita-crash-{:x}", rand_u64()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = config(&dir);
    let data = dir.join("data");
    let (mut first, sip, http) = start(&config, &data, "45000-45999");
    // Two calls talking with agents.
    let _ana = ready(sip, http, "ana").await;
    let _bruno = ready(sip, http, "bruno").await;
    let client = Arc::new(SipClient::new(sip).await);
    let mut calls = Vec::new();
    for number in ["201", "202"] {
        let (call, resp) = Call::place(Arc::clone(&client), number, "0 101").await;
        assert_eq!(resp.status(), Some(200));
        calls.push(call);
    }
    wait_http(http, "/api/v1/agents", "both agents on a call", |b| {
        b.matches("\"on_call\"").count() == 2
    })
    .await;
    // 24 waiting in the software queue, 24 in the menus.
    for number in ["201", "soporte"] {
        for _ in 0..24 {
            let (call, resp) = Call::place(Arc::clone(&client), number, "0 101").await;
            assert_eq!(resp.status(), Some(200), "{number}");
            calls.push(call);
        }
    }
    for _ in 0..500 {
        if metric_of(http, "centralita_calls_active").await >= 50.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metric_of(http, "centralita_calls_active").await, 50.0);
    wait_http(http, "/metrics", "24 callers queued", |b| {
        metric(b, "centralita_queue_waiting{queue=\"software\"}") == 24.0
    })
    .await;
    // What the store has acknowledged so far.
    let before = entries(&Reader::open(&data.join("centralita.db")).expect("reader"));
    assert_eq!(before.len(), 50, "a ticket for each call");
    // kill -9.
    first.kill().expect("kill -9");
    let _ = first.wait();
    let (mut second, _, _) = start(&config, &data, "46000-46999");
    let reader = Reader::open(&data.join("centralita.db")).expect("reader");
    let after = entries(&reader);
    for (ticket, old) in &before {
        let new = after.get(ticket).expect("the ticket is still there");
        assert_eq!(
            &new[..old.len()],
            &old[..],
            "ticket {ticket}: every entry kept"
        );
        let last = new.last().map(|(_, t)| t.as_str()).unwrap_or_default();
        assert!(
            last.starts_with("The call was interrupted by a stop of centralita"),
            "ticket {ticket}: {last}"
        );
        let view = reader.show(*ticket).expect("show").expect("ticket");
        assert_eq!(
            view.calls.last().and_then(|c| c.outcome),
            Some(CallOutcome::Interrupted),
            "ticket {ticket}"
        );
    }
    let wheres: Vec<&str> = after
        .values()
        .filter_map(|e| e.last().map(|(_, t)| t.as_str()))
        .collect();
    for place in [
        "in the menus",
        "waiting in the queue",
        "while talking with an agent",
    ] {
        assert!(
            wheres.iter().any(|w| w.contains(place)),
            "some call was {place}: {wheres:?}"
        );
    }
    let verify = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["logbook", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let _ = second.kill();
    let _ = second.wait();
    drop(calls);
    let _ = std::fs::remove_dir_all(&dir);
}
