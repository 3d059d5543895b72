//! The switchboard: the one task that owns the ACD core. Every agent and
//! queue event reaches the core through this task's channel, so the races
//! the core's tests rule out are the only ones there are. It runs the
//! core's timers (wrap-up, ring timeouts) on its `poll_timeout`, keeps the
//! agents-by-state gauge, and answers agents' feature codes with the state
//! they end in.

use crate::acd::{Acd, AcdAction, AcdConfig, AcdEvent, AgentCommand, AgentConfig, AgentState};
use crate::config::RuntimeConfig;
use crate::metrics::Metrics;
use crate::sip::accounts::Presence;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What an agent dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Ready,
    Pause,
    Logout,
}

/// An agent's state as the rest of the controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    LoggedOut,
    Available,
    Offered,
    OnCall,
    WrapUp,
    Paused,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 6] = [
        AgentStatus::LoggedOut,
        AgentStatus::Available,
        AgentStatus::Offered,
        AgentStatus::OnCall,
        AgentStatus::WrapUp,
        AgentStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::LoggedOut => "logged_out",
            AgentStatus::Available => "available",
            AgentStatus::Offered => "offered",
            AgentStatus::OnCall => "on_call",
            AgentStatus::WrapUp => "wrap_up",
            AgentStatus::Paused => "paused",
        }
    }

    fn of(state: &AgentState) -> AgentStatus {
        match state {
            AgentState::LoggedOut => AgentStatus::LoggedOut,
            AgentState::Available => AgentStatus::Available,
            AgentState::Offered { .. } => AgentStatus::Offered,
            AgentState::OnCall { .. } => AgentStatus::OnCall,
            AgentState::WrapUp { .. } => AgentStatus::WrapUp,
            AgentState::Paused { .. } => AgentStatus::Paused,
        }
    }
}

enum Request {
    Feature {
        agent: String,
        feature: Feature,
        reply: oneshot::Sender<Option<AgentStatus>>,
    },
    Status {
        agent: String,
        reply: oneshot::Sender<Option<AgentStatus>>,
    },
}

/// Handle to the switchboard task.
#[derive(Clone)]
pub struct Switchboard {
    tx: mpsc::UnboundedSender<Request>,
}

/// The ACD's configuration from the operator's config.
pub fn acd_config(config: &RuntimeConfig) -> AcdConfig {
    let agents = config
        .agents
        .iter()
        .map(|(id, a)| {
            let mut agent = AgentConfig::new(id.clone(), a.name.clone())
                .support_level(a.level)
                .wrap_up(Duration::from_secs(u64::from(a.wrap_up_secs)));
            for (skill, level) in &a.skills {
                agent = agent.skill(skill.clone(), *level);
            }
            agent
        })
        .collect();
    AcdConfig {
        agents,
        ..AcdConfig::default()
    }
}

impl Switchboard {
    /// Start the task. `presence` carries the registrar's reachability news.
    pub fn start(
        config: AcdConfig,
        metrics: Metrics,
        presence: mpsc::UnboundedReceiver<Presence>,
        cancel: CancellationToken,
    ) -> Result<Switchboard, String> {
        let agent_ids = config.agents.iter().map(|a| a.id.clone()).collect();
        let acd = Acd::new(config).map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(acd, agent_ids, rx, presence, metrics, cancel));
        Ok(Switchboard { tx })
    }

    /// Apply a feature code; the agent's state afterwards (`None`: unknown
    /// agent or the switchboard stopped).
    pub async fn feature(&self, agent: &str, feature: Feature) -> Option<AgentStatus> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Feature {
                agent: agent.to_string(),
                feature,
                reply,
            })
            .ok()?;
        rx.await.ok().flatten()
    }

    /// An agent's current state.
    pub async fn status(&self, agent: &str) -> Option<AgentStatus> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Status {
                agent: agent.to_string(),
                reply,
            })
            .ok()?;
        rx.await.ok().flatten()
    }
}

async fn run(
    mut acd: Acd,
    agent_ids: Vec<String>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut presence: mpsc::UnboundedReceiver<Presence>,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let agents: Vec<String> = agent_ids;
    publish(&acd, &agents, &metrics);
    loop {
        let deadline = acd.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sleep => acd.handle_timeout(Instant::now()),
            req = requests.recv() => match req {
                None => return,
                Some(Request::Feature { agent, feature, reply }) => {
                    let now = Instant::now();
                    let cmd = match (feature, acd.agent_state(&agent)) {
                        (_, None) => {
                            let _ = reply.send(None);
                            continue;
                        }
                        (Feature::Ready, Some(AgentState::LoggedOut)) => AgentCommand::Login,
                        (Feature::Ready, _) => AgentCommand::Ready,
                        (Feature::Pause, _) => AgentCommand::Pause("break".into()),
                        (Feature::Logout, _) => AgentCommand::Logout,
                    };
                    acd.handle_event(now, AcdEvent::AgentCommand { agent: agent.clone(), cmd });
                    drain(&mut acd);
                    let _ = reply.send(acd.agent_state(&agent).map(AgentStatus::of));
                }
                Some(Request::Status { agent, reply }) => {
                    let _ = reply.send(acd.agent_state(&agent).map(AgentStatus::of));
                }
            },
            p = presence.recv() => match p {
                Some(Presence::Unreachable { agent }) => {
                    tracing::info!(%agent, "agent unreachable: logged out");
                    acd.handle_event(Instant::now(), AcdEvent::AgentUnreachable { agent });
                }
                Some(Presence::Reachable { agent }) => tracing::info!(%agent, "agent registered"),
                None => {}
            },
        }
        drain(&mut acd);
        publish(&acd, &agents, &metrics);
    }
}

/// Carry out the core's actions. Until calls are routed to agents, only
/// state changes matter here.
fn drain(acd: &mut Acd) {
    while let Some(action) = acd.poll_action() {
        match action {
            AcdAction::AgentStateChanged { agent, state } => {
                tracing::info!(%agent, state = AgentStatus::of(&state).as_str(), "agent state");
            }
            other => tracing::debug!(?other, "ACD action not carried out yet"),
        }
    }
}

fn publish(acd: &Acd, agents: &[String], metrics: &Metrics) {
    let mut counts = [0i64; 6];
    for a in agents {
        if let Some(s) = acd.agent_state(a) {
            let i = AgentStatus::ALL
                .iter()
                .position(|x| *x == AgentStatus::of(s))
                .unwrap_or(0);
            counts[i] += 1;
        }
    }
    for (status, n) in AgentStatus::ALL.iter().zip(counts) {
        metrics.agents.with_label_values(&[status.as_str()]).set(n);
    }
}
