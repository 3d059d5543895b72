//! Helpdesk webhooks in Zammad's generic CTI shape, received by a small
//! HTTP server of the test's own: a call answered by an agent is told as
//! newCall, answer and hangup, in order, under one callId; a receiver that
//! is down is counted and never holds a call up.

mod common;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use centralita::helpdesk::CtiTarget;
use centralita::server::ServerOptions;
use common::phone::{caller_put_through, AgentPhone};
use common::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};

type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A receiver on 127.0.0.1 that keeps what is posted to it.
async fn receiver() -> (std::net::SocketAddr, Received) {
    let got: Received = Arc::default();
    let app = Router::new()
        .route(
            "/api/v1/cti/{token}",
            post(
                |State(got): State<Received>,
                 axum::extract::Path(token): axum::extract::Path<String>,
                 Json(v): Json<Value>| async move {
                    if let Ok(mut g) = got.lock() {
                        g.push((token, v));
                    }
                    "{}"
                },
            ),
        )
        .with_state(Arc::clone(&got));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_is_told_to_the_helpdesk_as_new_call_answer_and_hangup() {
    let (addr, got) = receiver().await;
    let target = CtiTarget::parse(&format!("http://{addr}/api/v1/cti"), "s3cr3t").expect("url");
    let server = start_server_tuned(move |c| c.cti = Some(target), ServerOptions::default()).await;
    let ana = AgentPhone::ready(&server, "ana").await;
    let mut caller = caller_put_through(&server, "201", &ana, "ana").await;
    assert_eq!(caller.bye().await, Some(200));
    wait_until(WAIT, "three webhooks", || {
        got.lock().map(|g| g.len() >= 3).unwrap_or(false)
    })
    .await;
    let got = got.lock().map(|g| g.clone()).unwrap_or_default();
    let events: Vec<&str> = got
        .iter()
        .filter_map(|(_, v)| v["event"].as_str())
        .collect();
    assert_eq!(events, ["newCall", "answer", "hangup"]);
    assert!(
        got.iter().all(|(token, _)| token == "s3cr3t"),
        "the token is in the path"
    );
    let call_id = &got[0].1["callId"];
    assert!(got.iter().all(|(_, v)| &v["callId"] == call_id), "{got:?}");
    let (new_call, answer, hangup) = (&got[0].1, &got[1].1, &got[2].1);
    assert_eq!(new_call["from"], "caller");
    assert_eq!(new_call["to"], "201");
    assert_eq!(new_call["direction"], "in");
    assert_eq!(answer["answeringNumber"], "ana");
    assert_eq!(answer["user[]"], serde_json::json!(["Ana Torres"]));
    assert_eq!(answer["to"], "201");
    assert_eq!(hangup["cause"], "normalClearing");
    assert_eq!(
        scrape(&server, "centralita_webhooks_total{result=\"sent\"}").await,
        3.0
    );
    drop(ana);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helpdesk_that_is_down_is_counted_and_never_holds_a_call_up() {
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let target = CtiTarget::parse(&format!("http://{dead}/api/v1/cti"), "t").expect("url");
    let server = start_server_tuned(move |c| c.cti = Some(target), ServerOptions::default()).await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, resp) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(resp.status(), Some(200), "answered as ever");
    assert_eq!(call.bye().await, Some(200));
    wait_metric(&server, "centralita_webhooks_total{result=\"failed\"}", 2.0).await;
    server.shutdown().await;
}
