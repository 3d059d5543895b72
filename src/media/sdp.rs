//! Minimal audio SDP offer/answer (RFC 4566 syntax, RFC 3264 model) for a
//! G.711 endpoint: parse a remote offer or answer, negotiate PCMU/PCMA plus
//! RFC 4733 telephone-event, and write our answer or offer.
//!
//! Owns: reading the one audio stream we use out of an SDP body (its
//! address, port, payload list, direction, ptime), choosing the codec, and
//! the text of every SDP body we send. It does not allocate RTP ports or
//! decide what to play.
//!
//! Sans-IO: bytes in, values out; nothing here touches a socket or the
//! clock. Host names in `c=` are refused rather than resolved.
//!
//! Hand-written because the subset we need (one audio m-line, static G.711
//! payload types, telephone-event) is small, while general SDP crates bring
//! far more surface (ICE, DTLS, WebRTC) than a plain-RTP IVR uses. The
//! parser is tolerant: CRLF or LF, unknown lines ignored, several m-lines
//! (the first usable `m=audio ... RTP/AVP` wins, the others are rejected
//! with port 0 in our answer, as RFC 3264 §6 requires).

use crate::media::g711::Codec;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Why an SDP body is refused. Each variant knows the SIP status to answer
/// an INVITE with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// No body where SDP was required (e.g. an ACK answering our offer).
    #[error("no SDP body")]
    Missing,
    /// Not parsable SDP.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No `m=audio` line with a non-zero port and RTP/AVP.
    #[error("no usable audio stream in SDP (need m=audio with RTP/AVP and a non-zero port)")]
    NoAudio,
    /// An audio stream, but no codec we support.
    #[error("no common audio codec (offered: {offered})")]
    NoCommonCodec { offered: String },
}

impl SdpError {
    /// 400 Bad Request for a missing or unparsable body, 488 Not Acceptable
    /// Here for SDP we understand but cannot accept.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Missing | SdpError::Malformed(_) => 400,
            SdpError::NoAudio | SdpError::NoCommonCodec { .. } => 488,
        }
    }
}

/// Stream direction attribute (RFC 3264 §5.1; absent means sendrecv).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute text, e.g. `sendrecv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        match s {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The direction an answerer states for a stream offered with `self`
    /// (RFC 3264 §6.1): sendonly ↔ recvonly, the others unchanged.
    pub fn mirror(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the side stating this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side stating this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// One offered payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadDesc {
    pub pt: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`).
    pub encoding: String,
    pub clock_rate: u32,
    /// Channels from the rtpmap (1 when absent).
    pub channels: u8,
    /// The `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

impl PayloadDesc {
    fn is(&self, name: &str, rate: u32) -> bool {
        self.encoding.eq_ignore_ascii_case(name) && self.clock_rate == rate
    }
}

/// Summary of one m-line, kept so an answer can list every offered stream
/// (rejected ones with port 0) in the offer's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub media: String,
    pub port: u16,
    pub proto: String,
    pub fmts: Vec<String>,
}

/// The audio stream of a remote SDP body (offer or answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSdp {
    /// Media-level `c=`, else session-level. `0.0.0.0` (or `::`) is the
    /// RFC 2543 way of putting us on hold: see [`RemoteSdp::is_hold`].
    pub conn_addr: IpAddr,
    pub port: u16,
    /// In the remote's order of preference; static PTs without rtpmap are
    /// filled in from RFC 3551, dynamic PTs without rtpmap are dropped.
    pub payloads: Vec<PayloadDesc>,
    /// Media-level direction, else session-level, else sendrecv.
    pub direction: Direction,
    /// `a=ptime` in ms (media-level, else session-level).
    pub ptime: Option<u32>,
    /// Every m-line of the body, in order.
    pub media_lines: Vec<MediaLine>,
    /// Index in `media_lines` of the audio stream described above.
    pub audio_index: usize,
}

/// The name the brief uses for a parsed offer.
pub type SdpOffer = RemoteSdp;

impl RemoteSdp {
    /// Where to send RTP.
    pub fn rtp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.conn_addr, self.port)
    }

    /// The remote does not want our media: `c=` 0.0.0.0, or it only sends
    /// / is inactive.
    pub fn is_hold(&self) -> bool {
        self.conn_addr.is_unspecified() || !self.direction.receives()
    }

    /// The remote direction with an unspecified `c=` folded in (it cannot
    /// receive at 0.0.0.0).
    fn effective_direction(&self) -> Direction {
        if self.conn_addr.is_unspecified() {
            match self.direction {
                Direction::SendRecv => Direction::SendOnly,
                Direction::RecvOnly => Direction::Inactive,
                d => d,
            }
        } else {
            self.direction
        }
    }
}

/// The result of offer/answer: what to send and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// RTP payload type of `codec` (always its static PT, 0 or 8).
    pub pt: u8,
    /// Payload type of telephone-event/8000, if the remote offered it.
    pub dtmf_pt: Option<u8>,
    /// Where to send RTP. Its IP is unspecified when the remote put us on
    /// hold with `c=0.0.0.0`: check [`Negotiated::may_send`].
    pub remote_rtp: SocketAddr,
    /// The remote's `a=ptime`, if any (we always send 20 ms).
    pub ptime: Option<u32>,
    /// Our direction (as written in our answer, or implied by the answer
    /// to our offer).
    pub direction: Direction,
    /// The remote asked not to receive media (hold).
    pub remote_hold: bool,
    /// The remote offer's m-lines (empty when we were the offerer).
    pub media_lines: Vec<MediaLine>,
    /// Index of the audio stream in `media_lines`.
    pub audio_index: usize,
}

impl Negotiated {
    /// Whether we should send RTP to `remote_rtp` at all.
    pub fn may_send(&self) -> bool {
        self.direction.sends()
            && !self.remote_rtp.ip().is_unspecified()
            && self.remote_rtp.port() != 0
    }
}

/// Parse a remote SDP offer (also used for answers): the first `m=audio`
/// with a non-zero port and RTP/AVP.
pub fn parse_offer(body: &[u8]) -> Result<RemoteSdp, SdpError> {
    parse_remote(body)
}

/// Negotiate against a remote offer with both G.711 codecs supported.
pub fn negotiate(remote: &RemoteSdp) -> Result<Negotiated, SdpError> {
    negotiate_with(remote, &Codec::ALL)
}

/// Negotiate against a remote offer: the first of the offerer's payloads
/// that is PCMU (PT 0) or PCMA (PT 8) and in `supported` (the offerer's
/// order of preference wins), plus telephone-event/8000 at the offered PT.
pub fn negotiate_with(remote: &RemoteSdp, supported: &[Codec]) -> Result<Negotiated, SdpError> {
    let codec = remote
        .payloads
        .iter()
        .find_map(|p| {
            supported
                .iter()
                .copied()
                .find(|c| p.pt == c.payload_type() && p.is(c.encoding_name(), 8000))
        })
        .ok_or_else(|| SdpError::NoCommonCodec {
            offered: remote
                .payloads
                .iter()
                .map(|p| format!("{} {}/{}", p.pt, p.encoding, p.clock_rate))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let dtmf_pt = remote
        .payloads
        .iter()
        .find(|p| p.is("telephone-event", 8000))
        .map(|p| p.pt);
    Ok(Negotiated {
        codec,
        pt: codec.payload_type(),
        dtmf_pt,
        remote_rtp: remote.rtp_addr(),
        ptime: remote.ptime,
        direction: remote.effective_direction().mirror(),
        remote_hold: remote.is_hold(),
        media_lines: remote.media_lines.clone(),
        audio_index: remote.audio_index,
    })
}

/// Parse the answer to our offer (from [`build_offer`]: PCMU, PCMA,
/// telephone-event): the answerer's first PCMU/PCMA payload wins, and its
/// telephone-event PT if any. `Missing` for an empty body, `NoAudio` when
/// the audio stream was rejected (port 0).
pub fn parse_answer(body: &[u8]) -> Result<Negotiated, SdpError> {
    let remote = parse_remote(body)?;
    let mut n = negotiate_with(&remote, &Codec::ALL)?;
    n.media_lines.clear();
    n.audio_index = 0;
    Ok(n)
}

fn ip_kind(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn session_header(out: &mut String, local_ip: IpAddr, session_id: u64) {
    let k = ip_kind(local_ip);
    let _ = write!(
        out,
        "v=0\r\no=centralita {session_id} {session_id} IN {k} {local_ip}\r\ns=centralita\r\nc=IN {k} {local_ip}\r\nt=0 0\r\n"
    );
}

/// Our answer to a later offer in the same session (re-INVITE/UPDATE):
/// the session id stays, the version is `version` (RFC 3264 §8).
pub fn build_reanswer(
    local_ip: IpAddr,
    local_port: u16,
    neg: &Negotiated,
    session_id: u64,
    version: u64,
) -> String {
    build_answer(local_ip, local_port, neg, session_id).replacen(
        &format!("o=centralita {session_id} {session_id} "),
        &format!("o=centralita {session_id} {version} "),
        1,
    )
}

/// Our answer to an offer negotiated into `neg`: the audio stream at
/// `local_ip:local_port` with the chosen codec (and telephone-event if
/// offered), our direction, and every other offered m-line rejected with
/// port 0. Lines end in CRLF.
pub fn build_answer(
    local_ip: IpAddr,
    local_port: u16,
    neg: &Negotiated,
    session_id: u64,
) -> String {
    let mut out = String::with_capacity(320);
    session_header(&mut out, local_ip, session_id);
    let audio = |out: &mut String| {
        let _ = write!(out, "m=audio {local_port} RTP/AVP {}", neg.pt);
        if let Some(d) = neg.dtmf_pt {
            let _ = write!(out, " {d}");
        }
        let _ = write!(
            out,
            "\r\na=rtpmap:{} {}/8000\r\n",
            neg.pt,
            neg.codec.encoding_name()
        );
        if let Some(d) = neg.dtmf_pt {
            let _ = write!(
                out,
                "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\n"
            );
        }
        let _ = write!(out, "a=ptime:20\r\na={}\r\n", neg.direction.as_str());
    };
    if neg.media_lines.is_empty() || neg.audio_index >= neg.media_lines.len() {
        audio(&mut out);
    } else {
        for (i, m) in neg.media_lines.iter().enumerate() {
            if i == neg.audio_index {
                audio(&mut out);
            } else {
                let fmts = if m.fmts.is_empty() {
                    "0".to_string()
                } else {
                    m.fmts.join(" ")
                };
                let _ = write!(out, "m={} 0 {} {}\r\n", m.media, m.proto, fmts);
            }
        }
    }
    out
}

/// Our offer (for an INVITE that came without SDP): PCMU, PCMA and
/// telephone-event 101 (events 0-16), 20 ms, sendrecv. Lines end in CRLF.
pub fn build_offer(local_ip: IpAddr, local_port: u16, session_id: u64) -> String {
    let mut out = String::with_capacity(320);
    session_header(&mut out, local_ip, session_id);
    let _ = write!(
        out,
        "m=audio {local_port} RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    );
    out
}

/// RFC 3551 static audio payload types we may meet without an rtpmap.
fn static_payload(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

#[derive(Default)]
struct Section {
    media: String,
    port: u16,
    proto: String,
    fmts: Vec<String>,
    conn: Option<String>,
    direction: Option<Direction>,
    ptime: Option<u32>,
    rtpmaps: Vec<(u8, String, u32, u8)>,
    fmtps: Vec<(u8, String)>,
}

fn malformed(what: impl Into<String>) -> SdpError {
    SdpError::Malformed(what.into())
}

fn parse_conn(value: &str) -> Result<IpAddr, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let (Some(net), Some(kind), Some(addr), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(malformed(format!("bad c= line {value:?}")));
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Err(malformed(format!("c= network type {net:?} is not IN")));
    }
    // Multicast forms carry /ttl and /count: the address is before the '/'.
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| malformed(format!("c= address {addr:?} is not an IP address")))?;
    match (kind.to_ascii_uppercase().as_str(), ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(malformed(format!(
            "c= address {addr:?} does not match address type {kind:?}"
        ))),
    }
}

fn parse_m(value: &str) -> Result<Section, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(malformed(format!("bad m= line {value:?}")));
    };
    let port_only = port.split('/').next().unwrap_or(port);
    let port: u16 = port_only
        .parse()
        .map_err(|_| malformed(format!("bad port in m= line {value:?}")))?;
    Ok(Section {
        media: media.to_string(),
        port,
        proto: proto.to_string(),
        fmts: it.map(str::to_string).collect(),
        ..Section::default()
    })
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]`; None if malformed.
fn parse_rtpmap(v: &str) -> Option<(u8, String, u32, u8)> {
    let (pt, rest) = v.trim().split_once(char::is_whitespace)?;
    let pt: u8 = pt.parse().ok().filter(|p| *p < 128)?;
    let mut parts = rest.trim().split('/');
    let name = parts.next()?.trim();
    let rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => c.trim().parse().ok()?,
        None => 1,
    };
    if name.is_empty() {
        return None;
    }
    Some((pt, name.to_string(), rate, channels))
}

fn parse_remote(body: &[u8]) -> Result<RemoteSdp, SdpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SdpError::Missing);
    }
    let text = String::from_utf8_lossy(body);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).trim_end())
        .filter(|l| !l.is_empty());
    match lines.next() {
        Some(l) if l.starts_with("v=") => {}
        _ => return Err(malformed("does not start with v=")),
    }
    let mut session = Section::default();
    let mut sections: Vec<Section> = Vec::new();
    for line in lines {
        let b = line.as_bytes();
        if b.len() < 2 || b[1] != b'=' {
            continue; // not a <type>=<value> line: tolerated, ignored
        }
        let value = &line[2..];
        if b[0] == b'm' {
            sections.push(parse_m(value)?);
            continue;
        }
        let cur = match sections.last_mut() {
            Some(s) => s,
            None => &mut session,
        };
        match b[0] {
            b'c' => cur.conn = Some(value.to_string()),
            b'a' => {
                let (name, arg) = match value.split_once(':') {
                    Some((n, a)) => (n.trim(), Some(a)),
                    None => (value.trim(), None),
                };
                match (name, arg) {
                    ("rtpmap", Some(a)) => {
                        if let Some(m) = parse_rtpmap(a) {
                            cur.rtpmaps.push(m);
                        }
                    }
                    ("fmtp", Some(a)) => {
                        if let Some((pt, params)) = a.trim().split_once(char::is_whitespace) {
                            if let Ok(pt) = pt.parse::<u8>() {
                                cur.fmtps.push((pt, params.trim().to_string()));
                            }
                        }
                    }
                    ("ptime", Some(a)) => cur.ptime = a.trim().parse().ok().filter(|p| *p > 0),
                    (d, None) => {
                        if let Some(d) = Direction::parse(d) {
                            cur.direction = Some(d);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let audio_index = sections
        .iter()
        .position(|s| {
            s.media.eq_ignore_ascii_case("audio")
                && s.port != 0
                && s.proto.eq_ignore_ascii_case("RTP/AVP")
        })
        .ok_or(SdpError::NoAudio)?;
    let media_lines = sections
        .iter()
        .map(|s| MediaLine {
            media: s.media.clone(),
            port: s.port,
            proto: s.proto.clone(),
            fmts: s.fmts.clone(),
        })
        .collect();
    let a = sections.get(audio_index).ok_or(SdpError::NoAudio)?;
    let conn = a
        .conn
        .as_deref()
        .or(session.conn.as_deref())
        .ok_or_else(|| malformed("no c= line for the audio stream"))?;
    let conn_addr = parse_conn(conn)?;
    let payloads = a
        .fmts
        .iter()
        .filter_map(|f| f.parse::<u8>().ok().filter(|p| *p < 128))
        .filter_map(|pt| {
            let fmtp = a
                .fmtps
                .iter()
                .find(|(p, _)| *p == pt)
                .map(|(_, f)| f.clone());
            if let Some((_, name, rate, ch)) = a.rtpmaps.iter().find(|(p, ..)| *p == pt) {
                Some(PayloadDesc {
                    pt,
                    encoding: name.clone(),
                    clock_rate: *rate,
                    channels: *ch,
                    fmtp,
                })
            } else {
                static_payload(pt).map(|(name, rate)| PayloadDesc {
                    pt,
                    encoding: name.to_string(),
                    clock_rate: rate,
                    channels: 1,
                    fmtp,
                })
            }
        })
        .collect();
    Ok(RemoteSdp {
        conn_addr,
        port: a.port,
        payloads,
        direction: a.direction.or(session.direction).unwrap_or_default(),
        ptime: a.ptime.or(session.ptime),
        media_lines,
        audio_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SIPP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    const BARESIP: &str = "v=0\r\n\
o=- 1158370046 3034254262 IN IP4 192.0.2.20\r\n\
s=-\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 10000 RTP/AVP 8 0 101\r\n\
b=AS:64\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:1504530633 cname:ab12\r\n\
a=rtcp-rsize\r\n\
a=ptime:20\r\n";

    const LINPHONE: &str = "v=0\r\n\
o=alice 2345 2345 IN IP4 192.0.2.30\r\n\
s=Talk\r\n\
c=IN IP4 192.0.2.30\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
m=audio 7078 RTP/AVP 96 97 98 18 8 0 101 99 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=fmtp:18 annexb=yes\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
m=video 9078 RTP/AVP 96\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=recvonly\r\n";

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn sipp_offer() {
        let r = parse_offer(SIPP.as_bytes()).expect("parses");
        assert_eq!(r.rtp_addr(), SocketAddr::new(v4(192, 0, 2, 10), 6000));
        assert_eq!(r.direction, Direction::SendRecv);
        let n = negotiate(&r).expect("negotiates");
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, None));
        assert!(n.may_send());
        assert!(!n.remote_hold);
    }

    #[test]
    fn baresip_offer_keeps_offerer_preference_and_dtmf_pt() {
        let r = parse_offer(BARESIP.as_bytes()).expect("parses");
        assert_eq!(r.ptime, Some(20));
        assert_eq!(r.payloads[2].fmtp.as_deref(), Some("0-15"));
        let n = negotiate(&r).expect("negotiates");
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(101)));
        // Restricting what we support changes the pick.
        let n = negotiate_with(&r, &[Codec::Pcmu]).expect("negotiates");
        assert_eq!(n.codec, Codec::Pcmu);
    }

    #[test]
    fn linphone_offer_with_opus_first_picks_g711_and_8k_dtmf() {
        let r = parse_offer(LINPHONE.as_bytes()).expect("parses");
        assert_eq!(r.payloads[0].encoding, "opus");
        assert_eq!(r.payloads[0].channels, 2);
        assert_eq!(r.payloads[3].encoding, "G729"); // static, no rtpmap
        assert_eq!(r.media_lines.len(), 2);
        let n = negotiate(&r).expect("negotiates");
        assert_eq!((n.codec, n.dtmf_pt), (Codec::Pcma, Some(100)));
        let ans = build_answer(v4(192, 0, 2, 1), 20000, &n, 42);
        assert!(ans.contains("m=audio 20000 RTP/AVP 8 100\r\n"), "{ans}");
        assert!(
            ans.contains("m=video 0 RTP/AVP 96\r\n"),
            "video rejected: {ans}"
        );
        assert!(ans.find("m=audio") < ans.find("m=video"), "order kept");
    }

    #[test]
    fn telephone_event_96_kept() {
        let body = "v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
        let n = negotiate(&parse_offer(body.as_bytes()).expect("parses")).expect("negotiates");
        assert_eq!(n.dtmf_pt, Some(96));
        let ans = build_answer(v4(192, 0, 2, 1), 30000, &n, 1);
        assert!(ans.contains("a=rtpmap:96 telephone-event/8000\r\n"));
    }

    #[test]
    fn no_common_codec_is_488() {
        let body =
            "v=0\nc=IN IP4 192.0.2.5\nm=audio 4000 RTP/AVP 96 18\na=rtpmap:96 opus/48000/2\n";
        let e = negotiate(&parse_offer(body.as_bytes()).expect("parses")).expect_err("no codec");
        assert!(matches!(e, SdpError::NoCommonCodec { .. }));
        assert_eq!(e.sip_status(), 488);
        assert!(e.to_string().contains("opus"), "{e}");
        // PCMU at a dynamic PT is not accepted: we only send static PTs.
        let body = "v=0\nc=IN IP4 192.0.2.5\nm=audio 4000 RTP/AVP 97\na=rtpmap:97 PCMU/8000\n";
        assert_eq!(
            negotiate(&parse_offer(body.as_bytes()).expect("parses"))
                .map(|_| ())
                .map_err(|e| e.sip_status()),
            Err(488)
        );
    }

    #[test]
    fn no_audio_is_488() {
        for body in [
            "v=0\r\nc=IN IP4 192.0.2.5\r\nm=video 5000 RTP/AVP 96\r\n",
            "v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 0 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 5000 RTP/SAVP 0\r\n",
            "v=0\r\nc=IN IP4 192.0.2.5\r\n",
        ] {
            let e = parse_offer(body.as_bytes()).expect_err(body);
            assert_eq!(e, SdpError::NoAudio);
            assert_eq!(e.sip_status(), 488);
        }
    }

    #[test]
    fn first_usable_audio_line_is_chosen() {
        let body = "v=0\r\nc=IN IP4 192.0.2.5\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=audio 5000 RTP/SAVP 0\r\n\
m=audio 6000 RTP/AVP 8\r\nc=IN IP4 192.0.2.6\r\n\
m=audio 7000 RTP/AVP 0\r\n";
        let r = parse_offer(body.as_bytes()).expect("parses");
        assert_eq!(r.audio_index, 2);
        assert_eq!(r.rtp_addr(), SocketAddr::new(v4(192, 0, 2, 6), 6000));
        let n = negotiate(&r).expect("negotiates");
        let ans = build_answer(v4(192, 0, 2, 1), 9000, &n, 7);
        let ms: Vec<&str> = ans.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            ms,
            vec![
                "m=audio 0 RTP/AVP 0",
                "m=audio 0 RTP/SAVP 0",
                "m=audio 9000 RTP/AVP 8",
                "m=audio 0 RTP/AVP 0"
            ]
        );
    }

    #[test]
    fn garbage_is_400() {
        for body in [
            &b"hello world"[..],
            b"\x00\xff\xfe garbage",
            b"v=0\r\nm=audio notaport RTP/AVP 0\r\n",
            b"v=0\r\nc=IN IP4 not-an-ip\r\nm=audio 4000 RTP/AVP 0\r\n",
            b"v=0\r\nc=IN IP4 2001:db8::1\r\nm=audio 4000 RTP/AVP 0\r\n",
            b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n", // no c= at all
            b"v=0\r\nc=IN\r\nm=audio 4000 RTP/AVP 0\r\n",
            b"v=0\r\nm=audio\r\n",
        ] {
            let e = parse_offer(body).expect_err("garbage");
            assert_eq!(e.sip_status(), 400, "{e} for {body:?}");
        }
        assert_eq!(parse_offer(b"").expect_err("empty"), SdpError::Missing);
        assert_eq!(
            parse_answer(b"  \r\n").expect_err("empty"),
            SdpError::Missing
        );
    }

    #[test]
    fn ipv6_offer_and_answer() {
        let body = "v=0\r\no=- 1 1 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n";
        let r = parse_offer(body.as_bytes()).expect("parses");
        let ip6: IpAddr = "2001:db8::5".parse().expect("ip");
        assert_eq!(r.rtp_addr(), SocketAddr::new(ip6, 4000));
        let n = negotiate(&r).expect("negotiates");
        assert_eq!(n.remote_rtp.to_string(), "[2001:db8::5]:4000");
        let local = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let ans = build_answer(local, 5000, &n, 9);
        assert!(ans.contains("c=IN IP6 ::1\r\n"), "{ans}");
        assert!(ans.contains("o=centralita 9 9 IN IP6 ::1\r\n"), "{ans}");
        let back = parse_answer(ans.as_bytes()).expect("round trip");
        assert_eq!(back.remote_rtp, SocketAddr::new(local, 5000));
    }

    #[test]
    fn session_vs_media_level_connection() {
        let session_only = "v=0\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            parse_offer(session_only.as_bytes())
                .expect("parses")
                .conn_addr,
            v4(192, 0, 2, 7)
        );
        let media_wins = "v=0\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.8/127\r\n";
        assert_eq!(
            parse_offer(media_wins.as_bytes())
                .expect("parses")
                .conn_addr,
            v4(192, 0, 2, 8)
        );
        let media_only = "v=0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n";
        assert_eq!(
            parse_offer(media_only.as_bytes())
                .expect("parses")
                .conn_addr,
            v4(192, 0, 2, 9)
        );
    }

    #[test]
    fn lf_only_and_unknown_lines() {
        let lf = BARESIP.replace("\r\n", "\n");
        let a = parse_offer(lf.as_bytes()).expect("LF parses");
        let b = parse_offer(BARESIP.as_bytes()).expect("CRLF parses");
        assert_eq!(a, b);
        let odd = "v=0\nx-weird line without equals\nz=unknown\nc=IN IP4 192.0.2.5\nm=audio 4000 RTP/AVP 8\na=foo:bar\n";
        assert_eq!(
            negotiate(&parse_offer(odd.as_bytes()).expect("parses"))
                .expect("ok")
                .codec,
            Codec::Pcma
        );
    }

    #[test]
    fn direction_is_mirrored() {
        for (offered, answered, hold) in [
            ("sendrecv", Direction::SendRecv, false),
            ("sendonly", Direction::RecvOnly, true),
            ("recvonly", Direction::SendOnly, false),
            ("inactive", Direction::Inactive, true),
        ] {
            let body =
                format!("v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 4000 RTP/AVP 0\r\na={offered}\r\n");
            let n = negotiate(&parse_offer(body.as_bytes()).expect("parses")).expect("ok");
            assert_eq!(n.direction, answered, "{offered}");
            assert_eq!(n.remote_hold, hold, "{offered}");
            let ans = build_answer(v4(192, 0, 2, 1), 5000, &n, 1);
            assert!(
                ans.contains(&format!("a={}\r\n", answered.as_str())),
                "{ans}"
            );
        }
        // Session-level direction applies when the media has none.
        let body = "v=0\r\nc=IN IP4 192.0.2.5\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            negotiate(&parse_offer(body.as_bytes()).expect("p"))
                .expect("n")
                .direction,
            Direction::RecvOnly
        );
    }

    #[test]
    fn zero_connection_address_is_hold() {
        let body = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let r = parse_offer(body.as_bytes()).expect("parses");
        assert!(r.is_hold());
        let n = negotiate(&r).expect("negotiates");
        assert!(n.remote_hold);
        assert!(!n.may_send());
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(n.remote_rtp.ip().is_unspecified());
    }

    #[test]
    fn build_answer_round_trips() {
        let n = negotiate(&parse_offer(BARESIP.as_bytes()).expect("parses")).expect("negotiates");
        let ans = build_answer(v4(192, 0, 2, 1), 40000, &n, 77);
        assert!(ans.ends_with("\r\n") && ans.starts_with("v=0\r\n"));
        let back = parse_answer(ans.as_bytes()).expect("our answer parses");
        assert_eq!((back.codec, back.dtmf_pt), (Codec::Pcma, Some(101)));
        assert_eq!(back.remote_rtp, SocketAddr::new(v4(192, 0, 2, 1), 40000));
        assert_eq!(back.ptime, Some(20));
        assert_eq!(back.direction, Direction::SendRecv);
    }

    #[test]
    fn build_offer_and_parse_answer() {
        let offer = build_offer(v4(192, 0, 2, 1), 30000, 5);
        let r = parse_offer(offer.as_bytes()).expect("our offer parses");
        let pts: Vec<(u8, &str)> = r
            .payloads
            .iter()
            .map(|p| (p.pt, p.encoding.as_str()))
            .collect();
        assert_eq!(
            pts,
            vec![(0, "PCMU"), (8, "PCMA"), (101, "telephone-event")]
        );
        assert_eq!(r.payloads[2].fmtp.as_deref(), Some("0-16"));
        assert_eq!((r.ptime, r.direction), (Some(20), Direction::SendRecv));
        // The answer from the ACK: the answerer picks PCMA and keeps 101.
        let answer = "v=0\r\no=- 2 2 IN IP4 192.0.2.40\r\ns=-\r\nc=IN IP4 192.0.2.40\r\nt=0 0\r\nm=audio 8000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
        let n = parse_answer(answer.as_bytes()).expect("answer");
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(101)));
        assert_eq!(n.remote_rtp, SocketAddr::new(v4(192, 0, 2, 40), 8000));
        // Rejected audio in the answer.
        let rejected = "v=0\r\nc=IN IP4 192.0.2.40\r\nm=audio 0 RTP/AVP 0\r\n";
        assert_eq!(
            parse_answer(rejected.as_bytes())
                .expect_err("rejected")
                .sip_status(),
            488
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_offer(&body).and_then(|r| negotiate(&r));
            let _ = parse_answer(&body);
        }

        #[test]
        fn sdp_shaped_text_never_panics(lines in proptest::collection::vec(
            "(v=0|c=IN IP[46] [0-9a-f:.]{0,20}|m=audio [0-9]{0,6} RTP/AVP( [0-9]{1,3}){0,4}|a=rtpmap:[0-9]{1,3} [A-Za-z-]{0,8}/[0-9]{0,6}(/[0-9])?|a=(sendonly|recvonly|inactive|ptime:[0-9]{0,4})|[a-z]=.{0,10}|.{0,12})",
            0..12)) {
            let body = lines.join("\r\n");
            if let Ok(r) = parse_offer(body.as_bytes()) {
                if let Ok(n) = negotiate(&r) {
                    let ans = build_answer("192.0.2.1".parse().expect("ip"), 1000, &n, 1);
                    prop_assert!(parse_answer(ans.as_bytes()).is_ok());
                }
            }
        }
    }
}
