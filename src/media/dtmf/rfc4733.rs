//! RFC 4733 `telephone-event` payloads: parse/write, receive-side
//! de-duplication and the send-side packet sequence.
//!
//! Receive rule ([`Rfc4733Receiver`]): a key press is identified by its RTP
//! timestamp (every packet of one event carries the event's start
//! timestamp). The digit is reported on the **first packet seen** with a
//! new, newer timestamp, whether that is an interim packet or an end packet
//! (lowest latency; a press whose start packets were all lost is still
//! reported once, by its first end packet). Every further packet with that
//! timestamp (interim updates, the three repeated end packets) is ignored.
//! A later press of the same digit has a new timestamp and is reported
//! again. Timestamps are compared with serial-number arithmetic, so the
//! 32-bit wrap-around is handled; a late packet of an earlier press (older
//! timestamp, up to [`STALE_WINDOW`] units back) is ignored, while a jump
//! further back is taken as a restarted stream. A long event split into
//! segments (RFC 4733 §2.5.1.3: same event, previous segment not ended and
//! near the 0xFFFF duration limit, new timestamp = old + duration) is one
//! press. Events above 15 (non-DTMF tones) are ignored.

use super::{digit_to_event, event_to_digit, DtmfError};

/// RTP clock rate of `telephone-event` for narrowband audio (units/second).
pub const CLOCK_RATE: u32 = 8000;

/// How far back (in RTP timestamp units, 30 s at 8 kHz) a timestamp is
/// treated as a late packet of an old press rather than a restarted stream.
pub const STALE_WINDOW: u32 = 30 * CLOCK_RATE;

/// Interval between packets produced by [`packets_for_digit`], in ms.
pub const PACKET_INTERVAL_MS: u32 = 20;

/// Number of times [`packets_for_digit`] sends the end packet (RFC 4733 §2.5.1.4).
pub const END_REPEATS: usize = 3;

/// Volume [`packets_for_digit`] puts in its packets (−10 dBm0).
pub const DEFAULT_VOLUME: u8 = 10;

/// One RFC 4733 §2.3 event payload: 4 bytes
/// `event(8) | E(1) R(1) volume(6) | duration(16, network order)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-15 are the DTMF digits).
    pub event: u8,
    /// End bit: the event has ended; `duration` is final.
    pub end: bool,
    /// Power level as −dBm0 (0..=63), 6 bits.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units (1/8000 s).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 bytes of a payload; shorter payloads are an error.
    /// Trailing bytes (further events in the same packet) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(TelephoneEvent {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(DtmfError::TooShort { len: payload.len() }),
        }
    }

    /// Writes the 4-byte payload (R bit 0, volume masked to 6 bits).
    pub fn write(&self, out: &mut [u8; 4]) {
        out[0] = self.event;
        out[1] = (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3f);
        let d = self.duration.to_be_bytes();
        out[2] = d[0];
        out[3] = d[1];
    }

    /// The payload as a fresh array.
    pub fn to_bytes(&self) -> [u8; 4] {
        let mut out = [0u8; 4];
        self.write(&mut out);
        out
    }

    /// The digit this event carries, if it is a DTMF event (0-15).
    pub fn digit(&self) -> Option<char> {
        event_to_digit(self.event)
    }
}

#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    event: u8,
    ended: bool,
    max_duration: u16,
}

/// Receive-side de-duplicator: feed every `telephone-event` packet of one RTP
/// stream, get each key press exactly once (see the module doc for the rule).
#[derive(Debug, Clone, Default)]
pub struct Rfc4733Receiver {
    current: Option<Current>,
}

impl Rfc4733Receiver {
    /// A receiver with no press seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget the stream (call on a new SSRC or a re-INVITE that restarts RTP).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Feeds one packet: its RTP timestamp and parsed payload. Returns the
    /// digit when this packet is the first one seen of a new press.
    pub fn on_packet(&mut self, rtp_timestamp: u32, ev: TelephoneEvent) -> Option<char> {
        let digit = ev.digit()?;
        if let Some(cur) = self.current.as_mut() {
            let ahead = rtp_timestamp.wrapping_sub(cur.timestamp);
            if ahead == 0 {
                // Same press: interim update or repeated end packet.
                cur.ended |= ev.end;
                cur.max_duration = cur.max_duration.max(ev.duration);
                return None;
            }
            let behind = cur.timestamp.wrapping_sub(rtp_timestamp);
            if behind <= STALE_WINDOW && behind < ahead {
                // Late packet of an earlier press.
                return None;
            }
            let continuation = ev.event == cur.event
                && !cur.ended
                && cur.max_duration >= 0xFFFF - 2 * 160
                && ahead <= u32::from(cur.max_duration) + 2 * 160;
            *cur = Current {
                timestamp: rtp_timestamp,
                event: ev.event,
                ended: ev.end,
                max_duration: ev.duration,
            };
            if continuation {
                return None;
            }
            return Some(digit);
        }
        self.current = Some(Current {
            timestamp: rtp_timestamp,
            event: ev.event,
            ended: ev.end,
            max_duration: ev.duration,
        });
        Some(digit)
    }
}

/// The payload sequence a sender emits for one press of `digit` lasting
/// `duration_ms`: one interim packet every [`PACKET_INTERVAL_MS`] with the
/// duration so far (in 8 kHz units, growing by 160), then [`END_REPEATS`]
/// end packets carrying the total. All belong to one RTP timestamp (the
/// press start); the caller sets RTP timestamps and the marker bit. Durations
/// are capped at 0xFFFF (about 8.19 s; no segmentation). An invalid digit
/// gives an empty sequence; `duration_ms == 0` gives only the end packets.
pub fn packets_for_digit(digit: char, duration_ms: u32) -> Vec<TelephoneEvent> {
    let Some(event) = digit_to_event(digit) else {
        return Vec::new();
    };
    let units_per_packet = CLOCK_RATE / 1000 * PACKET_INTERVAL_MS;
    let total = duration_ms.saturating_mul(CLOCK_RATE / 1000).min(0xFFFF);
    let interim = total.div_ceil(units_per_packet);
    let mut out = Vec::with_capacity(interim as usize + END_REPEATS);
    let clamp = |v: u32| u16::try_from(v.min(total)).unwrap_or(u16::MAX);
    for k in 1..=interim {
        out.push(TelephoneEvent {
            event,
            end: false,
            volume: DEFAULT_VOLUME,
            duration: clamp(k.saturating_mul(units_per_packet)),
        });
    }
    for _ in 0..END_REPEATS {
        out.push(TelephoneEvent {
            event,
            end: true,
            volume: DEFAULT_VOLUME,
            duration: clamp(total),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn parse_and_write() {
        let e = TelephoneEvent::parse(&[11, 0x8a, 0x03, 0x20]).expect("parse");
        assert_eq!(e, ev(11, true, 800));
        assert_eq!(e.digit(), Some('#'));
        assert_eq!(e.to_bytes(), [11, 0x8a, 0x03, 0x20]);
        // R bit ignored on parse, never written.
        let e = TelephoneEvent::parse(&[5, 0x40 | 7, 0, 160, 99]).expect("parse");
        assert_eq!(
            e,
            TelephoneEvent {
                event: 5,
                end: false,
                volume: 7,
                duration: 160
            }
        );
        assert_eq!(e.to_bytes(), [5, 7, 0, 160]);
        for len in 0..4 {
            assert_eq!(
                TelephoneEvent::parse(&[1, 2, 3, 4][..len]),
                Err(DtmfError::TooShort { len })
            );
        }
        // Volume wider than 6 bits is masked.
        assert_eq!(
            TelephoneEvent {
                event: 1,
                end: false,
                volume: 0xff,
                duration: 1
            }
            .to_bytes()[1],
            0x3f
        );
    }

    #[test]
    fn sender_sequence() {
        let p = packets_for_digit('7', 100);
        let durs: Vec<u16> = p.iter().map(|e| e.duration).collect();
        assert_eq!(durs, vec![160, 320, 480, 640, 800, 800, 800, 800]);
        assert!(p.iter().all(|e| e.event == 7));
        assert_eq!(p.iter().filter(|e| e.end).count(), 3);
        assert!(p[..5].iter().all(|e| !e.end));
        // Non-multiple of 20 ms: last interim is capped at the total.
        let durs: Vec<u16> = packets_for_digit('#', 50)
            .iter()
            .map(|e| e.duration)
            .collect();
        assert_eq!(durs, vec![160, 320, 400, 400, 400, 400]);
        assert_eq!(packets_for_digit('x', 100), vec![]);
        assert_eq!(packets_for_digit('1', 0).len(), 3);
        let long = packets_for_digit('D', 20_000);
        assert_eq!(long.last().map(|e| e.duration), Some(0xFFFF));
    }

    /// Feeds a whole press through a receiver; returns reported digits.
    fn feed(rx: &mut Rfc4733Receiver, ts: u32, pkts: &[TelephoneEvent]) -> Vec<char> {
        pkts.iter().filter_map(|e| rx.on_packet(ts, *e)).collect()
    }

    #[test]
    fn one_digit_per_press() {
        let mut rx = Rfc4733Receiver::new();
        let p = packets_for_digit('5', 200);
        assert_eq!(feed(&mut rx, 1000, &p), vec!['5']);
        // Reported on the first packet.
        let mut rx2 = Rfc4733Receiver::new();
        assert_eq!(rx2.on_packet(1000, p[0]), Some('5'));
        // Same digit again, new press (new timestamp) -> again.
        assert_eq!(feed(&mut rx, 1000 + 3200, &p), vec!['5']);
        // Late duplicate end packet of the first press -> ignored.
        assert_eq!(rx.on_packet(1000, p[p.len() - 1]), None);
        // Different digit.
        assert_eq!(feed(&mut rx, 9000, &packets_for_digit('#', 60)), vec!['#']);
    }

    #[test]
    fn lost_start_and_lost_end() {
        let mut rx = Rfc4733Receiver::new();
        // Only the 3 end packets arrive.
        let ends: Vec<_> = packets_for_digit('9', 100)
            .into_iter()
            .filter(|e| e.end)
            .collect();
        assert_eq!(feed(&mut rx, 500, &ends), vec!['9']);
        // Press whose end packets are all lost, then the same digit again.
        let interim: Vec<_> = packets_for_digit('9', 100)
            .into_iter()
            .filter(|e| !e.end)
            .collect();
        assert_eq!(feed(&mut rx, 5000, &interim), vec!['9']);
        assert_eq!(feed(&mut rx, 5000 + 800 + 400, &interim), vec!['9']);
    }

    #[test]
    fn wraparound() {
        let mut rx = Rfc4733Receiver::new();
        let p = packets_for_digit('1', 100);
        let ts1 = u32::MAX - 100;
        assert_eq!(feed(&mut rx, ts1, &p), vec!['1']);
        let ts2 = ts1.wrapping_add(2000);
        assert_eq!(feed(&mut rx, ts2, &p), vec!['1']);
        // Reordered: an end packet of press 1 after press 2 started.
        assert_eq!(rx.on_packet(ts1, p[p.len() - 1]), None);
        // Stream restart far back is a new press.
        assert_eq!(
            rx.on_packet(ts2.wrapping_sub(STALE_WINDOW + 1), p[0]),
            Some('1')
        );
    }

    #[test]
    fn long_event_segments_are_one_press() {
        let mut rx = Rfc4733Receiver::new();
        assert_eq!(rx.on_packet(100, ev(4, false, 160)), Some('4'));
        assert_eq!(rx.on_packet(100, ev(4, false, 0xFFFF)), None);
        assert_eq!(rx.on_packet(100 + 0xFFFF, ev(4, false, 160)), None);
        assert_eq!(rx.on_packet(100 + 0xFFFF, ev(4, true, 800)), None);
        assert_eq!(
            rx.on_packet(100 + 0xFFFF + 2000, ev(4, false, 160)),
            Some('4')
        );
    }

    #[test]
    fn non_dtmf_events_ignored() {
        let mut rx = Rfc4733Receiver::new();
        assert_eq!(rx.on_packet(100, ev(32, false, 160)), None);
        assert_eq!(rx.on_packet(100, ev(3, false, 160)), Some('3'));
        rx.reset();
        assert_eq!(rx.on_packet(100, ev(3, true, 160)), Some('3'));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            match TelephoneEvent::parse(&bytes) {
                Ok(e) => {
                    prop_assert!(bytes.len() >= 4);
                    let mut out = [0u8; 4];
                    e.write(&mut out);
                    prop_assert_eq!(out[0], bytes[0]);
                    prop_assert_eq!(out[1], bytes[1] & 0xbf);
                    prop_assert_eq!(&out[2..], &bytes[2..4]);
                }
                Err(_) => prop_assert!(bytes.len() < 4),
            }
        }

        /// Any sequence of presses (distinct, increasing timestamps), each
        /// with any subset of its packets delivered (at least one), with
        /// duplicates, yields exactly the pressed digits in order.
        #[test]
        fn exactly_once_per_press(
            start in any::<u32>(),
            presses in proptest::collection::vec((0u8..16, 1u32..400, 1u32..2000, any::<u64>()), 1..12),
        ) {
            let mut rx = Rfc4733Receiver::new();
            let mut ts = start;
            let mut got = Vec::new();
            let mut want = Vec::new();
            for (event, dur_ms, gap_ms, mask) in presses {
                let digit = event_to_digit(event).unwrap_or('0');
                let pkts = packets_for_digit(digit, dur_ms);
                let mut delivered: Vec<_> = pkts.iter().enumerate()
                    .filter(|(i, _)| mask & (1u64 << (i % 64)) != 0)
                    .map(|(_, e)| *e).collect();
                if delivered.is_empty() { delivered.push(pkts[pkts.len() - 1]); }
                // duplicate a packet
                delivered.push(delivered[0]);
                for e in delivered {
                    if let Some(d) = rx.on_packet(ts, e) { got.push(d); }
                }
                want.push(digit);
                ts = ts.wrapping_add((dur_ms + gap_ms) * 8);
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn receiver_never_panics(pkts in proptest::collection::vec((any::<u32>(), any::<[u8; 4]>()), 0..64)) {
            let mut rx = Rfc4733Receiver::new();
            for (ts, b) in pkts {
                if let Ok(e) = TelephoneEvent::parse(&b) {
                    let _ = rx.on_packet(ts, e);
                }
            }
        }
    }
}
