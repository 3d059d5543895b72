//! What a supervisor reads in Prometheus, end to end: real calls move the
//! lines by phase, the queue KPIs (offered, answered within and after the
//! threshold, abandoned, the wait, talk and wrap-up histograms), line time
//! and staffing; the page passes `promtool check metrics`; every metric the
//! shipped dashboard and alerts name is on it.

mod common;

use common::phone::{AgentPhone, Answer};
use common::*;
use std::sync::Arc;
use std::time::Duration;

fn page(server: &centralita::server::Server) -> String {
    server.metrics.render()
}

/// `centralita_lines_in_use{phase="…"}`.
fn phase(text: &str, phase: &str) -> f64 {
    metric(
        text,
        &format!("centralita_lines_in_use{{phase=\"{phase}\"}}"),
    )
}

fn sw(name: &str) -> String {
    format!("{name}{{queue=\"software\"}}")
}

async fn wait_phase(server: &centralita::server::Server, p: &str, n: f64) {
    let lines = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("centralita_lines_in_use{"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = format!("{n} line(s) in phase {p}");
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        let text = page(server);
        if phase(&text, p) == n && metric_sum(&text, "centralita_lines_in_use") == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}: {}", lines(&page(server)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_move_lines_by_phase_and_the_queue_kpis() {
    // The software queue's threshold is 1 s here, so that one caller is
    // answered after it and one within it; abandons count from the first
    // second, against the service level.
    let server = start_server_tuned(
        |c| {
            let q = c.queues.get_mut("software").expect("software queue");
            q.service_level_secs = 1;
            q.short_abandon_secs = 0;
            q.abandons = centralita::acd::AbandonMode::Against;
        },
        Default::default(),
    )
    .await;
    let text = page(&server);
    assert_eq!(metric(&text, "centralita_lines"), 30.0);
    assert_eq!(metric(&text, "centralita_lines_reserved"), 2.0);
    assert_eq!(
        metric(&text, &sw("centralita_queue_service_level_target_ratio")),
        0.8
    );
    assert_eq!(
        metric(
            &text,
            &sw("centralita_queue_service_level_threshold_seconds")
        ),
        1.0
    );
    assert!(
        text.contains("centralita_queue_wait_seconds_bucket{queue=\"software\",le=\"1\"}"),
        "a wait bucket at the queue's threshold"
    );
    assert!(text.contains("centralita_build_info{version=\""));

    // 1. A caller in the IVR holds a line in phase ivr.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut first, _) = Call::place(client, "soporte", "0 101").await;
    wait_phase(&server, "ivr", 1.0).await;
    assert!((metric(&page(&server), "centralita_line_occupancy_ratio") - 1.0 / 30.0).abs() < 1e-9);

    // 2. Spanish, software: it waits in the queue (nobody is logged in).
    first.wait_packets(5, WAIT).await;
    first.send_rfc4733('1').await;
    wait_metric(
        &server,
        "centralita_ivr_menu_entries_total{menu=\"principal\"}",
        1.0,
    )
    .await;
    first.send_rfc4733('1').await;
    wait_phase(&server, "queue", 1.0).await;
    assert_eq!(
        scrape(&server, &sw("centralita_queue_offered_total")).await,
        1.0
    );
    // Past the 1-s threshold before anyone can answer.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // 3. Ana logs in; her phone rings for a while, then answers.
    let phone = AgentPhone::register(server.sip_addr, "ana", "ana-demo-1234").await;
    phone.set_answer(Answer::After(1500));
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    wait_phase(&server, "ringing", 1.0).await;
    wait_phase(&server, "talking", 1.0).await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    let text = page(&server);
    assert_eq!(metric(&text, &sw("centralita_queue_answered_total")), 1.0);
    assert_eq!(
        metric(
            &text,
            &sw("centralita_queue_answered_within_threshold_total")
        ),
        0.0
    );
    assert_eq!(
        metric(&text, &sw("centralita_queue_wait_seconds_count")),
        1.0
    );
    let waited = metric(&text, &sw("centralita_queue_wait_seconds_sum"));
    assert!(waited > 1.0, "waited {waited} s");
    assert_eq!(
        metric(
            &text,
            "centralita_queue_wait_seconds_bucket{queue=\"software\",le=\"1\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(&text, &sw("centralita_queue_service_level_ratio")),
        0.0
    );

    // 4. The caller hangs up: the line is free; Ana's wrap-up ends with the
    //    ready code, and the talk and wrap-up are measured.
    assert_eq!(first.bye().await, Some(200));
    wait_until(WAIT, "no line in use", || {
        metric_sum(&page(&server), "centralita_lines_in_use") == 0.0
    })
    .await;
    wait_status(&server, "ana", "wrap_up").await;
    phone.set_answer(Answer::Auto);
    let desk = Arc::new(SipClient::new(server.sip_addr).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", "ana", "ana-demo-1234").await;
    assert!(ready.expect_bye(Duration::from_secs(10)).await);
    wait_metric(&server, &sw("centralita_queue_wrap_up_seconds_count"), 1.0).await;
    assert_eq!(
        scrape(&server, &sw("centralita_queue_talk_seconds_count")).await,
        1.0
    );
    wait_status(&server, "ana", "available").await;

    // 5. The next caller dials the queue's number and is answered at once:
    //    within the threshold.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut second, _) = Call::place(client, "201", "0 101").await;
    wait_metric(
        &server,
        &sw("centralita_queue_answered_within_threshold_total"),
        1.0,
    )
    .await;
    let text = page(&server);
    assert_eq!(metric(&text, &sw("centralita_queue_answered_total")), 2.0);
    assert_eq!(
        metric(&text, &sw("centralita_queue_service_level_ratio")),
        0.5
    );
    assert!(
        metric(
            &text,
            &sw("centralita_queue_average_speed_of_answer_seconds")
        ) > 0.5
    );
    wait_phase(&server, "talking", 1.0).await;
    assert_eq!(second.bye().await, Some(200));
    wait_status(&server, "ana", "wrap_up").await;

    // 6. A third caller waits while Ana wraps up, and hangs up after 1.5 s:
    //    an abandon after the threshold, against the service level.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut third, _) = Call::place(client, "201", "0 101").await;
    wait_phase(&server, "queue", 1.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(third.bye().await, Some(200));
    wait_metric(&server, &sw("centralita_queue_abandoned_total"), 1.0).await;
    let text = page(&server);
    assert_eq!(
        metric(
            &text,
            &sw("centralita_queue_abandoned_within_threshold_total")
        ),
        0.0
    );
    assert_eq!(
        metric(&text, &sw("centralita_queue_short_abandoned_total")),
        0.0
    );
    assert_eq!(
        metric(&text, &sw("centralita_queue_abandon_wait_seconds_count")),
        1.0
    );
    assert_eq!(metric(&text, &sw("centralita_queue_offered_total")), 3.0);
    // One answered within of two answered and one abandoned.
    let sl = metric(&text, &sw("centralita_queue_service_level_ratio"));
    assert!((sl - 1.0 / 3.0).abs() < 1e-9, "service level {sl}");

    // 7. Line time by phase, agents' time and staffing come with the
    //    once-a-second accounting.
    wait_until(WAIT, "line time accounted", || {
        let text = page(&server);
        metric(&text, "centralita_line_seconds_total{phase=\"queue\"}") > 1.0
            && metric(&text, "centralita_line_seconds_total{phase=\"talking\"}") > 0.0
            && metric(&text, &sw("centralita_staffing_offered_erlangs")) > 0.0
    })
    .await;
    let text = page(&server);
    assert!(metric(&text, "centralita_line_seconds_total{phase=\"ivr\"}") > 0.0);
    assert!(
        metric(
            &text,
            "centralita_agent_logged_in_seconds_total{agent=\"ana\"}"
        ) > 0.0
    );
    assert!(
        metric(
            &text,
            "centralita_agent_handling_seconds_total{agent=\"ana\"}"
        ) > 0.0
    );
    assert_eq!(
        metric(
            &text,
            "centralita_agent_logged_in_seconds_total{agent=\"bruno\"}"
        ),
        0.0
    );
    assert!(metric(&text, &sw("centralita_staffing_agents_needed")) >= 1.0);
    assert!(text.contains("centralita_lines_blocking_probability "));

    check_with_promtool(&text);
    server.shutdown().await;
}

/// `promtool check metrics` on a real page: Prometheus's own naming lint.
fn check_with_promtool(text: &str) {
    if !peer_available("promtool", "--version", "prometheus") {
        return;
    }
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("page written");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `centralita_…` names in a text (dashboard, rules), with a
/// histogram's series suffixes taken off.
fn names_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("centralita_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_name_is_exported() {
    let server = start_server().await;
    // One call answered by the IVR and hung up: SIP responses exist once
    // one has gone out.
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (mut call, _) = Call::place(client, "soporte", "0 101").await;
    assert_eq!(call.bye().await, Some(200));
    let text = page(&server);
    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "config/grafana/centralita.json",
        "config/prometheus/alerts.yml",
    ] {
        let body = std::fs::read_to_string(format!("{root}/{file}")).expect("shipped file");
        let names = names_in(&body);
        assert!(names.len() > 10, "{file} names {} metrics", names.len());
        for name in names {
            // A job or rule name is not a metric (e.g. `job="centralita"`).
            if name == "centralita_" {
                continue;
            }
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{file} names {name}, which /metrics does not export"
            );
        }
    }
    server.shutdown().await;
}
