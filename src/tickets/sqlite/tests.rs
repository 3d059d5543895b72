//! The SQLite store against a file of its own: tickets, calls, joins,
//! interruptions, group commit, migrations, the append-only triggers and
//! every kind of tampering the chain must show.

use super::*;
use crate::metrics::Metrics;
use crate::tickets::IvrStep;

struct Db {
    dir: PathBuf,
    opts: StoreOptions,
    metrics: Metrics,
}

impl Db {
    fn new(name: &str) -> Db {
        let dir = std::env::temp_dir().join(format!(
            "centralita-store-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Db {
            opts: StoreOptions::in_dir(&dir),
            dir,
            metrics: Metrics::new(),
        }
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.opts, self.metrics.store.clone()).expect("store opens")
    }

    fn reader(&self) -> Reader {
        Reader::open(&self.opts.path).expect("reader")
    }

    fn key(&self) -> ChainKey {
        ChainKey::load_or_create(&self.opts.key_path).expect("key")
    }

    /// A writable connection with the logbook's triggers dropped: what
    /// someone editing the file by hand can do.
    fn tamper(&self, sql: &str) {
        let c = Connection::open(&self.opts.path).expect("open");
        c.execute_batch(
            "DROP TRIGGER IF EXISTS logbook_no_update; DROP TRIGGER IF EXISTS logbook_no_delete;",
        )
        .expect("drop triggers");
        c.execute_batch(sql).expect("tamper");
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_call(user: &str) -> NewCall {
    NewCall {
        sip_call_id: format!("cid-{}", rand::random::<u32>()),
        caller: Caller::from_header(&format!("\"Cliente\" <sip:{user}@10.0.0.5>;tag=1")),
        dialed: "soporte".into(),
        language: "es".into(),
        at: Millis(1_700_000_000_000),
    }
}

async fn open(store: &SqliteStore, user: &str) -> Opened {
    match store
        .write(Write::Open {
            call: new_call(user),
            blocked: false,
        })
        .await
    {
        Ok(Written::Opened(o)) => o,
        other => panic!("open: {other:?}"),
    }
}

async fn change(store: &SqliteStore, call: CallKey, ms: i64, change: CallChange, text: &str) {
    store
        .write(Write::Call {
            call,
            at: Millis(1_700_000_000_000 + ms),
            change: Box::new(change),
            entry: text.into(),
        })
        .await
        .expect("committed");
}

#[tokio::test]
async fn a_call_opens_a_numbered_ticket_and_its_changes_are_kept_with_their_entries() {
    let db = Db::new("basic");
    let store = db.store();
    let first = open(&store, "5550101").await;
    let second = open(&store, "5550102").await;
    assert_eq!(first.ticket, TicketNumber::FIRST);
    assert_eq!(second.ticket, TicketNumber(100_002));
    let c = first.call;
    let step = |menu: &str, key: Option<char>| CallChange {
        phase: Some(CallPhase::Ivr),
        ivr_step: Some((menu.into(), key)),
        ..CallChange::default()
    };
    change(&store, c, 100, step("idioma", None), "Entered menu idioma.").await;
    change(&store, c, 2_000, step("idioma", Some('1')), "Pressed 1.").await;
    let field = CallChange {
        field: Some(("serial \"x\"".into(), "ABC-42".into())),
        ..CallChange::default()
    };
    change(&store, c, 3_000, field, "Collected the serial.").await;
    let queued = CallChange {
        phase: Some(CallPhase::Queue),
        queue: Some(("software".into(), 5)),
        enqueued: true,
        ..CallChange::default()
    };
    change(&store, c, 4_000, queued, "Queued in software.").await;
    let offer = |agent: &str| CallChange {
        phase: Some(CallPhase::Ringing),
        offered: Some(agent.into()),
        ..CallChange::default()
    };
    change(&store, c, 5_000, offer("bruno"), "Offered to bruno.").await;
    let failed = CallChange {
        phase: Some(CallPhase::Queue),
        offer_ended: Some("no_answer".into()),
        ..CallChange::default()
    };
    change(&store, c, 20_000, failed, "bruno did not answer.").await;
    change(&store, c, 21_000, offer("ana"), "Offered to ana.").await;
    let answered = CallChange {
        phase: Some(CallPhase::Talking),
        answered_by: Some("ana".into()),
        ..CallChange::default()
    };
    change(&store, c, 24_000, answered, "Answered by ana.").await;
    let ended = CallChange {
        ended: Some((CallOutcome::Answered, "caller".into())),
        holds: Some((1, 30_000)),
        ..CallChange::default()
    };
    change(&store, c, 84_000, ended, "The caller hung up.").await;

    let t = db
        .reader()
        .show(first.ticket)
        .expect("read")
        .expect("ticket");
    assert_eq!(t.status, TicketStatus::InProgress);
    assert_eq!(t.caller.user, "5550101");
    assert_eq!(t.caller.display.as_deref(), Some("Cliente"));
    assert_eq!(t.category.as_deref(), Some("software"));
    let call = &t.calls[0];
    assert_eq!(call.outcome, Some(CallOutcome::Answered));
    assert_eq!(call.agent.as_deref(), Some("ana"));
    assert_eq!(
        call.ivr_path,
        vec![
            IvrStep {
                menu: "idioma".into(),
                key: None
            },
            IvrStep {
                menu: "idioma".into(),
                key: Some("1".into())
            }
        ]
    );
    assert_eq!(
        call.fields.get("serial \"x\"").map(String::as_str),
        Some("ABC-42")
    );
    assert_eq!(
        call.offers
            .iter()
            .map(|o| (o.agent.as_str(), o.result.as_str()))
            .collect::<Vec<_>>(),
        [("bruno", "no_answer"), ("ana", "answered")]
    );
    assert_eq!(
        (call.wait_ms, call.ring_ms, call.talk_ms),
        (Some(20_000), Some(3_000), Some(60_000))
    );
    assert_eq!((call.holds, call.hold_ms), (Some(1), Some(30_000)));
    assert_eq!(t.logbook.len(), 10, "the arrival and nine changes");
    assert_eq!(
        t.logbook[0].text,
        "Call arrived from Cliente (5550101) to soporte."
    );
    assert!(t
        .logbook
        .iter()
        .all(|e| e.author == "system" && e.section == Section::Event));
    assert_eq!(
        t.logbook.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert!(db.reader().verify(&db.key()).expect("verify").is_empty());
    let m = &db.metrics.store;
    assert_eq!(m.tickets.with_label_values(&["new"]).get(), 2);
    assert_eq!(m.entries.with_label_values(&["event"]).get(), 11);
    assert_eq!(m.tickets_open.get(), 2);
}

#[tokio::test]
async fn a_blocked_call_gets_a_ticket_that_says_so_and_ends_at_once() {
    let db = Db::new("blocked");
    let store = db.store();
    let w = store
        .write(Write::Open {
            call: new_call("5550103"),
            blocked: true,
        })
        .await
        .expect("written");
    let Written::Opened(o) = w else {
        panic!("{w:?}")
    };
    let t = db.reader().show(o.ticket).expect("read").expect("ticket");
    assert_eq!(t.calls[0].outcome, Some(CallOutcome::Blocked));
    assert!(t.logbook[1].text.contains("486"));
    let listed = db.reader().list(&TicketFilter::default()).expect("list");
    assert_eq!(listed[0].last_outcome, Some(CallOutcome::Blocked));
}

#[tokio::test]
async fn typing_an_existing_number_joins_that_ticket_and_reopens_it() {
    let db = Db::new("join");
    let store = db.store();
    let old = open(&store, "5550104").await;
    let resolved = CallChange {
        ended: Some((CallOutcome::Answered, "agent".into())),
        ..CallChange::default()
    };
    change(&store, old.call, 1_000, resolved, "Done.").await;
    Connection::open(&db.opts.path)
        .and_then(|c| c.execute("UPDATE tickets SET status = 'resolved'", []))
        .expect("resolve");
    let new = open(&store, "5550104").await;
    // An unknown number is kept on the call's own ticket.
    let w = store
        .write(Write::Join {
            call: new.call,
            at: Millis(1_700_000_010_000),
            typed: "999999".into(),
        })
        .await
        .expect("written");
    assert_eq!(w, Written::Call { ticket: new.ticket });
    let w = store
        .write(Write::Join {
            call: new.call,
            at: Millis(1_700_000_011_000),
            typed: old.ticket.to_string(),
        })
        .await
        .expect("written");
    assert_eq!(w, Written::Call { ticket: old.ticket });
    let r = db.reader();
    let joined = r.show(old.ticket).expect("read").expect("ticket");
    assert_eq!(joined.status, TicketStatus::Open, "reopened");
    assert_eq!(joined.calls.len(), 2);
    assert!(joined
        .logbook
        .last()
        .is_some_and(|e| e.text.contains("reopened")));
    let left = r.show(new.ticket).expect("read").expect("ticket");
    assert_eq!(left.status, TicketStatus::Closed);
    assert_eq!(left.merged_into, Some(old.ticket));
    assert_eq!(left.typed_number.as_deref(), Some("999999"));
    assert!(left.calls.is_empty(), "the call moved");
    // The call's later changes go to the ticket it joined.
    let ended = CallChange {
        ended: Some((CallOutcome::AbandonedIvr, "caller".into())),
        ..CallChange::default()
    };
    change(
        &store,
        new.call,
        20_000,
        ended,
        "The caller hung up in the menus.",
    )
    .await;
    let joined = db.reader().show(old.ticket).expect("read").expect("ticket");
    assert!(joined
        .logbook
        .last()
        .is_some_and(|e| e.text.contains("menus")));
    assert_eq!(
        db.metrics
            .store
            .tickets
            .with_label_values(&["joined"])
            .get(),
        1
    );
    assert!(db.reader().verify(&db.key()).expect("verify").is_empty());
}

#[tokio::test]
async fn the_callers_other_open_tickets_are_related() {
    let db = Db::new("related");
    let store = db.store();
    let a = open(&store, "5550105").await;
    let _other = open(&store, "5550199").await;
    let b = open(&store, "5550105").await;
    let t = db.reader().show(b.ticket).expect("read").expect("ticket");
    assert_eq!(t.related, vec![a.ticket]);
    let filter = TicketFilter {
        caller: Some("5550105".into()),
        ..TicketFilter::default()
    };
    let listed = db.reader().list(&filter).expect("list");
    assert_eq!(
        listed.iter().map(|t| t.number).collect::<Vec<_>>(),
        vec![b.ticket, a.ticket]
    );
}

#[tokio::test]
async fn calls_left_up_by_a_stop_are_closed_interrupted_saying_where_they_were() {
    let db = Db::new("interrupt");
    let store = db.store();
    let a = open(&store, "5550106").await;
    let b = open(&store, "5550107").await;
    let talking = CallChange {
        phase: Some(CallPhase::Talking),
        answered_by: Some("ana".into()),
        ..CallChange::default()
    };
    change(&store, b.call, 1_000, talking, "Answered by ana.").await;
    let touched = store
        .interrupt_unfinished(Millis(1_700_000_100_000))
        .await
        .expect("interrupted");
    assert_eq!(touched, vec![a.ticket, b.ticket]);
    let r = db.reader();
    let t = r.show(b.ticket).expect("read").expect("ticket");
    assert_eq!(t.calls[0].outcome, Some(CallOutcome::Interrupted));
    assert!(t
        .logbook
        .last()
        .is_some_and(|e| e.text.contains("talking with an agent")));
    // Nothing left to interrupt.
    let again = store
        .interrupt_unfinished(Millis(1_700_000_200_000))
        .await
        .expect("none");
    assert!(again.is_empty());
}

#[tokio::test]
async fn concurrent_writes_are_committed_together_and_all_answered() {
    let db = Db::new("group");
    let store = Arc::new(db.store());
    let o = open(&store, "5550108").await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            s.write(Write::Append {
                ticket: o.ticket,
                entry: NewEntry {
                    at: Millis(1_700_000_000_000 + i),
                    author: "agent:ana".into(),
                    call: None,
                    section: Section::Execution,
                    text: format!("note {i}"),
                },
            })
            .await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(Written::Appended { seq }) => seqs.push(seq),
            other => panic!("{other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (2..=201).collect::<Vec<_>>(),
        "each its own place in the chain"
    );
    let batches = db.metrics.store.batch_entries.get_sample_count();
    assert!(batches < 201, "grouped: {batches} commits for 201 writes");
    assert!(db.reader().verify(&db.key()).expect("verify").is_empty());
    // A write to a ticket that does not exist fails alone.
    let bad = store
        .write(Write::Append {
            ticket: TicketNumber(999_999),
            entry: NewEntry {
                at: Millis(1),
                author: "system".into(),
                call: None,
                section: Section::Event,
                text: "x".into(),
            },
        })
        .await;
    assert!(matches!(bad, Err(StoreError::NoTicket(_))));
}

#[tokio::test]
async fn the_logbook_refuses_update_and_delete() {
    let db = Db::new("triggers");
    let store = db.store();
    open(&store, "5550109").await;
    let c = Connection::open(&db.opts.path).expect("open");
    let up = c.execute("UPDATE logbook SET text = 'nothing happened'", []);
    assert!(up.is_err_and(|e| e.to_string().contains("append-only")));
    let del = c.execute("DELETE FROM logbook", []);
    assert!(del.is_err_and(|e| e.to_string().contains("append-only")));
}

/// Four entries on ticket 100001, then `sql` run with the triggers dropped:
/// what verify says.
async fn tampered(sql: &str) -> Vec<Tampered> {
    let db = Db::new("tamper");
    let store = db.store();
    let o = open(&store, "5550110").await;
    for (i, t) in ["one", "two", "three"].iter().enumerate() {
        change(&store, o.call, i as i64 * 1000, CallChange::default(), t).await;
    }
    open(&store, "5550111").await;
    store.close();
    assert!(db.reader().verify(&db.key()).expect("verify").is_empty());
    db.tamper(sql);
    db.reader().verify(&db.key()).expect("verify")
}

#[tokio::test]
async fn every_kind_of_tampering_names_the_ticket() {
    let cases = [
        (
            "UPDATE logbook SET text = 'two (corrected)' WHERE ticket = 100001 AND seq = 3",
            "edited",
        ),
        (
            "DELETE FROM logbook WHERE ticket = 100001 AND seq = 2",
            "missing",
        ),
        (
            "INSERT INTO logbook SELECT ticket, 5, at, author, call, section, 'later', mac
             FROM logbook WHERE ticket = 100001 AND seq = 4",
            "inserted",
        ),
        (
            "UPDATE logbook SET text = CASE seq WHEN 2 THEN 'two' WHEN 3 THEN 'one' END
             WHERE ticket = 100001 AND seq IN (2, 3)",
            "edited",
        ),
        (
            "DELETE FROM logbook WHERE ticket = 100001 AND seq = 4",
            "cut short",
        ),
        (
            // Cut short, and the row rewritten to match: its MAC gives it away.
            "DELETE FROM logbook WHERE ticket = 100001 AND seq = 4;
             UPDATE tickets SET entries = 3,
                 last_mac = (SELECT mac FROM logbook WHERE ticket = 100001 AND seq = 3)
             WHERE number = 100001",
            "rewritten",
        ),
    ];
    for (sql, word) in cases {
        let bad = tampered(sql).await;
        assert_eq!(bad.len(), 1, "{sql}: {bad:?}");
        assert_eq!(bad[0].ticket, TicketNumber(100_001), "{sql}");
        assert!(bad[0].problem.contains(word), "{sql}: {}", bad[0].problem);
    }
}

#[test]
fn migrations_run_from_an_empty_and_from_an_older_schema_and_a_newer_one_refuses() {
    let db = Db::new("migrate");
    std::fs::create_dir_all(&db.dir).expect("dir");
    let mut c = Connection::open(&db.opts.path).expect("open");
    migrate_to(&mut c, 1).expect("version 1");
    c.execute(
        "INSERT INTO tickets (number, caller_uri, caller_user, dialed, language, status, level,
             created_at, updated_at, entries, last_mac, row_mac)
         VALUES (100001, 'sip:a@b', 'a', '100', 'es', 'open', 1, 0, 0, 0, x'00', x'00')",
        [],
    )
    .expect("a ticket at version 1");
    drop(c);
    let store = db.store();
    store.close();
    let c = Connection::open(&db.opts.path).expect("open");
    let versions: Vec<i64> = c
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .expect("versions");
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let kept: i64 = c
        .query_row("SELECT count(*) FROM tickets", [], |r| r.get(0))
        .expect("count");
    assert_eq!(kept, 1, "the data survives the migration");
    c.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)",
        [],
    )
    .expect("from the future");
    drop(c);
    match SqliteStore::open(&db.opts, db.metrics.store.clone()) {
        Err(StoreError::NewerSchema { found: 99, known }) => assert_eq!(known, SCHEMA_VERSION),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema must refuse to start"),
    }
    assert!(matches!(
        Reader::open(&db.opts.path),
        Err(StoreError::NewerSchema { .. })
    ));
}

#[test]
fn an_unwritable_data_dir_is_an_error_naming_the_path() {
    let db = Db::new("unwritable");
    std::fs::create_dir_all(&db.dir).expect("dir");
    let file = db.dir.join("not-a-dir");
    std::fs::write(&file, b"x").expect("file");
    let opts = StoreOptions::in_dir(&file.join("data"));
    match SqliteStore::open(&opts, db.metrics.store.clone()) {
        Err(StoreError::Open { path, .. }) => assert!(path.contains("not-a-dir"), "{path}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("must fail"),
    }
}

#[tokio::test]
async fn escalation_to_level_2_and_an_on_site_visit_are_kept_and_said() {
    let db = Db::new("escalate");
    let store = db.store();
    let o = open(&store, "5550112").await;
    store
        .write(Write::Escalate {
            ticket: o.ticket,
            at: Millis(1_700_000_001_000),
            author: "agent:ana".into(),
            level: crate::tickets::Level::Two,
        })
        .await
        .expect("level 2");
    let visit = crate::tickets::Visit {
        when: "2026-12-07T10:00:00+01:00".into(),
        place: "Calle Mayor 1, Madrid".into(),
        technician: "bruno".into(),
        reason: "the router's power supply".into(),
    };
    store
        .write(Write::Escalate {
            ticket: o.ticket,
            at: Millis(1_700_000_002_000),
            author: "supervisor:sara".into(),
            level: crate::tickets::Level::Three(visit.clone()),
        })
        .await
        .expect("level 3");
    let t = db.reader().show(o.ticket).expect("read").expect("ticket");
    assert_eq!((t.level, t.status), (3, TicketStatus::Escalated));
    assert_eq!(t.visit, Some(visit));
    let last = t.logbook.last().expect("entry");
    assert_eq!(last.author, "supervisor:sara");
    assert!(
        last.text.starts_with("On-site visit booked (level 3)"),
        "{}",
        last.text
    );
    assert!(db.reader().verify(&db.key()).expect("verify").is_empty());
    let missing = store
        .write(Write::Escalate {
            ticket: TicketNumber(999_999),
            at: Millis(1),
            author: "agent:ana".into(),
            level: crate::tickets::Level::Two,
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NoTicket(_))));
}

#[tokio::test]
async fn each_level_and_a_queue_of_its_own_set_the_due_time_and_the_overdue_are_listed() {
    let mut db = Db::new("due");
    db.opts.due = DueTimes {
        levels: [30, 480, 4320],
        queues: [("urgente".to_string(), 15)].into(),
    };
    let store = db.store();
    const T0: i64 = 1_700_000_000_000;
    const MIN: i64 = 60_000;
    let due = |n: TicketNumber| db.reader().show(n).expect("read").expect("ticket").due;
    // Level 1 from the call that opened it.
    let a = open(&store, "5550120").await;
    assert_eq!(due(a.ticket), Some(Millis(T0 + 30 * MIN)));
    // Waiting in a queue of its own: that queue's time, from the arrival.
    let b = open(&store, "5550121").await;
    let queued = CallChange {
        queue: Some(("urgente".into(), 9)),
        ..CallChange::default()
    };
    change(&store, b.call, 5_000, queued, "Queued.").await;
    assert_eq!(due(b.ticket), Some(Millis(T0 + 15 * MIN)));
    // Level 2 from the escalation, level 3 from the visit's booking.
    let at = Millis(T0 + 10 * MIN);
    store
        .write(Write::Escalate {
            ticket: a.ticket,
            at,
            author: "agent:ana".into(),
            level: crate::tickets::Level::Two,
        })
        .await
        .expect("level 2");
    assert_eq!(due(a.ticket), Some(Millis(at.0 + 480 * MIN)));
    let visit = crate::tickets::Visit {
        when: "2026-12-07T10:00:00+01:00".into(),
        place: "Calle Mayor 1".into(),
        technician: "bruno".into(),
        reason: "power supply".into(),
    };
    store
        .write(Write::Escalate {
            ticket: a.ticket,
            at,
            author: "supervisor:sara".into(),
            level: crate::tickets::Level::Three(visit),
        })
        .await
        .expect("level 3");
    assert_eq!(due(a.ticket), Some(Millis(at.0 + 4320 * MIN)));
    // These were due in 2023: every one is overdue but the resolved one.
    Connection::open(&db.opts.path)
        .and_then(|c| {
            c.execute(
                "UPDATE tickets SET status = 'resolved' WHERE number = ?1",
                [b.ticket.0 as i64],
            )
        })
        .expect("resolve");
    let c = open(&store, "5550122").await;
    let overdue = TicketFilter {
        overdue: true,
        ..TicketFilter::default()
    };
    let listed: Vec<_> = db.reader().list(&overdue).expect("list");
    assert_eq!(
        listed.iter().map(|t| t.number).collect::<Vec<_>>(),
        vec![c.ticket, a.ticket]
    );
    assert!(listed.iter().all(|t| t.overdue));
    assert!(
        !db.reader()
            .show(b.ticket)
            .expect("read")
            .expect("ticket")
            .overdue
    );
    // Reopened by a new call (the caller types its number): its level's
    // time again, from then.
    let d = open(&store, "5550121").await;
    let reopen_at = Millis(T0 + 60 * MIN);
    store
        .write(Write::Join {
            call: d.call,
            at: reopen_at,
            typed: b.ticket.to_string(),
        })
        .await
        .expect("joined");
    assert_eq!(due(b.ticket), Some(Millis(reopen_at.0 + 30 * MIN)));
}

#[tokio::test]
async fn the_desk_finds_tickets_by_words_pages_them_and_knows_whose_they_are() {
    let db = Db::new("desk");
    let store = db.store();
    let a = open(&store, "5550130").await;
    let b = open(&store, "5550131").await;
    let c = open(&store, "5550132").await;
    let offered = CallChange {
        offered: Some("ana".into()),
        ..CallChange::default()
    };
    change(&store, b.call, 1_000, offered, "Offered to ana.").await;
    store
        .write(Write::Append {
            ticket: a.ticket,
            entry: NewEntry {
                at: Millis(1_700_000_002_000),
                author: "agent:bruno".into(),
                call: None,
                section: Section::Understanding,
                text: "La impresora no imprime: atasco de papel en la bandeja 2.".into(),
            },
        })
        .await
        .expect("appended");
    let seq = store
        .write(Write::Update {
            ticket: a.ticket,
            at: Millis(1_700_000_003_000),
            author: "agent:bruno".into(),
            status: Some(TicketStatus::Resolved),
            disposition: Some("solved".into()),
        })
        .await
        .expect("updated");
    assert_eq!(seq, Written::Appended { seq: 4 });
    store.index_words().await.expect("indexed");
    let r = db.reader();
    let words = |q: &str| {
        r.list(&TicketFilter {
            text: Some(q.into()),
            ..TicketFilter::default()
        })
        .expect("list")
        .iter()
        .map(|t| t.number)
        .collect::<Vec<_>>()
    };
    assert_eq!(words("impresora atasco"), vec![a.ticket]);
    assert_eq!(
        words("IMPRESORA bandéja"),
        vec![a.ticket],
        "case and accents"
    );
    assert_eq!(words("impres"), vec![a.ticket], "the last word as a prefix");
    assert_eq!(words("5550131"), vec![b.ticket], "the caller's number");
    assert!(words("NEAR(\" OR *").is_empty(), "no operator gets through");
    // Pages: newest first, the cursor continues below.
    let page = |before: Option<TicketNumber>| {
        r.list(&TicketFilter {
            before,
            limit: 2,
            ..TicketFilter::default()
        })
        .expect("list")
        .iter()
        .map(|t| t.number)
        .collect::<Vec<_>>()
    };
    assert_eq!(page(None), vec![c.ticket, b.ticket]);
    assert_eq!(page(Some(b.ticket)), vec![a.ticket]);
    // Ana was offered b only.
    assert!(r.agent_may_see(b.ticket, "ana").expect("read"));
    assert!(!r.agent_may_see(a.ticket, "ana").expect("read"));
    let t = r.show(a.ticket).expect("read").expect("ticket");
    assert_eq!(t.status, TicketStatus::Resolved);
    assert_eq!(t.disposition.as_deref(), Some("solved"));
    let said: Vec<_> = t
        .logbook
        .iter()
        .map(|e| (e.author.as_str(), e.text.as_str()))
        .collect();
    assert!(said.contains(&("agent:bruno", "Status changed to resolved.")));
    assert!(said.contains(&("agent:bruno", "Disposition: solved.")));
    assert_eq!(
        db.metrics.store.tickets_open.get(),
        2,
        "a resolved ticket is not open"
    );
    assert!(r.verify(&db.key()).expect("verify").is_empty());
}
