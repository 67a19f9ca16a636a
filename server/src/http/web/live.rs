//! Live updates of an open case page by server-sent events: `GET /cases/{id}/events` stays open
//! and sends a `changed` event whenever the case's change sequence number moves (a phone's sync,
//! an office edit), and the page's script then fetches the timeline fragment. The stream wakes
//! on the vault's change signal, re-checks every few seconds for changes written by another
//! process (the admin CLI), checks the session and the user's reach of the case before every
//! event (so it ends at logout, expiry, deactivation, a change of role, being taken off the
//! case's team or the end of a break-glass read), and ends after [`MAX_STREAM_SECS`] so that the
//! browser reconnects through the session check again. Neither the stream nor the fetches it
//! triggers count as the person's activity: an unattended page signs out after the idle time. Open streams are bounded
//! ([`crate::http::state::MAX_LIVE_STREAMS`]); past the bound the answer is 503 and the script polls.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use fieldcase_core::ids::CaseId;

use super::auth::{WebError, WebUser};
use super::layout::parse_case;
use crate::http::state::AppState;
use crate::office::access::{self, Ability, ReadVia};
use crate::office::{cases, sign_in};

/// A stream ends after this many seconds; the browser opens a new one at once.
pub(crate) const MAX_STREAM_SECS: u64 = 300;
/// How often a stream re-checks without a signal (changes made by another process).
const RECHECK: Duration = Duration::from_secs(5);

struct Live {
    state: AppState,
    /// The session cookie token the stream was opened with, checked before every event.
    token: String,
    case: CaseId,
    changes: tokio::sync::watch::Receiver<u64>,
    last: Option<i64>,
    until: tokio::time::Instant,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

async fn seq(state: &AppState, case: CaseId) -> Option<i64> {
    state
        .db()
        .call_read(move |sql| cases::case_seq(sql, case))
        .await
        .ok()
        .flatten()
}

/// Whether the stream's session is live and its user still reaches the case (on its team, or
/// within her break-glass read).
async fn session_holds(live: &Live) -> bool {
    let (token, now, case) = (live.token.clone(), live.state.now(), live.case);
    live.state
        .db()
        .call_read(move |sql| match sign_in::live_session(sql, &token, now)? {
            Some(who) => Ok(access::reach(sql, who, case, now)?.is_some()),
            None => Ok::<_, crate::error::ServerError>(false),
        })
        .await
        .unwrap_or(false)
}

async fn next_change(mut live: Live) -> Option<(Result<Event, Infallible>, Live)> {
    loop {
        tokio::select! {
            changed = live.changes.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
            () = tokio::time::sleep(RECHECK) => {}
            () = tokio::time::sleep_until(live.until) => return None,
        }
        // A stream ends with its session (at logout, expiry, deactivation or a change of role)
        // and with its user's reach of the case (taken off the team, break-glass read over).
        if !session_holds(&live).await {
            return None;
        }
        let now = seq(&live.state, live.case).await?;
        if Some(now) != live.last {
            live.last = Some(now);
            let event = Event::default().event("changed").data(now.to_string());
            return Some((Ok(event), live));
        }
    }
}

pub(super) async fn events(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    user.require(Ability::ReadTeamCases)?;
    let case = parse_case(&id)?;
    let Ok(slot) = state.live_streams().clone().try_acquire_owned() else {
        return Ok(StatusCode::SERVICE_UNAVAILABLE.into_response());
    };
    // Opening the stream is checked and audited like a read of the case.
    let (who, now) = (user.staff(), state.now());
    state
        .db()
        .call_write(move |sql| access::check_read(sql, who, case, ReadVia::LiveStream, now))
        .await?;
    let last = seq(&state, case).await;
    if last.is_none() {
        return Err(WebError::NotFound);
    }
    let live = Live {
        token: user.token.clone(),
        changes: state.vault().subscribe(),
        state,
        case,
        last,
        until: tokio::time::Instant::now() + Duration::from_secs(MAX_STREAM_SECS),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(live, next_change);
    Ok((
        super::headers::secure_headers(),
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response())
}
