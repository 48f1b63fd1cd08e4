//! The load: every body POSTed to `/alipay/notify` by `concurrency` workers, each keeping one
//! keep-alive connection busy, with each reply's latency recorded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;

/// What came back.
pub struct LoadResult {
    /// Microseconds from sending a request to having read its whole reply.
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
    pub success: u64,
    /// Replies other than `200 success`, by `status body` (or the transport error), with counts.
    pub failures: BTreeMap<String, u64>,
}

impl LoadResult {
    pub fn requests(&self) -> u64 {
        self.success + self.failures.values().sum::<u64>()
    }
}

/// A client that keeps up to `concurrency` connections open (HTTP/1.1 keep-alive, no Nagle).
pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Sends every body once, `concurrency` at a time, in order of the slice.
pub async fn send_all(
    client: &reqwest::Client,
    notify_url: &str,
    bodies: Arc<Vec<Arc<[u8]>>>,
    concurrency: usize,
    progress: &ProgressBar,
) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let worker = Worker {
                client: client.clone(),
                url: notify_url.to_owned(),
                bodies: bodies.clone(),
                next: next.clone(),
                progress: progress.clone(),
            };
            tokio::spawn(worker.run())
        })
        .collect();
    let mut total = LoadResult {
        latency: new_histogram(),
        elapsed: Duration::ZERO,
        success: 0,
        failures: BTreeMap::new(),
    };
    for worker in workers {
        match worker.await {
            Ok(part) => {
                let _ = total.latency.add(&part.latency);
                total.success += part.success;
                for (what, count) in part.failures {
                    *total.failures.entry(what).or_default() += count;
                }
            }
            Err(error) => {
                *total
                    .failures
                    .entry(format!("worker: {error}"))
                    .or_default() += 1
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 min, three significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

struct Worker {
    client: reqwest::Client,
    url: String,
    bodies: Arc<Vec<Arc<[u8]>>>,
    next: Arc<AtomicUsize>,
    progress: ProgressBar,
}

impl Worker {
    async fn run(self) -> LoadResult {
        let mut result = LoadResult {
            latency: new_histogram(),
            elapsed: Duration::ZERO,
            success: 0,
            failures: BTreeMap::new(),
        };
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = self.bodies.get(index) else {
                break;
            };
            let started = Instant::now();
            let reply = self.post(body.to_vec()).await;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            result.latency.saturating_record(micros.max(1));
            match reply {
                Ok((200, text)) if text == "success" => result.success += 1,
                Ok((status, text)) => {
                    let text: String = text.chars().take(40).collect();
                    *result
                        .failures
                        .entry(format!("{status} {text}"))
                        .or_default() += 1;
                }
                Err(error) => {
                    *result
                        .failures
                        .entry(format!("transport: {error}"))
                        .or_default() += 1;
                }
            }
            self.progress.inc(1);
        }
        result
    }

    async fn post(&self, body: Vec<u8>) -> Result<(u16, String), reqwest::Error> {
        let response = self
            .client
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }
}
