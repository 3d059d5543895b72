//! An agent's softphone for tests: registers with digest authentication,
//! answers every INVITE by itself (180 then 200 with its SDP), records what
//! it was sent (requests and RTP), and can send audio back.

use super::{auth, parse_rtp, rand_u64, sdp_media_addr, Msg, RtpIn};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// The SSRC of everything the phone sends.
pub const PHONE_SSRC: u32 = 0x0a9e_0001;

/// How the phone answers an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Answer {
    /// 180, then 200 with SDP.
    #[default]
    Auto,
    /// 486 Busy Here.
    Busy,
    /// 180 only: it rings until cancelled.
    Never,
    /// 180, then 200 with SDP this many milliseconds later (unless
    /// cancelled meanwhile).
    After(u64),
}

#[derive(Default)]
pub struct PhoneLog {
    pub answer: Answer,
    cseq: u32,
    pub requests: Vec<Msg>,
    /// Responses to the phone's own requests (re-INVITE, REFER).
    pub responses: Vec<Msg>,
    pub rtp: Vec<RtpIn>,
    /// Where the controller sends the bridged call's RTP from.
    pub remote_rtp: Option<SocketAddr>,
    /// The next packet's sequence number and timestamp (audio and keys share them).
    send_seq: u16,
    send_ts: u32,
    /// Call-IDs of INVITEs cancelled while they rang.
    cancelled: Vec<String>,
    /// When each new INVITE reached the phone (the wall clock, as a
    /// browser's Date.now() reads it).
    pub invited_at: Vec<std::time::SystemTime>,
}

pub struct AgentPhone {
    pub sip: Arc<UdpSocket>,
    pub rtp: Arc<UdpSocket>,
    pub server: SocketAddr,
    pub log: Arc<Mutex<PhoneLog>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AgentPhone {
    /// Register `user` and start answering.
    pub async fn register(server: SocketAddr, user: &str, password: &str) -> AgentPhone {
        let sip = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind rtp"));
        let me = sip.local_addr().expect("addr");
        let cid = format!("phone-{user}-{}", rand_u64());
        let reg = |cseq: u32, authz: Option<&str>| {
            let auth = authz
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            format!(
                "REGISTER sip:{ip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{cid}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{ip}>;tag=p{cid}\r\nTo: <sip:{user}@{ip}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}-softphone@{me}>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n",
                ip = server.ip()
            )
        };
        let mut buf = vec![0u8; 8192];
        sip.send_to(reg(1, None).as_bytes(), server)
            .await
            .expect("send");
        let challenge = loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), sip.recv_from(&mut buf))
                .await
                .expect("401 in time")
                .expect("recv");
            if let Some(m) = Msg::parse(&buf[..n]).filter(|m| m.status() == Some(401)) {
                break m;
            }
        };
        let ch = auth::parse_challenge(challenge.all("www-authenticate")[0]);
        let authz = auth::authorization(
            &ch,
            user,
            password,
            "REGISTER",
            &format!("sip:{}", server.ip()),
            1,
        );
        sip.send_to(reg(2, Some(&authz)).as_bytes(), server)
            .await
            .expect("send");
        loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), sip.recv_from(&mut buf))
                .await
                .expect("200 in time")
                .expect("recv");
            if let Some(m) = Msg::parse(&buf[..n]).filter(|m| m.status().is_some_and(|s| s >= 200))
            {
                assert_eq!(m.status(), Some(200), "the phone registered");
                break;
            }
        }
        let log = Arc::new(Mutex::new(PhoneLog::default()));
        let sip_task = tokio::spawn(answer_loop(
            Arc::clone(&sip),
            Arc::clone(&rtp),
            Arc::clone(&log),
        ));
        let rtp_task = tokio::spawn(rtp_loop(Arc::clone(&rtp), Arc::clone(&log)));
        AgentPhone {
            sip,
            rtp,
            server,
            log,
            tasks: vec![sip_task, rtp_task],
        }
    }

    /// Register `user`'s phone (password `<user>-demo-1234`, the shipped
    /// demo agents') and make the agent ready with the feature code.
    pub async fn ready(server: &centralita::server::Server, user: &str) -> AgentPhone {
        let password = format!("{user}-demo-1234");
        let phone = AgentPhone::register(server.sip_addr, user, &password).await;
        let desk = Arc::new(super::SipClient::new(server.sip_addr).await);
        let (ready, _) = super::Call::place_as_agent(desk, "*11", user, &password).await;
        assert!(ready.expect_bye(Duration::from_secs(10)).await);
        super::wait_status(server, user, "available").await;
        phone
    }

    /// BYE the call the controller put through to this phone (the phone's
    /// side of the last INVITE's dialog).
    pub async fn hang_up(&self) {
        self.in_dialog("BYE", "").await;
    }

    /// REFER the caller to `target` (a queue's name or an agent's user).
    pub async fn refer(&self, target: &str) {
        let extra = format!(
            "Refer-To: <sip:{target}@{}>\r\nReferred-By: <sip:phone@{}>\r\n",
            self.server.ip(),
            self.server.ip()
        );
        self.in_dialog("REFER", &extra).await;
    }

    /// The phone's attended transfer: REFER on its call with the caller,
    /// `Refer-To` naming `target` with a `Replaces` of the consultation
    /// call (`call_id`, its To header and From tag, RFC 3891); the REFER's
    /// final response, if one comes.
    pub async fn refer_replaces(
        &self,
        target: &str,
        call_id: &str,
        to_header: &str,
        from_tag: &str,
    ) -> Option<Msg> {
        let to_tag = to_header
            .split("tag=")
            .nth(1)
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let replaces = format!("{call_id};to-tag={to_tag};from-tag={from_tag}");
        let escaped: String = replaces
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let extra = format!(
            "Refer-To: <sip:{target}@{}?Replaces={escaped}>\r\nReferred-By: <sip:phone@{}>\r\n",
            self.server.ip(),
            self.server.ip()
        );
        let cseq = self.in_dialog_with("REFER", &extra, "").await;
        self.final_response(cseq, "REFER").await
    }

    /// The final response to the phone's request `cseq method`, within 5 s.
    async fn final_response(&self, cseq: u32, method: &str) -> Option<Msg> {
        self.final_response_in(None, &format!("{cseq} {method}"), Duration::from_secs(5))
            .await
    }

    /// The final response whose CSeq is `cseq` (and Call-ID `call_id`).
    async fn final_response_in(
        &self,
        call_id: Option<&str>,
        cseq: &str,
        within: Duration,
    ) -> Option<Msg> {
        let log = Arc::clone(&self.log);
        let mut found = None;
        super::wait_until(within, "the final response", || {
            found = log.lock().ok().and_then(|l| {
                l.responses
                    .iter()
                    .find(|m| {
                        m.status().is_some_and(|s| s >= 200)
                            && m.header("cseq") == Some(cseq)
                            && call_id.is_none_or(|c| m.header("call-id") == Some(c))
                    })
                    .cloned()
            });
            found.is_some()
        })
        .await;
        found
    }

    /// Place a call from this phone (its second line) to `dialed`, as
    /// `user` (digest, answering the 401); its final response ACKed.
    pub async fn dial(&self, dialed: &str, user: &str, password: &str) -> PhoneCall {
        let me = self.sip.local_addr().expect("addr");
        let srv = self.server;
        let n = rand_u64();
        let (call_id, from_tag) = (format!("dial-{n:x}"), format!("d{n:x}"));
        let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("bind rtp");
        let sdp = super::sdp_offer(rtp.local_addr().expect("addr"), "0 101");
        let invite = |cseq: u32, authz: Option<&str>| {
            let auth = authz
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            format!(
                "INVITE sip:{dialed}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{ip}>;tag={from_tag}\r\nTo: <sip:{dialed}@{ip}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{user}-softphone@{me}>\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
                ip = srv.ip(),
                len = sdp.len(),
            )
        };
        let ack = |cseq: u32, to: &str, branch: &str| {
            format!(
                "ACK sip:{dialed}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{ip}>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
                ip = srv.ip(),
            )
        };
        let wait = Duration::from_secs(20);
        let _ = self.sip.send_to(invite(1, None).as_bytes(), srv).await;
        let mut resp = self
            .final_response_in(Some(&call_id), "1 INVITE", wait)
            .await;
        let mut cseq = 1;
        if let Some(challenge) = resp.clone().filter(|m| m.status() == Some(401)) {
            let to = challenge.header("to").unwrap_or_default();
            let branch = format!("z9hG4bK{call_id}1");
            let _ = self.sip.send_to(ack(1, to, &branch).as_bytes(), srv).await;
            let ch = auth::parse_challenge(challenge.all("www-authenticate")[0]);
            let uri = format!("sip:{dialed}@{srv}");
            let authz = auth::authorization(&ch, user, password, "INVITE", &uri, 1);
            cseq = 2;
            let _ = self
                .sip
                .send_to(invite(2, Some(&authz)).as_bytes(), srv)
                .await;
            resp = self
                .final_response_in(Some(&call_id), "2 INVITE", wait)
                .await;
        }
        let resp = resp.expect("a final response to the phone's call");
        let to_header = resp.header("to").unwrap_or_default().to_string();
        let branch = if resp.status() == Some(200) {
            format!("z9hG4bKack{n:x}")
        } else {
            format!("z9hG4bK{call_id}{cseq}")
        };
        let _ = self
            .sip
            .send_to(ack(cseq, &to_header, &branch).as_bytes(), srv)
            .await;
        PhoneCall {
            call_id,
            from_tag,
            to_header,
            status: resp.status().unwrap_or_default(),
            _rtp: rtp,
        }
    }

    /// Re-INVITE the call with `sdp` (hold, resume, a refresh): the final
    /// response (ACKed when 2xx), if one comes within 5 s.
    pub async fn reinvite(&self, sdp: &str) -> Option<Msg> {
        let cseq = self
            .in_dialog_with("INVITE", "Content-Type: application/sdp\r\n", sdp)
            .await;
        let resp = self.final_response(cseq, "INVITE").await?;
        if resp.status().is_some_and(|s| (200..300).contains(&s)) {
            self.ack(cseq).await;
        }
        Some(resp)
    }

    /// The INVITE that opened the phone's last dialog (not a re-INVITE of
    /// the controller's, which carries the phone's tag).
    fn dialog_invite(&self) -> Option<Msg> {
        self.requests("INVITE")
            .into_iter()
            .rev()
            .find(|m| !m.header("to").unwrap_or_default().contains("tag="))
    }

    async fn ack(&self, cseq: u32) {
        let Some(inv) = self.dialog_invite() else {
            return;
        };
        let me = self.sip.local_addr().expect("addr");
        let target = contact_uri(&inv);
        let ack = format!(
            "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKack{n};rport\r\nMax-Forwards: 70\r\nFrom: {to};tag=phone1\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            n = rand_u64(),
            to = inv.header("to").unwrap_or_default(),
            from = inv.header("from").unwrap_or_default(),
            cid = inv.header("call-id").unwrap_or_default(),
        );
        let _ = self.sip.send_to(ack.as_bytes(), self.server).await;
    }

    async fn in_dialog(&self, method: &str, extra: &str) {
        self.in_dialog_with(method, extra, "").await;
    }

    /// Send a request in the dialog of the last INVITE the phone got; its
    /// CSeq number.
    async fn in_dialog_with(&self, method: &str, extra: &str, body: &str) -> u32 {
        let Some(inv) = self.dialog_invite() else {
            return 0;
        };
        let me = self.sip.local_addr().expect("addr");
        let target = contact_uri(&inv);
        let to = inv.header("to").unwrap_or_default();
        let from = inv.header("from").unwrap_or_default();
        let seq = self
            .log
            .lock()
            .map(|mut l| {
                l.cseq += 1;
                l.cseq
            })
            .unwrap_or(1);
        let bye = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}{n};rport\r\nMax-Forwards: 70\r\nFrom: {to};tag=phone1\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: {seq} {method}\r\nContact: <sip:phone@{me}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            len = body.len(),
            n = rand_u64(),
            cid = inv.header("call-id").unwrap_or_default(),
        );
        let _ = self.sip.send_to(bye.as_bytes(), self.server).await;
        seq
    }

    pub fn set_answer(&self, a: Answer) {
        if let Ok(mut l) = self.log.lock() {
            l.answer = a;
        }
    }

    pub fn requests(&self, method: &str) -> Vec<Msg> {
        self.log
            .lock()
            .map(|l| {
                l.requests
                    .iter()
                    .filter(|m| m.method() == Some(method))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn rtp_packets(&self) -> Vec<RtpIn> {
        self.log.lock().map(|l| l.rtp.clone()).unwrap_or_default()
    }

    /// The next sequence number and timestamp, advancing them by one packet
    /// and `samples`.
    fn next_seq_ts(&self, samples: u32) -> (u16, u32) {
        self.log
            .lock()
            .map(|mut l| {
                let st = (l.send_seq, l.send_ts);
                l.send_seq = l.send_seq.wrapping_add(1);
                l.send_ts = l.send_ts.wrapping_add(samples);
                st
            })
            .unwrap_or_default()
    }

    /// Send µ-law frames to the controller's side of the bridge, 20 ms apart.
    pub async fn send_audio(&self, frames: &[Vec<u8>]) {
        let Some(peer) = self.log.lock().ok().and_then(|l| l.remote_rtp) else {
            return;
        };
        let mut next = tokio::time::Instant::now();
        for f in frames {
            let (seq, ts) = self.next_seq_ts(160);
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&PHONE_SSRC.to_be_bytes());
            p.extend_from_slice(f);
            let _ = self.rtp.send_to(&p, peer).await;
            next += Duration::from_millis(20);
            tokio::time::sleep_until(next).await;
        }
    }

    /// Press a key on the phone: RFC 4733 events (payload type 101, as its
    /// SDP says), three interim packets 20 ms apart, then three end packets.
    pub async fn send_rfc4733(&self, digit: char) {
        let ev: u8 = match digit {
            '0'..='9' => digit as u8 - b'0',
            '*' => 10,
            '#' => 11,
            _ => return,
        };
        let Some(peer) = self.log.lock().ok().and_then(|l| l.remote_rtp) else {
            return;
        };
        let (_, start) = self.next_seq_ts(0);
        // The press's own first packet reused the sequence number above.
        if let Ok(mut l) = self.log.lock() {
            l.send_seq = l.send_seq.wrapping_sub(1);
            l.send_ts = l.send_ts.wrapping_add(800);
        }
        for i in 0..6u16 {
            let end = i >= 3;
            let dur = if end { 480 } else { 160 * (i + 1) };
            let (seq, _) = self.next_seq_ts(0);
            let mut p = vec![0x80, 101 | if i == 0 { 0x80 } else { 0 }];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&start.to_be_bytes());
            p.extend_from_slice(&PHONE_SSRC.to_be_bytes());
            p.extend_from_slice(&[ev, if end { 0x80 | 10 } else { 10 }]);
            p.extend_from_slice(&dur.to_be_bytes());
            let _ = self.rtp.send_to(&p, peer).await;
            tokio::time::sleep(Duration::from_millis(if end { 2 } else { 20 })).await;
        }
    }
}

/// A call the phone placed itself (its second line).
pub struct PhoneCall {
    pub call_id: String,
    pub from_tag: String,
    /// The To header of its final response (with the controller's tag).
    pub to_header: String,
    pub status: u16,
    _rtp: UdpSocket,
}

impl Drop for AgentPhone {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The URI in a message's Contact header.
fn contact_uri(m: &Msg) -> String {
    m.header("contact")
        .unwrap_or_default()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn response(req: &Msg, status: &str, extra: &str, body: &str) -> String {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for (k, v) in &req.headers {
        match k.as_str() {
            "via" | "from" | "call-id" | "cseq" => r.push_str(&format!("{k}: {v}\r\n")),
            "to" if v.contains("tag=") => r.push_str(&format!("to: {v}\r\n")),
            "to" => r.push_str(&format!("to: {v};tag=phone1\r\n")),
            _ => {}
        }
    }
    r.push_str(extra);
    r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    r
}

async fn answer_loop(sip: Arc<UdpSocket>, rtp: Arc<UdpSocket>, log: Arc<Mutex<PhoneLog>>) {
    let mut buf = vec![0u8; 8192];
    let me = sip.local_addr().expect("addr");
    let rtp_addr = rtp.local_addr().expect("rtp addr");
    while let Ok((n, from)) = sip.recv_from(&mut buf).await {
        let Some(m) = Msg::parse(&buf[..n]) else {
            continue;
        };
        if m.method().is_none() {
            if let Ok(mut l) = log.lock() {
                l.responses.push(m);
            }
            continue;
        }
        if let Ok(mut l) = log.lock() {
            let new_invite = m.method() == Some("INVITE")
                && m.header("to").is_some_and(|t| !t.contains("tag="))
                && !l.requests.iter().any(|r| {
                    r.method() == Some("INVITE") && r.header("call-id") == m.header("call-id")
                });
            if new_invite {
                l.invited_at.push(std::time::SystemTime::now());
            }
            l.requests.push(m.clone());
        }
        let mode = log.lock().map(|l| l.answer).unwrap_or_default();
        let reply = match m.method() {
            Some("INVITE") if mode == Answer::Busy => Some(response(&m, "486 Busy Here", "", "")),
            Some("INVITE") if mode == Answer::Never => Some(response(
                &m,
                "180 Ringing",
                &format!("Contact: <sip:phone@{me}>\r\n"),
                "",
            )),
            Some("CANCEL") => {
                if let Ok(mut l) = log.lock() {
                    l.cancelled
                        .push(m.header("call-id").unwrap_or_default().to_string());
                }
                Some(response(&m, "200 OK", "", ""))
            }
            Some("INVITE") => {
                let offer = String::from_utf8_lossy(&m.body).into_owned();
                if let Ok(mut l) = log.lock() {
                    l.remote_rtp = sdp_media_addr(&offer);
                }
                let ringing = response(
                    &m,
                    "180 Ringing",
                    &format!("Contact: <sip:phone@{me}>\r\n"),
                    "",
                );
                let _ = sip.send_to(ringing.as_bytes(), from).await;
                let sdp = format!(
                    "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
                    rtp_addr.port()
                );
                let ok = response(
                    &m,
                    "200 OK",
                    &format!("Contact: <sip:phone@{me}>\r\nContent-Type: application/sdp\r\n"),
                    &sdp,
                );
                match mode {
                    Answer::After(ms) => {
                        let (sip, log) = (Arc::clone(&sip), Arc::clone(&log));
                        let cid = m.header("call-id").unwrap_or_default().to_string();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            let gone = log.lock().map_or(true, |l| l.cancelled.contains(&cid));
                            if !gone {
                                let _ = sip.send_to(ok.as_bytes(), from).await;
                            }
                        });
                        None
                    }
                    _ => Some(ok),
                }
            }
            Some("BYE") | Some("OPTIONS") | Some("INFO") | Some("NOTIFY") => {
                Some(response(&m, "200 OK", "", ""))
            }
            _ => None,
        };
        if let Some(r) = reply {
            let _ = sip.send_to(r.as_bytes(), from).await;
        }
    }
}

async fn rtp_loop(rtp: Arc<UdpSocket>, log: Arc<Mutex<PhoneLog>>) {
    let mut buf = vec![0u8; 2048];
    while let Ok((n, _)) = rtp.recv_from(&mut buf).await {
        if let Some(p) = parse_rtp(&buf[..n]) {
            if let Ok(mut l) = log.lock() {
                l.rtp.push(p);
            }
        }
    }
}

/// A caller that dials `number` (a queue's own number) and is put through
/// to `phone`, which answers.
pub async fn caller_put_through(
    server: &centralita::server::Server,
    number: &str,
    phone: &AgentPhone,
    agent: &str,
) -> super::Call {
    let client = Arc::new(super::SipClient::new(server.sip_addr).await);
    let (caller, _) = super::Call::place(client, number, "0 101").await;
    super::wait_until(
        Duration::from_secs(10),
        "INVITE to the agent's phone",
        || !phone.requests("INVITE").is_empty(),
    )
    .await;
    super::wait_status(server, agent, "on_call").await;
    caller
}

/// `phone` says something (half a second of `byte`): wait until `caller`
/// hears it, relayed as sent.
pub async fn caller_hears(caller: &super::Call, phone: &AgentPhone, byte: u8, what: &str) {
    let mark = caller.packets().len();
    phone.send_audio(&vec![vec![byte; 160]; 25]).await;
    super::wait_until(super::WAIT, what, || {
        caller.packets()[mark..]
            .iter()
            .any(|p| p.ssrc == PHONE_SSRC && p.payload.iter().all(|b| *b == byte))
    })
    .await;
}
