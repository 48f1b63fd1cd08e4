//! Delivery: one task per endpoint leases the deliveries that are due, sends them concurrently,
//! and records every attempt with what becomes of its delivery. A slow or dead endpoint holds up
//! only its own task, and never the notify path, which only writes rows. Leases make several
//! instances share the work; a crash mid-delivery means the event is sent again once its lease
//! runs out (at least once: receivers dedupe on `webhook-id`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::task::JoinSet;

use super::endpoint::{Endpoint, RetrySchedule};
use crate::metrics::Metrics;
use crate::orders::outbox::{Attempt, Claimed};
use crate::orders::OrderStore;
use crate::report::Report;

/// An endpoint must answer within this, body included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The part of an answer that is read and kept.
pub const KEPT_ANSWER_BYTES: usize = 4096;
/// A leased delivery is not taken by another instance for this long: twice an attempt's timeout.
/// After a crash mid-delivery, the event is sent again once its lease has run out.
pub const LEASE: Duration = Duration::from_secs(20);
/// Deliveries sent at once per endpoint.
const BATCH: i64 = 64;
/// How often to look for work this process did not write (retries coming due, other
/// instances' events, redeliveries asked for elsewhere).
const POLL: Duration = Duration::from_millis(500);
/// While payments are being applied, a round waits for them to be done, at most this long: under
/// a flood of notifications deliveries fall behind (one round of BATCH per wait at least) and
/// catch up after it, rather than take a share of the notify path's throughput.
const YIELD_AT_MOST: Duration = Duration::from_millis(250);
/// While the database is unreachable, rounds are retried after POLL, doubling up to this, so
/// that an outage costs a handful of log lines rather than two a second.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Attempts already sent are recorded until this long before their lease runs out; past that,
/// another round may send them again anyway.
const RECORD_MARGIN: Duration = Duration::from_secs(5);

pub struct Dispatcher {
    pub store: Arc<dyn OrderStore>,
    pub endpoints: Vec<Endpoint>,
    pub schedule: RetrySchedule,
    pub metrics: Arc<Metrics>,
    pub client: reqwest::Client,
}

impl Dispatcher {
    /// The HTTP client deliveries use: no redirects followed (a redirect is a failed attempt),
    /// connect and total timeouts, no proxy from the environment.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .no_proxy()
            .user_agent(concat!("alipay-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds")
    }

    /// Runs [`Dispatcher::run`] on a thread of its own at the lowest scheduling priority, so that
    /// deliveries take only the CPU that the notify path leaves. The store's requests are single
    /// round trips that end their own transactions, so this thread never holds the database (or
    /// SQLite's one writer) between them. Resolves once the dispatcher has stopped.
    pub fn spawn_in_background(
        self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<impl std::future::Future<Output = ()>> {
        let (done, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("webhooks".into())
            .spawn(move || {
                let lowered = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                );
                if let Err(error) = lowered {
                    tracing::warn!(%error, "cannot lower the webhook thread's priority; deliveries compete with notifications for CPU");
                }
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(self.run(stop)),
                    Err(error) => {
                        tracing::error!(%error, "cannot start the webhook runtime; no webhooks are delivered")
                    }
                }
                drop(done);
            })?;
        Ok(async move {
            let _ = stopped.await;
        })
    }

    /// Delivers until `stop` turns true, then finishes the attempts in flight.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut tasks = JoinSet::new();
        for endpoint in this.endpoints.iter().cloned() {
            tasks.spawn(this.clone().serve(Arc::new(endpoint), stop.clone()));
        }
        tasks.spawn(this.clone().watch_backlog(stop));
        while tasks.join_next().await.is_some() {}
    }

    async fn serve(
        self: Arc<Self>,
        endpoint: Arc<Endpoint>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut written = self.store.events_written();
        let mut failures = 0u32;
        while !*stop.borrow() {
            let pause = match self.round(&endpoint).await {
                Ok(sent) if sent as i64 == BATCH => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    POLL
                }
                Err(error) => {
                    failures += 1;
                    self.metrics.database_error("webhooks");
                    let pause = POLL.saturating_mul(1 << failures.min(6)).min(MAX_BACKOFF);
                    tracing::error!(endpoint = %endpoint.name, error = %Report(&error), failures, retry_in = ?pause, "webhook delivery round failed");
                    pause
                }
            };
            // New events wake a healthy loop at once; a failing one waits out its pause.
            let woken = async {
                match failures {
                    0 => written.changed().await.ok(),
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.changed() => {}
                _ = woken => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Leases what is due, sends it, records it. How many deliveries were sent.
    async fn round(&self, endpoint: &Arc<Endpoint>) -> Result<usize, crate::orders::StoreError> {
        self.yield_to_payments().await;
        let now = OffsetDateTime::now_utc();
        let claimed = self
            .store
            .claim_deliveries(&endpoint.name, now, now + LEASE, BATCH)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let mut sends = JoinSet::new();
        for delivery in claimed {
            let client = self.client.clone();
            let endpoint = endpoint.clone();
            let schedule = self.schedule.clone();
            sends.spawn(async move { attempt(&client, &endpoint, &schedule, delivery).await });
        }
        let mut attempts = Vec::with_capacity(sends.len());
        while let Some(done) = sends.join_next().await {
            if let Ok(attempt) = done {
                attempts.push(attempt);
            }
        }
        for attempt in &attempts {
            let outcome = match attempt.retry {
                None => "delivered",
                Some(Some(_)) => "retrying",
                Some(None) => "failed",
            };
            self.metrics.webhook_delivery(&endpoint.name, outcome);
            if outcome != "delivered" {
                tracing::warn!(
                    endpoint = %endpoint.name,
                    event_id = %attempt.event_id,
                    status = attempt.status_code,
                    error = attempt.error.as_deref(),
                    outcome,
                    "webhook not delivered"
                );
            }
        }
        self.record(&attempts, now + LEASE - RECORD_MARGIN).await?;
        Ok(attempts.len())
    }

    /// Waits while payments are being applied, at most `YIELD_AT_MOST`.
    async fn yield_to_payments(&self) {
        let deadline = Instant::now() + YIELD_AT_MOST;
        while self.store.payments_in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Records sent attempts, trying again through a short database outage so that they are not
    /// sent twice; should it still fail, the leases run out and the deliveries are sent again.
    async fn record(
        &self,
        attempts: &[Attempt],
        until: OffsetDateTime,
    ) -> Result<(), crate::orders::StoreError> {
        loop {
            match self.store.record_attempts(attempts).await {
                Ok(()) => return Ok(()),
                Err(error) if OffsetDateTime::now_utc() + Duration::from_secs(1) < until => {
                    self.metrics.database_error("webhooks");
                    tracing::warn!(error = %Report(&error), attempts = attempts.len(), "cannot record webhook attempts yet; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Keeps the backlog gauges current for the alerts in the README.
    async fn watch_backlog(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.store.backlog().await {
                Ok(backlog) => {
                    let age = backlog.oldest.map_or(0.0, |oldest| {
                        (OffsetDateTime::now_utc() - oldest)
                            .as_seconds_f64()
                            .max(0.0)
                    });
                    self.metrics.webhook_backlog(backlog.pending, age);
                }
                Err(error) => {
                    tracing::warn!(error = %Report(&error), "cannot read the webhook backlog")
                }
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// Sends one delivery and says what became of it.
async fn attempt(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    schedule: &RetrySchedule,
    delivery: Claimed,
) -> Attempt {
    let attempted_at = OffsetDateTime::now_utc();
    let timestamp = attempted_at.unix_timestamp();
    let body = delivery.payload.into_bytes();
    let signature = endpoint.secret.sign(&delivery.event_id, timestamp, &body);
    let started = Instant::now();
    let sent = client
        .post(endpoint.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let (status_code, error, response_body) = match sent {
        Ok(response) => {
            let status = response.status();
            match read_start(response).await {
                Ok(text) => (Some(status.as_u16()), None, Some(text)),
                Err(e) => (Some(status.as_u16()), Some(describe(&e)), None),
            }
        }
        Err(e) => (None, Some(describe(&e)), None),
    };
    let latency_ms = started.elapsed().as_millis().try_into().unwrap_or(i64::MAX);
    let delivered = error.is_none() && status_code.is_some_and(|s| (200..300).contains(&s));
    let retry = (!delivered).then(|| {
        schedule
            .after(delivery.attempts + 1)
            .map(|wait| OffsetDateTime::now_utc() + wait)
    });
    Attempt {
        event_id: delivery.event_id,
        endpoint: delivery.endpoint,
        attempted_at,
        latency_ms,
        status_code,
        error,
        response_body,
        retry,
    }
}

/// The first `KEPT_ANSWER_BYTES` of an answer, as text; the rest is not read.
async fn read_start(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut kept = Vec::new();
    while kept.len() < KEPT_ANSWER_BYTES {
        match response.chunk().await? {
            Some(chunk) => kept.extend_from_slice(&chunk),
            None => break,
        }
    }
    kept.truncate(KEPT_ANSWER_BYTES);
    Ok(String::from_utf8_lossy(&kept).into_owned())
}

/// An error in words, without the URL (which may carry credentials).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "answer unreadable"
    } else {
        "request failed"
    };
    let cause = std::error::Error::source(error)
        .map(|source| format!(": {}", Report(source)))
        .unwrap_or_default();
    format!("{kind}{cause}")
}
