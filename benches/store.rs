//! Durable logbook entries per second: the SQLite ticket store with
//! `synchronous = FULL` and the HMAC chain, one writer thread committing in
//! groups, written by 1 and by 64 concurrent callers.
//!
//!   cargo bench --bench store
//!
//! First a timed run per number of writers: each writer appends entries one
//! after another (waiting for each commit, as a call does), ten to a ticket
//! then a new ticket (a call's worth), for a few seconds; it prints
//! entries/s and the percentiles of each entry's wait for its commit. Two
//! kinds of entries: the system's events (what calls write, most of the
//! logbook) and people's notes, which are also indexed for text search.
//! Then criterion's benchmark of one durable append on its own (a commit
//! per entry: the latency floor).

use centralita::metrics::Metrics;
use centralita::tickets::sqlite::{StoreOptions, Synchronous};
use centralita::tickets::{
    Caller, Millis, NewCall, NewEntry, Section, SqliteStore, TicketNumber, TicketStore, Write,
    Written,
};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries a writer appends to a ticket before it opens the next (a
/// call's worth: arrival, menus, queue, offer, answer, notes, end).
const PER_TICKET: u64 = 10;

fn store(name: &str) -> (Arc<SqliteStore>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("centralita-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opts = StoreOptions::in_dir(&dir);
    opts.synchronous = Synchronous::Full;
    let s = SqliteStore::open(&opts, Metrics::new().store).expect("store");
    (Arc::new(s), dir)
}

async fn open_ticket(s: &SqliteStore, i: usize) -> TicketNumber {
    let call = NewCall {
        sip_call_id: format!("bench-{i}"),
        caller: Caller::from_header(&format!("<sip:{i}@10.0.0.1>")),
        dialed: "soporte".into(),
        language: "es".into(),
        at: Millis::now(),
    };
    match s
        .write(Write::Open {
            call,
            blocked: false,
        })
        .await
    {
        Ok(Written::Opened(o)) => o.ticket,
        other => panic!("{other:?}"),
    }
}

fn entry(i: u64) -> NewEntry {
    NewEntry {
        at: Millis::now(),
        author: "agent:ana".into(),
        call: None,
        section: Section::Execution,
        text: format!("Measured the line: 48 V on pair {i}; replaced the splitter."),
    }
}

/// An event the system writes about a call.
fn event(i: u64) -> NewEntry {
    NewEntry {
        at: Millis::now(),
        author: "system".into(),
        call: None,
        section: Section::Event,
        text: format!("Offered to agent{} (1 phone(s) ringing).", i % 20),
    }
}

/// `writers` tasks appending `kind` entries for `secs`: entries/s and
/// commit waits.
fn timed(writers: usize, secs: u64, kind: (&'static str, fn(u64) -> NewEntry)) {
    let (what, make) = kind;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (s, dir) = store(&format!("timed{writers}"));
    let (count, mut waits) = rt.block_on(async {
        let mut tickets = Vec::new();
        for i in 0..writers {
            tickets.push(open_ticket(&s, i).await);
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for t in tickets {
            let s = Arc::clone(&s);
            tasks.push(tokio::spawn(async move {
                let mut waits = Vec::new();
                let mut n = 0u64;
                let mut ticket = t;
                while Instant::now() < deadline {
                    // A call's worth of entries per ticket, then the next
                    // call's ticket (what a contact center writes).
                    if n > 0 && n % PER_TICKET == 0 {
                        ticket = open_ticket(&s, n as usize).await;
                    }
                    let start = Instant::now();
                    let w = s
                        .write(Write::Append {
                            ticket,
                            entry: make(n),
                        })
                        .await;
                    assert!(matches!(w, Ok(Written::Appended { .. })), "{w:?}");
                    waits.push(start.elapsed());
                    n += 1;
                }
                waits
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("writer"));
        }
        (all.len(), all)
    });
    waits.sort_unstable();
    let pct = |p: f64| {
        let i = ((waits.len() as f64 * p) as usize).min(waits.len().saturating_sub(1));
        waits.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "store, synchronous=FULL, {what}, {writers} writer(s), {secs} s: {:.0} entries/s ({count} entries); commit wait p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        count as f64 / secs as f64,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    s.close();
    let _ = std::fs::remove_dir_all(dir);
}

fn bench(c: &mut Criterion) {
    for kind in [
        ("system events", event as fn(u64) -> NewEntry),
        ("people's notes (indexed)", entry),
    ] {
        timed(1, 5, kind);
        timed(64, 5, kind);
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (s, dir) = store("criterion");
    let t = rt.block_on(open_ticket(&s, 0));
    let mut n = 0;
    c.bench_function("store/one durable append (FULL, alone)", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(s.write(Write::Append {
                ticket: t,
                entry: entry(n),
            }))
        })
    });
    s.close();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
