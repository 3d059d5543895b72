//! ACD configuration and its validation. Owns [`AcdConfig`], [`AgentConfig`],
//! [`QueueConfig`], [`Strategy`], [`Fallback`], widening steps and
//! [`AcdConfigError`]. Plain data, sans-IO; the driver builds it (e.g. from
//! TOML) and [`super::Acd::new`] validates it.

use std::collections::HashSet;
use std::time::Duration;

/// How an agent is picked among the qualified Available agents. In the
/// config file: `longest_idle`, `best_skill`, `fewest_calls`,
/// `round_robin`, `ring_all` (serde refuses any other name, with its line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest (default).
    #[default]
    LongestIdle,
    /// Highest sum of levels in the queue's skills, then longest idle.
    BestSkill,
    /// Fewest calls since login, then longest idle.
    FewestCalls,
    /// Next qualified agent after the last one picked (configuration order).
    RoundRobin,
    /// Every qualified Available agent at once; first answer wins.
    RingAll,
}

/// How callers who hang up while waiting count in a queue's service level
/// (the three ways in use). In the config file: `ignore`, `against`,
/// `in_favour`. Short abandons (under the queue's `short_abandon`) never
/// count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbandonMode {
    /// Answered within the threshold / answered (default).
    #[default]
    Ignore,
    /// Answered within the threshold / (answered + abandoned).
    Against,
    /// (Answered + abandoned within the threshold) / (answered + abandoned).
    InFavour,
}

/// What to do on max wait / when no agent is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Keep waiting (default).
    #[default]
    Accept,
    /// Move the call to that queue (keeps priority and ticket).
    Overflow { queue: String },
    /// Emit `OfferCallbackToCaller` once; the caller keeps waiting.
    OfferCallback,
    /// Play the prompt and hang up (outcome MessageHangup).
    MessageAndHangup { prompt: String },
}

impl<'de> serde::Deserialize<'de> for Fallback {
    /// `"accept"`, `"callback"`, `{ message = "prompt" }` or
    /// `{ overflow = "queue" }`; anything else is refused with what was
    /// expected.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str =
            "\"accept\", \"callback\", { message = \"prompt\" } or { overflow = \"queue\" }";
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Fallback;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Fallback, E> {
                match v {
                    "accept" => Ok(Fallback::Accept),
                    "callback" => Ok(Fallback::OfferCallback),
                    other => Err(E::custom(format!("expected {EXPECTED}, got {other:?}"))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Fallback, A::Error> {
                use serde::de::Error;
                let (Some((key, value)), None) =
                    (m.next_entry::<String, String>()?, m.next_key::<String>()?)
                else {
                    return Err(A::Error::custom(format!("expected {EXPECTED}")));
                };
                match key.as_str() {
                    "message" => Ok(Fallback::MessageAndHangup { prompt: value }),
                    "overflow" => Ok(Fallback::Overflow { queue: value }),
                    other => Err(A::Error::custom(format!(
                        "expected {EXPECTED}, got the key {other:?}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// What a widening step adds. Steps are cumulative: at step k the effects of
/// steps 1..=k all apply (LowerMinSkill amounts add up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Widen {
    /// Agents of support level 2 also qualify.
    AlsoLevel2,
    /// Every required minimum level is lowered by n (saturating at 0).
    LowerMinSkill(u8),
}

/// A waiting call takes this step once it has waited `after` in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WideningStep {
    pub after: Duration,
    pub widen: Widen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub id: String,
    pub name: String,
    /// Skill name -> level 0..=10. Missing skills count as level 0.
    pub skills: Vec<(String, u8)>,
    /// 1 or 2.
    pub support_level: u8,
    pub wrap_up: Duration,
}

impl AgentConfig {
    /// Support level 1, wrap-up 10 s, no skills.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        AgentConfig {
            id: id.into(),
            name: name.into(),
            skills: Vec::new(),
            support_level: 1,
            wrap_up: Duration::from_secs(10),
        }
    }
    pub fn skill(mut self, name: impl Into<String>, level: u8) -> Self {
        self.skills.push((name.into(), level));
        self
    }
    pub fn support_level(mut self, level: u8) -> Self {
        self.support_level = level;
        self
    }
    pub fn wrap_up(mut self, d: Duration) -> Self {
        self.wrap_up = d;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    /// Skill name -> minimum level (agent level >= min qualifies).
    pub skills: Vec<(String, u8)>,
    /// Agents of this support level qualify (default 1); `AlsoLevel2` adds level 2.
    pub support_level: u8,
    /// Service level: `service_level_percent`% answered within this (default 20 s).
    pub service_level_target: Duration,
    pub service_level_percent: u8,
    /// Window for service level and abandon counts in [`super::QueueStats`] (default 1 h).
    pub stats_window: Duration,
    /// How abandons count in the service level.
    pub abandons: AbandonMode,
    /// Callers who hang up sooner than this are short abandons: left out of
    /// the service level and the abandon counts (default 5 s).
    pub short_abandon: Duration,
    /// `None` = no limit.
    pub max_wait: Option<Duration>,
    pub on_max_wait: Fallback,
    /// Applied to a call entering the queue while no qualified agent is logged in.
    pub on_no_agents: Fallback,
    pub strategy: Strategy,
    /// Default 15 s.
    pub ring_timeout: Duration,
    pub widening: Vec<WideningStep>,
    /// Position/EWT announcement period (`None`: only on entry).
    pub announce_every: Option<Duration>,
}

impl QueueConfig {
    pub fn new(name: impl Into<String>) -> Self {
        QueueConfig {
            name: name.into(),
            skills: Vec::new(),
            support_level: 1,
            service_level_target: Duration::from_secs(20),
            service_level_percent: 80,
            stats_window: Duration::from_secs(3600),
            abandons: AbandonMode::Ignore,
            short_abandon: Duration::from_secs(5),
            max_wait: None,
            on_max_wait: Fallback::Accept,
            on_no_agents: Fallback::Accept,
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(15),
            widening: Vec::new(),
            announce_every: None,
        }
    }
    pub fn skill(mut self, name: impl Into<String>, min: u8) -> Self {
        self.skills.push((name.into(), min));
        self
    }
    pub fn strategy(mut self, s: Strategy) -> Self {
        self.strategy = s;
        self
    }
    pub fn max_wait(mut self, d: Duration, then: Fallback) -> Self {
        self.max_wait = Some(d);
        self.on_max_wait = then;
        self
    }
    pub fn on_no_agents(mut self, f: Fallback) -> Self {
        self.on_no_agents = f;
        self
    }
    pub fn widen(mut self, after: Duration, widen: Widen) -> Self {
        self.widening.push(WideningStep { after, widen });
        self
    }
    pub fn announce_every(mut self, d: Duration) -> Self {
        self.announce_every = Some(d);
        self
    }
    pub fn ring_timeout(mut self, d: Duration) -> Self {
        self.ring_timeout = d;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdConfig {
    pub agents: Vec<AgentConfig>,
    pub queues: Vec<QueueConfig>,
    /// Pause reason after a failed offer (`None`: agent back to Available).
    pub no_answer_pause: Option<String>,
    /// Callback retries after the first failure (default 2).
    pub callback_retries: u32,
    /// Delay before a failed callback is retried (default 60 s).
    pub callback_retry_delay: Duration,
    /// AHT moving-average length (default 20 samples).
    pub aht_samples: usize,
    /// AHT before any sample (default 180 s).
    pub initial_aht: Duration,
}

impl Default for AcdConfig {
    fn default() -> Self {
        AcdConfig {
            agents: Vec::new(),
            queues: Vec::new(),
            no_answer_pause: Some("no-answer".to_string()),
            callback_retries: 2,
            callback_retry_delay: Duration::from_secs(60),
            aht_samples: 20,
            initial_aht: Duration::from_secs(180),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdConfigError {
    #[error("duplicate agent id {0:?}")]
    DuplicateAgent(String),
    #[error("duplicate queue name {0:?}")]
    DuplicateQueue(String),
    #[error("queue {queue:?} overflows to unknown queue {target:?}")]
    UnknownOverflowQueue { queue: String, target: String },
    #[error("queue {0:?} overflows to itself")]
    OverflowToSelf(String),
    #[error("{who:?}: skill {skill:?} level {level} is out of 0..=10")]
    SkillLevelOutOfRange {
        who: String,
        skill: String,
        level: u8,
    },
    #[error("{who:?}: support level {level} is not 1 or 2")]
    BadSupportLevel { who: String, level: u8 },
    #[error("queue {queue:?}: {what} must be greater than zero")]
    ZeroDuration { queue: String, what: &'static str },
    #[error("queue {queue:?}: service level percent {percent} is over 100")]
    BadServiceLevel { queue: String, percent: u8 },
    #[error("aht_samples must be at least 1")]
    ZeroAhtSamples,
}

impl AcdConfig {
    /// Checks everything [`super::Acd::new`] relies on. Unknown skill names are fine.
    pub fn validate(&self) -> Result<(), AcdConfigError> {
        if self.aht_samples == 0 {
            return Err(AcdConfigError::ZeroAhtSamples);
        }
        let mut ids = HashSet::new();
        for a in &self.agents {
            if !ids.insert(a.id.as_str()) {
                return Err(AcdConfigError::DuplicateAgent(a.id.clone()));
            }
            if a.support_level != 1 && a.support_level != 2 {
                return Err(AcdConfigError::BadSupportLevel {
                    who: a.id.clone(),
                    level: a.support_level,
                });
            }
            check_levels(&a.id, &a.skills)?;
        }
        let mut names = HashSet::new();
        for q in &self.queues {
            if !names.insert(q.name.as_str()) {
                return Err(AcdConfigError::DuplicateQueue(q.name.clone()));
            }
        }
        for q in &self.queues {
            check_levels(&q.name, &q.skills)?;
            if q.support_level != 1 && q.support_level != 2 {
                return Err(AcdConfigError::BadSupportLevel {
                    who: q.name.clone(),
                    level: q.support_level,
                });
            }
            if q.service_level_percent > 100 {
                return Err(AcdConfigError::BadServiceLevel {
                    queue: q.name.clone(),
                    percent: q.service_level_percent,
                });
            }
            let zero = |what| AcdConfigError::ZeroDuration {
                queue: q.name.clone(),
                what,
            };
            if q.ring_timeout.is_zero() {
                return Err(zero("ring_timeout"));
            }
            if q.stats_window.is_zero() {
                return Err(zero("stats_window"));
            }
            if q.max_wait.is_some_and(|d| d.is_zero()) {
                return Err(zero("max_wait"));
            }
            if q.announce_every.is_some_and(|d| d.is_zero()) {
                return Err(zero("announce_every"));
            }
            for f in [&q.on_max_wait, &q.on_no_agents] {
                if let Fallback::Overflow { queue } = f {
                    if queue == &q.name {
                        return Err(AcdConfigError::OverflowToSelf(q.name.clone()));
                    }
                    if !names.contains(queue.as_str()) {
                        return Err(AcdConfigError::UnknownOverflowQueue {
                            queue: q.name.clone(),
                            target: queue.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_levels(who: &str, skills: &[(String, u8)]) -> Result<(), AcdConfigError> {
    for (skill, level) in skills {
        if *level > 10 {
            return Err(AcdConfigError::SkillLevelOutOfRange {
                who: who.to_string(),
                skill: skill.clone(),
                level: *level,
            });
        }
    }
    Ok(())
}
