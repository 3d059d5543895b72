//! centralita — a call-center controller: SIP IVR with real prompts and DTMF
//! (this crate's first capability), then skills-based routing, tickets and a
//! logbook. See `../shared/DESIGN.md` for the map.
//!
//! Sans-IO cores (no tokio, no sockets, no clock): `ivr`, `sdp`,
//! `media::{g711, rtp, dtmf, prompts}`, `sip::raw`. Drivers: `sip`, `media`
//! (clock, session, ports), `call`, `http`, `server`.

pub mod acd;
pub mod call;
pub mod config;
pub mod http;
pub mod ivr;
pub mod keypad;
pub mod live;
pub mod media;
pub mod metrics;
pub mod overload;
pub mod sdp;
pub mod server;
pub mod sip;
pub mod switchboard;
