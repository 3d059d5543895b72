//! Helpdesk events out: Zammad's generic CTI webhooks. Each call that
//! reaches a support number is told as `newCall` (from, to, direction
//! `in`, callId, queue), `answer` (answeringNumber, user) and `hangup`
//! (cause: `normalClearing`, `busy`, `cancel`, `noAnswer`, `congestion`),
//! posted as JSON to `<cti_url>/<cti_token>`.
//!
//! They never delay a call: the events come from the event bus, go into a
//! bounded queue (when it is full they are dropped and counted), and one
//! sender posts them in order, each with a timeout and a few retries. A
//! receiver that fails is counted and logged (at most once a minute), never
//! fatal. The URL names an IP address (never a host name to resolve) and
//! speaks plain HTTP, through hyper's client.

use crate::events::{Event, EventBus};
use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Webhooks waiting to be sent, at most.
pub const QUEUE: usize = 1024;
/// How long one post may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// Tries per webhook.
pub const TRIES: u32 = 3;

/// Where the webhooks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtiTarget {
    pub addr: SocketAddr,
    /// The path, token included (`/api/v1/cti/<token>`).
    pub path: String,
}

impl CtiTarget {
    /// `http://IP[:PORT][/path]` and the token; an error says what is
    /// wrong.
    pub fn parse(url: &str, token: &str) -> Result<CtiTarget, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: expected http://IP:PORT/path (plain HTTP; put a proxy in front for HTTPS)")
        })?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let addr = host
            .parse::<SocketAddr>()
            .or_else(|_| {
                host.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 80))
            })
            .map_err(|_| {
                format!("{host:?}: expected an IP address and port (never a host name to resolve)")
            })?;
        let token_ok = !token.is_empty()
            && token.len() <= 256
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
        if !token_ok {
            return Err("helpdesk.cti_token: expected letters, digits, - _ . ~".into());
        }
        if path.contains(['?', '#', ' ']) {
            return Err(format!("{path:?}: expected a plain path"));
        }
        Ok(CtiTarget {
            addr,
            path: format!("{}/{token}", path.trim_end_matches('/')),
        })
    }
}

/// One webhook's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CtiEvent {
    pub event: &'static str,
    pub from: String,
    pub to: String,
    pub direction: &'static str,
    pub call_id: String,
    #[serde(rename = "user[]", skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answering_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
}

/// The hangup cause Zammad understands, from a call's outcome.
pub fn cause_of(outcome: &str) -> &'static str {
    match outcome {
        "answered" | "transferred" | "callback_done" => "normalClearing",
        "blocked" => "busy",
        "callback_requested" | "callback_failed" => "noAnswer",
        "interrupted" => "congestion",
        _ => "cancel",
    }
}

/// What a call's events come to, as webhooks. `names`: agent id → name.
pub fn to_cti(e: &Event, names: &HashMap<String, String>) -> Option<CtiEvent> {
    let call_id = |ticket: u64, call: u64| format!("{ticket}-{call}");
    match e {
        Event::CallArrived {
            call,
            ticket,
            caller,
            dialed,
            ..
        } => Some(CtiEvent {
            event: "newCall",
            from: caller.clone(),
            to: dialed.clone(),
            direction: "in",
            call_id: call_id(*ticket, *call),
            user: Vec::new(),
            queue: None,
            answering_number: None,
            cause: None,
        }),
        Event::Answered {
            agent,
            call,
            ticket,
            caller,
            ..
        } => Some(CtiEvent {
            event: "answer",
            from: caller.clone(),
            to: String::new(),
            direction: "in",
            call_id: call_id(*ticket, *call),
            user: vec![names.get(agent).cloned().unwrap_or_else(|| agent.clone())],
            queue: None,
            answering_number: Some(agent.clone()),
            cause: None,
        }),
        Event::Ended {
            call,
            ticket,
            agent,
            outcome,
            caller,
            dialed,
            ..
        } => Some(CtiEvent {
            event: "hangup",
            from: caller.clone(),
            to: dialed.clone(),
            direction: "in",
            call_id: call_id(*ticket, *call),
            user: Vec::new(),
            queue: None,
            answering_number: agent.clone(),
            cause: Some(cause_of(outcome)),
        }),
        _ => None,
    }
}

/// Start the webhooks: a listener on the bus and one sender, until
/// `cancel`.
pub fn start(
    target: CtiTarget,
    events: &EventBus,
    names: HashMap<String, String>,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let (tx, rx) = mpsc::channel::<CtiEvent>(QUEUE);
    let mut bus = events.subscribe();
    let dropped = metrics.webhooks.with_label_values(&["dropped"]);
    let listen_cancel = cancel.clone();
    tokio::spawn(async move {
        // The `to` of an answer is the number the call dialed.
        let mut dialed: HashMap<String, String> = HashMap::new();
        loop {
            let e = tokio::select! {
                _ = listen_cancel.cancelled() => return,
                e = bus.recv() => e,
            };
            let e = match e {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    dropped.inc_by(n);
                    continue;
                }
                Err(_) => return,
            };
            let Some(mut w) = to_cti(&e, &names) else {
                continue;
            };
            match w.event {
                "newCall" => {
                    if dialed.len() < 10_000 {
                        dialed.insert(w.call_id.clone(), w.to.clone());
                    }
                }
                "answer" => w.to = dialed.get(&w.call_id).cloned().unwrap_or_default(),
                _ => {
                    dialed.remove(&w.call_id);
                }
            }
            if tx.try_send(w).is_err() {
                dropped.inc();
            }
        }
    });
    tokio::spawn(send_all(target, rx, metrics, cancel));
}

async fn send_all(
    target: CtiTarget,
    mut rx: mpsc::Receiver<CtiEvent>,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{}{}", target.addr, target.path);
    let sent = metrics.webhooks.with_label_values(&["sent"]);
    let failed = metrics.webhooks.with_label_values(&["failed"]);
    let mut last_warned: Option<Instant> = None;
    loop {
        let w = tokio::select! {
            _ = cancel.cancelled() => return,
            w = rx.recv() => match w { Some(w) => w, None => return },
        };
        let body = Bytes::from(serde_json::to_vec(&w).unwrap_or_default());
        let mut outcome = Err(String::new());
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let req = hyper::Request::post(uri.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, "centralita")
                .body(Full::new(body.clone()));
            let Ok(req) = req else {
                outcome = Err("the request could not be built".into());
                break;
            };
            outcome = match tokio::time::timeout(TIMEOUT, client.request(req)).await {
                Ok(Ok(r)) if r.status().is_success() => Ok(()),
                Ok(Ok(r)) => Err(format!("answered {}", r.status())),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
            };
            if outcome.is_ok() {
                break;
            }
        }
        match outcome {
            Ok(()) => sent.inc(),
            Err(e) => {
                failed.inc();
                if last_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    last_warned = Some(Instant::now());
                    tracing::warn!(receiver = %target.addr, error = %e, event = w.event,
                        "a helpdesk webhook failed (said at most once a minute)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_an_ip_address_with_the_token_as_its_last_part() {
        let t = CtiTarget::parse("http://192.0.2.20:3000/api/v1/cti", "abc123").expect("ok");
        assert_eq!(t.addr, "192.0.2.20:3000".parse().expect("addr"));
        assert_eq!(t.path, "/api/v1/cti/abc123");
        let t = CtiTarget::parse("http://192.0.2.20/api/v1/cti/", "x").expect("ok");
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/api/v1/cti/x"));
        for (url, token) in [
            ("http://zammad.example.com/api/v1/cti", "x"),
            ("https://192.0.2.20/api/v1/cti", "x"),
            ("http://192.0.2.20:3000/cti", "a/b"),
            ("http://192.0.2.20:3000/cti", ""),
            ("http://192.0.2.20:3000/cti?x=1", "t"),
        ] {
            assert!(CtiTarget::parse(url, token).is_err(), "{url} {token}");
        }
    }

    #[test]
    fn a_call_is_told_as_new_call_answer_and_hangup_with_zammads_names() {
        let names = HashMap::from([("ana".to_string(), "Ana Torres".to_string())]);
        let arrived = Event::CallArrived {
            call: 7,
            ticket: 100_001,
            caller: "5550101".into(),
            caller_name: None,
            dialed: "soporte".into(),
            at: String::new(),
        };
        let v = serde_json::to_value(to_cti(&arrived, &names).expect("newCall")).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"event": "newCall", "from": "5550101", "to": "soporte",
                "direction": "in", "callId": "100001-7"})
        );
        let answered = Event::Answered {
            agent: "ana".into(),
            call: 7,
            ticket: 100_001,
            caller: "5550101".into(),
            at: String::new(),
        };
        let v = serde_json::to_value(to_cti(&answered, &names).expect("answer")).expect("json");
        assert_eq!(v["answeringNumber"], "ana");
        assert_eq!(v["user[]"], serde_json::json!(["Ana Torres"]));
        let ended = Event::Ended {
            call: 7,
            ticket: 100_001,
            agent: None,
            outcome: "abandoned_queue".into(),
            hung_up_by: "caller".into(),
            caller: "5550101".into(),
            dialed: "soporte".into(),
            at: String::new(),
        };
        let v = serde_json::to_value(to_cti(&ended, &names).expect("hangup")).expect("json");
        assert_eq!(
            (v["event"].as_str(), v["cause"].as_str()),
            (Some("hangup"), Some("cancel"))
        );
        assert_eq!(cause_of("answered"), "normalClearing");
        assert_eq!(cause_of("blocked"), "busy");
    }
}
