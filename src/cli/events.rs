//! `events`: read what webhooks and the feed were told, and queue an event again.

use std::process::ExitCode;

use clap::Subcommand;

use super::table::time;
use crate::config::Settings;
use crate::orders;

#[derive(Debug, Subcommand)]
pub(super) enum EventsCommand {
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

impl EventsCommand {
    pub(super) async fn run(self, settings: &Settings) -> anyhow::Result<ExitCode> {
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
                            time(event.created_at)
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
                        let next = d.next_attempt_at.map(|t| format!(", next at {}", time(t)));
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
                            time(a.attempted_at),
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
