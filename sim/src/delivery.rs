//! The notification sender. Each notification is POSTed to notify_url until one response body is
//! exactly `success`: the first attempt at once, then after 4m, 10m, 10m, 1h, 2h, 6h and 15h (8
//! attempts in all, Alipay's schedule) multiplied by the time scale. Every attempt is recorded in
//! the trade book. Fault knobs bend this on purpose.

use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use time::OffsetDateTime;
use tokio::sync::{oneshot, Barrier};
use tokio::task::JoinSet;

use super::faults::Faults;
use super::server::Background;
use super::trades::{Attempt, AttemptOutcome, DeliveryState, TradeBook};

/// Waits before attempts 2 to 8, at a time scale of 1.0.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(4 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(6 * 60 * 60),
    Duration::from_secs(15 * 60 * 60),
];
pub const ATTEMPTS: u32 = RETRY_DELAYS.len() as u32 + 1;

const SNIPPET_CHARS: usize = 200;
/// A notify handler has no reason to answer with more; beyond it the answer is not `success`.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// One notification to deliver.
#[derive(Debug)]
pub(crate) struct Job {
    pub notify_id: String,
    pub url: String,
    /// The form body, identical on every attempt and copy.
    pub body: String,
    pub charset: String,
    pub faults: Faults,
}

#[derive(Clone)]
pub(crate) struct Delivery {
    client: reqwest::Client,
    book: TradeBook,
    time_scale: f64,
    background: Background,
}

impl Delivery {
    pub fn new(
        timeout: Duration,
        book: TradeBook,
        time_scale: f64,
        background: Background,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect is not `success`; Alipay does not follow one either.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("alipay-notify-sim")
            .build()?;
        Ok(Self {
            client,
            book,
            time_scale,
            background,
        })
    }

    fn retry_delay(&self, index: usize) -> Duration {
        RETRY_DELAYS
            .get(index)
            .map_or(Duration::ZERO, |d| d.mul_f64(self.time_scale))
    }

    /// Notifications about one event go out in order: each one's first attempt waits for the
    /// previous one's first attempt, so the out-of-order fault really is out of order on the wire.
    pub fn dispatch(&self, jobs: Vec<Job>) {
        let mut after: Option<oneshot::Receiver<()>> = None;
        for job in jobs {
            let (first_done, next) = oneshot::channel();
            let previous = after.replace(next);
            let this = self.clone();
            self.background.spawn(async move {
                if let Some(previous) = previous {
                    // An error means the previous job ended without an attempt: go ahead.
                    let _ = previous.await;
                }
                this.run(Arc::new(job), first_done).await;
            });
        }
    }

    async fn run(&self, job: Arc<Job>, first_done: oneshot::Sender<()>) {
        if job.faults.never_deliver {
            self.book
                .set_state(&job.notify_id, DeliveryState::Suppressed);
            return;
        }
        tokio::time::sleep(Duration::from_millis(job.faults.delay_ms)).await;
        let mut first_done = Some(first_done);
        for number in 1..=ATTEMPTS {
            if number > 1 {
                tokio::time::sleep(self.retry_delay(number as usize - 2)).await;
            }
            let acknowledged = self.attempt(&job, number).await;
            if let Some(done) = first_done.take() {
                let _ = done.send(());
            }
            if acknowledged {
                self.book
                    .set_state(&job.notify_id, DeliveryState::Delivered);
                return;
            }
        }
        self.book.set_state(&job.notify_id, DeliveryState::GaveUp);
        tracing::info!(notify_id = %job.notify_id, "notification given up after {ATTEMPTS} attempts");
    }

    /// One scheduled attempt: lost on purpose, or one or more identical POSTs.
    async fn attempt(&self, job: &Arc<Job>, number: u32) -> bool {
        if number <= job.faults.drop_first {
            let outcome = AttemptOutcome::NetworkError {
                error: "not sent: lost on purpose (drop_first fault)".into(),
            };
            self.record(job, number, 1, OffsetDateTime::now_utc(), outcome, false);
            return false;
        }
        let (copies, at_once) = job.faults.copies();
        if !at_once {
            let mut acknowledged = false;
            for copy in 1..=copies {
                acknowledged |= self.post(job, number, copy).await;
            }
            return acknowledged;
        }
        // All copies wait at the barrier, then leave together.
        let barrier = Arc::new(Barrier::new(copies as usize));
        let mut set = JoinSet::new();
        for copy in 1..=copies {
            let (this, job, barrier) = (self.clone(), job.clone(), barrier.clone());
            set.spawn(async move {
                barrier.wait().await;
                this.post(&job, number, copy).await
            });
        }
        let mut acknowledged = false;
        while let Some(result) = set.join_next().await {
            acknowledged |= result.unwrap_or(false);
        }
        acknowledged
    }

    async fn post(&self, job: &Job, number: u32, copy: u32) -> bool {
        let at = OffsetDateTime::now_utc();
        let sent = self
            .client
            .post(&job.url)
            .header(
                header::CONTENT_TYPE,
                format!("application/x-www-form-urlencoded; charset={}", job.charset),
            )
            .body(job.body.clone())
            .send()
            .await;
        let (outcome, acknowledged) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                match read_capped(response).await {
                    Ok(body) => {
                        let snippet = String::from_utf8_lossy(&body)
                            .chars()
                            .take(SNIPPET_CHARS)
                            .collect();
                        let outcome = AttemptOutcome::Response {
                            status,
                            body: snippet,
                        };
                        (outcome, body == b"success")
                    }
                    Err(error) => (AttemptOutcome::NetworkError { error }, false),
                }
            }
            Err(error) => (
                AttemptOutcome::NetworkError {
                    error: describe(&error),
                },
                false,
            ),
        };
        self.record(job, number, copy, at, outcome, acknowledged);
        acknowledged
    }

    fn record(
        &self,
        job: &Job,
        number: u32,
        copy: u32,
        at: OffsetDateTime,
        outcome: AttemptOutcome,
        acknowledged: bool,
    ) {
        tracing::debug!(notify_id = %job.notify_id, number, copy, ?outcome, "notification attempt");
        self.book.record_attempt(Attempt {
            number,
            copy,
            at,
            notify_id: job.notify_id.clone(),
            outcome,
            acknowledged,
        });
    }
}

/// The body, or an error once it grows past what a notify handler would send.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE_BYTES {
            body.truncate(MAX_RESPONSE_BYTES);
            break;
        }
    }
    Ok(body)
}

/// The error with its causes ("connection refused" hides two levels down in reqwest).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
