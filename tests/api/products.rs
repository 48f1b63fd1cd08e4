//! The ways a buyer pays (page, wap, qr, app): choosing a product through the API and the shop
//! form, what each answer carries, and pay links that sign when opened and refuse orders that
//! can no longer be paid.

use std::collections::HashMap;

use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::sign::{sign_content, REQUEST_EXCLUDED};
use alipay_notify::orders::OrderStatus;
use alipay_test_support::keys::{keys, public_of};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    unknown_and_disabled_products_are_422_naming_the_enabled_ones,
    an_app_order_answers_a_signed_order_string_instead_of_a_link,
    a_wap_pay_link_sends_the_phone_cashier_request_with_quit_url,
    the_form_picks_wap_for_phones_unless_the_buyer_chose,
    a_pay_link_for_an_order_that_cannot_be_paid_says_why,
    the_same_number_with_another_product_is_a_conflict,
);

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/131.0 Safari/537.36";

impl TestApp {
    async fn create_product(&self, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/api/orders"))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn open_link(&self, out_trade_no: &str) -> reqwest::Response {
        let path = format!("/pay/{out_trade_no}");
        self.client.get(self.url(&path)).send().await.unwrap()
    }

    async fn shop_form(&self, agent: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/alipay/create"))
            .header("user-agent", agent)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// The parameters of a gateway URL or an order string.
fn params(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn location_params(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response.headers()["location"].to_str().unwrap();
    let (_, query) = location
        .split_once('?')
        .expect("a gateway URL with a query");
    params(query)
}

async fn unknown_and_disabled_products_are_422_naming_the_enabled_ones(db: Db) {
    let app = spawn_with(db, |s| s.checkout.enabled_products = "page, wap".into()).await;

    let (unknown, unknown_body) = app
        .create_product(json!({"subject": "Tea", "total_amount": "1.00", "product": "bitcoin"}))
        .await;
    let (disabled, disabled_body) = app
        .create_product(json!({"subject": "Tea", "total_amount": "1.00", "product": "qr"}))
        .await;
    let (default, default_body) = app
        .create_product(json!({"subject": "Tea", "total_amount": "1.00"}))
        .await;

    assert_eq!(unknown, 422);
    let message = unknown_body["error"].as_str().unwrap();
    assert!(message.contains("one of: page, wap"), "{message}");
    assert_eq!(disabled, 422);
    let message = disabled_body["error"].as_str().unwrap();
    assert!(
        message.contains("product qr is not enabled here; enabled: page, wap"),
        "{message}"
    );
    assert_eq!(default, 201);
    assert_eq!(default_body["product"], "page");
    assert_eq!(app.store.orders(None, 10).await.unwrap().len(), 1);
}

async fn an_app_order_answers_a_signed_order_string_instead_of_a_link(db: Db) {
    let app = spawn_app(db).await;

    let (status, body) = app
        .create_product(json!({"out_trade_no": "P4001", "subject": "Tea + 茶", "total_amount": "9.90", "product": "app"}))
        .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["product"], "app");
    assert!(body.get("pay_url").is_none(), "{body}");
    let order_string = body["order_string"].as_str().unwrap();
    let raw = RawParams::parse(order_string.as_bytes()).unwrap();
    let content = sign_content(raw.iter(), REQUEST_EXCLUDED);
    let sign = std::str::from_utf8(raw.get("sign").unwrap()).unwrap();
    public_of(&keys().app)
        .verify(&content, sign)
        .expect("the order string is signed by the app key over its own parameters");
    let fields = params(order_string);
    assert_eq!(fields["method"], "alipay.trade.app.pay");
    assert_eq!(
        fields["notify_url"],
        "https://shop.example.com/alipay/notify"
    );
    assert!(!fields.contains_key("return_url"), "{fields:?}");
    let biz: Value = serde_json::from_str(&fields["biz_content"]).unwrap();
    assert_eq!(biz["product_code"], "QUICK_MSECURITY_PAY");
    assert_eq!(biz["subject"], "Tea + 茶");
    assert_eq!(biz["total_amount"], "9.90");

    let opened = app.open_link("P4001").await;
    assert_eq!(
        opened.status(),
        409,
        "an app order is not paid in a browser"
    );
}

async fn a_wap_pay_link_sends_the_phone_cashier_request_with_quit_url(db: Db) {
    let app = spawn_with(db, |s| {
        s.checkout.quit_url = Some("https://shop.example.com/cart".into())
    })
    .await;
    let (status, body) = app
        .create_product(json!({"out_trade_no": "P4002", "subject": "Tea", "total_amount": "3.00", "product": "wap"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pay_url"], "https://shop.example.com/pay/P4002");

    let opened = app.open_link("P4002").await;

    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["cache-control"], "no-store");
    let fields = location_params(&opened);
    assert_eq!(fields["method"], "alipay.trade.wap.pay");
    assert_eq!(
        fields["return_url"],
        "https://shop.example.com/payment/success"
    );
    let biz: Value = serde_json::from_str(&fields["biz_content"]).unwrap();
    assert_eq!(biz["product_code"], "QUICK_WAP_WAY");
    assert_eq!(biz["quit_url"], "https://shop.example.com/cart");
}

async fn the_form_picks_wap_for_phones_unless_the_buyer_chose(db: Db) {
    let app = spawn_with(db, |s| s.checkout.open = true).await;
    let tea = [("subject", "Tea"), ("total_amount", "2.00")];

    let phone = app.shop_form(IPHONE, &tea).await;
    let desktop = app.shop_form(DESKTOP, &tea).await;
    let chosen = app
        .shop_form(IPHONE, &[tea[0], tea[1], ("product", "page")])
        .await;
    let app_in_browser = app
        .shop_form(DESKTOP, &[tea[0], tea[1], ("product", "app")])
        .await;

    assert_eq!(phone.status(), 303);
    assert_eq!(location_params(&phone)["method"], "alipay.trade.wap.pay");
    assert_eq!(location_params(&desktop)["method"], "alipay.trade.page.pay");
    assert_eq!(location_params(&chosen)["method"], "alipay.trade.page.pay");
    assert_eq!(app_in_browser.status(), 422);
    let page = app_in_browser.text().await.unwrap();
    assert!(page.contains("product app is not enabled here"), "{page}");
    assert_eq!(app.store.orders(None, 10).await.unwrap().len(), 3);
}

async fn a_pay_link_for_an_order_that_cannot_be_paid_says_why(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("P4003", "1.00").await;
    let paid = genuine(&trade_success("P4003", "1.00"));
    assert_eq!(app.notify(paid).await, (200, "success".into()));
    let past = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    let expired = alipay_notify::orders::NewOrder {
        out_trade_no: "P4004".into(),
        subject: "Tea".into(),
        body: None,
        total_amount: "1.00".parse().unwrap(),
        product: alipay_notify::alipay::product::Product::Page,
        created_at: past,
        expires_at: past + time::Duration::minutes(30),
    };
    app.store.create_order(&expired).await.unwrap();

    let paid_page = app.open_link("P4003").await;
    let expired_page = app.open_link("P4004").await;
    let unknown = app.open_link("P4999").await;
    let invalid = app.open_link("no%20such").await;

    assert_eq!(paid_page.status(), 200);
    let html = paid_page.text().await.unwrap();
    assert!(html.contains(r#"data-status="paid""#), "{html}");
    assert!(
        html.contains(r#"id="back""#),
        "every page offers the way back: {html}"
    );
    assert_eq!(expired_page.status(), 410);
    let html = expired_page.text().await.unwrap();
    assert!(html.contains("has expired"), "{html}");
    assert_eq!(unknown.status(), 404);
    assert_eq!(invalid.status(), 404);
    assert_eq!(app.order("P4004").await.status, OrderStatus::Pending);
}

async fn the_same_number_with_another_product_is_a_conflict(db: Db) {
    let app = spawn_app(db).await;
    let order =
        json!({"out_trade_no": "P4005", "subject": "Tea", "total_amount": "1.00", "product": "qr"});

    let (first, _) = app.create_product(order.clone()).await;
    let (again, again_body) = app.create_product(order.clone()).await;
    let mut as_page = order;
    as_page["product"] = json!("page");
    let (other, _) = app.create_product(as_page).await;

    assert_eq!((first, again, other), (201, 200, 409));
    assert_eq!(again_body["pay_url"], "https://shop.example.com/pay/P4005");
}
