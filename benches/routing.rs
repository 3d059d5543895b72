//! Routing decisions with 1,000 agents and 50 skills: the ACD core alone,
//! on a fake clock (it is sans-IO, so this is the decision cost, nothing
//! else).
//!
//!   cargo bench --bench routing
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
        lines: 100_000,
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
    *call += 1;
    let q = format!("q{}", *call % 20);
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
    if let Some((c, agent)) = offered {
        acd.handle_event(*now, AcdEvent::AgentAnswered { call: c, agent });
        acd.handle_event(*now, AcdEvent::CallEnded { call: c });
    }
    *now += Duration::from_secs(6);
    acd.handle_timeout(*now);
    while acd.poll_action().is_some() {}
}

fn routing(c: &mut Criterion) {
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
