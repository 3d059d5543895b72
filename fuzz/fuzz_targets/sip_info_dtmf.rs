//! SIP INFO bodies from the network: `dtmf::parse_info_body`. The first
//! input line is the Content-Type, the rest the body; the whole input is
//! also tried as a body under both supported types.
#![no_main]

use centralita::media::dtmf::{self, parse_info_body};
use libfuzzer_sys::fuzz_target;

fn check(content_type: &str, body: &[u8]) {
    if let Ok(c) = parse_info_body(content_type, body) {
        assert!(dtmf::is_digit(c), "{c:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let nl = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let ct = String::from_utf8_lossy(&data[..nl]);
    check(&ct, data.get(nl + 1..).unwrap_or_default());
    check("application/dtmf-relay", data);
    check("application/dtmf", data);
});
