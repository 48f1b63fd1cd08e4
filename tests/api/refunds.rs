//! Refunds through the API: partial and full, idempotent by out_request_no, never more than
//! was paid (also under concurrent requests), consistent whichever of response and
//! notification arrives first.

use alipay_notify::orders::OrderStatus;
use alipay_sim::Faults;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    partial_then_full_refund_moves_the_order_to_refunded,
    retrying_a_refund_with_its_out_request_no_refunds_once,
    refunds_never_exceed_the_paid_amount_even_concurrently,
    only_paid_orders_can_be_refunded,
);

impl PayFlow {
    pub(crate) async fn paid_order(&self, out_trade_no: &str, amount: &str) {
        let pay_url = self.create_order(out_trade_no, amount).await;
        self.click(&pay_url, "pay").await;
        self.wait_for_status(out_trade_no, OrderStatus::Paid).await;
    }

    pub(crate) async fn refund(&self, out_trade_no: &str, body: Value) -> (u16, Value) {
        let url = self.app.url(&format!("/api/orders/{out_trade_no}/refunds"));
        let response = self
            .app
            .client
            .post(url)
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

async fn partial_then_full_refund_moves_the_order_to_refunded(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    flow.paid_order("G1001", "10.00").await;

    let (status, partial) = flow
        .refund("G1001", json!({"amount": "3.00", "reason": "broken lid"}))
        .await;
    assert_eq!(status, 201, "{partial}");
    assert_eq!(partial["refund"]["status"], "succeeded");
    assert_eq!(partial["order"]["status"], "paid");
    assert_eq!(partial["order"]["refunded_amount"], "3.00");

    let (status, full) = flow.refund("G1001", json!({"amount": "7.00"})).await;
    assert_eq!(status, 201, "{full}");
    assert_eq!(full["order"]["status"], "refunded");
    assert_eq!(full["order"]["refunded_amount"], "10.00");
    assert_eq!(full["order"]["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(flow.sim.trade("G1001").unwrap().refunded(), 1000);

    // The refund notifications arrive afterwards and change nothing.
    let verdicts = flow.wait_for_audit_rows("G1001", 5).await;
    assert_eq!(
        verdicts.iter().filter(|v| *v == "applied").count(),
        3,
        "{verdicts:?}"
    );
    assert_eq!(flow.app.order("G1001").await.status, OrderStatus::Refunded);
}

async fn retrying_a_refund_with_its_out_request_no_refunds_once(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    flow.paid_order("G1002", "10.00").await;
    let request = json!({"amount": "4.00", "out_request_no": "RF_1"});

    let first = flow.refund("G1002", request.clone()).await;
    let again = flow.refund("G1002", request).await;
    let other_amount = flow
        .refund("G1002", json!({"amount": "5.00", "out_request_no": "RF_1"}))
        .await;

    assert_eq!((first.0, again.0), (201, 201));
    assert_eq!(again.1["refund"]["out_request_no"], "RF_1");
    assert_eq!(again.1["order"]["refunded_amount"], "4.00");
    assert_eq!(other_amount.0, 409);
    assert_eq!(flow.sim.trade("G1002").unwrap().refunded(), 400);
}

async fn refunds_never_exceed_the_paid_amount_even_concurrently(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    flow.paid_order("G1003", "10.00").await;

    let requests = (0..8).map(|n| {
        flow.refund(
            "G1003",
            json!({"amount": "3.00", "out_request_no": format!("C{n}")}),
        )
    });
    let replies = futures::future::join_all(requests).await;

    let accepted = replies.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(accepted, 3, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|(status, _)| *status == 201 || *status == 422),
        "{replies:?}"
    );
    let order = flow.app.order("G1003").await;
    assert_eq!(order.refunded_fen, 900);
    assert_eq!(flow.sim.trade("G1003").unwrap().refunded(), 900);
    let (status, body) = flow.refund("G1003", json!({"amount": "1.01"})).await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("at most 1.00"),
        "{body}"
    );
}

async fn only_paid_orders_can_be_refunded(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    flow.create_order("G1004", "10.00").await;

    let (pending, _) = flow.refund("G1004", json!({"amount": "1.00"})).await;
    let (missing, _) = flow.refund("G404", json!({"amount": "1.00"})).await;
    let (bad_amount, _) = flow.refund("G1004", json!({"amount": "-1"})).await;

    assert_eq!((pending, missing, bad_amount), (409, 404, 422));
    assert!(flow.app.store.refunds("G1004").await.unwrap().is_empty());
}

/// Alipay's refund notification can arrive before our request's answer (or the answer can be
/// lost): it settles the same refund record, and the retried request then changes nothing.
#[tokio::test]
async fn a_refund_notification_first_settles_the_same_refund() {
    let flow = spawn_paying(Db::Sqlite, Faults::default(), |_| {}).await;
    flow.paid_order("G1005", "10.00").await;
    let trade_no = flow.sim.trade("G1005").unwrap().trade_no.unwrap();
    let mut notice = with(trade_success("G1005", "10.00"), "trade_no", &trade_no);
    notice = with(notice, "notify_id", "refund-notice-1");
    notice = with(notice, "refund_fee", "2.50");
    notice = with(notice, "gmt_refund", "2026-11-29 10:00:00.123");
    notice = with(notice, "out_biz_no", "RF_9");

    assert_eq!(
        flow.app.notify(genuine(&notice)).await,
        (200, "success".into())
    );
    assert_eq!(
        flow.app.notify(genuine(&notice)).await,
        (200, "success".into())
    );
    let (status, body) = flow
        .refund("G1005", json!({"amount": "2.50", "out_request_no": "RF_9"}))
        .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["refund"]["status"], "succeeded");
    assert_eq!(body["order"]["refunded_amount"], "2.50");
    assert_eq!(body["order"]["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(
        flow.app.verdicts("G1005").await,
        ["applied", "applied", "duplicate"]
    );
}
