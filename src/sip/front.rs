//! The socket front: owns the SIP UDP socket and TCP listener, looks at every
//! message before rsipstack does, and answers or drops what rsipstack would
//! drop silently (garbage, unknown methods, bad framing, wrong version…),
//! counting each. What passes is handed to rsipstack through [`FrontSocket`],
//! our implementation of its UDP socket seam, so rsipstack keeps its real
//! UDP transaction behaviour (retransmissions, absorbing repeats).
//!
//! Every response goes to the source address and port of the request (the
//! Via gets `received`/`rport`), never to a host named in a message.

use super::raw::{self, FrontError, StartLine};
use crate::metrics::Metrics;
use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the branch of a request we sent stays known, so its responses
/// are let through; responses to anything else are stray and dropped.
const CLIENT_BRANCH_TTL: Duration = Duration::from_secs(300);
/// At most this many branches are remembered (the oldest go first).
const CLIENT_BRANCH_CAP: usize = 1_000_000;

/// Transactions rsipstack may hold (running and finished, kept ~32 s to
/// absorb retransmissions): past it, new out-of-dialog requests get 503
/// from the front, without a transaction. ~1000 calls/s make ~160,000.
const MAX_TRANSACTIONS: usize = 300_000;
/// TCP connections at once, in all and from one address.
const MAX_TCP_CONNECTIONS: usize = 4096;
const MAX_TCP_PER_SOURCE: usize = 64;
/// A connection must complete its first message, and then any message it
/// starts, within this time (half-open and slow-drip connections close):
/// 64·T1, as long as a transaction waits.
pub const TCP_MESSAGE_TIMEOUT: Duration = Duration::from_secs(32);

/// Branches of the requests we sent, forgotten after [`CLIENT_BRANCH_TTL`]
/// in the order they were sent: O(1) per request however many there are
/// (under load there are hundreds of thousands within the TTL).
#[derive(Default)]
struct ClientBranches {
    known: std::collections::HashSet<String>,
    order: std::collections::VecDeque<(Instant, String)>,
}

impl ClientBranches {
    fn remember(&mut self, branch: &str, now: Instant) {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_duration_since(*t) < CLIENT_BRANCH_TTL
                && self.order.len() < CLIENT_BRANCH_CAP
            {
                break;
            }
            if let Some((_, b)) = self.order.pop_front() {
                self.known.remove(&b);
            }
        }
        // A retransmission keeps its first time (the branch is already known).
        if self.known.insert(branch.to_string()) {
            self.order.push_back((now, branch.to_string()));
        }
    }
}

/// Shared state of the front.
pub struct Front {
    socket: Arc<UdpSocket>,
    to_stack: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    /// Told how far behind the stack is.
    overload: Arc<crate::server::overload::Overload>,
    metrics: Metrics,
    client_branches: Mutex<ClientBranches>,
    local_addrs: Mutex<HashMap<IpAddr, IpAddr>>,
    /// Listening on 0.0.0.0 with no `advertise`: the Via of each request we
    /// send names the local address towards its destination, never an
    /// interface rsipstack guessed.
    via_from_route: bool,
    /// User-Agent substrings of SIP scanners, whose requests are dropped.
    scanners: Vec<String>,
    /// Limits per source: a banned source's requests are dropped here.
    guard: Arc<super::guard::Guard>,
    /// When each source was last logged for a drop (warn once a period).
    logged: Mutex<LogOnce>,
    /// rsipstack's endpoint, once built: its transaction count.
    endpoint: std::sync::OnceLock<Arc<EndpointInner>>,
    /// Open TCP connections by source address.
    tcp_connections: Mutex<HashMap<IpAddr, usize>>,
    /// See [`TCP_MESSAGE_TIMEOUT`] (shorter with tests' shortened T1).
    tcp_message_timeout: Duration,
}

/// Which sources were logged lately: a bounded map, so that a flood of
/// sources cannot grow it (when full, entries older than the period go;
/// if none has, the new source is not logged and the drop is only
/// counted).
#[derive(Default)]
struct LogOnce {
    last: HashMap<IpAddr, Instant>,
}

impl LogOnce {
    const PERIOD: Duration = Duration::from_secs(60);
    const CAP: usize = 4096;

    /// Whether `src` should be logged now.
    fn first_in_period(&mut self, src: IpAddr, now: Instant) -> bool {
        if let Some(t) = self.last.get(&src) {
            if now.saturating_duration_since(*t) < Self::PERIOD {
                return false;
            }
        }
        if self.last.len() >= Self::CAP && !self.last.contains_key(&src) {
            self.last
                .retain(|_, t| now.saturating_duration_since(*t) < Self::PERIOD);
            if self.last.len() >= Self::CAP {
                return false;
            }
        }
        self.last.insert(src, now);
        true
    }
}

/// One TCP connection counted against the caps, given back when dropped.
struct TcpPermit {
    front: Arc<Front>,
    ip: IpAddr,
}

impl TcpPermit {
    fn take(front: &Arc<Front>, ip: IpAddr) -> Option<TcpPermit> {
        let mut m = front.tcp_connections.lock().ok()?;
        let total: usize = m.values().sum();
        let mine = m.get(&ip).copied().unwrap_or(0);
        if total >= MAX_TCP_CONNECTIONS || mine >= MAX_TCP_PER_SOURCE {
            return None;
        }
        *m.entry(ip).or_insert(0) += 1;
        Some(TcpPermit {
            front: Arc::clone(front),
            ip,
        })
    }
}

impl Drop for TcpPermit {
    fn drop(&mut self) {
        if let Ok(mut m) = self.front.tcp_connections.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

/// The front's decision about one message.
enum Verdict<'a> {
    Forward(std::borrow::Cow<'a, [u8]>),
    Reply(Vec<u8>),
    Drop,
}

/// A Content-Length problem: over a stream the next message's start is lost.
fn is_framing_error(e: &FrontError) -> bool {
    matches!(e, FrontError::Refuse { detail, .. } if detail.contains("Content-Length"))
}

/// rsipstack's end of the front: reads what the front let through, sends
/// through the real socket (counting what goes out).
pub struct FrontSocket {
    front: Arc<Front>,
    from_front: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
}

impl Front {
    /// Wrap a bound UDP socket. Returns the front and the socket rsipstack reads.
    pub fn new(
        socket: UdpSocket,
        metrics: Metrics,
        via_from_route: bool,
        overload: Arc<crate::server::overload::Overload>,
        scanners: Vec<String>,
        guard: Arc<super::guard::Guard>,
        tcp_message_timeout: Duration,
    ) -> (Arc<Front>, FrontSocket) {
        let (tx, rx) = mpsc::channel(4096);
        let front = Arc::new(Front {
            socket: Arc::new(socket),
            to_stack: tx,
            overload,
            metrics,
            client_branches: Mutex::new(ClientBranches::default()),
            local_addrs: Mutex::new(HashMap::new()),
            via_from_route,
            scanners,
            guard,
            logged: Mutex::new(LogOnce::default()),
            endpoint: std::sync::OnceLock::new(),
            tcp_connections: Mutex::new(HashMap::new()),
            tcp_message_timeout,
        });
        let fs = FrontSocket {
            front: Arc::clone(&front),
            from_front: tokio::sync::Mutex::new(rx),
        };
        (front, fs)
    }

    /// Give the front rsipstack's endpoint (for its transaction count).
    pub fn attach(&self, endpoint: Arc<EndpointInner>) {
        let _ = self.endpoint.set(endpoint);
    }

    /// Whether rsipstack holds as many transactions as it may.
    fn transactions_full(&self) -> bool {
        self.endpoint.get().is_some_and(|e| {
            let s = e.get_stats();
            s.running_transactions + s.finished_transactions >= MAX_TRANSACTIONS
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Read datagrams until cancelled.
    pub async fn run_udp(self: Arc<Self>, cancel: CancellationToken) {
        let mut buf = vec![0u8; 65536];
        loop {
            let (len, src) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(error = %e, "udp recv error");
                        continue;
                    }
                },
            };
            self.on_datagram(&buf[..len], src).await;
        }
    }

    async fn on_datagram(&self, data: &[u8], src: SocketAddr) {
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            // RFC 5626 keep-alive: a CRLFCRLF ping gets a CRLF pong.
            if data == b"\r\n\r\n" {
                let _ = self.socket.send_to(b"\r\n", src).await;
            }
            return;
        }
        let msg = match raw::split(data, true) {
            Ok(m) => m,
            Err(FrontError::Unframed(reason)) | Err(FrontError::DropResponse(reason)) => {
                tracing::debug!(%src, reason, "dropped unframed datagram");
                self.metrics.dropped("unparsable");
                return;
            }
            Err(FrontError::Refuse { .. }) => {
                self.metrics.dropped("unparsable");
                return;
            }
        };
        match self.examine(&data[..msg.framed_len], &msg, src) {
            Verdict::Forward(bytes) => self.forward(&bytes, src).await,
            Verdict::Reply(resp) => self.send_counted(&resp, src).await,
            Verdict::Drop => {}
        }
    }

    /// What to do with one framed message: hand it to rsipstack (possibly
    /// normalised), answer it ourselves, or drop it — counting each.
    fn examine<'a>(
        &self,
        framed: &'a [u8],
        msg: &raw::RawMessage<'_>,
        src: SocketAddr,
    ) -> Verdict<'a> {
        match msg.start {
            StartLine::Response { code, .. } => {
                let method = msg.cseq_method().unwrap_or("?");
                if msg.problem.is_some() || rsipstack::sip::SipMessage::try_from(framed).is_err() {
                    self.metrics.dropped("malformed_response");
                    return Verdict::Drop;
                }
                if !msg.top_branch().is_some_and(|b| self.is_client_branch(b)) {
                    self.metrics.dropped("stray_response");
                    return Verdict::Drop;
                }
                self.metrics
                    .sip_responses
                    .with_label_values(&[method_label(method), class_label(code), "in"])
                    .inc();
                Verdict::Forward(std::borrow::Cow::Borrowed(framed))
            }
            StartLine::Request { method, .. } => {
                self.metrics
                    .sip_requests
                    .with_label_values(&[method_label(method), "in"])
                    .inc();
                if self.guard.is_banned(src.ip()) {
                    // Banned (see `sip::limits`): not a word back.
                    self.metrics.dropped("banned");
                    return Verdict::Drop;
                }
                if raw::from_scanner(msg, &self.scanners) {
                    // No answer at all: a scanner learns nothing here.
                    self.metrics.dropped("scanner");
                    let first = self
                        .logged
                        .lock()
                        .is_ok_and(|mut l| l.first_in_period(src.ip(), Instant::now()));
                    if first {
                        let ua = msg
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("user-agent"))
                            .map(|h| h.value.to_string())
                            .unwrap_or_default();
                        tracing::warn!(
                            source = %src.ip(),
                            user_agent = %crate::text::Untrusted(&ua),
                            "a SIP scanner's requests are dropped (logged once a minute per source)"
                        );
                    }
                    return Verdict::Drop;
                }
                let out_of_dialog = !msg
                    .first("To")
                    .is_some_and(|to| to.to_ascii_lowercase().contains(";tag="));
                if out_of_dialog && method != "ACK" && self.transactions_full() {
                    // Calls up keep working (in-dialog requests pass); new
                    // ones wait until transactions finish.
                    self.metrics
                        .limits_hit
                        .with_label_values(&["transactions"])
                        .inc();
                    let mut resp = raw::build_response(
                        msg,
                        503,
                        "Service Unavailable",
                        &[("Retry-After", "5")],
                    );
                    add_received(&mut resp, src);
                    return Verdict::Reply(resp);
                }
                match raw::check_request(msg).and_then(|()| for_stack(framed, msg)) {
                    Ok(bytes) => Verdict::Forward(bytes),
                    Err(FrontError::Refuse {
                        status,
                        reason,
                        detail,
                    }) => {
                        if method == "ACK" {
                            self.metrics.dropped("malformed_ack");
                            return Verdict::Drop;
                        }
                        tracing::debug!(%src, status, detail = %crate::text::Untrusted(&detail), "refused request");
                        let mut resp = raw::build_refusal(msg, status, reason, &detail);
                        add_received(&mut resp, src);
                        self.metrics
                            .sip_refused
                            .with_label_values(&[&status.to_string()])
                            .inc();
                        Verdict::Reply(resp)
                    }
                    Err(_) => {
                        self.metrics.dropped("unparsable");
                        Verdict::Drop
                    }
                }
            }
        }
    }

    /// Accept TCP connections on the SIP port until cancelled.
    pub async fn run_tcp(
        self: Arc<Self>,
        listener: TcpListener,
        layer: Arc<EndpointInner>,
        cancel: CancellationToken,
    ) {
        loop {
            let (stream, peer) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(error = %e, "tcp accept error");
                        continue;
                    }
                },
            };
            let Some(permit) = TcpPermit::take(&self, peer.ip()) else {
                // Too many connections (in all, or from this address).
                self.metrics
                    .limits_hit
                    .with_label_values(&["tcp_connections"])
                    .inc();
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let front = Arc::clone(&self);
            let layer = Arc::clone(&layer);
            let cancel = cancel.child_token();
            tokio::spawn(async move {
                front.serve_tcp(stream, peer, layer, cancel).await;
                drop(permit);
            });
        }
    }

    /// One TCP connection: frame messages by Content-Length, examine each
    /// like a datagram, and give rsipstack an in-memory connection whose
    /// writes come back to this stream.
    async fn serve_tcp(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        endpoint: Arc<EndpointInner>,
        cancel: CancellationToken,
    ) {
        let layer = &endpoint.transport_layer;
        let (mut rd, mut wr) = stream.into_split();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<TransportEvent>();
        let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let remote = SipAddr {
            r#type: Some(Transport::Tcp),
            addr: peer.into(),
        };
        let Ok(conn) = ChannelConnection::create_connection(
            in_rx,
            out_tx,
            remote.clone(),
            Some(cancel.clone()),
        )
        .await
        else {
            return;
        };
        let conn = SipConnection::Channel(conn);
        layer.add_connection(conn.clone());

        // The writer ends when the reader drops `raw_tx` (after anything the
        // front queued, such as a 400 before a close, has been written).
        let writer_front = Arc::clone(&self);
        let writer = tokio::spawn(async move {
            loop {
                let bytes = tokio::select! {
                    biased;
                    b = raw_rx.recv() => match b {
                        Some(b) => b,
                        None => break,
                    },
                    ev = out_rx.recv() => match ev {
                        Some(TransportEvent::Incoming(msg, _, _)) => {
                            let b = msg.to_bytes();
                            writer_front.count_out(&b);
                            b.to_vec()
                        }
                        Some(_) => continue,
                        None => break,
                    },
                };
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });

        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 16384];
        // When the message being read (or the first) must be complete by.
        let mut due = Some(tokio::time::Instant::now() + self.tcp_message_timeout);
        'read: loop {
            let n = tokio::select! {
                _ = cancel.cancelled() => break,
                _ = async {
                    match due {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    // Half-open, or a message dripped too slowly: close.
                    self.metrics
                        .limits_hit
                        .with_label_values(&[if buf.is_empty() { "tcp_connections" } else { "tcp_buffer" }])
                        .inc();
                    break;
                }
                r = rd.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                // Keep-alives between messages (RFC 5626): CRLFCRLF gets CRLF.
                let lead = buf
                    .iter()
                    .take_while(|b| **b == b'\r' || **b == b'\n')
                    .count();
                if lead > 0 {
                    if buf.starts_with(b"\r\n\r\n") {
                        let _ = raw_tx.send(b"\r\n".to_vec());
                    }
                    buf.drain(..lead);
                }
                if buf.is_empty() {
                    break;
                }
                let msg = match raw::split(&buf, false) {
                    Ok(m) => m,
                    Err(FrontError::Unframed(_)) if buf.len() < raw::MAX_MESSAGE_BYTES => break,
                    Err(FrontError::Unframed(_)) => {
                        // No message fits what was sent: past the size limit.
                        self.metrics
                            .limits_hit
                            .with_label_values(&["tcp_buffer"])
                            .inc();
                        break 'read;
                    }
                    Err(_) => {
                        self.metrics.dropped("unparsable");
                        break 'read;
                    }
                };
                let framed_len = msg.framed_len;
                let verdict = self.examine(&buf[..framed_len], &msg, peer);
                match verdict {
                    Verdict::Forward(bytes) => {
                        match rsipstack::sip::SipMessage::try_from(bytes.as_ref()) {
                            Ok(parsed) => {
                                // Via gets received/rport; if it cannot, keep the message as parsed.
                                let m = SipConnection::update_msg_received(
                                    parsed.clone(),
                                    peer,
                                    Transport::Tcp,
                                )
                                .unwrap_or(parsed);
                                if in_tx
                                    .send(TransportEvent::Incoming(m, conn.clone(), remote.clone()))
                                    .is_err()
                                {
                                    break 'read;
                                }
                            }
                            Err(_) => self.metrics.dropped("unparsable"),
                        }
                    }
                    Verdict::Reply(resp) => {
                        let _ = raw_tx.send(resp);
                    }
                    Verdict::Drop => {}
                }
                if msg.problem.as_ref().is_some_and(is_framing_error) {
                    // The stream's framing is lost (bad Content-Length): close.
                    break 'read;
                }
                buf.drain(..framed_len);
            }
            // A message begun must be finished in time; between messages a
            // connection may stay idle (a registered phone's keeps it open).
            due = match (due, buf.is_empty()) {
                (_, true) => None,
                (Some(d), false) => Some(d),
                (None, false) => Some(tokio::time::Instant::now() + self.tcp_message_timeout),
            };
        }
        drop(in_tx);
        drop(raw_tx);
        cancel.cancel();
        let _ = writer.await;
        layer.remove_connection(&conn);
    }

    async fn forward(&self, bytes: &[u8], src: SocketAddr) {
        if self.to_stack.send((bytes.to_vec(), src)).await.is_err() {
            self.metrics.dropped("stack_stopped");
        }
        self.overload
            .note_sip_backlog(self.to_stack.max_capacity() - self.to_stack.capacity());
    }

    fn is_client_branch(&self, branch: &str) -> bool {
        self.client_branches
            .lock()
            .map(|m| m.known.contains(branch))
            .unwrap_or(false)
    }

    fn remember_client_branch(&self, branch: &str) {
        if let Ok(mut m) = self.client_branches.lock() {
            m.remember(branch, Instant::now());
        }
    }

    /// Send bytes, counting requests and responses by method and class.
    async fn send_counted(&self, bytes: &[u8], dst: SocketAddr) {
        self.count_out(bytes);
        if let Err(e) = self.socket.send_to(bytes, dst).await {
            tracing::debug!(%dst, error = %e, "udp send failed");
        }
    }

    /// Count an outgoing message; remember the branch of a request we send
    /// so its responses are recognised.
    fn count_out(&self, bytes: &[u8]) {
        if let Ok(m) = raw::split(bytes, true) {
            match m.start {
                StartLine::Request { method, .. } => {
                    if let Some(b) = m.top_branch() {
                        self.remember_client_branch(b);
                    }
                    self.metrics
                        .sip_requests
                        .with_label_values(&[method_label(method), "out"])
                        .inc();
                }
                StartLine::Response { code, .. } => {
                    let method = m.cseq_method().unwrap_or("?");
                    self.metrics
                        .sip_responses
                        .with_label_values(&[method_label(method), class_label(code), "out"])
                        .inc();
                }
            }
        }
    }

    /// The local address that packets to `peer` leave from — by asking the
    /// kernel's routing (a connected UDP socket), never by guessing an
    /// interface. Cached per peer address.
    pub fn local_ip_towards(&self, peer: IpAddr) -> Option<IpAddr> {
        if let Ok(m) = self.local_addrs.lock() {
            if let Some(ip) = m.get(&peer) {
                return Some(*ip);
            }
        }
        let bind: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .ok()?;
        let probe = std::net::UdpSocket::bind(bind).ok()?;
        probe.connect(SocketAddr::new(peer, 9)).ok()?;
        let ip = probe.local_addr().ok()?.ip();
        if let Ok(mut m) = self.local_addrs.lock() {
            m.insert(peer, ip);
        }
        Some(ip)
    }
}

/// The bytes to hand rsipstack: the message as it came if rsipstack can
/// parse it and key its transaction, else the front's normalised rebuild
/// (see [`raw::normalized`]) if that works, else a 400. Public so that the
/// `sip_front` fuzz target exercises this very function.
pub fn for_stack<'a>(
    bytes: &'a [u8],
    msg: &raw::RawMessage<'_>,
) -> Result<std::borrow::Cow<'a, [u8]>, FrontError> {
    fn keyable(bytes: &[u8]) -> Result<(), String> {
        match rsipstack::sip::SipMessage::try_from(bytes).map_err(|e| e.to_string())? {
            rsipstack::sip::SipMessage::Request(req) => {
                rsipstack::transaction::key::TransactionKey::from_request(
                    &req,
                    rsipstack::transaction::key::TransactionRole::Server,
                )
                .map_err(|e| e.to_string())?;
                Ok(())
            }
            rsipstack::sip::SipMessage::Response(_) => Ok(()),
        }
    }
    let first = match keyable(bytes) {
        Ok(()) => return Ok(std::borrow::Cow::Borrowed(bytes)),
        Err(e) => e,
    };
    let rebuilt = raw::normalized(msg);
    match keyable(&rebuilt) {
        Ok(()) => Ok(std::borrow::Cow::Owned(rebuilt)),
        Err(_) => Err(FrontError::Refuse {
            status: 400,
            reason: "Bad Request",
            detail: first,
        }),
    }
}

/// Add `received` and `rport` to the top Via of a response we build
/// ourselves (the request's Via may name a host we must never contact).
fn add_received(resp: &mut Vec<u8>, src: SocketAddr) {
    let text = String::from_utf8_lossy(resp).into_owned();
    if let Some(pos) = text.find("\r\nVia: ") {
        let line_end = text[pos + 2..]
            .find("\r\n")
            .map(|e| pos + 2 + e)
            .unwrap_or(text.len());
        let via = &text[pos + 2..line_end];
        let first_end = via.find(',').map(|c| pos + 2 + c).unwrap_or(line_end);
        if !via.contains("received=") {
            let mut out = String::with_capacity(text.len() + 40);
            out.push_str(&text[..first_end]);
            out.push_str(&format!(";received={};rport={}", src.ip(), src.port()));
            out.push_str(&text[first_end..]);
            *resp = out.into_bytes();
        }
    }
}

/// Put `ip` as the host of the top Via's sent-by, keeping its port.
fn rewrite_top_via_host(buf: &[u8], ip: IpAddr) -> Vec<u8> {
    let text = String::from_utf8_lossy(buf);
    let Some(start) = text.find("\r\nVia: ").map(|p| p + 7) else {
        return buf.to_vec();
    };
    let line_end = text[start..].find("\r\n").map_or(text.len(), |e| start + e);
    let line = &text[start..line_end];
    // "SIP/2.0/UDP host:port;params"
    let Some(sp) = line.find(' ') else {
        return buf.to_vec();
    };
    let sent_by_end = line[sp + 1..]
        .find([';', ','])
        .map_or(line.len(), |e| sp + 1 + e);
    let sent_by = line[sp + 1..sent_by_end].trim();
    let port = sent_by
        .rsplit_once(':')
        .map(|(_, p)| p)
        .filter(|p| p.parse::<u16>().is_ok());
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let new_sent_by = match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..start + sp + 1]);
    out.push_str(&new_sent_by);
    out.push_str(&text[start + sent_by_end..]);
    out.into_bytes()
}

fn method_label(m: &str) -> &'static str {
    raw::KNOWN_METHODS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(m))
        .copied()
        .unwrap_or("other")
}

fn class_label(code: &str) -> &'static str {
    match code.as_bytes().first() {
        Some(b'1') => "1xx",
        Some(b'2') => "2xx",
        Some(b'3') => "3xx",
        Some(b'4') => "4xx",
        Some(b'5') => "5xx",
        Some(b'6') => "6xx",
        _ => "other",
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for FrontSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut rx = self.from_front.lock().await;
        match rx.recv().await {
            Some((bytes, src)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok((n, src))
            }
            None => {
                // The front stopped: park this reader until rsipstack is cancelled.
                drop(rx);
                std::future::pending::<()>().await;
                Ok((0, SocketAddr::from(([0, 0, 0, 0], 0))))
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        if self.front.via_from_route && !buf.starts_with(b"SIP/") {
            if let Some(ip) = self.front.local_ip_towards(addr.ip()) {
                let rewritten = rewrite_top_via_host(buf, ip);
                self.front.send_counted(&rewritten, addr).await;
                return Ok(buf.len());
            }
        }
        self.front.send_counted(buf, addr).await;
        Ok(buf.len())
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.front.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_source_is_logged_once_a_minute_and_the_map_stays_bounded() {
        let mut l = LogOnce::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(l.first_in_period(a, t0));
        assert!(!l.first_in_period(a, t0 + Duration::from_secs(30)));
        assert!(l.first_in_period(a, t0 + Duration::from_secs(61)));
        // A flood of sources: the map never grows past its cap.
        let mut l = LogOnce::default();
        for i in 0..(LogOnce::CAP as u32 + 500) {
            l.first_in_period(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(l.last.len(), LogOnce::CAP);
        // Once the period has passed, room is made again.
        assert!(l.first_in_period(a, t0 + Duration::from_secs(61)));
        assert_eq!(l.last.len(), 1);
    }

    use super::*;

    #[test]
    fn client_branches_are_forgotten_oldest_first_after_their_ttl() {
        let t0 = Instant::now();
        let mut b = ClientBranches::default();
        b.remember("z9hG4bKa", t0);
        b.remember("z9hG4bKb", t0 + Duration::from_secs(10));
        b.remember("z9hG4bKa", t0 + Duration::from_secs(20));
        assert!(b.known.contains("z9hG4bKa") && b.known.contains("z9hG4bKb"));
        b.remember("z9hG4bKc", t0 + CLIENT_BRANCH_TTL);
        assert!(!b.known.contains("z9hG4bKa"), "a keeps its first time");
        assert!(b.known.contains("z9hG4bKb") && b.known.contains("z9hG4bKc"));
        b.remember("z9hG4bKd", t0 + CLIENT_BRANCH_TTL + Duration::from_secs(10));
        assert!(!b.known.contains("z9hG4bKb"));
        assert_eq!(b.order.len(), b.known.len());
    }

    #[test]
    fn top_via_host_is_replaced_keeping_port_and_params() {
        let req = b"BYE sip:a@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.8.7:5060;branch=z9hG4bKx;rport\r\nVia: SIP/2.0/UDP 1.1.1.1\r\n\r\n";
        let out = String::from_utf8(rewrite_top_via_host(req, "127.0.0.1".parse().expect("ip")))
            .expect("utf8");
        assert!(out.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport\r\nVia: SIP/2.0/UDP 1.1.1.1\r\n"), "{out}");
    }

    #[test]
    fn received_is_added_to_the_top_via_only() {
        let mut r = b"SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b\r\nVia: SIP/2.0/UDP c\r\n\r\n".to_vec();
        add_received(&mut r, "127.0.0.1:5070".parse().expect("addr"));
        let s = String::from_utf8(r).expect("utf8");
        assert!(s.contains("Via: SIP/2.0/UDP a.example;branch=z9hG4bK1;received=127.0.0.1;rport=5070, SIP/2.0/UDP b\r\n"));
        assert!(s.contains("Via: SIP/2.0/UDP c\r\n"));
    }
}
