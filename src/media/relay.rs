//! One direction of a bridge, sans IO: what happens to each packet one leg
//! receives before it goes out to the other leg.
//!
//! Packets are relayed as they came (payload, timestamp, SSRC), with one
//! exception: the agent's keys. The agent's leg may type an in-call feature
//! code (a transfer prefix and a target) that the caller must not hear, so
//! on that direction the agent's RFC 4733 events are withheld and turned into
//! digits for the call; the digits that turn out not to be a feature code
//! are sent on as new events ([`RelayState::inject_digit`]). To keep the
//! caller's sequence numbers gap-free, every packet after a withheld or an
//! injected one has its sequence number shifted.
//!
//! Written here because no crate rewrites a relayed RTP stream this way.

use super::dtmf::digit_to_event;
use super::dtmf::rfc4733::packets_for_digit;
use super::rtp::telephone_event_payload;

/// How long an injected key lasts (its RFC 4733 duration).
const INJECTED_KEY_MS: u32 = 100;

/// What to do with a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on (its sequence number may have been rewritten in place).
    Relay,
    /// Keep it from the other leg: it is one of the sender's keys.
    Withhold,
}

/// One direction's relay state.
#[derive(Debug, Clone, Default)]
pub struct RelayState {
    /// Telephone-event packets of this payload type are withheld.
    withhold_pt: Option<u8>,
    /// The receiving leg's telephone-event payload type, for injected keys.
    inject_pt: Option<u8>,
    /// Added to every relayed packet's sequence number.
    seq_shift: u16,
    /// The last packet sent on: sequence number (as sent), timestamp, SSRC.
    last: Option<(u16, u32, u32)>,
}

impl RelayState {
    /// Relay everything as it comes.
    pub fn plain() -> Self {
        Self::default()
    }

    /// Withhold the sender's telephone events (payload type `sender_pt`) and
    /// inject keys to the receiver as `receiver_pt`.
    pub fn taking_keys(sender_pt: Option<u8>, receiver_pt: Option<u8>) -> Self {
        RelayState {
            withhold_pt: sender_pt,
            inject_pt: receiver_pt,
            ..Self::default()
        }
    }

    /// Decide on one parsed packet; `packet` is the whole datagram, whose
    /// sequence number is rewritten in place when needed.
    pub fn on_packet(
        &mut self,
        packet: &mut [u8],
        pt: u8,
        seq: u16,
        ts: u32,
        ssrc: u32,
    ) -> Verdict {
        if self.withhold_pt == Some(pt) {
            self.seq_shift = self.seq_shift.wrapping_sub(1);
            return Verdict::Withhold;
        }
        let out = seq.wrapping_add(self.seq_shift);
        if self.seq_shift != 0 {
            if let Some(bytes) = packet.get_mut(2..4) {
                bytes.copy_from_slice(&out.to_be_bytes());
            }
        }
        self.last = Some((out, ts, ssrc));
        Verdict::Relay
    }

    /// The packets of one key press to send to the receiving leg now, in
    /// its telephone-event payload type, continuing the relayed stream's
    /// sequence numbers and SSRC. Empty when the receiver has no
    /// telephone-event payload or the key is not a DTMF key.
    pub fn inject_digit(&mut self, digit: char) -> Vec<Vec<u8>> {
        let (Some(pt), Some(event)) = (self.inject_pt, digit_to_event(digit)) else {
            return Vec::new();
        };
        let (last_seq, last_ts, ssrc) = self.last.unwrap_or((0, 0, 0x6365_6e74));
        // The press starts where the next audio packet would.
        let ts = last_ts.wrapping_add(160);
        let mut out = Vec::new();
        let mut seq = last_seq;
        for (k, ev) in packets_for_digit(digit, INJECTED_KEY_MS).iter().enumerate() {
            seq = seq.wrapping_add(1);
            let payload = telephone_event_payload(event, ev.end, ev.volume, ev.duration);
            let mut p = Vec::with_capacity(16);
            p.push(0x80);
            p.push(pt & 0x7f | if k == 0 { 0x80 } else { 0 });
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&payload);
            out.push(p);
        }
        let n = u16::try_from(out.len()).unwrap_or(0);
        self.seq_shift = self.seq_shift.wrapping_add(n);
        // A key injected right after this one must not share its timestamp
        // (the receiver would take it for the same press).
        self.last = Some((seq, ts.wrapping_add(INJECTED_KEY_MS * 8), ssrc));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::rfc4733::{Rfc4733Receiver, TelephoneEvent};
    use crate::media::rtp::parse_rtp;

    fn audio(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    fn event(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 101];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&[11, 0x8a, 0, 160]);
        p
    }

    /// Run a packet through the state; the sequence number as sent, or None.
    fn pass(state: &mut RelayState, mut p: Vec<u8>) -> Option<u16> {
        let (pt, seq, ts, ssrc) = {
            let v = parse_rtp(&p).expect("valid");
            (v.payload_type, v.sequence, v.timestamp, v.ssrc)
        };
        match state.on_packet(&mut p, pt, seq, ts, ssrc) {
            Verdict::Relay => Some(parse_rtp(&p).expect("still valid").sequence),
            Verdict::Withhold => None,
        }
    }

    #[test]
    fn plain_relay_changes_nothing() {
        let mut s = RelayState::plain();
        assert_eq!(pass(&mut s, audio(10, 1600)), Some(10));
        assert_eq!(pass(&mut s, event(11, 1760)), Some(11));
        assert_eq!(pass(&mut s, audio(12, 1760)), Some(12));
        assert!(
            s.inject_digit('5').is_empty(),
            "no payload type to inject with"
        );
    }

    #[test]
    fn withheld_keys_leave_no_gap_and_injected_keys_continue_the_stream() {
        let mut s = RelayState::taking_keys(Some(101), Some(96));
        assert_eq!(pass(&mut s, audio(65534, 1600)), Some(65534));
        assert_eq!(pass(&mut s, event(65535, 1760)), None);
        assert_eq!(pass(&mut s, event(0, 1760)), None);
        // The next audio packet follows the last one sent on.
        assert_eq!(pass(&mut s, audio(1, 1760)), Some(65535));
        let injected = s.inject_digit('#');
        assert!(injected.len() >= 4, "start, updates and three ends");
        let mut rx = Rfc4733Receiver::new();
        let mut digits = Vec::new();
        for (k, p) in injected.iter().enumerate() {
            let v = parse_rtp(p).expect("injected packets are RTP");
            assert_eq!(v.payload_type, 96);
            assert_eq!(v.ssrc, 7, "the relayed stream's SSRC");
            assert_eq!(v.sequence, k as u16, "seq continues from 65535");
            assert_eq!(v.timestamp, 1760 + 160);
            assert_eq!(v.marker, k == 0);
            let ev = TelephoneEvent::parse(v.payload).expect("an event");
            digits.extend(rx.on_packet(v.timestamp, ev));
        }
        assert_eq!(digits, vec!['#'], "heard exactly once");
        let n = injected.len() as u16;
        // A second key at once is a second press (a later timestamp).
        let again = s.inject_digit('4');
        let v = parse_rtp(&again[0]).expect("RTP");
        assert!(v.timestamp > 1760 + 160, "{}", v.timestamp);
        assert_eq!(v.sequence, n);
        let ev = TelephoneEvent::parse(v.payload).expect("an event");
        assert_eq!(rx.on_packet(v.timestamp, ev), Some('4'));
        let n = n + again.len() as u16;
        assert_eq!(pass(&mut s, audio(2, 1920)), Some(n));
    }
}
