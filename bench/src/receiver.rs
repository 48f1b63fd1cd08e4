//! A fast local webhook receiver for `--webhooks`: it verifies each delivery's signature as a
//! real receiver must, answers 204, and measures how fast events arrive and how long after their
//! commit (the event's `created_at`, stamped just before the batch commits). It stands in for the
//! merchant's machine, so it runs on a thread of its own at the lowest scheduling priority: it
//! takes from the service and the load generator only CPU that neither wants, and the figures it
//! reports are, if anything, low.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alipay_notify::webhooks::WebhookSecret;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hdrhistogram::Histogram;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Default)]
struct Tally {
    ids: HashSet<String>,
    received: u64,
    bad_signatures: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Commit to arrival, in µs.
    delay: Option<Histogram<u64>>,
}

#[derive(Clone)]
struct Shared {
    key: WebhookSecret,
    tally: Arc<Mutex<Tally>>,
}

pub struct Receiver {
    pub url: String,
    pub secret: String,
    tally: Arc<Mutex<Tally>>,
}

/// What the receiver saw.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookReport {
    /// Distinct events received.
    pub events: usize,
    /// Deliveries beyond the first of an event (at least once: expected to be 0 here).
    pub repeats: u64,
    pub bad_signatures: u64,
    /// Events per second, first arrival to last.
    pub delivered_per_second: f64,
    /// From the event's commit to its arrival at the receiver.
    pub delay_ms_p50: f64,
    pub delay_ms_p99: f64,
    pub delay_ms_max: f64,
    /// Whether every paid order's event arrived before the wait ran out.
    pub complete: bool,
}

impl Receiver {
    pub fn start() -> anyhow::Result<Self> {
        let secret = WebhookSecret::generate();
        let tally = Arc::new(Mutex::new(Tally {
            delay: Some(Histogram::new_with_bounds(1, 600_000_000, 3)?),
            ..Tally::default()
        }));
        let shared = Shared {
            key: WebhookSecret::parse(&secret)?,
            tally: tally.clone(),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/webhooks", listener.local_addr()?);
        let router = Router::new()
            .route("/webhooks", post(receive))
            .with_state(shared);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || {
                let _ = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                );
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, router).await
                })
            })?;
        Ok(Self { url, secret, tally })
    }

    /// Waits until `events` distinct events arrived, or `timeout`; then reports.
    pub async fn report(&self, events: usize, timeout: Duration) -> WebhookReport {
        let deadline = Instant::now() + timeout;
        while self.tally.lock().unwrap().ids.len() < events && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tally = self.tally.lock().unwrap();
        let span = match (tally.first, tally.last) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        let delay = tally.delay.as_ref().expect("made at start");
        let ms = |us: u64| us as f64 / 1000.0;
        WebhookReport {
            events: tally.ids.len(),
            repeats: tally.received - tally.ids.len() as u64,
            bad_signatures: tally.bad_signatures,
            delivered_per_second: tally.ids.len() as f64 / span.max(f64::EPSILON),
            delay_ms_p50: ms(delay.value_at_quantile(0.5)),
            delay_ms_p99: ms(delay.value_at_quantile(0.99)),
            delay_ms_max: ms(delay.max()),
            complete: tally.ids.len() >= events,
        }
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let arrived = Instant::now();
    let now = OffsetDateTime::now_utc();
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let id = header("webhook-id").unwrap_or_default().to_owned();
    let verified = shared.key.verify(
        Some(&id),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now.unix_timestamp(),
    );
    let created_at = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| {
            let text = event["created_at"].as_str()?.to_owned();
            OffsetDateTime::parse(&text, &Rfc3339).ok()
        });
    let mut tally = shared.tally.lock().unwrap();
    tally.received += 1;
    if verified.is_err() {
        tally.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    tally.first.get_or_insert(arrived);
    tally.last = Some(arrived);
    if let (Some(created_at), Some(delay)) = (created_at, tally.delay.as_mut()) {
        let us = (now - created_at).whole_microseconds().max(1) as u64;
        let _ = delay.record(us);
    }
    tally.ids.insert(id);
    StatusCode::NO_CONTENT
}
