//! The event feed for merchants without a public endpoint, and the events' delivery records:
//! `GET /api/events?after=&limit=&wait=` (a long poll with `wait`), `GET /api/events/{id}`,
//! `POST /api/events/{id}/redeliver`. Bearer-authenticated like the rest of the API.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::api::Authorized;
use super::{ApiError, AppState};
use crate::orders::events::{Delivery, StoredEvent};
use crate::orders::outbox::AttemptRecord;

pub const MAX_LIMIT: i64 = 1000;
pub const MAX_WAIT_SECONDS: u64 = 30;
/// A long poll also looks for events other instances wrote this often.
const POLL: Duration = Duration::from_millis(250);

/// Kept out of the API's request timeout: a long poll may wait longer.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(list))
        .route("/api/events/{id}", get(show))
        .route("/api/events/{id}/redeliver", post(redeliver))
}

#[derive(Deserialize)]
struct FeedQuery {
    after: Option<String>,
    limit: Option<i64>,
    wait: Option<u64>,
}

#[derive(Serialize)]
struct Feed {
    /// Each event exactly as webhooks send it.
    events: Vec<Box<RawValue>>,
    /// The cursor for the next call: the last event's id, or `after` when there was none.
    next: Option<String>,
}

/// An event id as we make them: `evt_` and 26 base32 characters. Anything else names no event
/// and never reaches a query.
pub(crate) fn valid_event_id(id: &str) -> bool {
    id.strip_prefix("evt_")
        .is_some_and(|ulid| ulid.len() == 26 && ulid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn raw(event: &StoredEvent) -> Result<Box<RawValue>, ApiError> {
    Ok(RawValue::from_string(event.payload.clone())?)
}

async fn list(
    _: Authorized,
    State(state): State<AppState>,
    Query(query): Query<FeedQuery>,
) -> Result<Json<Feed>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Query(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let wait = Duration::from_secs(query.wait.unwrap_or(0));
    if wait > Duration::from_secs(MAX_WAIT_SECONDS) {
        return Err(ApiError::Query(format!(
            "wait must be at most {MAX_WAIT_SECONDS} seconds"
        )));
    }
    let after = query.after.filter(|a| !a.is_empty());
    if let Some(after) = after.as_deref().filter(|a| !valid_event_id(a)) {
        return Err(ApiError::UnknownCursor(after.to_owned()));
    }
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first read, so an event committed in between still wakes us.
    let mut written = state.store.events_written();
    loop {
        let events = state
            .store
            .events_after(after.as_deref(), limit)
            .await?
            .ok_or_else(|| ApiError::UnknownCursor(after.clone().unwrap_or_default()))?;
        if !events.is_empty() || tokio::time::Instant::now() >= deadline {
            let next = events.last().map(|e| e.id.clone()).or(after);
            let events = events.iter().map(raw).collect::<Result<_, _>>()?;
            return Ok(Json(Feed { events, next }));
        }
        tokio::select! {
            _ = written.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

#[derive(Serialize)]
struct EventView {
    event: Box<RawValue>,
    deliveries: Vec<Delivery>,
    attempts: Vec<AttemptRecord>,
}

async fn show(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    if !valid_event_id(&id) {
        return Err(ApiError::NotFound);
    }
    let detail = state.store.event(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(EventView {
        event: raw(&detail.event)?,
        deliveries: detail.deliveries,
        attempts: detail.attempts,
    }))
}

async fn redeliver(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if !valid_event_id(&id) {
        return Err(ApiError::NotFound);
    }
    if state.webhook_endpoints.is_empty() {
        return Err(ApiError::NoEndpoints);
    }
    let found = state
        .store
        .redeliver(&id, &state.webhook_endpoints, OffsetDateTime::now_utc())
        .await?;
    if !found {
        return Err(ApiError::NotFound);
    }
    tracing::info!(event_id = %id, "redelivery queued");
    let body = serde_json::json!({ "event_id": id, "endpoints": *state.webhook_endpoints });
    Ok((StatusCode::ACCEPTED, Json(body)))
}
