//! Refunds over the signed API, and the notifications they send.

use alipay_notify::alipay::callback::Verified;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn refunds_partial_then_full_close_the_trade_and_are_notified() {
    let env = spawn().await;
    env.pay("T_refund", "88.00").await;
    let refund = |no: &str, amount: &str| json!({"out_trade_no": "T_refund", "refund_amount": amount, "out_request_no": no});

    let partial = env
        .api_verified("alipay.trade.refund", refund("R1", "30.00"))
        .await;
    let repeated = env
        .api_verified("alipay.trade.refund", refund("R1", "30.00"))
        .await;
    let discordant = env
        .api_verified("alipay.trade.refund", refund("R1", "31.00"))
        .await;
    let too_much = env
        .api_verified("alipay.trade.refund", refund("R2", "58.01"))
        .await;
    let rest = env
        .api_verified("alipay.trade.refund", refund("R2", "58.00"))
        .await;
    let query = env
        .api_verified("alipay.trade.query", json!({"out_trade_no": "T_refund"}))
        .await;
    let refund_query = env
        .api_verified(
            "alipay.trade.fastpay.refund.query",
            json!({"out_trade_no": "T_refund", "out_request_no": "R1"}),
        )
        .await;

    assert_eq!(
        (
            partial["refund_fee"].as_str(),
            partial["fund_change"].as_str()
        ),
        (Some("30.00"), Some("Y"))
    );
    assert_eq!(
        (
            repeated["refund_fee"].as_str(),
            repeated["fund_change"].as_str()
        ),
        (Some("30.00"), Some("N"))
    );
    assert_eq!(discordant["sub_code"], "ACQ.DISCORDANT_REPEAT_REQUEST");
    assert_eq!(too_much["sub_code"], "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL");
    assert_eq!(rest["refund_fee"], "88.00");
    assert_eq!(query["trade_status"], "TRADE_CLOSED");
    assert_eq!(refund_query["refund_amount"], "30.00");
    assert_eq!(refund_query["refund_status"], "REFUND_SUCCESS");

    let received = env.receiver.wait_for(3).await;
    let key = env.sim.alipay_public_key();
    let notes: Vec<Verified> = received.iter().map(|r| verified(&r.body, &key)).collect();
    assert_eq!(notes.len(), 3, "payment, partial refund, full refund");
    assert_eq!(notes[1].get("trade_status"), Some("TRADE_SUCCESS"));
    assert_eq!(notes[1].get("refund_fee"), Some("30.00"));
    assert_eq!(notes[1].get("out_biz_no"), Some("R1"));
    assert!(notes[1].get("gmt_refund").is_some());
    assert_eq!(notes[2].get("trade_status"), Some("TRADE_CLOSED"));
    assert_eq!(notes[2].get("refund_fee"), Some("88.00"));
}
