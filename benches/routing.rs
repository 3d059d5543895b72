//! Routing decisions with 1,000 agents and 50 skills: the ACD core alone,
//! on a fake clock (it is sans-IO, so this is the decision cost, nothing
//! else).
//!
//!   cargo bench --bench routing
//!
//! First it times 200,000 routing decisions one by one (a caller arrives
//! and is offered to an agent: the event in, the offer out) and prints
//! their percentiles, which criterion's averages do not give; then the
//! criterion benchmarks of the whole cycle.
//!
//! One iteration = a caller arrives in one of 20 queues and is offered to a
//! qualified available agent (the routing decision), the agent answers, the
//! call ends, and the agent's wrap-up passes (the agent is available again).

use centralita::acd::{
    Acd, AcdAction, AcdConfig, AcdEvent, AgentCommand, AgentConfig, CallId, QueueConfig,
};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

fn setup(waiting: usize) -> (Acd, Instant) {
    let mut seed = 42;
    let skills: Vec<String> = (0..50).map(|i| format!("skill{i}")).collect();
    let agents = (0..1000)
        .map(|i| {
            let mut a = AgentConfig::new(format!("agent{i}"), format!("Agent {i}"))
                .wrap_up(Duration::from_secs(5));
            for _ in 0..5 {
                let s = &skills[(lcg(&mut seed) % 50) as usize];
                a = a.skill(s.clone(), 3 + (lcg(&mut seed) % 8) as u8);
            }
            a
        })
        .collect();
    let mut queues: Vec<QueueConfig> = (0..20)
        .map(|q| QueueConfig::new(format!("q{q}")).skill(skills[q * 2].clone(), 3))
        .collect();
    queues.push(QueueConfig::new("unserved").skill("nobody-has-this", 1));
    let mut acd = Acd::new(AcdConfig {
        agents,
        queues,
        ..AcdConfig::default()
    })
    .expect("config");
    let now = Instant::now();
    for i in 0..1000 {
        acd.handle_event(
            now,
            AcdEvent::AgentCommand {
                agent: format!("agent{i}"),
                cmd: AgentCommand::Login,
            },
        );
    }
    while acd.poll_action().is_some() {}
    // Callers already waiting in a queue no agent serves: a long queue the
    // router must not scan on every decision.
    for c in 0..waiting {
        acd.handle_event(
            now,
            AcdEvent::CallArrived {
                call: CallId(1_000_000 + c as u64),
                queue: "unserved".into(),
                priority: 0,
                ticket: None,
            },
        );
    }
    while acd.poll_action().is_some() {}
    (acd, now)
}

fn cycle(acd: &mut Acd, now: &mut Instant, call: &mut u64) {
    cycle_timed(acd, now, call);
}

/// One cycle; how long the routing decision took (arrival to offer).
fn cycle_timed(acd: &mut Acd, now: &mut Instant, call: &mut u64) -> Duration {
    *call += 1;
    let q = format!("q{}", *call % 20);
    let started = Instant::now();
    acd.handle_event(
        *now,
        AcdEvent::CallArrived {
            call: CallId(*call),
            queue: q,
            priority: (*call % 10) as u8,
            ticket: None,
        },
    );
    let mut offered = None;
    while let Some(a) = acd.poll_action() {
        if let AcdAction::Offer { call, agent, .. } = a {
            offered = Some((call, agent));
        }
    }
    let decision = started.elapsed();
    if let Some((c, agent)) = offered {
        acd.handle_event(*now, AcdEvent::AgentAnswered { call: c, agent });
        acd.handle_event(*now, AcdEvent::CallEnded { call: c });
    }
    *now += Duration::from_secs(6);
    acd.handle_timeout(*now);
    while acd.poll_action().is_some() {}
    decision
}

/// Print the percentiles of `n` routing decisions timed one by one.
fn decision_percentiles(label: &str, waiting: usize, n: usize) {
    let (mut acd, mut now) = setup(waiting);
    let mut call = 0u64;
    for _ in 0..10_000 {
        cycle_timed(&mut acd, &mut now, &mut call);
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|_| cycle_timed(&mut acd, &mut now, &mut call))
        .collect();
    times.sort();
    let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)];
    println!(
        "routing decision, {label}: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?} ({n} decisions)",
        at(0.5),
        at(0.99),
        at(0.999),
        times[n - 1]
    );
}

fn routing(c: &mut Criterion) {
    decision_percentiles("1,000 agents, 50 skills", 0, 200_000);
    decision_percentiles("the same, 5,000 callers waiting elsewhere", 5_000, 200_000);
    let (mut acd, mut now) = setup(0);
    let mut call = 0u64;
    c.bench_function(
        "acd: arrive + offer + answer + end + wrap-up (1,000 agents, 50 skills)",
        |b| b.iter(|| cycle(&mut acd, &mut now, &mut call)),
    );
    let (mut acd, mut now) = setup(5_000);
    let mut call = 0u64;
    c.bench_function(
        "acd: the same cycle with 5,000 callers waiting elsewhere",
        |b| b.iter(|| cycle(&mut acd, &mut now, &mut call)),
    );
}

criterion_group!(benches, routing);
criterion_main!(benches);
