//! A stand-in for the merchant's notify_url that records what the simulator delivers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};

use crate::support::WAIT;

/// One request the notify receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub content_type: String,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// Stands in for the merchant's notify_url: answers from a script, then `success`.
#[derive(Default)]
pub struct Receiver {
    pub replies: Mutex<VecDeque<&'static str>>,
    pub received: Mutex<Vec<Received>>,
    pub delay: Duration,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

impl Receiver {
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        while self.received().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

pub async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> String {
    let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    receiver.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    receiver.received.lock().unwrap().push(Received {
        content_type,
        body: body.to_vec(),
        at: Instant::now(),
    });
    tokio::time::sleep(receiver.delay).await;
    receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
    let reply = receiver.replies.lock().unwrap().pop_front();
    reply.unwrap_or("success").to_owned()
}

pub async fn spawn_receiver(replies: &[&'static str], delay: Duration) -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver {
        replies: Mutex::new(replies.iter().copied().collect()),
        delay,
        ..Receiver::default()
    });
    let app = axum::Router::new()
        .route("/notify", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}
