//! The switchboard: the one task that owns the ACD core. Every agent and
//! queue event reaches the core through this task's channel, so the races
//! the core's tests rule out are the only ones there are. It runs the
//! core's timers (wrap-up, ring timeouts) on its `poll_timeout`, keeps the
//! agents-by-state gauge, and answers agents' feature codes with the state
//! they end in.

use crate::acd::lines::{LineCapacity, LineGuard, LinePhase};
use crate::acd::TransferTarget;
use crate::acd::{
    Acd, AcdAction, AcdConfig, AcdEvent, AgentCommand, AgentConfig, AgentState, CallId,
    OfferFailReason, Outcome, QueueConfig, Widen, WideningStep,
};
use crate::config::RuntimeConfig;
use crate::metrics::Metrics;
use crate::sip::accounts::{Accounts, Presence};
use crate::sip::AgentTarget;
use std::collections::{BTreeMap, HashMap};
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

/// One agent as `GET /api/v1/agents` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    #[serde(rename = "state")]
    pub status: AgentStatus,
    /// Why the agent is paused.
    pub reason: Option<String>,
    /// Since when it is in this state (RFC 3339).
    pub since: String,
    /// Calls taken since it logged in.
    pub calls: u32,
}

/// One queue as `GET /api/v1/queues` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueView {
    pub name: String,
    /// Callers waiting with a line.
    pub waiting: usize,
    /// Callers waiting for a callback (their line freed).
    pub callbacks_pending: usize,
    pub longest_wait_secs: f64,
    /// The service level over the queue's stats window, abandons counted the
    /// queue's way (`null`: nothing counts yet).
    pub service_level: Option<f64>,
    pub answered: u32,
    pub abandoned: u32,
    pub average_handle_secs: f64,
    /// The average wait of the callers answered in the window (`null`:
    /// none answered).
    pub average_speed_of_answer_secs: Option<f64>,
    /// Erlang C for the last 15 minutes' traffic: the agents the queue
    /// needs to meet its goal, and how many of them are missing now.
    pub agents_needed: u32,
    pub agents_short: u32,
    /// Agents who serve it, by state.
    pub agents: BTreeMap<&'static str, u32>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// About the consultation the call's agent is making.
    Consult(ConsultNews),
}

/// What the ACD tells a call about its agent's consultation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsultNews {
    /// Ring this colleague's phones.
    Offer {
        agent: String,
        targets: Vec<AgentTarget>,
    },
    /// Stop ringing that colleague (ring timeout).
    CancelOffer { agent: String },
    /// It waits in the queue consulted.
    Queued,
    /// Say its position and estimated wait to the consulting agent.
    Announce { position: usize, ewt_minutes: u32 },
    /// Refused, or nobody answered: the agent keeps its caller.
    Rejected { reason: &'static str },
    /// The colleague has the caller now.
    Completed,
    /// The hand-over was refused; the consultation goes on.
    CompletionRefused { reason: &'static str },
}

impl ConsultNews {
    /// The consultation's side of what the ACD says (the rest concerns
    /// callers only).
    fn of(news: QueueNews) -> Option<ConsultNews> {
        Some(match news {
            QueueNews::Offer { agent, targets, .. } => ConsultNews::Offer { agent, targets },
            QueueNews::CancelOffer { agent } => ConsultNews::CancelOffer { agent },
            QueueNews::Announce {
                position,
                ewt_minutes,
            } => ConsultNews::Announce {
                position,
                ewt_minutes,
            },
            QueueNews::Consult(c) => c,
            _ => return None,
        })
    }
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
            Outcome::Consultation => "consultation",
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
    AgentLost {
        call: u64,
    },
    Consult {
        call: u64,
        consult: u64,
        to: TransferTarget,
        news: mpsc::UnboundedSender<QueueNews>,
    },
    CompleteConsult {
        consult: u64,
    },
    AgentCall {
        agent: String,
        reply: oneshot::Sender<Option<u64>>,
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
    Queues {
        reply: oneshot::Sender<Vec<QueueView>>,
    },
}

/// Handle to the switchboard task.
#[derive(Clone)]
pub struct Switchboard {
    tx: mpsc::UnboundedSender<Request>,
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
                stats_window: secs(q.stats_window_mins.saturating_mul(60)),
                abandons: q.abandons,
                short_abandon: secs(q.short_abandon_secs),
                max_wait: q.max_wait_secs.map(secs),
                on_max_wait: q.on_max_wait.clone(),
                on_no_agents: q.on_no_agents.clone(),
                strategy: q.strategy,
                ring_timeout: secs(q.ring_timeout_secs),
                widening,
                announce_every: (q.announce_every_secs > 0).then(|| secs(q.announce_every_secs)),
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
        store: Arc<dyn crate::tickets::TicketStore>,
        events: crate::events::EventBus,
    ) -> Result<Switchboard, crate::acd::AcdConfigError> {
        let agents = config
            .agents
            .iter()
            .map(|a| (a.id.clone(), a.name.clone()))
            .collect();
        let queue_names: Vec<String> = config.queues.iter().map(|q| q.name.clone()).collect();
        let agent_ids: Vec<String> = config.agents.iter().map(|a| a.id.clone()).collect();
        let kpis = super::kpis::Kpis::new(
            &config.queues,
            &agent_ids,
            &metrics,
            Arc::clone(&lines),
            Instant::now(),
        );
        let acd = Acd::new(config)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = Task {
            gauges: Gauges::new(&queue_names, &metrics),
            kpis,
            acd,
            agents,
            since: HashMap::new(),
            started: crate::tickets::Millis::now(),
            events,
            accounts,
            calls: HashMap::new(),
            consults: HashMap::new(),
            callbacks: Callbacks {
                jobs: callbacks,
                targets: HashMap::new(),
                cancels: HashMap::new(),
                lines,
            },
            metrics,
            store,
        };
        tokio::spawn(task.run(rx, presence, cancel));
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

    /// The agent's phone on `call` vanished: re-queue the caller at the
    /// head, pause the agent.
    pub fn agent_lost(&self, call: u64) {
        let _ = self.tx.send(Request::AgentLost { call });
    }

    /// The agent on `call` consults `to` before handing the caller over;
    /// `consult` is the consultation's own id (its offers, answer, failure
    /// and end go by it). The ACD's news for it come on `news`, as
    /// [`QueueNews::Consult`].
    pub fn consult(
        &self,
        call: u64,
        consult: u64,
        to: TransferTarget,
        news: mpsc::UnboundedSender<QueueNews>,
    ) {
        let _ = self.tx.send(Request::Consult {
            call,
            consult,
            to,
            news,
        });
    }

    /// Hand the caller over to the colleague who answered the consultation.
    pub fn complete_consult(&self, consult: u64) {
        let _ = self.tx.send(Request::CompleteConsult { consult });
    }

    /// The call the agent is on now (`None`: not on a call).
    pub async fn agent_call(&self, agent: &str) -> Option<u64> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::AgentCall {
                agent: agent.to_string(),
                reply,
            })
            .ok()?;
        rx.await.ok().flatten()
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

    /// Every queue's numbers now.
    pub async fn queues(&self) -> Vec<QueueView> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Queues { reply }).is_err() {
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

/// A queued call's queue and where its news go.
type Listener = (String, mpsc::UnboundedSender<QueueNews>);

/// The switchboard's task: the ACD core and everything its actions need.
struct Task {
    acd: Acd,
    /// Agents' ids and names, in the config's order.
    agents: Vec<(String, String)>,
    /// When each agent's state last changed.
    since: HashMap<String, crate::tickets::Millis>,
    /// When the switchboard started (every agent's state since then).
    started: crate::tickets::Millis,
    events: crate::events::EventBus,
    accounts: Arc<Accounts>,
    /// Calls the ACD holds, with their news channel.
    calls: HashMap<u64, Listener>,
    /// Consultations, with the news channel of the call they belong to.
    consults: HashMap<u64, mpsc::UnboundedSender<QueueNews>>,
    callbacks: Callbacks,
    metrics: Metrics,
    gauges: Gauges,
    /// Queue KPIs, staffing, line and agent time.
    kpis: super::kpis::Kpis,
    /// Where the end of an agent's wrap-up is written (its last call's ticket).
    store: Arc<dyn crate::tickets::TicketStore>,
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

impl Task {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut presence: mpsc::UnboundedReceiver<Presence>,
        cancel: CancellationToken,
    ) {
        self.publish();
        // Staffing, line and agent time: once a second, not per event.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.acd.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    self.kpis.tick(&self.acd, Instant::now());
                    continue;
                }
                _ = sleep => self.acd.handle_timeout(Instant::now()),
                req = requests.recv() => match req {
                    Some(req) => self.on_request(req),
                    None => return,
                },
                Some(p) = presence.recv() => self.on_presence(p),
            }
            self.drain();
            self.publish();
        }
    }

    fn event(&mut self, ev: AcdEvent) {
        self.acd.handle_event(Instant::now(), ev);
    }

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Feature {
                agent,
                feature,
                reason,
                need_phone,
                reply,
            } => {
                let state = self.feature(&agent, feature, reason, need_phone);
                let _ = reply.send(state);
            }
            Request::Enqueue {
                call,
                queue,
                priority,
                ticket,
                news,
            } => {
                self.calls.insert(call, (queue.clone(), news));
                self.event(AcdEvent::CallArrived {
                    call: CallId(call),
                    queue,
                    priority,
                    ticket,
                });
            }
            Request::CallerGone { call } => {
                // Queued: abandoned; on a call: ended (wrap-up); waiting for
                // a callback: its line is down, the callback may go ahead.
                if self.calls.contains_key(&call)
                    || self.consults.contains_key(&call)
                    || self.callbacks.targets.contains_key(&call)
                {
                    self.event(AcdEvent::CallEnded { call: CallId(call) });
                }
            }
            Request::AgentAnswered { call, agent } => self.event(AcdEvent::AgentAnswered {
                call: CallId(call),
                agent,
            }),
            Request::Callback {
                call,
                queue,
                priority,
                ticket,
                target,
                news,
            } => self.callback(call, queue, priority, ticket, target, news),
            Request::CallbackResult { call, connected } => {
                let call = CallId(call);
                self.event(if connected {
                    AcdEvent::CallbackConnected { call }
                } else {
                    AcdEvent::CallbackFailed { call }
                });
            }
            Request::Transfer { call, to } => self.event(AcdEvent::Transfer {
                call: CallId(call),
                to,
            }),
            Request::AgentLost { call } => self.event(AcdEvent::AgentLost { call: CallId(call) }),
            Request::Consult {
                call,
                consult,
                to,
                news,
            } => {
                self.consults.insert(consult, news);
                self.event(AcdEvent::Consult {
                    call: CallId(call),
                    consult: CallId(consult),
                    to,
                });
            }
            Request::CompleteConsult { consult } => self.event(AcdEvent::CompleteConsult {
                consult: CallId(consult),
            }),
            Request::AgentCall { agent, reply } => {
                let call = match self.acd.agent_state(&agent) {
                    Some(AgentState::OnCall { call }) => Some(call.0),
                    _ => None,
                };
                let _ = reply.send(call);
            }
            Request::OfferFailed {
                call,
                agent,
                reason,
            } => self.event(AcdEvent::OfferFailed {
                call: CallId(call),
                agent,
                reason,
            }),
            Request::Statuses { reply } => {
                let _ = reply.send(self.statuses());
            }
            Request::Queues { reply } => {
                let _ = reply.send(self.queue_views());
            }
            Request::Status { agent, reply } => {
                let _ = reply.send(self.acd.agent_state(&agent).map(AgentStatus::of));
            }
        }
    }

    /// An agent's feature code (or the API's change): the same rules.
    fn feature(
        &mut self,
        agent: &str,
        feature: Feature,
        reason: Option<String>,
        need_phone: bool,
    ) -> Result<AgentStatus, CommandError> {
        let now = Instant::now();
        let cmd = match (feature, self.acd.agent_state(agent)) {
            (_, None) => return Err(CommandError::UnknownAgent),
            (Feature::Ready, Some(AgentState::LoggedOut)) => {
                if need_phone && self.accounts.bindings(agent, now).is_empty() {
                    return Err(CommandError::NoPhone);
                }
                AgentCommand::Login
            }
            (Feature::Ready, _) => AgentCommand::Ready,
            (Feature::Pause, _) => AgentCommand::Pause(reason.unwrap_or_else(|| "break".into())),
            (Feature::Logout, _) => AgentCommand::Logout,
        };
        self.acd.handle_event(
            now,
            AcdEvent::AgentCommand {
                agent: agent.to_string(),
                cmd,
            },
        );
        self.drain();
        self.acd
            .agent_state(agent)
            .map(AgentStatus::of)
            .ok_or(CommandError::UnknownAgent)
    }

    /// Keep a caller's place for a callback; a caller the IVR hands over
    /// enters the ACD here.
    fn callback(
        &mut self,
        call: u64,
        queue: String,
        priority: u8,
        ticket: Option<String>,
        target: AgentTarget,
        news: mpsc::UnboundedSender<QueueNews>,
    ) {
        let now = Instant::now();
        let entry = CallbackTarget {
            target,
            queue: queue.clone(),
        };
        self.callbacks.targets.insert(call, entry);
        if let std::collections::hash_map::Entry::Vacant(e) = self.calls.entry(call) {
            e.insert((queue.clone(), news));
            let ev = AcdEvent::CallArrived {
                call: CallId(call),
                queue,
                priority,
                ticket,
            };
            self.acd.handle_event(now, ev);
        }
        let ev = AcdEvent::RequestCallback {
            call: CallId(call),
            number: None,
        };
        self.acd.handle_event(now, ev);
    }

    fn on_presence(&mut self, p: Presence) {
        match p {
            Presence::Unreachable { agent } => {
                tracing::info!(%agent, "agent unreachable: logged out");
                self.event(AcdEvent::AgentUnreachable { agent });
            }
            Presence::Reachable { agent } => tracing::info!(%agent, "agent registered"),
        }
    }

    fn statuses(&self) -> Vec<AgentView> {
        self.agents
            .iter()
            .filter_map(|(a, name)| {
                let s = self.acd.agent_state(a)?;
                let reason = match s {
                    AgentState::Paused { reason } => Some(reason.clone()),
                    _ => None,
                };
                Some(AgentView {
                    id: a.clone(),
                    name: name.clone(),
                    status: AgentStatus::of(s),
                    reason,
                    since: self.since.get(a).copied().unwrap_or(self.started).rfc3339(),
                    calls: self.acd.agent_calls(a).unwrap_or(0),
                })
            })
            .collect()
    }

    fn queue_views(&self) -> Vec<QueueView> {
        let now = Instant::now();
        self.gauges
            .queues
            .iter()
            .filter_map(|(q, _)| {
                let st = self.acd.queue_stats(q, now)?;
                let by_state = st.agents.by_state();
                let staffing = self.kpis.staffing(q);
                Some(QueueView {
                    name: q.clone(),
                    waiting: st.waiting,
                    callbacks_pending: st.callbacks_pending,
                    longest_wait_secs: st.longest_wait.as_secs_f64(),
                    service_level: st.service_level,
                    answered: st.answered,
                    abandoned: st.abandoned,
                    average_handle_secs: st.average_handle_time.as_secs_f64(),
                    average_speed_of_answer_secs: st
                        .average_speed_of_answer
                        .map(|d| d.as_secs_f64()),
                    agents_needed: staffing.map_or(0, |s| s.agents_needed),
                    agents_short: staffing.map_or(0, |s| s.agents_short),
                    agents: AgentStatus::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .zip(by_state)
                        .collect(),
                })
            })
            .collect()
    }

    /// Tell a call what the ACD said (about it, or about its agent's
    /// consultation); `false` if it is not listening.
    fn tell(&self, call: CallId, news: QueueNews) -> bool {
        if let Some((_, tx)) = self.calls.get(&call.0) {
            return tx.send(news).is_ok();
        }
        let Some(tx) = self.consults.get(&call.0) else {
            return false;
        };
        ConsultNews::of(news).is_some_and(|n| tx.send(QueueNews::Consult(n)).is_ok())
    }

    /// The offer cannot reach the agent (no registered phone): the ACD puts
    /// the caller back at the head of its queue.
    fn unreachable(&mut self, call: CallId, agent: String) {
        tracing::info!(%agent, call = call.0, "offer failed: the agent's phone is not registered");
        let reason = OfferFailReason::Unreachable;
        self.event(AcdEvent::OfferFailed {
            call,
            agent,
            reason,
        });
    }

    fn agent_targets(&self, agent: &str) -> Vec<AgentTarget> {
        self.accounts
            .bindings(agent, Instant::now())
            .into_iter()
            .map(|b| AgentTarget {
                contact: b.uri,
                source: b.source,
                over_tcp: b.transport == crate::sip::registrar::Transport::Tcp,
            })
            .collect()
    }

    /// Carry out the core's actions (more may follow from the events
    /// they lead to).
    fn drain(&mut self) {
        while let Some(action) = self.acd.poll_action() {
            self.on_action(action);
        }
    }

    fn on_action(&mut self, action: AcdAction) {
        let news = match action {
            AcdAction::Announce {
                call,
                position,
                ewt_minutes,
            } => (
                call,
                QueueNews::Announce {
                    position,
                    ewt_minutes,
                },
            ),
            AcdAction::PlayAndHangup { call, prompt } => {
                (call, QueueNews::PlayAndHangup { prompt })
            }
            AcdAction::Block { call } => (call, QueueNews::Blocked),
            AcdAction::ReleaseLine { call } => (call, QueueNews::CallbackHeld),
            AcdAction::CallbackRefused { call } => (call, QueueNews::CallbackRefused),
            AcdAction::Transferred { call } => (call, QueueNews::Transferred),
            AcdAction::TransferRejected { call, reason } => {
                tracing::info!(call = call.0, reason, "transfer refused");
                (call, QueueNews::TransferRejected { reason })
            }
            AcdAction::OfferCallbackToCaller { call } => (call, QueueNews::OfferCallback),
            AcdAction::ConsultQueued { call } => (call, QueueNews::Consult(ConsultNews::Queued)),
            AcdAction::ConsultRejected { call, reason } => {
                tracing::info!(consult = call.0, reason, "consultation refused");
                (call, QueueNews::Consult(ConsultNews::Rejected { reason }))
            }
            AcdAction::ConsultCompleted { call } => {
                (call, QueueNews::Consult(ConsultNews::Completed))
            }
            AcdAction::CompletionRefused { call, reason } => {
                tracing::info!(consult = call.0, reason, "hand-over refused");
                (
                    call,
                    QueueNews::Consult(ConsultNews::CompletionRefused { reason }),
                )
            }
            AcdAction::CancelOffer { call, agent } => {
                if let Some(c) = self.callbacks.cancels.remove(&call.0) {
                    let _ = c.send(());
                }
                (call, QueueNews::CancelOffer { agent })
            }
            AcdAction::Offer {
                call,
                agent,
                ticket,
            } => return self.offer(call, agent, ticket),
            AcdAction::OfferCallback {
                call,
                agent,
                ticket,
                ..
            } => return self.offer_callback(call, agent, ticket),
            AcdAction::CallFinished { call, outcome } => return self.finished(call, outcome),
            AcdAction::WrapUpEnded {
                agent,
                ticket,
                after,
            } => return self.wrap_up_ended(agent, ticket, after),
            AcdAction::Measured(m) => return self.kpis.measured(m),
            AcdAction::AgentStateChanged { agent, state } => {
                self.kpis.agent_state(Instant::now(), &agent, &state);
                let status = AgentStatus::of(&state);
                tracing::info!(%agent, state = status.as_str(), "agent state");
                let now = crate::tickets::Millis::now();
                self.since.insert(agent.clone(), now);
                self.events.publish(crate::events::Event::AgentState {
                    agent,
                    state: status.as_str().to_string(),
                    reason: match state {
                        AgentState::Paused { reason } => Some(reason),
                        _ => None,
                    },
                    at: now.rfc3339(),
                });
                return;
            }
            other => return tracing::debug!(?other, "ACD action"),
        };
        self.tell(news.0, news.1);
    }

    /// The agent's wrap-up is over: its last call's ticket says so (in the
    /// background: no call waits on it).
    fn wrap_up_ended(&self, agent: String, ticket: Option<String>, after: Duration) {
        use crate::tickets::{Millis, TicketNumber, Write};
        let Some(ticket) = ticket.as_deref().and_then(TicketNumber::parse) else {
            return;
        };
        let w = Write::WrapUp {
            ticket,
            at: Millis::now(),
            agent,
            after: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        };
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            if let Err(e) = store.write(w).await {
                tracing::warn!(error = %e, "the end of a wrap-up was not kept in its ticket");
            }
        });
    }

    /// An offer goes to the agent's live bindings; with none it fails at
    /// once as "unreachable" (the caller keeps its place at the head).
    fn offer(&mut self, call: CallId, agent: String, ticket: Option<String>) {
        let targets = self.agent_targets(&agent);
        let offer = QueueNews::Offer {
            agent: agent.clone(),
            targets: targets.clone(),
            ticket,
        };
        if targets.is_empty() || !self.tell(call, offer) {
            self.unreachable(call, agent);
        }
    }

    /// A callback whose turn has come: the customer's leg needs a line;
    /// while only reserved lines are free, the callback waits.
    fn offer_callback(&mut self, call: CallId, agent: String, ticket: Option<String>) {
        let agent_targets = self.agent_targets(&agent);
        let customer = self
            .callbacks
            .targets
            .get(&call.0)
            .map(|t| t.target.clone());
        let (Some(customer), false) = (customer, agent_targets.is_empty()) else {
            return self.unreachable(call, agent);
        };
        let Some(line) = self.callbacks.lines.try_take(LinePhase::Callback) else {
            tracing::debug!(call = call.0, "no free line for the callback yet");
            return self.event(AcdEvent::NoLineForCallback { call });
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
        if self.callbacks.jobs.send(job).is_ok() {
            self.callbacks.cancels.insert(call.0, cancel_tx);
        } else {
            self.unreachable(call, agent);
        }
    }

    fn finished(&mut self, call: CallId, outcome: Outcome) {
        if self.consults.remove(&call.0).is_some() {
            return; // a consultation: never in a queue's figures
        }
        self.callbacks.cancels.remove(&call.0);
        let queue_calls = &self.metrics.queue_calls;
        if let Some(cb) = self.callbacks.targets.remove(&call.0) {
            queue_calls
                .with_label_values(&[&cb.queue, outcome.label()])
                .inc();
            self.calls.remove(&call.0);
        } else if let Some((queue, tx)) = self.calls.remove(&call.0) {
            queue_calls
                .with_label_values(&[&queue, outcome.label()])
                .inc();
            let _ = tx.send(QueueNews::Finished(outcome));
        }
    }

    fn publish(&self) {
        publish(&self.acd, &self.gauges);
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
    /// The window's average speed of answer.
    asa: prometheus::Gauge,
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
                    asa: metrics.queue.average_speed_of_answer.with_label_values(&l),
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
            g.asa.set(
                st.average_speed_of_answer
                    .map_or(f64::NAN, |d| d.as_secs_f64()),
            );
            let by_state = st.agents.by_state();
            for (gauge, n) in g.agents.iter().zip(by_state) {
                gauge.set(i64::from(n));
            }
        }
    }
    for (gauge, n) in gauges.agents.iter().zip(acd.agent_state_counts()) {
        gauge.set(i64::from(n));
    }
}
