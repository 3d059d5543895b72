//! Interop with baresip (Debian `baresip-core`) as an agent's softphone:
//! it registers with digest authentication (MD5, as Debian's baresip does)
//! and the registrar counts it. Skipped with a printed reason when baresip
//! is missing, failed instead under CENTRALITA_REQUIRE_INTEROP=1.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn baresip_available() -> bool {
    let found = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("CENTRALITA_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("baresip is required (CENTRALITA_REQUIRE_INTEROP=1) but not installed: apt-get install baresip-core");
        }
        eprintln!("SKIPPED: baresip not installed (apt-get install baresip-core)");
    }
    found
}

/// A headless baresip config directory registering `user` to `server`.
fn baresip_dir(server: std::net::SocketAddr, user: &str, password: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("centralita-baresip-{user}-{}", rand_u64()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sip_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("port")
        .port();
    std::fs::write(
        dir.join("config"),
        format!(
            "sip_listen 127.0.0.1:{sip_port}\naudio_player aubridge,nil\naudio_source aubridge,nil\naudio_alert aubridge,nil\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aubridge.so\nmodule_app account.so\nmodule_app menu.so\n"
        ),
    )
    .expect("config");
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:{user}@{server}>;auth_pass={password};regint=600;answermode=auto\n"),
    )
    .expect("accounts");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_as_an_agent_with_digest_md5() {
    if !baresip_available() {
        return;
    }
    let server = start_server().await;
    let dir = baresip_dir(server.sip_addr, "bruno", "bruno-demo-1234");
    let mut child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .args(["-t", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baresip");
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
