//! Tickets and the logbook (bitácora): every call that reaches a support
//! number opens a ticket, and everything that happens to it is appended to
//! the ticket's logbook, in a chain of MACs that shows any later edit.
//!
//! - `mod.rs` — the model ([`Ticket`], [`CallRecord`], [`LogbookEntry`],
//!   [`TicketNumber`], …), the writes a call asks for ([`Write`]) and the
//!   store trait ([`TicketStore`]).
//! - `chain.rs` — the logbook's HMAC-SHA-256 chain and its key file.
//! - `sqlite.rs` — the SQLite store: the only module that talks to the
//!   database (schema and migrations, one writer thread that commits in
//!   groups, readers on connections of their own).
//!
//! The store never decides anything about a call: the call's core says
//! what happened, its driver writes it here and waits for the commit
//! before it does what anyone outside could see.

pub mod chain;
pub mod report;
pub mod sqlite;

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use sqlite::SqliteStore;

/// A ticket's number: a short integer a caller can type on a keypad
/// (sequential, from [`TicketNumber::FIRST`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TicketNumber(pub u64);

impl TicketNumber {
    /// The first ticket's number.
    pub const FIRST: TicketNumber = TicketNumber(100_001);

    /// A number as typed on a keypad or a command line: digits only, at
    /// least the first ticket's, at most nine digits.
    pub fn parse(typed: &str) -> Option<TicketNumber> {
        let t = typed.trim();
        if t.is_empty() || t.len() > 9 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = t.parse().ok()?;
        (n >= Self::FIRST.0).then_some(TicketNumber(n))
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0.to_string())
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    InProgress,
    Escalated,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::Open,
        TicketStatus::InProgress,
        TicketStatus::Escalated,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::InProgress => "in_progress",
            TicketStatus::Escalated => "escalated",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<TicketStatus> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The part of a case a logbook entry records: the four the source
/// documents give for every event of a case, and the system's own events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// What is the problem, what must be found.
    Understanding,
    /// Procedures, tools needed.
    Planning,
    /// Observations, values obtained, adjustments.
    Execution,
    /// Results, conclusions.
    Analysis,
    /// What the system saw happen.
    Event,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Understanding,
        Section::Planning,
        Section::Execution,
        Section::Analysis,
        Section::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Understanding => "understanding",
            Section::Planning => "planning",
            Section::Execution => "execution",
            Section::Analysis => "analysis",
            Section::Event => "event",
        }
    }

    pub fn parse(s: &str) -> Option<Section> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How a call (a contact on a ticket) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Answered,
    AbandonedIvr,
    AbandonedQueue,
    Blocked,
    CallbackRequested,
    CallbackDone,
    CallbackFailed,
    Transferred,
    Interrupted,
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 9] = [
        CallOutcome::Answered,
        CallOutcome::AbandonedIvr,
        CallOutcome::AbandonedQueue,
        CallOutcome::Blocked,
        CallOutcome::CallbackRequested,
        CallOutcome::CallbackDone,
        CallOutcome::CallbackFailed,
        CallOutcome::Transferred,
        CallOutcome::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Answered => "answered",
            CallOutcome::AbandonedIvr => "abandoned_ivr",
            CallOutcome::AbandonedQueue => "abandoned_queue",
            CallOutcome::Blocked => "blocked",
            CallOutcome::CallbackRequested => "callback_requested",
            CallOutcome::CallbackDone => "callback_done",
            CallOutcome::CallbackFailed => "callback_failed",
            CallOutcome::Transferred => "transferred",
            CallOutcome::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<CallOutcome> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where a call is now (kept so that a stop can say where it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    Arriving,
    Ivr,
    Queue,
    Ringing,
    Talking,
    Ended,
}

impl CallPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            CallPhase::Arriving => "arriving",
            CallPhase::Ivr => "ivr",
            CallPhase::Queue => "queue",
            CallPhase::Ringing => "ringing",
            CallPhase::Talking => "talking",
            CallPhase::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<CallPhase> {
        [
            CallPhase::Arriving,
            CallPhase::Ivr,
            CallPhase::Queue,
            CallPhase::Ringing,
            CallPhase::Talking,
            CallPhase::Ended,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// Who calls, from the INVITE's From header (personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub uri: String,
    pub user: String,
    pub display: Option<String>,
}

impl Caller {
    /// From a From header value: `"Display" <sip:user@host>;tag=…`.
    pub fn from_header(value: &str) -> Caller {
        let display = value
            .split('<')
            .next()
            .map(|d| d.trim().trim_matches('"').trim())
            .filter(|d| !d.is_empty() && value.contains('<'))
            .map(str::to_string);
        let uri = match (value.find('<'), value.find('>')) {
            (Some(a), Some(b)) if a < b => &value[a + 1..b],
            _ => value.split(';').next().unwrap_or_default(),
        }
        .trim()
        .to_string();
        let user = uri
            .split_once(':')
            .map(|(_, r)| r)
            .unwrap_or(&uri)
            .split(['@', ';', '?'])
            .next()
            .unwrap_or_default()
            .to_string();
        Caller { uri, user, display }
    }
}

/// Milliseconds since the Unix epoch (UTC): how the store keeps time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

impl Millis {
    pub fn now() -> Millis {
        Millis(jiff::Timestamp::now().as_millisecond())
    }

    /// RFC 3339, UTC, to the millisecond.
    pub fn rfc3339(self) -> String {
        jiff::Timestamp::from_millisecond(self.0)
            .map(|t| format!("{t:.3}"))
            .unwrap_or_default()
    }

    pub fn parse_rfc3339(s: &str) -> Option<Millis> {
        s.parse::<jiff::Timestamp>()
            .ok()
            .map(|t| Millis(t.as_millisecond()))
    }
}

impl Serialize for Millis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// How long each support level has to resolve a ticket: its due time.
/// Level 1 counts from the call that opens (or reopens) the ticket — or,
/// while the ticket waits for its first answer, from that call's arrival
/// with the time of the queue it waits in, if the queue sets one; level 2
/// from the escalation, level 3 from the booking of the visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimes {
    /// Minutes for levels 1, 2 and 3.
    pub levels: [u32; 3],
    /// Queue → minutes, for the queues that set their own.
    pub queues: BTreeMap<String, u32>,
}

impl Default for DueTimes {
    fn default() -> Self {
        DueTimes {
            levels: [30, 8 * 60, 3 * 24 * 60],
            queues: BTreeMap::new(),
        }
    }
}

impl DueTimes {
    const MINUTE_MS: i64 = 60_000;

    /// The time `level` has (ms); levels past 3 have level 3's.
    pub fn level_ms(&self, level: u8) -> i64 {
        let i = usize::from(level.clamp(1, 3) - 1);
        i64::from(self.levels[i]) * Self::MINUTE_MS
    }

    /// The time a queue gives its level-1 tickets (ms), if it sets one.
    pub fn queue_ms(&self, queue: &str) -> Option<i64> {
        self.queues
            .get(queue)
            .map(|m| i64::from(*m) * Self::MINUTE_MS)
    }
}

/// A new call, as it arrives.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub sip_call_id: String,
    pub caller: Caller,
    pub dialed: String,
    pub language: String,
    pub at: Millis,
}

/// What the store gives back for a new call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub ticket: TicketNumber,
    /// The call's row on the ticket.
    pub call: CallKey,
}

/// A call's row in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CallKey(pub i64);

/// One offer of a call to an agent, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OfferRecord {
    pub agent: String,
    pub at: i64,
    /// `answered`, `no_answer`, `rejected`, `cancelled`, or empty while it rings.
    pub result: String,
}

/// What happened to a call: the row's changes and the logbook's `event`
/// entry that says so. Every field is optional; what is set is written.
#[derive(Debug, Clone, Default)]
pub struct CallChange {
    pub phase: Option<CallPhase>,
    pub language: Option<String>,
    /// A menu entered, or a key pressed in it (`menu`, `key`).
    pub ivr_step: Option<(String, Option<char>)>,
    /// A field the IVR collected.
    pub field: Option<(String, String)>,
    pub queue: Option<(String, u8)>,
    pub enqueued: bool,
    /// An offer to this agent begins.
    pub offered: Option<String>,
    /// The current offer ended so (`no_answer`, `rejected`, `cancelled`).
    pub offer_ended: Option<String>,
    pub answered_by: Option<String>,
    /// The call's agent changes (a hand-over after a consultation).
    pub agent: Option<String>,
    /// A transfer (how, to whom).
    pub transfer: Option<(String, String)>,
    /// The call ended, and who hung up.
    pub ended: Option<(CallOutcome, String)>,
    /// Holds (count, total ms) at the end.
    pub holds: Option<(u32, u64)>,
}

/// A write the calls ask of the store; each is committed before its
/// answer comes back.
#[derive(Debug, Clone)]
pub enum Write {
    /// Open a ticket for a new call (with its first entry); `blocked`: the
    /// call is refused (only reserved lines were free) and ends at once.
    Open { call: NewCall, blocked: bool },
    /// A call's change, with the entry that says it (`event`, by `system`).
    Call {
        call: CallKey,
        at: Millis,
        change: Box<CallChange>,
        entry: String,
    },
    /// The caller typed a ticket number: the call joins that ticket if it
    /// exists (reopened if it was resolved or closed), else its own ticket
    /// keeps what was typed.
    Join {
        call: CallKey,
        at: Millis,
        typed: String,
    },
    /// A callback's attempt: a new call on the ticket, ringing `agent`
    /// first (answered with [`Written::Opened`]).
    Callback {
        ticket: TicketNumber,
        at: Millis,
        agent: String,
    },
    /// The case goes to level 2 (experts) or level 3 (an on-site visit,
    /// which is then booked on the ticket; no call is routed for it).
    Escalate {
        ticket: TicketNumber,
        at: Millis,
        /// `agent:<id>` or `supervisor:<id>`.
        author: String,
        level: Level,
    },
    /// `agent`'s wrap-up (after-call work) on its last call on `ticket`
    /// ended, `after` ms after it began: kept on that call, and said.
    WrapUp {
        ticket: TicketNumber,
        at: Millis,
        agent: String,
        after: u64,
    },
    /// A person changes the ticket's status or gives it a disposition
    /// (wrap-up code); each change is said in the logbook by its author.
    Update {
        ticket: TicketNumber,
        at: Millis,
        /// `agent:<id>` or `supervisor:<id>`.
        author: String,
        status: Option<TicketStatus>,
        disposition: Option<String>,
    },
    /// A logbook entry of its own (an agent's or a supervisor's notes).
    Append {
        ticket: TicketNumber,
        entry: NewEntry,
    },
}

/// A support level to escalate to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Level {
    /// Experts.
    Two,
    /// An on-site visit.
    Three(Visit),
}

/// An on-site visit (level 3): when, where, who goes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Visit {
    pub when: String,
    #[serde(rename = "where")]
    pub place: String,
    pub technician: String,
    pub reason: String,
}

/// A logbook entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub at: Millis,
    pub author: String,
    pub call: Option<CallKey>,
    pub section: Section,
    pub text: String,
}

/// What a write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Opened(Opened),
    /// The call's ticket after the write (a join may move it).
    Call {
        ticket: TicketNumber,
    },
    /// The entry's sequence number on its ticket.
    Appended {
        seq: u64,
    },
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the ticket store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("the ticket store's schema is version {found}, newer than this build knows ({known})")]
    NewerSchema { found: i64, known: i64 },
    #[error("the logbook key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the ticket store failed: {0}")]
    Database(String),
    #[error("no such ticket: {0}")]
    NoTicket(TicketNumber),
    #[error("no such call in the store: {0}")]
    NoCall(i64),
    #[error("the ticket store has stopped")]
    Stopped,
}

/// A ticket as read back, with its calls and logbook.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub number: TicketNumber,
    pub status: TicketStatus,
    pub level: u8,
    pub caller: Caller,
    pub dialed: String,
    pub language: String,
    pub category: Option<String>,
    pub priority: Option<u8>,
    pub created: Millis,
    pub updated: Millis,
    /// When its level should have resolved it.
    pub due: Option<Millis>,
    /// Past its due time and not resolved (when it was read).
    pub overdue: bool,
    /// The wrap-up code an agent gave it.
    pub disposition: Option<String>,
    /// A number the caller typed that named no ticket.
    pub typed_number: Option<String>,
    /// This ticket's call went on on that ticket (the caller typed it).
    pub merged_into: Option<TicketNumber>,
    /// The on-site visit booked (level 3).
    pub visit: Option<Visit>,
    /// The caller's other open tickets of the last 30 days.
    pub related: Vec<TicketNumber>,
    pub calls: Vec<CallView>,
    pub logbook: Vec<LogbookEntry>,
}

/// One call on a ticket.
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub id: CallKey,
    pub sip_call_id: String,
    pub arrived: Millis,
    pub phase: CallPhase,
    pub outcome: Option<CallOutcome>,
    pub ivr_path: Vec<IvrStep>,
    pub fields: BTreeMap<String, String>,
    pub queue: Option<String>,
    pub priority: Option<u8>,
    pub offers: Vec<OfferRecord>,
    pub agent: Option<String>,
    pub enqueued: Option<Millis>,
    pub offered: Option<Millis>,
    pub answered: Option<Millis>,
    pub ended: Option<Millis>,
    pub wait_ms: Option<i64>,
    pub ring_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub hung_up_by: Option<String>,
    pub transfers: Vec<TransferRecord>,
    pub holds: Option<u32>,
    pub hold_ms: Option<i64>,
    /// The agent's after-call work, once its wrap-up ended.
    pub wrapup_ms: Option<i64>,
}

/// A menu entered, or a key pressed in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IvrStep {
    pub menu: String,
    pub key: Option<String>,
}

/// A transfer of the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TransferRecord {
    pub at: i64,
    pub how: String,
    pub to: String,
}

/// One logbook entry, as read back.
#[derive(Debug, Clone, Serialize)]
pub struct LogbookEntry {
    pub seq: u64,
    pub time: Millis,
    pub author: String,
    pub call: Option<CallKey>,
    pub section: Section,
    pub text: String,
}

/// A line of a ticket list.
#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub number: TicketNumber,
    pub status: TicketStatus,
    pub level: u8,
    pub caller: String,
    pub dialed: String,
    pub category: Option<String>,
    pub created: Millis,
    pub updated: Millis,
    pub due: Option<Millis>,
    /// Past its due time and not resolved (when it was read).
    pub overdue: bool,
    pub calls: u32,
    pub entries: u64,
    /// The last call's outcome (`None` while it is up).
    pub last_outcome: Option<CallOutcome>,
    pub last_agent: Option<String>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// The caller's user part.
    pub caller: Option<String>,
    pub since: Option<Millis>,
    /// Only those past their due time and not resolved.
    pub overdue: bool,
    pub level: Option<u8>,
    /// Words their logbook holds (the caller's name and number are in its
    /// first entry).
    pub text: Option<String>,
    /// Only those numbered below (the cursor of the page before).
    pub before: Option<TicketNumber>,
    /// Only this one (a related ticket's summary).
    pub number: Option<TicketNumber>,
    pub limit: usize,
}

/// A ticket whose logbook fails verification, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tampered {
    pub ticket: TicketNumber,
    pub problem: String,
}

/// The calls' side of the store: writes committed before they answer.
/// Narrow on purpose: a PostgreSQL store for several nodes implements the
/// same.
#[async_trait::async_trait]
pub trait TicketStore: Send + Sync {
    /// Commit `w` (in a group with whatever else waits) and say what it
    /// came to.
    async fn write(&self, w: Write) -> Result<Written, StoreError>;
    /// Close every call left up by a stop (outcome `interrupted`, with an
    /// entry saying where it was); the tickets touched.
    async fn interrupt_unfinished(&self, at: Millis) -> Result<Vec<TicketNumber>, StoreError>;
    /// Whether the store failed its last commit (no ticket can be opened
    /// now, as far as it knows).
    fn failing(&self) -> bool;
}

/// New calls while the store fails: one call every [`FailingGate::PROBE`]
/// goes on and tries to open its ticket (its commit tells whether the store
/// is back); the others are refused at once, 503 with Retry-After, before
/// a dialog is made for them.
#[derive(Debug)]
pub struct FailingGate {
    started: Instant,
    /// When the last call went through (ms since `started`, plus 1; 0: none
    /// yet).
    last_try: AtomicU64,
}

impl FailingGate {
    /// How often a call may try a failing store.
    pub const PROBE: Duration = Duration::from_secs(1);

    pub fn new(now: Instant) -> FailingGate {
        FailingGate {
            started: now,
            last_try: AtomicU64::new(0),
        }
    }

    /// Whether a new call may go on (always, while the store is fine).
    pub fn admit(&self, failing: bool, now: Instant) -> bool {
        let at = u64::try_from(now.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        if !failing {
            // The last call that tried, for when the store starts failing.
            self.last_try.store(at, Ordering::Relaxed);
            return true;
        }
        let last = self.last_try.load(Ordering::Relaxed);
        let due = last == 0 || at.saturating_sub(last) >= Self::PROBE.as_millis() as u64;
        due && self
            .last_try
            .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn while_the_store_fails_one_call_a_second_tries_it() {
        let t0 = Instant::now();
        let gate = FailingGate::new(t0);
        assert!(gate.admit(false, t0), "a store that works takes every call");
        assert!(gate.admit(false, t0));
        assert!(
            !gate.admit(true, t0),
            "the call that found it failing was the try"
        );
        assert!(!gate.admit(true, t0 + Duration::from_millis(999)));
        assert!(
            gate.admit(true, t0 + FailingGate::PROBE),
            "a second later, one tries"
        );
        assert!(!gate.admit(true, t0 + FailingGate::PROBE));
        assert!(
            gate.admit(false, t0 + FailingGate::PROBE),
            "back: every call"
        );
    }

    #[test]
    fn a_ticket_number_is_digits_from_the_first_one_up() {
        assert_eq!(TicketNumber::parse("100001"), Some(TicketNumber(100_001)));
        assert_eq!(TicketNumber::parse(" 123456 "), Some(TicketNumber(123_456)));
        for bad in [
            "",
            "100000",
            "99",
            "12a456",
            "-100001",
            "1234567890",
            "+100001",
        ] {
            assert_eq!(TicketNumber::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_caller_is_read_from_the_from_header() {
        let c = Caller::from_header("\"Ana Pérez\" <sip:5550101@10.0.0.5:5060>;tag=abc");
        assert_eq!(c.uri, "sip:5550101@10.0.0.5:5060");
        assert_eq!(c.user, "5550101");
        assert_eq!(c.display.as_deref(), Some("Ana Pérez"));
        let c = Caller::from_header("<sip:bob@host>;tag=1");
        assert_eq!((c.user.as_str(), c.display), ("bob", None));
        let c = Caller::from_header("sip:carol@host;tag=2");
        assert_eq!(
            (c.uri.as_str(), c.user.as_str()),
            ("sip:carol@host", "carol")
        );
        let c = Caller::from_header("garbage");
        assert_eq!(c.user, "garbage");
    }

    #[test]
    fn times_are_rfc_3339_both_ways() {
        let t = Millis(1_700_000_000_123);
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Millis::parse_rfc3339(&t.rfc3339()), Some(t));
        assert_eq!(Millis::parse_rfc3339("yesterday"), None);
    }
}
