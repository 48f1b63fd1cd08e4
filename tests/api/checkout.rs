//! The buyer's side: the form that sends a browser to Alipay, the return page, and health.

use crate::helpers::*;
use crate::on_both_databases;
use alipay_notify::orders::OrderStatus;

on_both_databases!(
    create_for_existing_order_redirects_to_gateway_at_stored_price,
    closed_checkout_refuses_new_orders_from_browsers,
    open_checkout_creates_the_order_and_redirects,
    return_page_shows_stored_status_and_never_marks_paid,
    health_and_readiness_answer,
);

impl TestApp {
    async fn checkout(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/alipay/create"))
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

async fn create_for_existing_order_redirects_to_gateway_at_stored_price(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T3001", "45.60").await;

    let response = app
        .checkout(&[("out_trade_no", "T3001"), ("subject", "x")])
        .await;
    let cheaper = app
        .checkout(&[("out_trade_no", "T3001"), ("total_amount", "0.01")])
        .await;

    assert_eq!(response.status(), 303);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next(),
        Some("https://openapi.alipay.com/gateway.do")
    );
    let biz = location
        .query_pairs()
        .find(|(k, _)| k == "biz_content")
        .unwrap()
        .1;
    assert!(biz.contains(r#""total_amount":"45.60""#), "{biz}");
    assert_eq!(cheaper.status(), 409);
}

async fn closed_checkout_refuses_new_orders_from_browsers(db: Db) {
    let app = spawn_app(db).await;

    let response = app
        .checkout(&[("subject", "Tea"), ("total_amount", "0.01")])
        .await;

    assert_eq!(response.status(), 403);
    assert!(app.store.orders(None, 10).await.unwrap().is_empty());
}

async fn open_checkout_creates_the_order_and_redirects(db: Db) {
    let app = spawn_with(db, |s| s.checkout.open = true).await;

    let response = app
        .checkout(&[
            ("out_trade_no", "WEB_1"),
            ("subject", "Tea <b>"),
            ("total_amount", "8.80"),
        ])
        .await;

    assert_eq!(response.status(), 303);
    let order = app.order("WEB_1").await;
    assert_eq!(
        (order.status, order.total_amount.fen()),
        (OrderStatus::Pending, 880)
    );
    let shop = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(shop.headers()["x-frame-options"], "DENY");
    assert!(shop.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("https://openapi.alipay.com"));
    assert!(shop.text().await.unwrap().contains("Pay with Alipay"));
}

fn return_query(
    out_trade_no: &str,
    amount: &str,
    key: &alipay_notify::alipay::keys::PrivateKey,
) -> String {
    let params: Vec<(String, String)> = [
        ("charset", "utf-8"),
        ("out_trade_no", out_trade_no),
        ("method", "alipay.trade.page.pay.return"),
        ("total_amount", amount),
        ("trade_no", "2026112822001000"),
        ("auth_app_id", APP_ID),
        ("version", "1.0"),
        ("app_id", APP_ID),
        ("sign_type", "RSA2"),
        ("seller_id", SELLER_ID),
        ("timestamp", "2026-11-28 23:10:06"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    signed_body(&params, key)
}

async fn return_page_shows_stored_status_and_never_marks_paid(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T3002", "1.00").await;
    let page = |query: String| {
        let url = app.url(&format!("/payment/success?{query}"));
        let client = app.client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let (status, pending) = page(return_query("T3002", "1.00", &keys().alipay)).await;
    assert_eq!(status, 200);
    assert!(pending.contains("being confirmed"), "{pending}");
    assert_eq!(app.order("T3002").await.status, OrderStatus::Pending);

    let (forged, _) = page(return_query("T3002", "1.00", &keys().forger)).await;
    assert_eq!(forged, 400);

    app.notify(genuine(&trade_success("T3002", "1.00"))).await;
    let (_, paid) = page(return_query("T3002", "1.00", &keys().alipay)).await;
    assert!(paid.contains("Payment received"), "{paid}");
}

async fn health_and_readiness_answer(db: Db) {
    let app = spawn_app(db).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
    }
}
