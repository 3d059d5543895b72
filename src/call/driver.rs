//! The call's driver: one tokio task per call that owns its SIP leg, its
//! media, the agent legs it rings and the transactions waiting for an
//! answer. It turns what happens on them (and the ACD's news, and the
//! clock) into [`CallEvent`]s for the call's [`CallCore`], and carries out
//! the [`CallAction`]s the core hands back. It decides nothing: which
//! prompt, which agent, when to hang up are the core's.

use super::core::{Arrival, CallCore, CallSettings};
use super::{
    AcdRequest, AgentLegRef, CallAction, CallCount, CallEvent, ConsultAction, ConsultCall, LegId,
    LegRole, Replaced, ReqId, Side,
};
use super::{Background, Record, SdpSession};
use crate::acd::driver::{QueueNews, Switchboard};
use crate::acd::lines::{LineCapacity, LineGuard, LinePhase};
use crate::acd::{CallId, TransferTarget};
use crate::call::CallState;
use crate::events::Event;
use crate::http::live::{LiveCall, LiveCalls};
use crate::ivr::IvrScript;
use crate::media::clock::MediaClock;
use crate::media::ports::{PortPool, RtpPort};
use crate::media::prompts::{Prompt, PromptLibrary};
use crate::media::sdp::{self, Negotiated};
use crate::media::{MediaEvent, MediaSession, SessionSetup};
use crate::metrics::{CallOutcome, Metrics};
use crate::sip::{
    AgentLeg, AgentLegEvent, AgentTarget, CallHandler, CallLeg, IncomingCall, InfoReply, LegEnd,
    LegEvent, OfferReply, ReferReply, SipStack,
};
use crate::text::Untrusted;
use crate::tickets::{
    CallChange, CallKey, Caller, Millis, NewCall, TicketNumber, TicketStore, Write, Written,
};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The menus an agent's feature-code call runs: the state's prompt, then
/// hang up (the empty retry count sends the menu to its fallback at once
/// after the first short timeout).
const FEATURE_MENUS: &str = r#"
[menu.agent_available]
prompts = ["agent_ready"]
timeout_ms = 500
max_retries = 0
fallback = { action = "hangup", reason = "feature" }

[menu.agent_paused]
prompts = ["agent_paused"]
timeout_ms = 500
max_retries = 0
fallback = { action = "hangup", reason = "feature" }

[menu.agent_logged_out]
prompts = ["agent_logged_out"]
timeout_ms = 500
max_retries = 0
fallback = { action = "hangup", reason = "feature" }

# Never started: named as the IVR entry of a caller who dialed a queue's own
# number, who goes straight into the queue.
[menu.queue_direct]
prompts = ["transferring"]
max_retries = 0
fallback = { action = "hangup" }
"#;

/// The prompts a queued caller (or its agent) hears besides the IVR's own.
pub const QUEUE_PROMPTS: &[&str] = &[
    "transferring",
    "transfer_failed",
    "callback_confirm",
    "goodbye",
    "queue_wait",
    "position_is",
    "estimated_wait",
    "minute",
    "minutes",
    "less_than_a_minute",
    "callback_offer",
    "no_agents",
];

/// The built-in menus: the feature codes'.
pub fn feature_script() -> Result<IvrScript, Vec<crate::ivr::IvrLoadError>> {
    IvrScript::load_sources([(std::path::Path::new("<built-in menus>"), FEATURE_MENUS)])
}

/// Everything calls share.
pub struct CallContext {
    pub settings: Arc<CallSettings>,
    pub switchboard: Switchboard,
    pub prompts: Arc<PromptLibrary>,
    pub hold_music: Option<Arc<Prompt>>,
    /// The ringing tone an agent hears while a consulted colleague's phone rings.
    pub ringback: Option<Arc<Prompt>>,
    pub clock: MediaClock,
    pub ports: Arc<PortPool>,
    pub metrics: Metrics,
    /// The trunk's lines: a caller takes one, or is refused 486.
    pub lines: Arc<LineCapacity>,
    /// Cancelled at shutdown: every call sends BYE and ends.
    pub shutdown: CancellationToken,
    pub tracker: tokio_util::task::TaskTracker,
    /// The SIP stack, to place agent legs (set once it has started).
    pub sip: std::sync::OnceLock<Arc<SipStack>>,
    /// Calls in progress, for the HTTP API.
    pub live: Arc<LiveCalls>,
    /// The HTTP listener's address (for Call-Info links), once bound.
    pub http_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// Tickets and their logbook: every support call's.
    pub store: Arc<dyn TicketStore>,
    /// Where the desk and the webhooks hear what happens.
    pub events: crate::events::EventBus,
    /// While the store fails, which new calls try to open a ticket.
    store_gate: crate::tickets::FailingGate,
    /// Each call's door for its agent's consultation call (by call id).
    inboxes: std::sync::Mutex<HashMap<u64, mpsc::UnboundedSender<Box<ConsultArrival>>>>,
    next_id: AtomicU64,
}

/// An agent's consultation call, on its way to the call its agent is on.
pub struct ConsultArrival {
    call: IncomingCall,
    leg: CallLeg,
    events: mpsc::UnboundedReceiver<LegEvent>,
}

/// What a [`CallContext`] is made of.
pub struct CallParts {
    pub settings: Arc<CallSettings>,
    pub switchboard: Switchboard,
    pub prompts: Arc<PromptLibrary>,
    pub clock: MediaClock,
    pub ports: Arc<PortPool>,
    pub metrics: Metrics,
    pub lines: Arc<LineCapacity>,
    pub shutdown: CancellationToken,
    pub store: Arc<dyn TicketStore>,
    pub events: crate::events::EventBus,
}

impl CallContext {
    pub fn new(p: CallParts) -> Arc<Self> {
        let hold_music = p.prompts.get_extra("hold_music");
        let ringback = p.prompts.get_extra("ringback");
        Arc::new(CallContext {
            settings: p.settings,
            switchboard: p.switchboard,
            prompts: p.prompts,
            hold_music,
            ringback,
            clock: p.clock,
            ports: p.ports,
            metrics: p.metrics,
            lines: p.lines,
            shutdown: p.shutdown,
            tracker: tokio_util::task::TaskTracker::new(),
            sip: std::sync::OnceLock::new(),
            live: Arc::new(LiveCalls::default()),
            http_addr: std::sync::OnceLock::new(),
            store: p.store,
            events: p.events,
            store_gate: crate::tickets::FailingGate::new(Instant::now()),
            inboxes: std::sync::Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    fn new_id(&self) -> CallId {
        CallId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Open call `id`'s door for consultation calls.
    fn open_inbox(&self, id: CallId) -> mpsc::UnboundedReceiver<Box<ConsultArrival>> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut m) = self.inboxes.lock() {
            m.insert(id.0, tx);
        }
        rx
    }

    fn close_inbox(&self, id: CallId) {
        if let Ok(mut m) = self.inboxes.lock() {
            m.remove(&id.0);
        }
    }

    /// Hand a consultation call to call `id`; back if it is gone.
    fn deliver(&self, id: u64, arrival: Box<ConsultArrival>) -> Result<(), Box<ConsultArrival>> {
        let tx = self.inboxes.lock().ok().and_then(|m| m.get(&id).cloned());
        match tx {
            Some(tx) => tx.send(arrival).map_err(|e| e.0),
            None => Err(arrival),
        }
    }

    /// The prompts named, in `lang` (or the default language).
    pub fn prompts_in(&self, lang: &str, names: &[String]) -> Vec<Arc<Prompt>> {
        let default = &self.settings.config.default_language;
        names
            .iter()
            .filter_map(|n| {
                self.prompts
                    .get(lang, n)
                    .or_else(|| self.prompts.get(default, n))
            })
            .collect()
    }

    pub fn rtp_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.config.rtp_timeout_secs))
    }

    /// The link an agent's phone shows for the call (Call-Info).
    fn call_info(&self, id: CallId) -> String {
        let http = self
            .http_addr
            .get()
            .copied()
            .unwrap_or(self.settings.config.http_listen);
        format!("<http://{http}/api/v1/calls/{}>;purpose=info", id.0)
    }
}

/// The [`CallHandler`] the SIP adapter hands new calls to.
pub struct Calls(pub Arc<CallContext>);

impl CallHandler for Calls {
    fn incoming(
        &self,
        call: IncomingCall,
        leg: CallLeg,
        events: mpsc::UnboundedReceiver<LegEvent>,
    ) {
        let ctx = Arc::clone(&self.0);
        let config = &ctx.settings.config;
        let consultation = call.agent.is_some()
            && config.features.feature_of(&call.dialed).is_none()
            && config.transfer_target(&call.dialed).is_some();
        if consultation {
            // An agent's phone calls a colleague or a queue: if the agent is
            // on a call, this is a consultation about it.
            let arrival = Box::new(ConsultArrival { call, leg, events });
            let tracker = ctx.tracker.clone();
            tracker.spawn(route_consultation(ctx, arrival));
            return;
        }
        start_call(ctx, call, leg, events);
    }

    fn knows_number(&self, dialed: &str) -> bool {
        let config = &self.0.settings.config;
        config.numbers.contains_key(dialed)
            || config.queue_by_number(dialed).is_some()
            || self.needs_agent(dialed)
    }

    fn refuses_for_now(&self, dialed: &str) -> bool {
        let ctx = &self.0;
        !self.needs_agent(dialed) && !ctx.store_gate.admit(ctx.store.failing(), Instant::now())
    }

    fn needs_agent(&self, dialed: &str) -> bool {
        let config = &self.0.settings.config;
        config.features.feature_of(dialed).is_some()
            || matches!(
                config.transfer_target(dialed),
                Some(TransferTarget::Agent(_))
            )
    }
}

/// An agent's call to a colleague's extension or a queue's number: to the
/// call the agent is on (a consultation), else a call of its own to the
/// queue (an agent's call to a colleague needs a call to consult about).
async fn route_consultation(ctx: Arc<CallContext>, arrival: Box<ConsultArrival>) {
    let agent = arrival.call.agent.clone().unwrap_or_default();
    let on = ctx.switchboard.agent_call(&agent).await;
    let arrival = match on {
        Some(id) => match ctx.deliver(id, arrival) {
            Ok(()) => return,
            Err(back) => back,
        },
        None => arrival,
    };
    let ConsultArrival { call, leg, events } = *arrival;
    if ctx.settings.config.queue_by_number(&call.dialed).is_some() {
        return start_call(ctx, call, leg, events);
    }
    tracing::info!(%agent, dialed = %Untrusted(&call.dialed), "an agent's call to a colleague outside a call: 403");
    leg.reject(403);
}

/// A new call: it takes a line (unless it is an agent's) and gets a task.
fn start_call(
    ctx: Arc<CallContext>,
    call: IncomingCall,
    leg: CallLeg,
    events: mpsc::UnboundedReceiver<LegEvent>,
) {
    let id = ctx.new_id();
    // A caller takes one of the trunk's usable lines, or is refused
    // 486; agents' own calls (feature codes) take none.
    let line = match call.agent {
        Some(_) => None,
        None => match ctx.lines.try_take(LinePhase::Ivr) {
            Some(line) => Some(line),
            None => {
                tracing::info!(call_id = %Untrusted(&call.call_id), "no free line: 486");
                ctx.lines.note_blocked();
                ctx.metrics.call_ended(CallOutcome::Blocked);
                // The caller turned away has a ticket too, kept before the
                // 486 goes out.
                let language = ctx.settings.config.default_language.clone();
                let blocked = Write::Open {
                    call: new_call(&call, language),
                    blocked: true,
                };
                let store = Arc::clone(&ctx.store);
                ctx.tracker.spawn(async move {
                    if let Err(e) = store.write(blocked).await {
                        tracing::warn!(error = %e, "the blocked call's ticket was not kept");
                    }
                    leg.reject(486);
                });
                return;
            }
        },
    };
    let span = tracing::info_span!("call", call_id = %Untrusted(&call.call_id), id = id.0);
    let tracker = ctx.tracker.clone();
    tracker.spawn(
        async move {
            ctx.metrics.calls_active.inc();
            let outcome = run(&ctx, id, call, leg, events, line).await;
            ctx.metrics.calls_active.dec();
            ctx.metrics.call_ended(outcome);
            tracing::info!(outcome = outcome.as_str(), "call ended");
        }
        .instrument(span),
    );
}

/// A new call as its ticket keeps it.
fn new_call(call: &IncomingCall, language: String) -> NewCall {
    NewCall {
        sip_call_id: call.call_id.clone(),
        caller: Caller::from_header(&call.from_uri),
        dialed: call.dialed.clone(),
        language,
        at: Millis::now(),
    }
}

/// What a call tells the desks besides its ticket's changes.
struct DeskNews {
    arrived: Instant,
    /// The agent last offered the call, or who has it.
    agent: Option<String>,
}

/// One call, from its INVITE to its end.
async fn run(
    ctx: &Arc<CallContext>,
    id: CallId,
    call: IncomingCall,
    leg: CallLeg,
    leg_events: mpsc::UnboundedReceiver<LegEvent>,
    line: Option<LineGuard>,
) -> CallOutcome {
    tracing::debug!(from = %Untrusted(&call.from_uri), dialed = %Untrusted(&call.dialed), source = %call.source, "incoming call");
    let port = match ctx.ports.allocate() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "no RTP port");
            None
        }
    };
    let arrival = Arrival {
        call: id,
        dialed: call.dialed.clone(),
        from_uri: call.from_uri.clone(),
        source: call.source,
        local_ip: call.local_ip,
        offer: call.offer.clone(),
        agent: call.agent.clone(),
        rtp_port: port.as_ref().map(|p| p.port),
        holds_line: line.is_some(),
    };
    let mut core = CallCore::new(Instant::now(), Arc::clone(&ctx.settings), arrival);
    let mut io = CallIo::new(Arc::clone(ctx), id, call, leg, leg_events, port, line);
    let mut published = None;
    loop {
        io.carry_out(&mut core).await;
        if core.is_ended() {
            break;
        }
        if published != Some(core.revision()) {
            published = Some(core.revision());
            io.publish(&core);
        }
        let ev = io.next_event(core.poll_timeout()).await;
        let now = Instant::now();
        match ev {
            Some(ev) => core.handle_event(now, ev),
            None => core.handle_timeout(now),
        }
    }
    if published.is_some() {
        ctx.live.remove(id.0);
    }
    io.outcome.unwrap_or(CallOutcome::Failed)
}

/// A transaction waiting for the core's answer.
enum Pending {
    Info(InfoReply),
    Offer(OfferReply),
    Refer(ReferReply),
}

/// The offer to an agent: its RTP port (taken by the bridge), our address
/// in its SDP, and where its phones' signalling comes from.
struct OfferMedia {
    port: Option<RtpPort>,
    local: std::net::SocketAddr,
    signalling_ip: IpAddr,
}

/// Everything a call owns that does IO.
struct CallIo {
    ctx: Arc<CallContext>,
    id: CallId,
    call: IncomingCall,
    leg: CallLeg,
    leg_events: mpsc::UnboundedReceiver<LegEvent>,
    port: Option<RtpPort>,
    line: Option<LineGuard>,
    media: Option<MediaSession>,
    media_tx: mpsc::UnboundedSender<MediaEvent>,
    media_rx: mpsc::UnboundedReceiver<MediaEvent>,
    agent_media: Option<MediaSession>,
    agent_media_tx: mpsc::UnboundedSender<MediaEvent>,
    agent_media_rx: mpsc::UnboundedReceiver<MediaEvent>,
    agent_legs: BTreeMap<AgentLegRef, AgentLeg>,
    offer_media: HashMap<u32, OfferMedia>,
    agent_tx: mpsc::UnboundedSender<(AgentLegRef, AgentLegEvent)>,
    agent_rx: mpsc::UnboundedReceiver<(AgentLegRef, AgentLegEvent)>,
    news_tx: mpsc::UnboundedSender<QueueNews>,
    news_rx: mpsc::UnboundedReceiver<QueueNews>,
    pending: HashMap<ReqId, Pending>,
    next_req: u64,
    shutdown_told: bool,
    outcome: Option<CallOutcome>,
    /// The agent's consultation calls arrive here.
    inbox: mpsc::UnboundedReceiver<Box<ConsultArrival>>,
    /// What the agent's desk asks of the call.
    desk_rx: mpsc::UnboundedReceiver<crate::http::live::DeskCommand>,
    /// The agent's consultation call, while there is one.
    consult_leg: Option<ConsultLegIo>,
    consult_media: Option<MediaSession>,
    consult_media_tx: mpsc::UnboundedSender<MediaEvent>,
    consult_media_rx: mpsc::UnboundedReceiver<MediaEvent>,
    /// The consulted colleague's leg's media.
    colleague_media: Option<MediaSession>,
    colleague_media_tx: mpsc::UnboundedSender<MediaEvent>,
    colleague_media_rx: mpsc::UnboundedReceiver<MediaEvent>,
    /// The ACD's id for the consultation (its own, not the call's).
    consult_id: Option<CallId>,
    /// The call's row in the ticket store, once its ticket is open.
    ticket_call: Option<CallKey>,
    /// What the desk's events need that the store does not say.
    desk: DeskNews,
}

/// The agent's consultation call's SIP side and its RTP port.
struct ConsultLegIo {
    call: IncomingCall,
    leg: CallLeg,
    events: mpsc::UnboundedReceiver<LegEvent>,
    port: Option<RtpPort>,
}

impl Drop for CallIo {
    fn drop(&mut self) {
        self.ctx.close_inbox(self.id);
        self.ctx.live.close_door(self.id.0);
    }
}

impl CallIo {
    fn new(
        ctx: Arc<CallContext>,
        id: CallId,
        call: IncomingCall,
        leg: CallLeg,
        leg_events: mpsc::UnboundedReceiver<LegEvent>,
        port: Option<RtpPort>,
        line: Option<LineGuard>,
    ) -> CallIo {
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let (agent_media_tx, agent_media_rx) = mpsc::unbounded_channel();
        let (agent_tx, agent_rx) = mpsc::unbounded_channel();
        let (news_tx, news_rx) = mpsc::unbounded_channel();
        let (consult_media_tx, consult_media_rx) = mpsc::unbounded_channel();
        let (colleague_media_tx, colleague_media_rx) = mpsc::unbounded_channel();
        let inbox = ctx.open_inbox(id);
        let desk_rx = ctx.live.open_door(id.0);
        CallIo {
            ctx,
            id,
            call,
            leg,
            leg_events,
            port,
            line,
            media: None,
            media_tx,
            media_rx,
            agent_media: None,
            agent_media_tx,
            agent_media_rx,
            agent_legs: BTreeMap::new(),
            offer_media: HashMap::new(),
            agent_tx,
            agent_rx,
            news_tx,
            news_rx,
            pending: HashMap::new(),
            next_req: 0,
            shutdown_told: false,
            outcome: None,
            inbox,
            desk_rx,
            consult_leg: None,
            consult_media: None,
            consult_media_tx,
            consult_media_rx,
            colleague_media: None,
            colleague_media_tx,
            colleague_media_rx,
            consult_id: None,
            ticket_call: None,
            desk: DeskNews {
                arrived: Instant::now(),
                agent: None,
            },
        }
    }

    /// Carry out every action the core has for us; an action's immediate
    /// result goes straight back to the core.
    async fn carry_out(&mut self, core: &mut CallCore) {
        while let Some(action) = core.poll_action() {
            if let Some(ev) = self.execute(action).await {
                core.handle_event(Instant::now(), ev);
            }
        }
    }

    /// Write to the call's ticket and wait for the commit: what it records
    /// is kept before the next action shows it to anyone.
    async fn record(&mut self, r: Record) -> Option<CallEvent> {
        let at = Millis::now();
        match r {
            Record::Open { language } => {
                let w = Write::Open {
                    call: new_call(&self.call, language),
                    blocked: false,
                };
                match self.ctx.store.write(w).await {
                    Ok(Written::Opened(o)) => {
                        self.ticket_call = Some(o.call);
                        let caller = Caller::from_header(&self.call.from_uri);
                        self.ctx.events.publish(Event::CallArrived {
                            call: self.id.0,
                            ticket: o.ticket.0,
                            caller: caller.user,
                            caller_name: caller.display,
                            dialed: self.call.dialed.clone(),
                            at: at.rfc3339(),
                        });
                        Some(CallEvent::TicketOpened { ticket: o.ticket })
                    }
                    Ok(other) => {
                        tracing::error!(?other, "the store answered an open with something else");
                        Some(CallEvent::TicketFailed)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "no ticket could be opened");
                        Some(CallEvent::TicketFailed)
                    }
                }
            }
            Record::Change { change, entry } => {
                let call = self.ticket_call?;
                let w = Write::Call {
                    call,
                    at,
                    change: change.clone(),
                    entry,
                };
                match self.ctx.store.write(w).await {
                    Ok(Written::Call { ticket }) => self.tell_desk(&change, ticket, at),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "a change of the call was not kept in its ticket");
                    }
                }
                None
            }
            Record::Join { typed } => {
                // Always answered: the call's menus wait for it.
                let Some(call) = self.ticket_call else {
                    return Some(CallEvent::TicketJoined { ticket: None });
                };
                let ticket = match self.ctx.store.write(Write::Join { call, at, typed }).await {
                    Ok(Written::Call { ticket }) => Some(ticket),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "the typed ticket could not be joined");
                        None
                    }
                };
                Some(CallEvent::TicketJoined { ticket })
            }
        }
    }

    /// What the change committed means to the desks and the webhooks.
    fn tell_desk(&mut self, ch: &CallChange, ticket: TicketNumber, at: Millis) {
        let events = &self.ctx.events;
        let id = self.id.0;
        let at_s = at.rfc3339();
        if let Some(result) = &ch.offer_ended {
            if let Some(agent) = self.desk.agent.clone() {
                events.publish(Event::OfferEnded {
                    agent,
                    call: id,
                    ticket: ticket.0,
                    result: result.clone(),
                    at: at_s.clone(),
                });
            }
        }
        if let Some(agent) = &ch.offered {
            self.desk.agent = Some(agent.clone());
            let live = self.ctx.live.get(id);
            let caller = Caller::from_header(&self.call.from_uri);
            events.publish(Event::Offered {
                agent: agent.clone(),
                call: id,
                ticket: ticket.0,
                caller: caller.user,
                caller_name: caller.display,
                dialed: self.call.dialed.clone(),
                language: live
                    .as_ref()
                    .map(|l| l.language.clone())
                    .unwrap_or_default(),
                queue: live.and_then(|l| l.queue),
                waited_ms: u64::try_from(self.desk.arrived.elapsed().as_millis())
                    .unwrap_or(u64::MAX),
                at: at_s.clone(),
            });
        }
        if let Some(agent) = ch.answered_by.as_ref().or(ch.agent.as_ref()) {
            self.desk.agent = Some(agent.clone());
            events.publish(Event::Answered {
                agent: agent.clone(),
                call: id,
                ticket: ticket.0,
                caller: Caller::from_header(&self.call.from_uri).user,
                at: at_s.clone(),
            });
        }
        if let Some((outcome, by)) = &ch.ended {
            events.publish(Event::Ended {
                call: id,
                ticket: ticket.0,
                agent: self.desk.agent.clone(),
                outcome: outcome.as_str().to_string(),
                hung_up_by: by.clone(),
                caller: Caller::from_header(&self.call.from_uri).user,
                dialed: self.call.dialed.clone(),
                at: at_s,
            });
        }
    }

    /// The live record of the call, and the phase its line is in, from its
    /// core.
    fn publish(&mut self, core: &CallCore) {
        let v = core.view();
        if let Some(line) = self.line.as_mut() {
            line.set_phase(match v.state {
                CallState::Answering | CallState::Ivr | CallState::Leaving => LinePhase::Ivr,
                CallState::Queued => LinePhase::Queue,
                CallState::Ringing => LinePhase::Ringing,
                CallState::OnCall | CallState::Consulting => LinePhase::Talking,
                CallState::Transferring => LinePhase::Transfer,
                CallState::Ended => line.phase(),
            });
        }
        self.ctx.live.upsert(LiveCall {
            id: self.id.0,
            ticket: core
                .ticket()
                .map_or_else(|| format!("call-{}", self.id.0), |t| t.to_string()),
            dialed: self.call.dialed.clone(),
            caller: self.call.from_uri.clone(),
            language: v.language.to_string(),
            state: v.state,
            queue: v.queue.map(str::to_string),
            priority: v.priority,
            agent: v.agent.map(str::to_string),
            fields: v.fields.cloned().unwrap_or_default(),
        });
    }

    fn hold(&mut self, pending: Pending) -> ReqId {
        self.next_req += 1;
        let req = ReqId(self.next_req);
        self.pending.insert(req, pending);
        req
    }

    /// Wait for the next thing that happens to the call; `None` when the
    /// core's deadline comes first.
    async fn next_event(&mut self, deadline: Option<Instant>) -> Option<CallEvent> {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep);
        let shutdown = self.ctx.shutdown.clone();
        let told = self.shutdown_told;
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled(), if !told => {
                    self.shutdown_told = true;
                    Some(CallEvent::Shutdown)
                }
                _ = &mut sleep => return None,
                ev = self.leg_events.recv() => Some(self.leg_event(ev)),
                Some(ev) = self.media_rx.recv() => caller_media_event(ev),
                Some(ev) = self.agent_media_rx.recv() => agent_media_event(ev),
                Some((leg, ev)) = self.agent_rx.recv() => self.agent_event(leg, ev),
                Some(news) = self.news_rx.recv() => Some(CallEvent::Acd(news)),
                Some(arrival) = self.inbox.recv() => self.consult_arrived(*arrival),
                Some(cmd) = self.desk_rx.recv() => Some(match cmd {
                    crate::http::live::DeskCommand::Transfer(to) => CallEvent::DeskTransfer { to },
                }),
                ev = consult_leg_event(&mut self.consult_leg) => self.consult_leg_event(ev),
                Some(ev) = self.consult_media_rx.recv() => consult_media_event(ev),
                Some(ev) = self.colleague_media_rx.recv() => colleague_media_event(ev),
            };
            if ev.is_some() {
                return ev;
            }
        }
    }

    fn leg_event(&mut self, ev: Option<LegEvent>) -> CallEvent {
        match ev {
            None => CallEvent::CallerEnded(LegEnd::Other(0)),
            Some(LegEvent::Ended(end)) => CallEvent::CallerEnded(end),
            Some(LegEvent::Confirmed { ack_body }) => CallEvent::CallerConfirmed { ack_body },
            Some(LegEvent::Info {
                content_type,
                body,
                reply,
            }) => CallEvent::CallerInfo {
                req: self.hold(Pending::Info(reply)),
                content_type,
                body,
            },
            Some(LegEvent::Reoffer { sdp, invite, reply }) => CallEvent::CallerReoffer {
                req: self.hold(Pending::Offer(reply)),
                sdp,
                invite,
            },
            Some(LegEvent::Refer { reply, .. }) => CallEvent::CallerRefer {
                req: self.hold(Pending::Refer(reply)),
            },
        }
    }

    fn agent_event(&mut self, leg: AgentLegRef, ev: AgentLegEvent) -> Option<CallEvent> {
        Some(match ev {
            AgentLegEvent::Ringing => return None,
            AgentLegEvent::Answered { sdp } => CallEvent::AgentAnswered { leg, sdp },
            AgentLegEvent::Failed { status } => {
                self.agent_legs.remove(&leg);
                CallEvent::AgentFailed { leg, status }
            }
            AgentLegEvent::Reoffer { sdp, invite, reply } => CallEvent::AgentReoffer {
                leg,
                req: self.hold(Pending::Offer(reply)),
                sdp,
                invite,
            },
            AgentLegEvent::Refer {
                target,
                replaces,
                reply,
            } => CallEvent::AgentRefer {
                leg,
                req: self.hold(Pending::Refer(reply)),
                target,
                replaces: replaces.map(|id| self.replaced(&id)),
            },
            AgentLegEvent::ReofferAnswered(answer) => {
                CallEvent::AgentReofferAnswered { leg, answer }
            }
            AgentLegEvent::Ended(_) => {
                self.agent_legs.remove(&leg);
                CallEvent::AgentEnded { leg }
            }
        })
    }

    /// Which of the call's legs a `Replaces` Call-ID names.
    fn replaced(&self, sip_call_id: &str) -> Replaced {
        if self
            .consult_leg
            .as_ref()
            .is_some_and(|c| c.call.call_id == sip_call_id)
        {
            return Replaced::ConsultLeg;
        }
        self.agent_legs
            .iter()
            .find(|(_, l)| l.call_id() == sip_call_id)
            .map_or(Replaced::Unknown, |(r, _)| Replaced::AgentLeg(*r))
    }

    /// The agent's phone placed a consultation call: this call keeps it
    /// (one at a time) and tells its core.
    fn consult_arrived(&mut self, arrival: ConsultArrival) -> Option<CallEvent> {
        let ConsultArrival { call, leg, events } = arrival;
        if self.consult_leg.is_some() {
            leg.reject(486);
            return None;
        }
        let port = self.ctx.ports.allocate().ok();
        let ev = CallEvent::ConsultCall(ConsultCall {
            agent: call.agent.clone().unwrap_or_default(),
            dialed: call.dialed.clone(),
            offer: call.offer.clone(),
            local_ip: call.local_ip,
            rtp_port: port.as_ref().map(|p| p.port),
        });
        self.consult_leg = Some(ConsultLegIo {
            call,
            leg,
            events,
            port,
        });
        Some(ev)
    }

    fn consult_leg_event(&mut self, ev: Option<LegEvent>) -> Option<CallEvent> {
        Some(match ev {
            None => {
                self.drop_consult_leg();
                CallEvent::ConsultEnded(LegEnd::Other(0))
            }
            Some(LegEvent::Ended(end)) => {
                self.drop_consult_leg();
                CallEvent::ConsultEnded(end)
            }
            // We answer with an answer: the ACK brings nothing to act on.
            Some(LegEvent::Confirmed { .. }) => return None,
            Some(LegEvent::Info {
                content_type,
                body,
                reply,
            }) => CallEvent::ConsultInfo {
                req: self.hold(Pending::Info(reply)),
                content_type,
                body,
            },
            Some(LegEvent::Reoffer { sdp, invite, reply }) => CallEvent::ConsultReoffer {
                req: self.hold(Pending::Offer(reply)),
                sdp,
                invite,
            },
            Some(LegEvent::Refer {
                replaces, reply, ..
            }) => CallEvent::ConsultRefer {
                req: self.hold(Pending::Refer(reply)),
                replaces: replaces.map(|id| self.replaced(&id)),
            },
        })
    }

    /// The consultation call is over: its media and port go.
    fn drop_consult_leg(&mut self) {
        self.consult_leg = None;
        self.consult_media = None;
    }

    async fn execute(&mut self, action: CallAction) -> Option<CallEvent> {
        match action {
            CallAction::Acd(req) => return self.ask_acd(req).await,
            CallAction::Reject { status } => self.leg.reject(status),
            CallAction::Ring => self.leg.ringing(),
            CallAction::Answer { sdp } => {
                if !self.leg.answer(sdp) {
                    return Some(CallEvent::AnswerFailed);
                }
            }
            CallAction::StartCallerMedia { remote } => return self.start_caller_media(&remote),
            CallAction::HangUpCaller => self.leg.hangup().await,
            CallAction::ReplyInfo { req, status } => {
                if let Some(Pending::Info(r)) = self.pending.remove(&req) {
                    r.reply(status).await;
                }
            }
            CallAction::ReplyReoffer { req, answer } => {
                if let Some(Pending::Offer(r)) = self.pending.remove(&req) {
                    match answer {
                        Ok(sdp) => r.accept(sdp).await,
                        Err(status) => r.reject(status).await,
                    }
                }
            }
            CallAction::ReplyRefer { req, status } => {
                if let Some(Pending::Refer(r)) = self.pending.remove(&req) {
                    match status {
                        202 => r.accept().await,
                        s => r.reject(s).await,
                    }
                }
            }
            CallAction::RingAgent {
                offer,
                agent,
                targets,
                ticket,
                codec,
                consulted_by,
            } => {
                let mut headers = vec![
                    ("X-Centralita-Ticket".to_string(), ticket),
                    ("Call-Info".to_string(), self.ctx.call_info(self.id)),
                ];
                if let Some(by) = consulted_by {
                    headers.push(("X-Centralita-Consultation".to_string(), by));
                }
                return Some(self.ring_agent(offer, &agent, &targets, headers, &codec));
            }
            CallAction::Consult(a) => return self.consult_action(a).await,
            CallAction::Record(r) => return self.record(r).await,
            CallAction::HangUpAgent { leg } => self.hang_up_agent(leg),
            CallAction::BridgeAgent { leg, remote } => return Some(self.bridge(leg, &remote)),
            CallAction::TransferDone { leg } => self.transfer_done(leg),
            CallAction::ReofferAgent { leg, sdp } => self.reoffer_agent(leg, sdp),
            CallAction::TransferFailed { leg, status } => self.transfer_failed(leg, status),
            CallAction::Count(c) => self.count(&c),
            CallAction::ReleaseLine => self.line = None,
            CallAction::Finished { outcome } => self.finish(outcome),
            other => self.media_action(other),
        }
        None
    }

    /// What plays and what is relayed.
    fn media_action(&mut self, action: CallAction) {
        let (Some(m), ctx) = (self.media.as_ref(), &self.ctx) else {
            return;
        };
        match action {
            CallAction::Play {
                language,
                prompts,
                token,
            } => m.play(ctx.prompts_in(&language, &prompts), token),
            CallAction::Append { language, prompts } => {
                m.append(ctx.prompts_in(&language, &prompts))
            }
            CallAction::StopPlayback => m.stop_playback(),
            CallAction::HoldMusic(on) => {
                m.set_background(if on { ctx.hold_music.clone() } else { None })
            }
            CallAction::SetCallerPeer { peer } => m.set_peer(peer),
            CallAction::SendDigitToAgent(d) => m.send_digit(d),
            CallAction::SendDigitToCaller(d) => {
                if let Some(a) = &self.agent_media {
                    a.send_digit(d);
                }
            }
            CallAction::Unbridge => {
                // The agent's media goes; the clock plays to the caller again.
                self.agent_media = None;
                if let Err(e) = m.unbridge() {
                    tracing::warn!(error = %e, "cannot play to the caller again");
                }
            }
            CallAction::PlayToAgent {
                language,
                prompts,
                token,
            } => {
                if let Some(a) = &self.agent_media {
                    let list = ctx.prompts_in(&language, &prompts);
                    if let Err(e) = a.play_in_bridge(m, list, token) {
                        tracing::warn!(error = %e, "cannot play to the agent");
                    }
                }
            }
            CallAction::ResumeBridge => {
                if let Some(a) = &self.agent_media {
                    a.resume_bridge(m);
                }
            }
            CallAction::HoldCaller => {
                if let Some(a) = &self.agent_media {
                    if let Err(e) = m.hold(a) {
                        tracing::warn!(error = %e, "cannot play the hold music");
                    }
                }
            }
            CallAction::ResumeCaller => {
                if let Some(a) = &self.agent_media {
                    m.unhold(a);
                }
            }
            CallAction::SetAgentPeer { peer } => {
                if let Some(a) = &self.agent_media {
                    a.set_peer(peer);
                }
            }
            other => tracing::debug!(?other, "not a media action"),
        }
    }

    async fn ask_acd(&mut self, req: AcdRequest) -> Option<CallEvent> {
        let (sb, id) = (&self.ctx.switchboard, self.id.0);
        match req {
            AcdRequest::Feature { agent, feature } => {
                let known = sb.feature(&agent, feature).await.is_some();
                return Some(CallEvent::FeatureApplied { known });
            }
            AcdRequest::Enqueue {
                queue,
                priority,
                ticket,
            } => sb.enqueue(id, &queue, priority, ticket, self.news_tx.clone()),
            AcdRequest::RequestCallback {
                queue,
                priority,
                ticket,
                target,
            } => sb.request_callback(id, &queue, priority, ticket, target, self.news_tx.clone()),
            AcdRequest::AgentAnswered { agent } => sb.agent_answered(id, &agent),
            AcdRequest::OfferFailed { agent, reason } => sb.offer_failed(id, &agent, reason),
            AcdRequest::Transfer { to } => sb.transfer(id, to),
            AcdRequest::CallerGone => sb.caller_gone(id),
            AcdRequest::AgentLost => sb.agent_lost(id),
            AcdRequest::Consult { to } => {
                // The consultation is an entry of its own in the ACD.
                let consult = self.ctx.new_id();
                self.consult_id = Some(consult);
                sb.consult(id, consult.0, to, self.news_tx.clone());
            }
            AcdRequest::ConsultAnswered { agent } => {
                if let Some(c) = self.consult_id {
                    sb.agent_answered(c.0, &agent);
                }
            }
            AcdRequest::ConsultOfferFailed { agent, reason } => {
                if let Some(c) = self.consult_id {
                    sb.offer_failed(c.0, &agent, reason);
                }
            }
            AcdRequest::CompleteConsult => {
                if let Some(c) = self.consult_id {
                    sb.complete_consult(c.0);
                }
            }
            AcdRequest::ConsultGone => {
                if let Some(c) = self.consult_id.take() {
                    sb.caller_gone(c.0);
                }
            }
        }
        None
    }

    fn start_caller_media(&mut self, remote: &Negotiated) -> Option<CallEvent> {
        let Some(port) = self.port.take() else {
            return Some(CallEvent::CallerMediaFailed);
        };
        let setup = SessionSetup {
            port,
            peer: remote.remote_rtp,
            signalling_ip: self.call.source.ip(),
            codec: remote.codec,
            dtmf_pt: remote.dtmf_pt,
            inband_dtmf: self.ctx.settings.config.inband_dtmf,
            rtp_timeout: self.ctx.rtp_timeout(),
            events: self.media_tx.clone(),
        };
        match MediaSession::start(setup, &self.ctx.clock, &self.ctx.metrics) {
            Ok(m) => {
                self.media = Some(m);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start media");
                Some(CallEvent::CallerMediaFailed)
            }
        }
    }

    /// Ring the agent's phones with an offer in the caller's codec (so that
    /// the bridge relays packets as they come, with no transcoding).
    fn ring_agent(
        &mut self,
        offer: u32,
        agent: &str,
        targets: &[AgentTarget],
        headers: Vec<(String, String)>,
        codec: &Negotiated,
    ) -> CallEvent {
        let none = CallEvent::OfferRung { offer, contacts: 0 };
        let (Some(sip), Some(first)) = (self.ctx.sip.get().cloned(), targets.first()) else {
            return none;
        };
        let Ok(port) = self.ctx.ports.allocate() else {
            return none;
        };
        let local_ip = sip.local_ip_towards(first.source.ip());
        let mut ours = codec.clone();
        ours.media_lines.clear();
        ours.direction = sdp::Direction::SendRecv;
        let session = SdpSession::for_leg(LegId {
            call: self.id,
            role: LegRole::Agent { offer },
        });
        let offer_sdp = sdp::build_answer(local_ip, port.port, &ours, session.id);
        let legs = ring(&sip, targets, &offer_sdp, &headers, local_ip);
        let mut contacts = 0u16;
        for (leg, mut events) in legs {
            let r = AgentLegRef {
                offer,
                contact: contacts,
            };
            contacts += 1;
            let tx = self.agent_tx.clone();
            tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    if tx.send((r, ev)).is_err() {
                        return;
                    }
                }
            });
            self.agent_legs.insert(r, leg);
        }
        tracing::debug!(agent, contacts, "offer placed");
        let signalling_ip = first.source.ip();
        self.offer_media.insert(
            offer,
            OfferMedia {
                local: std::net::SocketAddr::new(local_ip, port.port),
                port: Some(port),
                signalling_ip,
            },
        );
        CallEvent::OfferRung { offer, contacts }
    }

    /// CANCEL a ringing phone, BYE an answered one (in the background: the
    /// call goes on meanwhile).
    fn hang_up_agent(&mut self, leg: AgentLegRef) {
        if let Some(l) = self.agent_legs.remove(&leg) {
            self.ctx.tracker.spawn(async move { l.hangup().await });
        }
        self.forget_offer_if_done(leg.offer);
    }

    /// An offer none of whose phones is left frees its port.
    fn forget_offer_if_done(&mut self, offer: u32) {
        if !self.agent_legs.keys().any(|l| l.offer == offer) {
            self.offer_media.remove(&offer);
        }
    }

    /// Start the agent's media on the offer's port and bridge it with the
    /// caller's.
    fn bridge(&mut self, leg: AgentLegRef, remote: &Negotiated) -> CallEvent {
        let events = self.agent_media_tx.clone();
        let (Some((agent, local)), Some(caller)) = (
            self.start_offer_media(leg, remote, events),
            self.media.as_ref(),
        ) else {
            return CallEvent::AgentBridgeFailed { leg };
        };
        MediaSession::bridge(caller, &agent, "caller_to_agent", "agent_to_caller", true);
        self.agent_media = Some(agent);
        CallEvent::AgentBridged { leg, local }
    }

    /// Start an answered agent leg's media on its offer's port (taken from
    /// the offer), its events on `events`; the session and our address on it.
    fn start_offer_media(
        &mut self,
        leg: AgentLegRef,
        remote: &Negotiated,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Option<(MediaSession, std::net::SocketAddr)> {
        let om = self.offer_media.get_mut(&leg.offer)?;
        let local = om.local;
        let setup = SessionSetup {
            port: om.port.take()?,
            peer: remote.remote_rtp,
            signalling_ip: om.signalling_ip,
            codec: remote.codec,
            dtmf_pt: remote.dtmf_pt,
            inband_dtmf: false,
            rtp_timeout: self.ctx.rtp_timeout(),
            events,
        };
        let session = MediaSession::start(setup, &self.ctx.clock, &self.ctx.metrics).ok()?;
        Some((session, local))
    }

    /// Our re-INVITE to the agent's phone, in the background: its answer
    /// comes back as the leg's event.
    fn reoffer_agent(&mut self, leg: AgentLegRef, sdp: String) {
        let Some(l) = self.agent_legs.get(&leg).cloned() else {
            return;
        };
        let tx = self.agent_tx.clone();
        self.ctx.tracker.spawn(async move {
            let answer = l.reoffer(sdp).await;
            let _ = tx.send((leg, AgentLegEvent::ReofferAnswered(answer)));
        });
    }

    /// A consultation's SIP and media work; an immediate result goes back
    /// to the core.
    async fn consult_action(&mut self, action: ConsultAction) -> Option<CallEvent> {
        match action {
            ConsultAction::Ring => {
                if let Some(c) = &self.consult_leg {
                    c.leg.ringing();
                }
            }
            ConsultAction::Answer { sdp } => {
                let answered = self.consult_leg.as_ref().is_some_and(|c| c.leg.answer(sdp));
                if !answered {
                    return Some(CallEvent::ConsultMediaFailed);
                }
            }
            ConsultAction::Reject { status } => {
                if let Some(c) = self.consult_leg.take() {
                    c.leg.reject(status);
                }
                self.drop_consult_leg();
            }
            ConsultAction::HangUp => {
                if let Some(c) = self.consult_leg.take() {
                    self.ctx.tracker.spawn(async move { c.leg.hangup().await });
                }
                self.drop_consult_leg();
            }
            ConsultAction::TransferDone => {
                if let Some(c) = self.consult_leg.take() {
                    self.ctx
                        .tracker
                        .spawn(async move { c.leg.finish_transfer().await });
                }
                self.drop_consult_leg();
            }
            ConsultAction::TransferFailed { status } => {
                if let Some(leg) = self.consult_leg.as_ref().map(|c| c.leg.clone()) {
                    self.ctx
                        .tracker
                        .spawn(async move { leg.transfer_failed(status).await });
                }
            }
            ConsultAction::StartMedia { remote } => return self.start_consult_media(&remote),
            ConsultAction::AgentToClock => {
                if let Some(a) = &self.agent_media {
                    if let Err(e) = a.join_clock() {
                        tracing::warn!(error = %e, "cannot play to the consulting agent");
                    }
                }
            }
            ConsultAction::Play {
                side,
                language,
                prompts,
                token,
            } => {
                let list = self.ctx.prompts_in(&language, &prompts);
                if let Some(m) = self.side(side) {
                    m.play(list, token);
                }
            }
            ConsultAction::Append {
                side,
                language,
                prompts,
            } => {
                let list = self.ctx.prompts_in(&language, &prompts);
                if let Some(m) = self.side(side) {
                    m.append(list);
                }
            }
            ConsultAction::Background { side, sound } => {
                let music = match sound {
                    Background::HoldMusic => self.ctx.hold_music.clone(),
                    Background::Ringback => self.ctx.ringback.clone(),
                };
                if let Some(m) = self.side(side) {
                    m.stop_playback();
                    m.set_background(music);
                }
            }
            ConsultAction::Bridge { leg, remote, side } => {
                return Some(self.bridge_colleague(leg, &remote, side));
            }
            ConsultAction::SendDigit(d) => {
                if let Some(m) = &self.consult_media {
                    m.send_digit(d);
                }
            }
            ConsultAction::SetPeer { peer } => {
                if let Some(m) = &self.consult_media {
                    m.set_peer(peer);
                }
            }
            ConsultAction::SetColleaguePeer { peer } => {
                if let Some(m) = &self.colleague_media {
                    m.set_peer(peer);
                }
            }
            ConsultAction::DropColleague => self.colleague_media = None,
            ConsultAction::Rejoin => {
                if let (Some(caller), Some(agent)) = (&self.media, &self.agent_media) {
                    MediaSession::bridge(caller, agent, "caller_to_agent", "agent_to_caller", true);
                }
            }
            ConsultAction::HandOver => self.hand_over(),
        }
        None
    }

    /// The media session of the consulting side.
    fn side(&self, side: Side) -> Option<&MediaSession> {
        match side {
            Side::Agent => self.agent_media.as_ref(),
            Side::Consult => self.consult_media.as_ref(),
        }
    }

    fn start_consult_media(&mut self, remote: &Negotiated) -> Option<CallEvent> {
        let failed = Some(CallEvent::ConsultMediaFailed);
        let Some(c) = self.consult_leg.as_mut() else {
            return failed;
        };
        let Some(port) = c.port.take() else {
            return failed;
        };
        let setup = SessionSetup {
            port,
            peer: remote.remote_rtp,
            signalling_ip: c.call.source.ip(),
            codec: remote.codec,
            dtmf_pt: remote.dtmf_pt,
            inband_dtmf: false,
            rtp_timeout: self.ctx.rtp_timeout(),
            events: self.consult_media_tx.clone(),
        };
        match MediaSession::start(setup, &self.ctx.clock, &self.ctx.metrics) {
            Ok(m) => {
                self.consult_media = Some(m);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the consultation call's media");
                failed
            }
        }
    }

    /// Start the colleague's media on its offer's port and bridge it with
    /// the consulting side (whose keys are kept for its feature codes).
    fn bridge_colleague(&mut self, leg: AgentLegRef, remote: &Negotiated, side: Side) -> CallEvent {
        let failed = CallEvent::ColleagueBridgeFailed { leg };
        let events = self.colleague_media_tx.clone();
        let Some((colleague, local)) = self.start_offer_media(leg, remote, events) else {
            return failed;
        };
        let Some(agent) = self.side(side) else {
            return failed;
        };
        MediaSession::bridge(
            &colleague,
            agent,
            "colleague_to_agent",
            "agent_to_colleague",
            true,
        );
        self.colleague_media = Some(colleague);
        CallEvent::ColleagueBridged { leg, local }
    }

    /// The colleague takes the caller: bridged with it, its media (and its
    /// events) are the call's agent's from now on.
    fn hand_over(&mut self) {
        let Some(colleague) = self.colleague_media.take() else {
            return;
        };
        if let Some(caller) = &self.media {
            MediaSession::bridge(
                caller,
                &colleague,
                "caller_to_agent",
                "agent_to_caller",
                true,
            );
        }
        self.agent_media = Some(colleague);
        std::mem::swap(&mut self.agent_media_tx, &mut self.colleague_media_tx);
        std::mem::swap(&mut self.agent_media_rx, &mut self.colleague_media_rx);
        self.consult_media = None;
    }

    fn transfer_done(&mut self, leg: AgentLegRef) {
        if let Some(l) = self.agent_legs.remove(&leg) {
            self.ctx
                .tracker
                .spawn(async move { l.finish_transfer().await });
        }
        self.forget_offer_if_done(leg.offer);
    }

    fn transfer_failed(&mut self, leg: AgentLegRef, status: u16) {
        if let Some(l) = self.agent_legs.get(&leg).cloned() {
            self.ctx
                .tracker
                .spawn(async move { l.transfer_failed(status).await });
        }
    }

    fn count(&self, c: &CallCount) {
        let m = &self.ctx.metrics;
        match c {
            CallCount::Digit(source) => m.dtmf_digits.with_label_values(&[source.as_str()]).inc(),
            CallCount::MenuEntered(menu) => m.ivr_menu_entries.with_label_values(&[menu]).inc(),
            CallCount::QueueRequested(q) => m.ivr_queue_requests.with_label_values(&[q]).inc(),
            CallCount::CallbackRequested(q) => {
                m.ivr_callback_requests.with_label_values(&[q]).inc()
            }
            CallCount::KeypadTransfer(r) => {
                m.keypad_transfers.with_label_values(&[r.label()]).inc()
            }
            CallCount::Consultation { to_agent, result } => {
                let to = if *to_agent { "agent" } else { "queue" };
                m.consultations
                    .with_label_values(&[to, result.label()])
                    .inc()
            }
            CallCount::OnHold(true) => m.calls_on_hold.inc(),
            CallCount::OnHold(false) => m.calls_on_hold.dec(),
            CallCount::Transfer {
                how,
                to_agent,
                result,
            } => {
                let to = if *to_agent { "agent" } else { "queue" };
                m.transfers
                    .with_label_values(&[how.label(), result.label(), to])
                    .inc()
            }
        }
    }

    /// The call is over: whatever is still up goes with it.
    fn finish(&mut self, outcome: CallOutcome) {
        self.outcome = Some(outcome);
        self.ctx.close_inbox(self.id);
        // A consultation call that came as the call ended: nothing to consult.
        while let Ok(late) = self.inbox.try_recv() {
            late.leg.reject(480);
        }
        self.colleague_media = None;
        self.consult_media = None;
        if let Some(c) = self.consult_leg.take() {
            self.ctx.tracker.spawn(async move { c.leg.hangup().await });
        }
        self.agent_media = None;
        self.media = None;
        self.line = None;
        for (_, l) in std::mem::take(&mut self.agent_legs) {
            self.ctx.tracker.spawn(async move { l.hangup().await });
        }
        self.offer_media.clear();
    }
}

fn caller_media_event(ev: MediaEvent) -> Option<CallEvent> {
    Some(match ev {
        MediaEvent::Digit { digit, source } => CallEvent::CallerDigit { digit, source },
        MediaEvent::PlaybackFinished { token } => CallEvent::CallerPlaybackFinished { token },
        MediaEvent::RtpTimeout => CallEvent::CallerRtpTimeout,
    })
}

fn consult_media_event(ev: MediaEvent) -> Option<CallEvent> {
    Some(match ev {
        MediaEvent::Digit { digit, source } => CallEvent::ConsultDigit { digit, source },
        MediaEvent::PlaybackFinished { token } => CallEvent::ConsultPlaybackFinished { token },
        MediaEvent::RtpTimeout => CallEvent::ConsultRtpTimeout,
    })
}

/// The colleague's keys are relayed as they come; only its silence matters.
fn colleague_media_event(ev: MediaEvent) -> Option<CallEvent> {
    match ev {
        MediaEvent::RtpTimeout => Some(CallEvent::ColleagueRtpTimeout),
        _ => None,
    }
}

/// The next event of the agent's consultation call (never, without one).
async fn consult_leg_event(leg: &mut Option<ConsultLegIo>) -> Option<LegEvent> {
    match leg {
        Some(c) => c.events.recv().await,
        None => std::future::pending().await,
    }
}

fn agent_media_event(ev: MediaEvent) -> Option<CallEvent> {
    Some(match ev {
        MediaEvent::Digit { digit, source } => CallEvent::AgentDigit { digit, source },
        MediaEvent::PlaybackFinished { token } => CallEvent::AgentPlaybackFinished { token },
        MediaEvent::RtpTimeout => CallEvent::AgentRtpTimeout,
    })
}

/// Ring every target with the same offer: the legs that could be placed,
/// each with its events.
pub(super) fn ring(
    sip: &SipStack,
    targets: &[AgentTarget],
    offer: &str,
    headers: &[(String, String)],
    local_ip: IpAddr,
) -> Vec<(AgentLeg, mpsc::UnboundedReceiver<AgentLegEvent>)> {
    targets
        .iter()
        .filter_map(
            |t| match sip.invite_agent(t, offer.to_string(), headers.to_vec(), local_ip) {
                Ok(leg) => Some(leg),
                Err(e) => {
                    tracing::info!(error = %e, "cannot ring");
                    tracing::debug!(contact = %Untrusted(&t.contact.to_string()), "the contact that could not be rung");
                    None
                }
            },
        )
        .collect()
}
