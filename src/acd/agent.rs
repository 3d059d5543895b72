//! The agent state machine — the single source of truth for what an agent is
//! doing. Owns [`AgentState`], the pending pause/logout, and the legality table
//! for agent commands ([`command`]). Sans-IO: pure data and pure functions; the
//! core (`core.rs`) applies the results and keeps the per-queue counters in
//! step through one function (`Acd::set_agent_state`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{AgentCommand, CallId};

/// Where an agent is. Exactly one call at most is attached (Offered / OnCall).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    LoggedOut,
    Available,
    /// Ringing for exactly one call.
    Offered {
        call: CallId,
    },
    OnCall {
        call: CallId,
    },
    /// After a call, until `until`; never skipped.
    WrapUp {
        until: Instant,
    },
    Paused {
        reason: String,
    },
}

/// Number of state kinds, for per-queue counters.
pub(crate) const KINDS: usize = 6;

impl AgentState {
    /// Dense index: LoggedOut 0, Available 1, Offered 2, OnCall 3, WrapUp 4, Paused 5.
    pub(crate) fn kind(&self) -> usize {
        match self {
            AgentState::LoggedOut => 0,
            AgentState::Available => 1,
            AgentState::Offered { .. } => 2,
            AgentState::OnCall { .. } => 3,
            AgentState::WrapUp { .. } => 4,
            AgentState::Paused { .. } => 5,
        }
    }
}

/// A change requested while busy, applied when the agent becomes free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    Pause(String),
    Logout,
}

/// What a command does in a given state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CmdEffect {
    Become(AgentState),
    /// Replace the pending change (None clears it).
    SetPending(Option<Pending>),
    Noop,
    Reject(&'static str),
}

/// The legality table. Busy = Offered, OnCall or WrapUp.
pub(crate) fn command(state: &AgentState, cmd: &AgentCommand) -> CmdEffect {
    use AgentState as S;
    let busy = matches!(
        state,
        S::Offered { .. } | S::OnCall { .. } | S::WrapUp { .. }
    );
    match (state, cmd) {
        (S::LoggedOut, AgentCommand::Login) => CmdEffect::Become(S::Available),
        (S::LoggedOut, AgentCommand::Logout) => CmdEffect::Noop,
        (S::LoggedOut, _) => CmdEffect::Reject("not logged in"),
        (_, AgentCommand::Login) => CmdEffect::Noop,
        (S::Available, AgentCommand::Ready) => CmdEffect::Noop,
        (S::Paused { .. }, AgentCommand::Ready) => CmdEffect::Become(S::Available),
        (_, AgentCommand::Ready) if busy => CmdEffect::SetPending(None),
        (S::Available | S::Paused { .. }, AgentCommand::Pause(r)) => {
            CmdEffect::Become(S::Paused { reason: r.clone() })
        }
        (_, AgentCommand::Pause(r)) if busy => {
            CmdEffect::SetPending(Some(Pending::Pause(r.clone())))
        }
        (S::Available | S::Paused { .. }, AgentCommand::Logout) => CmdEffect::Become(S::LoggedOut),
        (_, AgentCommand::Logout) if busy => CmdEffect::SetPending(Some(Pending::Logout)),
        _ => CmdEffect::Reject("illegal in this state"),
    }
}

/// Runtime agent (configuration + state).
#[derive(Debug)]
pub(crate) struct Agent {
    pub id: String,
    #[allow(dead_code)]
    pub name: String,
    /// Level per skill id (dense; unknown skills are 0).
    pub skills: Vec<u8>,
    pub support_level: u8,
    pub wrap_up: Duration,
    pub state: AgentState,
    pub pending: Option<Pending>,
    /// Since when the agent has been idle (set on login, ready, end of wrap-up).
    pub idle_since: Option<Instant>,
    pub calls_since_login: u32,
    /// (queue index, lowest widening level at which this agent qualifies).
    pub memberships: Vec<(usize, usize)>,
    /// Wrap-up timer key.
    pub wrap_timer: Option<(Instant, u64)>,
    /// (queue index, talk start) of the current/last call, for the AHT sample.
    pub talk: Option<(usize, Instant)>,
    /// Calls transferred to this agent, waiting for it (FIFO).
    pub directed: VecDeque<CallId>,
    /// The ticket of the agent's last call, and when its wrap-up began
    /// (said when the wrap-up ends).
    pub last_ticket: Option<String>,
    pub wrap_started: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legality_table() {
        let t0 = Instant::now();
        let on = AgentState::OnCall { call: CallId(1) };
        assert_eq!(
            command(&AgentState::LoggedOut, &AgentCommand::Login),
            CmdEffect::Become(AgentState::Available)
        );
        assert!(matches!(
            command(&AgentState::LoggedOut, &AgentCommand::Ready),
            CmdEffect::Reject(_)
        ));
        assert_eq!(
            command(&on, &AgentCommand::Pause("lunch".into())),
            CmdEffect::SetPending(Some(Pending::Pause("lunch".into())))
        );
        assert_eq!(
            command(&AgentState::WrapUp { until: t0 }, &AgentCommand::Logout),
            CmdEffect::SetPending(Some(Pending::Logout))
        );
        assert_eq!(
            command(&on, &AgentCommand::Ready),
            CmdEffect::SetPending(None)
        );
        assert_eq!(
            command(&AgentState::Available, &AgentCommand::Logout),
            CmdEffect::Become(AgentState::LoggedOut)
        );
        assert_eq!(
            command(
                &AgentState::Paused { reason: "x".into() },
                &AgentCommand::Ready
            ),
            CmdEffect::Become(AgentState::Available)
        );
    }
}
