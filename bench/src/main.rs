//! `alipay-notify-bench`: load-test the notify path over HTTP against a fresh database, then
//! check every order.

use std::process::ExitCode;

use alipay_notify::config::LogFormat;
use alipay_notify_bench::BenchArgs;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "alipay-notify-bench",
    version,
    about = "Load-test the notify path over HTTP against a fresh database, then check every order"
)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    alipay_notify::telemetry::init(LogFormat::Text);
    match Cli::parse().args.run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
