//! Every metric centralita exports, defined once, as handles built at start.
//!
//! Each server instance owns its own registry, so in-process tests that run
//! several servers side by side read their own figures. Names follow
//! `centralita_…`, counters end in `_total`, units in `_seconds`.

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// How a call ended, the label of `centralita_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The caller hung up (BYE) after being answered.
    CallerHangup,
    /// The IVR ended the call (goodbye, callback requested).
    IvrHangup,
    /// CANCEL before the answer.
    Cancelled,
    /// Dialed number not configured (404).
    NotFound,
    /// No common codec or bad SDP (488/400).
    NoCodec,
    /// Refused while shutting down or overloaded (503).
    Unavailable,
    /// The caller never sent the ACK, or media stopped flowing.
    Timeout,
    /// Ended by the controller's shutdown.
    Shutdown,
    /// The agent hung up a bridged call.
    AgentHangup,
    /// Refused 486: only reserved lines were free.
    Blocked,
    /// Anything else that went wrong on our side.
    Failed,
}

/// How an agent asked for a transfer (label `how`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferHow {
    /// The phone's REFER (blind, or attended: with `Replaces`).
    Refer,
    /// The in-call feature code (`##` + target + `#`, or the consultation's
    /// hand-over code).
    Keypad,
    /// The desk (the API): an escalation that moves the caller on.
    Desk,
}

impl TransferHow {
    pub const ALL: [TransferHow; 3] = [TransferHow::Refer, TransferHow::Keypad, TransferHow::Desk];

    pub fn label(self) -> &'static str {
        match self {
            TransferHow::Refer => "refer",
            TransferHow::Keypad => "keypad",
            TransferHow::Desk => "desk",
        }
    }
}

/// What became of a transfer (label `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferResult {
    Done,
    /// The ACD refused it (a logged-out agent, the same agent, …).
    Refused,
}

impl TransferResult {
    pub const ALL: [TransferResult; 2] = [TransferResult::Done, TransferResult::Refused];

    pub fn label(self) -> &'static str {
        match self {
            TransferResult::Done => "done",
            TransferResult::Refused => "refused",
        }
    }
}

/// What an agent's keypad transfer code came to (label `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeypadResult {
    Transferred,
    UnknownTarget,
    Refused,
}

impl KeypadResult {
    pub const ALL: [KeypadResult; 3] = [
        KeypadResult::Transferred,
        KeypadResult::UnknownTarget,
        KeypadResult::Refused,
    ];

    pub fn label(self) -> &'static str {
        match self {
            KeypadResult::Transferred => "transferred",
            KeypadResult::UnknownTarget => "unknown_target",
            KeypadResult::Refused => "refused",
        }
    }
}

/// What became of an agent's consultation (label `result` of
/// `centralita_consultations_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsultResult {
    /// The caller was handed over to the colleague.
    Transferred,
    /// The agent went back to its caller (gave up, or the colleague hung up).
    Returned,
    /// The ACD refused it (colleague busy, paused, logged out, …).
    Refused,
    /// The colleague's phone did not answer, or declined.
    Unanswered,
    /// The call ended meanwhile (the caller hung up).
    CallEnded,
}

impl ConsultResult {
    pub const ALL: [ConsultResult; 5] = [
        ConsultResult::Transferred,
        ConsultResult::Returned,
        ConsultResult::Refused,
        ConsultResult::Unanswered,
        ConsultResult::CallEnded,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ConsultResult::Transferred => "transferred",
            ConsultResult::Returned => "returned",
            ConsultResult::Refused => "refused",
            ConsultResult::Unanswered => "unanswered",
            ConsultResult::CallEnded => "call_ended",
        }
    }
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 11] = [
        CallOutcome::AgentHangup,
        CallOutcome::Blocked,
        CallOutcome::CallerHangup,
        CallOutcome::IvrHangup,
        CallOutcome::Cancelled,
        CallOutcome::NotFound,
        CallOutcome::NoCodec,
        CallOutcome::Unavailable,
        CallOutcome::Timeout,
        CallOutcome::Shutdown,
        CallOutcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::CallerHangup => "caller_hangup",
            CallOutcome::IvrHangup => "ivr_hangup",
            CallOutcome::Cancelled => "cancelled",
            CallOutcome::NotFound => "not_found",
            CallOutcome::NoCodec => "no_codec",
            CallOutcome::Unavailable => "unavailable",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Shutdown => "shutdown",
            CallOutcome::AgentHangup => "agent_hangup",
            CallOutcome::Blocked => "blocked",
            CallOutcome::Failed => "failed",
        }
    }
}

/// Metric handles. Cheap to clone (each handle is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    // --- Calls and the IVR
    pub calls: IntCounterVec,
    pub calls_active: IntGauge,
    pub ivr_menu_entries: IntCounterVec,
    pub ivr_queue_requests: IntCounterVec,
    pub ivr_callback_requests: IntCounterVec,
    pub dtmf_digits: IntCounterVec,
    // --- SIP
    pub sip_requests: IntCounterVec,
    pub sip_responses: IntCounterVec,
    pub sip_dropped: IntCounterVec,
    pub sip_refused: IntCounterVec,
    pub sip_auth_failures: IntCounterVec,
    /// New INVITEs refused 503 by the per-source limits, by reason.
    pub sip_limited: IntCounterVec,
    /// Sources banned and accounts throttled, by kind and reason.
    pub sip_bans: IntCounterVec,
    /// Bans and throttles in force, by kind.
    pub sip_banned: IntGaugeVec,
    /// Memory caps reached, by cap (what arrived past it was refused or
    /// dropped and counted here).
    pub limits_hit: IntCounterVec,
    /// SIP datagrams read by the socket front, waiting for the stack.
    pub sip_backlog: IntGauge,
    /// File descriptors open, and the limit (`RLIMIT_NOFILE`, soft).
    pub open_fds: IntGauge,
    pub max_fds: IntGauge,
    // --- Media
    pub rtp_packets_sent: IntCounter,
    pub rtp_packets_received: IntCounter,
    pub rtp_packets_ignored: IntCounterVec,
    pub rtp_send_lateness: Histogram,
    pub rtp_peers_latched: IntCounter,
    pub rtp_packets_relayed: IntCounterVec,
    pub rtp_ports_in_use: IntGauge,
    // --- Transfers
    pub keypad_transfers: IntCounterVec,
    pub transfers: IntCounterVec,
    pub consultations: IntCounterVec,
    // --- The API and the desk
    /// Desk sign-ins by result (`ok`, `failed`, `refused`).
    pub api_sign_ins: IntCounterVec,
    /// Listeners on the event stream now.
    pub api_event_listeners: IntGauge,
    /// Helpdesk webhooks by result (`sent`, `failed`, `dropped`).
    pub webhooks: IntCounterVec,
    // --- Lines and load
    /// Lines configured, and those kept for other uses.
    pub lines: IntGauge,
    pub lines_reserved: IntGauge,
    /// Lines taken, by phase (`crate::acd::lines::LinePhase`).
    pub lines_in_use: IntGaugeVec,
    pub line_occupancy: Gauge,
    pub line_seconds: CounterVec,
    /// The trunk's offered traffic (15 min) and its Erlang B blocking.
    pub lines_offered_erlangs: Gauge,
    pub lines_blocking: Gauge,
    /// Callers their agent holds now.
    pub calls_on_hold: IntGauge,
    /// 1 while new calls are refused for overload (src/server/overload.rs).
    pub overloaded: IntGauge,
    /// The async runtime's averaged scheduling lag.
    pub runtime_lag: prometheus::Gauge,
    // --- Agents and queues
    pub agents_registered: IntGauge,
    pub agents: IntGaugeVec,
    pub queue_waiting: IntGaugeVec,
    pub queue_callbacks_pending: IntGaugeVec,
    pub queue_longest_wait: GaugeVec,
    /// Per queue, over the stats window (an hour): the service level, the
    /// answered and abandoned counts, the average handle time, and the
    /// agents who serve it by state.
    pub queue_service_level: GaugeVec,
    pub queue_answered_window: IntGaugeVec,
    pub queue_abandoned_window: IntGaugeVec,
    pub queue_handle_time: GaugeVec,
    pub queue_agents: IntGaugeVec,
    pub queue_calls: IntCounterVec,
    pub queue: QueueKpis,
    pub staffing: StaffingMetrics,
    /// Per agent: time logged in, and time handling calls (talk + wrap-up).
    pub agent_logged_in_seconds: CounterVec,
    pub agent_handling_seconds: CounterVec,
    pub build_info: IntGaugeVec,
    // --- Tickets and the logbook
    pub store: StoreMetrics,
}

/// The queue KPIs as the industry defines them: counters and histograms
/// per queue, from which service level, ASA, AHT and abandonment are
/// computed over any window in PromQL (and summed across nodes).
#[derive(Clone)]
pub struct QueueKpis {
    pub offered: IntCounterVec,
    pub answered: IntCounterVec,
    pub answered_within: IntCounterVec,
    pub abandoned: IntCounterVec,
    pub abandoned_within: IntCounterVec,
    pub short_abandoned: IntCounterVec,
    /// Wait before answer, wait before abandon, talk, wrap-up.
    pub wait: HistogramVec,
    pub abandon_wait: HistogramVec,
    pub talk: HistogramVec,
    pub wrap_up: HistogramVec,
    /// The rolling window's average speed of answer.
    pub average_speed_of_answer: GaugeVec,
    /// The queue's targets, for alerts and panels to compare with.
    pub service_level_target: GaugeVec,
    pub service_level_threshold: GaugeVec,
    pub max_wait: GaugeVec,
}

/// Erlang C staffing per queue, recomputed once a second.
#[derive(Clone)]
pub struct StaffingMetrics {
    pub offered_erlangs: GaugeVec,
    pub agents_needed: GaugeVec,
    pub agents_short: GaugeVec,
    pub expected_service_level: GaugeVec,
    pub expected_asa: GaugeVec,
}

/// Buckets of the wait histograms (seconds), before each queue's
/// service-level threshold is added.
const WAIT_BUCKETS: [f64; 12] = [
    5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0,
];

impl QueueKpis {
    fn new(r: &Registry, thresholds: &[f64]) -> QueueKpis {
        let c = |name: &str, help: &str| counter_vec(r, name, help, &["queue"]);
        let mut wait_buckets: Vec<f64> = WAIT_BUCKETS
            .iter()
            .chain(thresholds)
            .copied()
            .filter(|b| b.is_finite() && *b > 0.0)
            .collect();
        wait_buckets.sort_by(f64::total_cmp);
        wait_buckets.dedup();
        let h = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["queue"])
                .expect("valid histogram");
            r.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let g = |name: &str, help: &str| float_gauge_vec(r, name, help, &["queue"]);
        QueueKpis {
            offered: c(
                "centralita_queue_offered_total",
                "Callers offered to the queue: arriving, or overflowing from another queue (consultations and transfers after an answer left out)",
            ),
            answered: c(
                "centralita_queue_answered_total",
                "Callers of the queue answered by an agent (first answer)",
            ),
            answered_within: c(
                "centralita_queue_answered_within_threshold_total",
                "Callers answered within the queue's service-level threshold",
            ),
            abandoned: c(
                "centralita_queue_abandoned_total",
                "Callers who hung up waiting in the queue, short abandons left out",
            ),
            abandoned_within: c(
                "centralita_queue_abandoned_within_threshold_total",
                "Callers who hung up within the queue's service-level threshold (short abandons left out)",
            ),
            short_abandoned: c(
                "centralita_queue_short_abandoned_total",
                "Callers who hung up sooner than the queue's short-abandon time (not counted as abandons)",
            ),
            wait: h(
                "centralita_queue_wait_seconds",
                "How long answered callers waited, from coming to the queue to an agent's answer (a bucket at each queue's service-level threshold)",
                wait_buckets.clone(),
            ),
            abandon_wait: h(
                "centralita_queue_abandon_wait_seconds",
                "How long callers who hung up waiting had waited (short abandons included)",
                wait_buckets,
            ),
            talk: h(
                "centralita_queue_talk_seconds",
                "Talk time of the queue's answered calls, from the agent's answer to the end of the call",
                vec![15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1800.0, 3600.0],
            ),
            wrap_up: h(
                "centralita_queue_wrap_up_seconds",
                "After-call work (wrap-up) of the queue's calls",
                vec![5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0, 600.0],
            ),
            average_speed_of_answer: g(
                "centralita_queue_average_speed_of_answer_seconds",
                "Average wait of the callers answered in the queue's stats window (NaN before any answer)",
            ),
            service_level_target: g(
                "centralita_queue_service_level_target_ratio",
                "The queue's service-level goal: this share answered within the threshold",
            ),
            service_level_threshold: g(
                "centralita_queue_service_level_threshold_seconds",
                "The queue's service-level threshold",
            ),
            max_wait: g(
                "centralita_queue_max_wait_seconds",
                "The queue's maximum wait (only queues that have one)",
            ),
        }
    }
}

impl StaffingMetrics {
    fn new(r: &Registry) -> StaffingMetrics {
        let g = |name: &str, help: &str| float_gauge_vec(r, name, help, &["queue"]);
        StaffingMetrics {
            offered_erlangs: g(
                "centralita_staffing_offered_erlangs",
                "Traffic offered to the queue: its arrival rate over the last 15 minutes times its average handle time",
            ),
            agents_needed: g(
                "centralita_staffing_agents_needed",
                "Agents the queue needs to meet its service-level goal for that traffic (Erlang C)",
            ),
            agents_short: g(
                "centralita_staffing_agents_short",
                "Agents needed minus those serving the queue now (logged in, not paused); 0 when enough",
            ),
            expected_service_level: g(
                "centralita_staffing_expected_service_level_ratio",
                "Service level Erlang C expects with the agents serving the queue now",
            ),
            expected_asa: g(
                "centralita_staffing_expected_asa_seconds",
                "Average speed of answer Erlang C expects with the agents serving the queue now (+Inf when they cannot keep up)",
            ),
        }
    }
}

/// The ticket store's metrics.
#[derive(Clone)]
pub struct StoreMetrics {
    /// Tickets not resolved or closed.
    pub tickets_open: IntGauge,
    /// Tickets opened (`new`) and calls that joined one (`joined`).
    pub tickets: IntCounterVec,
    pub entries: IntCounterVec,
    pub commit_seconds: Histogram,
    pub batch_entries: Histogram,
    pub errors: IntCounter,
    /// Writes waiting for the writer.
    pub pending: IntGauge,
}

impl StoreMetrics {
    fn new(r: &Registry) -> StoreMetrics {
        let tickets = counter_vec(
            r,
            "centralita_tickets_total",
            "Tickets opened (how=new) and calls that joined an existing ticket (how=joined)",
            &["how"],
        );
        for how in ["new", "joined"] {
            tickets.with_label_values(&[how]);
        }
        let entries = counter_vec(
            r,
            "centralita_logbook_entries_total",
            "Logbook entries committed, by section",
            &["section"],
        );
        for s in crate::tickets::Section::ALL {
            entries.with_label_values(&[s.as_str()]);
        }
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid histogram");
            r.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        StoreMetrics {
            tickets_open: gauge(
                r,
                "centralita_tickets_open",
                "Tickets not resolved or closed",
            ),
            tickets,
            entries,
            commit_seconds: histogram(
                "centralita_store_commit_seconds",
                "How long each group commit of the ticket store took",
                vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
            ),
            batch_entries: histogram(
                "centralita_store_batch_entries",
                "Writes committed together in one transaction",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
            ),
            errors: counter(
                r,
                "centralita_store_errors_total",
                "Writes the ticket store could not commit",
            ),
            pending: gauge(
                r,
                "centralita_store_pending",
                "Writes waiting for the ticket store's writer",
            ),
        }
    }
}

impl Metrics {
    /// The metrics, with the wait histograms' default buckets.
    pub fn new() -> Self {
        Self::with_thresholds(&[])
    }

    /// The metrics, with a wait bucket at each of `thresholds` (the
    /// queues' service-level thresholds, in seconds).
    pub fn with_thresholds(thresholds: &[f64]) -> Self {
        let registry = Registry::new();
        let calls = counter_vec(
            &registry,
            "centralita_calls_total",
            "Calls ended, by outcome",
            &["outcome"],
        );
        for o in CallOutcome::ALL {
            calls.with_label_values(&[o.as_str()]);
        }
        let calls_active = gauge(
            &registry,
            "centralita_calls_active",
            "Calls in progress (answered or ringing)",
        );
        let ivr_menu_entries = counter_vec(
            &registry,
            "centralita_ivr_menu_entries_total",
            "Entries into each IVR menu",
            &["menu"],
        );
        let ivr_queue_requests = counter_vec(
            &registry,
            "centralita_ivr_queue_requests_total",
            "Calls the IVR handed to each queue",
            &["queue"],
        );
        let ivr_callback_requests = counter_vec(
            &registry,
            "centralita_ivr_callback_requests_total",
            "Callback requests made in the IVR, by queue",
            &["queue"],
        );
        let dtmf_digits = counter_vec(
            &registry,
            "centralita_dtmf_digits_total",
            "DTMF digits received, by source (rfc4733, info, inband)",
            &["source"],
        );
        for s in ["rfc4733", "info", "inband"] {
            dtmf_digits.with_label_values(&[s]);
        }
        let sip_requests = counter_vec(
            &registry,
            "centralita_sip_requests_total",
            "SIP requests, by method and direction (in, out)",
            &["method", "direction"],
        );
        let sip_responses = counter_vec(
            &registry,
            "centralita_sip_responses_total",
            "SIP responses, by CSeq method, class (1xx..6xx) and direction (in, out)",
            &["method", "class", "direction"],
        );
        let sip_dropped = counter_vec(
            &registry,
            "centralita_sip_messages_dropped_total",
            "SIP messages dropped unanswered, by reason (unparsable, malformed or stray responses, malformed ACKs, the stack stopped, a scanner's User-Agent, a banned source)",
            &["reason"],
        );
        let sip_refused = counter_vec(
            &registry,
            "centralita_sip_messages_refused_total",
            "Malformed or unsupported SIP requests refused by the socket front, by status",
            &["status"],
        );
        // The label values a dashboard sums over exist from the start (a
        // series that appears only on the first event hides its rate).
        for m in [
            "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO", "REFER", "NOTIFY",
        ] {
            for d in ["in", "out"] {
                sip_requests.with_label_values(&[m, d]);
            }
        }
        for r in [
            "unparsable",
            "malformed_response",
            "stray_response",
            "malformed_ack",
            "stack_stopped",
            "scanner",
            "banned",
        ] {
            sip_dropped.with_label_values(&[r]);
        }
        for s in ["400", "416", "420", "501", "505", "513"] {
            sip_refused.with_label_values(&[s]);
        }
        let rtp_packets_sent = counter(
            &registry,
            "centralita_rtp_packets_sent_total",
            "RTP packets sent",
        );
        let rtp_packets_received = counter(
            &registry,
            "centralita_rtp_packets_received_total",
            "RTP packets received from a call's peer",
        );
        let rtp_packets_ignored = counter_vec(
            &registry,
            "centralita_rtp_packets_ignored_total",
            "RTP packets ignored, by reason (wrong_source, malformed, unknown_payload)",
            &["reason"],
        );
        for r in ["wrong_source", "malformed", "unknown_payload"] {
            rtp_packets_ignored.with_label_values(&[r]);
        }
        let rtp_send_lateness = Histogram::with_opts(
            HistogramOpts::new(
                "centralita_rtp_send_lateness_seconds",
                "How late each RTP send was against its 20 ms slot",
            )
            .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]),
        )
        .expect("valid histogram");
        registry
            .register(Box::new(rtp_send_lateness.clone()))
            .expect("unique metric");
        let rtp_peers_latched = counter(
            &registry,
            "centralita_rtp_peers_latched_total",
            "Calls whose RTP came from the signalling host instead of the SDP address (NAT), and was followed",
        );
        let rtp_packets_relayed = counter_vec(
            &registry,
            "centralita_rtp_packets_relayed_total",
            "RTP packets relayed between the legs of bridged calls, by direction",
            &["direction"],
        );
        for d in [
            "caller_to_agent",
            "agent_to_caller",
            "agent_to_colleague",
            "colleague_to_agent",
        ] {
            rtp_packets_relayed.with_label_values(&[d]);
        }
        let keypad_transfers = counter_vec(
            &registry,
            "centralita_keypad_transfers_total",
            "Transfers agents typed during calls (transfer prefix, target, #), by result",
            &["result"],
        );
        for r in KeypadResult::ALL {
            keypad_transfers.with_label_values(&[r.label()]);
        }
        let transfers = counter_vec(
            &registry,
            "centralita_transfers_total",
            "Transfers agents asked for, by how (refer, keypad), to what (queue, agent) and result (done, refused by the ACD)",
            &["how", "result", "to"],
        );
        for how in TransferHow::ALL {
            for result in TransferResult::ALL {
                for to in ["queue", "agent"] {
                    transfers.with_label_values(&[how.label(), result.label(), to]);
                }
            }
        }
        let consultations = counter_vec(
            &registry,
            "centralita_consultations_total",
            "Consultations agents made before a transfer (attended transfer), by what was consulted (agent, queue) and result",
            &["to", "result"],
        );
        for to in ["queue", "agent"] {
            for r in ConsultResult::ALL {
                consultations.with_label_values(&[to, r.label()]);
            }
        }
        let api_sign_ins = counter_vec(
            &registry,
            "centralita_api_sign_ins_total",
            "Sign-ins to the desk, by result (ok, failed: wrong user or password, refused: too many failures from that address)",
            &["result"],
        );
        for r in ["ok", "failed", "refused"] {
            api_sign_ins.with_label_values(&[r]);
        }
        let api_event_listeners = gauge(
            &registry,
            "centralita_api_event_listeners",
            "Desks and scripts listening to the event stream now",
        );
        let webhooks = counter_vec(
            &registry,
            "centralita_webhooks_total",
            "Helpdesk webhooks (Zammad CTI), by result (sent; failed: the receiver refused or did not answer, after retries; dropped: the queue was full)",
            &["result"],
        );
        for r in ["sent", "failed", "dropped"] {
            webhooks.with_label_values(&[r]);
        }
        let calls_on_hold = gauge(
            &registry,
            "centralita_calls_on_hold",
            "Callers their agent holds now (hearing the hold music)",
        );
        let lines = gauge(
            &registry,
            "centralita_lines",
            "Trunk lines configured (acd.lines)",
        );
        let lines_reserved = gauge(
            &registry,
            "centralita_lines_reserved",
            "Trunk lines kept for other uses: never taken by a call or a callback (acd.reserve)",
        );
        let lines_in_use = int_gauge_vec(
            &registry,
            "centralita_lines_in_use",
            "Trunk lines taken (callers, and the customer legs of callbacks), by what they are used for now",
            &["phase"],
        );
        let line_seconds = float_counter_vec(
            &registry,
            "centralita_line_seconds_total",
            "Line time spent in each phase (lines in the phase × seconds; exact at every change of phase, brought up to date each second)",
            &["phase"],
        );
        for p in crate::acd::lines::LinePhase::ALL {
            lines_in_use.with_label_values(&[p.label()]);
            line_seconds.with_label_values(&[p.label()]);
        }
        let float = |name: &str, help: &str| {
            let g = Gauge::new(name, help).expect("valid gauge");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let line_occupancy = float(
            "centralita_line_occupancy_ratio",
            "Trunk lines taken / lines configured",
        );
        let lines_offered_erlangs = float(
            "centralita_lines_offered_erlangs",
            "Traffic offered to the trunk over the last 15 minutes (lines carried, plus blocked callers' share)",
        );
        let lines_blocking = float(
            "centralita_lines_blocking_probability",
            "Erlang B: the probability a caller finds no usable line, for the traffic offered to the trunk",
        );
        let per_agent =
            |name: &str, help: &str| float_counter_vec(&registry, name, help, &["agent"]);
        let agent_logged_in_seconds = per_agent(
            "centralita_agent_logged_in_seconds_total",
            "Time each agent was logged in",
        );
        let agent_handling_seconds = per_agent(
            "centralita_agent_handling_seconds_total",
            "Time each agent handled calls (talk and wrap-up); occupancy = rate of this / rate of logged-in time",
        );
        let build_info = int_gauge_vec(
            &registry,
            "centralita_build_info",
            "Always 1; the version of centralita that runs",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let queue = QueueKpis::new(&registry, thresholds);
        let staffing = StaffingMetrics::new(&registry);
        let overloaded = gauge(
            &registry,
            "centralita_overloaded",
            "1 while new calls are refused with 503 because the controller cannot keep up",
        );
        let sip_backlog = gauge(
            &registry,
            "centralita_sip_backlog",
            "SIP datagrams read from the socket and not yet taken by the SIP stack (overload above 512)",
        );
        let open_fds = gauge(
            &registry,
            "centralita_open_fds",
            "File descriptors the controller has open, counted every second (overload above 90 % of centralita_max_fds)",
        );
        let max_fds = gauge(
            &registry,
            "centralita_max_fds",
            "The controller's limit of open file descriptors (RLIMIT_NOFILE, soft; raised to the hard limit at start)",
        );
        let runtime_lag = prometheus::Gauge::new(
            "centralita_runtime_lag_seconds",
            "How late the async runtime wakes a 10 ms timer, averaged (overload when above 0.04)",
        )
        .expect("valid gauge");
        registry
            .register(Box::new(runtime_lag.clone()))
            .expect("unique metric");
        let rtp_ports_in_use = gauge(
            &registry,
            "centralita_rtp_ports_in_use",
            "RTP ports held by calls",
        );
        let sip_auth_failures = counter_vec(
            &registry,
            "centralita_sip_auth_failures_total",
            "Requests refused 403 for wrong credentials, by method",
            &["method"],
        );
        let sip_limited = counter_vec(
            &registry,
            "centralita_sip_invites_limited_total",
            "New INVITEs refused 503 with Retry-After by the per-source limits, by reason (rate: INVITEs per second; calls: calls held at once)",
            &["reason"],
        );
        for r in ["rate", "calls"] {
            sip_limited.with_label_values(&[r]);
        }
        let sip_bans = counter_vec(
            &registry,
            "centralita_sip_bans_total",
            "Sources banned and accounts throttled, by kind (source, account) and reason (auth: digest failures; flood: INVITEs past the limits)",
            &["kind", "reason"],
        );
        for (k, r) in [("source", "auth"), ("source", "flood"), ("account", "auth")] {
            sip_bans.with_label_values(&[k, r]);
        }
        let sip_banned = int_gauge_vec(
            &registry,
            "centralita_sip_banned",
            "Bans (sources) and throttles (accounts) in force, by kind",
            &["kind"],
        );
        for k in ["source", "account"] {
            sip_banned.with_label_values(&[k]);
        }
        let limits_hit = counter_vec(
            &registry,
            "centralita_limits_hit_total",
            "Times a memory cap was reached, by cap (sources: the per-source table; tcp_connections: a connection refused or closed half-open; tcp_buffer: a message past the size limit, or left unfinished, on a connection; dialogs and transactions: a new request refused 503; nonces: the oldest evicted; account_throttle: a digest attempt not heard for a throttled account)",
            &["cap"],
        );
        for c in [
            "sources",
            "tcp_connections",
            "tcp_buffer",
            "dialogs",
            "account_throttle",
        ] {
            limits_hit.with_label_values(&[c]);
        }
        let agents_registered = gauge(
            &registry,
            "centralita_agents_registered",
            "Agents with at least one live SIP binding",
        );
        let agents = IntGaugeVec::new(
            Opts::new("centralita_agents", "Agents by state"),
            &["state"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(agents.clone()))
            .expect("unique metric");
        let queue_waiting = IntGaugeVec::new(
            Opts::new("centralita_queue_waiting", "Callers waiting in each queue"),
            &["queue"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(queue_waiting.clone()))
            .expect("unique metric");
        let queue_callbacks_pending = IntGaugeVec::new(
            Opts::new(
                "centralita_queue_callbacks_pending",
                "Callers of each queue waiting to be called back",
            ),
            &["queue"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(queue_callbacks_pending.clone()))
            .expect("unique metric");
        let queue_longest_wait = GaugeVec::new(
            Opts::new(
                "centralita_queue_longest_wait_seconds",
                "How long the longest-waiting caller of each queue has waited",
            ),
            &["queue"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(queue_longest_wait.clone()))
            .expect("unique metric");
        let float_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let int_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let queue_service_level = float_vec(
            "centralita_queue_service_level_ratio",
            "The queue's service level over its stats window: answered within the threshold / answered, abandons counted as the queue's `abandons` says (NaN before anything counts)",
            &["queue"],
        );
        let queue_answered_window = int_vec(
            "centralita_queue_answered_in_window",
            "Calls of the queue answered by an agent in its stats window (queues.<name>.stats_window_mins, an hour by default)",
            &["queue"],
        );
        let queue_abandoned_window = int_vec(
            "centralita_queue_abandoned_in_window",
            "Callers who hung up waiting in the queue in its stats window, short abandons left out",
            &["queue"],
        );
        let queue_handle_time = float_vec(
            "centralita_queue_average_handle_time_seconds",
            "Recent average handle time (talk and wrap-up) of the queue's calls, used for the estimated wait",
            &["queue"],
        );
        let queue_agents = int_vec(
            "centralita_queue_agents",
            "Agents who serve the queue (at its widest), by state",
            &["queue", "state"],
        );
        let queue_calls = counter_vec(
            &registry,
            "centralita_queue_calls_total",
            "Calls that left each queue, by outcome (served, abandoned, blocked, called_back, callback_gave_up, message_hangup)",
            &["queue", "outcome"],
        );
        let store = StoreMetrics::new(&registry);
        Metrics {
            registry,
            queue_waiting,
            queue_callbacks_pending,
            lines_in_use,
            calls_on_hold,
            overloaded,
            runtime_lag,
            sip_backlog,
            open_fds,
            max_fds,
            queue_longest_wait,
            queue_service_level,
            queue_answered_window,
            queue_abandoned_window,
            queue_handle_time,
            queue_agents,
            queue_calls,
            queue,
            staffing,
            lines,
            lines_reserved,
            line_occupancy,
            line_seconds,
            lines_offered_erlangs,
            lines_blocking,
            agent_logged_in_seconds,
            agent_handling_seconds,
            build_info,
            agents,
            sip_auth_failures,
            sip_limited,
            sip_bans,
            sip_banned,
            limits_hit,
            agents_registered,
            calls,
            calls_active,
            ivr_menu_entries,
            ivr_queue_requests,
            ivr_callback_requests,
            dtmf_digits,
            sip_requests,
            sip_responses,
            sip_dropped,
            sip_refused,
            rtp_packets_sent,
            rtp_packets_received,
            rtp_packets_ignored,
            rtp_send_lateness,
            rtp_peers_latched,
            rtp_packets_relayed,
            keypad_transfers,
            transfers,
            consultations,
            api_sign_ins,
            api_event_listeners,
            webhooks,
            rtp_ports_in_use,
            store,
        }
    }

    /// The line gauges, for `crate::acd::lines::LineCapacity`.
    pub fn line_gauges(&self) -> crate::acd::lines::LineGauges {
        use crate::acd::lines::LinePhase;
        crate::acd::lines::LineGauges {
            in_use: LinePhase::ALL.map(|p| self.lines_in_use.with_label_values(&[p.label()])),
            seconds: LinePhase::ALL.map(|p| self.line_seconds.with_label_values(&[p.label()])),
            occupancy: self.line_occupancy.clone(),
        }
    }

    pub fn call_ended(&self, outcome: CallOutcome) {
        self.calls.with_label_values(&[outcome.as_str()]).inc();
    }

    pub fn dropped(&self, reason: &str) {
        self.sip_dropped.with_label_values(&[reason]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

// Metric definitions are static strings: registering them can only fail on a
// programming error (a duplicate name), caught by every test that starts a
// server.
fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help)).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn float_counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> CounterVec {
    let c = CounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn int_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn float_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::with_opts(Opts::new(name, help)).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.call_ended(CallOutcome::CallerHangup);
        m.rtp_send_lateness.observe(0.001);
        let text = m.render();
        assert!(text.contains("centralita_calls_total{outcome=\"caller_hangup\"} 1"));
        assert!(text.contains("centralita_dtmf_digits_total{source=\"inband\"} 0"));
        assert!(text.contains("centralita_rtp_send_lateness_seconds_bucket"));
    }
}
