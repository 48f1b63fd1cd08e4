//! The open loop against a tiny local server that stalls one reply, or is slow throughout.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::routing::post;
use axum::Router;
use indicatif::ProgressBar;

use super::schedule::{Phase, Schedule};
use super::{run, Outcome, Reply};
use crate::load;

/// What the server does and saw.
#[derive(Clone, Default)]
struct Server {
    /// The request (counted from 0) whose reply is held back by `stall`.
    stalled: usize,
    stall: Duration,
    /// Every reply is held back this long.
    slow: Duration,
    requests: Arc<AtomicUsize>,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
}

async fn notify(
    State(server): State<Server>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> &'static str {
    server.peers.lock().unwrap().insert(peer);
    let n = server.requests.fetch_add(1, Ordering::SeqCst);
    let hold = server.slow
        + if n == server.stalled {
            server.stall
        } else {
            Duration::ZERO
        };
    tokio::time::sleep(hold).await;
    "success"
}

/// Serves `server` on a port of its own; the notify URL.
async fn serve(server: Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alipay/notify", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/alipay/notify", post(notify))
        .with_state(server);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    url
}

fn bodies(n: usize) -> Arc<Vec<Arc<[u8]>>> {
    Arc::new((0..n).map(|_| Arc::from(&b"x=1"[..])).collect())
}

async fn open_loop(url: &str, rate: f64, seconds: f64, connections: usize) -> Vec<Outcome> {
    let schedule = Schedule::new(vec![Phase::new(rate, seconds).unwrap()]);
    let client = load::client(connections).unwrap();
    let bodies = bodies(schedule.requests());
    run(
        Instant::now(),
        &client,
        url,
        bodies,
        &schedule,
        connections,
        &ProgressBar::hidden(),
    )
    .await
}

const STALL: Duration = Duration::from_millis(300);
const SLOW: Duration = Duration::from_millis(100);

fn stalling() -> Server {
    Server {
        stalled: 20,
        stall: STALL,
        ..Server::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_delays_the_requests_meant_to_go_during_it() {
    let url = serve(stalling()).await;

    // 200/s on one connection: request 20 is meant for 100 ms and answered about 300 ms later;
    // the ~60 requests meant for the time in between wait for that connection.
    let outcomes = open_loop(&url, 200.0, 1.0, 1).await;

    assert_eq!(outcomes.len(), 200);
    assert!(outcomes.iter().all(|o| o.reply == Reply::Success));
    assert!(outcomes[20].latency() >= STALL);
    let delayed = outcomes[21..]
        .iter()
        .filter(|o| o.latency() >= SLOW)
        .count();
    assert!(
        delayed >= 20,
        "only {delayed} later requests show the stall"
    );
    let waited = outcomes[21].sent.unwrap() - outcomes[21].intended;
    assert!(
        waited >= STALL - Duration::from_millis(50),
        "send delay {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_shows_the_same_stall_in_one_request_only() {
    let url = serve(stalling()).await;
    let client = load::client(1).unwrap();

    let result = load::send_all(&client, &url, bodies(200), 1, &ProgressBar::hidden()).await;

    assert_eq!(result.success, 200);
    let slow = result
        .latency
        .iter_recorded()
        .filter(|v| v.value_iterated_to() >= SLOW.as_micros() as u64)
        .map(|v| v.count_at_value())
        .sum::<u64>();
    assert!((1..=2).contains(&slow), "{slow} slow requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_never_exceed_the_cap_and_waiting_counts() {
    let server = Server {
        slow: SLOW,
        ..Server::default()
    };
    let peers = server.peers.clone();
    let url = serve(server).await;

    // 100/s of 100 ms replies needs ~10 connections; 4 are allowed, so requests queue.
    let outcomes = open_loop(&url, 100.0, 0.5, 4).await;

    assert!(outcomes.iter().all(|o| o.reply == Reply::Success));
    assert!(
        peers.lock().unwrap().len() <= 4,
        "{:?}",
        peers.lock().unwrap()
    );
    let last = outcomes.last().unwrap();
    assert!(
        last.latency() >= Duration::from_millis(500),
        "{:?}",
        last.latency()
    );
}

#[tokio::test]
async fn a_refused_connection_is_an_error_by_kind() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alipay/notify", listener.local_addr().unwrap());
    drop(listener);

    let outcomes = open_loop(&url, 100.0, 0.05, 2).await;

    let kinds: HashSet<&Reply> = outcomes.iter().map(|o| &o.reply).collect();
    assert_eq!(
        kinds,
        HashSet::from([&Reply::Error("connect: connection refused".into())])
    );
}
