//! `alipay-notify-bench`: load-test the notify path over HTTP against a fresh database, then
//! check every order; `alipay-notify-bench console-list` times the console's order list on a
//! million orders.

use std::process::ExitCode;

use alipay_notify::config::LogFormat;
use alipay_notify_bench::console_list::ConsoleListArgs;
use alipay_notify_bench::BenchArgs;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "alipay-notify-bench",
    version,
    about = "Load-test the notify path over HTTP against a fresh database, then check every order",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: BenchArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Time the console's order list and overview on a million seeded orders, on SQLite and
    /// Postgres.
    ConsoleList(ConsoleListArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    alipay_notify::telemetry::init(LogFormat::Text);
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::ConsoleList(args)) => args.run().await.map(|()| ExitCode::SUCCESS),
        None => cli.args.run().await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
