//! `GET /api/v1/kb?q=&category=&language=&limit=` (articles found, best
//! first; without `q`, the category's articles by title — the desk's
//! suggestions for a ticket's queue) and `GET /api/v1/kb/{id}?language=`
//! (one article, Markdown).

use super::auth::Principal;
use super::{bad_field, error, AppState, Reply};
use crate::kb::{Found, Search, MAX_RESULTS};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KbQuery {
    q: Option<String>,
    category: Option<String>,
    language: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
struct KbReply {
    articles: Vec<Found>,
    categories: Vec<String>,
}

pub(super) async fn search(
    State(st): State<AppState>,
    _who: Principal,
    q: Result<Query<KbQuery>, QueryRejection>,
) -> Reply {
    let Query(q) = q.map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    if q.q.as_ref().is_some_and(|w| w.len() > 256) {
        return Err(bad_field("q", "expected at most 256 bytes"));
    }
    let limit = match q.limit.as_deref() {
        None => 10,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_RESULTS).contains(l))
            .ok_or_else(|| bad_field("limit", format!("expected 1..={MAX_RESULTS}")))?,
    };
    let s = Search {
        words: q.q.filter(|w| !w.trim().is_empty()),
        category: q.category.filter(|c| !c.is_empty()),
        language: q.language.filter(|l| !l.is_empty()),
        limit,
    };
    Ok(Json(KbReply {
        articles: st.kb.search(&s),
        categories: st.kb.categories(),
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArticleQuery {
    language: Option<String>,
}

pub(super) async fn article(
    State(st): State<AppState>,
    _who: Principal,
    Path(id): Path<String>,
    q: Result<Query<ArticleQuery>, QueryRejection>,
) -> Reply {
    let Query(q) = q.map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let language = q.language.unwrap_or_else(|| "es".into());
    match st.kb.get_in(&id, &language) {
        Some(a) => Ok(Json(a).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, format!("no article {id:?}"))),
    }
}
