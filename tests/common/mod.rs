//! A small SIP test client of our own, and helpers to start the server
//! in-process on 127.0.0.1 with OS-assigned ports. Audio is decoded with an
//! independent G.711 decoder (audio-codec-algorithms).
#![allow(dead_code)]

pub mod auth;
pub mod baresip;
pub mod binary;
pub mod phone;

use centralita::config::Overrides;
use centralita::server::{load_all, Server, ServerOptions};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

pub const WAIT: Duration = Duration::from_secs(5);

/// A window of 2,000 RTP ports of its own for each server a test starts:
/// tests run side by side on 127.0.0.1, and a port one server frees while a
/// peer still sends to it must not be the next one another server hands an
/// agent (whose RTP latches on to the first packet from the agent's host).
fn rtp_window() -> centralita::config::PortRange {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let slot = (rand_u64() + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) % 20;
    let low = 20_000 + slot * 2_000;
    format!("{low}-{}", low + 1_999).parse().expect("range")
}

/// Start the controller on the shipped config with loopback, port-0 sockets.
pub async fn start_server() -> Server {
    start_server_with(ServerOptions::default()).await
}

pub async fn start_server_with(opts: ServerOptions) -> Server {
    start_server_tuned(|_| {}, opts).await
}

/// Start with a change to the loaded configuration (a test's own setting).
pub async fn start_server_tuned(
    tune: impl FnOnce(&mut centralita::config::RuntimeConfig),
    opts: ServerOptions,
) -> Server {
    start_server_loaded(|l| tune(&mut l.config), opts).await
}

/// Start with a change to everything loaded (configuration, IVR script).
pub async fn start_server_loaded(
    tune: impl FnOnce(&mut centralita::server::Loaded),
    opts: ServerOptions,
) -> Server {
    let config = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/centralita.toml"
    ));
    let ov = Overrides {
        sip_listen: Some("127.0.0.1:0".parse().expect("addr")),
        http_listen: Some("127.0.0.1:0".parse().expect("addr")),
        rtp_ports: Some(rtp_window()),
        // A ticket store of its own for each server.
        data_dir: Some(std::env::temp_dir().join(format!("centralita-test-{:x}", rand_u64()))),
    };
    let mut loaded = load_all(config, &ov).unwrap_or_else(|p| panic!("config loads: {p:?}"));
    tune(&mut loaded);
    Server::start(loaded, opts).await.expect("server starts")
}

/// Whether an interop peer is installed (`command` runs with `arg`). When it
/// is not, the test is skipped with a printed reason, or fails under
/// CENTRALITA_REQUIRE_INTEROP=1 (as CI sets).
pub fn peer_available(command: &str, arg: &str, package: &str) -> bool {
    let found = std::process::Command::new(command)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("CENTRALITA_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("{command} is required (CENTRALITA_REQUIRE_INTEROP=1) but not installed: apt-get install {package}");
        }
        eprintln!("SKIPPED: {command} not installed (apt-get install {package})");
    }
    found
}

/// The shipped config's demo API token (a supervisor's).
pub const DEMO_TOKEN: &str = "demo-token-change-me";

/// GET a path from the server's HTTP listener (HTTP/1.0, no client crate),
/// as a supervisor (the demo token).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = http_send(addr, "GET", path, &[("Authorization", &bearer())], None).await;
    (r.status, r.body)
}

/// POST a JSON body, as a supervisor (the demo token).
pub async fn http_post(addr: SocketAddr, path: &str, json: &str) -> (u16, String) {
    let r = http_send(
        addr,
        "POST",
        path,
        &[("Authorization", &bearer())],
        Some(json),
    )
    .await;
    (r.status, r.body)
}

fn bearer() -> String {
    format!("Bearer {DEMO_TOKEN}")
}

/// An HTTP reply: status, headers (names in lower case), body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: not JSON ({}): {}", self.status, self.body))
    }
}

/// Any request, with these headers and a JSON body if any.
pub async fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> HttpReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect http");
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    match json {
        Some(j) => req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{j}",
            j.len()
        )),
        None => req.push_str("\r\n"),
    }
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// One sample of a metric from the exposition text (labels as written).
pub fn metric(text: &str, name_with_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_with_labels)
                .and_then(|r| r.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// The sum of every series of `name` (any labels), e.g. the lines in use
/// over all phases.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labels) => labels.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

pub async fn scrape(server: &Server, name_with_labels: &str) -> f64 {
    metric(&server.metrics.render(), name_with_labels)
}

/// Wait until a metric (name with labels, as exported) reaches `at_least`.
pub async fn wait_metric(server: &Server, name_with_labels: &str, at_least: f64) {
    let what = format!("{name_with_labels} >= {at_least}");
    wait_until(WAIT, &what, || {
        metric(&server.metrics.render(), name_with_labels) >= at_least
    })
    .await;
}

/// Wait until `cond` holds, checking every 10 ms, failing after `within`.
pub async fn wait_until<F: FnMut() -> bool>(within: Duration, what: &str, mut cond: F) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A parsed SIP message, enough for tests.
#[derive(Debug, Clone)]
pub struct Msg {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Msg {
    pub fn parse(buf: &[u8]) -> Option<Msg> {
        let text = String::from_utf8_lossy(buf);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Msg {
            start,
            headers,
            body: body.as_bytes().to_vec(),
        })
    }
    pub fn status(&self) -> Option<u16> {
        self.start.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }
    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/") {
            None
        } else {
            self.start.split(' ').next()
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a header (several header lines).
    pub fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn cseq_method(&self) -> Option<&str> {
        self.header("cseq")?.split_whitespace().nth(1)
    }
}

/// A SIP user agent socket.
pub struct SipClient {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub local: SocketAddr,
    /// Messages received but not yet consumed by a matching wait.
    backlog: Mutex<Vec<Msg>>,
}

impl SipClient {
    pub async fn new(server: SocketAddr) -> SipClient {
        SipClient::new_at(server, "127.0.0.1").await
    }

    /// A client bound to `ip`: another source address than the others
    /// (every 127.x.y.z is the loopback on Linux).
    pub async fn new_at(server: SocketAddr, ip: &str) -> SipClient {
        let sock = UdpSocket::bind((ip, 0)).await.expect("bind");
        let local = sock.local_addr().expect("local");
        SipClient {
            sock,
            server,
            local,
            backlog: Mutex::new(Vec::new()),
        }
    }

    pub async fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).await.expect("send");
    }

    /// Next message matching `pred`, within `within`.
    pub async fn wait_for<F: Fn(&Msg) -> bool>(&self, within: Duration, pred: F) -> Option<Msg> {
        if let Ok(mut b) = self.backlog.lock() {
            if let Some(i) = b.iter().position(&pred) {
                return Some(b.remove(i));
            }
        }
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = vec![0u8; 65536];
        loop {
            let r = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await;
            let Ok(Ok((n, _))) = r else { return None };
            let Some(m) = Msg::parse(&buf[..n]) else {
                continue;
            };
            if pred(&m) {
                return Some(m);
            }
            if let Ok(mut b) = self.backlog.lock() {
                b.push(m);
            }
        }
    }

    /// Send a request and wait for its final response (any response with the
    /// same Call-ID and CSeq method whose status is >= 200).
    pub async fn transact(&self, bytes: &[u8]) -> Option<Msg> {
        let req = Msg::parse(bytes)?;
        let cid = req.header("call-id")?.to_string();
        let cseq = req.header("cseq")?.to_string();
        self.send(bytes).await;
        self.wait_for(WAIT, |m| {
            m.status().is_some_and(|s| s >= 200)
                && m.header("call-id") == Some(cid.as_str())
                && m.header("cseq") == Some(cseq.as_str())
        })
        .await
    }

    /// A REGISTER for `user` at the server (AOR sip:user@server-ip).
    pub fn register_bytes(
        &self,
        user: &str,
        call_id: &str,
        cseq: u32,
        expires: u32,
        authz: Option<&str>,
    ) -> Vec<u8> {
        let ip = self.server.ip();
        let auth = authz
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{ip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{cid}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{ip}>;tag=r{cid}\r\nTo: <sip:{user}@{ip}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}-phone@{me}>\r\nExpires: {expires}\r\n{auth}Content-Length: 0\r\n\r\n",
            me = self.local,
            cid = call_id
        )
        .into_bytes()
    }

    /// REGISTER with digest authentication: send, take the challenge for
    /// `algorithm` ("MD5" or "SHA-256"), answer it. Returns (challenge
    /// response, final response).
    pub async fn register(
        &self,
        user: &str,
        password: &str,
        expires: u32,
        algorithm: &str,
    ) -> (Msg, Msg) {
        self.register_as(user, password, expires, algorithm, |b| b)
            .await
    }

    /// Remove every binding of `user` (`Contact: *`, `Expires: 0`), as a
    /// phone's "log off everywhere" does; the final response.
    pub async fn unregister_all(&self, user: &str, password: &str) -> Msg {
        let wildcard = |b: Vec<u8>| {
            let text = String::from_utf8_lossy(&b).into_owned();
            let contact = text
                .lines()
                .find(|l| l.starts_with("Contact:"))
                .unwrap_or_default()
                .to_string();
            text.replace(&contact, "Contact: *").into_bytes()
        };
        self.register_as(user, password, 0, "MD5", wildcard).await.1
    }

    async fn register_as(
        &self,
        user: &str,
        password: &str,
        expires: u32,
        algorithm: &str,
        edit: impl Fn(Vec<u8>) -> Vec<u8>,
    ) -> (Msg, Msg) {
        let cid = format!("reg-{user}-{}", rand_u64());
        let first = self
            .transact(&edit(self.register_bytes(user, &cid, 1, expires, None)))
            .await
            .expect("answer to REGISTER");
        let challenge = first
            .all("www-authenticate")
            .into_iter()
            .map(auth::parse_challenge)
            .find(|c| {
                c.get("algorithm")
                    .is_some_and(|a| a.eq_ignore_ascii_case(algorithm))
            })
            .unwrap_or_default();
        let uri = format!("sip:{}", self.server.ip());
        let authz = auth::authorization(&challenge, user, password, "REGISTER", &uri, 1);
        let second = self
            .transact(&edit(self.register_bytes(
                user,
                &cid,
                2,
                expires,
                Some(&authz),
            )))
            .await
            .expect("answer to the authenticated REGISTER");
        (first, second)
    }

    pub fn options(&self, call_id: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:soporte@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{cid};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p1\r\nTo: <sip:soporte@{srv}>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            srv = self.server,
            me = self.local,
            cid = call_id
        )
        .into_bytes()
    }
}

/// A received RTP packet.
#[derive(Debug, Clone)]
pub struct RtpIn {
    pub at: Instant,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// Parse an RTP packet by hand (independently of the server's code).
pub fn parse_rtp(b: &[u8]) -> Option<RtpIn> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(b[0] & 0x0f);
    let start = 12 + 4 * cc;
    Some(RtpIn {
        at: Instant::now(),
        pt: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b.get(start..)?.to_vec(),
    })
}

/// A call placed by the test client.
pub struct Call {
    pub client: Arc<SipClient>,
    pub call_id: String,
    pub from_tag: String,
    pub to_header: String,
    pub dialed: String,
    pub cseq: u32,
    pub rtp: Arc<UdpSocket>,
    pub remote_rtp: Option<SocketAddr>,
    pub received: Arc<Mutex<Vec<RtpIn>>>,
    pub answer: Option<Msg>,
    pub pt: u8,
    pub dtmf_pt: u8,
    send_seq: u16,
    send_ts: u32,
    rx_task: Option<tokio::task::JoinHandle<()>>,
}

pub fn sdp_offer(rtp: SocketAddr, codecs: &str) -> String {
    let pts: Vec<&str> = codecs.split(' ').collect();
    let mut s = format!(
        "v=0\r\no=test 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {codecs}\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    );
    for pt in pts {
        match pt {
            "0" => s.push_str("a=rtpmap:0 PCMU/8000\r\n"),
            "8" => s.push_str("a=rtpmap:8 PCMA/8000\r\n"),
            "101" => s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"),
            "9" => s.push_str("a=rtpmap:9 G722/8000\r\n"),
            _ => {}
        }
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

impl Call {
    /// Build the INVITE (without sending it).
    pub fn invite_bytes(&self, sdp: Option<&str>, branch: &str) -> Vec<u8> {
        self.invite_with(sdp, branch, None)
    }

    /// The INVITE with an Authorization header.
    pub fn invite_with(&self, sdp: Option<&str>, branch: &str, authz: Option<&str>) -> Vec<u8> {
        let c = &self.client;
        let (ct, body) = match sdp {
            Some(s) => ("Content-Type: application/sdp\r\n", s.to_string()),
            None => ("", String::new()),
        };
        let ct = match authz {
            Some(a) => format!("Authorization: {a}\r\n{ct}"),
            None => ct.to_string(),
        };
        format!(
            "INVITE sip:{d}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: \"Test\" <sip:caller@{me}>;tag={ft}\r\nTo: <sip:{d}@{srv}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:caller@{me}>\r\n{ct}Content-Length: {len}\r\n\r\n{body}",
            d = self.dialed,
            srv = c.server,
            me = c.local,
            ft = self.from_tag,
            cid = self.call_id,
            cseq = self.cseq,
            len = body.len(),
        )
        .into_bytes()
    }

    /// A fresh call object (nothing sent yet).
    pub async fn new(client: Arc<SipClient>, dialed: &str) -> Call {
        let rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind rtp"));
        let n: u64 = rand_u64();
        Call {
            client,
            call_id: format!("test-{n:x}"),
            from_tag: format!("ft{n:x}"),
            to_header: String::new(),
            dialed: dialed.to_string(),
            cseq: 1,
            rtp,
            remote_rtp: None,
            received: Arc::new(Mutex::new(Vec::new())),
            answer: None,
            pt: 0,
            dtmf_pt: 101,
            send_seq: 1000,
            send_ts: 5000,
            rx_task: None,
        }
    }

    /// INVITE with an offer of `codecs` ("0 8 101"); waits for the final
    /// response; on 200 sends the ACK and starts recording RTP.
    pub async fn place(client: Arc<SipClient>, dialed: &str, codecs: &str) -> (Call, Msg) {
        let mut call = Call::new(client, dialed).await;
        let offer = sdp_offer(call.rtp.local_addr().expect("rtp addr"), codecs);
        let inv = call.invite_bytes(Some(&offer), &format!("z9hG4bK{}", rand_u64()));
        let resp = call
            .client
            .transact(&inv)
            .await
            .expect("final response to INVITE");
        if resp.status() == Some(200) {
            call.on_answered(&resp, None).await;
        } else {
            call.ack_error(&resp).await;
        }
        (call, resp)
    }

    pub async fn on_answered(&mut self, resp: &Msg, ack_sdp: Option<&str>) {
        self.to_header = resp.header("to").unwrap_or_default().to_string();
        let body = String::from_utf8_lossy(&resp.body).into_owned();
        self.remote_rtp = sdp_media_addr(&body);
        if let Some(pt) = sdp_first_pt(&body) {
            self.pt = pt;
        }
        if let Some(pt) = sdp_event_pt(&body) {
            self.dtmf_pt = pt;
        }
        self.answer = Some(resp.clone());
        self.send_ack(ack_sdp).await;
        let rtp = Arc::clone(&self.rtp);
        let rec = Arc::clone(&self.received);
        self.rx_task = Some(tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, _)) = rtp.recv_from(&mut buf).await {
                if let Some(p) = parse_rtp(&buf[..n]) {
                    if let Ok(mut r) = rec.lock() {
                        r.push(p);
                    }
                }
            }
        }));
    }

    pub async fn send_ack(&self, sdp: Option<&str>) {
        let c = &self.client;
        let (ct, body) = match sdp {
            Some(s) => ("Content-Type: application/sdp\r\n", s.to_string()),
            None => ("", String::new()),
        };
        let ack = format!(
            "ACK sip:{d}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b};rport\r\nMax-Forwards: 70\r\nFrom: \"Test\" <sip:caller@{me}>;tag={ft}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\n{ct}Content-Length: {len}\r\n\r\n{body}",
            d = self.dialed,
            srv = c.server,
            me = c.local,
            b = rand_u64(),
            ft = self.from_tag,
            to = self.to_header,
            cid = self.call_id,
            cseq = self.cseq,
            len = body.len(),
        );
        c.send(ack.as_bytes()).await;
    }

    /// ACK a non-2xx final response: hop by hop, in the INVITE's
    /// transaction (same branch), To with the response's tag.
    pub async fn ack_error(&self, resp: &Msg) {
        let c = &self.client;
        let via = resp.header("via").unwrap_or_default();
        let via = via.split(",").next().unwrap_or_default();
        let ack = format!(
            "ACK sip:{d}@{srv} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: \"Test\" <sip:caller@{me}>;tag={ft}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            d = self.dialed,
            srv = c.server,
            me = c.local,
            ft = self.from_tag,
            to = resp.header("to").unwrap_or_default(),
            cid = self.call_id,
            cseq = self.cseq,
        );
        c.send(ack.as_bytes()).await;
    }

    /// An agent's call: INVITE, answer the 401 challenge with `user`'s
    /// credentials (algorithm as offered first: SHA-256), and on 200 ACK and
    /// record RTP. Returns the final response.
    pub async fn place_as_agent(
        client: Arc<SipClient>,
        dialed: &str,
        user: &str,
        password: &str,
    ) -> (Call, Msg) {
        let mut call = Call::new(client, dialed).await;
        let offer = sdp_offer(call.rtp.local_addr().expect("rtp addr"), "0 101");
        let inv = call.invite_bytes(Some(&offer), &format!("z9hG4bK{}", rand_u64()));
        let first = call.client.transact(&inv).await.expect("answer to INVITE");
        if first.status() != Some(401) {
            return (call, first);
        }
        call.ack_error(&first).await;
        let challenge = first
            .all("www-authenticate")
            .first()
            .map(|v| auth::parse_challenge(v))
            .unwrap_or_default();
        let uri = format!("sip:{dialed}@{}", call.client.server);
        let authz = auth::authorization(&challenge, user, password, "INVITE", &uri, 1);
        call.cseq += 1;
        let inv = call.invite_with(
            Some(&offer),
            &format!("z9hG4bK{}", rand_u64()),
            Some(&authz),
        );
        let resp = call
            .client
            .transact(&inv)
            .await
            .expect("answer to the authenticated INVITE");
        if resp.status() == Some(200) {
            call.on_answered(&resp, None).await;
        } else {
            call.ack_error(&resp).await;
        }
        (call, resp)
    }

    fn in_dialog(&mut self, method: &str, extra: &str, body: &str) -> Vec<u8> {
        self.cseq += 1;
        let c = &self.client;
        format!(
            "{method} sip:centralita@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b};rport\r\nMax-Forwards: 70\r\nFrom: \"Test\" <sip:caller@{me}>;tag={ft}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            srv = c.server,
            me = c.local,
            b = rand_u64(),
            ft = self.from_tag,
            to = self.to_header,
            cid = self.call_id,
            cseq = self.cseq,
            len = body.len(),
        )
        .into_bytes()
    }

    /// BYE; returns the response status.
    pub async fn bye(&mut self) -> Option<u16> {
        let b = self.in_dialog("BYE", "", "");
        self.client.transact(&b).await.and_then(|m| m.status())
    }

    /// re-INVITE with a new offer; on 200, ACK it. Returns the final response.
    pub async fn reinvite(&mut self, sdp: &str) -> Option<Msg> {
        let b = self.in_dialog("INVITE", "Content-Type: application/sdp\r\n", sdp);
        let resp = self.client.transact(&b).await?;
        if resp.status() == Some(200) {
            self.send_ack(None).await;
        }
        Some(resp)
    }

    /// SIP INFO with a DTMF body; returns the response status.
    pub async fn info(&mut self, content_type: &str, body: &str) -> Option<u16> {
        let b = self.in_dialog("INFO", &format!("Content-Type: {content_type}\r\n"), body);
        self.client.transact(&b).await.and_then(|m| m.status())
    }

    /// Wait for a BYE from the server and answer it 200.
    pub async fn expect_bye(&self, within: Duration) -> bool {
        self.expect_request("BYE", within).await.is_some()
    }

    /// Wait for a `method` request from the server in this call and answer
    /// it 200.
    pub async fn expect_request(&self, method: &str, within: Duration) -> Option<Msg> {
        let cid = self.call_id.clone();
        let req = self
            .client
            .wait_for(within, |m| {
                m.method() == Some(method) && m.header("call-id") == Some(cid.as_str())
            })
            .await?;
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for (k, v) in &req.headers {
            if ["via", "from", "to", "call-id", "cseq"].contains(&k.as_str()) {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        self.client.send(resp.as_bytes()).await;
        Some(req)
    }

    /// REFER in this call with `refer_to`; the final response.
    pub async fn refer(&mut self, refer_to: &str) -> Option<Msg> {
        let b = self.in_dialog("REFER", &format!("Refer-To: {refer_to}\r\n"), "");
        self.client.transact(&b).await
    }

    /// Send one RFC 4733 digit: 60 ms of interim packets then 3 end packets.
    pub async fn send_rfc4733(&mut self, digit: char) {
        let ev: u8 = match digit {
            '0'..='9' => digit as u8 - b'0',
            '*' => 10,
            '#' => 11,
            _ => return,
        };
        let Some(peer) = self.remote_rtp else { return };
        let ts = self.send_ts;
        self.send_ts = self.send_ts.wrapping_add(1600);
        for i in 0..6u16 {
            let end = i >= 3;
            let dur = if end { 480 } else { 160 * (i + 1) };
            let mut p = Vec::with_capacity(16);
            p.push(0x80);
            p.push(self.dtmf_pt | if i == 0 { 0x80 } else { 0 });
            p.extend_from_slice(&self.send_seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend_from_slice(&[ev, if end { 0x80 | 10 } else { 10 }]);
            p.extend_from_slice(&dur.to_be_bytes());
            self.send_seq = self.send_seq.wrapping_add(1);
            let _ = self.rtp.send_to(&p, peer).await;
            tokio::time::sleep(Duration::from_millis(if end { 2 } else { 20 })).await;
        }
    }

    /// Send audio frames (already G.711-encoded, 160 bytes each) paced at 20 ms.
    pub async fn send_audio(&mut self, frames: &[Vec<u8>]) {
        let Some(peer) = self.remote_rtp else { return };
        let mut next = tokio::time::Instant::now();
        for f in frames {
            let mut p = Vec::with_capacity(12 + f.len());
            p.push(0x80);
            p.push(self.pt);
            p.extend_from_slice(&self.send_seq.to_be_bytes());
            p.extend_from_slice(&self.send_ts.to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend_from_slice(f);
            self.send_seq = self.send_seq.wrapping_add(1);
            self.send_ts = self.send_ts.wrapping_add(160);
            let _ = self.rtp.send_to(&p, peer).await;
            next += Duration::from_millis(20);
            tokio::time::sleep_until(next).await;
        }
    }

    pub fn packets(&self) -> Vec<RtpIn> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Everything received so far, decoded to linear PCM.
    pub fn audio(&self) -> Vec<i16> {
        decode(&self.packets(), self.pt)
    }

    /// Wait until at least `n` packets have arrived.
    pub async fn wait_packets(&self, n: usize, within: Duration) {
        let rec = Arc::clone(&self.received);
        wait_until(within, "RTP packets", || {
            rec.lock().map(|r| r.len() >= n).unwrap_or(false)
        })
        .await;
    }

    /// Clear what was recorded so far.
    pub fn clear_audio(&self) {
        if let Ok(mut r) = self.received.lock() {
            r.clear();
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(t) = self.rx_task.take() {
            t.abort();
        }
    }
}

pub fn decode(pkts: &[RtpIn], pt: u8) -> Vec<i16> {
    let mut out = Vec::new();
    for p in pkts.iter().filter(|p| p.pt == pt) {
        for &b in &p.payload {
            out.push(match pt {
                8 => audio_codec_algorithms::decode_alaw(b),
                _ => audio_codec_algorithms::decode_ulaw(b),
            });
        }
    }
    out
}

pub fn sdp_media_addr(sdp: &str) -> Option<SocketAddr> {
    let ip = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split(' ')
        .next()?;
    format!("{ip}:{port}").parse().ok()
}

pub fn sdp_first_pt(sdp: &str) -> Option<u8> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split(' ')
        .nth(2)?
        .parse()
        .ok()
}

pub fn sdp_event_pt(sdp: &str) -> Option<u8> {
    sdp.lines()
        .find(|l| l.contains("telephone-event"))?
        .trim()
        .strip_prefix("a=rtpmap:")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// A shipped prompt, read with hound (independently of the server).
pub fn prompt_samples(lang: &str, name: &str) -> Vec<i16> {
    let path = format!("{}/sounds/{lang}/{name}.wav", env!("CARGO_MANIFEST_DIR"));
    let mut r = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

/// Best normalised correlation of `expected` inside `got`, over offsets in
/// whole 160-sample frames up to `max_frames` (the prompt starts on a frame
/// boundary of the stream).
pub fn best_correlation(got: &[i16], expected: &[i16], max_frames: usize) -> f64 {
    let mut best = 0.0f64;
    for f in 0..=max_frames {
        let off = f * 160;
        if off + expected.len() > got.len() {
            break;
        }
        let seg = &got[off..off + expected.len()];
        let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
        for (a, b) in seg.iter().zip(expected) {
            let (a, b) = (f64::from(*a), f64::from(*b));
            xy += a * b;
            xx += a * a;
            yy += b * b;
        }
        if xx > 0.0 && yy > 0.0 {
            best = best.max(xy / (xx.sqrt() * yy.sqrt()));
        }
    }
    best
}

/// Counts of each key in a map, for readable assertion messages.
pub fn counts<K: Ord + Clone>(items: &[K]) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

/// `frames` 20-ms µ-law frames of a sine tone at `freq` Hz.
pub fn tone(freq: f64, frames: usize) -> Vec<Vec<u8>> {
    (0..frames)
        .map(|f| {
            (0..160)
                .map(|i| {
                    let t = (f * 160 + i) as f64 / 8000.0;
                    audio_codec_algorithms::encode_ulaw(
                        (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16,
                    )
                })
                .collect()
        })
        .collect()
}

/// Wait (bounded) until `agent` is in state `want`.
pub async fn wait_status(server: &centralita::server::Server, agent: &str, want: &str) {
    let mut status = None;
    for _ in 0..500 {
        status = server.agent_status(agent).await.map(|s| s.as_str());
        if status == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{agent} is {status:?}, expected {want}");
}

/// Wait until the call has received the prompt's length of audio (plus
/// slack) after packet `mark`, then return the best correlation of what came
/// after `mark` with the prompt. Take `mark` before what starts it.
pub async fn heard_after(call: &Call, mark: usize, lang: &str, name: &str) -> f64 {
    // The first 5 s of a long prompt (the main menu lasts ~25 s) is proof enough.
    let mut expected = prompt_samples(lang, name);
    expected.truncate(5 * 8000);
    let frames = expected.len() / 160 + 60;
    call.wait_packets(mark + frames, Duration::from_secs(40))
        .await;
    let pkts = call.packets();
    best_correlation(&decode(&pkts[mark..], call.pt), &expected, 60)
}

/// RTP packets relayed between bridged legs so far: (caller to agent,
/// agent to caller).
pub fn relayed(server: &Server) -> (f64, f64) {
    let text = server.metrics.render();
    let dir = |d: &str| {
        metric(
            &text,
            &format!("centralita_rtp_packets_relayed_total{{direction=\"{d}\"}}"),
        )
    };
    (dir("caller_to_agent"), dir("agent_to_caller"))
}
