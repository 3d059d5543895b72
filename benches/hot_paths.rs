//! Per-message and per-packet costs on the hot paths: the SIP socket
//! front's look at a request (before rsipstack parses it), the in-band DTMF
//! detector on a 20 ms frame, RFC 4733 de-duplication, G.711 encoding and
//! RTP framing of a prompt frame, and the per-source limits every request
//! and every new INVITE go through.
//!
//!   cargo bench --bench hot_paths

use centralita::media::dtmf::inband::InbandDetector;
use centralita::media::dtmf::rfc4733::{Rfc4733Receiver, TelephoneEvent};
use centralita::media::g711::Codec;
use centralita::media::rtp::RtpStream;
use centralita::sip::limits::{LimitsConfig, SourceLimits};
use centralita::sip::raw;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

const INVITE: &[u8] = b"INVITE sip:soporte@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-1234-1-0;rport\r\n\
From: sipp <sip:sipp@127.0.0.1:5091>;tag=1234SIPpTag001\r\n\
To: <sip:soporte@127.0.0.1:5060>\r\n\
Call-ID: 1-1234@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@127.0.0.1:5091>\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 193\r\n\r\n\
v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";

fn sip_front(c: &mut Criterion) {
    c.bench_function("front: split + check an INVITE", |b| {
        b.iter(|| {
            let m = raw::split(black_box(INVITE), true).expect("split");
            raw::check_request(&m).expect("valid");
        })
    });
    c.bench_function("rsipstack: parse the same INVITE", |b| {
        b.iter(|| rsipstack::sip::SipMessage::try_from(black_box(INVITE)).expect("parse"))
    });
}

/// The limits with 10,000 sources tracked (a busy public number).
fn limits(c: &mut Criterion) {
    let mut l = SourceLimits::new(LimitsConfig {
        calls_per_source: 0,
        ..LimitsConfig::default()
    });
    let t0 = Instant::now();
    for i in 0..10_000u32 {
        l.admit_invite(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), t0);
    }
    let mut n = 0u32;
    c.bench_function("limits: is a source banned (10,000 tracked)", |b| {
        b.iter(|| {
            n = (n + 1) % 10_000;
            l.is_banned(black_box(IpAddr::from((0x0a00_0000 + n).to_be_bytes())), t0)
        })
    });
    let mut t = t0;
    c.bench_function("limits: admit a new INVITE (10,000 tracked)", |b| {
        b.iter(|| {
            n = (n + 1) % 10_000;
            t += std::time::Duration::from_micros(20);
            l.admit_invite(black_box(IpAddr::from((0x0a00_0000 + n).to_be_bytes())), t)
        })
    });
}

fn media(c: &mut Criterion) {
    let speechlike: Vec<i16> = (0..160)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            (3000.0 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                + 1500.0 * (2.0 * std::f64::consts::PI * 660.0 * t).sin()) as i16
        })
        .collect();
    let mut det = InbandDetector::default();
    c.bench_function("inband DTMF: one 20 ms frame", |b| {
        b.iter(|| {
            det.process_with(black_box(&speechlike), |d| {
                black_box(d);
            })
        })
    });
    let mut rx = Rfc4733Receiver::new();
    let mut ts = 0u32;
    c.bench_function("rfc4733: one event packet", |b| {
        b.iter(|| {
            ts = ts.wrapping_add(160);
            let ev = TelephoneEvent::parse(black_box(&[1, 0x0a, 0, 160])).expect("event");
            black_box(rx.on_packet(ts / 1600, ev))
        })
    });
    let mut frame = [0u8; 160];
    c.bench_function("g711: encode a 20 ms frame (µ-law)", |b| {
        b.iter(|| Codec::Pcmu.encode_frame(black_box(&speechlike), &mut frame))
    });
    let mut rtp = RtpStream::new(1, 2, 3);
    let mut out = Vec::with_capacity(172);
    c.bench_function("rtp: frame one 20 ms packet", |b| {
        b.iter(|| rtp.next_packet(0, black_box(&frame), &mut out))
    });
}

criterion_group!(benches, sip_front, limits, media);
criterion_main!(benches);
