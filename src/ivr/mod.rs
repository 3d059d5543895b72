//! IVR: the menus a caller walks before reaching an agent.
//!
//! * [`script`] owns the menu-file format (`ivr/*.toml`, documented in
//!   `ivr/README.md`): serde structures, bounded newtypes, the loader that
//!   merges a directory into one [`IvrScript`] and reports every problem at
//!   once, and the validated model.
//! * [`engine`] owns the per-call session [`IvrCall`]: a sans-IO state
//!   machine. It performs no IO and never reads the clock; the driver passes
//!   `now: Instant` in, drains [`IvrAction`]s with `poll_action` and arms a
//!   timer from `poll_timeout`. Tests run it on a fake clock.
//!
//! Both are hand-written: no crate offers a DTMF menu engine that is sans-IO,
//! driven by an injected clock and fed by a declarative menu file; the
//! existing IVR/telephony crates are tied to a specific media stack or
//! runtime.

pub mod engine;
pub mod script;

pub use engine::{IvrAction, IvrCall, IvrError, IvrEvent};
pub use script::{Action, IvrLoadError, IvrScript};
