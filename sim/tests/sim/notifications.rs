//! Pay, the notification it sends, the return_url redirect, and delivery until acknowledged.

use std::time::Duration;

use alipay_notify::alipay::callback::{self};
use alipay_notify::alipay::clock::format_beijing;
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::PublicKey;
use alipay_notify::alipay::notification::{Notification, TradeStatus};
use alipay_sim::{AttemptOutcome, DeliveryState};
use axum::http::header;
use serde_json::Value;
use time::OffsetDateTime;

use crate::receiver::*;
use crate::support::*;

#[tokio::test]
async fn pay_delivers_a_notification_that_verifies_and_matches_the_trade() {
    let env = spawn().await;

    env.pay("T_paid_1", "88.00").await;
    let received = env.receiver.wait_for(1).await;

    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].content_type,
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    let params = verified(&received[0].body, &env.sim.alipay_public_key());
    let trade = env.sim.trade("T_paid_1").unwrap();
    assert_eq!(trade.status, Some(TradeStatus::TradeSuccess));
    let notification = Notification::from_verified(&params).unwrap();
    assert_eq!(notification.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(notification.out_trade_no, "T_paid_1");
    assert_eq!(notification.total_amount, amount("88.00"));
    assert_eq!(notification.app_id, APP_ID);
    assert_eq!(notification.seller_id.as_deref(), Some(SELLER_ID));
    assert_eq!(Some(notification.trade_no), trade.trade_no);
    assert_eq!(notification.buyer_id, trade.buyer.map(|b| b.buyer_id));
    assert_eq!(
        notification.gmt_payment,
        trade.paid_at.map(|t| t.replace_nanosecond(0).unwrap())
    );
    for (key, value) in [
        ("notify_type", "trade_status_sync"),
        ("auth_app_id", APP_ID),
        ("receipt_amount", "88.00"),
        ("buyer_pay_amount", "88.00"),
        ("point_amount", "0.00"),
        ("subject", "Oolong tea, 250 g"),
        ("version", "1.0"),
    ] {
        assert_eq!(params.get(key), Some(value), "{key}");
    }
    assert!(params
        .get("fund_bill_list")
        .unwrap()
        .contains("ALIPAYACCOUNT"));
    let state = &env.sim.trade("T_paid_1").unwrap().notifications[0];
    assert_eq!(state.state, DeliveryState::Delivered);
}

#[tokio::test]
async fn the_notification_does_not_verify_with_the_app_s_own_key() {
    let env = spawn().await;

    env.pay("T_wrong_key", "1.00").await;
    let received = env.receiver.wait_for(1).await;

    let app_public = PublicKey::parse(&app_key().public_key_base64()).unwrap();
    let raw = RawParams::parse(&received[0].body).unwrap();
    assert!(callback::verify(&raw, &app_public).is_err());
}

#[tokio::test]
async fn pay_redirects_to_return_url_with_signed_parameters_and_no_trade_status() {
    let env = spawn().await;

    let response = env.pay("T_return", "5.00").await;

    let location = response.headers()[header::LOCATION].to_str().unwrap();
    let query = location
        .strip_prefix("http://shop.example/payment/success?")
        .unwrap_or_else(|| panic!("{location}"));
    let params = verified(query.as_bytes(), &env.sim.alipay_public_key());
    assert_eq!(params.get("method"), Some("alipay.trade.page.pay.return"));
    assert_eq!(params.get("total_amount"), Some("5.00"));
    assert_eq!(params.get("seller_id"), Some(SELLER_ID));
    assert_eq!(params.get("trade_status"), None);
}

#[tokio::test]
async fn a_receiver_answering_fail_is_retried_and_every_attempt_is_recorded() {
    let env = spawn_with(Options {
        replies: &["fail", "fail"],
        ..Options::default()
    })
    .await;

    env.pay("T_retry", "2.00").await;
    let attempts = env.sim.settled_attempts("T_retry", 3, WAIT, QUIET).await;

    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(!attempts[0].acknowledged && !attempts[1].acknowledged && attempts[2].acknowledged);
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Response {
            status: 200,
            body: "fail".into()
        }
    );
    // 4 minutes scaled by 0.0001 is 24 ms, then 10 minutes is 60 ms.
    assert!(attempts[1].at - attempts[0].at >= time::Duration::milliseconds(24));
    assert!(attempts[2].at - attempts[1].at >= time::Duration::milliseconds(60));
    let bodies: Vec<Vec<u8>> = env
        .receiver
        .received()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "resends are identical"
    );
    let json: Value = env
        .browser
        .get(format!("{}/sim/trades/T_retry", env.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json["notifications"][0]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(json["notifications"][0]["state"], "delivered");
}

#[tokio::test]
async fn a_notification_is_given_up_after_eight_attempts() {
    let env = spawn_with(Options {
        replies: &["fail"; 8],
        time_scale: 0.00001,
        ..Options::default()
    })
    .await;

    env.pay("T_give_up", "2.00").await;
    let settled = env
        .sim
        .wait_for(Duration::from_secs(30), |trades| {
            trades.iter().any(|t| {
                t.notifications
                    .first()
                    .is_some_and(|n| n.state == DeliveryState::GaveUp)
            })
        })
        .await;

    assert!(settled);
    assert_eq!(env.sim.attempts("T_give_up").len(), 8);
}

#[tokio::test]
async fn a_gbk_request_gets_a_gbk_notification_signed_over_its_gbk_bytes() {
    let env = spawn().await;
    let (notify_url, receiver) = spawn_receiver(&[], Duration::ZERO).await;
    let gbk = |text: &str| encoding_rs::GBK.encode(text).0.into_owned();
    let now = format_beijing(OffsetDateTime::now_utc());
    let biz = r#"{"out_trade_no":"T_gbk","total_amount":"9.90","subject":"中文茶叶","product_code":"FAST_INSTANT_TRADE_PAY"}"#;
    let params = [
        ("app_id", APP_ID.as_bytes().to_vec()),
        ("method", b"alipay.trade.page.pay".to_vec()),
        ("charset", b"GBK".to_vec()),
        ("sign_type", b"RSA2".to_vec()),
        ("timestamp", now.into_bytes()),
        ("version", b"1.0".to_vec()),
        ("notify_url", notify_url.into_bytes()),
        ("biz_content", gbk(biz)),
    ];
    let url = format!("{}?{}", env.sim.gateway_url(), signed_request(&params));

    let page = env.get(&url).await;
    assert!(page.contains("中文茶叶"), "{page}");
    let pay = format!("{}{}", env.sim.base_url(), form_action(&page, "pay"));
    env.browser.post(pay).send().await.unwrap();
    let received = receiver.wait_for(1).await;

    assert_eq!(
        received[0].content_type,
        "application/x-www-form-urlencoded; charset=GBK"
    );
    let body = String::from_utf8(received[0].body.clone()).unwrap();
    assert!(body.contains("subject=%D6%D0%CE%C4%B2%E8%D2%B6"), "{body}");
    let params = verified(&received[0].body, &env.sim.alipay_public_key());
    assert_eq!(params.get("subject"), Some("中文茶叶"));
}
