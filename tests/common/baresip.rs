//! baresip (Debian `baresip-core`) as an agent's softphone in the interop
//! tests: a headless config directory, and the process with its keyboard.

use std::process::{Command, Stdio};

pub fn baresip_available() -> bool {
    super::peer_available("baresip", "-h", "baresip-core")
}

/// A headless baresip config directory registering `user` to `server`:
/// it sends `source.wav` as its microphone and records what it hears into
/// `dump-*-dec.wav` (sndfile).
pub fn baresip_dir(server: std::net::SocketAddr, user: &str, password: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("centralita-baresip-{user}-{}", super::rand_u64()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sip_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("port")
        .port();
    std::fs::write(
        dir.join("config"),
        format!(
            "sip_listen 127.0.0.1:{sip_port}\naudio_player aubridge,nil\naudio_source aufile,{src}\naudio_alert aubridge,nil\n\
             module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\nmodule aubridge.so\nmodule aufile.so\nmodule sndfile.so\n\
             module_app account.so\nmodule_app menu.so\nsnd_path {dir}\n",
            src = dir.join("source.wav").display(),
            dir = dir.display()
        ),
    )
    .expect("config");
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:{user}@{server}>;auth_pass={password};regint=600;answermode=auto\n"),
    )
    .expect("accounts");
    // The agent's voice: a 700 Hz tone, 30 s.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(dir.join("source.wav"), spec).expect("wav");
    for i in 0..8000 * 30 {
        let t = f64::from(i) / 8000.0;
        let _ = w.write_sample((6000.0 * (2.0 * std::f64::consts::PI * 700.0 * t).sin()) as i16);
    }
    w.finalize().expect("wav written");
    dir
}

/// Start baresip on the config directory `dir`, quiet, with `args`; its
/// stdin is a pipe (its keyboard: commands such as `/transfer`).
pub fn spawn_baresip(dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    Command::new("baresip")
        .arg("-f")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baresip")
}
