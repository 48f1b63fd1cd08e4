//! What operators do to an order: ask Alipay now, refund, close. Each takes two posts: the first
//! shows what will happen and asks for confirmation, the second does it and records who did
//! what and what came of it. Viewers get 403; every post needs the session's CSRF token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::Session;
use super::{layout, path_segment, Console, On};
use crate::http::AppState;
use crate::orders::actions::{ActionKind, ConsoleAction};
use crate::orders::input::generate_out_trade_no;
use crate::orders::{Order, OrderStatus};
use crate::reconcile::{Reconciled, Reconciler};
use crate::refunds::{self, RefundRequest};
use crate::report::Report;

/// Every action's form: the CSRF token, whether this is the confirmation, and the refund's
/// fields (ignored by the others).
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    confirmed: bool,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    /// Chosen when the confirmation is shown, so confirming twice refunds once.
    #[serde(default)]
    out_request_no: String,
}

pub async fn reconcile(
    state: State<AppState>,
    console: On,
    session: Session,
    path: Path<String>,
    form: Form<ActionForm>,
) -> Response {
    act(ActionKind::Reconcile, state, console, session, path, form).await
}

pub async fn refund(
    state: State<AppState>,
    console: On,
    session: Session,
    path: Path<String>,
    form: Form<ActionForm>,
) -> Response {
    act(ActionKind::Refund, state, console, session, path, form).await
}

pub async fn redeliver(
    state: State<AppState>,
    console: On,
    session: Session,
    path: Path<String>,
    form: Form<ActionForm>,
) -> Response {
    act(
        ActionKind::RedeliverWebhook,
        state,
        console,
        session,
        path,
        form,
    )
    .await
}

pub async fn close(
    state: State<AppState>,
    console: On,
    session: Session,
    path: Path<String>,
    form: Form<ActionForm>,
) -> Response {
    act(ActionKind::Close, state, console, session, path, form).await
}

async fn act(
    kind: ActionKind,
    State(state): State<AppState>,
    On(console): On,
    session: Session,
    Path(out_trade_no): Path<String>,
    Form(mut form): Form<ActionForm>,
) -> Response {
    if !session.csrf_matches(&form.csrf) {
        return refused(
            &console,
            &session,
            "The form has expired; reload the page and try again.",
        );
    }
    if !session.may_act() {
        return refused(&console, &session, "Viewers cannot act on orders.");
    }
    let order = match state.store.order(&out_trade_no).await {
        Ok(Some(order)) => order,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            tracing::error!(error = %Report(&error), "console action: reading the order failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if kind == ActionKind::Close && order.status != OrderStatus::Pending {
        return refused(&console, &session, "Only a pending order can be closed.");
    }
    if !form.confirmed {
        if form.out_request_no.is_empty() {
            form.out_request_no = format!("C{}", generate_out_trade_no(OffsetDateTime::now_utc()));
        }
        return confirmation(&console, &session, kind, &order, &form);
    }
    let (request, outcome) = perform(&state, kind, &order, &form).await;
    let action = ConsoleAction {
        operator: session.operator.clone(),
        kind,
        out_trade_no: Some(order.out_trade_no.clone()),
        request,
        outcome,
        at: OffsetDateTime::now_utc(),
    };
    tracing::info!(
        operator = %action.operator,
        action = kind.as_str(),
        out_trade_no = %order.out_trade_no,
        outcome = %action.outcome,
        "console action"
    );
    if let Err(error) = state.store.record_action(&action).await {
        tracing::error!(error = %Report(&error), "console action done but not recorded");
    }
    let back = format!(
        "/console/orders/{}#actions",
        path_segment(&order.out_trade_no)
    );
    Redirect::to(&back).into_response()
}

/// Does the action; says what was asked and what came of it, in words for the trail.
async fn perform(
    state: &AppState,
    kind: ActionKind,
    order: &Order,
    form: &ActionForm,
) -> (String, String) {
    let reconciler = || Reconciler {
        alipay: state.alipay.clone(),
        store: state.store.clone(),
        gateway: state.gateway.clone(),
        metrics: state.metrics.clone(),
    };
    match kind {
        ActionKind::Refund => {
            let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
            let request = match &reason {
                Some(reason) => format!("refund {} ({reason})", form.amount.trim()),
                None => format!("refund {}", form.amount.trim()),
            };
            let asked = RefundRequest {
                amount: form.amount.clone(),
                reason,
                out_request_no: Some(form.out_request_no.clone()),
            };
            let store = state.store.as_ref();
            let outcome = match refunds::refund(
                &state.alipay,
                store,
                &state.gateway,
                &order.out_trade_no,
                asked,
            )
            .await
            {
                Ok(refund) => format!(
                    "refund {} {}",
                    refund.out_request_no,
                    refund.status.as_str()
                ),
                Err(error) => format!("not refunded: {}", Report(&error)),
            };
            (request, outcome)
        }
        ActionKind::Reconcile => {
            let outcome = describe(reconciler().reconcile(order).await);
            ("ask Alipay now".to_owned(), outcome)
        }
        ActionKind::Close => {
            let outcome = describe(reconciler().close_now(order).await);
            ("close".to_owned(), outcome)
        }
        ActionKind::RedeliverWebhook => {
            let outcome = match redeliver_latest(state, order).await {
                Ok(Some(event)) => format!("event {event} queued for every endpoint"),
                Ok(None) => "no event about this order".to_owned(),
                Err(error) => format!("failed: {}", Report(&error)),
            };
            ("redeliver the latest webhook event".to_owned(), outcome)
        }
        ActionKind::ReviewAnomaly => unreachable!("anomalies are reviewed on their own page"),
    }
}

/// Queues the order's latest event again for every configured endpoint; its id.
async fn redeliver_latest(
    state: &AppState,
    order: &Order,
) -> Result<Option<String>, crate::orders::StoreError> {
    let events = state.store.order_events(&order.out_trade_no).await?;
    let Some(latest) = events.iter().max_by_key(|e| e.event.created_at) else {
        return Ok(None);
    };
    let id = latest.event.id.clone();
    state
        .store
        .redeliver(&id, &state.webhook_endpoints, OffsetDateTime::now_utc())
        .await?;
    Ok(Some(id))
}

fn describe(result: Result<Reconciled, crate::reconcile::ReconcileError>) -> String {
    match result {
        Ok(Reconciled::Applied(outcome)) => {
            let status = outcome
                .order
                .map_or("unchanged".to_owned(), |o| o.status.as_str().to_owned());
            format!(
                "Alipay's answer {}; order {status}",
                outcome.verdict.as_str()
            )
        }
        Ok(Reconciled::Waiting(why)) => format!("still pending: {why}"),
        Err(error) => format!("failed: {}", Report(&error)),
    }
}

fn refused(console: &Arc<Console>, session: &Session, why: &str) -> Response {
    let content = html! { h1 { "Not done" } p class="error" role="alert" { (why) } };
    let mut response = layout::page(&console.csp, "Not done", Some(session), content);
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// "Refund 2.00 of order X?" with the same fields again and `confirmed`.
fn confirmation(
    console: &Arc<Console>,
    session: &Session,
    kind: ActionKind,
    order: &Order,
    form: &ActionForm,
) -> Response {
    let question = match kind {
        ActionKind::Refund => format!("Refund {} of order {}?", form.amount.trim(), order.out_trade_no),
        ActionKind::Close => format!(
            "Close order {}? Alipay is asked first: if the buyer has paid, it is marked paid instead.",
            order.out_trade_no
        ),
        ActionKind::RedeliverWebhook => format!(
            "Send the latest webhook event about order {} to every endpoint again?",
            order.out_trade_no
        ),
        _ => format!("Ask Alipay about order {} now?", order.out_trade_no),
    };
    let content = html! {
        div class="card" {
            h1 { "Confirm" }
            p { (question) }
            @if kind == ActionKind::Refund && !form.reason.trim().is_empty() {
                p { "Reason: " (form.reason.trim()) }
            }
            form method="post" action=(action_url(kind, &order.out_trade_no)) {
                (hidden(session, form))
                input type="hidden" name="confirmed" value="true";
                button type="submit" id="confirm" { "Confirm" }
                " "
                a href={ "/console/orders/" (path_segment(&order.out_trade_no)) } { "Cancel" }
            }
        }
    };
    layout::page(&console.csp, "Confirm", Some(session), content)
}

fn hidden(session: &Session, form: &ActionForm) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        input type="hidden" name="amount" value=(form.amount);
        input type="hidden" name="reason" value=(form.reason);
        input type="hidden" name="out_request_no" value=(form.out_request_no);
    }
}

pub fn action_url(kind: ActionKind, out_trade_no: &str) -> String {
    let name = match kind {
        ActionKind::Refund => "refund",
        ActionKind::Close => "close",
        ActionKind::RedeliverWebhook => "redeliver",
        _ => "reconcile",
    };
    format!("/console/orders/{}/{name}", path_segment(out_trade_no))
}

/// The action buttons of an order's page (none for viewers).
pub fn buttons(session: &Session, order: &Order, can_redeliver: bool) -> Markup {
    if !session.may_act() {
        return html! {};
    }
    html! {
        div class="card" id="act" {
            h2 { "Act" }
            form method="post" action=(action_url(ActionKind::Reconcile, &order.out_trade_no)) {
                input type="hidden" name="csrf" value=(session.csrf);
                button type="submit" id="reconcile" { "Ask Alipay now" }
            }
            @if can_redeliver {
                form method="post" action=(action_url(ActionKind::RedeliverWebhook, &order.out_trade_no)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" id="redeliver" { "Redeliver webhook" }
                }
            }
            @if order.status == OrderStatus::Pending {
                form method="post" action=(action_url(ActionKind::Close, &order.out_trade_no)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" id="close" { "Close" }
                }
            }
            @if matches!(order.status, OrderStatus::Paid) {
                form class="filters" method="post" action=(action_url(ActionKind::Refund, &order.out_trade_no)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label { "Refund amount" input name="amount" required size="8" inputmode="decimal"; }
                    label { "Reason" input name="reason" size="30" maxlength="256"; }
                    button type="submit" id="refund" { "Refund…" }
                }
            }
        }
    }
}
