//! Scenario tests of the call core on a fake clock, with the shipped config
//! and menus: one behaviour per test, asserting the actions a caller, an
//! agent or the ACD would notice.

use super::core::{Arrival, CallCore, CallSettings, CallState};
use super::*;
use crate::acd::driver::QueueNews;
use crate::acd::{CallId, OfferFailReason, TransferTarget};
use crate::config::{Overrides, RuntimeConfig};
use crate::ivr::IvrScript;
use crate::media::dtmf::DigitSource;
use crate::metrics::CallOutcome;
use crate::sip::{AgentTarget, LegEnd};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub(super) fn settings() -> Arc<CallSettings> {
    static SETTINGS: OnceLock<Arc<CallSettings>> = OnceLock::new();
    Arc::clone(SETTINGS.get_or_init(|| {
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/centralita.toml"
        ));
        let config = RuntimeConfig::load(path, &Overrides::default()).expect("shipped config");
        let ivr = IvrScript::load_dir(&config.ivr_dir).expect("shipped menus");
        let feature_ivr = super::feature_script().expect("built-in menus");
        Arc::new(CallSettings {
            config,
            ivr: Arc::new(ivr),
            feature_ivr: Arc::new(feature_ivr),
            ack_timeout: Duration::from_secs(32),
        })
    }))
}

pub(super) const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

pub(super) fn answer_sdp(port: u16) -> Vec<u8> {
    format!("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n").into_bytes()
}

pub(super) fn arrival(dialed: &str) -> Arrival {
    Arrival {
        call: CallId(7),
        dialed: dialed.into(),
        from_uri: "\"Caller\" <sip:5550101@127.0.0.1>;tag=x".into(),
        source: "127.0.0.1:5090".parse().expect("addr"),
        local_ip: "127.0.0.1".parse().expect("ip"),
        offer: Some(OFFER.as_bytes().to_vec()),
        agent: None,
        rtp_port: Some(30000),
        holds_line: true,
    }
}

pub(super) fn target(n: u16) -> AgentTarget {
    AgentTarget {
        contact: format!("sip:ana@127.0.0.1:{}", 6000 + n),
        source: format!("127.0.0.1:{}", 6000 + n).parse().expect("addr"),
        over_tcp: false,
    }
}

/// A call on a fake clock; every action taken is kept in `log`.
struct H {
    core: CallCore,
    start: Instant,
    now: Instant,
    log: Vec<CallAction>,
    /// The ticket's records, each with the number of actions before it.
    records: Vec<(usize, Record)>,
}

impl H {
    fn new(a: Arrival) -> H {
        let start = Instant::now();
        let core = CallCore::new(start, settings(), a);
        let mut h = H {
            core,
            start,
            now: start,
            log: Vec::new(),
            records: Vec::new(),
        };
        h.take();
        h
    }

    /// The core's actions but its ticket's records (kept in `records`,
    /// in order with a marker of where they came); a ticket to open or join
    /// is answered at once, as the driver does once the store has committed
    /// it.
    fn take(&mut self) -> Vec<CallAction> {
        let mut out = Vec::new();
        while let Some(a) = self.core.poll_action() {
            let CallAction::Record(r) = a else {
                out.push(a);
                continue;
            };
            self.records.push((self.log.len() + out.len(), r.clone()));
            let answer = match r {
                Record::Open { .. } => Some(CallEvent::TicketOpened {
                    ticket: crate::tickets::TicketNumber::FIRST,
                }),
                Record::Join { typed } => Some(CallEvent::TicketJoined {
                    ticket: crate::tickets::TicketNumber::parse(&typed),
                }),
                Record::Change { .. } => None,
            };
            if let Some(ev) = answer {
                self.core.handle_event(self.now, ev);
            }
        }
        self.log.extend(out.iter().cloned());
        out
    }

    /// The entries written so far.
    fn entries(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|(_, r)| match r {
                Record::Change { entry, .. } => Some(entry.clone()),
                _ => None,
            })
            .collect()
    }

    fn ev(&mut self, ev: CallEvent) -> Vec<CallAction> {
        self.core.handle_event(self.now, ev);
        self.take()
    }

    /// The ACD applied a feature code.
    fn news_feature(&mut self) -> Vec<CallAction> {
        self.ev(CallEvent::FeatureApplied { known: true })
    }

    fn news(&mut self, news: QueueNews) -> Vec<CallAction> {
        self.ev(CallEvent::Acd(news))
    }

    /// Move the clock to `secs` after the start, firing due deadlines.
    fn at_ms(&mut self, ms: u64) -> Vec<CallAction> {
        self.now = self.start + Duration::from_millis(ms);
        self.core.handle_timeout(self.now);
        self.take()
    }

    fn key(&mut self, digit: char) -> Vec<CallAction> {
        self.ev(CallEvent::CallerDigit {
            digit,
            source: DigitSource::Rfc4733,
        })
    }

    fn agent_key(&mut self, digit: char) -> Vec<CallAction> {
        self.ev(CallEvent::AgentDigit {
            digit,
            source: DigitSource::Rfc4733,
        })
    }

    fn state(&self) -> CallState {
        self.core.view().state
    }

    /// Through the menus (Spanish, software) into the queue.
    fn queued(dialed: &str) -> H {
        let mut h = H::new(arrival(dialed));
        h.key('1');
        h.key('1');
        assert_eq!(h.state(), CallState::Queued);
        h.take();
        h
    }

    /// Queued, offered to Ana on `contacts` phones.
    fn ringing(contacts: u16) -> H {
        let mut h = H::queued("soporte");
        let acts = h.news(QueueNews::Offer {
            agent: "ana".into(),
            targets: (0..contacts).map(target).collect(),
            ticket: None,
        });
        assert!(acts
            .iter()
            .any(|a| matches!(a, CallAction::RingAgent { offer: 1, .. })));
        h.ev(CallEvent::OfferRung { offer: 1, contacts });
        h
    }

    /// Bridged with Ana on contact 0.
    fn bridged() -> H {
        let mut h = H::ringing(1);
        h.ev(CallEvent::AgentAnswered {
            leg: leg(0),
            sdp: answer_sdp(42000),
        });
        h.ev(CallEvent::AgentBridged {
            leg: leg(0),
            local: agent_local(),
        });
        assert_eq!(h.state(), CallState::OnCall);
        h
    }

    fn finished(&self) -> Option<CallOutcome> {
        self.log.iter().find_map(|a| match a {
            CallAction::Finished { outcome } => Some(*outcome),
            _ => None,
        })
    }

    fn count(&self, pred: impl Fn(&CallAction) -> bool) -> usize {
        self.log.iter().filter(|a| pred(a)).count()
    }
}

fn agent_local() -> std::net::SocketAddr {
    "127.0.0.1:31000".parse().expect("addr")
}

fn leg(contact: u16) -> AgentLegRef {
    AgentLegRef { offer: 1, contact }
}

fn acd(acts: &[CallAction]) -> Vec<AcdRequest> {
    acts.iter()
        .filter_map(|a| match a {
            CallAction::Acd(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn played(acts: &[CallAction]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| match a {
            CallAction::Play { prompts, .. } | CallAction::Append { prompts, .. } => {
                Some(prompts.clone())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn token(acts: &[CallAction]) -> Option<u64> {
    acts.iter().rev().find_map(|a| match a {
        CallAction::Play { token, .. } => Some(*token),
        _ => None,
    })
}

// ------------------------------------------------------------- arrival

#[test]
fn an_unknown_number_is_refused_404_and_its_line_released() {
    let mut h = H::new(arrival("999"));
    h.take();
    assert_eq!(
        h.log,
        vec![
            CallAction::Reject { status: 404 },
            CallAction::ReleaseLine,
            CallAction::Finished {
                outcome: CallOutcome::NotFound
            }
        ]
    );
    assert!(h.core.is_ended());
}

#[test]
fn a_call_is_answered_at_once_and_greeted_in_spanish() {
    let h = H::new(arrival("soporte"));
    assert!(
        matches!(h.log.first(), Some(CallAction::Answer { sdp }) if sdp.contains("m=audio 30000 RTP/AVP 0 101"))
    );
    assert!(h
        .log
        .iter()
        .any(|a| matches!(a, CallAction::StartCallerMedia { .. })));
    assert!(h.log.iter().any(|a| matches!(a,
        CallAction::Play { language, prompts, .. } if language == "es" && prompts == &["welcome", "choose_language"])));
    assert_eq!(h.state(), CallState::Ivr);
}

#[test]
fn no_free_rtp_port_refuses_the_call_503() {
    let mut a = arrival("soporte");
    a.rtp_port = None;
    let h = H::new(a);
    assert_eq!(h.log.first(), Some(&CallAction::Reject { status: 503 }));
    assert_eq!(h.finished(), Some(CallOutcome::Unavailable));
}

#[test]
fn an_offer_without_a_common_codec_is_refused_488() {
    let mut a = arrival("soporte");
    a.offer = Some(OFFER.replace("RTP/AVP 0 101", "RTP/AVP 18").into_bytes());
    let h = H::new(a);
    assert_eq!(h.log.first(), Some(&CallAction::Reject { status: 488 }));
    assert_eq!(h.finished(), Some(CallOutcome::NoCodec));
}

#[test]
fn an_offerless_invite_gets_our_offer_and_media_waits_for_the_ack() {
    let mut a = arrival("soporte");
    a.offer = None;
    let mut h = H::new(a);
    assert!(
        matches!(h.log.first(), Some(CallAction::Answer { sdp }) if sdp.contains("RTP/AVP 0 8 101"))
    );
    assert_eq!(h.state(), CallState::Answering);
    let acts = h.ev(CallEvent::CallerConfirmed {
        ack_body: Some(answer_sdp(40002)),
    });
    assert!(acts.iter().any(|a| matches!(a, CallAction::StartCallerMedia { remote } if remote.remote_rtp.port() == 40002)));
    assert_eq!(h.state(), CallState::Ivr);
}

#[test]
fn an_ack_without_an_answer_ends_the_offerless_call() {
    let mut a = arrival("soporte");
    a.offer = None;
    let mut h = H::new(a);
    let acts = h.ev(CallEvent::CallerConfirmed { ack_body: None });
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(h.finished(), Some(CallOutcome::NoCodec));
}

#[test]
fn a_200_never_acked_ends_the_call_after_64_t1_freeing_its_line() {
    let mut h = H::new(arrival("soporte"));
    assert!(h
        .at_ms(31_000)
        .iter()
        .all(|a| !matches!(a, CallAction::Finished { .. })));
    let acts = h.at_ms(32_000);
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert!(acts.contains(&CallAction::ReleaseLine));
    assert_eq!(h.finished(), Some(CallOutcome::Timeout));
}

#[test]
fn the_ack_stops_the_64_t1_deadline() {
    let mut h = H::new(arrival("soporte"));
    h.ev(CallEvent::CallerConfirmed { ack_body: None });
    h.at_ms(40_000);
    assert_ne!(h.finished(), Some(CallOutcome::Timeout));
}

#[test]
fn answer_after_rings_then_answers_when_the_delay_is_over() {
    let mut s = CallSettings {
        config: settings().config.clone(),
        ivr: Arc::clone(&settings().ivr),
        feature_ivr: Arc::clone(&settings().feature_ivr),
        ack_timeout: Duration::from_secs(32),
    };
    s.config.answer_after_ms = 2000;
    let start = Instant::now();
    let mut core = CallCore::new(start, Arc::new(s), arrival("soporte"));
    // The ticket first, then the ringing.
    assert!(matches!(
        core.poll_action(),
        Some(CallAction::Record(Record::Open { .. }))
    ));
    core.handle_event(
        start,
        CallEvent::TicketOpened {
            ticket: crate::tickets::TicketNumber::FIRST,
        },
    );
    assert_eq!(core.poll_action(), Some(CallAction::Ring));
    assert_eq!(core.poll_action(), None);
    assert_eq!(core.poll_timeout(), Some(start + Duration::from_secs(2)));
    core.handle_timeout(start + Duration::from_secs(2));
    assert!(matches!(
        core.poll_action(),
        Some(CallAction::Answer { .. })
    ));
}

#[test]
fn a_cancel_before_the_answer_ends_the_call_as_cancelled() {
    let mut s = CallSettings {
        config: settings().config.clone(),
        ivr: Arc::clone(&settings().ivr),
        feature_ivr: Arc::clone(&settings().feature_ivr),
        ack_timeout: Duration::from_secs(32),
    };
    s.config.answer_after_ms = 2000;
    let now = Instant::now();
    let mut core = CallCore::new(now, Arc::new(s), arrival("soporte"));
    core.handle_event(now, CallEvent::CallerEnded(LegEnd::Cancelled));
    let acts: Vec<_> = std::iter::from_fn(|| core.poll_action()).collect();
    assert!(acts.contains(&CallAction::Finished {
        outcome: CallOutcome::Cancelled
    }));
    assert!(!acts.iter().any(|a| matches!(a, CallAction::Answer { .. })));
}

#[test]
fn a_feature_code_waits_for_the_acd_then_says_the_new_state() {
    let mut a = arrival("*11");
    a.agent = Some("ana".into());
    a.holds_line = false;
    let mut h = H::new(a);
    assert_eq!(
        acd(&h.log),
        vec![AcdRequest::Feature {
            agent: "ana".into(),
            feature: crate::acd::driver::Feature::Ready
        }]
    );
    assert!(!h.log.iter().any(|x| matches!(x, CallAction::Answer { .. })));
    let acts = h.ev(CallEvent::FeatureApplied { known: true });
    assert!(played(&acts).contains(&"agent_ready".to_string()));
}

#[test]
fn a_feature_code_of_an_unknown_agent_is_refused_404() {
    let mut a = arrival("*12");
    a.agent = Some("nadie".into());
    a.holds_line = false;
    let mut h = H::new(a);
    let acts = h.ev(CallEvent::FeatureApplied { known: false });
    assert_eq!(acts.first(), Some(&CallAction::Reject { status: 404 }));
    assert!(
        !acts.contains(&CallAction::ReleaseLine),
        "a feature call holds no line"
    );
}

// --------------------------------------------------------------- queue

#[test]
fn a_caller_who_dials_a_queue_number_goes_straight_into_it() {
    let h = H::new(arrival("202"));
    assert_eq!(
        acd(&h.log),
        vec![AcdRequest::Enqueue {
            queue: "hardware".into(),
            priority: 5,
            ticket: Some("100001".into())
        }]
    );
    assert!(h.log.contains(&CallAction::HoldMusic(true)));
    assert_eq!(h.state(), CallState::Queued);
}

#[test]
fn the_menus_put_the_caller_in_the_software_queue_with_its_prompt() {
    let mut h = H::new(arrival("soporte"));
    h.key('1');
    let acts = h.key('1');
    assert!(played(&acts).contains(&"transfer_software".to_string()));
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::Enqueue {
            queue: "software".into(),
            priority: 5,
            ticket: Some("100001".into())
        }]
    );
}

#[test]
fn the_first_announcement_says_all_are_busy_and_later_ones_only_the_position() {
    let mut h = H::queued("soporte");
    let first = played(&h.news(QueueNews::Announce {
        position: 3,
        ewt_minutes: 2,
    }));
    assert_eq!(
        first,
        [
            "queue_wait",
            "position_is",
            "numbers/3",
            "estimated_wait",
            "numbers/2",
            "minutes"
        ]
    );
    let second = played(&h.news(QueueNews::Announce {
        position: 1,
        ewt_minutes: 0,
    }));
    assert_eq!(
        second,
        [
            "position_is",
            "numbers/1",
            "estimated_wait",
            "less_than_a_minute"
        ]
    );
}

#[test]
fn a_queue_message_is_played_and_then_the_caller_hung_up() {
    let mut h = H::queued("soporte");
    let acts = h.news(QueueNews::PlayAndHangup {
        prompt: "closed".into(),
    });
    assert!(acts.contains(&CallAction::HoldMusic(false)));
    assert_eq!(played(&acts), ["closed"]);
    h.news(QueueNews::Finished(crate::acd::Outcome::MessageHangup));
    let t = token(&h.log).unwrap_or_default();
    let acts = h.ev(CallEvent::CallerPlaybackFinished { token: t });
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert!(
        !acd(&acts).contains(&AcdRequest::CallerGone),
        "the ACD ended it already"
    );
}

#[test]
fn a_caller_who_hangs_up_in_the_queue_is_reported_once_and_frees_its_line() {
    let mut h = H::queued("soporte");
    let acts = h.ev(CallEvent::CallerEnded(LegEnd::CallerBye));
    assert_eq!(acd(&acts), vec![AcdRequest::CallerGone]);
    assert_eq!(h.count(|a| *a == CallAction::ReleaseLine), 1);
    assert_eq!(h.finished(), Some(CallOutcome::CallerHangup));
    assert!(h.ev(CallEvent::CallerEnded(LegEnd::CallerBye)).is_empty());
}

// --------------------------------------------------------------- offer

#[test]
fn an_offer_rings_the_agent_in_the_callers_codec_with_a_ticket() {
    let mut h = H::queued("soporte");
    let acts = h.news(QueueNews::Offer {
        agent: "ana".into(),
        targets: vec![target(0)],
        ticket: Some("100001".into()),
    });
    assert!(acts.iter().any(|a| matches!(a,
        CallAction::RingAgent { agent, ticket, codec, .. }
            if agent == "ana" && ticket == "100001" && codec.pt == 0)));
    assert_eq!(h.state(), CallState::Ringing);
}

#[test]
fn the_first_phone_to_answer_is_bridged_and_the_others_cancelled() {
    let mut h = H::ringing(2);
    let acts = h.ev(CallEvent::AgentAnswered {
        leg: leg(1),
        sdp: answer_sdp(42000),
    });
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert!(acts
        .iter()
        .any(|a| matches!(a, CallAction::BridgeAgent { leg: l, .. } if *l == leg(1))));
    assert!(
        acd(&acts).is_empty(),
        "the ACD hears of it once the bridge is up"
    );
    let acts = h.ev(CallEvent::AgentBridged {
        leg: leg(1),
        local: agent_local(),
    });
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::AgentAnswered {
            agent: "ana".into()
        }]
    );
    assert_eq!(h.core.view().agent, Some("ana"));
}

#[test]
fn every_phone_busy_fails_the_offer_as_rejected() {
    let mut h = H::ringing(2);
    assert!(acd(&h.ev(CallEvent::AgentFailed {
        leg: leg(0),
        status: 486
    }))
    .is_empty());
    let acts = h.ev(CallEvent::AgentFailed {
        leg: leg(1),
        status: 486,
    });
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::OfferFailed {
            agent: "ana".into(),
            reason: OfferFailReason::Rejected
        }]
    );
    assert_eq!(h.state(), CallState::Queued);
}

#[test]
fn a_phone_that_never_answers_fails_the_offer_as_no_answer() {
    let mut h = H::ringing(1);
    let acts = h.ev(CallEvent::AgentFailed {
        leg: leg(0),
        status: 408,
    });
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::OfferFailed {
            agent: "ana".into(),
            reason: OfferFailReason::NoAnswer
        }]
    );
}

#[test]
fn an_offer_with_no_phone_to_ring_fails_as_unreachable() {
    let mut h = H::queued("soporte");
    h.news(QueueNews::Offer {
        agent: "ana".into(),
        targets: vec![target(0)],
        ticket: None,
    });
    let acts = h.ev(CallEvent::OfferRung {
        offer: 1,
        contacts: 0,
    });
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::OfferFailed {
            agent: "ana".into(),
            reason: OfferFailReason::Unreachable
        }]
    );
}

#[test]
fn a_withdrawn_offer_cancels_its_phones_and_a_late_answer_is_hung_up() {
    let mut h = H::ringing(1);
    let acts = h.news(QueueNews::CancelOffer {
        agent: "ana".into(),
    });
    assert_eq!(acts, vec![CallAction::HangUpAgent { leg: leg(0) }]);
    // The phone's 200 crossed our CANCEL: that leg is ended, not bridged.
    let acts = h.ev(CallEvent::AgentAnswered {
        leg: leg(0),
        sdp: answer_sdp(42000),
    });
    assert!(!acts
        .iter()
        .any(|a| matches!(a, CallAction::BridgeAgent { .. })));
    assert_eq!(h.state(), CallState::Queued);
}

#[test]
fn the_caller_hanging_up_while_the_agent_rings_cancels_the_phones() {
    let mut h = H::ringing(2);
    let acts = h.ev(CallEvent::CallerEnded(LegEnd::CallerBye));
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(1) }));
    assert_eq!(acd(&acts), vec![AcdRequest::CallerGone]);
}

#[test]
fn a_second_offer_while_one_rings_is_refused_at_once() {
    let mut h = H::ringing(1);
    let acts = h.news(QueueNews::Offer {
        agent: "bruno".into(),
        targets: vec![target(1)],
        ticket: None,
    });
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::OfferFailed {
            agent: "bruno".into(),
            reason: OfferFailReason::Rejected
        }]
    );
}

// -------------------------------------------------------------- bridge

#[test]
fn the_agent_hanging_up_ends_the_call_for_the_caller() {
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::AgentEnded { leg: leg(0) });
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(acd(&acts), vec![AcdRequest::CallerGone]);
    assert_eq!(h.finished(), Some(CallOutcome::AgentHangup));
}

#[test]
fn a_caller_whose_agents_phone_vanishes_goes_back_to_the_queue() {
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::AgentRtpTimeout);
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert!(!acts.contains(&CallAction::HangUpCaller));
    assert_eq!(acd(&acts), vec![AcdRequest::AgentLost]);
    assert!(acts.contains(&CallAction::Unbridge));
    assert!(acts.contains(&CallAction::HoldMusic(true)));
    assert_eq!(h.state(), CallState::Queued);
    assert_eq!(h.finished(), None);
    // The next agent's offer is taken as any other.
    let acts = h.ev(CallEvent::AgentRtpTimeout);
    assert!(acts.is_empty(), "nothing more to lose: {acts:?}");
}

#[test]
fn the_agents_ordinary_keys_reach_the_caller() {
    let mut h = H::bridged();
    assert_eq!(
        h.agent_key('8'),
        vec![
            CallAction::Count(CallCount::Digit(DigitSource::Rfc4733)),
            CallAction::SendDigitToCaller('8')
        ]
    );
}

#[test]
fn a_callers_info_key_goes_on_to_the_bridged_agent() {
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::CallerInfo {
        req: ReqId(1),
        content_type: "application/dtmf-relay".into(),
        body: b"Signal=5\r\nDuration=160\r\n".to_vec(),
    });
    assert_eq!(
        acts,
        vec![
            CallAction::ReplyInfo {
                req: ReqId(1),
                status: 200
            },
            CallAction::SendDigitToAgent('5')
        ]
    );
}

#[test]
fn an_info_body_that_is_not_dtmf_gets_415() {
    let mut h = H::new(arrival("soporte"));
    let acts = h.ev(CallEvent::CallerInfo {
        req: ReqId(3),
        content_type: "text/plain".into(),
        body: b"hello".to_vec(),
    });
    assert_eq!(
        acts,
        vec![CallAction::ReplyInfo {
            req: ReqId(3),
            status: 415
        }]
    );
}

fn reoffer_answer(acts: &[CallAction]) -> Option<String> {
    acts.iter().find_map(|a| match a {
        CallAction::ReplyReoffer {
            answer: Ok(Some(sdp)),
            ..
        } => Some(sdp.clone()),
        _ => None,
    })
}

fn o_line(sdp: &str) -> String {
    sdp.lines()
        .find(|l| l.starts_with("o="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_reinvite_to_a_new_address_is_followed_and_a_refresh_keeps_the_version() {
    let mut h = H::new(arrival("soporte"));
    let acts = h.ev(CallEvent::CallerReoffer {
        req: ReqId(2),
        sdp: Some(OFFER.replace("40000", "40010").into_bytes()),
        invite: true,
    });
    assert!(acts.contains(&CallAction::SetCallerPeer {
        peer: "127.0.0.1:40010".parse().expect("addr")
    }));
    let session = SdpSession::for_leg(LegId {
        call: CallId(7),
        role: LegRole::Caller,
    });
    // Nothing we state changed: the same version (RFC 3264 §8).
    let same = format!("o=centralita {} {} ", session.id, session.id);
    let first = reoffer_answer(&acts).unwrap_or_default();
    assert!(first.contains(&same), "{first}");
    // The caller holds: our answer says recvonly, a new version.
    let acts = h.ev(CallEvent::CallerReoffer {
        req: ReqId(3),
        sdp: Some(format!("{OFFER}a=sendonly\r\n").into_bytes()),
        invite: true,
    });
    let held = reoffer_answer(&acts).unwrap_or_default();
    assert!(held.contains("a=recvonly"), "{held}");
    assert!(held.contains(&format!("o=centralita {} {} ", session.id, session.id + 1)));
    // The same hold again (a session refresh): the same answer, same version.
    let acts = h.ev(CallEvent::CallerReoffer {
        req: ReqId(4),
        sdp: Some(format!("{OFFER}a=sendonly\r\n").into_bytes()),
        invite: true,
    });
    assert_eq!(reoffer_answer(&acts), Some(held));
}

#[test]
fn an_offerless_reinvite_gets_our_offer_and_an_update_without_sdp_gets_none() {
    let mut h = H::new(arrival("soporte"));
    let acts = h.ev(CallEvent::CallerReoffer {
        req: ReqId(2),
        sdp: None,
        invite: true,
    });
    let ours = reoffer_answer(&acts).unwrap_or_default();
    assert!(ours.contains("m=audio 30000 RTP/AVP 0"), "{ours}");
    let acts = h.ev(CallEvent::CallerReoffer {
        req: ReqId(3),
        sdp: None,
        invite: false,
    });
    assert_eq!(
        acts,
        vec![CallAction::ReplyReoffer {
            req: ReqId(3),
            answer: Ok(None)
        }]
    );
}

// ---------------------------------------------------------------- hold

fn agent_offer(extra: &str, conn: &str) -> Vec<u8> {
    format!("v=0\r\no=phone 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {conn}\r\nt=0 0\r\nm=audio 42000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n{extra}").into_bytes()
}

fn agent_reoffer(h: &mut H, req: u64, sdp: Vec<u8>) -> Vec<CallAction> {
    h.ev(CallEvent::AgentReoffer {
        leg: leg(0),
        req: ReqId(req),
        sdp: Some(sdp),
        invite: true,
    })
}

#[test]
fn the_agent_holding_with_sendonly_puts_the_caller_on_hold_music() {
    let mut h = H::bridged();
    let acts = agent_reoffer(&mut h, 1, agent_offer("a=sendonly\r\n", "127.0.0.1"));
    assert!(acts.contains(&CallAction::HoldCaller));
    assert!(acts.contains(&CallAction::HoldMusic(true)));
    assert!(acts.contains(&CallAction::Count(CallCount::OnHold(true))));
    let answer = reoffer_answer(&acts).unwrap_or_default();
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(
        answer.contains("m=audio 31000 "),
        "our agent-side port: {answer}"
    );
    // The caller's keys do not reach the agent while on hold.
    let acts = h.ev(CallEvent::CallerInfo {
        req: ReqId(9),
        content_type: "application/dtmf-relay".into(),
        body: b"Signal=5\r\nDuration=160\r\n".to_vec(),
    });
    assert!(!acts.contains(&CallAction::SendDigitToAgent('5')));
}

#[test]
fn the_old_hold_form_and_inactive_hold_too_and_sendrecv_resumes() {
    for (extra, conn) in [("", "0.0.0.0"), ("a=inactive\r\n", "127.0.0.1")] {
        let mut h = H::bridged();
        let acts = agent_reoffer(&mut h, 1, agent_offer(extra, conn));
        assert!(acts.contains(&CallAction::HoldCaller), "{extra} {conn}");
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, CallAction::SetAgentPeer { .. })),
            "0.0.0.0 is not an address to follow"
        );
        h.now += Duration::from_secs(30);
        let acts = agent_reoffer(&mut h, 2, agent_offer("a=sendrecv\r\n", "127.0.0.1"));
        assert!(acts.contains(&CallAction::ResumeCaller));
        assert!(acts.contains(&CallAction::HoldMusic(false)));
        assert!(acts.contains(&CallAction::Count(CallCount::OnHold(false))));
        let stats = h.core.hold_stats();
        assert_eq!((stats.count, stats.total), (1, Duration::from_secs(30)));
    }
}

#[test]
fn a_refresh_from_the_agent_is_answered_with_the_same_version_and_a_move_is_followed() {
    let mut h = H::bridged();
    let acts = agent_reoffer(&mut h, 1, agent_offer("a=sendrecv\r\n", "127.0.0.1"));
    let first = reoffer_answer(&acts).unwrap_or_default();
    assert!(!acts.contains(&CallAction::HoldCaller));
    let acts = agent_reoffer(&mut h, 2, agent_offer("a=sendrecv\r\n", "127.0.0.1"));
    assert_eq!(
        o_line(&reoffer_answer(&acts).unwrap_or_default()),
        o_line(&first)
    );
    let moved = String::from_utf8_lossy(&agent_offer("", "127.0.0.1")).replace("42000", "42010");
    let acts = agent_reoffer(&mut h, 3, moved.into_bytes());
    assert!(acts.contains(&CallAction::SetAgentPeer {
        peer: "127.0.0.1:42010".parse().expect("addr")
    }));
}

#[test]
fn a_caller_who_hangs_up_on_hold_leaves_the_gauge_balanced() {
    let mut h = H::bridged();
    agent_reoffer(&mut h, 1, agent_offer("a=sendonly\r\n", "127.0.0.1"));
    h.ev(CallEvent::CallerEnded(LegEnd::CallerBye));
    assert_eq!(
        h.count(|a| *a == CallAction::Count(CallCount::OnHold(true))),
        1
    );
    assert_eq!(
        h.count(|a| *a == CallAction::Count(CallCount::OnHold(false))),
        1
    );
}

#[test]
fn a_reinvite_from_a_leg_that_is_not_the_bridged_one_is_refused_481() {
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::AgentReoffer {
        leg: leg(3),
        req: ReqId(1),
        sdp: Some(agent_offer("", "127.0.0.1")),
        invite: true,
    });
    assert_eq!(
        acts,
        vec![CallAction::ReplyReoffer {
            req: ReqId(1),
            answer: Err(481)
        }]
    );
}

fn caller_reoffer(h: &mut H, req: u64, direction: &str) -> Vec<CallAction> {
    let sdp = format!("{OFFER}a={direction}\r\n");
    h.ev(CallEvent::CallerReoffer {
        req: ReqId(req),
        sdp: Some(sdp.into_bytes()),
        invite: true,
    })
}

fn reoffered_agent(acts: &[CallAction]) -> Option<String> {
    acts.iter().find_map(|a| match a {
        CallAction::ReofferAgent { leg: l, sdp } if *l == leg(0) => Some(sdp.clone()),
        _ => None,
    })
}

#[test]
fn the_callers_hold_is_mirrored_to_the_agents_phone_and_resumed_with_it() {
    let mut h = H::bridged();
    let acts = caller_reoffer(&mut h, 1, "sendonly");
    assert!(reoffer_answer(&acts).is_some_and(|a| a.contains("a=recvonly")));
    let offer = reoffered_agent(&acts).unwrap_or_default();
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(
        offer.contains("m=audio 31000 RTP/AVP 0"),
        "our agent-side port: {offer}"
    );
    // The caller holds by itself: no music of ours, the agent is not held.
    assert!(!acts.contains(&CallAction::HoldCaller));
    assert!(!acts.contains(&CallAction::HoldMusic(true)));
    // The caller resumes before the phone answered: told once it has.
    let acts = caller_reoffer(&mut h, 2, "sendrecv");
    assert!(reoffered_agent(&acts).is_none(), "one re-INVITE at a time");
    let phone =
        String::from_utf8_lossy(&answer_sdp(42000)).replace("\r\nm=", "\r\na=recvonly\r\nm=");
    let acts = h.ev(CallEvent::AgentReofferAnswered {
        leg: leg(0),
        answer: Ok(phone.into_bytes()),
    });
    let offer = reoffered_agent(&acts).unwrap_or_default();
    assert!(offer.contains("a=sendrecv"), "{offer}");
    // Answered: nothing more to tell.
    let acts = h.ev(CallEvent::AgentReofferAnswered {
        leg: leg(0),
        answer: Ok(answer_sdp(42000)),
    });
    assert!(reoffered_agent(&acts).is_none());
    assert_eq!(h.state(), CallState::OnCall);
}

#[test]
fn an_offer_from_the_agents_phone_while_our_reinvite_waits_is_glare_491() {
    let mut h = H::bridged();
    caller_reoffer(&mut h, 1, "sendonly");
    let acts = agent_reoffer(&mut h, 2, agent_offer("a=sendonly\r\n", "127.0.0.1"));
    assert_eq!(
        acts,
        vec![CallAction::ReplyReoffer {
            req: ReqId(2),
            answer: Err(491)
        }]
    );
    // Our re-INVITE answered (or failed): the phone's retry is taken.
    h.ev(CallEvent::AgentReofferAnswered {
        leg: leg(0),
        answer: Err(408),
    });
    let acts = agent_reoffer(&mut h, 3, agent_offer("a=sendonly\r\n", "127.0.0.1"));
    assert!(reoffer_answer(&acts).is_some_and(|a| a.contains("a=recvonly")));
    assert!(acts.contains(&CallAction::HoldCaller));
}

#[test]
fn a_refresh_from_the_caller_tells_the_agents_phone_nothing() {
    let mut h = H::bridged();
    let acts = caller_reoffer(&mut h, 1, "sendrecv");
    assert!(reoffer_answer(&acts).is_some());
    assert!(reoffered_agent(&acts).is_none());
}

#[test]
fn a_phone_that_holds_and_sends_nothing_meanwhile_is_not_hung_up_for_it() {
    // The agent's phone holds with a=inactive: no RTP is expected from it.
    let mut h = H::bridged();
    agent_reoffer(&mut h, 1, agent_offer("a=inactive\r\n", "127.0.0.1"));
    assert!(h.ev(CallEvent::AgentRtpTimeout).is_empty());
    assert_eq!(h.state(), CallState::OnCall);
    // Resumed, silence is a dead phone again: the caller is requeued.
    agent_reoffer(&mut h, 2, agent_offer("a=sendrecv\r\n", "127.0.0.1"));
    let acts = h.ev(CallEvent::AgentRtpTimeout);
    assert_eq!(acd(&acts), vec![AcdRequest::AgentLost]);
    assert_eq!(h.state(), CallState::Queued);
    // The caller's phone likewise.
    let mut h = H::bridged();
    caller_reoffer(&mut h, 1, "inactive");
    assert!(h.ev(CallEvent::CallerRtpTimeout).is_empty());
    caller_reoffer(&mut h, 2, "sendrecv");
    h.ev(CallEvent::CallerRtpTimeout);
    assert_eq!(h.finished(), Some(CallOutcome::Timeout));
}

// ------------------------------------------------------------ transfer

#[test]
fn a_refer_keeps_the_bridge_until_the_acd_takes_the_transfer() {
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(9),
        target: "hardware".into(),
        replaces: None,
    });
    assert!(acts.contains(&CallAction::ReplyRefer {
        req: ReqId(9),
        status: 202
    }));
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::Transfer {
            to: TransferTarget::Queue("hardware".into())
        }]
    );
    assert!(!acts
        .iter()
        .any(|a| matches!(a, CallAction::TransferDone { .. } | CallAction::Unbridge)));
    assert_eq!(h.state(), CallState::Transferring);
    let acts = h.news(QueueNews::Transferred);
    assert!(acts.contains(&CallAction::TransferDone { leg: leg(0) }));
    assert!(acts.contains(&CallAction::Unbridge));
    assert_eq!(played(&acts), ["transferring"]);
    assert!(acts.contains(&CallAction::HoldMusic(true)));
    assert_eq!(h.core.view().queue, Some("hardware"));
    assert_eq!(h.state(), CallState::Queued);
}

#[test]
fn a_refused_refer_keeps_the_caller_with_the_agent_who_hears_it_failed() {
    let mut h = H::bridged();
    h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(9),
        target: "carmen".into(),
        replaces: None,
    });
    let acts = h.news(QueueNews::TransferRejected {
        reason: "agent logged out",
    });
    assert!(acts.contains(&CallAction::TransferFailed {
        leg: leg(0),
        status: 480
    }));
    assert!(acts.iter().any(|a| matches!(a,
        CallAction::PlayToAgent { prompts, .. } if prompts == &["transfer_failed"])));
    assert!(acts.contains(&CallAction::Count(CallCount::Transfer {
        how: TransferHow::Refer,
        to_agent: true,
        result: TransferResult::Refused
    })));
    assert!(!acts.iter().any(|a| matches!(
        a,
        CallAction::HangUpAgent { .. } | CallAction::HangUpCaller | CallAction::Unbridge
    )));
    assert_eq!(h.state(), CallState::OnCall);
    // The prompt over, the two hear each other again.
    let t = acts.iter().find_map(|a| match a {
        CallAction::PlayToAgent { token, .. } => Some(*token),
        _ => None,
    });
    let acts = h.ev(CallEvent::AgentPlaybackFinished {
        token: t.unwrap_or_default(),
    });
    assert_eq!(acts, vec![CallAction::ResumeBridge]);
}

#[test]
fn a_transfer_to_the_same_agent_is_notified_403() {
    let mut h = H::bridged();
    h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(9),
        target: "ana".into(),
        replaces: None,
    });
    let acts = h.news(QueueNews::TransferRejected {
        reason: "same agent",
    });
    assert!(acts.contains(&CallAction::TransferFailed {
        leg: leg(0),
        status: 403
    }));
}

#[test]
fn a_refer_to_an_unknown_target_is_refused_404_without_asking_the_acd() {
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(9),
        target: "nowhere".into(),
        replaces: None,
    });
    assert_eq!(
        acts,
        vec![CallAction::ReplyRefer {
            req: ReqId(9),
            status: 404
        }]
    );
}

#[test]
fn the_phone_hanging_up_after_its_refer_does_not_end_the_transfer() {
    let mut h = H::bridged();
    h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(9),
        target: "hardware".into(),
        replaces: None,
    });
    assert!(h.ev(CallEvent::AgentEnded { leg: leg(0) }).is_empty());
    let acts = h.news(QueueNews::Transferred);
    assert!(!acts
        .iter()
        .any(|a| matches!(a, CallAction::TransferDone { .. })));
    assert_eq!(played(&acts), ["transferring"]);
    assert_eq!(h.finished(), None);
}

#[test]
fn a_refused_transfer_after_the_phone_hung_up_ends_the_call() {
    let mut h = H::bridged();
    h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(9),
        target: "carmen".into(),
        replaces: None,
    });
    h.ev(CallEvent::AgentEnded { leg: leg(0) });
    let acts = h.news(QueueNews::TransferRejected {
        reason: "agent logged out",
    });
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(h.finished(), Some(CallOutcome::AgentHangup));
}

#[test]
fn the_keypad_code_transfers_once_the_acd_confirms_and_its_keys_never_reach_the_caller() {
    let mut h = H::bridged();
    let mut acts = Vec::new();
    for k in "##202#".chars() {
        acts.extend(h.agent_key(k));
    }
    assert!(!acts
        .iter()
        .any(|a| matches!(a, CallAction::SendDigitToCaller(_))));
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::Transfer {
            to: TransferTarget::Queue("hardware".into())
        }]
    );
    let acts = h.news(QueueNews::Transferred);
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert!(acts.contains(&CallAction::Count(CallCount::KeypadTransfer(
        KeypadResult::Transferred
    ))));
}

#[test]
fn an_unknown_keypad_target_keeps_the_call_and_tells_the_agent() {
    let mut h = H::bridged();
    let mut acts = Vec::new();
    for k in "##999#".chars() {
        acts.extend(h.agent_key(k));
    }
    assert!(acd(&acts).is_empty());
    assert!(acts.contains(&CallAction::Count(CallCount::KeypadTransfer(
        KeypadResult::UnknownTarget
    ))));
    assert!(acts
        .iter()
        .any(|a| matches!(a, CallAction::PlayToAgent { .. })));
    assert_eq!(h.state(), CallState::OnCall);
}

#[test]
fn a_held_prefix_key_passes_on_after_the_pause() {
    let mut h = H::bridged();
    assert!(!h
        .agent_key('#')
        .iter()
        .any(|a| matches!(a, CallAction::SendDigitToCaller(_))));
    assert_eq!(
        h.core.poll_timeout(),
        Some(h.now + crate::call::keypad::PREFIX_PAUSE)
    );
    let acts = h.at_ms(1500);
    assert_eq!(acts, vec![CallAction::SendDigitToCaller('#')]);
}

// ------------------------------------------------------------ callback

#[test]
fn nine_while_queued_is_confirmed_only_once_the_acd_holds_the_callback() {
    let mut h = H::queued("soporte");
    let acts = h.key('9');
    assert!(
        matches!(acd(&acts).as_slice(), [AcdRequest::RequestCallback { queue, .. }] if queue == "software")
    );
    assert!(played(&acts).is_empty(), "nothing promised yet");
    let acts = h.news(QueueNews::CallbackHeld);
    assert_eq!(played(&acts), ["callback_confirm", "goodbye"]);
    let acts = h.ev(CallEvent::CallerPlaybackFinished {
        token: token(&acts).unwrap_or_default(),
    });
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(acd(&acts), vec![AcdRequest::CallerGone]);
    assert_eq!(h.finished(), Some(CallOutcome::IvrHangup));
}

#[test]
fn nine_while_the_offer_rings_asks_for_the_callback_and_the_acd_withdraws_the_offer() {
    let mut h = H::ringing(1);
    let acts = h.key('9');
    assert!(matches!(
        acd(&acts).as_slice(),
        [AcdRequest::RequestCallback { .. }]
    ));
    // The phone answers before the ACD has seen the request: held.
    let acts = h.ev(CallEvent::AgentAnswered {
        leg: leg(0),
        sdp: answer_sdp(42000),
    });
    assert!(acts.is_empty());
    let acts = h.news(QueueNews::CancelOffer {
        agent: "ana".into(),
    });
    assert_eq!(acts, vec![CallAction::HangUpAgent { leg: leg(0) }]);
    let acts = h.news(QueueNews::CallbackHeld);
    assert_eq!(played(&acts), ["callback_confirm", "goodbye"]);
}

#[test]
fn a_refused_callback_bridges_the_agent_who_answered_meanwhile() {
    let mut h = H::ringing(1);
    h.key('9');
    h.ev(CallEvent::AgentAnswered {
        leg: leg(0),
        sdp: answer_sdp(42000),
    });
    let acts = h.news(QueueNews::CallbackRefused);
    assert!(acts
        .iter()
        .any(|a| matches!(a, CallAction::BridgeAgent { .. })));
}

#[test]
fn an_offer_that_comes_after_the_callback_request_is_not_rung() {
    let mut h = H::queued("soporte");
    h.key('9');
    let acts = h.news(QueueNews::Offer {
        agent: "ana".into(),
        targets: vec![target(0)],
        ticket: None,
    });
    assert!(
        acts.is_empty(),
        "the ACD withdraws it when it takes the request"
    );
}

#[test]
fn the_ivr_callback_option_asks_the_acd_to_call_back_where_the_call_came_from() {
    let mut h = H::new(arrival("soporte"));
    h.key('1');
    let acts = h.key('9');
    let req = acd(&acts);
    assert!(matches!(req.as_slice(),
        [AcdRequest::RequestCallback { queue, target, .. }]
            if queue == "general" && target.contact == "sip:5550101@127.0.0.1:5090"));
}

// ------------------------------------------------------------ shutdown

#[test]
fn shutdown_refuses_an_unanswered_call_503_and_hangs_up_a_bridged_one() {
    let mut a = arrival("*11");
    a.agent = Some("ana".into());
    let mut h = H::new(a);
    assert_eq!(
        h.ev(CallEvent::Shutdown).first(),
        Some(&CallAction::Reject { status: 503 })
    );
    let mut h = H::bridged();
    let acts = h.ev(CallEvent::Shutdown);
    assert!(acts.contains(&CallAction::HangUpAgent { leg: leg(0) }));
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(h.finished(), Some(CallOutcome::Shutdown));
}

#[test]
fn the_live_view_follows_the_call() {
    let mut h = H::ringing(1);
    let v = h.core.view();
    assert_eq!(
        (v.state, v.queue, v.agent),
        (CallState::Ringing, Some("software"), Some("ana"))
    );
    h.ev(CallEvent::AgentAnswered {
        leg: leg(0),
        sdp: answer_sdp(42000),
    });
    h.ev(CallEvent::AgentBridged {
        leg: leg(0),
        local: agent_local(),
    });
    assert_eq!(h.core.view().state, CallState::OnCall);
    assert_eq!(h.core.view().language, "es");
}

#[test]
fn a_typed_ticket_number_goes_with_the_caller_into_the_follow_up_queue() {
    let mut h = H::new(arrival("soporte"));
    h.key('1');
    h.key('4');
    let mut acts = Vec::new();
    for k in "123456#".chars() {
        acts.extend(h.key(k));
    }
    assert_eq!(
        acd(&acts),
        vec![AcdRequest::Enqueue {
            queue: "seguimiento".into(),
            priority: 5,
            ticket: Some("123456".into())
        }]
    );
    let v = h.core.view();
    assert_eq!(
        v.fields.and_then(|f| f.get("ticket")).map(String::as_str),
        Some("123456")
    );
}

#[test]
fn a_caller_who_sends_no_audio_is_hung_up() {
    let mut h = H::new(arrival("soporte"));
    let acts = h.ev(CallEvent::CallerRtpTimeout);
    assert!(acts.contains(&CallAction::HangUpCaller));
    assert_eq!(h.finished(), Some(CallOutcome::Timeout));
}

#[test]
fn a_pcma_offer_is_answered_in_pcma() {
    let mut a = arrival("soporte");
    a.offer = Some(
        OFFER
            .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
            .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
            .into_bytes(),
    );
    let h = H::new(a);
    assert!(
        matches!(h.log.first(), Some(CallAction::Answer { sdp }) if sdp.contains("m=audio 30000 RTP/AVP 8 101"))
    );
}

#[test]
fn the_keypad_hold_code_holds_and_resumes_the_caller() {
    let mut h = H::bridged();
    let mut acts = Vec::new();
    for k in "##0#".chars() {
        acts.extend(h.agent_key(k));
    }
    assert!(acts.contains(&CallAction::HoldCaller));
    assert!(acts.contains(&CallAction::HoldMusic(true)));
    assert!(acd(&acts).is_empty(), "not a transfer");
    let mut acts = Vec::new();
    for k in "##0#".chars() {
        acts.extend(h.agent_key(k));
    }
    assert!(acts.contains(&CallAction::ResumeCaller));
    assert_eq!(h.core.hold_stats().count, 1);
}

mod consult;
mod ticket;
