//! Property test: random orders of what can happen to a call (hang-ups,
//! CANCELs, offers, answers, failures, refusals, transfers, keys,
//! timeouts), fed to the core the way its driver would (an action's
//! immediate result straight back). Whatever the order, once the call
//! ends: every agent leg that was placed has ended (hung up by us or gone
//! by itself) and none was hung up twice, the line is released exactly
//! once, the ACD hears the call's end at most once (exactly once when it
//! still held the call), `Finished` is the last action, and nothing
//! follows it, and every hold counted has ended. Consultations (from the
//! keypad or the phone's second call, with the ACD's news about them in any
//! order) are among the events: the agent's consultation call is ended or
//! refused once, and the colleague's legs end with the rest.

use super::core::{CallCore, CallState};
use super::tests::{answer_sdp, arrival, settings, target};
use super::*;
use crate::acd::driver::QueueNews;
use crate::media::dtmf::DigitSource;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Op {
    CallerEnds(u8),
    Shutdown,
    CallerRtpTimeout,
    AgentRtpTimeout,
    Ack,
    Offer {
        contacts: u16,
    },
    CancelOffer,
    Answer(usize),
    Fail(usize, u16),
    AgentEnds(usize),
    BridgeFails,
    Refer(u8),
    Transferred,
    TransferRejected(u8),
    CallerKey(u8),
    AgentKey(u8),
    CallbackHeld,
    CallbackRefused,
    AcdFinished,
    Announce,
    PlayAndHangup,
    PlaybackDone,
    AgentPlaybackDone,
    /// The agent's phone holds (`true`) or resumes with a re-INVITE.
    AgentHold(bool),
    /// The agent types a consultation code (`##7303#`, `##7202#`, `##7#`, `##0#`).
    ConsultKeys(u8),
    /// The agent's phone places its consultation call.
    ConsultCall,
    /// The consultation call ends.
    ConsultEnded,
    /// The ACD's news about the consultation.
    ConsultNews(u8),
    /// The phone's attended transfer (REFER with Replaces naming its
    /// consultation call).
    ReferReplaces(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3u8).prop_map(Op::CallerEnds),
        1 => Just(Op::Shutdown),
        1 => Just(Op::CallerRtpTimeout),
        1 => Just(Op::AgentRtpTimeout),
        1 => Just(Op::Ack),
        4 => (0..3u16).prop_map(|contacts| Op::Offer { contacts }),
        2 => Just(Op::CancelOffer),
        5 => any::<usize>().prop_map(Op::Answer),
        3 => (any::<usize>(), prop_oneof![Just(486u16), Just(408), Just(603), Just(0)])
            .prop_map(|(i, s)| Op::Fail(i, s)),
        2 => any::<usize>().prop_map(Op::AgentEnds),
        1 => Just(Op::BridgeFails),
        3 => (0..4u8).prop_map(Op::Refer),
        2 => Just(Op::Transferred),
        2 => (0..3u8).prop_map(Op::TransferRejected),
        4 => (0..12u8).prop_map(Op::CallerKey),
        4 => (0..12u8).prop_map(Op::AgentKey),
        2 => Just(Op::CallbackHeld),
        1 => Just(Op::CallbackRefused),
        1 => Just(Op::AcdFinished),
        1 => Just(Op::Announce),
        1 => Just(Op::PlayAndHangup),
        3 => Just(Op::PlaybackDone),
        1 => Just(Op::AgentPlaybackDone),
        3 => any::<bool>().prop_map(Op::AgentHold),
        2 => (0..4u8).prop_map(Op::ConsultKeys),
        2 => Just(Op::ConsultCall),
        1 => Just(Op::ConsultEnded),
        5 => (0..7u8).prop_map(Op::ConsultNews),
        2 => any::<usize>().prop_map(Op::ReferReplaces),
        3 => (0..40_000u64).prop_map(Op::Advance),
    ]
}

const KEYS: [char; 12] = ['0', '1', '2', '3', '4', '5', '6', '9', '#', '*', '2', '#'];
const TARGETS: [&str; 4] = ["hardware", "carmen", "202", "nowhere"];
const REASONS: [&str; 3] = ["agent logged out", "same agent", "unknown queue"];

/// The driver's side of the call, as far as the properties need it.
struct World {
    core: CallCore,
    now: Instant,
    /// Legs placed and not yet ended.
    legs: BTreeSet<AgentLegRef>,
    ended: Vec<AgentLegRef>,
    last_offer: Option<u32>,
    pending_contacts: u16,
    bridge_fails: bool,
    token: u64,
    agent_token: u64,
    released: usize,
    gone: usize,
    finished: usize,
    held_by_acd: bool,
    acd_finished: bool,
    after_finish: usize,
    next_req: u64,
    /// Holds started and ended, as counted.
    holds: (usize, usize),
    /// The agent's consultation call was taken and is not over yet.
    consult_leg: bool,
    /// It was ended or refused by us (must be once per call taken).
    consult_leg_closed: usize,
    consult_calls: usize,
}

impl World {
    fn new(dialed: &str) -> Result<World, TestCaseError> {
        let now = Instant::now();
        let mut w = World {
            core: CallCore::new(now, settings(), arrival(dialed)),
            now,
            legs: BTreeSet::new(),
            ended: Vec::new(),
            last_offer: None,
            pending_contacts: 1,
            bridge_fails: false,
            token: 0,
            agent_token: 0,
            released: 0,
            gone: 0,
            finished: 0,
            held_by_acd: false,
            acd_finished: false,
            after_finish: 0,
            next_req: 0,
            holds: (0, 0),
            consult_leg: false,
            consult_leg_closed: 0,
            consult_calls: 0,
        };
        w.drain()?;
        Ok(w)
    }

    fn ev(&mut self, ev: CallEvent) -> Result<(), TestCaseError> {
        self.core.handle_event(self.now, ev);
        self.drain()
    }

    fn leg_end(&mut self, leg: AgentLegRef) -> Result<(), TestCaseError> {
        prop_assert!(
            self.legs.remove(&leg),
            "{leg:?} ended twice or never placed"
        );
        self.ended.push(leg);
        Ok(())
    }

    /// Take the core's actions, answering those the driver answers at once.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        while let Some(a) = self.core.poll_action() {
            if self.finished > 0 {
                self.after_finish += 1;
            }
            match a {
                CallAction::RingAgent { offer, .. } => {
                    self.last_offer = Some(offer);
                    for contact in 0..self.pending_contacts {
                        self.legs.insert(AgentLegRef { offer, contact });
                    }
                    let contacts = self.pending_contacts;
                    self.core
                        .handle_event(self.now, CallEvent::OfferRung { offer, contacts });
                }
                CallAction::Record(Record::Open { .. }) => {
                    let ticket = crate::tickets::TicketNumber::FIRST;
                    self.core
                        .handle_event(self.now, CallEvent::TicketOpened { ticket });
                }
                CallAction::Record(Record::Join { .. }) => {
                    let ev = CallEvent::TicketJoined { ticket: None };
                    self.core.handle_event(self.now, ev);
                }
                CallAction::BridgeAgent { leg, .. } => {
                    let ev = if self.bridge_fails {
                        CallEvent::AgentBridgeFailed { leg }
                    } else {
                        CallEvent::AgentBridged {
                            leg,
                            local: "127.0.0.1:31000".parse().expect("addr"),
                        }
                    };
                    self.core.handle_event(self.now, ev);
                }
                CallAction::HangUpAgent { leg } | CallAction::TransferDone { leg } => {
                    self.leg_end(leg)?;
                }
                CallAction::Consult(ConsultAction::Bridge { leg, .. }) => {
                    let ev = if self.bridge_fails {
                        CallEvent::ColleagueBridgeFailed { leg }
                    } else {
                        CallEvent::ColleagueBridged {
                            leg,
                            local: "127.0.0.1:31002".parse().expect("addr"),
                        }
                    };
                    self.core.handle_event(self.now, ev);
                }
                CallAction::Consult(
                    ConsultAction::Reject { .. }
                    | ConsultAction::HangUp
                    | ConsultAction::TransferDone,
                ) => {
                    self.consult_leg_closed += 1;
                    prop_assert!(
                        std::mem::take(&mut self.consult_leg),
                        "the consultation call was ended twice, or never taken"
                    );
                }
                CallAction::Acd(AcdRequest::Enqueue { .. })
                | CallAction::Acd(AcdRequest::RequestCallback { .. }) => self.held_by_acd = true,
                CallAction::Acd(AcdRequest::CallerGone) => self.gone += 1,
                CallAction::Play { token, .. } => self.token = token,
                CallAction::PlayToAgent { token, .. } => self.agent_token = token,
                CallAction::ReleaseLine => self.released += 1,
                CallAction::Count(CallCount::OnHold(true)) => self.holds.0 += 1,
                CallAction::Count(CallCount::OnHold(false)) => self.holds.1 += 1,
                CallAction::Finished { .. } => self.finished += 1,
                _ => {}
            }
        }
        Ok(())
    }

    fn pick(&self, i: usize) -> Option<AgentLegRef> {
        let v: Vec<_> = self.legs.iter().copied().collect();
        (!v.is_empty()).then(|| v[i % v.len()])
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::CallerEnds(k) => {
                let end = [LegEnd::CallerBye, LegEnd::Cancelled, LegEnd::Timeout][usize::from(k)];
                self.ev(CallEvent::CallerEnded(end))
            }
            Op::Shutdown => self.ev(CallEvent::Shutdown),
            Op::CallerRtpTimeout => self.ev(CallEvent::CallerRtpTimeout),
            Op::AgentRtpTimeout => self.ev(CallEvent::AgentRtpTimeout),
            Op::Ack => self.ev(CallEvent::CallerConfirmed { ack_body: None }),
            Op::Offer { contacts } => {
                self.pending_contacts = contacts;
                let targets = (0..contacts.max(1)).map(target).collect();
                self.ev(CallEvent::Acd(QueueNews::Offer {
                    agent: "ana".into(),
                    targets,
                    ticket: None,
                }))
            }
            Op::CancelOffer => self.ev(CallEvent::Acd(QueueNews::CancelOffer {
                agent: "ana".into(),
            })),
            Op::Answer(i) => match self.pick(i) {
                Some(leg) => self.ev(CallEvent::AgentAnswered {
                    leg,
                    sdp: answer_sdp(42000),
                }),
                None => Ok(()),
            },
            Op::Fail(i, status) => match self.pick(i) {
                Some(leg) => {
                    self.leg_end(leg)?;
                    self.ev(CallEvent::AgentFailed { leg, status })
                }
                None => Ok(()),
            },
            Op::AgentEnds(i) => match self.pick(i) {
                Some(leg) => {
                    self.leg_end(leg)?;
                    self.ev(CallEvent::AgentEnded { leg })
                }
                None => Ok(()),
            },
            Op::BridgeFails => {
                self.bridge_fails = !self.bridge_fails;
                Ok(())
            }
            Op::Refer(t) => match self.pick(0) {
                Some(leg) => {
                    self.next_req += 1;
                    self.ev(CallEvent::AgentRefer {
                        leg,
                        req: ReqId(self.next_req),
                        target: TARGETS[usize::from(t)].into(),
                        replaces: None,
                    })
                }
                None => Ok(()),
            },
            other => self.apply_news(other),
        }
    }

    /// The ACD's news and the playback's end.
    fn apply_news(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::AgentHold(hold) => match self.pick(0) {
                Some(leg) => {
                    self.next_req += 1;
                    let dir = if hold { "sendonly" } else { "sendrecv" };
                    let sdp = format!("v=0\r\no=p 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 42000 RTP/AVP 0\r\na={dir}\r\n");
                    self.ev(CallEvent::AgentReoffer {
                        leg,
                        req: ReqId(self.next_req),
                        sdp: Some(sdp.into_bytes()),
                        invite: true,
                    })
                }
                None => Ok(()),
            },
            Op::Transferred => self.ev(CallEvent::Acd(QueueNews::Transferred)),
            Op::TransferRejected(r) => self.ev(CallEvent::Acd(QueueNews::TransferRejected {
                reason: REASONS[usize::from(r)],
            })),
            Op::CallerKey(k) => self.ev(CallEvent::CallerDigit {
                digit: KEYS[usize::from(k)],
                source: DigitSource::Rfc4733,
            }),
            Op::AgentKey(k) => self.ev(CallEvent::AgentDigit {
                digit: KEYS[usize::from(k)],
                source: DigitSource::Rfc4733,
            }),
            Op::CallbackHeld => self.ev(CallEvent::Acd(QueueNews::CallbackHeld)),
            Op::CallbackRefused => self.ev(CallEvent::Acd(QueueNews::CallbackRefused)),
            Op::AcdFinished => {
                self.acd_finished = true;
                self.ev(CallEvent::Acd(QueueNews::Finished(
                    crate::acd::Outcome::Served,
                )))
            }
            Op::Announce => self.ev(CallEvent::Acd(QueueNews::Announce {
                position: 2,
                ewt_minutes: 1,
            })),
            Op::PlayAndHangup => self.ev(CallEvent::Acd(QueueNews::PlayAndHangup {
                prompt: "closed".into(),
            })),
            Op::PlaybackDone => self.ev(CallEvent::CallerPlaybackFinished { token: self.token }),
            Op::AgentPlaybackDone => self.ev(CallEvent::AgentPlaybackFinished {
                token: self.agent_token,
            }),
            Op::ConsultKeys(k) => {
                let keys = ["##7303#", "##7202#", "##7#", "##0#"][usize::from(k)];
                for digit in keys.chars() {
                    self.ev(CallEvent::AgentDigit {
                        digit,
                        source: DigitSource::Rfc4733,
                    })?;
                }
                Ok(())
            }
            Op::ConsultCall => {
                if self.consult_leg || self.core.is_ended() {
                    // The driver holds one consultation call at a time.
                    return Ok(());
                }
                self.consult_calls += 1;
                self.consult_leg = true;
                self.ev(CallEvent::ConsultCall(ConsultCall {
                    agent: "ana".into(),
                    dialed: "303".into(),
                    offer: Some(
                        String::from_utf8_lossy(&answer_sdp(40010))
                            .into_owned()
                            .into_bytes(),
                    ),
                    local_ip: "127.0.0.1".parse().expect("ip"),
                    rtp_port: Some(30010),
                }))
            }
            Op::ConsultEnded => {
                if !std::mem::take(&mut self.consult_leg) {
                    return Ok(());
                }
                self.consult_leg_closed += 1;
                self.ev(CallEvent::ConsultEnded(LegEnd::CallerBye))
            }
            Op::ConsultNews(k) => {
                use crate::acd::driver::ConsultNews;
                let news = match k {
                    0 => ConsultNews::Queued,
                    1 => ConsultNews::Announce {
                        position: 1,
                        ewt_minutes: 0,
                    },
                    2 | 7 => ConsultNews::Offer {
                        agent: "carmen".into(),
                        targets: (0..self.pending_contacts.max(1)).map(target).collect(),
                    },
                    3 => ConsultNews::CancelOffer {
                        agent: "carmen".into(),
                    },
                    4 => ConsultNews::Rejected {
                        reason: "no answer",
                    },
                    5 | 8 | 9 => ConsultNews::Completed,
                    _ => ConsultNews::CompletionRefused { reason: "x" },
                };
                self.ev(CallEvent::Acd(QueueNews::Consult(news)))
            }
            Op::ReferReplaces(i) => match self.pick(i) {
                Some(leg) => {
                    self.next_req += 1;
                    self.ev(CallEvent::AgentRefer {
                        leg,
                        req: ReqId(self.next_req),
                        target: "303".into(),
                        replaces: Some(Replaced::ConsultLeg),
                    })
                }
                None => Ok(()),
            },
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                self.core.handle_timeout(self.now);
                self.drain()
            }
            _ => Ok(()),
        }
    }
}

/// What happens around a consultation, weighted towards it.
fn consult_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::AgentRtpTimeout),
        4 => (0..3u16).prop_map(|contacts| Op::Offer { contacts }),
        8 => any::<usize>().prop_map(Op::Answer),
        2 => (any::<usize>(), prop_oneof![Just(486u16), Just(408), Just(0)])
            .prop_map(|(i, s)| Op::Fail(i, s)),
        2 => any::<usize>().prop_map(Op::AgentEnds),
        1 => Just(Op::BridgeFails),
        1 => (0..4u8).prop_map(Op::Refer),
        3 => (0..12u8).prop_map(Op::AgentKey),
        1 => Just(Op::AgentPlaybackDone),
        2 => any::<bool>().prop_map(Op::AgentHold),
        4 => (0..4u8).prop_map(Op::ConsultKeys),
        3 => Just(Op::ConsultCall),
        1 => Just(Op::ConsultEnded),
        8 => (0..10u8).prop_map(Op::ConsultNews),
        3 => any::<usize>().prop_map(Op::ReferReplaces),
        1 => (0..4_000u64).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn consultations_in_any_order_end_with_every_leg_and_the_acd_told(
        ops in prop::collection::vec(consult_op(), 0..60),
    ) {
        // A caller bridged with Ana first.
        let mut w = World::new("201")?;
        for op in [Op::Ack, Op::Offer { contacts: 1 }, Op::Answer(0)] {
            w.apply(op)?;
        }
        prop_assert!(matches!(w.core.view().state, CallState::OnCall));
        for op in ops {
            w.apply(op)?;
        }
        w.apply(Op::CallerEnds(0))?;
        prop_assert!(w.core.is_ended());
        prop_assert_eq!(w.finished, 1);
        prop_assert_eq!(w.after_finish, 0, "actions after Finished");
        prop_assert_eq!(w.released, 1);
        prop_assert!(w.legs.is_empty(), "legs never ended: {:?}", w.legs);
        prop_assert_eq!(w.holds.0, w.holds.1, "every hold counted ends");
        prop_assert!(!w.consult_leg, "the consultation call outlived the call");
        prop_assert_eq!(w.consult_leg_closed, w.consult_calls);
        prop_assert_eq!(w.gone, 1, "the ACD hears the call's end once");
    }

    #[test]
    fn every_leg_ends_and_the_line_and_the_acd_hear_the_end_once(
        dialed in prop_oneof![Just("soporte"), Just("201"), Just("999")],
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut w = World::new(dialed)?;
        for op in ops {
            w.apply(op)?;
        }
        // Whatever was left, the caller hangs up in the end.
        w.apply(Op::CallerEnds(0))?;
        for op in [Op::Answer(0), Op::Transferred, Op::PlaybackDone] {
            w.apply(op)?;
        }
        prop_assert!(w.core.is_ended());
        prop_assert_eq!(w.finished, 1);
        prop_assert_eq!(w.after_finish, 0, "actions after Finished");
        prop_assert_eq!(w.released, 1, "the line is released exactly once");
        prop_assert!(w.legs.is_empty(), "legs never ended: {:?}", w.legs);
        prop_assert!(w.gone <= 1);
        prop_assert_eq!(w.holds.0, w.holds.1, "every hold counted ends");
        prop_assert!(!w.consult_leg, "the consultation call outlived the call");
        prop_assert_eq!(w.consult_leg_closed, w.consult_calls);
        if w.held_by_acd && !w.acd_finished {
            prop_assert_eq!(w.gone, 1, "the ACD must hear the call's end");
        }
        if !w.held_by_acd {
            prop_assert_eq!(w.gone, 0);
        }
    }
}
