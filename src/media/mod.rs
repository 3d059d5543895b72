//! Media: RTP ports, the shared media clock that plays prompts, the per-call
//! receiver that counts packets and detects DTMF, and the sans-IO pieces
//! they use (G.711, RTP framing, prompt audio, DTMF detectors).
//!
//! This module owns every RTP socket; it never decides what to play — the
//! call (driven by the IVR) does.

pub mod clock;
pub mod dtmf;
pub mod g711;
pub mod ports;
pub mod prompts;
pub mod relay;
pub mod rtp;
pub mod sdp;
mod session;

pub use session::{MediaSession, SessionSetup};

/// What media tells a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The playlist started with this token has been played to the end.
    PlaybackFinished { token: u64 },
    /// A DTMF digit from the caller.
    Digit {
        digit: char,
        source: dtmf::DigitSource,
    },
    /// No RTP from the peer for the configured time.
    RtpTimeout,
}
