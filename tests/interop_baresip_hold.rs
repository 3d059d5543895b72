//! Interop: baresip as the agent holds and resumes its caller with its own
//! `/hold` and `/resume` (re-INVITEs with sendonly, then sendrecv): the
//! caller hears the hold music meanwhile. A binary of its own, so that it
//! never runs beside the other baresip tests (two softphones and SIPp on
//! two cores starve each other's audio). Skipped with a printed reason when
//! baresip is missing, failed instead under CENTRALITA_REQUIRE_INTEROP=1.

mod common;

use common::baresip::{baresip_available, baresip_dir, spawn_baresip};
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_holds_and_resumes_its_caller() {
    if !baresip_available() {
        return;
    }
    use std::io::Write;
    use std::sync::Arc;
    let server = start_server().await;
    let dir = baresip_dir(server.sip_addr, "bruno", "bruno-demo-1234");
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
    // The *11 call over first: baresip resumes a held call by itself when
    // another of its calls ends.
    wait_until(
        Duration::from_secs(10),
        "the feature-code call is over",
        || server.metrics.calls_active.get() == 0,
    )
    .await;
    let client = Arc::new(SipClient::new(server.sip_addr).await);
    let (caller, _) = Call::place(client, "202", "0 101").await;
    wait_status(&server, "bruno", "on_call").await;
    // Bruno's own hold key: a re-INVITE that centralita answers; the caller
    // hears the hold music.
    let m = caller.packets().len();
    command("/hold");
    wait_until(Duration::from_secs(10), "the caller is on hold", || {
        metric(&server.metrics.render(), "centralita_calls_on_hold") == 1.0
    })
    .await;
    let corr = heard_after(&caller, m, "music", "hold").await;
    command("/resume");
    let resumed = {
        let server = &server;
        let start = std::time::Instant::now();
        loop {
            if metric(&server.metrics.render(), "centralita_calls_on_hold") == 0.0 {
                break true;
            }
            if start.elapsed() > Duration::from_secs(10) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let text = server.metrics.render();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(corr >= 0.9, "hold music correlation {corr:.3}");
    assert!(resumed, "baresip's /resume brings the caller back");
    assert!(
        metric(
            &text,
            "centralita_sip_requests_total{direction=\"in\",method=\"INVITE\"}"
        ) >= 4.0,
        "baresip's re-INVITEs arrived (the call, *11, hold, resume)"
    );
    assert_eq!(
        server.agent_status("bruno").await.map(|s| s.as_str()),
        Some("on_call"),
        "still Bruno's call"
    );
    server.shutdown().await;
}
