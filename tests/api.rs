//! The HTTP API under /api/v1 as a desk and a script use it: sign-in and
//! sessions, tokens, roles (an agent reading another agent's ticket gets
//! 403, a supervisor gets it), every error a JSON body naming what is
//! wrong, the logbook written through the API and verified, the events
//! that pop the caller's ticket, and the OpenAPI description checked
//! against the routes.

mod common;

use common::phone::{caller_put_through, AgentPhone, Answer};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Sign in; the session cookie (`name=value`).
async fn sign_in(http: SocketAddr, user: &str, password: &str) -> String {
    let body = format!(r#"{{"user":"{user}","password":"{password}"}}"#);
    let r = http_send(http, "POST", "/api/v1/session", &[], Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Max-Age="), "{set}");
    set.split(';').next().expect("name=value").to_string()
}

async fn get(http: SocketAddr, path: &str, cookie: &str) -> HttpReply {
    http_send(http, "GET", path, &[("Cookie", cookie)], None).await
}

async fn send(http: SocketAddr, method: &str, path: &str, cookie: &str, body: &str) -> HttpReply {
    http_send(http, method, path, &[("Cookie", cookie)], Some(body)).await
}

/// The error body: `{"error": …}` (and the field, if any).
fn error_of(r: &HttpReply) -> (String, Option<String>) {
    let v = r.json();
    let e = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error: {}", r.body))
        .to_string();
    (e, v["field"].as_str().map(str::to_string))
}

#[test]
fn the_openapi_description_names_every_route_and_only_those() {
    let doc: Value = serde_json::from_str(centralita::http::OPENAPI).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(move |m| (m.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = centralita::http::api_routes()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&described).collect();
    let absent: Vec<_> = described.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes the description lacks: {missing:?}"
    );
    assert!(absent.is_empty(), "described but not routed: {absent:?}");
    // Every schema it refers to is there.
    let text = centralita::http::OPENAPI;
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap_or_default();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "schema {name} is referred to but not described"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_signs_in_and_out_and_nothing_is_served_without_credentials() {
    let server = start_server().await;
    let http = server.http_addr;
    // Without credentials: 401, a JSON error, and how to sign in.
    for path in [
        "/api/v1/tickets",
        "/api/v1/agents",
        "/api/v1/events",
        "/api/v1/session",
    ] {
        let r = http_send(http, "GET", path, &[], None).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").is_some(), "{path}");
        error_of(&r);
    }
    let r = http_send(
        http,
        "GET",
        "/api/v1/agents",
        &[("Authorization", "Bearer wrong")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = http_send(
        http,
        "GET",
        "/api/v1/agents",
        &[("Cookie", &format!("centralita_session={}", "0".repeat(64)))],
        None,
    )
    .await;
    assert_eq!(r.status, 401, "a made-up session");
    // Wrong password: 401; unknown user: the same.
    for body in [
        r#"{"user":"ana","password":"bruno-demo-1234"}"#,
        r#"{"user":"nadie","password":"x"}"#,
    ] {
        let r = http_send(http, "POST", "/api/v1/session", &[], Some(body)).await;
        assert_eq!(r.status, 401, "{body}");
        assert!(r.header("set-cookie").is_none());
    }
    // A bad body names what is wrong.
    let r = http_send(
        http,
        "POST",
        "/api/v1/session",
        &[],
        Some(r#"{"user":"ana"}"#),
    )
    .await;
    assert_eq!(
        (r.status, error_of(&r).1.as_deref()),
        (422, Some("password")),
        "{}",
        r.body
    );
    let r = http_send(http, "POST", "/api/v1/session", &[], Some("{not json")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    error_of(&r);
    // Ana signs in with her phone's password and sees who she is.
    let ana = sign_in(http, "ana", "ana-demo-1234").await;
    let r = get(http, "/api/v1/session", &ana).await;
    assert_eq!(r.status, 200);
    let me = r.json();
    assert_eq!(
        (me["id"].as_str(), me["role"].as_str()),
        (Some("ana"), Some("agent"))
    );
    assert_eq!(me["name"], "Ana Torres");
    assert!(me["config"]["dispositions"]
        .as_array()
        .is_some_and(|d| d.len() >= 3));
    // Signed out, the cookie is worth nothing.
    let r = http_send(http, "DELETE", "/api/v1/session", &[("Cookie", &ana)], None).await;
    assert_eq!(r.status, 204);
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(get(http, "/api/v1/session", &ana).await.status, 401);
    // A supervisor, and a script's token.
    let sara = sign_in(http, "sara", "sara-demo-1234").await;
    assert_eq!(
        get(http, "/api/v1/session", &sara).await.json()["role"],
        "supervisor"
    );
    let (code, _) = http_get(http, "/api/v1/queues").await;
    assert_eq!(code, 200, "the demo token");
    assert_eq!(
        scrape(&server, "centralita_api_sign_ins_total{result=\"failed\"}").await,
        2.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_from_one_address_are_refused_for_a_while_and_counted() {
    let server = start_server().await;
    let http = server.http_addr;
    // Ten wrong passwords at once (before any of them is slowed down).
    let tries = (0..10).map(|i| async move {
        let body = format!(r#"{{"user":"ana","password":"guess-{i}"}}"#);
        http_send(http, "POST", "/api/v1/session", &[], Some(&body))
            .await
            .status
    });
    let codes = futures_util::future::join_all(tries).await;
    assert!(codes.iter().all(|c| *c == 401), "{codes:?}");
    // Now even the right password is refused, and told when to come back.
    let r = http_send(
        http,
        "POST",
        "/api/v1/session",
        &[],
        Some(r#"{"user":"ana","password":"ana-demo-1234"}"#),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((60..=900).contains(&wait), "{wait}");
    assert_eq!(
        scrape(&server, "centralita_api_sign_ins_total{result=\"refused\"}").await,
        1.0
    );
    assert_eq!(
        scrape(&server, "centralita_api_sign_ins_total{result=\"failed\"}").await,
        10.0
    );
    // A token still works: the throttle is on sign-ins.
    assert_eq!(http_get(http, "/api/v1/agents").await.0, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_naming_the_field_and_oversize_bodies_are_refused() {
    let server = start_server().await;
    let http = server.http_addr;
    let sara = sign_in(http, "sara", "sara-demo-1234").await;
    for (method, path, body, want, field) in [
        ("GET", "/api/v1/tickets/123", "", 404, None),
        ("GET", "/api/v1/tickets/100001", "", 404, None),
        (
            "GET",
            "/api/v1/tickets?status=lost",
            "",
            422,
            Some("status"),
        ),
        ("GET", "/api/v1/tickets?limit=5000", "", 422, Some("limit")),
        (
            "GET",
            "/api/v1/tickets?since=yesterday",
            "",
            422,
            Some("since"),
        ),
        ("GET", "/api/v1/tickets?colour=red", "", 422, None),
        (
            "POST",
            "/api/v1/tickets/100001/entries",
            r#"{"section":"gossip","text":"x"}"#,
            422,
            Some("section"),
        ),
        (
            "POST",
            "/api/v1/tickets/100001/entries",
            r#"{"section":"event","text":"x"}"#,
            422,
            Some("section"),
        ),
        (
            "POST",
            "/api/v1/tickets/100001/entries",
            r#"{"section":"planning","text":"  "}"#,
            422,
            Some("text"),
        ),
        (
            "POST",
            "/api/v1/tickets/100001/entries",
            r#"{"section":"planning"}"#,
            422,
            Some("text"),
        ),
        (
            "PATCH",
            "/api/v1/tickets/100001",
            r#"{"level":1}"#,
            422,
            Some("level"),
        ),
        (
            "PATCH",
            "/api/v1/tickets/100001",
            r#"{"level":3}"#,
            422,
            Some("visit"),
        ),
        (
            "PATCH",
            "/api/v1/tickets/100001",
            r#"{"disposition":"magic"}"#,
            422,
            Some("disposition"),
        ),
        (
            "PATCH",
            "/api/v1/tickets/100001",
            r#"{}"#,
            422,
            Some("status"),
        ),
        (
            "PATCH",
            "/api/v1/tickets/100001",
            r#"{"level":3,"visit":{"when":"mañana","where":"a","technician":"b","reason":"c"}}"#,
            422,
            Some("visit.when"),
        ),
        (
            "POST",
            "/api/v1/agents/ana/state",
            r#"{"state":"dancing"}"#,
            422,
            Some("state"),
        ),
        ("DELETE", "/api/v1/tickets", "", 405, None),
        ("GET", "/api/v2/tickets", "", 404, None),
    ] {
        let r = if body.is_empty() {
            http_send(http, method, path, &[("Cookie", &sara)], None).await
        } else {
            send(http, method, path, &sara, body).await
        };
        assert_eq!(r.status, want, "{method} {path} {body}: {}", r.body);
        let (_, f) = error_of(&r);
        if field.is_some() {
            assert_eq!(f.as_deref(), field, "{method} {path} {body}: {}", r.body);
        }
    }
    // Too big a body: 413, and still JSON.
    let big = format!(
        r#"{{"section":"planning","text":"{}"}}"#,
        "a".repeat(40_000)
    );
    let r = send(http, "POST", "/api/v1/tickets/100001/entries", &sara, &big).await;
    assert_eq!(r.status, 413);
    error_of(&r);
    // Not JSON at all.
    let r = http_send(
        http,
        "POST",
        "/api/v1/tickets/100001/entries",
        &[("Cookie", &sara), JSON],
        None,
    )
    .await;
    assert!(matches!(r.status, 400 | 415), "{}", r.body);
    server.shutdown().await;
}

/// Read server-sent events until one named `name` comes; its data.
async fn next_event(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::TcpStream>>,
    name: &str,
) -> Value {
    let mut current = String::new();
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no {name} event in time"))
            .expect("read")
            .expect("the stream goes on");
        if let Some(e) = line.strip_prefix("event: ") {
            current = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            if current == name {
                return serde_json::from_str(d).expect("JSON data");
            }
        }
    }
}

/// Listen to the events as the holder of `cookie`.
async fn listen(
    http: SocketAddr,
    cookie: &str,
) -> tokio::io::Lines<BufReader<tokio::net::TcpStream>> {
    let mut s = tokio::net::TcpStream::connect(http).await.expect("connect");
    let req = format!("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut lines = BufReader::new(s).lines();
    let status = lines.next_line().await.expect("read").expect("status line");
    assert!(status.contains(" 200 "), "{status}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_its_ticket_through_the_api_and_sees_no_one_elses() {
    let server = start_server().await;
    let http = server.http_addr;
    let ana = sign_in(http, "ana", "ana-demo-1234").await;
    let bruno = sign_in(http, "bruno", "bruno-demo-1234").await;
    let sara = sign_in(http, "sara", "sara-demo-1234").await;
    let mut ana_events = listen(http, &ana).await;
    assert_eq!(next_event(&mut ana_events, "hello").await["id"], "ana");
    let mut sara_events = listen(http, &sara).await;
    next_event(&mut sara_events, "hello").await;
    // Ana's phone rings for a while: the pop comes before it answers.
    let phone = AgentPhone::ready(&server, "ana").await;
    phone.set_answer(Answer::After(1500));
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut caller, _) = Call::place(client, "201", "0 101").await;
    let pop = next_event(&mut ana_events, "offered").await;
    assert_eq!(pop["ticket"], 100_001);
    assert_eq!(pop["queue"], "software");
    assert_eq!(pop["caller_name"], "Test");
    assert_eq!(pop["dialed"], "201");
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("offered"),
        "popped while the phone rings"
    );
    // The ringing ticket is hers to read already.
    let r = get(http, "/api/v1/tickets/100001", &ana).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["calls"][0]["offers"][0]["agent"], "ana");
    let answered = next_event(&mut ana_events, "answered").await;
    assert_eq!(answered["ticket"], 100_001);
    let arrived = next_event(&mut sara_events, "call_arrived").await;
    assert_eq!(arrived["ticket"], 100_001);
    // Not Bruno's: 403 for him, and it is not in his list.
    let r = get(http, "/api/v1/tickets/100001", &bruno).await;
    assert_eq!(r.status, 403, "{}", r.body);
    error_of(&r);
    let r = send(
        http,
        "POST",
        "/api/v1/tickets/100001/entries",
        &bruno,
        r#"{"section":"planning","text":"x"}"#,
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        get(http, "/api/v1/tickets", &bruno).await.json()["tickets"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        get(http, "/api/v1/tickets?agent=ana", &bruno).await.status,
        403
    );
    let r = send(
        http,
        "POST",
        "/api/v1/agents/ana/state",
        &bruno,
        r#"{"state":"paused"}"#,
    )
    .await;
    assert_eq!(r.status, 403, "an agent changes its own state only");
    assert_eq!(
        get(http, "/api/v1/calls", &bruno).await.json()["calls"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        get(http, "/api/v1/calls", &ana).await.json()["calls"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // Ana writes what the problem is; it is committed before the 201.
    let r = send(
        http,
        "POST",
        "/api/v1/tickets/100001/entries",
        &ana,
        r#"{"section":"understanding","text":"La impresora de la oficina 3 no imprime desde ayer."}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let seq = r.json()["seq"].as_u64().expect("seq");
    let t = get(http, "/api/v1/tickets/100001", &ana).await.json();
    let entry = t["logbook"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["seq"] == seq))
        .cloned()
        .expect("the entry");
    assert_eq!(entry["author"], "agent:ana");
    assert_eq!(entry["section"], "understanding");
    assert!(t["due"].is_string(), "a level-1 time limit");
    // Found by its words (indexed between the store's commits), by the
    // supervisor.
    let mut found = Value::Null;
    for _ in 0..100 {
        found = get(http, "/api/v1/tickets?text=impresora%20oficina", &sara)
            .await
            .json();
        if found["tickets"][0]["number"] == 100_001 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(found["tickets"][0]["number"], 100_001, "{found}");
    let changed = next_event(&mut sara_events, "ticket_changed").await;
    assert_eq!(
        (changed["ticket"].as_u64(), changed["by"].as_str()),
        (Some(100_001), Some("agent:ana"))
    );
    // The caller hangs up; wrap-up: a disposition and a status.
    assert_eq!(caller.bye().await, Some(200));
    next_event(&mut ana_events, "ended").await;
    let r = send(
        http,
        "PATCH",
        "/api/v1/tickets/100001",
        &ana,
        r#"{"disposition":"workaround","status":"in_progress"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["disposition"], "workaround");
    // The supervisor books an on-site visit: level 3, with its visit.
    let visit = r#"{"level":3,"visit":{"when":"2026-12-07T10:00:00+01:00","where":"Oficina 3, Calle Mayor 1","technician":"carmen","reason":"la impresora necesita un fusor nuevo"}}"#;
    let r = send(http, "PATCH", "/api/v1/tickets/100001", &sara, visit).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert_eq!(
        (t["level"].as_u64(), t["status"].as_str()),
        (Some(3), Some("escalated"))
    );
    assert_eq!(t["visit"]["technician"], "carmen");
    let said: Vec<(String, String)> = t["logbook"]
        .as_array()
        .expect("logbook")
        .iter()
        .map(|e| {
            (
                e["author"].as_str().unwrap_or_default().into(),
                e["text"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert!(
        said.contains(&("agent:ana".into(), "Disposition: workaround.".into())),
        "{said:?}"
    );
    assert!(said.iter().any(|(a, t)| a == "supervisor:sara" && t.starts_with("On-site visit booked (level 3)")), "{said:?}");
    // Ana back to ready from the desk.
    let r = send(
        http,
        "POST",
        "/api/v1/agents/ana/state",
        &ana,
        r#"{"state":"available"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // And the logbook verifies.
    let (ok, said) = common::binary::logbook_verifies(&server);
    assert!(ok, "{said}");
    drop(phone);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reads_everything_pages_tickets_and_sees_queues_and_the_knowledge_base() {
    let server = start_server().await;
    let http = server.http_addr;
    let sara = sign_in(http, "sara", "sara-demo-1234").await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    assert_eq!(caller.bye().await, Some(200));
    // Three more tickets: callers who hang up in the menus.
    for _ in 0..3 {
        let client = Arc::new(SipClient::new(server.sip_addr).await);
        let (mut c, _) = Call::place(client, "soporte", "0 101").await;
        assert_eq!(c.bye().await, Some(200));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tickets?limit=3&cursor={c}"),
            None => "/api/v1/tickets?limit=3".to_string(),
        };
        let page = get(http, &path, &sara).await.json();
        seen.extend(
            page["tickets"]
                .as_array()
                .expect("tickets")
                .iter()
                .map(|t| t["number"].as_u64().unwrap_or(0)),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![100_004, 100_003, 100_002, 100_001],
        "newest first, each once"
    );
    let r = get(http, "/api/v1/tickets/100001", &sara).await;
    assert_eq!(r.status, 200, "a supervisor reads any ticket");
    let only_ana = get(http, "/api/v1/tickets?agent=ana", &sara).await.json();
    assert_eq!(only_ana["tickets"].as_array().map(Vec::len), Some(1));
    let q = get(http, "/api/v1/queues", &sara).await.json();
    let software = q["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == "software"))
        .cloned()
        .expect("software");
    assert_eq!(software["answered"], 1);
    assert!(software["agents"]["wrap_up"].as_u64().is_some());
    // The wallboard's staffing figures: a wait was measured, and Erlang C
    // gives a whole number of agents.
    assert!(software["average_speed_of_answer_secs"].as_f64().is_some());
    assert!(software["agents_needed"].as_u64().is_some());
    assert!(software["agents_short"].as_u64().is_some());
    let agents = get(http, "/api/v1/agents", &sara).await.json();
    let a = agents["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "ana"))
        .cloned()
        .expect("ana");
    assert_eq!(a["name"], "Ana Torres");
    assert_eq!(a["calls"], 1);
    assert!(a["since"].as_str().is_some_and(|s| s.ends_with('Z')));
    // The knowledge base: found by words, in either language, and read.
    let kb = get(http, "/api/v1/kb?q=impresora&language=es", &sara)
        .await
        .json();
    let first = kb["articles"][0].clone();
    assert!(first["id"].is_string(), "{kb}");
    assert!(
        kb["categories"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "hardware")),
        "{kb}"
    );
    let id = first["id"].as_str().unwrap_or_default().to_string();
    let article = get(http, &format!("/api/v1/kb/{id}?language=en"), &sara).await;
    assert_eq!(article.status, 200);
    assert_eq!(article.json()["language"], "en");
    assert_eq!(
        get(http, "/api/v1/kb/no-such-article", &sara).await.status,
        404
    );
    let r = send(
        http,
        "POST",
        "/api/v1/tickets/100001/entries",
        &sara,
        &format!(r#"{{"section":"planning","text":"Seguir el artículo.","article":"{id}"}}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t = get(http, "/api/v1/tickets/100001", &sara).await.json();
    let last = t["logbook"]
        .as_array()
        .and_then(|l| l.last())
        .cloned()
        .expect("entry");
    assert!(
        last["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("KB: {id}"))),
        "{last}"
    );
    // The description is served.
    let r = http_send(http, "GET", "/api/v1/openapi.json", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["openapi"], "3.1.0");
    drop(ana);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalating_to_level_2_can_move_the_caller_on_the_line_to_another_queue() {
    let server = start_server().await;
    let http = server.http_addr;
    let ana = sign_in(http, "ana", "ana-demo-1234").await;
    let phone = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &phone, "ana").await;
    // Asked wrongly: a re-queue comes with level 2, to a queue that exists.
    for (body, field) in [
        (r#"{"requeue":"general"}"#, "requeue"),
        (r#"{"level":2,"requeue":"nowhere"}"#, "requeue"),
    ] {
        let r = send(http, "PATCH", "/api/v1/tickets/100001", &ana, body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(error_of(&r).1.as_deref(), Some(field));
    }
    // Ana escalates and the caller goes on waiting in the general queue.
    let r = send(
        http,
        "PATCH",
        "/api/v1/tickets/100001",
        &ana,
        r#"{"level":2,"requeue":"general"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["level"], 2);
    wait_metric(&server, "centralita_queue_waiting{queue=\"general\"}", 1.0).await;
    wait_until(WAIT, "the BYE to Ana's phone", || {
        !phone.requests("BYE").is_empty()
    })
    .await;
    let t = wait_ticket_entry(http, &ana, "Transferred (desk) to queue general.").await;
    assert_eq!(t["calls"][0]["transfers"][0]["how"], "desk");
    // Once the caller has left her, there is no one to re-queue.
    let r = send(
        http,
        "PATCH",
        "/api/v1/tickets/100001",
        &ana,
        r#"{"level":2,"requeue":"general"}"#,
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(caller.bye().await, Some(200));
    drop(phone);
    server.shutdown().await;
}

/// Wait until ticket 100001's logbook holds `text` (read as `cookie`).
async fn wait_ticket_entry(http: SocketAddr, cookie: &str, text: &str) -> Value {
    let mut t = Value::Null;
    for _ in 0..100 {
        t = get(http, "/api/v1/tickets/100001", cookie).await.json();
        if t["logbook"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["text"] == text))
        {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{text:?} not in the logbook: {t}");
}
