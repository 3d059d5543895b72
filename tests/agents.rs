//! Agents' softphones: REGISTER with digest authentication (SHA-256 offered
//! first, MD5 second), bindings, wrong credentials, replays, and the feature
//! codes that change an agent's state, answered with a short prompt.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;

const ANA: (&str, &str) = ("ana", "ana-demo-1234");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_is_challenged_sha256_first_and_accepted_with_either() {
    let server = start_server().await;
    let client = SipClient::new(server.sip_addr).await;
    let (challenge, ok) = client.register(ANA.0, ANA.1, 600, "SHA-256").await;
    assert_eq!(challenge.status(), Some(401));
    let offered = challenge.all("www-authenticate");
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert!(
        offered[0].contains("algorithm=SHA-256"),
        "SHA-256 first: {offered:?}"
    );
    assert!(
        offered[1].contains("algorithm=MD5"),
        "MD5 second: {offered:?}"
    );
    assert!(offered
        .iter()
        .all(|c| c.contains("realm=\"centralita\"") && c.contains("qop=\"auth\"")));
    assert_eq!(ok.status(), Some(200), "SHA-256 credentials accepted");
    let contact = ok.header("contact").unwrap_or_default();
    assert!(
        contact.contains("ana-phone@") && contact.contains("expires="),
        "{contact}"
    );
    assert_eq!(server.metrics.agents_registered.get(), 1);
    // MD5, as Debian's baresip and SIPp use, from another phone of Bruno's.
    let other = SipClient::new(server.sip_addr).await;
    let (_, ok) = other.register("bruno", "bruno-demo-1234", 600, "MD5").await;
    assert_eq!(ok.status(), Some(200), "MD5 credentials accepted");
    assert_eq!(server.metrics.agents_registered.get(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_unknown_credentials_get_the_same_403_and_are_counted() {
    let server = start_server().await;
    let client = SipClient::new(server.sip_addr).await;
    let (_, wrong) = client.register(ANA.0, "not-her-password", 600, "MD5").await;
    assert_eq!(wrong.status(), Some(403));
    let (_, unknown) = client.register("nobody", "whatever", 600, "MD5").await;
    assert_eq!(
        unknown.status(),
        Some(403),
        "an unknown account looks the same as a wrong password"
    );
    assert_eq!(
        scrape(
            &server,
            "centralita_sip_auth_failures_total{method=\"REGISTER\"}"
        )
        .await,
        2.0
    );
    assert_eq!(server.metrics.agents_registered.get(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_register_is_challenged_again_not_accepted() {
    let server = start_server().await;
    let client = SipClient::new(server.sip_addr).await;
    let cid = "replay-1";
    let first = client
        .transact(&client.register_bytes(ANA.0, cid, 1, 600, None))
        .await
        .expect("401");
    let challenge = auth::parse_challenge(first.all("www-authenticate")[1]);
    let uri = format!("sip:{}", server.sip_addr.ip());
    let authz = auth::authorization(&challenge, ANA.0, ANA.1, "REGISTER", &uri, 1);
    let ok = client
        .transact(&client.register_bytes(ANA.0, cid, 2, 600, Some(&authz)))
        .await
        .expect("200");
    assert_eq!(ok.status(), Some(200));
    // The same credentials (same nonce, same nc) in a new request: a replay.
    let again = client
        .transact(&client.register_bytes(ANA.0, cid, 3, 600, Some(&authz)))
        .await
        .expect("answer");
    assert_eq!(
        again.status(),
        Some(401),
        "replayed nonce-count is challenged"
    );
    assert!(again
        .all("www-authenticate")
        .iter()
        .any(|c| c.contains("stale=true")));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregister_removes_the_binding_and_logs_the_agent_out() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (_, ok) = client.register(ANA.0, ANA.1, 600, "MD5").await;
    assert_eq!(ok.status(), Some(200));
    // Ready by feature code, then unregister: logged out.
    let (call, resp) = Call::place_as_agent(Arc::clone(&client), "*11", ANA.0, ANA.1).await;
    assert_eq!(resp.status(), Some(200));
    assert!(call.expect_bye(Duration::from_secs(10)).await);
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("available")
    );
    let (_, gone) = client.register(ANA.0, ANA.1, 0, "MD5").await;
    assert_eq!(gone.status(), Some(200));
    assert!(gone.header("contact").is_none(), "no binding left");
    wait_until(WAIT, "agent unregistered", || {
        server.metrics.agents_registered.get() == 0
    })
    .await;
    let mut status = None;
    for _ in 0..100 {
        status = server.agent_status("ana").await;
        if status.map(|s| s.as_str()) == Some("logged_out") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        status.map(|s| s.as_str()),
        Some("logged_out"),
        "last binding gone: logged out"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_brief_an_expiry_gets_423_with_min_expires() {
    let server = start_server().await;
    let client = SipClient::new(server.sip_addr).await;
    let (_, resp) = client.register(ANA.0, ANA.1, 10, "MD5").await;
    assert_eq!(resp.status(), Some(423));
    assert_eq!(resp.header("min-expires"), Some("60"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_codes_change_the_agent_state_with_a_spoken_answer() {
    let server = start_server().await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("logged_out")
    );
    // Without credentials the feature code is challenged, never run.
    let (_, resp) = Call::place(Arc::clone(&client), "*11", "0 101").await;
    assert_eq!(resp.status(), Some(401));
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("logged_out")
    );
    // *11 ready: the agent hears "disponible" and the call ends.
    for (code, state, prompt) in [
        ("*11", "available", "agent_ready"),
        ("*12", "paused", "agent_paused"),
        ("*13", "logged_out", "agent_logged_out"),
    ] {
        let (call, resp) = Call::place_as_agent(Arc::clone(&client), code, ANA.0, ANA.1).await;
        assert_eq!(resp.status(), Some(200), "{code}");
        assert!(
            call.expect_bye(Duration::from_secs(10)).await,
            "{code}: the controller hangs up after the prompt"
        );
        let corr = best_correlation(&call.audio(), &prompt_samples("es", prompt), 20);
        assert!(corr >= 0.9, "{code}: {prompt} correlation {corr:.3}");
        assert_eq!(
            server.agent_status("ana").await.map(|s| s.as_str()),
            Some(state),
            "{code}"
        );
        let gauge = format!("centralita_agents{{state=\"{state}\"}}");
        assert!(scrape(&server, &gauge).await >= 1.0, "{gauge}");
    }
    // Wrong password on a feature code: 403, counted.
    let (_, resp) = Call::place_as_agent(Arc::clone(&client), "*11", ANA.0, "wrong-password").await;
    assert_eq!(resp.status(), Some(403));
    assert_eq!(
        scrape(
            &server,
            "centralita_sip_auth_failures_total{method=\"INVITE\"}"
        )
        .await,
        1.0
    );
    // Supervisors read every agent's state over HTTP.
    let (code, body) = http_get(server.http_addr, "/api/v1/agents").await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let agents = json["agents"].as_array().cloned().unwrap_or_default();
    assert_eq!(agents.len(), 3, "{body}");
    assert!(
        agents
            .iter()
            .any(|a| a["id"] == "ana" && a["state"] == "logged_out"),
        "{body}"
    );
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("logged_out")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_changes_an_agents_state_as_the_feature_codes_do() {
    let server = start_server().await;
    let http = server.http_addr;
    let state_of = |body: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        v["state"].as_str().unwrap_or_default().to_string()
    };
    // No phone registered: logging in would make an agent nobody can reach.
    let (code, body) =
        http_post(http, "/api/v1/agents/ana/state", r#"{"state":"available"}"#).await;
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("registered phone"), "{body}");
    let _phone = common::phone::AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    let (code, body) =
        http_post(http, "/api/v1/agents/ana/state", r#"{"state":"available"}"#).await;
    assert_eq!((code, state_of(&body)), (200, "available".into()), "{body}");
    let (code, body) = http_post(
        http,
        "/api/v1/agents/ana/state",
        r#"{"state":"paused","reason":"training"}"#,
    )
    .await;
    assert_eq!((code, state_of(&body)), (200, "paused".into()), "{body}");
    let (_, body) = http_get(http, "/api/v1/agents").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let ana = v["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == "ana"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ana["state"], "paused");
    assert_eq!(ana["reason"], "training");
    assert_eq!(
        scrape(&server, "centralita_agents{state=\"paused\"}").await,
        1.0
    );
    let (code, body) = http_post(
        http,
        "/api/v1/agents/ana/state",
        r#"{"state":"logged_out"}"#,
    )
    .await;
    assert_eq!(
        (code, state_of(&body)),
        (200, "logged_out".into()),
        "{body}"
    );
    // Bad requests get a 4xx with a JSON error, never a change.
    for (path, json, want) in [
        (
            "/api/v1/agents/nadie/state",
            r#"{"state":"available"}"#,
            404,
        ),
        ("/api/v1/agents/ana/state", r#"{"state":"sleeping"}"#, 422),
        (
            "/api/v1/agents/ana/state",
            r#"{"state":"paused","reason":7}"#,
            422,
        ),
        (
            "/api/v1/agents/ana/state",
            r#"{"state":"paused","reason":""}"#,
            422,
        ),
        ("/api/v1/agents/ana/state", "not json", 400),
    ] {
        let (code, body) = http_post(http, path, json).await;
        assert_eq!(code, want, "{path} {json}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert!(v["error"].is_string(), "{body}");
    }
    assert_eq!(
        server.agent_status("ana").await.map(|s| s.as_str()),
        Some("logged_out")
    );
    server.shutdown().await;
}
