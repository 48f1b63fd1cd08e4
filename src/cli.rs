//! The command line: `serve`, `migrate`, and `orders` for ops to read order state.

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
