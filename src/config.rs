//! The operator's configuration: `config/centralita.toml`, read with serde
//! (`deny_unknown_fields`, defaults as named functions), validated into a
//! typed [`RuntimeConfig`] before anything starts. Every error names the file
//! and the key and says what was expected. Paths in the file are relative to
//! the file's own directory, so the controller does not depend on its working
//! directory.

use crate::acd::TransferTarget;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// A configuration problem: which file, which key, what was expected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

/// The file as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub sip: SipSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub media: MediaSection,
    #[serde(default)]
    pub ivr: IvrSection,
    /// Dialed number (Request-URI user) → IVR entry menu.
    #[serde(default)]
    pub numbers: BTreeMap<String, String>,
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    #[serde(default)]
    pub registrar: RegistrarSection,
    /// Feature codes agents dial from their softphone.
    #[serde(default)]
    pub features: FeatureCodes,
    /// Agents by id.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentEntry>,
    /// Queues by name (the names the IVR's `queue` actions use).
    #[serde(default)]
    pub queues: BTreeMap<String, QueueEntry>,
    #[serde(default)]
    pub acd: AcdSection,
}

/// Trunk capacity and offering rules shared by every queue.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AcdSection {
    /// External lines (an E1 is 30): callers and callbacks to customers.
    #[serde(default = "default_lines")]
    pub lines: u32,
    /// Lines never used by support calls or callbacks.
    #[serde(default)]
    pub reserve: u32,
    /// Pause reason given to an agent who does not answer an offer.
    #[serde(default = "default_no_answer_reason")]
    pub no_answer_pause: String,
    #[serde(default = "default_callback_retries")]
    pub callback_retries: u32,
    /// Seconds before a failed callback is tried again.
    #[serde(default = "default_callback_retry_secs")]
    pub callback_retry_secs: u32,
    /// The gateway callbacks to a number the caller typed go out through:
    /// `sip:IP[:PORT]` (UDP); the number becomes the user part.
    #[serde(default)]
    pub callback_trunk: Option<String>,
}

/// Where callbacks to typed numbers are sent (over UDP: centralita opens
/// no TCP connections of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trunk {
    pub addr: SocketAddr,
}

impl Trunk {
    /// `sip:IP[:PORT][;transport=udp]`, an IP address (never a name to
    /// resolve); the port defaults to 5060.
    pub fn parse(uri: &str) -> Result<Trunk, String> {
        let expected = || format!("expected sip:IP[:PORT] (UDP), got {uri:?}");
        let rest = uri.strip_prefix("sip:").ok_or_else(expected)?;
        let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
        if hostport.contains('@') {
            return Err(format!(
                "{}: the typed number becomes the user part; give no user",
                expected()
            ));
        }
        let addr = hostport
            .parse::<SocketAddr>()
            .or_else(|_| {
                hostport
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 5060))
            })
            .map_err(|_| format!("{}: the host must be an IP address", expected()))?;
        match params.to_ascii_lowercase().as_str() {
            "" | "transport=udp" => Ok(Trunk { addr }),
            _ => Err(expected()),
        }
    }

    /// The Request-URI that calls `number` through this trunk.
    pub fn uri_for(&self, number: &str) -> String {
        format!("sip:{number}@{}", self.addr)
    }
}

impl Default for AcdSection {
    fn default() -> Self {
        AcdSection {
            lines: default_lines(),
            reserve: 0,
            no_answer_pause: default_no_answer_reason(),
            callback_retries: default_callback_retries(),
            callback_retry_secs: default_callback_retry_secs(),
            callback_trunk: None,
        }
    }
}

/// What a queue does when its maximum wait passes, or when no agent is
/// logged in: `"accept"` (keep waiting), `"callback"` (offer a callback),
/// `{ message = "prompt" }` (play and hang up), `{ overflow = "queue" }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum FallbackEntry {
    Keyword(String),
    Message { message: String },
    Overflow { overflow: String },
}

/// One widening step: after `after_secs` of waiting, level-2 agents also
/// qualify, and/or required skill levels are lowered.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WideningEntry {
    pub after_secs: u32,
    #[serde(default)]
    pub also_level2: bool,
    #[serde(default)]
    pub lower_min_skill: u8,
}

/// A queue: the skills it needs, its targets and what happens when callers
/// wait too long.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QueueEntry {
    /// Skill → minimum level.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Support level of the agents who serve it (1; level 2 joins by widening).
    #[serde(default = "default_support_level")]
    pub level: u8,
    #[serde(default = "default_strategy")]
    pub strategy: String,
    /// Service level: `service_level_percent`% answered within `service_level_secs`.
    #[serde(default = "default_sl_percent")]
    pub service_level_percent: u8,
    #[serde(default = "default_sl_secs")]
    pub service_level_secs: u32,
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
    #[serde(default = "default_fallback")]
    pub on_max_wait: FallbackEntry,
    #[serde(default = "default_fallback")]
    pub on_no_agents: FallbackEntry,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    #[serde(default = "default_announce_every")]
    pub announce_every_secs: u32,
    #[serde(default)]
    pub widening: Vec<WideningEntry>,
    /// A number that reaches this queue directly: dialed by a caller (no
    /// IVR menu), or named by an agent's transfer.
    #[serde(default)]
    pub number: Option<String>,
}

/// The registrar: digest realm, nonce lifetime, binding lifetimes.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistrarSection {
    #[serde(default = "default_realm")]
    pub realm: String,
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime_secs: u32,
    #[serde(default = "default_min_expires")]
    pub min_expires_secs: u32,
    #[serde(default = "default_max_expires")]
    pub max_expires_secs: u32,
    /// User-Agent prefixes of phones that fail on any challenge they cannot
    /// compute, even beside one they can (libre/baresip 1.x gives up on a
    /// SHA-256 challenge): they are offered MD5 only; everybody else gets
    /// SHA-256 first, then MD5 (RFC 8760).
    #[serde(default = "default_md5_only")]
    pub md5_only_user_agents: Vec<String>,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        RegistrarSection {
            realm: default_realm(),
            nonce_lifetime_secs: default_nonce_lifetime(),
            min_expires_secs: default_min_expires(),
            max_expires_secs: default_max_expires(),
            md5_only_user_agents: default_md5_only(),
        }
    }
}

/// What an agent dials to change state; each answered with a short prompt.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeatureCodes {
    #[serde(default = "default_ready_code")]
    pub ready: String,
    #[serde(default = "default_pause_code")]
    pub pause: String,
    #[serde(default = "default_logout_code")]
    pub logout: String,
    /// Typed by an agent during a call (taken from the agent's leg, never
    /// passed to the caller), followed by a queue's number or an agent's
    /// extension and `#`: the caller is transferred there.
    #[serde(default = "default_transfer_prefix")]
    pub transfer_prefix: String,
}

impl FeatureCodes {
    /// Which feature, if `dialed` is one of the codes.
    pub fn feature_of(&self, dialed: &str) -> Option<crate::acd::driver::Feature> {
        use crate::acd::driver::Feature;
        if dialed == self.ready {
            Some(Feature::Ready)
        } else if dialed == self.pause {
            Some(Feature::Pause)
        } else if dialed == self.logout {
            Some(Feature::Logout)
        } else {
            None
        }
    }
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            ready: default_ready_code(),
            pause: default_pause_code(),
            logout: default_logout_code(),
            transfer_prefix: default_transfer_prefix(),
        }
    }
}

/// One agent (technician).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    pub name: String,
    /// The user part of the agent's address of record (its softphone's SIP
    /// username).
    pub sip_user: String,
    pub password: String,
    /// Skill name → level 0..=10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Support level: 1 (first line) or 2 (experts).
    #[serde(default = "default_support_level")]
    pub level: u8,
    #[serde(default = "default_wrap_up")]
    pub wrap_up_secs: u32,
    /// Digits that reach this agent in a transfer (keypad or REFER).
    #[serde(default)]
    pub extension: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    #[serde(default = "default_sip_listen")]
    pub listen: String,
    /// Address written into Contact, Via and SDP `c=`.
    #[serde(default)]
    pub advertise: Option<String>,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Seconds a client waits before retrying when we refuse calls (503).
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u32,
    /// Ring the caller (180) this long before answering; 0 answers at once.
    #[serde(default)]
    pub answer_after_ms: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    #[serde(default = "default_http_listen")]
    pub listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    #[serde(default = "default_rtp_ports")]
    pub rtp_ports: String,
    #[serde(default = "default_sounds_dir")]
    pub sounds_dir: String,
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
    #[serde(default = "default_language")]
    pub default_language: String,
    /// Hold music, a path under `sounds_dir` without `.wav`.
    #[serde(default = "default_hold_music")]
    pub hold_music: String,
    /// A call whose peer sends no RTP for this long is ended.
    #[serde(default = "default_rtp_timeout")]
    pub rtp_timeout_secs: u32,
    /// Detect in-band DTMF tones in the caller's audio.
    #[serde(default = "default_true")]
    pub inband_dtmf: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrSection {
    #[serde(default = "default_ivr_dir")]
    pub dir: String,
}

fn default_sip_listen() -> String {
    "0.0.0.0:5060".into()
}
fn default_user_agent() -> String {
    "centralita".into()
}
fn default_retry_after() -> u32 {
    30
}
fn default_http_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_rtp_ports() -> String {
    "20000-39999".into()
}
fn default_sounds_dir() -> String {
    "../sounds".into()
}
fn default_languages() -> Vec<String> {
    vec!["es".into(), "en".into()]
}
fn default_language() -> String {
    "es".into()
}
fn default_hold_music() -> String {
    "music/hold".into()
}
fn default_rtp_timeout() -> u32 {
    30
}
fn default_true() -> bool {
    true
}
fn default_ivr_dir() -> String {
    "../ivr".into()
}
fn default_data_dir() -> String {
    "../data".into()
}
fn default_realm() -> String {
    "centralita".into()
}
fn default_nonce_lifetime() -> u32 {
    300
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_lines() -> u32 {
    30
}
fn default_no_answer_reason() -> String {
    "no-answer".into()
}
fn default_callback_retries() -> u32 {
    2
}
fn default_callback_retry_secs() -> u32 {
    60
}
fn default_strategy() -> String {
    "longest_idle".into()
}
fn default_sl_percent() -> u8 {
    80
}
fn default_sl_secs() -> u32 {
    20
}
fn default_fallback() -> FallbackEntry {
    FallbackEntry::Keyword("accept".into())
}
fn default_ring_timeout() -> u32 {
    15
}
fn default_announce_every() -> u32 {
    30
}
fn default_md5_only() -> Vec<String> {
    vec!["baresip v0.".into(), "baresip v1.".into()]
}
fn default_ready_code() -> String {
    "*11".into()
}
fn default_pause_code() -> String {
    "*12".into()
}
fn default_logout_code() -> String {
    "*13".into()
}
fn default_transfer_prefix() -> String {
    "##".into()
}
fn default_support_level() -> u8 {
    1
}
fn default_wrap_up() -> u32 {
    15
}

impl Default for SipSection {
    fn default() -> Self {
        SipSection {
            listen: default_sip_listen(),
            advertise: None,
            user_agent: default_user_agent(),
            retry_after_secs: default_retry_after(),
            answer_after_ms: 0,
        }
    }
}
impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: default_http_listen(),
        }
    }
}
impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            rtp_ports: default_rtp_ports(),
            sounds_dir: default_sounds_dir(),
            languages: default_languages(),
            default_language: default_language(),
            hold_music: default_hold_music(),
            rtp_timeout_secs: default_rtp_timeout(),
            inband_dtmf: true,
        }
    }
}
impl Default for IvrSection {
    fn default() -> Self {
        IvrSection {
            dir: default_ivr_dir(),
        }
    }
}

/// An inclusive range of UDP ports for RTP; `low` is even and the range
/// holds at least one even/odd pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or("expected LOW-HIGH, e.g. 20000-39999")?;
        let low: u16 = a
            .trim()
            .parse()
            .map_err(|_| format!("bad low port {a:?}"))?;
        let high: u16 = b
            .trim()
            .parse()
            .map_err(|_| format!("bad high port {b:?}"))?;
        if low < 1024 || high <= low {
            return Err("expected 1024 <= LOW < HIGH".into());
        }
        let low = low + (low % 2);
        if high < low + 1 {
            return Err("the range must hold at least one even/odd port pair".into());
        }
        Ok(PortRange { low, high })
    }
}

/// What the command line may override; `None` keeps the file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub sip_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub rtp_ports: Option<PortRange>,
    pub data_dir: Option<PathBuf>,
}

/// The validated configuration the controller runs on.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub config_file: PathBuf,
    pub sip_listen: SocketAddr,
    pub advertise: Option<IpAddr>,
    pub user_agent: String,
    pub retry_after_secs: u32,
    pub answer_after_ms: u32,
    pub http_listen: SocketAddr,
    pub rtp_ports: PortRange,
    pub sounds_dir: PathBuf,
    pub languages: Vec<String>,
    pub default_language: String,
    pub hold_music: String,
    pub rtp_timeout_secs: u32,
    pub inband_dtmf: bool,
    pub ivr_dir: PathBuf,
    pub numbers: BTreeMap<String, String>,
    pub data_dir: PathBuf,
    pub registrar: RegistrarSection,
    pub features: FeatureCodes,
    pub agents: BTreeMap<String, AgentEntry>,
    pub queues: BTreeMap<String, QueueEntry>,
    pub acd: AcdSection,
}

impl RuntimeConfig {
    /// The agent whose softphone registers as `sip_user`.
    pub fn agent_by_sip_user(&self, sip_user: &str) -> Option<(&str, &AgentEntry)> {
        self.agents
            .iter()
            .find(|(_, a)| a.sip_user == sip_user)
            .map(|(id, a)| (id.as_str(), a))
    }

    /// The gateway for callbacks to typed numbers (validated at load).
    pub fn callback_trunk(&self) -> Option<Trunk> {
        self.acd
            .callback_trunk
            .as_deref()
            .and_then(|t| Trunk::parse(t).ok())
    }

    /// The queue dialed directly as `number`.
    pub fn queue_by_number(&self, number: &str) -> Option<&str> {
        self.queues
            .iter()
            .find(|(_, q)| q.number.as_deref() == Some(number))
            .map(|(name, _)| name.as_str())
    }

    /// What a transfer names: a queue (by name or number) or an agent (by
    /// SIP user or extension).
    pub fn transfer_target(&self, target: &str) -> Option<TransferTarget> {
        if self.queues.contains_key(target) {
            return Some(TransferTarget::Queue(target.to_string()));
        }
        if let Some(q) = self.queue_by_number(target) {
            return Some(TransferTarget::Queue(q.to_string()));
        }
        self.agents
            .iter()
            .find(|(_, a)| a.sip_user == target || a.extension.as_deref() == Some(target))
            .map(|(id, _)| TransferTarget::Agent(id.clone()))
    }

    /// Read and validate a config file, applying command-line overrides.
    /// Returns every problem found, not just the first.
    pub fn load(path: &Path, ov: &Overrides) -> Result<RuntimeConfig, Vec<ConfigError>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: file.clone(),
                key: "-".into(),
                message: format!("cannot read the file: {e}"),
            }]
        })?;
        Self::from_toml(&text, path, ov)
    }

    /// Validate config text as if read from `path`.
    pub fn from_toml(
        text: &str,
        path: &Path,
        ov: &Overrides,
    ) -> Result<RuntimeConfig, Vec<ConfigError>> {
        let file = path.display().to_string();
        let parsed: FileConfig = toml::from_str(text).map_err(|e| {
            let (key, line) = match e.span() {
                Some(span) => key_at(text, span.start),
                None => ("-".to_string(), String::new()),
            };
            vec![ConfigError {
                file: file.clone(),
                key,
                message: format!("{}{line}", e.message().trim()),
            }]
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::validate(parsed, &file, &base, ov)
    }

    fn validate(
        f: FileConfig,
        file: &str,
        base: &Path,
        ov: &Overrides,
    ) -> Result<RuntimeConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut err = |key: &str, message: String| {
            errors.push(ConfigError {
                file: file.to_string(),
                key: key.to_string(),
                message,
            })
        };
        let sip_listen = ov.sip_listen.or_else(|| match f.sip.listen.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                err(
                    "sip.listen",
                    format!("expected ADDR:PORT, got {:?}", f.sip.listen),
                );
                None
            }
        });
        let advertise = match &f.sip.advertise {
            None => None,
            Some(a) => match a.parse::<IpAddr>() {
                Ok(ip) if !ip.is_unspecified() => Some(ip),
                _ => {
                    err(
                        "sip.advertise",
                        format!("expected an IP address (never a host name), got {a:?}"),
                    );
                    None
                }
            },
        };
        let http_listen = ov.http_listen.or_else(|| match f.http.listen.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                err(
                    "http.listen",
                    format!("expected ADDR:PORT, got {:?}", f.http.listen),
                );
                None
            }
        });
        let rtp_ports = ov
            .rtp_ports
            .or_else(|| match f.media.rtp_ports.parse::<PortRange>() {
                Ok(r) => Some(r),
                Err(e) => {
                    err("media.rtp_ports", e);
                    None
                }
            });
        if f.media.languages.is_empty() {
            err(
                "media.languages",
                "expected at least one language, e.g. [\"es\", \"en\"]".into(),
            );
        }
        if !f.media.languages.contains(&f.media.default_language) {
            err(
                "media.default_language",
                format!(
                    "{:?} is not one of media.languages",
                    f.media.default_language
                ),
            );
        }
        if !(5..=3600).contains(&f.media.rtp_timeout_secs) {
            err("media.rtp_timeout_secs", "expected 5..=3600".into());
        }
        validate_agents(&f, &mut err);
        validate_queues(&f, &mut err);
        if f.sip.answer_after_ms > 60_000 {
            err("sip.answer_after_ms", "expected 0..=60000".into());
        }
        if f.numbers.is_empty() {
            err(
                "numbers",
                "expected at least one dialed number, e.g. soporte = \"idioma\"".into(),
            );
        }
        for n in f.numbers.keys() {
            if n.is_empty() || n.contains(['@', ':', ';', ' ']) {
                err(
                    &format!("numbers.{n}"),
                    "expected a Request-URI user part".into(),
                );
            }
        }
        let (Some(sip_listen), Some(http_listen), Some(rtp_ports), true) =
            (sip_listen, http_listen, rtp_ports, errors.is_empty())
        else {
            return Err(errors);
        };
        Ok(RuntimeConfig {
            config_file: PathBuf::from(file),
            sip_listen,
            advertise,
            user_agent: f.sip.user_agent,
            retry_after_secs: f.sip.retry_after_secs,
            answer_after_ms: f.sip.answer_after_ms,
            http_listen,
            rtp_ports,
            sounds_dir: base.join(f.media.sounds_dir),
            languages: f.media.languages,
            default_language: f.media.default_language,
            hold_music: f.media.hold_music,
            rtp_timeout_secs: f.media.rtp_timeout_secs,
            inband_dtmf: f.media.inband_dtmf,
            ivr_dir: base.join(f.ivr.dir),
            numbers: f.numbers,
            data_dir: ov.data_dir.clone().unwrap_or_else(|| base.join(f.data_dir)),
            registrar: f.registrar,
            features: f.features,
            agents: f.agents,
            queues: f.queues,
            acd: f.acd,
        })
    }
}

/// Queues: known strategies and fallbacks, overflow targets that exist,
/// sane times; the ACD's lines.
fn validate_queues(f: &FileConfig, err: &mut impl FnMut(&str, String)) {
    const STRATEGIES: [&str; 5] = [
        "longest_idle",
        "best_skill",
        "fewest_calls",
        "round_robin",
        "ring_all",
    ];
    for (name, q) in &f.queues {
        let key = |k: &str| format!("queues.{name}.{k}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            err(
                &format!("queues.{name}"),
                "expected a queue name of A-Z a-z 0-9 _ -".into(),
            );
        }
        if !STRATEGIES.contains(&q.strategy.as_str()) {
            err(
                &key("strategy"),
                format!("expected one of {}", STRATEGIES.join(", ")),
            );
        }
        if !(1..=2).contains(&q.level) {
            err(&key("level"), "expected 1 or 2".into());
        }
        if !(1..=100).contains(&q.service_level_percent)
            || !(1..=3600).contains(&q.service_level_secs)
        {
            err(
                &key("service_level_percent"),
                "expected 1..=100 % within 1..=3600 s".into(),
            );
        }
        if !(3..=300).contains(&q.ring_timeout_secs) {
            err(&key("ring_timeout_secs"), "expected 3..=300".into());
        }
        if q.announce_every_secs != 0 && !(10..=600).contains(&q.announce_every_secs) {
            err(
                &key("announce_every_secs"),
                "expected 0 (never) or 10..=600".into(),
            );
        }
        for (skill, level) in &q.skills {
            if *level > 10 {
                err(
                    &key(&format!("skills.{skill}")),
                    "expected a level 0..=10".into(),
                );
            }
        }
        for (k, fb) in [
            ("on_max_wait", &q.on_max_wait),
            ("on_no_agents", &q.on_no_agents),
        ] {
            match fb {
                FallbackEntry::Keyword(w) if w == "accept" || w == "callback" => {}
                FallbackEntry::Keyword(w) => err(&key(k), format!("expected \"accept\", \"callback\", {{ message = … }} or {{ overflow = … }}, got {w:?}")),
                FallbackEntry::Overflow { overflow } if !f.queues.contains_key(overflow) => {
                    err(&key(k), format!("overflow to {overflow:?}, which is not a queue"))
                }
                _ => {}
            }
        }
    }
    if f.acd.reserve >= f.acd.lines {
        err(
            "acd.reserve",
            "expected fewer reserved lines than acd.lines".into(),
        );
    }
    if !(1..=86_400).contains(&f.acd.callback_retry_secs) {
        err("acd.callback_retry_secs", "expected 1..=86400".into());
    }
    if f.acd.callback_retries > 10 {
        err("acd.callback_retries", "expected 0..=10".into());
    }
    if let Some(Err(e)) = f.acd.callback_trunk.as_deref().map(Trunk::parse) {
        err("acd.callback_trunk", e);
    }
}

/// Agents, the registrar and feature codes: unique SIP users, sane levels
/// and times, feature codes that are not also IVR numbers.
fn validate_agents(f: &FileConfig, err: &mut impl FnMut(&str, String)) {
    let mut users = std::collections::BTreeSet::new();
    for (id, a) in &f.agents {
        let key = |k: &str| format!("agents.{id}.{k}");
        if a.sip_user.is_empty() || a.sip_user.contains(['@', ':', ';', ' ']) {
            err(
                &key("sip_user"),
                "expected a SIP user part, e.g. \"ana\"".into(),
            );
        } else if !users.insert(a.sip_user.as_str()) {
            err(
                &key("sip_user"),
                format!("{:?} is already another agent's", a.sip_user),
            );
        }
        if a.password.len() < 4 {
            err(&key("password"), "expected at least 4 characters".into());
        }
        if !(1..=2).contains(&a.level) {
            err(&key("level"), "expected 1 or 2".into());
        }
        if a.wrap_up_secs > 600 {
            err(&key("wrap_up_secs"), "expected 0..=600".into());
        }
        for (skill, level) in &a.skills {
            if *level > 10 {
                err(
                    &key(&format!("skills.{skill}")),
                    "expected a level 0..=10".into(),
                );
            }
        }
    }
    let r = &f.registrar;
    if r.realm.is_empty() || r.realm.contains('"') {
        err(
            "registrar.realm",
            "expected a non-empty realm without quotes".into(),
        );
    }
    if !(30..=3600).contains(&r.nonce_lifetime_secs) {
        err("registrar.nonce_lifetime_secs", "expected 30..=3600".into());
    }
    if r.min_expires_secs == 0
        || r.min_expires_secs > r.max_expires_secs
        || r.max_expires_secs > 86_400
    {
        err(
            "registrar.min_expires_secs",
            "expected 0 < min_expires_secs <= max_expires_secs <= 86400".into(),
        );
    }
    let codes = [
        ("ready", &f.features.ready),
        ("pause", &f.features.pause),
        ("logout", &f.features.logout),
        ("transfer_prefix", &f.features.transfer_prefix),
    ];
    for (i, (name, code)) in codes.iter().enumerate() {
        let key = format!("features.{name}");
        if code.is_empty()
            || !code
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            err(&key, "expected digits, * and #, e.g. \"*11\"".into());
        }
        if f.numbers.contains_key(code.as_str()) {
            err(&key, format!("{code:?} is also an IVR number in [numbers]"));
        }
        if codes[..i].iter().any(|(_, other)| other == code) {
            err(&key, format!("{code:?} is used by another feature"));
        }
    }
    validate_direct_numbers(f, &codes, err);
}

/// Queue numbers and agent extensions: user parts, each unique, none also an
/// IVR number or a feature code.
fn validate_direct_numbers(
    f: &FileConfig,
    codes: &[(&str, &String)],
    err: &mut impl FnMut(&str, String),
) {
    let queue_numbers = f
        .queues
        .iter()
        .filter_map(|(name, q)| Some((format!("queues.{name}.number"), q.number.as_ref()?)));
    let extensions = f
        .agents
        .iter()
        .filter_map(|(id, a)| Some((format!("agents.{id}.extension"), a.extension.as_ref()?)));
    let mut seen = std::collections::BTreeSet::new();
    for (key, number) in queue_numbers.chain(extensions) {
        if number.is_empty() || number.contains(['@', ':', ';', ' ', '#']) {
            err(
                &key,
                "expected a Request-URI user part, e.g. \"201\"".into(),
            );
        } else if f.numbers.contains_key(number.as_str()) {
            err(
                &key,
                format!("{number:?} is also an IVR number in [numbers]"),
            );
        } else if codes.iter().any(|(_, c)| *c == number) {
            err(&key, format!("{number:?} is also a feature code"));
        } else if f.agents.values().any(|a| &a.sip_user == number) && !key.starts_with("agents.") {
            err(&key, format!("{number:?} is also an agent's sip_user"));
        } else if !seen.insert(number.as_str()) {
            err(&key, format!("{number:?} is used twice"));
        }
    }
}

/// The dotted key and " (line N)" for a byte offset of a TOML text: the
/// table header above the offset plus the key written on its line.
fn key_at(text: &str, offset: usize) -> (String, String) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let mut section = String::new();
    for l in text[..offset].lines() {
        let t = l.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    let name = line
        .split('=')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches('"');
    let key = match (section.is_empty(), name.is_empty() || name.starts_with('[')) {
        (true, true) => "-".to_string(),
        (true, false) => name.to_string(),
        (false, true) => section,
        (false, false) => format!("{section}.{name}"),
    };
    (key, format!(" (line {line_no})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_is_valid() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/centralita.toml"
        ));
        let cfg = RuntimeConfig::load(path, &Overrides::default()).expect("shipped config loads");
        assert_eq!(
            cfg.numbers.get("soporte").map(String::as_str),
            Some("idioma")
        );
        assert_eq!(
            cfg.rtp_ports,
            PortRange {
                low: 20000,
                high: 39999
            }
        );
        assert!(cfg.sounds_dir.join("es").is_dir());
    }

    #[test]
    fn errors_name_file_and_key() {
        let text = "[sip]\nlisten = \"nonsense\"\n[media]\nrtp_ports = \"5-3\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("x/c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"sip.listen"), "{errs:?}");
        assert!(keys.contains(&"media.rtp_ports"), "{errs:?}");
        assert!(keys.contains(&"numbers"), "{errs:?}");
        assert!(errs.iter().all(|e| e.file == "x/c.toml"));
    }

    #[test]
    fn transfer_targets_are_queues_and_agents_by_name_or_number() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/centralita.toml"
        ));
        let cfg = RuntimeConfig::load(path, &Overrides::default()).expect("shipped config loads");
        let q = |s: &str| Some(TransferTarget::Queue(s.into()));
        let a = |s: &str| Some(TransferTarget::Agent(s.into()));
        assert_eq!(cfg.transfer_target("hardware"), q("hardware"));
        assert_eq!(cfg.transfer_target("202"), q("hardware"));
        assert_eq!(cfg.transfer_target("carmen"), a("carmen"));
        assert_eq!(cfg.transfer_target("303"), a("carmen"));
        assert_eq!(cfg.transfer_target("999"), None);
        assert_eq!(cfg.queue_by_number("200"), Some("general"));
    }

    #[test]
    fn the_callback_trunk_is_an_ip_address_never_a_name() {
        let t = Trunk::parse("sip:127.0.0.1:5080").expect("valid");
        assert_eq!(t.uri_for("600123456"), "sip:600123456@127.0.0.1:5080");
        let t = Trunk::parse("sip:192.0.2.7;transport=udp").expect("valid");
        assert_eq!(t.addr.port(), 5060);
        let t = Trunk::parse("sip:[::1]:5070").expect("valid");
        assert_eq!(t.uri_for("1"), "sip:1@[::1]:5070");
        for bad in [
            "sip:gateway.example.com",
            "127.0.0.1:5080",
            "sip:trunk@127.0.0.1",
            "sip:127.0.0.1;transport=tcp",
        ] {
            assert!(Trunk::parse(bad).is_err(), "{bad}");
        }
        let text = "[numbers]\n\"100\" = \"idioma\"\n[acd]\ncallback_trunk = \"sip:gw.example\"\ncallback_retry_secs = 0\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"acd.callback_trunk"), "{errs:?}");
        assert!(keys.contains(&"acd.callback_retry_secs"), "{errs:?}");
    }

    #[test]
    fn direct_numbers_must_be_unique() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n[features]\ntransfer_prefix = \"##\"\n\
                    [queues.a]\nnumber = \"100\"\n[queues.b]\nnumber = \"7\"\n[queues.\"c d\"]\n\
                    [agents.x]\nname = \"X\"\nsip_user = \"x\"\npassword = \"secret\"\nextension = \"7\"\n\
                    [agents.y]\nname = \"Y\"\nsip_user = \"y\"\npassword = \"secret\"\nextension = \"*11\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "queues.a.number",
            "agents.x.extension",
            "agents.y.extension",
            "queues.c d",
        ] {
            assert!(keys.contains(&k), "{k} missing from {errs:?}");
        }
    }

    #[test]
    fn unknown_key_is_refused_with_line() {
        let text =
            "[numbers]\nsoporte = \"idioma\"\n[sip]\nlisten = \"0.0.0.0:5060\"\nlistne = 1\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        assert!(errs[0].message.contains("listne"), "{errs:?}");
        assert_eq!(errs[0].key, "sip.listne", "{errs:?}");
        assert!(errs[0].message.contains("line 5"), "{errs:?}");
    }

    #[test]
    fn agents_are_validated_with_their_keys() {
        let text = "[numbers]\n\"*11\" = \"idioma\"\n[agents.ana]\nname = \"Ana\"\nsip_user = \"ana\"\npassword = \"pw\"\nlevel = 3\nskills = { software = 11 }\n[agents.bea]\nname = \"Bea\"\nsip_user = \"ana\"\npassword = \"secret\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "agents.ana.password",
            "agents.ana.level",
            "agents.ana.skills.software",
            "agents.bea.sip_user",
            "features.ready",
        ] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
    }

    #[test]
    fn flags_win_over_the_file() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n";
        let ov = Overrides {
            sip_listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..Overrides::default()
        };
        let cfg = RuntimeConfig::from_toml(text, Path::new("c.toml"), &ov).expect("valid");
        assert_eq!(cfg.sip_listen.to_string(), "127.0.0.1:0");
        assert_eq!(cfg.http_listen.to_string(), "127.0.0.1:8080");
    }
}
