//! WAIT_BUYER_PAY at the cashier: a buyer who logged in and did not pay. Alipay then has a trade
//! (with a trade_no and a buyer) that query reports, close and expiry close, and Pay still pays.

use alipay_notify::alipay::pay::PayOrder;
use serde_json::json;
use time::OffsetDateTime;

use crate::support::*;

#[tokio::test]
async fn logging_in_makes_the_trade_wait_for_payment_without_a_notification() {
    let env = spawn().await;
    let cashier = env.get(&env.pay_url("T_login", "20.00")).await;

    let logged_in = env.press(&cashier, "login").await.text().await.unwrap();
    let again = env.press(&cashier, "login").await.text().await.unwrap();
    let query = env
        .api_verified("alipay.trade.query", json!({"out_trade_no": "T_login"}))
        .await;

    assert!(
        logged_in.contains(r#"data-status="WAIT_BUYER_PAY""#),
        "{logged_in}"
    );
    assert!(logged_in.contains("id=\"buyer\"") && !logged_in.contains("id=\"login\""));
    assert!(logged_in.contains("id=\"pay\"") && logged_in.contains("id=\"cancel\""));
    let trade_no = text_of(&logged_in, "trade_no");
    assert_eq!(trade_no.len(), 28);
    assert_eq!(
        text_of(&again, "trade_no"),
        trade_no,
        "logging in again changes nothing"
    );
    let trade = env.sim.trade("T_login").unwrap();
    let buyer = trade.buyer.unwrap();
    assert_eq!(query["code"], "10000");
    assert_eq!(query["trade_status"], "WAIT_BUYER_PAY");
    assert_eq!(query["trade_no"], trade_no);
    assert_eq!(query["buyer_user_id"], buyer.buyer_id);
    assert_eq!(query["buyer_logon_id"], buyer.buyer_logon_id);
    assert_eq!(query["total_amount"], "20.00");
    tokio::time::sleep(QUIET).await;
    assert!(
        env.receiver.received().is_empty(),
        "no notify for WAIT_BUYER_PAY"
    );
}

#[tokio::test]
async fn a_waiting_trade_closes_by_api_and_then_refuses_login_and_pay() {
    let env = spawn().await;
    let cashier = env.get(&env.pay_url("T_login_close", "20.00")).await;
    let logged_in = env.press(&cashier, "login").await.text().await.unwrap();

    let closed = env
        .api_verified(
            "alipay.trade.close",
            json!({"out_trade_no": "T_login_close"}),
        )
        .await;
    let received = env.receiver.wait_for(1).await;
    let login_after = env.press(&cashier, "login").await.text().await.unwrap();
    let pay_after = env.press(&cashier, "pay").await.text().await.unwrap();

    assert_eq!(closed["code"], "10000");
    assert_eq!(closed["trade_no"], text_of(&logged_in, "trade_no"));
    let key = env.sim.alipay_public_key();
    assert_eq!(status_of(&received[0].body, &key), "TRADE_CLOSED");
    for page in [login_after, pay_after] {
        assert!(page.contains(r#"data-status="TRADE_CLOSED""#), "{page}");
        // The way back: the site return_url belongs to.
        assert!(page.contains(r#"id="back-to-shop" class="back" href="http://shop.example/""#));
    }
}

#[tokio::test]
async fn pay_after_logging_in_keeps_the_trade_no_and_the_buyer() {
    let env = spawn().await;
    let cashier = env.get(&env.pay_url("T_login_pay", "20.00")).await;
    let logged_in = env.press(&cashier, "login").await.text().await.unwrap();
    let buyer = env.sim.trade("T_login_pay").unwrap().buyer.unwrap();

    let paid = env.press(&logged_in, "pay").await;
    let received = env.receiver.wait_for(1).await;

    assert_eq!(paid.status(), 303);
    let params = verified(&received[0].body, &env.sim.alipay_public_key());
    assert_eq!(params.get("trade_status"), Some("TRADE_SUCCESS"));
    assert_eq!(
        params.get("trade_no"),
        Some(&*text_of(&logged_in, "trade_no"))
    );
    assert_eq!(params.get("buyer_id"), Some(&*buyer.buyer_id));
}

#[tokio::test]
async fn a_waiting_trade_closes_when_time_expire_passes() {
    let env = spawn().await;
    let now = OffsetDateTime::now_utc();
    let order = PayOrder {
        out_trade_no: "T_login_expire",
        total_amount: amount("1.00"),
        subject: "Quick",
        body: None,
        time_expire: now + time::Duration::seconds(3),
    };
    let cashier = env.get(&env.merchant.page_pay_url(&order, now)).await;
    let logged_in = env.press(&cashier, "login").await.text().await.unwrap();
    assert!(
        logged_in.contains(r#"data-status="WAIT_BUYER_PAY""#),
        "{logged_in}"
    );

    let received = env.receiver.wait_for(1).await;

    let params = verified(&received[0].body, &env.sim.alipay_public_key());
    assert_eq!(params.get("trade_status"), Some("TRADE_CLOSED"));
    assert_eq!(
        params.get("trade_no"),
        Some(&*text_of(&logged_in, "trade_no"))
    );
    let query = env
        .api_verified(
            "alipay.trade.query",
            json!({"out_trade_no": "T_login_expire"}),
        )
        .await;
    assert_eq!(query["trade_status"], "TRADE_CLOSED");
}
