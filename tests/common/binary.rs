//! The real `centralita` binary, started as an operator would.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Cargo names the built binary to integration tests (an example that
/// borrows these helpers has none, and does not start it).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_centralita") {
    Some(bin) => bin,
    None => "centralita",
};

/// Start the binary with `args` and wait (30 s at most) for its start-up
/// line, "centralita: SIP on ADDR, HTTP on http://ADDR", which it returns.
pub fn start_binary<S: AsRef<OsStr>>(args: &[S]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start centralita");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l.contains("SIP on") => break l,
            Ok(_) => continue,
            Err(e) => panic!("no start-up line: {e}"),
        }
    };
    (child, line)
}

/// Whether `centralita logbook verify` passes on the server's store (the
/// command line, as an operator runs it); what it said.
pub fn logbook_verifies(server: &centralita::server::Server) -> (bool, String) {
    let dir = server
        .store_options()
        .path
        .parent()
        .expect("the data dir")
        .to_path_buf();
    let out = Command::new(BIN)
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/centralita.toml"),
            "logbook",
            "verify",
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .expect("run centralita logbook verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
