//! The SIP socket front without sockets: what `Front::on_datagram` (UDP) and
//! `Front::serve_tcp` (stream framing) do with received bytes, then
//! `Front::examine` (private, mirrored here) with the real `front::for_stack`, and
//! the header-value parsers the stack applies to what was let through.
#![no_main]

use centralita::media::{dtmf, sdp};
use centralita::sip::front::for_stack;
use centralita::sip::raw::{self, FrontError, RawMessage, StartLine};
use centralita::sip::{digest, registrar, stack};
use libfuzzer_sys::fuzz_target;

/// Header-value parsers the stack and drivers apply to a forwarded request.
fn header_parsers(msg: &RawMessage<'_>) {
    let method = msg.method().unwrap_or("");
    for h in &msg.headers {
        match h.name.as_ref() {
            "authorization" | "proxy-authorization" => {
                let _ = digest::parse_authorization(&h.value);
            }
            "refer-to" => {
                let _ = stack::parse_refer_to(&h.value);
            }
            "to" => {
                let _ = registrar::normalize_aor(&h.value);
            }
            _ => {}
        }
    }
    let contacts: Vec<&str> = msg.values("contact").collect();
    if !contacts.is_empty() {
        let _ = registrar::parse_contact_list(&contacts);
    }
    if method == "INFO" {
        if let Some(ct) = msg.first("content-type") {
            if let Ok(c) = dtmf::parse_info_body(ct, msg.body) {
                assert!(dtmf::is_digit(c), "INFO digit {c:?}");
            }
        }
    }
    if !msg.body.is_empty() && matches!(method, "INVITE" | "ACK" | "UPDATE") {
        if let Ok(offer) = sdp::parse_offer(msg.body) {
            let _ = sdp::negotiate(&offer);
        }
    }
}

/// Mirror of `Front::examine` without metrics, logging and branch memory.
fn examine(framed: &[u8], msg: &RawMessage<'_>, scanners: &[String]) {
    match msg.start {
        StartLine::Response { .. } => {
            let _ = msg.cseq_method();
            let _ = msg.top_branch();
            if msg.problem.is_none() {
                let _ = rsipstack::sip::SipMessage::try_from(framed);
            }
        }
        StartLine::Request { method, .. } => {
            if raw::from_scanner(msg, scanners) {
                return;
            }
            match raw::check_request(msg).and_then(|()| for_stack(framed, msg)) {
                Ok(bytes) => {
                    // serve_tcp parses what is forwarded once more.
                    let _ = rsipstack::sip::SipMessage::try_from(bytes.as_ref());
                    header_parsers(msg);
                }
                Err(FrontError::Refuse {
                    status,
                    reason,
                    detail,
                }) => {
                    if method == "ACK" {
                        return;
                    }
                    let resp = raw::build_refusal(msg, status, reason, &detail);
                    // `count_out` splits every response the front sends.
                    let _ = raw::split(&resp, true);
                }
                Err(_) => {}
            }
        }
    }
}

fn datagram(data: &[u8], scanners: &[String]) {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return;
    }
    if let Ok(msg) = raw::split(data, true) {
        assert!(msg.framed_len <= data.len());
        let _ = raw::canonical_name(msg.headers.first().map_or("", |h| h.raw_name));
        examine(&data[..msg.framed_len], &msg, scanners);
    }
}

/// `serve_tcp`'s framing loop over one buffer (as if read in one go).
fn stream(data: &[u8], scanners: &[String]) {
    let mut buf = data.to_vec();
    loop {
        let lead = buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        buf.drain(..lead);
        if buf.is_empty() {
            return;
        }
        let msg = match raw::split(&buf, false) {
            Ok(m) => m,
            Err(_) => return,
        };
        let framed_len = msg.framed_len;
        assert!(framed_len > 0 && framed_len <= buf.len());
        examine(&buf[..framed_len], &msg, scanners);
        let framing_lost = matches!(&msg.problem,
            Some(FrontError::Refuse { detail, .. }) if detail.contains("Content-Length"));
        if framing_lost {
            return;
        }
        drop(msg);
        buf.drain(..framed_len);
    }
}

fuzz_target!(|data: &[u8]| {
    let scanners = vec!["friendly-scanner".to_string(), "sipvicious".to_string()];
    datagram(data, &scanners);
    stream(data, &scanners);
});
