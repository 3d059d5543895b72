//! Scraping `/metrics` for a large center: 1,000 agents and 50 queues,
//! every series the switchboard keeps filled in (queue gauges, KPI
//! counters and histograms, staffing, per-agent time).
//!
//!   cargo bench --bench scrape
//!
//! First a timed run: the ACD's publishing (a thread setting every queue's
//! gauges through their looked-up handles, as the switchboard does after
//! each event) with and without a scrape running beside it; it prints the
//! publishing's p50/p99/max per round both ways, so a scrape that held
//! the ACD up would show. Then criterion's benchmark of one render.

use centralita::metrics::Metrics;
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const AGENTS: usize = 1_000;
const QUEUES: usize = 50;
const STATES: [&str; 6] = [
    "logged_out",
    "available",
    "offered",
    "on_call",
    "wrap_up",
    "paused",
];

/// The metrics of a center of that size, every series created and moved.
fn center() -> (Metrics, Vec<Vec<prometheus::Gauge>>) {
    let thresholds: Vec<f64> = (0..QUEUES).map(|q| 10.0 + (q % 4) as f64 * 10.0).collect();
    let m = Metrics::with_thresholds(&thresholds);
    let mut handles = Vec::new();
    for q in 0..QUEUES {
        let name = format!("queue{q:02}");
        let l = [name.as_str()];
        m.queue_waiting.with_label_values(&l).set(3);
        m.queue_callbacks_pending.with_label_values(&l).set(1);
        m.queue_answered_window.with_label_values(&l).set(100);
        m.queue_abandoned_window.with_label_values(&l).set(5);
        m.queue_calls.with_label_values(&[&name, "served"]).inc();
        for s in STATES {
            m.queue_agents.with_label_values(&[&name, s]).set(20);
        }
        let k = &m.queue;
        for c in [
            &k.offered,
            &k.answered,
            &k.answered_within,
            &k.abandoned,
            &k.abandoned_within,
            &k.short_abandoned,
        ] {
            c.with_label_values(&l).inc_by(100);
        }
        for (h, v) in [
            (&k.wait, 12.0),
            (&k.abandon_wait, 40.0),
            (&k.talk, 240.0),
            (&k.wrap_up, 30.0),
        ] {
            h.with_label_values(&l).observe(v);
        }
        k.service_level_target.with_label_values(&l).set(0.8);
        k.service_level_threshold.with_label_values(&l).set(20.0);
        k.max_wait.with_label_values(&l).set(600.0);
        let s = &m.staffing;
        let gauges = vec![
            m.queue_longest_wait.with_label_values(&l),
            m.queue_service_level.with_label_values(&l),
            m.queue_handle_time.with_label_values(&l),
            k.average_speed_of_answer.with_label_values(&l),
            s.offered_erlangs.with_label_values(&l),
            s.agents_needed.with_label_values(&l),
            s.agents_short.with_label_values(&l),
            s.expected_service_level.with_label_values(&l),
            s.expected_asa.with_label_values(&l),
        ];
        for g in &gauges {
            g.set(1.0);
        }
        handles.push(gauges);
    }
    for a in 0..AGENTS {
        let id = format!("agent{a:04}");
        m.agent_logged_in_seconds
            .with_label_values(&[&id])
            .inc_by(3600.0);
        m.agent_handling_seconds
            .with_label_values(&[&id])
            .inc_by(2400.0);
    }
    (m, handles)
}

/// The publishing thread's rounds (every queue's gauges set once), timed,
/// for `for_how_long`, with `scraping` renders running beside it or not.
fn publish_rounds(
    m: &Metrics,
    handles: &[Vec<prometheus::Gauge>],
    scraping: bool,
) -> Vec<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = scraping.then(|| {
        let (m, stop) = (m.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                std::hint::black_box(m.render());
                n += 1;
            }
            n
        })
    });
    let mut rounds = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    let mut x = 0.0;
    while Instant::now() < end {
        let t = Instant::now();
        for q in handles {
            for g in q {
                g.set(x);
            }
        }
        rounds.push(t.elapsed());
        x += 1.0;
        std::thread::sleep(Duration::from_micros(200));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = scraper {
        let n = s.join().expect("scraper");
        println!("  ({n} scrapes in 3 s beside it)");
    }
    rounds.sort();
    rounds
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let (m, handles) = center();
    let text = m.render();
    println!(
        "scrape of {AGENTS} agents and {QUEUES} queues: {} series, {} bytes",
        text.lines().filter(|l| !l.starts_with('#')).count(),
        text.len()
    );
    for scraping in [false, true] {
        let r = publish_rounds(&m, &handles, scraping);
        println!(
            "publishing {} gauges per round, {} a scrape: p50 {:?}, p99 {:?}, max {:?} ({} rounds)",
            QUEUES * 9,
            if scraping { "beside" } else { "without" },
            pct(&r, 0.5),
            pct(&r, 0.99),
            r.last().copied().unwrap_or_default(),
            r.len()
        );
    }
    c.bench_function("render /metrics (1,000 agents, 50 queues)", |b| {
        b.iter(|| std::hint::black_box(m.render()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
