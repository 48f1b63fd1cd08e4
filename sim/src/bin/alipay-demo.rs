//! `alipay-demo`: the whole payment flow on one machine, with no configuration.

use std::process::ExitCode;

use alipay_notify::config::LogFormat;
use alipay_sim::demo::DemoArgs;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "alipay-demo",
    version,
    about = "Run the whole payment flow locally: the service with a demo shop and the simulated Alipay"
)]
struct Cli {
    #[command(flatten)]
    args: DemoArgs,
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
