//! Loading: read the file, parse it, check every value and report every
//! problem at once, each naming the file, the key and (where known) the
//! line.

use super::file::{FileConfig, TokenRole};
use super::runtime::{Overrides, PortRange, RuntimeConfig, Trunk};
use crate::acd::Fallback;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A configuration problem: which file, which key, what was expected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl RuntimeConfig {
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
                    err("media.rtp_ports", e.to_string());
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
        // A ticket's time to be resolved: a minute to a year.
        const DUE: std::ops::RangeInclusive<u32> = 1..=525_600;
        for (k, v) in [
            ("tickets.level1_due_mins", f.tickets.level1_due_mins),
            ("tickets.level2_due_mins", f.tickets.level2_due_mins),
            ("tickets.level3_due_mins", f.tickets.level3_due_mins),
        ] {
            if !DUE.contains(&v) {
                err(k, "expected 1..=525600 minutes".into());
            }
        }
        validate_api(&f, &mut err);
        for (name, q) in &f.queues {
            if q.due_mins.is_some_and(|m| !DUE.contains(&m)) {
                err(
                    &format!("queues.{name}.due_mins"),
                    "expected 1..=525600 minutes".into(),
                );
            }
        }
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
        let cti = match (&f.helpdesk.cti_url, &f.helpdesk.cti_token) {
            (None, None) => None,
            (Some(url), Some(token)) => match crate::helpdesk::CtiTarget::parse(url, token) {
                Ok(t) => Some(t),
                Err(e) => {
                    err("helpdesk.cti_url", e);
                    None
                }
            },
            (Some(_), None) => {
                err(
                    "helpdesk.cti_token",
                    "the CTI endpoint's token is needed with cti_url".into(),
                );
                None
            }
            (None, Some(_)) => {
                err(
                    "helpdesk.cti_url",
                    "the CTI endpoint, e.g. http://192.0.2.20:3000/api/v1/cti".into(),
                );
                None
            }
        };
        let limits = {
            let l = &f.limits;
            let mut exempt = vec![];
            for (i, e) in l.exempt.iter().enumerate() {
                match crate::sip::limits::Net::parse(e) {
                    Ok(n) => exempt.push(n),
                    Err(e) => err(&format!("limits.exempt[{i}]"), e),
                }
            }
            if let Some(Ok(t)) = f.acd.callback_trunk.as_deref().map(Trunk::parse) {
                exempt.extend(crate::sip::limits::Net::parse(&t.addr.ip().to_string()));
            }
            if l.invites_per_sec > 0 && l.invite_burst == 0 {
                err(
                    "limits.invite_burst",
                    "expected at least 1 with invites_per_sec".into(),
                );
            }
            if l.ban_secs == 0 {
                err("limits.ban_secs", "expected at least 1 second".into());
            }
            if l.auth_window_secs == 0 {
                err(
                    "limits.auth_window_secs",
                    "expected at least 1 second".into(),
                );
            }
            let secs = |s: u32| std::time::Duration::from_secs(u64::from(s));
            crate::sip::limits::LimitsConfig {
                calls_per_source: l.calls_per_source,
                invites_per_sec: l.invites_per_sec,
                invite_burst: l.invite_burst,
                refused_before_ban: l.refused_before_ban,
                auth_failures_before_ban: l.auth_failures_before_ban,
                auth_window: secs(l.auth_window_secs),
                ban: secs(l.ban_secs),
                account_failures_before_throttle: l.account_failures_before_throttle,
                account_throttle: secs(l.account_throttle_secs),
                exempt,
                ..crate::sip::limits::LimitsConfig::default()
            }
        };
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
            refuse_user_agents: f
                .sip
                .refuse_user_agents
                .iter()
                .map(|u| u.to_lowercase())
                .filter(|u| !u.is_empty())
                .collect(),
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
            kb_dir: base.join(f.kb.dir),
            numbers: f.numbers,
            store: {
                let data_dir = ov
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| base.join(&f.data_dir));
                let mut s = crate::tickets::sqlite::StoreOptions::in_dir(&data_dir);
                s.synchronous = f.store.synchronous;
                if let Some(k) = &f.store.key_file {
                    s.key_path = base.join(k);
                }
                s.due = crate::tickets::DueTimes {
                    levels: [
                        f.tickets.level1_due_mins,
                        f.tickets.level2_due_mins,
                        f.tickets.level3_due_mins,
                    ],
                    queues: f
                        .queues
                        .iter()
                        .filter_map(|(name, q)| q.due_mins.map(|m| (name.clone(), m)))
                        .collect(),
                };
                s
            },
            data_dir: ov.data_dir.clone().unwrap_or_else(|| base.join(f.data_dir)),
            registrar: f.registrar,
            features: f.features,
            agents: f.agents,
            queues: f.queues,
            acd: f.acd,
            supervisors: f.supervisors,
            api: f.api,
            dispositions: f.tickets.dispositions,
            cti,
            limits,
        })
    }
}

/// Supervisors, tokens, sessions and dispositions.
fn validate_api(f: &FileConfig, err: &mut impl FnMut(&str, String)) {
    let id_ok = |id: &str| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    for (id, s) in &f.supervisors {
        if !id_ok(id) {
            err(
                &format!("supervisors.{id}"),
                "expected an id of A-Z a-z 0-9 _ - .".into(),
            );
        }
        if f.agents.contains_key(id) {
            err(
                &format!("supervisors.{id}"),
                "is also an agent's id: a sign-in must name one person".into(),
            );
        }
        if s.password.chars().count() < 8 {
            err(
                &format!("supervisors.{id}.password"),
                "expected at least 8 characters".into(),
            );
        }
    }
    for (name, t) in &f.api.tokens {
        let key = |k: &str| format!("api.tokens.{name}.{k}");
        if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            err(
                &key("sha256"),
                "expected the token's SHA-256 as 64 hex digits (sha256sum of the token)".into(),
            );
        }
        match (t.role, &t.agent) {
            (TokenRole::Agent, Some(a)) if !f.agents.contains_key(a) => {
                err(&key("agent"), format!("{a:?} is not an agent"))
            }
            (TokenRole::Agent, None) => err(
                &key("agent"),
                "a token with role \"agent\" names its agent".into(),
            ),
            (TokenRole::Supervisor, Some(_)) => err(
                &key("agent"),
                "only a token with role \"agent\" names an agent".into(),
            ),
            _ => {}
        }
    }
    if !(1..=168).contains(&f.api.session_hours) {
        err("api.session_hours", "expected 1..=168".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in &f.tickets.dispositions {
        if d.is_empty()
            || d.len() > 40
            || !d
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || !seen.insert(d)
        {
            err(
                "tickets.dispositions",
                format!("{d:?}: expected distinct codes of a-z 0-9 _"),
            );
        }
    }
}

/// Queues: overflow targets that exist, sane times; the trunk's lines.
fn validate_queues(f: &FileConfig, err: &mut impl FnMut(&str, String)) {
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
        if q.short_abandon_secs > 60 {
            err(&key("short_abandon_secs"), "expected 0..=60".into());
        }
        if !(1..=1440).contains(&q.stats_window_mins) {
            err(&key("stats_window_mins"), "expected 1..=1440".into());
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
            if let Fallback::Overflow { queue } = fb {
                if !f.queues.contains_key(queue) {
                    err(
                        &key(k),
                        format!("overflow to {queue:?}, which is not a queue"),
                    );
                }
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
        err("acd.callback_trunk", e.to_string());
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
    let hold = &f.features.hold;
    if hold.is_empty() || !hold.chars().all(|c| c.is_ascii_digit()) {
        err(
            "features.hold",
            "expected digits, e.g. \"0\" (##0# holds)".into(),
        );
    }
    let consult = &f.features.consult;
    if consult.is_empty() || !consult.chars().all(|c| c.is_ascii_digit()) {
        err(
            "features.consult",
            "expected digits, e.g. \"7\" (##7303# consults extension 303)".into(),
        );
    } else if hold.starts_with(consult.as_str()) || consult.starts_with(hold.as_str()) {
        err(
            "features.consult",
            format!("{consult:?} and the hold code {hold:?} would be mistaken for each other"),
        );
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
        } else if *number == f.features.hold {
            err(
                &key,
                format!("{number:?} is also the in-call hold code (features.hold)"),
            );
        } else if !f.features.consult.is_empty() && number.starts_with(&f.features.consult) {
            err(
                &key,
                format!(
                    "{number:?} begins with the in-call consultation code {:?} (features.consult)",
                    f.features.consult
                ),
            );
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
