//! The switchboard: the one task that owns the ACD core. Every agent and
//! queue event reaches the core through this task's channel, so the races
//! the core's tests rule out are the only ones there are. It runs the
//! core's timers (wrap-up, ring timeouts) on its `poll_timeout`, keeps the
//! agents-by-state gauge, and answers agents' feature codes with the state
//! they end in.

use crate::acd::lines::{LineCapacity, LineGuard};
use crate::acd::TransferTarget;
use crate::acd::{
    Acd, AcdAction, AcdConfig, AcdEvent, AgentCommand, AgentConfig, AgentState, CallId, Fallback,
    OfferFailReason, Outcome, QueueConfig, Strategy, Widen, WideningStep,
};
use crate::config::FallbackEntry;
use crate::config::RuntimeConfig;
use crate::metrics::Metrics;
use crate::sip::accounts::{Accounts, Presence};
use crate::sip::AgentTarget;
use std::collections::HashMap;
use std::sync::Arc;
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

/// One agent as `GET /agents` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub id: String,
    pub status: AgentStatus,
    /// Why the agent is paused.
    pub reason: Option<String>,
}

/// Why an agent's state was not changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no such agent")]
    UnknownAgent,
    #[error("the agent has no registered phone to take calls on")]
    NoPhone,
    #[error("the controller is stopping")]
    Stopped,
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

/// What the ACD tells a queued call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueNews {
    /// Say the caller's position and estimated wait.
    Announce { position: usize, ewt_minutes: u32 },
    /// Play this prompt and hang up (max wait, no agents).
    PlayAndHangup { prompt: String },
    /// Refused for lack of lines.
    Blocked,
    /// Offer the caller a callback instead of waiting.
    OfferCallback,
    /// Ring this agent's phones (several contacts ring in parallel).
    Offer {
        agent: String,
        targets: Vec<AgentTarget>,
        ticket: Option<String>,
    },
    /// Stop ringing that agent (ring timeout, or another agent answered).
    CancelOffer { agent: String },
    /// The call left the ACD.
    Finished(Outcome),
    /// The ACD holds the caller's place for a callback: the line may go.
    CallbackHeld,
    /// The ACD cannot call this caller back (it waits for one agent).
    CallbackRefused,
    /// The transfer was taken: the caller waits in its new place.
    Transferred,
    /// The transfer was refused; the call stays with its agent.
    TransferRejected { reason: &'static str },
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::Abandoned => "abandoned",
            Outcome::Blocked => "blocked",
            Outcome::CalledBack => "called_back",
            Outcome::CallbackGaveUp => "callback_gave_up",
            Outcome::MessageHangup => "message_hangup",
        }
    }
}

/// Where a callback reaches the customer: the address its INVITE came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackTarget {
    pub target: AgentTarget,
    pub queue: String,
}

/// A callback whose turn has come: ring the agent, then the customer.
#[derive(Debug)]
pub struct CallbackJob {
    pub call: u64,
    pub agent: String,
    pub agent_targets: Vec<AgentTarget>,
    pub customer: AgentTarget,
    pub ticket: Option<String>,
    /// The trunk line the customer's leg takes, claimed when the job was made.
    pub line: LineGuard,
    /// Fires when the ACD withdraws the job (a ring timeout).
    pub cancel: mpsc::UnboundedReceiver<()>,
}

enum Request {
    Callback {
        call: u64,
        queue: String,
        priority: u8,
        ticket: Option<String>,
        target: AgentTarget,
        news: mpsc::UnboundedSender<QueueNews>,
    },
    CallbackResult {
        call: u64,
        connected: bool,
    },
    Enqueue {
        call: u64,
        queue: String,
        priority: u8,
        ticket: Option<String>,
        news: mpsc::UnboundedSender<QueueNews>,
    },
    CallerGone {
        call: u64,
    },
    AgentAnswered {
        call: u64,
        agent: String,
    },
    Transfer {
        call: u64,
        to: TransferTarget,
    },
    OfferFailed {
        call: u64,
        agent: String,
        reason: OfferFailReason,
    },
    Feature {
        agent: String,
        feature: Feature,
        /// The pause reason (default "break").
        reason: Option<String>,
        /// Refuse to log in an agent with no registered phone (the API; a
        /// feature code comes from a phone).
        need_phone: bool,
        reply: oneshot::Sender<Result<AgentStatus, CommandError>>,
    },
    Status {
        agent: String,
        reply: oneshot::Sender<Option<AgentStatus>>,
    },
    Statuses {
        reply: oneshot::Sender<Vec<AgentView>>,
    },
}

/// Handle to the switchboard task.
#[derive(Clone)]
pub struct Switchboard {
    tx: mpsc::UnboundedSender<Request>,
}

fn fallback(f: &FallbackEntry) -> Fallback {
    match f {
        FallbackEntry::Keyword(k) if k == "callback" => Fallback::OfferCallback,
        FallbackEntry::Keyword(_) => Fallback::Accept,
        FallbackEntry::Message { message } => Fallback::MessageAndHangup {
            prompt: message.clone(),
        },
        FallbackEntry::Overflow { overflow } => Fallback::Overflow {
            queue: overflow.clone(),
        },
    }
}

fn strategy(name: &str) -> Strategy {
    match name {
        "best_skill" => Strategy::BestSkill,
        "fewest_calls" => Strategy::FewestCalls,
        "round_robin" => Strategy::RoundRobin,
        "ring_all" => Strategy::RingAll,
        _ => Strategy::LongestIdle,
    }
}

/// The ACD's configuration from the operator's config.
pub fn acd_config(config: &RuntimeConfig) -> AcdConfig {
    let queues = config
        .queues
        .iter()
        .map(|(name, q)| {
            let secs = |s: u32| Duration::from_secs(u64::from(s));
            let mut widening = Vec::new();
            for w in &q.widening {
                if w.also_level2 {
                    widening.push(WideningStep {
                        after: secs(w.after_secs),
                        widen: Widen::AlsoLevel2,
                    });
                }
                if w.lower_min_skill > 0 {
                    widening.push(WideningStep {
                        after: secs(w.after_secs),
                        widen: Widen::LowerMinSkill(w.lower_min_skill),
                    });
                }
            }
            QueueConfig {
                name: name.clone(),
                skills: q.skills.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                support_level: q.level,
                service_level_target: secs(q.service_level_secs),
                service_level_percent: q.service_level_percent,
                max_wait: q.max_wait_secs.map(secs),
                on_max_wait: fallback(&q.on_max_wait),
                on_no_agents: fallback(&q.on_no_agents),
                strategy: strategy(&q.strategy),
                ring_timeout: secs(q.ring_timeout_secs),
                widening,
                announce_every: (q.announce_every_secs > 0).then(|| secs(q.announce_every_secs)),
                ..QueueConfig::new(name.clone())
            }
        })
        .collect();
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
        queues,
        no_answer_pause: Some(config.acd.no_answer_pause.clone()),
        callback_retries: config.acd.callback_retries,
        callback_retry_delay: std::time::Duration::from_secs(u64::from(
            config.acd.callback_retry_secs,
        )),
        ..AcdConfig::default()
    }
}

impl Switchboard {
    /// Start the task. `presence` carries the registrar's reachability news.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: AcdConfig,
        accounts: Arc<Accounts>,
        callbacks: mpsc::UnboundedSender<CallbackJob>,
        metrics: Metrics,
        presence: mpsc::UnboundedReceiver<Presence>,
        cancel: CancellationToken,
        lines: Arc<LineCapacity>,
    ) -> Result<Switchboard, String> {
        let agent_ids = config.agents.iter().map(|a| a.id.clone()).collect();
        let queue_names = config.queues.iter().map(|q| q.name.clone()).collect();
        let acd = Acd::new(config).map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(
            acd,
            agent_ids,
            queue_names,
            accounts,
            callbacks,
            rx,
            presence,
            metrics,
            cancel,
            lines,
        ));
        Ok(Switchboard { tx })
    }

    /// Apply a feature code; the agent's state afterwards (`None`: unknown
    /// agent or the switchboard stopped).
    pub async fn feature(&self, agent: &str, feature: Feature) -> Option<AgentStatus> {
        self.command(agent, feature, None, false).await.ok()
    }

    /// Change an agent's state on a supervisor's or the agent's request
    /// (the HTTP API): as the feature code, with a pause reason; logging in
    /// needs a registered phone when `need_phone`.
    pub async fn command(
        &self,
        agent: &str,
        feature: Feature,
        reason: Option<String>,
        need_phone: bool,
    ) -> Result<AgentStatus, CommandError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Feature {
                agent: agent.to_string(),
                feature,
                reason,
                need_phone,
                reply,
            })
            .map_err(|_| CommandError::Stopped)?;
        rx.await.unwrap_or(Err(CommandError::Stopped))
    }

    /// Put a call in a queue; the ACD's news for it come on `news`.
    pub fn enqueue(
        &self,
        call: u64,
        queue: &str,
        priority: u8,
        ticket: Option<String>,
        news: mpsc::UnboundedSender<QueueNews>,
    ) {
        let _ = self.tx.send(Request::Enqueue {
            call,
            queue: queue.to_string(),
            priority,
            ticket,
            news,
        });
    }

    /// The agent's phone answered the offer: the call is theirs.
    pub fn agent_answered(&self, call: u64, agent: &str) {
        let _ = self.tx.send(Request::AgentAnswered {
            call,
            agent: agent.to_string(),
        });
    }

    /// Keep this caller's place in `queue` and call it back at `target`;
    /// the ACD's answer comes on `news`.
    pub fn request_callback(
        &self,
        call: u64,
        queue: &str,
        priority: u8,
        ticket: Option<String>,
        target: AgentTarget,
        news: mpsc::UnboundedSender<QueueNews>,
    ) {
        let _ = self.tx.send(Request::Callback {
            call,
            queue: queue.to_string(),
            priority,
            ticket,
            target,
            news,
        });
    }

    /// The customer leg of a callback answered (`true`) or failed.
    pub fn callback_result(&self, call: u64, connected: bool) {
        let _ = self.tx.send(Request::CallbackResult { call, connected });
    }

    /// The agent transferred the call (REFER): re-queue it.
    pub fn transfer(&self, call: u64, to: TransferTarget) {
        let _ = self.tx.send(Request::Transfer { call, to });
    }

    /// The offer to the agent failed (busy, declined, unreachable, no answer).
    pub fn offer_failed(&self, call: u64, agent: &str, reason: OfferFailReason) {
        let _ = self.tx.send(Request::OfferFailed {
            call,
            agent: agent.to_string(),
            reason,
        });
    }

    /// The caller hung up (or the call ended for any reason).
    pub fn caller_gone(&self, call: u64) {
        let _ = self.tx.send(Request::CallerGone { call });
    }

    /// Every agent's current state.
    pub async fn statuses(&self) -> Vec<AgentView> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Statuses { reply }).is_err() {
            return vec![];
        }
        rx.await.unwrap_or_default()
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

#[allow(clippy::too_many_arguments)]
async fn run(
    mut acd: Acd,
    agent_ids: Vec<String>,
    queue_names: Vec<String>,
    accounts: Arc<Accounts>,
    callbacks: mpsc::UnboundedSender<CallbackJob>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut presence: mpsc::UnboundedReceiver<Presence>,
    metrics: Metrics,
    cancel: CancellationToken,
    lines: Arc<LineCapacity>,
) {
    let agents: Vec<String> = agent_ids;
    let gauges = Gauges::new(&queue_names, &metrics);
    let mut calls: HashMap<u64, (String, mpsc::UnboundedSender<QueueNews>)> = HashMap::new();
    let mut pending = Callbacks {
        jobs: callbacks,
        targets: HashMap::new(),
        cancels: HashMap::new(),
        lines,
    };
    publish(&acd, &gauges);
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
            req = requests.recv() => { match req {
                None => return,
                Some(Request::Feature { agent, feature, reason, need_phone, reply }) => {
                    let now = Instant::now();
                    let cmd = match (feature, acd.agent_state(&agent)) {
                        (_, None) => {
                            let _ = reply.send(Err(CommandError::UnknownAgent));
                            continue;
                        }
                        (Feature::Ready, Some(AgentState::LoggedOut)) => {
                            if need_phone && accounts.bindings(&agent, now).is_empty() {
                                let _ = reply.send(Err(CommandError::NoPhone));
                                continue;
                            }
                            AgentCommand::Login
                        }
                        (Feature::Ready, _) => AgentCommand::Ready,
                        (Feature::Pause, _) => AgentCommand::Pause(reason.unwrap_or_else(|| "break".into())),
                        (Feature::Logout, _) => AgentCommand::Logout,
                    };
                    acd.handle_event(now, AcdEvent::AgentCommand { agent: agent.clone(), cmd });
                    drain(&mut acd, &mut calls, &mut pending, &accounts, &metrics);
                    let state = acd.agent_state(&agent).map(AgentStatus::of).ok_or(CommandError::UnknownAgent);
                    let _ = reply.send(state);
                }
                Some(Request::Enqueue { call, queue, priority, ticket, news }) => {
                    calls.insert(call, (queue.clone(), news));
                    acd.handle_event(Instant::now(), AcdEvent::CallArrived { call: CallId(call), queue, priority, ticket });
                }
                Some(Request::CallerGone { call }) => {
                    // Queued: abandoned; on a call: ended (wrap-up); waiting
                    // for a callback: the ACD ignores it (the line was freed
                    // on purpose).
                    if calls.contains_key(&call) || pending.targets.contains_key(&call) {
                        acd.handle_event(Instant::now(), AcdEvent::CallEnded { call: CallId(call) });
                    }
                }
                Some(Request::AgentAnswered { call, agent }) => {
                    acd.handle_event(Instant::now(), AcdEvent::AgentAnswered { call: CallId(call), agent });
                }
                Some(Request::Callback { call, queue, priority, ticket, target, news }) => {
                    let now = Instant::now();
                    pending.targets.insert(call, CallbackTarget { target, queue: queue.clone() });
                    if let std::collections::hash_map::Entry::Vacant(e) = calls.entry(call) {
                        // Asked from the IVR: the call enters the ACD here.
                        e.insert((queue.clone(), news));
                        acd.handle_event(now, AcdEvent::CallArrived { call: CallId(call), queue, priority, ticket });
                    }
                    acd.handle_event(now, AcdEvent::RequestCallback { call: CallId(call), number: None });
                }
                Some(Request::CallbackResult { call, connected }) => {
                    let ev = if connected {
                        AcdEvent::CallbackConnected { call: CallId(call) }
                    } else {
                        AcdEvent::CallbackFailed { call: CallId(call) }
                    };
                    acd.handle_event(Instant::now(), ev);
                }
                Some(Request::Transfer { call, to }) => {
                    acd.handle_event(Instant::now(), AcdEvent::Transfer { call: CallId(call), to });
                }
                Some(Request::OfferFailed { call, agent, reason }) => {
                    acd.handle_event(Instant::now(), AcdEvent::OfferFailed { call: CallId(call), agent, reason });
                }
                Some(Request::Statuses { reply }) => {
                    let all = agents
                        .iter()
                        .filter_map(|a| acd.agent_state(a).map(|s| AgentView {
                            id: a.clone(),
                            status: AgentStatus::of(s),
                            reason: match s {
                                AgentState::Paused { reason } => Some(reason.clone()),
                                _ => None,
                            },
                        }))
                        .collect();
                    let _ = reply.send(all);
                }
                Some(Request::Status { agent, reply }) => {
                    let _ = reply.send(acd.agent_state(&agent).map(AgentStatus::of));
                }
            }},
            p = presence.recv() => match p {
                Some(Presence::Unreachable { agent }) => {
                    tracing::info!(%agent, "agent unreachable: logged out");
                    acd.handle_event(Instant::now(), AcdEvent::AgentUnreachable { agent });
                }
                Some(Presence::Reachable { agent }) => tracing::info!(%agent, "agent registered"),
                None => {}
            },
        }
        drain(&mut acd, &mut calls, &mut pending, &accounts, &metrics);
        publish(&acd, &gauges);
    }
}

/// Callbacks waiting for their turn: where to reach each customer, and how
/// to stop a job the ACD withdraws.
struct Callbacks {
    jobs: mpsc::UnboundedSender<CallbackJob>,
    targets: HashMap<u64, CallbackTarget>,
    cancels: HashMap<u64, mpsc::UnboundedSender<()>>,
    /// The trunk's lines: a due callback claims one for its customer leg.
    lines: Arc<LineCapacity>,
}

/// The offer cannot reach the agent (no registered phone): the ACD puts the
/// caller back at the head of its queue.
fn unreachable(acd: &mut Acd, call: CallId, agent: String) {
    tracing::info!(%agent, call = call.0, "offer failed: the agent's phone is not registered");
    acd.handle_event(
        Instant::now(),
        AcdEvent::OfferFailed {
            call,
            agent,
            reason: OfferFailReason::Unreachable,
        },
    );
}

fn agent_targets(accounts: &Accounts, agent: &str) -> Vec<AgentTarget> {
    accounts
        .bindings(agent, Instant::now())
        .into_iter()
        .map(|b| AgentTarget {
            contact: b.uri,
            source: b.source,
            over_tcp: b.transport == crate::sip::registrar::Transport::Tcp,
        })
        .collect()
}

/// Carry out the core's actions: offers and news to the calls, state
/// changes to the log. An offer goes to the agent's live bindings; with none
/// it fails at once as "unreachable" (the caller keeps its place at the head).
fn drain(
    acd: &mut Acd,
    calls: &mut HashMap<u64, (String, mpsc::UnboundedSender<QueueNews>)>,
    pending: &mut Callbacks,
    accounts: &Accounts,
    metrics: &Metrics,
) {
    while let Some(action) = acd.poll_action() {
        let tell = |call: CallId, news: QueueNews| -> bool {
            calls
                .get(&call.0)
                .is_some_and(|(_, tx)| tx.send(news).is_ok())
        };
        match action {
            AcdAction::Announce {
                call,
                position,
                ewt_minutes,
            } => {
                tell(
                    call,
                    QueueNews::Announce {
                        position,
                        ewt_minutes,
                    },
                );
            }
            AcdAction::PlayAndHangup { call, prompt } => {
                tell(call, QueueNews::PlayAndHangup { prompt });
            }
            AcdAction::Block { call } => {
                tell(call, QueueNews::Blocked);
            }
            AcdAction::ReleaseLine { call } => {
                tell(call, QueueNews::CallbackHeld);
            }
            AcdAction::CallbackRefused { call } => {
                tell(call, QueueNews::CallbackRefused);
            }
            AcdAction::Transferred { call } => {
                tell(call, QueueNews::Transferred);
            }
            AcdAction::TransferRejected { call, reason } => {
                tracing::info!(call = call.0, reason, "transfer refused");
                tell(call, QueueNews::TransferRejected { reason });
            }
            AcdAction::OfferCallbackToCaller { call } => {
                tell(call, QueueNews::OfferCallback);
            }
            AcdAction::Offer {
                call,
                agent,
                ticket,
            } => {
                let targets = agent_targets(accounts, &agent);
                let delivered = !targets.is_empty()
                    && tell(
                        call,
                        QueueNews::Offer {
                            agent: agent.clone(),
                            targets,
                            ticket,
                        },
                    );
                if !delivered {
                    unreachable(acd, call, agent);
                }
            }
            AcdAction::CancelOffer { call, agent } => {
                if let Some(c) = pending.cancels.remove(&call.0) {
                    let _ = c.send(());
                }
                tell(call, QueueNews::CancelOffer { agent });
            }
            AcdAction::OfferCallback {
                call,
                agent,
                ticket,
                ..
            } => {
                let agent_targets = agent_targets(accounts, &agent);
                let customer = pending.targets.get(&call.0).map(|t| t.target.clone());
                let (Some(customer), false) = (customer, agent_targets.is_empty()) else {
                    unreachable(acd, call, agent);
                    continue;
                };
                // The customer's leg needs a line: while only reserved
                // lines are free, the callback waits.
                let Some(line) = pending.lines.try_take() else {
                    tracing::debug!(call = call.0, "no free line for the callback yet");
                    acd.handle_event(Instant::now(), AcdEvent::NoLineForCallback { call });
                    continue;
                };
                let (cancel_tx, cancel) = mpsc::unbounded_channel();
                let job = CallbackJob {
                    call: call.0,
                    agent: agent.clone(),
                    agent_targets,
                    customer,
                    ticket,
                    line,
                    cancel,
                };
                if pending.jobs.send(job).is_ok() {
                    pending.cancels.insert(call.0, cancel_tx);
                } else {
                    unreachable(acd, call, agent);
                }
            }
            AcdAction::CallFinished { call, outcome } => {
                pending.cancels.remove(&call.0);
                if let Some(cb) = pending.targets.remove(&call.0) {
                    metrics
                        .queue_calls
                        .with_label_values(&[&cb.queue, outcome.label()])
                        .inc();
                    calls.remove(&call.0);
                } else if let Some((queue, tx)) = calls.remove(&call.0) {
                    metrics
                        .queue_calls
                        .with_label_values(&[&queue, outcome.label()])
                        .inc();
                    let _ = tx.send(QueueNews::Finished(outcome));
                }
            }
            AcdAction::AgentStateChanged { agent, state } => {
                tracing::info!(%agent, state = AgentStatus::of(&state).as_str(), "agent state");
            }
            other => tracing::debug!(?other, "ACD action"),
        }
    }
}

/// The gauges the switchboard keeps up to date, looked up once (publishing
/// runs after every ACD event).
struct Gauges {
    queues: Vec<(String, QueueGauges)>,
    agents: Vec<prometheus::IntGauge>,
}

struct QueueGauges {
    waiting: prometheus::IntGauge,
    callbacks_pending: prometheus::IntGauge,
    longest_wait: prometheus::Gauge,
    service_level: prometheus::Gauge,
    answered: prometheus::IntGauge,
    abandoned: prometheus::IntGauge,
    handle_time: prometheus::Gauge,
    /// By state, in [`AgentStatus::ALL`]'s order.
    agents: Vec<prometheus::IntGauge>,
}

impl Gauges {
    fn new(queues: &[String], metrics: &Metrics) -> Gauges {
        let queues = queues
            .iter()
            .map(|q| {
                let l = [q.as_str()];
                let g = QueueGauges {
                    waiting: metrics.queue_waiting.with_label_values(&l),
                    callbacks_pending: metrics.queue_callbacks_pending.with_label_values(&l),
                    longest_wait: metrics.queue_longest_wait.with_label_values(&l),
                    service_level: metrics.queue_service_level.with_label_values(&l),
                    answered: metrics.queue_answered_window.with_label_values(&l),
                    abandoned: metrics.queue_abandoned_window.with_label_values(&l),
                    handle_time: metrics.queue_handle_time.with_label_values(&l),
                    agents: AgentStatus::ALL
                        .iter()
                        .map(|s| metrics.queue_agents.with_label_values(&[q, s.as_str()]))
                        .collect(),
                };
                (q.clone(), g)
            })
            .collect();
        let agents = AgentStatus::ALL
            .iter()
            .map(|s| metrics.agents.with_label_values(&[s.as_str()]))
            .collect();
        Gauges { queues, agents }
    }
}

fn publish(acd: &Acd, gauges: &Gauges) {
    let now = Instant::now();
    for (q, g) in &gauges.queues {
        if let Some(st) = acd.queue_stats(q, now) {
            g.waiting.set(st.waiting as i64);
            g.callbacks_pending.set(st.callbacks_pending as i64);
            g.longest_wait.set(st.longest_wait.as_secs_f64());
            g.service_level.set(st.service_level.unwrap_or(f64::NAN));
            g.answered.set(i64::from(st.answered));
            g.abandoned.set(i64::from(st.abandoned));
            g.handle_time.set(st.average_handle_time.as_secs_f64());
            let a = &st.agents;
            let by_state = [
                a.logged_out,
                a.available,
                a.offered,
                a.on_call,
                a.wrap_up,
                a.paused,
            ];
            for (gauge, n) in g.agents.iter().zip(by_state) {
                gauge.set(i64::from(n));
            }
        }
    }
    for (gauge, n) in gauges.agents.iter().zip(acd.agent_state_counts()) {
        gauge.set(i64::from(n));
    }
}
