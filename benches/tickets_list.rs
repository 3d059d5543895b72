//! A page of tickets, as `GET /api/v1/tickets` reads it, with 1,000,000
//! tickets in the store.
//!
//!   cargo bench --bench tickets_list
//!
//! The first run fills a store under `target/bench-tickets-1m/` through
//! the store's own writes (each ticket: its call arrived, queued in one of
//! four queues, offered to and answered by one of twenty agents, ended;
//! every hundredth resolved), which takes a few minutes; later runs reuse
//! it. Then criterion times one page (50 tickets) for the filters a desk
//! uses: none, a status, a queue, an agent, a caller, words in the
//! logbook, overdue, and a page deep down the cursor.

use centralita::metrics::Metrics;
use centralita::tickets::sqlite::{Reader, StoreOptions, Synchronous};
use centralita::tickets::{
    CallChange, CallOutcome, Caller, Millis, NewCall, NewEntry, Section, SqliteStore, TicketFilter,
    TicketNumber, TicketStatus, TicketStore, Write, Written,
};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const TICKETS: u64 = 1_000_000;
const QUEUES: [&str; 4] = ["software", "hardware", "redes", "general"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tickets-1m")
}

async fn one(s: &SqliteStore, i: u64) {
    let call = NewCall {
        sip_call_id: format!("bench-{i}"),
        caller: Caller::from_header(&format!(
            "\"Cliente {i}\" <sip:{}@10.0.0.1>",
            5_550_000 + i % 50_000
        )),
        dialed: "soporte".into(),
        language: "es".into(),
        at: Millis(1_700_000_000_000 + i as i64 * 1000),
    };
    let Ok(Written::Opened(o)) = s
        .write(Write::Open {
            call,
            blocked: false,
        })
        .await
    else {
        panic!("open {i}");
    };
    let agent = format!("agent{}", i % 20);
    let change = CallChange {
        queue: Some((QUEUES[(i % 4) as usize].to_string(), 5)),
        enqueued: true,
        answered_by: Some(agent.clone()),
        ended: Some((CallOutcome::Answered, "caller".into())),
        ..CallChange::default()
    };
    let at = Millis(1_700_000_000_000 + i as i64 * 1000 + 60_000);
    let entry = format!("Answered by {agent}; the caller hung up.");
    s.write(Write::Call {
        call: o.call,
        at,
        change: Box::new(change),
        entry,
    })
    .await
    .expect("change");
    // What the agent wrote (indexed for text search).
    let text = if i % 7 == 0 {
        format!("La impresora {} no imprime; atasco en la bandeja.", i % 13)
    } else {
        format!("El router {} pierde la conexión cada hora.", i % 11)
    };
    let note = NewEntry {
        at,
        author: format!("agent:{agent}"),
        call: Some(o.call),
        section: Section::Understanding,
        text,
    };
    s.write(Write::Append {
        ticket: o.ticket,
        entry: note,
    })
    .await
    .expect("note");
    if i % 100 == 0 {
        s.write(Write::Update {
            ticket: o.ticket,
            at,
            author: format!("agent:{agent}"),
            status: Some(TicketStatus::Resolved),
            disposition: Some("solved".into()),
        })
        .await
        .expect("resolve");
    }
}

/// Fill the store once (64 writers at a time).
fn fill() -> StoreOptions {
    let mut opts = StoreOptions::in_dir(&dir());
    opts.synchronous = Synchronous::Normal;
    if let Ok(r) = Reader::open(&opts.path) {
        if r.totals().map(|(t, _)| t).unwrap_or(0) >= TICKETS {
            return opts;
        }
    }
    let _ = std::fs::remove_dir_all(dir());
    let store = Arc::new(SqliteStore::open(&opts, Metrics::new().store).expect("store"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    rt.block_on(async {
        let writers = 64;
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let s = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut i = w;
                    while i < TICKETS {
                        one(&s, i).await;
                        i += writers;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("writer");
        }
        store.index_words().await.expect("indexed");
    });
    store.close();
    eprintln!(
        "filled {TICKETS} tickets in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    opts
}

fn bench(c: &mut Criterion) {
    let opts = fill();
    let r = Reader::open(&opts.path).expect("reader");
    let page = |f: TicketFilter| TicketFilter { limit: 50, ..f };
    let cases: Vec<(&str, TicketFilter)> = vec![
        ("newest", page(TicketFilter::default())),
        (
            "status=resolved",
            page(TicketFilter {
                status: Some(TicketStatus::Resolved),
                ..TicketFilter::default()
            }),
        ),
        (
            "queue=redes",
            page(TicketFilter {
                queue: Some("redes".into()),
                ..TicketFilter::default()
            }),
        ),
        (
            "agent=agent7",
            page(TicketFilter {
                agent: Some("agent7".into()),
                ..TicketFilter::default()
            }),
        ),
        (
            "caller",
            page(TicketFilter {
                caller: Some("5550123".into()),
                ..TicketFilter::default()
            }),
        ),
        (
            "text=impresora bandeja",
            page(TicketFilter {
                text: Some("impresora bandeja".into()),
                ..TicketFilter::default()
            }),
        ),
        (
            "overdue",
            page(TicketFilter {
                overdue: true,
                ..TicketFilter::default()
            }),
        ),
        (
            "cursor 500000",
            page(TicketFilter {
                before: Some(TicketNumber(600_001)),
                ..TicketFilter::default()
            }),
        ),
    ];
    let mut g = c.benchmark_group("tickets_list_1m");
    for (name, f) in cases {
        let got = r.list(&f).expect("list");
        assert!(!got.is_empty(), "{name} finds tickets");
        g.bench_function(name, |b| b.iter(|| r.list(&f).expect("list")));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
