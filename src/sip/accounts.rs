//! Agents' SIP accounts: the registrar's driver and digest authentication
//! of agents' requests. It owns the sans-IO [`Verifier`] (nonces) and
//! [`Registrar`] (bindings) behind one lock, answers REGISTER, tells the
//! rest of the controller when an agent becomes reachable or unreachable,
//! and expires bindings on their own timer. Callers dialing the IVR are never
//! asked to authenticate; agents' feature-code calls are.

use super::digest::{
    challenge_headers_for, parse_authorization, Algorithm, AuthOutcome, NonceManager, Secret,
    Verifier,
};
use super::registrar::{
    normalize_aor, parse_contact_list, Binding, RegisterRequest, Registrar, RegistrarConfig,
    RegistrarEvent, Transport as RegTransport,
};
use crate::config::RuntimeConfig;
use crate::metrics::Metrics;
use rsipstack::sip::{Header, HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// An agent's reachability, as its bindings come and go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Reachable { agent: String },
    Unreachable { agent: String },
}

/// The outcome of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    /// The agent (by id) that sent it.
    Agent(String),
    /// Answer 401 with these WWW-Authenticate values.
    Challenge(Vec<String>),
    /// Answer 403 (wrong credentials; never says whether the user exists).
    Forbidden,
}

struct State {
    verifier: Verifier,
    registrar: Registrar,
}

/// The accounts service; one per server.
pub struct Accounts {
    /// SIP user → (agent id, password).
    users: HashMap<String, (String, String)>,
    /// Agent id → SIP user.
    agent_users: HashMap<String, String>,
    state: Mutex<State>,
    presence: mpsc::UnboundedSender<Presence>,
    rearm: Notify,
    metrics: Metrics,
    realm: String,
    md5_only: Vec<String>,
    /// Bans sources (and throttles accounts) that keep failing.
    guard: Arc<super::guard::Guard>,
}

impl Accounts {
    /// Build from the config. The nonce secret is random per start.
    pub fn new(
        config: &RuntimeConfig,
        metrics: Metrics,
        guard: Arc<super::guard::Guard>,
    ) -> (Arc<Accounts>, mpsc::UnboundedReceiver<Presence>) {
        let users = config
            .agents
            .iter()
            .map(|(id, a)| (a.sip_user.clone(), (id.clone(), a.password.clone())))
            .collect();
        let agent_users = config
            .agents
            .iter()
            .map(|(id, a)| (id.clone(), a.sip_user.clone()))
            .collect();
        let mut secret = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut secret[..]);
        let r = &config.registrar;
        let nonces = NonceManager::new(
            secret,
            Duration::from_secs(u64::from(r.nonce_lifetime_secs)),
            Instant::now(),
        );
        let registrar = Registrar::new(RegistrarConfig {
            min_expires: r.min_expires_secs,
            max_expires: r.max_expires_secs,
            default_expires: r.max_expires_secs.min(3600),
            ..RegistrarConfig::default()
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let accounts = Arc::new(Accounts {
            users,
            agent_users,
            state: Mutex::new(State {
                verifier: Verifier::new(r.realm.clone(), nonces),
                registrar,
            }),
            presence: tx,
            rearm: Notify::new(),
            metrics,
            realm: r.realm.clone(),
            md5_only: r.md5_only_user_agents.clone(),
            guard,
        });
        (accounts, rx)
    }

    /// The challenge for a phone: SHA-256 first, then MD5 (RFC 8760); MD5
    /// only for the user agents known to fail on a SHA-256 challenge.
    fn challenge(
        &self,
        st: &mut State,
        user_agent: Option<&str>,
        now: Instant,
        stale: bool,
    ) -> Vec<String> {
        let md5_only =
            user_agent.is_some_and(|ua| self.md5_only.iter().any(|p| ua.starts_with(p.as_str())));
        let order: &[Algorithm] = if md5_only {
            &[Algorithm::Md5]
        } else {
            &[Algorithm::Sha256, Algorithm::Md5]
        };
        let nonce = st.verifier.nonces_mut().issue(now);
        challenge_headers_for(order, &self.realm, &nonce, stale)
    }

    /// Authenticate a request from its `Authorization` value (if any),
    /// sent from `source`. Failures count towards the source's ban and the
    /// account's throttle (see `sip::limits`); while an account is
    /// throttled only its registered phone's address is heard for it.
    pub fn authenticate(
        &self,
        method: &str,
        authorization: Option<&str>,
        user_agent: Option<&str>,
        source: SocketAddr,
        now: Instant,
    ) -> Authenticated {
        let Ok(mut st) = self.state.lock() else {
            return Authenticated::Forbidden;
        };
        let creds = match authorization.map(parse_authorization) {
            None | Some(Err(_)) => {
                return Authenticated::Challenge(self.challenge(&mut st, user_agent, now, false))
            }
            Some(Ok(c)) => c,
        };
        let account = self.users.get(&creds.username);
        let known = account.map(|_| creds.username.as_str());
        let from_owner = known.is_some_and(|user| {
            st.registrar
                .aors_of_user(user)
                .map(str::to_string)
                .collect::<Vec<_>>()
                .iter()
                .any(|aor| {
                    st.registrar
                        .contacts(aor, now)
                        .iter()
                        .any(|b| b.source.ip() == source.ip())
                })
        });
        if !self.guard.auth_allowed(known, from_owner) {
            return Authenticated::Forbidden;
        }
        let secret = account.map(|(_, pw)| Secret::Password(pw.as_str()));
        let evictions = st.verifier.nonces_mut().evictions();
        let outcome = st.verifier.verify(method, &creds, secret, now);
        if st.verifier.nonces_mut().evictions() > evictions {
            self.metrics.limits_hit.with_label_values(&["nonces"]).inc();
        }
        match outcome {
            AuthOutcome::Ok => match account {
                Some((agent, _)) => {
                    self.guard.auth_succeeded(source.ip());
                    Authenticated::Agent(agent.clone())
                }
                None => Authenticated::Forbidden,
            },
            AuthOutcome::Challenge { stale } => {
                Authenticated::Challenge(self.challenge(&mut st, user_agent, now, stale))
            }
            AuthOutcome::Forbidden => {
                drop(st);
                self.auth_failed(method, source, known);
                Authenticated::Forbidden
            }
        }
    }

    /// Count a digest failure (metrics, the source's ban, the account's
    /// throttle).
    fn auth_failed(&self, method: &str, source: SocketAddr, account: Option<&str>) {
        self.metrics
            .sip_auth_failures
            .with_label_values(&[method_label(method)])
            .inc();
        self.guard.auth_failed(source.ip(), account);
    }

    /// Answer a REGISTER: challenge, 403, 423, 400 or 200 with the bindings.
    pub async fn on_register(&self, tx: &mut Transaction, source: SocketAddr, over_tcp: bool) {
        let now = Instant::now();
        let req = &tx.original;
        let to = req
            .to_header()
            .map(|t| t.value().to_string())
            .unwrap_or_default();
        let Ok(aor) = normalize_aor(&to) else {
            return reply(tx, 400, vec![]).await;
        };
        let authz = header_values(req, "Authorization").into_iter().next();
        let ua = header_values(req, "User-Agent").into_iter().next();
        let agent =
            match self.authenticate("REGISTER", authz.as_deref(), ua.as_deref(), source, now) {
                Authenticated::Agent(a) => a,
                Authenticated::Challenge(ch) => {
                    let headers = ch
                        .into_iter()
                        .map(|v| ("WWW-Authenticate".to_string(), v))
                        .collect();
                    return reply(tx, 401, headers).await;
                }
                Authenticated::Forbidden => return reply(tx, 403, vec![]).await,
            };
        // An agent registers its own address of record only.
        let user = aor
            .split_once(':')
            .map(|(_, r)| r)
            .and_then(|r| r.split_once('@'))
            .map(|(u, _)| u);
        let own = self
            .users
            .iter()
            .any(|(u, (a, _))| *a == agent && Some(u.as_str()) == user);
        if !own {
            let user = self.agent_users.get(&agent).map(String::as_str);
            self.auth_failed("REGISTER", source, user);
            return reply(tx, 403, vec![]).await;
        }
        let contact_values = header_values(req, "Contact");
        let refs: Vec<&str> = contact_values.iter().map(String::as_str).collect();
        let contacts = match parse_contact_list(&refs) {
            Ok(c) => c,
            Err(e) => return reply(tx, e.status_code(), vec![]).await,
        };
        let call_id = req
            .call_id_header()
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        let cseq = req
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or(0);
        let header_expires = header_values(req, "Expires")
            .first()
            .and_then(|v| v.trim().parse().ok());
        let request = RegisterRequest {
            aor,
            call_id,
            cseq,
            contacts,
            header_expires,
            source,
            transport: if over_tcp {
                RegTransport::Tcp
            } else {
                RegTransport::Udp
            },
        };
        let result = self
            .state
            .lock()
            .ok()
            .map(|mut st| st.registrar.register(now, request));
        let Some(result) = result else {
            return reply(tx, 500, vec![]).await;
        };
        match result {
            Ok(r) => {
                let headers = r
                    .contacts
                    .iter()
                    .map(|c| ("Contact".to_string(), c.header_value()))
                    .collect();
                self.drain_events();
                self.rearm.notify_one();
                reply(tx, 200, headers).await
            }
            Err(e) => {
                let status = e.status_code();
                let extra = match e {
                    super::registrar::RegistrarError::IntervalTooBrief { min } => {
                        vec![("Min-Expires".to_string(), min.to_string())]
                    }
                    _ => vec![],
                };
                reply(tx, status, extra).await
            }
        }
    }

    /// Whether a request with this From user came from one of that agent's
    /// registered phones (the address its REGISTER came from).
    pub fn from_agent_phone(&self, from_user: &str, source: SocketAddr, now: Instant) -> bool {
        self.users
            .get(from_user)
            .is_some_and(|(agent, _)| self.bindings(agent, now).iter().any(|b| b.source == source))
    }

    /// The live bindings of an agent, best first.
    pub fn bindings(&self, agent: &str, now: Instant) -> Vec<Binding> {
        let Some(user) = self.agent_users.get(agent) else {
            return vec![];
        };
        let Ok(st) = self.state.lock() else {
            return vec![];
        };
        st.registrar
            .aors_of_user(user)
            .map(str::to_string)
            .collect::<Vec<_>>()
            .iter()
            .flat_map(|aor| st.registrar.contacts(aor, now))
            .collect()
    }

    /// Expire bindings when they are due, until cancelled.
    pub async fn run_expiry(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let next = self
                .state
                .lock()
                .ok()
                .and_then(|st| st.registrar.poll_timeout());
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.rearm.notified() => continue,
                _ = sleep => {
                    if let Ok(mut st) = self.state.lock() {
                        st.registrar.handle_timeout(Instant::now());
                    }
                    self.drain_events();
                }
            }
        }
    }

    fn drain_events(&self) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        while let Some(ev) = st.registrar.poll_event() {
            let (aor, reachable) = match &ev {
                RegistrarEvent::AorReachable { aor } => (aor.clone(), true),
                RegistrarEvent::AorUnreachable { aor } => (aor.clone(), false),
            };
            let Some((agent, _)) = aor_user(&aor).and_then(|u| self.users.get(u)) else {
                continue;
            };
            let agent = agent.clone();
            if reachable {
                self.metrics.agents_registered.inc();
                let _ = self.presence.send(Presence::Reachable { agent });
            } else {
                self.metrics.agents_registered.dec();
                let _ = self.presence.send(Presence::Unreachable { agent });
            }
        }
    }
}

fn aor_user(aor: &str) -> Option<&str> {
    aor.split_once(':')?.1.split_once('@').map(|(u, _)| u)
}

/// Every value of a header, by name (case-insensitive; compact forms too).
pub fn header_values(req: &rsipstack::sip::Request, name: &str) -> Vec<String> {
    let compact = match name.to_ascii_lowercase().as_str() {
        "contact" => Some("m"),
        _ => None,
    };
    req.headers
        .iter()
        .filter(|h| {
            h.name().eq_ignore_ascii_case(name)
                || compact.is_some_and(|c| h.name().eq_ignore_ascii_case(c))
        })
        .map(|h| h.value().to_string())
        .collect()
}

fn method_label(m: &str) -> &'static str {
    match m {
        "REGISTER" => "REGISTER",
        "INVITE" => "INVITE",
        _ => "other",
    }
}

async fn reply(tx: &mut Transaction, status: u16, headers: Vec<(String, String)>) {
    let headers = headers
        .into_iter()
        .map(|(k, v)| Header::Other(k, v))
        .collect();
    let _ = tx.reply_with(StatusCode::from(status), headers, None).await;
}
