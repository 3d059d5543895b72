//! centralita — a call-center controller for remote technical-support
//! desks: SIP calls answered by an IVR with real prompts and DTMF, routed by
//! skill to agents' softphones (or queued, with callbacks), bridged and
//! transferred; supervisors' metrics in Prometheus.
//!
//! The decisions live in sans-IO cores that take `now` and return actions
//! (listed in [`SANS_IO_CORES`]; `tests/sans_io.rs` fails when one of them
//! names tokio, a socket or the clock). Their drivers own the sockets,
//! timers and tasks: `sip` (socket front, rsipstack, registrar), `media`
//! (clock, sessions, ports), `call::driver`, `acd::driver` (the
//! switchboard), `http`, `server`.

pub mod acd;
pub mod call;
pub mod config;
pub mod events;
pub mod helpdesk;
pub mod http;
pub mod ivr;
pub mod kb;
pub mod media;
pub mod metrics;
pub mod server;
pub mod sip;
pub mod text;
pub mod tickets;

/// The files of the sans-IO decision cores: no tokio, no socket, no clock.
pub const SANS_IO_CORES: &[&str] = &[
    "src/call/mod.rs",
    "src/call/core/mod.rs",
    "src/call/core/hold.rs",
    "src/call/core/ivr.rs",
    "src/call/core/queue.rs",
    "src/call/core/bridge.rs",
    "src/call/core/consult/mod.rs",
    "src/call/core/consult/colleague.rs",
    "src/call/core/consult/phone.rs",
    "src/call/keypad.rs",
    "src/acd/mod.rs",
    "src/acd/core/mod.rs",
    "src/acd/core/consult.rs",
    "src/acd/agent.rs",
    "src/acd/queue.rs",
    "src/acd/strategy.rs",
    "src/acd/config.rs",
    "src/acd/erlang.rs",
    "src/acd/staffing.rs",
    "src/ivr/engine.rs",
    "src/ivr/script.rs",
    "src/ivr/mod.rs",
    "src/media/sdp.rs",
    "src/media/g711.rs",
    "src/media/rtp.rs",
    "src/media/relay.rs",
    "src/media/prompts.rs",
    "src/media/dtmf/mod.rs",
    "src/media/dtmf/inband.rs",
    "src/media/dtmf/rfc4733.rs",
    "src/media/dtmf/info.rs",
    "src/sip/raw.rs",
    "src/sip/digest.rs",
    "src/sip/registrar.rs",
    "src/sip/limits.rs",
];
