//! Webhooks against a real receiver on loopback: signed per Standard Webhooks (checked against
//! the reference implementation's vectors), retried until a 2xx, never following redirects,
//! timing out on endpoints that hang, in order per order, shared by instances without doubles.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alipay_notify::config::{EndpointSettings, Settings};
use alipay_notify::webhooks::WebhookSecret;
use alipay_test_support::webhooks;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    a_failing_endpoint_is_retried_until_it_answers_2xx,
    a_redirect_is_not_followed,
    a_hanging_endpoint_times_out_and_is_retried,
    an_endpoint_that_was_down_gets_the_event_once_it_is_up,
    an_orders_events_arrive_in_order_and_a_slow_endpoint_delays_no_other,
    redeliver_sends_an_event_again,
    an_orders_events_are_read_back_with_their_deliveries_and_attempts,
);

/// What the receiver does with a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    Status(u16),
    Redirect,
    Hang,
}

#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    body: String,
    verified: bool,
    at: Instant,
}

#[derive(Clone)]
pub(crate) struct Receiver {
    secret: String,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// When the script is used up.
    then: Answer,
    received: Arc<Mutex<Vec<Received>>>,
    redirected_to: Arc<Mutex<u32>>,
}

impl Receiver {
    fn new(script: &[Answer]) -> Self {
        Self {
            secret: WebhookSecret::generate(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            then: Answer::Status(200),
            received: Arc::default(),
            redirected_to: Arc::default(),
        }
    }

    pub(crate) fn always(answer: Answer) -> Self {
        Self {
            then: answer,
            ..Self::new(&[])
        }
    }

    /// Serves on `address` (port 0 picks one); the URL to configure.
    async fn start_on(&self, address: SocketAddr) -> String {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let router = Router::new()
            .route("/hooks", post(receive))
            .route("/elsewhere", any(elsewhere))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    pub(crate) async fn start(&self) -> String {
        self.start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.received().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.received()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let checked = webhooks::check(&receiver.secret, &headers, &body);
    receiver.received.lock().unwrap().push(Received {
        id: checked.id,
        body: String::from_utf8_lossy(&body).into_owned(),
        verified: checked.verified,
        at: Instant::now(),
    });
    let answer = receiver
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(receiver.then);
    match answer {
        Answer::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            (status, format!("answered {code}")).into_response()
        }
        Answer::Redirect => {
            (StatusCode::FOUND, [("location", "/elsewhere")], "moved").into_response()
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
    }
}

async fn elsewhere(State(receiver): State<Receiver>) -> StatusCode {
    *receiver.redirected_to.lock().unwrap() += 1;
    StatusCode::OK
}

/// Short waits between attempts, so retries happen within a test.
fn quick_retries(settings: &mut Settings) {
    settings.webhooks.retry_schedule = ["0s", "100ms", "100ms", "100ms", "100ms", "100ms"]
        .map(String::from)
        .to_vec();
}

pub(crate) fn endpoint(settings: &mut Settings, url: &str, receiver: &Receiver) {
    settings.webhooks.url = Some(url.to_owned());
    settings.webhooks.secret = Some(SecretString::from(receiver.secret.clone()));
    quick_retries(settings);
}

impl TestApp {
    async fn pay(&self, out_trade_no: &str) {
        self.pending_order(out_trade_no, "9.90").await;
        let (status, reply) = self
            .notify(genuine(&trade_success(out_trade_no, "9.90")))
            .await;
        assert_eq!((status, reply.as_str()), (200, "success"));
    }

    /// Polls `GET /api/events/{id}` until every delivery has left `pending`.
    async fn settled_event(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = self
                .client
                .get(self.url(&format!("/api/events/{id}")))
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                let event: Value = response.json().await.unwrap();
                let deliveries = event["deliveries"].as_array().unwrap();
                if !deliveries.is_empty() && deliveries.iter().all(|d| d["status"] != "pending") {
                    return event;
                }
                if Instant::now() > deadline {
                    panic!("event {id} still pending: {event:#}");
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn status_codes(event: &Value) -> Vec<Value> {
    event["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect()
}

async fn a_failing_endpoint_is_retried_until_it_answers_2xx(db: Db) {
    let receiver = Receiver::new(&[Answer::Status(500), Answer::Status(503)]);
    let url = receiver.start().await;
    let app = spawn_with(db, |s| endpoint(s, &url, &receiver)).await;
    app.pay("W1001").await;

    let received = receiver.wait_for(3).await;
    assert_eq!(received.len(), 3, "{received:?}");
    assert!(received.iter().all(|r| r.verified), "{received:?}");
    let id = &received[0].id;
    assert!(received
        .iter()
        .all(|r| &r.id == id && r.body == received[0].body));
    let event = app.settled_event(id).await;
    assert_eq!(event["deliveries"][0]["status"], "delivered");
    assert_eq!(event["deliveries"][0]["attempts"], 3);
    assert_eq!(status_codes(&event), [500, 503, 200]);
    assert_eq!(event["attempts"][0]["response_body"], "answered 500");
    assert!(event["attempts"][0]["latency_ms"].as_i64().unwrap() >= 0);
    // The body sent is the event exactly as the feed shows it.
    let sent: Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(sent, event["event"]);
    assert_eq!(sent["type"], "order.paid");

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "delivered events are not sent again"
    );
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for line in [
        "alipay_notify_webhook_deliveries_total{endpoint=\"default\",outcome=\"retrying\"} 2",
        "alipay_notify_webhook_deliveries_total{endpoint=\"default\",outcome=\"delivered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(
        !metrics.contains(&receiver.secret[6..]),
        "the secret leaked"
    );
}

async fn a_redirect_is_not_followed(db: Db) {
    let receiver = Receiver::new(&[Answer::Redirect]);
    let url = receiver.start().await;
    let app = spawn_with(db, |s| endpoint(s, &url, &receiver)).await;
    app.pay("W2001").await;
    let received = receiver.wait_for(2).await;
    let event = app.settled_event(&received[0].id).await;
    assert_eq!(status_codes(&event), [302, 200]);
    assert_eq!(*receiver.redirected_to.lock().unwrap(), 0);
}

async fn a_hanging_endpoint_times_out_and_is_retried(db: Db) {
    let receiver = Receiver::new(&[Answer::Hang]);
    let url = receiver.start().await;
    let app = spawn_with(db, |s| endpoint(s, &url, &receiver)).await;
    let started = Instant::now();
    app.pay("W3001").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the notify waited for the webhook"
    );
    let received = receiver.wait_for(2).await;
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_secs(9), "{gap:?}");
    let event = app.settled_event(&received[0].id).await;
    assert_eq!(status_codes(&event), [Value::Null, 200.into()]);
    let error = event["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("timed out"), "{error}");
}

async fn an_endpoint_that_was_down_gets_the_event_once_it_is_up(db: Db) {
    let receiver = Receiver::new(&[]);
    // An address where nothing listens yet: it must refuse connections until the receiver
    // starts on it, so it cannot be a listener bound now (its backlog would accept them).
    let address = alipay_test_support::net::free_address();
    let url = format!("http://{address}/hooks");
    let app = spawn_with(db, |s| {
        endpoint(s, &url, &receiver);
        s.webhooks.retry_schedule = [
            "0s", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms",
        ]
        .map(String::from)
        .to_vec();
    })
    .await;
    app.pay("W4001").await;
    let id = app.wait_for_events(1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed_attempt = loop {
        let event = app.get_json(&format!("/api/events/{id}")).await;
        if let Some(attempt) = event["attempts"].as_array().unwrap().first() {
            break attempt.clone();
        }
        assert!(Instant::now() < deadline, "no attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(failed_attempt["error"]
        .as_str()
        .unwrap()
        .starts_with("cannot connect"));

    receiver.start_on(address).await;
    let received = receiver.wait_for(1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].id, id);
    let event = app.settled_event(&id).await;
    assert_eq!(event["deliveries"][0]["status"], "delivered");
}

async fn an_orders_events_arrive_in_order_and_a_slow_endpoint_delays_no_other(db: Db) {
    let fast = Receiver::new(&[Answer::Status(500)]);
    let slow = Receiver::always(Answer::Hang);
    let (fast_url, slow_url) = (fast.start().await, slow.start().await);
    let app = spawn_with(db, |s| {
        quick_retries(s);
        for (name, url, receiver) in [("fast", &fast_url, &fast), ("slow", &slow_url, &slow)] {
            s.webhooks.endpoints.push(EndpointSettings {
                name: name.into(),
                url: url.clone(),
                secret: SecretString::from(receiver.secret.clone()),
                types: None,
            });
        }
    })
    .await;
    // Paid, then fully refunded by a closing notification: two events for one order. The first
    // delivery of order.paid fails; order.refunded must still come after it.
    app.pay("W5001").await;
    let closed = with(
        trade_success("W5001", "9.90"),
        "trade_status",
        "TRADE_CLOSED",
    );
    let closed = with(closed, "notify_id", "closing-W5001");
    assert_eq!(app.notify(genuine(&closed)).await.0, 200);

    let received = fast.wait_for(3).await;
    let types: Vec<String> = received
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["order.paid", "order.paid", "order.refunded"]);
    assert!(received[2].at - received[0].at < Duration::from_secs(5));
    // The slow endpoint got its first request and is still hanging on it.
    assert_eq!(slow.wait_for(1).await.len(), 1);
}

async fn redeliver_sends_an_event_again(db: Db) {
    let receiver = Receiver::new(&[]);
    let url = receiver.start().await;
    let app = spawn_with(db, |s| endpoint(s, &url, &receiver)).await;
    app.pay("W6001").await;
    let id = receiver.wait_for(1).await[0].id.clone();
    app.settled_event(&id).await;
    let response = app
        .client
        .post(app.url(&format!("/api/events/{id}/redeliver")))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let received = receiver.wait_for(2).await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].id, id);
    let missing = app
        .client
        .post(app.url("/api/events/evt_00000000000000000000000000/redeliver"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_deliver_each_event_once() {
    let receiver = Receiver::new(&[]);
    let url = receiver.start().await;
    let first = spawn_with(Db::Postgres, |s| endpoint(s, &url, &receiver)).await;
    let second = spawn_sibling_with(&first, |s| endpoint(s, &url, &receiver)).await;
    for n in 0..40 {
        let app = if n % 2 == 0 { &first } else { &second };
        app.pay(&format!("W7{n:03}")).await;
    }
    let received = receiver.wait_for(40).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received_late = receiver.received();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for r in &received_late {
        *per_id.entry(r.id.as_str()).or_default() += 1;
    }
    assert_eq!(received.len(), 40);
    assert_eq!(per_id.len(), 40);
    assert!(per_id.values().all(|n| *n == 1), "sent twice: {per_id:?}");
}

/// Our signer and verifier against vectors made by the reference implementation (PyPI
/// `standardwebhooks`, see tests/vectors/make_webhooks.py).
#[test]
fn signatures_match_the_standard_webhooks_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/webhooks.json");
    let vectors: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(vectors.len(), 3);
    for vector in vectors {
        let text = |k: &str| vector[k].as_str().unwrap().to_owned();
        let (id, body, signature) = (text("id"), text("body"), text("signature"));
        let timestamp = vector["timestamp"].as_i64().unwrap();
        let secret = WebhookSecret::parse(&text("secret")).unwrap();
        assert_eq!(secret.sign(&id, timestamp, body.as_bytes()), signature);
        let ts = timestamp.to_string();
        let verify = |secret: &WebhookSecret| {
            secret.verify(
                Some(&id),
                Some(&ts),
                Some(&signature),
                body.as_bytes(),
                timestamp,
            )
        };
        assert_eq!(verify(&secret), Ok(()));
        let wrong = WebhookSecret::parse(&text("wrong_secret")).unwrap();
        assert!(
            verify(&wrong).is_err(),
            "a receiver with the wrong secret must reject it"
        );
    }
}

/// `order_events` (the webhook side of an order's timeline): the order's own events only, each
/// with its delivery and every attempt in order.
async fn an_orders_events_are_read_back_with_their_deliveries_and_attempts(db: Db) {
    let receiver = Receiver::new(&[Answer::Status(500)]);
    let url = receiver.start().await;
    let app = spawn_with(db, |s| endpoint(s, &url, &receiver)).await;
    app.pay("W9").await;
    receiver.wait_for(2).await;
    app.pay("W10").await;
    receiver.wait_for(3).await;
    for no in ["W9", "W10"] {
        for detail in app.store.order_events(no).await.unwrap() {
            app.settled_event(&detail.event.id).await;
        }
    }

    let events = app.store.order_events("W9").await.unwrap();
    let none = app.store.order_events("W404").await.unwrap();

    assert_eq!(events.len(), 1);
    let paid = &events[0];
    assert_eq!(paid.event.event_type, "order.paid");
    assert_eq!(paid.event.out_trade_no.as_deref(), Some("W9"));
    assert_eq!(paid.deliveries.len(), 1);
    assert_eq!(paid.deliveries[0].status.as_str(), "delivered");
    let codes: Vec<Option<i64>> = paid.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(200)]);
    assert!(none.is_empty());
}
