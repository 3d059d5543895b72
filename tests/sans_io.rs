//! The decision cores are sans-IO: they name no tokio, no socket and never
//! read the clock. This test fails when one of them does.

use centralita::SANS_IO_CORES as CORES;

#[test]
fn cores_name_no_tokio_no_socket_and_no_clock() {
    let mut offences = Vec::new();
    for file in CORES {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // Test modules may build a fake clock from a real instant.
        for (i, line) in text
            .lines()
            .enumerate()
            .take_while(|(_, l)| !l.contains("#[cfg(test)]"))
        {
            let code = line.split("//").next().unwrap_or_default();
            for banned in [
                "tokio",
                "std::thread",
                "UdpSocket",
                "TcpStream",
                "Instant::now",
                "SystemTime::now",
            ] {
                if code.contains(banned) {
                    offences.push(format!("{file}:{}: {banned}", i + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "sans-IO cores must not do IO:\n{}",
        offences.join("\n")
    );
}
