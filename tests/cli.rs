//! The `centralita` binary as an operator runs it: `check-config` on the
//! shipped and on a broken configuration, and a clean exit on SIGTERM.

mod common;

use common::binary::BIN;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("centralita-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Run `check-config` on a config that must be refused; its stderr.
fn check_config_fails(config: &Path) -> String {
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .expect("run centralita");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn check_config_accepts_the_shipped_configuration() {
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(Path::new(ROOT).join("config/centralita.toml"))
        .output()
        .expect("run centralita");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(stdout.contains("26 knowledge-base articles"), "{stdout}");
}

#[test]
fn check_config_names_a_malformed_knowledge_base_article() {
    let dir = temp_dir("kb");
    std::fs::create_dir_all(dir.join("kb/es")).expect("kb dir");
    std::fs::write(
        dir.join("kb/es/sin-cabecera.md"),
        "## Pasos\n1. Reinicie.\n",
    )
    .expect("write");
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("config/centralita.toml"))
        .expect("shipped config");
    let config = shipped
        .replace("../sounds", &format!("{ROOT}/sounds"))
        .replace("../ivr", &format!("{ROOT}/ivr"))
        .replace("dir = \"../kb\"", "dir = \"kb\"");
    std::fs::write(dir.join("centralita.toml"), config).expect("write config");
    let stderr = check_config_fails(&dir.join("centralita.toml"));
    assert!(
        stderr.contains("knowledge base")
            && stderr.contains("sin-cabecera.md")
            && stderr.contains("+++"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_reports_every_problem_with_file_and_key() {
    let dir = temp_dir("broken");
    // An IVR naming a prompt that has no sound, a menu that does not exist,
    // and a config with a bad port range and an unknown menu for a number.
    std::fs::create_dir_all(dir.join("ivr")).expect("ivr dir");
    std::fs::write(
        dir.join("ivr/main.toml"),
        "[menu.entrada]\nprompts = [\"no_such_prompt\"]\nfallback = { action = \"hangup\" }\n[menu.entrada.options]\n1 = { action = \"menu\", menu = \"nowhere\" }\n",
    )
    .expect("write ivr");
    let config = format!(
        "[media]\nsounds_dir = \"{root}/sounds\"\n[ivr]\ndir = \"ivr\"\n[numbers]\nsoporte = \"entrada\"\n",
        root = ROOT
    );
    std::fs::write(dir.join("centralita.toml"), &config).expect("write config");
    let stderr = check_config_fails(&dir.join("centralita.toml"));
    assert!(
        stderr.contains("main.toml") && stderr.contains("nowhere"),
        "unknown menu named: {stderr}"
    );

    // With the IVR fixed, the missing sound is reported with its path.
    std::fs::write(
        dir.join("ivr/main.toml"),
        "[menu.entrada]\nprompts = [\"no_such_prompt\"]\nfallback = { action = \"hangup\" }\n",
    )
    .expect("write ivr");
    let stderr = check_config_fails(&dir.join("centralita.toml"));
    assert!(
        stderr.contains("es/no_such_prompt.wav"),
        "missing sound path named: {stderr}"
    );
    assert!(
        stderr.contains("en/no_such_prompt.wav"),
        "every language checked: {stderr}"
    );

    // A config error names the file and the key.
    std::fs::write(
        dir.join("centralita.toml"),
        config.replace("[media]\n", "[media]\nrtp_ports = \"9-3\"\n"),
    )
    .expect("write");
    let stderr = check_config_fails(&dir.join("centralita.toml"));
    assert!(
        stderr.contains("centralita.toml: media.rtp_ports"),
        "{stderr}"
    );

    // A callback to a typed number needs a trunk to call out through.
    std::fs::write(
        dir.join("ivr/main.toml"),
        "[menu.entrada]\nprompts = [\"main_menu\"]\nfallback = { action = \"hangup\" }\n[menu.entrada.options.8]\naction = \"collect\"\nfield = \"phone\"\nmax_length = 12\nnext = { action = \"callback\", queue = \"general\", number_field = \"phone\" }\n",
    )
    .expect("write ivr");
    let with_queue = format!("{config}[queues.general]\n");
    std::fs::write(dir.join("centralita.toml"), &with_queue).expect("write");
    let stderr = check_config_fails(&dir.join("centralita.toml"));
    assert!(
        stderr.contains("acd.callback_trunk") && stderr.contains("entrada"),
        "{stderr}"
    );
    std::fs::write(
        dir.join("centralita.toml"),
        format!("{with_queue}[acd]\ncallback_trunk = \"sip:127.0.0.1:5080\"\n"),
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(dir.join("centralita.toml"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_the_controller_with_exit_0_within_5_s() {
    let config = Path::new(ROOT).join("config/centralita.toml");
    let data = std::env::temp_dir().join(format!("centralita-cli-{}", std::process::id()));
    let (mut child, ready) = common::binary::start_binary(&[
        "--sip-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--http-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--rtp-ports".as_ref(),
        "43000-43099".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ] as &[&std::ffi::OsStr]);
    assert!(ready.contains("127.0.0.1:"), "{ready}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if stopping.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("did not exit within 5 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
