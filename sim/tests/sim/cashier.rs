//! The gateway's checks of a page-pay request, the cashier, cancel and expiry.

use alipay_notify::alipay::pay::PayOrder;
use axum::http::header;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::support::*;

#[tokio::test]
async fn a_signed_page_pay_request_shows_the_cashier() {
    let env = spawn().await;

    let page = env.get(&env.pay_url("T_cashier_1", "88.00")).await;

    assert!(
        page.contains("id=\"pay\"") && page.contains("id=\"cancel\""),
        "{page}"
    );
    assert!(page.contains("88.00") && page.contains("T_cashier_1"));
    assert!(page.contains("Oolong tea, 250 g") && page.contains(APP_ID));
    let trade = env.sim.trade("T_cashier_1").unwrap();
    assert_eq!(
        trade.status, None,
        "no trade at Alipay before the buyer acts"
    );
}

#[tokio::test]
async fn a_page_pay_posted_as_a_form_is_accepted_too() {
    let env = spawn().await;
    let url = env.pay_url("T_form_1", "1.00");
    let (_, query) = url.split_once('?').unwrap();

    let response = env
        .browser
        .post(format!("{}?charset=utf-8", env.sim.gateway_url()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();

    assert!(response.text().await.unwrap().contains("id=\"pay\""));
}

#[tokio::test]
async fn a_tampered_amount_gets_the_invalid_signature_page_with_the_sign_string() {
    let env = spawn().await;
    let url = env.pay_url("T_tampered", "88.00");
    let tampered = url.replace("%2288.00%22", "%220.01%22");
    assert_ne!(url, tampered);

    let page = env.get(&tampered).await;

    assert!(page.contains("isv.invalid-signature"), "{page}");
    // The sign string the gateway verified, with sign_type in it and the tampered amount.
    let shown = page.split("id=\"sign-content\">").nth(1).unwrap();
    assert!(
        shown.starts_with("app_id=2021000000000001&amp;biz_content="),
        "{shown}"
    );
    assert!(shown.contains("&quot;total_amount&quot;:&quot;0.01&quot;"));
    assert!(shown.contains("sign_type=RSA2&amp;timestamp="));
    assert!(env.sim.trade("T_tampered").is_none());
}

#[tokio::test]
async fn an_unknown_app_is_refused() {
    let env = spawn_with(Options {
        app_id: "2021999999999999",
        ..Options::default()
    })
    .await;

    let page = env.get(&env.pay_url("T_unknown_app", "1.00")).await;

    assert!(page.contains("isv.invalid-app-id"), "{page}");
    assert!(!page.contains("id=\"pay\""));
}

#[tokio::test]
async fn a_timestamp_more_than_ten_minutes_off_is_refused() {
    let env = spawn().await;
    let now = OffsetDateTime::now_utc();

    for skew in [-11, 11] {
        let at = now + time::Duration::minutes(skew);
        let page = env.get(&env.pay_url_at("T_stale", "1.00", at)).await;
        assert!(page.contains("isv.invalid-timestamp"), "{skew}: {page}");
    }
    let fine = env
        .get(&env.pay_url_at("T_stale", "1.00", now - time::Duration::minutes(9)))
        .await;
    assert!(fine.contains("id=\"pay\""));
}

#[tokio::test]
async fn api_calls_with_gateway_errors_get_unsigned_json_errors() {
    let env = spawn().await;

    let unknown = env
        .api("alipay.trade.pay", json!({"out_trade_no": "x"}))
        .await;
    let missing = env
        .browser
        .get(format!(
            "{}?method=alipay.trade.query&charset=utf-8",
            env.sim.gateway_url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let unknown: Value = serde_json::from_str(&unknown).unwrap();
    assert_eq!(unknown["error_response"]["sub_code"], "isv.invalid-method");
    let missing: Value = serde_json::from_str(&missing).unwrap();
    assert_eq!(missing["alipay_trade_query_response"]["code"], "40001");
    assert_eq!(
        missing["alipay_trade_query_response"]["sub_code"],
        "isv.missing-app-id"
    );
    assert!(missing.get("sign").is_none());
}

#[tokio::test]
async fn the_same_out_trade_no_reuses_the_unpaid_trade_at_the_same_amount_only() {
    let env = spawn().await;
    let first = env.get(&env.pay_url("T_again", "10.00")).await;
    let again = env.get(&env.pay_url("T_again", "10.00")).await;
    assert_eq!(form_action(&first, "pay"), form_action(&again, "pay"));

    let other_amount = env.get(&env.pay_url("T_again", "12.00")).await;
    assert!(
        other_amount.contains("ACQ.CONTEXT_INCONSISTENT"),
        "{other_amount}"
    );

    env.pay("T_again", "10.00").await;
    let after_payment = env.get(&env.pay_url("T_again", "10.00")).await;
    assert!(after_payment.contains("ACQ.TRADE_HAS_SUCCESS"));
}

#[tokio::test]
async fn cancel_closes_the_trade_and_notifies_trade_closed() {
    let env = spawn().await;

    let response = env.click("T_cancel", "7.00", "cancel").await;
    let page = response.text().await.unwrap();
    let received = env.receiver.wait_for(1).await;

    assert!(page.contains("TRADE_CLOSED"), "{page}");
    assert_eq!(
        status_of(&received[0].body, &env.sim.alipay_public_key()),
        "TRADE_CLOSED"
    );
    let query = env
        .api_verified("alipay.trade.query", json!({"out_trade_no": "T_cancel"}))
        .await;
    assert_eq!(query["trade_status"], "TRADE_CLOSED");
    let reopened = env.get(&env.pay_url("T_cancel", "7.00")).await;
    assert!(reopened.contains("ACQ.TRADE_HAS_CLOSE"));
}

#[tokio::test]
async fn an_unpaid_trade_closes_when_time_expire_passes() {
    let env = spawn().await;
    let now = OffsetDateTime::now_utc();
    let order = PayOrder {
        out_trade_no: "T_expire",
        total_amount: amount("1.00"),
        subject: "Quick",
        body: None,
        time_expire: now + time::Duration::seconds(2),
    };
    let page = env.get(&env.merchant.page_pay_url(&order, now)).await;
    assert!(page.contains("id=\"pay\""));

    let received = env.receiver.wait_for(1).await;

    assert_eq!(
        status_of(&received[0].body, &env.sim.alipay_public_key()),
        "TRADE_CLOSED"
    );
    let pay = format!("{}{}", env.sim.base_url(), form_action(&page, "pay"));
    let late = env
        .browser
        .post(pay)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        late.contains("TRADE_CLOSED"),
        "a late Pay finds the trade closed"
    );
}

#[tokio::test]
async fn a_float_amount_from_a_python_sdk_pays_as_two_decimals_end_to_end() {
    let env = spawn().await;
    let extra = [("notify_url", &*env.notify_url), ("return_url", RETURN_URL)];
    // python-alipay-sdk serialises a float: `"total_amount": 88.8`, a JSON number.
    let biz = |no: &str, total: Value| {
        json!({
            "out_trade_no": no, "total_amount": total, "subject": "Tea",
            "product_code": "FAST_INSTANT_TRADE_PAY"
        })
    };
    let gateway = |biz: Value| {
        let form = request_form("alipay.trade.page.pay", &biz, &extra);
        format!("{}?{form}", env.sim.gateway_url())
    };
    assert!(biz("T_float", json!(88.8))
        .to_string()
        .contains(r#""total_amount":88.8"#));

    let page = env.get(&gateway(biz("T_float", json!(88.8)))).await;
    let paid = env.press(&page, "pay").await;
    let received = env.receiver.wait_for(1).await;
    let refused = env.get(&gateway(biz("T_float_2", json!(88.888)))).await;

    assert_eq!(text_of(&page, "amount"), "¥88.80");
    let location = paid.headers()[header::LOCATION].to_str().unwrap();
    let query = location.split_once('?').unwrap().1;
    let returned = verified(query.as_bytes(), &env.sim.alipay_public_key());
    assert_eq!(returned.get("total_amount"), Some("88.80"));
    let notified = verified(&received[0].body, &env.sim.alipay_public_key());
    assert_eq!(notified.get("total_amount"), Some("88.80"));
    assert!(refused.contains("ACQ.INVALID_PARAMETER"), "{refused}");
}
