//! The merchant's JSON API: bearer-authenticated order creation and lookup.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    create_order_answers_201_with_a_pay_link_that_signs_when_opened,
    same_order_again_is_idempotent_and_different_is_409,
    wrong_or_missing_token_is_401_and_reveals_nothing,
    invalid_orders_are_refused_and_not_stored,
    get_order_shows_its_state,
);

impl TestApp {
    async fn api_post(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.client.post(self.url("/api/orders")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn api_get(&self, token: Option<&str>, out_trade_no: &str) -> (u16, Value) {
        let mut request = self
            .client
            .get(self.url(&format!("/api/orders/{out_trade_no}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

async fn create_order_answers_201_with_a_pay_link_that_signs_when_opened(db: Db) {
    let app = spawn_app(db).await;

    let (status, body) = app
        .api_post(
            Some(API_TOKEN),
            json!({"subject": "Tea", "total_amount": "12.30"}),
        )
        .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["total_amount"], "12.30");
    let no = body["out_trade_no"].as_str().unwrap();
    assert!(
        no.len() >= 20 && no.bytes().all(|b| b.is_ascii_digit()),
        "{no}"
    );
    assert_eq!(
        body["pay_url"],
        format!("https://shop.example.com/pay/{no}"),
        "a link to us, not a signed gateway URL that ages"
    );
    assert_eq!(body["product"], "page");
    assert!(body.get("order_string").is_none(), "{body}");

    let opened = app
        .client
        .get(app.url(&format!("/pay/{no}")))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    let location = opened.headers()["location"].to_str().unwrap();
    let pay_url = url::Url::parse(location).unwrap();
    assert_eq!(pay_url.host_str(), Some("openapi.alipay.com"));
    let query: std::collections::HashMap<_, _> = pay_url.query_pairs().into_owned().collect();
    assert_eq!(query["method"], "alipay.trade.page.pay");
    assert_eq!(
        query["notify_url"],
        "https://shop.example.com/alipay/notify"
    );
    assert_eq!(
        query["return_url"],
        "https://shop.example.com/payment/success"
    );
    assert_eq!(query["charset"], "utf-8");
    let biz: Value = serde_json::from_str(&query["biz_content"]).unwrap();
    assert_eq!(biz["out_trade_no"], no);
    assert_eq!(biz["total_amount"], "12.30");
    assert_eq!(biz["product_code"], "FAST_INSTANT_TRADE_PAY");
    assert!(!query["sign"].is_empty());
    assert_eq!(app.order(no).await.total_amount.fen(), 1230);
}

async fn same_order_again_is_idempotent_and_different_is_409(db: Db) {
    let app = spawn_app(db).await;
    let order = json!({"out_trade_no": "SHOP_42", "subject": "Tea", "total_amount": "5.00"});

    let first = app.api_post(Some(API_TOKEN), order.clone()).await;
    let again = app.api_post(Some(API_TOKEN), order).await;
    let other_amount = app
        .api_post(
            Some(API_TOKEN),
            json!({"out_trade_no": "SHOP_42", "subject": "Tea", "total_amount": "0.01"}),
        )
        .await;

    assert_eq!(first.0, 201);
    assert_eq!(again.0, 200);
    assert_eq!(again.1["created_at"], first.1["created_at"]);
    assert_eq!(other_amount.0, 409);
    assert_eq!(app.order("SHOP_42").await.total_amount.fen(), 500);
}

async fn wrong_or_missing_token_is_401_and_reveals_nothing(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("SECRET_1", "1.00").await;

    for token in [None, Some("wrong"), Some(""), Some("test-token-012345678")] {
        let (status, body) = app.api_get(token, "SECRET_1").await;
        assert_eq!(status, 401);
        assert!(!body.to_string().contains("SECRET_1"));
        let (status, _) = app
            .api_post(token, json!({"subject": "x", "total_amount": "1"}))
            .await;
        assert_eq!(status, 401);
    }
    assert_eq!(app.store.orders(None, 10).await.unwrap().len(), 1);
}

async fn invalid_orders_are_refused_and_not_stored(db: Db) {
    let app = spawn_app(db).await;
    let cases = [
        json!({"subject": "Tea", "total_amount": "1e3"}),
        json!({"subject": "Tea", "total_amount": "-0.01"}),
        json!({"subject": "Tea", "total_amount": "0.001"}),
        json!({"subject": "Tea", "total_amount": "100000000.01"}),
        json!({"subject": "Tea", "total_amount": 12.34}),
        json!({"subject": "a&b=c", "total_amount": "1.00"}),
        json!({"out_trade_no": "x".repeat(65), "subject": "Tea", "total_amount": "1.00"}),
        json!({"out_trade_no": "1'; drop table payment_order;--", "subject": "Tea", "total_amount": "1.00"}),
        json!({"total_amount": "1.00"}),
    ];
    for case in cases {
        let (status, body) = app.api_post(Some(API_TOKEN), case.clone()).await;
        assert_eq!(status, 422, "{case} -> {body}");
        assert!(body["error"].is_string());
    }
    assert!(app.store.orders(None, 10).await.unwrap().is_empty());
}

async fn get_order_shows_its_state(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T2001", "88.00").await;
    app.notify(genuine(&trade_success("T2001", "88.00"))).await;

    let (status, body) = app.api_get(Some(API_TOKEN), "T2001").await;
    let (missing, _) = app.api_get(Some(API_TOKEN), "T2002").await;

    assert_eq!(status, 200);
    assert_eq!(body["status"], "paid");
    assert_eq!(body["total_amount"], "88.00");
    assert_eq!(body["trade_no"], "2026112822001T2001");
    assert_eq!(body["buyer_id"], "2088102177846880");
    assert_eq!(body["alipay_trade_status"], "TRADE_SUCCESS");
    assert_eq!(body["paid_at"], "2026-11-28T15:10:04Z");
    assert!(body["created_at"].is_string());
    assert_eq!(missing, 404);
}
