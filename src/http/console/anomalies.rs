//! Anomalies: genuine messages from Alipay that disagree with our records (another app, an
//! unknown order, the wrong amount, a payment after close…), each with the reason in words, the
//! message as received, and *Mark reviewed* with a note for operators.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::Session;
use super::order::{bytes_response, message_page};
use super::{layout, path_segment, On};
use crate::http::AppState;
use crate::orders::actions::{ActionKind, ConsoleAction};
use crate::orders::model::AuditRecord;
use crate::orders::stats::{Anomaly, Review};
use crate::orders::Verdict;
use crate::report::Report;

/// Rows per section: more waiting than this is a problem the count on the overview shows.
const SHOWN: i64 = 200;

pub async fn list(State(state): State<AppState>, On(console): On, session: Session) -> Response {
    let read = async {
        let waiting = state.store.anomalies(false, SHOWN).await?;
        let reviewed = state.store.anomalies(true, 50).await?;
        Ok::<_, crate::orders::StoreError>((waiting, reviewed))
    };
    let (waiting, reviewed) = match read.await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(error = %Report(&error), "console anomalies failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let content = html! {
        h1 { "Anomalies" }
        p class="muted" {
            "Genuine messages from Alipay (their signatures verified) that disagree with our records. "
            "The order was left as it was; a person decides what to do."
        }
        div class="card" id="waiting" {
            h2 { "Waiting for a look (" (waiting.len()) ")" }
            @if waiting.is_empty() { p class="muted" { "None." } } @else { (table(&waiting, Some(&session))) }
        }
        div class="card" id="reviewed" {
            h2 { "Reviewed" }
            @if reviewed.is_empty() { p class="muted" { "None yet." } } @else { (table(&reviewed, None)) }
        }
    };
    layout::page(&console.csp, "Anomalies", Some(&session), content)
}

/// `session` is given for the waiting ones: operators get a review form per row.
fn table(anomalies: &[Anomaly], session: Option<&Session>) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Received" } th { "Order" } th { "Status sent" } th { "Why" } th { "Message" }
                th { @if session.is_some() { "Review" } @else { "Reviewed" } }
            } }
            tbody {
                @for anomaly in anomalies {
                    tr id={ "anomaly-" (anomaly.id) } {
                        td class="when" { (layout::time(anomaly.received_at)) }
                        td {
                            @if let Some(no) = &anomaly.out_trade_no {
                                a href={ "/console/orders/" (path_segment(no)) } { (no) }
                            }
                        }
                        td { (anomaly.trade_status.as_deref().unwrap_or("")) }
                        td { (anomaly.reason.map(|r| r.explain()).unwrap_or("")) }
                        td { a href={ "/console/anomalies/" (anomaly.id) } { "as received" } }
                        td {
                            @if let Some(review) = &anomaly.review {
                                (review.operator) ", " (layout::time(review.at)) ": " (review.note)
                            } @else if let Some(session) = session.filter(|s| s.may_act()) {
                                form method="post" action={ "/console/anomalies/" (anomaly.id) "/review" } {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    input name="note" required maxlength="500" placeholder="what you found" aria-label="Note";
                                    " "
                                    button type="submit" { "Mark reviewed…" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An anomaly's message, or 404 for an id that is not an anomaly.
async fn anomaly(state: &AppState, id: i64) -> Result<AuditRecord, Response> {
    match state.store.message(id).await {
        Ok(Some(record)) if record.verdict == Verdict::Anomaly => Ok(record),
        Ok(_) => Err(StatusCode::NOT_FOUND.into_response()),
        Err(error) => {
            tracing::error!(error = %Report(&error), "console anomaly failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

pub async fn message(
    State(state): State<AppState>,
    On(console): On,
    session: Session,
    Path(id): Path<i64>,
) -> Response {
    match anomaly(&state, id).await {
        Ok(record) => message_page(
            &console,
            &session,
            &record,
            "/console/anomalies",
            "Back to the anomalies",
        ),
        Err(response) => response,
    }
}

pub async fn bytes(
    State(state): State<AppState>,
    _console: On,
    _session: Session,
    Path(id): Path<i64>,
) -> Response {
    match anomaly(&state, id).await {
        Ok(record) => bytes_response(record),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    note: String,
    #[serde(default)]
    confirmed: bool,
}

/// Marks an anomaly reviewed, after confirmation; recorded like every action.
pub async fn review(
    State(state): State<AppState>,
    On(console): On,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<ReviewForm>,
) -> Response {
    let refuse = |why: &str| {
        let content = html! { h1 { "Not done" } p class="error" role="alert" { (why) } };
        let mut response = layout::page(&console.csp, "Not done", Some(&session), content);
        *response.status_mut() = StatusCode::FORBIDDEN;
        response
    };
    if !session.csrf_matches(&form.csrf) {
        return refuse("The form has expired; reload the page and try again.");
    }
    if !session.may_act() {
        return refuse("Viewers cannot mark anomalies reviewed.");
    }
    let note = form.note.trim();
    if note.is_empty() || note.chars().count() > 500 {
        return refuse("Write a note of 1 to 500 characters: what you found, what you did.");
    }
    let record = match anomaly(&state, id).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    if !form.confirmed {
        let reason = record.reason.map(|r| r.explain()).unwrap_or("");
        let content = html! {
            div class="card" {
                h1 { "Confirm" }
                p { "Mark anomaly " (id) " reviewed? (" (reason) ")" }
                p { "Note: " (note) }
                form method="post" action={ "/console/anomalies/" (id) "/review" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="note" value=(note);
                    input type="hidden" name="confirmed" value="true";
                    button type="submit" id="confirm" { "Confirm" }
                    " " a href="/console/anomalies" { "Cancel" }
                }
            }
        };
        return layout::page(&console.csp, "Confirm", Some(&session), content);
    }
    let now = OffsetDateTime::now_utc();
    let review = Review {
        operator: session.operator.clone(),
        note: note.to_owned(),
        at: now,
    };
    let outcome = match state.store.review_anomaly(id, &review).await {
        Ok(true) => "reviewed".to_owned(),
        Ok(false) => "already reviewed; the first review stands".to_owned(),
        Err(error) => format!("failed: {}", Report(&error)),
    };
    let action = ConsoleAction {
        operator: session.operator.clone(),
        kind: ActionKind::ReviewAnomaly,
        out_trade_no: record.out_trade_no.clone(),
        request: format!("mark anomaly {id} reviewed: {note}"),
        outcome,
        at: now,
    };
    tracing::info!(operator = %action.operator, anomaly = id, outcome = %action.outcome, "console action");
    if let Err(error) = state.store.record_action(&action).await {
        tracing::error!(error = %Report(&error), "console action done but not recorded");
    }
    Redirect::to("/console/anomalies#reviewed").into_response()
}
