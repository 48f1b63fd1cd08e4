//! `alipay-sim`: the simulated Alipay gateway on its own, for local development.

use std::process::ExitCode;

use alipay_notify::config::LogFormat;
use alipay_sim::command::SimArgs;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "alipay-sim",
    version,
    about = "Run the simulated Alipay gateway (for development; never part of `serve`)"
)]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    alipay_notify::telemetry::init(LogFormat::Text);
    match Cli::parse().args.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
