//! RTP datagrams from the network: `rtp::parse_rtp`, then what the media
//! path does with an accepted packet (G.711 decode, in-band DTMF detection,
//! RFC 4733 payload parsing), and a write/read round trip of `RtpStream`.
#![no_main]

use centralita::media::dtmf::{InbandDetector, InbandParams, TelephoneEvent};
use centralita::media::g711::Codec;
use centralita::media::rtp::{self, RtpStream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = rtp::parse_rtp(data) {
        assert!(view.payload.len() <= data.len());
        assert!(!(72..=76).contains(&view.payload_type));
        if let Some(codec) = Codec::from_payload_type(view.payload_type) {
            let mut pcm = vec![0i16; view.payload.len()];
            let n = codec.decode_frame(view.payload, &mut pcm);
            let mut det = InbandDetector::new(InbandParams::default());
            for d in det.process(&pcm[..n]) {
                assert!(centralita::media::dtmf::is_digit(d));
            }
        } else if let Ok(ev) = TelephoneEvent::parse(view.payload) {
            let _ = ev.digit();
        }
    }

    // What we send must read back as sent.
    if data.len() >= 11 {
        let pt = data[0] & 0x7f;
        let seq = u16::from_be_bytes([data[1], data[2]]);
        let ts = u32::from_be_bytes([data[3], data[4], data[5], data[6]]);
        let ssrc = u32::from_be_bytes([data[7], data[8], data[9], data[10]]);
        let payload = &data[11..];
        let mut s = RtpStream::new(ssrc, seq, ts);
        let mut out = Vec::new();
        s.next_packet(pt, payload, &mut out);
        match rtp::parse_rtp(&out) {
            Ok(v) => {
                assert_eq!(v.payload, payload);
                assert_eq!(v.payload_type, pt);
                assert_eq!(v.ssrc, ssrc);
                assert_eq!(v.sequence, seq);
                assert_eq!(v.timestamp, ts);
            }
            Err(e) => assert!((72..=76).contains(&pt), "own packet refused: {e}"),
        }
    }
});
