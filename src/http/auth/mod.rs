//! Who is asking: agents (their id and their phone's password) and
//! supervisors sign in to the desk and get an HttpOnly, SameSite=Strict
//! session cookie; scripts send `Authorization: Bearer <token>`, of which
//! the config keeps only the SHA-256. Passwords and tokens are compared in
//! constant time (`subtle`, over SHA-256 digests so that lengths do not
//! show either). Failed sign-ins are slowed, then refused, per address
//! (`throttle.rs`).
//!
//! Sessions live in memory (a restart signs everyone out), at most
//! [`MAX_SESSIONS`], keyed by the SHA-256 of their cookie.

pub mod throttle;

use super::{error, AppState};
use crate::config::{RuntimeConfig, TokenRole};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use throttle::{SignInThrottle, Verdict};

/// The session cookie's name.
pub const COOKIE: &str = "centralita_session";

/// Sessions kept at most (the oldest goes first).
pub const MAX_SESSIONS: usize = 10_000;

/// What someone may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Its own state, and the tickets it was offered or took.
    Agent,
    /// Everything.
    Supervisor,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The agent's or supervisor's id (a token acts as one).
    pub id: String,
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The logbook's author: `agent:<id>` or `supervisor:<id>`.
    pub fn author(&self) -> String {
        match self.role {
            Role::Agent => format!("agent:{}", self.id),
            Role::Supervisor => format!("supervisor:{}", self.id),
        }
    }

    /// The agent it is, if it is one.
    pub fn agent(&self) -> Option<&str> {
        (self.role == Role::Agent).then_some(self.id.as_str())
    }

    pub fn is_supervisor(&self) -> bool {
        self.role == Role::Supervisor
    }
}

type Digest32 = [u8; 32];

fn sha256(s: &[u8]) -> Digest32 {
    Sha256::digest(s).into()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Digest32> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Everyone who may sign in, and the scripts' tokens.
pub struct Users {
    /// id → (who, SHA-256 of the password).
    people: HashMap<String, (Principal, Digest32)>,
    /// (SHA-256 of the token, who it acts as).
    tokens: Vec<(Digest32, Principal)>,
}

impl Users {
    pub fn from_config(c: &RuntimeConfig) -> Users {
        let mut people = HashMap::new();
        for (id, a) in &c.agents {
            let who = Principal {
                id: id.clone(),
                name: a.name.clone(),
                role: Role::Agent,
            };
            people.insert(id.clone(), (who, sha256(a.password.as_bytes())));
        }
        for (id, s) in &c.supervisors {
            let who = Principal {
                id: id.clone(),
                name: s.name.clone(),
                role: Role::Supervisor,
            };
            people.insert(id.clone(), (who, sha256(s.password.as_bytes())));
        }
        let tokens = c
            .api
            .tokens
            .iter()
            .filter_map(|(name, t)| {
                let hash = unhex(&t.sha256.to_ascii_lowercase())?;
                let who = match (t.role, &t.agent) {
                    (TokenRole::Agent, Some(agent)) => Principal {
                        id: agent.clone(),
                        name: c
                            .agents
                            .get(agent)
                            .map_or_else(|| agent.clone(), |a| a.name.clone()),
                        role: Role::Agent,
                    },
                    _ => Principal {
                        id: format!("token-{name}"),
                        name: format!("token {name}"),
                        role: Role::Supervisor,
                    },
                };
                Some((hash, who))
            })
            .collect();
        Users { people, tokens }
    }

    /// The person, if the password is theirs (constant time, also for an
    /// unknown user).
    pub fn sign_in(&self, user: &str, password: &str) -> Option<Principal> {
        let given = sha256(password.as_bytes());
        match self.people.get(user) {
            Some((who, want)) => bool::from(given.ct_eq(want)).then(|| who.clone()),
            None => {
                let _ = given.ct_eq(&[0u8; 32]);
                None
            }
        }
    }

    /// Who a bearer token acts as.
    pub fn bearer(&self, token: &str) -> Option<Principal> {
        let given = sha256(token.as_bytes());
        let mut found = None;
        for (hash, who) in &self.tokens {
            if bool::from(given.ct_eq(hash)) {
                found = Some(who.clone());
            }
        }
        found
    }

    /// Whether `id` is an agent's id.
    pub fn is_agent(&self, id: &str) -> bool {
        self.people
            .get(id)
            .is_some_and(|(p, _)| p.role == Role::Agent)
    }
}

struct Session {
    who: Principal,
    expires: Instant,
}

/// Signed-in sessions by the SHA-256 of their cookie.
pub struct Sessions {
    map: Mutex<HashMap<Digest32, Session>>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `who`: its cookie value.
    pub fn create(&self, who: Principal, now: Instant) -> String {
        let token: [u8; 32] = rand::random();
        let cookie = hex(&token);
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= MAX_SESSIONS {
                m.retain(|_, s| s.expires > now);
            }
            if m.len() >= MAX_SESSIONS {
                if let Some(k) = m.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                    m.remove(&k);
                }
            }
            m.insert(
                sha256(cookie.as_bytes()),
                Session {
                    who,
                    expires: now + self.ttl,
                },
            );
        }
        cookie
    }

    pub fn get(&self, cookie: &str, now: Instant) -> Option<Principal> {
        let key = sha256(cookie.as_bytes());
        let mut m = self.map.lock().ok()?;
        match m.get(&key) {
            Some(s) if s.expires > now => Some(s.who.clone()),
            Some(_) => {
                m.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, cookie: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&sha256(cookie.as_bytes()));
        }
    }
}

/// The API's guards: who may sign in, who is signed in, and who failed.
pub struct Auth {
    pub users: Users,
    pub sessions: Sessions,
    pub throttle: Mutex<SignInThrottle>,
}

impl Auth {
    pub fn new(config: &RuntimeConfig) -> Auth {
        Auth {
            users: Users::from_config(config),
            sessions: Sessions::new(Duration::from_secs(
                u64::from(config.api.session_hours) * 3600,
            )),
            throttle: Mutex::new(SignInThrottle::new()),
        }
    }

    /// Before checking a password from `ip`.
    pub fn check(&self, ip: std::net::IpAddr, now: Instant) -> Verdict {
        self.throttle
            .lock()
            .map(|mut t| t.check(ip, now))
            .unwrap_or(Verdict::Go {
                delay: Duration::ZERO,
            })
    }

    /// After checking it: whether the address is refused from now on.
    pub fn record(&self, ip: std::net::IpAddr, ok: bool, now: Instant) -> bool {
        let Ok(mut t) = self.throttle.lock() else {
            return false;
        };
        if ok {
            t.succeeded(ip);
            false
        } else {
            t.failed(ip, now)
        }
    }
}

/// The session cookie's value in a request, if any.
pub fn cookie_of(headers: &header::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.len() == 64)
}

/// Without credentials (or with wrong ones): 401.
pub struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "sign in first (POST /api/v1/session) or send Authorization: Bearer <token>",
        )
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"centralita\""),
        );
        r
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let now = Instant::now();
        if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
            let token = v
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(Unauthorized)?;
            return st.auth.users.bearer(token).ok_or(Unauthorized);
        }
        let cookie = cookie_of(&parts.headers).ok_or(Unauthorized)?;
        st.auth.sessions.get(&cookie, now).ok_or(Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::path::Path;

    fn config() -> RuntimeConfig {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/centralita.toml"
        ));
        RuntimeConfig::load(path, &Overrides::default()).expect("shipped config")
    }

    #[test]
    fn agents_and_supervisors_sign_in_with_their_own_password_only() {
        let users = Users::from_config(&config());
        let ana = users.sign_in("ana", "ana-demo-1234").expect("ana");
        assert_eq!((ana.role, ana.author()), (Role::Agent, "agent:ana".into()));
        let sara = users.sign_in("sara", "sara-demo-1234").expect("sara");
        assert_eq!(sara.author(), "supervisor:sara");
        assert!(users.sign_in("ana", "bruno-demo-1234").is_none());
        assert!(users.sign_in("nadie", "x").is_none());
        assert!(users.sign_in("ana", "").is_none());
    }

    #[test]
    fn a_token_acts_with_its_role_and_only_its_hash_is_kept() {
        let users = Users::from_config(&config());
        let t = users
            .bearer("demo-token-change-me")
            .expect("the demo token");
        assert!(t.is_supervisor());
        assert!(users.bearer("demo-token-change-mE").is_none());
        assert!(users
            .bearer("b5d56f2eacf505c2639b22468f3a8b1bcaf7d619cadbab47dc6ce515fc4c3612")
            .is_none());
    }

    #[test]
    fn a_session_lasts_its_time_and_ends_when_asked() {
        let t0 = Instant::now();
        let s = Sessions::new(Duration::from_secs(60));
        let who = Principal {
            id: "ana".into(),
            name: "Ana".into(),
            role: Role::Agent,
        };
        let c = s.create(who.clone(), t0);
        assert_eq!(c.len(), 64);
        assert_eq!(s.get(&c, t0), Some(who.clone()));
        assert_eq!(s.get(&c, t0 + Duration::from_secs(61)), None, "expired");
        let c = s.create(who, t0);
        s.end(&c);
        assert_eq!(s.get(&c, t0), None, "signed out");
    }
}
