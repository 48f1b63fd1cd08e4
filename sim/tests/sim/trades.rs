//! Query and close over the signed API, and the public key route.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn query_answers_trade_not_exist_until_paid_then_trade_success() {
    let env = spawn().await;
    let biz = json!({"out_trade_no": "T_query"});

    let before = env.api_verified("alipay.trade.query", biz.clone()).await;
    env.get(&env.pay_url("T_query", "12.34")).await;
    let at_cashier = env.api_verified("alipay.trade.query", biz.clone()).await;
    env.pay("T_query", "12.34").await;
    let after = env.api_verified("alipay.trade.query", biz).await;

    for unpaid in [before, at_cashier] {
        assert_eq!(unpaid["code"], "40004");
        assert_eq!(unpaid["sub_code"], "ACQ.TRADE_NOT_EXIST");
        assert_eq!(unpaid["sub_msg"], "交易不存在");
    }
    let trade = env.sim.trade("T_query").unwrap();
    assert_eq!(after["code"], "10000");
    assert_eq!(after["trade_status"], "TRADE_SUCCESS");
    assert_eq!(after["total_amount"], "12.34");
    assert_eq!(after["trade_no"], trade.trade_no.unwrap());
    assert_eq!(after["buyer_user_id"], trade.buyer.unwrap().buyer_id);
}

#[tokio::test]
async fn close_finds_no_trade_before_login_and_refuses_a_paid_one() {
    let env = spawn().await;
    let biz = json!({"out_trade_no": "T_close"});
    env.get(&env.pay_url("T_close", "1.00")).await;

    let before = env.api_verified("alipay.trade.close", biz.clone()).await;
    env.pay("T_close", "1.00").await;
    let after = env.api_verified("alipay.trade.close", biz).await;

    assert_eq!(before["sub_code"], "ACQ.TRADE_NOT_EXIST");
    assert_eq!(after["sub_code"], "ACQ.TRADE_STATUS_ERROR");
}

#[tokio::test]
async fn the_public_key_route_serves_the_key_handed_to_tests() {
    let env = spawn().await;

    let served = env
        .get(&format!("{}/sim/alipay_public_key", env.sim.base_url()))
        .await;

    assert_eq!(served, env.sim.alipay_public_key_base64());
    assert!(served.starts_with("MIIBIjAN"));
    env.sim.shutdown().await;
}
