//! Tickets through the API: `GET /api/v1/tickets` (filters and a cursor),
//! `GET /api/v1/tickets/{number}` (calls, logbook, related tickets),
//! `POST /api/v1/tickets/{number}/entries` (a logbook entry, committed
//! before the 201), `PATCH /api/v1/tickets/{number}` (status, disposition,
//! escalation to level 2 or an on-site visit at level 3).
//!
//! An agent reads and writes the tickets it was offered or took (the one
//! ringing now among them: the offer is committed before the phone rings),
//! and lists only those; a supervisor reads and writes every ticket.

use super::auth::Principal;
use super::{bad_field, error, forbidden, json_body, now_rfc3339, ApiError, AppState, Reply};
use crate::events::Event;
use crate::tickets::{
    Level, Millis, NewEntry, Section, StoreError, TicketFilter, TicketNumber, TicketStatus,
    TicketStore, TicketSummary, TicketView, Visit, Write, Written,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

/// The largest page.
pub const MAX_PAGE: usize = 200;
/// A page when none is asked for.
pub const DEFAULT_PAGE: usize = 50;
/// The longest logbook entry (bytes).
pub const MAX_ENTRY: usize = 8 * 1024;
/// The longest field of a visit.
const MAX_VISIT_FIELD: usize = 256;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    status: Option<String>,
    level: Option<String>,
    queue: Option<String>,
    agent: Option<String>,
    caller: Option<String>,
    since: Option<String>,
    text: Option<String>,
    overdue: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
struct ListReply {
    tickets: Vec<TicketSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NoTicket(n) => error(StatusCode::NOT_FOUND, format!("no ticket {n}")),
        e => {
            tracing::warn!(error = %e, "the API could not use the ticket store");
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

/// A status as asked for, if one was.
fn status_of(s: Option<&str>) -> Result<Option<TicketStatus>, ApiError> {
    s.map(|s| {
        TicketStatus::parse(s).ok_or_else(|| {
            bad_field(
                "status",
                "expected open, in_progress, escalated, resolved or closed",
            )
        })
    })
    .transpose()
}

fn filter_of(q: ListQuery, who: &Principal) -> Result<TicketFilter, ApiError> {
    let status = status_of(q.status.as_deref())?;
    let level = match q.level.as_deref() {
        None => None,
        Some(l) => Some(
            l.parse::<u8>()
                .ok()
                .filter(|l| (1..=3).contains(l))
                .ok_or_else(|| bad_field("level", "expected 1, 2 or 3"))?,
        ),
    };
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(Millis::parse_rfc3339(s).ok_or_else(|| {
            bad_field(
                "since",
                "expected an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
            )
        })?),
    };
    let overdue = match q.overdue.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(bad_field("overdue", "expected true or false")),
    };
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            TicketNumber::parse(c).ok_or_else(|| bad_field("cursor", "expected a next_cursor"))?,
        ),
    };
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| bad_field("limit", format!("expected 1..={MAX_PAGE}")))?,
    };
    if q.text.as_ref().is_some_and(|t| t.len() > 256) {
        return Err(bad_field("text", "expected at most 256 bytes"));
    }
    // An agent lists only its own tickets.
    let agent = match who.agent() {
        Some(me) if q.agent.as_deref().is_some_and(|a| a != me) => {
            return Err(forbidden("an agent lists its own tickets only"))
        }
        Some(me) => Some(me.to_string()),
        None => q.agent,
    };
    Ok(TicketFilter {
        status,
        queue: q.queue,
        agent,
        caller: q.caller,
        since,
        overdue,
        level,
        text: q.text.filter(|t| !t.trim().is_empty()),
        before,
        number: None,
        limit,
    })
}

pub(super) async fn list(
    State(st): State<AppState>,
    who: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Reply {
    let Query(q) = q.map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let filter = filter_of(q, &who)?;
    let limit = filter.limit;
    let tickets = st
        .readers
        .read(move |r| r.list(&filter))
        .await
        .map_err(store_error)?;
    let next_cursor = (tickets.len() == limit)
        .then(|| tickets.last().map(|t| t.number.to_string()))
        .flatten();
    Ok(Json(ListReply {
        tickets,
        next_cursor,
    })
    .into_response())
}

fn number_of(s: &str) -> Result<TicketNumber, ApiError> {
    TicketNumber::parse(s).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("no ticket {s:?}: a ticket number is 6 to 9 digits"),
        )
    })
}

/// 404 if there is no such ticket, 403 if it is not the agent's.
async fn may_see(st: &AppState, who: &Principal, n: TicketNumber) -> Result<(), ApiError> {
    let agent = who.agent().map(str::to_string);
    let (exists, mine) = st
        .readers
        .read(move |r| {
            let exists = r.summary(n)?.is_some();
            let mine = match &agent {
                Some(a) if exists => r.agent_may_see(n, a)?,
                _ => true,
            };
            Ok((exists, mine))
        })
        .await
        .map_err(store_error)?;
    if !exists {
        return Err(error(StatusCode::NOT_FOUND, format!("no ticket {n}")));
    }
    if !mine {
        return Err(forbidden(format!(
            "ticket {n} was never offered to you: an agent sees the tickets it was offered or took"
        )));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct ShowReply {
    #[serde(flatten)]
    ticket: TicketView,
    /// The related tickets' summaries (the caller's other open tickets).
    related_tickets: Vec<TicketSummary>,
}

async fn view(st: &AppState, n: TicketNumber) -> Reply {
    let read = st
        .readers
        .read(move |r| {
            let Some(t) = r.show(n)? else {
                return Ok(None);
            };
            let mut related = Vec::new();
            for o in &t.related {
                if let Some(s) = r.summary(*o)? {
                    related.push(s);
                }
            }
            Ok(Some(ShowReply {
                ticket: t,
                related_tickets: related,
            }))
        })
        .await
        .map_err(store_error)?;
    match read {
        Some(t) => Ok(Json(t).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, format!("no ticket {n}"))),
    }
}

pub(super) async fn show(
    State(st): State<AppState>,
    who: Principal,
    Path(number): Path<String>,
) -> Reply {
    let n = number_of(&number)?;
    may_see(&st, &who, n).await?;
    view(&st, n).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntryRequest {
    section: String,
    text: String,
    /// A knowledge-base article cited (its id).
    #[serde(default)]
    article: Option<String>,
}

#[derive(Debug, Serialize)]
struct EntryReply {
    ticket: TicketNumber,
    seq: u64,
}

pub(super) async fn append(
    State(st): State<AppState>,
    who: Principal,
    Path(number): Path<String>,
    body: Result<Json<EntryRequest>, JsonRejection>,
) -> Reply {
    let n = number_of(&number)?;
    let req = json_body(body)?;
    let section = match Section::parse(&req.section) {
        Some(s) if s != Section::Event => s,
        _ => {
            return Err(bad_field(
                "section",
                "expected understanding, planning, execution or analysis",
            ))
        }
    };
    if req.text.trim().is_empty() || req.text.len() > MAX_ENTRY {
        return Err(bad_field(
            "text",
            format!("expected 1 to {MAX_ENTRY} bytes of text"),
        ));
    }
    let mut text = req.text.trim_end().to_string();
    if let Some(id) = &req.article {
        let a = st.kb.get(id).ok_or_else(|| {
            bad_field(
                "article",
                format!("no article {id:?} in the knowledge base"),
            )
        })?;
        text.push_str(&format!("\n\nKB: {} — {}", a.id, a.title));
    }
    may_see(&st, &who, n).await?;
    let entry = NewEntry {
        at: Millis::now(),
        author: who.author(),
        call: None,
        section,
        text,
    };
    match st
        .store
        .write(Write::Append { ticket: n, entry })
        .await
        .map_err(store_error)?
    {
        Written::Appended { seq } => {
            changed(&st, n, &who);
            Ok((StatusCode::CREATED, Json(EntryReply { ticket: n, seq })).into_response())
        }
        _ => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store gave an unexpected answer",
        )),
    }
}

/// Others' desks hear that the ticket changed.
fn changed(st: &AppState, n: TicketNumber, who: &Principal) {
    st.events.publish(Event::TicketChanged {
        ticket: n.0,
        by: who.author(),
        at: now_rfc3339(),
    });
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VisitRequest {
    when: String,
    #[serde(rename = "where")]
    place: String,
    technician: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeRequest {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    disposition: Option<String>,
    #[serde(default)]
    level: Option<u8>,
    #[serde(default)]
    visit: Option<VisitRequest>,
    /// With level 2: move the caller still on the line to this queue (the
    /// ticket goes with it).
    #[serde(default)]
    requeue: Option<String>,
}

fn visit_of(v: Option<VisitRequest>) -> Result<Visit, ApiError> {
    let v = v.ok_or_else(|| {
        bad_field(
            "visit",
            "level 3 is an on-site visit: give its when, where, technician and reason",
        )
    })?;
    if Millis::parse_rfc3339(&v.when).is_none() {
        return Err(bad_field(
            "visit.when",
            "expected an RFC 3339 time, e.g. 2026-12-07T10:00:00+01:00",
        ));
    }
    for (k, val) in [
        ("visit.where", &v.place),
        ("visit.technician", &v.technician),
        ("visit.reason", &v.reason),
    ] {
        if val.trim().is_empty() || val.len() > MAX_VISIT_FIELD {
            return Err(bad_field(
                k,
                format!("expected 1 to {MAX_VISIT_FIELD} bytes"),
            ));
        }
    }
    Ok(Visit {
        when: v.when,
        place: v.place.trim().to_string(),
        technician: v.technician.trim().to_string(),
        reason: v.reason.trim().to_string(),
    })
}

pub(super) async fn change(
    State(st): State<AppState>,
    who: Principal,
    Path(number): Path<String>,
    body: Result<Json<ChangeRequest>, JsonRejection>,
) -> Reply {
    let n = number_of(&number)?;
    let req = json_body(body)?;
    let status = status_of(req.status.as_deref())?;
    if let Some(d) = &req.disposition {
        if !st.desk.dispositions.contains(d) {
            return Err(bad_field(
                "disposition",
                format!("expected one of {}", st.desk.dispositions.join(", ")),
            ));
        }
    }
    let level = match req.level {
        None if req.visit.is_some() => return Err(bad_field("level", "a visit is level 3")),
        None => None,
        Some(2) if req.visit.is_some() => return Err(bad_field("visit", "a visit is level 3")),
        Some(2) => Some(Level::Two),
        Some(3) => Some(Level::Three(visit_of(req.visit)?)),
        Some(_) => return Err(bad_field(
            "level",
            "expected 2 (experts) or 3 (an on-site visit): a ticket does not go back to level 1",
        )),
    };
    let requeue = match &req.requeue {
        None => None,
        Some(_) if !matches!(level, Some(Level::Two)) => {
            return Err(bad_field("requeue", "a re-queue comes with level 2"))
        }
        Some(q) if !st.desk.queues.iter().any(|c| &c.name == q) => {
            return Err(bad_field("requeue", format!("no queue {q:?}")))
        }
        Some(q) => Some(q.clone()),
    };
    if status.is_none() && req.disposition.is_none() && level.is_none() {
        return Err(bad_field(
            "status",
            "nothing to change: give status, disposition or level",
        ));
    }
    may_see(&st, &who, n).await?;
    // The call to move: this ticket's, talking with its agent (an agent's
    // own call only).
    let moving = match &requeue {
        None => None,
        Some(q) => {
            let label = n.to_string();
            let call = st.live.all().into_iter().find(|c| {
                c.ticket == label
                    && c.state == crate::call::CallState::OnCall
                    && who.agent().is_none_or(|me| c.agent.as_deref() == Some(me))
            });
            match call {
                Some(c) => Some((c.id, q.clone())),
                None => {
                    return Err(error(
                        StatusCode::CONFLICT,
                        format!(
                        "no call on ticket {n} is talking with its agent now: nobody to re-queue"
                    ),
                    ))
                }
            }
        }
    };
    let at = Millis::now();
    if let Some(level) = level {
        let w = Write::Escalate {
            ticket: n,
            at,
            author: who.author(),
            level,
        };
        st.store.write(w).await.map_err(store_error)?;
    }
    if status.is_some() || req.disposition.is_some() {
        let w = Write::Update {
            ticket: n,
            at,
            author: who.author(),
            status,
            disposition: req.disposition,
        };
        st.store.write(w).await.map_err(store_error)?;
    }
    if let Some((call, queue)) = moving {
        // The call's core asks the ACD; the logbook says how it went.
        st.live.ask(
            call,
            crate::http::live::DeskCommand::Transfer(crate::acd::TransferTarget::Queue(queue)),
        );
    }
    changed(&st, n, &who);
    view(&st, n).await
}
