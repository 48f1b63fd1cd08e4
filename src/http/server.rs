//! The listener and its connections: what the public edge enforces before a request reaches a
//! route. axum's `serve` has no header-read or idle timeout and no connection cap, so a client
//! that never finishes its request holds a socket (and a file descriptor) forever. Here each
//! connection is served by hyper under a small watchdog:
//!
//! - **idle** (no request in progress, no byte of the next one yet): closed after the keep-alive
//!   timeout, counted from the connection's start or its last response;
//! - **head** (bytes of a request arrived, its head not complete): closed after the header-read
//!   timeout, counted from the first byte (slowloris);
//! - **busy** (a route is handling it): the request timeout answers 408 or `fail`; as a backstop
//!   the connection is closed after twice that (a client that never reads its answer).
//!
//! On shutdown the listener closes at once, connections with no request in progress are closed,
//! the others finish their request (without keep-alive) within the drain period, after which
//! whatever is left is closed too.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// The edge's limits, from the `http` settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub request_timeout: Duration,
    /// Connections served at once; more are accepted and closed straight away.
    pub max_connections: usize,
    /// How long shutdown waits for requests in progress before closing their connections.
    pub drain_timeout: Duration,
}

/// File descriptors kept free beside the connection cap: the database pool, the log, key files,
/// and the accept that closes a connection over the cap.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft limit on open files to the hard limit (a service inheriting the common soft
/// default of 1,024 would otherwise stop accepting at ~1,000 connections, the notify URL with
/// them) and returns the connection cap that fits under it.
pub(crate) fn fit_connection_cap(wanted: usize, database_connections: u32) -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open files limit");
            return wanted;
        }
    };
    let room = soft.saturating_sub(RESERVED_DESCRIPTORS + u64::from(database_connections));
    let cap = wanted
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1);
    if cap < wanted {
        tracing::warn!(
            open_files = soft,
            max_connections = cap,
            "the open files limit allows fewer connections than HTTP_MAX_CONNECTIONS"
        );
    } else {
        tracing::info!(
            open_files = soft,
            max_connections = cap,
            "connection limits"
        );
    }
    cap
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut over_cap = OverCap::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        accept_failed(&error).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    metrics.connection_closed("over_capacity");
                    over_cap.note(limits.max_connections);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    router: router.clone(),
                    limits,
                    metrics: metrics.clone(),
                };
                let stopping = stopping.clone();
                metrics.connection_opened();
                connections.spawn(async move {
                    connection.serve(stream, stopping).await;
                    connection.metrics.connection_ended();
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let left = connections.len();
        tracing::warn!(
            connections = left,
            drain_seconds = limits.drain_timeout.as_secs_f64(),
            "drain period over: closing connections with requests still in progress"
        );
        connections.shutdown().await;
    } else if open > 0 {
        tracing::info!(connections = open, "connections drained");
    }
    Ok(())
}

/// Errors of one connection (reset before accept) are skipped; running out of descriptors or
/// memory is logged and waited out briefly instead of spinning.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::*;
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed; pausing 50 ms");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Warns about connections refused at the cap, at most every 10 s.
#[derive(Default)]
struct OverCap {
    refused: u64,
    warned: Option<Instant>,
}

impl OverCap {
    fn note(&mut self, cap: usize) {
        self.refused += 1;
        if self
            .warned
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(
                max_connections = cap,
                refused = self.refused,
                "connection cap reached: closing new connections"
            );
            self.warned = Some(Instant::now());
            self.refused = 0;
        }
    }
}

struct Connection {
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl Connection {
    async fn serve(&self, stream: TcpStream, mut stopping: watch::Receiver<bool>) {
        let activity = Arc::new(Activity::new(&self.limits));
        let peer = stream.peer_addr().ok();
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let router = self.router.clone();
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let done = on_request.begin_request();
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
            }
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                // The request is over when hyper has written the body and drops it.
                Ok::<_, Infallible>(response.map(|body| {
                    body.map_frame(move |frame| {
                        let _request = &done;
                        frame
                    })
                }))
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // Ours, from the first byte of a head; hyper's would run while the connection idles.
            .header_read_timeout(None)
            .serve_connection(io, service);
        tokio::pin!(connection);
        let watchdog = Watchdog::new(activity.clone());
        tokio::pin!(watchdog);
        let mut draining = false;
        loop {
            tokio::select! {
                // The connection first: a request that starts or ends in this poll moves the
                // deadline, and the watchdog, polled next, re-arms its timer to it.
                biased;
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                reason = watchdog.as_mut() => {
                    tracing::debug!(reason, "closing connection");
                    self.metrics.connection_closed(reason);
                    return;
                }
                _ = stopping.wait_for(|stop| *stop), if !draining => {
                    draining = true;
                    if !activity.is_busy() {
                        self.metrics.connection_closed("shutdown");
                        return;
                    }
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Resolves, with the reason, once the connection's current phase has outlasted its timeout.
/// One timer per connection, moved when the deadline moves (moving it later touches no shared
/// state); waking the task at each request's start to sleep anew cost a wakeup and two timer
/// registrations per request.
struct Watchdog {
    activity: Arc<Activity>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: Instant,
}

impl Watchdog {
    fn new(activity: Arc<Activity>) -> Self {
        let armed = activity.deadline_instant();
        Self {
            sleep: Box::pin(tokio::time::sleep_until(armed)),
            activity,
            armed,
        }
    }
}

impl std::future::Future for Watchdog {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let deadline = self.activity.deadline_instant();
            if deadline != self.armed {
                self.armed = deadline;
                self.sleep.as_mut().reset(deadline);
            }
            std::task::ready!(self.sleep.as_mut().poll(cx));
            if let Some(reason) = self.activity.expired() {
                return Poll::Ready(reason);
            }
            // The phase moved on since the timer was set; re-arm and wait again.
            self.armed = Instant::now();
        }
    }
}

const IDLE: usize = 0;
const HEAD: usize = 1;
const BUSY: usize = 2;

/// What a connection is doing and since when, shared by its socket, its service and its
/// watchdog. All three run on the connection's own task, within its polls, so the atomics are
/// never contended and the watchdog sees every change in the same poll. Times are milliseconds
/// from `started`.
struct Activity {
    started: Instant,
    /// The time each phase may last: idle, head, busy.
    timeouts: [u64; 3],
    phase: AtomicUsize,
    since: AtomicU64,
}

impl Activity {
    fn new(limits: &Limits) -> Self {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            started: Instant::now(),
            timeouts: [
                millis(limits.keep_alive_timeout),
                millis(limits.header_read_timeout),
                millis(limits.request_timeout).saturating_mul(2),
            ],
            phase: AtomicUsize::new(IDLE),
            since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn deadline(&self) -> u64 {
        let phase = self.phase.load(Ordering::Relaxed);
        self.since
            .load(Ordering::Relaxed)
            .saturating_add(self.timeouts[phase])
    }

    fn enter(&self, phase: usize) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Marks a request in progress until the returned guard is dropped.
    fn begin_request(self: &Arc<Self>) -> RequestDone {
        self.enter(BUSY);
        RequestDone(self.clone())
    }

    fn bytes_read(&self) {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            self.enter(HEAD);
        }
    }

    fn is_busy(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == BUSY
    }

    /// The current phase's deadline as an instant.
    fn deadline_instant(&self) -> Instant {
        let deadline = self.deadline();
        // Far enough for "never" without overflowing an Instant.
        let day = 86_400_000;
        self.started + Duration::from_millis(deadline.min(self.now().saturating_add(day)))
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self) -> Option<&'static str> {
        if self.now() < self.deadline() {
            return None;
        }
        Some(
            [
                "keep_alive_timeout",
                "header_read_timeout",
                "response_timeout",
            ][self.phase.load(Ordering::Relaxed)],
        )
    }
}

struct RequestDone(Arc<Activity>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        self.0.enter(IDLE);
    }
}

/// The socket, telling `Activity` when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
