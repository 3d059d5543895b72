//! The call's ticket on a fake clock: opened before the call is answered,
//! every step recorded before it is shown, the end recorded with its
//! outcome, none for feature codes, 503 when no ticket can be opened.

use super::*;
use crate::tickets::{CallOutcome as Ended, TicketNumber};

/// Where in the log the first action matching `pred` is.
fn index_of(h: &H, pred: impl Fn(&CallAction) -> bool) -> usize {
    h.log.iter().position(pred).unwrap_or(usize::MAX)
}

/// Where the first record whose entry contains `words` came.
fn recorded_at(h: &H, words: &str) -> usize {
    h.records
        .iter()
        .find(|(_, r)| matches!(r, Record::Change { entry, .. } if entry.contains(words)))
        .map_or(usize::MAX, |(i, _)| *i)
}

fn ended(h: &H) -> Option<(Ended, String)> {
    h.records.iter().rev().find_map(|(_, r)| match r {
        Record::Change { change, .. } => change.ended.clone(),
        _ => None,
    })
}

#[test]
fn a_support_call_opens_its_ticket_before_it_is_answered() {
    let h = H::new(arrival("soporte"));
    assert!(matches!(h.records.first(), Some((0, Record::Open { language })) if language == "es"));
    assert!(matches!(h.log.first(), Some(CallAction::Answer { .. })));
    assert_eq!(h.core.ticket(), Some(TicketNumber::FIRST));
    // A feature code is not a support call: no ticket.
    let mut a = arrival("*11");
    a.agent = Some("ana".into());
    a.holds_line = false;
    let mut h = H::new(a);
    h.news_feature();
    assert!(h.records.is_empty(), "{:?}", h.records);
}

#[test]
fn no_ticket_no_call_503() {
    let start = Instant::now();
    let mut core = CallCore::new(start, settings(), arrival("soporte"));
    assert!(matches!(
        core.poll_action(),
        Some(CallAction::Record(Record::Open { .. }))
    ));
    core.handle_event(start, CallEvent::TicketFailed);
    let acts: Vec<CallAction> = std::iter::from_fn(|| core.poll_action()).collect();
    assert!(acts.contains(&CallAction::Reject { status: 503 }));
    assert!(!acts.iter().any(|a| matches!(a, CallAction::Answer { .. })));
}

#[test]
fn every_step_is_recorded_before_it_is_shown_and_the_end_says_how() {
    let mut h = H::bridged();
    let entries = h.entries();
    for words in [
        "Entered menu idioma",
        "Pressed 1 in menu idioma",
        "Language chosen: es",
        "Queued in software with priority 5",
        "Offered to ana (1 phone(s) ringing)",
        "Answered by ana",
    ] {
        assert!(
            entries.iter().any(|e| e.contains(words)),
            "{words} not in {entries:?}"
        );
    }
    assert!(
        recorded_at(&h, "Queued in")
            <= index_of(&h, |a| matches!(
                a,
                CallAction::Acd(AcdRequest::Enqueue { .. })
            )),
        "queued before the ACD hears of it"
    );
    assert!(
        recorded_at(&h, "Offered to")
            <= index_of(&h, |a| matches!(a, CallAction::RingAgent { .. })),
        "offered before the phone rings"
    );
    assert!(
        recorded_at(&h, "Answered by")
            <= index_of(&h, |a| matches!(a, CallAction::BridgeAgent { .. })),
        "answered before the bridge"
    );
    assert!(h.log.iter().any(|a| matches!(a,
        CallAction::RingAgent { ticket, .. } if ticket == "100001")));
    let before = h.log.len();
    h.ev(CallEvent::AgentEnded { leg: leg(0) });
    assert_eq!(ended(&h), Some((Ended::Answered, "agent".into())));
    assert!(
        recorded_at(&h, "The agent hung up") <= before,
        "recorded before the BYE"
    );
}

#[test]
fn a_caller_who_hangs_up_is_recorded_where_it_was() {
    let mut h = H::new(arrival("soporte"));
    h.ev(CallEvent::CallerEnded(LegEnd::CallerBye));
    assert_eq!(ended(&h), Some((Ended::AbandonedIvr, "caller".into())));
    let mut h = H::queued("soporte");
    h.ev(CallEvent::CallerEnded(LegEnd::CallerBye));
    assert_eq!(ended(&h), Some((Ended::AbandonedQueue, "caller".into())));
    assert!(h
        .entries()
        .last()
        .is_some_and(|e| e.contains("while waiting")));
    let mut h = H::bridged();
    h.ev(CallEvent::Shutdown);
    assert_eq!(ended(&h), Some((Ended::Interrupted, "centralita".into())));
}

#[test]
fn an_offer_that_rings_out_and_a_transfer_are_recorded() {
    let mut h = H::ringing(1);
    h.ev(CallEvent::AgentFailed {
        leg: leg(0),
        status: 408,
    });
    assert!(h.entries().iter().any(|e| e.contains("ana did not answer")));
    let mut h = H::bridged();
    h.ev(CallEvent::AgentRefer {
        leg: leg(0),
        req: ReqId(9),
        target: "hardware".into(),
        replaces: None,
    });
    h.news(QueueNews::Transferred);
    assert!(h
        .entries()
        .iter()
        .any(|e| e.contains("Transferred (refer) to queue hardware")));
}
