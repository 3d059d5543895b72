//! SIP digest authentication, server side (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! This module owns:
//! - parsing `Authorization` / `Proxy-Authorization` header values
//!   ([`parse_authorization`] → [`DigestCredentials`]);
//! - the digest computations ([`ha1`], [`response`], [`response_from_ha1`]) for
//!   `MD5` and `SHA-256` (the `-sess` variants are refused);
//! - stateless, self-authenticating nonces with expiry and nonce-count replay
//!   protection ([`NonceManager`]);
//! - the `WWW-Authenticate` challenge values ([`challenge_headers`]), SHA-256
//!   first then MD5 as RFC 8760 §2.4 asks;
//! - the [`Verifier`] that turns a request's credentials into an [`AuthOutcome`]
//!   (200-path, 401 re-challenge or 403).
//!
//! It is sans-IO: no sockets, no clock and no OS randomness. The caller passes
//! `now: Instant` into every time-dependent call and the server secret (32
//! random bytes) at construction; nonce uniqueness comes from a counter and
//! their unforgeability from an HMAC-SHA-256 keyed with that secret.
//!
//! It is hand-written because no crate does the server side of SIP digest
//! well (rsipstack's `verify_digest` formats `nc` in decimal, parses it into a
//! `u8` and misspells `SHA-256`), and the logic is small enough to own.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Default lifetime of an issued nonce.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Default bound on the number of nonces whose nonce-count is tracked.
pub const DEFAULT_MAX_TRACKED_NONCES: usize = 10_000;

/// Digest algorithm. Only the non-`-sess` variants are supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The token as written in headers: `MD5` or `SHA-256`.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm` token (case-insensitive). `-sess` variants and
    /// anything else are refused.
    pub fn from_token(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lowercase hex digest of `data`.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(Md5::digest(data).as_slice()),
            Algorithm::Sha256 => to_hex(Sha256::digest(data).as_slice()),
        }
    }
}

/// Errors from [`parse_authorization`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("empty authorization header")]
    Empty,
    #[error("unsupported authorization scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("malformed authorization header: {0}")]
    Malformed(&'static str),
    #[error("duplicate parameter {0:?}")]
    DuplicateParam(String),
    #[error("missing parameter {0:?}")]
    MissingParam(&'static str),
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("invalid nonce-count {0:?} (want 8 hex digits)")]
    InvalidNonceCount(String),
}

/// The parsed parameters of a `Digest` credentials header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The `uri` directive (digest-uri). The driver may check it against the
    /// Request-URI; the response is computed over this value.
    pub uri: String,
    pub response: String,
    /// `MD5` when absent.
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<String>,
    /// Nonce-count as a number (parsed as hex).
    pub nc: Option<u32>,
    /// Nonce-count exactly as sent (the response hash is computed over it).
    pub nc_raw: Option<String>,
}

/// Parses an `Authorization` or `Proxy-Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<DigestCredentials, DigestError> {
    let value = value.trim_matches(is_lws);
    if value.is_empty() {
        return Err(DigestError::Empty);
    }
    let scheme_end = value.find(is_lws).unwrap_or(value.len());
    let scheme = &value[..scheme_end];
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::UnsupportedScheme(scheme.to_string()));
    }
    let params = parse_params(&value[scheme_end..])?;

    let mut username = None;
    let mut realm = None;
    let mut nonce = None;
    let mut uri = None;
    let mut response = None;
    let mut algorithm = None;
    let mut cnonce = None;
    let mut opaque = None;
    let mut qop = None;
    let mut nc_raw: Option<String> = None;
    for (name, val) in params {
        let slot = match name.as_str() {
            "username" => &mut username,
            "realm" => &mut realm,
            "nonce" => &mut nonce,
            "uri" => &mut uri,
            "response" => &mut response,
            "algorithm" => &mut algorithm,
            "cnonce" => &mut cnonce,
            "opaque" => &mut opaque,
            "qop" => &mut qop,
            "nc" => &mut nc_raw,
            _ => continue, // unknown auth-params are ignored
        };
        if slot.is_some() {
            return Err(DigestError::DuplicateParam(name));
        }
        *slot = Some(val);
    }
    let algorithm = match algorithm {
        None => Algorithm::Md5,
        Some(a) => Algorithm::from_token(&a).ok_or(DigestError::UnsupportedAlgorithm(a))?,
    };
    let nc = match &nc_raw {
        None => None,
        Some(raw) => {
            Some(parse_nc(raw).ok_or_else(|| DigestError::InvalidNonceCount(raw.clone()))?)
        }
    };
    Ok(DigestCredentials {
        username: username.ok_or(DigestError::MissingParam("username"))?,
        realm: realm.ok_or(DigestError::MissingParam("realm"))?,
        nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
        uri: uri.ok_or(DigestError::MissingParam("uri"))?,
        response: response.ok_or(DigestError::MissingParam("response"))?,
        algorithm,
        cnonce,
        opaque,
        qop,
        nc,
        nc_raw,
    })
}

fn parse_nc(raw: &str) -> Option<u32> {
    if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(raw, 16).ok()
}

fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Parses `name = value, name = "quoted", ...` (names lowercased). Empty list
/// elements are tolerated.
fn parse_params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_lws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        skip_lws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            skip_lws(&mut i);
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(DigestError::Malformed("expected parameter name"));
        }
        let name = s[start..i].to_ascii_lowercase();
        skip_lws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(DigestError::Malformed("expected '='"));
        }
        i += 1;
        skip_lws(&mut i);
        let value = if i < b.len() && b[i] == b'"' {
            let (v, next) =
                parse_quoted(s, i).ok_or(DigestError::Malformed("unterminated quoted string"))?;
            i = next;
            v
        } else {
            let vs = i;
            while i < b.len() && is_token_byte(b[i]) {
                i += 1;
            }
            if i == vs {
                return Err(DigestError::Malformed("expected parameter value"));
            }
            s[vs..i].to_string()
        };
        out.push((name, value));
        skip_lws(&mut i);
        if i < b.len() {
            if b[i] != b',' {
                return Err(DigestError::Malformed("expected ','"));
            }
            i += 1;
        }
    }
    Ok(out)
}

/// Parses a quoted string starting at byte `start` (which is `"`); returns the
/// unescaped content and the index just past the closing quote.
pub(crate) fn parse_quoted(s: &str, start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Some((out, start + 1 + off + 1)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~/:@".contains(&b)
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// `HA1 = H(username:realm:password)` as lowercase hex.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The expected `response` (lowercase hex) given the password.
/// With `qop` = `Some(q)`: `H(HA1:nonce:nc:cnonce:q:HA2)`; without:
/// `H(HA1:nonce:HA2)` (RFC 2069 compatibility). Missing `nc`/`cnonce` count
/// as empty strings.
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: Option<&str>,
    cnonce: Option<&str>,
    qop: Option<&str>,
) -> String {
    let h1 = ha1(alg, username, realm, password);
    response_from_ha1(alg, &h1, method, uri, nonce, nc, cnonce, qop)
}

/// Like [`response`] but from a precomputed HA1 (hex).
#[allow(clippy::too_many_arguments)]
pub fn response_from_ha1(
    alg: Algorithm,
    ha1_hex: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: Option<&str>,
    cnonce: Option<&str>,
    qop: Option<&str>,
) -> String {
    let ha2 = alg.hash_hex(format!("{method}:{uri}").as_bytes());
    let data = match qop {
        Some(q) => format!(
            "{ha1_hex}:{nonce}:{}:{}:{q}:{ha2}",
            nc.unwrap_or(""),
            cnonce.unwrap_or("")
        ),
        None => format!("{ha1_hex}:{nonce}:{ha2}"),
    };
    alg.hash_hex(data.as_bytes())
}

/// Constant-time equality (time depends only on the lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..32 {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    let mut h = Sha256::new();
    h.update(ipad);
    h.update(data);
    let inner = h.finalize();
    let mut h = Sha256::new();
    h.update(opad);
    h.update(inner.as_slice());
    let out = h.finalize();
    let mut r = [0u8; 32];
    r.copy_from_slice(out.as_slice());
    r
}

/// Result of [`NonceManager::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Authentic but older than the lifetime (re-challenge with `stale=true`).
    Stale,
    /// Not issued by us (forged, garbled, other secret).
    Invalid,
    /// The nonce-count was not higher than the highest already accepted.
    Replay,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    issued_ms: u64,
    highest_nc: u32,
}

/// Issues and checks stateless nonces.
///
/// A nonce is 64 lowercase hex characters: issue time (ms since `base`, u64
/// BE) ‖ counter (u64 BE) ‖ first 16 bytes of HMAC-SHA-256(secret, time ‖
/// counter). Nothing is stored at issue; the highest nonce-count per nonce is
/// remembered from its first use, in a map bounded by `max_tracked` (expired
/// entries pruned first; if still full the oldest are evicted and every nonce
/// issued at or before the evicted ones is then answered `Stale`, so eviction
/// never opens a replay window).
#[derive(Debug)]
pub struct NonceManager {
    secret: [u8; 32],
    lifetime: Duration,
    base: Instant,
    counter: u64,
    tracked: HashMap<u64, Tracked>,
    max_tracked: usize,
    evicted_up_to_ms: Option<u64>,
    /// Times the bound was reached and the oldest nonces evicted.
    evictions: u64,
}

impl NonceManager {
    /// `secret`: 32 random bytes from the caller (fresh per process is fine:
    /// outstanding nonces then simply become `Invalid` and get re-challenged).
    /// `base`: the Instant nonce times are measured from (e.g. process start).
    pub fn new(secret: [u8; 32], lifetime: Duration, base: Instant) -> Self {
        NonceManager {
            secret,
            lifetime,
            base,
            counter: 0,
            tracked: HashMap::new(),
            max_tracked: DEFAULT_MAX_TRACKED_NONCES,
            evicted_up_to_ms: None,
            evictions: 0,
        }
    }

    /// Changes the bound on tracked nonces (minimum 1).
    pub fn set_max_tracked(&mut self, max: usize) {
        self.max_tracked = max.max(1);
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Times the bound on tracked nonces was reached (the oldest evicted).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Number of nonces whose nonce-count is currently remembered.
    pub fn tracked_len(&self) -> usize {
        self.tracked.len()
    }

    fn ms_since_base(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    fn tag(&self, data: &[u8; 16]) -> [u8; 16] {
        let full = hmac_sha256(&self.secret, data);
        let mut t = [0u8; 16];
        t.copy_from_slice(&full[..16]);
        t
    }

    /// Issues a fresh nonce.
    pub fn issue(&mut self, now: Instant) -> String {
        self.counter = self.counter.wrapping_add(1);
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&self.ms_since_base(now).to_be_bytes());
        data[8..].copy_from_slice(&self.counter.to_be_bytes());
        let tag = self.tag(&data);
        let mut s = to_hex(&data);
        s.push_str(&to_hex(&tag));
        s
    }

    /// Decodes and authenticates a nonce: `(issued_ms, counter)`.
    fn decode(&self, nonce: &str) -> Option<(u64, u64)> {
        if nonce.len() != 64 {
            return None;
        }
        let bytes = from_hex(nonce)?;
        let mut data = [0u8; 16];
        data.copy_from_slice(bytes.get(..16)?);
        let expected = self.tag(&data);
        if !constant_time_eq(&expected, bytes.get(16..)?) {
            return None;
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&data[..8]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&data[8..]);
        Some((u64::from_be_bytes(t), u64::from_be_bytes(c)))
    }

    /// Checks without recording the nonce-count.
    pub fn validate(&self, nonce: &str, nc: u32, now: Instant) -> NonceCheck {
        let Some((issued, counter)) = self.decode(nonce) else {
            return NonceCheck::Invalid;
        };
        let now_ms = self.ms_since_base(now);
        if issued > now_ms.saturating_add(1_000) {
            return NonceCheck::Invalid; // from the future: not ours
        }
        let lifetime_ms = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        if now_ms.saturating_sub(issued) > lifetime_ms {
            return NonceCheck::Stale;
        }
        match self.tracked.get(&counter) {
            Some(t) if nc <= t.highest_nc => NonceCheck::Replay,
            Some(_) => NonceCheck::Valid,
            None if nc == 0 => NonceCheck::Replay,
            None if self.evicted_up_to_ms.is_some_and(|e| issued <= e) => NonceCheck::Stale,
            None => NonceCheck::Valid,
        }
    }

    /// Checks a nonce and, when `Valid`, records `nc` as its highest count.
    pub fn check(&mut self, nonce: &str, nc: u32, now: Instant) -> NonceCheck {
        let r = self.validate(nonce, nc, now);
        if r == NonceCheck::Valid {
            if let Some((issued, counter)) = self.decode(nonce) {
                self.record(counter, issued, nc, now);
            }
        }
        r
    }

    fn record(&mut self, counter: u64, issued_ms: u64, nc: u32, now: Instant) {
        if !self.tracked.contains_key(&counter) && self.tracked.len() >= self.max_tracked {
            self.prune(now);
            if self.tracked.len() >= self.max_tracked {
                self.evict_oldest();
                self.evictions += 1;
            }
        }
        let e = self.tracked.entry(counter).or_insert(Tracked {
            issued_ms,
            highest_nc: 0,
        });
        e.highest_nc = e.highest_nc.max(nc);
    }

    /// Evicts (at least) the oldest quarter of tracked nonces.
    fn evict_oldest(&mut self) {
        let mut times: Vec<u64> = self.tracked.values().map(|t| t.issued_ms).collect();
        if times.is_empty() {
            return;
        }
        let k = (times.len() / 4).min(times.len() - 1);
        let (_, cutoff, _) = times.select_nth_unstable(k);
        let cutoff = *cutoff;
        self.tracked.retain(|_, t| t.issued_ms > cutoff);
        self.evicted_up_to_ms = Some(self.evicted_up_to_ms.map_or(cutoff, |e| e.max(cutoff)));
    }

    /// Forgets nonces older than the lifetime (they would be `Stale` anyway).
    pub fn prune(&mut self, now: Instant) {
        let now_ms = self.ms_since_base(now);
        let lifetime_ms = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        self.tracked
            .retain(|_, t| now_ms.saturating_sub(t.issued_ms) <= lifetime_ms);
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `WWW-Authenticate` / `Proxy-Authenticate` values: SHA-256 first, then MD5
/// (RFC 8760 §2.4), both with `qop="auth"` and the same nonce.
pub fn challenge_headers(realm: &str, nonce: &str, stale: bool) -> Vec<String> {
    challenge_headers_for(&[Algorithm::Sha256, Algorithm::Md5], realm, nonce, stale)
}

/// Like [`challenge_headers`] for an explicit, ordered set of algorithms.
pub fn challenge_headers_for(
    algorithms: &[Algorithm],
    realm: &str,
    nonce: &str,
    stale: bool,
) -> Vec<String> {
    algorithms
        .iter()
        .map(|alg| {
            let mut v = format!(
                "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
                quote(realm),
                quote(nonce),
                alg.token()
            );
            if stale {
                v.push_str(", stale=true");
            }
            v
        })
        .collect()
}

/// What the server knows about the user.
#[derive(Debug, Clone, Copy)]
pub enum Secret<'a> {
    Password(&'a str),
    /// Precomputed HA1 values (hex); a missing one for the client's algorithm
    /// fails like a wrong password. Offer only the algorithms you hold HA1 for
    /// ([`Verifier::set_algorithms`]).
    Ha1 {
        md5: Option<&'a str>,
        sha256: Option<&'a str>,
    },
}

/// Outcome of [`Verifier::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated.
    Ok,
    /// Answer 401/407 with fresh [`Verifier::challenge`] headers.
    Challenge { stale: bool },
    /// Answer 403.
    Forbidden,
}

/// Verifies credentials against a realm with a [`NonceManager`].
///
/// Order of checks: realm mismatch or algorithm not offered → `Challenge`;
/// `qop` not `auth` or `cnonce`/`nc` missing → `Forbidden`; nonce forged →
/// `Challenge{stale:false}`; response compared in constant time (an unknown
/// user is compared against a dummy password, so it is indistinguishable from
/// a wrong password) → `Forbidden` if wrong (on an expired nonce a wrong
/// response gives `Challenge{stale:false}`); expired nonce with the right
/// response → `Challenge{stale:true}`; right response but nonce-count
/// replayed → `Challenge{stale:true}` (harmless: the replayer learns nothing,
/// and a legitimate client re-syncs with a new nonce). Only on `Ok` is the
/// nonce-count recorded, so garbage requests cannot burn a client's counts.
#[derive(Debug)]
pub struct Verifier {
    realm: String,
    nonces: NonceManager,
    algorithms: Vec<Algorithm>,
}

impl Verifier {
    pub fn new(realm: impl Into<String>, nonces: NonceManager) -> Self {
        Verifier {
            realm: realm.into(),
            nonces,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Sets the offered algorithms, in preference order (empty → both).
    pub fn set_algorithms(&mut self, algorithms: &[Algorithm]) {
        self.algorithms = if algorithms.is_empty() {
            vec![Algorithm::Sha256, Algorithm::Md5]
        } else {
            algorithms.to_vec()
        };
    }

    pub fn nonces_mut(&mut self) -> &mut NonceManager {
        &mut self.nonces
    }

    /// Issues a nonce and returns the challenge header values.
    pub fn challenge(&mut self, now: Instant, stale: bool) -> Vec<String> {
        let nonce = self.nonces.issue(now);
        challenge_headers_for(&self.algorithms, &self.realm, &nonce, stale)
    }

    /// Verifies `creds` for a request with `method`. `secret` is `None` for an
    /// unknown username.
    pub fn verify(
        &mut self,
        method: &str,
        creds: &DigestCredentials,
        secret: Option<Secret<'_>>,
        now: Instant,
    ) -> AuthOutcome {
        if creds.realm != self.realm || !self.algorithms.contains(&creds.algorithm) {
            return AuthOutcome::Challenge { stale: false };
        }
        let (Some(qop), Some(cnonce), Some(nc), Some(nc_raw)) = (
            creds.qop.as_deref(),
            creds.cnonce.as_deref(),
            creds.nc,
            creds.nc_raw.as_deref(),
        ) else {
            return AuthOutcome::Forbidden;
        };
        if !qop.eq_ignore_ascii_case("auth") {
            return AuthOutcome::Forbidden;
        }
        let check = self.nonces.validate(&creds.nonce, nc, now);
        if check == NonceCheck::Invalid {
            return AuthOutcome::Challenge { stale: false };
        }
        let alg = creds.algorithm;
        let (h1, known) = match secret {
            Some(Secret::Password(p)) => (ha1(alg, &creds.username, &self.realm, p), true),
            Some(Secret::Ha1 { md5, sha256 }) => {
                let h = match alg {
                    Algorithm::Md5 => md5,
                    Algorithm::Sha256 => sha256,
                };
                match h {
                    Some(h) => (h.to_ascii_lowercase(), true),
                    None => (
                        ha1(alg, &creds.username, &self.realm, "\u{0}unknown"),
                        false,
                    ),
                }
            }
            None => (
                ha1(alg, &creds.username, &self.realm, "\u{0}unknown"),
                false,
            ),
        };
        let expected = response_from_ha1(
            alg,
            &h1,
            method,
            &creds.uri,
            &creds.nonce,
            Some(nc_raw),
            Some(cnonce),
            Some(qop),
        );
        let given = creds.response.to_ascii_lowercase();
        let matches = constant_time_eq(expected.as_bytes(), given.as_bytes()) && known;
        match (check, matches) {
            (NonceCheck::Stale, true) => AuthOutcome::Challenge { stale: true },
            (NonceCheck::Stale, false) => AuthOutcome::Challenge { stale: false },
            (_, false) => AuthOutcome::Forbidden,
            (NonceCheck::Replay, true) => AuthOutcome::Challenge { stale: true },
            (_, true) => {
                if self.nonces.check(&creds.nonce, nc, now) == NonceCheck::Valid {
                    AuthOutcome::Ok
                } else {
                    AuthOutcome::Challenge { stale: true }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const N7616: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const C7616: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616(alg: Algorithm) -> String {
        response(
            alg,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            N7616,
            Some("00000001"),
            Some(C7616),
            Some("auth"),
        )
    }

    #[test]
    fn rfc2617_vector() {
        let r = response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some("00000001"),
            Some("0a4f113b"),
            Some("auth"),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_vectors() {
        assert_eq!(rfc7616(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            rfc7616(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn sip_register_vector() {
        // Computed independently with Python hashlib.
        let args = (
            "alice",
            "centralita",
            "s3cret",
            "REGISTER",
            "sip:centralita.example.com",
            "abc123",
            Some("00000001"),
            Some("0a4f113b"),
            Some("auth"),
        );
        let md5 = response(
            Algorithm::Md5,
            args.0,
            args.1,
            args.2,
            args.3,
            args.4,
            args.5,
            args.6,
            args.7,
            args.8,
        );
        let sha = response(
            Algorithm::Sha256,
            args.0,
            args.1,
            args.2,
            args.3,
            args.4,
            args.5,
            args.6,
            args.7,
            args.8,
        );
        assert_eq!(md5, SIP_MD5);
        assert_eq!(sha, SIP_SHA256);
        assert_eq!(
            ha1(Algorithm::Md5, "alice", "centralita", "s3cret"),
            SIP_HA1_MD5
        );
        // without qop (RFC 2069 form)
        let r = response(
            Algorithm::Md5,
            "alice",
            "centralita",
            "s3cret",
            "REGISTER",
            "sip:centralita.example.com",
            "abc123",
            None,
            None,
            None,
        );
        assert_eq!(r, SIP_MD5_NOQOP);
    }
    const SIP_MD5: &str = "be14332ca70323ce5361d8e88b509145";
    const SIP_SHA256: &str = "6b501ea66d1f1a56b31919e41cd3636001904ca517fedad9140aec78116c4566";
    const SIP_HA1_MD5: &str = "b5e52e46f23c8472179c2a0da86b6f08";
    const SIP_MD5_NOQOP: &str = "4dd2676923c219dd788a5187f778dd7a";

    #[test]
    fn parse_basic_and_odd_spacing() {
        let v = "Digest  username=\"Mufasa\" ,realm = \"http-auth@example.org\",\r\n nonce=\"abc\", uri=\"sip:x@y;transport=udp\",\tresponse=\"0123\", algorithm=SHA-256, cnonce=\"c\\\"q\", opaque=\"o\", qop=auth, nc=0000000a, foo=bar";
        let c = parse_authorization(v).expect("parses");
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.uri, "sip:x@y;transport=udp");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.cnonce.as_deref(), Some("c\"q"));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc, Some(10));
        assert_eq!(c.nc_raw.as_deref(), Some("0000000a"));
        let c = parse_authorization(
            "digest username=u,realm=r,nonce=n,uri=\"u\",response=x,qop=\"auth\",,",
        )
        .expect("parses");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc, None);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            parse_authorization("NoOneKnowsThisScheme opaque-data=here"),
            Err(DigestError::UnsupportedScheme(
                "NoOneKnowsThisScheme".into()
            ))
        );
        assert_eq!(parse_authorization("   "), Err(DigestError::Empty));
        assert!(matches!(
            parse_authorization("Digest username=\"a"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            parse_authorization("Digest realm=r"),
            Err(DigestError::MissingParam("username"))
        ));
        let base = "Digest username=u,realm=r,nonce=n,uri=u,response=x";
        assert!(matches!(
            parse_authorization(&format!("{base},algorithm=MD5-sess")),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            parse_authorization(&format!("{base},nc=1")),
            Err(DigestError::InvalidNonceCount(_))
        ));
        assert!(matches!(
            parse_authorization(&format!("{base},nc=0000000g")),
            Err(DigestError::InvalidNonceCount(_))
        ));
        assert!(matches!(
            parse_authorization(&format!("{base},realm=s")),
            Err(DigestError::DuplicateParam(_))
        ));
        assert_eq!(
            parse_authorization(&format!("{base},nc=FFFFFFFF")).map(|c| c.nc),
            Ok(Some(u32::MAX))
        );
    }

    fn mgr(base: Instant) -> NonceManager {
        NonceManager::new([7u8; 32], DEFAULT_NONCE_LIFETIME, base)
    }

    #[test]
    fn nonce_lifecycle() {
        let t0 = Instant::now();
        let mut m = mgr(t0);
        let n = m.issue(t0);
        assert_eq!(n.len(), 64);
        assert_ne!(n, m.issue(t0));
        assert_eq!(
            m.check(&n, 1, t0 + Duration::from_secs(1)),
            NonceCheck::Valid
        );
        assert_eq!(
            m.check(&n, 1, t0 + Duration::from_secs(2)),
            NonceCheck::Replay
        );
        assert_eq!(
            m.check(&n, 0x0a, t0 + Duration::from_secs(2)),
            NonceCheck::Valid
        );
        assert_eq!(
            m.check(&n, 5, t0 + Duration::from_secs(2)),
            NonceCheck::Replay
        );
        assert_eq!(
            m.check(&n, 11, t0 + Duration::from_secs(301)),
            NonceCheck::Stale
        );
        m.prune(t0 + Duration::from_secs(301));
        assert_eq!(m.tracked_len(), 0);
    }

    #[test]
    fn forged_nonces_invalid() {
        let t0 = Instant::now();
        let mut m = mgr(t0);
        let n = m.issue(t0);
        let mut forged = n.clone().into_bytes();
        forged[63] = if forged[63] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(m.check(&forged, 1, t0), NonceCheck::Invalid);
        assert_eq!(m.check("garbage", 1, t0), NonceCheck::Invalid);
        assert_eq!(m.check(&"é".repeat(32), 1, t0), NonceCheck::Invalid);
        let other = NonceManager::new([8u8; 32], DEFAULT_NONCE_LIFETIME, t0);
        assert_eq!(other.validate(&n, 1, t0), NonceCheck::Invalid);
    }

    #[test]
    fn bounded_tracking_never_reopens_replay() {
        let t0 = Instant::now();
        let mut m = mgr(t0);
        m.set_max_tracked(4);
        let nonces: Vec<String> = (0..10)
            .map(|i| m.issue(t0 + Duration::from_millis(i)))
            .collect();
        for n in &nonces {
            assert_eq!(
                m.check(n, 1, t0 + Duration::from_secs(1)),
                NonceCheck::Valid
            );
        }
        assert!(m.tracked_len() <= 4);
        for n in &nonces {
            assert_ne!(
                m.check(n, 1, t0 + Duration::from_secs(1)),
                NonceCheck::Valid
            );
        }
    }

    #[test]
    fn challenge_order() {
        let h = challenge_headers("centralita", "n\"1", true);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0], "Digest realm=\"centralita\", nonce=\"n\\\"1\", algorithm=SHA-256, qop=\"auth\", stale=true");
        assert!(h[1].contains("algorithm=MD5") && !h[1].contains("SHA"));
        assert!(!challenge_headers("r", "n", false)[0].contains("stale"));
    }

    fn client(
        alg: Algorithm,
        user: &str,
        pass: &str,
        realm: &str,
        nonce: &str,
        nc: u32,
    ) -> DigestCredentials {
        let nc_raw = format!("{nc:08x}");
        let uri = "sip:centralita.example.com";
        let resp = response(
            alg,
            user,
            realm,
            pass,
            "REGISTER",
            uri,
            nonce,
            Some(&nc_raw),
            Some("cn"),
            Some("auth"),
        );
        DigestCredentials {
            username: user.into(),
            realm: realm.into(),
            nonce: nonce.into(),
            uri: uri.into(),
            response: resp,
            algorithm: alg,
            cnonce: Some("cn".into()),
            opaque: None,
            qop: Some("auth".into()),
            nc: Some(nc),
            nc_raw: Some(nc_raw),
        }
    }

    #[test]
    fn verifier_outcomes() {
        let t0 = Instant::now();
        let mut v = Verifier::new("centralita", mgr(t0));
        let hdrs = v.challenge(t0, false);
        let nonce = hdrs[0]
            .split("nonce=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("nonce")
            .to_string();
        let pw = Some(Secret::Password("pw"));
        let t1 = t0 + Duration::from_secs(1);
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let n = v.nonces_mut().issue(t0);
            assert_eq!(
                v.verify(
                    "REGISTER",
                    &client(alg, "alice", "pw", "centralita", &n, 1),
                    pw,
                    t1
                ),
                AuthOutcome::Ok
            );
        }
        // wrong password and unknown user look the same
        let bad = client(Algorithm::Sha256, "alice", "nope", "centralita", &nonce, 1);
        assert_eq!(v.verify("REGISTER", &bad, pw, t1), AuthOutcome::Forbidden);
        let ghost = client(Algorithm::Sha256, "ghost", "pw", "centralita", &nonce, 1);
        assert_eq!(
            v.verify("REGISTER", &ghost, None, t1),
            AuthOutcome::Forbidden
        );
        // failed attempts did not burn nc=1
        let good = client(Algorithm::Sha256, "alice", "pw", "centralita", &nonce, 1);
        assert_eq!(v.verify("REGISTER", &good, pw, t1), AuthOutcome::Ok);
        assert_eq!(
            v.verify("REGISTER", &good, pw, t1),
            AuthOutcome::Challenge { stale: true }
        ); // replay
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Sha256, "alice", "pw", "centralita", &nonce, 2),
                pw,
                t1
            ),
            AuthOutcome::Ok
        );
        // wrong method → response mismatch
        assert_eq!(
            v.verify(
                "INVITE",
                &client(Algorithm::Sha256, "alice", "pw", "centralita", &nonce, 3),
                pw,
                t1
            ),
            AuthOutcome::Forbidden
        );
        // realm mismatch
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Md5, "alice", "pw", "other", &nonce, 4),
                pw,
                t1
            ),
            AuthOutcome::Challenge { stale: false }
        );
        // missing qop / cnonce
        let mut noqop = client(Algorithm::Md5, "alice", "pw", "centralita", &nonce, 5);
        noqop.qop = None;
        assert_eq!(v.verify("REGISTER", &noqop, pw, t1), AuthOutcome::Forbidden);
        let mut nocn = client(Algorithm::Md5, "alice", "pw", "centralita", &nonce, 5);
        nocn.cnonce = None;
        assert_eq!(v.verify("REGISTER", &nocn, pw, t1), AuthOutcome::Forbidden);
        // forged nonce
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Md5, "alice", "pw", "centralita", "deadbeef", 1),
                pw,
                t1
            ),
            AuthOutcome::Challenge { stale: false }
        );
        // expired
        let late = t0 + Duration::from_secs(400);
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Md5, "alice", "pw", "centralita", &nonce, 9),
                pw,
                late
            ),
            AuthOutcome::Challenge { stale: true }
        );
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Md5, "alice", "no", "centralita", &nonce, 9),
                pw,
                late
            ),
            AuthOutcome::Challenge { stale: false }
        );
        // precomputed HA1
        let h1 = ha1(Algorithm::Md5, "bob", "centralita", "pw2");
        let n = v.nonces_mut().issue(t1);
        let sec = Some(Secret::Ha1 {
            md5: Some(&h1),
            sha256: None,
        });
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Md5, "bob", "pw2", "centralita", &n, 1),
                sec,
                t1
            ),
            AuthOutcome::Ok
        );
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Sha256, "bob", "pw2", "centralita", &n, 2),
                sec,
                t1
            ),
            AuthOutcome::Forbidden
        );
    }

    #[test]
    fn verifier_algorithm_restriction() {
        let t0 = Instant::now();
        let mut v = Verifier::new("r", mgr(t0));
        v.set_algorithms(&[Algorithm::Md5]);
        let h = v.challenge(t0, false);
        assert_eq!(h.len(), 1);
        let n = v.nonces_mut().issue(t0);
        assert_eq!(
            v.verify(
                "REGISTER",
                &client(Algorithm::Sha256, "a", "p", "r", &n, 1),
                Some(Secret::Password("p")),
                t0
            ),
            AuthOutcome::Challenge { stale: false }
        );
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse_authorization(&s);
            let _ = parse_authorization(&format!("Digest {s}"));
        }

        #[test]
        fn structured_never_panics(parts in proptest::collection::vec("[a-z]{0,4}|=|,|\"|\\\\| |\t|\r\n|[\\x00-\\x7f]|\u{e9}", 0..30)) {
            let _ = parse_authorization(&format!("Digest {}", parts.concat()));
        }

        #[test]
        fn nonce_check_never_panics(s in ".*", nc in any::<u32>()) {
            let t0 = Instant::now();
            let mut m = mgr(t0);
            let _ = m.check(&s, nc, t0);
        }
    }
}
