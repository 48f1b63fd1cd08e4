//! The other three ways to pay: the phone cashier (wap pay), the QR code (precreate) and the app
//! SDK's order string (app pay), each with requests built here, independently of the service.

use alipay_notify::alipay::notification::TradeStatus;
use alipay_notify::alipay::product::Product;
use axum::http::header;
use serde_json::{json, Value};

use crate::support::*;

const QUIT_URL: &str = "https://shop.example/cart?from=alipay";

fn biz(product: Product, out_trade_no: &str, total: &str) -> Value {
    json!({
        "out_trade_no": out_trade_no, "total_amount": total, "subject": "Jasmine tea, 100 g",
        "product_code": product.product_code()
    })
}

impl TestEnv {
    /// Opens the phone cashier as a phone's browser would, from a signed wap.pay URL.
    async fn wap_cashier(&self, biz: Value) -> String {
        let extra = [
            ("notify_url", &*self.notify_url),
            ("return_url", RETURN_URL),
        ];
        let form = request_form(Product::Wap.method(), &biz, &extra);
        self.get(&format!("{}?{form}", self.sim.gateway_url()))
            .await
    }

    async fn precreate(&self, biz: Value) -> Value {
        let notify = [("notify_url", &*self.notify_url)];
        self.api_verified_with(Product::Qr.method(), biz, &notify)
            .await
    }

    async fn query(&self, out_trade_no: &str) -> Value {
        self.api_verified(
            "alipay.trade.query",
            json!({ "out_trade_no": out_trade_no }),
        )
        .await
    }

    /// Hands an order string to the app SDK the simulator plays.
    async fn app_sdk(&self, order_string: String, content_type: &str) -> String {
        let url = format!("{}/sim/app/pay", self.sim.base_url());
        let response = self
            .browser
            .post(url)
            .header(header::CONTENT_TYPE, content_type)
            .body(order_string)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    fn app_order_string(&self, biz: Value) -> String {
        let notify = [("notify_url", &*self.notify_url)];
        request_form(Product::App.method(), &biz, &notify)
    }

    async fn trade_status_notified(&self, count: usize) -> String {
        let received = self.receiver.wait_for(count).await;
        assert_eq!(received.len(), count, "{received:?}");
        status_of(&received[count - 1].body, &self.sim.alipay_public_key())
    }
}

#[tokio::test]
async fn a_wap_pay_request_shows_the_phone_cashier_with_a_way_back_to_quit_url() {
    let env = spawn().await;
    let mut request = biz(Product::Wap, "T_wap_cashier", "66.00");
    request["quit_url"] = json!(QUIT_URL);

    let page = env.wap_cashier(request).await;

    assert!(page.contains(r#"data-layout="phone""#), "{page}");
    assert!(page.contains(r#"data-product="wap""#));
    assert!(
        page.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    assert!(page.contains("id=\"pay\"") && page.contains("id=\"login\""));
    assert!(
        page.contains(r#"<a id="quit" class="back" href="https://shop.example/cart?from=alipay">"#),
        "{page}"
    );
    // Long numbers wrap rather than widen the card on a 390 px phone.
    assert!(page.contains("dd,code,a{overflow-wrap:anywhere}"));
    assert_eq!(text_of(&page, "out_trade_no"), "T_wap_cashier");
    let trade = env.sim.trade("T_wap_cashier").unwrap();
    assert_eq!(trade.product, Product::Wap);
    assert_eq!(trade.quit_url.as_deref(), Some(QUIT_URL));
    let listed: Value = env
        .browser
        .get(format!("{}/sim/trades/T_wap_cashier", env.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["product"], "wap");
    assert_eq!(listed["quit_url"], QUIT_URL);
}

#[tokio::test]
async fn wap_pay_returns_with_the_wap_return_method_and_notifies_trade_success() {
    let env = spawn().await;
    let page = env
        .wap_cashier(biz(Product::Wap, "T_wap_paid", "66.00"))
        .await;

    let response = env.press(&page, "pay").await;

    assert_eq!(response.status(), 303);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    let query = location
        .strip_prefix(&format!("{RETURN_URL}?"))
        .unwrap_or_else(|| panic!("{location}"));
    let params = verified(query.as_bytes(), &env.sim.alipay_public_key());
    assert_eq!(params.get("method"), Some("alipay.trade.wap.pay.return"));
    assert_eq!(params.get("total_amount"), Some("66.00"));
    assert_eq!(env.trade_status_notified(1).await, "TRADE_SUCCESS");
}

#[tokio::test]
async fn wap_pay_refuses_a_product_code_that_is_not_quick_wap_way() {
    let env = spawn().await;
    let mut request = biz(Product::Wap, "T_wap_code", "1.00");
    request["product_code"] = json!("FAST_INSTANT_TRADE_PAY");

    let page = env.wap_cashier(request).await;

    assert!(page.contains("ACQ.INVALID_PARAMETER"), "{page}");
    assert!(page.contains(r#"data-layout="phone""#));
    assert!(env.sim.trade("T_wap_code").is_none());
}

#[tokio::test]
async fn precreate_answers_a_signed_qr_code_and_the_trade_exists_once_scanned() {
    let env = spawn().await;

    let answer = env.precreate(biz(Product::Qr, "T_qr", "18.80")).await;
    let before_scan = env.query("T_qr").await;
    let again = env.precreate(biz(Product::Qr, "T_qr", "18.80")).await;

    assert_eq!(answer["code"], "10000");
    assert_eq!(answer["msg"], "Success");
    assert_eq!(answer["out_trade_no"], "T_qr");
    let qr_code = answer["qr_code"].as_str().unwrap();
    let prefix = format!("{}/sim/qr/", env.sim.base_url());
    assert!(qr_code.starts_with(&prefix), "{qr_code}");
    assert_eq!(again["qr_code"], qr_code, "the same QR code until paid");
    assert_eq!(before_scan["sub_code"], "ACQ.TRADE_NOT_EXIST");

    let phone = env.get(qr_code).await;
    assert!(
        phone.contains("id=\"scan\"") && !phone.contains("id=\"pay\""),
        "{phone}"
    );
    assert!(phone.contains(r#"data-layout="phone""#));
    assert_eq!(text_of(&phone, "amount"), "¥18.80");
    assert!(text_of(&phone, "seller").contains(SELLER_ID));
    assert!(text_of(&phone, "expires").contains("北京时间"));
    assert_eq!(text_of(&phone, "subject"), "Jasmine tea, 100 g");

    let scanned = env.press(&phone, "scan").await.text().await.unwrap();
    let rescanned = env.press(&phone, "scan").await.text().await.unwrap();
    let waiting = env.query("T_qr").await;

    assert!(
        scanned.contains(r#"data-status="WAIT_BUYER_PAY""#),
        "{scanned}"
    );
    assert!(scanned.contains("id=\"pay\"") && scanned.contains("id=\"cancel\""));
    assert_eq!(
        text_of(&scanned, "trade_no"),
        text_of(&rescanned, "trade_no")
    );
    assert_eq!(waiting["trade_status"], "WAIT_BUYER_PAY");
    assert_eq!(
        waiting["trade_no"].as_str(),
        Some(&*text_of(&scanned, "trade_no"))
    );
    assert!(waiting["buyer_user_id"]
        .as_str()
        .unwrap()
        .starts_with("2088"));
    assert!(waiting["buyer_logon_id"].is_string());
    assert_eq!(env.sim.trade("T_qr").unwrap().product, Product::Qr);
}

#[tokio::test]
async fn a_scanned_qr_trade_closes_by_api_with_a_close_notification() {
    let env = spawn().await;
    let qr_code = env.precreate(biz(Product::Qr, "T_qr_close", "3.00")).await["qr_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let phone = env.get(&qr_code).await;
    env.press(&phone, "scan").await;
    tokio::time::sleep(QUIET).await;
    assert!(
        env.receiver.received().is_empty(),
        "no notify for WAIT_BUYER_PAY"
    );

    let closed = env
        .api_verified("alipay.trade.close", json!({"out_trade_no": "T_qr_close"}))
        .await;

    assert_eq!(closed["code"], "10000");
    assert_eq!(env.trade_status_notified(1).await, "TRADE_CLOSED");
    assert_eq!(
        env.query("T_qr_close").await["trade_status"],
        "TRADE_CLOSED"
    );
    let after = env.get(&qr_code).await;
    assert!(after.contains(r#"data-status="TRADE_CLOSED""#), "{after}");
    let shop = format!("{}/", env.notify_url.trim_end_matches("/notify"));
    assert!(after.contains(&format!(r#"id="back-to-shop" class="back" href="{shop}""#)));
    let reopened = env.precreate(biz(Product::Qr, "T_qr_close", "3.00")).await;
    assert_eq!(reopened["sub_code"], "ACQ.TRADE_HAS_CLOSE");
}

#[tokio::test]
async fn a_scanned_qr_trade_paid_notifies_trade_success_and_cannot_be_precreated_again() {
    let env = spawn().await;
    let qr_code = env.precreate(biz(Product::Qr, "T_qr_paid", "9.90")).await["qr_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let phone = env.get(&qr_code).await;
    let scanned = env.press(&phone, "scan").await.text().await.unwrap();

    let paid = env.press(&scanned, "pay").await;

    assert_eq!(paid.status(), 200, "no return_url for a QR code");
    let paid = paid.text().await.unwrap();
    assert!(paid.contains(r#"data-status="TRADE_SUCCESS""#), "{paid}");
    assert_eq!(env.trade_status_notified(1).await, "TRADE_SUCCESS");
    let notified = verified(
        &env.receiver.received()[0].body,
        &env.sim.alipay_public_key(),
    );
    assert_eq!(
        notified.get("trade_no"),
        Some(&*text_of(&scanned, "trade_no"))
    );
    let again = env.precreate(biz(Product::Qr, "T_qr_paid", "9.90")).await;
    assert_eq!(again["sub_code"], "ACQ.TRADE_HAS_SUCCESS");
}

#[tokio::test]
async fn precreate_checks_its_product_code_amount_and_qr_ids() {
    let env = spawn().await;
    let no_code = json!({"out_trade_no": "T_qr_rules", "total_amount": 5, "subject": "Tea"});

    let opened = env.precreate(no_code).await;
    let other_amount = env.precreate(biz(Product::Qr, "T_qr_rules", "6.00")).await;
    let wrong_code = env.precreate(biz(Product::Wap, "T_qr_code", "6.00")).await;
    let unknown = env
        .browser
        .get(format!(
            "{}/sim/qr/00000000000000000000",
            env.sim.base_url()
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(
        opened["code"], "10000",
        "product_code is optional: {opened}"
    );
    assert_eq!(env.sim.trade("T_qr_rules").unwrap().total_amount.fen(), 500);
    assert_eq!(other_amount["sub_code"], "ACQ.CONTEXT_INCONSISTENT");
    assert_eq!(wrong_code["sub_code"], "ACQ.INVALID_PARAMETER");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn an_app_order_string_opens_the_app_cashier_and_pay_reports_9000() {
    let env = spawn().await;
    let order = env.app_order_string(biz(Product::App, "T_app", "25.00"));

    let page = env.app_sdk(order, "text/plain").await;
    let paid = env.press(&page, "pay").await;

    assert!(page.contains(r#"data-product="app""#), "{page}");
    assert!(page.contains(r#"data-layout="phone""#) && page.contains("id=\"login\""));
    assert_eq!(paid.status(), 200, "no return_url for an app");
    let paid = paid.text().await.unwrap();
    assert!(paid.contains(r#"data-result-status="9000""#), "{paid}");
    assert_eq!(text_of(&paid, "result-status"), "resultStatus=9000");
    assert_eq!(env.trade_status_notified(1).await, "TRADE_SUCCESS");
    let trade = env.sim.trade("T_app").unwrap();
    assert_eq!(
        (trade.product, trade.status),
        (Product::App, Some(TradeStatus::TradeSuccess))
    );
}

#[tokio::test]
async fn an_app_order_string_posted_as_a_form_can_be_cancelled_with_6001() {
    let env = spawn().await;
    let mut request = biz(Product::App, "T_app_cancel", "25.00");
    request.as_object_mut().unwrap().remove("product_code");
    let order = env.app_order_string(request);

    let page = env
        .app_sdk(order, "application/x-www-form-urlencoded")
        .await;
    let cancelled = env.press(&page, "cancel").await.text().await.unwrap();

    assert!(
        cancelled.contains(r#"data-result-status="6001""#),
        "{cancelled}"
    );
    assert!(cancelled.contains(r#"data-status="TRADE_CLOSED""#));
    assert_eq!(env.trade_status_notified(1).await, "TRADE_CLOSED");
}

#[tokio::test]
async fn a_tampered_app_order_string_gets_the_invalid_signature_page() {
    let env = spawn().await;
    let order = env.app_order_string(biz(Product::App, "T_app_tampered", "25.00"));
    // The order string escapes every byte but letters and digits: "25.00" is 25%2E00.
    let tampered = order.replace("25%2E00", "0%2E01");
    assert_ne!(order, tampered);

    let page = env.app_sdk(tampered, "text/plain").await;

    assert!(
        page.contains(r#"data-sub-code="isv.invalid-signature""#),
        "{page}"
    );
    assert!(page.contains(r#"data-layout="phone""#));
    assert!(env.sim.trade("T_app_tampered").is_none());
}

#[tokio::test]
async fn the_app_sdk_takes_only_app_pay_and_the_gateway_never_does() {
    let env = spawn().await;
    let page_pay = request_form(
        Product::Page.method(),
        &biz(Product::Page, "T_app_method", "1.00"),
        &[],
    );
    let app_pay = env.app_order_string(biz(Product::App, "T_app_method", "1.00"));

    let at_sdk = env.app_sdk(page_pay, "text/plain").await;
    let at_gateway = env
        .get(&format!("{}?{app_pay}", env.sim.gateway_url()))
        .await;

    for page in [at_sdk, at_gateway] {
        assert!(
            page.contains(r#"data-sub-code="isv.invalid-method""#),
            "{page}"
        );
    }
    assert!(env.sim.trade("T_app_method").is_none());
}
