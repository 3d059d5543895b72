//! The validated configuration the controller runs on, and the lookups
//! calls make in it (numbers, queues, transfer targets, the trunk).

use super::file::{AcdSection, AgentEntry, FeatureCodes, QueueEntry, RegistrarSection};
use crate::acd::TransferTarget;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Where callbacks to typed numbers are sent (over UDP: centralita opens
/// no TCP connections of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trunk {
    pub addr: SocketAddr,
}

/// Why a `callback_trunk` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrunkError {
    #[error("expected sip:IP[:PORT] (UDP), got {uri:?}")]
    NotSipUdp { uri: String },
    #[error("expected sip:IP[:PORT] (UDP), got {uri:?}: the typed number becomes the user part; give no user")]
    HasUser { uri: String },
    #[error("expected sip:IP[:PORT] (UDP), got {uri:?}: the host must be an IP address")]
    NotAnAddress { uri: String },
}

/// Why a port range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    #[error("expected LOW-HIGH, e.g. 20000-39999")]
    NotARange,
    #[error("bad {which} port {text:?}")]
    BadPort { which: &'static str, text: String },
    #[error("expected 1024 <= LOW < HIGH")]
    OutOfOrder,
    #[error("the range must hold at least one even/odd port pair")]
    NoPair,
}

impl Trunk {
    /// `sip:IP[:PORT][;transport=udp]`, an IP address (never a name to
    /// resolve); the port defaults to 5060.
    pub fn parse(uri: &str) -> Result<Trunk, TrunkError> {
        let uri_s = || uri.to_string();
        let rest = uri
            .strip_prefix("sip:")
            .ok_or_else(|| TrunkError::NotSipUdp { uri: uri_s() })?;
        let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
        if hostport.contains('@') {
            return Err(TrunkError::HasUser { uri: uri_s() });
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
            .map_err(|_| TrunkError::NotAnAddress { uri: uri_s() })?;
        match params.to_ascii_lowercase().as_str() {
            "" | "transport=udp" => Ok(Trunk { addr }),
            _ => Err(TrunkError::NotSipUdp { uri: uri_s() }),
        }
    }

    /// The Request-URI that calls `number` through this trunk.
    pub fn uri_for(&self, number: &str) -> String {
        format!("sip:{number}@{}", self.addr)
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
    type Err = PortRangeError;
    fn from_str(s: &str) -> Result<Self, PortRangeError> {
        let (a, b) = s.split_once('-').ok_or(PortRangeError::NotARange)?;
        let port = |which, text: &str| {
            text.trim()
                .parse::<u16>()
                .map_err(|_| PortRangeError::BadPort {
                    which,
                    text: text.to_string(),
                })
        };
        let (low, high) = (port("low", a)?, port("high", b)?);
        if low < 1024 || high <= low {
            return Err(PortRangeError::OutOfOrder);
        }
        let low = low + (low % 2);
        if high < low + 1 {
            return Err(PortRangeError::NoPair);
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
    /// User-Agent substrings (lower case) whose requests are dropped.
    pub refuse_user_agents: Vec<String>,
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
    /// The knowledge base's articles.
    pub kb_dir: PathBuf,
    pub numbers: BTreeMap<String, String>,
    pub data_dir: PathBuf,
    pub registrar: RegistrarSection,
    pub features: FeatureCodes,
    pub agents: BTreeMap<String, AgentEntry>,
    pub queues: BTreeMap<String, QueueEntry>,
    pub acd: AcdSection,
    /// Who signs in to the desk besides the agents.
    pub supervisors: BTreeMap<String, super::SupervisorEntry>,
    /// Sessions and scripts' tokens.
    pub api: super::ApiSection,
    /// Wrap-up codes an agent gives a ticket.
    pub dispositions: Vec<String>,
    /// Where the helpdesk webhooks go (`http://IP:PORT/path/<token>`).
    pub cti: Option<crate::helpdesk::CtiTarget>,
    /// The ticket store's files and durability.
    pub store: crate::tickets::sqlite::StoreOptions,
    /// Limits per source and per account (the trunk is exempt).
    pub limits: crate::sip::limits::LimitsConfig,
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
}
