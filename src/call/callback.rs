//! A callback whose turn has come (callback in queue): ring the agent's
//! phones first, then the customer at the address its call came from (or
//! the number it typed, through the trunk), in the agent's codec, and
//! bridge them until either side hangs up. The ACD decided when; the
//! switchboard claimed the customer's line ([`CallbackJob::line`]); this
//! task reports how it went (`agent_answered`, `callback_result`,
//! `offer_failed`, `caller_gone`).

use super::driver::{ring, CallContext};
use super::{LegId, LegRole, SdpSession};
use crate::acd::driver::CallbackJob;
use crate::acd::{CallId, OfferFailReason};
use crate::media::ports::RtpPort;
use crate::media::sdp::{self, Negotiated};
use crate::media::{MediaEvent, MediaSession, SessionSetup};
use crate::sip::{AgentLeg, AgentLegEvent, AgentTarget};
use crate::tickets::{
    CallChange, CallKey, CallOutcome, CallPhase, Millis, TicketNumber, Write, Written,
};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

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

/// Legs rung with one offer, their events tagged by index, and the RTP
/// port the answering leg's media takes.
struct Placed {
    legs: Vec<AgentLeg>,
    events: mpsc::UnboundedReceiver<(usize, AgentLegEvent)>,
    port: Option<RtpPort>,
    signalling_ip: IpAddr,
}

/// One leg answered, with its media up.
struct Connected {
    leg: AgentLeg,
    media: MediaSession,
    sdp: Negotiated,
}

/// The callback's call on its ticket: each step written (and committed)
/// before the next one is taken.
struct Ticket<'a> {
    ctx: &'a CallContext,
    call: Option<CallKey>,
}

impl Ticket<'_> {
    /// Open the attempt's call on the ticket the caller's call was on.
    async fn open<'a>(ctx: &'a CallContext, job: &CallbackJob) -> Ticket<'a> {
        let ticket = job.ticket.as_deref().and_then(TicketNumber::parse);
        let call = match ticket {
            Some(ticket) => {
                let w = Write::Callback {
                    ticket,
                    at: Millis::now(),
                    agent: job.agent.clone(),
                };
                match ctx.store.write(w).await {
                    Ok(Written::Opened(o)) => Some(o.call),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "the callback was not kept in its ticket");
                        None
                    }
                }
            }
            None => None,
        };
        Ticket { ctx, call }
    }

    async fn note(&self, change: CallChange, entry: String) {
        let Some(call) = self.call else { return };
        let w = Write::Call {
            call,
            at: Millis::now(),
            change: Box::new(change),
            entry,
        };
        if let Err(e) = self.ctx.store.write(w).await {
            tracing::warn!(error = %e, "a step of the callback was not kept in its ticket");
        }
    }

    /// The attempt failed (`offer`: how the agent's offer ended, if it did).
    async fn failed(&self, offer: Option<&str>, entry: String) {
        let change = CallChange {
            offer_ended: offer.map(str::to_string),
            ended: Some((CallOutcome::CallbackFailed, "centralita".into())),
            ..CallChange::default()
        };
        self.note(change, entry).await;
    }
}

/// Call the agent, then the customer, and bridge them.
async fn run_callback(ctx: &CallContext, mut job: CallbackJob) {
    let (id, sb) = (job.call, &ctx.switchboard);
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let headers = headers(&job);
    let ticket = Ticket::open(ctx, &job).await;
    // 1. The agent, with our offer.
    let agent_leg = LegId {
        call: CallId(id),
        role: LegRole::CallbackAgent,
    };
    let Some(mut agent_side) = place(ctx, &job.agent_targets, &headers, None, agent_leg) else {
        let entry = format!(
            "The callback failed: {}'s phone could not be reached.",
            job.agent
        );
        ticket.failed(Some("unreachable"), entry).await;
        return sb.offer_failed(id, &job.agent, OfferFailReason::Unreachable);
    };
    let Some(agent) = answered(ctx, &mut agent_side, &mut job.cancel, &media_tx).await else {
        let entry = format!("The callback failed: {} did not answer.", job.agent);
        ticket.failed(Some("no_answer"), entry).await;
        return sb.offer_failed(id, &job.agent, OfferFailReason::NoAnswer);
    };
    let change = CallChange {
        answered_by: Some(job.agent.clone()),
        ..CallChange::default()
    };
    let entry = format!("{} answered; calling the customer.", job.agent);
    ticket.note(change, entry).await;
    sb.agent_answered(id, &job.agent);
    agent.media.set_background(ctx.hold_music.clone());
    // 2. The customer, at the address its call came from, in the agent's codec.
    let customer_leg = LegId {
        call: CallId(id),
        role: LegRole::CallbackCustomer,
    };
    let targets = [job.customer.clone()];
    let mut customer_side = place(ctx, &targets, &headers, Some(&agent.sdp), customer_leg);
    let customer = match customer_side.as_mut() {
        Some(side) => answered(ctx, side, &mut job.cancel, &media_tx).await,
        None => None,
    };
    let (Some(customer), Some(mut customer_side)) = (customer, customer_side) else {
        let entry = "The callback failed: the customer did not answer.".to_string();
        ticket.failed(None, entry).await;
        agent.leg.hangup().await;
        return sb.callback_result(id, false);
    };
    let change = CallChange {
        phase: Some(CallPhase::Talking),
        ..CallChange::default()
    };
    let entry = format!(
        "The customer answered: {} and the customer talk.",
        job.agent
    );
    ticket.note(change, entry).await;
    MediaSession::bridge(
        &customer.media,
        &agent.media,
        "caller_to_agent",
        "agent_to_caller",
        false,
    );
    sb.callback_result(id, true);
    tracing::info!(call = id, agent = %job.agent, "callback connected");
    // 3. Talking, until either side hangs up (or the audio stops).
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            ev = agent_side.events.recv() => if ended(&ev) { break },
            ev = customer_side.events.recv() => if ended(&ev) { break },
            ev = media_rx.recv() => if matches!(ev, Some(MediaEvent::RtpTimeout) | None) { break },
        }
    }
    let change = CallChange {
        ended: Some((CallOutcome::CallbackDone, "centralita".into())),
        ..CallChange::default()
    };
    ticket.note(change, "The callback ended.".into()).await;
    agent.leg.hangup().await;
    customer.leg.hangup().await;
    drop(job.line);
    sb.caller_gone(id);
}

fn ended(ev: &Option<(usize, AgentLegEvent)>) -> bool {
    matches!(ev, Some((_, AgentLegEvent::Ended(_))) | None)
}

fn headers(job: &CallbackJob) -> Vec<(String, String)> {
    let ticket = job
        .ticket
        .clone()
        .unwrap_or_else(|| format!("call-{}", job.call));
    vec![
        ("X-Centralita-Ticket".to_string(), ticket),
        ("X-Centralita-Callback".to_string(), "yes".to_string()),
    ]
}

/// Ring `targets` with our offer, or (`like`) with an offer in that
/// negotiated codec. `None` when no leg could be placed.
fn place(
    ctx: &CallContext,
    targets: &[AgentTarget],
    headers: &[(String, String)],
    like: Option<&Negotiated>,
    leg: LegId,
) -> Option<Placed> {
    let sip = ctx.sip.get()?;
    let first = targets.first()?;
    let port = ctx.ports.allocate().ok()?;
    let local_ip = sip.local_ip_towards(first.source.ip());
    let session = SdpSession::for_leg(leg);
    let offer = match like {
        Some(n) => {
            let mut ours = n.clone();
            ours.media_lines.clear();
            ours.direction = sdp::Direction::SendRecv;
            sdp::build_answer(local_ip, port.port, &ours, session.id)
        }
        None => sdp::build_offer(local_ip, port.port, session.id),
    };
    let rung = ring(sip, targets, &offer, headers, local_ip);
    if rung.is_empty() {
        return None;
    }
    let (tx, events) = mpsc::unbounded_channel();
    let mut legs = Vec::new();
    for (i, (leg, mut evs)) in rung.into_iter().enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = evs.recv().await {
                if tx.send((i, ev)).is_err() {
                    return;
                }
            }
        });
        legs.push(leg);
    }
    Some(Placed {
        legs,
        events,
        port: Some(port),
        signalling_ip: first.source.ip(),
    })
}

/// Wait for one of the placed legs to answer and start its media; the
/// others are hung up. `None` if all failed, the answer was unusable, or
/// the job was withdrawn (every leg is hung up then).
async fn answered(
    ctx: &CallContext,
    side: &mut Placed,
    cancel: &mut mpsc::UnboundedReceiver<()>,
    media_tx: &mpsc::UnboundedSender<MediaEvent>,
) -> Option<Connected> {
    let Some((i, answer)) = first_answer(ctx, side, cancel).await else {
        for l in &side.legs {
            l.hangup().await;
        }
        return None;
    };
    for (j, l) in side.legs.iter().enumerate() {
        if j != i {
            l.hangup().await;
        }
    }
    let leg = side.legs.get(i)?.clone();
    let media = sdp::parse_answer(&answer).ok().and_then(|n| {
        let setup = SessionSetup {
            port: side.port.take()?,
            peer: n.remote_rtp,
            signalling_ip: side.signalling_ip,
            codec: n.codec,
            dtmf_pt: n.dtmf_pt,
            inband_dtmf: false,
            rtp_timeout: ctx.rtp_timeout(),
            events: media_tx.clone(),
        };
        let m = MediaSession::start(setup, &ctx.clock, &ctx.metrics).ok()?;
        Some((m, n))
    });
    match media {
        Some((media, sdp)) => Some(Connected { leg, media, sdp }),
        None => {
            leg.hangup().await;
            None
        }
    }
}

/// The index and SDP of the first leg to answer; `None` if every leg
/// failed, the job was withdrawn, or the controller is stopping.
async fn first_answer(
    ctx: &CallContext,
    side: &mut Placed,
    cancel: &mut mpsc::UnboundedReceiver<()>,
) -> Option<(usize, Vec<u8>)> {
    let mut failed = 0;
    loop {
        tokio::select! {
            _ = cancel.recv() => return None,
            _ = ctx.shutdown.cancelled() => return None,
            ev = side.events.recv() => match ev {
                Some((i, AgentLegEvent::Answered { sdp })) => return Some((i, sdp)),
                Some((_, AgentLegEvent::Failed { .. })) => {
                    failed += 1;
                    if failed >= side.legs.len() {
                        return None;
                    }
                }
                Some(_) => {}
                None => return None,
            },
        }
    }
}
