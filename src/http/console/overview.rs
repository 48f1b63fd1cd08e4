//! The overview: what ops check first. Orders by status today and over 7 days, Alipay's
//! messages by verdict over 24 hours, anomalies waiting, the most overdue pending order,
//! reconciliation's last run and the webhook backlog.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use time::{Duration, OffsetDateTime, Time};

use super::auth::Session;
use super::{layout, path_segment, On};
use crate::http::AppState;
use crate::orders::stats::{StatusCounts, VerdictCount};
use crate::orders::{Order, OrderStatus, StoreError, Verdict};
use crate::report::Report;

/// Everything the page shows, read before any of it is drawn.
struct Overview {
    today: StatusCounts,
    week: StatusCounts,
    verdicts: Vec<VerdictCount>,
    anomalies: i64,
    overdue: Option<Order>,
    backlog: Option<crate::orders::outbox::Backlog>,
}

pub async fn page(State(state): State<AppState>, On(console): On, session: Session) -> Response {
    let now = OffsetDateTime::now_utc();
    let overview = match read(&state, now).await {
        Ok(overview) => overview,
        Err(error) => {
            tracing::error!(error = %Report(&error), "console overview failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let last_run = state.metrics.last_reconcile_run();
    let content = html! {
        h1 { "Overview" }
        div class="card" {
            h2 { "Orders" }
            table {
                thead { tr { th { "Created" } @for status in STATUSES { th class="num" { (status.as_str()) } } th class="num" { "all" } } }
                tbody {
                    (count_row("today (Beijing)", &overview.today))
                    (count_row("last 7 days", &overview.week))
                }
            }
        }
        div class="card" {
            h2 { "Alipay's messages, last 24 hours" }
            (chart(&overview.verdicts, now))
            p class="muted" { "Verified messages only: refused ones (bad signature, malformed) are counted in /metrics." }
        }
        div class="card" {
            h2 { "Needs a look" }
            dl {
                dt { "Anomalies waiting" }
                dd { a href="/console/anomalies" id="anomalies-waiting" { (overview.anomalies) } }
                dt { "Oldest pending order past its expiry" }
                dd {
                    @if let Some(order) = &overview.overdue {
                        a href={ "/console/orders/" (path_segment(&order.out_trade_no)) } { (order.out_trade_no) }
                        " expired " (layout::time(order.expires_at))
                    } @else { "none" }
                }
                dt { "Reconciliation (this instance)" }
                dd {
                    @match last_run {
                        Some((at, orders)) => { "last run " (layout::time(at)) ", " (orders) " orders" }
                        None => { "no run yet" }
                    }
                }
                @if let Some(backlog) = &overview.backlog {
                    dt { "Webhook backlog" }
                    dd {
                        (backlog.pending) " waiting"
                        @if let Some(oldest) = backlog.oldest { ", oldest since " (layout::time(oldest)) }
                    }
                }
            }
        }
    };
    layout::page(&console.csp, "Overview", Some(&session), content)
}

const STATUSES: [OrderStatus; 4] = [
    OrderStatus::Pending,
    OrderStatus::Paid,
    OrderStatus::Closed,
    OrderStatus::Refunded,
];

async fn read(state: &AppState, now: OffsetDateTime) -> Result<Overview, StoreError> {
    let beijing = now.to_offset(super::orders::BEIJING);
    let midnight = beijing.replace_time(Time::MIDNIGHT);
    let store = &state.store;
    Ok(Overview {
        today: store.status_counts(midnight).await?,
        week: store.status_counts(midnight - Duration::days(6)).await?,
        verdicts: store
            .verdict_counts(hour_of(now) - Duration::hours(23))
            .await?,
        anomalies: store.unreviewed_anomalies().await?,
        overdue: store.oldest_overdue(now).await?,
        backlog: if state.webhook_endpoints.is_empty() {
            None
        } else {
            Some(store.backlog().await?)
        },
    })
}

fn count_row(label: &str, counts: &StatusCounts) -> Markup {
    html! {
        tr {
            td { (label) }
            @for status in STATUSES { td class="num" { (counts.of(status)) } }
            td class="num" { (counts.total()) }
        }
    }
}

fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_time(Time::from_hms(at.hour(), 0, 0).expect("a valid hour"))
}

/// Drawn bottom-up in this order, with these colours (and named in the legend).
const SERIES: [(Verdict, &str); 4] = [
    (Verdict::Applied, "#198754"),
    (Verdict::Duplicate, "#8fb3ff"),
    (Verdict::Ignored, "#adb5bd"),
    (Verdict::Anomaly, "#dc3545"),
];

/// 24 stacked bars, one per hour, as inline SVG (nothing to load; it scales to the card).
fn chart(counts: &[VerdictCount], now: OffsetDateTime) -> Markup {
    let first = hour_of(now) - Duration::hours(23);
    let hours: Vec<[i64; 4]> = (0..24)
        .map(|i| {
            let hour = first + Duration::hours(i);
            SERIES.map(|(verdict, _)| {
                counts
                    .iter()
                    .filter(|c| c.hour == hour && c.verdict == verdict)
                    .map(|c| c.count)
                    .sum()
            })
        })
        .collect();
    let peak = hours
        .iter()
        .map(|h| h.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, step, bar) = (960.0, 130.0, 40.0, 32.0);
    let total: i64 = hours.iter().flatten().sum();
    html! {
        svg class="chart" viewBox={ "0 0 " (width) " " (height + 18.0) } role="img"
            aria-label={ (total) " messages in the last 24 hours" } {
            @for (i, hour) in hours.iter().enumerate() {
                @let x = i as f64 * step + (step - bar) / 2.0;
                @let mut base = height;
                @for (j, (verdict, colour)) in SERIES.iter().enumerate() {
                    @let h = hour[j] as f64 / peak as f64 * (height - 4.0);
                    @if hour[j] > 0 {
                        @let y = { base -= h; base };
                        rect x=(x) y=(y) width=(bar) height=(h) fill=(colour) {
                            title { (layout::time(first + Duration::hours(i as i64))) ": " (hour[j]) " " (verdict.as_str()) }
                        }
                    }
                }
            }
            // Closed explicitly: in SVG an unclosed <line> would swallow the labels after it.
            line x1="0" y1=(height) x2=(width) y2=(height) stroke="#c9ced6" {}
            @for back in [24, 18, 12, 6] {
                text x=((24 - back) as f64 * step) y=(height + 15.0) font-size="13" fill="#667" { "−" (back) " h" }
            }
            text x=(width) y=(height + 15.0) font-size="13" fill="#667" text-anchor="end" { "now" }
        }
        p class="legend" {
            @for (j, (verdict, colour)) in SERIES.iter().enumerate() {
                svg width="10" height="10" aria-hidden="true" { rect width="10" height="10" fill=(colour) {} }
                " " (verdict.as_str()) " " (hours.iter().map(|h| h[j]).sum::<i64>()) "  "
            }
        }
    }
}
