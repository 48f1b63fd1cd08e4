//! `orders`: read orders straight from the database, and reconcile one on demand.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::table::{clip, printable, time, Align, Table};
use crate::alipay::gateway::{GatewayClient, RetryPolicy};
use crate::config::Settings;
use crate::money::format_fen;
use crate::orders::{self, Order, OrderHistory, OrderStatus};
use crate::reconcile::{Reconciled, Reconciler};

#[derive(Debug, Subcommand)]
pub(super) enum OrdersCommand {
    /// One order: its fields, its refunds and its timeline (every message, refund and webhook).
    Show {
        out_trade_no: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Ask Alipay about one order now (alipay.trade.query) and apply the answer.
    Reconcile { out_trade_no: String },
    /// Recent orders, newest first.
    List {
        #[arg(long, value_parser = parse_status)]
        status: Option<OrderStatus>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(text: &str) -> Result<OrderStatus, String> {
    OrderStatus::parse(text).ok_or_else(|| "expected pending, paid, closed or refunded".into())
}

impl OrdersCommand {
    pub(super) async fn run(self, settings: &Settings) -> anyhow::Result<ExitCode> {
        let store = orders::connect_existing(settings.database.url.expose(), 2).await?;
        match self {
            Self::Show { out_trade_no, json } => {
                let Some(history) = OrderHistory::read(store.as_ref(), &out_trade_no).await? else {
                    eprintln!("no order {out_trade_no}");
                    return Ok(ExitCode::from(2));
                };
                if json {
                    // `order` and `notifications` as before; `refunds` and `timeline` added.
                    let value = serde_json::json!({
                        "order": history.order,
                        "notifications": history.notifications,
                        "refunds": history.refunds,
                        "timeline": history.timeline,
                    });
                    println!("{}", serde_json::to_string_pretty(&value)?);
                } else {
                    print_history(&history);
                }
            }
            Self::Reconcile { out_trade_no } => {
                let Some(order) = store.order(&out_trade_no).await? else {
                    eprintln!("no order {out_trade_no}");
                    return Ok(ExitCode::from(2));
                };
                let reconciler = Reconciler {
                    alipay: Arc::new(settings.alipay()?),
                    store: store.clone(),
                    gateway: Arc::new(GatewayClient::new(RetryPolicy::default())),
                    metrics: Default::default(),
                };
                match reconciler.reconcile(&order).await? {
                    Reconciled::Applied(outcome) => {
                        let status = outcome.order.map_or("-".into(), |o| o.status.to_string());
                        let reason = outcome
                            .reason
                            .map(|r| format!(" ({r}: {})", r.explain()))
                            .unwrap_or_default();
                        println!(
                            "{out_trade_no}: {}{reason}; order is {status}",
                            outcome.verdict.as_str()
                        );
                    }
                    Reconciled::Waiting(why) => println!("{out_trade_no}: still pending: {why}"),
                }
            }
            Self::List {
                status,
                limit,
                json,
            } => {
                let orders = store.orders(status, limit).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&orders)?);
                } else {
                    order_list(&orders).print("");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// How much of a subject `orders list` shows, in cells on screen (`orders show` shows it all).
const SUBJECT_WIDTH: usize = 32;

/// `orders list` as a table.
fn order_list(orders: &[Order]) -> Table {
    let right = Align::Right;
    let mut table = Table::new(&[Align::Left, Align::Left, right, right], 2);
    table.row([
        "out_trade_no",
        "status",
        "amount",
        "refunded",
        "subject",
        "created_at",
    ]);
    for order in orders {
        table.row([
            order.out_trade_no.as_str(),
            order.status.as_str(),
            &order.total_amount.to_string(),
            &format_fen(order.refunded_fen),
            &clip(&printable(&order.subject), SUBJECT_WIDTH),
            &time(order.created_at),
        ]);
    }
    table
}

fn print_history(history: &OrderHistory) {
    order_fields(&history.order).print("");
    println!();
    if history.refunds.is_empty() {
        println!("refunds: none");
    } else {
        println!("refunds:");
        let mut table = Table::new(&[Align::Left, Align::Right], 2);
        table.row([
            "out_request_no",
            "amount",
            "status",
            "requested_at",
            "reason",
        ]);
        for refund in &history.refunds {
            table.row([
                refund.out_request_no.as_str(),
                &refund.amount.to_string(),
                refund.status.as_str(),
                &time(refund.created_at),
                refund.reason.as_deref().unwrap_or("-"),
            ]);
        }
        table.print("  ");
    }
    println!();
    println!("timeline:");
    let mut table = Table::new(&[], 2);
    for entry in history.timeline.entries() {
        let message = entry.message.as_ref().map(|m| format!("#{}", m.id));
        table.row([
            time(entry.at).as_str(),
            entry.kind.as_str(),
            message.as_deref().unwrap_or(""),
            &entry.text,
        ]);
    }
    table.print("  ");
}

/// The order's fields, one per line, values lined up.
fn order_fields(order: &Order) -> Table {
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let time_or_dash = |v: Option<time::OffsetDateTime>| v.map_or_else(|| "-".into(), time);
    let mut table = Table::new(&[], 1);
    for (name, value) in [
        ("out_trade_no:", order.out_trade_no.clone()),
        ("status:", order.status.as_str().to_owned()),
        ("subject:", order.subject.clone()),
        ("product:", order.product.as_str().to_owned()),
        ("total_amount:", order.total_amount.to_string()),
        ("refunded_amount:", format_fen(order.refunded_fen)),
        ("trade_no:", or_dash(order.trade_no.as_deref())),
        ("buyer_id:", or_dash(order.buyer_id.as_deref())),
        (
            "alipay_trade_status:",
            or_dash(order.alipay_trade_status.map(|s| s.as_str())),
        ),
        ("created_at:", time(order.created_at)),
        ("expires_at:", time(order.expires_at)),
        ("paid_at:", time_or_dash(order.paid_at)),
        ("closed_at:", time_or_dash(order.closed_at)),
    ] {
        table.row([name, value.as_str()]);
    }
    table
}
