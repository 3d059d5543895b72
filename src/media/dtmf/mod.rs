//! DTMF digit reception from the three ways a SIP caller can send a key press.
//!
//! What each file owns:
//!
//! * `mod.rs` (this file): the digit alphabet (`'0'..='9'`, `'*'`, `'#'`,
//!   `'A'..='D'`), the RFC 4733 event-code mapping ([`event_to_digit`],
//!   [`digit_to_event`]), [`DigitSource`] (where a digit came from, for logs
//!   and metrics) and the shared [`DtmfError`].
//! * `rfc4733.rs`: the RTP `telephone-event` payload ([`TelephoneEvent`]
//!   parse/write), the receive-side de-duplicator [`Rfc4733Receiver`] (one
//!   digit per key press although senders repeat packets), and the send-side
//!   packet sequence [`packets_for_digit`].
//! * `info.rs`: SIP INFO bodies, `application/dtmf-relay` and
//!   `application/dtmf` ([`parse_info_body`]).
//! * `inband.rs`: the in-band tone detector [`InbandDetector`] (Goertzel /
//!   least-squares analysis of 8 kHz linear PCM, after G.711 decoding), with
//!   its acceptance limits in [`InbandParams`] (duration, frequency
//!   tolerance, twist, signal-to-rest ratio, level).
//!
//! Everything here is **sans-IO**: no sockets, no tasks, no timers and no
//! clock reads. Callers feed bytes, samples and RTP timestamps in; time only
//! passes through those arguments, so every behaviour is unit-testable and
//! deterministic.
//!
//! This code is hand-written on purpose: no available crate does DTMF well
//! for telephony. The Goertzel decoders on crates.io report presses without
//! the limits a call centre needs (minimum duration, frequency tolerance
//! per ITU-T Q.24, twist, signal-to-rest ratio, speech immunity) and keep
//! no per-press state, and none de-duplicates RFC 4733 packets per press.
//! The state machines here state those limits explicitly (see each file) and
//! never panic, whatever bytes or samples arrive.

pub mod inband;
pub mod info;
pub mod rfc4733;

pub use inband::{InbandDetector, InbandParams};
pub use info::parse_info_body;
pub use rfc4733::{packets_for_digit, Rfc4733Receiver, TelephoneEvent};

/// The sixteen DTMF digits in RFC 4733 event-code order (index = event code).
pub const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// Maps an RFC 4733 event code (0-9 digits, 10 `*`, 11 `#`, 12-15 `A`-`D`)
/// to its digit. Codes above 15 (other telephony events) give `None`.
pub fn event_to_digit(event: u8) -> Option<char> {
    DIGITS.get(usize::from(event)).copied()
}

/// Maps a digit to its RFC 4733 event code. `'a'..='d'` are accepted as
/// `'A'..='D'`; anything else gives `None`.
pub fn digit_to_event(c: char) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    DIGITS
        .iter()
        .position(|&d| d == c)
        .and_then(|i| u8::try_from(i).ok())
}

/// True for the sixteen DTMF digits (upper-case `A`-`D` only).
pub fn is_digit(c: char) -> bool {
    DIGITS.contains(&c)
}

/// Where a digit was received from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigitSource {
    /// RTP `telephone-event` payload (RFC 4733 / RFC 2833).
    Rfc4733,
    /// SIP INFO request body.
    Info,
    /// Tones detected in the audio itself.
    Inband,
}

impl DigitSource {
    /// Stable lower-case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DigitSource::Rfc4733 => "rfc4733",
            DigitSource::Info => "info",
            DigitSource::Inband => "inband",
        }
    }
}

impl std::fmt::Display for DigitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors from parsing DTMF carried in packets or SIP bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// An RFC 4733 payload shorter than its 4 bytes.
    #[error("telephone-event payload too short: {len} bytes, need 4")]
    TooShort {
        /// Length received.
        len: usize,
    },
    /// A SIP INFO body whose Content-Type is not a DTMF type we know.
    #[error("unsupported DTMF content type: {0}")]
    UnsupportedContentType(String),
    /// A SIP INFO body that does not carry exactly one valid digit.
    #[error("bad DTMF body: {0}")]
    BadBody(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_round_trip() {
        for ev in 0u8..16 {
            let d = event_to_digit(ev).expect("digit");
            assert_eq!(digit_to_event(d), Some(ev));
            assert!(is_digit(d));
        }
        assert_eq!(event_to_digit(10), Some('*'));
        assert_eq!(event_to_digit(11), Some('#'));
        assert_eq!(event_to_digit(12), Some('A'));
        assert_eq!(event_to_digit(15), Some('D'));
        assert_eq!(event_to_digit(16), None);
        assert_eq!(event_to_digit(255), None);
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('E'), None);
        assert_eq!(digit_to_event('x'), None);
    }

    #[test]
    fn source_names() {
        assert_eq!(DigitSource::Rfc4733.as_str(), "rfc4733");
        assert_eq!(DigitSource::Info.as_str(), "info");
        assert_eq!(DigitSource::Inband.to_string(), "inband");
    }
}
