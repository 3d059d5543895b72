//! `POST /api/v1/session` (`{"user", "password"}`: sign in; the cookie),
//! `GET /api/v1/session` (who is signed in, and what the desk needs of the
//! configuration), `DELETE /api/v1/session` (sign out).

use super::auth::throttle::Verdict;
use super::auth::{cookie_of, Principal, COOKIE};
use super::{bad_field, error, json_body, AppState, DeskConfig, Reply};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Instant;

/// The longest user id or password looked at.
const MAX_CREDENTIAL: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    user: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct SessionReply<'a> {
    #[serde(flatten)]
    who: &'a Principal,
    config: &'a DeskConfig,
}

/// Where the request came from (the throttle's key).
pub(super) struct Peer(pub std::net::IpAddr);

impl FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |c| c.0.ip());
        Ok(Peer(ip))
    }
}

pub(super) async fn sign_in(
    State(st): State<AppState>,
    Peer(ip): Peer,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Reply {
    let req = json_body(body)?;
    if req.user.is_empty() || req.user.len() > MAX_CREDENTIAL {
        return Err(bad_field("user", "expected your agent or supervisor id"));
    }
    if req.password.len() > MAX_CREDENTIAL {
        return Err(bad_field("password", "too long"));
    }
    let now = Instant::now();
    match st.auth.check(ip, now) {
        Verdict::Refused { retry_after } => {
            st.metrics
                .api_sign_ins
                .with_label_values(&["refused"])
                .inc();
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed sign-ins from this address: try again later",
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
        Verdict::Go { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Go { .. } => {}
    }
    let who = st.auth.users.sign_in(&req.user, &req.password);
    let banned = st.auth.record(ip, who.is_some(), Instant::now());
    let Some(who) = who else {
        st.metrics.api_sign_ins.with_label_values(&["failed"]).inc();
        if banned {
            tracing::warn!(%ip, "sign-ins refused from this address for a while");
        }
        return Err(error(StatusCode::UNAUTHORIZED, "wrong user or password"));
    };
    st.metrics.api_sign_ins.with_label_values(&["ok"]).inc();
    tracing::info!(user = %who.author(), "signed in to the desk");
    let cookie = st.auth.sessions.create(who.clone(), now);
    let set = format!(
        "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        st.auth.sessions.ttl().as_secs()
    );
    let mut r = Json(SessionReply {
        who: &who,
        config: &st.desk,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub(super) async fn whoami(State(st): State<AppState>, who: Principal) -> Response {
    Json(SessionReply {
        who: &who,
        config: &st.desk,
    })
    .into_response()
}

pub(super) async fn sign_out(State(st): State<AppState>, headers: header::HeaderMap) -> Response {
    if let Some(c) = cookie_of(&headers) {
        st.auth.sessions.end(&c);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
