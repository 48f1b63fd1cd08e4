//! The outbox and its feed: one event per committed change, written with it, none for
//! duplicates; the feed in order after a cursor, and as a long poll.

use std::time::{Duration, Instant};

use alipay_notify::orders::OrderStatus;
use alipay_sim::Faults;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    forty_copies_of_a_payment_write_one_event_carrying_the_order_document,
    a_closed_trade_writes_order_closed,
    refunds_write_refund_succeeded_then_order_refunded,
    a_refused_refund_writes_refund_failed,
    an_anomaly_resent_by_alipay_is_one_event,
    the_feed_pages_after_a_cursor_and_long_polls,
);

impl TestApp {
    /// `GET /api/events` with a query string; the answer's JSON.
    pub async fn feed(&self, query: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(&format!("/api/events?{query}")))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every event so far, oldest first.
    pub async fn events(&self) -> Vec<Value> {
        let (status, body) = self.feed("limit=1000").await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    /// Polls until `count` events are in the feed. On Postgres the feed holds an event back
    /// while any older write transaction in the cluster is still open (other tests' databases
    /// share the cluster), so a committed event may show a moment later.
    pub async fn wait_for_events(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events().await;
            if events.len() >= count || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn forty_copies_of_a_payment_write_one_event_carrying_the_order_document(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("E1001", "12.34").await;
    let body = genuine(&trade_success("E1001", "12.34"));
    let copies = (0..40).map(|_| app.notify(body.clone()));
    let replies = futures::future::join_all(copies).await;
    assert!(
        replies.iter().all(|r| *r == (200, "success".into())),
        "{replies:?}"
    );

    let events = app.wait_for_events(1).await;
    assert_eq!(types(&events), ["order.paid"], "{events:#?}");
    let event = &events[0];
    let id = event["id"].as_str().unwrap();
    assert!(id.starts_with("evt_") && id.len() == 30, "{id}");
    assert!(
        event["created_at"].as_str().unwrap().ends_with('Z'),
        "{event}"
    );
    let document = app.get_json("/api/orders/E1001").await;
    assert_eq!(event["data"]["order"], document);
    assert_eq!(event["data"]["order"]["status"], "paid");
    assert!(event["data"].get("refund").is_none() && event["data"].get("anomaly").is_none());

    // Alipay resends later: still one event.
    assert_eq!(app.notify(body).await, (200, "success".into()));
    assert_eq!(app.events().await.len(), 1);
}

async fn a_closed_trade_writes_order_closed(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("E2001", "5.00").await;
    let closed = with(
        trade_success("E2001", "5.00"),
        "trade_status",
        "TRADE_CLOSED",
    );
    let closed: Vec<_> = closed
        .into_iter()
        .filter(|(k, _)| k != "gmt_payment")
        .collect();
    assert_eq!(app.notify(genuine(&closed)).await.0, 200);
    assert_eq!(app.order("E2001").await.status, OrderStatus::Closed);
    let events = app.wait_for_events(1).await;
    assert_eq!(types(&events), ["order.closed"]);
    assert_eq!(events[0]["data"]["order"]["status"], "closed");
}

async fn refunds_write_refund_succeeded_then_order_refunded(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    let pay_url = flow.create_order("E3001", "10.00").await;
    flow.click(&pay_url, "pay").await;
    flow.wait_for_status("E3001", OrderStatus::Paid).await;
    for (amount, no) in [("3.00", "R1"), ("7.00", "R2")] {
        let response = flow
            .app
            .client
            .post(flow.app.url("/api/orders/E3001/refunds"))
            .bearer_auth(API_TOKEN)
            .json(&json!({"amount": amount, "out_request_no": no}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // Alipay's refund notifications arrive too; they must not add events.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = flow.app.wait_for_events(4).await;
    assert_eq!(
        types(&events),
        [
            "order.paid",
            "refund.succeeded",
            "refund.succeeded",
            "order.refunded"
        ],
        "{events:#?}"
    );
    assert_eq!(events[1]["data"]["refund"]["out_request_no"], "R1");
    assert_eq!(events[1]["data"]["refund"]["amount"], "3.00");
    assert_eq!(events[1]["data"]["order"]["refunded_amount"], "3.00");
    assert_eq!(events[2]["data"]["refund"]["out_request_no"], "R2");
    assert_eq!(events[3]["data"]["order"]["status"], "refunded");
    assert_eq!(
        events[3]["data"]["order"]["refunds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(flow.app.events().await.len(), 4);
}

async fn a_refused_refund_writes_refund_failed(db: Db) {
    // Paid by a notification the simulator never made: it knows no such trade, and refuses.
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    flow.app.pending_order("E4001", "8.00").await;
    let paid = genuine(&trade_success("E4001", "8.00"));
    assert_eq!(flow.app.notify(paid).await.0, 200);
    let response = flow
        .app
        .client
        .post(flow.app.url("/api/orders/E4001/refunds"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"amount": "1.00", "out_request_no": "RF1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let events = flow.app.wait_for_events(2).await;
    assert_eq!(types(&events), ["order.paid", "refund.failed"]);
    assert_eq!(events[1]["data"]["refund"]["status"], "failed");
    assert_eq!(events[1]["data"]["refund"]["out_request_no"], "RF1");
}

async fn an_anomaly_resent_by_alipay_is_one_event(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("E5001", "12.34").await;
    let wrong_amount = genuine(&trade_success("E5001", "0.01"));
    for _ in 0..3 {
        assert_eq!(app.notify(wrong_amount.clone()).await.0, 422);
    }
    // And one found before the order is read (another app's message): one event too.
    let other_app = genuine(&with(
        trade_success("E5001", "12.34"),
        "app_id",
        "2021000000000999",
    ));
    for _ in 0..2 {
        assert_eq!(app.notify(other_app.clone()).await.0, 422);
    }
    let events = app.wait_for_events(2).await;
    assert_eq!(
        types(&events),
        ["order.anomaly", "order.anomaly"],
        "{events:#?}"
    );
    let reasons: Vec<&Value> = events
        .iter()
        .map(|e| &e["data"]["anomaly"]["reason"])
        .collect();
    assert_eq!(
        reasons,
        [&json!("amount_mismatch"), &json!("app_id_mismatch")]
    );
    assert_eq!(events[0]["data"]["anomaly"]["source"], "notify");
    assert_eq!(
        events[0]["data"]["anomaly"]["trade_status"],
        "TRADE_SUCCESS"
    );
    assert_eq!(events[0]["data"]["order"]["status"], "pending");
    assert_eq!(app.order("E5001").await.status, OrderStatus::Pending);
}

async fn the_feed_pages_after_a_cursor_and_long_polls(db: Db) {
    let app = spawn_app(db).await;
    for n in 0..5 {
        let no = format!("E600{n}");
        app.pending_order(&no, "1.00").await;
        assert_eq!(
            app.notify(genuine(&trade_success(&no, "1.00"))).await.0,
            200
        );
    }
    app.wait_for_events(5).await;
    let (status, first) = app.feed("limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let cursor = first["next"].as_str().unwrap().to_owned();
    let (_, rest) = app.feed(&format!("after={cursor}&limit=1000")).await;
    let numbers: Vec<&str> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["events"].as_array().unwrap())
        .map(|e| e["data"]["order"]["out_trade_no"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["E6000", "E6001", "E6002", "E6003", "E6004"]);
    let last = rest["next"].as_str().unwrap().to_owned();

    // Nothing new: an empty page that keeps the cursor.
    let (_, empty) = app.feed(&format!("after={last}")).await;
    assert_eq!(empty, json!({"events": [], "next": last}));

    // A long poll answers as soon as an event is committed, well before its wait runs out.
    app.pending_order("E6100", "1.00").await;
    let long_poll = format!("after={last}&wait=20");
    let poll = app.feed(&long_poll);
    let pay = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.notify(genuine(&trade_success("E6100", "1.00"))).await
    };
    let started = Instant::now();
    let ((status, polled), paid) = tokio::join!(poll, pay);
    assert_eq!(paid.0, 200);
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        polled["events"][0]["data"]["order"]["out_trade_no"],
        "E6100"
    );

    // Bad queries are refused with a reason.
    for query in [
        "limit=1001",
        "limit=0",
        "wait=31",
        "after=evt_nope",
        "after=evt_00000000000000000000000000",
    ] {
        let (status, body) = app.feed(query).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body["error"].is_string(), "{query}: {body}");
    }
    let unauthenticated = app.client.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let one = app.get_json(&format!("/api/events/{last}")).await;
    assert_eq!(one["event"]["id"], last.as_str());
    assert_eq!(one["deliveries"], json!([]));
    let missing = app
        .client
        .get(app.url("/api/events/evt_00000000000000000000000000"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
