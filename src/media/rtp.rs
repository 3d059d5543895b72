//! RTP framing (RFC 3550): the sender's per-stream state ([`RtpStream`]:
//! SSRC, sequence number, timestamp, marker) and a checked parser for
//! received packets ([`parse_rtp`]). RFC 4733 telephone-event packets are
//! sent through [`RtpStream::event_packet`].
//!
//! Sans-IO: callers hand in payloads and get bytes back (or hand in bytes
//! and get a view back). No socket, no clock: time advances only through
//! the sample counts the caller passes.
//!
//! The 12-byte header we send is hand-written (a fixed layout: V=2, no
//! padding, no extension, no CSRC), which writes straight into the caller's
//! reusable buffer; the tests read it back with `rtp-rs`'s reader. Parsing
//! wraps `rtp-rs`'s `RtpReader`, which validates padding, CSRC and
//! extension lengths before any field is read.

use rtp_rs::{RtpReader, RtpReaderError};

/// Length of the RTP header we write.
pub const HEADER_LEN: usize = 12;

/// Samples in one 20 ms frame at 8 kHz.
pub const SAMPLES_PER_FRAME: u32 = 160;

/// Sender state of one RTP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpStream {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker_pending: bool,
}

impl RtpStream {
    /// A stream whose first packet carries `initial_seq` and `initial_ts`
    /// (both should be random, RFC 3550 §5.1). The first packet has the
    /// marker bit set: it begins a talkspurt.
    pub fn new(ssrc: u32, initial_seq: u16, initial_ts: u32) -> Self {
        RtpStream {
            ssrc,
            seq: initial_seq,
            timestamp: initial_ts,
            marker_pending: true,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sequence number of the next packet.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    /// Timestamp of the next audio packet (use it as an event's start
    /// timestamp for [`RtpStream::event_packet`]).
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Whether the next audio packet will carry the marker bit.
    pub fn marker_pending(&self) -> bool {
        self.marker_pending
    }

    /// Set the marker bit on the next audio packet (the first packet after
    /// silence or after a change of source, RFC 3551 §4.1).
    pub fn start_talkspurt(&mut self) {
        self.marker_pending = true;
    }

    /// Advance the timestamp across `samples` samples not sent (silence
    /// suppression, or the span covered by a telephone event). The sequence
    /// number does not change.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// Write one G.711 packet into `out` (cleared first): the header and
    /// `payload`. G.711 has one sample per byte, so the timestamp advances
    /// by `payload.len()` (160 for a 20 ms frame); the sequence number by 1.
    /// Only the low 7 bits of `pt` are used.
    pub fn next_packet(&mut self, pt: u8, payload: &[u8], out: &mut Vec<u8>) {
        let samples = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.packet_with_samples(pt, payload, samples, out);
    }

    /// As [`RtpStream::next_packet`] for a codec where the payload length is
    /// not the sample count: the timestamp advances by `samples`.
    pub fn packet_with_samples(&mut self, pt: u8, payload: &[u8], samples: u32, out: &mut Vec<u8>) {
        let marker = std::mem::take(&mut self.marker_pending);
        write_packet(
            out,
            pt,
            marker,
            self.seq,
            self.timestamp,
            self.ssrc,
            payload,
        );
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// Write one RFC 4733 telephone-event packet into `out` (cleared first).
    /// Every packet of one event carries the event's start timestamp
    /// `ts_of_event`, so the stream's timestamp does not advance (call
    /// [`RtpStream::skip`] with the event's duration when it ends); the
    /// sequence number advances by 1. `marker` should be set on the first
    /// packet of an event only. Does not consume a pending audio marker.
    pub fn event_packet(
        &mut self,
        pt: u8,
        ts_of_event: u32,
        payload: [u8; 4],
        marker: bool,
        out: &mut Vec<u8>,
    ) {
        write_packet(out, pt, marker, self.seq, ts_of_event, self.ssrc, &payload);
        self.seq = self.seq.wrapping_add(1);
    }
}

/// The 4-byte RFC 4733 payload: `event` (0-9, 10 = `*`, 11 = `#`, 12-15 =
/// A-D, 16 = flash), the end bit, `volume` (0-63, as -dBm0; values above
/// 63 are clamped) and `duration` in timestamp units since the event began.
pub fn telephone_event_payload(event: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [
        event,
        (if end { 0x80 } else { 0 }) | volume.min(63),
        d[0],
        d[1],
    ]
}

fn write_packet(
    out: &mut Vec<u8>,
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: &[u8],
) {
    out.clear();
    out.reserve(HEADER_LEN + payload.len());
    out.push(0x80); // V=2, P=0, X=0, CC=0
    out.push((pt & 0x7F) | if marker { 0x80 } else { 0 });
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A received RTP packet, borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    /// The payload, without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

/// Why a datagram is not an RTP packet we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version {0} (only 2 is supported)")]
    BadVersion(u8),
    #[error("RTP headers truncated: need {needed} bytes, have {have}")]
    Truncated { needed: usize, have: usize },
    #[error("RTP padding length {0} is invalid")]
    BadPadding(u8),
    /// Payload types 72-76 collide with RTCP packet types 200-204 (RFC 5761).
    #[error("packet looks like RTCP (second byte {0})")]
    Rtcp(u8),
}

/// Parse and validate a received datagram. Never panics.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpView<'_>, RtpError> {
    let r = RtpReader::new(buf).map_err(|e| match e {
        RtpReaderError::BufferTooShort(n) => RtpError::TooShort(n),
        RtpReaderError::UnsupportedVersion(v) => RtpError::BadVersion(v),
        RtpReaderError::HeadersTruncated {
            header_len,
            buffer_len,
        } => RtpError::Truncated {
            needed: header_len,
            have: buffer_len,
        },
        RtpReaderError::PaddingLengthInvalid(p) => RtpError::BadPadding(p),
    })?;
    let pt = r.payload_type();
    if (72..=76).contains(&pt) {
        return Err(RtpError::Rtcp(buf.get(1).copied().unwrap_or(0)));
    }
    Ok(RtpView {
        payload_type: pt,
        sequence: r.sequence_number().into(),
        timestamp: r.timestamp(),
        ssrc: r.ssrc(),
        marker: r.mark(),
        payload: r.payload(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_layout_read_back_with_rtp_rs() {
        let mut s = RtpStream::new(0xDEAD_BEEF, 1000, 123_456);
        let mut out = Vec::new();
        let payload = [0xFFu8; 160];
        s.next_packet(0, &payload, &mut out);
        assert_eq!(out.len(), 172);
        let r = RtpReader::new(&out).expect("valid");
        assert_eq!(r.version(), 2);
        assert_eq!(r.padding(), None);
        assert_eq!(r.csrc_count(), 0);
        assert_eq!(r.extension(), None);
        assert!(r.mark());
        assert_eq!(r.payload_type(), 0);
        assert_eq!(u16::from(r.sequence_number()), 1000);
        assert_eq!(r.timestamp(), 123_456);
        assert_eq!(r.ssrc(), 0xDEAD_BEEF);
        assert_eq!(r.payload(), &payload[..]);
        // Same bytes as rtp-rs's builder.
        let built = rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .marked(true)
            .sequence(1000.into())
            .timestamp(123_456)
            .ssrc(0xDEAD_BEEF)
            .payload(&payload)
            .build()
            .expect("builds");
        assert_eq!(built, out);
    }

    #[test]
    fn seq_and_timestamp_advance_and_wrap() {
        let mut s = RtpStream::new(1, u16::MAX - 1, u32::MAX - 200);
        let mut out = Vec::new();
        let frame = [0xD5u8; 160];
        let mut seen = Vec::new();
        for _ in 0..4 {
            s.next_packet(8, &frame, &mut out);
            let v = parse_rtp(&out).expect("valid");
            seen.push((v.sequence, v.timestamp));
        }
        assert_eq!(
            seen,
            vec![
                (u16::MAX - 1, u32::MAX - 200),
                (u16::MAX, u32::MAX - 40),
                (0, 119),
                (1, 279),
            ]
        );
    }

    #[test]
    fn marker_only_on_first_packet_of_talkspurt() {
        let mut s = RtpStream::new(7, 0, 0);
        let mut out = Vec::new();
        let mut marks = Vec::new();
        for i in 0..6 {
            if i == 3 {
                s.start_talkspurt();
            }
            s.next_packet(0, &[0u8; 160], &mut out);
            marks.push(parse_rtp(&out).expect("valid").marker);
        }
        assert_eq!(marks, vec![true, false, false, true, false, false]);
    }

    #[test]
    fn skip_moves_timestamp_only() {
        let mut s = RtpStream::new(7, 10, 1000);
        s.skip(800);
        assert_eq!((s.seq(), s.timestamp()), (10, 1800));
        s.skip(u32::MAX);
        assert_eq!(s.timestamp(), 1799);
    }

    #[test]
    fn event_packets_share_start_timestamp_and_advance_seq() {
        let mut s = RtpStream::new(9, 500, 8000);
        let mut out = Vec::new();
        s.next_packet(0, &[0xFF; 160], &mut out); // consumes initial marker
        let start = s.timestamp();
        assert_eq!(start, 8160);
        let mut got = Vec::new();
        for (i, dur) in [160u16, 320, 480].iter().enumerate() {
            let end = i == 2;
            s.event_packet(
                101,
                start,
                telephone_event_payload(5, end, 10, *dur),
                i == 0,
                &mut out,
            );
            let v = parse_rtp(&out).expect("valid");
            got.push((
                v.sequence,
                v.timestamp,
                v.marker,
                v.payload_type,
                v.payload.to_vec(),
            ));
        }
        assert_eq!(got[0], (501, 8160, true, 101, vec![5, 10, 0, 160]));
        assert_eq!(got[1], (502, 8160, false, 101, vec![5, 10, 1, 64]));
        assert_eq!(got[2], (503, 8160, false, 101, vec![5, 0x80 | 10, 1, 224]));
        assert_eq!(s.timestamp(), 8160, "events do not advance the timestamp");
        s.skip(480);
        s.next_packet(0, &[0xFF; 160], &mut out);
        let v = parse_rtp(&out).expect("valid");
        assert_eq!((v.sequence, v.timestamp, v.marker), (504, 8640, false));
    }

    #[test]
    fn malformed_packets_are_rejected() {
        assert_eq!(parse_rtp(&[]), Err(RtpError::TooShort(0)));
        assert_eq!(parse_rtp(&[0x80; 11]), Err(RtpError::TooShort(11)));
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        p[0] = 0x40; // version 1
        assert_eq!(parse_rtp(&p), Err(RtpError::BadVersion(1)));
        p[0] = 0x83; // 3 CSRCs, none present
        assert!(matches!(parse_rtp(&p), Err(RtpError::Truncated { .. })));
        p[0] = 0x90; // extension flag, no extension header
        assert!(matches!(parse_rtp(&p), Err(RtpError::Truncated { .. })));
        let mut q = p.clone();
        q.extend_from_slice(&[0xBE, 0xDE, 0, 2, 1, 2, 3, 4]); // claims 8 bytes, has 4
        assert!(matches!(parse_rtp(&q), Err(RtpError::Truncated { .. })));
        p[0] = 0xA0; // padding flag
        let mut r = p.clone();
        r.extend_from_slice(&[1, 2, 9]); // 9 bytes of padding claimed, 3 present
        assert_eq!(parse_rtp(&r), Err(RtpError::BadPadding(9)));
        let mut z = p.clone();
        z.extend_from_slice(&[1, 0]); // zero padding length
        assert_eq!(parse_rtp(&z), Err(RtpError::BadPadding(0)));
        let mut ok = p.clone();
        ok.extend_from_slice(&[7, 7, 0, 2]); // payload [7, 7], then 2 padding bytes
        assert_eq!(parse_rtp(&ok).expect("valid").payload, &[7, 7][..]);
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(parse_rtp(&rtcp), Err(RtpError::Rtcp(200)));
    }

    #[test]
    fn csrc_and_extension_are_skipped() {
        let mut p = vec![0x91, 0x08, 0, 5, 0, 0, 0, 9, 0, 0, 0, 1];
        p.extend_from_slice(&[0, 0, 0, 42]); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // 4-byte extension
        p.extend_from_slice(&[0xAA, 0xBB]);
        let v = parse_rtp(&p).expect("valid");
        assert_eq!(
            (v.payload_type, v.sequence, v.timestamp, v.ssrc),
            (8, 5, 9, 1)
        );
        assert_eq!(v.payload, &[0xAA, 0xBB][..]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_rtp(&buf);
        }

        #[test]
        fn random_v2_headers_never_panic(first in 0x80u8..0xC0, rest in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut buf = vec![first];
            buf.extend(rest);
            if let Ok(v) = parse_rtp(&buf) {
                prop_assert!(v.payload.len() + HEADER_LEN <= buf.len());
            }
        }

        #[test]
        fn built_packets_round_trip(ssrc: u32, seq: u16, ts: u32, pt in 0u8..128,
                                    payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assume!(!(72..=76).contains(&pt));
            let mut s = RtpStream::new(ssrc, seq, ts);
            let mut out = Vec::new();
            s.next_packet(pt, &payload, &mut out);
            let v = parse_rtp(&out).expect("own packets parse");
            prop_assert_eq!((v.payload_type, v.sequence, v.timestamp, v.ssrc, v.marker), (pt, seq, ts, ssrc, true));
            prop_assert_eq!(v.payload, &payload[..]);
            prop_assert_eq!(s.timestamp(), ts.wrapping_add(payload.len() as u32));
        }
    }
}
