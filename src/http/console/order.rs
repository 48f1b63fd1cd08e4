//! One order's page: its fields, the timeline of everything that happened to it, each message
//! from Alipay viewable as received, its refunds, what operators did, and (for operators) the
//! actions.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use time::OffsetDateTime;

use super::auth::Session;
use super::{actions, layout, path_segment, Console, On};
use crate::alipay::form::RawParams;
use crate::http::AppState;
use crate::money::Amount;
use crate::orders::actions::ConsoleAction;
use crate::orders::model::AuditRecord;
use crate::orders::timeline::{EntryKind, OrderHistory};
use crate::orders::{OrderStatus, StoreError};
use crate::report::Report;

/// The order's history and what operators did, or the response to give instead.
async fn read(
    state: &AppState,
    console: &Console,
    session: &Session,
    out_trade_no: &str,
) -> Result<(OrderHistory, Vec<ConsoleAction>), Response> {
    let found = async {
        let Some(history) = OrderHistory::read(state.store.as_ref(), out_trade_no).await? else {
            return Ok(None);
        };
        let trail = state.store.actions(out_trade_no).await?;
        Ok::<_, StoreError>(Some((history, trail)))
    };
    match found.await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => {
            let content = html! {
                h1 { "No order " (out_trade_no) }
                p { a href="/console/orders" { "Back to the list" } }
            };
            let mut response = layout::page(&console.csp, "Not found", Some(session), content);
            *response.status_mut() = StatusCode::NOT_FOUND;
            Err(response)
        }
        Err(error) => {
            tracing::error!(error = %Report(&error), "console order page failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    On(console): On,
    session: Session,
    Path(out_trade_no): Path<String>,
) -> Response {
    let (history, trail) = match read(&state, &console, &session, &out_trade_no).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let order = &history.order;
    let now = OffsetDateTime::now_utc();
    let base = format!("/console/orders/{}", path_segment(&order.out_trade_no));
    let can_redeliver = !history.events.is_empty() && !state.webhook_endpoints.is_empty();
    let content = html! {
        h1 { "Order " (order.out_trade_no) }
        div class="card" {
            dl {
                dt { "Status" } dd class={ "status " (order.status.as_str()) } { (order.status.as_str()) }
                dt { "Subject" } dd { (order.subject) }
                @if let Some(body) = &order.body { dt { "Description" } dd { (body) } }
                dt { "Amount" } dd { (order.total_amount) }
                dt { "Refunded" } dd id="refunded" { (Amount::from_fen(order.refunded_fen).map(|a| a.to_string()).unwrap_or_default()) }
                dt { "Product" } dd { (order.product.as_str()) }
                dt { "Alipay trade_no" } dd { (order.trade_no.as_deref().unwrap_or("—")) }
                dt { "Buyer" } dd { (order.buyer_id.as_deref().unwrap_or("—")) }
                dt { "Created" } dd { (layout::time(order.created_at)) }
                dt { "Expires" } dd {
                    (layout::time(order.expires_at))
                    @if order.status == OrderStatus::Pending && order.expires_at < now { " (past)" }
                }
                @if let Some(at) = order.paid_at { dt { "Paid" } dd { (layout::time(at)) } }
                @if let Some(at) = order.closed_at { dt { "Closed" } dd { (layout::time(at)) } }
            }
        }
        (actions::buttons(&session, order, can_redeliver))
        div class="card" id="timeline" {
            h2 { "Timeline" }
            table {
                thead { tr { th { "When (Beijing)" } th { "What" } th class="num" { "Amount" } th { "Message" } } }
                tbody {
                    @for entry in history.timeline.entries() {
                        tr class={ "entry " (entry.kind.as_str()) } {
                            td class="when" { (layout::time(entry.at)) }
                            td {
                                @if entry.kind == EntryKind::Anomaly { strong class="error" { (entry.text) } }
                                @else { (entry.text) }
                            }
                            td class="num" { (entry.amount.map(|a| a.to_string()).unwrap_or_default()) }
                            td {
                                @if let Some(message) = &entry.message {
                                    a href={ (base) "/messages/" (message.id) } { "as received" }
                                }
                            }
                        }
                    }
                }
            }
        }
        div class="card" id="refunds" {
            h2 { "Refunds" }
            @if history.refunds.is_empty() { p class="muted" { "None." } } @else {
                table {
                    thead { tr { th { "Requested" } th { "out_request_no" } th class="num" { "Amount" } th { "Status" } th { "Reason" } } }
                    tbody { @for refund in &history.refunds { tr {
                        td class="when" { (layout::time(refund.created_at)) } td { (refund.out_request_no) }
                        td class="num" { (refund.amount) } td { (refund.status.as_str()) }
                        td { (refund.reason.as_deref().unwrap_or("")) }
                    } } }
                }
            }
        }
        (trail_card(&trail))
    };
    layout::page(&console.csp, &order.out_trade_no, Some(&session), content)
}

fn trail_card(trail: &[ConsoleAction]) -> Markup {
    html! {
        div class="card" id="actions" {
            h2 { "Done here by operators" }
            @if trail.is_empty() { p class="muted" { "Nothing yet." } } @else {
                table {
                    thead { tr { th { "When" } th { "Who" } th { "Asked" } th { "Outcome" } } }
                    tbody { @for action in trail { tr {
                        td class="when" { (layout::time(action.at)) } td { (action.operator) }
                        td { (action.request) } td { (action.outcome) }
                    } } }
                }
            }
        }
    }
}

/// The message `id`, if it is about this order.
async fn message(state: &AppState, out_trade_no: &str, id: i64) -> Result<AuditRecord, Response> {
    match state.store.message(id).await {
        Ok(Some(record)) if record.out_trade_no.as_deref() == Some(out_trade_no) => Ok(record),
        Ok(_) => Err(StatusCode::NOT_FOUND.into_response()),
        Err(error) => {
            tracing::error!(error = %Report(&error), "console message failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

pub async fn raw_message(
    State(state): State<AppState>,
    On(console): On,
    session: Session,
    Path((out_trade_no, id)): Path<(String, i64)>,
) -> Response {
    match message(&state, &out_trade_no, id).await {
        Ok(record) => {
            let back = format!("/console/orders/{}", path_segment(&out_trade_no));
            message_page(&console, &session, &record, &back, "Back to the order")
        }
        Err(response) => response,
    }
}

/// A message as received: its parameters decoded in the charset it declared, and a link to its
/// bytes (`{back}/messages/{id}/raw`).
pub(super) fn message_page(
    console: &Console,
    session: &Session,
    record: &AuditRecord,
    back: &str,
    back_label: &str,
) -> Response {
    // A notification is a form in its charset; an API answer is JSON text.
    let decoded = RawParams::parse(&record.raw).ok().and_then(|raw| {
        let charset = raw.encoding().ok()?.name();
        Some((charset, raw.decode().ok()?))
    });
    let about = record.out_trade_no.as_deref().unwrap_or("no order");
    let content = html! {
        h1 { "Message " (record.id) " about " (about) }
        div class="card" {
            dl {
                dt { "Received" } dd { (layout::time(record.received_at)) }
                dt { "Source" } dd { (record.source.as_str()) }
                dt { "Verdict" } dd { (record.verdict.as_str()) }
                @if let Some(reason) = record.reason {
                    dt { "Why" } dd class="error" { (reason.explain()) }
                }
                dt { "Size" } dd { (record.raw.len()) " bytes" }
            }
            p {
                a href={ (back) "/messages/" (record.id) "/raw" } id="download" { "Download the bytes as received" }
                " · " a href=(back) { (back_label) }
            }
        }
        @match decoded {
            Some((charset, params)) if !params.is_empty() && record.raw.contains(&b'=') => {
                div class="card" {
                    h2 { "Parameters, decoded from " (charset) }
                    table id="params" {
                        thead { tr { th { "Name" } th { "Value" } } }
                        tbody { @for (name, value) in &params { tr { td { code { (name) } } td { code { (value) } } } } }
                    }
                }
            }
            _ => {
                div class="card" {
                    h2 { "Text" }
                    pre id="text" { (String::from_utf8_lossy(&record.raw)) }
                }
            }
        }
    };
    layout::page(&console.csp, "Message", Some(session), content)
}

/// The exact bytes, for whoever needs them (a signature check by hand, a ticket to Alipay).
pub async fn raw_bytes(
    State(state): State<AppState>,
    _console: On,
    _session: Session,
    Path((out_trade_no, id)): Path<(String, i64)>,
) -> Response {
    match message(&state, &out_trade_no, id).await {
        Ok(record) => bytes_response(record),
        Err(response) => response,
    }
}

pub(super) fn bytes_response(record: AuditRecord) -> Response {
    let id = record.id;
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"message-{id}.bin\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from(record.raw),
    )
        .into_response()
}
