#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    alipay_notify::cli::Cli::parse().run().await
}
