//! The load: every body POSTed to `/alipay/notify` by `concurrency` workers, each keeping one
//! keep-alive connection busy, with each reply's latency recorded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use indicatif::ProgressBar;

use crate::open_loop::figures::{self, OpenLoop};
use crate::open_loop::schedule::Schedule;
use crate::open_loop::{Outcome, Reply};

/// How long one request may take before it counts as a failure.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// What came back.
pub struct LoadResult {
    /// Microseconds from sending a request to having read its whole reply.
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
    pub success: u64,
    /// Replies other than `200 success`, by `status body` (or the transport error), with counts.
    pub failures: BTreeMap<String, u64>,
}

/// What a load measured, in either loop.
pub struct Measured {
    pub load: LoadResult,
    /// Open loop only.
    pub open_loop: Option<OpenLoop>,
    /// Open loop only: whether each request, in sending order, was answered `success`.
    pub answered: Option<Vec<bool>>,
}

impl Measured {
    pub fn closed(load: LoadResult) -> Self {
        Self {
            load,
            open_loop: None,
            answered: None,
        }
    }

    pub fn open(schedule: &Schedule, outcomes: &[Outcome]) -> Self {
        Self {
            load: figures::summary(outcomes),
            open_loop: Some(OpenLoop::new(schedule, outcomes)),
            answered: Some(outcomes.iter().map(|o| o.reply == Reply::Success).collect()),
        }
    }
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
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Sends every body once, `concurrency` at a time, in order of the slice. Plain `http://` URLs
/// get one bare hyper HTTP/1.1 connection per worker: the load generator shares the machine with
/// the service, and reqwest's pool, URL handling and timeouts cost it about twice the CPU per
/// request. `https://` targets go through `client`.
pub async fn send_all(
    client: &reqwest::Client,
    notify_url: &str,
    bodies: Arc<Vec<Arc<[u8]>>>,
    concurrency: usize,
    progress: &ProgressBar,
) -> LoadResult {
    let plain = Plain::of(notify_url).map(Arc::new);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let worker = Worker {
                client: client.clone(),
                url: notify_url.to_owned(),
                plain: plain.clone(),
                connection: None,
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

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 min, three significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Where a plain `http://` URL points, taken apart once rather than per request.
pub struct Plain {
    authority: String,
    path: String,
}

impl Plain {
    pub fn of(url: &str) -> Option<Self> {
        let uri: hyper::Uri = url.parse().ok()?;
        (uri.scheme_str() == Some("http")).then(|| Self {
            authority: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
            path: uri.path().to_owned(),
        })
    }
}

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

struct Worker {
    client: reqwest::Client,
    url: String,
    /// Set for plain HTTP, which goes over `connection` rather than through `client`.
    plain: Option<Arc<Plain>>,
    /// This worker's keep-alive connection, for plain HTTP.
    connection: Option<SendRequest<Full<Bytes>>>,
    bodies: Arc<Vec<Arc<[u8]>>>,
    next: Arc<AtomicUsize>,
    progress: ProgressBar,
}

impl Worker {
    async fn run(mut self) -> LoadResult {
        let mut result = LoadResult {
            latency: new_histogram(),
            elapsed: Duration::ZERO,
            success: 0,
            failures: BTreeMap::new(),
        };
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = self.bodies.get(index).cloned() else {
                break;
            };
            let started = Instant::now();
            let reply = match self.plain.clone() {
                Some(plain) => self.post_plain(&plain, &body).await,
                None => self.post(body.to_vec()).await.map_err(|e| e.to_string()),
            };
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

    async fn post_plain(&mut self, plain: &Plain, body: &[u8]) -> Result<(u16, String), String> {
        let result = self.try_post_plain(plain, body).await;
        if result.is_err() {
            self.connection = None;
        }
        result.map_err(|e| e.to_string())
    }

    async fn try_post_plain(
        &mut self,
        plain: &Plain,
        body: &[u8],
    ) -> anyhow::Result<(u16, String)> {
        let sender = match &mut self.connection {
            Some(sender) => sender,
            None => self.connection.insert(connect(plain).await?),
        };
        let exchange = tokio::time::timeout(TIMEOUT, post_form(sender, plain, body)).await??;
        if !exchange.keep_alive {
            self.connection = None;
        }
        Ok((exchange.status, exchange.text))
    }

    async fn post(&self, body: Vec<u8>) -> Result<(u16, String), reqwest::Error> {
        post_reqwest(&self.client, &self.url, body).await
    }
}

/// A new keep-alive HTTP/1.1 connection to `plain` (no Nagle), its driver spawned.
pub async fn connect(plain: &Plain) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(plain.authority.as_str()).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One request's reply over a plain connection.
pub struct Exchange {
    pub status: u16,
    pub text: String,
    /// Whether the server keeps the connection for another request. gunicorn's sync workers (the
    /// seed peer's) close it after every reply; sending the next request on it would fail, and
    /// count as a failure of the service rather than of the client.
    pub keep_alive: bool,
}

/// POSTs `body` as a form over `sender` and reads the whole reply.
pub async fn post_form(
    sender: &mut SendRequest<Full<Bytes>>,
    plain: &Plain,
    body: &[u8],
) -> anyhow::Result<Exchange> {
    sender.ready().await?;
    let request = hyper::Request::post(plain.path.as_str())
        .header(hyper::header::HOST, plain.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, FORM)
        .body(Full::new(Bytes::copy_from_slice(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let keep_alive = keeps_alive(
        response.version(),
        response.headers().get(hyper::header::CONNECTION),
    );
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Exchange {
        status,
        text: String::from_utf8_lossy(&body).into_owned(),
        keep_alive,
    })
}

/// Whether a reply leaves its connection open (RFC 9112 §9.3): HTTP/1.1 unless it says
/// `Connection: close`, HTTP/1.0 only if it says `keep-alive`. Decided from the headers rather
/// than by asking hyper afterwards, which learns of the close only when its task next runs.
fn keeps_alive(version: hyper::Version, connection: Option<&hyper::header::HeaderValue>) -> bool {
    let tokens = connection.and_then(|v| v.to_str().ok()).unwrap_or("");
    let says = |token: &str| {
        tokens
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match version {
        hyper::Version::HTTP_10 => says("keep-alive"),
        _ => !says("close"),
    }
}

/// The same through reqwest, for `https://` targets.
pub async fn post_reqwest(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, String), reqwest::Error> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use hyper::Version;

    use super::keeps_alive;

    #[test]
    fn http_1_1_keeps_the_connection_unless_told_to_close() {
        assert!(keeps_alive(Version::HTTP_11, None));
        assert!(keeps_alive(
            Version::HTTP_11,
            Some(&HeaderValue::from_static("keep-alive"))
        ));
        for close in ["close", "Close", "upgrade, close", " CLOSE "] {
            let value = HeaderValue::from_str(close).unwrap();
            assert!(!keeps_alive(Version::HTTP_11, Some(&value)), "{close}");
        }
    }

    #[test]
    fn http_1_0_closes_unless_told_to_keep_alive() {
        assert!(!keeps_alive(Version::HTTP_10, None));
        assert!(keeps_alive(
            Version::HTTP_10,
            Some(&HeaderValue::from_static("Keep-Alive"))
        ));
    }
}
