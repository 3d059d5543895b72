//! Agent selection. Owns the five [`Strategy`] rules: given a queue's list of
//! agents qualified at the call's widening level, pick the Available one(s).
//! One pass over that list (O(qualified agents)), no allocation except for
//! RingAll. Sans-IO and pure. Ties are broken by configuration order.

use std::cmp::Reverse;

use super::agent::{Agent, AgentState};
use super::config::Strategy;

/// Pick agent index(es) for a call. `qualified` is sorted by agent index;
/// `reqs` are the queue's (skill id, min) pairs; `rr_last` the last agent
/// picked by RoundRobin in this queue. Empty result = nobody available.
pub(crate) fn pick(
    strategy: Strategy,
    qualified: &[usize],
    agents: &[Agent],
    reqs: &[(usize, u8)],
    rr_last: Option<usize>,
) -> Vec<usize> {
    let available = || {
        qualified.iter().copied().filter(|&i| {
            agents
                .get(i)
                .is_some_and(|a| a.state == AgentState::Available)
        })
    };
    let idle = |i: usize| agents.get(i).and_then(|a| a.idle_since);
    let one = |o: Option<usize>| o.into_iter().collect();
    match strategy {
        Strategy::LongestIdle => one(available().min_by_key(|&i| (idle(i), i))),
        Strategy::BestSkill => one(available().min_by_key(|&i| {
            let score: u32 = agents.get(i).map_or(0, |a| {
                reqs.iter()
                    .map(|&(s, _)| u32::from(a.skills.get(s).copied().unwrap_or(0)))
                    .sum()
            });
            (Reverse(score), idle(i), i)
        })),
        Strategy::FewestCalls => one(available().min_by_key(|&i| {
            (
                agents.get(i).map_or(u32::MAX, |a| a.calls_since_login),
                idle(i),
                i,
            )
        })),
        Strategy::RoundRobin => {
            let after = available().find(|&i| rr_last.is_none_or(|l| i > l));
            one(after.or_else(|| available().next()))
        }
        Strategy::RingAll => available().collect(),
    }
}
