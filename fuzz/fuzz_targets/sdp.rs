//! SDP bodies from the network: `sdp::parse_offer` (offers and re-offers),
//! `negotiate` / `negotiate_with`, the answers built from them, and
//! `parse_answer` (the answer to our own offer).
#![no_main]

use centralita::media::g711::Codec;
use centralita::media::sdp;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    if let Ok(remote) = sdp::parse_offer(data) {
        let _ = remote.rtp_addr();
        let _ = remote.is_hold();
        for supported in [&Codec::ALL[..], &[Codec::Pcma], &[Codec::Pcmu], &[]] {
            if let Ok(neg) = sdp::negotiate_with(&remote, supported) {
                let _ = neg.may_send();
                for ip in [
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ] {
                    let answer = sdp::build_answer(ip, 20000, &neg, 42);
                    // Our own answer must be readable as an answer.
                    let back = sdp::parse_answer(answer.as_bytes());
                    assert!(back.is_ok(), "own answer unreadable: {back:?}\n{answer}");
                    let _ = sdp::build_reanswer(ip, 20000, &neg, 42, 43);
                }
            }
        }
    }
    if let Ok(neg) = sdp::parse_answer(data) {
        let _ = neg.may_send();
    }
});
