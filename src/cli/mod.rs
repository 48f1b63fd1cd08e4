//! The command line: `serve`, `migrate`, `orders` for ops to read order state, and `events` to
//! read what webhooks were told and queue an event again.
//!
//! - `orders`, `events`: each command group with what it prints.
//! - `table`: columns that line up on screen, printable values, times as ops read them.

mod events;
mod orders;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::events::EventsCommand;
use self::orders::OrdersCommand;
use crate::config::Settings;
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

/// The settings `serve` needs, and where the rest are described.
fn serve_help() -> String {
    format!(
        "Required settings (environment variables, or the [alipay] section of a profile file): \
         {}.\nUsually set too: DATABASE_URL, PUBLIC_URL, API_TOKEN. Every setting and its default: \
         config/default.toml and the README's Configuration table.",
        crate::config::REQUIRED
    )
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
                crate::orders::connect(
                    settings.database.url.expose(),
                    1,
                    crate::orders::events::Subscriptions::none(),
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
