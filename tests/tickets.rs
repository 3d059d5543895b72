//! Tickets end to end: every support call opens one, its logbook says what
//! happened, and `centralita tickets show --json` (the real binary, reading
//! the running server's store) shows it field by field.

mod common;

use centralita::server::ServerOptions;
use common::phone::{caller_put_through, AgentPhone};
use common::*;
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::binary::BIN;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `centralita tickets <args> --json` against the server's store.
fn cli(server: &centralita::server::Server, args: &[&str]) -> Value {
    let data_dir = server
        .store_options()
        .path
        .parent()
        .expect("data dir")
        .to_path_buf();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(format!("{ROOT}/config/centralita.toml"))
        .args(args)
        .arg("--json")
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("run centralita");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn show(server: &centralita::server::Server, n: u64) -> Value {
    cli(server, &["tickets", "show", &n.to_string()])
}

/// The texts of a ticket's logbook.
fn entries(t: &Value) -> Vec<String> {
    t["logbook"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| e["text"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until the store shows ticket `n`'s last call ended.
async fn wait_ended(server: &centralita::server::Server, n: u64) -> Value {
    let mut t = Value::Null;
    wait_until(WAIT, "the call's end in its ticket", || {
        t = show(server, n);
        t["calls"]
            .as_array()
            .and_then(|c| c.last())
            .is_some_and(|c| !c["outcome"].is_null())
    })
    .await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_walks_the_menus_and_hangs_up_in_the_queue() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, resp) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200));
    assert_eq!(
        resp.header("x-centralita-ticket"),
        None,
        "the ticket is not the caller's business"
    );
    call.wait_packets(5, WAIT).await;
    call.send_rfc4733('1').await;
    wait_metric(
        &server,
        "centralita_ivr_menu_entries_total{menu=\"principal\"}",
        1.0,
    )
    .await;
    call.send_rfc4733('1').await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"software\"}", 1.0).await;
    assert_eq!(call.bye().await, Some(200));
    let t = wait_ended(&server, 100_001).await;
    assert_eq!(t["number"], 100_001);
    assert_eq!(t["status"], "open");
    assert_eq!(t["level"], 1);
    assert_eq!(t["caller"]["user"], "caller");
    assert_eq!(t["caller"]["display"], "Test");
    assert!(t["caller"]["uri"]
        .as_str()
        .is_some_and(|u| u.starts_with("sip:caller@127.0.0.1")));
    assert_eq!(t["dialed"], "soporte");
    let call = &t["calls"][0];
    assert_eq!(call["outcome"], "abandoned_queue");
    assert_eq!(call["queue"], "software");
    assert!(call["agent"].is_null());
    assert_eq!(call["hung_up_by"], "caller");
    let path: Vec<(String, Option<String>)> = call["ivr_path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|s| {
            (
                s["menu"].as_str().unwrap_or_default().to_string(),
                s["key"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        path,
        [
            ("idioma".to_string(), None),
            ("idioma".to_string(), Some("1".to_string())),
            ("principal".to_string(), None),
            ("principal".to_string(), Some("1".to_string())),
        ]
    );
    let e = entries(&t);
    assert_eq!(e[0], "Call arrived from Test (caller) to soporte.");
    for words in [
        "Entered menu idioma.",
        "Pressed 1 in menu idioma.",
        "Language chosen: es.",
        "Queued in software with priority 5.",
        "The caller hung up while waiting.",
    ] {
        assert!(e.iter().any(|x| x == words), "{words} not in {e:?}");
    }
    // Level 1 has 30 minutes from the call that opened it.
    let time = |k: &str| {
        t[k].as_str()
            .and_then(|v| v.parse::<jiff::Timestamp>().ok())
            .map(|v| v.as_millisecond())
            .unwrap_or_else(|| panic!("{k}: {}", t[k]))
    };
    assert_eq!(time("due") - time("created"), 30 * 60_000);
    assert_eq!(t["overdue"], false);
    let log = t["logbook"].as_array().expect("logbook");
    for (i, entry) in log.iter().enumerate() {
        assert_eq!(entry["seq"], i as u64 + 1);
        assert_eq!(entry["author"], "system");
        assert_eq!(entry["section"], "event");
        assert!(entry["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    assert_eq!(
        scrape(&server, "centralita_tickets_total{how=\"new\"}").await,
        1.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_transferred_by_refer_keeps_its_ticket_with_the_agents() {
    let server = start_server().await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    let invite = ana.requests("INVITE").pop().expect("INVITE");
    assert_eq!(
        invite.header("x-centralita-ticket"),
        Some("100001"),
        "the agent's phone gets the real ticket number"
    );
    ana.refer("hardware").await;
    wait_metric(&server, "centralita_queue_waiting{queue=\"hardware\"}", 1.0).await;
    // Ana ends her wrap-up early (*11): the ticket says so.
    wait_status(&server, "ana", "wrap_up").await;
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(WAIT).await);
    assert_eq!(caller.bye().await, Some(200));
    let mut t = wait_ended(&server, 100_001).await;
    wait_until(WAIT, "the end of the wrap-up in the ticket", || {
        t = show(&server, 100_001);
        entries(&t)
            .iter()
            .any(|e| e.starts_with("ana finished the wrap-up after"))
    })
    .await;
    let call = &t["calls"][0];
    assert_eq!(call["agent"], "ana");
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["offers"][0]["agent"], "ana");
    assert_eq!(call["offers"][0]["result"], "answered");
    assert_eq!(call["transfers"][0]["how"], "refer");
    assert_eq!(call["transfers"][0]["to"], "queue hardware");
    let wrapup = call["wrapup_ms"]
        .as_i64()
        .expect("the wrap-up's length on the call");
    assert!(
        (0..15_000).contains(&wrapup),
        "ended by *11 before its 15 s: {wrapup}"
    );
    assert_eq!(t["status"], "in_progress");
    let e = entries(&t);
    for words in [
        "Queued in software with priority 5.",
        "Offered to ana (1 phone(s) ringing).",
        "Answered by ana.",
        "Transferred (refer) to queue hardware.",
        "The caller hung up.",
    ] {
        assert!(e.iter().any(|x| x == words), "{words} not in {e:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_caller_has_a_ticket_that_says_so() {
    let server = start_server_tuned(
        |c| {
            c.acd.lines = 1;
            c.acd.reserve = 1;
        },
        ServerOptions::default(),
    )
    .await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (_, resp) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(486));
    let t = show(&server, 100_001);
    assert_eq!(t["calls"][0]["outcome"], "blocked");
    assert!(entries(&t)[1].contains("486"));
    let listed = cli(&server, &["tickets", "list"]);
    assert_eq!(listed[0]["number"], 100_001);
    assert_eq!(listed[0]["last_outcome"], "blocked");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_types_an_existing_ticket_number_joins_it() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    // A first call: ticket 100001, over at once.
    let (mut first, _) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    assert_eq!(first.bye().await, Some(200));
    wait_ended(&server, 100_001).await;
    // A second call types 100001 in the follow-up option.
    let (mut call, _) = Call::place(client, "soporte", "0 101").await;
    call.wait_packets(5, WAIT).await;
    call.send_rfc4733('1').await;
    wait_metric(
        &server,
        "centralita_ivr_menu_entries_total{menu=\"principal\"}",
        1.0,
    )
    .await;
    for d in "4100001#".chars() {
        call.send_rfc4733(d).await;
    }
    wait_metric(
        &server,
        "centralita_queue_waiting{queue=\"seguimiento\"}",
        1.0,
    )
    .await;
    assert_eq!(call.bye().await, Some(200));
    let t = wait_ended(&server, 100_001).await;
    let calls = t["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "the second call joined the first ticket");
    assert_eq!(calls[1]["fields"]["ticket"], "100001");
    assert_eq!(calls[1]["queue"], "seguimiento");
    assert_eq!(calls[1]["outcome"], "abandoned_queue");
    assert!(entries(&t)
        .iter()
        .any(|e| e.starts_with("A new call joins this ticket")));
    let own = show(&server, 100_002);
    assert_eq!(own["status"], "closed");
    assert_eq!(own["merged_into"], 100_001);
    assert_eq!(
        scrape(&server, "centralita_tickets_total{how=\"joined\"}").await,
        1.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logbook_verifies_and_an_edit_made_behind_its_back_is_named() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, _) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(call.bye().await, Some(200));
    wait_ended(&server, 100_001).await;
    let opts = server.store_options().clone();
    let (ok, said) = common::binary::logbook_verifies(&server);
    assert!(ok, "{said}");
    assert!(said.contains("no tampering found"), "{said}");
    // Someone edits an entry in the file, triggers dropped.
    let db = rusqlite::Connection::open(&opts.path).expect("open the file");
    db.execute_batch(
        "DROP TRIGGER logbook_no_update;
         UPDATE logbook SET text = 'Nothing happened.' WHERE ticket = 100001 AND seq = 2;",
    )
    .expect("edited");
    drop(db);
    let (ok, said) = common::binary::logbook_verifies(&server);
    assert!(!ok, "{said}");
    assert!(said.contains("ticket 100001: entry 2 was edited"), "{said}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_no_ticket_can_be_written_new_calls_get_503_and_health_says_so() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut up, resp) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200));
    // The database starts refusing new tickets (as a full disk would).
    let db = rusqlite::Connection::open(&server.store_options().path).expect("open");
    db.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON tickets
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .expect("trigger");
    let (_, resp) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(503), "no ticket, no call");
    // The next callers are refused at once and told when to try again
    // (one call a second still tries the store, without Retry-After).
    let mut told = false;
    for _ in 0..5 {
        let (_, resp) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
        assert_eq!(resp.status(), Some(503));
        if resp.header("retry-after").is_some() {
            told = true;
            break;
        }
    }
    assert!(told, "503 with Retry-After while the store fails");
    let (code, body) = http_get(server.http_addr, "/health").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"store\":\"failing\""), "{body}");
    assert!(scrape(&server, "centralita_store_errors_total").await >= 1.0);
    assert!(scrape(&server, "centralita_calls_total{outcome=\"unavailable\"}").await >= 2.0);
    // The call that was up goes on.
    let mark = up.packets().len();
    up.wait_packets(mark + 10, WAIT).await;
    // The disk has room again: within a second or two a call tries the
    // store, gets its ticket, and every call after it is taken.
    db.execute_batch("DROP TRIGGER full").expect("drop");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut again = loop {
        let (call, resp) = Call::place(Arc::clone(&client), "soporte", "0 101").await;
        if resp.status() == Some(200) {
            break call;
        }
        assert_eq!(resp.status(), Some(503));
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls are taken again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (code, body) = http_get(server.http_addr, "/health").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"store\":\"ok\""), "{body}");
    assert_eq!(up.bye().await, Some(200));
    assert_eq!(again.bye().await, Some(200));
    server.shutdown().await;
}
