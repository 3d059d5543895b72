//! ACD — automatic call distribution: the skills-based routing decision core.
//!
//! This module is **sans-IO**: no sockets, no tasks, no clock reads. The driver
//! feeds [`AcdEvent`]s and timeouts (always with a caller-supplied
//! `now: Instant`) and drains [`AcdAction`]s, in the style of quinn-proto /
//! str0m:
//!
//! ```text
//! acd.handle_event(now, ev);      // SIP/IVR/agent-UI facts
//! acd.handle_timeout(now);        // when now >= acd.poll_timeout()
//! while let Some(a) = acd.poll_action() { /* ring agents, play prompts, ... */ }
//! ```
//!
//! It is hand-written because no crate does skills-based ACD (agent state
//! machine, skill levels, widening, wrap-up, callbacks, line reservation).
//!
//! Files and what each owns:
//! - `mod.rs` — the public vocabulary: [`CallId`], [`AcdEvent`], [`AcdAction`],
//!   [`Outcome`], commands and reasons; re-exports.
//! - `config.rs` — [`AcdConfig`], [`AgentConfig`], [`QueueConfig`], strategies,
//!   fallbacks, widening steps, and validation ([`AcdConfigError`]).
//! - `agent.rs` — [`AgentState`], the ONE agent state machine (the single source
//!   of truth for an agent) and its command-legality table.
//! - `queue.rs` — per-queue runtime: caller ordering (priority, then FIFO),
//!   per-widening-level qualified-agent indexes and per-state counters, average
//!   handle time, service-level and abandon windows, [`QueueStats`].
//! - `strategy.rs` — picking agent(s) for a call (LongestIdle, BestSkill,
//!   FewestCalls, RoundRobin, RingAll).
//! - `core.rs` — [`Acd`]: event/timer handling, dispatch, timers, queries.
//! - `tests.rs` / `proptests.rs` — scenario tests on a fake clock and property
//!   tests over random event sequences.

//!
//! Behaviour choices and simplifications (documented, tested where marked):
//! - Login puts an agent straight into Available; Ready leaves a pause; while
//!   Offered/OnCall/WrapUp, Pause/Logout become *pending* and apply when the
//!   agent is free (wrap-up is never skipped). Illegal commands yield
//!   `CommandRejected`.
//! - A failed offer (NoAnswer/Rejected, the ring timer, Unreachable) requeues
//!   the caller at the head of its priority band and pauses the agent with
//!   `AcdConfig::no_answer_pause` ("no-answer"; "unreachable" for
//!   Unreachable; `None` = back to Available). Under RingAll every unanswered
//!   leg is treated the same. Cancelled legs (other RingAll agents, caller
//!   hang-up) go back to Available keeping their idle time.
//! - Outcome `Served`/`CalledBack` is reported when the call *ends* (so a
//!   transferred call is never reported twice).
//! - Widening steps are cumulative and counted from entry into the current
//!   queue (overflow/transfer restarts the count). Base qualification is
//!   "agent support level == queue support level (default 1)".
//! - Across queues, dispatch serves queues in order of their head caller
//!   (priority, then time in queue); within a queue, strict order.
//! - `on_no_agents` applies when a call *enters* a queue (arrival/overflow,
//!   not transfers); overflow chains are bounded. `OfferCallback` fallbacks
//!   emit `OfferCallbackToCaller` once and keep the caller waiting.
//! - Max wait applies to callers holding a line (not callback-pending ones) and
//!   is suspended while ringing.
//! - Callbacks: one agent per callback (even under RingAll); the ring timer
//!   covers the agent leg, then again the customer leg (expiry there counts as
//!   `CallbackFailed`); failures beyond `callback_retries` end as
//!   `CallbackGaveUp`, retries wait `callback_retry_delay`. Caller hang-up
//!   while callback-pending is ignored (the line was released on purpose).
//! - Transfer to an agent: the call waits only for that agent (no max wait, no
//!   announcements); it goes back to the head of its queue if that agent logs
//!   out; transfer to a logged-out/unknown agent or unknown queue is refused.
//! - Consultation (attended transfer): the agent on a call consults a
//!   colleague who must be Available (refused at once otherwise), or a queue
//!   with agents logged in, where it waits like a caller (announcements,
//!   widening; no max wait). It has an id of its own, counts in no queue
//!   figure (answers, abandons, service level) and ends with outcome
//!   `Consultation`. A colleague who declines is not paused; one who does
//!   not answer is, as for any offer. Completion moves the caller's call to
//!   the colleague (who keeps its talk time) and the consulting agent to
//!   wrap-up; the call ending ends its consultation too.
//! - Call ids must be unique while live; a finished id may be reused.
//!   Unknown calls/agents and out-of-state events are ignored.
//! - Position is O(position) (BTreeMap range count), fine for hundreds of
//!   waiting callers per queue; an order-statistic tree would make it O(log n).

mod agent;
mod config;
mod core;
pub mod driver;
pub mod erlang;
mod kpis;
pub mod lines;
mod queue;
pub mod staffing;
mod strategy;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use self::core::{Acd, CallStatus};
pub use agent::AgentState;
pub use config::{
    AbandonMode, AcdConfig, AcdConfigError, AgentConfig, Fallback, QueueConfig, Strategy, Widen,
    WideningStep,
};
pub use queue::{service_level, AgentCounts, QueueStats, Window};

/// What the queue KPIs count, as it happens. `queue` is the queue's index
/// in [`AcdConfig::queues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// A caller not yet answered entered the queue (arriving, or
    /// overflowing from another queue).
    Offered { queue: usize },
    /// A caller was answered for the first time, after `waited` since it
    /// came to the ACD; `within` the queue's service-level threshold.
    Answered {
        queue: usize,
        waited: std::time::Duration,
        within: bool,
    },
    /// A caller hung up waiting; `short`: sooner than the queue's
    /// short-abandon time (not counted as an abandon).
    Abandoned {
        queue: usize,
        waited: std::time::Duration,
        short: bool,
        within: bool,
    },
    /// An agent's call of the queue is over: its talk and its wrap-up
    /// (after-call work).
    Handled {
        queue: usize,
        talk: std::time::Duration,
        wrap_up: std::time::Duration,
    },
}

/// Identifier of a customer call, chosen by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// What an agent asks for (from the agent UI / feature codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// LoggedOut -> Available.
    Login,
    /// Paused -> Available; WrapUp -> Available (wrap-up ended early);
    /// while Offered/OnCall, cancels a pending pause/logout.
    Ready,
    /// Available/Paused -> Paused; while Offered/OnCall/WrapUp it becomes pending.
    Pause(String),
    /// Available/Paused -> LoggedOut; while Offered/OnCall/WrapUp it becomes pending.
    Logout,
}

/// Why an offer to an agent failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferFailReason {
    NoAnswer,
    Rejected,
    Unreachable,
}

/// Target of a transfer made by an agent on a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// Re-queue in that queue (tail of the caller's priority band).
    Queue(String),
    /// Wait for that agent only (offered when the agent is Available).
    Agent(String),
}

/// How a caller's journey ended. Every call gets exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Talked with an agent (reported when the call ends).
    Served,
    /// Hung up while waiting or ringing.
    Abandoned,
    /// Refused on arrival (an unknown queue).
    Blocked,
    /// A callback reached the customer and the call ended.
    CalledBack,
    /// The callback failed more than the configured retries.
    CallbackGaveUp,
    /// A prompt was played and the call hung up (max wait / no agents).
    MessageHangup,
    /// A consultation's own entry is over (handed over, given up or
    /// unanswered): never a caller's outcome, never in a queue's figures.
    Consultation,
}

/// Facts the driver reports to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdEvent {
    /// A caller enters `queue` (priority 0..=9, 9 highest; larger values are clamped).
    CallArrived {
        call: CallId,
        queue: String,
        priority: u8,
        ticket: Option<String>,
    },
    /// The customer hung up (queued: Abandoned; offered: offer cancelled;
    /// on call: same as [`AcdEvent::CallEnded`]). Ignored while a callback is pending.
    CallerHungUp {
        call: CallId,
    },
    AgentCommand {
        agent: String,
        cmd: AgentCommand,
    },
    /// The agent's last SIP binding expired or was removed.
    AgentUnreachable {
        agent: String,
    },
    /// The agent's leg answered (for a callback: the agent leg; the customer
    /// leg is reported with [`AcdEvent::CallbackConnected`]).
    AgentAnswered {
        call: CallId,
        agent: String,
    },
    OfferFailed {
        call: CallId,
        agent: String,
        reason: OfferFailReason,
    },
    /// A connected call ended (either side). For a call not on a call yet,
    /// it is treated as [`AcdEvent::CallerHungUp`].
    CallEnded {
        call: CallId,
    },
    /// Keep my place, call me back (at `number`, or the caller id if `None`).
    /// Answered with [`AcdAction::ReleaseLine`] or [`AcdAction::CallbackRefused`].
    RequestCallback {
        call: CallId,
        number: Option<String>,
    },
    /// A due callback ([`AcdAction::OfferCallback`]) found no free line:
    /// it waits and looks again shortly.
    NoLineForCallback {
        call: CallId,
    },
    /// The customer leg of a callback answered.
    CallbackConnected {
        call: CallId,
    },
    /// The customer leg of a callback failed (busy, no answer, ...).
    CallbackFailed {
        call: CallId,
    },
    /// An agent on `call` transfers it.
    Transfer {
        call: CallId,
        to: TransferTarget,
    },
    /// The phone of the agent talking on `call` vanished (no audio from it
    /// for the RTP timeout): the agent is paused `unreachable` and the
    /// caller goes back to the head of its queue.
    AgentLost {
        call: CallId,
    },
    /// The agent on `call` consults a colleague (or a queue) before handing
    /// the caller over; `consult` is the consultation's own id (its offers,
    /// announcements and end carry it). Answered with an offer,
    /// [`AcdAction::ConsultQueued`] or [`AcdAction::ConsultRejected`]; the
    /// consultation ends with [`AcdEvent::CallEnded`] on its id.
    Consult {
        call: CallId,
        consult: CallId,
        to: TransferTarget,
    },
    /// Hand the consulted call's caller over to the colleague who answered
    /// the consultation: [`AcdAction::ConsultCompleted`] or
    /// [`AcdAction::CompletionRefused`].
    CompleteConsult {
        consult: CallId,
    },
}

/// What the core asks the driver to do (or tells it, for state changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdAction {
    /// Ring `agent` for `call`.
    Offer {
        call: CallId,
        agent: String,
        ticket: Option<String>,
    },
    /// Stop ringing / drop the agent leg.
    CancelOffer {
        call: CallId,
        agent: String,
    },
    /// Call the agent first, then the customer (callback in queue).
    OfferCallback {
        call: CallId,
        agent: String,
        number: Option<String>,
        ticket: Option<String>,
    },
    /// Tell the caller its position and estimated wait.
    Announce {
        call: CallId,
        position: usize,
        ewt_minutes: u32,
    },
    /// Refuse the call (outcome Blocked follows).
    Block {
        call: CallId,
    },
    /// The caller's line can be hung up: its place is kept for a callback.
    ReleaseLine {
        call: CallId,
    },
    /// The caller cannot be called back from where it waits (transferred to
    /// one agent): it keeps waiting.
    CallbackRefused {
        call: CallId,
    },
    /// The transfer was taken: the call waits in its new queue (or for its
    /// agent); the transferring agent is in wrap-up.
    Transferred {
        call: CallId,
    },
    /// The call moved from one queue to another.
    Overflowed {
        call: CallId,
        from: String,
        to: String,
    },
    /// Play `prompt` then hang up (outcome MessageHangup follows).
    PlayAndHangup {
        call: CallId,
        prompt: String,
    },
    /// Offer the caller a callback (max wait / no agents with `OfferCallback`);
    /// the caller keeps waiting unless a `RequestCallback` comes.
    OfferCallbackToCaller {
        call: CallId,
    },
    AgentStateChanged {
        agent: String,
        state: AgentState,
    },
    /// A figure for the queue KPIs (counters and histograms).
    Measured(Measure),
    /// The call left the ACD with this outcome (exactly once per call).
    CallFinished {
        call: CallId,
        outcome: Outcome,
    },
    /// An agent command was illegal in the current state (or unknown agent).
    CommandRejected {
        agent: String,
        reason: &'static str,
    },
    /// A transfer could not be done; the call stays with its agent.
    TransferRejected {
        call: CallId,
        reason: &'static str,
    },
    /// The consultation waits in its queue (announcements follow).
    ConsultQueued {
        call: CallId,
    },
    /// The consultation was refused, or rang out: the consulting agent
    /// keeps its caller.
    ConsultRejected {
        call: CallId,
        reason: &'static str,
    },
    /// The colleague has the caller now (its call's agent); the consulting
    /// agent is in wrap-up. The consultation's entry is gone.
    ConsultCompleted {
        call: CallId,
    },
    /// The hand-over could not be made; the consultation goes on.
    CompletionRefused {
        call: CallId,
        reason: &'static str,
    },
    /// An agent's wrap-up is over (its time elapsed, or the agent said it
    /// was ready), `after` it began; `ticket`: its last call's.
    WrapUpEnded {
        agent: String,
        ticket: Option<String>,
        after: std::time::Duration,
    },
}
