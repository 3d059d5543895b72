//! The adapter between rsipstack and the rest of centralita. It runs the
//! rsipstack endpoint on top of the socket front, answers the requests that
//! are not calls (OPTIONS, methods we do not serve, in-dialog requests for
//! dialogs that do not exist), and turns each new INVITE into the project's
//! own [`IncomingCall`] + [`CallLeg`] + [`LegEvent`]s. Nothing outside
//! `src/sip` sees an rsipstack type.

use super::accounts::{header_values, Accounts, Authenticated};
use super::front::Front;
use super::guard::{CallSlot, InviteVerdict};
use crate::metrics::Metrics;
use rsipstack::dialog::dialog::{Dialog, DialogState, TerminatedReason, TransactionHandle};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, Method, StatusCode};
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{udp::UdpConnection, SipAddr, TransportLayer};
use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A new call, in the project's terms.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    pub call_id: String,
    /// The Request-URI user: the number dialed.
    pub dialed: String,
    /// The caller's From URI (personal data: log at debug only).
    pub from_uri: String,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// The address to write into Contact and SDP for this caller.
    pub local_ip: IpAddr,
    /// The SDP offer, if the INVITE carried one.
    pub offer: Option<Vec<u8>>,
    /// The agent (by id) whose digest credentials the INVITE carried: for
    /// numbers only agents may dial (feature codes, agents' extensions),
    /// and for any call from an agent's registered phone (a consultation).
    pub agent: Option<String>,
}

/// What happens on a call's SIP leg.
#[derive(Debug)]
pub enum LegEvent {
    /// The ACK arrived; its body is the SDP answer when we made the offer.
    Confirmed { ack_body: Option<Vec<u8>> },
    /// A SIP INFO (DTMF relay); answer it with [`InfoReply::reply`].
    Info {
        content_type: String,
        body: Vec<u8>,
        reply: InfoReply,
    },
    /// A re-INVITE (`invite`) or UPDATE (hold, a new address, a session
    /// refresh): answer it with [`OfferReply`].
    Reoffer {
        sdp: Option<Vec<u8>>,
        invite: bool,
        reply: OfferReply,
    },
    /// A REFER: its target and the Call-ID its `Replaces` names (see
    /// [`AgentLegEvent::Refer`]).
    Refer {
        target: String,
        replaces: Option<String>,
        reply: ReferReply,
    },
    /// The leg is over.
    Ended(LegEnd),
}

/// Answers a re-INVITE or UPDATE.
#[derive(Debug)]
pub struct OfferReply(TransactionHandle);

impl OfferReply {
    /// 200 OK, with our SDP when there is one.
    pub async fn accept(self, sdp: Option<String>) {
        let headers = sdp
            .as_ref()
            .map(|_| vec![Header::ContentType("application/sdp".into())]);
        let _ = self
            .0
            .respond(StatusCode::OK, headers, sdp.map(String::into_bytes))
            .await;
    }

    pub async fn reject(self, status: u16) {
        let _ = self.0.reply(StatusCode::from(status)).await;
    }
}

/// Why a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    CallerBye,
    Cancelled,
    OurBye,
    Timeout,
    Other(u16),
}

/// Answers an in-dialog request.
#[derive(Debug)]
pub struct InfoReply(TransactionHandle);

impl InfoReply {
    pub async fn reply(self, status: u16) {
        let _ = self.0.reply(StatusCode::from(status)).await;
    }
}

/// The caller's leg, as the call sees it.
#[derive(Clone)]
pub struct CallLeg {
    dialog: InviteDialog,
}

impl CallLeg {
    /// 180 Ringing.
    pub fn ringing(&self) {
        let _ = self.dialog.ringing(None, None);
    }

    /// 200 OK with our SDP; retransmitted by rsipstack until the ACK.
    pub fn answer(&self, sdp: String) -> bool {
        let headers = vec![Header::ContentType("application/sdp".into())];
        self.dialog
            .accept(Some(headers), Some(sdp.into_bytes()))
            .is_ok()
    }

    /// A final error response before the answer.
    pub fn reject(&self, status: u16) {
        let _ = self.dialog.reject(Some(StatusCode::from(status)), None);
    }

    /// BYE (or CANCEL-equivalent for an unanswered call).
    pub async fn hangup(&self) {
        let _ = self.dialog.hangup().await;
    }

    /// Its REFER is done: NOTIFY (sipfrag 200), then BYE.
    pub async fn finish_transfer(&self) {
        notify_refer(&self.dialog, StatusCode::OK, "terminated;reason=noresource").await;
        if let Err(e) = self.dialog.hangup().await {
            tracing::debug!(error = %e, "BYE after transfer");
        }
    }

    /// Its REFER failed: NOTIFY (sipfrag `status`); the leg stays up.
    pub async fn transfer_failed(&self, status: u16) {
        let state = "terminated;reason=rejected";
        notify_refer(&self.dialog, StatusCode::from(status), state).await;
    }
}

/// NOTIFY a REFER's progress on `dialog` once the REFER's 202 is out
/// (rsipstack puts the dialog back to Confirmed only then; bounded, 1 s).
async fn notify_refer(dialog: &InviteDialog, status: StatusCode, state: &str) {
    for _ in 0..100 {
        if matches!(dialog.state(), DialogState::Confirmed(..)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Err(e) = dialog.notify_refer(status, state).await {
        tracing::debug!(error = %e, "NOTIFY of a REFER");
    }
}

/// What happens on an agent leg (an INVITE we send to an agent's phone).
#[derive(Debug)]
pub enum AgentLegEvent {
    /// 180/183 from the phone.
    Ringing,
    /// 200 OK: the phone's SDP answer.
    Answered { sdp: Vec<u8> },
    /// A final error (486 busy, 603 declined, 408…); 0 if no response came.
    Failed { status: u16 },
    /// The agent's phone asks to transfer the caller (REFER): the user part
    /// of its Refer-To (a queue's name or an agent's SIP user), and the
    /// Call-ID its `Replaces` names (an attended transfer, RFC 3891).
    Refer {
        target: String,
        replaces: Option<String>,
        reply: ReferReply,
    },
    /// A re-INVITE (`invite`) or UPDATE from the agent's phone (hold,
    /// resume, a new address, a session refresh): answer it with
    /// [`OfferReply`].
    Reoffer {
        sdp: Option<Vec<u8>>,
        invite: bool,
        reply: OfferReply,
    },
    /// The phone's answer to our re-INVITE ([`AgentLeg::reoffer`]).
    ReofferAnswered(Result<Vec<u8>, u16>),
    /// The established leg ended (BYE from the agent, or ours).
    Ended(LegEnd),
}

/// Answers a REFER.
#[derive(Debug)]
pub struct ReferReply(TransactionHandle);

impl ReferReply {
    pub async fn accept(self) {
        let _ = self.0.reply(StatusCode::Accepted).await;
    }

    pub async fn reject(self, status: u16) {
        let _ = self.0.reply(StatusCode::from(status)).await;
    }
}

/// Where to reach an agent's phone: its registered Contact, sent to the
/// address the REGISTER came from (NAT), over UDP or TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTarget {
    pub contact: String,
    pub source: SocketAddr,
    pub over_tcp: bool,
}

/// Why an INVITE to an agent's phone (or a callback's customer) could not
/// be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("not a SIP URI: {uri:?}")]
    BadUri { uri: String },
    #[error("cannot send the INVITE: {reason}")]
    Send { reason: String },
}

/// A leg to an agent's phone.
#[derive(Clone)]
pub struct AgentLeg {
    dialog: InviteDialog,
}

impl AgentLeg {
    /// Tell the transferring phone the transfer is done (NOTIFY, sipfrag
    /// 200) and end the leg. rsipstack puts the dialog back to Confirmed
    /// only once the REFER's 202 is out, so the BYE waits for that (bounded).
    pub async fn finish_transfer(&self) {
        self.wait_confirmed().await;
        if let Err(e) = self
            .dialog
            .notify_refer(StatusCode::OK, "terminated;reason=noresource")
            .await
        {
            tracing::debug!(error = %e, "NOTIFY after transfer");
        }
        self.wait_confirmed().await;
        if let Err(e) = self.dialog.bye().await {
            tracing::debug!(error = %e, "BYE after transfer");
        }
    }

    /// Tell the transferring phone the transfer failed (NOTIFY, sipfrag
    /// `status`); the leg stays up.
    pub async fn transfer_failed(&self, status: u16) {
        self.wait_confirmed().await;
        let state = "terminated;reason=rejected";
        if let Err(e) = self
            .dialog
            .notify_refer(StatusCode::from(status), state)
            .await
        {
            tracing::debug!(error = %e, "NOTIFY after a refused transfer");
        }
    }

    /// rsipstack puts the dialog back to Confirmed only once the REFER's
    /// 202 is out; what follows waits for that (bounded, 1 s).
    async fn wait_confirmed(&self) {
        for _ in 0..100 {
            if matches!(self.dialog.state(), DialogState::Confirmed(..)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// CANCEL while ringing, BYE once answered.
    pub async fn hangup(&self) {
        let _ = self.dialog.hangup().await;
    }

    /// The leg's SIP Call-ID (a REFER's `Replaces` may name it).
    pub fn call_id(&self) -> String {
        self.dialog.id().call_id
    }

    /// Re-INVITE the phone with our offer: its SDP answer, or the error
    /// status (0 when no answer came). A 491 (glare) is retried once after
    /// RFC 3261's random 2.1-4 s; a phone that never answers is given up
    /// after 64·T1.
    pub async fn reoffer(&self, sdp: String) -> Result<Vec<u8>, u16> {
        let headers = vec![Header::ContentType("application/sdp".into())];
        let reinvite =
            self.dialog
                .reinvite_with_glare_retry(Some(headers), Some(sdp.into_bytes()), 2);
        match tokio::time::timeout(REOFFER_TIMEOUT, reinvite).await {
            Ok(Ok(Some(resp))) => match u16::from(resp.status_code.clone()) {
                200 => Ok(resp.body().clone()),
                status => Err(status),
            },
            Ok(Ok(None)) | Ok(Err(_)) => Err(0),
            Err(_) => Err(408),
        }
    }
}

/// Dialogs at once (callers' and agents' legs): past it new calls get 503.
/// Calls are bounded by the lines long before; this bounds what a flood
/// of INVITEs could make while each waits to be refused.
const MAX_DIALOGS: usize = 20_000;

/// How long a re-INVITE of ours waits for the phone's answer (64·T1).
const REOFFER_TIMEOUT: Duration = Duration::from_secs(32);

/// Receives the calls the adapter accepted.
pub trait CallHandler: Send + Sync + 'static {
    /// A new INVITE passed the SIP checks. The handler owns the call from
    /// here: it must answer or reject `leg`.
    fn incoming(&self, call: IncomingCall, leg: CallLeg, events: mpsc::UnboundedReceiver<LegEvent>);
    /// Whether the dialed number is one we answer (else 404).
    fn knows_number(&self, dialed: &str) -> bool;
    /// Whether only an authenticated agent may dial it (feature codes,
    /// agents' extensions).
    fn needs_agent(&self, dialed: &str) -> bool;
    /// Whether a new call to `dialed` is refused at once, 503 with
    /// Retry-After, because no ticket could be opened for it now.
    fn refuses_for_now(&self, dialed: &str) -> bool;
}

/// Settings the adapter needs.
#[derive(Clone, Debug)]
pub struct StackOptions {
    pub advertise: Option<IpAddr>,
    pub user_agent: String,
    /// Requests from these User-Agents (lower-case substrings) are dropped.
    pub refuse_user_agents: Vec<String>,
    pub retry_after_secs: u32,
    /// Shortened RFC 3261 timers (tests); `None` for the standard ones.
    pub t1: Option<Duration>,
    /// While overloaded, new calls are refused with 503.
    pub overload: Arc<crate::server::overload::Overload>,
    /// Limits per source and per account.
    pub guard: Arc<super::guard::Guard>,
}

/// The running SIP side.
pub struct SipStack {
    pub local_addr: SocketAddr,
    /// Ours, towards the agents (advertise, listen address, or routing).
    front: Arc<Front>,
    advertise: Option<IpAddr>,
    overload: Arc<crate::server::overload::Overload>,
    dialogs: Arc<DialogLayer>,
    cancel: CancellationToken,
}

/// Refuses every host name: centralita never resolves a name taken from a
/// message (DNS is not a dependency of answering calls).
struct NoDns;

#[async_trait::async_trait]
impl rsipstack::transport::transport_layer::DomainResolver for NoDns {
    async fn resolve(&self, target: &SipAddr) -> rsipstack::Result<SipAddr> {
        Err(rsipstack::Error::TransportLayerError(
            "host names are not resolved".into(),
            target.clone(),
        ))
    }
}

/// The SIP port, UDP and TCP alike. With port 0 the system picks the UDP
/// port, which a TCP socket (a client's connection, say) may already hold:
/// then another port is tried, a bounded number of times.
async fn bind_udp_and_tcp(
    listen: SocketAddr,
) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let mut tries = 0;
    loop {
        let socket = tokio::net::UdpSocket::bind(listen).await?;
        let local_addr = socket.local_addr()?;
        match tokio::net::TcpListener::bind(local_addr).await {
            Ok(tcp) => return Ok((socket, tcp)),
            Err(e)
                if listen.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tries < 32 =>
            {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

impl SipStack {
    /// Bind the SIP port and start the front, rsipstack and the adapter.
    pub async fn start(
        listen: SocketAddr,
        opts: StackOptions,
        metrics: Metrics,
        handler: Arc<dyn CallHandler>,
        accounts: Arc<Accounts>,
        cancel: CancellationToken,
    ) -> std::io::Result<SipStack> {
        let (socket, tcp) = bind_udp_and_tcp(listen).await?;
        let local_addr = socket.local_addr()?;
        let via_from_route = opts.advertise.is_none() && local_addr.ip().is_unspecified();
        let (front, front_socket) = Front::new(
            socket,
            metrics.clone(),
            via_from_route,
            Arc::clone(&opts.overload),
            opts.refuse_user_agents.clone(),
            Arc::clone(&opts.guard),
            opts.t1
                .map_or(super::front::TCP_MESSAGE_TIMEOUT, |t1| t1 * 64),
        );
        let stack_cancel = cancel.child_token();

        let transport_layer =
            TransportLayer::new_with_domain_resolver(stack_cancel.clone(), Box::new(NoDns));
        let external = opts
            .advertise
            .map(|ip| SocketAddr::new(ip, local_addr.port()))
            .or((!local_addr.ip().is_unspecified()).then_some(local_addr));
        let conn = UdpConnection::from_socket(
            Arc::new(front_socket),
            external,
            Some(stack_cancel.clone()),
        )
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        transport_layer.add_transport(conn.into());

        let mut option = EndpointOption::default();
        if let Some(t1) = opts.t1 {
            option.t1 = t1;
            option.t1x64 = t1 * 64;
            option.t2 = t1 * 8;
            option.t4 = t1 * 10;
        }
        option.callid_suffix = Some("centralita".into());
        let endpoint = rsipstack::EndpointBuilder::new()
            .with_cancel_token(stack_cancel.clone())
            .with_transport_layer(transport_layer)
            .with_user_agent(&opts.user_agent)
            .with_option(option)
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        front.attach(endpoint.inner.clone());

        tokio::spawn(Arc::clone(&front).run_tcp(tcp, endpoint.inner.clone(), stack_cancel.clone()));
        tokio::spawn(Arc::clone(&front).run_udp(stack_cancel.clone()));
        tokio::spawn(async move { endpoint.serve().await });
        tokio::spawn(Arc::clone(&accounts).run_expiry(stack_cancel.clone()));
        let front_for_stack = Arc::clone(&front);
        let opts_advertise = opts.advertise;
        let opts_overload = Arc::clone(&opts.overload);
        let adapter = Adapter {
            accounts,
            front,
            dialogs: Arc::clone(&dialogs),
            handler,
            opts,
            local_addr,
            metrics: metrics.clone(),
        };
        tokio::spawn(adapter.run(incoming, stack_cancel.clone()));
        Ok(SipStack {
            local_addr,
            front: Arc::clone(&front_for_stack),
            advertise: opts_advertise,
            overload: Arc::clone(&opts_overload),
            dialogs,
            cancel: stack_cancel,
        })
    }

    /// INVITE an agent's phone with our SDP offer and extra headers (the
    /// ticket, the Call-Info link). Its progress comes on the returned channel.
    pub fn invite_agent(
        &self,
        target: &AgentTarget,
        sdp: String,
        headers: Vec<(String, String)>,
        local_ip: IpAddr,
    ) -> Result<(AgentLeg, mpsc::UnboundedReceiver<AgentLegEvent>), InviteError> {
        let bad = |uri: &str| InviteError::BadUri {
            uri: uri.to_string(),
        };
        let callee = rsipstack::sip::Uri::try_from(target.contact.as_str())
            .map_err(|_| bad(&target.contact))?;
        let me = SocketAddr::new(local_ip, self.local_addr.port());
        let contact = format!(
            "sip:centralita@{me}{}",
            if target.over_tcp {
                ";transport=tcp"
            } else {
                ""
            }
        );
        let contact = rsipstack::sip::Uri::try_from(contact.as_str()).map_err(|_| bad(&contact))?;
        let caller = rsipstack::sip::Uri::try_from(format!("sip:centralita@{me}").as_str())
            .map_err(|_| bad("our own address"))?;
        let transport = if target.over_tcp {
            rsipstack::sip::Transport::Tcp
        } else {
            rsipstack::sip::Transport::Udp
        };
        let opt = rsipstack::dialog::invitation::InviteOption {
            caller,
            callee,
            destination: Some(SipAddr {
                r#type: Some(transport),
                addr: target.source.into(),
            }),
            content_type: Some("application/sdp".into()),
            offer: Some(sdp.into_bytes()),
            contact,
            headers: Some(
                headers
                    .into_iter()
                    .map(|(k, v)| Header::Other(k, v))
                    .collect(),
            ),
            ..Default::default()
        };
        let (state_tx, state_rx) = self.dialogs.new_dialog_state_channel();
        let (dialog, result) =
            self.dialogs
                .do_invite_async(opt, state_tx)
                .map_err(|e| InviteError::Send {
                    reason: e.to_string(),
                })?;
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        tokio::spawn(watch_agent_leg(
            dialog.clone(),
            Arc::clone(&self.dialogs),
            state_rx,
            result,
            ev_tx,
        ));
        Ok((AgentLeg { dialog }, ev_rx))
    }

    /// The address to write into Contact/SDP for a peer.
    pub fn local_ip_towards(&self, peer: IpAddr) -> IpAddr {
        self.advertise
            .or((!self.local_addr.ip().is_unspecified()).then(|| self.local_addr.ip()))
            .or_else(|| self.front.local_ip_towards(peer))
            .unwrap_or(self.local_addr.ip())
    }

    /// From now on, new calls get 503 with Retry-After.
    pub fn stop_accepting(&self) {
        self.overload.start_draining();
    }

    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// Stop the endpoint and the front (transaction timers are abandoned).
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

struct Adapter {
    accounts: Arc<Accounts>,
    front: Arc<Front>,
    dialogs: Arc<DialogLayer>,
    handler: Arc<dyn CallHandler>,
    opts: StackOptions,
    local_addr: SocketAddr,
    metrics: Metrics,
}

impl Adapter {
    async fn run(
        self,
        mut incoming: rsipstack::transaction::TransactionReceiver,
        cancel: CancellationToken,
    ) {
        let this = Arc::new(self);
        loop {
            let tx = tokio::select! {
                _ = cancel.cancelled() => return,
                tx = incoming.recv() => match tx {
                    Some(tx) => tx,
                    None => return,
                },
            };
            let this = Arc::clone(&this);
            tokio::spawn(async move { this.on_transaction(tx).await });
        }
    }

    async fn on_transaction(&self, mut tx: Transaction) {
        let method = tx.original.method;
        if let Some(Dialog::Invite(mut d)) = self.dialogs.match_dialog(&tx) {
            // In-dialog: the dialog answers (BYE, INFO, re-INVITE…) and
            // reports it on the call's state channel.
            let _ = d.handle(&mut tx).await;
            return;
        }
        let has_to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some();
        match method {
            Method::Invite if has_to_tag => reply(&mut tx, 481, vec![]).await,
            Method::Invite => self.on_invite(tx).await,
            Method::Options => {
                let headers = vec![
                    ("Allow", super::raw::ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", ""),
                ];
                reply(&mut tx, 200, headers).await
            }
            Method::Register => {
                let (source, over_tcp) = peer_of(&tx);
                let source = source.unwrap_or(self.local_addr);
                self.accounts.on_register(&mut tx, source, over_tcp).await
            }
            Method::Ack => {}
            Method::Bye | Method::Info | Method::Update | Method::PRack | Method::Cancel => {
                reply(&mut tx, 481, vec![]).await
            }
            _ => reply(&mut tx, 405, vec![("Allow", super::raw::ALLOW)]).await,
        }
    }

    async fn on_invite(&self, mut tx: Transaction) {
        // Limits per source first: a flood is refused before it costs more.
        let (source, _) = peer_of(&tx);
        let source = source.unwrap_or(self.local_addr);
        let slot = match self.opts.guard.admit_invite(source.ip()) {
            InviteVerdict::Admit(slot) => slot,
            InviteVerdict::Refuse { retry_after_secs } => {
                let ra = retry_after_secs.to_string();
                return reply(&mut tx, 503, vec![("Retry-After", ra.as_str())]).await;
            }
            InviteVerdict::Silence => return,
        };
        let req = &tx.original;
        let dialed = req.uri.user().unwrap_or_default().to_string();
        // Shutting down, or overloaded (agents' feature codes are still
        // taken then: they are cheap and keep the agents' state right).
        let overloaded = self.opts.overload.is_overloaded() && !self.handler.needs_agent(&dialed);
        if self.opts.overload.is_draining() || overloaded {
            if overloaded {
                self.metrics
                    .call_ended(crate::metrics::CallOutcome::Unavailable);
            }
            let ra = self.opts.retry_after_secs.to_string();
            return reply(&mut tx, 503, vec![("Retry-After", ra.as_str())]).await;
        }
        let req = &tx.original;
        if !self.handler.knows_number(&dialed) {
            return reply(&mut tx, 404, vec![]).await;
        }
        if self.handler.refuses_for_now(&dialed) {
            self.metrics
                .call_ended(crate::metrics::CallOutcome::Unavailable);
            let ra = self.opts.retry_after_secs.to_string();
            return reply(&mut tx, 503, vec![("Retry-After", ra.as_str())]).await;
        }
        let content_type = req.header_value("Content-Type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let offer = if req.body().is_empty() {
            None
        } else if content_type.as_deref() == Some("application/sdp") {
            Some(req.body().clone())
        } else {
            return reply(&mut tx, 415, vec![("Accept", "application/sdp")]).await;
        };
        if let Some(accept) = req.header_value("Accept") {
            let ok = accept.split(',').any(|a| {
                let a = a
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                a == "application/sdp" || a == "application/*" || a == "*/*"
            });
            if !ok {
                return reply(&mut tx, 406, vec![("Accept", "application/sdp")]).await;
            }
        }
        let from_user = req
            .from_header()
            .ok()
            .and_then(|f| f.uri().ok())
            .and_then(|u| u.user().map(str::to_string))
            .unwrap_or_default();
        // An agent's own phone is asked who it is whatever it dials: its
        // call may be a consultation about the call it holds.
        let from_agent =
            self.accounts
                .from_agent_phone(&from_user, source, std::time::Instant::now());
        let agent = if self.handler.needs_agent(&dialed) || from_agent {
            let authz = header_values(req, "Authorization").into_iter().next();
            let ua = header_values(req, "User-Agent").into_iter().next();
            match self.accounts.authenticate(
                "INVITE",
                authz.as_deref(),
                ua.as_deref(),
                source,
                std::time::Instant::now(),
            ) {
                Authenticated::Agent(a) => Some(a),
                Authenticated::Challenge(ch) => {
                    let headers: Vec<(&str, &str)> = ch
                        .iter()
                        .map(|v| ("WWW-Authenticate", v.as_str()))
                        .collect();
                    return reply(&mut tx, 401, headers).await;
                }
                Authenticated::Forbidden => return reply(&mut tx, 403, vec![]).await,
            }
        } else {
            None
        };
        let req = &tx.original;
        let local_ip = self
            .opts
            .advertise
            .or((!self.local_addr.ip().is_unspecified()).then(|| self.local_addr.ip()))
            .or_else(|| self.front.local_ip_towards(source.ip()))
            .unwrap_or(self.local_addr.ip());
        let over_tcp = tx
            .connection
            .as_ref()
            .is_some_and(|c| c.get_addr().r#type == Some(rsipstack::sip::Transport::Tcp));
        let contact = format!(
            "sip:centralita@{}{}",
            SocketAddr::new(local_ip, self.local_addr.port()),
            if over_tcp { ";transport=tcp" } else { "" }
        );
        let contact = rsipstack::sip::Uri::try_from(contact.as_str()).ok();
        let call_id = req
            .call_id_header()
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        let from_uri = req
            .from_header()
            .map(|f| f.value().to_string())
            .unwrap_or_default();

        if self.dialogs.len() >= MAX_DIALOGS {
            self.metrics
                .limits_hit
                .with_label_values(&["dialogs"])
                .inc();
            let ra = self.opts.retry_after_secs.to_string();
            return reply(&mut tx, 503, vec![("Retry-After", ra.as_str())]).await;
        }
        let (state_tx, state_rx) = self.dialogs.new_dialog_state_channel();
        let dialog = match self
            .dialogs
            .get_or_create_server_invite(&tx, state_tx, None, contact)
        {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "cannot create dialog");
                return reply(&mut tx, 400, vec![]).await;
            }
        };
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        tokio::spawn(watch_dialog(
            dialog.clone(),
            Arc::clone(&self.dialogs),
            state_rx,
            ev_tx,
            slot,
        ));
        let call = IncomingCall {
            call_id,
            dialed,
            from_uri,
            source,
            local_ip,
            offer,
            agent,
        };
        self.handler.incoming(
            call,
            CallLeg {
                dialog: dialog.clone(),
            },
            ev_rx,
        );
        // Drive the INVITE server transaction: 100 Trying, our responses,
        // their retransmissions, the ACK or a CANCEL.
        let mut d = dialog;
        let _ = d.handle(&mut tx).await;
    }
}

/// Where a transaction's request came from, and whether over TCP.
fn peer_of(tx: &Transaction) -> (Option<SocketAddr>, bool) {
    let Some(c) = tx.connection.as_ref() else {
        return (None, false);
    };
    let over_tcp = c.get_addr().r#type == Some(rsipstack::sip::Transport::Tcp);
    let addr = c.get_remote_addr().and_then(|a| a.get_socketaddr().ok());
    (addr, over_tcp)
}

async fn reply(tx: &mut Transaction, status: u16, headers: Vec<(&str, &str)>) {
    let headers = headers
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| Header::Other(k.to_string(), v.to_string()))
        .collect();
    let _ = tx.reply_with(StatusCode::from(status), headers, None).await;
}

/// Follow an agent leg: provisional responses from the dialog's states, the
/// final one from the INVITE's result, then its end.
async fn watch_agent_leg(
    dialog: InviteDialog,
    dialogs: Arc<DialogLayer>,
    mut states: rsipstack::dialog::dialog::DialogStateReceiver,
    result: rsipstack::platform::JoinHandle<rsipstack::dialog::invitation::InviteAsyncResult>,
    events: mpsc::UnboundedSender<AgentLegEvent>,
) {
    let mut result = Box::pin(result);
    let mut answered = false;
    let mut finished = false;
    loop {
        tokio::select! {
            r = &mut result, if !finished => {
                finished = true;
                match r {
                    Ok(Ok((_, Some(resp)))) if u16::from(resp.status_code.clone()) == 200 => {
                        answered = true;
                        let _ = events.send(AgentLegEvent::Answered { sdp: resp.body().clone() });
                    }
                    Ok(Ok((_, Some(resp)))) => {
                        let _ = events.send(AgentLegEvent::Failed { status: u16::from(resp.status_code.clone()) });
                        dialogs.remove_dialog(&dialog.id());
                        return;
                    }
                    _ => {
                        let _ = events.send(AgentLegEvent::Failed { status: 0 });
                        dialogs.remove_dialog(&dialog.id());
                        return;
                    }
                }
            }
            st = states.recv() => match st {
                None => return,
                Some(DialogState::Early(..)) => {
                    let _ = events.send(AgentLegEvent::Ringing);
                }
                Some(DialogState::Info(_, _, handle)) | Some(DialogState::Options(_, _, handle)) => {
                    let _ = handle.reply(StatusCode::OK).await;
                }
                Some(DialogState::Refer(_, req, handle)) => {
                    let refer_to = req.header_value("Refer-To").unwrap_or_default();
                    let (target, replaces) = parse_refer_to(&refer_to);
                    let _ = events.send(AgentLegEvent::Refer { target, replaces, reply: ReferReply(handle) });
                }
                Some(DialogState::Updated(_, req, handle)) => {
                    let body = req.body().clone();
                    let sdp = (!body.is_empty()).then_some(body);
                    let invite = req.method == Method::Invite;
                    let _ = events.send(AgentLegEvent::Reoffer { sdp, invite, reply: OfferReply(handle) });
                }
                Some(DialogState::Notify(_, _, handle))
                | Some(DialogState::Message(_, _, handle))
                | Some(DialogState::Publish(_, _, handle)) => {
                    let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                }
                Some(DialogState::Terminated(id, reason)) => {
                    if answered || finished {
                        let end = match reason {
                            TerminatedReason::UasBye | TerminatedReason::UacBye => LegEnd::CallerBye,
                            TerminatedReason::Timeout => LegEnd::Timeout,
                            _ => LegEnd::Other(0),
                        };
                        let _ = events.send(AgentLegEvent::Ended(end));
                        dialogs.remove_dialog(&id);
                        return;
                    }
                }
                Some(_) => {}
            },
        }
    }
}

/// A Refer-To value's target (the URI's user part: a queue's name or
/// number, an agent's SIP user or extension) and the Call-ID named by its
/// `Replaces` header parameter, if any (`?Replaces=<call-id>%3Bto-tag%3D…`,
/// RFC 3891 §6.1). Hand-written: a few lines of percent-decoding.
pub fn parse_refer_to(value: &str) -> (String, Option<String>) {
    let uri = value
        .trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default();
    let target = uri
        .split([';', '?'])
        .next()
        .and_then(|u| u.split_once(':'))
        .and_then(|(_, rest)| rest.split('@').next())
        .unwrap_or_default()
        .to_string();
    let replaces = uri
        .split_once('?')
        .map(|(_, headers)| headers)
        .into_iter()
        .flat_map(|h| h.split('&'))
        .filter_map(|h| h.split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("replaces"))
        .map(|(_, v)| percent_decode(v))
        .and_then(|v| {
            let call_id = v.split(';').next().unwrap_or_default().trim().to_string();
            (!call_id.is_empty()).then_some(call_id)
        });
    (target, replaces)
}

/// `%XX` escapes decoded (a bad escape is kept as written).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Translate one dialog's state changes into [`LegEvent`]s until it ends.
async fn watch_dialog(
    dialog: InviteDialog,
    dialogs: Arc<DialogLayer>,
    mut states: rsipstack::dialog::dialog::DialogStateReceiver,
    events: mpsc::UnboundedSender<LegEvent>,
    // The source's call under the limits, given back when the dialog ends.
    _slot: Option<CallSlot>,
) {
    let mut confirmed = false;
    while let Some(state) = states.recv().await {
        match state {
            DialogState::Confirmed(..) if !confirmed => {
                confirmed = true;
                let ack_body = dialog
                    .last_remote_ack()
                    .map(|a| a.body().clone())
                    .filter(|b| !b.is_empty());
                let _ = events.send(LegEvent::Confirmed { ack_body });
            }
            DialogState::Info(_, req, handle) => {
                let content_type = req.header_value("Content-Type").unwrap_or_default();
                let _ = events.send(LegEvent::Info {
                    content_type,
                    body: req.body().clone(),
                    reply: InfoReply(handle),
                });
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Updated(_, req, handle) => {
                let body = req.body().clone();
                let sdp = (!body.is_empty()).then_some(body);
                let invite = req.method == Method::Invite;
                let _ = events.send(LegEvent::Reoffer {
                    sdp,
                    invite,
                    reply: OfferReply(handle),
                });
            }
            DialogState::Refer(_, req, handle) => {
                let refer_to = req.header_value("Refer-To").unwrap_or_default();
                let (target, replaces) = parse_refer_to(&refer_to);
                let _ = events.send(LegEvent::Refer {
                    target,
                    replaces,
                    reply: ReferReply(handle),
                });
            }
            DialogState::Notify(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::MethodNotAllowed).await;
            }
            DialogState::Terminated(id, reason) => {
                let end = match reason {
                    TerminatedReason::UacBye => LegEnd::CallerBye,
                    TerminatedReason::UacCancel => LegEnd::Cancelled,
                    TerminatedReason::UasBye => LegEnd::OurBye,
                    TerminatedReason::Timeout => LegEnd::Timeout,
                    TerminatedReason::UasOther(s)
                    | TerminatedReason::UacOther(s)
                    | TerminatedReason::ProxyError(s) => LegEnd::Other(u16::from(s)),
                    _ => LegEnd::Other(0),
                };
                let _ = events.send(LegEvent::Ended(end));
                dialogs.remove_dialog(&id);
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_refer_to;

    #[test]
    fn a_blind_refer_to_names_its_target_only() {
        assert_eq!(
            parse_refer_to("<sip:202@10.0.0.1:5060>"),
            ("202".to_string(), None)
        );
        assert_eq!(
            parse_refer_to("sip:hardware@10.0.0.1;transport=udp"),
            ("hardware".to_string(), None)
        );
    }

    #[test]
    fn an_attended_refer_to_names_the_replaced_call_id_percent_decoded() {
        let v = "<sip:303@127.0.0.1:5060?Replaces=consult-1%40phone%3Bto-tag%3Dab%3Bfrom-tag%3Dcd>";
        assert_eq!(
            parse_refer_to(v),
            ("303".to_string(), Some("consult-1@phone".to_string()))
        );
        // Other header parameters, lower case, a bad escape kept as written.
        let v = "<sip:carmen@h?Require=replaces&replaces=x%zz%3Bfrom-tag%3D1>";
        assert_eq!(
            parse_refer_to(v),
            ("carmen".to_string(), Some("x%zz".to_string()))
        );
        // An empty Replaces names nothing.
        assert_eq!(parse_refer_to("<sip:303@h?Replaces=>").1, None);
    }
}
