//! The socket front's light look at a SIP message, before rsipstack parses it.
//!
//! This is deliberately *not* a second SIP parser: it splits the start line and
//! the header lines, expands compact header names, and checks only what
//! rsipstack cannot or does not answer itself — framing (Content-Length over
//! UDP and TCP), the protocol version, unknown methods (rsipstack's `Method`
//! is a closed enum and drops them unparsed), mandatory and single-valued
//! headers, CSeq sanity and Request-URI schemes. Everything it refuses gets a
//! stateless response built from the request's own Via/From/To/Call-ID/CSeq;
//! what it cannot answer is dropped and counted by the caller.
//!
//! Written by hand because it runs on every datagram and must never fail on
//! garbage; it allocates only the header list. Sans-IO: no sockets, no clock.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Methods centralita knows (RFC 3261 and extensions rsipstack parses).
pub const KNOWN_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "PRACK",
    "UPDATE",
    "REFER",
    "NOTIFY",
    "SUBSCRIBE",
    "MESSAGE",
    "PUBLISH",
];

/// What the controller serves; sent in `Allow`.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";

/// Largest message accepted (headers plus body); bigger input is refused
/// with 513. rsipstack reads datagrams into an 8 KiB buffer, so that is the
/// limit for everything it must see.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request {
        method: &'a str,
        uri: &'a str,
        version: &'a str,
    },
    Response {
        version: &'a str,
        code: &'a str,
    },
}

/// One header line, with its name canonicalised (lowercase, compact forms
/// expanded) and folded continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader<'a> {
    pub name: Cow<'a, str>,
    pub raw_name: &'a str,
    /// Borrowed from the message unless folded lines had to be joined.
    pub value: Cow<'a, str>,
}

/// A message split into its parts; `framed_len` is how many bytes of the
/// input belong to it (trailing datagram noise is ignored, RFC 3261 §18.3).
#[derive(Debug, Clone)]
pub struct RawMessage<'a> {
    pub start: StartLine<'a>,
    pub headers: Vec<RawHeader<'a>>,
    pub body: &'a [u8],
    pub framed_len: usize,
    /// The first problem met while splitting headers or framing the body;
    /// the headers that could be read are kept so a request can be answered.
    pub problem: Option<FrontError>,
}

/// Why the front refuses or drops a message. Each refusal knows its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontError {
    /// Not even a start line and headers: nothing to answer to.
    Unframed(&'static str),
    /// A request we can answer with this status.
    Refuse {
        status: u16,
        reason: &'static str,
        detail: String,
    },
    /// A response (or anything) to be dropped silently, with the reason.
    DropResponse(&'static str),
}

impl FrontError {
    fn bad(detail: impl Into<String>) -> Self {
        FrontError::Refuse {
            status: 400,
            reason: "Bad Request",
            detail: detail.into(),
        }
    }
}

/// Expand RFC 3261 §7.3.3 compact forms and lowercase the name (borrowed
/// when it already is lowercase).
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    if name.len() == 1 {
        let full = match name.as_bytes()[0].to_ascii_lowercase() {
            b'i' => "call-id",
            b'm' => "contact",
            b'e' => "content-encoding",
            b'l' => "content-length",
            b'c' => "content-type",
            b'f' => "from",
            b's' => "subject",
            b'k' => "supported",
            b't' => "to",
            b'v' => "via",
            b'o' => "event",
            b'r' => "refer-to",
            b'b' => "referred-by",
            b'u' => "allow-events",
            b'x' => "session-expires",
            b'a' => "accept-contact",
            b'j' => "reject-contact",
            b'd' => "request-disposition",
            _ => return Cow::Owned(name.to_ascii_lowercase()),
        };
        return Cow::Borrowed(full);
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Find the end of the header section: index of the first byte after the
/// empty line, accepting CRLF or bare LF line ends.
fn header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Split a message. `datagram` says whether the transport is UDP (a missing
/// Content-Length means "the rest of the datagram"; too few bytes is a 400)
/// or a stream (where the caller frames by Content-Length itself).
pub fn split(buf: &[u8], datagram: bool) -> Result<RawMessage<'_>, FrontError> {
    let end = header_end(buf).ok_or(FrontError::Unframed("no end of headers"))?;
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| FrontError::Unframed("header bytes are not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(FrontError::Unframed("empty message"))?;
    let start = parse_start_line(first)?;

    let mut headers: Vec<RawHeader<'_>> = Vec::with_capacity(16);
    let mut problem = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            match headers.last_mut() {
                Some(h) => {
                    let joined = h.value.to_mut();
                    joined.push(' ');
                    joined.push_str(line.trim());
                }
                None => {
                    problem.get_or_insert(bad_for(&start, "continuation line before any header"));
                }
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            problem.get_or_insert(bad_for(
                &start,
                format!("header line without ':': {line:.40}"),
            ));
            continue;
        };
        let raw_name = name.trim_end();
        if raw_name.is_empty() || !raw_name.chars().all(is_token_char) {
            problem.get_or_insert(bad_for(&start, format!("bad header name {raw_name:.40}")));
            continue;
        }
        headers.push(RawHeader {
            name: canonical_name(raw_name),
            raw_name,
            value: Cow::Borrowed(value.trim()),
        });
    }

    let rest = &buf[end..];
    let body_len = match frame_body(&start, &headers, rest.len(), datagram) {
        Ok(n) => n,
        Err(FrontError::Unframed(r)) => return Err(FrontError::Unframed(r)),
        Err(e) => {
            problem.get_or_insert(e);
            0
        }
    };
    if problem.is_none() && end + body_len > MAX_MESSAGE_BYTES {
        problem = Some(match start {
            StartLine::Request { .. } => FrontError::Refuse {
                status: 513,
                reason: "Message Too Large",
                detail: "message larger than 8 KiB".into(),
            },
            StartLine::Response { .. } => FrontError::DropResponse("oversize response"),
        });
    }
    Ok(RawMessage {
        start,
        headers,
        body: &rest[..body_len],
        framed_len: end + body_len,
        problem,
    })
}

/// How many body bytes follow the headers, from Content-Length.
fn frame_body(
    start: &StartLine<'_>,
    headers: &[RawHeader<'_>],
    available: usize,
    datagram: bool,
) -> Result<usize, FrontError> {
    let lengths: Vec<&RawHeader<'_>> = headers
        .iter()
        .filter(|h| h.name == "content-length")
        .collect();
    let body_len = match lengths.as_slice() {
        [] if datagram => available,
        [] => 0,
        [one] => parse_content_length(start, &one.value)?,
        [first, others @ ..] => {
            if others.iter().any(|h| h.value != first.value) {
                return Err(bad_for(start, "conflicting Content-Length values"));
            }
            parse_content_length(start, &first.value)?
        }
    };
    if body_len > available {
        if datagram {
            return Err(bad_for(
                start,
                "Content-Length larger than the datagram's body",
            ));
        }
        return Err(FrontError::Unframed("incomplete body"));
    }
    Ok(body_len)
}

fn bad_for(start: &StartLine<'_>, detail: impl Into<String>) -> FrontError {
    match start {
        StartLine::Request { .. } => FrontError::bad(detail),
        StartLine::Response { .. } => FrontError::DropResponse("malformed response"),
    }
}

fn parse_content_length(start: &StartLine<'_>, value: &str) -> Result<usize, FrontError> {
    value
        .parse::<usize>()
        .map_err(|_| bad_for(start, format!("bad Content-Length {value:.20}")))
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, FrontError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let mut parts = rest.splitn(3, ' ');
        let _ver = parts.next();
        let code = parts
            .next()
            .ok_or(FrontError::DropResponse("response without status"))?;
        let valid = code.len() == 3
            && code.bytes().all(|b| b.is_ascii_digit())
            && code.as_bytes()[0] != b'0';
        if !valid {
            return Err(FrontError::DropResponse(
                "response status is not a 3-digit code",
            ));
        }
        let version = &line[..line.find(' ').unwrap_or(line.len())];
        return Ok(StartLine::Response { version, code });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        // Either extra spaces (lwsstart, trws) or garbage. A request-looking
        // line is answered 400 if the headers let us; else dropped.
        if parts
            .first()
            .is_some_and(|m| !m.is_empty() && m.chars().all(is_token_char))
            && line.contains(" SIP/")
        {
            return Ok(StartLine::Request {
                method: parts[0],
                uri: "",
                version: "",
            });
        }
        return Err(FrontError::Unframed("not a SIP start line"));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !method.chars().all(is_token_char) {
        return Err(FrontError::Unframed("method is not a token"));
    }
    Ok(StartLine::Request {
        method,
        uri,
        version,
    })
}

impl<'a> RawMessage<'a> {
    /// All values of a header (by canonical lowercase name), comma-joined
    /// lines kept as separate entries.
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| h.value.as_ref())
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_ref())
    }

    pub fn method(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// CSeq method (for responses: which request they answer).
    pub fn cseq_method(&self) -> Option<&str> {
        self.first("cseq").and_then(|v| v.split_whitespace().nth(1))
    }

    /// Top Via branch parameter, if any.
    pub fn top_branch(&self) -> Option<&str> {
        let via = self.first("via")?;
        let first = via.split(',').next()?;
        first.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
        })
    }
}

/// Checks on a split request that the front answers itself. `Ok(())` means
/// "hand it to rsipstack".
/// Whether a request comes from a known SIP scanner: its User-Agent
/// contains one of `refused` (lower-case substrings), in any case.
pub fn from_scanner(msg: &RawMessage<'_>, refused: &[String]) -> bool {
    if refused.is_empty() {
        return false;
    }
    msg.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("user-agent"))
        .any(|h| {
            let ua = h.value.to_lowercase();
            refused.iter().any(|r| ua.contains(r.as_str()))
        })
}

pub fn check_request(msg: &RawMessage<'_>) -> Result<(), FrontError> {
    if let Some(p) = &msg.problem {
        return Err(p.clone());
    }
    let StartLine::Request {
        method,
        uri,
        version,
    } = msg.start
    else {
        return Ok(());
    };
    if uri.is_empty() {
        return Err(FrontError::bad(
            "malformed Request-Line (extra or missing spaces)",
        ));
    }
    if version != "SIP/2.0" {
        if version.starts_with("SIP/") {
            return Err(FrontError::Refuse {
                status: 505,
                reason: "Version Not Supported",
                detail: format!("version {version:.20}"),
            });
        }
        return Err(FrontError::bad("malformed SIP version"));
    }
    for name in ["via", "cseq", "call-id", "from", "to"] {
        if msg.first(name).is_none() {
            return Err(FrontError::bad(format!("missing {name}")));
        }
    }
    for name in [
        "call-id",
        "from",
        "to",
        "cseq",
        "max-forwards",
        "content-type",
    ] {
        if msg.values(name).nth(1).is_some() {
            return Err(FrontError::bad(format!("more than one {name}")));
        }
    }
    let cseq = msg.first("cseq").unwrap_or_default();
    let mut parts = cseq.split_whitespace();
    let (Some(num), Some(cmethod), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(FrontError::bad("malformed CSeq"));
    };
    match num.parse::<u32>() {
        Ok(n) if n < (1 << 31) => {}
        _ => return Err(FrontError::bad("CSeq number out of range")),
    }
    if let Some(mf) = msg.first("max-forwards") {
        if mf.parse::<u8>().is_err() {
            return Err(FrontError::bad("Max-Forwards out of range"));
        }
    }
    if !KNOWN_METHODS.contains(&method) {
        return Err(FrontError::Refuse {
            status: 501,
            reason: "Not Implemented",
            detail: "unknown method".into(),
        });
    }
    if cmethod != method {
        return Err(FrontError::bad(
            "CSeq method does not match the request method",
        ));
    }
    let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sip") | Some("sips") | Some("tel") => {}
        Some(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            return Err(FrontError::Refuse {
                status: 416,
                reason: "Unsupported URI Scheme",
                detail: format!("scheme {s:.20}"),
            })
        }
        _ => return Err(FrontError::bad("malformed Request-URI")),
    }
    if uri.starts_with('<') || uri.contains(['<', '>']) {
        return Err(FrontError::bad("Request-URI in angle brackets"));
    }
    check_structure(msg)?;
    if method != "ACK" && method != "CANCEL" {
        let unsupported: Vec<&str> = msg
            .values("require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| {
                !t.is_empty() && !SUPPORTED_OPTIONS.iter().any(|s| s.eq_ignore_ascii_case(t))
            })
            .collect();
        if !unsupported.is_empty() {
            return Err(FrontError::Refuse {
                status: 420,
                reason: "Bad Extension",
                detail: unsupported.join(", "),
            });
        }
    }
    Ok(())
}

/// Header values whose structure the front checks before rsipstack, which
/// tolerates them: empty parameters or values (`;;`, `,,`) in Via and
/// Contact, and unbalanced quotes in the name-addr headers.
fn check_structure(msg: &RawMessage<'_>) -> Result<(), FrontError> {
    for h in &msg.headers {
        let v = h.value.as_ref();
        if matches!(h.name.as_ref(), "via" | "contact") {
            let squeezed: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            if squeezed.contains(";;")
                || squeezed.contains(",,")
                || squeezed.contains(";,")
                || squeezed.ends_with(';')
            {
                return Err(FrontError::bad(format!("empty parameter in {}", h.name)));
            }
        }
        if matches!(h.name.as_ref(), "from" | "to" | "contact") && !quotes_balanced(v) {
            return Err(FrontError::bad(format!(
                "unterminated quoted string in {}",
                h.name
            )));
        }
    }
    Ok(())
}

fn quotes_balanced(v: &str) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for c in v.chars() {
        match (inside, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, _, '"') => inside = !inside,
            _ => {}
        }
    }
    !inside
}

/// The message rebuilt for rsipstack, which needs a From tag to key a
/// transaction and does not read LWS around `;` and `=`: folded lines are
/// joined (RFC 3261 §7.3.1 makes that equivalent), LWS around the
/// parameters of From and To is removed, and a From without a tag (RFC 2543
/// style) gets one derived from the Call-ID and From, the same for every
/// retransmission. The body is kept byte for byte.
pub fn normalized(msg: &RawMessage<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + msg.body.len());
    match msg.start {
        StartLine::Request {
            method,
            uri,
            version,
        } => {
            let _ = write!(Adapter(&mut out), "{method} {uri} {version}\r\n");
        }
        StartLine::Response { .. } => return Vec::new(),
    }
    for h in &msg.headers {
        let value = match h.name.as_ref() {
            "from" | "to" => {
                let mut v = tidy_params(&h.value);
                if h.name == "from" && !has_tag(&v) {
                    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
                    for b in msg
                        .first("call-id")
                        .unwrap_or_default()
                        .bytes()
                        .chain(v.bytes())
                    {
                        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                    }
                    let _ = write!(v, ";tag=2543-{:x}", hash & 0xffff_ffff);
                }
                v
            }
            _ => h.value.to_string(),
        };
        let _ = write!(Adapter(&mut out), "{}: {}\r\n", h.raw_name, value);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(msg.body);
    out
}

fn has_tag(v: &str) -> bool {
    let params = v.rsplit_once('>').map(|(_, p)| p).unwrap_or(v);
    params
        .split(';')
        .skip(1)
        .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
}

/// `<uri> ; tag = x` → `<uri>;tag=x` (only after the closing `>`, or after
/// the URI when there are no brackets).
fn tidy_params(v: &str) -> String {
    let (head, tail) = match v.rfind('>') {
        Some(i) => (&v[..=i], &v[i + 1..]),
        None => match v.find(';') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, ""),
        },
    };
    let params: Vec<String> = tail
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, val)) => format!("{}={}", k.trim(), val.trim()),
            None => p.to_string(),
        })
        .collect();
    let mut out = head.trim_end().to_string();
    for p in params {
        out.push(';');
        out.push_str(&p);
    }
    out
}

/// `fmt::Write` into a byte vector.
struct Adapter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Adapter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Option tags we accept in `Require`.
pub const SUPPORTED_OPTIONS: &[&str] = &[];

/// Build a stateless response to a split request: Via, From, To (with a tag
/// added for final responses), Call-ID and CSeq copied as they came.
pub fn build_response(
    msg: &RawMessage<'_>,
    status: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
    for h in msg.headers.iter().filter(|h| h.name == "via") {
        let _ = write!(out, "Via: {}\r\n", h.value);
    }
    if let Some(from) = msg.first("from") {
        let _ = write!(out, "From: {from}\r\n");
    }
    if let Some(to) = msg.first("to") {
        let has_tag = to
            .split(';')
            .skip(1)
            .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="));
        if has_tag || status < 200 {
            let _ = write!(out, "To: {to}\r\n");
        } else {
            let _ = write!(out, "To: {to};tag={}\r\n", stateless_tag(msg));
        }
    }
    if let Some(cid) = msg.first("call-id") {
        let _ = write!(out, "Call-ID: {cid}\r\n");
    }
    if let Some(cseq) = msg.first("cseq") {
        let _ = write!(out, "CSeq: {cseq}\r\n");
    }
    for (k, v) in extra {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.push_str("Server: centralita\r\nContent-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// A To tag that is the same for retransmissions of one request.
fn stateless_tag(msg: &RawMessage<'_>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in [msg.first("call-id"), msg.top_branch(), msg.first("cseq")]
        .into_iter()
        .flatten()
    {
        for b in s.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:x}", h & 0xffff_ffff_ffff)
}

/// The front's stateless answer to a request it refuses
/// ([`FrontError::Refuse`]), with the headers that go with the status
/// (`Allow` for 405 and 501, `Unsupported` for 420).
pub fn build_refusal(msg: &RawMessage<'_>, status: u16, reason: &str, detail: &str) -> Vec<u8> {
    let allow;
    let extra: &[(&str, &str)] = match status {
        405 | 501 => {
            allow = ALLOW.to_string();
            &[("Allow", &allow)]
        }
        420 => &[("Unsupported", detail)],
        _ => &[],
    };
    build_response(msg, status, reason, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";

    #[test]
    fn splits_compact_headers_and_builds_response() {
        let m = split(OPTIONS, true).expect("split");
        assert_eq!(m.first("call-id"), Some("abc"));
        assert_eq!(m.values("via").count(), 2);
        assert_eq!(m.top_branch(), Some("z9hG4bK1"));
        assert!(check_request(&m).is_ok());
        let r = String::from_utf8(build_response(&m, 404, "Not Found", &[])).expect("utf8");
        assert!(r.starts_with("SIP/2.0 404 Not Found\r\n"));
        assert!(r.contains(
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.1"
        ));
        assert!(r.contains("To: <sip:100@127.0.0.1>;tag="));
        assert!(r.contains("CSeq: 1 OPTIONS\r\n"));
    }

    #[test]
    fn trailing_datagram_bytes_are_ignored() {
        let mut d = OPTIONS.to_vec();
        d.extend_from_slice(b"INVITE sip:x SIP/2.0\r\n\r\n");
        let m = split(&d, true).expect("split");
        assert_eq!(m.framed_len, OPTIONS.len());
    }

    #[test]
    fn content_length_larger_than_datagram_is_400() {
        let d = String::from_utf8_lossy(OPTIONS).replace("l: 0", "l: 99");
        let m = split(d.as_bytes(), true).expect("split keeps the headers");
        assert!(matches!(
            check_request(&m),
            Err(FrontError::Refuse { status: 400, .. })
        ));
        assert!(matches!(
            split(d.as_bytes(), false),
            Err(FrontError::Unframed(_))
        ));
    }

    #[test]
    fn unknown_method_is_501_and_bad_version_505() {
        let d = String::from_utf8_lossy(OPTIONS)
            .replace("OPTIONS sip", "FOO sip")
            .replace("1 OPTIONS", "1 FOO");
        let m = split(d.as_bytes(), true).expect("split");
        assert!(matches!(
            check_request(&m),
            Err(FrontError::Refuse { status: 501, .. })
        ));
        let d = String::from_utf8_lossy(OPTIONS).replace("127.0.0.1 SIP/2.0", "127.0.0.1 SIP/7.0");
        let m = split(d.as_bytes(), true).expect("split");
        assert!(matches!(
            check_request(&m),
            Err(FrontError::Refuse { status: 505, .. })
        ));
    }

    #[test]
    fn normalized_unfolds_and_tidies_from_and_adds_a_missing_tag() {
        let folded = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: \"A\" <sip:a@b>\r\n  ;\r\n  tag = 98\r\nTo: sip:c@d\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 2\r\n\r\nhi";
        let m = split(folded, true).expect("split");
        let n = String::from_utf8(normalized(&m)).expect("utf8");
        assert!(n.contains("From: \"A\" <sip:a@b>;tag=98\r\n"), "{n}");
        assert!(n.ends_with("\r\n\r\nhi"));
        let untagged = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: sip:c@d\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
        let m = split(untagged, true).expect("split");
        let once = normalized(&m);
        assert!(String::from_utf8_lossy(&once).contains("From: <sip:a@b>;tag=2543-"));
        assert_eq!(once, normalized(&m), "the same tag for a retransmission");
    }

    #[test]
    fn empty_via_params_and_open_quotes_are_400() {
        let d =
            String::from_utf8_lossy(OPTIONS).replace("branch=z9hG4bK1", "branch=z9hG4bK1;;,;,,");
        let m = split(d.as_bytes(), true).expect("split");
        assert!(matches!(
            check_request(&m),
            Err(FrontError::Refuse { status: 400, .. })
        ));
        let d =
            String::from_utf8_lossy(OPTIONS).replace("From: <sip:a@b>", "From: \"Bob <sip:a@b>");
        let m = split(d.as_bytes(), true).expect("split");
        assert!(matches!(
            check_request(&m),
            Err(FrontError::Refuse { status: 400, .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let _ = split(&bytes, true).map(|m| check_request(&m));
        }
        let _ = split(b"\n\n", true);
        let _ = split(b"SIP/2.0\n\n", true);
        let _ = split(b" : \n\n", true);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Ok(m) = split(&bytes, true) {
                let _ = check_request(&m);
                let _ = build_response(&m, 400, "Bad Request", &[]);
            }
        }
    }
}

#[cfg(test)]
mod scanner_tests {
    use super::*;

    fn with_ua(ua: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\n\
             From: <sip:100@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: 1\r\n\
             CSeq: 1 OPTIONS\r\n{ua}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_scanners_user_agent_is_known_in_any_case_and_others_are_not() {
        let refused: Vec<String> = vec!["friendly-scanner".into(), "sipvicious".into()];
        for (ua, scanner) in [
            ("User-Agent: friendly-scanner\r\n", true),
            ("user-agent: SIPVicious 0.3\r\n", true),
            ("User-Agent: Linphone/5.2 (belle-sip)\r\n", false),
            ("", false),
        ] {
            let bytes = with_ua(ua);
            let msg = split(&bytes, true).expect("message");
            assert_eq!(from_scanner(&msg, &refused), scanner, "{ua:?}");
            assert!(!from_scanner(&msg, &[]), "an empty list refuses none");
        }
    }
}
