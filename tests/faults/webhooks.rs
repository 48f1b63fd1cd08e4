//! Webhooks across SIGKILL and a database outage: an event committed but not yet delivered, or
//! killed in the middle of its delivery, is delivered after the restart; deliveries stalled by
//! Postgres going away resume when it is back. Never lost; sent again at worst.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alipay_notify::webhooks::WebhookSecret;
use alipay_test_support::webhooks;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use crate::postgres::{OwnPostgres, SharedDatabase};
use crate::service::{client, Options, Service};
use crate::traffic::{create_orders, deliver, notification, order_numbers, Reply};

/// A receiver that records every delivery (id, whether its signature verified, whether it was
/// answered in time) and answers 200 after holding each request `hold_ms`.
#[derive(Clone)]
struct Receiver {
    secret: String,
    hold_ms: Arc<AtomicU64>,
    received: Arc<Mutex<Vec<(String, bool, bool)>>>,
}

impl Receiver {
    fn new() -> Self {
        Self {
            secret: WebhookSecret::generate(),
            hold_ms: Arc::default(),
            received: Arc::default(),
        }
    }

    async fn start_on(&self, address: SocketAddr) {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let router = Router::new()
            .route("/hooks", post(receive))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
    }

    /// Event ids answered 200 so far.
    fn delivered(&self) -> HashSet<String> {
        let received = self.received.lock().unwrap();
        assert!(
            received.iter().all(|(_, verified, _)| *verified),
            "a bad signature"
        );
        received
            .iter()
            .filter(|(.., answered)| *answered)
            .map(|(id, ..)| id.clone())
            .collect()
    }

    fn requests(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let checked = webhooks::check(&receiver.secret, &headers, &body);
    let hold = Duration::from_millis(receiver.hold_ms.load(Ordering::SeqCst));
    let in_time = hold < alipay_notify::webhooks::dispatch::TIMEOUT;
    receiver
        .received
        .lock()
        .unwrap()
        .push((checked.id, checked.verified, in_time));
    tokio::time::sleep(hold).await;
    StatusCode::OK
}

/// An address where nothing listens yet: the receiver starts on it later, so the service
/// first finds it refusing connections. It cannot be a bound listener (connections would queue
/// in its backlog instead of being refused).
fn reserved_address() -> SocketAddr {
    alipay_test_support::net::free_address()
}

/// Options for a service delivering to `address`, retrying every 200 ms.
fn delivering_to(address: SocketAddr, receiver: &Receiver, dir: &std::path::Path) -> Options {
    let profile = dir.join("webhooks.toml");
    let waits = std::iter::once("\"0s\"")
        .chain(std::iter::repeat_n("\"200ms\"", 100))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &profile,
        format!("[webhooks]\nretry_schedule = [{waits}]\n"),
    )
    .unwrap();
    Options::default()
        .env("WEBHOOK_URL", format!("http://{address}/hooks"))
        .env("WEBHOOK_SECRET", &receiver.secret)
        .env("CONFIG_FILE", profile.display())
}

async fn pay(service: &Service, numbers: &[String]) {
    let client = client();
    create_orders(&client, &service.base(), numbers).await;
    for no in numbers {
        let sent = deliver(&client, &service.base(), &notification(no)).await;
        assert_eq!(sent.reply, Reply::Success, "{no}");
    }
}

async fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_before_delivery_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    kill_before_delivery(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_before_delivery_loses_no_event() {
    let database = SharedDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    kill_before_delivery(&database.url, dir.path()).await;
}

/// Committed while the endpoint is down; the service is killed before it ever got through.
async fn kill_before_delivery(database_url: &str, dir: &std::path::Path) {
    let receiver = Receiver::new();
    let address = reserved_address();
    let options = delivering_to(address, &receiver, dir);
    let mut service = Service::start_with(database_url, options.clone()).await;
    let numbers = order_numbers("WHK", 20);
    pay(&service, &numbers).await;
    service.kill();

    receiver.start_on(address).await;
    let _service = Service::start_with(database_url, options).await;
    wait_until("all 20 events delivered", Duration::from_secs(30), || {
        receiver.delivered().len() == 20
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_during_delivery_sends_again_after_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    kill_during_delivery(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_during_delivery_sends_again_after_the_lease() {
    let database = SharedDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    kill_during_delivery(&database.url, dir.path()).await;
}

/// Killed while the endpoint holds the deliveries sent so far open: after the restart and the
/// lease, each of those is sent again, and every event is delivered.
async fn kill_during_delivery(database_url: &str, dir: &std::path::Path) {
    let receiver = Receiver::new();
    receiver.hold_ms.store(120_000, Ordering::SeqCst);
    let address = reserved_address();
    receiver.start_on(address).await;
    let options = delivering_to(address, &receiver, dir);
    let mut service = Service::start_with(database_url, options.clone()).await;
    let numbers = order_numbers("WHD", 5);
    pay(&service, &numbers).await;
    // A round sends what it leased and waits for all of it (here up to the attempt timeout), so
    // on a slow machine the first round may lease the first event alone, before the others are
    // paid; those wait behind it, leased by no one.
    wait_until("a delivery in flight", Duration::from_secs(10), || {
        receiver.requests() >= 1
    })
    .await;
    let in_flight = receiver.requests();
    service.kill();
    let killed = Instant::now();

    receiver.hold_ms.store(0, Ordering::SeqCst);
    let _service = Service::start_with(database_url, options).await;
    wait_until(
        "all 5 events delivered after the restart",
        Duration::from_secs(60),
        || receiver.delivered().len() == 5,
    )
    .await;
    let waited = killed.elapsed();
    eprintln!(
        "kill during delivery: {in_flight} in flight, all delivered {waited:?} after the kill"
    );
    assert!(
        waited >= Duration::from_secs(10),
        "sent again before the lease ran out: {waited:?}"
    );
    assert!(
        receiver.requests() >= in_flight + 5,
        "the {in_flight} held at the kill were sent again: {} requests",
        receiver.requests()
    );
}

/// Postgres stops while deliveries are in flight and events wait: the attempts in flight cannot
/// be recorded, rounds cannot lease. When it is back, every event is delivered; none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_loses_no_event_and_delivery_resumes() {
    let mut postgres = OwnPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::new();
    receiver.hold_ms.store(1_500, Ordering::SeqCst);
    let address = reserved_address();
    receiver.start_on(address).await;
    let service = Service::start_with(
        &postgres.url(),
        delivering_to(address, &receiver, dir.path()),
    )
    .await;
    let numbers = order_numbers("WHO", 20);
    pay(&service, &numbers).await;
    wait_until("deliveries in flight", Duration::from_secs(10), || {
        receiver.requests() > 0
    })
    .await;
    tokio::task::block_in_place(|| postgres.stop());
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = receiver.requests();
    tokio::task::block_in_place(|| postgres.start_again());
    eprintln!(
        "outage lasted {:?}; {during} requests reached the receiver by its end",
        stopped.elapsed()
    );

    receiver.hold_ms.store(0, Ordering::SeqCst);
    wait_until(
        "all 20 events delivered after the outage",
        Duration::from_secs(60),
        || receiver.delivered().len() == 20,
    )
    .await;
    eprintln!(
        "outage: {} requests for 20 events; delivered {:?} after the stop",
        receiver.requests(),
        stopped.elapsed()
    );

    // One order.paid event per order, each recorded as delivered.
    let db = sqlx::PgPool::connect(&postgres.url()).await.unwrap();
    let (events, delivered): (i64, i64) = sqlx::query_as(
        "select count(distinct e.id), count(*) filter (where d.status = 'delivered') \
         from event e join webhook_delivery d on d.event_id = e.id where e.type = 'order.paid'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((events, delivered), (20, 20));
    let ids: HashSet<String> = sqlx::query_scalar("select id from event")
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        ids,
        receiver.delivered(),
        "the receiver got exactly the stored events"
    );
}
