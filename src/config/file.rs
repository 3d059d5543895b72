//! The config file as written: serde structs (`deny_unknown_fields`),
//! defaults as named functions. Closed sets deserialize straight into their
//! enums (a strategy, a fallback); loading checks the rest.

use crate::acd::{Fallback, Strategy};
use serde::Deserialize;
use std::collections::BTreeMap;

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
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub tickets: TicketsSection,
    /// Supervisors by id: they sign in to the desk and see everything.
    #[serde(default)]
    pub supervisors: BTreeMap<String, SupervisorEntry>,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub kb: KbSection,
    #[serde(default)]
    pub helpdesk: HelpdeskSection,
    #[serde(default)]
    pub limits: LimitsSection,
}

/// Limits per source address and per account (see `sip::limits`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Calls one source address may hold at once (0: no limit).
    #[serde(default = "default_calls_per_source")]
    pub calls_per_source: u32,
    /// New INVITEs per second from one source (0: no limit)…
    #[serde(default = "default_invites_per_sec")]
    pub invites_per_sec: u32,
    /// …after a burst of this many.
    #[serde(default = "default_invite_burst")]
    pub invite_burst: u32,
    /// A source refused this many INVITEs within a minute is banned (0: never).
    #[serde(default = "default_refused_before_ban")]
    pub refused_before_ban: u32,
    /// Digest failures from one source within `auth_window_secs` that ban it (0: never).
    #[serde(default = "default_auth_failures_before_ban")]
    pub auth_failures_before_ban: u32,
    #[serde(default = "default_auth_window_secs")]
    pub auth_window_secs: u32,
    /// How long a ban lasts.
    #[serde(default = "default_ban_secs")]
    pub ban_secs: u32,
    /// Digest failures for one account (from any sources) within the window
    /// that throttle it (0: never).
    #[serde(default = "default_account_failures_before_throttle")]
    pub account_failures_before_throttle: u32,
    /// How long a throttle lasts.
    #[serde(default = "default_account_throttle_secs")]
    pub account_throttle_secs: u32,
    /// Addresses and networks never limited (the callback trunk is added).
    #[serde(default = "default_exempt")]
    pub exempt: Vec<String>,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            calls_per_source: default_calls_per_source(),
            invites_per_sec: default_invites_per_sec(),
            invite_burst: default_invite_burst(),
            refused_before_ban: default_refused_before_ban(),
            auth_failures_before_ban: default_auth_failures_before_ban(),
            auth_window_secs: default_auth_window_secs(),
            ban_secs: default_ban_secs(),
            account_failures_before_throttle: default_account_failures_before_throttle(),
            account_throttle_secs: default_account_throttle_secs(),
            exempt: default_exempt(),
        }
    }
}

fn default_calls_per_source() -> u32 {
    10
}
fn default_invites_per_sec() -> u32 {
    5
}
fn default_invite_burst() -> u32 {
    10
}
fn default_refused_before_ban() -> u32 {
    50
}
fn default_auth_failures_before_ban() -> u32 {
    10
}
fn default_auth_window_secs() -> u32 {
    600
}
fn default_ban_secs() -> u32 {
    3600
}
fn default_account_failures_before_throttle() -> u32 {
    30
}
fn default_account_throttle_secs() -> u32 {
    900
}
fn default_exempt() -> Vec<String> {
    vec!["127.0.0.1".into(), "::1".into()]
}

/// A helpdesk told of every call (Zammad's generic CTI webhooks).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct HelpdeskSection {
    /// The CTI endpoint without its token: `http://IP:PORT/api/v1/cti`
    /// (an IP address, never a name; plain HTTP). Unset: no webhooks.
    #[serde(default)]
    pub cti_url: Option<String>,
    /// The endpoint's token (the last part of the URL Zammad shows).
    #[serde(default)]
    pub cti_token: Option<String>,
}

/// The knowledge base's articles.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KbSection {
    /// `<dir>/<language>/<id>.md` (format in `kb/README.md`).
    #[serde(default = "default_kb_dir")]
    pub dir: String,
}

impl Default for KbSection {
    fn default() -> Self {
        KbSection {
            dir: default_kb_dir(),
        }
    }
}

fn default_kb_dir() -> String {
    "../kb".into()
}

/// A supervisor: signs in to the desk with its id and password.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SupervisorEntry {
    pub name: String,
    pub password: String,
}

/// The HTTP API: sessions and the tokens scripts use.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// How long a desk sign-in lasts.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Bearer tokens by name: the SHA-256 of each (hex) and its role.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenEntry>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            session_hours: default_session_hours(),
            tokens: BTreeMap::new(),
        }
    }
}

fn default_session_hours() -> u32 {
    12
}

/// A script's token: only its hash is kept.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// SHA-256 of the token, 64 hex digits.
    pub sha256: String,
    /// `"supervisor"`, or `"agent"` with `agent` naming which.
    pub role: TokenRole,
    #[serde(default)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    Supervisor,
    Agent,
}

/// Tickets: how long each support level has to resolve one (its due time).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TicketsSection {
    /// Level 1 (first line), from the call that opens the ticket.
    #[serde(default = "default_level1_due")]
    pub level1_due_mins: u32,
    /// Level 2 (experts), from the escalation.
    #[serde(default = "default_level2_due")]
    pub level2_due_mins: u32,
    /// Level 3 (an on-site visit), from its booking.
    #[serde(default = "default_level3_due")]
    pub level3_due_mins: u32,
    /// Wrap-up codes an agent gives a ticket (its disposition).
    #[serde(default = "default_dispositions")]
    pub dispositions: Vec<String>,
}

fn default_dispositions() -> Vec<String> {
    [
        "solved",
        "workaround",
        "escalated",
        "visit_booked",
        "no_fault_found",
        "caller_unreachable",
        "duplicate",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for TicketsSection {
    fn default() -> Self {
        TicketsSection {
            level1_due_mins: default_level1_due(),
            level2_due_mins: default_level2_due(),
            level3_due_mins: default_level3_due(),
            dispositions: default_dispositions(),
        }
    }
}

fn default_level1_due() -> u32 {
    30
}

fn default_level2_due() -> u32 {
    8 * 60
}

fn default_level3_due() -> u32 {
    3 * 24 * 60
}

/// The ticket store (SQLite under `data_dir`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `full` (every commit reaches the disk: survives a power loss, the
    /// default) or `normal` (survives a crash of the process only).
    #[serde(default)]
    pub synchronous: crate::tickets::sqlite::Synchronous,
    /// The logbook's key file (default `<data_dir>/logbook.key`), kept apart
    /// from the database.
    #[serde(default)]
    pub key_file: Option<String>,
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
    #[serde(default)]
    pub strategy: Strategy,
    /// Service level: `service_level_percent`% answered within `service_level_secs`.
    #[serde(default = "default_sl_percent")]
    pub service_level_percent: u8,
    #[serde(default = "default_sl_secs")]
    pub service_level_secs: u32,
    /// How callers who hang up while waiting count in the service level:
    /// `"ignore"` (default), `"against"`, `"in_favour"`.
    #[serde(default)]
    pub abandons: crate::acd::AbandonMode,
    /// Callers who hang up within this many seconds are short abandons,
    /// left out of the service level and the abandon counts.
    #[serde(default = "default_short_abandon")]
    pub short_abandon_secs: u32,
    /// The service level and abandon counts shown live cover this many
    /// minutes (Prometheus keeps the counters for any other window).
    #[serde(default = "default_stats_window")]
    pub stats_window_mins: u32,
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
    /// What happens once `max_wait_secs` have passed: `"accept"` (keep
    /// waiting), `"callback"` (offer a callback), `{ message = "prompt" }`
    /// (play and hang up), `{ overflow = "queue" }`.
    #[serde(default)]
    pub on_max_wait: Fallback,
    /// The same choice, for a caller who arrives while nobody is logged in.
    #[serde(default)]
    pub on_no_agents: Fallback,
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
    /// Minutes a level-1 ticket that waits in this queue has to be
    /// resolved, instead of `tickets.level1_due_mins`.
    #[serde(default)]
    pub due_mins: Option<u32>,
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
    /// Typed after the transfer prefix and followed by `#` (`##0#` by
    /// default): hold the caller, or resume it — for phones without a hold
    /// key.
    #[serde(default = "default_hold_code")]
    pub hold: String,
    /// Typed after the transfer prefix, before a target (`##7303#` by
    /// default): consult that colleague or queue with the caller on hold;
    /// alone (`##7#`) it hands the caller over to the colleague who
    /// answered, and the hold code (`##0#`) goes back to the caller.
    #[serde(default = "default_consult_code")]
    pub consult: String,
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
            hold: default_hold_code(),
            consult: default_consult_code(),
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
    /// Requests whose User-Agent contains one of these (any case) are
    /// dropped unanswered and counted: the SIP scanners that sweep public
    /// numbers for extensions and passwords.
    #[serde(default = "default_scanner_user_agents")]
    pub refuse_user_agents: Vec<String>,
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

fn default_scanner_user_agents() -> Vec<String> {
    [
        "friendly-scanner",
        "sipvicious",
        "sipcli",
        "sip-scan",
        "sipsak",
        "sundayddr",
        "iwar",
        "vaxsipuseragent",
        "pplsip",
        "smap",
    ]
    .map(String::from)
    .to_vec()
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
fn default_sl_percent() -> u8 {
    80
}
fn default_sl_secs() -> u32 {
    20
}

fn default_short_abandon() -> u32 {
    5
}

fn default_stats_window() -> u32 {
    60
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
fn default_hold_code() -> String {
    "0".into()
}
fn default_consult_code() -> String {
    "7".into()
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
            refuse_user_agents: default_scanner_user_agents(),
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
