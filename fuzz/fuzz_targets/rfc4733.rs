//! RFC 4733 telephone-events from the network: `TelephoneEvent::parse` and
//! the `Rfc4733Receiver` de-duplicator fed a packet sequence derived from the
//! input (8 bytes per packet: RTP timestamp, then the 4-byte payload), plus
//! `packets_for_digit` (what we send) read back by a fresh receiver.
#![no_main]

use centralita::media::dtmf::{self, packets_for_digit, Rfc4733Receiver, TelephoneEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whole input as one payload.
    if let Ok(ev) = TelephoneEvent::parse(data) {
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
    }

    // A stream of packets.
    let mut rx = Rfc4733Receiver::new();
    for chunk in data.chunks_exact(8) {
        let ts = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if let Ok(ev) = TelephoneEvent::parse(&chunk[4..]) {
            if let Some(d) = rx.on_packet(ts, ev) {
                assert!(dtmf::is_digit(d));
                assert_eq!(Some(d), ev.digit());
            }
        }
    }

    // Our own sequence for one press gives exactly one digit.
    if data.len() >= 3 {
        let digit = char::from(data[0]);
        let ms = u32::from(u16::from_be_bytes([data[1], data[2]]));
        let packets = packets_for_digit(digit, ms);
        let mut rx = Rfc4733Receiver::new();
        let got: Vec<char> = packets
            .iter()
            .filter_map(|ev| rx.on_packet(1234, *ev))
            .collect();
        if dtmf::digit_to_event(digit).is_some() {
            assert_eq!(got.len(), 1, "{digit:?} {ms} ms gave {got:?}");
        } else {
            assert!(packets.is_empty());
        }
    }
});
