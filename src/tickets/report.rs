//! What the command line prints of tickets: a list, one ticket with its
//! calls and logbook, and the logbook's verification — as text for people,
//! or JSON for scripts. Reads through [`Reader`], while the server runs.

use super::chain::ChainKey;
use super::sqlite::{Reader, StoreOptions};
use super::{StoreError, TicketFilter, TicketNumber, TicketView};
use std::fmt::Write as _;

/// The tickets matching `filter`, as a table or JSON.
pub fn list(store: &StoreOptions, filter: &TicketFilter, json: bool) -> Result<String, StoreError> {
    let tickets = Reader::open(&store.path)?.list(filter)?;
    if json {
        return Ok(to_json(&tickets));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<11} {:>3} {:<24} {:<25} {:<16} {:<10} {:<12} {:>5} {:<16} agent",
        "ticket",
        "status",
        "lvl",
        "created",
        "due",
        "caller",
        "dialed",
        "queue",
        "calls",
        "last call",
    );
    for t in &tickets {
        let caller = super::Caller::from_header(&t.caller).user;
        let _ = writeln!(
            out,
            "{:<8} {:<11} {:>3} {:<24} {:<25} {:<16} {:<10} {:<12} {:>5} {:<16} {}",
            t.number,
            t.status.as_str(),
            t.level,
            t.created.rfc3339(),
            due(t.due, t.overdue),
            clip(&caller, 16),
            clip(&t.dialed, 10),
            clip(t.category.as_deref().unwrap_or("-"), 12),
            t.calls,
            match (t.last_outcome, t.calls) {
                (Some(o), _) => o.as_str(),
                (None, 0) => "-",
                (None, _) => "(up)",
            },
            t.last_agent.as_deref().unwrap_or("-"),
        );
    }
    let _ = writeln!(out, "{} ticket(s)", tickets.len());
    Ok(out)
}

/// One ticket, with its calls and logbook; `None` if there is none.
pub fn show(
    store: &StoreOptions,
    n: TicketNumber,
    json: bool,
) -> Result<Option<String>, StoreError> {
    let Some(t) = Reader::open(&store.path)?.show(n)? else {
        return Ok(None);
    };
    if json {
        return Ok(Some(to_json(&t)));
    }
    Ok(Some(text(&t)))
}

fn text(t: &TicketView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Ticket {} — {} — level {}{}",
        t.number,
        t.status.as_str(),
        t.level,
        t.merged_into
            .map(|m| format!(" — its call went on on ticket {m}"))
            .unwrap_or_default()
    );
    let who = match &t.caller.display {
        Some(d) => format!("{d} <{}>", t.caller.uri),
        None => t.caller.uri.clone(),
    };
    let _ = writeln!(out, "Caller:   {who}");
    let _ = writeln!(out, "Dialed:   {} (language {})", t.dialed, t.language);
    if let Some(c) = &t.category {
        let _ = writeln!(out, "Queue:    {c} (priority {})", t.priority.unwrap_or(0));
    }
    let _ = writeln!(
        out,
        "Opened:   {}, last change {}",
        t.created.rfc3339(),
        t.updated.rfc3339()
    );
    if t.due.is_some() {
        let _ = writeln!(out, "Due:      {}", due(t.due, t.overdue));
    }
    if let Some(v) = &t.visit {
        let _ = writeln!(
            out,
            "Visit:    {} at {}, {} — {}",
            v.when, v.place, v.technician, v.reason
        );
    }
    if let Some(typed) = &t.typed_number {
        let _ = writeln!(out, "Typed:    {typed} (no such ticket)");
    }
    if !t.related.is_empty() {
        let related: Vec<String> = t.related.iter().map(|r| r.to_string()).collect();
        let _ = writeln!(out, "Related:  {}", related.join(", "));
    }
    for c in &t.calls {
        let _ = writeln!(
            out,
            "\nCall {} ({}): {}",
            c.id.0,
            c.arrived.rfc3339(),
            c.outcome.map_or("up", |o| o.as_str())
        );
        if !c.ivr_path.is_empty() {
            let path: Vec<String> = c
                .ivr_path
                .iter()
                .map(|s| match &s.key {
                    Some(k) => format!("{}[{k}]", s.menu),
                    None => s.menu.clone(),
                })
                .collect();
            let _ = writeln!(out, "  menus:   {}", path.join(" → "));
        }
        for (k, v) in &c.fields {
            let _ = writeln!(out, "  {k}: {v}");
        }
        if let Some(q) = &c.queue {
            let _ = writeln!(out, "  queue:   {q} (priority {})", c.priority.unwrap_or(0));
        }
        for o in &c.offers {
            let _ = writeln!(out, "  offered: {} ({})", o.agent, o.result);
        }
        if let Some(a) = &c.agent {
            let secs =
                |ms: Option<i64>| ms.map_or("-".into(), |m| format!("{:.1} s", m as f64 / 1000.0));
            let _ = writeln!(
                out,
                "  agent:   {a} (waited {}, rang {}, talked {}, wrap-up {})",
                secs(c.wait_ms),
                secs(c.ring_ms),
                secs(c.talk_ms),
                secs(c.wrapup_ms)
            );
        }
        for tr in &c.transfers {
            let _ = writeln!(out, "  transfer: {} to {}", tr.how, tr.to);
        }
        if let Some(by) = &c.hung_up_by {
            let _ = writeln!(out, "  ended by: {by}");
        }
    }
    let _ = writeln!(out, "\nLogbook:");
    for e in &t.logbook {
        let _ = writeln!(
            out,
            "  {:>3} {} {:<14} {:<13} {}",
            e.seq,
            e.time.rfc3339(),
            e.author,
            e.section.as_str(),
            e.text
        );
    }
    out
}

/// Walk every logbook chain: `Ok` with a summary when all verify, `Err`
/// with one line per ticket whose history was tampered with.
pub fn verify(store: &StoreOptions) -> Result<Result<String, String>, StoreError> {
    if !store.key_path.exists() {
        return Err(StoreError::Key {
            path: store.key_path.display().to_string(),
            reason: "missing: the logbook cannot be verified without its key".into(),
        });
    }
    let key = ChainKey::load_or_create(&store.key_path)?;
    let reader = Reader::open(&store.path)?;
    let bad = reader.verify(&key)?;
    if bad.is_empty() {
        let (tickets, entries) = reader.totals()?;
        return Ok(Ok(format!(
            "logbook verified: {tickets} ticket(s), {entries} entries, no tampering found"
        )));
    }
    let mut out = String::new();
    for b in &bad {
        let _ = writeln!(out, "ticket {}: {}", b.ticket, b.problem);
    }
    let _ = write!(out, "{} ticket(s) fail verification", bad.len());
    Ok(Err(out))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// A due time, marked when it has passed.
fn due(due: Option<super::Millis>, overdue: bool) -> String {
    match due {
        Some(d) if overdue => format!("{}!", d.rfc3339()),
        Some(d) => d.rfc3339(),
        None => "-".into(),
    }
}

/// At most `n` characters.
fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
