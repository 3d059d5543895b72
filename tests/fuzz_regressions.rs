//! Regression tests for the fuzz targets in `fuzz/` (see
//! `docs/RELIABILITY.md`, "Fuzzing"), on the stable toolchain: the
//! invariants the targets assert, pinned on hand-picked hostile inputs
//! (framing, lengths, encodings, our own output read back). An input that
//! crashes, hangs or exhausts a target goes here as it was found, next to
//! its fix; the recorded runs have found none so far.

use centralita::media::dtmf::{
    self, packets_for_digit, parse_info_body, Rfc4733Receiver, TelephoneEvent,
};
use centralita::media::rtp::{self, RtpStream};
use centralita::media::sdp;
use centralita::sip::raw::{self, FrontError, StartLine};
use centralita::sip::{digest, registrar, stack};
use std::net::{IpAddr, Ipv4Addr};

/// What the front does with one datagram, without sockets: split, check,
/// and for a refusal the stateless answer (which must split again).
fn front_datagram(data: &[u8]) -> Result<(), FrontError> {
    let msg = raw::split(data, true)?;
    assert!(msg.framed_len <= data.len());
    if let StartLine::Request { .. } = msg.start {
        if let Err(e) = raw::check_request(&msg) {
            if let FrontError::Refuse {
                status,
                reason,
                detail,
            } = &e
            {
                let resp = raw::build_refusal(&msg, *status, reason, detail);
                let back = raw::split(&resp, true).expect("own response splits");
                assert!(matches!(back.start, StartLine::Response { .. }));
            }
            return Err(e);
        }
        let _ = raw::normalized(&msg);
    }
    Ok(())
}

fn refused_status(r: Result<(), FrontError>) -> Option<u16> {
    match r {
        Err(FrontError::Refuse { status, .. }) => Some(status),
        _ => None,
    }
}

#[test]
fn front_refuses_or_drops_hostile_datagrams() {
    // Nothing to answer to.
    for data in [
        &b""[..],
        b"\r\n\r\n",
        b"\n\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: x",
        b"\xff\xfe INVITE sip:a@b SIP/2.0\r\n\r\n",
        b"SIP/2.0 099 Odd\r\n\r\n",
    ] {
        assert!(
            matches!(
                front_datagram(data),
                Err(FrontError::Unframed(_) | FrontError::DropResponse(_))
            ),
            "{data:?}"
        );
    }
    let head = "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: fz\r\nCSeq: 1 OPTIONS\r\n";
    // Content-Length that does not fit a usize, or bigger than the datagram.
    for cl in ["99999999999999999999999999", "-1", "12", "1 2"] {
        let m = format!("{head}Content-Length: {cl}\r\n\r\nab");
        assert_eq!(
            refused_status(front_datagram(m.as_bytes())),
            Some(400),
            "{cl}"
        );
    }
    // Continuation line before any header; header without a colon.
    for bad in [" folded\r\n", "NoColonHere\r\n"] {
        let m = format!("OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n{bad}{}", &head[34..]);
        assert_eq!(refused_status(front_datagram(m.as_bytes())), Some(400));
    }
    // Over 8 KiB.
    let m = format!(
        "{head}X-Pad: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(refused_status(front_datagram(m.as_bytes())), Some(513));
    // A well-formed request passes.
    let m = format!("{head}Content-Length: 0\r\n\r\n");
    assert_eq!(front_datagram(m.as_bytes()), Ok(()));
}

#[test]
fn front_stream_framing_waits_for_the_body() {
    let m = b"OPTIONS sip:100@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:100@h>\r\nCall-ID: s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nab";
    assert!(matches!(raw::split(m, false), Err(FrontError::Unframed(_))));
    let mut two = m.to_vec();
    two.extend_from_slice(b"cdeOPTIONS");
    let msg = raw::split(&two, false).expect("framed");
    assert_eq!(msg.body, b"abcde");
    assert_eq!(&two[msg.framed_len..], b"OPTIONS");
}

#[test]
fn sdp_own_answer_reads_back() {
    let offer = b"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
    let remote = sdp::parse_offer(offer).expect("offer");
    let neg = sdp::negotiate(&remote).expect("negotiated");
    let answer = sdp::build_answer(IpAddr::V4(Ipv4Addr::LOCALHOST), 20000, &neg, 7);
    let back = sdp::parse_answer(answer.as_bytes()).expect("own answer");
    assert_eq!(back.pt, neg.pt);
    assert_eq!(back.dtmf_pt, Some(101));
    for garbage in [
        &b""[..],
        b"v=0",
        b"\xff\xff",
        b"m=audio 99999 RTP/AVP 0\r\n",
    ] {
        assert!(sdp::parse_offer(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn rtp_round_trip_and_garbage() {
    for pt in 0..=127u8 {
        let mut s = RtpStream::new(1, 2, 3);
        let mut out = Vec::new();
        s.next_packet(pt, b"payload", &mut out);
        match rtp::parse_rtp(&out) {
            Ok(v) => assert_eq!((v.payload_type, v.payload), (pt, &b"payload"[..])),
            Err(_) => assert!((72..=76).contains(&pt)),
        }
    }
    for garbage in [
        &b""[..],
        b"\x80\x00",
        b"\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        b"\x8f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        b"\xa0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
    ] {
        assert!(rtp::parse_rtp(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn rfc4733_one_press_is_one_digit() {
    for digit in "0123456789*#ABCD".chars() {
        for ms in [0, 1, 20, 160, 8191, 8192, 65535] {
            let mut rx = Rfc4733Receiver::new();
            let got: Vec<char> = packets_for_digit(digit, ms)
                .into_iter()
                .filter_map(|ev| rx.on_packet(9, ev))
                .collect();
            assert_eq!(got, vec![digit], "{digit} {ms} ms");
        }
    }
    assert!(TelephoneEvent::parse(b"\x05\x0a\x00").is_err());
    let ev = TelephoneEvent::parse(b"\x05\xff\xff\xff\x00").expect("4 bytes");
    assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
}

#[test]
fn info_bodies_give_digits_or_errors() {
    let relay = "application/dtmf-relay";
    for body in [
        &b""[..],
        b"Signal=",
        b"Signal=16",
        b"Signal=\xff",
        b"Signal=12345",
    ] {
        assert!(parse_info_body(relay, body).is_err(), "{body:?}");
    }
    assert_eq!(parse_info_body("application/dtmf", b" 11 "), Ok('#'));
    assert!(parse_info_body(&"x".repeat(100_000), b"5").is_err());
    if let Ok(c) = parse_info_body(relay, b"signal=\xc3\xa9") {
        assert!(dtmf::is_digit(c));
    }
}

#[test]
fn digest_header_garbage_is_an_error() {
    for value in [
        "",
        "Digest",
        "Basic abc",
        "Digest username=\"unterminated",
        "Digest username=\"a\\",
        "Digest ,,,,=,=",
        "Digest nc=zzzzzzzz",
        "Digest \u{e9}=\u{e9}",
    ] {
        assert!(digest::parse_authorization(value).is_err(), "{value:?}");
    }
}

#[test]
fn refer_to_contact_and_aor_garbage() {
    assert_eq!(stack::parse_refer_to(""), (String::new(), None));
    assert_eq!(
        stack::parse_refer_to("<sip:1@h?Replaces=%").1,
        Some("%".into())
    );
    assert_eq!(stack::parse_refer_to("<sip:1@h?Replaces=%3B>").1, None);
    let (t, r) = stack::parse_refer_to("<sip:x@h?Replaces=%C3%28%FF>");
    assert_eq!(t, "x");
    assert!(r.is_some());
    assert!(registrar::normalize_aor("<").is_err());
    assert!(registrar::normalize_aor("\"<\" <").is_err());
    let _ = registrar::parse_contact_list(&["\"unterminated <sip:a@b>", ",,,", "<>"]);
}
