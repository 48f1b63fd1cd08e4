//! The command line: `serve`, `migrate`, `orders` for ops to read order state, and `events` to
//! read what webhooks were told and queue an event again.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::alipay::gateway::{GatewayClient, RetryPolicy};
use crate::config::Settings;
use crate::orders::{self, Order, OrderStatus};
use crate::reconcile::{Reconciled, Reconciler};
use crate::report::Report;
use crate::startup::{shutdown_signal, Application};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "alipay-notify",
    version,
    about = "Take Alipay page payments safely"
)]
pub struct Cli {
    /// A profile file (TOML) layered over config/default.toml; environment variables still win.
    #[arg(long, global = true, env = "CONFIG_FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (applies migrations first).
    #[command(after_help = serve_help())]
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Read orders straight from the database.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Read the events told to webhooks and the feed; queue one again.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Events in the order they were committed, after a cursor.
    List {
        /// An event id: list those committed after it.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print the events' JSON bodies, one per line.
        #[arg(long)]
        json: bool,
    },
    /// One event with its deliveries and every attempt.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Queue an event for delivery again to every configured endpoint (or one).
    Redeliver {
        id: String,
        /// Only this endpoint (its name; `default` for WEBHOOK_URL).
        #[arg(long)]
        endpoint: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum OrdersCommand {
    /// One order with its audit log.
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

/// The settings `serve` needs, and where the rest are described.
fn serve_help() -> String {
    format!(
        "Required settings (environment variables, or the [alipay] section of a profile file): \
         {}.\nUsually set too: DATABASE_URL, PUBLIC_URL, API_TOKEN. Every setting and its default: \
         config/default.toml and the README's Configuration table.",
        crate::config::REQUIRED
    )
}

fn parse_status(text: &str) -> Result<OrderStatus, String> {
    OrderStatus::parse(text).ok_or_else(|| "expected pending, paid, closed or refunded".into())
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        let settings = match Settings::load(self.config.as_deref()) {
            Ok(settings) => settings,
            Err(error) => {
                eprintln!("error: {}", Report(&error));
                return ExitCode::FAILURE;
            }
        };
        telemetry::init(settings.log.format);
        match self.command.run(&settings).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {}", Report(error.as_ref()));
                ExitCode::FAILURE
            }
        }
    }
}

impl Command {
    async fn run(self, settings: &Settings) -> anyhow::Result<ExitCode> {
        match self {
            Self::Serve => {
                let app = Application::build(settings).await?;
                app.run_until(shutdown_signal()).await?;
            }
            Self::Migrate => {
                orders::connect(
                    settings.database.url.expose(),
                    1,
                    orders::events::Subscriptions::none(),
                )
                .await?
                .migrate()
                .await?;
                println!("migrations applied");
            }
            Self::Orders(command) => return command.run(settings).await,
            Self::Events(command) => return command.run(settings).await,
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl OrdersCommand {
    async fn run(self, settings: &Settings) -> anyhow::Result<ExitCode> {
        let store = orders::connect_existing(settings.database.url.expose(), 2).await?;
        match self {
            Self::Show { out_trade_no, json } => {
                let Some(order) = store.order(&out_trade_no).await? else {
                    eprintln!("no order {out_trade_no}");
                    return Ok(ExitCode::from(2));
                };
                let log = store.audit_log(&out_trade_no).await?;
                if json {
                    let value = serde_json::json!({ "order": order, "notifications": log });
                    println!("{}", serde_json::to_string_pretty(&value)?);
                } else {
                    print_order(&order);
                    println!("notifications:");
                    for entry in log {
                        println!(
                            "  {}  {:<6} {:<15} {:<9} {}",
                            entry.received_at,
                            entry.source,
                            entry.trade_status.as_deref().unwrap_or("-"),
                            entry.verdict,
                            entry.reason.map_or("", |r| r.as_str())
                        );
                    }
                }
            }
            Self::Reconcile { out_trade_no } => {
                let Some(order) = store.order(&out_trade_no).await? else {
                    eprintln!("no order {out_trade_no}");
                    return Ok(ExitCode::from(2));
                };
                let reconciler = Reconciler {
                    alipay: std::sync::Arc::new(settings.alipay()?),
                    store: store.clone(),
                    gateway: std::sync::Arc::new(GatewayClient::new(RetryPolicy::default())),
                    metrics: Default::default(),
                };
                match reconciler.reconcile(&order).await? {
                    Reconciled::Applied(outcome) => {
                        let status = outcome.order.map_or("-".into(), |o| o.status.to_string());
                        let reason = outcome
                            .reason
                            .map(|r| format!(" ({r})"))
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
                    println!(
                        "{:<32} {:<9} {:>14}  {:<30} subject",
                        "out_trade_no", "status", "amount", "created_at"
                    );
                    for order in orders {
                        println!(
                            "{:<32} {:<9} {:>14}  {:<30} {}",
                            order.out_trade_no,
                            order.status,
                            order.total_amount,
                            order.created_at,
                            order.subject
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl EventsCommand {
    async fn run(self, settings: &Settings) -> anyhow::Result<ExitCode> {
        let store = orders::connect_existing(settings.database.url.expose(), 2).await?;
        match self {
            Self::List { after, limit, json } => {
                let Some(events) = store.events_after(after.as_deref(), limit).await? else {
                    eprintln!("no event {}", after.unwrap_or_default());
                    return Ok(ExitCode::from(2));
                };
                if !json {
                    println!(
                        "{:<30} {:<17} {:<32} created_at",
                        "id", "type", "out_trade_no"
                    );
                }
                for event in events {
                    if json {
                        println!("{}", event.payload);
                    } else {
                        println!(
                            "{:<30} {:<17} {:<32} {}",
                            event.id,
                            event.event_type,
                            event.out_trade_no.as_deref().unwrap_or("-"),
                            event.created_at
                        );
                    }
                }
            }
            Self::Show { id, json } => {
                let Some(detail) = store.event(&id).await? else {
                    eprintln!("no event {id}");
                    return Ok(ExitCode::from(2));
                };
                if json {
                    let value = serde_json::json!({
                        "event": serde_json::from_str::<serde_json::Value>(&detail.event.payload)?,
                        "deliveries": detail.deliveries,
                        "attempts": detail.attempts,
                    });
                    println!("{}", serde_json::to_string_pretty(&value)?);
                } else {
                    println!("{}", detail.event.payload);
                    println!("deliveries:");
                    for d in &detail.deliveries {
                        let next = d.next_attempt_at.map(|t| format!(", next at {t}"));
                        println!(
                            "  {:<16} {:<9} {} attempts{}",
                            d.endpoint,
                            d.status.as_str(),
                            d.attempts,
                            next.unwrap_or_default()
                        );
                    }
                    println!("attempts:");
                    for a in &detail.attempts {
                        let status = a.status_code.map_or("-".into(), |s| s.to_string());
                        println!(
                            "  {}  {:<16} {:>4} {:>6} ms  {}",
                            a.attempted_at,
                            a.endpoint,
                            status,
                            a.latency_ms,
                            a.error.as_deref().unwrap_or("")
                        );
                    }
                }
            }
            Self::Redeliver { id, endpoint } => {
                let configured = crate::webhooks::endpoint::endpoints(&settings.webhooks)?;
                let names: Vec<String> = configured
                    .into_iter()
                    .map(|e| e.name)
                    .filter(|name| endpoint.as_ref().is_none_or(|wanted| wanted == name))
                    .collect();
                if names.is_empty() {
                    eprintln!(
                        "no webhook endpoint {}is configured",
                        endpoint.map(|e| format!("named {e} ")).unwrap_or_default()
                    );
                    return Ok(ExitCode::from(2));
                }
                let now = time::OffsetDateTime::now_utc();
                if !store.redeliver(&id, &names, now).await? {
                    eprintln!("no event {id}");
                    return Ok(ExitCode::from(2));
                }
                println!("{id}: queued for {}", names.join(", "));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn print_order(order: &Order) {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time_or_dash =
        |v: Option<time::OffsetDateTime>| v.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
    println!("out_trade_no:        {}", order.out_trade_no);
    println!("status:              {}", order.status);
    println!("subject:             {}", order.subject);
    println!("total_amount:        {}", order.total_amount);
    println!("trade_no:            {}", or_dash(&order.trade_no));
    println!("buyer_id:            {}", or_dash(&order.buyer_id));
    println!(
        "alipay_trade_status: {}",
        order.alipay_trade_status.map_or("-", |s| s.as_str())
    );
    println!("created_at:          {}", order.created_at);
    println!("expires_at:          {}", order.expires_at);
    println!("paid_at:             {}", time_or_dash(order.paid_at));
    println!("closed_at:           {}", time_or_dash(order.closed_at));
}
