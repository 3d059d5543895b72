//! SIP registrar binding store (RFC 3261 §10.3), plus the `Contact` and
//! address-of-record helpers a registrar needs.
//!
//! This module owns:
//! - the bindings of each address of record (AOR) → contacts, with expiry,
//!   `q`, Call-ID/CSeq ordering, and the source address + transport the
//!   REGISTER arrived from (so requests to an agent behind NAT go back there);
//! - the REGISTER processing steps 5–8 of §10.3 ([`Registrar::register`]):
//!   add/refresh/remove, `Contact: *`, queries, Min-Expires (423);
//! - expiry driven by the caller ([`Registrar::handle_timeout`] /
//!   [`Registrar::poll_timeout`]) and reachability events for the ACD
//!   ([`Registrar::poll_event`]);
//! - [`parse_contact_list`] and [`normalize_aor`].
//!
//! It is sans-IO: no sockets, no clock; the caller passes `now: Instant`.
//! Authentication (§10.3 steps 1–4) is the driver's job (see `digest`).
//!
//! Hand-written because no crate does the server side of a SIP registrar well.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Errors from REGISTER processing; [`RegistrarError::status_code`] gives the
/// SIP response to send.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistrarError {
    #[error("invalid address of record {0:?}")]
    InvalidAor(String),
    #[error("invalid Contact: {0}")]
    InvalidContact(String),
    #[error("Contact: * must be alone and come with Expires: 0")]
    InvalidStar,
    #[error("interval too brief (min {min} s)")]
    IntervalTooBrief { min: u32 },
    #[error("out-of-order REGISTER: Call-ID {call_id:?} CSeq {cseq} not above stored CSeq")]
    OutOfOrder { call_id: String, cseq: u32 },
    #[error("too many contacts for this AOR (max {max})")]
    TooManyContacts { max: usize },
}

impl RegistrarError {
    /// 400 for malformed/out-of-order, 423 (add `Min-Expires: min`) for too
    /// brief, 403 for too many contacts.
    pub fn status_code(&self) -> u16 {
        match self {
            RegistrarError::IntervalTooBrief { .. } => 423,
            RegistrarError::TooManyContacts { .. } => 403,
            _ => 400,
        }
    }
}

/// Transport a REGISTER arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

/// One parsed `Contact` element.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactSpec {
    /// The URI (inside `<>` if it was name-addr, unchanged). Empty for `*`.
    pub uri: String,
    pub display_name: Option<String>,
    pub expires: Option<u32>,
    pub q: Option<f32>,
    /// `Contact: *`.
    pub star: bool,
    /// Other contact params (name lowercased, value as written incl. quotes),
    /// e.g. `+sip.instance`, `reg-id`.
    pub params: Vec<(String, Option<String>)>,
}

/// A REGISTER, already authenticated, reduced to what the store needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterRequest {
    /// The To URI (raw header value or URI; normalised by [`normalize_aor`]).
    pub aor: String,
    pub call_id: String,
    pub cseq: u32,
    /// Empty = query.
    pub contacts: Vec<ContactSpec>,
    /// The `Expires` header.
    pub header_expires: Option<u32>,
    pub source: SocketAddr,
    pub transport: Transport,
}

/// A stored binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub uri: String,
    pub expires_at: Instant,
    pub q: Option<f32>,
    pub call_id: String,
    pub cseq: u32,
    pub source: SocketAddr,
    pub transport: Transport,
    pub params: Vec<(String, Option<String>)>,
}

impl Binding {
    /// Remaining seconds (rounded up), 0 if expired.
    pub fn expires_in(&self, now: Instant) -> u32 {
        let d = self.expires_at.saturating_duration_since(now);
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }
}

/// One contact of a 200 OK (`Contact: <uri>;expires=N[;q=..]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyContact {
    pub uri: String,
    pub expires: u32,
    pub q: Option<f32>,
}

impl ReplyContact {
    /// The header value: `<uri>;expires=N[;q=X]`.
    pub fn header_value(&self) -> String {
        let mut s = format!("<{}>;expires={}", self.uri, self.expires);
        if let Some(q) = self.q {
            s.push_str(&format!(";q={}", format_q(q)));
        }
        s
    }
}

fn format_q(q: f32) -> String {
    let s = format!("{q:.3}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.')
        .map(|x| format!("{x}.0"))
        .unwrap_or_else(|| s.to_string())
}

/// What to answer with a 200 OK.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterReply {
    /// The normalised AOR.
    pub aor: String,
    /// All the AOR's current bindings, highest q first.
    pub contacts: Vec<ReplyContact>,
}

/// Reachability changes, for the ACD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrarEvent {
    /// The AOR got its first binding.
    AorReachable { aor: String },
    /// The AOR's last binding expired or was removed.
    AorUnreachable { aor: String },
}

/// Limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrarConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts_per_aor: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts_per_aor: 10,
        }
    }
}

#[derive(Debug, Default)]
struct AorEntry {
    bindings: Vec<Binding>,
    /// The last reachability reported through an event.
    reported_reachable: bool,
}

/// The binding store.
///
/// Reachability events are edge-triggered on the *reported* state, so a
/// binding that lapses but is refreshed before `handle_timeout` runs causes no
/// Unreachable/Reachable flap. `poll_timeout` scans all bindings (O(n); fine
/// for a call center's few hundred agents).
#[derive(Debug, Default)]
pub struct Registrar {
    config: RegistrarConfig,
    aors: BTreeMap<String, AorEntry>,
    events: VecDeque<RegistrarEvent>,
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Self {
        Registrar {
            config,
            aors: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Processes a REGISTER (§10.3 steps 5–8). Atomic: on error nothing
    /// changes.
    ///
    /// CSeq ordering (step 7): a contact (or `*`) whose existing binding has
    /// the same Call-ID and a CSeq >= the request's → [`RegistrarError::OutOfOrder`]
    /// (answer 400). A different Call-ID simply replaces the binding.
    pub fn register(
        &mut self,
        now: Instant,
        req: RegisterRequest,
    ) -> Result<RegisterReply, RegistrarError> {
        let aor = normalize_aor(&req.aor)?;
        let star = req.contacts.iter().any(|c| c.star);
        if star {
            let star_expires = req.contacts.first().and_then(|c| c.expires);
            if req.contacts.len() != 1
                || req.header_expires != Some(0)
                || star_expires.unwrap_or(0) != 0
            {
                return Err(RegistrarError::InvalidStar);
            }
        }
        // Resolve expiries and validate before mutating anything.
        let mut updates: Vec<(String, &ContactSpec, u32)> = Vec::with_capacity(req.contacts.len());
        if !star {
            for c in &req.contacts {
                if c.uri.trim().is_empty() {
                    return Err(RegistrarError::InvalidContact("empty URI".into()));
                }
                let requested = c
                    .expires
                    .or(req.header_expires)
                    .unwrap_or(self.config.default_expires);
                let e = if requested == 0 {
                    0
                } else if requested < self.config.min_expires {
                    return Err(RegistrarError::IntervalTooBrief {
                        min: self.config.min_expires,
                    });
                } else {
                    requested.min(self.config.max_expires)
                };
                updates.push((uri_key(&c.uri), c, e));
            }
        }
        let entry = self.aors.get(&aor);
        let live: Vec<&Binding> = entry
            .map(|e| e.bindings.iter().filter(|b| b.expires_at > now).collect())
            .unwrap_or_default();
        let out_of_order = |b: &Binding| b.call_id == req.call_id && req.cseq <= b.cseq;
        if star {
            if live.iter().any(|b| out_of_order(b)) {
                return Err(self.ooo(&req));
            }
        } else {
            let mut count = live.len();
            for (key, _, e) in &updates {
                match live.iter().find(|b| uri_key(&b.uri) == *key) {
                    Some(b) if out_of_order(b) => return Err(self.ooo(&req)),
                    Some(_) => {}
                    None if *e > 0 => count += 1,
                    None => {}
                }
            }
            // (Removals in the same request are not credited; keeps it simple.)
            if count > live.len() && count > self.config.max_contacts_per_aor {
                return Err(RegistrarError::TooManyContacts {
                    max: self.config.max_contacts_per_aor,
                });
            }
        }
        if req.contacts.is_empty() {
            return Ok(self.reply(&aor, now));
        }

        let entry = self.aors.entry(aor.clone()).or_default();
        entry.bindings.retain(|b| b.expires_at > now);
        if star {
            entry.bindings.clear();
        }
        for (key, c, e) in updates {
            let pos = entry.bindings.iter().position(|b| uri_key(&b.uri) == key);
            match (pos, e) {
                (Some(i), 0) => {
                    entry.bindings.remove(i);
                }
                (None, 0) => {}
                (pos, e) => {
                    let b = Binding {
                        uri: c.uri.clone(),
                        expires_at: now
                            .checked_add(Duration::from_secs(u64::from(e)))
                            .unwrap_or(now),
                        q: c.q,
                        call_id: req.call_id.clone(),
                        cseq: req.cseq,
                        source: req.source,
                        transport: req.transport,
                        params: c.params.clone(),
                    };
                    match pos {
                        Some(i) => entry.bindings[i] = b,
                        None => entry.bindings.push(b),
                    }
                }
            }
        }
        self.sync_reachability(&aor);
        Ok(self.reply(&aor, now))
    }

    fn ooo(&self, req: &RegisterRequest) -> RegistrarError {
        RegistrarError::OutOfOrder {
            call_id: req.call_id.clone(),
            cseq: req.cseq,
        }
    }

    fn reply(&self, aor: &str, now: Instant) -> RegisterReply {
        let contacts = self
            .contacts(aor, now)
            .into_iter()
            .map(|b| ReplyContact {
                expires: b.expires_in(now),
                uri: b.uri,
                q: b.q,
            })
            .collect();
        RegisterReply {
            aor: aor.to_string(),
            contacts,
        }
    }

    /// Emits an event if the AOR's reachability differs from the reported one;
    /// drops empty, unreported entries.
    fn sync_reachability(&mut self, aor: &str) {
        let Some(entry) = self.aors.get_mut(aor) else {
            return;
        };
        let reachable = !entry.bindings.is_empty();
        if reachable != entry.reported_reachable {
            entry.reported_reachable = reachable;
            self.events.push_back(if reachable {
                RegistrarEvent::AorReachable {
                    aor: aor.to_string(),
                }
            } else {
                RegistrarEvent::AorUnreachable {
                    aor: aor.to_string(),
                }
            });
        }
        if !reachable {
            self.aors.remove(aor);
        }
    }

    /// Live bindings of an AOR (any form [`normalize_aor`] accepts), highest q
    /// first (absent q counts as 1.0), then most recently expiring first.
    pub fn contacts(&self, aor: &str, now: Instant) -> Vec<Binding> {
        let Ok(aor) = normalize_aor(aor) else {
            return Vec::new();
        };
        let mut v: Vec<Binding> = self
            .aors
            .get(&aor)
            .map(|e| {
                e.bindings
                    .iter()
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| {
            let (qa, qb) = (a.q.unwrap_or(1.0), b.q.unwrap_or(1.0));
            qb.total_cmp(&qa).then(b.expires_at.cmp(&a.expires_at))
        });
        v
    }

    /// AORs that currently have at least one (not yet timed-out) binding.
    pub fn aors(&self) -> impl Iterator<Item = &str> {
        self.aors.keys().map(String::as_str)
    }

    /// The AORs of one user (`sip:user@…`): a range of the sorted store,
    /// not a walk over everybody's (an offer looks its agent up this way).
    pub fn aors_of_user<'a>(&'a self, user: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("sip:{user}@");
        self.aors
            .range(prefix.clone()..)
            .map(|(k, _)| k.as_str())
            .take_while(move |k| k.starts_with(&prefix))
    }

    /// Removes every binding whose expiry is <= `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let keys: Vec<String> = self.aors.keys().cloned().collect();
        for aor in keys {
            if let Some(e) = self.aors.get_mut(&aor) {
                let before = e.bindings.len();
                e.bindings.retain(|b| b.expires_at > now);
                if e.bindings.len() != before || e.bindings.is_empty() {
                    self.sync_reachability(&aor);
                }
            }
        }
    }

    /// The earliest binding expiry, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.aors
            .values()
            .flat_map(|e| e.bindings.iter().map(|b| b.expires_at))
            .min()
    }

    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }
}

/// Comparison key for contact URIs (approximation of RFC 3261 §19.1.4):
/// scheme and everything after the user part (host, port, params) compared
/// case-insensitively, user part and `?headers` case-sensitively.
fn uri_key(uri: &str) -> String {
    let uri = uri.trim();
    let (main, headers) = match uri.find('?') {
        Some(i) => (&uri[..i], &uri[i..]),
        None => (uri, ""),
    };
    let (scheme, rest) = match main.find(':') {
        Some(i) => (&main[..i], &main[i + 1..]),
        None => ("", main),
    };
    let (user, host) = match rest.rfind('@') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    };
    format!(
        "{}:{}{}{}",
        scheme.to_ascii_lowercase(),
        user,
        host.to_ascii_lowercase(),
        headers
    )
}

/// Normalises a To header value or URI to the AOR key `sip:user@host`:
/// display name, `<>`, URI params, headers, password and port dropped;
/// `sips:` folded to `sip:`; host lowercased; user kept case-sensitive with
/// %-escapes of unreserved characters decoded. No user part → `sip:host`.
pub fn normalize_aor(to: &str) -> Result<String, RegistrarError> {
    let err = || RegistrarError::InvalidAor(to.to_string());
    let s = to.trim();
    // Strip a name-addr wrapper (display names may be quoted and contain '<').
    let s = if let Some(lt) = find_unquoted(s, b'<') {
        let inner = &s[lt + 1..];
        let gt = inner.find('>').ok_or_else(err)?;
        &inner[..gt]
    } else {
        // addr-spec: params after ';' belong to the header, not the URI
        s.split(';').next().unwrap_or("")
    };
    let s = s.trim();
    let colon = s.find(':').ok_or_else(err)?;
    let scheme = s[..colon].to_ascii_lowercase();
    if scheme != "sip" && scheme != "sips" {
        return Err(err());
    }
    let rest = &s[colon + 1..];
    let rest = rest.split('?').next().unwrap_or("");
    let (user, hostpart) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let hostport = hostpart.split(';').next().unwrap_or("");
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(err)?;
        &hostport[..end + 2]
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    if host.is_empty()
        || host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b"<>\"".contains(&b))
    {
        return Err(err());
    }
    let host = host.to_ascii_lowercase();
    match user {
        None => Ok(format!("sip:{host}")),
        Some(u) => {
            // user may carry ";user-params" only if it's a telephone-subscriber; keep them.
            let u = u.split(':').next().unwrap_or(""); // drop password
            if u.is_empty()
                || u.bytes()
                    .any(|b| b.is_ascii_whitespace() || b"<>\"".contains(&b))
            {
                return Err(err());
            }
            Ok(format!("sip:{}@{host}", decode_unreserved(u)))
        }
    }
}

fn decode_unreserved(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            if let Ok(c) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                if c.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&c) {
                    out.push(c as char);
                    i += 3;
                    continue;
                }
            }
            out.push_str(&s[i..i + 3].to_ascii_uppercase());
            i += 3;
            continue;
        }
        // copy one char (may be multi-byte)
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// Index of the first `target` byte outside a quoted string.
fn find_unquoted(s: &str, target: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut in_q = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' => in_q = !in_q,
            c if c == target && !in_q => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits on `sep` outside quotes and `<>`.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut in_q, mut in_angle, mut start, mut i) = (false, false, 0, 0);
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' if !in_angle => in_q = !in_q,
            b'<' if !in_q => in_angle = true,
            b'>' if !in_q => in_angle = false,
            c if c == sep && !in_q && !in_angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start.min(s.len())..]);
    out
}

/// Parses `Contact` header values (each may hold a comma-separated list).
///
/// `<uri>` keeps everything inside the brackets as the URI (URI params and
/// escaped headers unchanged); a bare `uri;p` ends the URI at the first `;`
/// and the rest are contact params (RFC 4475 cparam01/02). `*` → `star`.
pub fn parse_contact_list(header_values: &[&str]) -> Result<Vec<ContactSpec>, RegistrarError> {
    let mut out = Vec::new();
    for value in header_values {
        for elem in split_unquoted(value, b',') {
            let elem = elem.trim_matches(|c: char| c.is_ascii_whitespace());
            if elem.is_empty() {
                continue;
            }
            out.push(parse_contact(elem)?);
        }
    }
    Ok(out)
}

fn parse_contact(elem: &str) -> Result<ContactSpec, RegistrarError> {
    let bad = |why: &str| RegistrarError::InvalidContact(format!("{why}: {elem:?}"));
    if elem == "*" {
        return Ok(ContactSpec {
            star: true,
            ..ContactSpec::default()
        });
    }
    let (display_name, uri, params) = if let Some(lt) = find_unquoted(elem, b'<') {
        let name = elem[..lt].trim();
        let display_name = if name.is_empty() {
            None
        } else if name.starts_with('"') {
            let (n, end) = crate::sip::digest::parse_quoted(name, 0)
                .ok_or_else(|| bad("unterminated display name"))?;
            if !name[end..].trim().is_empty() {
                return Err(bad("junk after display name"));
            }
            Some(n)
        } else {
            Some(name.to_string())
        };
        let inner = &elem[lt + 1..];
        let gt = inner.find('>').ok_or_else(|| bad("missing '>'"))?;
        let uri = inner[..gt].trim();
        let rest = inner[gt + 1..].trim_start();
        if !rest.is_empty() && !rest.starts_with(';') {
            return Err(bad("junk after '>'"));
        }
        (display_name, uri, rest)
    } else {
        match elem.find(';') {
            Some(i) => (None, elem[..i].trim(), &elem[i..]),
            None => (None, elem, ""),
        }
    };
    if uri.is_empty() || !uri.contains(':') || uri.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(bad("invalid URI"));
    }
    let mut spec = ContactSpec {
        uri: uri.to_string(),
        display_name,
        ..ContactSpec::default()
    };
    for p in split_unquoted(params, b';').into_iter().skip(1) {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (name, value) = match p.find('=') {
            Some(i) => (
                p[..i].trim().to_ascii_lowercase(),
                Some(p[i + 1..].trim().to_string()),
            ),
            None => (p.to_ascii_lowercase(), None),
        };
        if name.is_empty() {
            return Err(bad("empty parameter name"));
        }
        match name.as_str() {
            "expires" => {
                let v = value.ok_or_else(|| bad("expires without value"))?;
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("bad expires"));
                }
                // RFC 3261 §20.19: values beyond 2^32-1 mean 2^32-1.
                spec.expires = Some(v.parse::<u32>().unwrap_or(u32::MAX));
            }
            "q" => {
                let v = value.ok_or_else(|| bad("q without value"))?;
                let q = parse_q(&v).ok_or_else(|| bad("bad q"))?;
                spec.q = Some(q);
            }
            _ => spec.params.push((name, value)),
        }
    }
    Ok(spec)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`
fn parse_q(v: &str) -> Option<f32> {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, f),
        None => (v, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match int {
        "0" => v.parse().ok(),
        "1" if frac.bytes().all(|b| b == b'0') => Some(1.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn src() -> SocketAddr {
        "203.0.113.7:40123".parse().expect("addr")
    }

    fn req(
        aor: &str,
        call_id: &str,
        cseq: u32,
        contacts: &[&str],
        header_expires: Option<u32>,
    ) -> RegisterRequest {
        RegisterRequest {
            aor: aor.into(),
            call_id: call_id.into(),
            cseq,
            contacts: parse_contact_list(contacts).expect("contacts"),
            header_expires,
            source: src(),
            transport: Transport::Udp,
        }
    }

    fn events(r: &mut Registrar) -> Vec<RegistrarEvent> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    const AOR: &str = "sip:alice@example.com";

    #[test]
    fn a_users_aors_are_found_without_those_of_a_longer_name() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        for (aor, id) in [
            ("sip:ana@a.example", "1"),
            ("sip:anabel@a.example", "2"),
            ("sip:ana@b.example", "3"),
            ("sip:an@a.example", "4"),
        ] {
            let contact = format!("<sip:x@10.0.0.{id}:5062>");
            r.register(t0, req(aor, id, 1, &[contact.as_str()], Some(600)))
                .expect("ok");
        }
        let got: Vec<&str> = r.aors_of_user("ana").collect();
        assert_eq!(got, vec!["sip:ana@a.example", "sip:ana@b.example"]);
        assert_eq!(r.aors_of_user("nadie").count(), 0);
    }

    #[test]
    fn add_refresh_remove_and_events() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        let reply = r
            .register(
                t0,
                req(
                    "\"Alice\" <sip:alice@EXAMPLE.com:5060;transport=udp>;tag=1",
                    "c1",
                    1,
                    &["<sip:alice@10.0.0.5:5062>"],
                    Some(600),
                ),
            )
            .expect("ok");
        assert_eq!(reply.aor, AOR);
        assert_eq!(
            reply.contacts,
            vec![ReplyContact {
                uri: "sip:alice@10.0.0.5:5062".into(),
                expires: 600,
                q: None
            }]
        );
        assert_eq!(
            reply.contacts[0].header_value(),
            "<sip:alice@10.0.0.5:5062>;expires=600"
        );
        assert_eq!(
            events(&mut r),
            vec![RegistrarEvent::AorReachable { aor: AOR.into() }]
        );
        let b = &r.contacts(AOR, t0)[0];
        assert_eq!(
            (b.source, b.transport, b.call_id.as_str(), b.cseq),
            (src(), Transport::Udp, "c1", 1)
        );

        // refresh (host case differs → same binding), no event
        let t1 = t0 + Duration::from_secs(100);
        let reply = r
            .register(
                t1,
                req(
                    AOR,
                    "c1",
                    2,
                    &["<sip:alice@10.0.0.5:5062>;expires=120"],
                    None,
                ),
            )
            .expect("ok");
        assert_eq!(reply.contacts.len(), 1);
        assert_eq!(reply.contacts[0].expires, 120);
        assert!(events(&mut r).is_empty());

        // second contact, then remove the first one
        r.register(
            t1,
            req(AOR, "c2", 1, &["<sip:alice@192.168.1.9>;q=0.5"], None),
        )
        .expect("ok");
        assert_eq!(r.contacts(AOR, t1).len(), 2);
        assert_eq!(r.contacts(AOR, t1)[0].uri, "sip:alice@10.0.0.5:5062"); // q 1.0 first
        let reply = r
            .register(
                t1,
                req(AOR, "c1", 3, &["<sip:alice@10.0.0.5:5062>"], Some(0)),
            )
            .expect("ok");
        assert_eq!(reply.contacts.len(), 1);
        assert_eq!(reply.contacts[0].uri, "sip:alice@192.168.1.9");
        assert_eq!(
            reply.contacts[0].header_value(),
            "<sip:alice@192.168.1.9>;expires=3600;q=0.5"
        );
        assert!(events(&mut r).is_empty());

        // remove the last → unreachable
        r.register(
            t1,
            req(AOR, "c2", 2, &["<sip:alice@192.168.1.9>;expires=0"], None),
        )
        .expect("ok");
        assert_eq!(
            events(&mut r),
            vec![RegistrarEvent::AorUnreachable { aor: AOR.into() }]
        );
        assert!(r.contacts(AOR, t1).is_empty());
        assert_eq!(r.aors().count(), 0);
    }

    #[test]
    fn multiple_contacts_in_one_request_and_clamping() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        let reply = r
            .register(
                t0,
                req(
                    AOR,
                    "c",
                    1,
                    &[
                        "<sip:a@h1>;expires=7200, \"Al, B\" <sip:a@h2>;q=0.8",
                        "sip:a@h3;expires=90",
                    ],
                    None,
                ),
            )
            .expect("ok");
        let mut got: Vec<(String, u32)> = reply
            .contacts
            .iter()
            .map(|c| (c.uri.clone(), c.expires))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("sip:a@h1".into(), 3600),
                ("sip:a@h2".into(), 3600),
                ("sip:a@h3".into(), 90)
            ]
        );
        assert_eq!(events(&mut r).len(), 1);
    }

    #[test]
    fn star_removal() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        r.register(t0, req(AOR, "c", 1, &["<sip:a@h1>", "<sip:a@h2>"], None))
            .expect("ok");
        assert_eq!(
            r.register(t0, req(AOR, "c", 2, &["*"], Some(3600))),
            Err(RegistrarError::InvalidStar)
        );
        assert_eq!(
            r.register(t0, req(AOR, "c", 2, &["*"], None)),
            Err(RegistrarError::InvalidStar)
        );
        assert_eq!(
            r.register(t0, req(AOR, "c", 2, &["*", "<sip:a@h3>"], Some(0))),
            Err(RegistrarError::InvalidStar)
        );
        assert_eq!(
            r.register(t0, req(AOR, "c", 1, &["*"], Some(0)))
                .map(|_| ()),
            Err(RegistrarError::OutOfOrder {
                call_id: "c".into(),
                cseq: 1
            })
        );
        assert_eq!(r.contacts(AOR, t0).len(), 2);
        let reply = r
            .register(t0, req(AOR, "other", 1, &["*"], Some(0)))
            .expect("ok");
        assert!(reply.contacts.is_empty());
        assert_eq!(
            events(&mut r),
            vec![
                RegistrarEvent::AorReachable { aor: AOR.into() },
                RegistrarEvent::AorUnreachable { aor: AOR.into() }
            ]
        );
        assert_eq!(RegistrarError::InvalidStar.status_code(), 400);
    }

    #[test]
    fn expiry_via_timeout() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        r.register(
            t0,
            req(
                AOR,
                "c",
                1,
                &["<sip:a@h1>;expires=60", "<sip:a@h2>;expires=120"],
                None,
            ),
        )
        .expect("ok");
        r.register(
            t0,
            req("sip:bob@example.com", "d", 1, &["<sip:b@h>"], Some(300)),
        )
        .expect("ok");
        events(&mut r);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        r.handle_timeout(t0 + Duration::from_secs(60));
        assert!(events(&mut r).is_empty());
        assert_eq!(r.contacts(AOR, t0 + Duration::from_secs(60)).len(), 1);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
        r.handle_timeout(t0 + Duration::from_secs(121));
        assert_eq!(
            events(&mut r),
            vec![RegistrarEvent::AorUnreachable { aor: AOR.into() }]
        );
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(300)));
        r.handle_timeout(t0 + Duration::from_secs(1000));
        assert_eq!(
            events(&mut r),
            vec![RegistrarEvent::AorUnreachable {
                aor: "sip:bob@example.com".into()
            }]
        );
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn lapsed_then_refreshed_does_not_flap() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        r.register(t0, req(AOR, "c", 1, &["<sip:a@h1>;expires=60"], None))
            .expect("ok");
        events(&mut r);
        let late = t0 + Duration::from_secs(61);
        assert!(r.contacts(AOR, late).is_empty());
        r.register(late, req(AOR, "c", 2, &["<sip:a@h1>;expires=60"], None))
            .expect("ok");
        assert!(events(&mut r).is_empty());
    }

    #[test]
    fn interval_too_brief_and_query() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        let e = r.register(t0, req(AOR, "c", 1, &["<sip:a@h1>;expires=30"], None));
        assert_eq!(e, Err(RegistrarError::IntervalTooBrief { min: 60 }));
        assert_eq!(
            RegistrarError::IntervalTooBrief { min: 60 }.status_code(),
            423
        );
        let e = r.register(
            t0,
            req(AOR, "c", 1, &["<sip:a@h1>", "<sip:a@h2>"], Some(10)),
        );
        assert_eq!(e, Err(RegistrarError::IntervalTooBrief { min: 60 }));
        assert!(r.contacts(AOR, t0).is_empty());
        assert!(events(&mut r).is_empty());
        // query on empty
        assert!(r
            .register(t0, req(AOR, "q", 1, &[], None))
            .expect("ok")
            .contacts
            .is_empty());
        r.register(t0, req(AOR, "c", 1, &["<sip:a@h1>"], Some(600)))
            .expect("ok");
        let t1 = t0 + Duration::from_millis(10_500);
        let q = r.register(t1, req(AOR, "q", 2, &[], Some(0))).expect("ok");
        assert_eq!(
            q.contacts,
            vec![ReplyContact {
                uri: "sip:a@h1".into(),
                expires: 590,
                q: None
            }]
        );
        assert_eq!(r.contacts(AOR, t1)[0].cseq, 1); // unchanged by the query
    }

    #[test]
    fn cseq_ordering() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        r.register(t0, req(AOR, "c", 5, &["<sip:a@h1>"], None))
            .expect("ok");
        for cseq in [4, 5] {
            assert!(matches!(
                r.register(t0, req(AOR, "c", cseq, &["<sip:a@h1>"], Some(0))),
                Err(RegistrarError::OutOfOrder { .. })
            ));
        }
        assert_eq!(r.contacts(AOR, t0).len(), 1);
        // different Call-ID (client rebooted) replaces it even with a lower CSeq
        r.register(t0, req(AOR, "new", 1, &["<sip:a@h1>"], Some(120)))
            .expect("ok");
        assert_eq!(r.contacts(AOR, t0)[0].call_id, "new");
    }

    #[test]
    fn too_many_contacts() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig {
            max_contacts_per_aor: 2,
            ..RegistrarConfig::default()
        });
        r.register(t0, req(AOR, "c", 1, &["<sip:a@h1>", "<sip:a@h2>"], None))
            .expect("ok");
        assert_eq!(
            r.register(t0, req(AOR, "c", 2, &["<sip:a@h3>"], None)),
            Err(RegistrarError::TooManyContacts { max: 2 })
        );
        r.register(t0, req(AOR, "c", 3, &["<sip:a@h1>"], None))
            .expect("refresh ok");
    }

    #[test]
    fn aor_normalisation() {
        assert_eq!(
            normalize_aor("<sips:Alice@Example.COM:5061;transport=tls>").as_deref(),
            Ok("sip:Alice@example.com")
        );
        assert_eq!(
            normalize_aor("sip:%61lice:pw@example.com;tag=x").as_deref(),
            Ok("sip:alice@example.com")
        );
        assert_eq!(
            normalize_aor("\"a <b>\" <sip:x@[2001:DB8::1]:5060>").as_deref(),
            Ok("sip:x@[2001:db8::1]")
        );
        assert_eq!(
            normalize_aor("sip:example.com").as_deref(),
            Ok("sip:example.com")
        );
        assert!(normalize_aor("tel:+1234").is_err());
        assert!(normalize_aor("<sip:a@b").is_err());
        assert!(normalize_aor("").is_err());
    }

    #[test]
    fn contact_parsing() {
        // RFC 4475 cparam01: bare URI → params are contact params
        let c = parse_contact_list(&["sip:+19725552222@gw1.example.net;unknownparam"]).expect("ok");
        assert_eq!(c[0].uri, "sip:+19725552222@gw1.example.net");
        assert_eq!(c[0].params, vec![("unknownparam".to_string(), None)]);
        // cparam02: inside <> → part of the URI
        let c =
            parse_contact_list(&["<sip:+19725552222@gw1.example.net;unknownparam>"]).expect("ok");
        assert_eq!(c[0].uri, "sip:+19725552222@gw1.example.net;unknownparam");
        assert!(c[0].params.is_empty());
        // regescrt: escaped headers kept unchanged
        let c =
            parse_contact_list(&["<sip:user@host?Route=%3Csip:sip.example.com%3E>"]).expect("ok");
        assert_eq!(c[0].uri, "sip:user@host?Route=%3Csip:sip.example.com%3E");
        // display names with commas, quoted escapes, params, LWS
        let c = parse_contact_list(&["\"Doe, \\\"J\\\"\" <sip:j@h;transport=tcp> ; expires = 60 ;q=0.5;+sip.instance=\"<urn:uuid:1;x>\" , Bob<sip:b@h>"]).expect("ok");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].display_name.as_deref(), Some("Doe, \"J\""));
        assert_eq!(c[0].uri, "sip:j@h;transport=tcp");
        assert_eq!((c[0].expires, c[0].q), (Some(60), Some(0.5)));
        assert_eq!(
            c[0].params,
            vec![(
                "+sip.instance".to_string(),
                Some("\"<urn:uuid:1;x>\"".to_string())
            )]
        );
        assert_eq!(
            (c[1].display_name.as_deref(), c[1].uri.as_str()),
            (Some("Bob"), "sip:b@h")
        );
        // star
        let c = parse_contact_list(&[" * "]).expect("ok");
        assert!(c[0].star);
        // huge expires saturates; bad values rejected
        assert_eq!(
            parse_contact_list(&["<sip:a@h>;expires=99999999999"]).expect("ok")[0].expires,
            Some(u32::MAX)
        );
        for bad in [
            "<sip:a@h>;q=1.5",
            "<sip:a@h>;q=abc",
            "<sip:a@h>;expires=x",
            "<sip:a@h",
            "\"x <sip:a@h>",
            "<sip:a@h> junk",
            "nouri",
            "<>",
        ] {
            assert!(parse_contact_list(&[bad]).is_err(), "{bad}");
        }
        assert_eq!(parse_q("0.125"), Some(0.125));
        assert_eq!(parse_q("1.000"), Some(1.0));
        assert_eq!(parse_q("0.1234"), None);
    }

    proptest! {
        #[test]
        fn contact_parsing_never_panics(s in ".*", t in "[<>\";,=*@: \\\\a-z0-9%?]{0,40}") {
            let _ = parse_contact_list(&[&s, &t]);
            let _ = normalize_aor(&s);
            let _ = normalize_aor(&t);
            let _ = uri_key(&t);
            let _ = decode_unreserved(&s);
            let _ = decode_unreserved(&t);
        }

        #[test]
        fn register_never_panics(t in "[<>\";,=*@: \\\\a-z0-9%?]{0,40}", cseq in any::<u32>(), exp in proptest::option::of(any::<u32>())) {
            let mut r = Registrar::default();
            let now = Instant::now();
            if let Ok(contacts) = parse_contact_list(&[&t]) {
                let _ = r.register(now, RegisterRequest { aor: AOR.into(), call_id: "c".into(), cseq, contacts, header_expires: exp, source: src(), transport: Transport::Tcp });
                r.handle_timeout(now + Duration::from_secs(5000));
            }
        }
    }
}
