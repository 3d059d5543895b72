//! One call's life: the caller's SIP leg, its media, and its IVR session.
//! A task per call merges the leg's events, media events and the IVR's
//! timer, feeds the sans-IO IVR engine and carries out its actions. Until the
//! ACD exists, "queue" plays the menu's prompt then holds the caller on
//! music, and "request callback" plays the confirmation and ends the call.

use crate::acd::{OfferFailReason, TransferTarget};
use crate::config::{FeatureCodes, RuntimeConfig};
use crate::ivr::{IvrAction, IvrCall, IvrEvent, IvrScript};
use crate::keypad::{Keypad, KeypadAction};
use crate::media::clock::MediaClock;
use crate::media::dtmf::{info::parse_info_body, DigitSource};
use crate::media::ports::PortPool;
use crate::media::prompts::{Prompt, PromptLibrary};
use crate::media::{MediaEvent, MediaSession, SessionSetup};
use crate::metrics::{CallOutcome, Metrics};
use crate::sdp;
use crate::sip::{
    AgentLeg, AgentLegEvent, AgentTarget, CallHandler, CallLeg, IncomingCall, LegEnd, LegEvent,
    SipStack,
};
use crate::switchboard::{CallbackJob, Feature, QueueNews, Switchboard};
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

/// The prompts a queued caller hears besides the IVR's own.
pub const QUEUE_PROMPTS: &[&str] = &[
    "transferring",
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
pub fn feature_script() -> Result<IvrScript, Vec<String>> {
    IvrScript::load_sources([(std::path::Path::new("<built-in menus>"), FEATURE_MENUS)])
        .map_err(|es| es.iter().map(ToString::to_string).collect())
}

/// The IVR "entry" of a caller who dialed a queue's own number: it is never
/// started (the caller goes straight into the queue), only named.
const DIRECT_QUEUE: &str = "queue_direct";

/// The priority of a caller who dialed a queue's own number (the IVR's default).
const DIRECT_PRIORITY: u8 = 5;

/// Which feature, if `dialed` is a feature code.
pub fn feature_of(codes: &FeatureCodes, dialed: &str) -> Option<Feature> {
    if dialed == codes.ready {
        Some(Feature::Ready)
    } else if dialed == codes.pause {
        Some(Feature::Pause)
    } else if dialed == codes.logout {
        Some(Feature::Logout)
    } else {
        None
    }
}

/// Everything calls share.
pub struct CallContext {
    pub config: RuntimeConfig,
    pub ivr: Arc<IvrScript>,
    pub feature_ivr: Arc<IvrScript>,
    pub switchboard: Switchboard,
    pub prompts: Arc<PromptLibrary>,
    pub hold_music: Option<Arc<Prompt>>,
    pub clock: MediaClock,
    pub ports: Arc<PortPool>,
    pub metrics: Metrics,
    /// Cancelled at shutdown: every call sends BYE and ends.
    pub shutdown: CancellationToken,
    pub tracker: tokio_util::task::TaskTracker,
    /// The SIP stack, to place agent legs (set once it has started).
    pub sip: std::sync::OnceLock<Arc<SipStack>>,
    /// Calls in progress, for the HTTP API.
    pub live: Arc<crate::live::LiveCalls>,
    /// The HTTP listener's address (for Call-Info links), once bound.
    pub http_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// External lines taken by callers now.
    lines_in_use: Arc<AtomicU64>,
    next_id: AtomicU64,
}

impl CallContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: RuntimeConfig,
        ivr: Arc<IvrScript>,
        feature_ivr: Arc<IvrScript>,
        switchboard: Switchboard,
        prompts: Arc<PromptLibrary>,
        clock: MediaClock,
        ports: Arc<PortPool>,
        metrics: Metrics,
        shutdown: CancellationToken,
        lines_in_use: Arc<AtomicU64>,
    ) -> Arc<Self> {
        let hold_music = prompts.get_extra("hold_music");
        Arc::new(CallContext {
            config,
            ivr,
            feature_ivr,
            switchboard,
            prompts,
            hold_music,
            clock,
            ports,
            metrics,
            shutdown,
            tracker: tokio_util::task::TaskTracker::new(),
            sip: std::sync::OnceLock::new(),
            lines_in_use,
            live: Arc::new(crate::live::LiveCalls::default()),
            http_addr: std::sync::OnceLock::new(),
            next_id: AtomicU64::new(1),
        })
    }

    /// One more external line in use (a caller, a callback's customer leg);
    /// the count afterwards.
    fn take_line(&self) -> u64 {
        let n = self.lines_in_use.fetch_add(1, Ordering::SeqCst) + 1;
        self.metrics.lines_in_use.set(n as i64);
        n
    }

    fn drop_line(&self) {
        let n = self
            .lines_in_use
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        self.metrics.lines_in_use.set(n as i64);
    }

    fn prompt(&self, lang: &str, name: &str) -> Option<Arc<Prompt>> {
        self.prompts
            .get(lang, name)
            .or_else(|| self.prompts.get(&self.config.default_language, name))
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
        let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
        // A caller takes one of the trunk's lines; agents' own calls do not.
        // When only reserved lines are left, the call is refused 486.
        let line = if call.agent.is_none() {
            let usable = u64::from(ctx.config.acd.lines.saturating_sub(ctx.config.acd.reserve));
            if ctx.take_line() > usable {
                ctx.drop_line();
                tracing::info!(call_id = %call.call_id, "no free line: 486");
                leg.reject(486);
                ctx.metrics.call_ended(CallOutcome::Blocked);
                return;
            }
            true
        } else {
            false
        };
        let span = tracing::info_span!("call", call_id = %call.call_id, id);
        let tracker = ctx.tracker.clone();
        tracker.spawn(
            async move {
                ctx.metrics.calls_active.inc();
                let outcome = run_call(&ctx, id, call, leg, events).await;
                if line {
                    ctx.drop_line();
                }
                ctx.metrics.calls_active.dec();
                ctx.metrics.call_ended(outcome);
                tracing::info!(outcome = outcome.as_str(), "call ended");
            }
            .instrument(span),
        );
    }

    fn knows_number(&self, dialed: &str) -> bool {
        self.0.config.numbers.contains_key(dialed)
            || self.0.config.queue_by_number(dialed).is_some()
            || self.needs_agent(dialed)
    }

    fn needs_agent(&self, dialed: &str) -> bool {
        feature_of(&self.0.config.features, dialed).is_some()
    }
}

async fn run_call(
    ctx: &CallContext,
    id: u64,
    call: IncomingCall,
    leg: CallLeg,
    leg_events: mpsc::UnboundedReceiver<LegEvent>,
) -> CallOutcome {
    tracing::debug!(from = %call.from_uri, dialed = %call.dialed, source = %call.source, "incoming call");
    // An agent's feature code runs a built-in menu that says the new state;
    // any other number runs the operator's IVR.
    let (script, entry) = match (&call.agent, feature_of(&ctx.config.features, &call.dialed)) {
        (Some(agent), Some(feature)) => {
            let menu = match ctx.switchboard.feature(agent, feature).await {
                None => {
                    leg.reject(404);
                    return CallOutcome::NotFound;
                }
                Some(_) => match feature {
                    Feature::Ready => "agent_available",
                    Feature::Pause => "agent_paused",
                    Feature::Logout => "agent_logged_out",
                },
            };
            (Arc::clone(&ctx.feature_ivr), menu.to_string())
        }
        _ => match ctx.config.numbers.get(&call.dialed) {
            Some(entry) => (Arc::clone(&ctx.ivr), entry.clone()),
            None => match ctx.config.queue_by_number(&call.dialed) {
                Some(_) => (Arc::clone(&ctx.feature_ivr), DIRECT_QUEUE.to_string()),
                None => {
                    leg.reject(404);
                    return CallOutcome::NotFound;
                }
            },
        },
    };
    ctx.live.upsert(crate::live::LiveCall {
        id,
        ticket: format!("call-{id}"),
        dialed: call.dialed.clone(),
        caller: call.from_uri.clone(),
        language: ctx.config.default_language.clone(),
        state: "ivr".into(),
        queue: None,
        priority: None,
        agent: None,
        fields: Default::default(),
    });
    let direct = ctx.config.queue_by_number(&call.dialed).map(str::to_string);
    let outcome = run_answered(ctx, id, &call, leg, leg_events, script, entry, direct).await;
    ctx.live.remove(id);
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn run_answered(
    ctx: &CallContext,
    id: u64,
    call: &IncomingCall,
    leg: CallLeg,
    mut leg_events: mpsc::UnboundedReceiver<LegEvent>,
    script: Arc<IvrScript>,
    entry: String,
    direct_queue: Option<String>,
) -> CallOutcome {
    // Answered: the IVR starts, or a caller who dialed a queue's own number
    // goes straight into it (hold music; no menu).
    let start = |ivr: &mut IvrCall, media: Option<&MediaSession>, player: &mut Player| {
        match &direct_queue {
            Some(q) => enter_queue(ctx, ivr, media, player, q.clone(), DIRECT_PRIORITY, None),
            None => ivr.handle_event(Instant::now(), IvrEvent::Answered),
        }
    };
    let port = match ctx.ports.allocate() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "no RTP port");
            leg.reject(503);
            return CallOutcome::Unavailable;
        }
    };
    let session_id = id ^ 0x6365_6e74;
    // Offer in the INVITE: answer now. No offer: offer in the 200, answer in the ACK.
    let negotiated = match &call.offer {
        Some(offer) => match sdp::parse_offer(offer).and_then(|o| sdp::negotiate(&o)) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(error = %e, "SDP offer refused");
                leg.reject(e.sip_status());
                return CallOutcome::NoCodec;
            }
        },
        None => None,
    };
    let local_sdp = match &negotiated {
        Some(n) => sdp::build_answer(call.local_ip, port.port, n, session_id),
        None => sdp::build_offer(call.local_ip, port.port, session_id),
    };
    if ctx.config.answer_after_ms > 0 {
        leg.ringing();
        let ring = tokio::time::sleep(Duration::from_millis(u64::from(ctx.config.answer_after_ms)));
        tokio::pin!(ring);
        loop {
            tokio::select! {
                _ = &mut ring => break,
                _ = ctx.shutdown.cancelled() => {
                    leg.reject(503);
                    return CallOutcome::Shutdown;
                }
                ev = leg_events.recv() => match ev {
                    Some(LegEvent::Ended(LegEnd::Cancelled)) => return CallOutcome::Cancelled,
                    Some(LegEvent::Ended(_)) | None => return CallOutcome::Failed,
                    Some(_) => {}
                },
            }
        }
    }
    if !leg.answer(local_sdp) {
        return CallOutcome::Failed;
    }

    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let mut port = Some(port);
    let mut media: Option<MediaSession> = None;
    let mut ivr = match IvrCall::new(script, &entry, &ctx.config.default_language, Instant::now()) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "IVR entry menu missing");
            leg.hangup().await;
            return CallOutcome::Failed;
        }
    };
    let (queue_tx, mut queue_rx) = mpsc::unbounded_channel();
    let (agent_tx, mut agent_rx) = mpsc::unbounded_channel::<(usize, AgentLegEvent)>();
    // The bridged agent's media: its keys (feature codes) and its RTP timeout.
    let (agent_media_tx, mut agent_media_rx) = mpsc::unbounded_channel();
    let mut keypad = Keypad::new(&ctx.config.features.transfer_prefix);
    let mut caller_sdp = negotiated.clone();
    let mut offer: Option<Offer> = None;
    let mut bridge: Option<Bridge> = None;
    let mut player = Player {
        caller: call.clone(),
        queue: None,
        token: 0,
        hangup_when_done: false,
        announced: false,
        queued: Some(queue_tx),
        id,
    };
    let mut sdp_version = session_id;
    if let Some(n) = &negotiated {
        media = start_media(ctx, id, call.source.ip(), &mut port, n, &media_tx);
        if media.is_none() {
            leg.hangup().await;
            return CallOutcome::Failed;
        }
        start(&mut ivr, media.as_ref(), &mut player);
    }

    let outcome = loop {
        if let Some(out) = drain_ivr(ctx, &mut ivr, media.as_ref(), &mut player, &leg).await {
            break out;
        }
        let deadline = ivr.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        let keypad_deadline = keypad.deadline();
        let keypad_sleep = async {
            match keypad_deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => {
                leg.hangup().await;
                break CallOutcome::Shutdown;
            }
            _ = sleep => ivr.handle_timeout(Instant::now()),
            _ = keypad_sleep => {
                let action = keypad.on_timeout(Instant::now());
                if let Some(to) = on_keypad(ctx, action, bridge.as_ref()) {
                    transfer_caller(ctx, id, to, &mut bridge, media.as_ref(), &ivr, &mut player, false).await;
                }
            }
            ev = agent_media_rx.recv() => match ev {
                Some(MediaEvent::Digit { digit, source }) if bridge.is_some() => {
                    ctx.metrics.dtmf_digits.with_label_values(&[source.as_str()]).inc();
                    let action = keypad.on_key(Instant::now(), digit);
                    if let Some(to) = on_keypad(ctx, action, bridge.as_ref()) {
                        transfer_caller(ctx, id, to, &mut bridge, media.as_ref(), &ivr, &mut player, false).await;
                    }
                }
                Some(MediaEvent::RtpTimeout) if bridge.is_some() => {
                    tracing::info!("no RTP from the agent: ending the call");
                    leg.hangup().await;
                    break CallOutcome::Timeout;
                }
                _ => {}
            },
            ev = leg_events.recv() => match ev {
                None => break CallOutcome::Failed,
                Some(LegEvent::Ended(end)) => break match end {
                    LegEnd::CallerBye => CallOutcome::CallerHangup,
                    LegEnd::Cancelled => CallOutcome::Cancelled,
                    LegEnd::OurBye => CallOutcome::IvrHangup,
                    LegEnd::Timeout => CallOutcome::Timeout,
                    LegEnd::Other(_) => CallOutcome::Failed,
                },
                Some(LegEvent::Confirmed { ack_body }) => {
                    if media.is_none() {
                        let answer = ack_body.ok_or_else(|| sdp::SdpError::Malformed("no SDP answer in the ACK".into())).and_then(|b| sdp::parse_answer(&b));
                        match answer {
                            Ok(n) => {
                                media = start_media(ctx, id, call.source.ip(), &mut port, &n, &media_tx);
                                caller_sdp = Some(n);
                            }
                            Err(e) => tracing::debug!(error = %e, "no usable SDP answer in the ACK"),
                        }
                        if media.is_none() {
                            leg.hangup().await;
                            break CallOutcome::NoCodec;
                        }
                        start(&mut ivr, media.as_ref(), &mut player);
                    }
                }
                Some(LegEvent::Reoffer { sdp, reply }) => {
                    let answer = reoffer(media.as_ref(), call, sdp.as_deref(), session_id, &mut sdp_version);
                    match answer {
                        Ok(sdp) => reply.accept(sdp).await,
                        Err(status) => reply.reject(status).await,
                    }
                }
                Some(LegEvent::Info { content_type, body, reply }) => match parse_info_body(&content_type, &body) {
                    Ok(digit) => {
                        reply.reply(200).await;
                        match (&bridge, media.as_ref()) {
                            // Talking to an agent: the key goes on to the agent.
                            (Some(_), Some(m)) => m.send_digit(digit),
                            _ => on_digit(ctx, &mut ivr, digit, DigitSource::Info),
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "INFO refused");
                        reply.reply(415).await;
                    }
                },
            },
            news = queue_rx.recv() => match news {
                Some(QueueNews::Offer { agent, targets, ticket }) => {
                    if offer.is_none() && bridge.is_none() {
                        offer = start_offer(ctx, id, caller_sdp.as_ref(), agent, &targets, ticket, &agent_tx);
                    } else {
                        ctx.switchboard.offer_failed(id, &agent, OfferFailReason::Rejected);
                    }
                }
                Some(QueueNews::CancelOffer { agent }) => {
                    if let Some(o) = offer.take_if(|o| o.agent == agent) {
                        o.cancel().await;
                    }
                }
                Some(news) => {
                    if let Some(out) = on_queue_news(ctx, &ivr, media.as_ref(), &mut player, news) {
                        leg.hangup().await;
                        break out;
                    }
                }
                None => {}
            },
            ev = agent_rx.recv() => if let Some((i, ev)) = ev {
                match ev {
                    AgentLegEvent::Ringing => {}
                    AgentLegEvent::Answered { sdp: answer } => {
                        let Some(o) = offer.take() else { continue };
                        let agent = o.agent.clone();
                        match connect_agent(ctx, id, o, i, &answer, media.as_ref(), &agent_media_tx).await {
                            Some(b) => {
                                keypad = Keypad::new(&ctx.config.features.transfer_prefix);
                                ctx.switchboard.agent_answered(id, &agent);
                                ctx.live.update(id, |c| {
                                    c.state = "on_call".into();
                                    c.agent = Some(agent.clone());
                                });
                                bridge = Some(b);
                            }
                            None => ctx.switchboard.offer_failed(id, &agent, OfferFailReason::Rejected),
                        }
                    }
                    AgentLegEvent::Failed { status } => {
                        if let Some(o) = offer.as_mut() {
                            o.failed += 1;
                            if o.failed >= o.legs.len() {
                                let reason = match status {
                                    486 | 600 | 603 => OfferFailReason::Rejected,
                                    _ => OfferFailReason::NoAnswer,
                                };
                                tracing::info!(agent = %o.agent, status, "offer failed");
                                ctx.switchboard.offer_failed(id, &o.agent, reason);
                                offer = None;
                            }
                        }
                    }
                    AgentLegEvent::Refer { target, reply } => {
                        match (ctx.config.transfer_target(&target), bridge.is_some() && media.is_some()) {
                            (Some(to), true) => {
                                tracing::info!(%target, "the agent transfers the caller (REFER)");
                                reply.accept().await;
                                transfer_caller(ctx, id, to, &mut bridge, media.as_ref(), &ivr, &mut player, true).await;
                            }
                            _ => reply.reject(404).await,
                        }
                    }
                    AgentLegEvent::Ended(_) => {
                        if bridge.is_some() {
                            bridge = None;
                            leg.hangup().await;
                            break CallOutcome::AgentHangup;
                        }
                    }
                }
            },
            ev = media_rx.recv() => match ev {
                Some(MediaEvent::Digit { digit, source }) => {
                    on_digit(ctx, &mut ivr, digit, source);
                    // While waiting in a queue, 9 keeps the place and frees
                    // the line: confirmation, goodbye, hang up, called back.
                    if digit == '9' && player.queue.is_some() && bridge.is_none() && offer.is_none() && !player.hangup_when_done {
                        request_callback_while_queued(ctx, &ivr, media.as_ref(), &mut player);
                    }
                }
                Some(MediaEvent::PlaybackFinished { token }) if token == player.token => {
                    if player.hangup_when_done {
                        leg.hangup().await;
                        break CallOutcome::IvrHangup;
                    }
                    ivr.handle_event(Instant::now(), IvrEvent::PlaybackFinished)
                }
                Some(MediaEvent::PlaybackFinished { .. }) => {}
                Some(MediaEvent::RtpTimeout) => {
                    tracing::info!("no RTP from the caller: ending the call");
                    leg.hangup().await;
                    break CallOutcome::Timeout;
                }
                None => break CallOutcome::Failed,
            },
        }
    };
    // The caller is gone: ringing agents are cancelled, a connected agent
    // gets a BYE.
    if let Some(o) = offer.take() {
        o.cancel().await;
    }
    if let Some(b) = bridge.take() {
        b.leg.hangup().await;
    }
    drop(media);
    // Out of any queue it was in (a caller who hangs up is abandoned at once;
    // one who was talking to an agent ends that call: the agent's wrap-up).
    ctx.switchboard.caller_gone(id);
    outcome
}

/// Carry out what the agent's keypad decided: keys on to the caller, or
/// the transfer target to send the caller to.
fn on_keypad(
    ctx: &CallContext,
    action: KeypadAction,
    bridge: Option<&Bridge>,
) -> Option<TransferTarget> {
    match action {
        KeypadAction::None => None,
        KeypadAction::Pass(keys) => {
            if let Some(b) = bridge {
                for k in keys {
                    b.media.send_digit(k);
                }
            }
            None
        }
        KeypadAction::Cancelled => {
            tracing::info!("the agent abandoned a feature code");
            None
        }
        KeypadAction::Transfer(target) => {
            let to = ctx.config.transfer_target(&target);
            if to.is_none() {
                tracing::info!(%target, "keypad transfer to an unknown number");
                ctx.metrics
                    .keypad_transfers
                    .with_label_values(&["unknown_target"])
                    .inc();
            } else {
                tracing::info!(%target, "the agent transfers the caller (keypad)");
                ctx.metrics
                    .keypad_transfers
                    .with_label_values(&["transferred"])
                    .inc();
            }
            to
        }
    }
}

/// Send the bridged caller to another queue or agent: the agent's leg ends
/// (after the REFER's NOTIFY when `by_refer`, else with a BYE), the caller
/// hears "transferring" then hold music and is re-queued with its ticket
/// and priority.
#[allow(clippy::too_many_arguments)]
async fn transfer_caller(
    ctx: &CallContext,
    id: u64,
    to: TransferTarget,
    bridge: &mut Option<Bridge>,
    media: Option<&MediaSession>,
    ivr: &IvrCall,
    player: &mut Player,
    by_refer: bool,
) {
    let (Some(b), Some(m)) = (bridge.take(), media) else {
        return;
    };
    let leg = b.leg.clone();
    if by_refer {
        tokio::spawn(async move { leg.finish_transfer().await });
    } else {
        tokio::spawn(async move { leg.hangup().await });
    }
    drop(b);
    if let Err(e) = m.unbridge() {
        tracing::warn!(error = %e, "cannot play to the caller again");
    }
    let lang = ivr.language().to_string();
    player.token += 1;
    player.announced = false;
    m.play(
        ctx.prompt(&lang, "transferring").into_iter().collect(),
        player.token,
    );
    m.set_background(ctx.hold_music.clone());
    let how = if by_refer { "refer" } else { "keypad" };
    let kind = match &to {
        TransferTarget::Queue(_) => "queue",
        TransferTarget::Agent(_) => "agent",
    };
    ctx.metrics.transfers.with_label_values(&[how, kind]).inc();
    ctx.switchboard.transfer(id, to);
}

/// An offer being rung: one leg per registered contact of the agent.
struct Offer {
    agent: String,
    legs: Vec<AgentLeg>,
    failed: usize,
    port: Option<crate::media::ports::RtpPort>,
    signalling_ip: std::net::IpAddr,
}

impl Offer {
    async fn cancel(self) {
        for l in &self.legs {
            l.hangup().await;
        }
    }
}

/// A caller talking to an agent.
struct Bridge {
    leg: AgentLeg,
    media: MediaSession,
}

/// Ring the agent's phones with an offer of the caller's own codec (so the
/// bridge relays packets as they come, with no transcoding).
fn start_offer(
    ctx: &CallContext,
    id: u64,
    caller_sdp: Option<&sdp::Negotiated>,
    agent: String,
    targets: &[AgentTarget],
    ticket: Option<String>,
    events: &mpsc::UnboundedSender<(usize, AgentLegEvent)>,
) -> Option<Offer> {
    let fail = |reason| {
        ctx.switchboard.offer_failed(id, &agent, reason);
        None
    };
    let (Some(sip), Some(caller), Some(first)) = (ctx.sip.get(), caller_sdp, targets.first())
    else {
        return fail(OfferFailReason::Unreachable);
    };
    let Ok(port) = ctx.ports.allocate() else {
        return fail(OfferFailReason::Unreachable);
    };
    let local_ip = sip.local_ip_towards(first.source.ip());
    let mut ours = caller.clone();
    ours.media_lines.clear();
    ours.direction = sdp::Direction::SendRecv;
    let offer_sdp = sdp::build_answer(local_ip, port.port, &ours, id ^ 0x6167_656e);
    let ticket = ticket.unwrap_or_else(|| format!("call-{id}"));
    let headers = vec![
        ("X-Centralita-Ticket".to_string(), ticket.clone()),
        (
            "Call-Info".to_string(),
            format!(
                "<http://{}/calls/{id}>;purpose=info",
                ctx.http_addr
                    .get()
                    .copied()
                    .unwrap_or(ctx.config.http_listen)
            ),
        ),
    ];
    let (legs, mut rx) = ring(sip, targets, &offer_sdp, &headers, local_ip);
    let events = events.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if events.send(ev).is_err() {
                return;
            }
        }
    });
    if legs.is_empty() {
        return fail(OfferFailReason::Unreachable);
    }
    tracing::info!(%agent, contacts = legs.len(), %ticket, "ringing the agent");
    Some(Offer {
        agent,
        legs,
        failed: 0,
        port: Some(port),
        signalling_ip: first.source.ip(),
    })
}

/// The agent answered on leg `i`: cancel the other legs, start the agent's
/// media on the offer's port and bridge it with the caller's.
async fn connect_agent(
    ctx: &CallContext,
    id: u64,
    mut offer: Offer,
    i: usize,
    answer: &[u8],
    caller_media: Option<&MediaSession>,
    media_events: &mpsc::UnboundedSender<MediaEvent>,
) -> Option<Bridge> {
    for (j, l) in offer.legs.iter().enumerate() {
        if j != i {
            l.hangup().await;
        }
    }
    let leg = offer.legs.get(i)?.clone();
    let (Some(caller_media), Ok(n), Some(port)) =
        (caller_media, sdp::parse_answer(answer), offer.port.take())
    else {
        leg.hangup().await;
        return None;
    };
    let setup = SessionSetup {
        id: id | (1 << 63),
        port,
        peer: n.remote_rtp,
        signalling_ip: offer.signalling_ip,
        codec: n.codec,
        dtmf_pt: n.dtmf_pt,
        inband_dtmf: false,
        rtp_timeout: Duration::from_secs(u64::from(ctx.config.rtp_timeout_secs)),
        events: media_events.clone(),
    };
    let Ok(agent_media) = MediaSession::start(setup, &ctx.clock, &ctx.metrics) else {
        leg.hangup().await;
        return None;
    };
    MediaSession::bridge(
        caller_media,
        &agent_media,
        "caller_to_agent",
        "agent_to_caller",
        true,
    );
    tracing::info!(agent = %offer.agent, "caller and agent connected");
    Some(Bridge {
        leg,
        media: agent_media,
    })
}

/// What the ACD says to a queued caller, spoken. `Some` ends the call now.
fn on_queue_news(
    ctx: &CallContext,
    ivr: &IvrCall,
    media: Option<&MediaSession>,
    player: &mut Player,
    news: QueueNews,
) -> Option<CallOutcome> {
    let lang = ivr.language().to_string();
    let say = |names: &[String]| -> Vec<Arc<Prompt>> {
        names.iter().filter_map(|n| ctx.prompt(&lang, n)).collect()
    };
    let m = media?;
    match news {
        QueueNews::Announce {
            position,
            ewt_minutes,
        } => {
            let mut names = Vec::new();
            if !player.announced {
                // The first time: "all our technicians are busy, please hold".
                player.announced = true;
                names.push("queue_wait".to_string());
            }
            names.extend([
                "position_is".to_string(),
                format!("numbers/{}", position.min(99)),
            ]);
            names.push("estimated_wait".into());
            match ewt_minutes {
                0 => names.push("less_than_a_minute".into()),
                1 => names.extend(["numbers/1".to_string(), "minute".into()]),
                n => names.extend([format!("numbers/{}", n.min(99)), "minutes".into()]),
            }
            m.append(say(&names));
        }
        QueueNews::OfferCallback => m.append(say(&["callback_offer".to_string()])),
        // After what is playing (the queue's own prompt), then hang up.
        QueueNews::PlayAndHangup { prompt } => {
            player.hangup_when_done = true;
            m.set_background(None);
            m.append(say(&[prompt]));
        }
        QueueNews::Blocked => {
            player.hangup_when_done = true;
            m.set_background(None);
            m.append(say(&["no_agents".to_string()]));
        }
        QueueNews::Finished(outcome) => {
            tracing::debug!(outcome = outcome.label(), "left the queue")
        }
        // Handled by the call loop, which owns the agent legs.
        QueueNews::Offer { .. } | QueueNews::CancelOffer { .. } => {}
    }
    None
}

/// Answer a re-INVITE/UPDATE: keep the codec, follow a new address, mirror
/// hold. Err is the SIP status to refuse with.
fn reoffer(
    media: Option<&MediaSession>,
    call: &IncomingCall,
    sdp: Option<&[u8]>,
    session_id: u64,
    version: &mut u64,
) -> Result<Option<String>, u16> {
    let Some(m) = media else { return Err(491) };
    let Some(body) = sdp else {
        // A refresh without SDP (UPDATE) needs none back.
        return Ok(None);
    };
    let remote = sdp::parse_offer(body).map_err(|e| e.sip_status())?;
    let n = sdp::negotiate_with(&remote, &[m.codec]).map_err(|e| e.sip_status())?;
    m.set_peer(n.remote_rtp);
    *version += 1;
    Ok(Some(sdp::build_reanswer(
        call.local_ip,
        m.local_port,
        &n,
        session_id,
        *version,
    )))
}

fn on_digit(ctx: &CallContext, ivr: &mut IvrCall, digit: char, source: DigitSource) {
    ctx.metrics
        .dtmf_digits
        .with_label_values(&[source.as_str()])
        .inc();
    tracing::debug!(%digit, source = source.as_str(), "digit");
    ivr.handle_event(Instant::now(), IvrEvent::Digit(digit));
}

fn start_media(
    ctx: &CallContext,
    id: u64,
    signalling_ip: std::net::IpAddr,
    port: &mut Option<crate::media::ports::RtpPort>,
    n: &sdp::Negotiated,
    events: &mpsc::UnboundedSender<MediaEvent>,
) -> Option<MediaSession> {
    let port = port.take()?;
    let setup = SessionSetup {
        id,
        port,
        peer: n.remote_rtp,
        signalling_ip,
        codec: n.codec,
        dtmf_pt: n.dtmf_pt,
        inband_dtmf: ctx.config.inband_dtmf,
        rtp_timeout: Duration::from_secs(u64::from(ctx.config.rtp_timeout_secs)),
        events: events.clone(),
    };
    match MediaSession::start(setup, &ctx.clock, &ctx.metrics) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start media");
            None
        }
    }
}

/// The call's playback: the token of the current playlist, and whether to
/// hang up when it finishes; `queued` once the call is in an ACD queue.
struct Player {
    caller: IncomingCall,
    /// The queue the call waits in (after the IVR's queue action).
    queue: Option<(String, u8)>,
    token: u64,
    hangup_when_done: bool,
    announced: bool,
    queued: Option<mpsc::UnboundedSender<QueueNews>>,
    id: u64,
}

/// Carry out every pending IVR action; `Some(outcome)` ends the call.
async fn drain_ivr(
    ctx: &CallContext,
    ivr: &mut IvrCall,
    media: Option<&MediaSession>,
    player: &mut Player,
    leg: &CallLeg,
) -> Option<CallOutcome> {
    while let Some(action) = ivr.poll_action() {
        match action {
            IvrAction::Play {
                language, prompts, ..
            } => {
                let list: Vec<Arc<Prompt>> = prompts
                    .iter()
                    .filter_map(|p| ctx.prompt(&language, p))
                    .collect();
                player.token += 1;
                if let Some(m) = media {
                    m.play(list, player.token);
                }
            }
            IvrAction::StopPlayback => {
                player.token += 1;
                if let Some(m) = media {
                    m.stop_playback();
                }
            }
            IvrAction::EnteredMenu { menu } => {
                ctx.metrics
                    .ivr_menu_entries
                    .with_label_values(&[&menu])
                    .inc();
                tracing::debug!(%menu, "entered menu");
            }
            IvrAction::LanguageChosen { language } => tracing::debug!(%language, "language chosen"),
            IvrAction::FieldCollected { name, value } => {
                tracing::debug!(%name, %value, "field collected")
            }
            IvrAction::Queue {
                queue,
                priority,
                prompt,
            } => {
                ctx.metrics
                    .ivr_queue_requests
                    .with_label_values(&[&queue])
                    .inc();
                enter_queue(ctx, ivr, media, player, queue, priority, prompt);
            }
            IvrAction::RequestCallback {
                queue,
                number_field,
            } => {
                ctx.metrics
                    .ivr_callback_requests
                    .with_label_values(&[&queue])
                    .inc();
                // A number the caller typed goes out through the trunk; else
                // the caller is called back where its call came from.
                let typed = number_field
                    .as_ref()
                    .and_then(|f| ivr.fields().get(f))
                    .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
                let target = match (typed, ctx.config.callback_trunk()) {
                    (Some(number), Some(trunk)) => AgentTarget {
                        contact: trunk.uri_for(number),
                        source: trunk.addr,
                        over_tcp: false,
                    },
                    _ => AgentTarget {
                        contact: callback_contact(&player.caller),
                        source: player.caller.source,
                        over_tcp: false,
                    },
                };
                tracing::info!(%queue, contact = %target.contact, "callback requested");
                let ticket = ivr.fields().get("ticket").cloned();
                ctx.switchboard
                    .request_callback(player.id, &queue, 5, ticket, target);
            }
            IvrAction::Hangup { reason } => {
                tracing::debug!(%reason, "IVR hangs up");
                leg.hangup().await;
                return Some(CallOutcome::IvrHangup);
            }
        }
    }
    None
}

/// Hand the caller to the ACD: `prompt` (if any) then hold music while it
/// waits; its record shows the queue.
fn enter_queue(
    ctx: &CallContext,
    ivr: &IvrCall,
    media: Option<&MediaSession>,
    player: &mut Player,
    queue: String,
    priority: u8,
    prompt: Option<String>,
) {
    tracing::info!(%queue, priority, "queued");
    if let Some(m) = media {
        let lang = ivr.language().to_string();
        let list: Vec<Arc<Prompt>> = prompt.iter().filter_map(|p| ctx.prompt(&lang, p)).collect();
        player.token += 1;
        m.play(list, player.token);
        m.set_background(ctx.hold_music.clone());
    }
    ctx.live.update(player.id, |c| {
        c.state = "queued".into();
        c.queue = Some(queue.clone());
        c.priority = Some(priority);
        c.language = ivr.language().to_string();
        c.fields = ivr.fields().clone();
    });
    player.queue = Some((queue.clone(), priority));
    if let Some(news) = player.queued.clone() {
        let ticket = ivr.fields().get("ticket").cloned();
        ctx.switchboard
            .enqueue(player.id, &queue, priority, ticket, news);
    }
}

/// The queued caller pressed 9: keep the place, say so, hang up.
fn request_callback_while_queued(
    ctx: &CallContext,
    ivr: &IvrCall,
    media: Option<&MediaSession>,
    player: &mut Player,
) {
    let Some((queue, priority)) = player.queue.clone() else {
        return;
    };
    let target = AgentTarget {
        contact: callback_contact(&player.caller),
        source: player.caller.source,
        over_tcp: false,
    };
    ctx.metrics
        .ivr_callback_requests
        .with_label_values(&[&queue])
        .inc();
    let ticket = ivr.fields().get("ticket").cloned();
    ctx.switchboard
        .request_callback(player.id, &queue, priority, ticket, target);
    if let Some(m) = media {
        let lang = ivr.language().to_string();
        let prompts = ["callback_confirm", "goodbye"]
            .iter()
            .filter_map(|p| ctx.prompt(&lang, p))
            .collect();
        player.token += 1;
        player.hangup_when_done = true;
        m.set_background(None);
        m.play(prompts, player.token);
    }
}

/// Where to call a caller back: its From user at the address its INVITE came
/// from (never a host name from the message).
fn callback_contact(call: &IncomingCall) -> String {
    let user = call
        .from_uri
        .split_once("sip:")
        .map(|(_, r)| r)
        .and_then(|r| r.split(['@', '>', ';']).next())
        .filter(|u| {
            !u.is_empty()
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_.".contains(c))
        })
        .unwrap_or("caller");
    format!("sip:{user}@{}", call.source)
}

/// Ring every target with the same offer; their events come on one channel,
/// tagged with the target's index.
fn ring(
    sip: &SipStack,
    targets: &[AgentTarget],
    offer: &str,
    headers: &[(String, String)],
    local_ip: std::net::IpAddr,
) -> (
    Vec<AgentLeg>,
    mpsc::UnboundedReceiver<(usize, AgentLegEvent)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut legs = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match sip.invite_agent(t, offer.to_string(), headers.to_vec(), local_ip) {
            Ok((leg, mut events)) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(ev) = events.recv().await {
                        if tx.send((i, ev)).is_err() {
                            return;
                        }
                    }
                });
                legs.push(leg);
            }
            Err(e) => tracing::info!(contact = %t.contact, error = %e, "cannot ring"),
        }
    }
    (legs, rx)
}

async fn hang_up_all(legs: &[AgentLeg]) {
    for l in legs {
        l.hangup().await;
    }
}

/// Callbacks whose turn has come, from the switchboard: one task each.
pub async fn run_callbacks(ctx: Arc<CallContext>, mut jobs: mpsc::UnboundedReceiver<CallbackJob>) {
    while let Some(job) = jobs.recv().await {
        let task_ctx = Arc::clone(&ctx);
        ctx.tracker.spawn(async move {
            let call = job.call;
            tracing::info!(call, agent = %job.agent, "calling back: the agent first");
            run_callback(&task_ctx, job).await;
            tracing::info!(call, "callback over");
        });
    }
}

/// Wait for one answer among `legs`; `None` if all failed or the job was
/// withdrawn (the legs are then hung up).
async fn first_answer(
    ctx: &CallContext,
    legs: &[AgentLeg],
    events: &mut mpsc::UnboundedReceiver<(usize, AgentLegEvent)>,
    cancel: &mut mpsc::UnboundedReceiver<()>,
) -> Option<(usize, Vec<u8>)> {
    let mut failed = 0;
    loop {
        tokio::select! {
            _ = cancel.recv() => break,
            _ = ctx.shutdown.cancelled() => break,
            ev = events.recv() => match ev {
                Some((i, AgentLegEvent::Answered { sdp })) => {
                    for (j, l) in legs.iter().enumerate() {
                        if j != i {
                            l.hangup().await;
                        }
                    }
                    return Some((i, sdp));
                }
                Some((_, AgentLegEvent::Failed { .. })) => {
                    failed += 1;
                    if failed >= legs.len() {
                        return None;
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    hang_up_all(legs).await;
    None
}

/// Call the agent, then the customer, and bridge them (callback in queue).
async fn run_callback(ctx: &CallContext, mut job: CallbackJob) {
    let id = job.call;
    let (Some(sip), Some(first)) = (ctx.sip.get().cloned(), job.agent_targets.first().cloned())
    else {
        ctx.switchboard
            .offer_failed(id, &job.agent, OfferFailReason::Unreachable);
        return;
    };
    let (Ok(agent_port), Ok(customer_port)) = (ctx.ports.allocate(), ctx.ports.allocate()) else {
        ctx.switchboard
            .offer_failed(id, &job.agent, OfferFailReason::Unreachable);
        return;
    };
    let ticket = job.ticket.clone().unwrap_or_else(|| format!("call-{id}"));
    let headers = vec![
        ("X-Centralita-Ticket".to_string(), ticket),
        ("X-Centralita-Callback".to_string(), "yes".to_string()),
    ];
    // 1. The agent.
    let local_ip = sip.local_ip_towards(first.source.ip());
    let offer = sdp::build_offer(local_ip, agent_port.port, id ^ 0x6362_6167);
    let (legs, mut events) = ring(&sip, &job.agent_targets, &offer, &headers, local_ip);
    let answered = first_answer(ctx, &legs, &mut events, &mut job.cancel).await;
    let (Some((i, answer)), false) = (answered, legs.is_empty()) else {
        ctx.switchboard
            .offer_failed(id, &job.agent, OfferFailReason::NoAnswer);
        return;
    };
    let Some(agent_leg) = legs.get(i).cloned() else {
        return;
    };
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let agent_media = sdp::parse_answer(&answer).ok().and_then(|n| {
        let setup = SessionSetup {
            id: id | (1 << 62),
            port: agent_port,
            peer: n.remote_rtp,
            signalling_ip: first.source.ip(),
            codec: n.codec,
            dtmf_pt: n.dtmf_pt,
            inband_dtmf: false,
            rtp_timeout: Duration::from_secs(u64::from(ctx.config.rtp_timeout_secs)),
            events: media_tx.clone(),
        };
        MediaSession::start(setup, &ctx.clock, &ctx.metrics)
            .ok()
            .map(|m| (m, n))
    });
    let Some((agent_media, agent_sdp)) = agent_media else {
        agent_leg.hangup().await;
        ctx.switchboard
            .offer_failed(id, &job.agent, OfferFailReason::Rejected);
        return;
    };
    ctx.switchboard.agent_answered(id, &job.agent);
    agent_media.set_background(ctx.hold_music.clone());
    // 2. The customer, at the address its call came from, in the agent's codec.
    let customer_ip = sip.local_ip_towards(job.customer.source.ip());
    let mut ours = agent_sdp.clone();
    ours.media_lines.clear();
    ours.direction = sdp::Direction::SendRecv;
    let offer = sdp::build_answer(customer_ip, customer_port.port, &ours, id ^ 0x6362_6375);
    ctx.take_line();
    let (customer_legs, mut customer_events) =
        ring(&sip, &[job.customer.clone()], &offer, &headers, customer_ip);
    let answered = first_answer(ctx, &customer_legs, &mut customer_events, &mut job.cancel).await;
    let customer = answered.and_then(|(_, answer)| {
        let n = sdp::parse_answer(&answer).ok()?;
        let setup = SessionSetup {
            id: id | (1 << 61),
            port: customer_port,
            peer: n.remote_rtp,
            signalling_ip: job.customer.source.ip(),
            codec: n.codec,
            dtmf_pt: n.dtmf_pt,
            inband_dtmf: false,
            rtp_timeout: Duration::from_secs(u64::from(ctx.config.rtp_timeout_secs)),
            events: media_tx.clone(),
        };
        MediaSession::start(setup, &ctx.clock, &ctx.metrics).ok()
    });
    let (Some(customer_media), Some(customer_leg)) = (customer, customer_legs.first().cloned())
    else {
        hang_up_all(&customer_legs).await;
        agent_leg.hangup().await;
        ctx.drop_line();
        ctx.switchboard.callback_result(id, false);
        return;
    };
    MediaSession::bridge(
        &customer_media,
        &agent_media,
        "caller_to_agent",
        "agent_to_caller",
        false,
    );
    ctx.switchboard.callback_result(id, true);
    tracing::info!(call = id, agent = %job.agent, "callback connected");
    // 3. Talking, until either side hangs up (or the audio stops).
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            ev = events.recv() => if matches!(ev, Some((_, AgentLegEvent::Ended(_))) | None) { break },
            ev = customer_events.recv() => if matches!(ev, Some((_, AgentLegEvent::Ended(_))) | None) { break },
            ev = media_rx.recv() => if matches!(ev, Some(MediaEvent::RtpTimeout) | None) { break },
        }
    }
    agent_leg.hangup().await;
    customer_leg.hangup().await;
    ctx.drop_line();
    ctx.switchboard.caller_gone(id);
}
